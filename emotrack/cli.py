"""The `emotrack` command line: the parser and the dispatch to emotrack.commands. Heavy
imports (TensorFlow, Prefect) happen only inside the commands."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from emotrack import __version__, commands
from emotrack.launch import configure_prefect

COMMANDS = {
    "run": commands.run,
    "rescore": commands.rescore,
    "train": commands.train_labelled,
    "models": commands.list_models,
    "import-model": commands.import_model,
    "train-temporal": commands.train_temporal,
    "evaluate": commands.no_harm,
    "real-faces": commands.real_faces,
    "identity-set": commands.identity_set,
    "evaluate-temporal": commands.evaluate_temporal,
    "fetch": commands.fetch,
    "server": commands.server,
    "compact": commands.compact,
    "forget": commands.forget,
    "people": commands.people,
    "migrate": commands.migrate,
    "serve": commands.serve,
    "report": commands.report,
    "sql": commands.sql,
    "export": commands.export,
}


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    settings = commands.settings_from(args)
    if settings is None:
        return 2
    try:
        configure_prefect(settings)  # before anything imports Prefect
    except ValueError as error:  # credentials that cannot be read
        print(f"emotrack: {error}", file=sys.stderr)
        return 2
    return COMMANDS[args.command](args, settings)


def build_parser() -> argparse.ArgumentParser:
    """The `emotrack` command line: every command, its arguments and their help."""
    parser = argparse.ArgumentParser(
        prog="emotrack", description="Video archives -> per-frame facial-emotion Parquet tables."
    )
    parser.add_argument("--version", action="version", version=f"emotrack {__version__}")
    parser.add_argument(
        "-v",
        "--verbose",
        action="store_true",
        help="show every log line (Prefect, Dask, TensorFlow's runtime) on the console; also "
        "EMOTRACK_LOG_LEVEL=DEBUG",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    run = commands.add_parser("run", help="process every video under SOURCE into the lake")
    run.add_argument(
        "source",
        help="folder of videos, or an object-storage URL such as s3://bucket/prefix "
        "(searched recursively)",
    )
    run.add_argument(
        "--lake", required=True, help="lake folder (created if missing) or URL (s3://bucket/prefix)"
    )
    run.add_argument("--fps", type=float, help="frames analysed per second (default 5)")
    _add_detector_option(run)
    run.add_argument(
        "--reprocess",
        action="store_true",
        help="process every video again, even complete or quarantined ones",
    )
    _add_geometry_option(run)
    _add_store_option(run)
    run.add_argument(
        "--rehash",
        action="store_true",
        help="read every local file again to find its content, instead of trusting an "
        "unchanged size, modification time and inode",
    )
    _add_budget_options(run)
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
    labelled.add_argument("--fps", type=float, help="frames analysed per second (default 5)")
    labelled.add_argument("--epochs", type=int, default=30)
    labelled.add_argument("--seed", type=int, default=7)
    labelled.add_argument(
        "--features",
        default="cnn",
        help="what the model reads per frame: cnn, plus "
        "blendshapes and/or pose (comma-separated, e.g. cnn,blendshapes,pose); the card then "
        "gives the gain against the CNN's features alone",
    )
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
    train.add_argument(
        "--out",
        type=Path,
        required=True,
        help="folder to write to (the shipped model: models/weights/<version> of a checkout)",
    )

    harm = commands.add_parser(
        "evaluate", help="does a model do harm to what the CNN sees? (real faces, talking head)"
    )
    harm.add_argument(
        "--model",
        action="append",
        help="model version (repeatable; default: the default and the shipped temporal GRU)",
    )
    faces = commands.add_parser("real-faces", help="build the labelled real-face test set")
    faces.add_argument("--out", type=Path, required=True, help="folder to write it to")
    people = commands.add_parser("identity-set", help="build the identity test set (who is who)")
    people.add_argument("--out", type=Path, required=True, help="folder to write it to")

    evaluate = commands.add_parser("evaluate-temporal", help="the model card's figures, again")
    evaluate.add_argument("--model", default=None, help="a shipped temporal model version")

    fetch = commands.add_parser("fetch", help="fetch and verify the pinned model weights")
    fetch.add_argument("--samples", type=Path, help="also copy the sample videos into this folder")

    server = commands.add_parser("server", help="run a local Prefect server and its UI")
    server.add_argument("--host", default="127.0.0.1")
    server.add_argument("--port", type=int, default=4200)
    server.add_argument(
        "--database-url",
        help="the server's database, e.g. postgresql+asyncpg://user:pw@host/db"
        " (default: Prefect's SQLite file, ~/.prefect/prefect.db)",
    )
    server.add_argument(
        "--retention-days",
        type=float,
        default=30,
        help="delete flow runs (with their task runs, logs and artifacts) that ended this "
        "many days ago; 0 keeps them all (default 30)",
    )
    server.add_argument(
        "--auth-file",
        type=Path,
        help="a file whose first line is user:password: the API and the UI then ask for "
        "them (clients: EMOTRACK_API_AUTH_FILE=FILE)",
    )
    server.add_argument(
        "--insecure",
        action="store_true",
        help="listen on a non-loopback address without --auth-file (anyone who reaches it "
        "can start, cancel and delete runs)",
    )
    server.add_argument(
        "--public-url",
        help="where browsers reach the server, behind a proxy (e.g. https://prefect.example.org);"
        " default http://HOST:PORT",
    )

    compact = commands.add_parser(
        "compact",
        help="rewrite the lake's tables into few large files, each video's rows "
        "together; checkpoint their logs, vacuum old files",
    )
    compact.add_argument("--lake", required=True, help="lake folder or URL")
    compact.add_argument(
        "--retention-hours",
        type=float,
        help="vacuum files that left a table this long ago "
        "(default: EMOTRACK_VACUUM_RETENTION_HOURS, 168)",
    )

    people = commands.add_parser(
        "people",
        help="the people of a lake (--people runs): list them, name, merge or split them",
    )
    people.add_argument("--lake", required=True, help="lake folder or URL")
    actions = people.add_subparsers(dest="action")
    name = actions.add_parser("name", help="give a person a name")
    name.add_argument("person", help="person_id (p12)")
    name.add_argument("name", help="the name")
    merge = actions.add_parser("merge", help="two people are one (the older id stays)")
    merge.add_argument("person", help="person_id")
    merge.add_argument("other", help="person_id")
    split = actions.add_parser("split", help="some tracks of a person are someone else")
    split.add_argument("person", help="person_id")
    moved = split.add_mutually_exclusive_group(required=True)
    moved.add_argument("--video-id", help="their tracks in this video")
    moved.add_argument(
        "--track", action="append", metavar="VIDEO_ID:TRACK_ID", help="one track; repeatable"
    )

    forget = commands.add_parser(
        "forget",
        help="delete videos from the lake for good (rows, pages, thumbnails, old versions); "
        "their content is never analysed again",
    )
    forget.add_argument("--lake", required=True, help="lake folder or URL")
    which = forget.add_mutually_exclusive_group(required=True)
    which.add_argument(
        "--video-id", action="append", help="a video's content id (video_id); repeat for more"
    )
    which.add_argument(
        "--source", help="a file, a folder or a URL prefix: every video found under it"
    )
    which.add_argument(
        "--person",
        help="a person (person_id, `emotrack people`): their face tracks in every video, "
        "the rest of each video kept",
    )
    which.add_argument(
        "--older-than",
        type=float,
        metavar="DAYS",
        help="every video processed (and every failure recorded) more than DAYS ago",
    )

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
    serve.add_argument("--fps", type=float, help="frames analysed per second (default 5)")
    serve.add_argument(
        "--retain-days",
        type=float,
        help="each run first forgets the videos processed more than this many days ago "
        "(emotrack forget --older-than; default: kept)",
    )
    serve.add_argument(
        "--maintenance-cron",
        help="also serve the lake's maintenance (retention, compaction, vacuum) as a second "
        'deployment on this schedule, e.g. "0 5 * * 0"; the nightly then leaves it to it',
    )
    serve.add_argument(
        "--notify",
        metavar="URL",
        help="post to this webhook when a nightly run fails or crashes (kept in a Prefect "
        "Secret block; never printed)",
    )
    serve.add_argument(
        "--notify-failed-videos",
        type=int,
        metavar="N",
        help="with --notify: post also when a run ends with more than N failed videos",
    )
    _add_geometry_option(serve)
    _add_store_option(serve)
    _add_detector_option(serve)
    _add_budget_options(serve)
    _add_inference_options(serve)

    report = commands.add_parser("report", help="print what the lake holds, or write HTML pages")
    report.add_argument("--lake", required=True, help="lake folder or URL")
    report.add_argument("--html", type=Path, help="write the HTML report into this folder")

    sql = commands.add_parser("sql", help="run a DuckDB query; tables are views by name")
    sql.add_argument("query", help="for example: SELECT emotion, count(*) FROM tracks GROUP BY 1")
    sql.add_argument("--lake", required=True, help="lake folder or URL")

    export = commands.add_parser(
        "export", help="write one CSV per video: OpenFace 2's layout, or our own columns"
    )
    export.add_argument("--lake", required=True, help="lake folder or URL")
    export.add_argument("--format", choices=["openface", "csv"], default="openface")
    export.add_argument("--out", type=Path, required=True, help="folder to write the CSVs to")
    export.add_argument(
        "--video-id", action="append", help="only this video (repeatable; default: all)"
    )
    export.add_argument(
        "--model",
        help="the model version's rows (default: the default model's, if the lake holds them)",
    )

    return parser


def _add_budget_options(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--max-videos",
        type=_positive_int,
        metavar="N",
        help="send at most N videos to analysis; the rest wait for the next run, after "
        "the videos that arrive meanwhile (a first run over a big archive, over nights)",
    )
    command.add_argument(
        "--time-budget",
        type=duration_s,
        metavar="DURATION",
        help="send no more videos once this long has passed since the run started, e.g. "
        "6h, 90m or 3600s; the videos in flight finish, the rest wait for the next run",
    )


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, not {value}")
    return value


def duration_s(text: str) -> float:
    """Seconds in a duration such as 6h, 90m, 45s, 1.5h or 3600 (seconds)."""
    units = {"h": 3600.0, "m": 60.0, "s": 1.0}
    number, unit = (text[:-1], units[text[-1]]) if text[-1:] in units else (text, 1.0)
    try:
        seconds = float(number) * unit
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not a duration (for example 6h, 90m, 3600s)"
        ) from None
    if not seconds > 0:
        raise argparse.ArgumentTypeError(f"{text!r}: a duration must be more than 0")
    return seconds


def _add_inference_options(command: argparse.ArgumentParser) -> None:
    from emotrack.inference import DEFAULT_MODEL

    command.add_argument(
        "--model",
        default=DEFAULT_MODEL,
        help=f"model version that writes tracks (default {DEFAULT_MODEL}; see docs/models.md)",
    )
    command.add_argument("--dask-address", help="scheduler of an existing Dask cluster")
    command.add_argument("--workers", type=int, default=2, help="local Dask worker processes")


def _add_detector_option(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--detector",
        help="face detector: blazeface-short (default), blazeface-full, blazeface-back or "
        "mtcnn; also EMOTRACK_DETECTOR",
    )


def _add_store_option(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--people",
        action="store_true",
        default=None,
        help="recognise people across videos and nights: track identities stored, tracks "
        "grouped into people (biometric processing: opt in); also EMOTRACK_PEOPLE=1",
    )
    command.add_argument(
        "--store",
        choices=["full", "geometry", "labels"],
        help="what the lake keeps of each face: full (default: landmarks, embeddings, "
        "thumbnails too), geometry (pose and blendshapes, no landmarks, embeddings or "
        "thumbnails) or labels (boxes, expressions, valence/arousal, episodes); also "
        "EMOTRACK_STORE",
    )


def _add_geometry_option(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--no-geometry",
        dest="geometry",
        action="store_false",
        default=None,
        help="skip the face landmarker (landmarks, head pose, blendshapes stay null; the CNN "
        "sees unaligned crops): faster; also EMOTRACK_GEOMETRY=0",
    )
    command.add_argument(
        "--detect-every-frame",
        action="store_true",
        help="run the face detector on every analysed frame instead of following faces by "
        "their landmarks between detections (slower; crowded footage); also "
        "EMOTRACK_DETECT_EVERY_S=0",
    )


if __name__ == "__main__":
    sys.exit(main())
