"""A run killed with SIGKILL leaves the lake consistent; the next run completes it."""

import contextlib
import os
import shutil
import signal
import subprocess
import time
from pathlib import Path

import duckdb
import pandas as pd
from prefect.settings import PREFECT_API_URL

from emotrack.lake import Lake
from emotrack.schema import PUBLIC

NAMES = ["single_face.mp4", "smile.mp4", "phone/portrait.mov"]


def _consistent(lake: Lake) -> set[str]:
    """The complete videos, after checking that what readers see holds together."""
    assert not [p for p in lake.root.glob("[!_]*/**/*") if p.name.endswith(".tmp")]
    for table in PUBLIC:  # every visible file reads
        lake.read(table)
    videos = lake.read("videos")
    complete = set(videos.loc[videos["status"] == "ok", "video_id"])
    for table in ("features", "tracks", "summaries"):
        assert complete <= set(lake.video_ids(table)), table
    return complete


def _run_until_features(
    start_cli, source: Path, tmp_path: Path, env: dict[str, str]
) -> tuple[Path, Lake, subprocess.Popen]:
    """`emotrack run` on a copy of NAMES, committing each video as it is analysed, running
    until the first commit of features lands."""
    env = {**env, "EMOTRACK_COMMIT_VIDEOS": "1"}
    archive = tmp_path / "archive"
    for name in NAMES:
        (archive / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(source / name, archive / name)
    lake = Lake(tmp_path / "lake")
    run = start_cli(archive, lake, env)
    deadline = time.monotonic() + 300
    while not (lake.has_table("features") and lake.video_ids("features")):
        assert time.monotonic() < deadline, "no features landed"
        assert run.poll() is None, "the run ended before it could be stopped"
        time.sleep(0.2)
    return archive, lake, run


def test_sigkill_mid_run_loses_nothing_and_the_next_run_completes(
    nightly_run, tmp_path, prefect_server, start_cli
) -> None:
    from emotrack.flows.nightly import nightly

    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value())}
    archive, lake, run = _run_until_features(start_cli, nightly_run.source, tmp_path, env)
    os.killpg(run.pid, signal.SIGKILL)  # the CLI and any Dask workers it started
    run.wait()

    assert len(_consistent(lake)) < len(NAMES), "the kill came too late to test anything"
    counts = nightly(source=str(archive), lake=str(lake.root))
    assert counts.get("ok", 0) + counts.get("skipped", 0) == len(NAMES)
    complete = _consistent(lake)
    assert len(complete) == len(NAMES)

    reference = nightly_run.lake  # the same files, processed without interruption
    for table in ("features", "tracks", "summaries"):
        ours = lake.read(table).sort_values(["video_id", *_keys(table)], ignore_index=True)
        theirs = reference.read(table)
        theirs = theirs[theirs["video_id"].isin(complete)]
        theirs = theirs.sort_values(["video_id", *_keys(table)], ignore_index=True)
        pd.testing.assert_frame_equal(ours, theirs, check_exact=True)
    with duckdb.connect() as con:  # and a reader sees exactly one row per face and frame
        dup = con.execute(
            "SELECT count(*) - count(DISTINCT (video_id, frame_index, track_id)) "
            "FROM read_parquet(?)",
            [lake.files("tracks")],
        ).fetchall()[0][0]
    assert dup == 0


def _keys(table: str) -> list[str]:
    return [] if table == "summaries" else ["frame_index", "track_id"]


def _cmdline(process) -> str:
    """A process's command line; "" for one that ended meanwhile (an ffprobe, a zombie)."""
    import psutil

    try:
        return " ".join(process.cmdline())
    except (psutil.NoSuchProcess, psutil.ZombieProcess):
        return ""


def _left_after(run: subprocess.Popen, started: list, seconds: float) -> list[str]:
    """The processes of `started` still alive `seconds` from now (the CLI `run` must be gone
    by then too); whatever the outcome, nothing of the test outlives it."""
    import psutil

    deadline = time.monotonic() + seconds
    try:
        run.wait(timeout=seconds)
        _, alive = psutil.wait_procs(started, timeout=max(0.0, deadline - time.monotonic()))
        return [_cmdline(p)[:80] or f"pid {p.pid}" for p in alive]
    finally:
        if run.poll() is None:
            run.kill()
        for proc in started:
            with contextlib.suppress(psutil.Error):
                proc.kill()


