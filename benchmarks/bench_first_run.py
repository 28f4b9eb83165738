"""A first run over a big archive: does memory stay flat? (Not part of `make bench`: about
an hour at 10,000 clips on 2 cores.)

    .venv/bin/python benchmarks/bench_first_run.py [--clips 10000]
    .venv/bin/python benchmarks/bench_first_run.py --speed REF [--rounds 3] [--seconds 1]

The archive: short real-face clips, copies of the first second of the pinned single_face.mp4
(one face, 30 frames), each made unique by an ISO-BMFF `free` box appended with its number,
so that each has its content id. Every run is `emotrack run` with a fresh copy of the same
empty Prefect database and the worker lifetime (the safety net) off, its process tree
sampled every 0.5 s (RSS) and 1 s (PSS, as bench_throughput.timed), each process counted
in its class:
- driver: the `emotrack run` process (the flow, the Dask scheduler and nannies of its
  LocalCluster, the Dask client);
- workers: the Dask worker processes;
- server: the run's Prefect server;
- ffmpeg: ffmpeg and ffprobe, whoever started them.
Videos done at each sample come from the run's plain progress lines.

Reports, all measured in this run:
- each class's peak RSS and PSS, and the tree's, for the 10-, 1,000- and N-clip first runs;
- each class's slope in KB per video over the second half of the N-clip run (least squares
  of RSS against videos done), the tree's peak against the 10- and 1,000-clip runs;
- that every clip is ok, and that the tables equal a run of the same clips in two halves
  (`--max-videos N/2`, then the rest), `processed_at` aside;
- compaction of that second lake's `features` table (its runs did not compact: it holds
  every commit's files) into files of the nightly target size, in a process of its own:
  its peak RSS above the process's level before it, against the target file size.
Prints a table and writes build/bench-first-run.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_throughput import _cpu, duration  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / ".venv" / "bin"
WORK = ROOT / "build" / "bench-videos" / "first-run"
CLASSES = ("driver", "workers", "server", "ffmpeg")


def short_clips(count: int, seconds: float | None = 1.0) -> list[Path]:
    """`count` unique copies of the first `seconds` of single_face.mp4 (None: all of its
    2.4 s), kept between runs."""
    from emotrack.assets import fetch_asset
    from emotrack.settings import Settings

    WORK.mkdir(parents=True, exist_ok=True)
    source = fetch_asset("single_face.mp4", Settings().cache_dir)
    base = WORK / f"single-face-{seconds or 'all'}s.mp4"
    if seconds is None:
        base = source
    elif not base.exists():
        subprocess.run(
            ["ffmpeg", "-v", "error", "-y", "-i", source, "-t", str(seconds), "-c", "copy"]
            + ["-an", base],
            check=True,
        )
    body = base.read_bytes()
    folder = WORK / f"clips-{seconds or 'all'}s"
    folder.mkdir(exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"clip-{i:05d}.mp4"
        if not path.exists():
            tag = f"emotrack first-run clip {i}".encode()
            path.write_bytes(body + (8 + len(tag)).to_bytes(4, "big") + b"free" + tag)
        paths.append(path)
    return paths


def archive_of(clips: list[Path], folder: Path) -> Path:
    """A folder holding `clips` (hard links)."""
    folder.mkdir(parents=True)
    for clip in clips:
        os.link(clip, folder / clip.name)
    return folder


def process_class(proc: psutil.Process, root: psutil.Process) -> str | None:
    """Which class a process of the run's tree belongs to (see the module's docstring);
    None for a child forked but not yet exec'd (a worker's ffmpeg a moment before it is
    ffmpeg): its RSS is its parent's pages, counted with the parent (sampled there, it
    added a worker's 330 MB to the workers' peak, which their PSS never showed)."""
    if proc.pid == root.pid:
        return "driver"
    name = proc.name()
    if name.startswith(("ffmpeg", "ffprobe")):
        return "ffmpeg"
    line = " ".join(proc.cmdline())
    parent = proc.parent()
    if parent is not None and " ".join(parent.cmdline()) == line:
        return None
    if "uvicorn" in line or "prefect" in line:
        return "server"
    if "multiprocessing" in line and "resource_tracker" not in line:
        return "workers"
    return "driver"  # the resource tracker and other helpers of the driver


class Sampler:
    """Samples a process tree's memory per class until stopped; `done()` tells the videos
    finished at each sample."""

    def __init__(self, root: psutil.Process, done: Any) -> None:
        self.root, self.done = root, done
        self.samples: list[dict[str, float]] = []  # videos done, then RSS per class
        self.pss_peak: dict[str, int] = defaultdict(int)
        self.rss_peak: dict[str, int] = defaultdict(int)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        last_pss = 0.0
        while not self._stop.wait(0.5):
            with_pss = time.monotonic() - last_pss > 1.0
            last_pss = time.monotonic() if with_pss else last_pss
            rss: dict[str, int] = defaultdict(int)
            pss: dict[str, int] = defaultdict(int)
            try:
                tree = [self.root, *self.root.children(recursive=True)]
            except psutil.Error:
                return
            for proc in tree:
                with contextlib.suppress(psutil.Error):
                    kind = process_class(proc, self.root)
                    if kind is None:
                        continue
                    if with_pss:
                        info = proc.memory_full_info()
                        pss[kind] += info.pss
                    else:
                        info = proc.memory_info()
                    rss[kind] += info.rss
            for kind in CLASSES:
                self.rss_peak[kind] = max(self.rss_peak[kind], rss[kind])
            self.rss_peak["tree"] = max(self.rss_peak["tree"], sum(rss.values()))
            if with_pss:
                for kind in CLASSES:
                    self.pss_peak[kind] = max(self.pss_peak[kind], pss[kind])
                self.pss_peak["tree"] = max(self.pss_peak["tree"], sum(pss.values()))
            self.samples.append({"done": self.done(), **{k: float(rss[k]) for k in CLASSES}})

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


def slopes(samples: list[dict[str, float]], total: int) -> dict[str, float]:
    """Each class's RSS slope in KB per video over the second half of the run (least squares
    against videos done, over the samples taken while videos were finishing)."""
    half = [s for s in samples if total / 2 <= s["done"] < total]
    if len(half) < 3:
        return {}
    done = np.array([s["done"] for s in half])
    return {k: float(np.polyfit(done, [s[k] for s in half], 1)[0] / 1000) for k in CLASSES}


class Runner:
    """`emotrack run` over a folder, each with a fresh copy of the same empty Prefect
    database, its tree sampled."""

    def __init__(self, tmp: Path) -> None:
        from emotrack.server import _template_database
        from emotrack.settings import Settings

        self.tmp, self.count = tmp, 0
        self.template = _template_database(Settings().cache_dir)

    def run(
        self, folder: Path, lake: Path, *extra: str, total: int, env: dict | None = None
    ) -> dict[str, Any]:
        """One run; `env` adds to the environment (default: the safety net off)."""
        self.count += 1
        database = self.tmp / f"prefect-{self.count}.db"
        shutil.copyfile(self.template, database)
        env = {
            **os.environ,
            "PREFECT_API_DATABASE_CONNECTION_URL": f"sqlite+aiosqlite:///{database}",
            "EMOTRACK_PROGRESS": "plain",
            **({"EMOTRACK_WORKER_RESTART_VIDEOS": "0"} if env is None else env),
        }
        env.pop("PREFECT_API_URL", None)
        log_path = self.tmp / f"run-{self.count}.log"
        cmd = [str(BIN / "emotrack"), "run", str(folder), "--lake", str(lake), *extra]
        with log_path.open("wb") as log:
            start = time.perf_counter()
            proc = psutil.Popen(cmd, stdout=log, stderr=log, env=env)
            sampler = Sampler(proc, lambda: _videos_done(log_path))
            proc.wait()
            wall = time.perf_counter() - start
            sampler.stop()
        text = log_path.read_text(errors="replace")
        if proc.returncode != 0:
            raise SystemExit(f"{cmd[:3]} failed ({proc.returncode}): {text[-3000:]}")
        database.unlink()
        figures = {
            "wall_s": wall,
            "rss_peak": dict(sampler.rss_peak),
            "pss_peak": dict(sampler.pss_peak),
            "slopes_kb_per_video": slopes(sampler.samples, total),
            "samples": sampler.samples[::10],  # every 5 s: videos done, RSS per class
            "ok": text.count("\nok "),
        }
        print(
            f"  {wall:7.1f} s, tree peak RSS {sampler.rss_peak['tree'] / 1e6:6.0f} MB, "
            f"{figures['ok']} ok: {' '.join(cmd[1:])[-80:]}",
            flush=True,
        )
        return figures


def _videos_done(log: Path) -> int:
    """The last [done/total] of a plain progress log."""
    with log.open("rb") as f:
        f.seek(max(f.seek(0, os.SEEK_END) - 4096, 0))
        tail = f.read().decode(errors="replace")
    marks = [m for m in tail.split("[")[1:] if "/" in m.split("]")[0]]
    if not marks:
        return 0
    with contextlib.suppress(ValueError):
        return int(marks[-1].split("/")[0])
    return 0


def compaction_peak(lake: Path, target_mb: int) -> dict[str, float]:
    """Compaction of the lake's `features` table (into target_mb files) in a process of its
    own: its RSS before, and its peak RSS during, sampled every 0.1 s."""
    script = f"""
