import pandas as pd

from emotrack.commits import Pending
from emotrack.units import VideoResult


def _result(rows: int) -> VideoResult:
    return VideoResult("/a.mp4", "ok", "va", {"features": pd.DataFrame({"x": range(rows)})}, "")


def test_a_commit_is_due_by_count_by_rows_or_by_time_whichever_comes_first() -> None:
    pending = Pending(max_videos=3, max_seconds=60, max_rows=100)
    assert not pending.due(now=0)
    for i in range(2):
        pending.add(_result(10), now=float(i))
    assert not pending.due(now=2) and pending.due(now=60.1)  # the oldest waited 60 s
    pending.add(_result(10), now=3)
    assert pending.due(now=3)  # three videos
    assert len(pending.take()) == 3 and not pending.results and not pending.due(now=1000)
    pending.add(_result(150), now=5)
    assert pending.due(now=5)  # rows
