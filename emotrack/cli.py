"""The `emotrack` command. Heavy imports (TensorFlow, Prefect) happen only inside commands."""

from __future__ import annotations

import argparse
import os
import shlex
import signal
import sys
import time
from pathlib import Path

from emotrack.settings import Settings
from emotrack.storage import is_url, location


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="emotrack", description="Video archives -> per-frame facial-emotion Parquet tables."
    )
    parser.add_argument(
        "-v", "--verbose", action="store_true",
        help="show every log line (Prefect, Dask, TensorFlow's runtime) on the console; also "
        "EMOTRACK_LOG_LEVEL=DEBUG",
    )  # fmt: skip
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="process every video under SOURCE into the lake")
    run.add_argument(
        "source", help="folder of videos, or an object-storage URL such as s3://bucket/prefix "
        "(searched recursively)",
    )  # fmt: skip
    run.add_argument(
        "--lake", required=True, help="lake folder (created if missing) or URL (s3://bucket/prefix)"
    )
    run.add_argument("--fps", type=float, default=5.0, help="frames analysed per second")
    _add_detector_option(run)
    run.add_argument(
        "--reprocess",
        action="store_true",
        help="process every video again, even complete or quarantined ones",
    )
    run.add_argument(
        "--no-geometry",
        action="store_true",
        help="skip the face landmarker (landmarks, head pose, blendshapes stay null; the CNN "
        "sees unaligned crops): faster; also EMOTRACK_GEOMETRY=0",
    )
    run.add_argument(
        "--rehash",
        action="store_true",
        help="read every local file again to find its content, instead of trusting an "
        "unchanged size, modification time and inode",
    )
    _add_inference_options(run)

    rescore = commands.add_parser(
        "rescore", help="recompute tracks and summaries from stored features with a model"
    )
    rescore.add_argument("--lake", required=True, help="lake folder or URL")
    rescore.add_argument(
        "--keep-versions",
        action="store_true",
        help="keep the other model versions' tracks next to the new ones (default: replace)",
    )
    _add_inference_options(rescore)

    labelled = commands.add_parser(
        "train", help="train a temporal model on labelled video (Aff-Wild2 layout) into a lake"
    )
    labelled.add_argument("--annotations", type=Path, required=True, help="annotation folder")
    labelled.add_argument("--videos", type=Path, required=True, help="folder of the videos")
    labelled.add_argument(
        "--lake", required=True, help="lake folder (features, registry; on local disk only)"
    )
    labelled.add_argument("--name", required=True, help="model version, e.g. affwild2-gru-v1")
    labelled.add_argument("--fps", type=float, default=5.0, help="frames analysed per second")
    labelled.add_argument("--epochs", type=int, default=30)
    labelled.add_argument("--seed", type=int, default=7)
    labelled.add_argument(
        "--features", default="cnn", help="what the model reads per frame: cnn, plus "
        "blendshapes and/or pose (comma-separated, e.g. cnn,blendshapes,pose); the card then "
        "gives the gain against the CNN's features alone",
    )  # fmt: skip
    _add_detector_option(labelled)
    labelled.add_argument("--dask-address", help="scheduler of an existing Dask cluster")
    labelled.add_argument("--workers", type=int, default=2, help="local Dask worker processes")

    models = commands.add_parser("models", help="list the models a lake can use")
    models.add_argument("--lake", required=True, help="lake folder or URL")
    imported = commands.add_parser(
        "import-model", help="copy a trained model (a folder of a lake's _models) into a lake"
    )
    imported.add_argument("folder", type=Path, help="the model's folder: LAKE/_models/NAME")
    imported.add_argument("--lake", required=True, help="lake folder (on local disk)")

    train = commands.add_parser("train-temporal", help="train the temporal model (simulated)")
    train.add_argument("--preset", choices=["default", "tiny"], default="default")
    train.add_argument("--out", type=Path, help="folder (default: models/weights/<version>)")

    harm = commands.add_parser(
        "evaluate", help="does a model do harm to what the CNN sees? (real faces, talking head)"
    )
    harm.add_argument(
        "--model", action="append", help="model version (repeatable; default: the default and "
        "the shipped temporal GRU)",
    )  # fmt: skip
    faces = commands.add_parser("real-faces", help="build the labelled real-face test set")
    faces.add_argument("--out", type=Path, required=True, help="folder to write it to")

    evaluate = commands.add_parser("evaluate-temporal", help="the model card's figures, again")
    evaluate.add_argument("--model", default=None, help="a shipped temporal model version")

    fetch = commands.add_parser("fetch", help="fetch and verify the pinned model weights")
    fetch.add_argument("--samples", type=Path, help="also copy the sample videos into this folder")

    server = commands.add_parser("server", help="run a local Prefect server and its UI")
    server.add_argument("--host", default="127.0.0.1")
    server.add_argument("--port", type=int, default=4200)
    server.add_argument(
        "--database-url", help="the server's database, e.g. postgresql+asyncpg://user:pw@host/db"
        " (default: Prefect's SQLite file, ~/.prefect/prefect.db)",
    )  # fmt: skip
    server.add_argument(
        "--retention-days", type=float, default=30,
        help="delete flow runs (with their task runs, logs and artifacts) that ended this "
        "many days ago; 0 keeps them all (default 30)",
    )  # fmt: skip

    compact = commands.add_parser(
        "compact", help="rewrite the lake's tables into few large files, each video's rows "
        "together; checkpoint their logs, vacuum old files",
    )  # fmt: skip
    compact.add_argument("--lake", required=True, help="lake folder or URL")
    compact.add_argument(
        "--retention-hours", type=float, help="vacuum files that left a table this long ago "
        "(default: EMOTRACK_VACUUM_RETENTION_HOURS, 168)",
    )  # fmt: skip

    migrate = commands.add_parser(
        "migrate", help="convert a lake written by emotrack 0.1.0 into Delta tables, in place"
    )
    migrate.add_argument("--lake", required=True, help="lake folder or URL")

    serve = commands.add_parser(
        "serve", help="register the nightly deployment with a schedule and serve its runs"
    )
    serve.add_argument("--source", required=True, help="folder of videos or URL")
    serve.add_argument("--lake", required=True, help="lake folder or URL")
    serve.add_argument("--cron", help='schedule, e.g. "0 2 * * *" (none: on demand only)')
    serve.add_argument("--name", default="nightly", help="deployment name")
    serve.add_argument("--fps", type=float, default=5.0)
    _add_detector_option(serve)
    _add_inference_options(serve)

    report = commands.add_parser("report", help="print what the lake holds, or write HTML pages")
    report.add_argument("--lake", required=True, help="lake folder or URL")
    report.add_argument("--html", type=Path, help="write the HTML report into this folder")

    sql = commands.add_parser("sql", help="run a DuckDB query; tables are views by name")
    sql.add_argument("query", help="for example: SELECT emotion, count(*) FROM tracks GROUP BY 1")
    sql.add_argument("--lake", required=True, help="lake folder or URL")

    args = parser.parse_args(argv)
    _console(args.verbose)
    if args.command == "sql":
        return _sql(location(args.lake), args.query)
    if args.command == "run":
        return _run(args)
    if args.command == "rescore":
        return _rescore(args)
    if args.command == "server":
        return _server(args.host, args.port, args.database_url, args.retention_days)
    if args.command == "compact":
        return _compact(location(args.lake), args.retention_hours)
    if args.command == "migrate":
        return _migrate(location(args.lake))
    if args.command == "serve":
        return _serve(args)
    if args.command == "train":
        return _train_labelled(args)
    if args.command == "models":
        return _models(location(args.lake))
    if args.command == "import-model":
        return _import_model(args.folder, location(args.lake))
    if args.command == "train-temporal":
        return _train(args.preset, args.out)
    if args.command == "evaluate":
        return _no_harm(args.model)
    if args.command == "real-faces":
        return _real_faces(args.out)
    if args.command == "evaluate-temporal":
        return _evaluate(args.model)
    if args.command == "fetch":
        return _fetch(args.samples)
    if args.html:
        return _html_report(location(args.lake), args.html)
    return _report(location(args.lake))


