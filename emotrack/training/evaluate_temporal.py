"""The figures in the temporal model's card, measured again by one command:

    emotrack evaluate-temporal [--model temporal-gru-v1]

- held-out simulated tracks: accuracy and macro-F1 of the model vs the per-frame CNN argmax,
  CCC of valence and arousal (the CNN's from the circumplex expectation), confusion matrices;
- the real talking-head sample WolfgangLanger_Pexels.mp4: label changes per minute of the
  model vs the CNN, and the share of seconds where the model's majority label equals the
  CNN's.
"""

from __future__ import annotations

import json
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from emotrack.models.temporal_gru import TemporalConfig, model_inputs, predict_track
from emotrack.scoring import cnn_frame_scores, temporal_scores
from emotrack.training.metrics import (
    accuracy,
    ccc,
    confusion_matrix,
    label_changes_per_minute,
    macro_f1,
    majority_agreement,
)
from emotrack.training.simulate import PRESETS, Track, simulate_tracks
from emotrack.vocabulary import EMOTIONS, softmax, valence_arousal

REAL_VIDEO = "WolfgangLanger_Pexels.mp4"
LETTERS = "ADFHSUN"  # angry, disgust, fear, happy, sad, sUrprise, neutral


def evaluate_again(version: str) -> dict[str, Any]:
    """The metrics of a shipped model, measured again as its training command measured them."""
    from emotrack.models.temporal_gru import WEIGHTS_DIR, load_temporal_model

    model, cfg = load_temporal_model(version)
    preset = PRESETS[json.loads((WEIGHTS_DIR / version / "metrics.json").read_text())["preset"]]
    test = simulate_tracks(preset.test_tracks, preset.track_frames, preset.seed + 1)
    metrics = evaluate(model, cfg, test)
    for part in metrics["simulated"].values():
        if isinstance(part, dict):
            part.pop("confusion")
    return metrics


def evaluate(model: Any, cfg: TemporalConfig, test: list[Track]) -> dict[str, Any]:
    return {"simulated": evaluate_simulated(model, cfg, test), "real": evaluate_real(model, cfg)}


def evaluate_simulated(model: Any, cfg: TemporalConfig, tracks: list[Track]) -> dict[str, Any]:
    """Model vs per-frame CNN on frames where the face was detected."""
    truth, ours, cnn, va_true, va_ours, va_cnn = [], [], [], [], [], []
    for track in tracks:
        out = predict_track(model, model_inputs(track.logits, track.present), cfg)
        seen = track.present
        truth.append(track.label[seen])
        ours.append(out["expression"][seen].argmax(axis=1))
        cnn.append(track.logits[seen].argmax(axis=1))
        va_true.append(track.va[seen])
        va_ours.append(out["va"][seen])
        va_cnn.append(valence_arousal(softmax(track.logits[seen].astype(np.float64))))
    t, o, c = np.concatenate(truth), np.concatenate(ours), np.concatenate(cnn)
    vt, vo, vc = np.concatenate(va_true), np.concatenate(va_ours), np.concatenate(va_cnn)
    return {"frames": int(len(t)), "model": _scores(t, o, vt, vo), "cnn": _scores(t, c, vt, vc)}


def _scores(
    truth: np.ndarray, labels: np.ndarray, va_true: np.ndarray, va: np.ndarray
) -> dict[str, Any]:
    return {
        "accuracy": accuracy(truth, labels),
        "macro_f1": macro_f1(truth, labels),
        "ccc_valence": ccc(va_true[:, 0], va[:, 0]),
        "ccc_arousal": ccc(va_true[:, 1], va[:, 1]),
        "confusion": confusion_matrix(truth, labels).tolist(),
    }


def evaluate_real(model: Any, cfg: TemporalConfig) -> dict[str, Any]:
    """Steadiness and agreement on the longest face track of the real sample video."""
    features = _real_features()
    track_id = features["track_id"].value_counts().idxmax()
    track = features[features["track_id"] == track_id].sort_values("frame_index")
    ours = temporal_scores(track, model, cfg).probs.argmax(axis=1)
    cnn = cnn_frame_scores(track).probs.argmax(axis=1)
    t = track["timestamp_s"].to_numpy()
    return {
        "video": REAL_VIDEO,
        "frames": int(len(track)),
        "seconds": float(t[-1] - t[0]),
        "model_changes_per_min": label_changes_per_minute(ours, t),
        "cnn_changes_per_min": label_changes_per_minute(cnn, t),
        "agreement_with_cnn_majority": majority_agreement(ours, cnn, t),
        "model_labels": "".join(LETTERS[i] for i in ours),
        "cnn_labels": "".join(LETTERS[i] for i in cnn),
    }


def _real_features():
    from emotrack.analysis import extract_features, load_models
    from emotrack.assets import fetch_asset
    from emotrack.settings import Settings
    from emotrack.video import VideoSource

    settings = Settings()
    source = VideoSource.from_path(fetch_asset(REAL_VIDEO, settings.cache_dir))
    return extract_features(source, *load_models(settings), settings).table


