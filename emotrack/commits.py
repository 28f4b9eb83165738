"""When a run commits: analysed videos wait in memory until one of the thresholds is reached.

Commits that each hold many videos keep the lake's tables in few files and the Delta log
short; the thresholds bound how much a killed run loses and how much the flow's process
holds (Settings.commit_videos, commit_seconds, commit_rows).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from emotrack.units import VideoResult


@dataclass
class Pending:
    """Results waiting for the next commit."""

    max_videos: int
    max_seconds: float
    max_rows: int
    results: list[VideoResult] = field(default_factory=list)
    rows: int = 0
    since: float | None = None  # monotonic time of the oldest waiting result

    def add(self, result: VideoResult, now: float | None = None) -> None:
        if self.since is None:
            self.since = time.monotonic() if now is None else now
        self.results.append(result)
        self.rows += sum(len(rows) for rows in result.rows.values())

    def due(self, now: float | None = None) -> bool:
        """Whether a threshold is reached: as many videos, rows, or seconds waited."""
        if not self.results:
            return False
        waited = (time.monotonic() if now is None else now) - (self.since or 0.0)
        return (
            len(self.results) >= self.max_videos
            or self.rows >= self.max_rows
            or waited >= self.max_seconds
        )

    def take(self) -> list[VideoResult]:
        """The waiting results (none wait after this)."""
        taken, self.results, self.rows, self.since = self.results, [], 0, None
        return taken
