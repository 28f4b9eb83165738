"""The face stage: following faces by their landmarks against detecting on every frame.

    .venv/bin/python benchmarks/bench_face_stage.py      (also part of `make bench`)

Each clip is analysed twice by emotrack.analysis.extract_features (one thread, geometry on,
5 fps), with the detector on every frame (`--detect-every-frame`) and following faces
(the default), and decoded alone by ffmpeg (`-f null`, the decode floor). Clips:
- talking head 360p: the sample WolfgangLanger_Pexels.mp4 (640x360, 19.7 s), one face;
- talking head 1080p: the same, upscaled to 1920x1080 (lanczos);
- single face: single_face.mp4 (640x360);
- crowd 1080p, small faces 1080p: bench_detectors.py's scenes (20 faces; 20 faces of 40 to
  96 px), as 8-s videos that pan slowly left and right (up to 60 px, a 4-s period);
- phone (rotated): bench_detectors.py's portrait still, stored sideways with a rotation tag.
Per clip: analysis time over the decode floor, both ways; face-frames found by following that
detection on every frame also found (a face matches at IoU >= 0.3), and the reverse;
identity switches (a ground-truth face whose track id changes between frames: the built
clips; one-face clips: the track ids beyond the first); the share of seconds whose majority
label is the same; the median |yaw difference| on the faces both found.
Writes build/bench-face-stage.json.
"""

from __future__ import annotations

import json
import math
import subprocess
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
from bench_detectors import H264, built_scenes, still_clip, write_results
from bench_throughput import decode_floor

from emotrack.analysis import extract_features, load_models
from emotrack.assets import fetch_asset
from emotrack.faces import Face, iou
from emotrack.settings import Settings
from emotrack.video import VideoSource, decoder_binary

FPS = 25
PAN_PX, PAN_PERIOD_S, PAN_SECONDS = 60, 4.0, 8.0


def panned_clip(image: np.ndarray, truth: np.ndarray, path: Path) -> tuple[Path, list]:
    """An 8-s clip of `image` panning sideways; per frame of it, the moved truth boxes."""
    height, width = image.shape[:2]
    cmd = [decoder_binary(), "-nostdin", "-v", "error", "-y", "-f", "rawvideo"]
    cmd += ["-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-r", str(FPS), "-i", "-"]
    encoder = subprocess.Popen([*cmd, *H264, str(path)], stdin=subprocess.PIPE)
    assert encoder.stdin is not None
    shifts = []
    for i in range(int(PAN_SECONDS * FPS)):
        dx = round(PAN_PX * math.sin(2 * math.pi * i / (FPS * PAN_PERIOD_S)))
        moved = cv2.warpAffine(
            image, np.float32([[1, 0, dx], [0, 1, 0]]), (width, height), borderValue=(90,) * 3
        )
        encoder.stdin.write(moved.tobytes())
        shifts.append(dx)
    encoder.stdin.close()
    assert encoder.wait() == 0
    return path, [(i / FPS, truth + [dx, 0, 0, 0]) for i, dx in enumerate(shifts)]


def analyse(path: Path, models, settings: Settings) -> tuple[pd.DataFrame, float]:
    start = time.perf_counter()
    table = extract_features(VideoSource.from_path(path), *models, settings).table
    return table, time.perf_counter() - start


def _face(row) -> Face:
    return Face(row.bbox_x, row.bbox_y, row.bbox_w, row.bbox_h, 1.0)


def found_share(ours: pd.DataFrame, theirs: pd.DataFrame) -> float:
    """The share of theirs' face-frames that ours also found (IoU >= 0.3 in the same frame)."""
    if theirs.empty:
        return 1.0
    by_frame = {k: [_face(r) for r in g.itertuples()] for k, g in ours.groupby("frame_index")}
    hits = sum(
        any(iou(_face(r), f) >= 0.3 for f in by_frame.get(r.frame_index, []))
        for r in theirs.itertuples()
    )
    return hits / len(theirs)


