"""The bodies of the `emotrack` commands (emotrack.cli parses and dispatches): each takes the
parsed arguments and the Settings built once for the command (settings_from), checks what
it can before any work starts, and returns the exit code. Flows are started through
emotrack.launch. Heavy imports (TensorFlow, Prefect) happen only inside the commands."""

from __future__ import annotations

import argparse
import os
import shlex
import sys
from pathlib import Path
from typing import Any

from emotrack.settings import Settings
from emotrack.storage import is_url, location

Args = argparse.Namespace


def settings_from(args: Args) -> Settings | None:
    """The command's Settings: those of the environment with its flags over them (-v,
    --fps, --detector, --no-geometry, --detect-every-frame); None, after saying why, when a
    flag is not valid."""
    from pydantic import ValidationError

    options = {
        "log_level": "DEBUG" if args.verbose else None,
        "analysis_fps": getattr(args, "fps", None),
        "detector": getattr(args, "detector", None),
        "geometry": getattr(args, "geometry", None),
        "detect_every_s": 0.0 if getattr(args, "detect_every_frame", False) else None,
        "store": getattr(args, "store", None),
        "people": getattr(args, "people", None),
    }
    try:
        return Settings().with_run_options(**options)
    except ValidationError as error:
        problem = error.errors()[0]
        print(f"emotrack: {'.'.join(map(str, problem['loc']))}: {problem['msg']}", file=sys.stderr)
        return None


# -- flows ---------------------------------------------------------------------------------


def run(args: Args, settings: Settings) -> int:
    """`emotrack run`: the nightly flow over SOURCE, then what the lake holds."""
    import time

    source, lake = location(args.source), location(args.lake)
    if not _reachable(source, lake) or not _known_model(args.model, lake):
        return 2
    if not _cnn_ready(settings):
        return 2
    started = time.monotonic()
    from emotrack.launch import run_flow

    code, counts = run_flow(
        "emotrack.flows.nightly:nightly",
        settings,
        source=source,
        lake=lake,
        model=args.model,
        dask_address=args.dask_address,
        workers=args.workers,
        reprocess=args.reprocess,
        rehash=args.rehash,
        max_videos=args.max_videos,
        time_budget_s=args.time_budget,
    )
    if code:
        return code
    left = f"; {counts['left']} left for the next run (its budget)" if counts.get("left") else ""
    print(
        f"\nprocessed {counts.get('ok', 0)} video(s), {counts.get('failed', 0)} unreadable, "
        f"{counts.get('skipped', 0)} already complete, {counts.get('quarantined', 0)} "
        f"quarantined (unreadable earlier, unchanged){left}; the run took "
        f"{time.monotonic() - started:.1f} s in all, start-up included"
    )
    return _describe(lake)


def rescore(args: Args, settings: Settings) -> int:
    """`emotrack rescore`: tracks, episodes and summaries again from stored features."""
    lake = location(args.lake)
    if not _reachable(lake) or not _known_model(args.model, lake):
        return 2
    from emotrack.launch import run_flow

    code, counts = run_flow(
        "emotrack.flows.rescore:rescore",
        settings,
        lake=lake,
        model=args.model,
        keep_versions=args.keep_versions,
        dask_address=args.dask_address,
        workers=args.workers,
    )
    if code:
        return code
    print(f"\nrescored {counts['rescored']} video(s) with {args.model}")
    if counts.get("without_features"):
        print(
            f"not rescored: {counts['without_features']} video(s) stored with --store labels "
            "(no features kept); their tracks stay as they were"
        )
    return _describe(lake)


