"""Converting a lake written by emotrack 0.1.0 (Hive folders of Parquet files, one per video
and table) into Delta tables, in place, without decoding any video again.

    0.1.0                                        now
    LAKE/<table>/video_id=<id>/<name>.parquet    LAKE/<table>/ (Delta), video_id a column
    LAKE/<table>/video_id=_none/_empty.parquet   (gone: an empty Delta table has its schema)
    LAKE/failures/<key>.parquet                  LAKE/failures/ (Delta)
    LAKE/_sources/<key>.json                     LAKE/_sources/ (Delta)
    LAKE/_attempts/<video_id>                    (dropped: they named no file)

Per table: the old rows are streamed into a new Delta table in the same folder (a reader of
the Delta table sees nothing of it until its first commit lands), then the old files are
deleted. A marker, LAKE/_migrating, stays until every table is done, so a run killed midway
is finished by the next one: a table that has its Delta log then only loses its old files.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Iterator

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs
from deltalake import write_deltalake

from emotrack.lake import ALL_SCHEMAS, ATTEMPTS, SCHEMAS, SOURCES, Lake, to_arrow
from emotrack.scoring import SERIES_POINTS
from emotrack.storage import ObjectStore

MARKER = "_migrating"
_OLD_FILE = re.compile(r"^(video_id=[^/]+/[^/]+|[0-9a-f]{16}|_empty)\.parquet$")
_log = logging.getLogger(__name__)


def migrate_if_needed(lake: Lake) -> dict[str, int] | None:
    """Migrate `lake` if it is (even partly) in the 0.1.0 layout; None if it is not."""
    if lake.store.exists(MARKER):
        return migrate(lake)
    if lake.has_table("videos") or not lake.store.keys("videos"):
        return None  # Delta already, or a new lake
    return migrate(lake)


def migrate(lake: Lake) -> dict[str, int]:
    """Convert every table; returns the rows now in each. Call it with the lake's lock held."""
    lake.store.write_bytes(MARKER, b"0.1.0\n")
    rows = {table: _migrate_table(lake, table) for table in SCHEMAS}
    _fill_series(lake)
    rows[SOURCES] = _migrate_sources(lake)
    lake.store.delete_tree(ATTEMPTS)  # 0.1.0's markers named a video id, not a file
    lake.store.delete(MARKER)
    _log.warning("converted %s from the 0.1.0 layout to Delta tables: %s", lake.url, rows)
    return rows


def _migrate_table(lake: Lake, table: str) -> int:
    old = [k for k in lake.store.keys(table) if _OLD_FILE.match(k.split("/", 1)[1])]
    written = 0
    if not lake.has_table(table):
        batches = _old_batches(lake, table, old)
        reader = pa.RecordBatchReader.from_batches(ALL_SCHEMAS[table], batches)
        write_deltalake(
            lake.table_uri(table), reader, mode="append",
            storage_options=lake.store.table_options(),
        )  # fmt: skip
        written = int(lake._table(table).count())
    for key in old:  # only once the Delta table holds their rows
        lake.store.delete(key)
    return written


def _old_batches(lake: Lake, table: str, keys: list[str]) -> Iterator[pa.RecordBatch]:
    """The rows of the old files, a batch at a time, in the new schema (video_id from the
    folder name, columns added since then as nulls)."""
    schema = ALL_SCHEMAS[table]
    files = [k for k in keys if not k.rsplit("/", 1)[1].startswith("_")]
    if not files:
        return
    filesystem, root = _filesystem(lake)
    hive = ds.partitioning(pa.schema([("video_id", pa.string())]), flavor="hive")
    dataset = ds.dataset(
        [f"{root}/{k}" for k in files], format="parquet", filesystem=filesystem,
        partitioning=hive if table != "failures" else None,
        partition_base_dir=f"{root}/{table}",
    )  # fmt: skip
    for batch in dataset.to_batches():
        columns = {
            name: batch.column(name) if name in batch.schema.names else pa.nulls(batch.num_rows)
            for name in schema.names
        }
        yield pa.RecordBatch.from_pydict(columns).cast(schema)


# Per video and model version, the mean valence in each of SERIES_POINTS stretches of the
# video (as emotrack.scoring.valence_series computes it for new videos).
_SERIES = f"""
WITH last AS (SELECT video_id, model_version, max(timestamp_s) AS last_s FROM tracks GROUP BY ALL)
SELECT t.video_id, t.model_version, least(floor(t.timestamp_s / greatest(
         coalesce(v.duration_s, 0), l.last_s, 1e-9) * {SERIES_POINTS}), {SERIES_POINTS - 1}
       )::INTEGER AS bin, avg(t.valence) AS valence
FROM tracks t JOIN last l USING (video_id, model_version) LEFT JOIN videos v USING (video_id)
GROUP BY ALL
"""


def _fill_series(lake: Lake) -> None:
    """0.1.0's summaries had no valence_series (the report's sparkline): computed once from
    the tracks, then the (small) summaries table is rewritten."""
    with lake.connect(["tracks", "videos", "summaries"]) as con:
        if con.execute("SELECT count(*) FROM summaries").fetchall()[0][0] == 0:
            return
        bins = con.execute(_SERIES).df()
        summaries = con.execute("SELECT * FROM summaries").df()
    series = {}
    for (video_id, version), rows in bins.groupby(["video_id", "model_version"]):
        values: list[float | None] = [None] * SERIES_POINTS
        for b, v in zip(rows["bin"], rows["valence"], strict=True):
            values[int(b)] = float(v)
        series[(video_id, version)] = values
    summaries["valence_series"] = [
        series.get((v, m), []) for v, m in zip(summaries["video_id"], summaries["model_version"],
                                                strict=True)
    ]  # fmt: skip
    write_deltalake(
        lake.table_uri("summaries"), to_arrow("summaries", summaries), mode="overwrite",
        storage_options=lake.store.table_options(),
    )  # fmt: skip


def _migrate_sources(lake: Lake) -> int:
    """0.1.0's remembered object-storage ids (_sources/<key>.json) into the _sources table."""
    old = [k for k in lake.store.keys(SOURCES) if k.endswith(".json") and "/_delta_log/" not in k]
    if not old:
        return 0
    import pandas as pd

    entries = [json.loads(body) for body in lake.store.read_many(old).values()]
    rows = pd.DataFrame(
        {
            "uri": [e["uri"] for e in entries],
            "size_bytes": [e.get("size") for e in entries],
            "mtime_ns": None,
            "inode": None,
            "etag": [e.get("etag") for e in entries],
            "video_id": [e["video_id"] for e in entries],
            "recorded_at": pd.Timestamp.now(tz="UTC"),
        }
    )
    lake.create_tables()
    lake.remember_sources(rows)
    for key in old:
        lake.store.delete(key)
    return len(rows)


def _filesystem(lake: Lake) -> tuple[pafs.FileSystem, str]:
    if isinstance(lake.store, ObjectStore):
        return pafs.PyFileSystem(pafs.FSSpecHandler(lake.store.fs)), lake.store.root
    return pafs.LocalFileSystem(), str(lake.root)
