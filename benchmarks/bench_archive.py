"""Archive scale: what a nightly run costs when the archive is large and little of it is new.

    make bench      (or: .venv/bin/python benchmarks/bench_archive.py [--clips 1000])

Every figure is measured in this run, every ratio against a baseline measured here too:
- (a) 1,000 real-face clips of 2.4 s (remuxed copies of the pinned single_face.mp4, each with
  bytes of its own, so each has its own content id): analysis seconds per video-second of the
  first run, against a 10-minute talking head's (analysis: a run minus an empty-folder run);
- (b) a no-op rerun over those clips, against an empty-folder run;
- (c) 10 new clips added to that archive, against the same 10 clips run into an empty lake;
- (d) a no-op rerun over 8 files of about 600 MB, against the same over 8 tiny files;
- (e) Prefect task runs per video, and how much Prefect's database grew per video (each run
  gets a copy of the same empty database; sizes after a WAL checkpoint);
- (f) data files in the lake after the 1,000-clip run; a synthetic lake of 100,000 videos
  (120 `tracks` rows each, with their `videos` and `summaries` rows) written through
  Lake.commit in batches of 1,000 with the nightly run's compaction, then `emotrack
  compact`'s sort: a DuckDB GROUP BY over `tracks`, and one video's rows, as `emotrack sql`
  runs them (views over the snapshot's files, their set-up included);
- (g) the peak PSS of the whole process tree (CLI, Prefect server, Dask workers, ffmpeg) on
  the 1,000 clips, against 10 of them;
- (h) the same 1,000 clips against a real `dask scheduler` and 2 `dask worker` processes:
  the workers' share of all the CPU time of the run (workers and their ffmpeg, the CLI and its
  Prefect server, the scheduler).
Prints a table and writes build/bench-archive.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_throughput import BIN, ROOT, _cpu, duration, ffmpeg, looped, timed  # noqa: E402

from emotrack.assets import fetch_asset  # noqa: E402
from emotrack.cluster import WORKER_ENV  # noqa: E402
from emotrack.inference import DEFAULT_MODEL  # noqa: E402
from emotrack.lake import Batch, Lake  # noqa: E402
from emotrack.schema import TABLES
from emotrack.server import _template_database  # noqa: E402
from emotrack.settings import Settings  # noqa: E402
from emotrack.vocabulary import EMOTIONS  # noqa: E402

WORK = ROOT / "build" / "bench-videos"


def made(folder: Path, name: str, numbers: range, arguments: Callable[[int], list]) -> list[Path]:
    """Videos folder/name.format(i) for i in numbers, each made once by ffmpeg with
    arguments(i) then the output path (kept between runs of the benchmark)."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in numbers:
        path = folder / name.format(i)
        if not path.exists():
            ffmpeg(*arguments(i), path)
        paths.append(path)
    return paths


def remuxed_clips(source: Path, first: int, count: int) -> list[Path]:
    """Copies of `source` without re-encoding, each made unique by a metadata tag."""

    def remux(i: int) -> list:
        return ["-i", source, "-c", "copy", "-metadata", f"comment=emotrack bench {i}"]

    return made(WORK / "archive-clips", "clip-{:05d}.mp4", range(first, first + count), remux)


def big_files(source: Path, count: int, seconds: float) -> list[Path]:
    """`count` uncompressed videos of `seconds` from different parts of `source` (640x360
    UYVY 4:2:2 rawvideo in .mov, as QuickTime stores it: about 11 MB a second)."""

    def raw(i: int) -> list:
        return [
            "-ss",
            str(i * 7.3),
            "-stream_loop",
            "-1",
            "-i",
            source,
            "-t",
            str(seconds),
            "-c:v",
            "rawvideo",
            "-pix_fmt",
            "uyvy422",
            "-an",
        ]

    return made(WORK / "big", "big-{}-uyvy.mov", range(count), raw)


def tiny_files(source: Path, count: int) -> list[Path]:
    """`count` one-second clips of 160 px from different parts of `source` (about 50 KB)."""

    def small(i: int) -> list:
        return [
            "-ss",
            str(i * 0.1),
            "-i",
            source,
            "-t",
            "1",
            "-vf",
            "scale=160:-2",
            "-c:v",
            "libx264",
            "-preset",
            "ultrafast",
            "-an",
        ]

    return made(WORK / "tiny", "tiny-{}.mp4", range(count), small)


