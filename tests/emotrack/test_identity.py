"""A track is one person: splits where a followed face becomes someone else, identity in the
segments' stitch, and grouping tracks into people whatever their order."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from emotrack.models.face_landmarker import MISSED

from emotrack.analysis import (
    Segment,
    VideoFeatures,
    extract_features,
    load_models,
    segment_track_ids,
)
from emotrack.faces import Face
from emotrack.identity import IdentityStage, mean_embedding
from emotrack.people import assign_people
from emotrack.settings import Settings
from emotrack.training.evaluate_identity import appearances, bcubed
from emotrack.training.identity_set import CLIPS, _size, _write_clip, shot_truth
from emotrack.video import VideoSource


def _group(embeddings: np.ndarray, threshold: float) -> np.ndarray:
    """A person label per row of `embeddings`, as --people groups tracks in a new lake."""
    identities = pd.DataFrame(
        {"video_id": "v", "track_id": range(len(embeddings)), "embedding": list(embeddings)}
    )
    people = assign_people(identities, {}, threshold).people
    return np.array([people[("v", i)] for i in range(len(embeddings))])


def _unit(v: np.ndarray) -> np.ndarray:
    return (v / np.linalg.norm(v, axis=-1, keepdims=True)).astype(np.float32)


@pytest.fixture(scope="module")
def cuts_clip(settings: Settings, tmp_path_factory) -> tuple[Path, pd.DataFrame]:
    """score-cuts of the identity set: five appearances (four people) at the same place."""
    path = tmp_path_factory.mktemp("identity") / "score-cuts.mp4"
    from emotrack.assets import fetch_asset

    shots = CLIPS["score-cuts"]
    _write_clip(path, shots, settings.cache_dir)
    rows, start = [], 0.0
    for shot in shots:
        for person, x in shot_truth(shot, _size(fetch_asset(shot.asset, settings.cache_dir))):
            rows.append(("score-cuts", "score", person, x, start, start + shot.seconds))
        start += shot.seconds
    return path, pd.DataFrame(rows, columns=["clip", "part", "person", "x", "start_s", "end_s"])


def _tracks(features: VideoFeatures) -> pd.DataFrame:
    grouped = features.table.groupby("track_id")["timestamp_s"]
    return (
        pd.DataFrame({"clip": "score-cuts", "start_s": grouped.min(), "end_s": grouped.max()})
        .rename_axis("track_id")
        .reset_index()
    )


def test_people_following_one_another_at_one_place_get_a_track_each(
    settings: Settings, cuts_clip
) -> None:
    path, truth = cuts_clip
    models = load_models(settings)
    source = VideoSource.from_path(path)
    on = extract_features(source, *models, settings)
    off = extract_features(source, *models._replace(identity=None), settings)
    assert appearances(_tracks(on), truth, "score-cuts") == (5, 5, 5)
    assert appearances(_tracks(off), truth, "score-cuts")[1] <= 1  # one track, all of them
    assert sorted(on.identities) == sorted(on.table["track_id"].unique())
    assert off.identities == {}
    # the first and fourth appearances are the same woman: her two tracks are one person
    first, fourth = (on.identities[t] for t in (0, 3))
    assert float(first @ fourth) >= settings.same_person
    assert len(set(_group(np.stack(list(on.identities.values())), 0.45))) == 4


def test_a_cue_on_someone_else_restarts_the_track_and_on_the_same_face_does_not() -> None:
    a, b = _unit(np.eye(128)[0]), _unit(np.eye(128)[1])  # cosine 0: two people
    said = iter([a, a, a, b, b])  # what the model says, call after call
    restarted: list[int] = []

    def restart(track_id: int) -> int:
        restarted.append(track_id)
        return 7

    stage = IdentityStage(lambda frame, pts: np.stack([next(said)]), restart, sample_every=5)
    rng = np.random.default_rng(0)
    still = rng.integers(0, 255, (90, 120, 3), np.uint8)
    other = rng.integers(0, 255, (90, 120, 3), np.uint8)  # the same place, another look
    face = Face(30.0, 20.0, 60.0, 60.0, 0.9)

    def seen(frame, index, quality=1.0, cut=False):
        return stage.update(index, frame, [(face, MISSED, quality)], [0], cut)

    assert seen(still, 0) == [0] and stage.embeddings_run == 1  # new: embedded
    assert seen(still, 1) == [0] and stage.embeddings_run == 1  # nothing due
    assert seen(still, 2, cut=True) == [0] and stage.embeddings_run == 2  # a cut, same face
    assert seen(still, 7, quality=0.5) == [0] and stage.embeddings_run == 2  # not a good view
    assert seen(still, 8) == [0] and stage.embeddings_run == 3  # a good view, due since 7
    assert seen(other, 9, quality=0.1) == [0] and stage.embeddings_run == 3  # too poor to judge
    assert seen(other, 10) == [7] and stage.embeddings_run == 4  # judged: someone else
    assert restarted == [0]
    assert seen(other, 11, cut=True) == [7] and stage.embeddings_run == 5  # and stays so
    assert set(stage.embeddings()) == {0, 7}


def test_a_tracks_identity_weighs_its_views_by_quality() -> None:
    good, poor = _unit(np.eye(128)[0]), _unit(np.eye(128)[1])
    mean = mean_embedding([(1.0, good), (0.1, poor)])
    assert np.isclose(np.linalg.norm(mean), 1.0) and mean @ good > 5 * (mean @ poor)


def test_segments_join_the_same_place_only_for_the_same_person() -> None:
    def part(track_x: float, identity: np.ndarray, frames: range) -> VideoFeatures:
        rows = [
            {"frame_index": f, "track_id": 0, "bbox_x": track_x, "bbox_y": 0.0,
             "bbox_w": 40.0, "bbox_h": 40.0}
            for f in frames
        ]  # fmt: skip
        return VideoFeatures(len(frames), pd.DataFrame(rows), identities={0: identity})

    a, b = _unit(np.eye(128)[0]), _unit(np.eye(128)[1])
    segments = [Segment(0, 10, 2), Segment(10, None, 0)]
    same = [(segments[0], part(0, a, range(12))), (segments[1], part(0, a, range(10, 20)))]
    other = [(segments[0], part(0, a, range(12))), (segments[1], part(0, b, range(10, 20)))]
    assert segment_track_ids(same, 0.3, 0.3) == [{0: 0}, {0: 0}]
    assert segment_track_ids(other, 0.3, 0.3) == [{0: 0}, {0: 1}]
    assert segment_track_ids(other, 0.3, None) == [{0: 0}, {0: 0}]  # identity off: boxes


def test_people_are_the_same_whatever_order_the_tracks_come_in() -> None:
    rng = np.random.default_rng(1)
    centres = _unit(rng.normal(size=(20, 128)))
    people = np.repeat(np.arange(20), 5)
    tracks = _unit(centres[people] + rng.normal(scale=0.06, size=(100, 128)))
    labels = _group(tracks, 0.5)
    assert bcubed(people, labels) == (1.0, 1.0)
    for seed in range(3):
        order = np.random.default_rng(seed).permutation(100)
        shuffled = _group(tracks[order], 0.5)
        # the same partition: two tracks share a person in one order iff in the other
        same = labels[order][:, None] == labels[order][None, :]
        assert np.array_equal(same, shuffled[:, None] == shuffled[None, :])
        # and over two nights: the first 40 of this order, then the rest joining them
        identities = pd.DataFrame(
            {"video_id": "v", "track_id": order, "embedding": list(tracks[order])}
        )
        first = assign_people(identities.iloc[:40], {}, 0.5).people
        both = assign_people(identities, first, 0.5).people
        nights = np.array([both[("v", int(i))] for i in order])
        assert np.array_equal(same, nights[:, None] == nights[None, :])


def test_bcubed_scores_a_merge_and_a_split() -> None:
    truth = np.array(["a", "a", "b", "b"])
    assert bcubed(truth, np.array([0, 0, 0, 0])) == (0.5, 1.0)  # all merged
    assert bcubed(truth, np.array([0, 1, 2, 3])) == (1.0, 0.5)  # all split
