"""The face stage with the real detector and landmarker: the detector finds, landmarks follow."""

import cv2
import numpy as np
import pytest

from emotrack.analysis import face_stage, load_models
from emotrack.video import VideoSource

RATE = 5.0  # analysed frames a second: detect_every_s=1 means every 5th frame


@pytest.fixture(scope="module")
def models(settings):
    return load_models(settings)


def _stage(models, settings, every_s: float = 1.0):
    options = settings.with_run_options(detect_every_s=every_s)
    return face_stage(models.detector, models.landmarker, options, RATE)


@pytest.fixture(scope="module")
def face(asset) -> np.ndarray:
    image = cv2.cvtColor(cv2.imread(str(asset("single_face.jpg"))), cv2.COLOR_BGR2RGB)
    return cv2.resize(image, (200, 197), interpolation=cv2.INTER_AREA)


def _scene(face: np.ndarray | None, x: int = 380, gray: int = 90) -> np.ndarray:
    """A 640x360 frame of a flat gray wall, with `face` pasted at (x, 80)."""
    frame = np.full((360, 640, 3), gray, np.uint8)
    if face is not None:
        frame[80 : 80 + face.shape[0], x : x + face.shape[1]] = face
    return frame


def test_followed_faces_match_detection_every_frame_on_the_talking_head(
    models, settings, asset
) -> None:
    frames = [f for _, f in VideoSource.from_path(asset("WolfgangLanger_Pexels.mp4")).frames(RATE)]
    every, followed = _stage(models, settings, every_s=0), _stage(models, settings)
    a = [every.faces(frame) for frame in frames]
    b = [followed.faces(frame) for frame in frames]
    assert every.detector_runs == len(frames)
    assert followed.detector_runs <= len(frames) / 5 + 1
    assert [len(faces) for faces in b] == [len(faces) for faces in a]  # one face in each
    yaw = [abs(x[0].geometry.pose[0] - y[0].geometry.pose[0]) for x, y in zip(a, b, strict=True)]
    assert np.median(yaw) < 3
    followed_frames = [faces[0] for faces in b if not faces[0].detected]
    assert len(followed_frames) >= 0.7 * len(frames)


def test_a_face_that_appears_is_found_within_the_interval_and_dropped_when_it_goes(
    models, settings, face
) -> None:
    stage = _stage(models, settings)
    frames = [_scene(None)] * 7 + [_scene(face)] * 13 + [_scene(None)] * 5
    seen = [stage.faces(frame) for frame in frames]
    found = [i for i, faces in enumerate(seen) if faces]
    assert found[0] <= 7 + 4  # within 5 analysed frames of appearing (no scene cut here)
    assert found == list(range(found[0], 20))  # followed to the end, then gone at once
    assert all(len(faces) == 1 and faces[0].geometry.landmarks is not None for faces in seen[10:20])
    assert stage.detector_runs <= 8  # frame 0, every 5th, and the frame where it was lost


def test_a_scene_cut_is_searched_at_once(models, settings, face) -> None:
    stage = _stage(models, settings)
    before = [stage.faces(_scene(face, x=40)) for _ in range(3)]
    after = stage.faces(_scene(face, x=400, gray=200))  # another shot, same face elsewhere
    assert all(len(faces) == 1 for faces in before)
    (moved,) = after
    assert moved.detected and moved.face.x > 350


def test_without_geometry_the_detector_runs_on_every_frame(models, settings, face) -> None:
    options = settings.with_run_options(geometry=False)
    stage = face_stage(models.detector, None, options, RATE)
    seen = [stage.faces(_scene(face)) for _ in range(4)]
    assert stage.detector_runs == 4
    assert all(len(s) == 1 and s[0].detected and s[0].geometry.landmarks is None for s in seen)
