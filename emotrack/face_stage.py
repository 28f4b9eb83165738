"""Which faces an analysed frame shows, and their geometry: the detector finds faces, their
landmarks follow them (MediaPipe's own video pipeline does the same).

Each face whose mesh fitted in the last analysed frame is measured again in this one, its
crop placed by its last landmarks and turned by its last roll. The detector looks at the
whole frame only when it must find faces:
- on the first frame, and every `detect_every` analysed frames after a detection (faces that
  appear are found within that many frames);
- on a scene cut (the frame's 32x18 gray thumbnail changed by more than `scene_cut` levels);
- when a followed face was lost (its mesh's presence score fell under FOLLOW_PRESENCE: that
  frame is searched at once), or a face found last time could not be followed (its mesh did
  not fit).
A detection that overlaps a followed face (IoU >= min_iou) is that face: it gives this
frame's box and score, and the geometry measured by following stands. The boxes of followed
faces are the detector's, carried over by the landmarks (emotrack.faces.face_from_landmarks),
so that crops and boxes look the same either way. With detect_every=1 the detector runs on
every frame and every face is measured from its detection, as before following existed.
Track ids are still given by emotrack.faces.FaceTracker, from these boxes.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np

from emotrack.faces import (
    Face,
    box_in_landmarks,
    face_from_landmarks,
    frame_signature,
    iou,
    scene_change,
)
from emotrack.models.face_landmarker import MISSED, Geometry, eye_roll_deg

# A followed face whose mesh is less sure than this that a face is there is looked for again
# by the detector, at once: small faces (40 px) otherwise drift off under a weak fit (one
# identity switch in benchmarks/bench_face_stage.py's small-faces clip at MediaPipe's 0.5).
FOLLOW_PRESENCE = 0.8
Detect = Callable[[np.ndarray], list[Face]]  # frame -> faces, best first
Measure = Callable[[np.ndarray, Face, float], Geometry]  # frame, box, roll hint -> geometry


class Seen(NamedTuple):
    """One face in one frame: its box, its geometry, whether the detector saw it there."""

    face: Face
    geometry: Geometry
    detected: bool


@dataclass(eq=False)  # compared by identity
class _Followed:
    geometry: Geometry  # landmarks present
    place: tuple[float, float, float, float]  # the detector's box in landmark_box units
    score: float  # the detector's score, at its last detection


@dataclass
class FaceStage:
    """Faces frame after frame of one stretch of video (state: the faces being followed)."""

    detect: Detect
    measure: Measure | None  # None: no geometry, hence nothing to follow: detect every frame
    detect_every: int = 5
    min_iou: float = 0.3
    scene_cut: float = 20.0
    detector_runs: int = 0
    cut: bool = False  # whether the last frame given to faces() was a scene cut
    _followed: list[_Followed] = field(default_factory=list)
    _since_detection: int = 0
    _must_detect: bool = True
    _signature: np.ndarray | None = None

    def faces(self, frame: np.ndarray) -> list[Seen]:
        """The faces of the next analysed frame (uint8 RGB), detected ones first."""
        if self.measure is None:
            self.detector_runs += 1
            return [Seen(face, MISSED, True) for face in self.detect(frame)]
        signature = frame_signature(frame)
        cut = self._signature is not None and (
            scene_change(self._signature, signature) > self.scene_cut
        )
        self._signature = signature
        self.cut = cut
        following = self.detect_every > 1 and not cut
        followed = self._follow(frame) if following else []
        self._since_detection += 1
        if not (self._must_detect or cut or self._since_detection >= self.detect_every):
            seen = [self._seen(f, detected=False) for f in followed]
            self._followed = followed
            return seen
        self.detector_runs += 1
        self._since_detection = 0
        seen, kept = [], []
        for face in self.detect(frame):
            match = max(followed, key=lambda f: iou(face, self._box(f)), default=None)
            if match is not None and iou(face, self._box(match)) >= self.min_iou:
                followed.remove(match)
                landmarks = match.geometry.landmarks
                assert landmarks is not None
                match = _Followed(match.geometry, box_in_landmarks(face, landmarks), face.score)
                seen.append(Seen(face, match.geometry, True))
                kept.append(match)
                continue
            geometry = self.measure(frame, face, 0.0)
            seen.append(Seen(face, geometry, True))
            if geometry.landmarks is not None:
                place = box_in_landmarks(face, geometry.landmarks)
                kept.append(_Followed(geometry, place, face.score))
        # Faces the mesh still sees but the detector missed this time stay, undetected.
        seen += [self._seen(f, detected=False) for f in followed]
        self._must_detect = any(s.geometry.landmarks is None for s in seen)
        self._followed = kept + followed
        return seen

    def _follow(self, frame: np.ndarray) -> list[_Followed]:
        """The followed faces measured in `frame`, without the lost ones and without repeats
        (two followed faces on one face: the first stays). A loss sets _must_detect."""
        assert self.measure is not None
        kept: list[_Followed] = []
        for face in self._followed:
            last = face.geometry.landmarks
            assert last is not None
            box = face_from_landmarks(last, face.place, face.score)
            geometry = self.measure(frame, box, eye_roll_deg(last))
            if geometry.landmarks is None or (geometry.presence or 0.0) < FOLLOW_PRESENCE:
                self._must_detect = True  # lost, or barely there: the detector looks again
                continue
            moved = _Followed(geometry, face.place, face.score)
            if all(iou(self._box(moved), self._box(k)) < 0.5 for k in kept):
                kept.append(moved)
        return kept

    @staticmethod
    def _box(face: _Followed) -> Face:
        assert face.geometry.landmarks is not None
        return face_from_landmarks(face.geometry.landmarks, face.place, face.score)

    def _seen(self, face: _Followed, detected: bool) -> Seen:
        return Seen(self._box(face), face.geometry, detected)
