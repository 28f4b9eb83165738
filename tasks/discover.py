"""Step 1: find the videos to process."""

from __future__ import annotations

from pathlib import Path

from prefect import get_run_logger, task

from emotrack.video import find_videos


@task(name="discover-videos")
def discover_videos(source: str) -> list[Path]:
    """Video files under the folder `source`, sorted by path."""
    paths = find_videos(Path(source))
    get_run_logger().info("found %d video files under %s", len(paths), source)
    return paths
