"""A short plain-text account of what a lake holds, for the terminal."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from emotrack.lake import Lake


def describe_lake(root: Path) -> str:
    """Per-video results, failures with their reasons, and where to query the tables."""
    lake = Lake(root)
    videos = lake.read("videos")
    summaries = lake.read("summaries")
    failures = lake.read("failures")
    lines = [f"lake: {lake.root.resolve()}"]
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
            f"  ok      {Path(row.source_uri).name} ({row.video_id}): {row.frames_analysed} "
            f"frames, {row.frames_with_face} with a face, {row.n_tracks} track(s), "
            f"mostly {dominant}{valence}"
        )
    for row in failures.sort_values("source_uri").itertuples():
        lines.append(f"  failed  {Path(row.source_uri).name}: {row.stage}: {row.message}")
    lines.append(
        "tables: "
        + ", ".join(
            f"{t} ({len(lake.read(t))} rows)"
            for t in ("videos", "features", "tracks", "summaries", "failures")
        )
    )
    example = "SELECT emotion, count(*) FROM tracks GROUP BY 1"
    lines.append(f'query:  emotrack sql --lake {root} "{example}"')
    return "\n".join(lines)
