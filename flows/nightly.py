"""The nightly flow: every video under a folder -> per-frame expression tables in the lake."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

import pandas as pd
from prefect import flow, get_run_logger

from emotrack.analysis import VideoFeatures
from emotrack.errors import UnreadableVideo
from emotrack.inference import DEFAULT_MODEL
from emotrack.lake import Lake
from emotrack.settings import Settings
from emotrack.video import VideoSource
from tasks.analyse import extract_video_features, probe_video
from tasks.discover import discover_videos, plan_run
from tasks.infer import infer_tracks
from tasks.publish import publish_features, publish_scores, record_failure
from tasks.report import publish_run_report, report_progress, start_progress


@flow(name="emotrack-nightly", flow_run_name="nightly {source}")
def nightly(
    source: str,
    lake: str,
    fps: float = 5.0,
    model: str = DEFAULT_MODEL,
    dask_address: str | None = None,
    workers: int = 2,
    reprocess: bool = False,
) -> dict[str, int]:
    """Process the new or changed videos under `source` into `lake` (all with reprocess).

    Returns how many videos ended ok, failed (unreadable), were skipped (already complete) or
    quarantined (recorded as unreadable earlier, unchanged since).
    """
    store = Lake(Path(lake))
    with store.exclusive():  # a second run over the same lake waits for this one
        return _nightly(
            source, store, Settings(analysis_fps=fps), model, dask_address, workers, reprocess
        )


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
    fps = settings.analysis_fps
    # Step 1: discover the videos and keep those that are new or changed.
    plan = plan_run(discover_videos(source), store, model, reprocess)
    paths = plan.todo
    # Steps 2-3, one video at a time (TensorFlow already uses every core for one video):
    # probe, then decode, faces and CNN -> features in the lake.
    progress = start_progress()
    analysed: dict[Path, tuple[VideoSource, VideoFeatures] | str] = {}
    for number, path in enumerate(paths, start=1):
        get_run_logger().info("video %d of %d: %s", number, len(paths), path.name)
        analysed[path] = analyse_video(path, plan.video_ids.get(path), store, settings)
        report_progress(progress, 100.0 * number / len(paths))
    done = {path: result for path, result in analysed.items() if not isinstance(result, str)}
    # Step 4: the temporal model over every face track, one video per Dask task.
    jobs = {src.video_id: feats.frames_analysed for src, feats in done.values()}
    scored = infer_tracks(store, jobs, model, dask_address, workers)
    # Step 5: tracks and summaries, then the videos row that marks each video complete.
    statuses = {path: result for path, result in analysed.items() if isinstance(result, str)}
    for path, (src, feats) in done.items():
        result = scored[src.video_id]
        statuses[path] = (
            "error"
            if isinstance(result, str)
            else publish_video(store, src, fps, feats.frames_analysed, *result)
        )
    statuses |= dict.fromkeys(plan.done, "skipped") | dict.fromkeys(plan.quarantined, "quarantined")
    # Step 6: what the operator sees in the Prefect UI.
    publish_run_report(store, statuses)
    return report_statuses(statuses)


def analyse_video(
    path: Path, video_id: str | None, lake: Lake, settings: Settings
) -> tuple[VideoSource, VideoFeatures] | str:
    """Probe one video and store its features; "failed" (recorded) or "error" if it cannot.

    An unreadable file is recorded in `failures`. Any other exception is logged and reported
    as "error" (it may be transient: nothing is recorded), so the other videos go on.
    """
    try:
        source = probe_video(path, video_id)
        features = extract_video_features(source, settings)
        publish_features(lake, source, features)
    except UnreadableVideo as error:
        record_failure(lake, path, error)
        return "failed"
    except Exception:
        get_run_logger().exception("%s: unexpected error; the other videos go on", path.name)
        return "error"
    return source, features


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


def report_statuses(statuses: dict[Path, str]) -> dict[str, int]:
    """Counts per status; raises (the run ends Failed) if any video hit an unexpected error."""
    errors = sorted(path.name for path, status in statuses.items() if status == "error")
    if errors:  # the others are done; the run still ends Failed so that someone looks
        raise RuntimeError(f"unexpected errors in {len(errors)} video(s): {', '.join(errors)}")
    return dict(Counter(statuses.values()))
