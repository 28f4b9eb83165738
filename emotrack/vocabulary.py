"""The words every part of emotrack shares: the 7 expressions, where each sits on the
valence/arousal circumplex, and the two functions that turn a network's outputs into them.

At the bottom of the package: it imports nothing of emotrack's, and the networks (models/)
need nothing of it.
"""

from __future__ import annotations

import numpy as np

# The FER2013 labels 0..6 (Goodfellow et al. 2013) in order, which is the order of the
# expression CNN's 7 outputs (models/expression_cnn.py), as the fer package names them.
EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
NEUTRAL = EMOTIONS.index("neutral")

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


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of float (N, K) logits; rows sum to 1."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    return exp / exp.sum(axis=1, keepdims=True)


def valence_arousal(probs: np.ndarray) -> np.ndarray:
    """(N, 2) valence and arousal in [-1, 1]: expected circumplex point under probs (N, 7)."""
    return probs @ CIRCUMPLEX
