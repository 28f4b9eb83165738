"""Reproducible training of the temporal GRU on simulated tracks (emotrack/training/simulate.py).

    emotrack train-temporal --preset default --out models/weights/temporal-gru-v1

Same preset and seed -> same data, same initial weights, same order of batches, and (with
TensorFlow's op determinism) the same weights and metrics.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from emotrack.models.temporal_gru import (
    TemporalConfig,
    build_temporal_model,
    model_inputs,
    save_temporal_model,
)
from emotrack.models.tensorflow_runtime import import_tensorflow
from emotrack.training.evaluate_temporal import evaluate, write_model_card
from emotrack.training.simulate import NEUTRAL, PRESETS, Preset, Track, simulate_tracks


def training_windows(
    tracks: list[Track], cfg: TemporalConfig, neutral_keep: float, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Windows of cfg.window frames (hop cfg.hop) with per-frame expression-loss weights.

    Class balancing by downsampling, as in the CNN-RNN work on Aff-Wild2: neutral is the
    resting state and dominates the frames, so only a random `neutral_keep` share of neutral
    frames count in the expression loss (weight 1; the others 0). Windows stay whole so that
    the GRU still sees every frame's context.
    """
    x, label, va, intensity = [], [], [], []
    for track in tracks:
        inputs = model_inputs(track.logits, track.present)
        for start in range(0, len(inputs) - cfg.window + 1, cfg.hop):
            span = slice(start, start + cfg.window)
            x.append(inputs[span])
            label.append(track.label[span])
            va.append(track.va[span])
            intensity.append(track.intensity[span])
    labels = np.stack(label)
    weight = np.where(labels == NEUTRAL, rng.random(labels.shape) < neutral_keep, 1.0)
    return {
        "x": np.stack(x),
        "expression": labels,
        "va": np.stack(va),
        "intensity": np.stack(intensity)[..., None],
        "weight": weight.astype(np.float32),
    }


def train(preset: Preset, cfg: TemporalConfig) -> tuple[Any, dict[str, Any]]:
    """Train a fresh model; returns it with facts about the data for the model card."""
    tf = import_tensorflow()
    tf.keras.utils.set_random_seed(preset.seed)
    tf.config.experimental.enable_op_determinism()
    rng = np.random.default_rng(preset.seed)
    tracks = simulate_tracks(preset.train_tracks, preset.track_frames, preset.seed)
    data = training_windows(tracks, cfg, preset.neutral_keep, rng)
    before = np.bincount(np.concatenate([t.label for t in tracks]), minlength=7)
    after = np.bincount(data["expression"].ravel(), weights=data["weight"].ravel(), minlength=7)
    model = build_temporal_model(cfg)
    model.compile(
        optimizer=tf.keras.optimizers.Adam(preset.learning_rate),
        loss={"expression": "sparse_categorical_crossentropy", "va": "mse", "intensity": "mse"},
    )
    ones = np.ones_like(data["weight"])
    history = model.fit(
        data["x"],
        {k: data[k] for k in ("expression", "va", "intensity")},
        sample_weight={"expression": data["weight"], "va": ones, "intensity": ones},
        batch_size=preset.batch_size,
        epochs=preset.epochs,
        shuffle=True,
        verbose=0,
    )
    facts = {
        "windows": int(len(data["x"])),
        "class_share_before": (before / before.sum()).round(3).tolist(),
        "class_share_after": (after / after.sum()).round(3).tolist(),
        "final_loss": round(float(history.history["loss"][-1]), 4),
    }
    return model, facts


def train_and_save(preset_name: str, out: Path) -> Path:
    """Train with a preset, evaluate, and write weights, config, metrics and model card."""
    preset = PRESETS[preset_name]
    cfg = (
        TemporalConfig()
        if preset_name == "default"
        else TemporalConfig(version=f"temporal-gru-{preset_name}")
    )
    model, facts = train(preset, cfg)
    folder = out
    save_temporal_model(model, cfg, folder)
    metrics = evaluate(
        model, cfg, simulate_tracks(preset.test_tracks, preset.track_frames, preset.seed + 1)
    )
    write_model_card(folder, cfg, preset_name, preset, facts, metrics)
    return folder
