"""Aligned crops against the detector's boxes: where the template comes from, and what the
CNN makes of each on the real-face set and the talking head.

    .venv/bin/python benchmarks/bench_crops.py      (part of make bench)

1. The template of faces.aligned_crop: on the real-face set (emotrack/training/real_faces.py)
   and the talking head, the mean place of the eyes' and the mouth's centres (from the landmarks) in
   crop_face's crops, as fractions of the crop. Printed next to faces.ALIGNED_TEMPLATE.
2. `emotrack evaluate`'s checks (emotrack/training/no_harm.py) with the box crops
   (EMOTRACK_ALIGNED_CROPS=0) and with the aligned crops, side by side, plus the CNN's own
   macro-F1 and per-class recall on the real faces with each.
Writes build/bench-crops.json.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from emotrack.assets import fetch_asset  # noqa: E402
from emotrack.faces import ALIGNED_TEMPLATE, Face, crop_points, unpack_landmarks  # noqa: E402
from emotrack.inference import DEFAULT_MODEL  # noqa: E402
from emotrack.scoring import logits_of  # noqa: E402
from emotrack.settings import Settings  # noqa: E402
from emotrack.training.annotations import annotated_face, labels_at, read_annotations  # noqa: E402
from emotrack.training.metrics import macro_f1  # noqa: E402
from emotrack.training.no_harm import TALKING_HEAD, evaluate_versions, table  # noqa: E402
from emotrack.training.real_faces import FPS, build_real_faces  # noqa: E402
from emotrack.vocabulary import EMOTIONS  # noqa: E402


def features(video: Path, aligned: bool) -> pd.DataFrame:
    from emotrack.analysis import extract_features, load_models
    from emotrack.video import VideoSource

    settings = Settings(aligned_crops=aligned)
    models = load_models(settings)
    return extract_features(VideoSource.from_path(video), *models, settings).table


def template(rows: pd.DataFrame, margin: float = 0.1) -> np.ndarray:
    """Mean (3, 2) place of the eyes' and mouth's centres in crop_face's crops (fractions)."""
    places = []
    for row in rows.dropna(subset=["yaw_deg"]).itertuples():
        if abs(row.yaw_deg) > 15 or abs(row.roll_deg) > 10:
            continue  # upright, frontal faces only: the place the CNN was used to
        box = Face(row.bbox_x, row.bbox_y, row.bbox_w, row.bbox_h, 1.0)
        points = crop_points(unpack_landmarks(row.landmarks_i16, box))
        x0, y0 = row.bbox_x - margin * row.bbox_w, row.bbox_y - margin * row.bbox_h
        size = np.array([row.bbox_w, row.bbox_h]) * (1 + 2 * margin)
        places.append((points - [x0, y0]) / size)
    return np.mean(places, axis=0)


def cnn_on_real_faces(real: pd.DataFrame, truth: np.ndarray) -> dict[str, float]:
    labels = logits_of(real).argmax(axis=1)
    recall = {
        e: float((labels[truth == i] == i).mean())
        for i, e in enumerate(EMOTIONS)
        if (truth == i).any()
    }
    return {"macro_f1": macro_f1(truth, labels), **{f"recall_{e}": r for e, r in recall.items()}}


def main() -> None:
    cache = Settings().cache_dir
    out: dict[str, object] = {}
    with tempfile.TemporaryDirectory() as tmp:
        video = build_real_faces(Path(tmp), cache)
        (labelled,) = read_annotations(Path(tmp) / "annotations")
        boxes = features(video, aligned=False)
        talk = features(fetch_asset(TALKING_HEAD, cache), aligned=False)
        measured = template(pd.concat([boxes, talk], ignore_index=True))
        print("template (eye, eye, mouth centres; fractions of the crop):")
        print(f"  measured   {np.round(measured, 3).tolist()}")
        print(f"  in use     {np.round(ALIGNED_TEMPLATE, 3).tolist()}")
        out["template_measured"] = measured.tolist()
        for aligned in (False, True):
            real = annotated_face(features(video, aligned) if aligned else boxes, None)
            truth, _ = labels_at(labelled, real["timestamp_s"].to_numpy(), FPS)
            out[f"cnn_{'aligned' if aligned else 'boxes'}"] = cnn_on_real_faces(real, truth)
    for aligned in (False, True):
        name = "aligned" if aligned else "boxes"
        os.environ["EMOTRACK_ALIGNED_CROPS"] = "1" if aligned else "0"
        results = evaluate_versions([DEFAULT_MODEL], cache)
        out[f"no_harm_{name}"] = results
        print(f"\n{name} crops: the CNN on the real faces {out[f'cnn_{name}']}")
        print(table(results))
    path = ROOT / "build" / "bench-crops.json"
    path.parent.mkdir(exist_ok=True)
    path.write_text(json.dumps(out, indent=2, default=str))
    print(f"\nwritten to {path}")


if __name__ == "__main__":
    main()
