"""The nightly flow: every video under a folder -> per-frame expression tables in the lake."""

from __future__ import annotations

from collections import Counter
from concurrent.futures import ThreadPoolExecutor, as_completed
from contextvars import copy_context
from typing import Any

import pandas as pd
from distributed import KilledWorker
from prefect import flow, get_run_logger

from emotrack.cluster import dask_client, progress_events
from emotrack.errors import UnreadableVideo
from emotrack.incremental import CRASHED_RUNS, Plan
from emotrack.inference import DEFAULT_MODEL
from emotrack.lake import Lake
from emotrack.progress import RunProgress
from emotrack.settings import Settings
from emotrack.sources import Found, local_file, unread_id
from emotrack.storage import StorageError, base_name, is_url
from emotrack.video import VideoSource, content_video_id
from tasks.analyse import extract_video_features, probe_video, worker_died
from tasks.discover import discover_videos, plan_run
from tasks.infer import infer_video_tracks
from tasks.publish import publish_scores, record_failure
from tasks.report import (
    publish_run_report,
    report_progress,
    start_progress,
    write_html_report,
)


@flow(name="emotrack-nightly", flow_run_name="nightly {source}")
def nightly(
    source: str,
    lake: str,
    fps: float = 5.0,
    model: str = DEFAULT_MODEL,
    dask_address: str | None = None,
    workers: int = 2,
    reprocess: bool = False,
    detector: str | None = None,
) -> dict[str, int]:
    """Process the new or changed videos under `source` into `lake` (all with reprocess).

    `detector` names the face detector (None: EMOTRACK_DETECTOR, else blazeface-short).

    Returns how many videos ended ok, failed (unreadable), were skipped (already complete) or
    quarantined (recorded as unreadable earlier, unchanged since).
    """
    store = Lake(lake)
    with store.exclusive():  # a second run over the same lake waits for this one
        settings = (
            Settings(analysis_fps=fps, detector=detector)
            if detector
            else Settings(analysis_fps=fps)
        )
        return _nightly(source, store, settings, model, dask_address, workers, reprocess)


def _nightly(
    source: str,
    store: Lake,
    settings: Settings,
    model: str,
    dask_address: str | None,
    workers: int,
    reprocess: bool,
) -> dict[str, int]:
    """The steps of a nightly run, with the lake's lock held."""
    # Step 1: discover the videos and keep those that are new or changed.
    found = {f.uri: f for f in discover_videos(source)}
    plan = plan_run(list(found.values()), store, model, reprocess)
    statuses: dict[str, str] = {}
    for uri in plan.crashed:  # runs died on these: recorded, then quarantined like failures
        failure = crashed_runs(CRASHED_RUNS)
        record_failure(store, uri, failure, plan.video_ids[uri], found[uri].size)
        statuses[uri] = "failed"
    published: list[str] = []
    if plan.todo:
        # Steps 2-5 for every video, several at a time; the heavy work runs on the cluster.
        with dask_client(dask_address, workers, settings.worker_memory_gb) as client:
            outcomes = process_videos(plan, found, store, settings, model, client)
        statuses |= {uri: status for uri, (status, _) in outcomes.items()}
        published = [v for status, v in outcomes.values() if status == "ok" and v]
    statuses |= dict.fromkeys(plan.done, "skipped") | dict.fromkeys(plan.quarantined, "quarantined")
    # Step 6: what the operator sees: HTML pages of the lake, and the run in the Prefect UI.
    index = write_html_report(store, published)
    publish_run_report(store, statuses, index)
    return report_statuses(statuses)


def process_videos(
    plan: Plan,
    found: dict[str, Found],
    lake: Lake,
    settings: Settings,
    model: str,
    client: Any,
) -> dict[str, tuple[str, str | None]]:
    """Each video of the plan through analyse_video, two per worker thread of the cluster at
    a time (one analysed while the next one starts). The console shows the
    run's progress, fed per batch of frames by the workers. uri -> (status, video id)."""
    progress = start_progress()
    console = RunProgress(len(plan.todo))
    in_flight = 2 * sum(client.nthreads().values())
    done: dict[str, tuple[str, str | None]] = {}
    pool = ThreadPoolExecutor(in_flight, thread_name_prefix="emotrack-video")
    try:
        with progress_events(client, console.analysed):
            futures = {  # each thread runs in a copy of the flow run's context: tasks join it
                pool.submit(
                    copy_context().run, analyse_video, found[uri], plan.video_ids.get(uri),
                    lake, settings, model, client, console,
                ): uri
                for uri in plan.todo
            }  # fmt: skip
            for future in as_completed(futures):
                uri, name = futures[future], base_name(futures[future])
                status, detail, video_id = future.result()
                done[uri] = status, video_id
                console.finished_video(video_id, name, status, detail)
                get_run_logger().info(
                    "video %d of %d: %s %s", len(done), len(plan.todo), name, status
                )
                report_progress(progress, 100.0 * len(done) / len(plan.todo))
    finally:  # when stopped, waiting threads end as the cluster closes, not the other way
        pool.shutdown(wait=len(done) == len(plan.todo), cancel_futures=True)
        console.close()
    return {uri: done[uri] for uri in plan.todo}


