"""Metrics for expression sequences: pure functions over label and value arrays."""

from __future__ import annotations

import numpy as np


def accuracy(truth: np.ndarray, predicted: np.ndarray) -> float:
    return float(np.mean(truth == predicted))


def macro_f1(truth: np.ndarray, predicted: np.ndarray, classes: int = 7) -> float:
    """Unweighted mean of per-class F1 over the classes present in `truth` or `predicted`."""
    scores = []
    for c in range(classes):
        tp = np.sum((truth == c) & (predicted == c))
        fp = np.sum((truth != c) & (predicted == c))
        fn = np.sum((truth == c) & (predicted != c))
        if tp + fp + fn:
            scores.append(2 * tp / (2 * tp + fp + fn))
    return float(np.mean(scores))


def confusion_matrix(truth: np.ndarray, predicted: np.ndarray, classes: int = 7) -> np.ndarray:
    """Counts (classes, classes): rows true class, columns predicted class."""
    matrix = np.zeros((classes, classes), np.int64)
    np.add.at(matrix, (truth, predicted), 1)
    return matrix


def ccc(truth: np.ndarray, predicted: np.ndarray) -> float:
    """Lin's concordance correlation coefficient, in [-1, 1] (1: identical)."""
    mt, mp = truth.mean(), predicted.mean()
    covariance = np.mean((truth - mt) * (predicted - mp))
    return float(2 * covariance / (truth.var() + predicted.var() + (mt - mp) ** 2))


def label_changes_per_minute(labels: np.ndarray, timestamps_s: np.ndarray) -> float:
    """How often the label changes between consecutive observations, per minute of video."""
    minutes = (timestamps_s[-1] - timestamps_s[0]) / 60 if len(labels) > 1 else 0.0
    return float(np.sum(labels[1:] != labels[:-1]) / minutes) if minutes > 0 else 0.0


def per_second_majority(labels: np.ndarray, timestamps_s: np.ndarray) -> dict[int, int]:
    """The most frequent label in each whole second (ties: the smaller label)."""
    seconds = np.floor(timestamps_s).astype(int)
    return {int(s): int(np.bincount(labels[seconds == s]).argmax()) for s in np.unique(seconds)}


def majority_agreement(model: np.ndarray, reference: np.ndarray, timestamps_s: np.ndarray) -> float:
    """Share of seconds where the model's majority label equals the reference's."""
    ours = per_second_majority(model, timestamps_s)
    theirs = per_second_majority(reference, timestamps_s)
    return float(np.mean([ours[s] == theirs[s] for s in theirs]))
