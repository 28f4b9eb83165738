"""What each storage level keeps: bytes per face-frame of the lake, `emotrack run --store
full|geometry|labels` on the same video, in one run.

    make bench      (or: .venv/bin/python benchmarks/bench_store_levels.py [--seconds 120])

For each level: the bytes of the current files of `features` and `tracks` (Delta, as
written), of the report's thumbnails, and of the whole lake folder, over the face
observations (rows of `tracks`); and the run's wall time, against `full` in the same run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_throughput import ROOT, emotrack_run, looped  # noqa: E402

from emotrack.assets import fetch_asset  # noqa: E402
from emotrack.lake import Lake  # noqa: E402
from emotrack.settings import Settings  # noqa: E402

LEVELS = ("full", "geometry", "labels")


def measure(lake_root: Path) -> dict[str, float]:
    """Bytes of the lake's parts over its face observations."""
    lake = Lake(lake_root)
    faces = lake.count("tracks")

    def size(paths: list[Path]) -> int:
        return sum(p.stat().st_size for p in paths)

    tables = {t: size([Path(f) for f in lake.files(t)]) for t in ("features", "tracks")}
    thumbs = size(list((lake_root / "_report" / "thumbs").glob("*.jpg")))
    whole = size([p for p in lake_root.rglob("*") if p.is_file()])
    return {
        "faces": faces,
        "features": tables["features"] / faces,
        "tracks": tables["tracks"] / faces,
        "thumbnails": thumbs / faces,
        "lake": whole / faces,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=120.0, help="video length")
    args = parser.parse_args()
    work = ROOT / "build" / "bench-videos"
    work.mkdir(parents=True, exist_ok=True)
    sample = fetch_asset("WolfgangLanger_Pexels.mp4", Settings().cache_dir)
    video = looped(sample, args.seconds, work / f"talking-head-{args.seconds:.0f}s.mp4")
    figures, walls = {}, {}
    for level in LEVELS:
        kept: list[dict[str, float]] = []
        walls[level] = emotrack_run(
            [video],
            options=("--store", level),
            on_lake=lambda lake, out=kept: out.append(measure(lake)),
        )[0]
        figures[level] = kept[0]
    print(f"{args.seconds:.0f}-s talking head, {figures['full']['faces']:.0f} face observations")
    print(
        f"{'level':9} {'features B':>10} {'tracks B':>9} {'thumbs B':>9} {'lake B':>8} "
        f"{'lake/full':>9} {'run s':>6} {'run/full':>8}"
    )
    for level in LEVELS:
        f = figures[level]
        print(
            f"{level:9} {f['features']:10.0f} {f['tracks']:9.0f} {f['thumbnails']:9.1f} "
            f"{f['lake']:8.0f} {f['lake'] / figures['full']['lake']:9.2f} "
            f"{walls[level]:6.1f} {walls[level] / walls['full']:8.2f}"
        )


if __name__ == "__main__":
    main()
