"""The lake's Delta tables: commits that replace, keys, versions, readers, compaction, lock."""

from datetime import UTC, datetime
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from deltalake import DeltaTable

from emotrack.lake import Batch, Lake, Staged
from emotrack.schema import PUBLIC, TABLES
from emotrack.scoring import MODEL_VERSION, score_frames, summarise_video

NOW = datetime(2026, 11, 23, tzinfo=UTC)


def _video(video_id: str, n_faces: int, uri: str = "/archive/a.mp4") -> dict[str, pd.DataFrame]:
    features = pd.DataFrame(
        {
            "video_id": video_id,
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
    tracks = score_frames(features).assign(video_id=video_id)
    summary = summarise_video(tracks, n_faces, MODEL_VERSION, n_faces * 0.2)
    video = dict.fromkeys(TABLES["videos"].names)
    video |= {"video_id": video_id, "source_uri": uri, "status": "ok", "processed_at": NOW}
    video["frames_analysed"] = n_faces
    return {
        "features": features,
        "tracks": tracks,
        "summaries": pd.DataFrame([{**summary, "video_id": video_id}]),
        "videos": pd.DataFrame([video]),
    }


def _commit(lake: Lake, *videos: dict[str, pd.DataFrame], keep: str | None = None) -> dict:
    batch = Batch()
    for tables in videos:
        for table, rows in tables.items():
            batch.add(table, rows["video_id"].unique(), rows)
    return lake.commit(batch, keep)


@pytest.fixture
def lake(tmp_path: Path) -> Lake:
    lake = Lake(tmp_path / "lake")
    lake.create_tables()
    return lake


def test_a_commit_holds_many_videos_and_committing_again_replaces_them(lake: Lake) -> None:
    rows = _commit(lake, _video("vaaa", 5), _video("vbbb", 2, "/archive/b.mp4"))
    assert rows["tracks"] == 7 and rows["videos"] == 2
    assert len(lake.files("tracks")) == 1  # one commit, one file: not a file per video
    _commit(lake, _video("vaaa", 3))
    assert lake.count("tracks") == 5 and lake.count("videos") == 2
    assert sorted(lake.read("tracks")["video_id"].unique()) == ["vaaa", "vbbb"]
    assert len(lake.read_video("tracks", "vaaa")) == 3


def test_new_videos_are_appended_and_a_batch_with_a_known_one_replaces_its_rows(
    lake: Lake,
) -> None:
    def last_write(table: str) -> dict:
        return DeltaTable(lake.table_uri(table)).history(1)[0]["operationParameters"]

    _commit(lake, _video("vaaa", 5), _video("vbbb", 2, "/archive/b.mp4"))
    assert {last_write(t)["mode"] for t in ("features", "tracks", "videos")} == {"Append"}
    added = pa.table(DeltaTable(lake.table_uri("features")).get_add_actions(flatten=True))
    assert added.select(["min.video_id", "max.video_id", "num_records"]).to_pylist() == [
        {"min.video_id": "vaaa", "max.video_id": "vbbb", "num_records": 7}
    ]  # statistics, for readers to skip the file
    _commit(lake, _video("vaaa", 3), _video("vccc", 1, "/archive/c.mp4"))
    assert last_write("tracks")["mode"] == "Overwrite"
    counts = lake.read("tracks")["video_id"].value_counts().to_dict()
    assert counts == {"vaaa": 3, "vbbb": 2, "vccc": 1} and lake.count("videos") == 3


def test_the_same_video_twice_in_a_batch_keeps_the_later_rows(lake: Lake) -> None:
    _commit(lake, _video("vaaa", 5), _video("vaaa", 2, "/archive/copy.mp4"))
    assert lake.count("tracks") == 2
    assert lake.read("videos")["source_uri"].tolist() == ["/archive/copy.mp4"]


def test_staged_rows_replace_a_videos_rows_in_files_a_reader_can_skip(lake: Lake) -> None:
    """A long video's rows come staged by its segments (Lake.stage): the commit keeps each
    file's frames before its end, gives the video's track ids, replaces the older rows of
    that video only, and writes file statistics by which readers skip the file."""
    _replace_by_staged_rows(lake)


def test_staged_rows_are_committed_to_object_storage_too(s3) -> None:
    lake = Lake(f"s3://{s3.bucket('staged')}/lake")
    lake.create_tables()
    _replace_by_staged_rows(lake)


def _replace_by_staged_rows(lake: Lake) -> None:
    _commit(lake, _video("v1", 4), _video("v2", 3))
    new = _video("v1", 6)
    first = lake.stage("features", "r/0.parquet", new["features"].assign(track_id=5))
    second = lake.stage("features", "r/1.parquet", new["features"].assign(track_id=9))
    batch = Batch()
    batch.add_staged(
        "features", "v1", [Staged(first, "v1", 3, {5: 0}), Staged(second, "v1", None, {9: 0, 4: 1})]
    )
    batch.add("videos", ["v1"], new["videos"])
    assert lake.commit(batch) == {"features": 3 + 6, "videos": 1}
    mine = lake.read_video("features", "v1").sort_values(["frame_index"], kind="stable")
    assert mine["frame_index"].tolist() == [0, 0, 1, 1, 2, 2, 3, 4, 5] and set(
        mine["track_id"]
    ) == {0}
    assert (
        len(lake.read_video("features", "v2")) == 3
        and lake.read("videos")["video_id"].nunique() == 2
    )
    assert lake.store.keys("_staging") == []
    table = DeltaTable(lake.table_uri("features"), storage_options=lake.store.table_options())
    added = pa.table(table.get_add_actions(flatten=True))
    bounds = added.select(["min.video_id", "max.video_id", "num_records"]).to_pylist()
    assert {"min.video_id": "v1", "max.video_id": "v1", "num_records": 9} in bounds


def test_a_batch_that_fails_validation_writes_nothing(lake: Lake) -> None:
    video = _video("vccc", 4)
    video["tracks"] = video["tracks"].drop(columns=["p_happy"])
    with pytest.raises(ValueError, match="p_happy"):
        _commit(lake, video)
    assert all(lake.count(table) == 0 for table in PUBLIC)


def test_a_video_with_no_rows_left_loses_its_old_ones(lake: Lake) -> None:
    _commit(lake, _video("vaaa", 4))
    batch = Batch()
    batch.add("tracks", ["vaaa"], None)  # reprocessed: no face any more
    lake.commit(batch)
    assert lake.count("tracks") == 0 and lake.count("features") == 4


def test_a_success_clears_the_earlier_failure_of_the_same_file(lake: Lake) -> None:
    failure = {
        "source_uri": "/archive/a'b ü.mp4",  # quotes and unicode are only characters
        "video_id": "vold",
        "stage": "probe",
        "error_type": "UnreadableVideo",
        "message": "the file is empty",
        "failed_at": NOW,
    }
    for _ in range(2):  # recorded twice: still one row
        batch = Batch()
        batch.add("failures", [failure["source_uri"]], pd.DataFrame([failure]))
        lake.commit(batch)
    assert len(lake.read("failures")) == 1 and lake.failed() == {failure["source_uri"]: "vold"}
    batch = Batch()
    batch.add("failures", [failure["source_uri"]], pd.DataFrame())
    lake.commit(batch)
    assert lake.read("failures").empty


def test_a_new_model_version_replaces_tracks_unless_asked_to_keep_both(lake: Lake) -> None:
    _commit(lake, _video("vaaa", 4))
    features_version = DeltaTable(lake.table_uri("features")).version()

    def rescored(version: str) -> dict[str, pd.DataFrame]:
        tables = _video("vaaa", 4)
        return {t: tables[t].assign(model_version=version) for t in ("tracks", "summaries")}

    _commit(lake, rescored("model-b"))
    assert set(lake.read("tracks")["model_version"]) == {"model-b"}
    _commit(lake, rescored("model-c"), keep="model-c")
    _commit(lake, rescored("model-c"), keep="model-c")  # again: replaces its own rows only
    tracks = lake.read("tracks")
    assert tracks.groupby("model_version").size().to_dict() == {"model-b": 4, "model-c": 4}
    assert set(lake.read("summaries")["model_version"]) == {"model-b", "model-c"}
    assert DeltaTable(lake.table_uri("features")).version() == features_version  # untouched
    assert lake.completed("model-b") == {"vaaa"} and lake.completed("model-x") == set()


def test_an_empty_table_reads_with_its_columns(lake: Lake) -> None:
    empty = lake.read("summaries")
    assert empty.empty and list(empty.columns) == TABLES["summaries"].names
    with lake.connect() as con:
        assert con.execute("SELECT count(*) FROM episodes").fetchall() == [(0,)]


def test_readers_without_emotrack_see_the_committed_snapshot(lake: Lake) -> None:
    import polars as pl

    _commit(lake, _video("v0123456789012345", 2))
    _commit(lake, _video("v0123456789012345", 3))  # replaced: the old file stays, unread
    uri = lake.table_uri("tracks")
    frame = DeltaTable(uri).to_pandas()
    assert frame["video_id"].tolist() == ["v0123456789012345"] * 3
    assert pl.scan_delta(uri).select(pl.len()).collect().item() == 3
    with duckdb.connect() as con:
        files = DeltaTable(uri).file_uris()
        assert con.execute("SELECT count(*) FROM read_parquet(?)", [files]).fetchall() == [(3,)]


def test_compaction_packs_small_files_and_z_order_keeps_each_video_together(lake: Lake) -> None:
    for i in range(12):
        _commit(lake, _video(f"v{i:016x}", 6), _video(f"v{99 - i:016x}", 6))
    before = lake.read("tracks").sort_values(["video_id", "frame_index"], ignore_index=True)
    assert len(lake.files("tracks")) == 12 and lake.small_files("tracks") == 12
    assert lake.compact(min_small_files=20) == {}  # under the threshold: left alone
    done = lake.compact(min_small_files=8)
    assert done["tracks"]["files_removed"] == 12 and len(lake.files("tracks")) == 1
    sorted_done = lake.compact(sort=True, retention_hours=0)  # and vacuum what was replaced
    assert sorted_done["tracks"]["vacuumed"] >= 12
    on_disk = [p for p in (lake.root / "tracks").glob("*.parquet")]
    assert len(on_disk) == len(lake.files("tracks")) == 1
    after = lake.read("tracks").sort_values(["video_id", "frame_index"], ignore_index=True)
    pd.testing.assert_frame_equal(after, before)
    ids = pq_column(lake.files("tracks")[0], "video_id")  # each video's rows together
    runs = [a for a, b in zip(ids, [None, *ids[:-1]], strict=True) if a != b]
    assert len(runs) == len(set(ids)) == 24


def pq_column(path: str, column: str) -> list[str]:
    import pyarrow.parquet as pq

    return pq.read_table(path.removeprefix("file://"), columns=[column])[column].to_pylist()


def test_what_the_lake_knows_of_sources_is_replaced_by_uri(lake: Lake) -> None:
    rows = pd.DataFrame(
        {
            "uri": ["/a.mp4", "/b.mp4"],
            "size_bytes": [1, 2],
            "mtime_ns": [10, 20],
            "inode": [5, 6],
            "etag": None,
            "video_id": ["va", "vb"],
            "recorded_at": NOW,
        }
    )
    lake.remember_sources(rows)
    lake.remember_sources(rows.iloc[:1].assign(size_bytes=7, video_id="vc"))
    sources = lake.sources()
    assert {u: (s["size_bytes"], s["video_id"]) for u, s in sources.items()} == {
        "/a.mp4": (7, "vc"),
        "/b.mp4": (2, "vb"),
    }


def test_one_run_at_a_time_holds_the_lake(tmp_path: Path) -> None:
    import threading

    lake = Lake(tmp_path)
    held, release = threading.Event(), threading.Event()

    def first_run() -> None:
        with lake.exclusive():
            held.set()
            release.wait(10)

    thread = threading.Thread(target=first_run)
    thread.start()
    held.wait(10)
    with pytest.raises(TimeoutError), lake.exclusive(timeout_s=1):
        pass
    release.set()
    thread.join()
    with lake.writing(timeout_s=5):
        assert lake.has_table("videos") and lake.has_table("_sources")


def test_an_attempt_is_counted_only_while_its_run_dies_in_it(lake: Lake) -> None:
    lake.start_attempt("/a/x.mp4")
    assert lake.crashed() == {"/a/x.mp4": 1}
    lake.end_attempt("/a/x.mp4")  # the video's result came back: the run did not die on it
    assert lake.crashed() == {}

    for runs in (1, 2):  # a run that dies mid-attempt never ends it
        lake.start_attempt("/a/y.mp4", lake.crashed().get("/a/y.mp4", 0))
        assert lake.crashed() == {"/a/y.mp4": runs}
    lake.end_attempt("/a/y.mp4")  # a third run gets through: the count is cleared
    assert lake.crashed() == {}


def test_a_folder_that_is_not_a_lake_is_said_so(tmp_path: Path) -> None:
    from emotrack.lake import NotALake

    with pytest.raises(NotALake, match="emotrack migrate"):
        Lake(tmp_path).read("videos")


def test_compaction_packs_small_files_on_object_storage_too(s3) -> None:
    lake = Lake(f"s3://{s3.bucket('pack')}/lake")
    lake.create_tables()
    for i in range(9):
        _commit(lake, _video(f"v{i:016x}", 4))
    before = lake.read("tracks").sort_values(["video_id", "frame_index"], ignore_index=True)
    done = lake.compact(min_small_files=8, tables=["tracks"])
    assert done["tracks"]["files_removed"] == 9 and len(lake.files("tracks")) == 1
    after = lake.read("tracks").sort_values(["video_id", "frame_index"], ignore_index=True)
    pd.testing.assert_frame_equal(after, before)
