"""The Parquet lake: table schemas, paths and atomic publication live here and nowhere else.

Layout (Hive-style, one Parquet file per video and table):

    LAKE/videos/video_id=<id>/part-0.parquet      one row per video (ok or failed)
    LAKE/features/video_id=<id>/part-0.parquet    one row per face per analysed frame
    LAKE/tracks/video_id=<id>/<model>.parquet     one row per face per analysed frame
    LAKE/episodes/video_id=<id>/<model>.parquet   one row per expression episode of a track
    LAKE/summaries/video_id=<id>/<model>.parquet  one row per video
    LAKE/failures/<key>.parquet                   one row per unreadable input file
    LAKE/_attempts/<id>                           runs that started analysing a video and
                                                  did not finish it (not a table)

`video_id` is the partition column: it comes from the folder name, not from inside the file.
A video's files are first written under LAKE/_staging, then moved into place with os.replace
(atomic on one filesystem), `videos` last: a video is complete once its `videos` row exists.
Publishing a video again replaces its files, so re-runs never duplicate rows. A run holds
the lake's lock (`Lake.exclusive`) for its whole length. `tracks` and
`summaries` files are named after the model version that made them; publishing another
version removes the old one unless the caller asks to keep several.
"""

from __future__ import annotations

import fcntl
import hashlib
import os
import shutil
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from models.expression_cnn import EMBEDDING_DIM, EMOTIONS

PARTITION = "video_id"
EMPTY_PARTITION = "_none"  # holds each table's empty schema file (see Lake.create_tables)
_f32, _f64, _i32, _str = pa.float32(), pa.float64(), pa.int32(), pa.string()
_TIMESTAMP = pa.timestamp("us", tz="UTC")
_FACE = [
    ("frame_index", _i32),
    ("timestamp_s", _f64),
    ("track_id", _i32),
    ("bbox_x", _f32),
    ("bbox_y", _f32),
    ("bbox_w", _f32),
    ("bbox_h", _f32),
    ("face_score", _f32),
]
SCHEMAS: dict[str, pa.Schema] = {
    "videos": pa.schema(
        [
            ("source_uri", _str),
            ("size_bytes", pa.int64()),
            ("duration_s", _f64),
            ("fps", _f64),
            ("width", _i32),
            ("height", _i32),
            ("codec", _str),
            ("rotation", _i32),
            ("analysis_fps", _f64),
            ("frames_analysed", _i32),
            ("status", _str),
            ("processed_at", _TIMESTAMP),
        ]
    ),
    "features": pa.schema(
        [
            *_FACE,
            ("logits", pa.list_(_f32)),  # 7 values, EMOTIONS order, before the softmax
            ("embedding", pa.list_(_f32)),  # EMBEDDING_DIM values
        ]
    ),
    "tracks": pa.schema(
        [
            *_FACE,
            ("emotion", _str),
            *[(f"p_{e}", _f32) for e in EMOTIONS],
            ("valence", _f32),
            ("arousal", _f32),
            ("intensity", _f32),
            ("model_version", _str),
        ]
    ),
    "episodes": pa.schema(
        [
            ("track_id", _i32),
            ("emotion", _str),
            ("start_s", _f64),
            ("peak_s", _f64),
            ("end_s", _f64),
            ("duration_s", _f64),
            ("peak_intensity", _f32),
            ("mean_valence", _f32),
            ("mean_arousal", _f32),
            ("model_version", _str),
        ]
    ),
    "summaries": pa.schema(
        [
            ("frames_analysed", _i32),
            ("frames_with_face", _i32),
            ("face_observations", _i32),
            ("n_tracks", _i32),
            ("dominant_emotion", _str),
            *[(f"share_{e}", _f64) for e in EMOTIONS],
            ("mean_valence", _f64),
            ("mean_arousal", _f64),
            ("model_version", _str),
        ]
    ),
    "failures": pa.schema(
        [
            ("source_uri", _str),
            ("video_id", _str),
            ("stage", _str),
            ("error_type", _str),
            ("message", _str),
            ("failed_at", _TIMESTAMP),
        ]
    ),
}
_DUCKDB_TYPES = {
    "float": "FLOAT",
    "double": "DOUBLE",
    "int32": "INTEGER",
    "int64": "BIGINT",
    "list<item: float>": "FLOAT[]",
    "timestamp[us, tz=UTC]": "TIMESTAMPTZ",
}
VERSIONED = ("tracks", "episodes", "summaries")  # stored per model version
# publication order: videos last
VIDEO_TABLES = ("features", "tracks", "episodes", "summaries", "videos")


