"""run_bounded on a real Dask cluster: a bounded window, transient faults sent again, a
storage error raised."""

import time
from pathlib import Path

import pytest

from emotrack.cluster import dask_client, run_bounded
from emotrack.errors import StorageError


def _slow(job: int, log: Path) -> int:
    """Note when the job ran (start and end, in the worker), then return it."""
    start = time.time()
    time.sleep(0.3)
    with log.open("a") as out:
        out.write(f"{start} {time.time()}\n")
    return job


def _flaky(job: str, marks: Path) -> str:
    """OSError the first time for "io", always ValueError for "bug", StorageError for "gone"."""
    if job == "bug":
        raise ValueError("a bug")
    if job == "gone":
        raise StorageError("s3://bucket: access denied")
    mark = marks / job
    if job == "io" and not mark.exists():
        mark.touch()
        raise OSError("Input/output error (injected)")
    return job


@pytest.fixture(scope="module")
def client():
    with dask_client(None, 2) as client:
        yield client


def test_at_most_window_jobs_are_in_flight(tmp_path: Path) -> None:
    from distributed import Client, LocalCluster

    log = tmp_path / "log"
    # 6 threads could run 6 jobs at once: only the window holds them to 2
    with (
        LocalCluster(
            n_workers=1, threads_per_worker=6, processes=False, dashboard_address=None
        ) as cluster,
        Client(cluster) as many,
    ):
        done = [r for _, r in filter(None, run_bounded(many, _slow, range(8), log, window=2))]
    assert sorted(done) == list(range(8))
    spans = [tuple(map(float, line.split())) for line in log.read_text().splitlines()]
    overlap = max(sum(s <= t < e for s, e in spans) for t, _ in spans)
    assert overlap == 2


def test_a_drain_waits_for_every_job_in_flight_and_loses_none(client, tmp_path) -> None:
    log = tmp_path / "log"
    drains: list[float] = []
    finished = [
        r
        for _, r in filter(
            None,
            run_bounded(
                client,
                _slow,
                range(7),
                log,
                window=4,
                drain_every=3,
                on_drained=lambda: drains.append(time.time()),
            ),
        )
    ]
    assert sorted(finished) == list(range(7))
    assert len(drains) == 2  # after jobs 3 and 6; not after the last one
    spans = [tuple(map(float, line.split())) for line in log.read_text().splitlines()]
    for drain in drains:  # nothing was running then: each job ended before or began after
        assert all(end <= drain or start >= drain for start, end in spans)
    assert [sum(end <= d for _, end in spans) for d in drains] == [3, 6]


def test_a_transient_error_is_sent_again_and_others_are_handed_back(client, tmp_path) -> None:
    retried = []
    out = dict(
        filter(
            None,
            run_bounded(
                client,
                _flaky,
                ["ok", "io", "bug"],
                tmp_path,
                window=3,
                retries=1,
                delays=(0.2,),
                on_retry=lambda job, error, delay: retried.append(job),
            ),
        )
    )
    assert out["ok"] == "ok" and out["io"] == "io" and retried == ["io"]
    assert isinstance(out["bug"], ValueError)  # not transient: no second try


def test_a_storage_error_stops_the_loop_at_once(client, tmp_path) -> None:
    seen = []
    with pytest.raises(StorageError, match="access denied"):
        for item in run_bounded(client, _flaky, ["gone", *["ok"] * 6], tmp_path, window=1):
            seen.append(item)
    assert seen == []  # nothing after it was sent


def test_ticks_come_while_nothing_finishes(client, tmp_path) -> None:
    items = list(run_bounded(client, _slow, [1], tmp_path / "log", window=1, tick_s=0.05))
    assert None in items and items[-1] == (1, 1)


def _environment(name: str) -> str | None:
    import os

    return os.environ.get(name)


def test_local_workers_keep_glibcs_adaptive_allocator(client) -> None:
    """Dask's nanny would start them with MALLOC_TRIM_THRESHOLD_ set, which makes every
    frame-sized array a fresh mmap (about 30 % more CPU a frame, emotrack.cluster)."""
    for name, value in (("MALLOC_TRIM_THRESHOLD_", None), ("OMP_NUM_THREADS", "1")):
        assert set(client.run(_environment, name).values()) == {value}
