"""How well face tracks are told apart and grouped into people, on the identity set.

The set (emotrack.training.identity_set) is analysed clip by clip as the pipeline analyses a
video (emotrack.analysis.extract_features, identity on); each track gets its person from the
clip's truth (where and when its face is), and the tracks of each part of the set are grouped
as `--people` groups them (emotrack.people.assign_people). Scores:
- BCubed precision and recall over tracks (Bagga & Baldwin 1998): per track, the share of
  its group that is its person, and the share of its person that is in its group; means;
- per clip where people follow one another at the same place, the appearances that got a
  track of their own (and no track shared by two appearances).
The threshold is chosen on the `choose` part (the highest recall whose precision is at least
MIN_PRECISION) and scored on the `score` part.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from emotrack.people import assign_people
from emotrack.settings import Settings
from emotrack.training.identity_set import WIDTH, X_TOLERANCE

if TYPE_CHECKING:
    from emotrack.analysis import Models

MIN_PRECISION = 0.97
THRESHOLDS = np.round(np.arange(0.20, 0.81, 0.025), 3)


def analyse_clips(folder: Path, settings: Settings, models: Models | None = None) -> pd.DataFrame:
    """One row per track of every clip in `folder`: clip, track_id, x (mean box centre as a
    fraction of the width), start_s, end_s, rows, embedding (float32 (128,); None with
    identity off). models: emotrack.analysis.Models (None: load_models(settings))."""
    from emotrack.analysis import extract_features, load_models
    from emotrack.video import VideoSource

    models = load_models(settings) if models is None else models
    found = []
    for clip in sorted(folder.glob("*.mp4")):
        features = extract_features(VideoSource.from_path(clip), *models, settings)
        table = features.table
        for track_id, rows in table.groupby("track_id"):
            centre = (rows["bbox_x"] + rows["bbox_w"] / 2).mean() / WIDTH
            found.append(
                {
                    "clip": clip.stem,
                    "track_id": int(track_id),
                    "x": float(centre),
                    "start_s": float(rows["timestamp_s"].min()),
                    "end_s": float(rows["timestamp_s"].max()),
                    "rows": len(rows),
                    "embedding": features.identities.get(int(track_id)),
                }
            )
    return pd.DataFrame(found)


def label_tracks(tracks: pd.DataFrame, truth: pd.DataFrame) -> pd.DataFrame:
    """tracks with `person` and `part` from the truth: of the clip's people whose stretch
    the track overlaps, the one whose x is nearest the track's, if within X_TOLERANCE (None
    otherwise: a face the truth does not name)."""
    people, parts = [], []
    for track in tracks.itertuples():
        rows = truth[
            (truth["clip"] == track.clip)
            & (truth["start_s"] <= track.end_s)
            & (truth["end_s"] > track.start_s)
        ]
        distance = (rows["x"] - track.x).abs()
        best = distance.idxmin() if len(rows) and distance.min() <= X_TOLERANCE else None
        people.append(None if best is None else rows.at[best, "person"])
        parts.append(None if best is None else rows.at[best, "part"])
    return tracks.assign(person=people, part=parts)


def bcubed(truth: np.ndarray, groups: np.ndarray) -> tuple[float, float]:
    """BCubed (precision, recall) of a grouping of items, given each item's true class."""
    same_group = groups[:, None] == groups[None, :]
    same_class = truth[:, None] == truth[None, :]
    both = (same_group & same_class).sum(axis=1)
    return float(np.mean(both / same_group.sum(axis=1))), float(
        np.mean(both / same_class.sum(axis=1))
    )


@dataclass(frozen=True)
class Score:
    threshold: float
    precision: float
    recall: float
    tracks: int
    people: int
    groups: int


def score_grouping(tracks: pd.DataFrame, threshold: float) -> Score:
    """BCubed of the people that `--people` would make of the tracks that have a person
    (emotrack.people.assign_people, as in a new lake)."""
    named = tracks[tracks["person"].notna()].reset_index(drop=True)
    identities = named.assign(video_id=named["clip"])[["video_id", "track_id", "embedding"]]
    people = assign_people(identities, {}, threshold).people
    pairs = zip(named["clip"], named["track_id"], strict=True)
    groups = np.array([people[(clip, int(track))] for clip, track in pairs])
    precision, recall = bcubed(named["person"].to_numpy(str), groups)
    return Score(
        threshold,
        precision,
        recall,
        len(named),
        named["person"].nunique(),
        len(set(groups.tolist())),
    )


def choose_threshold(tracks: pd.DataFrame) -> tuple[Score, list[Score]]:
    """The chosen threshold's score, and every threshold's: of THRESHOLDS, those with the
    best (recall, precision) at precision >= MIN_PRECISION (any precision if none reaches
    it); of their longest run of neighbours, the middle one (the widest margin both ways)."""
    scores = [score_grouping(tracks, t) for t in THRESHOLDS]
    good = [s for s in scores if s.precision >= MIN_PRECISION] or scores
    best = max((s.recall, s.precision) for s in good)
    runs: list[list[Score]] = [[]]
    for s in scores:
        if s in good and (s.recall, s.precision) == best:
            runs[-1].append(s)
        elif runs[-1]:
            runs.append([])
    longest = max(runs, key=len)
    return longest[(len(longest) - 1) // 2], scores


def appearances(tracks: pd.DataFrame, truth: pd.DataFrame, clip: str) -> tuple[int, int, int]:
    """In a clip where people follow one another at the same place: (appearances, those
    that got a track of their own: one track, not shared with another appearance, tracks)."""
    stretches = truth[truth["clip"] == clip].reset_index(drop=True)
    mine = tracks[tracks["clip"] == clip]
    owners: dict[int, list[int]] = {}  # track -> the appearances it covers
    covered: dict[int, list[int]] = {}  # appearance -> the tracks covering it
    for track in mine.itertuples():
        for i, stretch in stretches.iterrows():
            if min(track.end_s, stretch.end_s) - max(track.start_s, stretch.start_s) > 0.15:
                owners.setdefault(track.track_id, []).append(int(i))
                covered.setdefault(int(i), []).append(track.track_id)
    alone = sum(
        1
        for i in range(len(stretches))
        if len(covered.get(i, [])) == 1 and len(owners[covered[i][0]]) == 1
    )
    return len(stretches), alone, len(mine)
