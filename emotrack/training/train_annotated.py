"""Training and evaluating the temporal GRU on labelled video (Aff-Wild2's layout).

The inputs are the CNN features that `emotrack run` stores (one face per analysed frame: see
emotrack.training.annotations.annotated_face); the labels are the annotation files', aligned to the
analysed frames by timestamp. Classification (7 expressions) and regression (valence,
arousal, and intensity = the length of the valence-arousal vector) are trained together, on
windows of whole sequences, with per-frame loss weights that implement the balancing by
downsampling: a frame dropped by expression_keep / va_keep weighs 0 in that head's loss.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import pandas as pd

from emotrack.models.temporal_gru import (
    TemporalConfig,
    build_temporal_model,
    extra_inputs,
    model_inputs,
    predict_track,
)
from emotrack.models.tensorflow_runtime import import_tensorflow
from emotrack.schema import MEASURE_COLUMNS
from emotrack.scoring import logits_of
from emotrack.training.annotations import LabelledVideo, expression_keep, labels_at, va_keep
from emotrack.training.metrics import accuracy, ccc, confusion_matrix, macro_f1
from emotrack.vocabulary import softmax, valence_arousal


@dataclass(frozen=True)
class LabelledSequence:
    """One annotated face over the analysed slots 0..T-1 of its video.

    logits (T, 7) are zeros where present is False (no face found in that slot); geometry
    (T rows, MEASURE_COLUMNS: head pose and blendshapes) is NaN there and where the
    landmarker gave none; expression (T,) is -1 and va (T, 2) NaN where unannotated.
    """

    name: str
    split: str
    logits: np.ndarray
    present: np.ndarray
    expression: np.ndarray
    va: np.ndarray
    geometry: pd.DataFrame

    def inputs(self, cfg: TemporalConfig) -> np.ndarray:
        """The model's input (T, cfg.inputs) for this sequence."""
        return model_inputs(self.logits, self.present, extra_inputs(self.geometry, cfg))


@dataclass(frozen=True)
class TrainingOptions:
    seed: int = 7
    epochs: int = 30
    batch_size: int = 32
    learning_rate: float = 3e-3


def labelled_sequence(
    faces: pd.DataFrame, labelled: LabelledVideo, native_fps: float, rate: float
) -> LabelledSequence:
    """The sequence of one annotated face from its rows of `features` (one per frame, as
    annotated_face gives): slots without a row are absent, and take the labels of the
    native frame at slot / rate."""
    slots = faces["frame_index"].to_numpy(np.int64)
    length = int(slots.max()) + 1 if len(slots) else 0
    times = np.arange(length) / rate
    times[slots] = faces["timestamp_s"].to_numpy()
    logits = np.zeros((length, 7))
    logits[slots] = logits_of(faces)
    present = np.zeros(length, bool)
    present[slots] = True
    geometry = pd.DataFrame(np.nan, index=range(length), columns=MEASURE_COLUMNS)
    geometry.iloc[slots] = faces.reindex(columns=MEASURE_COLUMNS).to_numpy(np.float64)
    expression, va = labels_at(labelled, times, native_fps)
    return LabelledSequence(
        labelled.name, labelled.split, logits, present, expression, va, geometry
    )


def training_windows(
    sequences: list[LabelledSequence], cfg: TemporalConfig, rng: np.random.Generator
) -> dict[str, np.ndarray]:
    """Windows of cfg.window slots (hop cfg.hop; short sequences padded as absent) with the
    targets and per-frame weights of each head."""
    labels = np.concatenate([s.expression for s in sequences])
    va = np.concatenate([s.va for s in sequences])
    keep_expr, keep_va = expression_keep(labels, rng), va_keep(va, rng)
    out: dict[str, list[np.ndarray]] = {k: [] for k in ("x", "expr", "va", "w_expr", "w_va")}
    offset = 0
    for seq in sequences:
        n = len(seq.present)
        padded = max(n, cfg.window)
        pad = padded - n
        x = np.concatenate([seq.inputs(cfg), np.zeros((pad, cfg.inputs))])
        expr = np.concatenate([np.maximum(seq.expression, 0), np.zeros(pad, np.int64)])
        target_va = np.concatenate([np.nan_to_num(seq.va), np.zeros((pad, 2))])
        w_expr = np.concatenate([keep_expr[offset : offset + n], np.zeros(pad, bool)])
        w_va = np.concatenate([keep_va[offset : offset + n], np.zeros(pad, bool)])
        offset += n
        starts = list(range(0, padded - cfg.window + 1, cfg.hop))
        if starts[-1] != padded - cfg.window:
            starts.append(padded - cfg.window)
        for start in starts:
            span = slice(start, start + cfg.window)
            for key, values in zip(
                ("x", "expr", "va", "w_expr", "w_va"),
                (x, expr, target_va, w_expr, w_va),
                strict=True,
            ):
                out[key].append(values[span])
    data = {k: np.stack(v) for k, v in out.items()}
    data["intensity"] = np.clip(np.linalg.norm(data["va"], axis=-1), 0, 1)[..., None]
    return {
        "x": data["x"].astype(np.float32),
        "expression": data["expr"],
        "va": data["va"].astype(np.float32),
        "intensity": data["intensity"].astype(np.float32),
        "w_expression": data["w_expr"].astype(np.float32),
        "w_va": data["w_va"].astype(np.float32),
    }


