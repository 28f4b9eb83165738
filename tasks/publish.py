"""Step 5: write a video's rows to the lake atomically, or record why it could not be read."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from emotrack.analysis import VideoFeatures
from emotrack.errors import UnreadableVideo
from emotrack.lake import Lake
from emotrack.records import failure_rows, video_row
from emotrack.settings import Settings
from emotrack.video import VideoSource


@task(
    name="publish-video",
    task_run_name="publish [{source.name}]",
    cache_policy=NO_CACHE,
    retries=2,
    retry_delay_seconds=[2, 10],
)
def publish_video(
    lake: Lake,
    source: VideoSource,
    features: VideoFeatures,
    tracks: pd.DataFrame,
    summary: dict[str, object],
    settings: Settings,
) -> dict[str, int]:
    """Replace the video's rows in features, tracks, summaries and videos; return row counts."""
    rows = lake.publish_video(
        source.video_id,
        str(source.path),
        {
            "features": features.table,
            "tracks": tracks,
            "summaries": pd.DataFrame([summary]),
            "videos": pd.DataFrame(
                [video_row(source, settings.analysis_fps, "ok", datetime.now(UTC))]
            ),
        },
    )
    get_run_logger().info("%s: published %s to %s", source.name, rows, lake.root)
    return rows


@task(name="record-failure", task_run_name="record failure [{path.name}]", cache_policy=NO_CACHE)
def record_failure(lake: Lake, path: Path, error: UnreadableVideo) -> None:
    """Add the file to `failures` (and `videos` as failed) with a message a person can act on."""
    failure, video = failure_rows(path, error)
    lake.record_failure(failure, video)
    get_run_logger().warning("%s: not processed (%s)", path.name, error)
