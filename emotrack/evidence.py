"""What a face's action units say about its expression, and how far to trust them.

Pure functions of a features (or tracks) table, used by the default expression model
(emotrack.scoring.evidence_scores) and by the `reliable` column:

- trust(rows): per row in [0, 1], the product of four ramps (TRUST): the face's size, how far
  it is turned (yaw, pitch), and how well the landmarker fitted it (landmark_score). The
  blendshapes come from a mesh fitted to the face: a small, turned or poorly fitted face
  gives blendshapes that say less.
- reliable(rows): every ramp at least half-way (0.5): the row's expression can be trusted.
  Rows without geometry (the landmarker off) are judged on size alone.
- au_evidence(rows): per row and expression (EMOTIONS order) in [0, 1], how fully the
  face shows the expression's prototype: the mean of the prototype's AUs (PROTOTYPES); for
  neutral, how low every AU is (NEUTRAL_AUS under NEUTRAL_LIMIT).

The model card (models/cards/au-evidence-v1.md) gives the reasons for each value.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from emotrack.action_units import ACTION_UNITS, action_units
from emotrack.vocabulary import EMOTIONS


@dataclass(frozen=True)
class Ramp:
    """0 at `none`, 1 at `full`, linear between."""

    column: str
    none: float
    full: float

    def __call__(self, values: np.ndarray) -> np.ndarray:
        return np.clip((values - self.none) / (self.full - self.none), 0.0, 1.0)


# Face box width in pixels; |yaw| and |pitch| in degrees; the landmarker's presence score.
TRUST = (
    Ramp("bbox_w", none=32.0, full=96.0),
    Ramp("yaw_deg", none=50.0, full=20.0),
    Ramp("pitch_deg", none=40.0, full=20.0),
    Ramp("landmark_score", none=0.5, full=0.9),
)
_ANGLES = {"yaw_deg", "pitch_deg"}

# EMFACS (Friesen & Ekman, 1983) prototypes of the six basic expressions, with their major
# variants folded in: a tuple is "any one of these AUs" (its largest counts).
PROTOTYPES: dict[str, tuple[int | tuple[int, ...], ...]] = {
    "angry": (4, (5, 7), (17, 23, 24)),
    "disgust": ((9, 10), (15, 17)),
    "fear": (1, 2, 4, (5, 7), (20, 25, 26)),
    "happy": (6, 12),
    "sad": (1, 4, 15),
    "surprise": (1, 2, (5, 26)),
}
# Neutral: every AU low. AU45 (blinks) and AU25/26 (speech) come and go on resting faces;
# AU7 reads 0.4-0.55 on relaxed eyes as well as on narrowed ones (model card).
NEUTRAL_AUS = [au.column for au in ACTION_UNITS if au.number not in (7, 25, 26, 45)]
NEUTRAL_LIMIT = 0.5  # an AU at 0.5 or more rules neutral out; at 0 it supports it fully


def _values(rows: pd.DataFrame, column: str) -> np.ndarray:
    values = rows[column].to_numpy(np.float64) if column in rows else np.full(len(rows), np.nan)
    return np.abs(values) if column in _ANGLES else values


def trust(rows: pd.DataFrame) -> np.ndarray:
    """float64 (N,) in [0, 1]: the product of the TRUST ramps; 0 where geometry is missing."""
    result = np.ones(len(rows))
    for ramp in TRUST:
        result *= np.nan_to_num(ramp(_values(rows, ramp.column)), nan=0.0)
    return result


def reliable(rows: pd.DataFrame) -> np.ndarray:
    """bool (N,): every TRUST ramp at least half-way; a measure that is missing (no
    geometry) is not held against the row, the face's size always counts."""
    result = np.ones(len(rows), bool)
    for ramp in TRUST:
        values = ramp(_values(rows, ramp.column))
        result &= np.isnan(values) | (values >= 0.5)
    return result


def reliable_rows(tracks: pd.DataFrame) -> pd.DataFrame:
    """The rows of a tracks table whose expression is reliable (a null `reliable`, in rows
    written before the column, counts as reliable)."""
    if "reliable" not in tracks:
        return tracks
    return tracks[tracks["reliable"].fillna(True).astype(bool)]


def au_evidence(rows: pd.DataFrame, aus: pd.DataFrame | None = None) -> np.ndarray:
    """float64 (N, 7), EMOTIONS order, in [0, 1]: how fully each row's AUs (`aus`, default:
    computed from its blendshapes) show each expression; 0 where the row has none."""
    aus = action_units(rows) if aus is None else aus
    by_number = {au.number: aus[au.column].to_numpy(np.float64) for au in ACTION_UNITS}
    evidence = np.zeros((len(rows), len(EMOTIONS)))
    for i, emotion in enumerate(EMOTIONS):
        if emotion == "neutral":
            highest = aus[NEUTRAL_AUS].to_numpy(np.float64).max(axis=1)
            evidence[:, i] = np.clip(1.0 - highest / NEUTRAL_LIMIT, 0.0, 1.0)
            continue
        parts = [
            np.max([by_number[n] for n in part], axis=0) if isinstance(part, tuple)
            else by_number[part]
            for part in PROTOTYPES[emotion]
        ]  # fmt: skip
        evidence[:, i] = np.mean(parts, axis=0)
    return np.nan_to_num(evidence, nan=0.0)