def write_model_card(
    folder: Path,
    cfg: TemporalConfig,
    preset_name: str,
    preset: Any,
    facts: dict[str, Any],
    metrics: dict[str, Any],
) -> None:
    (folder / "metrics.json").write_text(
        json.dumps(
            {"preset": preset_name, "training": {**asdict(preset), **facts}, **metrics}, indent=2
        )
        + "\n"
    )
    sim, real = metrics["simulated"], metrics["real"]
    m, c = sim["model"], sim["cnn"]
    text = CARD.format(
        version=cfg.version,
        cfg=cfg,
        preset_name=preset_name,
        p=preset,
        facts=facts,
        frames=sim["frames"],
        m=m,
        c=c,
        r=real,
        ratio=real["model_changes_per_min"] / max(real["cnn_changes_per_min"], 1e-9),
        sim_table="\n".join(
            f"| {who} | {f['accuracy']:.3f} | {f['macro_f1']:.3f} | {f['ccc_valence']:.3f} | "
            f"{f['ccc_arousal']:.3f} |"
            for who, f in (("this model", m), ("per-frame CNN", c))
        ),
        confusion_model=_matrix(m["confusion"]),
        confusion_cnn=_matrix(c["confusion"]),
    )
    (folder / "MODEL_CARD.md").write_text(text)


def _matrix(rows: list[list[int]]) -> str:
    head = "| true \\ predicted | " + " | ".join(EMOTIONS) + " |\n|---" + "|---" * 7 + "|\n"
    return head + "\n".join(
        f"| {EMOTIONS[i]} | " + " | ".join(str(v) for v in row) + " |" for i, row in enumerate(rows)
    )


CARD = """# Model card: {version}

A bidirectional GRU ({cfg.hidden} units per direction) over a face track's per-frame outputs
of the FER2013 mini-Xception (7 centred logits and a face-present flag), predicting per frame
7 expression probabilities, valence and arousal in [-1, 1] and intensity in [0, 1]. Tracks
are processed in overlapping windows of {cfg.window} frames (hop {cfg.hop}). Trained for
{cfg.rate_hz:g} analysed frames per second; other rates change the time scale it expects.

## Data
No licensed emotion-labelled video is available to us, so the model is trained **only on
simulated tracks** (`emotrack/training/simulate.py`; every assumption is a named constant
there, with its source). In short:

- Latent state: neutral rest (log-normal, median 3 s) alternating with expression episodes
  (log-normal, median 2.5 s, 0.6-10 s) with onset / apex / offset intensity profiles and peak
  intensity 0.35-1. Frames below intensity 0.3 are labelled (and look) neutral.
- Observation: the CNN reports the true class, with a lead over the other classes that grows
  with intensity, except during transient misreadings (4% of frames start one, 1-3 frames
  long) whose class follows an assumed FER2013-like confusion pattern. On top: per-reading
  class offsets, AR(1) logit noise, one-frame blips and missed detections. Rates, offsets and
  noise levels were measured on our CNN over the real sample videos. Persistent misreadings
  (one person's neutral face read as sad all along) are *not* simulated. No model that sees
  only the CNN's outputs can undo them, so this model follows the CNN's sustained reading.
- Targets: valence/arousal are the NRC VAD Lexicon v1.0 coordinates (Mohammad 2018) of the
  expression, mixed with neutral's by intensity.
- Preset `{preset_name}`: {p.train_tracks} training tracks of {p.track_frames} frames, seed
  {p.seed}; {facts[windows]} windows of {cfg.window} frames. Class balancing by downsampling:
  only a random {p.neutral_keep} of the neutral frames count in the expression loss. Class
  shares (EMOTIONS order) before: {facts[class_share_before]}, after:
  {facts[class_share_after]}.

## Procedure
`emotrack train-temporal --preset {preset_name} --out models/weights/{cfg.version}`: Adam
(lr {p.learning_rate}), batch {p.batch_size}, {p.epochs} epochs, loss = cross-entropy
(expression) + MSE (valence/arousal) + MSE (intensity), TensorFlow op determinism and a
fixed seed. Final training loss {facts[final_loss]}.

## Metrics
Reproduce with `emotrack evaluate-temporal --model {version}`
(`emotrack/training/evaluate_temporal.py`).

Held-out simulated tracks (seed {p.seed} + 1, {frames} frames with a detected face):

| | accuracy | macro-F1 | CCC valence | CCC arousal |
|---|---|---|---|---|
{sim_table}

Real video `{r[video]}` (longest face track, {r[frames]} frames over {r[seconds]:.1f} s), no
labels, so steadiness and agreement with the CNN:

| | label changes per minute |
|---|---|
| this model | {r[model_changes_per_min]:.1f} |
| per-frame CNN | {r[cnn_changes_per_min]:.1f} |

Ratio {ratio:.2f}; the model's majority label equals the CNN's in
{r[agreement_with_cnn_majority]:.0%} of the seconds.

Labels per frame (A angry, D disgust, F fear, H happy, S sad, U surprise, N neutral):

    model {r[model_labels]}
    CNN   {r[cnn_labels]}

Confusion matrix, this model (simulated, counts):

{confusion_model}

Confusion matrix, per-frame CNN (simulated, counts):

{confusion_cnn}

## Limits
- It does harm on real faces: on the labelled real-face set it relabels what the CNN clearly
  sees (`emotrack evaluate`; docs/models.md, "Which model"), so it is not the default. Use it with
  `--model {version}`, or train one on labelled video with `emotrack train`.
- Trained on simulation only: the figures on simulated data measure how well it undoes the
  *assumed* CNN errors, not accuracy on real people. Its only real-video check is one talking
  head, without labels.
- It sees only the CNN's 7 logits, so it cannot recover an expression the CNN consistently
  misreads: it removes flicker and short blips, and bridges missed detections. The
  simulated figures therefore flatter both the model and the CNN (no persistent errors).
- Valence and arousal follow the expression (lexicon coordinates times intensity); they are
  not measured from the face.
- Expects {cfg.rate_hz:g} frames per second; at other analysis rates, durations it learnt
  are rescaled.
"""
