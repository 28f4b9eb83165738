"""Step 3b of a nightly run: the new tracks joined to people (emotrack.people_lake)."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from emotrack.lake import Lake
from emotrack.people_lake import Grouping, update_people
from emotrack.settings import Settings


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
