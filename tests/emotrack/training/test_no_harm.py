"""The default model does no harm to what the CNN sees, measured on real faces."""

import numpy as np

from emotrack.inference import DEFAULT_MODEL
from emotrack.training.no_harm import CNN, evaluate_versions, majority_violations


def test_a_window_where_the_cnn_holds_a_class_must_keep_it() -> None:
    times = np.arange(10) * 0.2
    cnn = np.array([3, 3, 3, 3, 3, 5, 5, 5, 5, 5])
    assert majority_violations(cnn, cnn, times) == (6, 0)
    relabelled = np.array([3, 3, 3, 3, 3, 3, 3, 3, 3, 3])  # the second second erased
    windows, violations = majority_violations(cnn, relabelled, times)
    assert windows == 6 and violations == 3  # the windows that start at 0.6, 0.8 and 1.0 s


def test_the_default_model_passes_every_check_on_real_faces(settings) -> None:
    results = evaluate_versions([DEFAULT_MODEL], settings.cache_dir)
    ours, cnn = results[DEFAULT_MODEL], results[CNN]
    assert ours["passes"] == dict.fromkeys(ours["passes"], True), (ours, cnn)
    assert ours["real_windows"] > 50  # the check had something to check
