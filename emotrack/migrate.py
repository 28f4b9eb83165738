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
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.fs as pafs

from emotrack.schema import PUBLIC, SOURCES, TABLES
from emotrack.scoring import valence_series
from emotrack.storage import ObjectStore

if TYPE_CHECKING:  # the lake calls this module, never the other way round
    from emotrack.lake import Lake

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
    rows = {table: _migrate_table(lake, table) for table in PUBLIC}
    _fill_series(lake)
    rows[SOURCES] = _migrate_sources(lake)
    lake.store.delete_tree("_attempts")  # 0.1.0's markers named a video id, not a file
    lake.store.delete(MARKER)
    _log.warning("converted %s from the 0.1.0 layout to Delta tables: %s", lake.url, rows)
    return rows


def _migrate_table(lake: Lake, table: str) -> int:
    old = [k for k in lake.store.keys(table) if _OLD_FILE.match(k.split("/", 1)[1])]
    written = 0
    if not lake.has_table(table):
        batches = _old_batches(lake, table, old)
        reader = pa.RecordBatchReader.from_batches(TABLES[table].arrow, batches)
        lake.append(table, reader)
        written = int(lake._table(table).count())
    for key in old:  # only once the Delta table holds their rows
        lake.store.delete(key)
    return written


def _old_batches(lake: Lake, table: str, keys: list[str]) -> Iterator[pa.RecordBatch]:
    """The rows of the old files, a batch at a time, in the new schema (video_id from the
    folder name, columns added since then as nulls)."""
    schema = TABLES[table].arrow
    files = [k for k in keys if not k.rsplit("/", 1)[1].startswith("_")]
    if not files:
        return
    filesystem, root = _filesystem(lake)
    hive = ds.partitioning(pa.schema([("video_id", pa.string())]), flavor="hive")
    dataset = ds.dataset(
        [f"{root}/{k}" for k in files],
        format="parquet",
        filesystem=filesystem,
        partitioning=hive if table != "failures" else None,
        partition_base_dir=f"{root}/{table}",
    )
    for batch in dataset.to_batches():
        columns = {
            name: batch.column(name) if name in batch.schema.names else pa.nulls(batch.num_rows)
            for name in schema.names
        }
        yield pa.RecordBatch.from_pydict(columns).cast(schema)


def _fill_series(lake: Lake) -> None:
    """0.1.0's summaries had no valence_series (the report's sparkline): computed once from
    the tracks as for new videos (emotrack.scoring.valence_series), then the (small)
    summaries table is rewritten."""
    with lake.connect(["tracks", "videos", "summaries"]) as con:
        summaries = con.execute("SELECT * FROM summaries").df()
        if summaries.empty:
            return
        tracks = con.execute(
            "SELECT video_id, model_version, timestamp_s, valence FROM tracks"
        ).df()
        durations = dict(con.execute("SELECT video_id, duration_s FROM videos").fetchall())
    series = {
        (video_id, version): valence_series(rows, durations.get(video_id))
        for (video_id, version), rows in tracks.groupby(["video_id", "model_version"])
    }
    keys = zip(summaries["video_id"], summaries["model_version"], strict=True)
    summaries["valence_series"] = [series.get(key, []) for key in keys]
    lake.replace_table("summaries", summaries)


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