def _html_report(lake: str, out: Path) -> int:
    from emotrack.html_report import export_report
    from emotrack.lake import Lake

    print(f"report: {export_report(Lake(lake), out)}")
    return 0


def _compact(lake: str, retention_hours: float | None) -> int:
    from emotrack.lake import Lake

    if not _reachable(lake):
        return 2
    settings = Settings()
    hours = settings.vacuum_retention_hours if retention_hours is None else retention_hours
    store = Lake(lake)
    with store.writing(ttl_s=settings.lock_ttl_s):
        done = store.compact(sort=True, retention_hours=hours, target_mb=settings.target_file_mb)
    for table, figures in done.items():
        print(
            f"{table:10} {figures['files_removed']:5} file(s) -> {figures['files_added']}, "
            f"{figures['vacuumed']} old file(s) vacuumed"
        )
    return 0


def _migrate(lake: str) -> int:
    from emotrack.lake import Lake

    if not _reachable(lake):
        return 2
    with Lake(lake).writing(ttl_s=Settings().lock_ttl_s) as rows:
        pass
    print(f"converted to Delta tables: {rows}" if rows else f"{lake}: nothing to convert")
    return 0


def _add_inference_options(command: argparse.ArgumentParser) -> None:
    from emotrack.inference import DEFAULT_MODEL

    command.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        help=f"model version that writes tracks (default {DEFAULT_MODEL}; see README)",
    )
    command.add_argument("--dask-address", help="scheduler of an existing Dask cluster")
    command.add_argument("--workers", type=int, default=2, help="local Dask worker processes")


