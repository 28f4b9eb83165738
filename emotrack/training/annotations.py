"""Labelled video in Aff-Wild2's layout: reading the labels, aligning them to the analysed
frames, and balancing them by downsampling. Pure functions over files and arrays.

    ANN/EXPR_Set/{Train_Set,Validation_Set}/<name>.txt   Neutral,Anger,...,Other; a class
                                                         index per native frame, -1: none
    ANN/VA_Set/{Train_Set,Validation_Set}/<name>.txt     valence,arousal; a pair per native
                                                         frame, -5: none
    VIDEOS/<video>.<ext>                                 <name> is <video>, or <video>_left /
                                                         <video>_right: the face on that side

The ABAW challenges' folder names (EXPR_Classification_Challenge, EXPR_Recognition_Challenge,
VA_Estimation_Challenge) are read too. Either set may be missing.

Aff-Wild2's `Other` is not one of our seven expressions: its frames count as unannotated for
the expression head (their valence and arousal, when given, are still used).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from emotrack.video import VIDEO_SUFFIXES
from emotrack.vocabulary import EMOTIONS

EXPR_FOLDERS = ("EXPR_Set", "EXPR_Classification_Challenge", "EXPR_Recognition_Challenge")
VA_FOLDERS = ("VA_Set", "VA_Estimation_Challenge")
SPLITS = {"Train_Set": "train", "Validation_Set": "validation"}
AFFWILD_CLASSES = ("Neutral", "Anger", "Disgust", "Fear", "Happiness", "Sadness", "Surprise")
_OURS = ("neutral", "angry", "disgust", "fear", "happy", "sad", "surprise")
# Aff-Wild2 class index -> index in EMOTIONS; Other (7) and -1 -> -1 (unannotated).
TO_OURS = np.array([EMOTIONS.index(e) for e in _OURS] + [-1, -1])
UNLABELLED = -1
VA_UNLABELLED = -5.0


@dataclass(frozen=True)
class LabelledVideo:
    """One annotation name: a video, or one face of a two-person video.

    expression: int per native frame, an index in EMOTIONS or -1 (None: no EXPR file).
    va: float (N, 2) per native frame, NaN where unannotated (None: no VA file).
    """

    name: str
    video: str
    side: str | None
    split: str
    expression: np.ndarray | None
    va: np.ndarray | None


def read_annotations(root: Path) -> list[LabelledVideo]:
    """Every annotation name under `root` (both sets merged), sorted by split and name."""
    expr = _files(root, EXPR_FOLDERS)
    va = _files(root, VA_FOLDERS)
    if not expr and not va:
        folders = ", ".join(EXPR_FOLDERS + VA_FOLDERS)
        raise FileNotFoundError(f"no annotation files under {root} (looked for {folders})")
    labelled = []
    for split, name in sorted(set(expr) | set(va)):
        video, side = split_side(name)
        labelled.append(
            LabelledVideo(
                name=name,
                video=video,
                side=side,
                split=split,
                expression=read_expression(expr[split, name]) if (split, name) in expr else None,
                va=read_va(va[split, name]) if (split, name) in va else None,
            )
        )
    return labelled


def _files(root: Path, folders: tuple[str, ...]) -> dict[tuple[str, str], Path]:
    found = {}
    for folder in folders:
        for split_folder, split in SPLITS.items():
            for path in sorted((root / folder / split_folder).glob("*.txt")):
                found[split, path.stem] = path
    return found


def split_side(name: str) -> tuple[str, str | None]:
    """("video12", "left") for "video12_left"; (name, None) without a side."""
    for side in ("left", "right"):
        if name.endswith(f"_{side}"):
            return name[: -len(side) - 1], side
    return name, None


def read_expression(path: Path) -> np.ndarray:
    """Class per native frame, as indexes in EMOTIONS (-1: unannotated or Other)."""
    lines = _lines(path)
    header = [c.strip() for c in lines[0].split(",")]
    if header[:7] != list(AFFWILD_CLASSES):
        raise ValueError(f"{path}: header {lines[0]!r} is not Aff-Wild2's expression header")
    raw = np.array([int(v) for v in lines[1:]], np.int64)
    if raw.size and (raw.min() < -1 or raw.max() > 7):
        raise ValueError(f"{path}: class indexes must lie in -1..7")
    return TO_OURS[np.where(raw < 0, 8, raw)]


def read_va(path: Path) -> np.ndarray:
    """(N, 2) valence and arousal per native frame, NaN where unannotated (-5)."""
    lines = _lines(path)
    if lines[0].replace(" ", "").lower() != "valence,arousal":
        raise ValueError(f"{path}: header {lines[0]!r} is not 'valence,arousal'")
    values = np.array([[float(v) for v in line.split(",")] for line in lines[1:]], np.float64)
    values = values.reshape(-1, 2)
    values[(values <= VA_UNLABELLED) | ~np.isfinite(values)] = np.nan
    return values


def _lines(path: Path) -> list[str]:
    lines = [line.strip() for line in path.read_text().splitlines() if line.strip()]
    if not lines:
        raise ValueError(f"{path} is empty")
    return lines


def find_video(videos: Path, stem: str) -> Path | None:
    """VIDEOS/<stem>.<ext> for a video suffix, if there is one."""
    matches = [p for p in sorted(videos.glob(f"{stem}.*")) if p.suffix.lower() in VIDEO_SUFFIXES]
    return matches[0] if matches else None


def annotated_face(features: pd.DataFrame, side: str | None) -> pd.DataFrame:
    """One face per analysed frame: the one on `side` (smallest or largest box centre x), or
    the largest face when the video names no side. Sorted by frame_index."""
    if features.empty:
        return features
    key = features["bbox_x"] + features["bbox_w"] / 2
    if side is None:
        key = -(features["bbox_w"] * features["bbox_h"])
    elif side == "right":
        key = -key
    order = features.assign(_key=key).sort_values(["frame_index", "_key"], kind="stable")
    picked = order.drop_duplicates("frame_index", keep="first").drop(columns="_key")
    return picked.reset_index(drop=True)


def labels_at(
    labelled: LabelledVideo, timestamps_s: np.ndarray, native_fps: float
) -> tuple[np.ndarray, np.ndarray]:
    """The labels of the native frames shown at `timestamps_s`: expression (T,) with -1 where
    unannotated, and va (T, 2) with NaN where unannotated. A timestamp t is native frame
    round(t * native_fps); frames past the end of a file are unannotated."""
    frames = np.rint(np.asarray(timestamps_s) * native_fps).astype(np.int64)
    expression = np.full(len(frames), UNLABELLED, np.int64)
    va = np.full((len(frames), 2), np.nan)
    if labelled.expression is not None:
        inside = (frames >= 0) & (frames < len(labelled.expression))
        expression[inside] = labelled.expression[frames[inside]]
    if labelled.va is not None:
        inside = (frames >= 0) & (frames < len(labelled.va))
        va[inside] = labelled.va[frames[inside]]
    return expression, va


def expression_keep(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Per-class downsampling: each labelled frame is kept with probability
    (frames of the rarest class present) / (frames of its class); unlabelled ones never."""
    labelled = labels >= 0
    if not labelled.any():
        return labelled
    counts = np.bincount(labels[labelled], minlength=len(EMOTIONS)).astype(np.float64)
    rarest = counts[counts > 0].min()
    keep_p = np.divide(rarest, counts, out=np.zeros_like(counts), where=counts > 0)
    p = np.where(labelled, keep_p[np.clip(labels, 0, None)], 0.0)
    return rng.random(len(labels)) < p


def va_keep(va: np.ndarray, rng: np.random.Generator, bins: int = 40) -> np.ndarray:
    """The first paper's valence-arousal balancing: on a bins x bins histogram over [-1, 1]^2,
    keep a frame with probability 1 - density / ((mean + max) / 2), where density is its
    bin's count and mean, max are over the occupied bins. Unlabelled frames never; a
    histogram with a single occupied bin keeps all its frames."""
    labelled = np.isfinite(va).all(axis=1)
    if not labelled.any():
        return labelled
    cells = np.clip(((va[labelled] + 1) / 2 * bins).astype(np.int64), 0, bins - 1)
    flat = cells[:, 0] * bins + cells[:, 1]
    counts = np.bincount(flat, minlength=bins * bins).astype(np.float64)
    occupied = counts[counts > 0]
    if len(occupied) == 1:
        return labelled
    p = np.clip(1 - counts[flat] / ((occupied.mean() + occupied.max()) / 2), 0, 1)
    keep = np.zeros(len(va), bool)
    keep[labelled] = rng.random(len(flat)) < p
    return keep
