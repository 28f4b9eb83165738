"""People across videos and nights (--people), through the real flow: the same grouping
whatever the order and the nights, and people's own decisions kept by later groupings."""

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from emotrack.lake import Lake
from emotrack.people_lake import merge_people, name_person, split_person
from emotrack.settings import Settings
from emotrack.training.identity_set import CLIPS, _write_clip

CLI = Path(sys.executable).with_name("emotrack")
# Clips of the identity set's `score` part: the man at the door (a video and a photo), two
# women and a man in photos, and five appearances at one place (score-cuts).
FIRST = ["door-video", "f15-wide", "score-cuts"]
SECOND = ["door-photo", "m7-wide", "f15-small-dim"]
LATER = ["f15-close-bright", "door-video-mirror-dim"]
# Who each clip's tracks show, in the order of their track ids.
PEOPLE = {
    "door-video": ["door"], "f15-wide": ["f15"], "door-photo": ["door"], "m7-wide": ["m7"],
    "f15-small-dim": ["f15"], "f15-close-bright": ["f15"], "door-video-mirror-dim": ["door"],
    "score-cuts": ["f15", "m7", "door", "f15", "beard"],
}  # fmt: skip


@pytest.fixture(scope="module")
def clips(tmp_path_factory, settings: Settings) -> Path:
    folder = tmp_path_factory.mktemp("people-clips")
    for name in FIRST + SECOND + LATER:
        _write_clip(folder / f"{name}.mp4", CLIPS[name], settings.cache_dir)
    return folder


def _night(clips: Path, archive: Path, lake: Path, names: list[str]) -> dict[str, int]:
    from emotrack.flows.nightly import nightly

    archive.mkdir(parents=True, exist_ok=True)
    for name in names:
        shutil.copyfile(clips / f"{name}.mp4", archive / f"{name}.mp4")
    return nightly(source=str(archive), lake=str(lake), people=True)


def _people(lake: Path) -> pd.DataFrame:
    """track_people with each track's clip name."""
    store = Lake(lake)
    videos = store.read("videos")[["video_id", "source_uri"]]
    rows = store.read("track_people").merge(videos, on="video_id")
    return rows.assign(clip=rows["source_uri"].map(lambda u: Path(u).stem))


def _partition(rows: pd.DataFrame) -> set[frozenset[tuple[str, int]]]:
    return {
        frozenset(zip(group["clip"], group["track_id"], strict=True))
        for _, group in rows.groupby("person_id")
    }


def _truth(rows: pd.DataFrame) -> set[frozenset[tuple[str, int]]]:
    pairs = zip(rows["clip"], rows["track_id"], strict=True)
    who = rows.assign(person=[PEOPLE[clip][track] for clip, track in pairs])
    return {
        frozenset(zip(group["clip"], group["track_id"], strict=True))
        for _, group in who.groupby("person")
    }


