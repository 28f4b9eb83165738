"""Rescoring: stored features -> tracks, episodes and summaries with another model, no decoding."""

from __future__ import annotations

from emotrack.tasks.commit import commit_batch
from prefect import flow, get_run_logger

from emotrack.cluster import dask_client, run_bounded
from emotrack.inference import DEFAULT_MODEL
from emotrack.lake import Lake
from emotrack.people_lake import has_people
from emotrack.person_baselines import resting_people
from emotrack.settings import Settings
from emotrack.units import VideoResult, rescore_jobs, rescore_videos

VIDEOS_PER_JOB = 50  # one read of the lake's features per job


@flow(name="emotrack-rescore", flow_run_name="rescore {lake} with {model}")
def rescore(
    lake: str,
    model: str = DEFAULT_MODEL,
    keep_versions: bool = False,
    dask_address: str | None = None,
    workers: int = 2,
    settings: Settings | None = None,
) -> dict[str, int]:
    """Recompute tracks, episodes and summaries of every complete video in `lake` with
    `model`: they replace the old versions' rows, or, with keep_versions, join them.
    `settings`: None reads them from EMOTRACK_* in the environment."""
    settings = settings or Settings()
    store = Lake(lake)
    with store.writing(ttl_s=settings.lock_ttl_s):  # never while a run writes to it
        return _rescore(store, settings, model, keep_versions, dask_address, workers)


def _rescore(
    lake: Lake,
    settings: Settings,
    model: str,
    keep_versions: bool,
    dask_address: str | None,
    workers: int,
) -> dict[str, int]:
    # Step 1: the complete videos (a video without faces has no features: it is rescored
    # all the same, to an empty track list), a few per job; those stored with `--store
    # labels` kept no features: their tracks stay as they are.
    complete = lake.read("videos", "status = 'ok'").to_dict("records")
    rows = [r for r in complete if r.get("stored") != "labels"]
    bare = len(complete) - len(rows)
    if bare:
        get_run_logger().warning(
            "%d video(s) were stored with --store labels and have no features to score "
            "again: their tracks stay as they are (run them again with --store full or "
            "geometry to rescore them)",
            bare,
        )
    # People (--people) get their resting faces made again from all their rows.
    people = resting_people(lake, settled=False) if has_people(lake) else {}
    jobs = rescore_jobs(rows, people, VIDEOS_PER_JOB)
    # Step 2: the model over every face track on the cluster; commits in batches.
    rescored, errors, waiting = 0, [], list[VideoResult]()
    keep = model if keep_versions else None
    with dask_client(dask_address, workers, settings.worker_memory_gb) as client:
        window = settings.videos_in_flight * sum(client.nthreads().values())
        done = run_bounded(
            client, rescore_videos, jobs, model, lake.url, window=window, name=lambda j: j.name
        )
        for job, results in filter(None, done):
            if isinstance(results, BaseException):
                get_run_logger().error("%s: rescoring failed", job.name, exc_info=results)
                errors += [v["video_id"] for v in job.videos]
                continue
            waiting += results
            if len(waiting) >= settings.commit_videos:
                commit_batch(
                    lake, waiting, f"rescored {rescored + 1}-{rescored + len(waiting)}", keep
                )
                rescored, waiting = rescored + len(waiting), []
        if waiting:
            commit_batch(lake, waiting, f"rescored {rescored + 1}-{rescored + len(waiting)}", keep)
            rescored += len(waiting)
    if errors:
        raise RuntimeError(f"rescoring failed for {len(errors)} video(s): {', '.join(errors)}")
    return {"rescored": rescored, "without_features": bare}
