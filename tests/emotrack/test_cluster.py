"""run_bounded on a real Dask cluster: a bounded window, transient faults sent again."""

import time
from pathlib import Path

import pytest

from emotrack.cluster import dask_client, run_bounded


def _slow(job: int, log: Path) -> int:
    """Note when the job ran (start and end, in the worker), then return it."""
    start = time.time()
    time.sleep(0.3)
    with log.open("a") as out:
        out.write(f"{start} {time.time()}\n")
    return job


def _flaky(job: str, marks: Path) -> str:
    """OSError the first time for "io", always for "bug"."""
    if job == "bug":
        raise ValueError("a bug")
    mark = marks / job
    if job == "io" and not mark.exists():
        mark.touch()
        raise OSError("Input/output error (injected)")
    return job


@pytest.fixture(scope="module")
def client():
    with dask_client(None, 2) as client:
        yield client


def test_at_most_window_jobs_are_in_flight(client, tmp_path: Path) -> None:
    log = tmp_path / "log"
    done = [r for _, r in filter(None, run_bounded(client, _slow, range(8), log, window=2))]
    assert sorted(done) == list(range(8))
    spans = [tuple(map(float, line.split())) for line in log.read_text().splitlines()]
    overlap = max(sum(s <= t < e for s, e in spans) for t, _ in spans)
    assert overlap <= 2


def test_a_transient_error_is_sent_again_and_others_are_handed_back(client, tmp_path) -> None:
    retried = []
    out = dict(filter(None, run_bounded(
        client, _flaky, ["ok", "io", "bug"], tmp_path, window=3, retries=1, delays=(0.2,),
        on_retry=lambda job, error, delay: retried.append(job),
    )))  # fmt: skip
    assert out["ok"] == "ok" and out["io"] == "io" and retried == ["io"]
    assert isinstance(out["bug"], ValueError)  # not transient: no second try


def test_ticks_come_while_nothing_finishes(client, tmp_path) -> None:
    items = list(run_bounded(client, _slow, [1], tmp_path / "log", window=1, tick_s=0.05))
    assert None in items and items[-1] == (1, 1)
