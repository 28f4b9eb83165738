"""A short plain-text account of what a lake holds, for the terminal."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from emotrack.html_report import report_folder
from emotrack.lake import Lake
from emotrack.storage import base_name


def describe_lake(root: str | Path) -> str:
    """Per-video results, failures with their reasons, and where to query the tables."""
    lake = Lake(root)
    videos = lake.read("videos")
    summaries = lake.read("summaries")
    failures = lake.read("failures")
    lines = [f"lake: {lake.url}"]
    done = videos.loc[videos["status"] == "ok", ["video_id", "source_uri"]].merge(
        summaries, on="video_id", how="left"
    )
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
    lines.append(
        "tables: "
        + ", ".join(
            f"{t} ({lake.count(t)} rows)"
            for t in ("videos", "features", "tracks", "episodes", "summaries", "failures")
        )
    )
    example = "SELECT emotion, count(*) FROM tracks GROUP BY 1"
    lines.append(f'query:  emotrack sql --lake {root} "{example}"')
    index = report_folder(lake) / "index.html"
    if index.exists():
        lines.append(f"pages:  {index.resolve()}")
    return "\n".join(lines)


# The reason shown for a file that did not end ok and has no row in `failures`.
UNRECORDED = {
    "error": "unexpected error, logged with its traceback in this run's logs; nothing was "
    "recorded, so the next run tries the video again",
}


def run_rows(statuses: dict[str, str], lake: Lake) -> list[dict[str, object]]:
    """One row per file of a run: status, frames, faces, dominant emotion or failure reason."""
    videos = lake.read("videos")[["video_id", "source_uri"]]
    facts = videos.merge(lake.read("summaries"), on="video_id", how="left")
    by_uri = {row["source_uri"]: row for row in facts.to_dict("records")}
    reasons = {
        row["source_uri"]: f"{row['stage']}: {row['message']}"
        for row in lake.read("failures").to_dict("records")
    }
    rows = []
    for uri, status in sorted(statuses.items()):
        fact = by_uri.get(uri, {}) if status in ("ok", "skipped") else {}
        rows.append(
            {
                "video": base_name(uri),
                "status": status,
                "frames": _int_or_none(fact.get("frames_analysed")),
                "frames_with_face": _int_or_none(fact.get("frames_with_face")),
                "tracks": _int_or_none(fact.get("n_tracks")),
                "dominant_emotion": fact.get("dominant_emotion") or None,
                "reason": reasons.get(uri) or UNRECORDED.get(status),
            }
        )
    return rows


def run_markdown(rows: list[dict[str, object]], lake: Lake, html: Path | None = None) -> str:
    """The run in a few lines: counts, unreadable files with reasons, where the outputs are."""
    counts: dict[str, int] = {}
    for row in rows:
        counts[str(row["status"])] = counts.get(str(row["status"]), 0) + 1
    lines = [
        "# emotrack nightly run",
        "",
        ", ".join(f"**{n}** {status}" for status, n in sorted(counts.items())) or "no videos",
        "",
    ]
    problems = [r for r in rows if r["reason"]]
    if problems:
        lines += ["## Not processed", ""]
        lines += [f"- `{r['video']}` ({r['status']}): {r['reason']}" for r in problems]
        lines.append("")
    query = (
        f"SELECT * FROM read_parquet('{lake.glob('summaries')}', hive_partitioning=true);"
        if lake.local
        else f'emotrack sql --lake {lake.url} "SELECT * FROM summaries"'
    )
    lines += [
        "## Outputs",
        "",
        f"Lake: `{lake.url}`",
        "",
        *([f"HTML report: [{html}](file://{html})", ""] if html else []),
        "```sql" if lake.local else "```",
        query,
        "```",
    ]
    return "\n".join(lines)


def _int_or_none(value: object) -> int | None:
    return None if value is None or pd.isna(value) else int(value)  # type: ignore[call-overload]
