"""Rescoring: stored features -> tracks and summaries with another model, no decoding."""

from __future__ import annotations

from prefect import flow

from emotrack.inference import DEFAULT_MODEL
from emotrack.lake import Lake
from tasks.infer import infer_tracks
from tasks.publish import replace_scores


@flow(name="emotrack-rescore", flow_run_name="rescore {lake} with {model}")
def rescore(
    lake: str,
    model: str = DEFAULT_MODEL,
    keep_versions: bool = False,
    dask_address: str | None = None,
    workers: int = 2,
) -> dict[str, int]:
    """Recompute tracks and summaries of every complete video in `lake` with `model`."""
    store = Lake(lake)
    with store.exclusive():  # never while a nightly run writes to the same lake
        return _rescore(store, model, keep_versions, dask_address, workers)


def _rescore(
    store: Lake, model: str, keep_versions: bool, dask_address: str | None, workers: int
) -> dict[str, int]:
    # Step 1: the complete videos and how many frames each had analysed.
    videos = store.read("videos")
    videos = videos[
        (videos["status"] == "ok") & videos["video_id"].isin(store.video_ids("features"))
    ]
    jobs = dict(zip(videos["video_id"], videos["frames_analysed"].astype(int), strict=True))
    # Step 2: the model over every face track, one video per Dask task.
    scored = infer_tracks(store, jobs, model, dask_address, workers)
    # Step 3: replace (or, with keep_versions, add) each video's tracks and summary.
    errors = []
    for video_id, result in scored.items():
        if isinstance(result, str):
            errors.append(video_id)
            continue
        replace_scores(store, video_id, *result, keep_versions)
    if errors:
        raise RuntimeError(f"rescoring failed for {len(errors)} video(s): {', '.join(errors)}")
    return {"rescored": len(scored)}
