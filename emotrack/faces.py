"""Faces: detections per frame, linked across frames into tracks, cropped for the CNN."""

from __future__ import annotations

from dataclasses import dataclass, field

import cv2
import numpy as np

from emotrack.models.face_identity import similarity
from emotrack.models.face_landmarker import LEFT_EYE, MESH_POINTS, MOUTH, RIGHT_EYE


@dataclass(frozen=True)
class Face:
    """One detected face: box in pixels of the upright frame, detector confidence in [0, 1],
    and, from a detection, its keypoints: x, y of the eye on the image's left, the other
    eye, the nose tip and the mouth's centre (None: a box carried by landmarks)."""

    x: float
    y: float
    w: float
    h: float
    score: float
    keypoints: tuple[float, ...] | None = None


def faces_from_boxes(boxes: np.ndarray, min_px: float = 0) -> list[Face]:
    """A detector's float32 (N, 5) [x, y, w, h, score] or (N, 13) rows (with keypoints,
    models.face_detector) -> Faces with both sides >= min_px. Best first."""
    assert boxes.ndim == 2 and boxes.shape[1] in (5, 13), boxes.shape
    faces = [
        Face(float(x), float(y), float(w), float(h), float(score), tuple(map(float, rest)) or None)
        for x, y, w, h, score, *rest in boxes
        if min(w, h) >= max(min_px, 1)
    ]
    return sorted(faces, key=lambda f: -f.score)


def iou(a: Face, b: Face) -> float:
    """Intersection over union of two boxes, in [0, 1]."""
    ix = max(0.0, min(a.x + a.w, b.x + b.w) - max(a.x, b.x))
    iy = max(0.0, min(a.y + a.h, b.y + b.h) - max(a.y, b.y))
    inter = ix * iy
    union = a.w * a.h + b.w * b.h - inter
    return inter / union if union > 0 else 0.0


@dataclass
class FaceTracker:
    """Links faces across consecutive analysed frames by box overlap (greedy IoU matching).

    A track survives up to `max_gap` analysed frames without a detection; after that the same
    person gets a new track_id. Ids are 0, 1, 2, ... in order of first appearance per video.
    """

    min_iou: float = 0.3
    max_gap: int = 5
    _last: dict[int, tuple[int, Face]] = field(default_factory=dict)  # id -> (frame, box)
    _next_id: int = 0

    def update(self, frame_index: int, faces: list[Face]) -> list[int]:
        """Track ids for `faces` (same order) seen at `frame_index` (increasing)."""
        self._last = {
            tid: seen
            for tid, seen in self._last.items()
            if frame_index - seen[0] <= self.max_gap + 1
        }
        pairs = sorted(
            (
                (iou(face, box), fi, tid)
                for fi, face in enumerate(faces)
                for tid, (_, box) in self._last.items()
            ),
            reverse=True,
        )
        ids: list[int | None] = [None] * len(faces)
        taken: set[int] = set()
        for overlap, fi, tid in pairs:
            if overlap < self.min_iou:
                break
            if ids[fi] is None and tid not in taken:
                ids[fi] = tid
                taken.add(tid)
        for fi, face in enumerate(faces):
            if ids[fi] is None:
                ids[fi] = self._next_id
                self._next_id += 1
            self._last[ids[fi]] = (frame_index, face)  # type: ignore[index]
        return [int(i) for i in ids]  # type: ignore[arg-type]

    def restart(self, track_id: int) -> int:
        """End the track `track_id`: its face, as last updated, goes on under a new id
        (returned), as if it had just appeared (emotrack.identity: someone else)."""
        new_id, self._next_id = self._next_id, self._next_id + 1
        self._last[new_id] = self._last.pop(track_id)
        return new_id


def landmark_box(landmarks: np.ndarray) -> tuple[float, float, float, float]:
    """(x, y, w, h): the upright box around a face's mesh points (the irises left out)."""
    xy = landmarks[:MESH_POINTS, :2]
    (x0, y0), (x1, y1) = xy.min(axis=0), xy.max(axis=0)
    return float(x0), float(y0), float(x1 - x0), float(y1 - y0)


def box_in_landmarks(face: Face, landmarks: np.ndarray) -> tuple[float, float, float, float]:
    """Where the detector put `face`'s box, in units of its landmark_box (dx, dy, w, h): what
    face_from_landmarks needs to put a detector's box around the same face's next mesh."""
    x, y, w, h = landmark_box(landmarks)
    return (face.x - x) / w, (face.y - y) / h, face.w / w, face.h / h


def face_from_landmarks(
    landmarks: np.ndarray, place: tuple[float, float, float, float], score: float
) -> Face:
    """The box the detector would give the face of `landmarks`, from where it put the box
    last time (box_in_landmarks); score: that detection's."""
    x, y, w, h = landmark_box(landmarks)
    dx, dy, sw, sh = place
    return Face(x + dx * w, y + dy * h, sw * w, sh * h, score)


# Stored landmarks (features.landmarks_i16): int16 in 1/LANDMARK_UNITS of the face box's width,
# from the box's top-left corner (z from the face's middle). 0.025 % of the face, whatever
# the resolution, 3 times fewer bytes than float32 pixels, and within range for points up to
# 8 box widths away (a face's lie within 2).
LANDMARK_UNITS = 4096


def pack_landmarks(landmarks: np.ndarray, face: Face) -> np.ndarray:
    """(478, 3) float pixels -> the stored int16 (1434,), relative to `face`'s box."""
    scale = LANDMARK_UNITS / face.w
    relative = (landmarks - np.array([face.x, face.y, 0.0])) * scale
    return np.clip(np.round(relative), -32768, 32767).astype(np.int16).reshape(-1)