import json, sys, threading, time, psutil
from emotrack.lake import Lake
lake = Lake({str(lake)!r})
files_before = len(lake.files("features"))
me = psutil.Process()
before = me.memory_info().rss
peak = [before]
stop = threading.Event()
def sample():
    while not stop.wait(0.1):
        peak[0] = max(peak[0], me.memory_info().rss)
threading.Thread(target=sample, daemon=True).start()
started = time.perf_counter()
done = lake.compact(tables=["features"], target_mb={target_mb})
stop.set()
print(json.dumps({{"before": before, "peak": max(peak[0], me.memory_info().rss),
    "seconds": time.perf_counter() - started, "files_before": files_before,
    "files_after": len(lake.files("features")), "done": done}}))
"""
    out = subprocess.run(
        [str(BIN / "python"), "-c", script], check=True, capture_output=True, text=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def tables_equal(a: Path, b: Path) -> list[str]:
    """The public tables whose rows differ between two lakes (processed_at aside): each
    table's row count and the sum of its rows' hashes, by DuckDB over the lake's views."""
    from emotrack.lake import Lake
    from emotrack.schema import PUBLIC

    def fingerprints(root: Path) -> dict[str, tuple]:
        with Lake(root).connect() as con:
            prints = {}
            for table in PUBLIC:
                columns = [r[0] for r in con.execute(f"DESCRIBE {table}").fetchall()]
                drop = [c for c in ("processed_at",) if c in columns]
                rows = f"SELECT * EXCLUDE ({', '.join(drop)}) FROM {table}" if drop else table
                prints[table] = con.execute(
                    f"SELECT count(*), sum(hash(r)::HUGEINT) FROM ({rows}) r"
                ).fetchall()[0]
            return prints

    left, right = fingerprints(a), fingerprints(b)
    return [t for t in PUBLIC if left[t] != right[t]]


