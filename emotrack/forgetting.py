"""Forgetting videos (`emotrack forget`, and each night's retention): every row, page and
thumbnail of a video deleted, then purged from the lake's history, and its content id
recorded in _forgotten so that no run analyses it again.

    forget_videos(lake, targets, reason)   with the lake's lock held (Lake.writing)

Steps, each safe to repeat: the intent is written to LAKE/_forgetting (the content ids and
files in hand); the ids go into _forgotten (from then on a run skips that content); the
rows are deleted from every table (Delta DELETE, `videos` first: only the files holding
such rows are rewritten); the report's pages, thumbnails and run-page rows go; every table
is purged (Lake.purge: old files vacuumed whatever their age, the log before a new
checkpoint deleted); the intent is deleted last. A forget killed at any moment is finished
by the next command that takes the lock (`emotrack forget`, `emotrack run`, a nightly run):
resume_forgetting.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import pandas as pd

from emotrack.html_report import forget_pages
from emotrack.lake import Lake
from emotrack.storage import base_name

PENDING = "_forgetting"  # the forget in progress: deleted once purged


@dataclass(frozen=True)
class Targets:
    """What a forget deletes: videos by content id, input files by URI."""

    video_ids: tuple[str, ...] = ()
    uris: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return bool(self.video_ids or self.uris)


def resolve(
    known: pd.DataFrame, video_ids: Iterable[str] = (), prefix: str | None = None
) -> Targets:
    """The videos and files to forget: those given by id or whose URI starts with `prefix`,
    with every file that held the same content and every content the same files held; an
    id the lake does not know is left out. known: the (video_id, uri) pairs the lake holds
    (known_files; video_id may be null)."""
    ids = set(video_ids) & set(known["video_id"].dropna())
    uris = set(known.loc[known["uri"].str.startswith(prefix), "uri"]) if prefix else set()
    ids |= set(known.loc[known["uri"].isin(uris), "video_id"].dropna())
    uris |= set(known.loc[known["video_id"].isin(ids), "uri"])
    return Targets(tuple(sorted(ids)), tuple(sorted(uris)))


def known_files(lake: Lake) -> pd.DataFrame:
    """Every (video_id, uri) pair the lake holds: videos, failures and _sources rows."""
    query = """
        SELECT video_id, source_uri AS uri FROM videos
        UNION SELECT video_id, source_uri FROM failures
        UNION SELECT video_id, uri FROM _sources
    """
    with lake.connect(["videos", "failures", "_sources"]) as con:
        return con.execute(query).df()


def expired(lake: Lake, days: float, now: datetime | None = None) -> Targets:
    """The videos processed, and the failures recorded, more than `days` ago."""
    cutoff = (now or datetime.now(UTC)) - timedelta(days=days)
    with lake.connect(["videos", "failures"]) as con:
        ids = con.execute("SELECT video_id FROM videos WHERE processed_at < ?", [cutoff])
        video_ids = [v for (v,) in ids.fetchall()]
        old = con.execute("SELECT source_uri FROM failures WHERE failed_at < ?", [cutoff])
        uris = [u for (u,) in old.fetchall()]
    found = resolve(known_files(lake), video_ids)
    return Targets(found.video_ids, tuple(sorted({*found.uris, *uris})))


def forget_videos(lake: Lake, targets: Targets, reason: str) -> dict[str, Any]:
    """Forget `targets` (reason: `request` or `retention`), with the lake's lock held.
    Returns the rows deleted per table, the report files deleted or rewritten and the data
    files vacuumed per table."""
    intent = {"video_ids": targets.video_ids, "uris": targets.uris, "reason": reason}
    lake.store.write_bytes(PENDING, json.dumps(intent).encode())
    return _finish(lake, targets, reason)


def resume_forgetting(lake: Lake) -> dict[str, Any] | None:
    """Finish a forget that was killed (None: there was none), with the lake's lock held."""
    try:
        intent = json.loads(lake.store.read_bytes(PENDING))
    except FileNotFoundError:
        return None
    targets = Targets(tuple(intent["video_ids"]), tuple(intent["uris"]))
    return _finish(lake, targets, intent["reason"])


def _finish(lake: Lake, targets: Targets, reason: str) -> dict[str, Any]:
    lake.record_forgotten(targets.video_ids, reason)
    deleted = lake.delete_videos(targets.video_ids, targets.uris)
    pages = forget_pages(lake, targets.video_ids, [base_name(u) for u in targets.uris])
    vacuumed = lake.purge()
    lake.store.delete(PENDING)
    return {"rows": deleted, "report_files": pages, "vacuumed": vacuumed}