def train_labelled(args: Args, settings: Settings) -> int:
    """`emotrack train`: a temporal model trained on labelled video, into the lake."""
    if is_url(args.lake):
        print("emotrack: train needs a lake on local disk (its model registry)", file=sys.stderr)
        return 2
    lake = Path(args.lake).resolve()
    for folder in (args.annotations, args.videos):
        if not folder.is_dir():
            print(f"emotrack: {folder} is not a folder", file=sys.stderr)
            return 2
    from emotrack.inference import known_models
    from emotrack.models.temporal_gru import TemporalConfig

    if args.name in known_models(lake):
        print(f"emotrack: a model named {args.name!r} exists already", file=sys.stderr)
        return 2
    features = [f.strip() for f in args.features.split(",") if f.strip()]
    try:
        TemporalConfig(features=tuple(features))
    except ValueError as error:
        print(f"emotrack: --features: {error}", file=sys.stderr)
        return 2
    from emotrack.launch import run_flow

    code, validation = run_flow(
        "emotrack.flows.train:train",
        settings,
        annotations=str(args.annotations.resolve()),
        videos=str(args.videos.resolve()),
        lake=str(lake),
        name=args.name,
        epochs=args.epochs,
        seed=args.seed,
        dask_address=args.dask_address,
        workers=args.workers,
        features=features,
    )
    if code:
        return code
    print(f"\nvalidation ({validation['model']['expression_frames']} labelled frames):")
    print(f"  {'':22} accuracy  macro-F1  CCC valence  CCC arousal")
    rows = [
        ("model", args.name),
        ("cnn_features_alone", "same, CNN features alone"),
        ("cnn", "per-frame CNN"),
    ]
    for who, label in (row for row in rows if row[0] in validation):
        f = validation[who]
        figures = [f.get(k, "-") for k in ("accuracy", "macro_f1", "ccc_valence", "ccc_arousal")]
        print(f"  {label:22} " + "  ".join(f"{v!s:>9}" for v in figures))
    print(f"\nmodel, metrics, confusion matrices and card: {lake / '_models' / args.name}")
    folder, name = shlex.quote(str(lake / "_models" / args.name)), shlex.quote(args.name)
    print(
        f"on another lake: emotrack import-model {folder} --lake OTHER_LAKE, then --model "
        f"{name} there"
    )
    print(f"use it with: emotrack rescore --lake {shlex.quote(str(lake))} --model {name}")
    return 0


def serve(args: Args, settings: Settings) -> int:
    """`emotrack serve`: the nightly deployment, on a schedule, against a running server."""
    if not os.environ.get("PREFECT_API_URL"):
        print(
            "emotrack: schedules need a running Prefect server. Start one with "
            "'emotrack server', then: export PREFECT_API_URL=http://127.0.0.1:4200/api",
            file=sys.stderr,
        )
        return 2
    if args.notify_failed_videos is not None and not args.notify:
        print("emotrack: --notify-failed-videos needs --notify URL", file=sys.stderr)
        return 2
    source, lake = location(args.source), location(args.lake)
    if not _reachable(source, lake) or not _known_model(args.model, lake):
        return 2
    if not _cnn_ready(settings):
        return 2
    from emotrack.launch import flow_session, unauthorized

    try:
        with flow_session(settings, "emotrack.flows.nightly:nightly") as nightly:
            _serve(nightly, args, settings, source, lake)
    except Exception as error:
        if not unauthorized(error):
            raise
        return 1
    return 0


def _cnn_ready(settings: Settings) -> bool:
    """Whether the expression CNN's weights are there (fetched now if need be) and its LiteRT
    file can be loaded or made; else False, having said in one line what to do."""
    from emotrack.assets import expression_cnn_path
    from emotrack.errors import AssetError
    from emotrack.models.expression_cnn import lite_file_problem
    from emotrack.models.tensorflow_runtime import nvidia_driver_loaded

    try:
        weights = expression_cnn_path(settings.cache_dir, settings.expression_model_path)
    except (AssetError, OSError) as error:
        print(f"emotrack: the expression CNN's weights: {error}", file=sys.stderr)
        return False
    problem = None if nvidia_driver_loaded() else lite_file_problem(weights)
    if problem:
        print(f"emotrack: {problem}", file=sys.stderr)
    return problem is None


