"""What a run did and what a lake holds, in brief: the run's table and summary for Prefect,
and the terminal's account of a lake."""

from __future__ import annotations

import json
import tempfile
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from emotrack.html_report import REPORT_DIR, ReportFolder, RunRows
from emotrack.lake import Lake
from emotrack.storage import base_name
from emotrack.units import VideoResult

# What the run's table says of a file that did not end ok and has no row in `failures`.
UNRECORDED = {
    "error": "unexpected error, logged with its traceback in this run's logs; nothing was "
    "recorded, so the next run tries the video again",
}
SKIPPED = {
    "skipped": "already complete (same content), not read again",
    "quarantined": "unreadable earlier and unchanged since: see `failures`",
}
MAX_LISTED = 200  # videos listed by name in the run's summary artifact


@dataclass(frozen=True)
class Outcome:
    """One file of a run: what happened to it (a row of the run's table and page)."""

    video: str
    uri: str
    status: str  # ok, failed (recorded), error (not recorded), skipped, quarantined
    video_id: str | None = None
    frames: int | None = None
    frames_with_face: int | None = None
    tracks: int | None = None
    dominant_emotion: str | None = None
    detail: str | None = None  # the reason of a file that did not end ok, else a summary


class OutcomeLog:
    """A run's outcomes as they come: each one a JSON line in a temporary file, so that the
    run holds their counts and the first MAX_LISTED problems (failed or error), not an
    object per video (a first run over a big archive has millions). Iterating reads them
    back in the order they came."""

    PROBLEMS = ("failed", "error")

    def __init__(self) -> None:
        self._file = tempfile.TemporaryFile("w+", encoding="utf-8")  # noqa: SIM115 - closed by close()
        self.counts: Counter[str] = Counter()
        self.problems: list[Outcome] = []  # the first MAX_LISTED

    def add(self, o: Outcome) -> None:
        self._file.write(json.dumps(asdict(o)) + "\n")
        self.counts[o.status] += 1
        if o.status in self.PROBLEMS and len(self.problems) < MAX_LISTED:
            self.problems.append(o)

    def extend(self, outcomes: Iterable[Outcome]) -> None:
        for o in outcomes:
            self.add(o)

    def __len__(self) -> int:
        return sum(self.counts.values())

    def __iter__(self) -> Iterator[Outcome]:
        self._file.flush()
        with open(self._file.fileno(), encoding="utf-8", closefd=False) as lines:
            lines.seek(0)
            for line in lines:
                yield Outcome(**json.loads(line))

    def page_rows(self) -> RunRows:
        """The rows of the run's page (emotrack.html_report.write_run_page), read from here."""
        return _PageRows(self)

    def close(self) -> None:
        self._file.close()


class _PageRows:
    def __init__(self, log: OutcomeLog) -> None:
        self.log = log

    def __len__(self) -> int:
        return len(self.log)

    def __iter__(self) -> Iterator[dict[str, Any]]:
        for o in self.log:
            yield {"video": o.video, "status": o.status, "detail": o.detail, "video_id": o.video_id}


def outcome_of(result: VideoResult) -> Outcome:
    """The outcome of an analysed (or unreadable) file."""
    summary = result.rows.get("summaries")
    facts = summary.iloc[0].to_dict() if summary is not None and len(summary) else {}
    return Outcome(
        result.name,
        result.uri,
        result.status,
        result.video_id,
        _int(facts.get("frames_analysed")),
        _int(facts.get("frames_with_face")),
        _int(facts.get("n_tracks")),
        facts.get("dominant_emotion") or None,
        result.detail,
    )


def artifact_row(o: Outcome) -> dict[str, object]:
    """A row of the run's table artifact (one per commit)."""
    return {
        "video": o.video,
        "status": o.status,
        "frames": o.frames,
        "frames_with_face": o.frames_with_face,
        "tracks": o.tracks,
        "dominant_emotion": o.dominant_emotion,
        "reason": None if o.status == "ok" else o.detail,
    }


