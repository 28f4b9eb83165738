"""Which model versions can score features, and scoring one video's features with one.

Scoring runs inside the units of work (emotrack.units), on Dask workers; temporal models
are loaded once per worker process (functools.cache in models.temporal_gru).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from emotrack.models.temporal_gru import WEIGHTS_DIR, load_model_folder
from emotrack.registry import model_folder, registered
from emotrack.scoring import (
    EVIDENCE_V1,
    EVIDENCE_VERSION,
    SMOOTHED_VERSION,
    FrameScores,
    Rest,
    cnn_frame_scores,
    evidence_scores,
    smoothed_scores,
    temporal_scores,
)
from emotrack.scoring import MODEL_VERSION as CNN_PER_FRAME

# The default weighs the CNN with the face's action units and does no harm to what the CNN
# sees on real faces (docs/models.md, "Which model"); the CNN smoothed alone, and the temporal GRUs
# (shipped, or trained with `emotrack train`), are chosen with --model.
DEFAULT_MODEL = EVIDENCE_VERSION


def known_models(lake_root: Path | str | None = None) -> list[str]:
    """Model versions that can score features: the shipped temporal models, those trained
    into the lake at lake_root (its registry), and the CNN alone."""
    shipped = sorted(p.parent.name for p in WEIGHTS_DIR.glob("*/config.json"))
    trained = [entry["name"] for entry in registered(lake_root)] if lake_root else []
    return [EVIDENCE_VERSION, EVIDENCE_V1, SMOOTHED_VERSION, *shipped, *trained, CNN_PER_FRAME]


def score_features(
    features: pd.DataFrame,
    version: str,
    lake_root: str | None = None,
    rest: Rest | None = None,
) -> FrameScores:
    """Per-row scores of one video's features with the model `version` (shipped, or in the
    registry of the lake at lake_root); the default reads the AUs against `rest`
    (emotrack.scoring.against_rest; default: each track's own resting face)."""
    if version == CNN_PER_FRAME:
        return cnn_frame_scores(features)
    if version in (EVIDENCE_VERSION, EVIDENCE_V1):
        return evidence_scores(features, version, rest)
    if version == SMOOTHED_VERSION:
        return smoothed_scores(features)
    folder = model_folder(version, lake_root)
    if folder is None:
        known = known_models(lake_root)
        raise ValueError(f"unknown model {version!r}; known: {known}")
    model, cfg = load_model_folder(folder)
    return temporal_scores(features, model, cfg)
