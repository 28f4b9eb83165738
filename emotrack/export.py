"""CSV exports of a lake's per-frame rows, one file per video and model version: OpenFace 2's
layout, which psychology and UX teams' scripts and py-feat read, or our own columns.

The OpenFace layout keeps OpenFace 2's names for what we measure and leaves out what we do
not (gaze, the 68 landmarks, the pose's translation, the shape parameters):
- `frame`: the frame's number in the video, from 1, at the video's own frame rate;
- `face_id`: the face's track in the video (`track_id`);
- `timestamp`: seconds from the start (`timestamp_s`);
- `confidence`: the landmarker's face presence (`landmark_score`; the detector's
  `face_score` where the landmarks were not kept);
- `success`: 1 where the face was measured (its action units are there), else 0;
- `pose_Rx`, `pose_Ry`, `pose_Rz`: `pitch_deg`, `yaw_deg`, `roll_deg` in radians, with our
  signs (as the image shows the head);
- `AUxx_r`: the AU's activity in [0, 1] times 5, OpenFace's 0-5 intensity scale: against
  the face's resting face where its track has one (`rel_au*`, emotrack.baselines), as
  OpenFace's person-calibrated models do; the AU itself elsewhere;
- `AUxx_c`: 1 where `AUxx_r` >= 1 (FACS's trace level, A), else 0.
As in OpenFace's own files, a row whose face was not measured reads 0 there, and fields are
separated by ", " (so names after the first carry a leading space).
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from emotrack.action_units import AU_COLUMNS
from emotrack.lake import Lake
from emotrack.schema import columns

LAYOUTS = ("openface", "csv")
OPENFACE_SCALE = 5.0  # our [0, 1] -> OpenFace's 0-5 intensity
OPENFACE_PRESENT = 1.0  # AUxx_c: intensity at least 1 of 5, FACS's trace level (A)
OPENFACE_AUS = {column: f"AU{column[2:4]}" for column in AU_COLUMNS}  # au01_... -> AU01
OPENFACE_POSE = {"pose_Rx": "pitch_deg", "pose_Ry": "yaw_deg", "pose_Rz": "roll_deg"}


class ExportError(ValueError):
    """What was asked cannot be exported (a model or video the lake does not hold)."""


@dataclass(frozen=True)
class Exported:
    video_id: str
    source_uri: str
    path: Path
    rows: int


def openface_rows(tracks: pd.DataFrame, fps: float | None, confidence: pd.Series) -> pd.DataFrame:
    """One video's rows of `tracks` in OpenFace 2's layout (module docstring); `fps` is the
    video's own frame rate (None or NaN: unknown, and `frame` is the analysis slot, from 1);
    `confidence` is the landmarker's face presence per row (NaN where not kept)."""
    success = tracks[AU_COLUMNS].notna().all(axis=1)
    if fps and math.isfinite(fps):
        frame = np.round(tracks["timestamp_s"].to_numpy(dtype=np.float64) * fps) + 1
    else:
        frame = tracks["frame_index"].to_numpy() + 1
    out = pd.DataFrame(
        {
            "frame": frame.astype(np.int64),
            "face_id": tracks["track_id"].astype(np.int64),
            "timestamp": tracks["timestamp_s"].astype(np.float64),
            "confidence": confidence.fillna(tracks["face_score"]).astype(np.float64),
            "success": success.astype(np.int64),
        },
        index=tracks.index,
    )
    for name, column in OPENFACE_POSE.items():
        out[name] = np.radians(tracks[column].astype(np.float64)).where(success, 0.0)
    intensity = {
        f"{au}_r": (_calibrated(tracks, column) * OPENFACE_SCALE).where(success, 0.0)
        for column, au in OPENFACE_AUS.items()
    }
    present = {
        f"{name[:-2]}_c": (values >= OPENFACE_PRESENT).astype(np.int64)
        for name, values in intensity.items()
    }
    out = pd.concat([out, pd.DataFrame(intensity), pd.DataFrame(present)], axis=1)
    return out.sort_values(["frame", "face_id"], kind="stable").reset_index(drop=True)


def _calibrated(tracks: pd.DataFrame, column: str) -> pd.Series:
    """The AU against the face's resting face (rows written before `rel_*`: the AU)."""
    raw = tracks[column].astype(np.float64)
    relative = f"rel_{column}"
    return tracks[relative].astype(np.float64).fillna(raw) if relative in tracks else raw


