"""People in the lake (`--people`): tracks grouped into people, people's decisions kept.

    update_people(lake, threshold)        after a run's commits, with the lake's lock held
    name_person / merge_people / split_person     `emotrack people ...`

Tables (emotrack.schema): `_identities` (a track's identity, written with its video's rows),
`track_people` (video_id, track_id -> person_id, rewritten whole by each grouping: a merge or
a split rewrites this small table, never the videos' own rows), `people` (one row per person,
rewritten whole) and `_people_decisions` (names, merges, splits, and the merges the grouping
made). The grouping itself is emotrack.people.assign_people.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from uuid import uuid4

import numpy as np
import pandas as pd

from emotrack.evidence import trust
from emotrack.html_report import ReportFolder, write_people_page, write_video_pages
from emotrack.lake import Lake, to_arrow
from emotrack.people import Assignment, Split, Track, assign_people, number
from emotrack.schema import DECISIONS, IDENTITIES, columns


@dataclass(frozen=True)
class Grouping:
    """What a grouping did: people now, tracks, new people, merges."""

    people: int
    tracks: int
    new: int
    merges: list[tuple[str, str]]
    videos: frozenset[str] = frozenset()  # whose tracks' people changed


def has_people(lake: Lake) -> bool:
    """Whether the lake holds people (or track identities to group)."""
    return any(lake.count(t) for t in ("people", IDENTITIES) if lake.has_table(t))


def update_people(lake: Lake, threshold: float, touched: Iterable[str] = ()) -> Grouping:
    """Group every track of `_identities` into people (known tracks keep theirs, new tracks
    join, start or merge people), rewrite `track_people` and `people`, record the merges,
    and write the pages of the videos whose people changed (and of `touched`, videos whose
    people a decision changed before). Returns what changed."""
    identities = lake.read(IDENTITIES)
    before = lake.read("track_people")
    decisions = lake.read(DECISIONS)
    present = set(zip(identities["video_id"], identities["track_id"].astype(int), strict=True))
    known = {  # a track analysed again keeps its person; a track gone is dropped
        (v, int(t)): p
        for v, t, p in zip(before["video_id"], before["track_id"], before["person_id"], strict=True)
        if (v, int(t)) in present
    }
    first = _next_number(lake, before, decisions)
    assignment = assign_people(
        identities,
        known,
        threshold,
        links=_links(decisions),
        splits=_splits(decisions),
        next_number=first,
    )
    given = [number(p) for p in assignment.people.values()]
    _remember_next(lake, max([first - 1, *given]) + 1)
    merges = [{"kind": "auto-merge", "person_id": p, "other_id": o} for p, o in assignment.merges]
    _record(lake, merges)
    write_people(lake, assignment, identities, lake.read(DECISIONS))
    changed = {v for (v, t), p in assignment.people.items() if known.get((v, t)) != p}
    publish(lake, changed | set(touched))
    new = set(assignment.people.values()) - set(known.values())
    return Grouping(
        len(set(assignment.people.values())),
        len(assignment.people),
        len(new),
        assignment.merges,
        frozenset(changed),
    )


def refresh_people(lake: Lake, touched: Iterable[str] = ()) -> None:
    """Rewrite `people` from `track_people` as it is (no grouping), and the people page
    and the pages of `touched` videos: after tracks were deleted, their people's counts and
    thumbnails change, and a person with no track left is gone; after a name, their pages
    say it."""
    before = lake.read("track_people")
    write_people(lake, _as_assignment(before), lake.read(IDENTITIES), lake.read(DECISIONS))
    publish(lake, touched)


def publish(lake: Lake, videos: Iterable[str]) -> None:
    """The report after people changed: the pages of `videos` (their faces' people) and
    the people page written again."""
    out = ReportFolder(lake=lake)
    videos = sorted(set(videos))
    if videos:
        write_video_pages(lake, out, videos)
    write_people_page(lake, out)


def write_people(
    lake: Lake, assignment: Assignment, identities: pd.DataFrame, decisions: pd.DataFrame
) -> None:
    """Rewrite `track_people` and `people` from an assignment."""
    tracks = pd.DataFrame(
        [(v, t, p) for (v, t), p in sorted(assignment.people.items())],
        columns=["video_id", "track_id", "person_id"],
    )
    videos = lake.read("videos")
    thumbs = set(ReportFolder(lake).names("thumbs"))
    lake.replace_table("track_people", tracks)
    lake.replace_table("people", people_rows(tracks, identities, videos, names(decisions), thumbs))


def people_rows(
    tracks: pd.DataFrame,
    identities: pd.DataFrame,
    videos: pd.DataFrame,
    named: dict[str, str],
    thumbnails: set[str],
) -> pd.DataFrame:
    """One `people` row per person of `tracks` (video_id, track_id, person_id): seen when
    their videos were recorded (else processed), their counts, time on screen and the
    thumbnail of their best track (highest quality) that has one (`thumbnails`: the names
    under the report folder, `thumbs/<video_id>-<track_id>.jpg`)."""
    when = videos.assign(seen=videos["recorded_at"].fillna(videos["processed_at"]))
    rows = tracks.merge(identities, on=["video_id", "track_id"]).merge(
        when[["video_id", "seen"]], on="video_id", how="left"
    )
    rows["seconds"] = rows["end_s"] - rows["start_s"]
    rows["thumb"] = "thumbs/" + rows["video_id"] + "-" + rows["track_id"].astype(str) + ".jpg"
    rows["has_thumb"] = rows["thumb"].isin(thumbnails)
    out = []
    for person, mine in rows.groupby("person_id"):
        shown = mine[mine["has_thumb"]].sort_values("quality", ascending=False)
        out.append(
            {
                "person_id": person,
                "name": named.get(str(person)),
                "first_seen": mine["seen"].min(),
                "last_seen": mine["seen"].max(),
                "videos": mine["video_id"].nunique(),
                "tracks": len(mine),
                "seconds": float(mine["seconds"].sum()),
                "thumbnail": shown["thumb"].iloc[0] if len(shown) else None,
            }
        )
    table = pd.DataFrame(out, columns=columns("people"))
    return table.sort_values("person_id", key=lambda ids: ids.map(number), ignore_index=True)


def names(decisions: pd.DataFrame) -> dict[str, str]:
    """person_id -> name, replaying the decisions in order: a name given, and a merged
    person's name kept by the person it merged into if that one had none."""
    named: dict[str, str] = {}
    for row in decisions.sort_values("made_at", kind="stable").itertuples():
        if row.kind == "name":
            named[row.person_id] = row.value
        elif row.kind in ("merge", "auto-merge") and isinstance(row.other_id, str):
            merged = named.pop(row.other_id, None)
            if merged is not None:
                named.setdefault(row.person_id, merged)
    return named


def _links(decisions: pd.DataFrame) -> list[tuple[Track, Track]]:
    merges = decisions[(decisions["kind"] == "merge") & decisions["video_id"].notna()]
    return [
        ((r.video_id, int(r.track_id)), (r.other_video_id, int(r.other_track_id)))
        for r in merges.itertuples()
    ]


def _splits(decisions: pd.DataFrame) -> list[Split]:
    found = []
    for _, rows in decisions[decisions["kind"] == "split"].groupby("decision_id"):
        moved = rows[rows["video_id"].notna()]
        left = rows[rows["other_video_id"].notna()]
        found.append(
            Split(
                frozenset(zip(moved["video_id"], moved["track_id"].astype(int), strict=True)),
                frozenset(
                    zip(left["other_video_id"], left["other_track_id"].astype(int), strict=True)
                ),
            )
        )
    return found


NEXT = "_people/next"  # the next person number: ids are never given twice, even forgotten


def _next_number(lake: Lake, tracks: pd.DataFrame, decisions: pd.DataFrame) -> int:
    """One more than any person number ever given (people merged away or forgotten too)."""
    ids = [*tracks["person_id"], *decisions["person_id"], *decisions["other_id"].dropna()]
    try:
        remembered = int(lake.store.read_bytes(NEXT))
    except FileNotFoundError:
        remembered = 1
    return max(remembered, max((number(p) for p in ids), default=0) + 1)


def _remember_next(lake: Lake, next_number: int) -> None:
    lake.store.write_bytes(NEXT, f"{next_number}\n".encode())


def _record(lake: Lake, rows: Sequence[Mapping[str, object]]) -> None:
    """Append `rows` to _people_decisions as one decision (one id, one time); none: no-op."""
    if rows:
        stamp = {"decision_id": uuid4().hex[:12], "made_at": pd.Timestamp.now(tz="UTC")}
        lake.append(DECISIONS, to_arrow(DECISIONS, pd.DataFrame([{**stamp, **r} for r in rows])))


# -- people's decisions --------------------------------------------------------------------


class UnknownPerson(LookupError):
    """A person id the lake does not hold."""


def person_tracks(lake: Lake, person: str) -> list[Track]:
    """The face tracks (video_id, track_id) of a person; none for an unknown id."""
    rows = lake.read("track_people", "person_id = ?", [person])
    return sorted(zip(rows["video_id"], rows["track_id"].astype(int), strict=True))


def _tracks_of(lake: Lake, person: str) -> list[Track]:
    """person_tracks, or UnknownPerson if there are none."""
    tracks = person_tracks(lake, person)
    if not tracks:
        raise UnknownPerson(f"no person {person} in {lake.url} (`emotrack people` lists them)")
    return tracks


def name_person(lake: Lake, person: str, name: str) -> None:
    """Give a person a name (kept through every later grouping and merge)."""
    tracks = _tracks_of(lake, person)
    _record(lake, [{"kind": "name", "person_id": person, "value": name}])
    refresh_people(lake, {v for v, _ in tracks})


def merge_people(lake: Lake, one: str, other: str, threshold: float) -> str:
    """One person from two: the older id stays. Kept through every later grouping: a
    track of each is linked for good. Returns the id kept."""
    first, second = _best_track(lake, one), _best_track(lake, other)
    kept, merged = sorted([(one, first), (other, second)], key=lambda p: number(p[0]))
    row = {
        "kind": "merge",
        "person_id": kept[0],
        "other_id": merged[0],
        "video_id": kept[1][0],
        "track_id": kept[1][1],
        "other_video_id": merged[1][0],
        "other_track_id": merged[1][1],
    }
    _record(lake, [row])
    before = lake.read("track_people")
    before.loc[before["person_id"] == merged[0], "person_id"] = kept[0]
    lake.replace_table("track_people", before)
    update_people(lake, threshold, before.loc[before["person_id"] == kept[0], "video_id"])
    return kept[0]


def split_person(lake: Lake, person: str, moved: list[Track], threshold: float) -> str:
    """The tracks `moved` of `person` become a person of their own, kept apart from the
    person's other tracks through every later grouping. Returns the new person's id."""
    mine = set(_tracks_of(lake, person))
    moving, left = set(moved) & mine, mine - set(moved)
    if not moving or not left:
        raise ValueError(
            f"a split of {person} must move some of its {len(mine)} track(s) and leave some"
        )
    decisions = lake.read(DECISIONS)
    number_ = _next_number(lake, lake.read("track_people"), decisions)
    _remember_next(lake, number_ + 1)
    fresh = f"p{number_}"
    split = {"kind": "split", "person_id": person, "other_id": fresh}
    _record(
        lake,
        [split | {"video_id": v, "track_id": t} for v, t in sorted(moving)]
        + [split | {"other_video_id": v, "other_track_id": t} for v, t in sorted(left)],
    )
    before = lake.read("track_people")
    is_moved = [
        (v, int(t)) in moving for v, t in zip(before["video_id"], before["track_id"], strict=True)
    ]
    before.loc[is_moved, "person_id"] = fresh
    lake.replace_table("track_people", before)
    update_people(lake, threshold, {v for v, _ in mine})
    return fresh


def _best_track(lake: Lake, person: str) -> Track:
    tracks = pd.DataFrame(_tracks_of(lake, person), columns=["video_id", "track_id"])
    identities = lake.read(IDENTITIES).merge(tracks, on=["video_id", "track_id"])
    best = identities.sort_values(["quality", "video_id", "track_id"], ascending=False).iloc[0]
    return str(best["video_id"]), int(best["track_id"])


def _as_assignment(track_people: pd.DataFrame) -> Assignment:
    return Assignment(
        {
            (v, int(t)): p
            for v, t, p in zip(
                track_people["video_id"],
                track_people["track_id"],
                track_people["person_id"],
                strict=True,
            )
        }
    )


def identity_rows(
    video_id: str, features: pd.DataFrame, found: dict[int, np.ndarray]
) -> pd.DataFrame:
    """A video's `_identities` rows: per track of `features` that has an identity (`found`:
    track_id -> embedding), its span and its best view's quality (the expression's trust:
    size, pose, fit; emotrack.evidence.trust)."""
    spans = features.assign(quality=trust(features)).groupby("track_id")
    rows = [
        {
            "video_id": video_id,
            "track_id": int(track),
            "embedding": found[int(track)].astype(np.float32),
            "start_s": float(rows["timestamp_s"].min()),
            "end_s": float(rows["timestamp_s"].max()),
            "quality": float(rows["quality"].max()),
        }
        for track, rows in spans
        if int(track) in found
    ]
    return pd.DataFrame(rows, columns=columns(IDENTITIES))
