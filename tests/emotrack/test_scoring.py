import numpy as np
import pandas as pd
import pytest

from emotrack.scoring import (
    MODEL_VERSION,
    PROB_COLUMNS,
    score_frames,
    summarise_video,
)
from emotrack.vocabulary import EMOTIONS


def _features(logits: list[list[float]], track_ids: list[int]) -> pd.DataFrame:
    n = len(logits)
    return pd.DataFrame(
        {
            "frame_index": range(n),
            "timestamp_s": np.arange(n) * 0.2,
            "track_id": track_ids,
            "bbox_x": 1.0,
            "bbox_y": 2.0,
            "bbox_w": 120.0,
            "bbox_h": 160.0,
            "face_score": 0.99,
            "logits": [np.array(row, np.float32) for row in logits],
            "embedding": [np.zeros(128, np.float32)] * n,
        }
    )


def test_score_frames_labels_probabilities_and_valence() -> None:
    happy, sad = [0, 0, 0, 9, 0, 0, 0], [0, 0, 0, 0, 9, 0, 0]
    tracks = score_frames(_features([happy, sad, happy], [0, 0, 1]))
    assert tracks["emotion"].tolist() == ["happy", "sad", "happy"]
    np.testing.assert_allclose(tracks[PROB_COLUMNS].sum(axis=1), 1.0, rtol=1e-6)
    assert tracks["valence"][0] > 0.8 and tracks["valence"][1] < -0.7
    assert tracks[["valence", "arousal"]].abs().le(1).all().all()
    assert set(tracks["model_version"]) == {MODEL_VERSION}


def test_summary_counts_and_dominant_emotion() -> None:
    happy, sad = [0, 0, 0, 9, 0, 0, 0], [0, 0, 0, 0, 9, 0, 0]
    features = _features([happy, sad, happy], [0, 0, 1])
    features.loc[2, "frame_index"] = 1  # two faces in frame 1
    summary = summarise_video(score_frames(features), 10, MODEL_VERSION)
    assert summary["frames_analysed"] == 10 and summary["frames_with_face"] == 2
    assert summary["n_tracks"] == 2 and summary["dominant_emotion"] == "happy"
    assert summary["share_happy"] == pytest.approx(2 / 3)
    assert summary["share_sad"] == pytest.approx(1 / 3)


def test_summaries_and_episodes_count_reliable_rows_only() -> None:
    from emotrack.episodes import episodes_of

    happy, sad = [0, 0, 0, 9, 0, 0, 0], [0, 0, 0, 0, 9, 0, 0]
    features = _features([happy] * 10 + [sad] * 10, [0] * 20)
    features.loc[10:, "bbox_w"] = 40.0  # the sad face: too small to trust (under 64 px)
    features.loc[15, "yaw_deg"] = 60.0  # and turned away, where it is large enough
    features.loc[15, "bbox_w"] = 120.0
    tracks = score_frames(features)
    assert tracks["reliable"].tolist() == [True] * 10 + [False] * 10
    assert tracks["emotion"].iloc[12] == "sad"  # flagged, not hidden
    summary = summarise_video(tracks, 20, MODEL_VERSION)
    assert summary["face_observations"] == 20 and summary["reliable_observations"] == 10
    assert summary["share_happy"] == 1.0 and summary["dominant_emotion"] == "happy"
    assert episodes_of(tracks)["emotion"].tolist() == ["happy"]
    tracks["reliable"] = None  # rows written before the column: all counted
    assert summarise_video(tracks, 20, MODEL_VERSION)["share_sad"] == 0.5


def test_summary_without_faces_has_no_dominant_emotion() -> None:
    summary = summarise_video(score_frames(_features([], [])), 7, MODEL_VERSION)
    assert summary["frames_with_face"] == 0 and summary["dominant_emotion"] is None
    assert summary["mean_valence"] is None


def test_smoothing_outvotes_a_flicker_but_keeps_what_lasts_and_stays_in_its_track() -> None:
    from emotrack.scoring import SMOOTHED_VERSION, smoothed_scores

    happy, sad = np.eye(7)[EMOTIONS.index("happy")] * 6, np.eye(7)[EMOTIONS.index("sad")] * 6
    # track 0: happy with a one-frame sad flicker, then two seconds of sad; track 1: all sad
    sequence = [happy] * 5 + [sad] + [happy] * 5 + [sad] * 10
    features = _features([list(r) for r in sequence + [sad] * 6], [0] * 21 + [1] * 6)
    scores = smoothed_scores(features, window_s=1.0)
    labels = "".join("HS"[int(p.argmax() == EMOTIONS.index("sad"))] for p in scores.probs)
    assert labels[:21] == "H" * 11 + "S" * 10  # the flicker is gone, the change kept
    assert labels[21:] == "S" * 6  # track 1's first frames are not pulled towards track 0
    np.testing.assert_allclose(scores.probs.sum(axis=1), 1.0, rtol=1e-6)
    assert scores.model_version == SMOOTHED_VERSION
