"""Temporal expression model: a bidirectional GRU over a face track's per-frame CNN outputs.

After Kollias and Zafeiriou's CNN-RNN for Aff-Wild2 (per-frame CNN features fed to a
recurrent network that predicts expressions and valence-arousal together). Input per frame:
the 7 centred CNN logits / LOGIT_SCALE and a 'face present' flag (0 where the detector
missed the face: the logits are then zeros), then, for a model trained with them
(TemporalConfig.features), the face's 52 blendshape scores and its head pose (degrees / 90),
0 where the landmarker gave none. Outputs per frame: 7 expression probabilities, valence and
arousal in [-1, 1], and expression intensity in [0, 1].

Long tracks are processed in overlapping windows: each frame's output comes from the window
in which it lies furthest from the edges, so memory is bounded by the window length.
"""

from __future__ import annotations

import functools
import json
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .face_landmarker import BLENDSHAPE_COLUMNS, POSE_COLUMNS
from .tensorflow_runtime import import_tensorflow

WEIGHTS_DIR = Path(__file__).parent / "weights"
LOGIT_SCALE = 4.0  # centred mini-Xception logits mostly lie within +-8 (measured on real video)
POSE_SCALE = 90.0  # degrees
# What each optional input feature feeds the model: columns of the features table.
FEATURE_COLUMNS = {"blendshapes": BLENDSHAPE_COLUMNS, "pose": POSE_COLUMNS}


@dataclass(frozen=True)
class TemporalConfig:
    version: str = "temporal-gru-v1"
    hidden: int = 32  # GRU units per direction
    window: int = 64  # frames per window (12.8 s at 5 fps)
    hop: int = 32  # windows overlap by window - hop frames
    rate_hz: float = 5.0  # the analysis rate the model was trained for
    inputs: int = 8  # 7 logits + present flag, + the features' columns below
    features: tuple[str, ...] = ("cnn",)  # and "blendshapes", "pose" (FEATURE_COLUMNS)

    def __post_init__(self) -> None:
        unknown = set(self.features) - {"cnn", *FEATURE_COLUMNS}
        if "cnn" not in self.features or unknown:
            raise ValueError(
                f"features must include cnn, and be among cnn, "
                f"{', '.join(FEATURE_COLUMNS)}: {list(self.features)}"
            )
        object.__setattr__(self, "features", tuple(self.features))  # from JSON: a list
        object.__setattr__(self, "inputs", 8 + len(self.extra_columns))

    @property
    def extra_columns(self) -> list[str]:
        """The features-table columns fed to the model after the CNN's, in order."""
        return [c for name in self.features if name != "cnn" for c in FEATURE_COLUMNS[name]]


def build_temporal_model(cfg: TemporalConfig) -> Any:
    """Keras model: frames (B, T, cfg.inputs) -> a dict of per-frame outputs.

    expression (B, T, 7) probabilities, va (B, T, 2) in [-1, 1], intensity (B, T, 1) in [0, 1].
    """
    keras = import_tensorflow().keras
    frames = keras.Input((None, cfg.inputs), name="frames")
    x = keras.layers.Bidirectional(keras.layers.GRU(cfg.hidden, return_sequences=True))(frames)
    x = keras.layers.Dense(cfg.hidden, activation="relu")(x)
    outputs = {
        "expression": keras.layers.Dense(7, activation="softmax", name="expression")(x),
        "va": keras.layers.Dense(2, activation="tanh", name="va")(x),
        "intensity": keras.layers.Dense(1, activation="sigmoid", name="intensity")(x),
    }
    return keras.Model(frames, outputs, name=cfg.version.replace("-", "_"))


def model_inputs(
    logits: np.ndarray, present: np.ndarray, extra: np.ndarray | None = None
) -> np.ndarray:
    """float32 (T, 8 + k) model input from CNN logits (T, 7), the face-present flags (T,) and
    the extra features (T, k) of extra_inputs (absent frames and NaN: 0)."""
    centred = logits - logits.mean(axis=1, keepdims=True)
    extra = np.zeros((len(logits), 0)) if extra is None else np.nan_to_num(extra, nan=0.0)
    x = np.concatenate([centred / LOGIT_SCALE, present[:, None], extra], axis=1)
    x[~present.astype(bool), :7] = 0.0
    x[~present.astype(bool), 8:] = 0.0
    return x.astype(np.float32)


def extra_inputs(rows: Any, cfg: TemporalConfig) -> np.ndarray:
    """float64 (N, k): the cfg's extra feature columns of features-table rows (a DataFrame;
    missing columns and nulls: NaN), pose scaled to about [-1, 1]."""
    columns = cfg.extra_columns
    values = rows.reindex(columns=columns).to_numpy(np.float64)
    scale = np.array([POSE_SCALE if c in POSE_COLUMNS else 1.0 for c in columns])
    return values / scale if len(columns) else values


def window_starts(frames: int, cfg: TemporalConfig) -> list[int]:
    """Start frames of the overlapping windows that cover `frames` frames."""
    if frames <= cfg.window:
        return [0]
    starts = list(range(0, frames - cfg.window, cfg.hop))
    return starts + [frames - cfg.window]


def predict_track(model: Any, x: np.ndarray, cfg: TemporalConfig) -> dict[str, np.ndarray]:
    """Per-frame outputs for one track's inputs x float32 (T, 8), window by window.

    Returns expression (T, 7), va (T, 2), intensity (T,). Each frame takes the output of the
    window whose centre is nearest to it.
    """
    frames = len(x)
    starts = window_starts(frames, cfg)
    length = min(frames, cfg.window)
    batch = np.stack([x[s : s + length] for s in starts])
    out = model.predict_on_batch(batch)
    centres = np.array(starts) + (length - 1) / 2
    best = np.abs(np.arange(frames)[:, None] - centres[None, :]).argmin(axis=1)
    offset = np.arange(frames) - np.array(starts)[best]
    pick = {name: np.asarray(out[name])[best, offset] for name in ("expression", "va", "intensity")}
    pick["intensity"] = pick["intensity"][:, 0]
    return pick


def save_temporal_model(model: Any, cfg: TemporalConfig, folder: Path) -> None:
    """Weights and config side by side, so that the folder alone rebuilds the model."""
    folder.mkdir(parents=True, exist_ok=True)
    model.save_weights(folder / "model.weights.h5")
    (folder / "config.json").write_text(json.dumps(asdict(cfg), indent=2) + "\n")


def load_temporal_model(version: str) -> tuple[Any, TemporalConfig]:
    """The shipped model `version` (a folder under models/weights), built once per process."""
    folder = WEIGHTS_DIR / version
    if not (folder / "config.json").exists():
        known = sorted(p.parent.name for p in WEIGHTS_DIR.glob("*/config.json"))
        raise ValueError(f"unknown temporal model {version!r}; shipped: {known}")
    return load_model_folder(folder)


@functools.cache
def load_model_folder(folder: Path) -> tuple[Any, TemporalConfig]:
    """The model saved in `folder` by save_temporal_model, built once per process."""
    cfg = TemporalConfig(**json.loads((folder / "config.json").read_text()))  # inputs derived
    model = build_temporal_model(cfg)
    model.load_weights(folder / "model.weights.h5")
    return model, cfg
