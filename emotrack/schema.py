"""Every table of the lake, declared once: its columns (name, type, whether a row must have a
value, what it means), the key a commit replaces rows by, and whether it holds rows per model
version. The Delta schemas, the row builders, the replace keys, migration's column fills and
the table of columns in docs/lake.md all come from here.

A new per-face measure is one line in FACE_MEASURES: `features` stores it and `tracks` copies
it (emotrack.scoring.score_frames), older tables gain it as a nullable column, readers see
null in the rows written before it.

    python -m emotrack.schema docs/lake.md    # rewrites the site's tables of columns and AUs
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pyarrow as pa

from emotrack import action_units
from emotrack.action_units import AU_COLUMNS
from emotrack.baselines import GEOMETRIC_COLUMNS, RELATIVE_COLUMNS, REST_SHAPE_COLUMNS
from emotrack.models.expression_cnn import EMBEDDING_DIM
from emotrack.models.face_landmarker import (
    BLENDSHAPE_COLUMNS,
    LANDMARKS,
    POSE_COLUMNS,
    SHAPE_COLUMNS,
)
from emotrack.vocabulary import EMOTIONS

if TYPE_CHECKING:
    import pandas as pd

_f32, _f64, _i32, _i64, _str = pa.float32(), pa.float64(), pa.int32(), pa.int64(), pa.string()
_floats, _time, _bool = pa.list_(_f32), pa.timestamp("us", tz="UTC"), pa.bool_()
SERIES_POINTS = 48  # points of a summary's valence_series (the report's sparkline)


@dataclass(frozen=True)
class Column:
    """One column. A `required` one is in every row emotrack writes, never null; the others
    may be null, or missing from rows a writer hands over (null then). Delta itself keeps
    every column nullable, so that a column added later reads as null in older rows."""

    name: str
    type: pa.DataType
    meaning: str
    required: bool = False

    def field(self) -> pa.Field:
        return pa.field(self.name, self.type)


def _group(
    names: Iterable[str], type_: pa.DataType, meaning: str, required: bool = False
) -> list[Column]:
    return [Column(name, type_, meaning, required) for name in names]


VIDEO_ID = Column("video_id", _str, "`v` + the first 16 hex digits of the file's SHA-256", True)

# One face in one analysed frame: who and where (features and tracks).
FACE = [
    VIDEO_ID,
    Column("frame_index", _i32, "analysis slot: floor(timestamp_s * analysis_fps)", True),
    Column("timestamp_s", _f64, "the frame's presentation time, seconds from the start", True),
    Column("track_id", _i32, "the face's track in the video: 0, 1, ... by first appearance", True),
    Column("bbox_x", _f32, "face box, left edge, pixels of the upright frame", True),
    Column("bbox_y", _f32, "face box, top edge, pixels of the upright frame", True),
    Column("bbox_w", _f32, "face box width, pixels", True),
    Column("bbox_h", _f32, "face box height, pixels", True),
    Column(
        "face_score",
        _f32,
        "the detector's confidence in [0, 1] (its last detection of "
        "the face, where `detected` is false)",
        True,
    ),
    Column(
        "detected",
        _bool,
        "whether the detector saw the face in this frame; false: "
        "followed by its landmarks since the last detection (*How faces are found*)",
    ),
]
# What was measured of that face, stored in features and copied into tracks (null where the
# landmarker could not fit the face, or was off).
FACE_MEASURES = [
    *_group(POSE_COLUMNS, _f32, "head pose in degrees (*Face geometry*)"),
    *_group(BLENDSHAPE_COLUMNS, _f32, "a MediaPipe blendshape score in [0, 1]"),
    *_group(
        AU_COLUMNS,
        _f32,
        "a facial action unit's activity in [0, 1], from the blendshapes (*Action units*)",
    ),
    *_group(
        SHAPE_COLUMNS,
        _f32,
        "a distance between landmarks of the face turned to the camera, centimetres of "
        "MediaPipe's canonical face (*Geometric action units*; null: rows written before "
        "emotrack 0.6)",
    ),
]
FACE_COLUMNS = [c.name for c in FACE if c is not VIDEO_ID]  # a video's rows, before commit
MEASURE_COLUMNS = [c.name for c in FACE_MEASURES]
PROB_COLUMNS = [f"p_{e}" for e in EMOTIONS]
SHARE_COLUMNS = [f"share_{e}" for e in EMOTIONS]


@dataclass(frozen=True)
class Table:
    """A Delta table of the lake: one row per `row_is`; a commit replaces rows by `key`."""

    name: str
    row_is: str
    columns: tuple[Column, ...]
    key: str = "video_id"
    versioned: bool = False  # rows per model_version
    internal: bool = False  # emotrack's own (its folder starts with "_")

    @property
    def names(self) -> list[str]:
        return [c.name for c in self.columns]

    @property
    def arrow(self) -> pa.Schema:
        return pa.schema([c.field() for c in self.columns])

    def row(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """`values` as a row of this table, in its column order, a column not given None;
        raises ValueError for a column it does not have. (Required columns are checked when
        rows are committed: emotrack.lake.to_arrow.)"""
        unknown = set(values) - set(self.names)
        if unknown:
            raise ValueError(f"{self.name} has no column(s) {sorted(unknown)}")
        return {name: values.get(name) for name in self.names}


TABLES: dict[str, Table] = {
    t.name: t
    for t in [
        Table("videos", "input file (by content)", (
            VIDEO_ID,
            Column("source_uri", _str, "where the file was found (a path or a URL)", True),
            Column("size_bytes", _i64, "the file's size"),
            Column("duration_s", _f64, "the video's duration in seconds"),
            Column("fps", _f64, "the video stream's own frame rate"),
            Column("width", _i32, "frame width in pixels, upright"),
            Column("height", _i32, "frame height in pixels, upright"),
            Column("codec", _str, "the video codec's name"),
            Column("rotation", _i32, "degrees the stored frames are turned to be upright"),
            Column("analysis_fps", _f64, "frames analysed per second"),
            Column("frames_analysed", _i32, "analysis slots that held a frame"),
            Column("status", _str, "`ok` or `failed`", True),
            Column("processed_at", _time, "when it was processed (UTC)", True),
            Column("stored", _str, "what the lake keeps of its faces: `full`, `geometry` or "
                   "`labels` (`emotrack run --store`; null: full)"),
            Column("recorded_at", _time, "when the video was recorded (UTC): the container's "
                   "creation time, else the file's modification time (null: neither known)"),
            Column("recorded_from", _str, "where recorded_at comes from: `container` or "
                   "`file`"),
        )),
        Table("features", "face per analysed frame", (
            *FACE,
            Column("logits", _floats, "the CNN's 7 outputs before the softmax, EMOTIONS order",
                   True),
            Column("embedding", _floats, f"{EMBEDDING_DIM} floats: the CNN's last block, "
                   "average-pooled (null: `--store geometry`)"),
            Column("landmarks_i16", pa.list_(pa.int16()), f"{LANDMARKS * 3} int16: x, y, z of "
                   f"each of the {LANDMARKS} face-mesh points in turn, in 1/4096 of `bbox_w` "
                   "from the box's top-left corner (*Face geometry*)"),
            Column("landmarks", _floats, f"{LANDMARKS * 3} floats, pixels of the upright "
                   "frame: rows written by emotrack 0.3 (null since)"),
            Column("landmark_score", _f32, "the landmarker's face presence in [0, 1]"),
            *FACE_MEASURES,
        )),
        Table("tracks", "face per analysed frame and model version", (
            *FACE,
            Column("emotion", _str, "the most likely expression", True),
            *_group(PROB_COLUMNS, _f32, "probability of the expression (the 7 sum to 1)", True),
            Column("valence", _f32, "valence in [-1, 1]", True),
            Column("arousal", _f32, "arousal in [-1, 1]", True),
            Column("intensity", _f32, "how far from neutral, in [0, 1]", True),
            Column("model_version", _str, "the model that wrote the row", True),
            Column("reliable", _bool, "whether the face was large, frontal and well fitted "
                   "enough to trust its expression (*Which rows to trust*; null: rows "
                   "written before the column)"),
            *FACE_MEASURES,
            *_group(RELATIVE_COLUMNS, _f32, "the AU against the face's resting face "
                    "(`baselines`): (au - baseline) / (1 - baseline) in [0, 1]; the AU itself "
                    "where the track has no baseline (*Each face against itself*; null: rows "
                    "written before the column)"),
            *_group(GEOMETRIC_COLUMNS, _f32, "the AU read from the face's shape against its "
                    "resting face's, in [0, 1] (*Geometric action units*); null without a "
                    "resting face or landmarks"),
        ), versioned=True),
        Table("baselines", "face track with a resting face (*Each face against itself*)", (
            VIDEO_ID,
            Column("track_id", _i32, "the face's track", True),
            Column("source", _str, "what it was made from: `track` (this track's own "
                   "frames) or `person` (the frames of every track of `person_id`, --people)",
                   True),
            Column("person_id", _str, "the person whose resting face it is (source "
                   "`person`; null for `track`)"),
            Column("frames", _i32, "the frames with action units it was made from", True),
            Column("resting_frames", _i32, "of those, the frames at rest it was made from",
                   True),
            Column("seconds", _f64, "seconds of the face it saw (first to last frame)", True),
            *_group(AU_COLUMNS, _f32, "the AU's baseline: its highest value over the "
                    "frames at rest, capped at what resting faces show", True),
            *_group(REST_SHAPE_COLUMNS, _f32, "the shape measure's median over the frames "
                    "at rest (null: no landmarks)"),
        )),
        Table("episodes", "expression episode of a face track and model version", (
            VIDEO_ID,
            Column("track_id", _i32, "the face's track", True),
            Column("emotion", _str, "the episode's expression", True),
            Column("start_s", _f64, "start, seconds from the start of the video", True),
            Column("peak_s", _f64, "its most intense frame", True),
            Column("end_s", _f64, "end, seconds", True),
            Column("duration_s", _f64, "end_s - start_s", True),
            Column("peak_intensity", _f32, "intensity at the peak"),
            Column("mean_valence", _f32, "mean valence over its frames"),
            Column("mean_arousal", _f32, "mean arousal over its frames"),
            Column("model_version", _str, "the model that wrote the row", True),
        ), versioned=True),
        Table("summaries", "successfully processed video and model version", (
            VIDEO_ID,
            Column("frames_analysed", _i32, "analysis slots that held a frame", True),
            Column("frames_with_face", _i32, "of those, frames with a face", True),
            Column("face_observations", _i32, "faces x frames", True),
            Column("n_tracks", _i32, "face tracks", True),
            Column("reliable_observations", _i32, "of those, observations whose expression "
                   "is `reliable`: the rest of the summary counts these only"),
            Column("dominant_emotion", _str, "the most frequent expression (null: no "
                   "reliable face)"),
            *_group(SHARE_COLUMNS, _f64, "share of reliable face observations with the "
                    "expression"),
            Column("mean_valence", _f64, "mean valence of the reliable face observations"),
            Column("mean_arousal", _f64, "mean arousal of the reliable face observations"),
            Column("valence_series", _floats, "mean valence of the reliable faces in "
                   f"{SERIES_POINTS} equal stretches of the video (null where none was seen; "
                   "empty: no reliable face)"),
            Column("model_version", _str, "the model that wrote the row", True),
        ), versioned=True),
        Table("track_people", "face track of a video, with `--people`", (
            VIDEO_ID,
            Column("track_id", _i32, "the face's track", True),
            Column("person_id", _str, "the person it shows (*People*)", True),
        )),
        Table("people", "person recognised across videos, with `--people`", (
            Column("person_id", _str, "`p` + a number, kept once given; a merge keeps the "
                   "older one", True),
            Column("name", _str, "the name given with `emotrack people name` (null: none)"),
            Column("first_seen", _time, "when the earliest of their videos was recorded "
                   "(else processed), UTC", True),
            Column("last_seen", _time, "when the latest was", True),
            Column("videos", _i32, "videos they appear in", True),
            Column("tracks", _i32, "their face tracks", True),
            Column("seconds", _f64, "time on screen: their tracks' lengths added up", True),
            Column("thumbnail", _str, "their best face's thumbnail under the report folder "
                   "(null: none kept, `--store` other than full)"),
        ), key="person_id"),
        Table("failures", "input that could not be processed", (
            Column("source_uri", _str, "the file", True),
            Column("video_id", _str, "its content id, when the file could be read"),
            Column("stage", _str, "`stage`, `probe`, `decode` or `analyse`", True),
            Column("error_type", _str, "the exception's type", True),
            Column("message", _str, "what went wrong, and what to do", True),
            Column("failed_at", _time, "when (UTC)", True),
        ), key="source_uri"),
        Table("_sources", "input file the lake has seen", (
            Column("uri", _str, "the file", True),
            Column("size_bytes", _i64, "its size"),
            Column("mtime_ns", _i64, "modification time (local files)"),
            Column("inode", _i64, "inode (local files)"),
            Column("etag", _str, "ETag (objects)"),
            Column("video_id", _str, "its content id", True),
            Column("recorded_at", _time, "when (UTC)", True),
        ), key="uri", internal=True),
        Table("_identities", "face track of a video, with `--people`: who it is", (
            VIDEO_ID,
            Column("track_id", _i32, "the face's track", True),
            Column("embedding", _floats, "128 floats of unit length: the mean SFace embedding "
                   "of its best views (emotrack.identity)", True),
            Column("start_s", _f64, "its first frame, seconds", True),
            Column("end_s", _f64, "its last frame, seconds", True),
            Column("quality", _f32, "how well its best view showed the face, in [0, 1]"),
        ), internal=True),
        Table("_people_decisions", "decision a person made about people (name, merge, split), "
              "or a merge the grouping made", (
            Column("decision_id", _str, "one per command: the rows of a split share it", True),
            Column("kind", _str, "`name`, `merge`, `split` or `auto-merge`", True),
            Column("person_id", _str, "the person it is about (a merge: the one kept)", True),
            Column("other_id", _str, "a merge: the person merged into person_id"),
            Column("video_id", _str, "a track the decision holds for (merge: of person_id; "
                   "split: one moved)"),
            Column("track_id", _i32, "that track"),
            Column("other_video_id", _str, "merge: a track of other_id; split: a track left"),
            Column("other_track_id", _i32, "that track"),
            Column("value", _str, "name: the name"),
            Column("made_at", _time, "when (UTC)", True),
        ), key="decision_id", internal=True),
        Table("_forgotten_faces", "face track forgotten with its person (emotrack forget "
              "--person): where and when it was, so that no later analysis of the video "
              "brings it back; nothing biometric, no person id", (
            VIDEO_ID,
            Column("start_s", _f64, "its first frame, seconds", True),
            Column("end_s", _f64, "its last frame, seconds", True),
            *_group(["bbox_x", "bbox_y", "bbox_w", "bbox_h"], _f32,
                    "its mean box (x, y, w, h), pixels of the upright frame", True),
            Column("forgotten_at", _time, "when (UTC)", True),
        ), internal=True),
        Table("_forgotten", "video forgotten (emotrack forget): its content is never analysed "
              "again", (
            VIDEO_ID,
            Column("reason", _str, "`request` (by id or source) or `retention` (--older-than)",
                   True),
            Column("forgotten_at", _time, "when (UTC)", True),
        ), internal=True),
    ]
}  # fmt: skip
SOURCES = "_sources"
FORGOTTEN = "_forgotten"
IDENTITIES = "_identities"
FORGOTTEN_FACES = "_forgotten_faces"
DECISIONS = "_people_decisions"
PUBLIC = [name for name, t in TABLES.items() if not t.internal]
VERSIONED = [name for name, t in TABLES.items() if t.versioned]
# A commit writes `videos` last: a video is complete once its `videos` row is there.
COMMIT_ORDER = (
    FORGOTTEN,
    FORGOTTEN_FACES,
    SOURCES,
    "features",
    "tracks",
    "baselines",
    "episodes",
    "summaries",
    IDENTITIES,
    "track_people",
    "people",
    DECISIONS,
    "failures",
    "videos",
)
assert sorted(COMMIT_ORDER) == sorted(TABLES)


# What each storage level (`emotrack run --store`) leaves out of the lake, per table: the
# columns left null, or None for a table that keeps none of the video's rows. Thumbnails
# (face crops) are kept by `full` only (emotrack.units).
STORE_LEVELS: dict[str, dict[str, tuple[str, ...] | None]] = {
    "full": {},
    "geometry": {"features": ("embedding", "landmarks_i16", "landmarks")},
    "labels": {
        "features": None,
        "tracks": (*MEASURE_COLUMNS, *RELATIVE_COLUMNS, *GEOMETRIC_COLUMNS),
        "baselines": None,
    },
}


def stored(table: str, rows: pd.DataFrame, level: str) -> pd.DataFrame:
    """`rows` of `table` as the lake keeps them at the storage `level` (STORE_LEVELS)."""
    left_out = STORE_LEVELS[level].get(table, ())
    if left_out is None:
        return rows.iloc[:0]
    present = [c for c in left_out if c in rows.columns]
    return rows.assign(**dict.fromkeys(present, None)) if present else rows


def columns(table: str, without: Iterable[str] = ()) -> list[str]:
    """The table's column names in order (less those in `without`)."""
    skip = set(without)
    return [name for name in TABLES[table].names if name not in skip]