def outcome(uri: str, status: str, video_id: str | None = None) -> Outcome:
    """The outcome of a file that was not analysed (skipped, quarantined, error)."""
    detail = SKIPPED.get(status) or UNRECORDED.get(status)
    return Outcome(base_name(uri), uri, status, video_id, detail=detail)


def run_markdown(outcomes: OutcomeLog, lake: Lake, pages: str | None, run_page: str | None) -> str:
    """The run in a few lines: counts, the files that did not end ok with their reasons,
    where the outputs are."""
    counts = outcomes.counts
    lines = [
        "# emotrack nightly run",
        "",
        ", ".join(f"**{n}** {status}" for status, n in sorted(counts.items())) or "no videos",
        "",
    ]
    problems = sum(counts[s] for s in OutcomeLog.PROBLEMS)
    if problems:
        lines += ["## Not processed", ""]
        lines += [f"- `{o.video}` ({o.status}): {o.detail}" for o in outcomes.problems]
        if problems > len(outcomes.problems):
            lines.append(f"- ... and {problems - len(outcomes.problems)} more: see `failures`")
        lines.append("")
    lines += [
        "## Outputs",
        "",
        f"Lake: `{lake.url}`",
        "",
        *([f"HTML report: [{pages}]({_link(pages)})", ""] if pages else []),
        *([f"This run: [{run_page}]({_link(run_page)})", ""] if run_page else []),
        "```",
        f'emotrack sql --lake {lake.url} "SELECT * FROM summaries"',
        "```",
    ]
    return "\n".join(lines)


def describe_lake(root: str | Path, limit: int = 20) -> str:
    """The newest videos' results and failures (at most `limit` of each), the tables' sizes
    and where to query them."""
    lake = Lake(root)
    with lake.connect() as con:
        done = con.execute(
            "SELECT v.video_id, v.source_uri, v.frames_analysed, s.frames_with_face, s.n_tracks,"
            " s.dominant_emotion, s.mean_valence, s.mean_arousal FROM videos v LEFT JOIN "
            "(SELECT * FROM summaries QUALIFY row_number() OVER (PARTITION BY video_id "
            "ORDER BY model_version) = 1) s USING (video_id) WHERE v.status = 'ok' "
            f"ORDER BY v.processed_at DESC, v.source_uri LIMIT {limit}"
        ).df()
        failures = con.execute(
            f"SELECT * FROM failures ORDER BY failed_at DESC, source_uri LIMIT {limit}"
        ).df()
        sizes = {
            t: con.execute(f"SELECT count(*) FROM {t}").fetchall()[0][0]
            for t in ("videos", "features", "tracks", "episodes", "summaries", "failures")
        }
    lines = [f"lake: {lake.url}"]
    for row in done.sort_values("source_uri").itertuples():
        dominant = row.dominant_emotion if isinstance(row.dominant_emotion, str) else "no face"
        valence = (
            ""
            if pd.isna(row.mean_valence)
            else (f", mean valence {row.mean_valence:+.2f}, arousal {row.mean_arousal:+.2f}")
        )
        lines.append(
            f"  ok      {base_name(row.source_uri)} ({row.video_id}): {row.frames_analysed} "
            f"frames, {row.frames_with_face} with a face, {row.n_tracks} track(s), "
            f"mostly {dominant}{valence}"
        )
    for row in failures.sort_values("source_uri").itertuples():
        lines.append(f"  failed  {base_name(row.source_uri)}: {row.stage}: {row.message}")
    if sizes["videos"] > len(done) + len(failures):
        lines.append(f"  (the newest {limit} of each; all of them: SELECT * FROM videos)")
    lines.append("tables: " + ", ".join(f"{t} ({n} rows)" for t, n in sizes.items()))
    example = "SELECT emotion, count(*) FROM tracks GROUP BY 1"
    lines.append(f'query:  emotrack sql --lake {lake.url} "{example}"')
    if lake.store.exists(f"{REPORT_DIR}/index.html"):
        lines.append(f"pages:  {ReportFolder(lake=lake).location()}")
    return "\n".join(lines)


def _link(location: str) -> str:
    return location if "://" in location else f"file://{location}"


def _int(value: object) -> int | None:
    return None if value is None or pd.isna(value) else int(value)  # type: ignore[call-overload]