def _serve(nightly: Any, args: Args, settings: Settings, source: str, lake: str) -> None:
    """The nightly deployment (and the maintenance one, with --maintenance-cron), served
    until stopped: schedules and parameters; with --notify, the automation that posts to
    the webhook when a nightly goes wrong."""
    from prefect import serve as serve_deployments

    from emotrack.flows.maintenance import maintenance

    deployments = [
        nightly.to_deployment(
            name=args.name,
            cron=args.cron,
            parameters=_nightly_parameters(args, settings, source, lake),
            tags=["emotrack"],
            description="Process new or changed videos of the archive into the lake.",
            concurrency_limit=1,  # never two runs of this deployment at once
        )
    ]
    if args.maintenance_cron:
        deployments.append(
            maintenance.to_deployment(
                name=f"{args.name}-maintenance",
                cron=args.maintenance_cron,
                parameters={"lake": lake, "retain_days": args.retain_days},
                tags=["emotrack"],
                description="The lake's retention, compaction and vacuum.",
                concurrency_limit=1,
            )
        )
    if args.notify:
        from emotrack.notify import set_up_notifications

        deployment_id = deployments[0].apply()
        set_up_notifications(args.notify, deployment_id, f"{nightly.name}/{args.name}")
    serve_deployments(*deployments)


def _nightly_parameters(args: Args, settings: Settings, source: str, lake: str) -> dict:
    """The nightly deployment's parameters: the run's options and the serve's."""
    return {
        "source": source,
        "lake": lake,
        "fps": settings.analysis_fps,
        "detector": settings.detector,
        "geometry": settings.geometry,
        "detect_every_s": settings.detect_every_s,
        "model": args.model,
        "dask_address": args.dask_address,
        "workers": args.workers,
        "retain_days": args.retain_days,
        "store": settings.store,
        "people": settings.people,
        "max_videos": args.max_videos,
        "time_budget_s": args.time_budget,
        "maintenance": not args.maintenance_cron,
        "failed_videos_alert": args.notify_failed_videos if args.notify else None,
    }


# -- the lake -----------------------------------------------------------------------------


def compact(args: Args, settings: Settings) -> int:
    """`emotrack compact`: few large files, sorted by video; checkpoint and vacuum."""
    from emotrack.lake import Lake
    from emotrack.tasks.report import compact as compact_lake

    lake = location(args.lake)
    if not _reachable(lake):
        return 2
    store = Lake(lake)
    with store.writing(ttl_s=settings.lock_ttl_s):
        done = compact_lake(store, settings, sort=True, retention_hours=args.retention_hours)
    for table, figures in done.items():
        print(
            f"{table:10} {figures['files_removed']:5} file(s) -> {figures['files_added']}, "
            f"{figures['vacuumed']} old file(s) vacuumed"
        )
    return 0


def forget(args: Args, settings: Settings) -> int:
    """`emotrack forget`: videos deleted from every table and page of the lake, then purged
    from its history (emotrack.forgetting); a forget that was killed is finished first."""
    from emotrack.forgetting import expired, forget_videos, known_files, resolve, resume_forgetting
    from emotrack.lake import Lake

    lake = location(args.lake)
    if not _reachable(lake):
        return 2
    store = Lake(lake)
    with store.writing(ttl_s=settings.lock_ttl_s):
        if resume_forgetting(store) is not None:
            print("finished a forget that was interrupted")
        if args.person is not None:
            return _forget_person(store, args.person)
        if args.older_than is not None:
            targets, reason = expired(store, args.older_than), "retention"
        else:
            prefix = _source_prefix(args.source) if args.source else None
            targets = resolve(known_files(store), args.video_id or (), prefix)
            reason = "request"
        if not targets:  # as `rm -f`: what is not there is forgotten already
            print("nothing to forget: no video or file of the lake matches")
            return 0
        done = forget_videos(store, targets, reason)
    print(
        f"forgot {len(targets.video_ids)} video(s) and {len(targets.uris)} file record(s): "
        f"{sum(done['rows'].values())} rows deleted, {done['report_files']} report files "
        f"deleted or rewritten, {sum(done['vacuumed'].values())} old data files vacuumed; "
        "the tables' history before now is gone (no time travel to it)"
    )
    return 0


