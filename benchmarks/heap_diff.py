"""Where a first run's memory stays, per video: heap diffs of the driver and of each Dask
worker between two points of one run (issue 34's first step; not part of `make bench`).

    .venv/bin/python benchmarks/heap_diff.py [--clips 1600] [--at 500 1500] [--top 15]

Runs the nightly flow in this process (so that tracemalloc sees the driver: the flow, the
Dask scheduler and client of its LocalCluster) over short real-face clips (bench_first_run's).
When the run has finished the first --at count of videos, the driver and every worker start
tracemalloc and take a snapshot; at the second, each prints what was allocated since and
is still held, grouped by its traceback (`--top` lines each), and its RSS at both points.
tracemalloc slows Python down, so figures of speed from this run mean nothing.
"""

from __future__ import annotations

import argparse
import gc
import sys
import tempfile
import threading
import tracemalloc
from pathlib import Path
from typing import Any

import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_first_run import archive_of, short_clips  # noqa: E402

from emotrack.progress import RunProgress  # noqa: E402
from emotrack.settings import Settings  # noqa: E402

FRAMES = 12  # lines of each allocation's traceback kept (the allocating line and its callers)


def heap_point(name: str, top: int, dask_worker: Any = None) -> str:
    """The first point starts tracing in this process (tracing from the start would slow
    the driver several times over); the second lists what was allocated since and is
    still there, which is what grew."""
    if not tracemalloc.is_tracing():
        tracemalloc.start(FRAMES)
    gc.collect()
    snapshot = tracemalloc.take_snapshot().filter_traces(
        [tracemalloc.Filter(False, tracemalloc.__file__)]
    )
    rss = psutil.Process().memory_info().rss
    # Kept on a module, which a worker imports, not on this function, which travels to the
    # workers by value (with its attributes).
    previous = getattr(tracemalloc, "_emotrack_point", None)
    tracemalloc._emotrack_point = (name, snapshot, rss)  # type: ignore[attr-defined]
    if previous is None:
        return f"{name}: RSS {rss / 2**20:.0f} MiB, traced {_traced(snapshot) / 2**20:.1f} MiB"
    first, before, rss_before = previous
    lines = [
        f"{first} -> {name}: RSS {rss_before / 2**20:.0f} -> {rss / 2**20:.0f} MiB, traced "
        f"{_traced(before) / 2**20:.1f} -> {_traced(snapshot) / 2**20:.1f} MiB"
    ]
    for stat in snapshot.compare_to(before, "traceback")[:top]:
        if stat.size_diff <= 0:
            break
        frames = [f for f in stat.traceback.format(most_recent_first=True) if "File" in f]
        where = " <- ".join(f.strip().replace("File ", "") for f in frames[:4])
        lines.append(f"  {stat.size_diff / 1024:+9.1f} KiB {stat.count_diff:+7d} blocks  {where}")
    return "\n".join(lines)


def _traced(snapshot: tracemalloc.Snapshot) -> int:
    return sum(stat.size for stat in snapshot.statistics("filename"))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=1600)
    parser.add_argument("--at", type=int, nargs=2, default=[500, 1500])
    parser.add_argument("--top", type=int, default=15)
    args = parser.parse_args()
    settings = Settings(progress="plain", worker_restart_videos=0)
    clips = short_clips(args.clips)
    points = list(args.at)
    client_of: dict[str, Any] = {}

    # The flow's own console tells when a video finishes: the points are taken there.
    finished = RunProgress.finished_video

    def counted(self: RunProgress, *a: Any, **k: Any) -> None:
        finished(self, *a, **k)
        if points and self.done >= points[0]:
            point = f"{points.pop(0)} videos"
            threading.Thread(target=take, args=(point,)).start()  # not on Dask's loop

    def take(point: str) -> None:
        from distributed import get_client

        client = client_of.get("client") or get_client()
        client_of["client"] = client
        print(f"\n== driver (pid {psutil.Process().pid})\n{heap_point(point, args.top)}")
        for worker, text in client.run(heap_point, point, args.top).items():
            print(f"\n== worker {worker}\n{text}", flush=True)

    RunProgress.finished_video = counted  # type: ignore[method-assign]

    from emotrack.launch import run_flow

    with tempfile.TemporaryDirectory() as tmp:
        folder = archive_of(clips, Path(tmp) / "archive")
        code, counts = run_flow(
            "emotrack.flows.nightly:nightly",
            settings,
            source=str(folder),
            lake=str(Path(tmp) / "lake"),
        )
    print(f"\nrun: exit {code}, {counts}")


if __name__ == "__main__":
    main()
