"""The face detectors on real photos, placed in frames with ffmpeg-free numpy compositions."""

import cv2
import numpy as np
import pytest
from emotrack.models.face_detector import (
    BLAZEFACE,
    DEFAULT_DETECTOR,
    DETECTORS,
    box_iou,
    detect_faces,
    ssd_anchors,
    suppress,
    views,
)

from emotrack.analysis import load_detector
from emotrack.settings import Settings


def _rgb(path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def _detector(name: str, **kwargs):
    return load_detector(Settings(detector=name, **kwargs))


@pytest.mark.parametrize(
    ("name", "anchors"),
    [("blazeface-short", 896), ("blazeface-full", 2304), ("blazeface-back", 896)],
)
def test_anchor_layouts_match_mediapipe_and_the_models_outputs(name, anchors) -> None:
    config = BLAZEFACE[name]
    centres = ssd_anchors(config.input_size, config.strides, config.anchors_per_layer)
    assert centres.shape == (anchors, 2) and centres.min() > 0 and centres.max() < 1
    assert _detector(name).model.anchors.shape == (anchors, 2)  # the loaded model agrees


def test_a_small_frame_is_one_view_and_a_large_one_is_tiled_with_overlap() -> None:
    config = BLAZEFACE[DEFAULT_DETECTOR]
    assert views(300, 200, config, 40) == [(0, 0, 300)]
    # 640x360: tiles as tall as the frame rather than two rows 40 px apart
    assert views(640, 360, config, 40) == [(0, 0, 640), (0, 0, 360), (280, 0, 360)]
    regions = views(1920, 1080, config, 40)
    assert regions[0] == (0, 0, 1920)
    covered = np.zeros((1080, 1920), bool)
    for x0, y0, side in regions:
        covered[y0 : y0 + side, x0 : x0 + side] = True
    assert covered.all()
    _assert_every_face_lies_whole(1920, 1080, config, sizes=(40, 60, 100, 170, 250, 400, 700))
    _assert_every_face_lies_whole(640, 360, config, sizes=(45, 60, 100, 200, 350))


def _assert_every_face_lies_whole(width, height, config, sizes) -> None:
    """Each face of these sizes, anywhere, lies whole in a region where the model sees it
    at least min_face_input_px wide."""
    regions = views(width, height, config, 40)
    for size in sizes:
        for x in range(0, width - size, 53):
            for y in range(0, height - size, 61):
                assert any(
                    x0 <= x
                    and y0 <= y
                    and x + size <= x0 + side
                    and y + size <= y0 + side
                    and size * config.input_size / side >= config.min_face_input_px
                    for x0, y0, side in regions
                ), (width, height, size, x, y)


def test_suppression_keeps_the_best_of_overlapping_boxes() -> None:
    boxes = np.array([[0, 0, 10, 10, 0.6], [1, 1, 10, 10, 0.9], [50, 50, 10, 10, 0.7]], np.float32)
    kept = suppress(boxes, 0.3)
    assert kept[:, 4].tolist() == pytest.approx([0.9, 0.7])
    assert box_iou(kept[0], boxes[1]) == 1.0


@pytest.mark.parametrize("name", [d for d in DETECTORS if d != "blazeface-short"])
def test_every_detector_finds_the_five_faces_of_a_group_photo(asset, name) -> None:
    (found,) = detect_faces(_detector(name), [_rgb(asset("multi_face.jpg"))])
    assert found.shape == (5, 13) and found.dtype == np.float32
    eyes_nose_mouth = found[:, 5:].reshape(5, 4, 2)
    inside = (eyes_nose_mouth >= found[:, None, :2]) & (
        eyes_nose_mouth <= found[:, None, :2] + found[:, None, 2:4]
    )
    assert inside.all()  # the keypoints lie in their face's box
    assert (eyes_nose_mouth[:, 0, 0] < eyes_nose_mouth[:, 1, 0]).all()  # image-left eye first
    assert (eyes_nose_mouth[:, 2, 1] < eyes_nose_mouth[:, 3, 1]).all()  # the nose above the mouth
    assert (np.diff(found[:, 4]) <= 0).all()  # best first
    assert (found[:, 2:4] > 60).all() and (found[:, 2:4] < 160).all()  # faces of ~100 px


def test_blazeface_and_mtcnn_agree_on_where_the_face_is(asset) -> None:
    image = _rgb(asset("single_face.jpg"))
    (blaze,) = detect_faces(_detector("blazeface-full"), [image])
    (mtcnn,) = detect_faces(_detector("mtcnn"), [image])
    assert len(blaze) == len(mtcnn) == 1
    assert box_iou(blaze[0], mtcnn[0]) > 0.5


def test_blazeface_finds_40_px_faces_anywhere_in_a_1080p_frame(asset) -> None:
    photo = _rgb(asset("single_face.jpg"))
    (reference,) = detect_faces(_detector(DEFAULT_DETECTOR), [photo])
    scale = 40 / reference[0, 2]
    face = cv2.resize(photo, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    frame = np.full((1080, 1920, 3), 90, np.uint8)
    spots = [(20, 20), (620, 600), (1270, 300), (1800, 950), (960, 500)]  # tile edges included
    truth = []
    for x, y in spots:
        h, w = face.shape[:2]
        h, w = min(h, 1080 - y), min(w, 1920 - x)
        frame[y : y + h, x : x + w] = face[:h, :w]
        truth.append([x + reference[0, 0] * scale, y + reference[0, 1] * scale, 40, 40])
    (found,) = detect_faces(_detector(DEFAULT_DETECTOR), [frame])
    matched = [max((box_iou(np.array(t), f) for f in found), default=0) for t in truth]
    assert min(matched) > 0.4, matched
    assert len(found) == len(spots)
    (whole_only,) = detect_faces(_detector(DEFAULT_DETECTOR, min_face_px=200), [frame])
    assert len(whole_only) < len(spots)  # the tiles are what finds them