def _add_detector_option(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--detector",
        help="face detector: blazeface-short (default), blazeface-full, blazeface-back or "
        "mtcnn; also EMOTRACK_DETECTOR",
    )


def _known_detector(name: str | None) -> bool:
    """Whether the face detector `name` exists (None: the settings' own); says why not."""
    from pydantic import ValidationError

    try:
        if name:
            Settings(detector=name)
    except ValidationError as error:
        print(f"emotrack: {error.errors()[0]['msg']}", file=sys.stderr)
        return False
    return True


def _console(verbose: bool) -> None:
    """Quiet by default: the console shows warnings, errors and emotrack's own lines; the
    Prefect API still receives every INFO line of a run. Verbose brings everything back, in
    this process and the Dask workers it starts (they inherit the environment)."""
    if verbose:
        os.environ["EMOTRACK_LOG_LEVEL"] = "DEBUG"
    if os.environ.get("EMOTRACK_LOG_LEVEL", "").upper() == "DEBUG":
        os.environ["PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL"] = "DEBUG"
    else:
        os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")


def _quiet_prefect() -> None:
    # Offline archives are the norm: do not let Prefect's server try to send telemetry.
    os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
    os.environ.setdefault("DO_NOT_TRACK", "1")  # nor its client (and no banner about it)


def _run(args: argparse.Namespace) -> int:
    source, lake = location(args.source), location(args.lake)
    if not _reachable(source, lake):
        return 2
    if not _known_model(args.model, lake) or not _known_detector(args.detector):
        return 2
    started = time.monotonic()
    if args.no_geometry:
        os.environ["EMOTRACK_GEOMETRY"] = "0"  # the flow's Settings, and the workers', read it
    _quiet_prefect()
    signal.signal(signal.SIGTERM, _stop)
    from emotrack.server import run_server
    from emotrack.storage import StorageError
    from flows.nightly import nightly

    try:
        with run_server():  # ends with this process, even after SIGKILL
            counts = nightly(
                source=source,
                lake=lake,
                fps=args.fps,
                model=args.model,
                dask_address=args.dask_address,
                workers=args.workers,
                reprocess=args.reprocess,
                detector=args.detector,
                rehash=args.rehash,
            )
    except StorageError as error:  # permanent: access denied, a bucket gone mid-run
        print(f"emotrack: the run stopped: {error}", file=sys.stderr)
        return 1
    print(
        f"\nprocessed {counts.get('ok', 0)} video(s), {counts.get('failed', 0)} unreadable, "
        f"{counts.get('skipped', 0)} already complete, {counts.get('quarantined', 0)} "
        f"quarantined (unreadable earlier, unchanged); the run took "
        f"{time.monotonic() - started:.1f} s in all, start-up included"
    )
    return _report(lake)


def _reachable(source: str, lake: str | None = None) -> bool:
    """Whether the source folder exists, and a bucket named by the source or the lake can be
    read; says why not (before any work starts)."""
    from emotrack.storage import ObjectStore, StorageError

    if not is_url(source) and not Path(source).is_dir():
        print(f"emotrack: {source} is not a folder", file=sys.stderr)
        return False
    try:
        for url in (u for u in (source, lake) if u and is_url(u)):
            ObjectStore(url).check()
    except StorageError as error:
        print(f"emotrack: {error}", file=sys.stderr)
        return False
    return True


def _stop(signum: int, frame: object) -> None:
    """SIGTERM (a timeout, systemctl stop, an eviction) unwinds the run like Ctrl-C: Prefect
    marks the flow run Crashed, the Dask workers, ffmpeg and the temporary server are ended."""
    raise KeyboardInterrupt(f"stopped by signal {signum}")


