"""Step 1: find the videos, and decide which of them this run must process."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from emotrack.incremental import CRASHED_RUNS, Plan, plan_videos
from emotrack.lake import Lake
from emotrack.sources import Found, find_sources, known_content_id
from emotrack.storage import base_name, is_url


@task(name="discover-videos")
def discover_videos(source: str) -> list[Found]:
    """Video files under `source` (a folder or an object-storage URL), sorted by URI."""
    found = find_sources(source)
    get_run_logger().info("found %d video files under %s", len(found), source)
    return found


@task(name="plan-run", cache_policy=NO_CACHE)
def plan_run(found: list[Found], lake: Lake, model: str, reprocess: bool) -> Plan:
    """New or changed videos are todo; complete ones are skipped; unchanged failures wait,
    and so do videos that runs died on."""
    remembered = lake.source_ids() if any(is_url(f.uri) for f in found) else {}
    plan = plan_videos(
        {f.uri: known_content_id(f, remembered) for f in found},
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
    for uri in plan.crashed:
        get_run_logger().warning(
            "%s: %d runs died while analysing it; quarantined", base_name(uri), CRASHED_RUNS
        )
    return plan
