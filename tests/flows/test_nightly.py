"""End to end through the real Prefect flow, ffmpeg, MTCNN and the CNN (see conftest)."""

import json

import numpy as np
import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import (
    ArtifactFilter,
    ArtifactFilterFlowRunId,
    FlowRunFilter,
    FlowRunFilterId,
    LogFilter,
    LogFilterFlowRunId,
)

from emotrack.inference import DEFAULT_MODEL
from emotrack.lake import Lake
from emotrack.schema import PUBLIC, TABLES
from emotrack.vocabulary import EMOTIONS

GOOD = {"single_face.mp4", "no_face.mp4", "smile.mp4", "portrait.mov"}
BAD = {"empty.mp4", "notes.mp4"}


def _by_name(table):
    return table.assign(name=table["source_uri"].str.rsplit("/", n=1).str[-1]).set_index("name")


def test_flow_completes_and_counts_good_and_bad_inputs(nightly_run) -> None:
    assert nightly_run.counts == {"ok": len(GOOD), "failed": len(BAD)}


def _task_runs(flow_run_id):
    with get_client(sync_client=True) as client:
        return client.read_task_runs(
            flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id]))
        )


def test_the_run_publishes_a_video_table_and_a_summary_as_artifacts(nightly_run) -> None:
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                flow_run_id=ArtifactFilterFlowRunId(any_=[nightly_run.flow_run_id])
            )
        )
    by_key = {a.key: a for a in artifacts}
    assert set(by_key) == {"emotrack-run-videos", "emotrack-run-summary", "emotrack-run-progress"}
    assert float(by_key["emotrack-run-progress"].data) == 100.0
    table = by_key["emotrack-run-videos"].data
    rows = {row["video"]: row for row in (json.loads(table) if isinstance(table, str) else table)}
    assert set(rows) == GOOD | BAD
    assert rows["smile.mp4"]["status"] == "ok" and rows["smile.mp4"]["dominant_emotion"] == "happy"
    assert rows["single_face.mp4"]["frames"] == 12
    assert "empty (0 bytes)" in rows["empty.mp4"]["reason"]
    summary = by_key["emotrack-run-summary"].data
    assert "**4** ok" in summary and "**2** failed" in summary and "notes.mp4" in summary
    assert str(nightly_run.lake.root) in summary


def _versions(lake) -> dict[str, int]:
    from deltalake import DeltaTable

    return {t: DeltaTable(lake.table_uri(t)).version() for t in PUBLIC}


def test_a_second_run_over_an_unchanged_archive_processes_nothing(nightly_run) -> None:
    from emotrack.flows.nightly import nightly

    lake = nightly_run.lake
    files, versions = (
        {p: p.stat().st_mtime_ns for p in lake.root.rglob("*.parquet")},
        _versions(lake),
    )
    state = nightly(source=str(nightly_run.source), lake=str(lake.root), return_state=True)
    assert state.result() == {"skipped": len(GOOD), "quarantined": len(BAD)}
    names = {t.name for t in _task_runs(state.state_details.flow_run_id)}
    assert not any(n.startswith("commit") for n in names), names
    assert {p: p.stat().st_mtime_ns for p in lake.root.rglob("*.parquet")} == files
    assert _versions(lake) == versions  # no commit to any table


def test_prefect_server_recorded_the_run_and_one_warning_per_unreadable_file(
    nightly_run,
) -> None:
    with get_client(sync_client=True) as client:
        flow_run = client.read_flow_run(nightly_run.flow_run_id)
        logs = client.read_logs(
            log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[nightly_run.flow_run_id]))
        )
    task_runs = _task_runs(nightly_run.flow_run_id)
    assert flow_run.state.is_completed()
    assert not [t.name for t in task_runs if t.state.is_failed()]  # unreadable is not failed
    assert not [log.message for log in logs if log.level >= 40]  # no ERROR, no traceback
    for name in BAD:
        warnings = [log.message for log in logs if log.level == 30 and name in log.message]
        assert len(warnings) == 1 and "not processed" in warnings[0], warnings
    # a few task runs whatever the number of videos: the videos are units of work on Dask
    steps = [
        "forget-expired",
        "plan-run",
        "commit videos 1-6 of 6",
        "compact-tables",
        "write-html-report",
        "publish-run-report",
    ]
    assert len(task_runs) == len(steps)
    assert all(any(t.name.startswith(step) for t in task_runs) for step in steps)
    for name in GOOD | BAD:  # and every video is named in the log, with its outcome
        assert [m for m in (log.message for log in logs) if f": {name} " in m], name