def plain_rows(tracks: pd.DataFrame) -> pd.DataFrame:
    """One video's rows of `tracks`, our own columns, by time and track."""
    ordered = tracks.sort_values(["timestamp_s", "track_id"], kind="stable")
    return ordered[columns("tracks")].reset_index(drop=True)


def write_csv(rows: pd.DataFrame, path: Path, layout: str) -> None:
    """`rows` at `path`, never seen half-written."""
    partial = path.with_name(f".{path.name}.{os.getpid()}.partial")
    try:
        if layout == "openface":
            _write_openface(rows, partial)
        else:
            rows.to_csv(partial, index=False)
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)


def _write_openface(rows: pd.DataFrame, path: Path) -> None:
    """Fields separated by ", " as OpenFace writes them; floats with a decimal point, so
    that readers type them as OpenFace's."""
    formats = {
        name: (lambda v: str(int(v))) if rows[name].dtype.kind == "i" else _decimal
        for name in rows.columns
    }
    with path.open("w") as out:
        out.write(", ".join(rows.columns) + "\n")
        for record in rows.itertuples(index=False):
            out.write(", ".join(formats[n](v) for n, v in zip(rows.columns, record, strict=True)))
            out.write("\n")


def _decimal(value: float) -> str:
    """6 decimals at most, and always a decimal point (0.0, not 0)."""
    if not math.isfinite(value):
        return "0.0"
    text = f"{value:.6f}".rstrip("0")
    return text + "0" if text.endswith(".") else text


def export_model(lake: Lake, requested: str | None) -> str:
    """The model version to export: `requested`, else the default model where the lake holds
    it, else the first the lake holds."""
    from emotrack.inference import DEFAULT_MODEL

    with lake.connect(["summaries"]) as con:
        found = con.execute("SELECT DISTINCT model_version FROM summaries").fetchall()
    held = sorted(v for (v,) in found)
    if requested is not None:
        if requested not in held:
            raise ExportError(f"the lake holds no rows of model {requested!r}; it holds {held}")
        return requested
    if not held:
        raise ExportError(f"the lake at {lake.url} holds no analysed video")
    return DEFAULT_MODEL if DEFAULT_MODEL in held else held[0]


def export(
    lake: Lake,
    out: Path,
    layout: str,
    video_ids: Iterable[str] | None = None,
    model: str | None = None,
) -> list[Exported]:
    """One CSV per analysed video of `lake` (or of `video_ids`) in `out`, `<source's
    stem>.<video_id>.csv`, with the rows of `model` (export_model). Forgotten videos have
    no rows left to export; at `--store labels` the measures are empty (success 0)."""
    version = export_model(lake, model)
    wanted = None if video_ids is None else sorted(set(video_ids))
    query = (
        "SELECT v.video_id, v.source_uri, v.fps FROM videos v JOIN summaries s "
        "ON s.video_id = v.video_id AND s.model_version = ? WHERE v.status = 'ok'"
    )
    with lake.connect(["videos", "summaries"]) as con:
        videos = con.execute(query + " ORDER BY v.source_uri", [version]).fetchall()
    if wanted is not None:
        missing = sorted(set(wanted) - {video_id for video_id, _, _ in videos})
        if missing:
            raise ExportError(f"no analysed video {missing} with model {version!r} in the lake")
        videos = [v for v in videos if v[0] in wanted]
    out.mkdir(parents=True, exist_ok=True)
    done = []
    for video_id, source_uri, fps in videos:
        tracks = lake.read("tracks", "video_id = ? AND model_version = ?", [video_id, version])
        if layout == "openface":
            rows = openface_rows(tracks, fps, _landmark_scores(lake, video_id, tracks))
        else:
            rows = plain_rows(tracks)
        stem = Path(source_uri.rstrip("/").rsplit("/", 1)[-1]).stem
        path = out / f"{stem}.{video_id}.csv"
        write_csv(rows, path, layout)
        done.append(Exported(video_id, source_uri, path, len(rows)))
    return done


def _landmark_scores(lake: Lake, video_id: str, tracks: pd.DataFrame) -> pd.Series:
    """features' landmark_score for each row of one video's `tracks` (NaN where none)."""
    query = (
        "SELECT frame_index, track_id, landmark_score FROM features WHERE video_id = ? "
        "AND landmark_score IS NOT NULL"
    )
    with lake.connect(["features"]) as con:
        scores = con.execute(query, [video_id]).df()
    keyed = tracks[["frame_index", "track_id"]].merge(
        scores, on=["frame_index", "track_id"], how="left"
    )
    return pd.Series(keyed["landmark_score"].to_numpy(dtype=np.float64), index=tracks.index)
