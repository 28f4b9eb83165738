"""The lake's model registry: temporal models trained on a lake's labelled video.

    LAKE/_models/<name>/config.json          rebuilds the model (TemporalConfig)
    LAKE/_models/<name>/model.weights.h5
    LAKE/_models/<name>/metrics.json         the model's and the CNN's validation figures
    LAKE/_models/<name>/confusion_<who>.csv  rows: true class, columns: predicted (counts)
    LAKE/_models/<name>/confusion_<who>.png
    LAKE/_models/<name>/MODEL_CARD.md        data, split, balancing, procedure, metrics

An entry is written in a staging folder and renamed into place whole, so a reader never sees
half of one. `model_folder` finds a version in the registry or among the shipped models.
"""

from __future__ import annotations

import json
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from emotrack.errors import disk_full
from emotrack.models.temporal_gru import WEIGHTS_DIR
from emotrack.storage import is_url
from emotrack.vocabulary import EMOTIONS

REGISTRY = "_models"


def registry_dir(lake_root: Path | str) -> Path:
    return Path(lake_root) / REGISTRY


def model_folder(version: str, lake_root: Path | str | None = None) -> Path | None:
    """The folder holding model `version`: shipped, or in the lake's registry (or None).
    Only a lake on local disk has a registry (`emotrack train` needs a local lake)."""
    local = [registry_dir(lake_root)] if lake_root and not is_url(lake_root) else []
    for base in [WEIGHTS_DIR, *local]:
        if (base / version / "config.json").is_file():
            return base / version
    return None


def registered(lake_root: Path | str) -> list[dict[str, Any]]:
    """Name and key figures of each model in the lake's registry, sorted by name."""
    entries: list[dict[str, Any]] = []
    if is_url(lake_root):
        return entries
    for config in sorted(registry_dir(lake_root).glob("*/config.json")):
        metrics = json.loads((config.parent / "metrics.json").read_text())
        entries.append({"name": config.parent.name, **metrics})
    return entries


def register(
    lake_root: Path, name: str, write: Callable[[Path], None], metrics: dict[str, Any]
) -> Path:
    """Add model `name` to the lake's registry: write(folder) saves the weights and config,
    then the metrics, confusion matrices and card are added, and the folder moved into place.
    Raises FileExistsError if the name is taken (shipped or registered)."""
    if model_folder(name, lake_root) is not None:
        raise FileExistsError(f"a model named {name!r} exists already: choose another --name")
    final = registry_dir(lake_root) / name
    staging = registry_dir(lake_root) / f".{name}.{uuid.uuid4().hex}.tmp"
    staging.mkdir(parents=True)
    try:
        write(staging)
        for who, figures in metrics["validation"].items():
            if "confusion" in figures:
                matrix = np.array(figures["confusion"])
                frame = pd.DataFrame(matrix, index=list(EMOTIONS), columns=list(EMOTIONS))
                frame.to_csv(staging / f"confusion_{who}.csv", index_label="true \\ predicted")
                confusion_png(matrix, f"{name}: {who}", staging / f"confusion_{who}.png")
        (staging / "metrics.json").write_text(json.dumps(metrics, indent=2) + "\n")
        (staging / "MODEL_CARD.md").write_text(model_card(name, metrics))
        os.rename(staging, final)  # fails if another run took the name meanwhile
    except OSError as error:
        raise disk_full(error, str(registry_dir(lake_root))) or error from error
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return final


def import_model(folder: Path, lake_root: Path) -> str:
    """Copy a registered model's folder (from another lake's registry) into this lake's;
    returns its name. Raises FileExistsError if the name is taken here, FileNotFoundError
    if `folder` holds no model."""
    config = folder / "config.json"
    if not config.is_file():
        raise FileNotFoundError(f"{folder} holds no model (no config.json)")
    name = json.loads(config.read_text())["version"]
    if model_folder(name, lake_root) is not None:
        raise FileExistsError(f"a model named {name!r} exists already in {lake_root}")
    staging = registry_dir(lake_root) / f".{name}.{uuid.uuid4().hex}.tmp"
    try:
        shutil.copytree(folder, staging)
        os.rename(staging, registry_dir(lake_root) / name)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return str(name)


