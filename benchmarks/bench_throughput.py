"""Throughput and memory of `emotrack run` on long, short and many videos, all in one run.

    make bench      (or: .venv/bin/python benchmarks/bench_throughput.py [--quick])

Prints one table and writes it to build/bench.json. Every figure is measured in this run, and
each ratio is against a baseline measured here too (the machine is shared and noisy):
- (a) a 30-minute talking head (the sample WolfgangLanger_Pexels.mp4 looped): analysis time,
  that is `emotrack run` minus `emotrack run` on an empty folder (start-up: Prefect's server,
  imports), divided by the decode floor, `ffmpeg -i X -f null -` on the same file; the same
  with --no-geometry, and the difference per face found (the face landmarker's cost);
- (b) peak memory of the whole process tree (CLI, Prefect server, Dask workers, ffmpeg) for
  a 3-minute and the 30-minute video, as PSS (shared library pages shared out) and RSS;
- (c) 200 clips of 2 to 10 s cut from it: analysis seconds per video-second, against (a);
- (d) a 10-minute video: analysis time with --workers 1 divided by that with --workers 2;
- (e) `fer==25.10.3` (Haar cascade and its CNN, every 5th frame) on the 10-minute video, in a
  venv of its own, divided by the whole `emotrack run` on it;
- (f) the 30-minute talking head upscaled to 1920x1080: analysis time over its decode floor
  (bench_face_stage.py compares following faces with detecting on every frame);
- (d) also gives, on the 10-minute video, one worker of 2 threads (EMOTRACK_TF_THREADS=2)
  against 2 workers of one thread.
--quick makes every video 10 times shorter and 20 clips instead of 200 (a smoke test);
--hd-only runs case (f) alone.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import psutil

from emotrack.assets import FER_WHEEL, fetch_asset, fetch_wheel
from emotrack.lake import Lake
from emotrack.settings import Settings
from emotrack.video import decoder_binary

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
FER_VENV = ROOT / "build" / "fer-venv"
FER_SCRIPT = """
import sys, tempfile
from fer.classes import Video
from fer.fer import FER
detector = FER(cascade_file=sys.argv[2], mtcnn=False)
with tempfile.TemporaryDirectory() as out:
    rows = Video(sys.argv[1], outdir=out).analyze(
        detector, display=False, frequency=int(sys.argv[3]), save_frames=False,
        save_video=False, annotate_frames=False, zip_images=False, output="pandas")