def train_on_sequences(
    sequences: list[LabelledSequence], cfg: TemporalConfig, options: TrainingOptions
) -> tuple[Any, dict[str, Any]]:
    """A fresh model trained on `sequences`; returns it with facts for the model card."""
    tf = import_tensorflow()
    tf.keras.utils.set_random_seed(options.seed)
    tf.config.experimental.enable_op_determinism()
    rng = np.random.default_rng(options.seed)
    data = training_windows(sequences, cfg, rng)
    model = build_temporal_model(cfg)
    model.compile(
        optimizer=tf.keras.optimizers.Adam(options.learning_rate),
        loss={"expression": "sparse_categorical_crossentropy", "va": "mse", "intensity": "mse"},
    )
    history = model.fit(
        data["x"],
        {k: data[k] for k in ("expression", "va", "intensity")},
        sample_weight={
            "expression": data["w_expression"],
            "va": data["w_va"],
            "intensity": data["w_va"],
        },
        batch_size=options.batch_size,
        epochs=options.epochs,
        shuffle=True,
        verbose=0,
    )
    labels = np.concatenate([s.expression for s in sequences])
    va_labelled = np.isfinite(np.concatenate([s.va for s in sequences])).all(axis=1)
    kept = data["expression"][data["w_expression"] > 0]
    facts = {
        "sequences": len(sequences),
        "windows": len(data["x"]),
        "frames": int(sum(len(s.present) for s in sequences)),
        "expression_frames_before": np.bincount(labels[labels >= 0], minlength=7).tolist(),
        "expression_frames_kept": np.bincount(kept, minlength=7).tolist(),
        "va_frames_before": int(va_labelled.sum()),
        "va_frames_kept": int(data["w_va"].sum()),
        "final_loss": round(float(history.history["loss"][-1]), 4),
        "options": asdict(options),
    }
    return model, facts


def evaluate_sequences(
    model: Any, cfg: TemporalConfig, sequences: list[LabelledSequence]
) -> dict[str, Any]:
    """The model and the per-frame CNN on the same frames (a face present and annotated):
    accuracy, macro-F1 over the classes present, CCC of valence and arousal, and confusion
    matrices (rows: true class, columns: predicted)."""
    truth, ours, cnn, va_truth, va_ours, va_cnn = [], [], [], [], [], []
    for seq in sequences:
        if not seq.present.any():
            continue
        out = predict_track(model, seq.inputs(cfg), cfg)
        probs = softmax(seq.logits)
        labelled = seq.present & (seq.expression >= 0)
        truth.append(seq.expression[labelled])
        ours.append(out["expression"][labelled].argmax(axis=1))
        cnn.append(probs[labelled].argmax(axis=1))
        with_va = seq.present & np.isfinite(seq.va).all(axis=1)
        va_truth.append(seq.va[with_va])
        va_ours.append(out["va"][with_va])
        va_cnn.append(valence_arousal(probs[with_va]))
    result: dict[str, Any] = {}
    for who, predicted, va_predicted in (("model", ours, va_ours), ("cnn", cnn, va_cnn)):
        result[who] = _figures(
            np.concatenate(truth) if truth else np.zeros(0, np.int64),
            np.concatenate(predicted) if predicted else np.zeros(0, np.int64),
            np.concatenate(va_truth) if va_truth else np.zeros((0, 2)),
            np.concatenate(va_predicted) if va_predicted else np.zeros((0, 2)),
        )
    return result


def _figures(
    truth: np.ndarray, predicted: np.ndarray, va_truth: np.ndarray, va_predicted: np.ndarray
) -> dict[str, Any]:
    figures: dict[str, Any] = {"expression_frames": len(truth), "va_frames": len(va_truth)}
    if len(truth):
        figures["accuracy"] = round(accuracy(truth, predicted), 4)
        figures["macro_f1"] = round(macro_f1(truth, predicted), 4)
        figures["confusion"] = confusion_matrix(truth, predicted).tolist()
    if len(va_truth) > 1:
        figures["ccc_valence"] = round(ccc(va_truth[:, 0], va_predicted[:, 0]), 4)
        figures["ccc_arousal"] = round(ccc(va_truth[:, 1], va_predicted[:, 1]), 4)
    return figures