def confusion_png(matrix: np.ndarray, title: str, path: Path, cell: int = 64) -> None:
    """A confusion matrix as a picture: row-normalised shades, counts in the cells."""
    import cv2

    margin, n = 110, len(matrix)
    size = margin + n * cell + 10
    image = np.full((size + 20, size, 3), 255, np.uint8)
    rows = matrix.sum(axis=1, keepdims=True)
    share = np.divide(matrix, rows, out=np.zeros(matrix.shape), where=rows > 0)
    font = cv2.FONT_HERSHEY_SIMPLEX
    cv2.putText(image, title, (10, 20), font, 0.5, (0, 0, 0), 1, cv2.LINE_AA)
    for i in range(n):
        y = margin + i * cell
        cv2.putText(image, EMOTIONS[i], (5, y + cell // 2 + 5), font, 0.45, (0, 0, 0), 1)
        x = margin + i * cell
        cv2.putText(image, EMOTIONS[i][:5], (x + 4, margin - 10), font, 0.45, (0, 0, 0), 1)
        for j in range(n):
            shade = int(255 * (1 - share[i, j]))
            x0, y0 = margin + j * cell, margin + i * cell
            cv2.rectangle(image, (x0, y0), (x0 + cell, y0 + cell), (255, shade, shade), -1)
            cv2.rectangle(image, (x0, y0), (x0 + cell, y0 + cell), (160, 160, 160), 1)
            colour = (255, 255, 255) if share[i, j] > 0.6 else (0, 0, 0)
            text = str(int(matrix[i, j]))
            cv2.putText(image, text, (x0 + 6, y0 + cell // 2 + 5), font, 0.45, colour, 1)
    cv2.putText(image, "rows: true, columns: predicted", (10, size + 10), font, 0.45, (0, 0, 0))
    if not cv2.imwrite(str(path), image):
        raise OSError(f"could not write {path}")


def model_card(name: str, metrics: dict[str, Any]) -> str:
    """The card of a registered model, from its metrics.json content."""
    data, training = metrics["data"], metrics["training"]
    features = metrics["config"].get("features", ["cnn"])
    lines = [
        f"# Model card: {name}",
        "",
        "A bidirectional GRU over a face track's per-frame CNN logits (the architecture of",
        "`temporal-gru-v1`), trained by `emotrack train` on labelled video in Aff-Wild2's layout.",
        "",
        "## Data",
        f"- Annotations: `{data['annotations']}`; videos: `{data['videos']}`.",
        f"- Split by video, as the annotation folders say: {data['train_names']} annotated faces "
        f"for training, {data['validation_names']} for validation. Frames of one video are never "
        "on both sides.",
        f"- Features: {data['analysis_fps']} analysed frames per second, face detector "
        f"`{data['detector']}`, FER2013 mini-Xception logits"
        + (
            ", and per frame the face's "
            + " and ".join(f for f in features if f != "cnn")
            + " (MediaPipe's face landmarker; 0 where it gave none)"
            if len(features) > 1
            else ""
        )
        + "; the annotated face of each frame is the one on the named side (`_left`/`_right`), "
        "else the largest.",
        "- Valence and arousal are learnt from the annotations' valence and arousal, from the "
        "same inputs.",
        "- Aff-Wild2's `Other` counts as unannotated for the expression head.",
        "",
        "## Balancing by downsampling",
        "- Expressions: each class kept down to the rarest class present (frames per class "
        f"before {training['expression_frames_before']}, kept "
        f"{training['expression_frames_kept']}, in the order {', '.join(EMOTIONS)}).",
        "- Valence-arousal: a frame is kept with probability 1 - density / ((mean + max) / 2) "
        f"on a 40x40 histogram: {training['va_frames_kept']} of {training['va_frames_before']} "
        "annotated frames kept.",
        "- Dropped frames weigh 0 in that head's loss; the GRU still sees them as context.",
        "",
        "## Procedure",
        f"- {training['windows']} windows of {metrics['config']['window']} slots from "
        f"{training['sequences']} sequences; options {training['options']}; final loss "
        f"{training['final_loss']}.",
        "- Heads trained together: expressions (cross-entropy), valence and arousal (MSE),",
        "  intensity = length of the valence-arousal vector (MSE).",
        "",
        "## Validation (frames with a face found and a label)",
        "",
        "| | accuracy | macro-F1 | CCC valence | CCC arousal | frames |",
        "|---|---|---|---|---|---|",
    ]
    rows = [("model", f"{name} ({' + '.join(features)})")]
    if "cnn_features_alone" in metrics["validation"]:
        rows.append(("cnn_features_alone", "the same training, CNN features alone"))
    for who, label in [*rows, ("cnn", "per-frame CNN")]:
        f = metrics["validation"][who]
        lines.append(
            f"| {label} | {f.get('accuracy', '-')} | {f.get('macro_f1', '-')} | "
            f"{f.get('ccc_valence', '-')} | {f.get('ccc_arousal', '-')} | "
            f"{f['expression_frames']} |"
        )
    lines += ["", "Confusion matrices: `confusion_model.csv/png`, `confusion_cnn.csv/png`.", ""]
    return "\n".join(lines)