class Runner:
    """`emotrack run`, each with a fresh copy of the same empty Prefect database."""

    def __init__(self, tmp: Path) -> None:
        self.tmp, self.count = tmp, 0
        self.template = _template_database(Settings().cache_dir)

    def run(
        self,
        videos: list[Path],
        lake: Path,
        extra: list[str] | None = None,
        folder: Path | None = None,
    ) -> dict[str, float]:
        self.count += 1
        if folder is None:
            folder = self.tmp / f"archive-{self.count}"
            folder.mkdir()
            for video in videos:
                os.link(video, folder / video.name)
        database = self.tmp / f"prefect-{self.count}.db"
        shutil.copyfile(self.template, database)
        env = {
            **os.environ,
            "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{database}",
        }
        env.pop("PREFECT_API_URL", None)
        cmd = [BIN / "emotrack", "run", folder, "--lake", lake, *(extra or [])]
        wall, rss, pss = timed(cmd, env)
        return {
            "wall": wall,
            "pss": pss,
            "db_growth": _db_bytes(database) - _db_bytes(self.template),
            "task_runs": _count(database, "task_run"),
        }

    def median(self, videos: list[Path], lake: Path, folder: Path | None = None) -> dict:
        """The run of median wall time of 3 alike (start-up-bound runs vary by seconds)."""
        runs = sorted(
            (self.run(videos, lake, folder=folder) for _ in range(3)), key=lambda r: r["wall"]
        )
        return runs[1]


def _db_bytes(path: Path) -> int:
    with sqlite3.connect(path) as con:
        con.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        pages = con.execute("PRAGMA page_count").fetchone()[0]
        free = con.execute("PRAGMA freelist_count").fetchone()[0]
        size = con.execute("PRAGMA page_size").fetchone()[0]
    return int((pages - free) * size)


