"""Who each face is, within one stretch of video: a face track stays one person.

The identity model (models.face_identity, SFace) costs 15-18 ms a face here (one thread),
more than following a face with its mesh, so it runs only where identity is in question, or
now and then for a better view of the face, never on every frame:
- on a track's first frame (a new face);
- on a cue that the face may now be someone else: a scene cut, or a sudden change of the
  face's look (look: its box grown by a fifth, as a 16x16 gray thumbnail; normalised
  correlation with its last frame's under CUE_BELOW). A cue on a face too turned or too
  small to judge (quality under JUDGE_QUALITY) waits for a better frame;
- every `sample_every` analysed frames, at the first frame from then on whose quality is at
  least GOOD_VIEW of the track's best (or GRACE frames later at any quality).
An embedding that is unlike the track's (cosine under `split_below` against every sample and
against their mean) ends the track at that frame: the face is someone else, and the tracker
gives it a new track id from there on. A change of person that neither a scene cut nor the
look shows is found at the next periodic embedding.

A track's embedding (IdentityStage.embeddings) is the quality-weighted mean of its samples,
its best MAX_SAMPLES views: frontal, large and well fitted (sample_quality). Nothing here is
stored: the embeddings live in memory for the length of a video, unless the run was asked
to recognise people.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np

from emotrack.evidence import TRUST
from emotrack.faces import Face
from emotrack.models.face_identity import TEMPLATE
from emotrack.models.face_landmarker import Geometry, five_points

Embed = Callable[[np.ndarray, np.ndarray], np.ndarray]  # frame, (N, 5, 2) -> (N, 128) unit

# Samples a track keeps (its best views); a track's first sample is always taken.
MAX_SAMPLES = 4
# A face seen with less quality than this is not used to decide that it is someone else.
JUDGE_QUALITY = 0.25
# Normalised correlation of a face's look with its last frame's under which the face may be
# someone else. Measured (benchmarks/bench_identity.py's clips): the 2-min talking head's
# own frames stay at 0.73 and above (crying, hands at the face; 0.68-0.71 where the loop
# jumps), and cuts to another person at the same place read -0.20 to 0.72.
CUE_BELOW = 0.75
LOOK = 16
# A periodic view is taken at a frame whose quality is at least this share of the track's
# best, or GRACE analysed frames after it was due.
GOOD_VIEW, GRACE = 0.8, 10
# The mouth's width over the distance between the eyes, in the identity model's template.
MOUTH_TO_EYES = float(
    np.linalg.norm(TEMPLATE[4] - TEMPLATE[3]) / np.linalg.norm(TEMPLATE[1] - TEMPLATE[0])
)
# Without landmarks or keypoints, the five points are placed in the detector's box at
# these fractions of its width and height (BlazeFace's box runs from the brows to the chin).
BOX_POINTS = np.array([[0.3, 0.3], [0.7, 0.3], [0.5, 0.55], [0.35, 0.78], [0.65, 0.78]], np.float32)


def face_points(face: Face, geometry: Geometry) -> np.ndarray:
    """float32 (5, 2): the face's five points in pixels of its frame: from its landmarks;
    else from the detector's keypoints (--no-geometry: the mouth's corners put either side
    of its centre, along the eyes' line, as far apart as TEMPLATE's are for its eyes);
    else placed in its box (BOX_POINTS)."""
    if geometry.landmarks is not None:
        return five_points(geometry.landmarks)
    if face.keypoints is not None:
        left, right, nose, mouth = np.array(face.keypoints, np.float32).reshape(4, 2)
        half = (right - left) * MOUTH_TO_EYES / 2
        return np.stack([left, right, nose, mouth - half, mouth + half])
    corner, size = np.array([face.x, face.y], np.float32), np.array([face.w, face.h], np.float32)
    return corner + BOX_POINTS * size


def sample_quality(face_width_px: float, geometry: Geometry) -> float:
    """In [0, 1]: how well a face shows who it is, by the same ramps as the expression's
    trust (emotrack.evidence.TRUST): size, |yaw|, |pitch|, the mesh's fit. Without
    geometry, its size alone."""
    values = {"bbox_w": face_width_px, "landmark_score": geometry.presence}
    if geometry.pose is not None:
        values["yaw_deg"], values["pitch_deg"] = abs(geometry.pose[0]), abs(geometry.pose[1])
    quality = 1.0
    for ramp in TRUST:  # in plain floats: this runs for every face of every frame
        value = values.get(ramp.column)
        if value is not None:
            quality *= min(max((value - ramp.none) / (ramp.full - ramp.none), 0.0), 1.0)
    return quality


def face_look(frame: np.ndarray, face: Face) -> np.ndarray:
    """float32 (LOOK * LOOK,): the face's box grown by a fifth of its longer side, as a gray
    thumbnail of zero mean and unit norm (look @ look' is their normalised correlation).
    Cheap: every LOOK-th pixel or so is read."""
    grow = 0.2 * max(face.w, face.h)
    top, left = max(int(face.y - grow), 0), max(int(face.x - grow), 0)
    crop = frame[top : int(face.y + face.h + grow), left : int(face.x + face.w + grow)]
    if crop.size == 0:
        return np.zeros(LOOK * LOOK, np.float32)
    step = max(1, min(crop.shape[:2]) // (2 * LOOK))
    small = cv2.resize(crop[::step, ::step], (LOOK, LOOK), interpolation=cv2.INTER_AREA)
    gray = cv2.cvtColor(small, cv2.COLOR_RGB2GRAY).astype(np.float32).reshape(-1)
    gray -= gray.mean()
    return gray / max(float(np.linalg.norm(gray)), 1e-6)


def mean_embedding(samples: list[tuple[float, np.ndarray]]) -> np.ndarray:
    """float32 (128,) of unit length: the quality-weighted mean of (quality, embedding)
    samples (equal weights where every quality is 0)."""
    weights = np.array([max(q, 1e-3) for q, _ in samples], np.float32)
    mean = np.average(np.stack([e for _, e in samples]), axis=0, weights=weights)
    return (mean / max(float(np.linalg.norm(mean)), 1e-12)).astype(np.float32)


@dataclass
class _Track:
    samples: list[tuple[float, np.ndarray]]  # (quality, unit embedding), best views
    last_sample: int  # analysed frame of the last sample
    look: np.ndarray  # the face's look in its last frame
    pending: bool = False  # a cue seen on a face too poor to judge


@dataclass
class IdentityStage:
    """Face identity frame after frame of one stretch of video (state: each track's
    samples). `restart(track_id)` ends a track and returns the new id its face goes on
    under (emotrack.faces.FaceTracker.restart)."""

    embed: Embed
    restart: Callable[[int], int]
    sample_every: int = 50
    split_below: float = 0.3
    embeddings_run: int = 0
    _tracks: dict[int, _Track] = field(default_factory=dict)

    def update(
        self,
        index: int,
        frame: np.ndarray,
        faces: list[tuple[Face, Geometry, float]],
        ids: list[int],
        cut: bool,
    ) -> list[int]:
        """The track ids of this frame's faces (`ids`, the tracker's), with a face that
        turned out to be someone else under a new id. faces: (face, geometry,
        sample_quality) in the order of `ids`."""
        assert len(faces) == len(ids), (len(faces), len(ids))
        ids = list(ids)
        looks = [face_look(frame, face) for face, _, _ in faces]
        why = [
            self._due(index, ids[i], looks[i], quality, cut)
            for i, (_, _, quality) in enumerate(faces)
        ]
        chosen = [i for i, reason in enumerate(why) if reason is not None]
        if chosen:
            points = np.stack([face_points(faces[i][0], faces[i][1]) for i in chosen])
            embedded = self.embed(frame, points)
            self.embeddings_run += len(chosen)
            for i, embedding in zip(chosen, embedded, strict=True):
                ids[i] = self._sample(index, ids[i], faces[i][2], embedding, looks[i])
        for track_id, look in zip(ids, looks, strict=True):
            self._tracks[track_id].look = look
        return ids

    def embeddings(self) -> dict[int, np.ndarray]:
        """Per track id, float32 (128,) of unit length: its identity (mean_embedding)."""
        return {t: mean_embedding(track.samples) for t, track in self._tracks.items()}

    def _due(
        self, index: int, track_id: int, look: np.ndarray, quality: float, cut: bool
    ) -> str | None:
        """Why this face is embedded now ("new", "cue", "view"), or None."""
        track = self._tracks.get(track_id)
        if track is None:
            return "new"
        changed = look.any() and track.look.any() and float(look @ track.look) < CUE_BELOW
        if cut or track.pending or changed:  # (a blank look, of a flat crop, is no cue)
            track.pending = quality < JUDGE_QUALITY
            return None if track.pending else "cue"
        since = index - track.last_sample
        best = max(q for q, _ in track.samples)
        if since >= self.sample_every + GRACE or (
            since >= self.sample_every and quality >= GOOD_VIEW * best
        ):
            return "view"
        return None

    def _sample(
        self, index: int, track_id: int, quality: float, embedding: np.ndarray, look: np.ndarray
    ) -> int:
        """Add a sample to the track (or a new track); returns the face's track id."""
        track = self._tracks.get(track_id)
        if track is not None and quality >= JUDGE_QUALITY and not self._same(track, embedding):
            track_id = self.restart(track_id)
            track = None
        if track is None:
            self._tracks[track_id] = _Track([(quality, embedding)], index, look)
            return track_id
        track.samples.append((quality, embedding))
        track.samples.sort(key=lambda sample: -sample[0])
        del track.samples[MAX_SAMPLES:]
        track.last_sample = index
        return track_id

    def _same(self, track: _Track, embedding: np.ndarray) -> bool:
        """Whether `embedding` is the track's person: like its mean or any of its samples."""
        known = [mean_embedding(track.samples), *(e for _, e in track.samples)]
        return float(np.max(np.stack(known) @ embedding)) >= self.split_below