def test_sigterm_ends_the_run_and_everything_it_started_within_10_s(
    nightly_run, tmp_path, prefect_server, start_cli
) -> None:
    import psutil
    from emotrack.flows.nightly import nightly

    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}  # its own server
    archive, lake, run = _run_until_features(start_cli, nightly_run.source, tmp_path, env)
    started = psutil.Process(run.pid).children(recursive=True)
    names = " ".join(_cmdline(p) for p in started)
    assert "uvicorn" in names and "multiprocessing" in names  # the server and the workers
    run.send_signal(signal.SIGTERM)
    left = _left_after(run, started, 10)
    assert not left, left

    assert len(_consistent(lake)) < len(NAMES), "the stop came too late to test anything"
    counts = nightly(source=str(archive), lake=str(lake.root))
    assert counts.get("ok", 0) + counts.get("skipped", 0) == len(NAMES)
    assert len(_consistent(lake)) == len(NAMES)


def test_after_a_sigkill_nothing_the_run_started_outlives_it(
    nightly_run, tmp_path, prefect_server, start_cli
) -> None:
    import psutil

    env = {k: v for k, v in os.environ.items() if k != "PREFECT_API_URL"}  # its own server
    _, _, run = _run_until_features(start_cli, nightly_run.source, tmp_path, env)
    started = psutil.Process(run.pid).children(recursive=True)
    assert "uvicorn" in " ".join(_cmdline(p) for p in started)
    run.kill()  # the CLI alone, as the OOM killer would: its children are not signalled
    # a short grace period: the server and the workers notice that their parent is gone
    left = _left_after(run, started, 15)
    assert not left, left


def test_a_video_that_two_runs_died_on_is_quarantined(
    nightly_run, tmp_path, prefect_server, start_cli
) -> None:
    from emotrack.flows.nightly import nightly

    archive = tmp_path / "archive"
    archive.mkdir()
    shutil.copyfile(nightly_run.source / "smile.mp4", archive / "smile.mp4")
    lake = Lake(tmp_path / "lake")
    env = {**os.environ, "PREFECT_API_URL": str(PREFECT_API_URL.value())}
    for runs in (1, 2):  # each run is killed (as by the OOM killer) while it analyses the video
        run = start_cli(archive, lake, env)
        deadline = time.monotonic() + 120
        while not lake.crashed() or max(lake.crashed().values()) < runs:
            assert run.poll() is None and time.monotonic() < deadline, "it never got that far"
            time.sleep(0.05)
        os.killpg(run.pid, signal.SIGKILL)
        run.wait()

    assert nightly(source=str(archive), lake=str(lake.root)) == {"failed": 1}
    failure = lake.read("failures").iloc[0]
    assert failure["stage"] == "analyse" and "quarantined: 2 runs died" in failure["message"]
    assert nightly(source=str(archive), lake=str(lake.root)) == {"quarantined": 1}
    assert _consistent(lake) == set()


def test_a_run_stopped_by_sigterm_is_marked_crashed_not_left_running(
    nightly_run, tmp_path, prefect_server, start_cli
) -> None:
    from prefect import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterName

    # Every frame analysed (25 fps): the other videos are still in flight when the first
    # one's features land, even on a loaded machine.
    env = {
        **os.environ,
        "PREFECT_API_URL": str(PREFECT_API_URL.value()),
        "EMOTRACK_ANALYSIS_FPS": "25",
    }
    archive, lake, run = _run_until_features(start_cli, nightly_run.source, tmp_path, env)
    run.send_signal(signal.SIGTERM)
    assert run.wait(timeout=10) != 0

    with get_client(sync_client=True) as client:
        runs = client.read_flow_runs(
            flow_run_filter=FlowRunFilter(name=FlowRunFilterName(any_=[f"nightly {archive}"]))
        )
    assert [r.state.type.value for r in runs] in (["CRASHED"], ["CANCELLED"])