def _server(host: str, port: int, database_url: str | None, retention_days: float) -> int:
    from emotrack.server import server_environment

    _quiet_prefect()
    os.environ.update(server_environment(database_url, retention_days))
    prefect = str(Path(sys.executable).with_name("prefect"))
    print(f"Prefect UI: http://{host}:{port}  (API: http://{host}:{port}/api)", flush=True)
    os.execv(prefect, [prefect, "server", "start", "--host", host, "--port", str(port)])


def _serve(args: argparse.Namespace) -> int:
    if not os.environ.get("PREFECT_API_URL"):
        print(
            "emotrack: schedules need a running Prefect server. Start one with "
            "'emotrack server', then: export PREFECT_API_URL=http://127.0.0.1:4200/api",
            file=sys.stderr,
        )
        return 2
    source, lake = location(args.source), location(args.lake)
    if not _reachable(source, lake):
        return 2
    if not _known_model(args.model, lake) or not _known_detector(args.detector):
        return 2
    from flows.nightly import nightly

    nightly.serve(
        name=args.name,
        cron=args.cron,
        parameters={
            "source": source,
            "lake": lake,
            "fps": args.fps,
            "model": args.model,
            "dask_address": args.dask_address,
            "workers": args.workers,
            "detector": args.detector,
        },
        tags=["emotrack"],
        description="Process new or changed videos of the archive into the lake.",
        global_limit=1,  # never two runs of this deployment at once
    )
    return 0


def _train_labelled(args: argparse.Namespace) -> int:
    if is_url(args.lake):
        print("emotrack: train needs a lake on local disk (its model registry)", file=sys.stderr)
        return 2
    args.lake = Path(args.lake)
    for folder in (args.annotations, args.videos):
        if not folder.is_dir():
            print(f"emotrack: {folder} is not a folder", file=sys.stderr)
            return 2
    if args.name in _model_names(args.lake):
        print(f"emotrack: a model named {args.name!r} exists already", file=sys.stderr)
        return 2
    if not _known_detector(args.detector):
        return 2
    from models.temporal_gru import TemporalConfig

    features = [f.strip() for f in args.features.split(",") if f.strip()]
    try:
        TemporalConfig(features=tuple(features))
    except ValueError as error:
        print(f"emotrack: --features: {error}", file=sys.stderr)
        return 2
    _quiet_prefect()
    signal.signal(signal.SIGTERM, _stop)
    from emotrack.server import run_server
    from flows.train import train

    with run_server():
        validation = train(
            annotations=str(args.annotations.resolve()),
            videos=str(args.videos.resolve()),
            lake=str(args.lake.resolve()),
            name=args.name,
            fps=args.fps,
            epochs=args.epochs,
            seed=args.seed,
            dask_address=args.dask_address,
            workers=args.workers,
            detector=args.detector,
            features=features,
        )
    print(f"\nvalidation ({validation['model']['expression_frames']} labelled frames):")
    print(f"  {'':22} accuracy  macro-F1  CCC valence  CCC arousal")
    rows = [("model", args.name), ("cnn_features_alone", "same, CNN features alone"),
            ("cnn", "per-frame CNN")]  # fmt: skip
    for who, label in (row for row in rows if row[0] in validation):
        f = validation[who]
        figures = [f.get(k, "-") for k in ("accuracy", "macro_f1", "ccc_valence", "ccc_arousal")]
        print(f"  {label:22} " + "  ".join(f"{v!s:>9}" for v in figures))
    print(f"\nmodel, metrics, confusion matrices and card: {args.lake / '_models' / args.name}")
    folder, name = shlex.quote(str(args.lake / "_models" / args.name)), shlex.quote(args.name)
    print(f"on another lake: emotrack import-model {folder} --lake OTHER_LAKE, then --model "
          f"{name} there")  # fmt: skip
    print(f"use it with: emotrack rescore --lake {shlex.quote(str(args.lake))} --model {name}")
    return 0


def _import_model(folder: Path, lake: str) -> int:
    from emotrack.registry import import_model

    if is_url(lake):
        print("emotrack: a lake's model registry is on local disk only", file=sys.stderr)
        return 2
    try:
        name = import_model(folder, Path(lake))
    except (FileExistsError, FileNotFoundError) as error:
        print(f"emotrack: {error}", file=sys.stderr)
        return 2
    print(f"imported {name} into {Path(lake) / '_models' / name}")
    print(f"use it with: emotrack rescore --lake {shlex.quote(lake)} --model {shlex.quote(name)}")
    return 0