def speed(ref: str, rounds: int, count: int, seconds: float | None) -> None:
    """Time per video-second of a first run over `count` clips (`seconds` long; None: the
    archive bench's 2.4 s), the code at git `ref` against this tree, `rounds` alternating
    runs of each (defaults on, the safety net included), each minus an empty-folder run of
    the same code; and, of this tree, the memory case of the archive bench (g): the tree's
    peak PSS at `count` clips against 10."""
    clips = short_clips(count, seconds)
    base = ROOT / "build" / f"base-{ref}"
    if not base.exists():
        subprocess.run(["git", "worktree", "add", "--detach", base, ref], check=True, cwd=ROOT)
    one = duration(clips[0])
    video_s = one * count
    codes = {"base": {"PYTHONPATH": str(base)}, "this": {}}
    per: dict[str, list[float]] = {"base": [], "this": []}
    pss: list[float] = []
    with tempfile.TemporaryDirectory(dir=ROOT / "build") as tmp_name:
        tmp = Path(tmp_name)
        runner = Runner(tmp)
        empty, folder = tmp / "empty", archive_of(clips, tmp / "archive")
        empty.mkdir()
        for r in range(rounds):
            for code, env in codes.items():
                print(f"round {r + 1}, {code}:", flush=True)
                start = runner.run(empty, tmp / "lake-empty", total=0, env=env)
                full = runner.run(folder, tmp / "lake", total=count, env=env)
                per[code].append((full["wall_s"] - start["wall_s"]) / video_s)
                if code == "this":
                    pss.append(full["pss_peak"]["tree"])
                shutil.rmtree(tmp / "lake")
                shutil.rmtree(tmp / "lake-empty")
        ten = runner.run(archive_of(clips[:10], tmp / "ten"), tmp / "lake-ten", total=10, env={})
    print(f"\nfirst run over {count} clips of {one:.2f} s, analysis s per video-s ({_cpu()}):")
    for r in range(rounds):
        b, t = per["base"][r], per["this"][r]
        print(f"  round {r + 1}: {ref} {b:.4f}, this tree {t:.4f}: {t / b:.3f}x")
    b, t = float(np.mean(per["base"])), float(np.mean(per["this"]))
    print(f"  mean: {ref} {b:.4f}, this tree {t:.4f}: {t / b:.3f}x (target: <= 1.05x)")
    peak = max(pss)
    print(
        f"tree peak PSS, {count} clips / 10 clips (this tree, the highest of its {rounds} runs):"
        f" {peak / 2**20:.0f} / {ten['pss_peak']['tree'] / 2**20:.0f} MiB = "
        f"{peak / ten['pss_peak']['tree']:.3f}x (target: <= 1.2x)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=10_000)
    parser.add_argument("--speed", metavar="REF", help="only the speed case against git REF")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument(
        "--seconds", type=float, default=1.0, help="--speed's clips (0: the whole 2.4 s)"
    )
    args = parser.parse_args()
    if args.speed:
        count = 1000 if args.clips == 10_000 else args.clips
        speed(args.speed, args.rounds, count, args.seconds or None)
        return
    from emotrack.settings import Settings

    clips = short_clips(args.clips)
    target_mb = Settings().target_file_mb
    out: dict[str, Any] = {"clips": args.clips, "cpu": _cpu()}
    with tempfile.TemporaryDirectory(dir=ROOT / "build") as tmp_name:
        tmp = Path(tmp_name)
        runner = Runner(tmp)
        for n in (10, 1000):
            if n < args.clips:
                folder = archive_of(clips[:n], tmp / f"archive-{n}")
                print(f"{n} clips, first run:", flush=True)
                out[f"run_{n}"] = runner.run(folder, tmp / f"lake-{n}", total=n)
                shutil.rmtree(tmp / f"lake-{n}")
        folder = archive_of(clips, tmp / "archive")
        print(f"{args.clips} clips, first run:", flush=True)
        out["run_all"] = runner.run(folder, tmp / "lake", total=args.clips)
        # The same clips in two halves, with the runs' own compaction off: the lake's
        # features table then has every commit's files, for compaction to be measured on.
        half = args.clips // 2
        print(f"the same clips in two halves (--max-videos {half}, then the rest):")
        keep = {"EMOTRACK_WORKER_RESTART_VIDEOS": "0", "EMOTRACK_COMPACT_SMALL_FILES": "1000000"}
        halves = tmp / "halves"
        runner.run(folder, halves, "--max-videos", str(half), total=half, env=keep)
        runner.run(folder, halves, total=args.clips - half, env=keep)
        print("compaction of that lake's features table:", flush=True)
        out["compaction"] = compaction_peak(halves, target_mb)
        out["tables_differ"] = tables_equal(tmp / "lake", halves)
    report(out, target_mb)
    (ROOT / "build" / "bench-first-run.json").write_text(json.dumps(out, indent=1))


def report(out: dict[str, Any], target_mb: int) -> None:
    big, n = out["run_all"], out["clips"]
    mb = 1e6
    print(f"\nfirst run over {n} clips of 1 s ({out['cpu']}); RSS and PSS summed per class")
    print(
        "| class | peak RSS (MB) | peak PSS (MB) | slope, 2nd half (KB/video) |\n|---|---|---|---|"
    )
    for kind in (*CLASSES, "tree"):
        slope = big["slopes_kb_per_video"].get(kind)
        print(
            f"| {kind} | {big['rss_peak'].get(kind, 0) / mb:.0f} | "
            f"{big['pss_peak'].get(kind, 0) / mb:.0f} | "
            f"{'' if slope is None else f'{slope:+.2f}'} |"
        )
    tree = big["rss_peak"]["tree"]
    for k in ("run_10", "run_1000"):
        if k in out:
            other = out[k]["rss_peak"]["tree"]
            print(
                f"tree peak RSS against the {k[4:]}-clip run: {tree / mb:.0f} / "
                f"{other / mb:.0f} MB = {tree / other:.3f}x"
            )
    c = out["compaction"]
    above = (c["peak"] - c["before"]) / 2**20
    print(
        f"compaction of features ({c['files_before']} -> {c['files_after']} files, "
        f"{c['seconds']:.1f} s): peak {above:.0f} MiB above its level before "
        f"= {above / target_mb:.2f}x the target file size ({target_mb} MiB)"
    )
    print(f"clips ok: {big['ok']} of {n}; wall {big['wall_s']:.0f} s")
    print(
        f"tables equal to the run in two halves: {not out['tables_differ']} "
        f"{out['tables_differ'] or ''}"
    )


if __name__ == "__main__":
    main()
