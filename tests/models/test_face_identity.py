"""SFace: the derived file is made from the pinned wheel and verified; embeddings tell people
apart on real photos and frames."""

from pathlib import Path

import cv2
import numpy as np
import pytest
from emotrack.models.face_identity import (
    SAME_PERSON_COSINE,
    TEMPLATE,
    aligned_face,
    load_face_identity,
)
from emotrack.models.face_landmarker import five_points, load_face_landmarker

from emotrack.assets import DERIVED, FACE_IDENTITY, Derived, _derive, fetch_asset, sha256_of
from emotrack.errors import AssetError
from emotrack.settings import Settings


@pytest.fixture(scope="module")
def identity(settings: Settings):
    return load_face_identity(fetch_asset(FACE_IDENTITY, settings.cache_dir), 1)


@pytest.fixture(scope="module")
def points_of(asset):
    from emotrack.analysis import load_detector
    from emotrack.assets import FACE_LANDMARKER

    settings = Settings()
    landmarker = load_face_landmarker(asset(FACE_LANDMARKER))
    detector = load_detector(settings)

    def find(image: np.ndarray) -> np.ndarray:
        from emotrack.models.face_detector import detect_faces

        (boxes,) = detect_faces(detector, [image])
        x, y, w, h = boxes[0, :4]
        return five_points(landmarker.measure(image, (x, y, w, h)).landmarks)

    return find


def _photo(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def test_the_derived_model_is_made_once_and_checked_by_its_own_sha256(
    settings: Settings, tmp_path: Path
) -> None:
    made = fetch_asset(FACE_IDENTITY, settings.cache_dir)
    assert sha256_of(made) == DERIVED[FACE_IDENTITY].sha256
    shipped = fetch_asset(DERIVED[FACE_IDENTITY].source, settings.cache_dir)
    assert sha256_of(shipped) != sha256_of(made)  # the shipped file is not the one that runs
    with pytest.raises(cv2.error):  # ... and OpenCV refuses it, which is why it is derived
        cv2.dnn.readNetFromONNX(str(shipped)).forward()
    wrong = Derived(DERIVED[FACE_IDENTITY].source, lambda s, t: t.write_bytes(b"x"), "0" * 64)
    (tmp_path / "assets").mkdir()
    DERIVED["wrong.onnx"] = wrong
    try:
        with pytest.raises(AssetError, match="SHA-256"):
            _derive("wrong.onnx", tmp_path)
    finally:
        del DERIVED["wrong.onnx"]
    assert not (tmp_path / "assets" / "wrong.onnx").exists()  # nothing half-made is left


def test_aligned_faces_put_the_five_points_on_the_template() -> None:
    frame = np.zeros((200, 300, 3), np.uint8)
    points = TEMPLATE * 1.5 + [40, 20]  # the template, larger and shifted
    for x, y in points:
        cv2.circle(frame, (round(x), round(y)), 2, (255, 255, 255), -1)
    face = aligned_face(frame, points)
    assert face.shape == (112, 112, 3)
    for x, y in TEMPLATE:
        assert face[round(y), round(x)].max() > 100  # each point lands where the template says


def test_the_same_man_is_near_himself_and_far_from_other_people(asset, identity, points_of) -> None:
    photo = _photo(asset("single_face.jpg"))
    capture = cv2.VideoCapture(str(asset("single_face.mp4")))
    ok, frame = capture.read()
    assert ok
    frame = cv2.cvtColor(frame, cv2.COLOR_BGR2RGB)
    others = [_photo(asset(n)) for n in ("happy_face.jpg", "angry_face.jpg", "disgust_face.jpg")]
    man = identity.embed(photo, points_of(photo)[None])[0]
    again = identity.embed(frame, points_of(frame)[None])[0]
    strangers = np.stack([identity.embed(o, points_of(o)[None])[0] for o in others])
    assert np.allclose(np.linalg.norm(strangers, axis=1), 1.0, atol=1e-5)
    assert float(man @ again) > SAME_PERSON_COSINE + 0.2  # measured 0.65-0.76
    assert float(np.max(strangers @ man)) < SAME_PERSON_COSINE  # measured at most 0.19
    assert identity.embed(photo, np.zeros((0, 5, 2), np.float32)).shape == (0, 128)
