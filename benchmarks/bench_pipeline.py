"""Speed and memory of the pipeline on one real video, against ffmpeg decoding it alone.

    .venv/bin/python benchmarks/bench_pipeline.py [--video WolfgangLanger_Pexels.mp4] [--fps 5]

Prints, all measured in this run (the machine is shared, so compare the ratios):
- baseline: ffmpeg decoding the video at the analysis rate to raw RGB, nothing else;
- in-process stages: decode, the face detector, the CNN (per face, one and batched);
- end to end: `emotrack run` on a folder holding only this video, as a user runs it
  (wall time including Prefect's temporary server, peak RSS of the emotrack process);
- fixed cost: `emotrack run` on an empty folder (start-up: Prefect server, imports).
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import psutil

from emotrack.assets import fetch_asset
from emotrack.faces import crop_face, faces_from_boxes
from emotrack.settings import Settings
from emotrack.video import VideoSource, decoder_binary


def timed(fn, repeat: int = 3) -> float:
    """Best wall time of `repeat` calls, in seconds."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def ffmpeg_decode(path: Path, fps: float) -> None:
    subprocess.run(
        [
            decoder_binary(),
            "-nostdin",
            "-v",
            "error",
            "-i",
            str(path),
            "-vf",
            f"fps={fps}",
            "-f",
            "rawvideo",
            "-pix_fmt",
            "rgb24",
            "-y",
            os.devnull,
        ],
        check=True,
    )


def run_cli(video: Path | None, fps: float) -> tuple[float, int]:
    """Wall seconds and peak RSS (bytes) of `emotrack run` on a folder holding `video`."""
    with tempfile.TemporaryDirectory() as tmp:
        source = Path(tmp) / "archive"
        source.mkdir()
        if video is not None:
            shutil.copyfile(video, source / video.name)
        cmd = [
            str(Path(sys.executable).with_name("emotrack")),
            "run",
            str(source),
            "--lake",
            str(Path(tmp) / "lake"),
            "--fps",
            str(fps),
        ]
        start = time.perf_counter()
        proc = psutil.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        peak = 0
        while proc.poll() is None:
            try:
                peak = max(peak, proc.memory_info().rss)
            except psutil.NoSuchProcess:
                break
            time.sleep(0.05)
        wall = time.perf_counter() - start
        if proc.returncode != 0:
            raise SystemExit(f"emotrack run failed with exit code {proc.returncode}")
    return wall, peak


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--video", default="WolfgangLanger_Pexels.mp4")
    parser.add_argument("--fps", type=float, default=5.0)
    args = parser.parse_args()
    settings = Settings()
    video = fetch_asset(args.video, settings.cache_dir)
    source = VideoSource.from_path(video)
    frames = [f for _, f in source.frames(args.fps)]
    n = len(frames)
    print(
        f"video: {video.name}, {source.width}x{source.height}, {source.duration_s:.1f} s, "
        f"{n} frames at {source.analysis_rate(args.fps)} fps"
    )

    baseline = timed(lambda: ffmpeg_decode(video, args.fps))
    decode = timed(lambda: sum(1 for _ in source.frames(args.fps)))

    from emotrack.models.expression_cnn import predict_features
    from emotrack.models.face_detector import detect_faces

    from emotrack.analysis import load_models

    detector, cnn = load_models(settings)
    detect_faces(detector, frames[:16])  # warm-up
    detect = timed(
        lambda: [detect_faces(detector, frames[i : i + 16]) for i in range(0, n, 16)], repeat=1
    )
    found = [faces_from_boxes(d, settings.min_face_px) for d in detect_faces(detector, frames[:16])]
    face = crop_face(frames[0], found[0][0])[None]
    batch = np.repeat(face, 64, axis=0)
    predict_features(cnn, face)  # warm-up
    one = timed(lambda: predict_features(cnn, face), repeat=20)
    many = timed(lambda: predict_features(cnn, batch), repeat=5) / 64

    wall, peak = run_cli(video, args.fps)
    empty_wall, empty_peak = run_cli(None, args.fps)

    print(f"baseline  ffmpeg decode at {args.fps} fps        {baseline:7.2f} s")
    print(
        f"decode    VideoSource.frames               {decode:7.2f} s   "
        f"{decode / baseline:5.2f}x baseline"
    )
    print(
        f"faces     detector, batches of 16          {detect:7.2f} s   "
        f"{detect / baseline:5.2f}x baseline   {1000 * detect / n:6.1f} ms/frame"
    )
    print(
        f"cnn       mini-Xception, 1 face            {1000 * one:7.2f} ms/face   "
        f"{one * 1000 / 50:5.3f} of the 50 ms real-time budget"
    )
    print(f"cnn       mini-Xception, batch of 64       {1000 * many:7.2f} ms/face")
    print(
        f"end2end   emotrack run (wall)              {wall:7.2f} s   "
        f"{wall / baseline:5.1f}x baseline   {wall / source.duration_s:5.2f}x real time"
    )
    print(f"end2end   emotrack run peak RSS            {peak / 2**20:7.0f} MiB")
    print(
        f"fixed     emotrack run, empty folder       {empty_wall:7.2f} s   "
        f"{empty_wall / wall:5.2f} of end2end   peak RSS {empty_peak / 2**20:.0f} MiB"
    )


if __name__ == "__main__":
    main()
