import pandas as pd

from emotrack.cluster import dask_client
from emotrack.inference import DEFAULT_MODEL, score_video, score_videos


def test_dask_with_two_workers_gives_exactly_the_single_process_tracks(nightly_run) -> None:
    lake = nightly_run.lake
    videos = lake.read("videos")
    jobs = {
        row.video_id: int(row.frames_analysed)
        for row in videos[videos["status"] == "ok"].itertuples()
    }
    assert len(jobs) >= 3
    local = {vid: score_video(str(lake.root), vid, n, DEFAULT_MODEL) for vid, n in jobs.items()}
    with dask_client(None, workers=2) as client:
        assert len(client.scheduler_info()["workers"]) == 2
        distributed = dict(score_videos(client, lake, jobs, DEFAULT_MODEL))
    assert set(distributed) == set(jobs)
    for video_id, (tracks, summary) in local.items():
        remote_tracks, remote_summary = distributed[video_id]
        pd.testing.assert_frame_equal(remote_tracks, tracks, check_exact=True)
        assert remote_summary == summary


def test_a_failing_video_does_not_stop_the_others(nightly_run) -> None:
    lake = nightly_run.lake
    good = lake.video_ids("features")[0]
    with dask_client(None, workers=2) as client:
        results = dict(score_videos(client, lake, {good: 10, "vmissing": 10}, DEFAULT_MODEL))
    assert isinstance(results["vmissing"], FileNotFoundError)
    assert isinstance(results[good], tuple)
