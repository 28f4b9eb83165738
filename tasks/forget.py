"""Step 0 of a nightly run: finish a forget that was interrupted, and apply the retention
period (emotrack.forgetting)."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from emotrack.forgetting import expired, forget_videos, resume_forgetting
from emotrack.lake import Lake


@task(name="forget-expired", cache_policy=NO_CACHE)
def forget_expired(lake: Lake, retain_days: float | None) -> int:
    """With the lake's lock held: a forget that was killed finished, then (retain_days set)
    every video processed more than retain_days ago forgotten. Returns how many videos
    were forgotten now. The log says how many, never which."""
    logger = get_run_logger()
    if resume_forgetting(lake) is not None:
        logger.info("finished a forget that was interrupted")
    if not retain_days:
        return 0
    targets = expired(lake, retain_days)
    if targets:
        done = forget_videos(lake, targets, "retention")
        logger.info(
            "retention (%g days): %d video(s) and %d file record(s) forgotten, %d rows deleted",
            retain_days,
            len(targets.video_ids),
            len(targets.uris),
            sum(done["rows"].values()),
        )
    return len(targets.video_ids)
