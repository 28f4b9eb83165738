"""The default model does no harm to what the CNN sees, measured on real faces."""

import numpy as np

from emotrack.inference import DEFAULT_MODEL
from emotrack.training.no_harm import CNN, evaluate_versions, majority_violations
from emotrack.vocabulary import EMOTIONS


def test_a_window_where_the_cnn_holds_a_class_must_keep_it() -> None:
    times = np.arange(10) * 0.2
    cnn = np.array([3, 3, 3, 3, 3, 5, 5, 5, 5, 5])
    assert majority_violations(cnn, cnn, times) == (6, 0, 0)
    relabelled = np.array([3, 3, 3, 3, 3, 3, 3, 3, 3, 3])  # the second second erased
    windows, violations, overruled = majority_violations(cnn, relabelled, times)
    assert windows == 6 and violations == 3  # the windows that start at 0.6, 0.8 and 1.0 s
    # the same change, where the face shows the model's class (3) more than the CNN's (5)
    evidence = np.zeros((10, 7))
    evidence[:, 3] = 0.6
    assert majority_violations(cnn, relabelled, times, evidence=evidence) == (6, 0, 3)
    evidence[:, 5] = 0.7  # ... and where it shows the CNN's more: harm again
    assert majority_violations(cnn, relabelled, times, evidence=evidence) == (6, 3, 0)


def test_the_default_model_passes_every_check_on_real_faces(settings) -> None:
    from emotrack.scoring import SMOOTHED_VERSION

    results = evaluate_versions([DEFAULT_MODEL, SMOOTHED_VERSION], settings.cache_dir)
    ours, cnn, before = results[DEFAULT_MODEL], results[CNN], results[SMOOTHED_VERSION]
    assert ours["passes"] == dict.fromkeys(ours["passes"], True), (ours, cnn)
    assert ours["real_windows"] > 50  # the check had something to check
    # what the action units add: anger seen, and no more label changes than before them
    assert ours["real_macro_f1"] >= 0.40 and ours["real_recall"]["angry"] > 0, ours
    assert ours["talk_labelled_right"] >= 0.85
    assert ours["talk_changes_per_min"] <= before["talk_changes_per_min"]


def test_the_talking_head_arc_labels_whole_seconds_with_reasons() -> None:
    import pandas as pd

    from emotrack.training.no_harm import TALKING_HEAD_ARC, talking_head_labels

    labels = talking_head_labels()
    assert {s: EMOTIONS[c] for s, c in labels.items() if s in (0, 5, 10, 19)} == {
        0: "sad",
        5: "sad",
        10: "happy",
        19: "happy",  # 19: [19, 19.7) is mostly inside
    }
    assert not set(labels) & {6, 7, 8, 9}  # the stretch left unlabelled
    assert pd.read_csv(TALKING_HEAD_ARC)["reason"].str.len().min() > 40