@pytest.fixture(scope="module")
def two_nights(prefect_server, clips, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("two-nights")
    assert _night(clips, root / "archive", root / "lake", FIRST) == {"ok": 3}
    assert _night(clips, root / "archive", root / "lake", SECOND) == {"ok": 3, "skipped": 3}
    return root / "lake"


def test_the_same_people_whatever_the_order_and_the_nights(
    prefect_server, clips, two_nights, tmp_path
) -> None:
    nights = _people(two_nights)
    assert len(nights) == 10  # every track of the six clips has a person
    assert _partition(nights) == _truth(nights)  # and the right one: four people
    at_once = tmp_path / "at-once"
    assert _night(clips, at_once / "archive", at_once / "lake", SECOND + FIRST) == {"ok": 6}
    assert _partition(_people(at_once / "lake")) == _partition(nights)
    reversed_nights = tmp_path / "reversed"
    _night(clips, reversed_nights / "archive", reversed_nights / "lake", SECOND)
    _night(clips, reversed_nights / "archive", reversed_nights / "lake", FIRST)
    assert _partition(_people(reversed_nights / "lake")) == _partition(nights)
    people = Lake(two_nights).read("people")
    assert sorted(people["tracks"]) == [1, 2, 3, 4]  # beard; m7; door; f15
    assert set(people["videos"]) <= {1, 2, 3} and people["seconds"].gt(0).all()
    assert people["name"].isna().all()


def test_a_run_killed_mid_way_groups_people_as_one_that_was_not(
    prefect_server, clips, two_nights, tmp_path, start_cli
) -> None:
    from prefect.settings import PREFECT_API_URL

    archive, lake = tmp_path / "archive", Lake(tmp_path / "lake")
    archive.mkdir()
    for name in SECOND + FIRST:
        shutil.copyfile(clips / f"{name}.mp4", archive / f"{name}.mp4")
    env = {
        **os.environ,
        "PREFECT_API_URL": str(PREFECT_API_URL.value()),
        "EMOTRACK_PEOPLE": "1",
        "EMOTRACK_COMMIT_VIDEOS": "2",
    }
    run = start_cli(archive, lake, env)
    deadline = time.monotonic() + 300
    while not (lake.has_table("_identities") and lake.count("_identities")):
        assert time.monotonic() < deadline, "no identities landed"
        assert run.poll() is None, "the run ended before it could be stopped"
        time.sleep(0.2)
    os.killpg(run.pid, signal.SIGKILL)  # the CLI and the Dask workers it started
    run.wait()
    assert lake.count("videos") < 6  # killed mid-way
    _night(clips, archive, lake.root, [])  # the next night finishes the work
    assert _partition(_people(lake.root)) == _partition(_people(two_nights))


def _residue(lake: Lake, person: str, tracks: set[tuple[str, int]], vectors: list) -> list:
    """Where any file of the lake (data files of any version, Delta logs, checkpoints,
    pages, thumbnails) still holds one of the person's tracks (its video and track ids in
    one row), their person id, one of their embeddings or a thumbnail of theirs."""
    found = []
    embeddings = {tuple(round(float(x), 5) for x in v) for v in vectors}
    for key, data in lake.store.read_many(lake.store.keys("")).items():
        if any(key.endswith(f"thumbs/{v}-{t}.jpg") for v, t in tracks):
            found.append((key, "thumbnail"))
        if not key.endswith(".parquet"):  # logs, checkpoints' JSON, pages, markers
            if not key.endswith(".jpg") and re.search(rf"\b{person}\b".encode(), data):
                found.append((key, "person id"))
            continue
        rows = pq.read_table(pa.BufferReader(data)).to_pylist()
        for row in rows:
            if (row.get("video_id"), row.get("track_id")) in tracks:
                found.append((key, "track row"))
            if person in (row.get("person_id"), row.get("other_id")):
                found.append((key, "person row"))
            vector = row.get("embedding")
            if vector is not None and tuple(round(float(x), 5) for x in vector) in embeddings:
                found.append((key, "embedding"))
    return sorted(set(found))


def _others(lake: Lake, tracks: set[tuple[str, int]]) -> dict[str, pd.DataFrame]:
    """Every other track's rows of tracks, features and episodes, sorted."""
    out = {}
    for table in ("tracks", "features", "episodes"):
        rows = lake.read(table).assign(landmarks_i16=None, landmarks=None)
        mine = [(v, t) in tracks for v, t in zip(rows["video_id"], rows["track_id"], strict=True)]
        rows = rows[[not m for m in mine]].drop(columns=["landmarks_i16", "landmarks"])
        out[table] = rows.sort_values(list(rows.columns[:4])).reset_index(drop=True)
    return out


def test_a_forgotten_person_leaves_no_trace_and_stays_forgotten(
    prefect_server, clips, two_nights, tmp_path
) -> None:
    from emotrack.flows.nightly import nightly
    from emotrack.flows.rescore import rescore

    root = tmp_path / "lake"
    shutil.copytree(two_nights, root)
    lake = Lake(root)
    rows = _people(root)
    person = rows[rows["clip"] == "f15-wide"]["person_id"].iloc[0]  # in 3 videos, 4 tracks
    mine = rows[rows["person_id"] == person]
    tracks = set(zip(mine["video_id"], mine["track_id"].astype(int), strict=True))
    assert len(tracks) == 4 and mine["video_id"].nunique() == 3
    identities = lake.read("_identities")
    vectors = [
        e for v, t, e in zip(identities["video_id"], identities["track_id"],
                             identities["embedding"], strict=True)
        if (v, int(t)) in tracks
    ]  # fmt: skip
    found = {kind for _, kind in _residue(lake, person, tracks, vectors)}
    assert found >= {"thumbnail", "track row", "person row", "embedding"}  # before: found
    others = _others(lake, tracks)
    done = subprocess.run(
        [str(CLI), "forget", "--lake", str(root), "--person", person],
        capture_output=True, text=True,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert _residue(lake, person, tracks, vectors) == []
    after = _others(lake, tracks)
    for table, kept in others.items():
        pd.testing.assert_frame_equal(after[table], kept, check_dtype=False)
    cuts = rows[rows["clip"] == "score-cuts"]["video_id"].iloc[0]
    summary = lake.read_video("summaries", cuts)
    assert list(summary["n_tracks"]) == [3]  # made again without her two appearances
    assert person not in set(lake.read("people")["person_id"])
    assert len(lake.read("people")) == 3
    # no later run brings her back: a nightly run, a rescore, and everything again
    archive = two_nights.parent / "archive"
    assert nightly(source=str(archive), lake=str(root), people=True) == {"skipped": 6}
    rescore(lake=str(root))
    assert nightly(source=str(archive), lake=str(root), reprocess=True) == {"ok": 6}
    assert _residue(lake, person, tracks, vectors) == []
    assert lake.read_video("summaries", cuts)["n_tracks"].tolist() == [3]
    assert _others(lake, tracks)["tracks"].shape == after["tracks"].shape


def test_names_merges_and_splits_survive_later_nights(prefect_server, clips, two_nights) -> None:
    lake = Lake(two_nights)
    rows = _people(two_nights)

    def person(clip: str, track: int = 0) -> str:
        now = _people(two_nights)
        return str(now[(now["clip"] == clip) & (now["track_id"] == track)]["person_id"].iloc[0])

    door, f15, m7 = person("door-video"), person("f15-wide"), person("m7-wide")
    photo = rows[rows["clip"] == "door-photo"]["video_id"].iloc[0]
    with lake.writing():
        name_person(lake, door, "Jin")
        kept = merge_people(lake, f15, m7, 0.45)  # wrong, but theirs to decide
        apart = split_person(lake, door, [(photo, 0)], 0.45)
    assert kept == min(f15, m7, key=lambda p: int(p[1:]))
    archive = two_nights.parent / "archive"
    _night(clips, archive, two_nights, LATER)  # a new night: the grouping runs again
    now = _people(two_nights)
    assert person("door-video") == door and person("door-video-mirror-dim") == door
    assert person("door-photo") == apart != door
    assert person("f15-wide") == person("m7-wide") == person("f15-close-bright") == kept
    people = lake.read("people").set_index("person_id")
    assert people.loc[door, "name"] == "Jin"
    assert len(now) == 12


def test_the_sites_people_queries_run_on_a_lake_with_people(two_nights) -> None:
    docs = Path(__file__).resolve().parents[2] / "docs"
    section = (docs / "people.md").read_text()
    queries = re.findall(r"```sql\n(.*?)```", section, flags=re.DOTALL)
    cookbook = (docs / "cookbook.md").read_text()
    setup = re.findall(r"```python\n(.*?)```", cookbook, flags=re.DOTALL)[0]
    scope: dict = {}
    exec(setup.replace('"/data/lake"', repr(str(two_nights))), scope)  # noqa: S102
    assert len(queries) == 3
    by_month, videos, summaries = (scope["con"].execute(q).df() for q in queries)
    assert set(summaries["person_id"]) == set(by_month["person_id"])
    assert summaries["observations"].sum() == by_month["frames"].sum()
    people = Lake(two_nights).read("people")  # reliable rows only: some people may have none
    assert set(by_month["person_id"]) <= set(people["person_id"]) and len(by_month) > 0
    per_person = videos.groupby("person_id")["source_uri"].nunique()
    assert per_person.to_dict() == people.set_index("person_id")["videos"].to_dict()


def test_the_people_page_and_a_video_page_name_each_face(two_nights, render, tmp_path) -> None:
    report = two_nights / "_report"
    people = Lake(two_nights).read("people")
    dom, image = render(report / "people.html", tmp_path)
    for person in people.itertuples():  # a row each, linking every video they are in
        row = re.search(rf'<tr id="{person.person_id}">.*?</tr>', dom, re.S)
        assert row is not None and row[0].count("<a href=") == person.videos
    assert dom.count("<img") == people["thumbnail"].notna().sum() >= 3
    assert dom.count("<rect") >= len(people)  # a bar of expression shares each
    assert "Jin" in dom or people["name"].isna().all()  # a name given is shown
    assert image.std() > 10, "the screenshot is blank"
    rows = _people(two_nights)
    cuts = rows[rows["clip"] == "score-cuts"]
    dom, _ = render(report / f"{cuts['video_id'].iloc[0]}.html", tmp_path)
    for track, person in zip(cuts["track_id"], cuts["person_id"], strict=True):
        assert f'face {track}: <a href="people.html#{person}">{person}' in dom
