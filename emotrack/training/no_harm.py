"""Does a model do harm to what the CNN sees? The checks of the default model, by one command:

    emotrack evaluate [--model VERSION ...]

On the real-face set (emotrack/training/real_faces.py), frames where a face was found:
- per-frame macro-F1 against the labels, the model's and the CNN's;
- windows of 1 s where one class is the CNN's argmax in >= 60 % of the frames: the model must
  keep that class there (label it in more than half of the window's frames); violations
  are counted;
- expected calibration error (10 bins of the top probability) of the model and the CNN.
On the real talking head (WolfgangLanger_Pexels.mp4), its longest face track: label changes
per minute against the CNN's, and the share of seconds whose majority label is the CNN's.
On simulated tracks (emotrack/training/simulate.py): macro-F1 against the simulated truth.

The default must have: macro-F1 >= the CNN's, no violations, changes <= 0.5x the CNN's and
agreement >= 90 %; its ECE is reported against the CNN's.
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from emotrack.training.annotations import annotated_face, labels_at, read_annotations
from emotrack.training.metrics import label_changes_per_minute, macro_f1, majority_agreement

CNN = "cnn"  # the per-frame CNN, the reference of every check
TALKING_HEAD = "WolfgangLanger_Pexels.mp4"


def expected_calibration_error(probs: np.ndarray, truth: np.ndarray, bins: int = 10) -> float:
    """Mean |accuracy - confidence| over bins of the top probability, weighted by frames."""
    confidence, correct = probs.max(axis=1), probs.argmax(axis=1) == truth
    edges = np.linspace(0, 1, bins + 1)
    error = 0.0
    for lo, hi in zip(edges[:-1], edges[1:], strict=True):
        inside = (confidence > lo) & (confidence <= hi)
        if inside.any():
            error += inside.mean() * abs(correct[inside].mean() - confidence[inside].mean())
    return float(error)


def majority_violations(
    cnn: np.ndarray, model: np.ndarray, times: np.ndarray, window_s: float = 1.0
) -> tuple[int, int]:
    """(windows, violations): 1-s windows (one starting at each frame) where a class is the
    CNN's label in >= 60 % of the frames, and those where the model does not give that class
    to more than half of them."""
    windows = violations = 0
    for start in range(len(times)):
        inside = (times >= times[start]) & (times < times[start] + window_s - 1e-6)
        if times[inside][-1] - times[start] < window_s * 0.7:  # the clip's end: not a full second
            continue
        counts = np.bincount(cnn[inside], minlength=7)
        label = int(counts.argmax())
        if counts[label] >= 0.6 * inside.sum():
            windows += 1
            violations += int((model[inside] == label).sum() * 2 <= inside.sum())
    return windows, violations


def evaluate_versions(versions: list[str], cache_dir: Path) -> dict[str, dict[str, Any]]:
    """The checks for each of `versions` and for the CNN: version -> figures."""
    from emotrack.assets import fetch_asset
    from emotrack.inference import score_features
    from emotrack.scoring import MODEL_VERSION as CNN_PER_FRAME
    from emotrack.training.real_faces import FPS, build_real_faces

    with tempfile.TemporaryDirectory() as tmp:
        video = build_real_faces(Path(tmp), cache_dir)
        (labelled,) = read_annotations(Path(tmp) / "annotations")
        real = annotated_face(_features(video, cache_dir), None)  # the one face of each frame
    truth, _ = labels_at(labelled, real["timestamp_s"].to_numpy(), FPS)  # the set's own rate
    talk = _features(fetch_asset(TALKING_HEAD, cache_dir), cache_dir)
    talk = talk[talk["track_id"] == talk["track_id"].value_counts().idxmax()]
    talk = talk.sort_values("frame_index", ignore_index=True)
    simulated = _simulated_features()

    scored = {CNN: CNN_PER_FRAME, **{v: v for v in versions}}
    probs = {who: score_features(real, v).probs for who, v in scored.items()}
    talk_labels = {who: score_features(talk, v).probs.argmax(1) for who, v in scored.items()}
    results: dict[str, dict[str, Any]] = {}
    t_real, t_talk = real["timestamp_s"].to_numpy(), talk["timestamp_s"].to_numpy()
    for who, version in scored.items():
        labels = probs[who].argmax(axis=1)
        windows, violations = majority_violations(probs[CNN].argmax(1), labels, t_real)
        sim_truth, sim_features = simulated
        results[who] = {
            "version": version,
            "real_macro_f1": macro_f1(truth, labels),
            "real_windows": windows,
            "real_violations": violations,
            "real_ece": expected_calibration_error(probs[who], truth),
            "talk_changes_per_min": label_changes_per_minute(talk_labels[who], t_talk),
            "talk_agreement": majority_agreement(talk_labels[who], talk_labels[CNN], t_talk),
            "simulated_macro_f1": macro_f1(
                sim_truth, score_features(sim_features, version).probs.argmax(1)
            ),
        }
    cnn = results[CNN]
    for who in versions:
        figures = results[who]
        figures["passes"] = {
            "macro_f1_at_least_cnn": figures["real_macro_f1"] >= cnn["real_macro_f1"],
            "keeps_cnn_majority": figures["real_violations"] == 0,
            "ece_at_most_cnn": figures["real_ece"] <= cnn["real_ece"],
            "half_the_changes": figures["talk_changes_per_min"]
            <= 0.5 * cnn["talk_changes_per_min"],
            "agreement_90": figures["talk_agreement"] >= 0.9,
        }
    return results


def table(results: dict[str, dict[str, Any]]) -> str:
    """The checks as a Markdown table, one row per model (the CNN first)."""
    rows = [
        "| model | real faces: macro-F1 | 60 % windows kept | ECE | talking head: changes/min "
        "| agreement | simulated: macro-F1 |",
        "|---|---|---|---|---|---|---|",
    ]
    for who, f in results.items():
        name = "per-frame CNN" if who == CNN else who
        kept = f"{f['real_windows'] - f['real_violations']} of {f['real_windows']}"
        rows.append(
            f"| {name} | {f['real_macro_f1']:.3f} | {kept} | {f['real_ece']:.3f} | "
            f"{f['talk_changes_per_min']:.1f} | {f['talk_agreement']:.0%} | "
            f"{f['simulated_macro_f1']:.3f} |"
        )
    return "\n".join(rows)


def _features(video: Path, cache_dir: Path) -> pd.DataFrame:
    from emotrack.analysis import extract_features, load_models
    from emotrack.settings import Settings
    from emotrack.video import VideoSource

    # Faces detected on every frame, as when the model cards' figures were measured. On
    # followed faces (the default since 0.4) the per-frame CNN does better on the real faces
    # (macro-F1 0.333 against 0.278) and the smoothed default no longer beats it (0.327, one
    # window of 92 not kept): README, "Which model".
    settings = Settings(cache_dir=cache_dir, detect_every_s=0.0)
    return extract_features(VideoSource.from_path(video), *load_models(settings), settings).table


def _simulated_features(tracks: int = 200, frames: int = 128) -> tuple[np.ndarray, pd.DataFrame]:
    """Held-out simulated tracks as a features table (one track_id each, rows where the face
    was detected), with the true label of each row."""
    from emotrack.training.simulate import PRESETS, simulate_tracks

    seed = PRESETS["default"].seed + 1  # the test tracks of temporal-gru-v1's card
    truth, parts = [], []
    for track_id, track in enumerate(simulate_tracks(tracks, frames, seed)):
        seen = np.flatnonzero(track.present)
        truth.append(track.label[seen])
        parts.append(
            pd.DataFrame(
                {
                    "frame_index": seen,
                    "timestamp_s": seen / 5.0,
                    "track_id": track_id,
                    "logits": list(track.logits[seen].astype(np.float32)),
                }
            )
        )
    return np.concatenate(truth), pd.concat(parts, ignore_index=True)
