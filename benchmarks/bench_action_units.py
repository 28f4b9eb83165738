"""What action units and the AU-evidence default cost, against the analysis they come with.

    make bench      (or: .venv/bin/python benchmarks/bench_action_units.py [--seconds 120])

One run, on the talking head looped to --seconds:
- the analysis of the video (decode, faces, geometry, CNN: emotrack.analysis.extract_features,
  which now also fills the AU columns), once;
- each added step on its features, the median of --repeats: the AU columns (computed twice:
  in extract_features, and again from the blendshapes when tracks are scored), the
  `reliable` column, the default model (evidence_scores, au-evidence-v2) less the model it
  replaced (smoothed_scores), each face's shape (the mesh turned to the camera and its five
  distances: models.face_landmarker.frontal and face_shape, which the landmarker runs on
  every face), and each face against its resting face (emotrack.scoring.against_rest: the
  baselines of the video's tracks, the relative and the geometric AUs; computed once for
  the model and the tracks table), on the talking head and on the man of single_face.mp4
  looped to the same length, who gets one;
- the Parquet writes of `features` and `tracks` with and without the new columns (median);
- with --people, the nightly scores a video once more with its people's resting faces: that
  scoring (evidence_scores and score_frames), apart.
The ratio is (analysis + added) / analysis, all measured in this run.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_throughput import ROOT, looped  # noqa: E402
from emotrack.models.face_landmarker import SHAPE_COLUMNS, face_shape, frontal  # noqa: E402

from emotrack.action_units import AU_COLUMNS, action_units  # noqa: E402
from emotrack.analysis import extract_features, load_models  # noqa: E402
from emotrack.assets import fetch_asset  # noqa: E402
from emotrack.baselines import GEOMETRIC_COLUMNS, RELATIVE_COLUMNS, track_baselines  # noqa: E402
from emotrack.evidence import reliable  # noqa: E402
from emotrack.scoring import (  # noqa: E402
    against_rest,
    evidence_scores,
    score_frames,
    smoothed_scores,
    with_aus,
)
from emotrack.settings import Settings  # noqa: E402
from emotrack.video import VideoSource  # noqa: E402


def median_s(step: Callable[[], object], repeats: int) -> float:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        step()
        times.append(time.perf_counter() - started)
    return statistics.median(times)


def write_s(tables: list[pa.Table], folder: Path, repeats: int) -> tuple[float, int]:
    """Median time to write `tables` as Parquet (zstd, as the lake's), and their bytes."""

    def write() -> None:
        for i, table in enumerate(tables):
            pq.write_table(table, folder / f"{i}.parquet", compression="zstd")

    seconds = median_s(write, repeats)
    return seconds, sum((folder / f"{i}.parquet").stat().st_size for i in range(len(tables)))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=120.0, help="video length")
    parser.add_argument("--repeats", type=int, default=7)
    args = parser.parse_args()
    work = ROOT / "build" / "bench-videos"
    work.mkdir(parents=True, exist_ok=True)
    settings = Settings()
    sample = fetch_asset("WolfgangLanger_Pexels.mp4", settings.cache_dir)
    video = looped(sample, args.seconds, work / f"talking-head-{args.seconds:.0f}s.mp4")

    models = load_models(settings)
    started = time.perf_counter()
    features = extract_features(VideoSource.from_path(video), *models, settings).table
    analysis = time.perf_counter() - started
    rows = len(features)

    man = looped(
        fetch_asset("single_face.mp4", settings.cache_dir),
        args.seconds,
        work / f"single-face-{args.seconds:.0f}s.mp4",
    )
    started = time.perf_counter()
    his = extract_features(VideoSource.from_path(man), *models, settings).table
    his_analysis = time.perf_counter() - started

    assert models.landmarker is not None
    canonical, weights = models.landmarker.canonical, models.landmarker.weights
    meshes = [  # the packed landmarks: the fit is the same at any scale and place
        np.asarray(points, np.float64).reshape(-1, 3)
        for points in features["landmarks_i16"].dropna()
    ]

    def shapes() -> None:
        for points in meshes:
            face_shape(frontal(points, canonical, weights))

    def scored_again(rows: pd.DataFrame) -> None:
        rest = against_rest(rows)
        score_frames(rows, evidence_scores(rows, rest=rest), rest)

    his_baselines = len(track_baselines(with_aus(his)))
    rest = against_rest(features)
    steps = {
        "AU columns (x2)": 2 * median_s(lambda: action_units(features), args.repeats),
        "reliable": median_s(lambda: reliable(features), args.repeats),
        "shape of each face": median_s(shapes, args.repeats),
        "resting faces": median_s(lambda: against_rest(features), args.repeats),
        "au-evidence-v2": median_s(lambda: evidence_scores(features, rest=rest), args.repeats),
        "less cnn-smoothed-1s-v1": -median_s(lambda: smoothed_scores(features), args.repeats),
    }
    his_s = median_s(lambda: against_rest(his), args.repeats)
    again_s = median_s(lambda: scored_again(features), args.repeats)
    his_again_s = median_s(lambda: scored_again(his), args.repeats)
    tracks = score_frames(features, evidence_scores(features, rest=rest), rest)
    new = [*AU_COLUMNS, "reliable", *SHAPE_COLUMNS, *RELATIVE_COLUMNS, *GEOMETRIC_COLUMNS]
    with_new = [pa.Table.from_pandas(t, preserve_index=False) for t in (features, tracks)]
    without = [t.drop_columns([c for c in new if c in t.column_names]) for t in with_new]
    with tempfile.TemporaryDirectory() as tmp:
        write_with, bytes_with = write_s(with_new, Path(tmp), args.repeats)
        write_without, bytes_without = write_s(without, Path(tmp), args.repeats)
    steps["Parquet writes, added"] = write_with - write_without
    added = sum(steps.values())

    print(f"{args.seconds:.0f}-s talking head: {rows} face observations")
    print(f"analysis (extract_features): {analysis:.2f} s")
    for name, seconds in steps.items():
        print(f"  {name:26} {seconds * 1000:8.1f} ms  {seconds / analysis:7.2%}")
    print(f"added in all: {added * 1000:.1f} ms; (analysis + added) / analysis = "
          f"{(analysis + added) / analysis:.3f}x (target at most 1.05x)")  # fmt: skip
    print(f"the man looped to {args.seconds:.0f} s ({len(his)} face observations, "
          f"{his_baselines} baseline(s)): analysis {his_analysis:.2f} s, resting faces "
          f"{his_s * 1000:.1f} ms ({his_s / his_analysis:.2%})")  # fmt: skip
    print(f"with --people, each video scored again with its people's resting faces: "
          f"talking head {again_s * 1000:.1f} ms ({again_s / analysis:.2%}; with everything "
          f"above {(analysis + added + again_s) / analysis:.3f}x), the man "
          f"{his_again_s * 1000:.1f} ms ({his_again_s / his_analysis:.2%})")  # fmt: skip
    print(f"bytes per face-frame, features + tracks Parquet: {bytes_without / rows:.0f} -> "
          f"{bytes_with / rows:.0f} ({bytes_with / bytes_without:.2f}x)")  # fmt: skip


if __name__ == "__main__":
    main()
