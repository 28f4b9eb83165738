"""A first run over a big archive: spread over nights with a budget, and safe when workers
are replaced mid-run (real flow, real Dask workers, real clips; see conftest.face_clips)."""

import json
import threading
from pathlib import Path

import pandas as pd
import psutil

from emotrack.lake import Lake
from emotrack.schema import PUBLIC
from emotrack.settings import Settings


def _names(lake: Lake) -> list[str]:
    videos = lake.read("videos")
    return sorted(videos["source_uri"].str.rsplit("/", n=1).str[-1])


def test_max_videos_stops_the_run_and_the_next_runs_do_new_arrivals_then_the_rest(
    prefect_server, face_clips, tmp_path: Path
) -> None:
    from emotrack.flows.nightly import nightly

    archive, lake = tmp_path / "archive", Lake(tmp_path / "lake")
    face_clips(archive, range(4))
    first = nightly(source=str(archive), lake=str(lake.root), max_videos=2, return_state=True)
    assert first.is_completed(), first
    assert first.result() == {"ok": 2, "left": 2}
    assert _names(lake) == ["face-000.mp4", "face-001.mp4"]
    assert len(lake.backlog()) == 2

    face_clips(archive, range(4, 5))  # arrives after the first night
    second = nightly(source=str(archive), lake=str(lake.root), max_videos=1)
    assert second == {"ok": 1, "skipped": 2, "left": 2}
    assert "face-004.mp4" in _names(lake)  # the new arrival went before the backlog

    third = nightly(source=str(archive), lake=str(lake.root))
    assert third == {"ok": 2, "skipped": 3}
    assert _names(lake) == [f"face-{i:03d}.mp4" for i in range(5)]
    assert lake.backlog() == set()
    assert set(lake.read("videos")["status"]) == {"ok"}


def _worker_pids(seen: set[int], stop: threading.Event) -> None:
    """Every Dask worker process of this test process, until stopped."""
    me = psutil.Process()
    while not stop.wait(0.1):
        for proc in me.children(recursive=True):
            try:
                if "spawn_main" in " ".join(proc.cmdline()):
                    seen.add(proc.pid)
            except psutil.Error:
                continue


def _rows(lake: Lake) -> dict[str, pd.DataFrame]:
    tables = {}
    for table in PUBLIC:
        rows = lake.read(table)
        rows = rows.drop(columns=[c for c in ("processed_at",) if c in rows.columns])
        plain = [c for c in rows.columns if not any(map(_is_list, rows[c]))]
        tables[table] = rows.sort_values(plain, ignore_index=True, kind="stable")
    return tables


def _is_list(value: object) -> bool:
    return hasattr(value, "__len__") and not isinstance(value, str)


def test_workers_replaced_mid_run_commit_every_video_once_and_change_no_row(
    prefect_server, face_clips, tmp_path: Path
) -> None:
    from emotrack.flows.nightly import nightly

    archive = tmp_path / "archive"
    face_clips(archive, range(6))
    seen: set[int] = set()
    stop = threading.Event()
    watcher = threading.Thread(target=_worker_pids, args=(seen, stop))
    watcher.start()
    try:
        restarted = Lake(tmp_path / "restarted")
        counts = nightly(
            source=str(archive),
            lake=str(restarted.root),
            settings=Settings(worker_restart_videos=2),
        )
    finally:
        stop.set()
        watcher.join()
    assert counts == {"ok": 6}
    assert len(seen) > 2, "no worker was replaced during the run"
    # Each video's rows reached `videos` in one commit: rows added over its history = 6
    # (every add action in the Delta log that changed data, whoever wrote it).
    log = sorted((restarted.root / "videos" / "_delta_log").glob("*.json"))
    actions = [json.loads(line) for path in log for line in path.read_text().splitlines()]
    added = [a["add"] for a in actions if "add" in a and a["add"]["dataChange"]]
    assert sum(json.loads(a["stats"])["numRecords"] for a in added) == 6

    plain = Lake(tmp_path / "plain")
    assert nightly(
        source=str(archive), lake=str(plain.root), settings=Settings(worker_restart_videos=0)
    ) == {"ok": 6}
    for table, rows in _rows(plain).items():
        pd.testing.assert_frame_equal(_rows(restarted)[table], rows, obj=table)


def test_a_budget_allows_videos_until_its_count_or_its_time_is_reached() -> None:
    import time

    from emotrack.flows.nightly import Budget

    assert Budget().allows(10**9)
    assert Budget(max_videos=2).allows(1) and not Budget(max_videos=2).allows(2)
    assert Budget(deadline=time.monotonic() + 60).allows(10**9)
    assert not Budget(deadline=time.monotonic() - 1).allows(0)
