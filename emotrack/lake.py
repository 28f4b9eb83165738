"""The lake: Delta Lake tables, their schemas, and how rows go in and come out. Nothing else
names a table's files.

Every table is one Delta table (written by delta-rs), not partitioned:

    LAKE/videos/      one row per input file (ok or failed), by content (video_id)
    LAKE/features/    one row per face per analysed frame
    LAKE/tracks/      one row per face per analysed frame and model version
    LAKE/episodes/    one row per expression episode of a face track and model version
    LAKE/summaries/   one row per video and model version
    LAKE/failures/    one row per input file that could not be processed (by source_uri)
    LAKE/_sources/    what the lake knows of each input file: its size and modification
                      time and inode (a local file) or ETag (an object), and its content id,
                      so that a file is read again only when it changed

and, beside them (names starting with "_" are emotrack's own):

    LAKE/_attempts/<key>  runs that died while a video was in flight (Lake.attempt)
    LAKE/_backlog         the files a run left for the next one (--max-videos, --time-budget)
    LAKE/_staging/        rows written by workers, waiting for their commit (Lake.stage)
    LAKE/_lock            one run at a time writes (Lake.exclusive, Lake.writing)
    LAKE/_report/         the HTML report
    LAKE/_models/         models trained with `emotrack train` (emotrack.registry)

Rows go in by batches of many videos (Lake.commit): one Delta commit per table that replaces
the batch's rows of those videos (an overwrite by predicate: it touches only files that hold
such rows; a batch of videos the table has no rows of is appended as a file of our own),
`videos` last. A commit is atomic; a video is complete once its `videos` row says
ok, so a run killed between two commits leaves rows that no complete video owns, and the next
run replaces them. `tracks`, `episodes` and `summaries` hold one set of rows per model
version: a commit replaces all of a video's versions, or only its own with keep_versions.

A lake on object storage (s3://bucket/prefix) is the same tables: delta-rs commits there with
conditional PUTs, so no other lock service is needed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import tempfile
import threading
import time
import uuid
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq
from deltalake import DeltaTable, write_deltalake
from deltalake.exceptions import TableNotFoundError

from emotrack.errors import StorageError, storage_fault
from emotrack.migrate import migrate_if_needed
from emotrack.schema import (
    COMMIT_ORDER,
    DECISIONS,
    FORGOTTEN,
    IDENTITIES,
    PUBLIC,
    SOURCES,
    TABLES,
    key_of,
)
from emotrack.storage import LocalStore, open_store

# Compaction's row groups: about this much in memory (a few thousand `features` rows with
# their landmarks, a hundred thousand `videos` rows)
ROW_GROUP_BYTES = 16 * 2**20
# what compaction reads of a file at a time (a features row is 4 KB: 1,024 rows; a tracks
# row about 150 bytes: 28,000); 1,024 rows of any table, with statistics gathered per batch,
# made compaction 3.5 times slower than delta-rs's (a synthetic lake of 20,000 videos)
BATCH_BYTES = 4 * 2**20
ATTEMPTS = "_attempts"  # markers of runs that died while a video was in flight
BACKLOG = "_backlog"  # the files a run stopped by its budget left to do, one URI a line
STAGING = "_staging"  # rows staged by workers (Lake.stage), until their commit
_log = logging.getLogger(__name__)
_DUCKDB_TYPES = {
    "float": "FLOAT",
    "double": "DOUBLE",
    "int32": "INTEGER",
    "int64": "BIGINT",
    "list<item: float>": "FLOAT[]",
    "timestamp[us, tz=UTC]": "TIMESTAMPTZ",
}


class NotALake(FileNotFoundError):
    """The location holds no emotrack tables (or only the 0.1.0 layout's)."""


@dataclass(frozen=True)
class Staged:
    """Rows of one key (a video) staged in the lake by a worker (Lake.stage), and what the
    commit does to them: keep the frames before `end` (None: all), and give `track_id` the
    video's ids (`track_ids`: the file's -> the video's; rows of other ids are dropped)."""

    file: str  # key of the Parquet file in the lake's store, under STAGING
    key: str  # the table's key value (video_id) of its rows
    end: int | None = None
    track_ids: dict[int, int] | None = None


@dataclass
class Batch:
    """Rows for one commit: per table, the keys whose rows are replaced and the new rows,
    in memory or staged in the lake (see Staged).

    A key given with no rows deletes that key's rows (a video reprocessed that now has no
    faces, a failure cleared by a success). A key added twice keeps its later rows only.
    """

    keys: dict[str, set[str]] = field(default_factory=dict)
    # as given: a commit converts data frames to Arrow many at a time (to_arrow took 2.4 ms
    # per call whatever its rows: 7.5 s and 190 MB of small tables for 500 short videos)
    rows: dict[str, list[pd.DataFrame | pa.Table]] = field(default_factory=dict)
    staged: dict[str, list[Staged]] = field(default_factory=dict)

    def add(self, table: str, keys: Iterable[str], rows: pd.DataFrame | pa.Table | None) -> None:
        keys = set(keys)
        if not keys:
            return
        taken = self.keys.setdefault(table, set())
        parts = self.rows.setdefault(table, [])
        staged = self.staged.setdefault(table, [])
        if keys & taken:  # the same video twice (two files, one content): the later wins
            column, again = key_of(table), sorted(keys & taken)
            parts[:] = [_without(p, column, again) for p in parts]
            staged[:] = [s for s in staged if s.key not in keys]
        taken |= keys
        if rows is not None and len(rows):
            parts.append(rows)

    def add_staged(self, table: str, key: str, files: Iterable[Staged]) -> None:
        """Replace key's rows of `table` by rows staged in the lake (read at commit time)."""
        self.add(table, [key], None)
        self.staged[table].extend(files)

    def table(self, name: str) -> pa.Table:
        """The rows of `name` in its schema (to_arrow: raises ValueError on a bad row)."""
        parts = self.rows.get(name) or [TABLES[name].arrow.empty_table()]
        return pa.concat_tables(_in_arrow(name, parts))


def _without(rows: pd.DataFrame | pa.Table, column: str, keys: list[str]) -> Any:
    if isinstance(rows, pa.Table):
        return rows.filter(pc.invert(pc.is_in(rows[column], pa.array(keys))))
    return rows[~rows[column].isin(keys)]


def _in_arrow(table: str, parts: list[pd.DataFrame | pa.Table], many: int = 100) -> Iterator:
    """Each part in the table's schema; data frames with the same columns converted up to
    `many` at a time, so that no more than those are held twice."""
    run: list[pd.DataFrame] = []
    for part in [*parts, None]:
        if run and not (
            isinstance(part, pd.DataFrame)
            and len(run) < many
            and list(part.columns) == list(run[0].columns)
        ):
            yield to_arrow(table, pd.concat(run, ignore_index=True))
            run = []
        if isinstance(part, pd.DataFrame):
            run.append(part)
        elif part is not None:
            yield to_arrow(table, part)


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

    def table_uri(self, table: str) -> str:
        """Where the Delta table `table` is (a folder or a URL), for delta-rs and readers."""
        return self.store.table_uri(table)

    # -- writing -------------------------------------------------------------------------

    @contextmanager
    def exclusive(self, timeout_s: float | None = None, ttl_s: float = 120.0) -> Iterator[None]:
        """Hold the lake's run lock: one run at a time writes to a lake.

        A second run waits for the first to finish (or raises TimeoutError after timeout_s),
        then sees the first run's videos as complete. On disk the lock is an flock on
        LAKE/_lock, released by the kernel if the process dies; on object storage it is a
        lock object with an owner and an expiry of ttl_s (see ObjectStore.lock). Either way a
        killed run never leaves it held for good.
        """
        with self.store.lock(timeout_s, ttl_s):
            yield

    @contextmanager
    def writing(
        self, timeout_s: float | None = None, ttl_s: float = 120.0
    ) -> Iterator[dict[str, int] | None]:
        """The lake locked (exclusive) and ready for commits: a lake in the layout of
        emotrack 0.1.0 converted first (emotrack.migrate; yields the rows it converted per
        table, None when there was nothing to convert), missing tables created, columns that
        a release added since a table was written added to it, and rows staged by a run
        that died (Lake.stage) deleted."""
        with self.exclusive(timeout_s, ttl_s):
            converted = migrate_if_needed(self)
            self.create_tables()
            self.clear_staging()
            yield converted

    def create_tables(self) -> None:
        """Create every table that does not exist yet (empty, with its schema), so that a
        query over any table of a healthy lake never fails for want of it; add the columns
        that a table written by an older release lacks (null in its older rows)."""
        from deltalake import Schema

        for name, table in TABLES.items():
            schema = table.arrow
            if not self.has_table(name):
                DeltaTable.create(
                    self.table_uri(name),
                    schema=schema,
                    mode="ignore",
                    storage_options=self.store.table_options(),
                )
                continue
            delta = self._table(name)
            known = {f.name for f in delta.schema().fields}
            missing = pa.schema([f for f in schema if f.name not in known])
            if len(missing):
                delta.alter.add_columns(Schema.from_arrow(missing).fields)

    def has_table(self, name: str) -> bool:
        # Opening the table, not DeltaTable.is_deltatable: that one holds Python's GIL
        # through its requests (deltalake 1.6.6), stalling every other thread meanwhile.
        try:
            self._table(name)
        except NotALake:
            return False
        return True

    def commit(self, batch: Batch, keep_version: str | None = None) -> dict[str, int]:
        """Replace the batch's rows, one Delta commit per table, `videos` last; returns the
        rows written per table. With keep_version, only that model version's rows of the
        versioned tables are replaced (the other versions stay)."""
        with self._writes():
            return self._commit(batch, keep_version)

    def _commit(self, batch: Batch, keep_version: str | None) -> dict[str, int]:
        written = {}
        # every table's rows checked (to_arrow) before anything is written
        tables = {name: batch.table(name) for name in COMMIT_ORDER if batch.keys.get(name)}
        for name, data in tables.items():
            keys = batch.keys[name]
            predicate = _in(key_of(name), keys)
            if keep_version is not None and TABLES[name].versioned:
                predicate = f"({predicate}) AND model_version = {_quoted(keep_version)}"
            staged = batch.staged.get(name)
            if staged:
                # Old rows out, then the new ones in as files of our own, written a staged
                # file at a time: delta-rs would hold the whole stream, about 3 times its
                # size. A video replaced here has no `videos` row in between (a run killed
                # there leaves it incomplete, to be analysed again, not complete and short).
                if batch.keys.get("videos"):
                    self._table("videos").delete(_in("video_id", {f.key for f in staged}))
                self._table(name).delete(predicate)
                written[name] = self._add_files(name, data, staged)
            elif data.num_rows and keep_version is None and not self._holds(name, keys):
                # New keys (a first run, new arrivals): a file of our own, appended in one
                # commit. delta-rs's overwrite held 3 to 4 times the rows while it wrote.
                written[name] = self._add_files(name, data, [])
            elif data.num_rows:
                self._overwrite(name, data, predicate)
                written[name] = data.num_rows
            else:
                self._table(name).delete(predicate)
                written[name] = 0
        for files in batch.staged.values():
            for file in files:
                self.store.delete(file.file)
        return written

    # -- staging -------------------------------------------------------------------------

    def stage(self, table: str, file: str, rows: pd.DataFrame | pa.Table) -> str:
        """Write rows of `table` (in its schema) to the Parquet file STAGING/`file`, whole,
        for a later commit (Batch.add_staged): a worker writes a long video's rows there a
        segment at a time, so that nobody holds them all. Readers of the tables never see
        them; the next run to take the lake's lock deletes what no commit took. Returns the
        file's key in the store (Staged.file)."""
        sink = pa.BufferOutputStream()
        pq.write_table(to_arrow(table, rows), sink)
        key = f"{STAGING}/{file}"
        self.store.write_bytes(key, sink.getvalue().to_pybytes())
        return key

    def _add_files(self, table: str, rows: pa.Table, staged: list[Staged]) -> int:
        """`rows`, then the staged files' rows, added to `table` in one commit as one new
        data file per key, each written a staged file at a time; returns the rows added."""
        from deltalake.transaction import AddAction, RemoveAction

        parts: dict[str | None, list[Staged | pa.Table]] = {None: [rows]} if rows.num_rows else {}
        for file in staged:
            parts.setdefault(file.key, []).append(file)
        actions: list[AddAction | RemoveAction] = []
        added = 0
        for pieces in parts.values():
            action, rows_added = self._write_file(
                table,
                (p if isinstance(p, pa.Table) else self._staged(table, p) for p in pieces),
                data_change=True,
            )
            actions.append(action)
            added += rows_added
        self._table(table).create_write_transaction(actions, "append", TABLES[table].arrow)
        return added

    def _holds(self, table: str, keys: set[str]) -> bool:
        """Whether `table` has rows of any of `keys` (DuckDB reads their column only, and
        skips row groups whose statistics rule the keys out)."""
        query = f'SELECT 1 FROM "{table}" WHERE {key_of(table)} IN (SELECT unnest(?)) LIMIT 1'
        with self.connect([table]) as con:
            return bool(con.execute(query, [sorted(keys)]).fetchall())

    def _write_file(
        self, table: str, pieces: Iterable[pa.Table], data_change: bool, group_bytes: int = 0
    ) -> tuple[Any, int]:
        """A new data file of `table` from `pieces` (in its schema), read one at a time and
        written as row groups of at least `group_bytes` (0: a row group per piece); returns
        its Delta AddAction and its rows."""
        from deltalake.transaction import AddAction

        name, schema = f"part-{uuid.uuid4()}-c000.snappy.parquet", TABLES[table].arrow
        stats = _FileStats(schema)
        with tempfile.TemporaryDirectory(prefix="emotrack-") as folder:
            local = Path(folder) / name
            with pq.ParquetWriter(local, schema, compression="snappy") as out:

                def write(group: list[pa.Table]) -> None:
                    rows = pa.concat_tables(group)
                    stats.add(rows)
                    out.write_table(rows)

                group: list[pa.Table] = []
                held = 0
                for piece in pieces:
                    group.append(piece)
                    held += piece.nbytes
                    if held >= group_bytes:
                        write(group)
                        group, held = [], 0
                if group:
                    write(group)
            self.store.write_file(f"{table}/{name}", local)
            size = local.stat().st_size
        now_ms = int(time.time() * 1000)
        return AddAction(name, size, {}, now_ms, data_change, stats.json()), stats.rows

    def _staged(self, table: str, file: Staged) -> pa.Table:
        """A staged file's rows as the commit takes them (see Staged), in `table`'s schema."""
        rows = pq.read_table(pa.BufferReader(self.store.read_bytes(file.file)))
        if file.end is not None:
            rows = rows.filter(pc.less(rows["frame_index"], file.end))
        if file.track_ids is not None:
            old = rows["track_id"].to_numpy()
            keep = np.isin(old, list(file.track_ids))
            new = pa.array([file.track_ids[int(t)] for t in old[keep]], pa.int64())
            rows = rows.filter(pa.array(keep))
            rows = rows.set_column(rows.schema.get_field_index("track_id"), "track_id", new)
        order = [("frame_index", "ascending"), ("track_id", "ascending")]
        return to_arrow(table, rows).sort_by(order)

    def clear_staging(self) -> None:
        """Delete staged rows that no commit took (a run killed, a video that failed after
        staging): only while holding the lake's lock, before this run stages anything."""
        self.store.delete_tree(STAGING)

    def append(self, table: str, rows: pa.Table | pa.RecordBatchReader) -> None:
        """Add rows (in the table's schema) to `table` in one commit, replacing nothing."""
        options = self.store.table_options()
        with self._writes():
            write_deltalake(self.table_uri(table), rows, mode="append", storage_options=options)

    def replace_table(self, table: str, rows: pd.DataFrame) -> None:
        """Replace every row of `table` by `rows` in one commit."""
        with self._writes():
            self._overwrite(table, to_arrow(table, rows))

    def _overwrite(self, table: str, data: pa.Table, predicate: str | None = None) -> None:
        options = self.store.table_options()
        write_deltalake(
            self.table_uri(table),
            data,
            mode="overwrite",
            predicate=predicate,
            storage_options=options,
        )

    @contextmanager
    def _writes(self) -> Iterator[None]:
        """Delta writes: a full disk, or an object store that kept failing, is raised as the
        storage error it is (StorageError), and what delta-rs's runtime then prints on
        stderr (a Rust panic of a writer task that outlived the failed commit) goes to the
        debug log instead of the console."""
        with _native_stderr_unless(StorageError):
            try:
                yield
            except Exception as error:
                fault = storage_fault(error, self.url)
                if fault is None:
                    raise
                raise fault from error

    def remember_sources(self, rows: pd.DataFrame) -> None:
        """Record (replace) what the lake knows of these input files (_sources rows)."""
        batch = Batch()
        batch.add(SOURCES, rows["uri"], rows)
        self.commit(batch)

    def start_attempt(self, uri: str, runs_before: int = 0) -> None:
        """Count a run's attempt at the file `uri` until end_attempt: the count stays only
        when the run itself dies (killed, out of memory) meanwhile, and crashed() reads it.
        `runs_before`: what crashed() said of `uri` when the run started."""
        body = f"{runs_before + 1}\n{uri}"
        self.store.write_bytes(f"{ATTEMPTS}/{_uri_key(uri)}", body.encode())

    def end_attempt(self, uri: str) -> None:
        self.store.delete(f"{ATTEMPTS}/{_uri_key(uri)}")

    def crashed(self) -> dict[str, int]:
        """source URI -> how many runs died while a video was being analysed from it."""
        markers = self.store.read_many(self.store.keys(ATTEMPTS))
        counts = {}
        for key, body in markers.items():
            if key.rsplit("/", 1)[1].startswith("."):
                continue
            runs, _, uri = body.decode().partition("\n")
            counts[uri] = int(runs or 0)
        return counts

    def backlog(self) -> set[str]:
        """The files that the last run stopped by its budget left to do (none: empty)."""
        if not self.store.exists(BACKLOG):
            return set()
        return set(self.store.read_bytes(BACKLOG).decode().splitlines())

    def set_backlog(self, uris: list[str]) -> None:
        """Record the files a run leaves to do (none: the record goes)."""
        if uris:
            self.store.write_bytes(BACKLOG, "\n".join(uris).encode())
        elif self.store.exists(BACKLOG):
            self.store.delete(BACKLOG)

    # -- forgetting ----------------------------------------------------------------------

    def forgotten(self) -> set[str]:
        """The content ids of the videos forgotten so far (_forgotten)."""
        return set(
            self._table(FORGOTTEN).to_pyarrow_table(columns=["video_id"])["video_id"].to_pylist()
        )

    def record_forgotten(self, video_ids: Iterable[str], reason: str) -> None:
        """Add these content ids to _forgotten (ids already there are left as they were)."""
        new = sorted(set(video_ids) - self.forgotten())
        if new:
            now = pd.Timestamp.now(tz="UTC")
            rows = pd.DataFrame({"video_id": new, "reason": reason, "forgotten_at": now})
            self.append(FORGOTTEN, to_arrow(FORGOTTEN, rows))

    def delete_videos(self, video_ids: Iterable[str], uris: Iterable[str]) -> dict[str, int]:
        """Delete every row of these videos (content ids) and of these input files (URIs)
        from every table but _forgotten, `videos` first (the video is then incomplete), and
        the files' attempt markers. Delta's DELETE rewrites only the files that hold such
        rows; the files it replaced stay readable by time travel until purge(). Returns the
        rows deleted per table."""
        ids, files = sorted(set(video_ids)), sorted(set(uris))
        deleted = {}
        with self._writes():
            for name in ("videos", *(n for n in COMMIT_ORDER if n not in ("videos", FORGOTTEN))):
                predicate = _matching(TABLES[name].names, ids, files)
                if predicate:
                    metrics = self._table(name).delete(predicate)
                    deleted[name] = int(metrics.get("num_deleted_rows", 0))
        for uri in files:
            self.end_attempt(uri)
        return deleted

    def delete_tracks(self, tracks: Iterable[tuple[str, int]], person: str) -> dict[str, int]:
        """Delete these face tracks' rows (video_id, track_id) from every table that holds
        tracks, and every row that names `person` (people, decisions). Like delete_videos,
        the files it replaced stay readable by time travel until purge(). Returns the rows
        deleted per table."""
        by_video: dict[str, list[int]] = {}
        for video_id, track_id in tracks:
            by_video.setdefault(video_id, []).append(int(track_id))
        mine = " OR ".join(
            f"(video_id = {_quoted(v)} AND track_id IN ({', '.join(map(str, sorted(t)))}))"
            for v, t in sorted(by_video.items())
        )
        theirs = mine.replace("video_id", "other_video_id").replace("track_id", "other_track_id")
        named = f"person_id = {_quoted(person)}"
        predicates = {
            name: mine
            for name in ("features", "tracks", "baselines", "episodes", IDENTITIES, "track_people")
        }
        predicates["people"] = named
        predicates[DECISIONS] = f"{named} OR other_id = {_quoted(person)} OR {mine} OR {theirs}"
        deleted = {}
        with self._writes():
            for name, predicate in predicates.items():
                if predicate and (mine or name == "people"):
                    metrics = self._table(name).delete(predicate)
                    deleted[name] = int(metrics.get("num_deleted_rows", 0))
        return deleted

    def purge(self) -> dict[str, int]:
        """Make deleted rows unrecoverable, in every table: vacuum every data file that is
        not in the current version, whatever its age; commit nothing, so that the newest
        commit names no row; checkpoint; then delete the log before that checkpoint (a
        commit carries the predicate and the per-file statistics, such as min and max
        video_id, of the rows it touched). Time travel to an earlier version is then no
        longer possible. A purge killed half-way is finished by the next one. Returns the
        data files vacuumed per table."""
        vacuumed = {}
        with self._writes():
            for name in TABLES:
                removed = self._table(name).vacuum(
                    retention_hours=0, dry_run=False, enforce_retention_duration=False
                )
                self._table(name).create_write_transaction([], "append", TABLES[name].arrow)
                table = self._table(name)
                table.create_checkpoint()
                self._expire_log(name, table.version())
                vacuumed[name] = len(removed)
        return vacuumed

    def _expire_log(self, table: str, checkpoint: int) -> None:
        """Delete the commits and checkpoints of `table` older than version `checkpoint`
        (which readers and writers start from)."""
        for key in self.store.keys(f"{table}/_delta_log"):
            version = key.rsplit("/", 1)[1][:20]
            if version.isdigit() and int(version) < checkpoint:
                self.store.delete(key)

    def compact(
        self,
        sort: bool = False,
        retention_hours: float = 168.0,
        min_small_files: int | None = None,
        target_mb: int = 128,
        tables: Iterable[str] = TABLES,
    ) -> dict[str, dict[str, Any]]:
        """Rewrite small files into large ones, then checkpoint the log and vacuum files that
        left the table more than retention_hours ago. With sort, rows are ordered by the
        table's key (z-order over one column), so that a query for one video reads little;
        without it, only the small files are packed together (cheap, O(new rows)). With
        min_small_files, a table is left alone until it has that many files under target_mb.
        Returns what was done per table (of `tables`)."""
        done = {}
        with self._writes():
            for name in tables:
                small = self.small_files(name, target_mb)
                if min_small_files is None or small >= min_small_files:
                    done[name] = self._compact(name, small, sort, retention_hours, target_mb)
        return done

    def _compact(
        self, name: str, small: int, sort: bool, retention_hours: float, target_mb: int
    ) -> dict[str, Any]:
        if sort:  # `emotrack compact`: delta-rs's z-order, every row rewritten
            metrics = self._table(name).optimize.z_order(
                [key_of(name)], target_size=target_mb * 2**20
            )
            done = {
                "files_added": metrics["numFilesAdded"],
                "files_removed": metrics["numFilesRemoved"],
            }
        else:
            done = self._pack(name, target_mb)
        dt = self._table(name)
        dt.create_checkpoint()
        removed = dt.vacuum(
            retention_hours=int(retention_hours), dry_run=False, enforce_retention_duration=False
        )
        return {"small_files_before": small, **done, "vacuumed": len(removed)}

    def _pack(self, name: str, target_mb: int) -> dict[str, int]:
        """Rewrite the table's files under target_mb into files of about target_mb, in one
        commit: each new file written one input file and one batch of rows at a time, so
        that compaction holds about one small file, whatever the table's size (delta-rs's
        optimize held 3.4 times its bin: 436 MiB to pack 74 MB of `features`)."""
        from deltalake.transaction import AddAction, RemoveAction

        dt = self._table(name)
        files = pa.table(dt.get_add_actions(flatten=True)).select(["path", "size_bytes"])
        bins = _bins(files.to_pylist(), target_mb * 2**20)
        now_ms = int(time.time() * 1000)
        actions: list[AddAction | RemoveAction] = []
        for members in bins:
            rows = (r for m in members for r in self._file_rows(name, m["path"]))
            actions.append(self._write_file(name, rows, False, ROW_GROUP_BYTES)[0])
            actions += [RemoveAction(m["path"], False, now_ms, m["size_bytes"]) for m in members]
        if actions:
            dt.create_write_transaction(actions, "append", TABLES[name].arrow)
        return {"files_added": len(bins), "files_removed": sum(len(b) for b in bins)}

    def _file_rows(self, table: str, path: str) -> Iterator[pa.Table]:
        """A data file's rows in the table's schema, about BATCH_BYTES at a time (at least
        1,024 rows; a column that the file predates is null)."""
        key = f"{table}/{path}"
        source = str(self.root / key) if self.local else pa.BufferReader(self.store.read_bytes(key))
        declared = TABLES[table].arrow
        data = pq.ParquetFile(source)
        meta = data.metadata
        row_bytes = sum(meta.row_group(i).total_byte_size for i in range(meta.num_row_groups))
        rows_per_batch = max(1024, BATCH_BYTES * max(meta.num_rows, 1) // max(row_bytes, 1))
        for batch in data.iter_batches(batch_size=rows_per_batch, use_threads=False):
            rows = pa.Table.from_batches([batch])
            for column in declared:
                if column.name not in rows.column_names:
                    rows = rows.append_column(column.name, pa.nulls(rows.num_rows, column.type))
            yield rows.select(declared.names).cast(declared)

    def small_files(self, table: str, target_mb: int = 128) -> int:
        """How many of the table's current files are under target_mb."""
        actions = pa.table(self._table(table).get_add_actions(flatten=True))
        if not actions.num_rows:
            return 0
        return int(pc.sum(pc.less(actions["size_bytes"], target_mb * 2**20)).as_py() or 0)

    # -- reading -------------------------------------------------------------------------

    def files(self, table: str) -> list[str]:
        """The data files of the table's current version (what readers must read): paths on
        disk, URLs on object storage."""
        uris = self._table(table).file_uris()
        return [_local_path(u) for u in uris] if self.local else list(uris)

    def connect(self, tables: Iterable[str] = tuple(PUBLIC)) -> duckdb.DuckDBPyConnection:
        """An in-memory DuckDB connection with a view of each table's current snapshot.

        On disk DuckDB reads the snapshot's Parquet files itself (read_parquet over the file
        list); on object storage it scans the tables as pyarrow datasets (DuckDB's httpfs and
        delta extensions would be downloaded at run time, which offline machines cannot do).
        """
        con = duckdb.connect()
        for name in tables:
            dt = self._table(name)
            files = [_local_path(u) for u in dt.file_uris()] if self.local else None
            if files:
                listed = ", ".join(_quoted(f) for f in files)
                source = f"read_parquet([{listed}], union_by_name=true)"
            elif self.local:
                source = "(SELECT 1 WHERE false)"
            else:
                con.register(f"{name}_dataset", dt.to_pyarrow_dataset())
                source = f"{name}_dataset"
            # The schema's columns in its order; null where no file has one (files written
            # before a release added it).
            present = {row[0] for row in con.execute(f"DESCRIBE SELECT * FROM {source}").fetchall()}
            columns = [
                f'"{f.name}"'
                if f.name in present
                else f'NULL::{_DUCKDB_TYPES.get(str(f.type), "VARCHAR")} AS "{f.name}"'
                for f in TABLES[name].arrow
            ]
            con.execute(f'CREATE VIEW "{name}" AS SELECT {", ".join(columns)} FROM {source}')
        return con

    def read(
        self, table: str, where: str | None = None, params: list[Any] | None = None
    ) -> pd.DataFrame:
        """Rows of `table` (those matching the SQL condition `where`) as a DataFrame, with
        the table's columns even when empty."""
        query = f'SELECT * FROM "{table}"' + (f" WHERE {where}" if where else "")
        with self.connect([table]) as con:
            return con.execute(query, params or []).df()

    def read_video(self, table: str, video_id: str) -> pd.DataFrame:
        """One video's rows of `table`; raises FileNotFoundError if it has none."""
        rows = self.read(table, "video_id = ?", [video_id])
        if rows.empty:
            raise FileNotFoundError(f"no {table} rows for video {video_id} in {self.url}")
        return rows

    def read_videos(self, table: str, video_ids: Iterable[str]) -> pd.DataFrame:
        """The rows of several videos (one scan)."""
        return self.read(table, "video_id IN (SELECT unnest(?))", [sorted(video_ids)])

    def count(self, table: str) -> int:
        """Number of rows in `table`."""
        with self.connect([table]) as con:
            return int(con.execute(f'SELECT count(*) FROM "{table}"').fetchall()[0][0])

    def video_ids(self, table: str) -> list[str]:
        """The videos that have rows in `table`."""
        with self.connect([table]) as con:
            found = con.execute(f'SELECT DISTINCT video_id FROM "{table}"').fetchall()
        return sorted(video_id for (video_id,) in found if video_id is not None)

    def completed(self, model_version: str) -> set[str]:
        """Videos whose `videos` row says ok and that were scored by `model_version`."""
        query = (
            "SELECT video_id FROM videos WHERE status = 'ok' AND video_id IN "
            "(SELECT video_id FROM summaries WHERE model_version = ?)"
        )
        with self.connect(["videos", "summaries"]) as con:
            return {video_id for (video_id,) in con.execute(query, [model_version]).fetchall()}

    def failed(self) -> dict[str, str | None]:
        """source_uri -> video_id of every recorded failure."""
        with self.connect(["failures"]) as con:
            return dict(con.execute("SELECT source_uri, video_id FROM failures").fetchall())

    def sources(self) -> dict[str, dict[str, Any]]:
        """source_uri -> what the lake recorded of it (_sources: size_bytes, mtime_ns, inode,
        etag, video_id), read in a few requests whatever the number of files."""
        table = self._table(SOURCES).to_pyarrow_table()
        return {row["uri"]: row for row in table.to_pylist()}

    def _table(self, name: str) -> DeltaTable:
        try:
            return DeltaTable(self.table_uri(name), storage_options=self.store.table_options())
        except TableNotFoundError:
            raise NotALake(
                f"{self.url} has no {name} table: not an emotrack lake yet, or one written by "
                "emotrack 0.1.0 (`emotrack migrate --lake ...` converts it; so does a run)"
            ) from None


def _bins(files: list[dict[str, Any]], target: int) -> list[list[dict[str, Any]]]:
    """The files under `target` bytes, in groups of at most about `target` bytes in all,
    in the table's order; a group of one is left alone (nothing to pack)."""
    bins: list[list[dict[str, Any]]] = [[]]
    size = 0
    for file in (f for f in files if f["size_bytes"] < target):
        if bins[-1] and size + file["size_bytes"] > target:
            bins.append([])
            size = 0
        bins[-1].append(file)
        size += file["size_bytes"]
    return [b for b in bins if len(b) > 1]


def to_arrow(table: str, rows: pd.DataFrame | pa.Table) -> pa.Table:
    """rows cast to the table's schema, an optional column missing from them null. Raises
    ValueError if a required column (emotrack.schema) is missing or null, or a column cannot
    be cast."""
    declared = TABLES[table]
    if isinstance(rows, pa.Table):
        data = rows.select(declared.names).cast(declared.arrow)
    else:
        missing = [c for c in declared.columns if c.name not in rows.columns]
        if any(c.required for c in missing):
            raise ValueError(f"{table}: missing columns {[c.name for c in missing]}")
        rows = rows.assign(**dict.fromkeys([c.name for c in missing], None))
        data = pa.Table.from_pandas(
            rows[declared.names], schema=declared.arrow, preserve_index=False
        )
    empty = [c.name for c in declared.columns if c.required and data[c.name].null_count]
    if empty:
        raise ValueError(f"{table}: no value for {empty} in some rows")
    return data


@contextmanager
def _native_stderr_unless(kind: type[BaseException]) -> Iterator[None]:
    """File descriptor 2 caught in a pipe while the block runs, then written to the real
    stderr, unless the block raised `kind`: then it goes to the debug log."""
    sys.stderr.flush()
    read, write = os.pipe()
    saved, chunks = os.dup(2), list[bytes]()
    reader = threading.Thread(target=_drain, args=(read, chunks), daemon=True)
    reader.start()
    os.dup2(write, 2)
    os.close(write)
    raised: BaseException | None = None
    try:
        yield
    except BaseException as error:
        raised = error
        raise
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)  # closes the pipe's last writer: the reader sees its end
        os.close(saved)
        reader.join(timeout=5)
        text = b"".join(chunks).decode(errors="replace")
        if text and isinstance(raised, kind):
            _log.debug("stderr while the failed write ran: %s", text)
        elif text:
            sys.stderr.write(text)


def _drain(fd: int, chunks: list[bytes]) -> None:
    with os.fdopen(fd, "rb") as pipe:
        while chunk := pipe.read1(65536):
            chunks.append(chunk)


def _local_path(uri: str) -> str:
    """A path from delta-rs's file URI (percent-encoded: "some%20lake" is "some lake")."""
    return unquote(uri.removeprefix("file://"))


def _uri_key(uri: str) -> str:
    return hashlib.sha256(uri.encode()).hexdigest()[:16]


def _quoted(text: str) -> str:
    """A SQL string literal."""
    return "'" + text.replace("'", "''") + "'"


def _matching(columns: list[str], video_ids: list[str], uris: list[str]) -> str | None:
    """A predicate for the rows of a table with these columns that belong to these videos
    or input files (None: the table can hold none)."""
    terms = []
    if video_ids and "video_id" in columns:
        terms.append(_in("video_id", video_ids))
    for column in ("source_uri", "uri"):
        if uris and column in columns:
            terms.append(_in(column, uris))
    return " OR ".join(f"({t})" for t in terms) or None


def _in(column: str, values: Iterable[str]) -> str:
    return f"{column} IN ({', '.join(_quoted(v) for v in sorted(values))})"


class _FileStats:
    """Delta's per-file statistics (numRecords, and minValues, maxValues and nullCount of
    the columns that are not lists), gathered over the pieces of a file as it is written:
    what lets readers skip the file when they look for other videos."""

    def __init__(self, schema: pa.Schema) -> None:
        self.columns = [f.name for f in schema if not pa.types.is_list(f.type)]
        self.rows = 0
        self.low: dict[str, Any] = {}
        self.high: dict[str, Any] = {}
        self.nulls = dict.fromkeys([f.name for f in schema], 0)

    def add(self, data: pa.Table) -> None:
        self.rows += data.num_rows
        for name in self.nulls:
            self.nulls[name] += data[name].null_count
        for name in self.columns:
            bounds = pc.min_max(data[name]).as_py()
            for kept, value, pick in (
                (self.low, bounds["min"], min),
                (self.high, bounds["max"], max),
            ):
                if value is not None:
                    kept[name] = value if name not in kept else pick(kept[name], value)

    def json(self) -> str:
        def plain(value: Any) -> Any:
            return value.isoformat() if hasattr(value, "isoformat") else value

        return json.dumps(
            {
                "numRecords": self.rows,
                "minValues": {k: plain(v) for k, v in self.low.items()},
                "maxValues": {k: plain(v) for k, v in self.high.items()},
                "nullCount": self.nulls,
            }
        )
