from datetime import UTC, datetime
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest

from emotrack.lake import SCHEMAS, Lake
from emotrack.scoring import MODEL_VERSION, score_frames, summarise_video

NOW = datetime(2026, 11, 23, tzinfo=UTC)


def _video_tables(n_faces: int) -> dict[str, pd.DataFrame]:
    features = pd.DataFrame(
        {
            "frame_index": range(n_faces),
            "timestamp_s": np.arange(n_faces) * 0.2,
            "track_id": 0,
            "bbox_x": 1.0,
            "bbox_y": 2.0,
            "bbox_w": 30.0,
            "bbox_h": 40.0,
            "face_score": 0.99,
            "logits": [np.arange(7, dtype=np.float32)] * n_faces,
            "embedding": [np.ones(128, np.float32)] * n_faces,
        }
    )
    tracks = score_frames(features)
    video = {name: None for name in SCHEMAS["videos"].names}
    video |= {"source_uri": "/archive/a.mp4", "status": "ok", "processed_at": NOW}
    video["frames_analysed"] = n_faces
    return {
        "features": features,
        "tracks": tracks,
        "summaries": pd.DataFrame([summarise_video(tracks, n_faces, MODEL_VERSION)]),
        "videos": pd.DataFrame([video]),
    }


def _count(lake: Lake, table: str) -> int:
    with duckdb.connect() as con:
        query = "SELECT count(*) FROM read_parquet(?, hive_partitioning=true)"
        return con.execute(query, [lake.glob(table)]).fetchall()[0][0]


def test_publishing_twice_replaces_instead_of_duplicating(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    assert lake.publish("vaaa", _video_tables(5), source_uri="/archive/a.mp4")["tracks"] == 5
    lake.publish("vaaa", _video_tables(3), source_uri="/archive/a.mp4")
    lake.publish("vbbb", _video_tables(2), source_uri="/archive/b.mp4")
    assert _count(lake, "tracks") == 5 and _count(lake, "videos") == 2
    tracks = lake.read("tracks")
    assert sorted(tracks["video_id"].unique()) == ["vaaa", "vbbb"]
    assert not (tmp_path / "_staging").exists() or not any((tmp_path / "_staging").iterdir())


def test_a_video_that_fails_validation_leaves_nothing_behind(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    tables = _video_tables(4)
    tables["tracks"] = tables["tracks"].drop(columns=["p_happy"])
    with pytest.raises(ValueError, match="p_happy"):
        lake.publish("vccc", tables, source_uri="/archive/c.mp4")
    assert list(tmp_path.rglob("*.parquet")) == []


def test_a_success_clears_the_earlier_failure_of_the_same_file(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    failure = {
        "source_uri": "/archive/a.mp4",
        "video_id": "vold",
        "stage": "probe",
        "error_type": "UnreadableVideo",
        "message": "the file is empty",
        "failed_at": NOW,
    }
    lake.record_failure(failure, None)
    lake.record_failure(failure, None)  # recorded again: still one row
    assert len(lake.read("failures")) == 1
    lake.publish("vnew", _video_tables(1), source_uri="/archive/a.mp4")
    assert len(lake.read("failures")) == 0


def test_reading_an_empty_table_gives_its_columns(tmp_path: Path) -> None:
    empty = Lake(tmp_path).read("summaries")
    assert empty.empty and "dominant_emotion" in empty.columns and "video_id" in empty.columns


def test_pandas_reads_the_lake_with_video_id_as_text(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    lake.publish("v0123456789012345", _video_tables(2), source_uri="/archive/a.mp4")
    frame = pd.read_parquet(tmp_path / "tracks")
    assert frame["video_id"].astype(str).unique().tolist() == ["v0123456789012345"]


def test_a_new_model_version_replaces_tracks_unless_asked_to_keep_both(tmp_path: Path) -> None:
    lake = Lake(tmp_path)
    lake.publish("vaaa", _video_tables(4), source_uri="/archive/a.mp4")
    features_file = next((tmp_path / "features").rglob("*.parquet"))
    features_before = features_file.stat().st_mtime_ns

    def rescored(version: str) -> dict[str, pd.DataFrame]:
        tables = _video_tables(4)
        tables["tracks"]["model_version"] = version
        tables["summaries"]["model_version"] = version
        return {"tracks": tables["tracks"], "summaries": tables["summaries"]}

    lake.publish("vaaa", rescored("model-b"))
    assert set(lake.read("tracks")["model_version"]) == {"model-b"}
    lake.publish("vaaa", rescored("model-c"), keep_versions=True)
    tracks = lake.read("tracks")
    assert tracks.groupby("model_version").size().to_dict() == {"model-b": 4, "model-c": 4}
    assert set(lake.read("summaries")["model_version"]) == {"model-b", "model-c"}
    assert features_file.stat().st_mtime_ns == features_before  # features untouched
    assert len(lake.read("features")) == 4


def test_one_run_at_a_time_holds_the_lake(tmp_path: Path) -> None:
    import threading

    lake = Lake(tmp_path)
    (tmp_path / "_staging" / "vdead-123").mkdir(parents=True)  # left by a killed run
    held, release = threading.Event(), threading.Event()

    def first_run() -> None:
        with lake.exclusive():
            held.set()
            release.wait(10)

    thread = threading.Thread(target=first_run)
    thread.start()
    held.wait(10)
    assert not (tmp_path / "_staging").exists()
    with pytest.raises(TimeoutError), lake.exclusive(timeout_s=1):
        pass
    release.set()
    thread.join()
    with lake.exclusive(timeout_s=5):
        pass


def test_an_attempt_is_counted_only_while_its_run_dies_in_it(tmp_path) -> None:
    lake = Lake(tmp_path / "lake")
    with lake.attempt("va"):
        assert lake.crashed() == {"va": 1}
    with pytest.raises(ValueError), lake.attempt("va"):
        raise ValueError("the video failed: the run goes on")
    assert lake.crashed() == {}

    for runs in (1, 2):  # a run that dies mid-attempt never reaches the end of the block
        attempt = lake.attempt("vb")
        attempt.__enter__()
        assert lake.crashed() == {"vb": runs}
    with lake.attempt("vb"):  # a third run gets through: the count is cleared
        assert lake.crashed() == {"vb": 3}
    assert lake.crashed() == {}
    assert not list(lake.root.glob("**/*.tmp")) and lake.read("videos").empty


def test_the_run_table_gives_a_reason_for_every_video_that_did_not_end_ok(tmp_path) -> None:
    from emotrack.report import run_rows

    lake = Lake(tmp_path / "lake")
    lake.create_tables()
    lake.record_failure(
        {"source_uri": "/a/bad.mp4", "video_id": None, "stage": "probe",
         "error_type": "UnreadableVideo", "message": "the file is empty (0 bytes)",
         "failed_at": datetime.now(UTC)},
        None,
    )  # fmt: skip
    statuses = {"/a/bad.mp4": "failed", "/a/odd.mp4": "error"}
    rows = {row["video"]: row for row in run_rows(statuses, lake)}
    assert rows["bad.mp4"]["reason"] == "probe: the file is empty (0 bytes)"
    assert "unexpected error" in str(rows["odd.mp4"]["reason"])
