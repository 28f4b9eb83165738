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
    LAKE/_sources/<key>.json                      content ids of object-storage inputs

LAKE is a folder or an object-storage URL (s3://bucket/prefix; see emotrack.storage).
`video_id` is the partition column: it comes from the folder name, not from inside the file.
A video's files are encoded in full first, then each is put into place whole (a rename on
disk, one PUT on object storage), `videos` last: a video is complete once its `videos` row
exists, and a reader never sees part of a file. Publishing a video again replaces its files,
so re-runs never duplicate rows. A run holds the lake's lock (`Lake.exclusive`) for its
whole length. `tracks`, `episodes` and `summaries` files are named after the model version
that made them; publishing another version removes the old one unless the caller asks to
keep several.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from emotrack.storage import LocalStore, ObjectStore, open_store
from models.expression_cnn import EMBEDDING_DIM, EMOTIONS

PARTITION = "video_id"
EMPTY_PARTITION = "_none"  # holds each table's empty schema file (see Lake.create_tables)
ATTEMPTS = "_attempts"  # markers of runs that died while analysing a video (Lake.attempt)
SOURCES = "_sources"  # content ids of object-storage inputs (Lake.remember_source)
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
    """A lake rooted at a local folder or at an object-storage URL (see emotrack.storage)."""

    def __init__(self, where: str | Path) -> None:
        self.store = open_store(where)
        self.url = self.store.url  # what runs record and workers are given

    @property
    def local(self) -> bool:
        return self.store.local

    @property
    def root(self) -> Path:
        """The lake's folder; only a lake on local disk has one."""
        if not isinstance(self.store, LocalStore):
            raise ValueError(f"{self.url} is on object storage, not a folder")
        return self.store.root

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
        validated and encoded first, then each is written whole into place (a rename on
        disk, one PUT on object storage) with `videos` last. Rows of `tracks` and
        `summaries` are stored per model_version: other versions of the video are removed
        unless keep_versions. Publishing `videos` clears a failure recorded for `source_uri`.
        """
        assert set(tables) <= set(VIDEO_TABLES), sorted(tables)
        order = [t for t in VIDEO_TABLES if t in tables]
        staged = {t: _to_arrow(t, tables[t]) for t in order}  # validate before writing
        encoded = {t: _parquet_bytes(data) for t, data in staged.items()}
        version = _version_file_name(tables)
        for table in order:
            final = self._video_key(table, video_id, version if table in VERSIONED else "part-0")
            self.store.write_bytes(final, encoded[table])
            if table in VERSIONED and not keep_versions:  # other tables have one file
                folder = final.rsplit("/", 1)[0]
                for other in self.store.keys(folder):
                    if other != final and other.endswith(".parquet"):
                        self.store.delete(other)
        if "videos" in tables and source_uri is not None:
            self.store.delete(self._failure_key(source_uri))
        return {table: data.num_rows for table, data in staged.items()}

    @contextmanager
    def exclusive(self, timeout_s: float | None = None) -> Iterator[None]:
        """Hold the lake's run lock: one run at a time writes to a lake.

        A second run waits for the first to finish (or raises TimeoutError after timeout_s),
        then sees the first run's videos as complete. On disk the lock is an flock on
        LAKE/_lock, released by the kernel if the process dies; on object storage it is a
        lock object with an owner and an expiry (see ObjectStore.lock). Either way a killed
        run never leaves it held for good. Also clears what a killed run left behind.
        """
        with self.store.lock(timeout_s):
            self.create_tables()
            self.store.delete_tree("_staging")  # left by versions that staged there
            yield

    def create_tables(self) -> None:
        """Give every table a file, empty but with its schema, so that a query over any table
        of a healthy lake never fails for want of files (a lake without failures has no
        failure rows, not no `failures` table). The files sit in a folder or under a name
        that starts with "_", which pyarrow, pandas and Spark skip; DuckDB reads no rows."""
        for table, schema in SCHEMAS.items():
            empty = (
                f"{table}/_empty.parquet"
                if table == "failures"
                else f"{table}/{PARTITION}={EMPTY_PARTITION}/_empty.parquet"
            )
            if not self.store.exists(empty):
                self.store.write_bytes(empty, _parquet_bytes(schema.empty_table()))

    def completed(self, model_version: str) -> set[str]:
        """Videos whose `videos` row says ok and that were scored by `model_version`."""
        name = f"{_safe_name(model_version)}.parquet"
        with self.connect() as con:
            ok = con.execute("SELECT video_id FROM videos WHERE status = 'ok'").fetchall()
        scored = {
            key.split("/")[1].removeprefix(f"{PARTITION}=")
            for key in self.store.keys("summaries")
            if key.endswith(f"/{name}")
        }
        return {video_id for (video_id,) in ok if video_id in scored}

    @contextmanager
    def attempt(self, video_id: str) -> Iterator[None]:
        """Count a run's attempt at a video while its body runs.

        The count grows by one on entry and is cleared when the body ends, by returning or by
        raising an Exception: it only stays when the run itself died (killed, out of memory)
        or was interrupted during the attempt. `crashed()` reads what stayed.
        """
        marker = f"{ATTEMPTS}/{video_id}"
        runs = self.crashed().get(video_id, 0) + 1
        self.store.write_bytes(marker, str(runs).encode())
        try:
            yield
        except Exception:
            self.store.delete(marker)
            raise
        self.store.delete(marker)

    def crashed(self) -> dict[str, int]:
        """video_id -> how many runs died while analysing it (see `attempt`)."""
        markers = self.store.read_many(self.store.keys(ATTEMPTS))
        return {
            key.rsplit("/", 1)[1]: int(body or 0)
            for key, body in markers.items()
            if not key.rsplit("/", 1)[1].startswith(".")
        }

    def failed(self) -> dict[str, str | None]:
        """source_uri -> video_id of every recorded failure."""
        with self.connect() as con:
            return dict(con.execute("SELECT source_uri, video_id FROM failures").fetchall())

    def video_ids(self, table: str) -> list[str]:
        """The videos that have rows (files) in `table`."""
        prefix = f"{PARTITION}="
        return sorted(
            {
                key.split("/")[1][len(prefix) :]
                for key in self.store.keys(table)
                if key.split("/")[1].startswith(prefix)
                and key.endswith(".parquet")
                and key.split("/")[1] != f"{prefix}{EMPTY_PARTITION}"
            }
        )

    def read_video(self, table: str, video_id: str) -> pd.DataFrame:
        """One video's rows of `table` (without the video_id column)."""
        folder = f"{table}/{PARTITION}={video_id}"
        keys = [k for k in self.store.keys(folder) if k.endswith(".parquet")]
        if not keys:
            raise FileNotFoundError(f"no {table} rows for video {video_id} in {self.url}")
        return pd.concat(
            [pq.read_table(pa.BufferReader(self.store.read_bytes(k))).to_pandas() for k in keys],
            ignore_index=True,
        )

    def record_failure(self, failure: dict[str, object], video: dict[str, object] | None) -> None:
        """Record one unreadable input in `failures` and, if its video_id is known, `videos`.

        Writes nothing to features, tracks or summaries.
        """
        rows = _parquet_bytes(_to_arrow("failures", pd.DataFrame([failure])))
        self.store.write_bytes(self._failure_key(str(failure["source_uri"])), rows)
        if video is not None and failure.get("video_id"):
            row = _parquet_bytes(_to_arrow("videos", pd.DataFrame([video])))
            self.store.write_bytes(self._video_key("videos", str(failure["video_id"])), row)

    def source_ids(self) -> dict[str, dict[str, object]]:
        """source_uri -> the size, etag and content id recorded for an object-storage input
        (see remember_source): its content id, without reading it again."""
        bodies = self.store.read_many(self.store.keys(SOURCES))
        entries = [json.loads(body) for body in bodies.values()]
        return {str(entry["uri"]): entry for entry in entries}

    def remember_source(self, uri: str, size: int, etag: str | None, video_id: str) -> None:
        """Record the content id of an object-storage input read once, with its size and
        ETag: later runs reuse it while both are unchanged."""
        body = {"uri": uri, "size": size, "etag": etag, "video_id": video_id}
        self.store.write_bytes(f"{SOURCES}/{_uri_key(uri)}.json", json.dumps(body).encode())

    def read(self, table: str) -> pd.DataFrame:
        """Every row of `table` as a DataFrame (empty, with the right columns, if none)."""
        with self.connect() as con:
            return con.execute(f"SELECT * FROM {table}").df()

    def count(self, table: str) -> int:
        """Number of rows in `table`, from Parquet metadata (no rows are loaded)."""
        with self.connect() as con:
            return int(con.execute(f"SELECT count(*) FROM {table}").fetchall()[0][0])

    def connect(self) -> duckdb.DuckDBPyConnection:
        """An in-memory DuckDB connection with one view per table (empty tables included).

        On disk DuckDB reads the Parquet files itself; on object storage it scans pyarrow
        datasets (DuckDB's httpfs extension would be downloaded at run time, which offline
        machines cannot do)."""
        con = duckdb.connect()
        for table, schema in SCHEMAS.items():
            if not self.local:
                con.register(f"{table}_dataset", self._dataset(table, schema))
                con.execute(f"CREATE VIEW {table} AS SELECT * FROM {table}_dataset")
                continue
            if any((self.root / table).glob("**/*.parquet")):
                source = f"read_parquet('{_sql_text(self.glob(table))}', hive_partitioning=true)"
            else:
                columns = ([] if table == "failures" else [f"NULL::VARCHAR AS {PARTITION}"]) + [
                    f"NULL::{_DUCKDB_TYPES.get(str(f.type), 'VARCHAR')} AS {f.name}" for f in schema
                ]
                source = f"(SELECT {', '.join(columns)} WHERE false)"
            con.execute(f"CREATE VIEW {table} AS SELECT * FROM {source}")
        return con

    def _dataset(self, table: str, schema: pa.Schema) -> ds.Dataset:
        """A table on object storage as a pyarrow dataset: Hive partitions, "_" and "."
        names skipped (the empty schema files), so a table without rows reads as empty.
        S3 is read with pyarrow's own client (the same AWS variables; 1.9x faster than
        through fsspec here), other stores through fsspec."""
        assert isinstance(self.store, ObjectStore)
        if self.store.url.startswith("s3://"):
            filesystem, root = pafs.FileSystem.from_uri(self.store.url)
        else:
            filesystem = pafs.PyFileSystem(pafs.FSSpecHandler(self.store.fs))
            root = self.store.root
        partitioned = table != "failures"
        full = schema.append(pa.field(PARTITION, _str)) if partitioned else schema
        return ds.dataset(
            f"{root}/{table}",
            schema=full,
            format="parquet",
            filesystem=filesystem,
            partitioning=ds.partitioning(pa.schema([(PARTITION, _str)]), flavor="hive")
            if partitioned
            else None,
        )

    def _video_key(self, table: str, video_id: str, name: str = "part-0") -> str:
        return f"{table}/{PARTITION}={video_id}/{name}.parquet"

    def _failure_key(self, source_uri: str) -> str:
        return f"failures/{_uri_key(source_uri)}.parquet"


def _uri_key(uri: str) -> str:
    return hashlib.sha256(uri.encode()).hexdigest()[:16]


def _parquet_bytes(data: pa.Table) -> bytes:
    sink = pa.BufferOutputStream()
    pq.write_table(data, sink)
    return bytes(sink.getvalue().to_pybytes())


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