def unpack_landmarks(stored: np.ndarray, face: Face) -> np.ndarray:
    """pack_landmarks' inverse: (478, 3) float32 pixels of the upright frame."""
    points = np.asarray(stored, np.float32).reshape(-1, 3) * np.float32(face.w / LANDMARK_UNITS)
    return points + np.array([face.x, face.y, 0.0], np.float32)


def frame_signature(frame: np.ndarray) -> np.ndarray:
    """A 32x18 gray thumbnail of a uint8 RGB frame, int16: what scene_change compares."""
    step = max(1, min(frame.shape[:2]) // 72)  # every step-th pixel first: cheap at 1080p
    small = cv2.resize(frame[::step, ::step], (32, 18), interpolation=cv2.INTER_AREA)
    return cv2.cvtColor(small, cv2.COLOR_RGB2GRAY).astype(np.int16)


def scene_change(before: np.ndarray, after: np.ndarray) -> float:
    """How different two frame_signatures are: mean absolute difference, in gray levels."""
    return float(np.abs(after - before).mean())


def crop_face(frame: np.ndarray, face: Face, margin: float = 0.1, size: int = 64) -> np.ndarray:
    """A face ready for the expression CNN.

    frame: uint8 (H, W, 3) RGB. The box is grown by `margin` of its size on each side (the fer
    package pads its boxes the same way), clipped to the frame, turned gray, resized to
    size x size. Returns float32 (size, size, 1) in [-1, 1] (x / 255, - 0.5, * 2, as in fer).
    """
    assert frame.ndim == 3 and frame.shape[2] == 3 and frame.dtype == np.uint8, frame.shape
    height, width = frame.shape[:2]
    x0 = int(max(0, np.floor(face.x - margin * face.w)))
    y0 = int(max(0, np.floor(face.y - margin * face.h)))
    x1 = int(min(width, np.ceil(face.x + face.w * (1 + margin))))
    y1 = int(min(height, np.ceil(face.y + face.h * (1 + margin))))
    gray = cv2.cvtColor(np.ascontiguousarray(frame[y0:y1, x0:x1]), cv2.COLOR_RGB2GRAY)
    small = cv2.resize(gray, (size, size), interpolation=cv2.INTER_AREA)
    return ((small.astype(np.float32) / 255.0 - 0.5) * 2.0)[..., None]


# Where aligned_crop puts the eyes' centres and the mouth's centre, as fractions of the crop:
# their mean place in crop_face's crops of the upright faces of the real-face set and the
# talking head (measured by benchmarks/bench_crops.py), so that the CNN sees faces at the
# scale and place it was given so far, only level and centred.
ALIGNED_TEMPLATE = np.array([[0.326, 0.292], [0.674, 0.292], [0.5, 0.643]], np.float32)


def crop_points(landmarks: np.ndarray) -> np.ndarray:
    """(3, 2) centres of the image-left eye, the image-right eye and the mouth, from the 478
    landmarks (x, y in pixels)."""
    return np.array(
        [
            landmarks[list(LEFT_EYE), :2].mean(axis=0),
            landmarks[list(RIGHT_EYE), :2].mean(axis=0),
            landmarks[list(MOUTH), :2].mean(axis=0),
        ],
        np.float32,
    )


def aligned_crop(frame: np.ndarray, landmarks: np.ndarray, size: int = 64) -> np.ndarray:
    """A face for the expression CNN, as crop_face's but aligned by its landmarks: the
    similarity (rotation, uniform scale, shift) that best maps the eyes' and mouth's centres
    onto ALIGNED_TEMPLATE, so that the eyes are level and the face centred. frame: uint8
    (H, W, 3) RGB; landmarks: (478, 3) in its pixels. float32 (size, size, 1) in [-1, 1]."""
    matrix = similarity(crop_points(landmarks), ALIGNED_TEMPLATE * size)
    shrink = max(1, int(np.ceil(1.0 / np.hypot(*matrix[0, :2]))))  # frame px per crop px
    big = cv2.warpAffine(
        frame,
        matrix * np.float32(shrink),
        (size * shrink, size * shrink),
        flags=cv2.INTER_LINEAR,
        borderMode=cv2.BORDER_REPLICATE,
    )
    gray = cv2.cvtColor(big, cv2.COLOR_RGB2GRAY)
    small = cv2.resize(gray, (size, size), interpolation=cv2.INTER_AREA)  # as crop_face's
    return ((small.astype(np.float32) / 255.0 - 0.5) * 2.0)[..., None]


def thumbnail(frame: np.ndarray, face: Face, pad: float = 0.2, side: int = 128) -> np.ndarray:
    """A face for people to look at: the box grown by `pad` of its longer side, clipped to the
    frame, scaled to at most `side` pixels high. frame and result: uint8 (H, W, 3) RGB (the
    result owns its pixels: the frame can go)."""
    grow = pad * max(face.w, face.h)
    top, left = max(int(face.y - grow), 0), max(int(face.x - grow), 0)
    crop = frame[top : int(face.y + face.h + grow), left : int(face.x + face.w + grow)]
    if crop.shape[0] > side:
        width = max(1, round(crop.shape[1] * side / crop.shape[0]))
        return cv2.resize(crop, (width, side), interpolation=cv2.INTER_AREA)
    return crop.copy()


def jpeg(image: np.ndarray) -> bytes:
    """uint8 (H, W, 3) RGB as JPEG bytes (b"" for an empty image)."""
    if image.size == 0:
        return b""
    ok, data = cv2.imencode(
        ".jpg", cv2.cvtColor(image, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, 85]
    )
    return data.tobytes() if ok else b""