def key_of(table: str) -> str:
    """The column whose value a commit replaces rows by."""
    return TABLES[table].key


def row(table: str, **values: Any) -> dict[str, Any]:
    """A row of `table` (see Table.row)."""
    return TABLES[table].row(values)


# -- the site's table of columns (docs/lake.md) -------------------------------------------

README_BEGIN, README_END = "<!-- columns: begin -->", "<!-- columns: end -->"


def markdown() -> str:
    """The site's table of columns: a row per table, its columns in order, one a line with
    its meaning (columns that share a meaning on one line); required ones in bold."""
    lines = ["| table | one row per | columns (**bold**: never null) |", "|---|---|---|"]
    for table in (TABLES[name] for name in PUBLIC):
        parts: list[tuple[list[str], str]] = []
        for column in table.columns:
            if parts and parts[-1][1] == column.meaning:
                parts[-1][0].append(column.name)
            else:
                parts.append(([column.name], column.meaning))
        cells = [f"{_names(names, table)}: {meaning}" for names, meaning in parts]
        lines.append(f"| `{table.name}` | {table.row_is} | {'<br>'.join(cells)} |")
    return "\n".join(lines)


def _names(names: list[str], table: Table) -> str:
    required = {c.name for c in table.columns if c.required}
    shown = [f"**`{n}`**" if n in required else f"`{n}`" for n in names]
    if len(names) > 4:
        return f"{shown[0]}, {shown[1]} ... {shown[-1]} ({len(names)})"
    return ", ".join(shown)


def readme_with_columns(text: str) -> str:
    """`text` (docs/lake.md) with its generated tables rewritten: the columns (between
    README_BEGIN and README_END) and the action units (emotrack.action_units.markdown)."""
    blocks = [
        (README_BEGIN, README_END, markdown()),
        (action_units.README_BEGIN, action_units.README_END, action_units.markdown()),
    ]
    for begin, end, body in blocks:
        found = re.search(f"{re.escape(begin)}.*?{re.escape(end)}", text, re.S)
        if not found:
            raise ValueError(f"no {begin} ... {end} block")
        text = f"{text[: found.start()]}{begin}\n{body}\n{end}{text[found.end() :]}"
    return text


if __name__ == "__main__":
    readme = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/lake.md")
    readme.write_text(readme_with_columns(readme.read_text()))
    print(f"{readme}: tables of columns and action units rewritten")
