import numpy as np
import pandas as pd

from emotrack.episodes import EPISODE_COLUMNS, episodes_of


def _tracks(labels: str, track_id: int = 0, start: int = 0) -> pd.DataFrame:
    names = {"H": "happy", "S": "sad", "N": "neutral", "U": "surprise"}
    n = len(labels)
    frames = np.arange(start, start + n)
    keep = [i for i, c in enumerate(labels) if c != "."]  # "." : the face was missed
    return pd.DataFrame(
        {
            "frame_index": frames[keep],
            "timestamp_s": frames[keep] * 0.2,
            "track_id": track_id,
            "emotion": [names[labels[i]] for i in keep],
            "intensity": np.linspace(0.1, 0.9, n)[keep],
            "valence": 0.5,
            "arousal": -0.25,
            "model_version": "m1",
        }
    )


def test_episodes_merge_short_gaps_drop_short_runs_and_neutral() -> None:
    #        0 s       2 s       4 s       6 s
    labels = "NNNHHHHSHHHNNNNSSNNNUUUUU..UUUNN"
    episodes = episodes_of(_tracks(labels))
    assert list(episodes.columns) == EPISODE_COLUMNS
    got = [(e.emotion, round(e.start_s, 1), round(e.end_s, 1)) for e in episodes.itertuples()]
    # happy 0.6-2.2 s through a one-frame sad blip; the 0.4-s sad run is too short; surprise
    # merges across 0.4 s of missed frames; neutral is never an episode
    assert got == [("happy", 0.6, 2.2), ("surprise", 4.0, 6.0)]
    happy = episodes.iloc[0]
    assert happy.duration_s == happy.end_s - happy.start_s
    assert happy.peak_s == 2.0  # its own last frame has the highest intensity
    assert (happy.mean_valence, happy.mean_arousal, happy.model_version) == (0.5, -0.25, "m1")


def test_each_track_has_its_own_episodes() -> None:
    both = pd.concat([_tracks("HHHHHHH"), _tracks("NNSSSSSS", track_id=1, start=3)])
    episodes = episodes_of(both)
    assert episodes[["track_id", "emotion"]].values.tolist() == [[0, "happy"], [1, "sad"]]
    assert episodes_of(both.iloc[:0]).empty
