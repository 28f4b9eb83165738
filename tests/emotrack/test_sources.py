"""Finding an archive's videos, and reading a file only when it is new or changed."""

import os
from pathlib import Path

from emotrack.sources import Found, content_ids, find_sources, source_rows
from emotrack.video import content_video_id


def _recorded(found: list[Found], ids: dict[str, str | None]) -> dict[str, dict]:
    rows = source_rows([(f, str(ids[f.uri])) for f in found])
    return {row["uri"]: row for row in rows.to_dict("records")}


def test_videos_are_found_by_suffix_skipping_hidden_ones(tmp_path: Path) -> None:
    for name in [
        "a.mp4",
        "sub/b.MOV",
        "sub/deeper/c.mkv",
        "notes.txt",
        ".hidden.mp4",
        ".cache/d.mp4",
        "sub/.x/e.mp4",
    ]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_bytes(name.encode())
    found = find_sources(str(tmp_path))
    assert [Path(f.uri).relative_to(tmp_path).as_posix() for f in found] == [
        "a.mp4",
        "sub/b.MOV",
        "sub/deeper/c.mkv",
    ]
    first = found[0]
    facts = os.stat(first.uri)
    assert (first.size, first.mtime_ns, first.inode) == (5, facts.st_mtime_ns, facts.st_ino)


def test_an_unchanged_file_is_not_read_again_and_a_changed_one_is(tmp_path: Path) -> None:
    for name in "abc":
        (tmp_path / f"{name}.mp4").write_bytes(name.encode() * 1000)
    found = find_sources(str(tmp_path))
    ids, read = content_ids(found, {})
    assert len(read) == 3 and ids[found[0].uri] == content_video_id(Path(found[0].uri))
    recorded = _recorded(found, ids)

    again, read = content_ids(find_sources(str(tmp_path)), recorded)
    assert read == [] and again == ids  # nothing read: sizes, times and inodes unchanged

    b = tmp_path / "b.mp4"
    b.write_bytes(b"B" * 1000)  # same size, new bytes, a new modification time
    os.utime(b, ns=(b.stat().st_atime_ns, b.stat().st_mtime_ns + 10**9))
    replaced = tmp_path / "c.mp4"
    replaced.unlink()
    (tmp_path / "other.bin").write_bytes(b"c" * 1000)
    (tmp_path / "other.bin").rename(replaced)  # same bytes, a new inode
    changed, read = content_ids(find_sources(str(tmp_path)), recorded)
    assert sorted(Path(f.uri).name for f in read) == ["b.mp4", "c.mp4"]
    assert changed[str(b)] != ids[str(b)] and changed[str(replaced)] == ids[str(replaced)]

    _, read = content_ids(find_sources(str(tmp_path)), recorded, rehash=True)
    assert len(read) == 3  # --rehash reads everything


def test_a_file_rewritten_with_the_same_size_and_time_is_not_noticed(tmp_path: Path) -> None:
    """The accepted risk, as with rsync and git (README: a file rewritten in place...)."""
    video = tmp_path / "a.mp4"
    video.write_bytes(b"x" * 100)
    found = find_sources(str(tmp_path))
    ids, _ = content_ids(found, {})
    times = (video.stat().st_atime_ns, video.stat().st_mtime_ns)
    with video.open("r+b") as handle:  # in place: same inode
        handle.write(b"y" * 100)
    os.utime(video, ns=times)
    again, read = content_ids(find_sources(str(tmp_path)), _recorded(found, ids))
    assert read == [] and again == ids