class Lake:
    """A lake on local disk rooted at `root`."""

    def __init__(self, root: Path) -> None:
        self.root = Path(root)

    def glob(self, table: str) -> str:
        """The pattern readers pass to duckdb.read_parquet(..., hive_partitioning=true)."""
        return str(self.root / table / "**" / "*.parquet")

    def publish(
        self,
        video_id: str,
        tables: dict[str, pd.DataFrame],
        source_uri: str | None = None,
        keep_versions: bool = False,
    ) -> dict[str, int]:
        """Atomically (re)place one video's rows in the given tables; return rows per table.

        `tables` maps some of VIDEO_TABLES to rows without the video_id column; they are
        validated first, staged, then moved into place with `videos` last. Rows of `tracks`
        and `summaries` are stored per model_version: other versions of the video are removed
        unless keep_versions. Publishing `videos` clears a failure recorded for `source_uri`.
        """
        assert set(tables) <= set(VIDEO_TABLES), sorted(tables)
        order = [t for t in VIDEO_TABLES if t in tables]
        staged = {t: _to_arrow(t, tables[t]) for t in order}  # validate before writing
        version = _version_file_name(tables)
        finals = {
            t: self._video_file(t, video_id, version if t in VERSIONED else "part-0") for t in order
        }
        staging = self.root / "_staging" / f"{video_id}-{uuid.uuid4().hex}"
        staging.mkdir(parents=True)
        try:
            for table, data in staged.items():
                pq.write_table(data, staging / f"{table}.parquet")
            for table in order:
                finals[table].parent.mkdir(parents=True, exist_ok=True)
                os.replace(staging / f"{table}.parquet", finals[table])
                if not keep_versions:
                    for other in finals[table].parent.glob("*.parquet"):
                        if other != finals[table]:
                            other.unlink(missing_ok=True)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        if "videos" in tables and source_uri is not None:
            self._failure_file(source_uri).unlink(missing_ok=True)
        return {table: data.num_rows for table, data in staged.items()}

    @contextmanager
    def exclusive(self, timeout_s: float | None = None) -> Iterator[None]:
        """Hold the lake's run lock: one run at a time writes to a lake.

        A second run waits for the first to finish (or raises TimeoutError after timeout_s),
        then sees the first run's videos as complete. The lock is an flock on LAKE/_lock,
        released by the kernel if the process dies, so a killed run never leaves it held.
        Also clears staging files that a killed run left behind.
        """
        self.root.mkdir(parents=True, exist_ok=True)
        with (self.root / "_lock").open("a") as handle:
            deadline = None if timeout_s is None else time.monotonic() + timeout_s
            while True:
                try:
                    fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                    break
                except BlockingIOError:
                    if deadline is not None and time.monotonic() > deadline:
                        raise TimeoutError(f"another run holds {self.root / '_lock'}") from None
                    time.sleep(0.5)
            try:
                self.create_tables()
                shutil.rmtree(self.root / "_staging", ignore_errors=True)
                for stale in self.root.glob("*/**/.*.tmp"):
                    stale.unlink(missing_ok=True)
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def create_tables(self) -> None:
        """Give every table a file, empty but with its schema, so that a query over any table
        of a healthy lake never fails for want of files (a lake without failures has no
        failure rows, not no `failures` table). The files sit in a folder or under a name
        that starts with "_", which pyarrow, pandas and Spark skip; DuckDB reads no rows."""
        for table, schema in SCHEMAS.items():
            folder = self.root / table
            empty = (
                (folder / "_empty.parquet")
                if table == "failures"
                else (folder / f"{PARTITION}={EMPTY_PARTITION}" / "_empty.parquet")
            )
            if not empty.exists():
                self._write_atomic(schema.empty_table(), empty)

    def completed(self, model_version: str) -> set[str]:
        """Videos whose `videos` row says ok and that were scored by `model_version`."""
        name = _safe_name(model_version)
        with self.connect() as con:
            ok = con.execute("SELECT video_id FROM videos WHERE status = 'ok'").fetchall()
        return {
            video_id for (video_id,) in ok if self._video_file("summaries", video_id, name).exists()
        }

    @contextmanager
    def attempt(self, video_id: str) -> Iterator[None]:
        """Count a run's attempt at a video while its body runs.

        The count grows by one on entry and is cleared when the body ends, by returning or by
        raising an Exception: it only stays when the run itself died (killed, out of memory)
        or was interrupted during the attempt. `crashed()` reads what stayed.
        """
        marker = self.root / "_attempts" / video_id
        marker.parent.mkdir(parents=True, exist_ok=True)
        runs = self.crashed().get(video_id, 0) + 1
        tmp = marker.parent / f".{video_id}.{uuid.uuid4().hex}.tmp"
        tmp.write_text(str(runs))
        os.replace(tmp, marker)
        try:
            yield
        except Exception:
            marker.unlink(missing_ok=True)
            raise
        marker.unlink(missing_ok=True)

    def crashed(self) -> dict[str, int]:
        """video_id -> how many runs died while analysing it (see `attempt`)."""
        folder = self.root / "_attempts"
        found = folder.glob("[!.]*") if folder.is_dir() else []
        return {marker.name: int(marker.read_text() or 0) for marker in found}

    def failed(self) -> dict[str, str | None]:
        """source_uri -> video_id of every recorded failure."""
        with self.connect() as con:
            return dict(con.execute("SELECT source_uri, video_id FROM failures").fetchall())

    def video_ids(self, table: str) -> list[str]:
        """The videos that have rows (files) in `table`."""
        prefix = f"{PARTITION}="
        folders = (self.root / table).glob(f"{prefix}*")
        return sorted(
            f.name[len(prefix) :]
            for f in folders
            if f.name != f"{prefix}{EMPTY_PARTITION}" and any(f.glob("*.parquet"))
        )

    def read_video(self, table: str, video_id: str) -> pd.DataFrame:
        """One video's rows of `table` (without the video_id column)."""
        files = sorted((self.root / table / f"{PARTITION}={video_id}").glob("*.parquet"))
        if not files:
            raise FileNotFoundError(f"no {table} rows for video {video_id} in {self.root}")
        return pd.concat([pq.read_table(f).to_pandas() for f in files], ignore_index=True)

    def record_failure(self, failure: dict[str, object], video: dict[str, object] | None) -> None:
        """Record one unreadable input in `failures` and, if its video_id is known, `videos`.

        Writes nothing to features, tracks or summaries.
        """
        self._write_atomic(
            _to_arrow("failures", pd.DataFrame([failure])),
            self._failure_file(str(failure["source_uri"])),
        )
        if video is not None and failure.get("video_id"):
            self._write_atomic(
                _to_arrow("videos", pd.DataFrame([video])),
                self._video_file("videos", str(failure["video_id"])),
            )

    def read(self, table: str) -> pd.DataFrame:
        """Every row of `table` as a DataFrame (empty, with the right columns, if none)."""
        with self.connect() as con:
            return con.execute(f"SELECT * FROM {table}").df()

    def count(self, table: str) -> int:
        """Number of rows in `table`, from Parquet metadata (no rows are loaded)."""
        with self.connect() as con:
            return int(con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0])

    def connect(self) -> duckdb.DuckDBPyConnection:
        """An in-memory DuckDB connection with one view per table (empty tables included)."""
        con = duckdb.connect()
        for table, schema in SCHEMAS.items():
            if any((self.root / table).glob("**/*.parquet")):
                source = f"read_parquet('{_sql_text(self.glob(table))}', hive_partitioning=true)"
            else:
                columns = ([] if table == "failures" else [f"NULL::VARCHAR AS {PARTITION}"]) + [
                    f"NULL::{_DUCKDB_TYPES.get(str(f.type), 'VARCHAR')} AS {f.name}" for f in schema
                ]
                source = f"(SELECT {', '.join(columns)} WHERE false)"
            con.execute(f"CREATE VIEW {table} AS SELECT * FROM {source}")
        return con

    def _video_file(self, table: str, video_id: str, name: str = "part-0") -> Path:
        return self.root / table / f"{PARTITION}={video_id}" / f"{name}.parquet"

    def _failure_file(self, source_uri: str) -> Path:
        key = hashlib.sha256(source_uri.encode()).hexdigest()[:16]
        return self.root / "failures" / f"{key}.parquet"

    def _write_atomic(self, data: pa.Table, final: Path) -> None:
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.parent / f".{final.name}.{uuid.uuid4().hex}.tmp"
        try:
            pq.write_table(data, tmp)
            os.replace(tmp, final)
        finally:
            tmp.unlink(missing_ok=True)


def _version_file_name(tables: dict[str, pd.DataFrame]) -> str:
    """File stem shared by a publication's tracks and summaries: their model version."""
    versions = {v for t in VERSIONED if t in tables for v in tables[t]["model_version"].unique()}
    assert len(versions) <= 1, f"one model_version per publication, got {sorted(versions)}"
    return _safe_name(str(versions.pop())) if versions else "part-0"


def _safe_name(model_version: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in model_version)


def _sql_text(text: str) -> str:
    return text.replace("'", "''")


def _to_arrow(table: str, rows: pd.DataFrame) -> pa.Table:
    """rows cast to the table's schema; raises if a column is missing or cannot be cast."""
    schema = SCHEMAS[table]
    missing = set(schema.names) - set(rows.columns)
    if missing:
        raise ValueError(f"{table}: missing columns {sorted(missing)}")
    data = pa.Table.from_pandas(rows[schema.names], schema=schema, preserve_index=False)
    if table == "features" and data.num_rows:
        lengths = pc.list_value_length(data["embedding"]).unique().to_pylist()
        assert lengths == [EMBEDDING_DIM], f"embedding lengths {lengths}"
    return data
