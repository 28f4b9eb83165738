"""Step 1: find the videos, and decide which of them this run must process."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from emotrack.incremental import CRASHED_RUNS, Plan, plan_videos
from emotrack.lake import Lake
from emotrack.sources import Found, content_ids, find_sources, source_rows
from emotrack.storage import base_name


@task(name="plan-run", cache_policy=NO_CACHE)
def plan_run(
    source: str, lake: Lake, model: str, reprocess: bool, rehash: bool = False
) -> tuple[dict[str, Found], Plan]:
    """The video files under `source` (by URI) and what to do with each: new or changed
    content is to do, complete content is skipped, unchanged failures and files that runs
    died on wait, forgotten content is left alone (and not recorded). A file is read
    (hashed) only if the lake has no record of its bytes (or with rehash); what was read is
    recorded at once."""
    logger = get_run_logger()
    found = find_sources(source)
    ids, read = content_ids(found, lake.sources(), rehash)
    forgotten = lake.forgotten()
    kept = [f for f in read if reprocess or ids[f.uri] not in forgotten]  # no record of those
    if kept:
        lake.remember_sources(source_rows([(f, str(ids[f.uri])) for f in kept]))
    plan = plan_videos(
        ids, lake.completed(model), lake.failed(), reprocess, lake.crashed(), forgotten
    )
    logger.info(
        "%d video files under %s (%d read to find their content): %d to process, %d already "
        "complete with %s, %d quarantined (unreadable, unchanged)",
        len(found),
        source,
        len(read),
        len(plan.todo),
        len(plan.done),
        model,
        len(plan.quarantined),
    )
    if plan.forgotten:
        logger.info("%d file(s) skipped: their content was forgotten", len(plan.forgotten))
    for uri in plan.crashed:
        logger.warning(
            "%s: %d runs died while analysing it; quarantined", base_name(uri), CRASHED_RUNS
        )
    return {f.uri: f for f in found}, plan
