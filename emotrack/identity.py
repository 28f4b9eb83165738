"""Who each face is, within one stretch of video: a face track stays one person.

The identity model (models.face_identity, SFace) costs about 15 ms a face here, more than
following a face with its mesh, so it runs only where identity is in question or where a
better view of the face is to be had, never on every frame:
- on a track's first frame (a new face);
- on a cue that the face may now be someone else: a scene cut, or the face's appearance
  patch (a 24x24 gray view of its eyes and nose, aligned on its five points, see
  appearance_patch) changed from one analysed frame to the next by more than a face's own
  movements change it (normalised correlation under CUE_BELOW). A cue on a face too turned
  or too small to judge (quality under JUDGE_QUALITY) waits for a better frame;
- at most every `sample_every` analysed frames while the track has fewer than MAX_SAMPLES
  samples, or when the face is seen better (quality, by BETTER_BY) than in its worst sample.
A cue whose embedding is unlike the track's (cosine under `split_below` against every sample
and against their mean) ends the track at that frame: the face is someone else, and the
tracker gives it a new track id from there on.

A track's embedding (IdentityStage.embeddings) is the quality-weighted mean of its samples,
the best MAX_SAMPLES views of the face: frontal, large and well fitted (sample_quality).
Nothing here is stored: the embeddings live in memory for the length of a video, unless the
run was asked to recognise people.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import cv2
import numpy as np

from emotrack.evidence import TRUST
from emotrack.faces import Face
from models.face_identity import similarity
from models.face_landmarker import Geometry, five_points

Embed = Callable[[np.ndarray, np.ndarray], np.ndarray]  # frame, (N, 5, 2) -> (N, 128) unit

# Samples a track keeps (its best views); a track's first sample is always taken.
MAX_SAMPLES = 6
# A view replaces a track's worst sample only if it is this much better (quality).
BETTER_BY = 0.1
# A face seen with less quality than this is not used to decide that it is someone else.
JUDGE_QUALITY = 0.25
# Normalised correlation of a face's appearance patch with its last frame's under which the
# face may be someone else. A cue costs one embedding: on the 2-min talking head (crying,
# hands at the face) the correlation has a median of 0.95 and its 1st percentile at 0.36,
# so about one frame in 100 is a cue; a cut to another face reads near 0.
CUE_BELOW = 0.4
PATCH = 24
# Where appearance_patch puts the five points (eyes, nose tip, mouth corners) in its PATCH x
# PATCH view: the eyes and the nose fill it, the mouth (which speech moves) lies below it.
PATCH_TEMPLATE = np.array(
    [[5.0, 8.0], [19.0, 8.0], [12.0, 16.0], [6.5, 26.0], [17.5, 26.0]], np.float32
)
# Without landmarks (--no-geometry), the five points are placed in the detector's box at
# these fractions of its width and height (BlazeFace's box runs from the brows to the chin).
BOX_POINTS = np.array([[0.3, 0.3], [0.7, 0.3], [0.5, 0.55], [0.35, 0.78], [0.65, 0.78]], np.float32)


def face_points(face: Face, geometry: Geometry) -> np.ndarray:
    """float32 (5, 2): the face's five points in pixels of its frame: from its landmarks,
    else placed in its box (BOX_POINTS)."""
    if geometry.landmarks is not None:
        return five_points(geometry.landmarks)
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


def appearance_patch(frame: np.ndarray, points: np.ndarray) -> np.ndarray:
    """float32 (PATCH * PATCH,): the gray eyes-and-nose view of the face of `points` (5, 2),
    zero mean and unit norm, so that patch @ patch' is their normalised correlation."""
    matrix = similarity(points, PATCH_TEMPLATE)
    view = cv2.warpAffine(frame, matrix, (PATCH, PATCH), flags=cv2.INTER_LINEAR)
    gray = cv2.cvtColor(view, cv2.COLOR_RGB2GRAY).astype(np.float32).reshape(-1)
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
    patch: np.ndarray | None = None  # the face's appearance patch in its last frame
    pending: bool = False  # a cue seen on a face too poor to judge


@dataclass
class IdentityStage:
    """Face identity frame after frame of one stretch of video (state: each track's
    samples). `restart(track_id)` ends a track and returns the new id its face goes on
    under (emotrack.faces.FaceTracker.restart)."""

    embed: Embed
    restart: Callable[[int], int]
    sample_every: int = 5
    split_below: float = 0.3
    embeddings_run: int = 0
    _tracks: dict[int, _Track] = field(default_factory=dict)

    def update(
        self,
        index: int,
        frame: np.ndarray,
        faces: list[tuple[np.ndarray, float]],
        ids: list[int],
        cut: bool,
    ) -> list[int]:
        """The track ids of this frame's faces (`ids`, the tracker's), with a face that
        turned out to be someone else under a new id. faces: (five points (5, 2) in
        pixels of `frame`, sample_quality), in the order of `ids`."""
        assert len(faces) == len(ids), (len(faces), len(ids))
        ids = list(ids)
        patches = [appearance_patch(frame, points) for points, _ in faces]
        why = [
            self._due(index, ids[i], patches[i], quality, cut)
            for i, (_, quality) in enumerate(faces)
        ]
        chosen = [i for i, reason in enumerate(why) if reason is not None]
        if chosen:
            embedded = self.embed(frame, np.stack([faces[i][0] for i in chosen]))
            self.embeddings_run += len(chosen)
            for i, embedding in zip(chosen, embedded, strict=True):
                ids[i] = self._sample(index, ids[i], faces[i][1], embedding, why[i] == "cue")
        for track_id, patch in zip(ids, patches, strict=True):
            self._tracks[track_id].patch = patch
        return ids

    def embeddings(self) -> dict[int, np.ndarray]:
        """Per track id, float32 (128,) of unit length: its identity (mean_embedding)."""
        return {t: mean_embedding(track.samples) for t, track in self._tracks.items()}

    def _due(
        self, index: int, track_id: int, patch: np.ndarray, quality: float, cut: bool
    ) -> str | None:
        """Why this face is embedded now ("new", "cue", "better"), or None."""
        track = self._tracks.get(track_id)
        if track is None:
            return "new"
        cue = cut or track.pending
        if track.patch is not None and float(patch @ track.patch) < CUE_BELOW:
            cue = True
        if cue:
            track.pending = quality < JUDGE_QUALITY
            return None if track.pending else "cue"
        if index - track.last_sample < self.sample_every:
            return None
        worst = min(q for q, _ in track.samples)
        better = len(track.samples) < MAX_SAMPLES or quality > worst + BETTER_BY
        return "better" if better else None

    def _sample(
        self, index: int, track_id: int, quality: float, embedding: np.ndarray, cue: bool
    ) -> int:
        """Add a sample to the track (or a new track); returns the face's track id."""
        track = self._tracks.get(track_id)
        if track is not None and cue and not self._same(track, embedding):
            track_id = self.restart(track_id)
            track = None
        if track is None:
            self._tracks[track_id] = _Track([(quality, embedding)], index)
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
