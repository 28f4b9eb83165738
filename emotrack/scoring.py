"""Per-frame expression scores and per-video summaries: pure functions over DataFrames."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from emotrack.action_units import AU_COLUMNS, action_units
from emotrack.baselines import (
    GEOMETRIC,
    RELATIVE_COLUMNS,
    Baseline,
    geometric_aus,
    relative_aus,
    track_baselines,
)
from emotrack.evidence import au_evidence, reliable, reliable_rows, trust
from emotrack.models.expression_cnn import CONFIG as CNN_CONFIG
from emotrack.models.face_landmarker import SHAPE_COLUMNS
from emotrack.models.temporal_gru import TemporalConfig, extra_inputs, model_inputs, predict_track
from emotrack.schema import (
    FACE_COLUMNS,
    MEASURE_COLUMNS,
    PROB_COLUMNS,
    SERIES_POINTS,
    SHARE_COLUMNS,
    row,
)
from emotrack.vocabulary import EMOTIONS, NEUTRAL, softmax, valence_arousal

# What produced the tracks table's values: the CNN alone, per frame, and valence/arousal as
# the expectation of the NRC VAD coordinates under the CNN's probabilities.
MODEL_VERSION = f"cnn-per-frame:{CNN_CONFIG.version}+va:nrc-vad-v1-expectation"

# The default: per face track, the mean of the CNN's probabilities over a centred window of
# SMOOTHING_S seconds, valence/arousal and intensity from those as for the CNN alone.
SMOOTHING_S = 1.0
SMOOTHED_VERSION = f"cnn-smoothed-1s-v1:{CNN_CONFIG.version}"

# The default since action units: the CNN weighed with what the face's AUs show
# (evidence_scores; models/cards/au-evidence-v1.md). log(99): a full prototype on a fully
# trusted face moves the odds as much as a 99 % CNN reading.
EVIDENCE_WEIGHT = float(np.log(99.0))
EVIDENCE_V1 = f"au-evidence-v1:{CNN_CONFIG.version}"
# The default since resting faces: the same rule, on each face's AUs against its resting
# face, with the geometric AUs where the blendshapes are blind (models/cards/au-evidence-v2.md).
EVIDENCE_VERSION = f"au-evidence-v2:{CNN_CONFIG.version}"


@dataclass(frozen=True)
class FrameScores:
    """Per-row outputs for a features table: probs (N, 7), va (N, 2), intensity (N,)."""

    probs: np.ndarray
    va: np.ndarray
    intensity: np.ndarray
    model_version: str


def logits_of(features: pd.DataFrame) -> np.ndarray:
    """float64 (N, 7) logits of a features table."""
    return np.array(features["logits"].tolist(), np.float64).reshape(len(features), 7)


def cnn_frame_scores(features: pd.DataFrame) -> FrameScores:
    """The CNN alone, frame by frame: softmax of the logits, circumplex expectation for
    valence/arousal, and 1 - p_neutral as intensity."""
    logits = logits_of(features)
    probs = softmax(logits) if len(features) else np.zeros((0, 7))
    return FrameScores(probs, valence_arousal(probs), 1.0 - probs[:, NEUTRAL], MODEL_VERSION)


def smoothed_scores(features: pd.DataFrame, window_s: float = SMOOTHING_S) -> FrameScores:
    """The CNN's probabilities averaged, per face track, over the track's rows within
    window_s / 2 seconds of each row (by timestamp); valence/arousal and intensity from the
    averaged probabilities as in cnn_frame_scores.

    Rule kept on purpose simple: a class that the CNN gives most of a second keeps that
    second, a one-frame flicker is outvoted, and nothing from further away than half the
    window reaches a frame (no relabelling of whole segments).
    """
    probs = softmax(logits_of(features)) if len(features) else np.zeros((0, 7))
    smoothed = smooth(probs, features, window_s)
    return FrameScores(
        smoothed, valence_arousal(smoothed), 1.0 - smoothed[:, NEUTRAL], SMOOTHED_VERSION
    )


def evidence_scores(
    features: pd.DataFrame,
    version: str = EVIDENCE_VERSION,
    rest: Rest | None = None,
) -> FrameScores:
    """The default model: per row, the CNN's probabilities weighed with the AU evidence
    (emotrack.evidence), then smoothed as smoothed_scores does:

        p(c) proportional to p_cnn(c) * exp(EVIDENCE_WEIGHT * trust * au_evidence(c))

    A prototype shown in full, on a face trusted in full, counts as much as a CNN reading
    of 99 %; on a face without blendshapes (or trust 0) the model is the smoothed CNN.
    au-evidence-v1 reads the AUs as the blendshapes give them; au-evidence-v2 (the
    default) reads them against the face's resting face (`rest`, default: each track's
    own; against_rest), each GEOMETRIC AU the larger of that and its geometric reading:
    evidence_aus.
    """
    if not len(features):
        return FrameScores(np.zeros((0, 7)), np.zeros((0, 2)), np.zeros(0), version)
    weight = EVIDENCE_WEIGHT * trust(features)[:, None]
    aus = None if version == EVIDENCE_V1 else evidence_aus(rest or against_rest(features))
    evidence = au_evidence(features, aus)
    pooled = softmax(np.log(softmax(logits_of(features))) + weight * evidence)
    smoothed = smooth(pooled, features, SMOOTHING_S)
    return FrameScores(smoothed, valence_arousal(smoothed), 1.0 - smoothed[:, NEUTRAL], version)


def evidence_aus(rest: Rest) -> pd.DataFrame:
    """AU_COLUMNS as au-evidence-v2 reads them: against the face's resting face, each
    GEOMETRIC AU the larger of that and its geometric reading (where there is one)."""
    aus = rest.relative.set_axis(AU_COLUMNS, axis=1)
    for au in GEOMETRIC:
        aus[au.au] = np.fmax(aus[au.au], rest.geometric[au.column])
    return aus


@dataclass(frozen=True)
class Rest:
    """One video's faces against their resting faces: the baselines (track_id ->
    Baseline), and per row of its features the RELATIVE_COLUMNS and GEOMETRIC_COLUMNS."""

    baselines: dict[int, Baseline]
    relative: pd.DataFrame
    geometric: pd.DataFrame


def against_rest(features: pd.DataFrame, people: dict[int, Baseline] | None = None) -> Rest:
    """`features` against each track's resting face: its person's (`people`: track_id ->
    a person's baseline, --people), else its own where it has one (emotrack.baselines)."""
    basis = with_aus(features)
    baselines = track_baselines(basis) | (people or {})
    relative = relative_aus(basis, baselines)
    geometric = geometric_aus(basis, baselines, relative)
    return Rest(baselines, relative.set_axis(RELATIVE_COLUMNS, axis=1), geometric)


def smooth(probs: np.ndarray, features: pd.DataFrame, window_s: float) -> np.ndarray:
    """Per face track of `features`, each row's `probs` averaged over the track's rows
    within window_s / 2 seconds of it (by timestamp)."""
    smoothed = np.zeros_like(probs)
    times = features["timestamp_s"].to_numpy(np.float64)
    for _, rows in features.groupby("track_id", sort=True).indices.items():
        rows = rows[np.argsort(times[rows], kind="stable")]
        t = times[rows]
        sums = np.vstack([np.zeros((1, probs.shape[1])), np.cumsum(probs[rows], axis=0)])
        lo = np.searchsorted(t, t - window_s / 2 - 1e-6, side="left")
        hi = np.searchsorted(t, t + window_s / 2 + 1e-6, side="right")
        smoothed[rows] = (sums[hi] - sums[lo]) / (hi - lo)[:, None]
    return smoothed


def temporal_scores(features: pd.DataFrame, model: Any, cfg: TemporalConfig) -> FrameScores:
    """The temporal model run over each face track (frames where the face was missed are fed
    to it as absent), aligned back to the rows of `features`."""
    probs = np.zeros((len(features), 7))
    va = np.zeros((len(features), 2))
    intensity = np.zeros(len(features))
    logits = logits_of(features)
    extra = extra_inputs(features, cfg)
    frame_index = features["frame_index"].to_numpy()
    for _, rows in features.groupby("track_id", sort=True).indices.items():
        rows = rows[np.argsort(frame_index[rows], kind="stable")]
        span = frame_index[rows] - frame_index[rows[0]]
        seq_logits = np.zeros((span[-1] + 1, 7))
        seq_extra = np.zeros((span[-1] + 1, extra.shape[1]))
        present = np.zeros(span[-1] + 1, bool)
        seq_logits[span] = logits[rows]
        seq_extra[span] = extra[rows]
        present[span] = True
        out = predict_track(model, model_inputs(seq_logits, present, seq_extra), cfg)
        probs[rows] = out["expression"][span]
        va[rows] = out["va"][span]
        intensity[rows] = out["intensity"][span]
    probs = probs / probs.sum(axis=1, keepdims=True) if len(probs) else probs
    return FrameScores(probs, va, intensity, cfg.version)


def score_frames(
    features: pd.DataFrame,
    scores: FrameScores | None = None,
    rest: Rest | None = None,
) -> pd.DataFrame:
    """The analyst-facing per-frame table: one row per face per frame of `features`.

    Adds emotion (argmax label), p_* (summing to 1), valence and arousal in [-1, 1],
    intensity in [0, 1], model_version and reliable (emotrack.evidence.reliable); `scores`
    defaults to the CNN frame by frame. The face's measures (emotrack.schema.FACE_MEASURES:
    pose, blendshapes, action units) are copied from `features` (NaN where it has none); the
    action units are computed from the blendshapes, so that features written before them
    give tracks with them; and the action units against each track's resting face
    (`rest`, default: against_rest(features)), relative and geometric.
    """
    scores = cnn_frame_scores(features) if scores is None else scores
    probs, va = scores.probs, scores.va
    tracks = features.reindex(columns=FACE_COLUMNS)  # `detected`: null in rows before 0.4
    tracks["emotion"] = [EMOTIONS[i] for i in probs.argmax(axis=1)] if len(features) else []
    for column, values in zip(PROB_COLUMNS, probs.T, strict=True):
        tracks[column] = values.astype(np.float32)
    tracks["valence"] = va[:, 0].astype(np.float32)
    tracks["arousal"] = va[:, 1].astype(np.float32)
    tracks["intensity"] = scores.intensity.astype(np.float32)
    tracks["model_version"] = scores.model_version
    tracks["reliable"] = reliable(features)
    measures = features.reindex(columns=MEASURE_COLUMNS).astype(np.float32)
    measures[AU_COLUMNS] = action_units(measures)
    rest = against_rest(features) if rest is None else rest
    parts = [tracks, measures, rest.relative, rest.geometric]
    return pd.concat([part.reset_index(drop=True) for part in parts], axis=1)


def with_aus(features: pd.DataFrame) -> pd.DataFrame:
    """What a resting face is made from (emotrack.baselines): each row's time, track, CNN
    logits, action units (computed from its blendshapes, as score_frames does) and shape."""
    basis = features[["timestamp_s", "track_id", "logits"]].copy()
    measures = features.reindex(columns=MEASURE_COLUMNS)
    basis[AU_COLUMNS] = action_units(measures)
    basis[SHAPE_COLUMNS] = measures[SHAPE_COLUMNS]
    return basis


def summarise_video(
    tracks: pd.DataFrame,
    frames_analysed: int,
    model_version: str,
    duration_s: float | None = None,
) -> dict[str, object]:
    """One summary row for a video from its tracks table.

    Frames, observations and tracks count every face seen; the rest counts the reliable
    observations only (emotrack.evidence.reliable_rows): shares are fractions of them
    (face x frame) labelled with each emotion, dominant_emotion is the most frequent label,
    None where no reliable face was seen. valence_series: see valence_series (over
    duration_s, else up to the last face seen).
    """
    trusted = reliable_rows(tracks)
    counts = trusted["emotion"].value_counts()
    n = len(trusted)
    summary: dict[str, object] = {
        "frames_analysed": int(frames_analysed),
        "frames_with_face": int(tracks["frame_index"].nunique()),
        "face_observations": len(tracks),
        "n_tracks": int(tracks["track_id"].nunique()),
        "reliable_observations": n,
        "dominant_emotion": str(counts.idxmax()) if n else None,
    }
    for emotion, column in zip(EMOTIONS, SHARE_COLUMNS, strict=True):
        summary[column] = float(counts.get(emotion, 0) / n) if n else None
    summary["mean_valence"] = float(trusted["valence"].mean()) if n else None
    summary["mean_arousal"] = float(trusted["arousal"].mean()) if n else None
    summary["valence_series"] = valence_series(trusted, duration_s)
    summary["model_version"] = model_version
    return row("summaries", **summary)


def valence_series(tracks: pd.DataFrame, duration_s: float | None = None) -> list[float | None]:
    """The mean valence of all faces in each of SERIES_POINTS equal stretches of
    [0, duration_s] (None where no face was seen); [] for a video without faces."""
    if tracks.empty:
        return []
    times = tracks["timestamp_s"].to_numpy(np.float64)
    end = max(duration_s or 0.0, float(times.max()), 1e-9)
    bins = np.minimum((times / end * SERIES_POINTS).astype(int), SERIES_POINTS - 1)
    sums = np.bincount(bins, tracks["valence"].to_numpy(np.float64), SERIES_POINTS)
    counts = np.bincount(bins, minlength=SERIES_POINTS)
    means = sums / np.maximum(counts, 1)
    return [float(v) if c else None for v, c in zip(means, counts, strict=True)]