def test_videos_has_one_row_per_input_with_its_status(nightly_run) -> None:
    videos = _by_name(nightly_run.lake.read("videos"))
    assert set(videos.index) == GOOD | BAD
    assert set(videos.loc[list(GOOD), "status"]) == {"ok"}
    assert set(videos.loc[list(BAD), "status"]) == {"failed"}
    assert videos.loc["single_face.mp4", ["width", "height", "codec"]].tolist() == [
        640,
        360,
        "h264",
    ]
    assert videos.loc["single_face.mp4", "duration_s"] == pytest.approx(2.4, abs=0.05)
    phone = videos.loc["portrait.mov"]
    assert (phone["rotation"], phone["width"], phone["height"]) == (90, 480, 640)


def test_bad_files_are_in_failures_with_clear_messages_and_nothing_else(nightly_run) -> None:
    lake = nightly_run.lake
    failures = _by_name(lake.read("failures"))
    assert set(failures.index) == BAD
    assert set(failures["stage"]) == {"probe"}
    assert "empty (0 bytes)" in failures.loc["empty.mp4", "message"]
    assert "cannot read it as a video" in failures.loc["notes.mp4", "message"]
    bad_ids = set(failures["video_id"])
    for table in ("features", "tracks", "summaries"):
        assert not bad_ids & set(lake.read(table)["video_id"]), table


def test_tracks_are_complete_and_well_formed(nightly_run) -> None:
    lake = nightly_run.lake
    tracks, features = lake.read("tracks"), lake.read("features")
    videos = lake.read("videos").set_index("video_id")
    assert list(tracks.columns) == TABLES["tracks"].names
    assert set(tracks["model_version"]) == {DEFAULT_MODEL}
    assert tracks["intensity"].between(0, 1).all()
    probs = tracks[[f"p_{e}" for e in EMOTIONS]].to_numpy()
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    assert tracks[["valence", "arousal"]].abs().le(1).all().all()
    assert set(tracks["emotion"]) <= set(EMOTIONS)
    for (_, _), track in tracks.groupby(["video_id", "track_id"]):
        assert track["timestamp_s"].is_monotonic_increasing and track["timestamp_s"].is_unique
    size = videos.loc[tracks["video_id"], ["width", "height"]].to_numpy()
    assert (tracks["bbox_x"] + tracks["bbox_w"] <= size[:, 0] + 1).all()
    assert (tracks["bbox_y"] + tracks["bbox_h"] <= size[:, 1] + 1).all()
    keys = ["video_id", "frame_index", "track_id"]
    assert features[keys].sort_values(keys).values.tolist() == (
        tracks[keys].sort_values(keys).values.tolist()
    )
    assert set(features["logits"].map(len)) == {7}
    assert set(features["embedding"].map(len)) == {128}


def test_summaries_describe_each_video(nightly_run) -> None:
    lake = nightly_run.lake
    videos = lake.read("videos")[["video_id", "source_uri", "frames_analysed"]]
    summaries = lake.read("summaries").merge(videos, on="video_id", suffixes=("", "_video"))
    assert (summaries["frames_analysed"] == summaries["frames_analysed_video"]).all()
    summaries = _by_name(summaries)
    assert set(summaries.index) == GOOD
    assert summaries.loc["no_face.mp4", "frames_with_face"] == 0
    assert summaries.loc["single_face.mp4", "frames_analysed"] == 12  # 2.4 s at 5 fps
    for name in ("smile.mp4", "portrait.mov"):  # upright only if the rotation was honoured
        row = summaries.loc[name]
        assert row["frames_analysed"] == 15 and row["frames_with_face"] >= 13, name
        assert row["n_tracks"] == 1 and row["dominant_emotion"] == "happy", name
        assert row["mean_valence"] > 0.5, name


def test_running_again_replaces_rows_instead_of_adding_them(nightly_run) -> None:
    from emotrack.flows.nightly import nightly

    lake = nightly_run.lake
    before = {t: len(lake.read(t)) for t in PUBLIC}
    counts = nightly(source=str(nightly_run.source), lake=str(lake.root), reprocess=True)
    assert counts == {"ok": len(GOOD), "failed": len(BAD)}
    assert {t: len(lake.read(t)) for t in PUBLIC} == before


def test_an_unexpected_error_fails_the_run_after_the_other_videos(
    prefect_server, asset, tmp_path, faulty_cluster
) -> None:
    import shutil

    from emotrack.flows.nightly import nightly

    # fault injection in the Dask workers: a bug that shows on one video only
    address = faulty_cluster("no_face.mp4", RuntimeError("unexpected (injected)"))
    archive = tmp_path / "archive"
    archive.mkdir()
    for name in ["no_face.mp4", "single_face.mp4"]:
        shutil.copyfile(asset(name), archive / name)
    lake = Lake(tmp_path / "lake")
    state = nightly(
        source=str(archive), lake=str(lake.root), dask_address=address, return_state=True
    )
    assert state.is_failed()
    error = state.result(raise_on_failure=False)
    assert isinstance(error, RuntimeError) and "no_face.mp4" in str(error)
    names = {uri.rsplit("/", 1)[-1] for uri in lake.read("videos")["source_uri"]}
    assert names == {"single_face.mp4"}  # done despite the error, which is not a `failure`
    assert lake.read("failures").empty