def _count(path: Path, table: str) -> int:
    with sqlite3.connect(path) as con:
        return int(con.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def data_files(lake: Path) -> tuple[int, int]:
    """(files in the tables' current snapshots, data files on disk), all tables."""
    tables = list(TABLES)
    snapshot = sum(len(Lake(lake).files(t)) for t in tables)
    on_disk = sum(1 for t in tables for _ in (lake / t).glob("*.parquet"))
    return snapshot, on_disk


def dask_cpu_share(clips: list[Path], tmp: Path, runner: Runner) -> dict[str, float]:
    """The workers' share of a run's CPU time against a scheduler and 2 worker processes."""
    info = tmp / "scheduler.json"
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
    scheduler = psutil.Popen(
        [BIN / "dask", "scheduler", "--scheduler-file", info, "--port", "0", "--no-dashboard"],
        **quiet,
    )
    workers = []
    try:
        while not info.exists():
            time.sleep(0.2)
        address = json.loads(info.read_text())["address"]
        for name in ("w1", "w2"):
            workers.append(
                psutil.Popen(
                    [
                        BIN / "dask",
                        "worker",
                        address,
                        "--nthreads",
                        "1",
                        "--name",
                        name,
                        "--no-dashboard",
                        "--memory-limit",
                        "3GB",
                    ],
                    env={**os.environ, **WORKER_ENV},
                    **quiet,
                )
            )
        from distributed import Client

        with Client(address) as client:
            client.wait_for_workers(2, timeout=120)
            client.run(_load_models)  # TensorFlow and the models: start-up, not the run
        before = {"workers": _cpu_of(workers), "scheduler": _cpu_of([scheduler])}
        driver_before = _children_cpu()
        runner.run(clips, tmp / "dask-lake", ["--dask-address", address])
        driver = _children_cpu() - driver_before  # the CLI and its server, reaped by now
        used = {
            "workers": _cpu_of(workers) - before["workers"],
            "scheduler": _cpu_of([scheduler]) - before["scheduler"],
            "driver": driver,
        }
    finally:
        for proc in [*workers, scheduler]:
            proc.terminate()
        for proc in [*workers, scheduler]:
            proc.wait(30)
    used["share"] = used["workers"] / sum(used.values())
    return used


def _load_models() -> None:
    from emotrack.analysis import load_models
    from emotrack.settings import Settings

    load_models(Settings())


def _cpu_of(procs: list[psutil.Process]) -> float:
    """CPU seconds of processes and all their descendants (ffmpeg counted once reaped)."""
    total = 0.0
    for proc in procs:
        for p in [proc, *proc.children(recursive=True)]:
            try:
                t = p.cpu_times()
                total += t.user + t.system + t.children_user + t.children_system
            except psutil.Error:
                pass
    return total


def _children_cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def synthetic_lake(root: Path, videos: int, rows: int = 120, per_commit: int = 1000) -> dict:
    """`videos` videos of `rows` tracks rows each (with videos and summaries rows), committed
    through Lake.commit `per_commit` at a time with the nightly compaction, then sorted as
    `emotrack compact` does; returns what writing and compacting took."""
    rng = np.random.default_rng(7)
    lake = Lake(root)
    lake.create_tables()
    settings = Settings()
    started = time.perf_counter()
    ids = np.array([f"v{x:016x}" for x in rng.integers(0, 2**63, videos)])
    for first in range(0, videos, per_commit):
        batch_ids = ids[first : first + per_commit]
        batch = Batch()
        batch.add("tracks", batch_ids, _tracks(batch_ids, rows, rng))
        batch.add("summaries", batch_ids, _summaries(batch_ids))
        batch.add("videos", batch_ids, _videos(batch_ids, rows))
        lake.commit(batch)
        lake.compact(
            min_small_files=settings.compact_small_files,
            retention_hours=settings.vacuum_retention_hours,
        )
    written = time.perf_counter() - started
    started = time.perf_counter()
    lake.compact(sort=True, retention_hours=0)
    return {"write_s": written, "compact_s": time.perf_counter() - started, "ids": ids}


def _tracks(ids: np.ndarray, rows: int, rng: np.random.Generator) -> pd.DataFrame:
    n = len(ids) * rows
    frame = pd.DataFrame(
        {
            "video_id": np.repeat(ids, rows),
            "frame_index": np.tile(np.arange(rows, dtype=np.int32), len(ids)),
            "timestamp_s": np.tile(np.arange(rows) * 0.2, len(ids)),
            "track_id": np.zeros(n, np.int32),
            "emotion": np.array(EMOTIONS)[rng.integers(0, 7, n)],
            "model_version": DEFAULT_MODEL,
        }
    )
    for column in [
        "bbox_x",
        "bbox_y",
        "bbox_w",
        "bbox_h",
        "face_score",
        "valence",
        "arousal",
        "intensity",
        *(f"p_{e}" for e in EMOTIONS),
    ]:
        frame[column] = rng.random(n, np.float32)
    return frame


def _summaries(ids: np.ndarray, rows: int = 120) -> pd.DataFrame:
    frame = pd.DataFrame({"video_id": ids})
    for name in TABLES["summaries"].names[1:]:
        frame[name] = None
    for name in ("frames_analysed", "frames_with_face", "face_observations"):
        frame[name] = rows  # the values a summary always has (emotrack.schema)
    frame["n_tracks"] = 1
    frame["model_version"] = DEFAULT_MODEL
    frame["valence_series"] = [[0.1] * 48] * len(ids)
    return frame


def _videos(ids: np.ndarray, rows: int) -> pd.DataFrame:
    frame = pd.DataFrame({"video_id": ids, "source_uri": [f"/archive/{v}.mp4" for v in ids]})
    for name in TABLES["videos"].names[2:]:
        frame[name] = None
    frame["status"], frame["frames_analysed"] = "ok", rows
    frame["processed_at"] = pd.Timestamp.now(tz="UTC")
    return frame


def query_times(root: Path, video_id: str) -> dict[str, float]:
    """`emotrack sql`'s way: views over the snapshots (set-up included), then each query;
    the best of 3 runs of each."""
    figures = {}
    for name, query in [
        ("group_by", "SELECT emotion, count(*) FROM tracks GROUP BY 1"),
        ("one_video", f"SELECT * FROM tracks WHERE video_id = '{video_id}'"),
    ]:
        best = float("inf")
        for _ in range(3):
            started = time.perf_counter()
            with Lake(root).connect() as con:
                con.execute(query).fetchall()
            best = min(best, time.perf_counter() - started)
        figures[name] = best
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=1000)
    parser.add_argument("--synthetic", type=int, default=100_000, help="videos in the lake of (f)")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "bench-archive.json")
    args = parser.parse_args()
    settings = Settings()
    clip = fetch_asset("single_face.mp4", settings.cache_dir)
    talk = fetch_asset("WolfgangLanger_Pexels.mp4", settings.cache_dir)
    clips = remuxed_clips(clip, 0, args.clips)
    new = remuxed_clips(clip, args.clips, 10)
    ten_min = looped(talk, 600, WORK / "talking-head-600s.mp4")
    big, tiny = big_files(talk, 8, 54), tiny_files(talk, 8)
    print(f"videos ready in {WORK}; CPU: {_cpu()}", flush=True)
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        runner = Runner(tmp)
        empty = runner.median([], tmp / "empty-lake")
        long = runner.run([ten_min], tmp / "long-lake")
        ten = runner.run(clips[:10], tmp / "ten-lake")
        archive_lake = tmp / "archive-lake"
        first = runner.run(clips, archive_lake)
        folder = tmp / f"archive-{runner.count}"
        snapshot_files, disk_files = data_files(archive_lake)
        noop = runner.median([], archive_lake, folder=folder)
        for video in new:
            os.link(video, folder / video.name)
        added = runner.run([], archive_lake, folder=folder)
        alone = runner.run(new, tmp / "new-lake")
        big_first = runner.run(big, tmp / "big-lake")
        big_noop = runner.median([], tmp / "big-lake", folder=tmp / f"archive-{runner.count}")
        runner.run(tiny, tmp / "tiny-lake")
        tiny_noop = runner.median([], tmp / "tiny-lake", folder=tmp / f"archive-{runner.count}")
        shares = dask_cpu_share(clips, tmp, runner)
        synthetic = synthetic_lake(tmp / "synthetic", args.synthetic)
        queries = query_times(tmp / "synthetic", str(synthetic["ids"][args.synthetic // 2]))
    clip_s, long_s = duration(clip) * len(clips), duration(ten_min)
    per_clip = (first["wall"] - empty["wall"]) / clip_s
    per_long = (long["wall"] - empty["wall"]) / long_s
    mib, gb = 2**20, sum(f.stat().st_size for f in big) / 1e9
    big_s = duration(big[0])
    rows = [
        (
            "",
            "emotrack run, empty folder (start-up, median of 3)",
            f"{empty['wall']:.1f} s",
            None,
            "",
        ),
        ("a", "10-min video: analysis s per video-s", f"{per_long:.4f}", None, ""),
        ("a", f"{len(clips)} clips of 2.4 s, first run", f"{first['wall']:.1f} s", None, ""),
        ("a", "  analysis s per video-s", f"{per_clip:.4f}", per_clip / per_long, "<= 2.5x"),
        (
            "b",
            "no-op rerun over them (median of 3)",
            f"{noop['wall']:.1f} s",
            noop["wall"] - empty["wall"],
            "<= start-up + 3 s",
        ),
        (
            "c",
            "10 new clips into that archive",
            f"{added['wall']:.1f} s",
            added["wall"] / alone["wall"],
            "<= 1.1x",
        ),
        ("c", "the same 10 clips into an empty lake", f"{alone['wall']:.1f} s", None, ""),
        (
            "d",
            f"8 files of {gb / 8:.2f} GB ({big_s:.0f} s of video each), first run",
            f"{big_first['wall']:.1f} s",
            None,
            "",
        ),
        (
            "d",
            "  no-op rerun over them (median of 3)",
            f"{big_noop['wall']:.1f} s",
            big_noop["wall"] / tiny_noop["wall"],
            "<= 1.2x",
        ),
        (
            "d",
            "no-op rerun over 8 tiny files (median of 3)",
            f"{tiny_noop['wall']:.1f} s",
            None,
            "",
        ),
        (
            "e",
            "Prefect task runs per video",
            f"{first['task_runs'] / len(clips):.4f}",
            None,
            "<= 0.1",
        ),
        (
            "e",
            "Prefect database growth per video",
            f"{first['db_growth'] / len(clips) / 1024:.2f} KB",
            None,
            "<= 2 KB",
        ),
        (
            "f",
            "data files after the run (snapshots / on disk)",
            f"{snapshot_files} / {disk_files}",
            None,
            "<= 50",
        ),
        (
            "f",
            f"synthetic lake, {args.synthetic} videos: written",
            f"{synthetic['write_s']:.0f} s",
            None,
            "",
        ),
        ("f", "  sorted by `emotrack compact`", f"{synthetic['compact_s']:.0f} s", None, ""),
        ("f", "  GROUP BY emotion over tracks", f"{queries['group_by']:.3f} s", None, "<= 2 s"),
        ("f", "  one video's rows", f"{queries['one_video']:.3f} s", None, "<= 0.5 s"),
        ("g", "peak PSS of the tree, 10 clips", f"{ten['pss'] / mib:.0f} MiB", None, ""),
        (
            "g",
            f"peak PSS of the tree, {len(clips)} clips",
            f"{first['pss'] / mib:.0f} MiB",
            first["pss"] / ten["pss"],
            "<= 1.2x",
        ),
        (
            "h",
            "CPU s: workers / CLI+server / scheduler",
            f"{shares['workers']:.0f}/{shares['driver']:.0f}/{shares['scheduler']:.0f}",
            shares["share"],
            ">= 0.8 (workers' share)",
        ),
    ]
    print(f"\n{'case':5} {'what':50} {'figure':>14} {'ratio':>8}  target")
    for case, what, figure, ratio, target in rows:
        shown = f"{ratio:7.2f}" + ("" if case in ("b", "h") else "x") if ratio is not None else ""
        print(f"{case:5} {what:50} {figure:>14} {shown:>8}  {target}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "cpu": _cpu(),
                "rows": [
                    dict(zip(["case", "what", "figure", "ratio", "target"], r, strict=True))
                    for r in rows
                ],
            },
            indent=2,
        )
    )
    print(f"\nwritten to {args.out}")


if __name__ == "__main__":
    main()
