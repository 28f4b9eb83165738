"""Per-frame expression scores and per-video summaries: pure functions over DataFrames."""

from __future__ import annotations

import numpy as np
import pandas as pd

from emotrack.faces import FACE_COLUMNS
from models.expression_cnn import CONFIG as CNN_CONFIG
from models.expression_cnn import EMOTIONS

# Valence and arousal of each expression word in the NRC VAD Lexicon v1.0: Mohammad, S. M.
# (2018), "Obtaining Reliable Human Ratings of Valence, Arousal, and Dominance for 20,000
# English Words", ACL 2018. Scores there are in [0, 1]; we map them to [-1, 1] by 2x - 1.
# Words used: anger, disgust, fear, joy (for happy), sadness, surprise, neutral.
NRC_VAD = {
    "angry": (0.167, 0.865),
    "disgust": (0.052, 0.775),
    "fear": (0.073, 0.840),
    "happy": (0.980, 0.824),
    "sad": (0.052, 0.288),
    "surprise": (0.875, 0.875),
    "neutral": (0.469, 0.184),
}
CIRCUMPLEX = np.array([NRC_VAD[e] for e in EMOTIONS], np.float64) * 2.0 - 1.0  # (7, 2)

# What produced the tracks table's values: the CNN alone, per frame, and valence/arousal as
# the expectation of the NRC VAD coordinates under the CNN's probabilities.
MODEL_VERSION = f"cnn-per-frame:{CNN_CONFIG.version}+va:nrc-vad-v1-expectation"

PROB_COLUMNS = [f"p_{e}" for e in EMOTIONS]
SHARE_COLUMNS = [f"share_{e}" for e in EMOTIONS]


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of float (N, K) logits; rows sum to 1."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def valence_arousal(probs: np.ndarray) -> np.ndarray:
    """(N, 2) valence and arousal in [-1, 1]: expected circumplex point under probs (N, 7)."""
    return probs @ CIRCUMPLEX


def score_frames(features: pd.DataFrame) -> pd.DataFrame:
    """The analyst-facing per-frame table from the CNN features (one row per face per frame).

    Adds emotion (argmax label), p_* (softmax of the logits, summing to 1), valence and
    arousal in [-1, 1], and model_version.
    """
    logits = np.array(features["logits"].tolist(), np.float64).reshape(len(features), 7)
    probs = softmax(logits) if len(features) else np.zeros((0, 7))
    va = valence_arousal(probs)
    tracks = features[FACE_COLUMNS].copy()
    tracks["emotion"] = [EMOTIONS[i] for i in probs.argmax(axis=1)] if len(features) else []
    for column, values in zip(PROB_COLUMNS, probs.T, strict=True):
        tracks[column] = values.astype(np.float32)
    tracks["valence"] = va[:, 0].astype(np.float32)
    tracks["arousal"] = va[:, 1].astype(np.float32)
    tracks["model_version"] = MODEL_VERSION
    return tracks.reset_index(drop=True)


def summarise_video(tracks: pd.DataFrame, frames_analysed: int) -> dict[str, object]:
    """One summary row for a video from its tracks table.

    Shares are fractions of face observations (face x frame) labelled with each emotion;
    dominant_emotion is the most frequent label; None where no face was seen.
    """
    counts = tracks["emotion"].value_counts()
    n = len(tracks)
    summary: dict[str, object] = {
        "frames_analysed": int(frames_analysed),
        "frames_with_face": int(tracks["frame_index"].nunique()),
        "face_observations": n,
        "n_tracks": int(tracks["track_id"].nunique()),
        "dominant_emotion": str(counts.idxmax()) if n else None,
    }
    for emotion, column in zip(EMOTIONS, SHARE_COLUMNS, strict=True):
        summary[column] = float(counts.get(emotion, 0) / n) if n else None
    summary["mean_valence"] = float(tracks["valence"].mean()) if n else None
    summary["mean_arousal"] = float(tracks["arousal"].mean()) if n else None
    summary["model_version"] = MODEL_VERSION
    return summary