def test_a_transient_error_is_sent_again_and_the_run_completes(
    prefect_server, asset, tmp_path, faulty_cluster
) -> None:
    import shutil

    from emotrack.flows.nightly import nightly

    # fault injection in the Dask workers: the first read hits an I/O error
    once = tmp_path / "failed-once"
    address = faulty_cluster("single_face.mp4", OSError("Input/output error (injected)"), once)
    archive = tmp_path / "archive"
    archive.mkdir()
    shutil.copyfile(asset("single_face.mp4"), archive / "single_face.mp4")
    state = nightly(
        source=str(archive),
        lake=str(tmp_path / "lake"),
        dask_address=address,
        return_state=True,
    )
    assert state.is_completed() and state.result() == {"ok": 1}
    assert once.exists()  # the fault did fire
    with get_client(sync_client=True) as client:
        logs = client.read_logs(
            log_filter=LogFilter(
                flow_run_id=LogFilterFlowRunId(any_=[state.state_details.flow_run_id])
            )
        )
    again = [log.message for log in logs if "sent again in 5 s" in log.message]
    assert len(again) == 1 and "Input/output error (injected)" in again[0]


def test_a_very_large_frame_is_analysed_within_the_pixel_budget(
    prefect_server, asset, huge_clip, tmp_path
) -> None:
    import shutil

    from emotrack.flows.nightly import nightly

    archive = tmp_path / "archive"
    archive.mkdir()
    huge = archive / "huge.mp4"
    shutil.copyfile(huge_clip, huge)
    assert huge.stat().st_size < 2_000_000
    shutil.copyfile(asset("single_face.mp4"), archive / "single_face.mp4")
    lake = Lake(tmp_path / "lake")
    assert nightly(source=str(archive), lake=str(lake.root)) == {"ok": 2}
    videos = _by_name(lake.read("videos"))
    assert videos.loc["huge.mp4", ["width", "height"]].tolist() == [8192, 8192]
    features = lake.read("features")
    features = features[features["video_id"] == videos.loc["huge.mp4", "video_id"]]
    assert len(features) == 10  # the face, in every frame, in pixels of the 8192 frame
    assert features["bbox_w"].between(500, 2000).all()
    centre = features["bbox_x"] + features["bbox_w"] / 2
    assert centre.between(3500, 4700).all()


def test_a_video_that_kills_its_worker_is_recorded_and_the_others_complete(
    prefect_server, asset, tmp_path, faulty_cluster
) -> None:
    import shutil

    from emotrack.flows.nightly import nightly

    from emotrack.cluster import ALLOWED_FAILURES

    # fault injection in the Dask workers: one video makes its worker pass its memory limit
    address = faulty_cluster("no_face.mp4", None, hog_gb=2.5, memory_limit_gb=1.8)
    archive = tmp_path / "archive"
    archive.mkdir()
    for name in ["no_face.mp4", "single_face.mp4"]:
        shutil.copyfile(asset(name), archive / name)
    lake = Lake(tmp_path / "lake")
    counts = nightly(source=str(archive), lake=str(lake.root), dask_address=address)
    assert counts == {"ok": 1, "failed": 1}
    failures = _by_name(lake.read("failures"))
    assert list(failures.index) == ["no_face.mp4"]
    message = failures.loc["no_face.mp4", "message"]
    assert (
        f"died {ALLOWED_FAILURES} times" in message
        and failures.loc["no_face.mp4", "stage"] == "analyse"
    )
    again = nightly(source=str(archive), lake=str(lake.root), dask_address=address)
    assert again == {"skipped": 1, "quarantined": 1}  # it cannot stop the next night either


def test_episodes_follow_the_tracks_of_each_video(nightly_run) -> None:
    lake = nightly_run.lake
    episodes = _by_name(
        lake.read("episodes").merge(lake.read("videos")[["video_id", "source_uri"]])
    )
    smile = episodes.loc[["smile.mp4"]]  # 3 s of a smiling face
    assert (smile["emotion"] == "happy").any()
    assert (smile["duration_s"] >= 1.0).all() and (smile["start_s"] <= smile["peak_s"]).all()
    assert (smile["peak_s"] < smile["end_s"]).all()
    assert set(episodes["model_version"]) == {DEFAULT_MODEL}
    assert "neutral" not in set(episodes["emotion"])
