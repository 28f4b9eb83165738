"""Face geometry: 478 landmarks, head pose and 52 blendshapes for faces already found.

MediaPipe's Face Landmarker bundle (`face_landmarker.task`, Apache-2.0, pinned in
emotrack.assets) holds the models; LiteRT (`ai-edge-litert`, already used by the detector)
runs two of them, without the `mediapipe` package:
- `face_landmarks_detector.tflite` (face mesh v2): a 256x256 RGB crop in [0, 1] -> 478 points
  (x, y in crop pixels, z in the same scale, smaller = nearer the camera; the last 10 are
  the irises) and a face-presence logit. The crop is MediaPipe's: a square 1.5 times the
  face's box, centred on it, turned so that the eyes are level.
- `face_blendshapes.tflite`: 146 of those points (x, y in pixels of the frame) -> 52 scores.
Head pose is the rotation of MediaPipe's canonical face model (from the bundle's geometry
metadata) onto the landmarks, fitted with the metadata's Procrustes weights.

Coordinates: pixels of the frame given, x to the right, y down, z away from the camera.
Pose, in degrees, as seen in the image: yaw > 0 when the nose points to the image's right
(the person turns to their left), pitch > 0 when the nose points up, roll > 0 when the head
leans clockwise on screen (the eye on the image's right is lower).
"""

from __future__ import annotations

import functools
import struct
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

MESH_MODEL = "face_landmarks_detector.tflite"
BLENDSHAPES_MODEL = "face_blendshapes.tflite"
GEOMETRY = "geometry_pipeline_metadata_landmarks.binarypb"
LANDMARKS = 478
MESH_POINTS = 468  # the face's; the last 10 are the irises'
CROP = 256
ROI_SCALE = 1.5  # MediaPipe's face detection -> landmark crop (RectTransformation 1.5 x 1.5)
MIN_PRESENCE = 0.5  # MediaPipe's min_face_presence_confidence
MAX_LEAN_DEG = 10.0  # a crop whose face leans more than this is measured again, level

# MediaPipe's names, in the model's output order (face_blendshapes_graph.cc).
BLENDSHAPE_NAMES = (
    "_neutral", "browDownLeft", "browDownRight", "browInnerUp", "browOuterUpLeft",
    "browOuterUpRight", "cheekPuff", "cheekSquintLeft", "cheekSquintRight", "eyeBlinkLeft",
    "eyeBlinkRight", "eyeLookDownLeft", "eyeLookDownRight", "eyeLookInLeft", "eyeLookInRight",
    "eyeLookOutLeft", "eyeLookOutRight", "eyeLookUpLeft", "eyeLookUpRight", "eyeSquintLeft",
    "eyeSquintRight", "eyeWideLeft", "eyeWideRight", "jawForward", "jawLeft", "jawOpen",
    "jawRight", "mouthClose", "mouthDimpleLeft", "mouthDimpleRight", "mouthFrownLeft",
    "mouthFrownRight", "mouthFunnel", "mouthLeft", "mouthLowerDownLeft", "mouthLowerDownRight",
    "mouthPressLeft", "mouthPressRight", "mouthPucker", "mouthRight", "mouthRollLower",
    "mouthRollUpper", "mouthShrugLower", "mouthShrugUpper", "mouthSmileLeft", "mouthSmileRight",
    "mouthStretchLeft", "mouthStretchRight", "mouthUpperUpLeft", "mouthUpperUpRight",
    "noseSneerLeft", "noseSneerRight",
)  # fmt: skip
# Names of the outputs, as columns: head pose in degrees (Geometry.pose), the 52 scores.
POSE_COLUMNS = ["yaw_deg", "pitch_deg", "roll_deg"]
# The face's shape (Geometry.shape): distances between landmarks of the face turned to face
# the camera and scaled to MediaPipe's canonical face (centimetres of that face), each the
# mean of the face's two sides. What the geometric action units compare with the face's
# resting face (emotrack.baselines).
SHAPE_COLUMNS = [
    "shape_brow_eye_cm",  # the middle of the brows above the upper eyelids (AU4 lowers it)
    "shape_brow_gap_cm",  # between the inner ends of the brows (AU4 draws them together)
    "shape_wing_eye_cm",  # the nose wings below the inner eye corners (AU9 raises them)
    "shape_lip_nose_cm",  # the upper lip's middle below the nose (AU10 raises the lip)
    "shape_corner_drop_cm",  # the lip corners below the mouth's middle (AU15 pulls them down)
]
BLENDSHAPE_COLUMNS = [f"bs_{name}" for name in BLENDSHAPE_NAMES]
# The 146 landmarks the blendshape model reads (kLandmarksSubsetIdxs).
BLENDSHAPE_LANDMARKS = (
    0, 1, 4, 5, 6, 7, 8, 10, 13, 14, 17, 21, 33, 37, 39, 40, 46, 52, 53, 54, 55, 58, 61, 63, 65,
    66, 67, 70, 78, 80, 81, 82, 84, 87, 88, 91, 93, 95, 103, 105, 107, 109, 127, 132, 133, 136,
    144, 145, 146, 148, 149, 150, 152, 153, 154, 155, 157, 158, 159, 160, 161, 162, 163, 168,
    172, 173, 176, 178, 181, 185, 191, 195, 197, 234, 246, 249, 251, 263, 267, 269, 270, 276,
    282, 283, 284, 285, 288, 291, 293, 295, 296, 297, 300, 308, 310, 311, 312, 314, 317, 318,
    321, 323, 324, 332, 334, 336, 338, 356, 361, 362, 365, 373, 374, 375, 377, 378, 379, 380,
    381, 382, 384, 385, 386, 387, 388, 389, 390, 397, 398, 400, 402, 405, 409, 415, 454, 466,
    468, 469, 470, 471, 472, 473, 474, 475, 476, 477,
)  # fmt: skip
# Landmarks of the eye corners (image-left eye: 33 outer, 133 inner; image-right eye: 362
# inner, 263 outer) and of the mouth's corners (61, 291).
LEFT_EYE, RIGHT_EYE, MOUTH = (33, 133), (362, 263), (61, 291)
NOSE_TIP = 1


