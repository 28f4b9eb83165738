"""A bad-input corpus, built at test time: every input reads only its own bytes, every bad one
is recorded with its reason, and odd names are just names."""

import shutil
from pathlib import Path

from emotrack.lake import Lake

ODD_NAMES = [
    "a clip with spaces.mp4",
    "ünïcödé 视频 clip.mp4",
    "$(touch pwned); `touch pwned2` | & ;.mp4",
    "-rf --lake.mp4",
    "a:b.mp4",
]


def test_a_mixed_archive_of_bad_inputs_and_odd_names(
    prefect_server, asset, make_clip, run_ffmpeg, tmp_path, monkeypatch
) -> None:
    from emotrack.flows.nightly import nightly

    monkeypatch.chdir(tmp_path)
    private = tmp_path / "private"  # someone else's video, outside the archive
    private.mkdir()
    run_ffmpeg(
        "-i",
        str(asset("single_face.mp4")),
        "-c",
        "copy",
        "-f",
        "mpegts",
        str(private / "secret.ts"),
    )
    archive = tmp_path / "archive"
    archive.mkdir()
    for i, name in enumerate(ODD_NAMES):  # good clips, each its own content
        shutil.copyfile(make_clip(1 + i / 5, 5, name=f"odd{i}.mp4"), archive / name)
    segment = "#EXTM3U\n#EXT-X-TARGETDURATION:3\n#EXTINF:3.0,\n{}\n#EXT-X-ENDLIST\n"
    (archive / "playlist.mp4").write_text(segment.format(private / "secret.ts"))
    (archive / "remote.mp4").write_text(segment.format("http://127.0.0.1:9/secret.ts"))
    (archive / "list.mp4").write_text(f"ffconcat version 1.0\nfile {private / 'secret.ts'}\n")
    (archive / "empty.mp4").write_bytes(b"")
    (archive / "notes.mp4").write_text("not a video\n")
    run_ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "sine=duration=1",
        "-c:a",
        "aac",
        "-f",
        "mp4",
        str(archive / "audio.mp4"),
    )
    whole = asset("WolfgangLanger_Pexels.mp4").read_bytes()
    (archive / "truncated.mp4").write_bytes(whole[: len(whole) // 2])
    lake = Lake(tmp_path / "lake")

    counts = nightly(source=str(archive), lake=str(lake.root))

    assert counts == {"ok": len(ODD_NAMES), "failed": 7}
    failures = lake.read("failures")
    reasons = dict(
        zip(failures["source_uri"].map(lambda u: Path(u).name), failures["message"], strict=True)
    )
    assert "refused: an HLS playlist" in reasons["playlist.mp4"]
    assert "refused: an HLS playlist" in reasons["remote.mp4"]
    assert "refused: a concat list" in reasons["list.mp4"]
    assert "empty" in reasons["empty.mp4"]
    assert "cannot read it as a video" in reasons["notes.mp4"]
    assert "no video stream" in reasons["audio.mp4"]
    assert "truncated or corrupt" in reasons["truncated.mp4"]
    videos = lake.read("videos")
    ok = set(videos.loc[videos["status"] == "ok", "source_uri"].map(lambda u: Path(u).name))
    assert ok == set(ODD_NAMES)
    assert set(lake.video_ids("summaries")) == set(videos.loc[videos["status"] == "ok", "video_id"])
    assert not list(tmp_path.rglob("pwned*"))  # names never reach a shell
