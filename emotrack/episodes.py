"""Expression episodes: intervals of one expression per face track, derived from `tracks`.

Rules, per face track, in timestamp order:
1. Consecutive frames with the same `emotion` form a run. A run ends one frame step after its
   last frame (the step: the track's median time between analysed frames).
2. Runs of the same emotion separated by less than MERGE_GAP_S (another label for a moment,
   or frames where the face was missed) are merged into one episode.
3. Neutral is the resting state, not an episode. Episodes shorter than MIN_DURATION_S are
   dropped.
4. Only reliable rows count (emotrack.evidence.reliable_rows): an unreliable row is a frame
   where the face was not seen well enough, a gap like a missed frame.
5. The peak is the episode's frame of that emotion with the highest intensity; the means are
   over the episode's frames of that emotion.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from emotrack.evidence import reliable_rows
from emotrack.schema import columns

MERGE_GAP_S = 0.5
MIN_DURATION_S = 1.0
EPISODE_COLUMNS = columns("episodes", without=["video_id"])  # video_id is added on commit


def episodes_of(tracks: pd.DataFrame) -> pd.DataFrame:
    """The episodes of one video's `tracks` rows (one model version), sorted by track, start."""
    rows = []
    for track_id, track in reliable_rows(tracks).groupby("track_id", sort=True):
        track = track.sort_values("timestamp_s")
        times = track["timestamp_s"].to_numpy(np.float64)
        step = float(np.median(np.diff(times))) if len(times) > 1 else 0.2
        for first, last in _merged_runs(track["emotion"].to_numpy(), times, step):
            span = track.iloc[first : last + 1]
            emotion = span["emotion"].iloc[0]
            own = span[span["emotion"] == emotion]
            start, end = float(times[first]), float(times[last]) + step
            if emotion == "neutral" or end - start < MIN_DURATION_S - 1e-9:
                continue
            peak = own.loc[own["intensity"].idxmax()]
            rows.append(
                {
                    "track_id": int(track_id),
                    "emotion": emotion,
                    "start_s": start,
                    "peak_s": float(peak["timestamp_s"]),
                    "end_s": end,
                    "duration_s": end - start,
                    "peak_intensity": float(peak["intensity"]),
                    "mean_valence": float(own["valence"].mean()),
                    "mean_arousal": float(own["arousal"].mean()),
                    "model_version": str(track["model_version"].iloc[0]),
                }
            )
    return pd.DataFrame(rows, columns=EPISODE_COLUMNS)


def _merged_runs(labels: np.ndarray, times: np.ndarray, step: float) -> list[tuple[int, int]]:
    """(first, last) row positions of runs of equal labels; a run joins the latest earlier run
    of its label when the gap between them is under MERGE_GAP_S, swallowing what lies
    between (a blip, shorter than the gap)."""
    runs, start = [], 0
    for i in range(1, len(labels) + 1):
        if i == len(labels) or labels[i] != labels[start]:
            runs.append((start, i - 1))
            start = i
    merged: list[tuple[int, int]] = []
    for first, last in runs:
        target = None
        for j in range(len(merged) - 1, -1, -1):
            if times[first] - (times[merged[j][1]] + step) >= MERGE_GAP_S - 1e-9:
                break  # earlier runs end earlier still
            if labels[merged[j][0]] == labels[first]:
                target = j
                break
        if target is None:
            merged.append((first, last))
        else:
            merged[target:] = [(merged[target][0], last)]
    return merged