print(len(rows), "frames analysed by fer")
"""


def ffmpeg(*args: str | Path) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *map(str, args)], check=True)


def tree_memory(proc: psutil.Process) -> tuple[int, int]:
    """(RSS, PSS) summed over a process and all its descendants, in bytes.

    RSS counts the pages of a shared library (TensorFlow's, in each Dask worker) once per
    process that maps it; PSS shares them out, so its sum is what the tree costs the machine.
    """
    rss = pss = 0
    for p in [proc, *proc.children(recursive=True)]:
        with contextlib.suppress(psutil.Error):
            info = p.memory_full_info()
            rss, pss = rss + info.rss, pss + info.pss
    return rss, pss


def timed(cmd: list[str | Path], env: dict[str, str] | None = None) -> tuple[float, int, int]:
    """Wall seconds, peak RSS and peak PSS of the process tree of `cmd` (which must succeed)."""
    with tempfile.TemporaryFile() as log:  # never a pipe nobody reads while it runs
        start = time.perf_counter()
        proc = psutil.Popen([str(c) for c in cmd], stdout=log, stderr=log, env=env)
        peak_rss = peak_pss = 0
        sampled = 0.0
        while proc.poll() is None:
            # PSS reads every mapping of every process (~12 ms a Dask worker): every second,
            # in every run alike, so that a 12-s run of 10 clips is sampled as densely as a
            # long one (at 3 s it had 4 samples, and missed its peak), at a few % of a core.
            if time.perf_counter() - sampled > 1.0:
                rss, pss = tree_memory(proc)
                peak_rss, peak_pss = max(peak_rss, rss), max(peak_pss, pss)
                sampled = time.perf_counter()
            time.sleep(0.2)
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            log.seek(0)
            raise SystemExit(f"{cmd[:2]} failed ({proc.returncode}): {log.read()[-3000:]!r}")
    print(
        f"  {wall:7.1f} s  peak PSS {peak_pss / 2**20:6.0f} MiB  {' '.join(map(str, cmd))[-90:]}",
        flush=True,
    )
    return wall, peak_rss, peak_pss


def emotrack_run(
    videos: list[Path],
    workers: int = 2,
    options: tuple[str, ...] = (),
    on_lake: Callable[[Path], None] | None = None,
    env: dict[str, str] | None = None,
) -> tuple[float, int, int]:
    """`emotrack run` on a new folder holding `videos` (linked), into a new lake (handed to
    on_lake before it is deleted)."""
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp) / "archive"
        folder.mkdir()
        for video in videos:
            os.link(video, folder / video.name)
        lake = Path(tmp) / "lake"
        measured = timed(
            [BIN / "emotrack", "run", folder, "--lake", lake, "--workers", str(workers), *options],
            env=None if env is None else {**os.environ, **env},
        )
        if on_lake is not None:
            on_lake(lake)
        return measured


def decode_floor(video: Path) -> float:
    """Decoding alone, by the ffmpeg the pipeline decodes with."""
    return timed([decoder_binary(), "-nostdin", "-v", "error", "-i", video, "-f", "null", "-"])[0]


def duration(video: Path) -> float:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries", "format=duration", "-of", "csv=p=0", video],
        capture_output=True,
        text=True,
        check=True,
    )
    return float(out.stdout)


def looped(source: Path, seconds: float, dest: Path) -> Path:
    """`source` repeated (no re-encoding) up to `seconds` long."""
    if not dest.exists():
        ffmpeg("-stream_loop", "-1", "-i", source, "-t", str(seconds), "-c", "copy", dest)
    return dest


def upscaled(source: Path, seconds: float, dest: Path) -> Path:
    """`source` at 1920x1080 (lanczos), repeated up to `seconds` long."""
    if not dest.exists():
        once = dest.with_suffix(".once.mp4")
        ffmpeg("-i", source, "-vf", "scale=1920:1080:flags=lanczos", "-c:v", "libx264", once)
        looped(once, seconds, dest)
    return dest


def hd_rows(video: Path, empty_wall: float) -> list[tuple]:
    """Case (f): the 1080p video (following faces; bench_face_stage.py compares following
    with detecting every frame on short clips: here that would take 7 times the floor)."""
    floor = decode_floor(video)
    wall, _, _ = emotrack_run([video])
    minutes = duration(video) / 60
    return [
        ("f", f"decode floor, {minutes:.0f} min at 1920x1080", f"{floor:.1f} s", None, None),
        over_floor("f", "analysis time, same video", wall - empty_wall, floor, "<= 2.5x the floor"),
    ]


def over_floor(case: str, what: str, seconds: float, floor: float, target: str = "") -> tuple:
    """A row of analysis time and its ratio to the decode floor."""
    return (case, what, f"{seconds:.1f} s", seconds / floor, target or None)


def clips(long_video: Path, count: int, folder: Path) -> list[Path]:
    """`count` clips of 2 to 10 s cut from `long_video` at different places (re-encoded)."""
    folder.mkdir(parents=True, exist_ok=True)
    made = []
    for i in range(count):
        path = folder / f"clip-{i:03d}.mp4"
        if not path.exists():
            start, length = (i * 8.3) % 1500, 2 + (i * 37) % 9
            ffmpeg(
                "-ss",
                str(start),
                "-i",
                long_video,
                "-t",
                str(length),
                "-c:v",
                "libx264",
                "-preset",
                "ultrafast",
                "-pix_fmt",
                "yuv420p",
                "-c:a",
                "copy",
                path,
            )
        made.append(path)
    return made


def fer_venv() -> Path:
    """A venv with fer 25.10.3 (wheel checked by SHA-256) and what its Haar path needs."""
    python = FER_VENV / "bin" / "python"
    if not (FER_VENV / ".ready").exists():
        subprocess.run([sys.executable, "-m", "venv", "--clear", FER_VENV], check=True)
        wheel = fetch_wheel(FER_WHEEL, Settings().cache_dir / "wheels")
        pip = [python, "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        subprocess.run([*pip, "--no-deps", wheel], check=True)
        needs = ["tensorflow==2.21.0", "opencv-contrib-python<5", "setuptools<81", "pandas"]
        subprocess.run([*pip, *needs, "tqdm", "requests", "pillow"], check=True)
        (FER_VENV / ".ready").touch()
    return python


def fer_run(video: Path, every: int) -> float:
    python = fer_venv()
    cascade = subprocess.run(
        [python, "-c", "import fer, os; print(os.path.dirname(fer.__file__))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    cascade += "/data/haarcascade_frontalface_default.xml"
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"}
    return timed([python, "-c", FER_SCRIPT, video, cascade, str(every)], env=env)[0]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--quick", action="store_true", help="10x shorter videos, 20 clips")
    parser.add_argument("--out", type=Path, default=ROOT / "build" / "bench.json")
    parser.add_argument("--skip-fer", action="store_true", help="leave out case (e)")
    parser.add_argument("--hd-only", action="store_true", help="case (f) alone")
    args = parser.parse_args()
    scale = 0.1 if args.quick else 1.0
    work = ROOT / "build" / "bench-videos"
    work.mkdir(parents=True, exist_ok=True)
    sample = fetch_asset("WolfgangLanger_Pexels.mp4", Settings().cache_dir)
    hd = upscaled(sample, 1800 * scale, work / f"talking-head-1080p-{1800 * scale:.0f}s.mp4")
    if args.hd_only:
        report(hd_rows(hd, emotrack_run([])[0]), args)
        return
    long = looped(sample, 1800 * scale, work / f"talking-head-{1800 * scale:.0f}s.mp4")
    medium = looped(sample, 600 * scale, work / f"talking-head-{600 * scale:.0f}s.mp4")
    short = looped(sample, 180 * scale, work / f"talking-head-{180 * scale:.0f}s.mp4")
    many = clips(long, 20 if args.quick else 200, work / f"clips-{scale}")
    print(f"videos ready in {work}; CPU: {_cpu()}", flush=True)

    # This machine is shared: the floor is measured on each side of the run, and averaged.
    empty_wall, _, _ = emotrack_run([])
    floor_before = decode_floor(long)
    long_wall, long_rss, long_pss = emotrack_run([long])
    floor = (floor_before + decode_floor(long)) / 2
    counted: list[int] = []  # face observations of the 30-min video

    def count_faces(lake: Path) -> None:
        counted.append(Lake(lake).count("features"))

    plain_wall, _, _ = emotrack_run([long], options=("--no-geometry",), on_lake=count_faces)
    long_faces = counted[0]
    _, short_rss, short_pss = emotrack_run([short])
    many_wall, _, _ = emotrack_run(many)
    one_wall, _, _ = emotrack_run([medium], workers=1)
    two_wall, _, _ = emotrack_run([medium], workers=2)
    threads_wall, _, _ = emotrack_run([medium], workers=1, env={"EMOTRACK_TF_THREADS": "2"})
    fer_wall = None if args.skip_fer else fer_run(medium, every=5)

    long_s, many_s = duration(long), sum(duration(c) for c in many)
    short_min, long_min, mib = duration(short) / 60, long_s / 60, 2**20
    long_per = (long_wall - empty_wall) / long_s
    many_per = (many_wall - empty_wall) / many_s
    rows = [
        ("fixed", "emotrack run, empty folder (start-up)", f"{empty_wall:.1f} s", None, None),
        (
            "a",
            f"decode floor, ffmpeg -f null, {long_min:.0f} min (mean of before and after)",
            f"{floor:.1f} s",
            None,
            None,
        ),
        over_floor(
            "a", "analysis time, same video", long_wall - empty_wall, floor, "<= 2.5x the floor"
        ),  # fmt: skip
        over_floor("a", "  the same with --no-geometry", plain_wall - empty_wall, floor),
        (
            "a",
            f"  the landmarker: wall ms per face ({long_faces} faces, 2 workers)",
            f"{(long_wall - plain_wall) / long_faces * 1000:.1f} ms",
            None,
            None,
        ),
        (
            "b",
            f"peak PSS of the tree, {short_min:.0f} min",
            f"{short_pss / mib:.0f} MiB",
            None,
            "<= 2048 MiB",
        ),
        (
            "b",
            f"peak PSS of the tree, {long_min:.0f} min",
            f"{long_pss / mib:.0f} MiB",
            long_pss / short_pss,
            "<= 1.1x the short one",
        ),
        (
            "b",
            f"peak RSS of the tree, {short_min:.0f} min",
            f"{short_rss / mib:.0f} MiB",
            None,
            "(shared pages counted per process)",
        ),
        (
            "b",
            f"peak RSS of the tree, {long_min:.0f} min",
            f"{long_rss / mib:.0f} MiB",
            long_rss / short_rss,
            "",
        ),
        (
            "c",
            f"{len(many)} clips, {many_s:.0f} video-s: s per video-s",
            f"{many_per:.4f}",
            many_per / long_per,
            "<= 1.5x case (a)",
        ),
        ("c", "case (a): s per video-s", f"{long_per:.4f}", None, None),
        ("d", "--workers 1, analysis time", f"{one_wall - empty_wall:.1f} s", None, None),
        (
            "d",
            "--workers 2, analysis time",
            f"{two_wall - empty_wall:.1f} s",
            (one_wall - empty_wall) / (two_wall - empty_wall),
            ">= 1.6x faster",
        ),
    ]
    if fer_wall is not None:
        rows += [
            (
                "e",
                f"fer 25.10.3, {duration(medium) / 60:.0f} min, every 5th frame",
                f"{fer_wall:.1f} s",
                None,
                None,
            ),
            (
                "e",
                "emotrack run, same video (whole run)",
                f"{two_wall:.1f} s",
                fer_wall / two_wall,
                ">= 5x faster than fer",
            ),
        ]
    rows += [
        (
            "d",
            "--workers 1 of 2 threads (EMOTRACK_TF_THREADS=2)",
            f"{threads_wall - empty_wall:.1f} s",
            (threads_wall - empty_wall) / (two_wall - empty_wall),
            "time against 2 workers of 1 thread",
        ),
        *hd_rows(hd, empty_wall),
    ]
    report(rows, args)


def report(rows: list[tuple], args: argparse.Namespace) -> None:
    """Print the table of rows (case, what, figure, ratio, target) and write it to args.out."""
    print(f"\n{'case':5} {'what':52} {'figure':>12} {'ratio':>7}  target")
    for case, what, figure, ratio, target in rows:
        shown = f"{ratio:6.2f}x" if ratio is not None else ""
        print(f"{case:5} {what:52} {figure:>12} {shown:>7}  {target or ''}")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps(
            {
                "cpu": _cpu(),
                "quick": args.quick,
                "rows": [
                    dict(zip(["case", "what", "figure", "ratio", "target"], r, strict=True))
                    for r in rows
                ],
            },
            indent=2,
        )
    )
    print(f"\nwritten to {args.out}")


def _cpu() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return f"{line.split(':', 1)[1].strip()}, {os.cpu_count()} cores"
    return f"{os.cpu_count()} cores"


if __name__ == "__main__":
    main()
