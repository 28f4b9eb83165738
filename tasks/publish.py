"""Writing to the lake: features, then scores with the videos row last, or a failure."""

from __future__ import annotations

from datetime import UTC, datetime

import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from emotrack.episodes import episodes_of
from emotrack.errors import UnreadableVideo
from emotrack.html_report import report_folder, write_video_page
from emotrack.lake import Lake
from emotrack.records import failure_rows, video_row
from emotrack.storage import base_name
from emotrack.video import VideoSource
from tasks import named

RETRIES, RETRY_DELAYS_S = 2, [2.0, 10.0]  # for transient I/O errors while writing


@task(
    name="publish-scores",
    task_run_name="publish scores [{source.name}]",
    retries=RETRIES,
    retry_delay_seconds=RETRY_DELAYS_S,
    cache_policy=NO_CACHE,
)
def publish_scores(
    lake: Lake,
    source: VideoSource,
    analysis_fps: float,
    frames_analysed: int,
    tracks: pd.DataFrame,
    summary: dict[str, object],
) -> dict[str, int]:
    """Replace the video's tracks, episodes and summary, then write its `videos` row: it is
    complete."""
    video = video_row(source, analysis_fps, frames_analysed, "ok", datetime.now(UTC))
    tables = {
        "tracks": tracks,
        "episodes": episodes_of(tracks),
        "summaries": pd.DataFrame([summary]),
        "videos": pd.DataFrame([video]),
    }
    rows = lake.publish(source.video_id, tables, source_uri=source.source_uri)
    get_run_logger().info("%s: published %s", source.name, rows)
    try:  # its page of the HTML report, while the other videos are analysed
        facts = {**video, "video_id": source.video_id, "model_version": summary["model_version"]}
        write_video_page(report_folder(lake), facts, tracks, tables["episodes"])
    except Exception as error:  # noqa: BLE001 - a page is no reason to fail the video
        get_run_logger().warning("%s: no HTML page (%s)", source.name, error)
    return rows


@task(
    name="replace-scores",
    task_run_name="replace scores [{video_id}]",
    retries=RETRIES,
    retry_delay_seconds=RETRY_DELAYS_S,
    cache_policy=NO_CACHE,
)
def replace_scores(
    lake: Lake,
    video_id: str,
    tracks: pd.DataFrame,
    summary: dict[str, object],
    keep_versions: bool,
) -> dict[str, int]:
    """Rescoring: replace (or add, with keep_versions) a video's tracks, episodes and summary."""
    tables = {
        "tracks": tracks,
        "episodes": episodes_of(tracks),
        "summaries": pd.DataFrame([summary]),
    }
    rows = lake.publish(video_id, tables, keep_versions=keep_versions)
    get_run_logger().info("%s: rescored, %s", video_id, rows)
    return rows


@task(name="record-failure", task_run_name=named("record failure"), cache_policy=NO_CACHE)
def record_failure(
    lake: Lake,
    uri: str,
    error: UnreadableVideo,
    video_id: str | None = None,
    size: int | None = None,
) -> None:
    """Add the file to `failures` (and `videos` as failed) with a message a person can act on.
    `video_id` and `size`: when known (a local file's are read here)."""
    failure, video = failure_rows(uri, error, video_id, size)
    lake.record_failure(failure, video)
    get_run_logger().warning("%s: not processed (%s)", base_name(uri), error)