def people(args: Args, settings: Settings) -> int:
    """`emotrack people`: the lake's people listed, or one named, two merged, one split;
    each decision is kept through every later grouping (emotrack.people_lake)."""
    from emotrack.lake import Lake
    from emotrack.people_lake import UnknownPerson, merge_people, name_person, split_person

    lake = location(args.lake)
    if not _reachable(lake):
        return 2
    store = Lake(lake)
    threshold = settings.people_threshold
    try:
        with store.writing(ttl_s=settings.lock_ttl_s):
            if args.action == "name":
                name_person(store, args.person, args.name)
                print(f"{args.person} is now called {args.name!r}")
            elif args.action == "merge":
                kept = merge_people(store, args.person, args.other, threshold)
                print(f"merged {args.person} and {args.other} into {kept}")
            elif args.action == "split":
                tracks = _person_tracks(store, args.person, args.video_id, args.track or [])
                fresh = split_person(store, args.person, tracks, threshold)
                print(f"{len(tracks)} track(s) of {args.person} are now {fresh}")
    except (UnknownPerson, ValueError) as error:
        print(f"emotrack: {error}", file=sys.stderr)
        return 2
    print(_people_table(store))
    return 0


def _person_tracks(
    lake: Any, person: str, video_id: str | None, tracks: list[str]
) -> list[tuple[str, int]]:
    """The tracks a split moves: the person's tracks in `video_id`, or `tracks` (V:T)."""
    from emotrack.people_lake import person_tracks

    if video_id is not None:
        return [(v, t) for v, t in person_tracks(lake, person) if v == video_id]
    moved = []
    for given in tracks:
        video, _, track = given.rpartition(":")
        if not video or not track.isdigit():
            raise ValueError(f"--track {given!r}: expected VIDEO_ID:TRACK_ID")
        moved.append((video, int(track)))
    return moved


def _people_table(lake: Any) -> str:
    """The lake's people, a line each."""
    rows = lake.read("people")
    if rows.empty:
        return "no people in this lake (run with --people)"
    lines = [f"{'person':8} {'name':20} {'videos':>6} {'tracks':>6} {'seconds':>8}  seen"]
    for r in rows.itertuples():
        name = r.name if isinstance(r.name, str) else "-"
        lines.append(
            f"{r.person_id:8} {name[:20]:20} {r.videos:6d} {r.tracks:6d} {r.seconds:8.1f}  "
            f"{r.first_seen:%Y-%m-%d} .. {r.last_seen:%Y-%m-%d}"
        )
    return "\n".join(lines)


def _forget_person(lake: Any, person: str) -> int:
    from emotrack.forgetting import forget_person

    done = forget_person(lake, person)
    if done is None:
        print(f"nothing to forget: no person {person} in this lake")
        return 0
    print(
        f"forgot {person}: {sum(done['rows'].values())} rows deleted, "
        f"{done['report_files']} report files deleted or rewritten, "
        f"{sum(done['vacuumed'].values())} old data files vacuumed; their videos' other faces "
        "are kept, and no later analysis of those videos brings them back"
    )
    return 0


def _source_prefix(source: str) -> str:
    """A file, a folder (all under it) or a URL prefix, as the lake records sources."""
    prefix = location(source)
    return prefix + "/" if not is_url(source) and Path(prefix).is_dir() else prefix


def migrate(args: Args, settings: Settings) -> int:
    """`emotrack migrate`: a 0.1.0 lake converted into Delta tables, in place."""
    from emotrack.lake import Lake

    lake = location(args.lake)
    if not _reachable(lake):
        return 2
    with Lake(lake).writing(ttl_s=settings.lock_ttl_s) as rows:
        pass
    print(f"converted to Delta tables: {rows}" if rows else f"{lake}: nothing to convert")
    return 0


def report(args: Args, settings: Settings) -> int:
    """`emotrack report`: what the lake holds, or its HTML pages written to a folder."""
    lake = location(args.lake)
    if args.html is None:
        return _describe(lake)
    from emotrack.html_report import export_report
    from emotrack.lake import Lake

    print(f"report: {export_report(Lake(lake), args.html)}")
    return 0


def export(args: Args, settings: Settings) -> int:
    """`emotrack export`: one CSV per video, in OpenFace 2's layout or our own columns."""
    from emotrack.export import ExportError
    from emotrack.export import export as export_csv
    from emotrack.lake import Lake, NotALake

    lake = location(args.lake)
    if not _reachable(lake):
        return 2
    try:
        done = export_csv(Lake(lake), args.out, args.format, args.video_id, args.model)
    except (ExportError, NotALake) as error:
        print(f"emotrack: {error}", file=sys.stderr)
        return 2
    for exported in done:
        print(f"{exported.path}: {exported.rows} row(s) of {exported.source_uri}")
    print(f"{len(done)} file(s) in {args.out}")
    return 0


