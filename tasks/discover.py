"""Step 1: find the videos, and decide which of them this run must process."""

from __future__ import annotations

from pathlib import Path

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from emotrack.incremental import CRASHED_RUNS, Plan, plan_videos
from emotrack.lake import Lake
from emotrack.video import content_video_id, find_videos


@task(name="discover-videos")
def discover_videos(source: str) -> list[Path]:
    """Video files under the folder `source`, sorted by path."""
    paths = find_videos(Path(source))
    get_run_logger().info("found %d video files under %s", len(paths), source)
    return paths


@task(name="plan-run", cache_policy=NO_CACHE)
def plan_run(paths: list[Path], lake: Lake, model: str, reprocess: bool) -> Plan:
    """New or changed videos are todo; complete ones are skipped; unchanged failures wait,
    and so do videos that runs died on."""
    plan = plan_videos(
        {path: _content_id(path) for path in paths},
        lake.completed(model),
        lake.failed(),
        reprocess,
        lake.crashed(),
    )
    get_run_logger().info(
        "%d to process, %d already complete with %s, %d quarantined (unreadable, unchanged)",
        len(plan.todo),
        len(plan.done),
        model,
        len(plan.quarantined),
    )
    for path in plan.crashed:
        get_run_logger().warning(
            "%s: %d runs died while analysing it; quarantined", path.name, CRASHED_RUNS
        )
    return plan


def _content_id(path: Path) -> str | None:
    try:
        return content_video_id(path)
    except OSError:
        return None
