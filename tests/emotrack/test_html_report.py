"""The report's index: paginated, from one row per video, rewritten only where it changed."""

import shutil
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from emotrack.html_report import ReportFolder, write_indexes, write_run_page
from emotrack.lake import Batch, Lake
from emotrack.schema import TABLES


def _add_videos(lake: Lake, first: int, count: int) -> None:
    batch = Batch()
    for i in range(first, first + count):
        video_id = f"v{i:016x}"
        video = dict.fromkeys(TABLES["videos"].names) | {
            "video_id": video_id,
            "source_uri": f"/archive/clip{i:03d}.mp4",
            "status": "ok",
            "duration_s": 2.4,
            "processed_at": datetime(2026, 12, 1, tzinfo=UTC) + timedelta(minutes=i),
        }
        summary = dict.fromkeys(TABLES["summaries"].names) | {
            "video_id": video_id,
            "n_tracks": 1,
            "dominant_emotion": "happy",
            "frames_analysed": 12,
            "frames_with_face": 12,
            "face_observations": 12,
            "valence_series": list(np.linspace(-0.5, 0.5, 48)),
            "model_version": "m",
        }
        batch.add("videos", [video_id], pd.DataFrame([video]))
        batch.add("summaries", [video_id], pd.DataFrame([summary]))
    lake.commit(batch)


def test_the_index_is_paginated_newest_first_and_only_changed_pages_are_written(
    tmp_path: Path,
) -> None:
    lake = Lake(tmp_path / "lake")
    lake.create_tables()
    shutil.rmtree(tmp_path / "lake" / "tracks")  # the index must not need it
    _add_videos(lake, 0, 7)
    report = tmp_path / "lake" / "_report"
    out = ReportFolder(lake=lake)
    assert write_indexes(lake, out, page_size=3) == str(report / "index.html")
    pages = sorted(p.name for p in report.glob("index-*.html"))
    assert pages == ["index-1.html", "index-2.html", "index-3.html"]
    newest = (report / "index.html").read_text()
    assert newest.index("clip006.mp4") < newest.index("clip005.mp4")  # newest first
    assert "clip003.mp4" not in newest and "<polyline" in newest  # 3 a page, sparklines
    assert "clip000.mp4" in (report / "index-1.html").read_text()  # page 1: the oldest

    written = {p.name: p.stat().st_mtime_ns for p in report.glob("index-*.html")}
    _add_videos(lake, 7, 3)  # three new videos: they fill page 3 and start page 4
    write_indexes(lake, out, page_size=3)
    now = {p.name: p.stat().st_mtime_ns for p in report.glob("index-*.html")}
    assert now["index-1.html"] == written["index-1.html"]
    assert now["index-2.html"] == written["index-2.html"]
    assert now["index-3.html"] != written["index-3.html"] and "index-4.html" in now


def test_a_run_gets_a_page_of_what_it_did(tmp_path: Path) -> None:
    out = ReportFolder(folder=tmp_path)
    outcomes = [
        {"video": "a.mp4", "status": "ok", "detail": "1 face track(s)", "video_id": "va"},
        {"video": "b.mp4", "status": "failed", "detail": "probe: empty", "video_id": None},
        {"video": "c.mp4", "status": "skipped", "detail": "already complete", "video_id": "vc"},
    ]
    page = Path(write_run_page(out, "2026-12-01T020000Z-abc", outcomes)).read_text()
    assert page.index("b.mp4") < page.index("a.mp4")  # what did not end ok comes first
    assert "probe: empty" in page and 'href="../va.html"' in page and "1 failed" in page