def _model_names(lake: Path | str) -> list[str]:
    from emotrack.inference import known_models

    return known_models(lake)


def _models(lake: str) -> int:
    from emotrack.inference import known_models
    from emotrack.registry import registered

    trained = {entry["name"]: entry for entry in registered(lake)}
    print(f"{'macro-F1':>8} {'CCC V':>6} {'CCC A':>6}  model (where)")
    for name in known_models(lake):
        if name in trained:
            f = trained[name]["validation"]["model"]
            figures = [f.get(k, "-") for k in ("macro_f1", "ccc_valence", "ccc_arousal")]
            where = f"trained into this lake: {Path(lake) / '_models' / name}"
        else:
            figures, where = ["-", "-", "-"], "shipped with emotrack"
        print(f"{figures[0]!s:>8} {figures[1]!s:>6} {figures[2]!s:>6}  {name} ({where})")
    return 0


def _no_harm(versions: list[str] | None) -> int:
    from emotrack.inference import DEFAULT_MODEL
    from emotrack.training.no_harm import evaluate_versions, table
    from models.temporal_gru import TemporalConfig

    versions = versions or [DEFAULT_MODEL, TemporalConfig().version]
    results = evaluate_versions(versions, Settings().cache_dir)
    print(table(results))
    for version in versions:
        failed = [check for check, ok in results[version]["passes"].items() if not ok]
        verdict = "passes every check" if not failed else f"fails: {', '.join(failed)}"
        print(f"{version}: {verdict}")
    return 0


def _real_faces(out: Path) -> int:
    from emotrack.training.real_faces import build_real_faces

    video = build_real_faces(out, Settings().cache_dir)
    print(
        f"video: {video}\nannotations: {out / 'annotations'}\nprovenance: {out / 'PROVENANCE.md'}"
    )
    return 0


def _known_model(version: str, lake: str) -> bool:
    """Whether `version` can score features in `lake`; says which can if not (before any
    work starts)."""
    from emotrack.inference import known_models

    known = known_models(lake)
    if version in known:
        return True
    print(f"emotrack: unknown model {version!r}; known: {known}", file=sys.stderr)
    return False


def _rescore(args: argparse.Namespace) -> int:
    lake = location(args.lake)
    if not _reachable(lake) or not _known_model(args.model, lake):
        return 2
    _quiet_prefect()
    from flows.rescore import rescore

    counts = rescore(
        lake=lake,
        model=args.model,
        keep_versions=args.keep_versions,
        dask_address=args.dask_address,
        workers=args.workers,
    )
    print(f"\nrescored {counts['rescored']} video(s) with {args.model}")
    return _report(lake)


def _train(preset: str, out: Path | None) -> int:
    from emotrack.training.train_temporal import train_and_save

    folder = train_and_save(preset, out)
    print(f"weights, config, metrics and model card in {folder}")
    print((folder / "MODEL_CARD.md").read_text())
    return 0


def _evaluate(version: str | None) -> int:
    import json

    from emotrack.inference import DEFAULT_MODEL
    from emotrack.training.evaluate_temporal import evaluate_again

    print(json.dumps(evaluate_again(version or DEFAULT_MODEL), indent=2))
    return 0


def _fetch(samples: Path | None) -> int:
    from emotrack.assets import FACE_LANDMARKER, expression_cnn_path, fetch_asset, fetch_samples

    settings = Settings()
    print(f"expression CNN: {expression_cnn_path(settings.cache_dir)} (SHA-256 verified)")
    landmarker = fetch_asset(FACE_LANDMARKER, settings.cache_dir)
    print(f"face landmarker: {landmarker} (SHA-256 verified)")
    if samples is not None:
        for path in fetch_samples(settings.cache_dir, samples):
            print(f"sample video: {path} (SHA-256 verified)")
    return 0


def _sql(lake: str, query: str) -> int:
    from emotrack.lake import Lake, NotALake

    if not _reachable(lake):
        return 2
    try:
        with Lake(lake).connect() as con:
            con.sql(query).show(max_width=200)
    except NotALake as error:
        print(f"emotrack: {error}", file=sys.stderr)
        return 2
    return 0


def _report(lake: str) -> int:
    from emotrack.lake import NotALake
    from emotrack.report import describe_lake

    try:
        print(describe_lake(lake))
    except NotALake as error:
        print(f"emotrack: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
