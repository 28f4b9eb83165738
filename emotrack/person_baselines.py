"""Resting faces of people (--people): one baseline per person, made from the frames of
every track of theirs in every video, and used for each of their tracks in place of the
track's own (emotrack.baselines says what a baseline is and how it is guarded).

- Made once there is enough of the person: MIN_SECONDS over all their tracks, MIN_RESTING
  frames at rest among them; a person seen in short clips gets one once the clips add up.
- Settled once made: stored in `baselines` (source `person`, `person_id`) with each of their
  tracks, and used as it is for their tracks in later videos. A track of a person with a
  settled resting face that does not use it yet (its video analysed before it was made,
  or by a run stopped before this step; a track moved to the person by a merge) gets it at
  the next run. `emotrack rescore` makes every person's again from all their rows.
- Made where the rows are: DuckDB selects the frames at rest over `features` joined to
  `track_people` (the CNN's neutral probability from the stored logits, AU25), so that only
  those, and two sums per person, reach Python.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import pandas as pd

from emotrack.action_units import AU_COLUMNS
from emotrack.baselines import (
    REST_LIPS_PART,
    REST_NEUTRAL,
    REST_SHAPE_COLUMNS,
    Baseline,
    baseline_of,
)
from emotrack.lake import Lake
from emotrack.models.face_landmarker import SHAPE_COLUMNS
from emotrack.units import RescoreJob, rescore_jobs
from emotrack.vocabulary import NEUTRAL

# The CNN's neutral probability from the stored logits (a stable softmax; lists count from 1).
_NEUTRAL_SQL = (
    f"exp(f.logits[{NEUTRAL + 1}] - list_max(f.logits)) / "
    "list_sum(list_transform(f.logits, lambda x: exp(x - list_max(f.logits))))"
)
_MEASURED_SQL = " AND ".join(f'f."{c}" IS NOT NULL' for c in AU_COLUMNS)


PEOPLE_PER_QUERY = 200  # people whose rows at rest one query brings to Python


def people_jobs(lake: Lake, videos: Iterable[str], per_job: int = 50) -> list[RescoreJob]:
    """The videos to score again with their people's resting faces, as jobs of
    rescore_videos that carry those resting faces, per_job videos each: those among
    `videos` (whose people changed) with a track of a person who has a resting face
    (settled, or made now), and those with a track that does not use its person's settled
    one yet (not_using). Videos stored with `--store labels` have no features to rescore."""
    per_video = not_using(lake)
    for video, tracks in resting_people(lake, videos).items():
        per_video.setdefault(video, {}).update(tracks)
    rows = lake.read(
        "videos", "status = 'ok' AND video_id IN (SELECT unnest(?))", [sorted(per_video)]
    )
    rows = rows[rows["stored"].fillna("full") != "labels"].sort_values("video_id")
    return rescore_jobs(rows.to_dict("records"), per_video, per_job)


def resting_people(
    lake: Lake, videos: Iterable[str] | None = None, settled: bool = True
) -> dict[str, dict[int, Baseline]]:
    """video_id -> track_id -> the resting face of the track's person, for the tracks of
    `videos` (None: every video) whose person has one (person_baselines)."""
    where, params = (
        (None, []) if videos is None else ("video_id IN (SELECT unnest(?))", [sorted(set(videos))])
    )
    track_people = lake.read("track_people", where, params)
    by_person = person_baselines(lake, track_people["person_id"], settled)
    return video_baselines(track_people, by_person)


def not_using(lake: Lake) -> dict[str, dict[int, Baseline]]:
    """video_id -> track_id -> its person's settled resting face, for the tracks of people
    with one whose `baselines` row is not it."""
    query = """
        SELECT t.video_id, t.track_id, t.person_id FROM track_people t
        WHERE t.person_id IN (SELECT person_id FROM baselines WHERE source = 'person')
          AND NOT EXISTS (
              SELECT 1 FROM baselines b
              WHERE b.video_id = t.video_id AND b.track_id = t.track_id
                AND b.source = 'person' AND b.person_id = t.person_id
          )
    """
    with lake.connect(["track_people", "baselines"]) as con:
        behind = con.execute(query).df()
    return video_baselines(behind, settled_baselines(lake, sorted(set(behind["person_id"]))))


def person_baselines(
    lake: Lake, persons: Iterable[str], settled: bool = True
) -> dict[str, Baseline]:
    """person_id -> the resting face of each of `persons` that has one: the settled one
    (with `settled`), else made from all their rows in the lake."""
    wanted = sorted(set(persons))
    found = settled_baselines(lake, wanted) if settled else {}
    todo = [p for p in wanted if p not in found]
    for i in range(0, len(todo), PEOPLE_PER_QUERY):
        found |= made_baselines(lake, todo[i : i + PEOPLE_PER_QUERY])
    return found


def settled_baselines(lake: Lake, persons: list[str]) -> dict[str, Baseline]:
    """person_id -> the resting face stored for them (`baselines`, source `person`); if
    their tracks hold several (people merged since), the one made from most frames at rest."""
    if not persons:
        return {}
    rows = lake.read(
        "baselines", "source = 'person' AND person_id IN (SELECT unnest(?))", [persons]
    )
    rows = rows.sort_values(["resting_frames", "video_id", "track_id"])  # the most frames last
    return {str(r["person_id"]): stored_baseline(r) for r in rows.to_dict("records")}


def stored_baseline(row: dict[str, Any]) -> Baseline:
    """A `baselines` row as a Baseline."""
    key = row["person_id"] if row["source"] == "person" else str(row["track_id"])
    shape = [np.nan if pd.isna(row.get(c)) else float(row[c]) for c in REST_SHAPE_COLUMNS]
    return Baseline(
        str(row["source"]),
        str(key),
        int(row["frames"]),
        int(row["resting_frames"]),
        float(row["seconds"]),
        tuple(float(row[c]) for c in AU_COLUMNS),
        tuple(shape),
    )


def made_baselines(lake: Lake, persons: list[str]) -> dict[str, Baseline]:
    """person_id -> the resting face made from all the rows of each of `persons` that has
    enough of them (emotrack.baselines.baseline_of)."""
    if not persons:
        return {}
    mine = f"""
        SELECT t.person_id, f.video_id, f.track_id, f.timestamp_s, f.au25_lips_part,
               {_NEUTRAL_SQL} AS neutral,
               {", ".join(f'f."{c}"' for c in [*AU_COLUMNS, *SHAPE_COLUMNS])}
        FROM features f JOIN track_people t USING (video_id, track_id)
        WHERE t.person_id IN (SELECT unnest($persons)) AND {_MEASURED_SQL}
    """
    spans = f"""
        SELECT person_id, sum(n)::BIGINT AS frames, sum(span) AS seconds FROM (
            SELECT person_id, count(*) AS n, max(timestamp_s) - min(timestamp_s) AS span
            FROM ({mine}) GROUP BY person_id, video_id, track_id
        ) GROUP BY person_id
    """
    at_rest = f"""
        SELECT * FROM ({mine})
        WHERE neutral >= {REST_NEUTRAL} AND au25_lips_part < {REST_LIPS_PART}
    """
    with lake.connect(["features", "track_people"]) as con:
        seen = con.execute(spans, {"persons": persons}).df()
        resting = con.execute(at_rest, {"persons": persons}).df()
    by_person = dict(iter(resting.groupby("person_id")))
    found = {}
    for person, frames, seconds in seen.itertuples(index=False):
        rows = by_person.get(person, resting.iloc[:0])
        baseline = baseline_of(rows, int(frames), float(seconds), "person", str(person))
        if baseline is not None:
            found[str(person)] = baseline
    return found


def video_baselines(
    track_people: pd.DataFrame, by_person: dict[str, Baseline]
) -> dict[str, dict[int, Baseline]]:
    """video_id -> track_id -> the person's resting face, for each track of `track_people`
    (video_id, track_id, person_id) whose person has one."""
    out: dict[str, dict[int, Baseline]] = {}
    for video_id, track_id, person in track_people[
        ["video_id", "track_id", "person_id"]
    ].itertuples(index=False):
        if person in by_person:
            out.setdefault(str(video_id), {})[int(track_id)] = by_person[person]
    return out
