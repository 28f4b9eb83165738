import numpy as np
import pandas as pd
import pytest

from emotrack.training.annotations import (
    LabelledVideo,
    annotated_face,
    expression_keep,
    labels_at,
    read_annotations,
    split_side,
    va_keep,
)
from emotrack.vocabulary import EMOTIONS

HEADER = "Neutral,Anger,Disgust,Fear,Happiness,Sadness,Surprise,Other"


def test_both_sets_are_read_merged_by_name_in_either_folder_naming(tmp_path) -> None:
    expr = tmp_path / "EXPR_Recognition_Challenge" / "Train_Set"
    va = tmp_path / "VA_Set" / "Validation_Set"
    expr.mkdir(parents=True)
    va.mkdir(parents=True)
    (expr / "12-24_left.txt").write_text(f"{HEADER}\n0\n1\n2\n3\n4\n5\n6\n7\n-1\n")
    (va / "7.txt").write_text("valence,arousal\n0.5,-0.25\n-5,-5\n")
    first, second = read_annotations(tmp_path)
    assert (first.name, first.video, first.side, first.split) == (
        "12-24_left",
        "12-24",
        "left",
        "train",
    )
    names = [EMOTIONS[i] if i >= 0 else None for i in first.expression]
    assert names == ["neutral", "angry", "disgust", "fear", "happy", "sad", "surprise", None, None]
    assert first.va is None and second.expression is None and second.split == "validation"
    np.testing.assert_array_equal(second.va, [[0.5, -0.25], [np.nan, np.nan]])


def test_a_folder_without_annotations_is_refused_clearly(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="no annotation files"):
        read_annotations(tmp_path)
    bad = tmp_path / "EXPR_Set" / "Train_Set"
    bad.mkdir(parents=True)
    (bad / "v.txt").write_text("happy,sad\n0\n")
    with pytest.raises(ValueError, match="header"):
        read_annotations(tmp_path)


def test_labels_follow_the_timestamps_of_the_analysed_frames() -> None:
    labelled = LabelledVideo("v", "v", None, "train", np.arange(30) % 7, None)
    expression, va = labels_at(labelled, np.array([0.0, 0.2, 0.52, 5.0]), native_fps=25)
    assert expression.tolist() == [0, 5 % 7, 13 % 7, -1]  # frames 0, 5, 13; 125 is past the end
    assert np.isnan(va).all()


def test_the_annotated_face_is_the_one_on_its_side_or_the_largest() -> None:
    faces = pd.DataFrame(
        {
            "frame_index": [0, 0, 1],
            "bbox_x": [300.0, 10.0, 50.0],
            "bbox_y": [0.0, 0.0, 0.0],
            "bbox_w": [50.0, 80.0, 40.0],
            "bbox_h": [50.0, 80.0, 40.0],
        }
    )
    assert annotated_face(faces, "left")["bbox_x"].tolist() == [10.0, 50.0]
    assert annotated_face(faces, "right")["bbox_x"].tolist() == [300.0, 50.0]
    assert annotated_face(faces, None)["bbox_w"].tolist() == [80.0, 40.0]
    assert split_side("a_right") == ("a", "right") and split_side("a") == ("a", None)


def test_downsampling_balances_classes_and_valence_arousal_density() -> None:
    rng = np.random.default_rng(0)
    labels = np.array([6] * 9000 + [3] * 1000 + [-1] * 500)
    kept = np.bincount(labels[expression_keep(labels, rng)], minlength=7)
    assert kept[3] == 1000 and 850 < kept[6] < 1150 and kept.sum() == kept[3] + kept[6]

    dense = rng.normal(0, 0.02, (9000, 2))  # most frames at the centre, a few spread out
    spread = rng.uniform(-1, 1, (1000, 2))
    va = np.concatenate([dense, spread, np.full((100, 2), np.nan)])
    keep = va_keep(va, rng)
    assert not keep[-100:].any()
    assert keep[:9000].mean() < 0.2 and keep[9000:10000].mean() > 0.9