def analyse_video(
    found: Found,
    video_id: str | None,
    lake: Lake,
    settings: Settings,
    model: str,
    client: Any,
    console: RunProgress,
) -> tuple[str, str, str | None]:
    """(status, what to tell the operator, video id) of one video: status is "ok",
    "failed" (unreadable, recorded) or "error"; the console shows it start.

    Steps, each a Prefect task: probe -> faces + CNN on a worker (features stored) -> the
    temporal model on a worker -> tracks, summary and, last, the videos row. A file on
    object storage is copied to a local temporary file first (deleted after); its content id
    is remembered. An unreadable file is recorded in `failures`. A permanent storage error
    (StorageError) stops the run. Any other exception is logged and reported as "error" (it
    may be transient: nothing is recorded), so the other videos go on.
    """
    uri, name = found.uri, base_name(found.uri)

    def unreadable(error: UnreadableVideo) -> tuple[str, str, str | None]:
        record_failure(lake, uri, error, video_id, found.size)
        return "failed", str(error), video_id

    try:
        with local_file(uri, settings.max_staged_bytes, settings.staging_dir) as path:
            if video_id is None and is_url(uri):  # new or changed: its id is read once
                video_id = content_video_id(path)
                lake.remember_source(uri, found.size or 0, found.etag, video_id)
            source = probe_video(path, video_id, settings, uri)
            if isinstance(source, UnreadableVideo):
                return unreadable(source)
            video_id = source.video_id
            rate = source.analysis_rate(settings.analysis_fps)
            console.started_video(video_id, name, source.duration_s, rate)
            with lake.attempt(source.video_id):  # counted as crashed if this run dies meanwhile
                frames = extract_video_features(client, source, lake, settings)
                if isinstance(frames, UnreadableVideo):
                    return unreadable(frames)
                tracks, summary = infer_video_tracks(client, lake, source.video_id, frames, model)
    except UnreadableVideo as error:
        if video_id is None and is_url(uri):  # never copied: it stays failed until it changes
            video_id = unread_id(found)
            lake.remember_source(uri, found.size or 0, found.etag, video_id)
        return unreadable(error)
    except KilledWorker as error:
        return unreadable(worker_died(error, settings))
    except StorageError:
        raise
    except Exception:
        get_run_logger().exception("%s: unexpected error; the other videos go on", name)
        return "error", "unexpected error, see the log", video_id
    status = publish_video(lake, source, settings.analysis_fps, frames, tracks, summary)
    mostly = summary["dominant_emotion"] or "no face"
    return status, f"{summary['n_tracks']} face track(s), mostly {mostly}", video_id


def crashed_runs(runs: int) -> UnreadableVideo:
    """The failure recorded for a video that was being analysed when `runs` runs died."""
    return UnreadableVideo(
        "analyse",
        f"quarantined: {runs} runs died (killed, out of memory or a crash) while analysing "
        "it; it is skipped until its content changes (or run with --reprocess)",
    )


def publish_video(
    lake: Lake,
    source: VideoSource,
    fps: float,
    frames: int,
    tracks: pd.DataFrame,
    summary: dict[str, object],
) -> str:
    """Publish one video's scores: "ok", or "error" once Prefect's retries are spent."""
    try:
        publish_scores(lake, source, fps, frames, tracks, summary)
    except Exception:
        get_run_logger().exception("%s: could not publish; the other videos go on", source.name)
        return "error"
    return "ok"


def report_statuses(statuses: dict[str, str]) -> dict[str, int]:
    """Counts per status; raises (the run ends Failed) if any video hit an unexpected error."""
    errors = sorted(base_name(uri) for uri, status in statuses.items() if status == "error")
    if errors:  # the others are done; the run still ends Failed so that someone looks
        raise RuntimeError(f"unexpected errors in {len(errors)} video(s): {', '.join(errors)}")
    return dict(Counter(statuses.values()))
