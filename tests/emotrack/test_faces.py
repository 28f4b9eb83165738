import numpy as np
import pytest

from emotrack.faces import (
    Face,
    FaceTracker,
    box_in_landmarks,
    crop_face,
    face_from_landmarks,
    faces_from_boxes,
    frame_signature,
    iou,
    pack_landmarks,
    scene_change,
    unpack_landmarks,
)


def test_iou_of_identical_disjoint_and_half_overlapping_boxes() -> None:
    a = Face(0, 0, 10, 10, 1.0)
    assert iou(a, a) == 1.0
    assert iou(a, Face(20, 20, 10, 10, 1.0)) == 0.0
    assert iou(a, Face(5, 0, 10, 10, 1.0)) == pytest.approx(50 / 150)


def test_faces_from_boxes_drops_small_faces_and_sorts_by_score() -> None:
    boxes = np.array([[0, 0, 8, 8, 0.95], [9, 9, 5, 5, 0.5], [1, 1, 8, 8, 0.99]], np.float32)
    faces = faces_from_boxes(boxes, min_px=6)
    assert [f.score for f in faces] == pytest.approx([0.99, 0.95])
    assert (faces[0].x, faces[0].w) == (1.0, 8.0)
    assert faces_from_boxes(boxes, min_px=9) == []
    assert faces_from_boxes(np.zeros((0, 5), np.float32)) == []


def test_tracker_keeps_ids_for_two_moving_faces_in_any_order() -> None:
    tracker = FaceTracker(min_iou=0.3, max_gap=2)
    ids = []
    for step in range(5):
        left = Face(10 + 2 * step, 10, 40, 40, 0.99)
        right = Face(200 - 2 * step, 10, 40, 40, 0.99)
        faces = [left, right] if step % 2 == 0 else [right, left]
        found = tracker.update(step, faces)
        ids.append(found if step % 2 == 0 else found[::-1])
    assert ids == [[0, 1]] * 5


def test_tracker_bridges_short_gaps_and_starts_a_new_track_after_long_ones() -> None:
    tracker = FaceTracker(min_iou=0.3, max_gap=2)
    face = Face(10, 10, 40, 40, 0.99)
    assert tracker.update(0, [face]) == [0]
    assert tracker.update(3, [face]) == [0]  # missed in frames 1 and 2: same person
    assert tracker.update(7, [face]) == [1]  # missed for 3 frames: a new track


def test_crop_face_matches_the_cnn_input_contract() -> None:
    frame = np.zeros((100, 200, 3), np.uint8)
    frame[20:60, 50:90] = 255  # a white square where the face is
    crop = crop_face(frame, Face(50, 20, 40, 40, 1.0), margin=0.0)
    assert crop.shape == (64, 64, 1) and crop.dtype == np.float32
    np.testing.assert_allclose(crop, 1.0)  # white -> +1
    dark = crop_face(frame, Face(120, 20, 40, 40, 1.0), margin=0.0)
    np.testing.assert_allclose(dark, -1.0)  # black -> -1


def test_crop_face_uses_luma_and_clips_boxes_at_the_border() -> None:
    frame = np.zeros((50, 50, 3), np.uint8)
    frame[..., 1] = 255  # pure green: luma 0.587 * 255 -> 150
    crop = crop_face(frame, Face(-10, -10, 80, 80, 1.0))
    assert crop.shape == (64, 64, 1)
    np.testing.assert_allclose(crop, (150 / 255 - 0.5) * 2, atol=1e-6)


def test_a_box_carried_by_landmarks_moves_and_grows_with_them() -> None:
    rng = np.random.default_rng(0)
    landmarks = np.column_stack([rng.uniform(100, 200, (478, 2)), rng.normal(0, 5, 478)])
    box = Face(110.0, 120.0, 80.0, 70.0, 0.9)
    place = box_in_landmarks(box, landmarks)
    same = face_from_landmarks(landmarks, place, box.score)
    assert np.allclose([same.x, same.y, same.w, same.h], [110, 120, 80, 70])
    moved = landmarks * [2.0, 2.0, 1.0] + [30.0, -10.0, 0.0]  # twice as large, shifted
    carried = face_from_landmarks(moved, place, 0.9)
    assert np.allclose([carried.x, carried.y, carried.w, carried.h], [250, 230, 160, 140])


def test_a_scene_change_is_large_for_another_shot_and_small_for_a_moving_face() -> None:
    wall = np.full((360, 640, 3), 90, np.uint8)
    with_face = wall.copy()
    with_face[100:200, 300:400] = 200
    other_shot = np.full((360, 640, 3), 200, np.uint8)
    assert scene_change(frame_signature(wall), frame_signature(with_face)) < 10
    assert scene_change(frame_signature(wall), frame_signature(other_shot)) > 100


def test_landmarks_pack_into_int16_within_a_thirtieth_of_a_pixel_at_any_resolution() -> None:
    rng = np.random.default_rng(1)
    for size, face in [
        (40, Face(1900.0, 1000.0, 40.0, 44.0, 1.0)),
        (1500, Face(5000, 20, 1500, 1600, 1)),
    ]:
        landmarks = np.column_stack(
            [
                face.x + rng.uniform(-0.2, 1.2, 478) * size,
                face.y + rng.uniform(-0.4, 1.2, 478) * size,
                rng.normal(0, 0.1 * size, 478),
            ]
        ).astype(np.float32)
        packed = pack_landmarks(landmarks, face)
        assert packed.dtype == np.int16 and packed.shape == (1434,)
        error = np.abs(unpack_landmarks(packed, face) - landmarks).max()
        assert error <= 0.5 * size / 4096 + 1e-3  # half a unit: 0.005 px at 40 px, 0.18 at 1500
