"""What a run shows on its console: a live display on a terminal, plain lines elsewhere.

The flow reports videos starting and finishing; the Dask workers report every batch of frames
they analyse (through Dask's event log, see `cluster.report`). `RunProgress` keeps
the figures and draws them:
- on a terminal: a `rich` progress display, refreshed at most 4 times a second, with videos
  done of total, the videos being analysed, frames analysed per second, video-seconds per
  wall-second, failures so far and an ETA, and one line per finished video above it;
- otherwise (cron, CI, a Prefect worker, a pipe): one plain line when a video starts and one
  when it ends, with its figures, and no escape codes.
Both end with one line: how long the run took and how many video-seconds per second it
analysed. Settings.progress (EMOTRACK_PROGRESS) = plain forces plain lines, off silences both.
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass, field
from typing import Any, TextIO


@dataclass
class _Video:
    name: str
    duration_s: float = 0.0
    rate: float = 0.0
    frames: int = 0
    started: float = field(default_factory=time.monotonic)


class RunProgress:
    """Figures of one run, drawn as it goes. Thread-safe: workers' events arrive on Dask's
    event-loop thread, videos start and finish on the flow's threads."""

    def __init__(self, total: int, stream: TextIO | None = None, mode: str = "auto") -> None:
        self.total = total
        self.stream = stream or sys.stdout
        self.mode = _mode(self.stream) if mode == "auto" else mode
        self.started = time.monotonic()
        self.done = self.failed = self.frames = 0
        self.seconds = 0.0  # video-seconds analysed, over finished and running videos
        self.known, self.known_s = 0, 0.0  # videos whose duration is known, and its sum
        self.running: dict[str, _Video] = {}
        self._lock = threading.Lock()
        self._live: Any = None
        if self.mode == "live" and total:
            self._live = _LiveDisplay(self)

    def started_video(self, key: str, name: str, duration_s: float, rate: float) -> None:
        with self._lock:
            self.running[key] = _Video(name, duration_s, rate)
            self.known, self.known_s = self.known + 1, self.known_s + duration_s
        if self.mode == "plain":
            self._print(f"start   {name} ({duration_s:.1f} s of video)")
        self._refresh()

    def analysed(self, key: str, frames: int) -> None:
        """A worker analysed `frames` more frames of the video."""
        with self._lock:
            video = self.running.get(key)
            if video is None:
                return
            video.frames += frames
            self.frames += frames
            if video.rate:
                self.seconds += frames / video.rate
        self._refresh()

    def finished_video(self, key: str | None, name: str, status: str, detail: str) -> None:
        with self._lock:
            video = self.running.pop(key, None) if key else None
            if video is None:  # it never started (unreadable at the probe): nothing left of it
                self.known += 1
            self.done += 1
            self.failed += status != "ok"
            took = time.monotonic() - video.started if video else 0.0
            frames = video.frames if video else 0
        figures = f"{frames} frames in {took:.1f} s, " if frames else ""
        line = f"{status:<7} {name}: {figures}{detail} [{self.done}/{self.total}]"
        if self.mode == "plain":
            self._print(line)
        elif self._live is not None:
            self._live.line(line)
        self._refresh()

    def close(self) -> str:
        """Stop the display; returns (and shows) the closing line."""
        if self._live is not None:
            self._live.stop()
        elapsed = time.monotonic() - self.started
        line = (
            f"analysed {self.done} of {self.total} video(s) in {elapsed:.1f} s: "
            f"{self.seconds:.0f} video-s at {self.seconds / max(elapsed, 1e-9):.1f} video-s per s"
        )
        if self.mode != "off":
            self._print(line)
        return line

    def figures(self) -> dict[str, float]:
        """The live figures: rates since the start, and the ETA in seconds (None: unknown)."""
        with self._lock:
            elapsed = max(time.monotonic() - self.started, 1e-9)
            mean = self.known_s / self.known if self.known else 0.0
            total_s = self.known_s + mean * (self.total - self.known)
            rate = self.seconds / elapsed
            eta = (total_s - self.seconds) / rate if rate > 0 and total_s else None
            eta = 0.0 if self.done == self.total else eta
            return {
                "frames_per_s": self.frames / elapsed,
                "video_s_per_s": rate,
                "eta_s": max(eta, 0.0) if eta is not None else float("nan"),
            }

    def current(self) -> str:
        with self._lock:
            names = [v.name for v in self.running.values()]
        return ", ".join(names[:2]) + (f" +{len(names) - 2}" if len(names) > 2 else "")

    def _refresh(self) -> None:
        if self._live is not None:
            self._live.update()

    def _print(self, line: str) -> None:
        with self._lock:  # one write per line: lines from several threads never interleave
            self.stream.write(line + "\n")
            self.stream.flush()


def _mode(stream: TextIO) -> str:
    return "live" if stream.isatty() else "plain"


class _LiveDisplay:
    """The terminal display: a rich Progress bar over videos, with the run's figures."""

    def __init__(self, progress: RunProgress) -> None:
        from rich.console import Console
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self.progress = progress
        self.bar = Progress(
            TextColumn("videos"),
            BarColumn(bar_width=12),
            MofNCompleteColumn(),
            TextColumn("{task.fields[figures]}"),
            console=Console(file=progress.stream),
            refresh_per_second=4,
            transient=False,
        )
        self.task = self.bar.add_task("videos", total=progress.total, figures="starting")
        self.bar.start()

    def update(self) -> None:
        p, f = self.progress, self.progress.figures()
        eta = "?" if f["eta_s"] != f["eta_s"] else _clock(f["eta_s"])
        figures = (
            f"{f['frames_per_s']:.0f} frames/s {f['video_s_per_s']:.1f} video-s/s "
            f"{p.failed} failed ETA {eta} {p.current()}"
        )
        self.bar.update(self.task, completed=p.done, figures=figures)

    def line(self, text: str) -> None:
        self.bar.console.print(text, highlight=False, markup=False)

    def stop(self) -> None:
        self.update()
        self.bar.stop()


def _clock(seconds: float) -> str:
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