def sql(args: Args, settings: Settings) -> int:
    """`emotrack sql`: a DuckDB query over the tables' views."""
    from emotrack.lake import Lake, NotALake

    lake = location(args.lake)
    if not _reachable(lake):
        return 2
    import duckdb

    try:
        with Lake(lake).connect() as con:
            con.sql(args.query).show(max_width=200)
    except NotALake as error:
        print(f"emotrack: {error}", file=sys.stderr)
        return 2
    except duckdb.Error as error:  # the query's own fault: DuckDB's message, no traceback
        print(f"emotrack: the query failed: {error}", file=sys.stderr)
        return 1
    return 0


# -- models --------------------------------------------------------------------------------


def list_models(args: Args, settings: Settings) -> int:
    """`emotrack models`: the models a lake can use, with their validation figures."""
    from emotrack.inference import known_models
    from emotrack.registry import registered

    lake = location(args.lake)
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


def import_model(args: Args, settings: Settings) -> int:
    """`emotrack import-model`: a trained model's folder copied into another lake."""
    from emotrack.registry import import_model as import_folder

    lake = location(args.lake)
    if is_url(lake):
        print("emotrack: a lake's model registry is on local disk only", file=sys.stderr)
        return 2
    try:
        name = import_folder(args.folder, Path(lake))
    except (FileExistsError, FileNotFoundError) as error:
        print(f"emotrack: {error}", file=sys.stderr)
        return 2
    print(f"imported {name} into {Path(lake) / '_models' / name}")
    print(f"use it with: emotrack rescore --lake {shlex.quote(lake)} --model {shlex.quote(name)}")
    return 0


def train_temporal(args: Args, settings: Settings) -> int:
    """`emotrack train-temporal`: the shipped temporal model, trained again on simulation."""
    from emotrack.training.train_temporal import train_and_save

    folder = train_and_save(args.preset, args.out)
    print(f"weights, config, metrics and model card in {folder}")
    print((folder / "MODEL_CARD.md").read_text())
    return 0


def evaluate_temporal(args: Args, settings: Settings) -> int:
    """`emotrack evaluate-temporal`: a shipped temporal model's card figures, again."""
    import json

    from emotrack.models.temporal_gru import TemporalConfig
    from emotrack.training.evaluate_temporal import evaluate_again

    # the shipped GRU: the default model is a rule, with no simulated-training figures
    print(json.dumps(evaluate_again(args.model or TemporalConfig().version), indent=2))
    return 0


def no_harm(args: Args, settings: Settings) -> int:
    """`emotrack evaluate`: the no-harm checks of model versions against the CNN."""
    from emotrack.inference import DEFAULT_MODEL
    from emotrack.models.temporal_gru import TemporalConfig
    from emotrack.scoring import EVIDENCE_V1, SMOOTHED_VERSION
    from emotrack.training.no_harm import evaluate_versions, table

    versions = args.model or [
        DEFAULT_MODEL,
        EVIDENCE_V1,
        SMOOTHED_VERSION,
        TemporalConfig().version,
    ]
    results = evaluate_versions(versions, settings.cache_dir)
    print(table(results))
    print(
        "\nReal faces, per frame (A angry, D disgust, F fear, H happy, S sad, U surprise, "
        "N neutral):"
    )
    for who, figures in results.items():
        recall = ", ".join(f"{e} {r:.0%}" for e, r in figures["real_recall"].items())
        print(f"  {figures['real_labels']}  {who} (recall: {recall})")
    for version in versions:
        failed = [check for check, ok in results[version]["passes"].items() if not ok]
        verdict = "passes every check" if not failed else f"fails: {', '.join(failed)}"
        print(f"{version}: {verdict}")
    return 0


def real_faces(args: Args, settings: Settings) -> int:
    """`emotrack real-faces`: the labelled real-face test set, built from pinned photos."""
    from emotrack.training.real_faces import build_real_faces

    video = build_real_faces(args.out, settings.cache_dir)
    out = args.out
    print(
        f"video: {video}\nannotations: {out / 'annotations'}\nprovenance: {out / 'PROVENANCE.md'}"
    )
    return 0