@dataclass(frozen=True)
class Geometry:
    """One face's geometry; every field is None when the landmarker could not fit the face."""

    landmarks: np.ndarray | None  # float32 (478, 3): x, y, z in pixels of the frame
    pose: tuple[float, float, float] | None  # yaw, pitch, roll in degrees
    blendshapes: np.ndarray | None  # float32 (52,), BLENDSHAPE_NAMES order, in [0, 1]
    presence: float | None  # face-presence score in [0, 1]
    shape: np.ndarray | None = None  # float64 (5,), SHAPE_COLUMNS order, centimetres


MISSED = Geometry(None, None, None, None)


class FaceLandmarker:
    """The mesh and blendshape models in LiteRT interpreters, and the canonical face."""

    def __init__(self, bundle: Path) -> None:
        from .tensorflow_runtime import RUNTIME, quiet_native_stderr

        threads = RUNTIME.threads
        with zipfile.ZipFile(bundle) as task:
            mesh, shapes = task.read(MESH_MODEL), task.read(BLENDSHAPES_MODEL)
            self.canonical, self.weights = canonical_face(task.read(GEOMETRY))
        with quiet_native_stderr():  # LiteRT announces its XNNPACK delegate on stderr
            from ai_edge_litert.interpreter import Interpreter

            self.mesh = Interpreter(model_content=mesh, num_threads=threads)
            self.shapes = Interpreter(model_content=shapes, num_threads=threads)
            self.mesh.allocate_tensors()
            self.shapes.allocate_tensors()
        (image,) = self.mesh.get_input_details()
        assert tuple(image["shape"]) == (1, CROP, CROP, 3), image["shape"]
        self.mesh_input = image["index"]
        # Outputs: points (1, 1, 1, 1434), presence logit (1, 1, 1, 1), and a (1, 1) we ignore.
        outputs = {tuple(o["shape"]): o["index"] for o in self.mesh.get_output_details()}
        self.points_output = outputs[(1, 1, 1, LANDMARKS * 3)]
        self.presence_output = outputs[(1, 1, 1, 1)]
        (points,) = self.shapes.get_input_details()
        assert tuple(points["shape"]) == (1, len(BLENDSHAPE_LANDMARKS), 2), points["shape"]
        self.shapes_input = points["index"]
        self.shapes_output = self.shapes.get_output_details()[0]["index"]

    def measure(
        self, frame: np.ndarray, box: tuple[float, float, float, float], roll_deg: float = 0.0
    ) -> Geometry:
        """The geometry of the face in `box` (x, y, w, h, pixels of `frame`, uint8 RGB).

        The crop is turned by roll_deg first (a followed face's roll in its last frame), and
        once more, level, when the face's eyes lean by more than 10 degrees in it: the mesh
        model was trained on level faces.
        """
        points, presence = self._mesh(frame, box, roll_deg)
        if presence >= MIN_PRESENCE:
            roll = eye_roll_deg(points)
            if abs(roll - roll_deg) > MAX_LEAN_DEG:
                points, presence = self._mesh(frame, box, roll)
        if presence < MIN_PRESENCE:
            return Geometry(None, None, None, presence)
        pose = head_pose(points, self.canonical, self.weights)
        shape = face_shape(frontal(points, self.canonical, self.weights))
        return Geometry(points, pose, self._blendshapes(points), presence, shape)

    def _mesh(
        self, frame: np.ndarray, box: tuple[float, float, float, float], roll_deg: float
    ) -> tuple[np.ndarray, float]:
        import cv2  # here, not at the top: the lake's schema imports this module's names

        to_crop = roi_transform(box, roll_deg)
        crop = cv2.warpAffine(frame, to_crop, (CROP, CROP), flags=cv2.INTER_LINEAR)
        self.mesh.set_tensor(self.mesh_input, (crop[None].astype(np.float32) / 255.0))
        self.mesh.invoke()
        raw = self.mesh.get_tensor(self.points_output).reshape(LANDMARKS, 3)
        logit = float(self.mesh.get_tensor(self.presence_output).reshape(()))
        presence = 1.0 / (1.0 + np.exp(-logit))
        back = cv2.invertAffineTransform(to_crop)
        xy = raw[:, :2] @ back[:, :2].T + back[:, 2]
        scale = float(np.sqrt(abs(np.linalg.det(back[:, :2]))))
        return np.column_stack([xy, raw[:, 2] * scale]).astype(np.float32), presence

    def _blendshapes(self, points: np.ndarray) -> np.ndarray:
        subset = points[list(BLENDSHAPE_LANDMARKS), :2][None].astype(np.float32)
        self.shapes.set_tensor(self.shapes_input, subset)
        self.shapes.invoke()
        return self.shapes.get_tensor(self.shapes_output).reshape(-1).astype(np.float32)