def identity_switches(table: pd.DataFrame, truth: list | None) -> int:
    """Times a ground-truth face's track id changes between the frames where it is found
    (truth: per clip frame, (time, boxes)); without truth, the track ids beyond the first."""
    if truth is None:
        return max(0, table["track_id"].nunique() - 1)
    times = np.array([t for t, _ in truth])
    last: dict[int, int] = {}
    switches = 0
    for row in table.itertuples():
        boxes = truth[int(np.abs(times - row.timestamp_s).argmin())][1]
        overlaps = [iou(_face(row), Face(*b, 1.0)) for b in boxes]
        who = int(np.argmax(overlaps))
        if overlaps[who] < 0.3:
            continue
        switches += who in last and last[who] != row.track_id
        last[who] = row.track_id
    return switches


def agreement(ours: pd.DataFrame, theirs: pd.DataFrame) -> tuple[float, float]:
    """(share of seconds with the same majority label, median |yaw difference| in degrees)
    over the faces both found, paired in the same frame by the largest box overlap."""
    pairs = []
    by_frame = {k: g for k, g in theirs.groupby("frame_index")}
    for row in ours.itertuples():
        other = by_frame.get(row.frame_index)
        if other is None:
            continue
        overlaps = [iou(_face(row), _face(o)) for o in other.itertuples()]
        best = int(np.argmax(overlaps))
        if overlaps[best] >= 0.3:
            o = other.iloc[best]
            pairs.append(
                (
                    int(row.timestamp_s),
                    int(np.argmax(row.logits)),
                    int(np.argmax(o["logits"])),
                    abs(row.yaw_deg - o["yaw_deg"]),
                )
            )
    frame = pd.DataFrame(pairs, columns=["second", "ours", "theirs", "yaw"])
    if frame.empty:
        return math.nan, math.nan
    majority = frame.groupby("second")[["ours", "theirs"]].agg(lambda s: s.mode().iloc[0])
    return float((majority["ours"] == majority["theirs"]).mean()), float(frame["yaw"].median())


def main() -> None:
    settings = Settings(tf_threads=1)
    models = load_models(settings)
    every = settings.with_run_options(detect_every_s=0.0)
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        head = fetch_asset("WolfgangLanger_Pexels.mp4", settings.cache_dir)
        hd = folder / "talking-head-1080p.mp4"
        scale = ["-vf", "scale=1920:1080:flags=lanczos"]
        cmd = [decoder_binary(), "-nostdin", "-v", "error", "-y", "-i", str(head), *scale]
        subprocess.run([*cmd, *H264, str(hd)], check=True)
        clips: dict[str, tuple[Path, list | None]] = {
            "talking head 360p": (head, None),
            "talking head 1080p": (hd, None),
            "single face": (fetch_asset("single_face.mp4", settings.cache_dir), None),
        }
        for name, (image, truth, rotate) in built_scenes(settings).items():
            if rotate:
                path = still_clip(image, folder / "phone.mp4", rotate=rotate)
                clips[name] = (path, [(0.0, truth)])
            else:
                clips[name] = panned_clip(image, truth, folder / f"{name.split()[0]}.mp4")
        for name, (path, truth) in clips.items():
            floor = decode_floor(path)
            theirs, every_s = analyse(path, models, every)
            ours, follow_s = analyse(path, models, settings)
            same_label, yaw = agreement(ours, theirs)
            results[name] = {
                "decode floor s": floor,
                "every frame / floor": every_s / floor,
                "following / floor": follow_s / floor,
                "speed-up": every_s / follow_s,
                "found of every-frame's": found_share(ours, theirs),
                "every-frame found of ours": found_share(theirs, ours),
                "switches, every frame": identity_switches(theirs, truth),
                "switches, following": identity_switches(ours, truth),
                "same label, share of s": same_label,
                "median |yaw diff| deg": yaw,
                "detector share of frames": float(ours["detected"].mean()) if len(ours) else 0,
            }
            print(name, json.dumps(results[name]), flush=True)
    columns = list(next(iter(results.values())))
    print(f"\n{'clip':20}" + "".join(f"{c[:13]:>14}" for c in columns))
    for name, row in results.items():
        print(f"{name:20}" + "".join(f"{row[c]:14.3f}" for c in columns))
    write_results(results, "bench-face-stage.json")


if __name__ == "__main__":
    main()
