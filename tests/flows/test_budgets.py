"""Files built to blow a run up: `emotrack run` stays within its budgets and goes on."""

import contextlib
import os
import shutil
import time
from pathlib import Path

import psutil
from prefect.settings import PREFECT_API_URL

from emotrack.lake import Lake


def _run(start_cli, archive: Path, lake: Lake) -> tuple[int, int]:
    """Exit code and peak resident memory (bytes) of the whole process tree of a run."""
    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value())}
    run = start_cli(archive, lake, env)
    tree = psutil.Process(run.pid)
    peak = 0
    while run.poll() is None:
        total = 0
        for proc in [tree, *tree.children(recursive=True)]:
            with contextlib.suppress(psutil.Error):
                total += proc.memory_info().rss
        peak = max(peak, total)
        time.sleep(0.2)
    return run.returncode, peak


def test_huge_frames_and_hours_claimed_in_kilobytes_cost_only_themselves(
    prefect_server, asset, huge_clip, ten_hours_clip, tmp_path, start_cli
) -> None:
    archive = tmp_path / "archive"
    archive.mkdir()
    shutil.copyfile(huge_clip, archive / "huge.mp4")
    shutil.copyfile(ten_hours_clip, archive / "ten-hours.mp4")
    for name in ["single_face.mp4", "no_face.mp4"]:
        shutil.copyfile(asset(name), archive / name)
    lake = Lake(tmp_path / "lake")

    code, peak = _run(start_cli, archive, lake)
    assert code == 0
    assert peak < 4 * 2**30, f"peak RSS of the process tree {peak / 2**30:.1f} GiB"
    videos = lake.read("videos")
    status = dict(
        zip(videos["source_uri"].map(lambda u: Path(u).name), videos["status"], strict=True)
    )
    assert status == {
        "huge.mp4": "ok",  # analysed within the pixel budget
        "single_face.mp4": "ok",
        "no_face.mp4": "ok",
        "ten-hours.mp4": "failed",
    }
    failure = lake.read("failures").iloc[0]
    assert Path(failure["source_uri"]).name == "ten-hours.mp4"
    assert "bytes per second" in failure["message"]

    files = {p: p.stat().st_mtime_ns for p in lake.root.rglob("*.parquet")}
    assert (
        _run(start_cli, archive, lake)[0] == 0
    )  # the next night: nothing to do, nothing rewritten
    assert {p: p.stat().st_mtime_ns for p in lake.root.rglob("*.parquet")} == files


def test_a_video_past_its_time_limit_is_stopped_and_recorded(
    prefect_server, asset, tmp_path, monkeypatch
) -> None:
    from emotrack.flows.nightly import nightly

    archive = tmp_path / "archive"
    archive.mkdir()
    shutil.copyfile(asset("WolfgangLanger_Pexels.mp4"), archive / "talk.mp4")
    monkeypatch.setenv("EMOTRACK_VIDEO_TIME_BASE_S", "0.05")  # far less than it needs
    monkeypatch.setenv("EMOTRACK_VIDEO_TIME_PER_FRAME_S", "0.0001")
    lake = Lake(tmp_path / "lake")

    assert nightly(source=str(archive), lake=str(lake.root), workers=1) == {"failed": 1}
    failure = lake.read("failures").iloc[0]
    assert failure["stage"] == "analyse"
    assert "its time limit" in failure["message"] and "EMOTRACK_VIDEO_TIME" in failure["message"]
    assert lake.video_ids("features") == [] and lake.crashed() == {}
