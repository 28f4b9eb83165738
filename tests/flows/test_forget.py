"""`emotrack forget` and retention on real lakes (real runs of the nightly flow, on disk and on a
real S3 server): what is forgotten is gone from every file of the lake, old versions and Delta
logs included; the rest is untouched; no later run brings it back; a forget killed at any
moment is finished by the next one."""

from __future__ import annotations

import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from emotrack.flows.nightly import nightly

from emotrack.lake import Lake
from emotrack.schema import FORGOTTEN, TABLES

CLI = Path(sys.executable).with_name("emotrack")
FORGET = "smile.mp4"  # the video a request forgets (by its file)


@dataclass(frozen=True)
class Built:
    """A lake of 3 videos from two nightly runs: single_face.mp4 first, then the others."""

    archive: Path
    lake: Path
    ids: dict[str, str]  # file name -> video_id
    landmarks: set[tuple[int, ...]]  # every landmarks_i16 value of FORGET's rows


@pytest.fixture(scope="module")
def built(prefect_server, asset, photo_clip, tmp_path_factory) -> Built:
    archive = tmp_path_factory.mktemp("forget-archive")
    lake = tmp_path_factory.mktemp("forget-lake") / "lake"
    shutil.copyfile(asset("single_face.mp4"), archive / "single_face.mp4")
    assert nightly(source=str(archive), lake=str(lake))["ok"] == 1
    shutil.copyfile(photo_clip(asset("happy_face.jpg"), FORGET), archive / FORGET)
    surprise = photo_clip(asset("surprise_face.jpg"), "surprise.mp4")
    shutil.copyfile(surprise, archive / "surprise.mp4")
    assert nightly(source=str(archive), lake=str(lake))["ok"] == 2
    videos = Lake(lake).read("videos")
    ids = {Path(u).name: v for u, v in zip(videos["source_uri"], videos["video_id"], strict=True)}
    rows = Lake(lake).read_video("features", ids[FORGET])
    landmarks = {tuple(int(x) for x in v) for v in rows["landmarks_i16"] if v is not None}
    assert len(landmarks) > 5
    return Built(archive, lake, ids, landmarks)


def _copy(built: Built, tmp_path: Path) -> Path:
    copy = tmp_path / "lake"
    shutil.copytree(built.lake, copy)
    return copy


def _forget(lake: str | Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(CLI), "forget", "--lake", str(lake), *args], capture_output=True, text=True
    )


def _residue(lake: Lake, video_id: str, name: str, landmarks: set[tuple[int, ...]]) -> list:
    """Where, outside _forgotten, any file of the lake (data files of any version, Delta logs
    and checkpoints, pages, thumbnails, markers) still holds the video's id, its file name
    or one of its landmark values."""
    found = []
    for key, data in lake.store.read_many(lake.store.keys("")).items():
        if key.startswith(f"{FORGOTTEN}/"):
            continue
        if video_id.encode() in data or name.encode() in data:
            found.append((key, "bytes"))
        if key.endswith(".parquet"):
            table = pq.read_table(pa.BufferReader(data))
            text = str(table.to_pylist())
            if video_id in text or name in text:
                found.append((key, "values"))
            for column in (c for c in table.column_names if c.startswith("landmarks")):
                values = table[column].to_pylist()
                if any(v is not None and tuple(v) in landmarks for v in values):
                    found.append((key, column))
    return found


def _rows(lake: Lake, keep: list[str]) -> dict[str, pa.Table]:
    """Every table's rows of the videos `keep` (by video_id, or by file for failures),
    sorted: what must not change."""
    tables = [t for t in TABLES if t != FORGOTTEN and "video_id" in TABLES[t].names]
    with lake.connect(tables) as con:
        return {
            t: con.sql(
                f'SELECT * FROM "{t}" WHERE video_id IN (SELECT unnest(?)) ORDER BY ALL',
                params=[keep],
            ).to_arrow_table()
            for t in tables
        }


def _report(lake: Lake) -> set[str]:
    return {k for k in lake.store.keys("_report")}


def test_forgetting_one_of_three_videos_on_disk_leaves_no_trace_and_stays_forgotten(
    built, tmp_path
) -> None:
    copy = Lake(_copy(built, tmp_path))
    video_id = built.ids[FORGET]
    others = [v for n, v in built.ids.items() if n != FORGET]
    before = _rows(copy, others)
    assert _residue(copy, video_id, FORGET, built.landmarks)  # the check finds what is there

    done = _forget(copy.root, "--source", str(built.archive / FORGET))
    assert done.returncode == 0, done.stderr
    assert "forgot 1 video(s)" in done.stdout
    assert _residue(copy, video_id, FORGET, built.landmarks) == []
    assert _rows(copy, others) == before  # the other two, row for row
    pages = _report(copy)
    assert f"_report/{video_id}.html" not in pages
    assert not [p for p in pages if p.startswith(f"_report/thumbs/{video_id}")]
    assert {f"_report/{v}.html" for v in others} <= pages
    assert copy.read(FORGOTTEN)["video_id"].tolist() == [video_id]
    assert copy.read(FORGOTTEN)["reason"].tolist() == ["request"]

    # The next nightly run over the same archive (the file is still there) skips it.
    counts = nightly(source=str(built.archive), lake=str(copy.root))
    assert counts.get("ok", 0) == 0 and counts["skipped"] == 2
    assert _residue(copy, video_id, FORGET, built.landmarks) == []
    assert _rows(copy, others) == before
    # Asked again: nothing of it is left to forget.
    again = _forget(copy.root, "--video-id", video_id)
    assert again.returncode == 0 and "nothing to forget" in again.stdout