@functools.cache
def load_face_landmarker(bundle: Path) -> FaceLandmarker:
    """The landmarker of the verified bundle, loaded once per process."""
    return FaceLandmarker(bundle)


def roi_transform(box: tuple[float, float, float, float], roll_deg: float) -> np.ndarray:
    """The 2x3 affine map from frame pixels to the landmark model's crop: a square of
    ROI_SCALE times the box's longer side around its centre, turned by roll_deg (so that a
    head leaning by roll_deg comes out level)."""
    x, y, w, h = box
    scale = CROP / (ROI_SCALE * max(w, h))
    cos, sin = scale * np.cos(np.radians(roll_deg)), scale * np.sin(np.radians(roll_deg))
    linear = np.array([[cos, sin], [-sin, cos]])  # cv2.getRotationMatrix2D's convention
    centre = np.array([x + w / 2, y + h / 2])
    return np.column_stack([linear, CROP / 2 - linear @ centre])


def eye_roll_deg(points: np.ndarray) -> float:
    """How far the line between the outer eye corners leans, clockwise on screen, degrees."""
    dx, dy = points[RIGHT_EYE[1], :2] - points[LEFT_EYE[0], :2]
    return float(np.degrees(np.arctan2(dy, dx)))


def five_points(landmarks: np.ndarray) -> np.ndarray:
    """float32 (5, 2): the points face recognisers align on (models.face_identity.TEMPLATE's
    order), from the 478 landmarks (x, y in pixels): the centre of the eye on the image's
    left, of the other eye, the nose tip, the mouth corner on the image's left, the other."""
    xy = np.asarray(landmarks[_FIVE, :2], np.float32)  # one gather: this runs every frame
    return np.concatenate([(xy[0:2] + xy[2:4]) / 2, xy[4:]])


_FIVE = [LEFT_EYE[0], RIGHT_EYE[0], LEFT_EYE[1], RIGHT_EYE[1], NOSE_TIP, *MOUTH]


def _fit(
    points: np.ndarray, canonical: np.ndarray, weights: np.ndarray
) -> tuple[float, np.ndarray, np.ndarray, np.ndarray]:
    """The similarity that best maps the canonical face onto `points` (weighted Procrustes):
    points ~ scale * rotation @ (canonical - mean_s) + mean_t; (scale, rotation, mean_s,
    mean_t)."""
    source = canonical
    target = points[: len(canonical)].astype(np.float64)
    w = weights / weights.sum()
    mean_s, mean_t = w @ source, w @ target
    covariance = ((target - mean_t) * w[:, None]).T @ (source - mean_s)
    u, singular, vt = np.linalg.svd(covariance)
    fix = np.diag([1.0, 1.0, np.sign(np.linalg.det(u @ vt))])
    rotation = u @ fix @ vt  # canonical axes -> image axes (x right, y down, z away)
    spread = float(w @ ((source - mean_s) ** 2).sum(axis=1))
    scale = float((singular * np.diag(fix)).sum()) / spread
    return scale, rotation, mean_s, mean_t


