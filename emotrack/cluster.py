"""The Dask cluster, and the one way work is sent to it: `run_bounded`, a window of units of
work in flight (one video each, see emotrack.units), the next one sent as one finishes.

The flow's process never holds a frame: workers decode, run the models and return rows
ready to commit. Workers report what they do through Dask's event log (`report`), which
the flow's console subscribes to (`progress_events`).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager, suppress
from typing import Any, TypeVar
from uuid import uuid4

from distributed import WorkerPlugin

from emotrack.errors import classify

# A task whose worker dies this many times (memory limit, crash) fails with KilledWorker.
ALLOWED_FAILURES = 2

# Each worker process runs one task at a time, with TensorFlow and LiteRT on one thread
# (emotrack.analysis.model_threads) and OpenMP's pool (OpenCV, numpy's BLAS) on one too.
WORKER_ENV = {"OMP_NUM_THREADS": "1"}
# Dask's nanny starts workers with MALLOC_TRIM_THRESHOLD_=65536 (to hand freed memory back to
# the system sooner). Setting it turns off glibc's adaptive mmap threshold, so that every
# array over 128 KiB (a decoded frame, a model's input) is a fresh mmap whose pages are
# faulted in and zeroed each time: the face stage then costs 30 % more CPU a frame
# (benchmarks/bench_throughput.py). Local workers start with glibc's defaults instead.
# Dask's statistical profiler samples each worker's thread every 10 ms and keeps a tree of
# the stacks it saw each second, 1,000 of them (benchmarks/heap_diff.py: most of the 210 MB
# a worker took on between its 500th and 1,500th video), for a dashboard that runs do not
# serve: it is off. The system monitor keeps an hour of samples (7,200) of each figure in
# every process: 5 minutes are kept instead.
WORKER_CONFIG = {
    "distributed.scheduler.allowed-failures": ALLOWED_FAILURES,
    "distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_": None,
    "distributed.worker.profile.enabled": False,
    "distributed.admin.system-monitor.log-length": 600,
}

# Workers report what they do under this Dask event topic.
PROGRESS_TOPIC = "emotrack-progress"


# A unit that hit a transient error is sent again after these delays (seconds).
RETRY_DELAYS_S = (5.0, 30.0)

J = TypeVar("J")


@contextmanager
def dask_client(
    address: str | None, workers: int, memory_limit_gb: float | None = None
) -> Iterator[Any]:
    """A client of the Dask scheduler at `address`, or of a new LocalCluster of `workers`
    single-threaded worker processes (TensorFlow limited to one thread each).

    A local worker whose memory passes memory_limit_gb is restarted by its nanny; a task
    that kills workers ALLOWED_FAILURES times raises distributed.KilledWorker.
    """
    import dask
    from dask.distributed import Client, LocalCluster

    if address:
        with Client(address) as client:
            client.register_plugin(QuietTeardown())
            yield client
        return
    limit = f"{memory_limit_gb}GB" if memory_limit_gb else "auto"
    with (
        dask.config.set(WORKER_CONFIG),
        LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            env=WORKER_ENV,
            memory_limit=limit,
        ) as cluster,
        Client(cluster) as client,
    ):
        client.register_plugin(QuietTeardown())
        yield client


class QuietTeardown(WorkerPlugin):
    """A Dask worker plugin: the worker drops the error (with its traceback) it logs when a
    heartbeat finds the scheduler gone, which happens when a run's cluster closes while a
    worker is still beating (a race of distributed's shutdown, not a fault: the worker ends
    with its cluster). Other errors and warnings of the worker still show."""

    name = "emotrack-quiet-teardown"

    def setup(self, worker: Any) -> None:
        import logging

        logging.getLogger("distributed.worker").addFilter(_not_a_lost_heartbeat)


def _not_a_lost_heartbeat(record: Any) -> bool:
    return not str(record.msg).startswith("Failed to communicate with scheduler during heartbeat")


@contextmanager
def quiet_restarts() -> Iterator[None]:
    """Meanwhile, a local nanny (in this process) restarting its worker says nothing."""
    import logging

    nanny = logging.getLogger("distributed.nanny")
    nanny.addFilter(_not_a_restart)
    try:
        yield
    finally:
        nanny.removeFilter(_not_a_restart)


def _not_a_restart(record: Any) -> bool:
    return not str(record.msg).startswith("Restarting worker")


def trim_heap() -> None:
    """Hand the heap's free memory back to the system (glibc's malloc_trim, and Arrow's
    memory pool), once a unit of work or a commit is done: what Dask's
    MALLOC_TRIM_THRESHOLD_ did on every free, at no cost a frame."""
    import pyarrow as pa

    pa.default_memory_pool().release_unused()
    libc = _libc()
    if libc is not None:
        with suppress(AttributeError):  # not glibc
            libc.malloc_trim(0)


def few_arenas(arenas: int = 2) -> None:
    """At most `arenas` malloc arenas in this process (glibc's M_ARENA_MAX; its default is
    8 per core): a thread of delta-rs, DuckDB or Arrow then reuses an arena's free memory
    instead of keeping one of its own. Call it before those threads start."""
    libc = _libc()
    if libc is not None:
        with suppress(AttributeError):
            libc.mallopt(-8, arenas)  # M_ARENA_MAX


def _libc() -> Any:
    import ctypes
    import ctypes.util

    name = ctypes.util.find_library("c")
    try:
        return ctypes.CDLL(name) if name else None
    except OSError:
        return None


def run_bounded(
    client: Any,
    fn: Callable[..., Any],
    jobs: Iterable[J],
    *args: Any,
    window: int,
    name: Callable[[J], str] = str,
    retries: int = 0,
    delays: tuple[float, ...] = RETRY_DELAYS_S,
    tick_s: float | None = None,
    on_submit: Callable[[J], None] | None = None,
    on_retry: Callable[[J, BaseException, float], None] | None = None,
    drain_every: int = 0,
    on_drained: Callable[[], None] | None = None,
) -> Iterator[tuple[J, Any] | None]:
    """fn(job, *args) on the cluster for each job, at most `window` at a time; yields
    (job, its result) in the order they finish, the result being the exception of a job
    that raised. A transient error (emotrack.errors.classify) sends the job again after
    `delays`, `retries` times at most (on_retry is told); a storage error is raised at once
    (the flow stops: the store it writes to cannot be written). Yields None when tick_s
    seconds pass with nothing finished, so that the caller can act on time. No thread per
    job: one wait on the futures in flight.

    drain_every: after that many jobs (0: never), none is sent until every job in flight
    has finished, then on_drained() is called (the nightly flow restarts its workers there:
    nothing is in flight, so nothing is lost or done twice), then jobs go on."""
    from distributed import wait

    pending = iter(jobs)
    running: dict[Any, tuple[J, int]] = {}
    delayed: list[tuple[float, J, int]] = []  # (not before, job, attempt)
    more = True
    since_drained = 0

    def submit(job: J, attempt: int) -> None:
        key = f"{name(job)}-{uuid4().hex[:8]}"  # unique; names the task on the dashboard
        running[client.submit(fn, job, *args, pure=False, key=key)] = (job, attempt)
        if on_submit is not None and attempt == 0:
            on_submit(job)

    while True:
        now = time.monotonic()
        for entry in [d for d in delayed if d[0] <= now]:
            delayed.remove(entry)
            submit(entry[1], entry[2])
        draining = bool(drain_every) and since_drained >= drain_every
        if draining and not running and not delayed:
            if on_drained is not None:
                on_drained()
            since_drained, draining = 0, False
        while more and not draining and len(running) + len(delayed) < window:
            job = next(pending, None)
            if job is None:
                more = False
            else:
                submit(job, 0)
                since_drained += 1
                draining = bool(drain_every) and since_drained >= drain_every
        if not running and not delayed and not (more and draining):
            return
        timeout = min([tick_s or math.inf, *(d[0] - now for d in delayed)])
        try:
            done, _ = wait(
                list(running),
                return_when="FIRST_COMPLETED",
                timeout=None if math.isinf(timeout) else max(timeout, 0.01),
            )
        except TimeoutError:
            done = set()
        if not done:
            if tick_s is not None:
                yield None
            continue
        for future in done:
            job, attempt = running.pop(future)
            try:
                result = future.result()
            except Exception as error:  # noqa: BLE001 - classified, then handed to the caller
                if classify(error) == "transient" and attempt < retries:
                    delay = delays[min(attempt, len(delays) - 1)]
                    if on_retry is not None:
                        on_retry(job, error, delay)
                    delayed.append((time.monotonic() + delay, job, attempt + 1))
                    continue
                if classify(error) == "storage":
                    raise
                result = error
            finally:
                future.release()
            yield job, result


def report(**message: Any) -> None:
    """In a worker: tell the flow's console something (a video started, frames analysed).
    Outside a worker (a unit run in the flow's own process, in tests): nothing."""
    from distributed import get_worker

    try:
        worker = get_worker()
    except ValueError:
        return
    worker.log_event(PROGRESS_TOPIC, message)


@contextmanager
def progress_events(client: Any, on_event: Callable[[dict[str, Any]], None]) -> Iterator[None]:
    """Call on_event(message) for each message the workers `report` meanwhile."""

    def handle(event: tuple[float, dict[str, Any]]) -> None:
        on_event(event[1])

    client.subscribe_topic(PROGRESS_TOPIC, handle)
    try:
        yield
    finally:
        client.unsubscribe_topic(PROGRESS_TOPIC)