def test_forgetting_on_object_storage_leaves_no_trace(built, s3) -> None:
    bucket = s3.bucket("forget")
    fs = s3.fs()
    for path in (p for p in built.lake.rglob("*") if p.is_file() and p.name != "_lock"):
        fs.pipe_file(f"{bucket}/lake/{path.relative_to(built.lake)}", path.read_bytes())
    lake = Lake(f"s3://{bucket}/lake")
    video_id = built.ids[FORGET]
    others = [v for n, v in built.ids.items() if n != FORGET]
    before = _rows(lake, others)
    assert _residue(lake, video_id, FORGET, built.landmarks)

    done = _forget(lake.url, "--video-id", video_id)
    assert done.returncode == 0, done.stderr
    assert _residue(lake, video_id, FORGET, built.landmarks) == []
    assert _rows(lake, others) == before
    assert f"_report/{video_id}.html" not in _report(lake)

    # The archive on object storage too: an object's content is known only once its unit
    # has read it, and the forgotten one stops there.
    archive = s3.bucket("forget-archive")
    for path in built.archive.iterdir():
        fs.pipe_file(f"{archive}/in/{path.name}", path.read_bytes())
    counts = nightly(source=f"s3://{archive}/in", lake=lake.url)
    assert counts.get("ok", 0) == 2  # the other two, at their new addresses
    assert _residue(lake, video_id, FORGET, built.landmarks) == []
    assert lake.count("videos") == 2


@pytest.fixture(scope="module")
def reference(built, tmp_path_factory) -> Lake:
    """The lake after a forget of FORGET that nothing interrupted."""
    lake = Lake(_copy(built, tmp_path_factory.mktemp("reference")))
    assert _forget(lake.root, "--source", str(built.archive / FORGET)).returncode == 0
    return lake


@pytest.mark.parametrize("after_s", [0.0, 0.15, 0.4])
def test_a_forget_killed_at_any_moment_is_finished_by_the_next(
    built, reference, tmp_path, after_s
) -> None:
    copy = Lake(_copy(built, tmp_path / "killed"))
    command = [str(CLI), "forget", "--lake", str(copy.root), "--source"]
    started = subprocess.Popen(
        [*command, str(built.archive / FORGET)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 60
    while not (copy.root / "_forgetting").exists() and started.poll() is None:
        assert time.monotonic() < deadline
        time.sleep(0.005)
    time.sleep(after_s)
    started.send_signal(signal.SIGKILL)
    started.wait()
    if after_s == 0.0:  # killed half-way (the forget takes about 0.5 s from its intent)
        assert (copy.root / "_forgetting").exists()

    rerun = _forget(copy.root, "--source", str(built.archive / FORGET))
    assert rerun.returncode == 0, rerun.stdout + rerun.stderr
    everyone = list(built.ids.values())
    assert _rows(copy, everyone) == _rows(reference, everyone)
    assert _report(copy) == _report(reference)
    assert _residue(copy, built.ids[FORGET], FORGET, built.landmarks) == []
    assert not (copy.root / "_forgetting").exists()


def test_older_than_forgets_only_the_videos_past_the_limit(built, tmp_path) -> None:
    copy = Lake(_copy(built, tmp_path))
    processed = copy.read("videos").set_index("video_id")["processed_at"]
    first = processed[built.ids["single_face.mp4"]]
    later = min(t for v, t in processed.items() if v != built.ids["single_face.mp4"])
    assert later - first > pd.Timedelta(seconds=2)  # two runs apart
    now = datetime.now(UTC)
    days = ((now - first) + (now - later)).total_seconds() / 2 / 86400

    done = _forget(copy.root, "--older-than", f"{days:.8f}")
    assert done.returncode == 0, done.stderr
    assert sorted(copy.read("videos")["video_id"]) == sorted(
        v for n, v in built.ids.items() if n != "single_face.mp4"
    )
    assert copy.read(FORGOTTEN)["reason"].tolist() == ["retention"]
    assert _residue(copy, built.ids["single_face.mp4"], "single_face.mp4", set()) == []


def test_each_nightly_run_applies_the_retention_period(built, tmp_path) -> None:
    copy = Lake(_copy(built, tmp_path))
    counts = nightly(source=str(built.archive), lake=str(copy.root), retain_days=1e-9)
    # Every video was older than that: forgotten first, then skipped, not analysed again.
    assert counts.get("ok", 0) == 0
    assert copy.count("videos") == 0 and copy.count("features") == 0
    assert sorted(copy.read(FORGOTTEN)["video_id"]) == sorted(built.ids.values())
