"""The `emotrack` command. Heavy imports (TensorFlow, Prefect) happen only inside commands."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from emotrack.settings import Settings


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="emotrack", description="Video archives -> per-frame facial-emotion Parquet tables."
    )
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="process every video under SOURCE into the lake")
    run.add_argument("source", type=Path, help="folder of videos (searched recursively)")
    run.add_argument("--lake", type=Path, required=True, help="lake folder (created if missing)")
    run.add_argument("--fps", type=float, default=5.0, help="frames analysed per second")

    fetch = commands.add_parser("fetch", help="fetch and verify the pinned model weights")
    fetch.add_argument("--samples", type=Path, help="also copy the sample videos into this folder")

    report = commands.add_parser("report", help="print what the lake holds")
    report.add_argument("--lake", type=Path, required=True)

    sql = commands.add_parser("sql", help="run a DuckDB query; tables are views by name")
    sql.add_argument("query", help="for example: SELECT emotion, count(*) FROM tracks GROUP BY 1")
    sql.add_argument("--lake", type=Path, required=True)

    args = parser.parse_args(argv)
    if args.command == "sql":
        return _sql(args.lake, args.query)
    if args.command == "run":
        return _run(args.source, args.lake, args.fps)
    if args.command == "fetch":
        return _fetch(args.samples)
    return _report(args.lake)


def _run(source: Path, lake: Path, fps: float) -> int:
    if not source.is_dir():
        print(f"emotrack: {source} is not a folder", file=sys.stderr)
        return 2
    # Offline archives are the norm: do not let Prefect's server try to send telemetry.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    from flows.nightly import nightly

    counts = nightly(source=str(source.resolve()), lake=str(lake.resolve()), fps=fps)
    print(f"\nprocessed {counts.get('ok', 0)} video(s), {counts.get('failed', 0)} unreadable")
    return _report(lake)


def _fetch(samples: Path | None) -> int:
    from emotrack.assets import expression_cnn_path, fetch_samples

    settings = Settings()
    print(f"expression CNN: {expression_cnn_path(settings.cache_dir)} (SHA-256 verified)")
    if samples is not None:
        for path in fetch_samples(settings.cache_dir, samples):
            print(f"sample video: {path} (SHA-256 verified)")
    return 0


def _sql(lake: Path, query: str) -> int:
    from emotrack.lake import Lake

    with Lake(lake).connect() as con:
        con.sql(query).show(max_width=200)
    return 0


def _report(lake: Path) -> int:
    from emotrack.report import describe_lake

    print(describe_lake(lake))
    return 0


if __name__ == "__main__":
    sys.exit(main())
