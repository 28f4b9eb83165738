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

from emotrack.faces import Face, iou
from emotrack.html_report import ReportFolder, forget_pages, write_video_pages
from emotrack.lake import Batch, Lake, to_arrow
from emotrack.people_lake import has_people, person_tracks, refresh_people
from emotrack.schema import FORGOTTEN_FACES
from emotrack.scoring import summarise_video
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
    if "person" in intent:
        tracks = [(str(v), int(t)) for v, t in intent["tracks"]]
        return _finish_person(lake, intent["person"], tracks)
    targets = Targets(tuple(intent["video_ids"]), tuple(intent["uris"]))
    return _finish(lake, targets, intent["reason"])


def _finish(lake: Lake, targets: Targets, reason: str) -> dict[str, Any]:
    lake.record_forgotten(targets.video_ids, reason)
    deleted = lake.delete_videos(targets.video_ids, targets.uris)
    pages = forget_pages(lake, targets.video_ids, [base_name(u) for u in targets.uris])
    if has_people(lake):  # their counts and thumbnails; a person with no track left goes
        refresh_people(lake)
    vacuumed = lake.purge()
    lake.store.delete(PENDING)
    return {"rows": deleted, "report_files": pages, "vacuumed": vacuumed}


# -- a person ------------------------------------------------------------------------------


def forget_person(lake: Lake, person: str) -> dict[str, Any] | None:
    """Forget a person (`emotrack forget --person`), with the lake's lock held: where and
    when each of their tracks was is recorded in _forgotten_faces (so that no analysis of
    those videos brings them back: emotrack.units), then their rows are deleted from every
    table (features, tracks, episodes, identities, track_people, people, decisions), their
    thumbnails deleted, their videos' summaries and pages made again without them, the
    other people's counts updated, and every table purged. None: no such person."""
    tracks = person_tracks(lake, person)
    if not tracks:
        return None
    intent = {"person": person, "tracks": tracks}
    lake.store.write_bytes(PENDING, json.dumps(intent).encode())
    places = face_places(lake.read_videos("features", {v for v, _ in tracks}), tracks)
    if len(places):
        lake.append(FORGOTTEN_FACES, to_arrow(FORGOTTEN_FACES, places))
    return _finish_person(lake, person, tracks)


def face_places(features: pd.DataFrame, tracks: list[tuple[str, int]]) -> pd.DataFrame:
    """_forgotten_faces rows of these tracks: their span and mean box, from features."""
    keys = pd.DataFrame(tracks, columns=["video_id", "track_id"])
    places = track_places(features.merge(keys, on=["video_id", "track_id"]), "video_id")
    return (
        places.reset_index()
        .drop(columns="track_id")
        .assign(forgotten_at=pd.Timestamp.now(tz="UTC"))
    )


def track_places(features: pd.DataFrame, *by: str) -> pd.DataFrame:
    """Per track (grouped by `by` and track_id): its first and last second (start_s, end_s)
    and its mean box (bbox_x, bbox_y, bbox_w, bbox_h)."""
    return features.groupby([*by, "track_id"]).agg(
        start_s=("timestamp_s", "min"),
        end_s=("timestamp_s", "max"),
        bbox_x=("bbox_x", "mean"),
        bbox_y=("bbox_y", "mean"),
        bbox_w=("bbox_w", "mean"),
        bbox_h=("bbox_h", "mean"),
    )


def _finish_person(lake: Lake, person: str, tracks: list[tuple[str, int]]) -> dict[str, Any]:
    videos = sorted({v for v, _ in tracks})
    deleted = lake.delete_tracks(tracks, person)
    resummarise(lake, videos)
    report = ReportFolder(lake=lake)
    for video_id, track_id in tracks:
        report.delete(f"thumbs/{video_id}-{track_id}.jpg")
    pages = write_video_pages(lake, report, videos)
    refresh_people(lake)
    vacuumed = lake.purge()
    lake.store.delete(PENDING)
    return {"rows": deleted, "report_files": len(tracks) + pages, "vacuumed": vacuumed}


def resummarise(lake: Lake, video_ids: list[str]) -> None:
    """The summaries of these videos made again from their tracks, for every model version
    they have."""
    videos = lake.read_videos("videos", video_ids).set_index("video_id")
    tracks = lake.read_videos("tracks", video_ids)
    versions = lake.read_videos("summaries", video_ids)[["video_id", "model_version"]]
    rows = [
        summarise_video(
            tracks[(tracks["video_id"] == v) & (tracks["model_version"] == m)],
            int(videos.at[v, "frames_analysed"]),
            m,
            videos.at[v, "duration_s"],
        )
        | {"video_id": v}
        for v, m in versions.drop_duplicates().itertuples(index=False)
        if v in videos.index
    ]
    batch = Batch()
    batch.add("summaries", video_ids, pd.DataFrame(rows))
    lake.commit(batch)


Place = tuple[float, float, float, float, float, float]  # start_s, end_s, x, y, w, h


def forgotten_faces(lake: Lake) -> dict[str, tuple[Place, ...]]:
    """video_id -> where and when each face forgotten with its person was (_forgotten_faces)."""
    rows = lake.read(FORGOTTEN_FACES)
    found: dict[str, list[Place]] = {}
    for r in rows.itertuples():
        place = (r.start_s, r.end_s, r.bbox_x, r.bbox_y, r.bbox_w, r.bbox_h)
        found.setdefault(r.video_id, []).append(tuple(map(float, place)))  # type: ignore[arg-type]
    return {video_id: tuple(places) for video_id, places in found.items()}


def forgotten_tracks(features: pd.DataFrame, places: tuple[Place, ...]) -> set[int]:
    """The tracks of a video's features that are faces forgotten with their person: seen in
    a forgotten face's time span (at least half of the shorter of the two) with a mean box
    that overlaps its box (IoU >= 0.3). The same video analysed again gives the same tracks;
    this finds them even if their ids changed."""
    if not places or features.empty:
        return set()
    hidden = set()
    for track_id, t in track_places(features).iterrows():
        seen = Face(t.bbox_x, t.bbox_y, t.bbox_w, t.bbox_h, 1.0)
        for start, end, x, y, w, h in places:
            shared = min(end, t.end_s) - max(start, t.start_s)
            shorter = min(end - start, t.end_s - t.start_s)
            within = shared >= 0 and (shorter <= 1e-6 or shared / shorter >= 0.5)
            box = iou(seen, Face(x, y, w, h, 1.0))
            if within and box >= 0.3:
                hidden.add(int(track_id))
    return hidden