def identity_set(args: Args, settings: Settings) -> int:
    """`emotrack identity-set`: the identity test set, built from pinned photos and videos."""
    from emotrack.training.identity_set import build_identity_set

    truth = build_identity_set(args.out, settings.cache_dir)
    print(
        f"clips: {args.out / 'clips'} ({truth['clip'].nunique()})\n"
        f"truth: {args.out / 'truth.csv'} ({truth['person'].nunique()} people)"
    )
    return 0


def fetch(args: Args, settings: Settings) -> int:
    """`emotrack fetch`: the pinned weights (and sample videos), verified."""
    from emotrack.assets import (
        FACE_IDENTITY,
        FACE_LANDMARKER,
        expression_cnn_path,
        fetch_asset,
        fetch_samples,
    )
    from emotrack.models.expression_cnn import convert_expression_cnn, lite_file_path

    cnn = expression_cnn_path(settings.cache_dir)
    print(f"expression CNN: {cnn} (SHA-256 verified)")
    made = convert_expression_cnn(cnn)
    print(
        f"its LiteRT file: {lite_file_path(cnn)} ({'made' if made else 'there'}, SHA-256 recorded)"
    )
    landmarker = fetch_asset(FACE_LANDMARKER, settings.cache_dir)
    print(f"face landmarker: {landmarker} (SHA-256 verified)")
    identity = fetch_asset(FACE_IDENTITY, settings.cache_dir)
    print(f"face identity: {identity} (SHA-256 verified)")
    if args.samples is not None:
        for path in fetch_samples(settings.cache_dir, args.samples):
            print(f"sample video: {path} (SHA-256 verified)")
    return 0


def server(args: Args, settings: Settings) -> int:
    """`emotrack server`: Prefect's server and UI, with emotrack's database, retention,
    credentials and UI address; never open to the network without credentials unless
    told (--insecure)."""
    from emotrack.launch import read_auth_file
    from emotrack.server import is_loopback, public_url, server_environment

    try:
        auth = read_auth_file(args.auth_file) if args.auth_file else None
    except ValueError as error:
        print(f"emotrack: --auth-file: {error}", file=sys.stderr)
        return 2
    if auth is None and not is_loopback(args.host) and not args.insecure:
        print(
            f"emotrack: refusing to listen on {args.host} without --auth-file: anyone who "
            "reaches it could start, cancel and delete runs (--insecure to do it anyway)",
            file=sys.stderr,
        )
        return 2
    url = args.public_url or public_url(args.host, args.port)
    os.environ.update(server_environment(args.database_url, args.retention_days, auth, url))
    prefect = str(Path(sys.executable).with_name("prefect"))
    locked = ", asks for the --auth-file credentials" if auth else ""
    print(f"Prefect UI: {url}  (API: {url.rstrip('/')}/api{locked})", flush=True)
    os.execv(prefect, [prefect, "server", "start", "--host", args.host, "--port", str(args.port)])


# -- checks before any work starts ---------------------------------------------------------


def _reachable(source: str, lake: str | None = None) -> bool:
    """Whether the source folder exists, and a bucket named by the source or the lake can be
    read; says why not."""
    from emotrack.storage import ObjectStore, StorageError

    if not is_url(source) and not Path(source).is_dir():
        print(f"emotrack: {source} is not a folder", file=sys.stderr)
        return False
    try:
        for url in (u for u in (source, lake) if u and is_url(u)):
            ObjectStore(url).check()
    except (StorageError, ValueError) as error:  # ValueError: a setting of the store
        print(f"emotrack: {error}", file=sys.stderr)
        return False
    return True


def _known_model(version: str, lake: str) -> bool:
    """Whether `version` can score features in `lake`; says which can if not."""
    from emotrack.inference import known_models

    known = known_models(lake)
    if version in known:
        return True
    print(f"emotrack: unknown model {version!r}; known: {known}", file=sys.stderr)
    return False


def _describe(lake: str) -> int:
    from emotrack.lake import NotALake
    from emotrack.report import describe_lake

    try:
        print(describe_lake(lake))
    except NotALake as error:
        print(f"emotrack: {error}", file=sys.stderr)
        return 2
    return 0
