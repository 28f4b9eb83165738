"""Step 3b of a nightly run: the new tracks joined to people (emotrack.people_lake)."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from emotrack.lake import Lake
from emotrack.people_lake import Grouping, update_people
from emotrack.settings import Settings
from emotrack.units import RescoreJob, VideoResult, rescore_videos


@task(name="group-people", cache_policy=NO_CACHE)
def group_people(lake: Lake, settings: Settings) -> Grouping:
    """With the lake's lock held, after the run's commits: every track not yet grouped
    joins, starts or merges people."""
    done = update_people(lake, settings.people_threshold)
    get_run_logger().info(
        "people: %d in all, %d new, %d merge(s), from %d track(s)",
        done.people,
        done.new,
        len(done.merges),
        done.tracks,
    )
    return done


@task(name="people-at-rest", task_run_name="resting faces: {job.name}", cache_policy=NO_CACHE)
def people_at_rest(job: RescoreJob, model: str, lake: Lake) -> list[VideoResult]:
    """Step 3c: a few videos whose people changed, scored again from their features with
    their people's resting faces (emotrack.person_baselines)."""
    return rescore_videos(job, model, lake.url)
