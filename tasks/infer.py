"""Step 4: the temporal model over every face track, one video per Dask task."""

from __future__ import annotations

from typing import Any

import pandas as pd
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from emotrack.cluster import dask_client
from emotrack.inference import score_video, score_videos
from emotrack.lake import Lake

Scored = tuple[pd.DataFrame, dict[str, object]]


@task(name="infer-tracks", task_run_name="infer tracks [{version}]", cache_policy=NO_CACHE)
def infer_tracks(
    lake: Lake, jobs: dict[str, int], version: str, dask_address: str | None, workers: int
) -> dict[str, Scored | str]:
    """video_id -> (tracks rows, summary row), or the error message of a video that failed.

    `jobs` maps each video_id to its number of analysed frames. Uses the Dask scheduler at
    `dask_address`, or a LocalCluster of `workers` processes.
    """
    logger = get_run_logger()
    if not jobs:
        return {}
    results: dict[str, Scored | str] = {}
    with dask_client(dask_address, workers) as client:
        logger.info("scoring %d video(s) with %s on %s", len(jobs), version, client)
        for video_id, result in score_videos(client, lake, jobs, version):
            if isinstance(result, BaseException):
                logger.error("%s: inference failed: %r", video_id, result)
                results[video_id] = f"{type(result).__name__}: {result}"
            else:
                results[video_id] = result
    return results


@task(name="infer-video", task_run_name="infer tracks [{video_id}]", cache_policy=NO_CACHE)
def infer_video_tracks(
    client: Any, lake: Lake, video_id: str, frames_analysed: int, version: str
) -> Scored:
    """One video's tracks rows and summary row, scored by `version` on a Dask worker."""
    future = client.submit(score_video, lake.url, video_id, frames_analysed, version, pure=False)
    tracks, summary = future.result()
    get_run_logger().info("%s: %d track rows scored with %s", video_id, len(tracks), version)
    return tracks, summary
