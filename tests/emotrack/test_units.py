"""The unit of work: one video from bytes to rows, in this process or on Dask workers."""

import shutil
from pathlib import Path

import pandas as pd
import pytest

from emotrack.cluster import dask_client, run_bounded
from emotrack.errors import UnreadableVideo
from emotrack.inference import DEFAULT_MODEL
from emotrack.lake import Batch, Lake
from emotrack.schema import TABLES
from emotrack.settings import Settings
from emotrack.sources import Found
from emotrack.units import RescoreJob, VideoJob, analyse_video, rescore_videos


@pytest.fixture(scope="module")
def client():
    with dask_client(None, 2) as client:
        yield client


def _job(path: Path) -> VideoJob:
    return VideoJob(Found(str(path), path.stat().st_size))


def test_a_video_gives_the_same_rows_here_and_on_a_worker(asset, client, tmp_path) -> None:
    clip = asset("single_face.mp4")
    here = analyse_video(_job(clip), Settings(), DEFAULT_MODEL, str(tmp_path))
    (_, there), *_ = filter(
        None,
        run_bounded(
            client, analyse_video, [_job(clip)], Settings(), DEFAULT_MODEL, str(tmp_path), window=1
        ),
    )
    assert here.status == there.status == "ok" and here.frames == 12
    # The same rows, up to float rounding: a worker's TensorFlow runs on one thread, this
    # process's on several, which sums the CNN's convolutions in another order (~1e-6).
    for table in ("features", "tracks", "episodes", "summaries"):
        pd.testing.assert_frame_equal(here.rows[table], there.rows[table], rtol=1e-4, atol=1e-5)
    assert set(here.rows) >= {"videos", "failures"}  # complete: its failure, if any, cleared
    page = here.pages[f"{here.video_id}.html"].decode()
    assert "single_face.mp4" in page and f"thumbs/{here.video_id}-0.jpg" in page
    assert here.pages[f"thumbs/{here.video_id}-0.jpg"][:2] == b"\xff\xd8"  # a JPEG
    summary = here.rows["summaries"].iloc[0]
    assert len(summary["valence_series"]) == 48 and summary["n_tracks"] == 1


def test_a_long_video_is_spread_over_the_workers_in_segments(asset, client, tmp_path) -> None:
    """Its segments run on both workers and stage their rows in the lake; the commit takes
    them (overlap frames dropped, one track id across the cuts) and leaves no staged file."""
    from distributed import get_task_stream

    talk = asset("WolfgangLanger_Pexels.mp4")  # 19.7 s
    whole = analyse_video(_job(talk), Settings(), DEFAULT_MODEL, str(tmp_path))
    lake = Lake(tmp_path / "lake")
    lake.create_tables()
    settings = Settings(segment_s=6.0)
    with get_task_stream(client) as stream:
        done = list(
            filter(
                None,
                run_bounded(
                    client, analyse_video, [_job(talk)], settings, DEFAULT_MODEL, lake.url, window=1
                ),
            )
        )
    _, split = done[0]
    segments = {t["key"].split("-")[0] for t in stream.data if "segment" in t["key"]}
    workers = {t["worker"] for t in stream.data if "segment" in t["key"]}
    assert segments == {"segment_features"} and len(workers) == 2
    assert split.frames == whole.frames and split.rows["tracks"]["track_id"].nunique() == 1
    assert "features" not in split.rows and len(split.staged["features"]) == 3
    assert len(lake.store.keys("_staging")) == 3
    batch = Batch()
    split.add_to(batch)
    assert lake.commit(batch)["features"] == len(whole.rows["features"])
    stored = lake.read("features").sort_values("frame_index")
    assert stored["frame_index"].tolist() == whole.rows["features"]["frame_index"].tolist()
    assert set(stored["track_id"]) == {0} and stored["landmarks_i16"].notna().all()
    assert lake.store.keys("_staging") == []


def test_rows_staged_by_a_run_that_died_are_deleted_by_the_next(tmp_path) -> None:
    lake = Lake(tmp_path / "lake")
    lake.create_tables()
    lake.stage("features", "dead-run/00000.parquet", TABLES["features"].arrow.empty_table())
    assert lake.store.keys("_staging") == ["_staging/dead-run/00000.parquet"]
    with lake.writing():
        assert lake.store.keys("_staging") == []


def test_an_unreadable_file_is_a_result_with_its_reason(tmp_path) -> None:
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n")
    result = analyse_video(_job(text), Settings(), DEFAULT_MODEL, str(tmp_path))
    assert result.status == "failed" and "cannot read it as a video" in result.detail
    failure = result.rows["failures"].iloc[0]
    assert failure["stage"] == "probe" and failure["source_uri"] == str(text)
    assert result.rows["videos"].iloc[0]["status"] == "failed" and "tracks" not in result.rows


def test_rescoring_from_stored_features_gives_the_analysis_own_tracks(asset, tmp_path) -> None:
    clip = tmp_path / "clip.mp4"
    shutil.copyfile(asset("single_face.mp4"), clip)
    lake = Lake(tmp_path / "lake")
    lake.create_tables()
    analysed = analyse_video(_job(clip), Settings(), DEFAULT_MODEL, lake.url)
    batch = Batch()
    analysed.add_to(batch)
    lake.commit(batch)
    (rescored,) = rescore_videos(
        RescoreJob(lake.read("videos").to_dict("records")), DEFAULT_MODEL, lake.url
    )
    pd.testing.assert_frame_equal(
        rescored.rows["tracks"], analysed.rows["tracks"], check_dtype=False
    )
    assert (
        f"thumbs/{analysed.video_id}-0.jpg" in rescored.pages[f"{analysed.video_id}.html"].decode()
    )


def test_a_missing_file_is_unreadable_not_an_error(tmp_path) -> None:
    with pytest.raises(UnreadableVideo):
        from emotrack.video import VideoSource

        VideoSource.from_path(tmp_path / "gone.mp4")
    result = analyse_video(
        VideoJob(Found(str(tmp_path / "gone.mp4"))), Settings(), DEFAULT_MODEL, str(tmp_path)
    )
    assert result.status == "failed" and "does not exist" in result.detail
