"""Does a model do harm to what the CNN sees? The checks of the default model, by one command:

    emotrack evaluate [--model VERSION ...]

On the real-face set (emotrack/training/real_faces.py), frames where a face was found:
- per-frame macro-F1 against the labels, the model's and the CNN's;
- windows of 1 s where one class is the CNN's argmax in >= 60 % of the frames: the model must
  keep that class there (label it in more than half of the window's frames), unless the
  face backs the model's change: the class it gives most of the window has more AU
  evidence there (emotrack.evidence, weighed by trust) than the CNN's class. Changes the
  face does not back are violations; the backed ones are counted apart (`real_overruled`);
- expected calibration error (10 bins of the top probability) of the model and the CNN.
On the real talking head (WolfgangLanger_Pexels.mp4), its longest face track: label changes
per minute against the CNN's, the share of seconds whose majority label is the CNN's, and
the share of labelled seconds (talking_head_arc.csv: the labels, with the reason for each)
whose majority label is right.
On simulated tracks (emotrack/training/simulate.py): macro-F1 against the simulated truth.

The default must have: macro-F1 >= the CNN's, no violations, ECE <= the CNN's, changes <=
0.5x the CNN's, agreement >= 90 % and the labelled seconds right >= 85 %.
"""

from __future__ import annotations

import math
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from emotrack.training.annotations import annotated_face, labels_at, read_annotations
from emotrack.training.metrics import (
    label_changes_per_minute,
    macro_f1,
    majority_agreement,
    per_second_majority,
)
from emotrack.vocabulary import EMOTIONS

CNN = "cnn"  # the per-frame CNN, the reference of every check
TALKING_HEAD = "WolfgangLanger_Pexels.mp4"
TALKING_HEAD_ARC = Path(__file__).with_name("talking_head_arc.csv")


def talking_head_labels(arc: Path = TALKING_HEAD_ARC) -> dict[int, int]:
    """Second -> label (EMOTIONS index) of each second [s, s + 1) that a labelled stretch of
    the talking head's arc covers at least half of (unlabelled stretches have no label)."""
    labels: dict[int, int] = {}
    for stretch in pd.read_csv(arc).dropna(subset=["label"]).itertuples():
        start, end = float(stretch.start_s), float(stretch.end_s)
        for second in range(math.floor(start), math.ceil(end)):
            if min(end, second + 1) - max(start, second) >= 0.5:
                labels[second] = EMOTIONS.index(str(stretch.label))
    return labels


def labelled_right(labels: np.ndarray, times: np.ndarray, truth: dict[int, int]) -> float:
    """Share of the labelled seconds whose majority label (of the rows in them) is right."""
    majority = per_second_majority(labels, times)
    return float(np.mean([majority.get(second) == label for second, label in truth.items()]))


_LETTERS = "ADFHSUN"  # EMOTIONS' initials, surprise as U (real_labels)


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
    cnn: np.ndarray,
    model: np.ndarray,
    times: np.ndarray,
    window_s: float = 1.0,
    evidence: np.ndarray | None = None,
) -> tuple[int, int, int]:
    """(windows, violations, overruled): 1-s windows (one starting at each frame) where a
    class is the CNN's label in >= 60 % of the frames; those where the model does not give
    that class to more than half of them, unless backed; those backed: the model's most
    frequent class in the window has more mean `evidence` (N, 7) there than the CNN's."""
    windows = violations = overruled = 0
    for start in range(len(times)):
        inside = (times >= times[start]) & (times < times[start] + window_s - 1e-6)
        if times[inside][-1] - times[start] < window_s * 0.7:  # the clip's end: not a full second
            continue
        counts = np.bincount(cnn[inside], minlength=7)
        label = int(counts.argmax())
        if counts[label] >= 0.6 * inside.sum():
            windows += 1
            if (model[inside] == label).sum() * 2 > inside.sum():
                continue
            instead = int(np.bincount(model[inside], minlength=7).argmax())
            backed = evidence is not None and (
                evidence[inside, instead].mean() > evidence[inside, label].mean()
            )
            overruled += int(backed)
            violations += int(not backed)
    return windows, violations, overruled


def evaluate_versions(versions: list[str], cache_dir: Path) -> dict[str, dict[str, Any]]:
    """The checks for each of `versions` and for the CNN: version -> figures."""
    from emotrack.assets import fetch_asset
    from emotrack.evidence import au_evidence, trust
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
    backing = au_evidence(real) * trust(real)[:, None]
    talk_truth = talking_head_labels()
    for who, version in scored.items():
        labels = probs[who].argmax(axis=1)
        windows, violations, overruled = majority_violations(
            probs[CNN].argmax(1), labels, t_real, evidence=backing
        )
        sim_truth, sim_features = simulated
        results[who] = {
            "version": version,
            "real_macro_f1": macro_f1(truth, labels),
            "real_windows": windows,
            "real_violations": violations,
            "real_overruled": overruled,
            "real_recall": {
                EMOTIONS[c]: float(np.mean(labels[truth == c] == c)) for c in np.unique(truth)
            },
            "real_labels": "".join(_LETTERS[i] for i in labels),
            "real_ece": expected_calibration_error(probs[who], truth),
            "talk_changes_per_min": label_changes_per_minute(talk_labels[who], t_talk),
            "talk_agreement": majority_agreement(talk_labels[who], talk_labels[CNN], t_talk),
            "talk_labelled_right": labelled_right(talk_labels[who], t_talk, talk_truth),
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
            "labelled_seconds_85": figures["talk_labelled_right"] >= 0.85,
        }
    return results


def table(results: dict[str, dict[str, Any]]) -> str:
    """The checks as a Markdown table, one row per model (the CNN first)."""
    rows = [
        "| model | real faces: macro-F1 | 60 % windows kept (+ overruled, backed by AUs) | ECE "
        "| talking head: changes/min | agreement | labelled seconds right "
        "| simulated: macro-F1 |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for who, f in results.items():
        name = "per-frame CNN" if who == CNN else who
        kept = f["real_windows"] - f["real_violations"] - f["real_overruled"]
        overruled = f" (+ {f['real_overruled']})" if f["real_overruled"] else ""
        rows.append(
            f"| {name} | {f['real_macro_f1']:.3f} | {kept}{overruled} of {f['real_windows']} | "
            f"{f['real_ece']:.3f} | {f['talk_changes_per_min']:.1f} | "
            f"{f['talk_agreement']:.0%} | {f['talk_labelled_right']:.0%} | "
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
    # window of 92 not kept): docs/models.md, "Which model".
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
