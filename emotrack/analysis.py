"""Decode -> faces -> tracks -> CNN features for one video, streamed in small batches."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from itertools import islice
from typing import Any

import numpy as np
import pandas as pd

from emotrack.assets import expression_cnn_path
from emotrack.faces import FACE_COLUMNS, FaceTracker, crop_face, faces_from_mtcnn
from emotrack.settings import Settings
from emotrack.video import VideoSource
from models.expression_cnn import load_expression_cnn, predict_features
from models.face_detector import detect_faces, load_face_detector


@dataclass(frozen=True)
class VideoFeatures:
    """The CNN features of one video: one row per face per analysed frame.

    table columns: frame_index, timestamp_s (seconds from the start), track_id, bbox_x,
    bbox_y, bbox_w, bbox_h (pixels, upright frame), face_score, logits (7 float32, pre-softmax),
    embedding (128 float32, pooled last convolutional block).
    """

    frames_analysed: int
    table: pd.DataFrame


def load_models(settings: Settings) -> tuple[Any, Any]:
    """The face detector and the expression CNN (verified weights), once per process."""
    cnn_path = expression_cnn_path(settings.cache_dir, settings.expression_model_path)
    return load_face_detector(), load_expression_cnn(cnn_path)


def extract_features(
    source: VideoSource, detector: Any, cnn: Any, settings: Settings
) -> VideoFeatures:
    """Run the face detector, tracker and expression CNN over `source` at the analysis rate.

    Holds at most `settings.batch_frames` frames in memory at a time.
    """
    rate = source.analysis_rate(settings.analysis_fps)
    tracker = FaceTracker(
        min_iou=settings.track_min_iou, max_gap=round(settings.track_max_gap_s * rate)
    )
    rows: list[dict[str, Any]] = []
    frames_analysed = 0
    for batch in batched(source.frames(settings.analysis_fps), settings.batch_frames):
        timestamps, frames = zip(*batch, strict=True)
        detections = detect_faces(detector, list(frames))
        crops = []
        for offset, (timestamp, frame, found) in enumerate(
            zip(timestamps, frames, detections, strict=True)
        ):
            index = frames_analysed + offset
            faces = faces_from_mtcnn(found, settings.min_face_score, settings.min_face_px)
            for face, track_id in zip(faces, tracker.update(index, faces), strict=True):
                crops.append(crop_face(frame, face))
                rows.append(
                    {
                        "frame_index": index,
                        "timestamp_s": float(timestamp),
                        "track_id": track_id,
                        "bbox_x": face.x,
                        "bbox_y": face.y,
                        "bbox_w": face.w,
                        "bbox_h": face.h,
                        "face_score": face.score,
                    }
                )
        frames_analysed += len(frames)
        if crops:
            logits, embedding = predict_features(cnn, np.stack(crops))
            for row, lg, em in zip(rows[-len(crops) :], logits, embedding, strict=True):
                row["logits"] = lg
                row["embedding"] = em
    return VideoFeatures(frames_analysed, pd.DataFrame(rows, columns=FEATURE_COLUMNS))


def batched(items: Iterable[Any], size: int) -> Iterator[tuple[Any, ...]]:
    """Consecutive tuples of `size` items (the last may be shorter); Python 3.12's batched."""
    iterator = iter(items)
    while batch := tuple(islice(iterator, size)):
        yield batch


FEATURE_COLUMNS = [*FACE_COLUMNS, "logits", "embedding"]
