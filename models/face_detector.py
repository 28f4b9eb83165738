"""MTCNN face detector (Zhang et al. 2016), as packaged by `mtcnn==1.0.0` with its own weights."""

from __future__ import annotations

import functools
from typing import Any

import numpy as np

from models.tensorflow_runtime import import_tensorflow


@functools.cache
def load_face_detector() -> Any:
    """The MTCNN detector, built once per process (weights ship inside the mtcnn wheel)."""
    import_tensorflow()
    from mtcnn import MTCNN

    return MTCNN(device="CPU:0")


def detect_faces(detector: Any, frames: list[np.ndarray]) -> list[list[dict]]:
    """MTCNN detections for each frame (uint8 (H, W, 3) RGB, all the same size).

    Returns, per frame, dicts with 'box' [x, y, w, h] in pixels and 'confidence' in [0, 1].
    The detector's own min_face_size stays at its default (20 px): in mtcnn 1.0.0 other values
    make it miss large faces (seen here: a 235 px face missed at 24 and 40), so callers drop
    small faces afterwards (emotrack.faces.faces_from_mtcnn).
    """
    if not frames:
        return []
    return detector.detect_faces(list(frames))
