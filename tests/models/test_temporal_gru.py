import numpy as np
import pytest
from emotrack.models.temporal_gru import (
    TemporalConfig,
    load_temporal_model,
    model_inputs,
    predict_track,
)

from emotrack.training.metrics import label_changes_per_minute
from emotrack.vocabulary import EMOTIONS

HAPPY, SAD, NEUTRAL = (EMOTIONS.index(e) for e in ("happy", "sad", "neutral"))
BIAS = np.array([1.1, -5.5, -0.5, -1.0, -0.2, -1.0, 1.0])  # typical non-reported logits


def _reading(cls: int, frames: int, lead: float, noise: float, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    logits = BIAS + noise * rng.standard_normal((frames, 7))
    logits[:, cls] = BIAS.max() + lead + noise * rng.standard_normal(frames)
    return logits


@pytest.fixture(scope="module")
def shipped():
    return load_temporal_model(TemporalConfig().version)


def _labels(shipped, logits: np.ndarray, present: np.ndarray | None = None) -> np.ndarray:
    model, cfg = shipped
    present = np.ones(len(logits), bool) if present is None else present
    return predict_track(model, model_inputs(logits, present), cfg)["expression"].argmax(axis=1)


def test_follows_a_clear_switch_within_a_second(shipped) -> None:
    logits = np.concatenate([_reading(HAPPY, 40, 5, 0.5, 1), _reading(SAD, 40, 5, 0.5, 2)])
    labels = _labels(shipped, logits)
    assert np.all(labels[5:38] == HAPPY)
    assert np.all(labels[45:] == SAD)  # 45 - 40 = 5 frames = 1 s at 5 fps, at most
    first_sad = 40 + int(np.argmax(labels[40:] == SAD))
    assert abs(first_sad - 40) <= 5


def test_is_steadier_than_the_per_frame_argmax_on_a_noisy_constant_reading(shipped) -> None:
    logits = _reading(HAPPY, 150, 2.5, 1.5, 3)
    blips = np.random.default_rng(4).random(150) < 0.05
    logits[blips, SAD] += 8  # one-frame spikes, as real CNN output has
    cnn = logits.argmax(axis=1)
    ours = _labels(shipped, logits)
    t = np.arange(150) / 5
    assert label_changes_per_minute(cnn, t) >= 4 * max(label_changes_per_minute(ours, t), 1)
    assert np.mean(ours == HAPPY) > 0.95


def test_bridges_missed_detections(shipped) -> None:
    logits = _reading(HAPPY, 60, 5, 0.5, 5)
    present = np.ones(60, bool)
    present[20:28] = False  # the face was missed for 1.6 s
    logits[~present] = 0
    labels = _labels(shipped, logits, present)
    assert np.all(labels[present][3:-3] == HAPPY)


def test_long_tracks_are_scored_window_by_window_like_short_ones(shipped) -> None:
    model, cfg = shipped
    logits = _reading(HAPPY, 1000, 4, 1.0, 6)
    x = model_inputs(logits, np.ones(1000, bool))
    whole = predict_track(model, x, cfg)
    assert whole["expression"].shape == (1000, 7) and whole["va"].shape == (1000, 2)
    np.testing.assert_allclose(whole["expression"].sum(axis=1), 1, atol=1e-5)
    assert np.all((whole["intensity"] >= 0) & (whole["intensity"] <= 1))
    assert np.all(np.abs(whole["va"]) <= 1)
    assert np.mean(whole["expression"].argmax(axis=1) == HAPPY) > 0.95
    assert whole["va"][:, 0].mean() > 0.3  # happy is pleasant


def test_a_model_reads_the_geometry_it_was_trained_with_and_zeros_where_none() -> None:
    import pandas as pd
    from emotrack.models.temporal_gru import extra_inputs

    assert TemporalConfig().inputs == 8 and TemporalConfig().features == ("cnn",)
    cfg = TemporalConfig(features=["cnn", "pose", "blendshapes"])  # as read from config.json
    assert cfg.inputs == 8 + 3 + 52 and cfg.extra_columns[:3] == [
        "yaw_deg",
        "pitch_deg",
        "roll_deg",
    ]
    rows = pd.DataFrame({"yaw_deg": [45.0, None], "bs_jawOpen": [0.5, 0.25]})  # others missing
    extra = extra_inputs(rows, cfg)
    assert extra[0, 0] == 0.5 and np.isnan(extra[1, 0])  # degrees / 90; null stays NaN
    assert extra[1, cfg.extra_columns.index("bs_jawOpen")] == 0.25
    x = model_inputs(np.ones((2, 7)), np.array([True, False]), extra)
    assert x.shape == (2, cfg.inputs) and x[0, 8] == 0.5
    assert not x[1].any()  # no face in that slot: nothing, not even its geometry
    assert np.isfinite(x).all()
    for wrong in (("pose",), ("cnn", "gaze")):
        with pytest.raises(ValueError, match="features"):
            TemporalConfig(features=wrong)