def head_pose(
    points: np.ndarray, canonical: np.ndarray, weights: np.ndarray
) -> tuple[float, float, float]:
    """(yaw, pitch, roll) in degrees of the rotation that best maps the canonical face onto
    `points` (weighted Procrustes, scale included; see the module's docstring for signs)."""
    _, rotation, _, _ = _fit(points, canonical, weights)
    nose = rotation @ np.array([0.0, 0.0, -1.0])  # where the face points
    across = rotation @ np.array([1.0, 0.0, 0.0])  # the face's own left-to-right
    yaw = np.degrees(np.arctan2(nose[0], -nose[2]))
    pitch = np.degrees(np.arctan2(-nose[1], np.hypot(nose[0], nose[2])))
    roll = np.degrees(np.arctan2(across[1], across[0]))
    return float(yaw), float(pitch), float(roll)


def frontal(points: np.ndarray, canonical: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """float64 (468, 3): the face's mesh points turned to face the camera and scaled onto
    the canonical face (its units, centimetres; image axes)."""
    scale, rotation, mean_s, mean_t = _fit(points, canonical, weights)
    face = points[: len(canonical)].astype(np.float64)
    return (face - mean_t) @ rotation / scale + mean_s


# Mesh points of each side (the image's left, then right) that SHAPE_COLUMNS measure.
_BROW_MIDDLE = ((65, 52, 105), (295, 282, 334))  # above the eye's middle
_UPPER_LID = (159, 386)
_INNER_BROW = (55, 285)
_NOSE_WING = (64, 294)
_INNER_EYE = (LEFT_EYE[1], RIGHT_EYE[0])
_UPPER_LIP, _BELOW_NOSE = 0, 2  # the upper lip's top edge, the point under the nose
_LIPS_MIDDLE = (13, 14)  # where the lips meet, upper and lower


def face_shape(face: np.ndarray) -> np.ndarray:
    """float64 (5,): SHAPE_COLUMNS of a frontal face (frontal's output; y down)."""
    y = face[:, 1]
    sides = zip(_UPPER_LID, _BROW_MIDDLE, strict=True)
    brow_eye = np.mean([y[lid] - y[list(brow)].mean() for lid, brow in sides])
    brow_gap = abs(face[_INNER_BROW[1], 0] - face[_INNER_BROW[0], 0])
    wing_eye = np.mean(y[list(_NOSE_WING)] - y[list(_INNER_EYE)])
    lip_nose = y[_UPPER_LIP] - y[_BELOW_NOSE]
    corner_drop = np.mean(y[list(MOUTH)]) - np.mean(y[list(_LIPS_MIDDLE)])
    return np.array([brow_eye, brow_gap, wing_eye, lip_nose, corner_drop], np.float64)


def canonical_face(metadata: bytes) -> tuple[np.ndarray, np.ndarray]:
    """MediaPipe's canonical face (468, 3) in image axes (x right, y down, z away from the
    camera), and its Procrustes weights (468,): from the bundle's GeometryPipelineMetadata
    (mediapipe/modules/face_geometry/protos/geometry_pipeline_metadata.proto)."""
    fields = list(_protobuf_fields(metadata))
    (mesh,) = [value for number, value in fields if number == 1]
    floats = [value for number, value in _protobuf_fields(mesh) if number == 3]
    vertices = np.array([struct.unpack("<f", v)[0] for v in floats], np.float64).reshape(-1, 5)
    canonical = vertices[:, :3] * np.array([1.0, -1.0, -1.0])  # model: y up, z to the camera
    weights = np.zeros(len(canonical))
    for number, value in fields:
        if number == 2:
            ref = dict(_protobuf_fields(value))
            weights[int(ref.get(1, 0))] = struct.unpack("<f", ref[2])[0]
    return canonical, weights


def _protobuf_fields(data: bytes):  # type: ignore[no-untyped-def]
    """(field number, value) of a protobuf message: an int for varints, bytes otherwise."""
    i = 0
    while i < len(data):
        key, i = _varint(data, i)
        number, wire = key >> 3, key & 7
        if wire == 0:
            value, i = _varint(data, i)
            yield number, value
        elif wire == 2:
            size, i = _varint(data, i)
            yield number, data[i : i + size]
            i += size
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            yield number, data[i : i + size]
            i += size
        else:
            raise ValueError(f"unexpected protobuf wire type {wire}")


def _varint(data: bytes, i: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[i]
        i += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return result, i
