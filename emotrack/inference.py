"""Features -> tracks and summaries, one video per Dask task.

`score_video` is what runs on a worker: it reads one video's features from the lake, scores
them with a model version (the temporal GRU, or the CNN frame by frame), and returns the rows
for the driver to publish. Models are loaded once per worker process (functools.cache).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd

from emotrack.lake import Lake
from emotrack.registry import model_folder, registered
from emotrack.scoring import (
    MODEL_VERSION as CNN_PER_FRAME,
)
from emotrack.scoring import (
    SMOOTHED_VERSION,
    FrameScores,
    cnn_frame_scores,
    score_frames,
    smoothed_scores,
    summarise_video,
    temporal_scores,
)
from models.temporal_gru import WEIGHTS_DIR, load_model_folder

# The default does no harm to what the CNN sees on real faces (README, "Which model"); the
# temporal GRUs (shipped, or trained with `emotrack train`) are chosen with --model.
DEFAULT_MODEL = SMOOTHED_VERSION


def known_models(lake_root: Path | str | None = None) -> list[str]:
    """Model versions that can score features: the shipped temporal models, those trained
    into the lake at lake_root (its registry), and the CNN alone."""
    shipped = sorted(p.parent.name for p in WEIGHTS_DIR.glob("*/config.json"))
    trained = [entry["name"] for entry in registered(lake_root)] if lake_root else []
    return [SMOOTHED_VERSION, *shipped, *trained, CNN_PER_FRAME]


def score_features(
    features: pd.DataFrame, version: str, lake_root: str | None = None
) -> FrameScores:
    """Per-row scores of one video's features with the model `version` (shipped, or in the
    registry of the lake at lake_root)."""
    if version == CNN_PER_FRAME:
        return cnn_frame_scores(features)
    if version == SMOOTHED_VERSION:
        return smoothed_scores(features)
    folder = model_folder(version, lake_root)
    if folder is None:
        known = known_models(lake_root)
        raise ValueError(f"unknown model {version!r}; known: {known}")
    model, cfg = load_model_folder(folder)
    return temporal_scores(features, model, cfg)


def score_video(
    lake_root: str, video_id: str, frames_analysed: int, version: str
) -> tuple[pd.DataFrame, dict[str, object]]:
    """The tracks rows and the summary row of one video, from its stored features."""
    features = Lake(lake_root).read_video("features", video_id)
    features = features.sort_values(["frame_index", "track_id"], ignore_index=True)
    tracks = score_frames(features, score_features(features, version, lake_root))
    return tracks, summarise_video(tracks, frames_analysed, version)


def score_videos(
    client: Any, lake: Lake, jobs: dict[str, int], version: str
) -> Iterator[tuple[str, tuple[pd.DataFrame, dict[str, object]] | BaseException]]:
    """(video_id, rows or the exception it raised) for each video_id -> frames_analysed in
    `jobs`, in the order they finish; one video's failure does not affect the others."""
    from dask.distributed import as_completed

    futures = {
        client.submit(
            score_video,
            lake.url,
            video_id,
            frames,
            version,
            pure=False,
            key=f"score-{video_id}-{version}",
        ): video_id
        for video_id, frames in jobs.items()
    }
    for future in as_completed(futures):
        try:
            yield futures[future], future.result()
        except Exception as error:  # noqa: BLE001 - reported per video to the caller
            yield futures[future], error
