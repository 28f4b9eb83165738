import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from emotrack.errors import UnreadableVideo
from emotrack.video import VideoSource


@pytest.mark.parametrize(("fps", "expected"), [(5.0, 20), (2.0, 8), (10.0, 40)])
def test_frame_count_and_timestamps_follow_the_analysis_rate(make_clip, fps, expected) -> None:
    source = VideoSource.from_path(make_clip(4, 25, name=f"rate{fps}.mp4"))
    assert source.duration_s == pytest.approx(4.0, abs=0.05)
    frames = list(source.frames(fps))
    assert len(frames) == expected
    timestamps = np.array([t for t, _ in frames])
    first_frame_of_each_slot = np.ceil(np.arange(expected) / fps * 25 - 1e-9) / 25
    np.testing.assert_allclose(timestamps, first_frame_of_each_slot, atol=1e-6)
    assert all(f.shape == (96, 160, 3) and f.dtype == np.uint8 for _, f in frames)


def test_analysis_rate_is_capped_at_the_video_rate(make_clip) -> None:
    source = VideoSource.from_path(make_clip(2, 4, name="slow.mp4"))
    assert len(list(source.frames(10))) == 8  # 4 fps video: no duplicated frames


def test_rotated_clip_comes_out_upright_with_swapped_size(run_ffmpeg, tmp_path: Path) -> None:
    stored = tmp_path / "stored.mp4"
    band = "color=c=black:s=160x96:d=1:r=10,drawbox=x=0:y=0:w=160:h=30:color=white:t=fill"
    run_ffmpeg("-f", "lavfi", "-i", band, "-c:v", "libx264", "-pix_fmt", "yuv420p", str(stored))
    phone = tmp_path / "phone.mp4"  # same pixels, display matrix says: turn 90 degrees
    run_ffmpeg("-i", str(stored), "-c", "copy", "-metadata:s:v:0", "rotate=90", str(phone))
    source = VideoSource.from_path(phone)
    assert (source.rotation, source.width, source.height) == (90, 96, 160)
    _, upright = next(source.frames(5))
    _, raw = next(VideoSource.from_path(stored).frames(5))
    assert upright.shape == (160, 96, 3)
    # ffprobe's rotation is counter-clockwise: the white top band is now the left column.
    np.testing.assert_array_equal(upright, np.rot90(raw, k=1))
    assert upright[:, :20].mean() > 200 and upright[:, -40:].mean() < 50


def test_the_probed_stream_is_the_one_decoded(make_clip, run_ffmpeg, tmp_path: Path) -> None:
    small, large = make_clip(2, 10, name="small.mp4"), make_clip(2, 10, "640x480", "large.mp4")
    both = tmp_path / "two-streams.mkv"  # ffmpeg alone would pick the larger stream
    run_ffmpeg(
        "-i", str(small), "-i", str(large), "-map", "0:v", "-map", "1:v", "-c", "copy", str(both)
    )
    source = VideoSource.from_path(both)
    frames = [frame for _, frame in source.frames(5)]
    assert (source.width, source.height, len(frames)) == (160, 96, 10)
    assert {f.shape for f in frames} == {(96, 160, 3)}


def test_memory_stays_bounded_on_a_long_input(make_clip) -> None:
    source = VideoSource.from_path(make_clip(600, 5, size="320x240", name="long.mp4"))
    frame_bytes = 320 * 240 * 3
    tracemalloc.start()
    count = sum(1 for _ in source.frames(5))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert count == 3000  # 10 minutes at 5 fps: 690 MB of frames streamed through
    assert peak < 8 * frame_bytes, f"peak {peak / 1e6:.1f} MB while streaming"


@pytest.mark.parametrize(
    ("make", "stage", "words"),
    [
        (lambda p: p.write_bytes(b"") and p, "probe", "empty"),
        (lambda p: p.write_text("not a video\n") and p, "probe", "cannot read it as a video"),
        ("audio-only", "probe", "no video stream"),
    ],
    ids=["zero-bytes", "text", "audio-only"],
)
def test_unreadable_inputs_raise_a_clear_error(run_ffmpeg, tmp_path, make, stage, words) -> None:
    path = tmp_path / "bad.mp4"
    if make == "audio-only":
        run_ffmpeg("-f", "lavfi", "-i", "sine=duration=1", "-c:a", "aac", "-f", "mp4", str(path))
    else:
        make(path)
    with pytest.raises(UnreadableVideo) as caught:
        VideoSource.from_path(path)
    assert caught.value.stage == stage
    assert words in caught.value.message


def test_truncated_video_fails_in_decode(asset, tmp_path) -> None:
    whole = asset("WolfgangLanger_Pexels.mp4").read_bytes()
    cut = tmp_path / "cut.mp4"
    cut.write_bytes(whole[: len(whole) // 2])
    source = VideoSource.from_path(cut)  # the index is at the front: probing still works
    with pytest.raises(UnreadableVideo) as caught:
        list(source.frames(5))
    assert caught.value.stage == "decode"
    assert "truncated or corrupt" in caught.value.message


def test_frames_over_the_pixel_budget_are_scaled_down_by_ffmpeg(make_clip) -> None:
    source = VideoSource.from_path(make_clip(1, 5, size="640x480", name="big.mp4"))
    assert source.decoded_size(None) == (640, 480)
    assert source.decoded_size(640 * 480) == (640, 480)
    assert source.decoded_size(160 * 120) == (160, 120)  # aspect kept, even sides
    frames = list(source.frames(5, max_pixels=160 * 120))
    assert len(frames) == 5
    assert all(f.shape == (120, 160, 3) for _, f in frames)


def test_a_file_claiming_hours_in_a_few_kilobytes_is_refused(ten_hours_clip, make_clip) -> None:
    gap = ten_hours_clip  # two frames ten hours apart: 36001 s claimed in ~1.5 KB
    source = VideoSource.from_path(gap)
    assert source.duration_s > 36000 and source.size_bytes < 5000
    with pytest.raises(UnreadableVideo, match="bytes per second"):
        source.check_limits(max_duration_s=48 * 3600, min_bytes_per_s=256)
    with pytest.raises(UnreadableVideo, match="10.0 hours of video, over the limit of 1.0"):
        source.check_limits(max_duration_s=3600, min_bytes_per_s=0)
    VideoSource.from_path(make_clip(2, 25, name="fine.mp4")).check_limits(3600, 256)  # passes


def test_only_real_frames_with_their_true_times_are_analysed(run_ffmpeg, tmp_path) -> None:
    holes = tmp_path / "holes.mp4"  # 10 fps, and nothing between 2 s and 5 s
    run_ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=160x96:rate=10:duration=3",
        "-vf",
        "setpts='PTS+if(gte(N,20),3/TB,0)'",
        "-fps_mode",
        "passthrough",
        "-pix_fmt",
        "yuv420p",
        str(holes),
    )
    variable = tmp_path / "variable.mp4"  # 10 fps for 2 s, then 2 fps for 2 s
    run_ffmpeg(
        "-f",
        "lavfi",
        "-i",
        "testsrc=size=160x96:rate=10:duration=4",
        "-vf",
        "select='lt(n,20)+not(mod(n-20,5))'",
        "-fps_mode",
        "passthrough",
        "-pix_fmt",
        "yuv420p",
        str(variable),
    )

    times = [t for t, _ in VideoSource.from_path(holes).frames(5)]
    expected = [k / 5 for k in range(10)] + [5 + k / 5 for k in range(5)]
    np.testing.assert_allclose(times, expected, atol=1e-6)  # no invented frames in the hole

    times = [t for t, _ in VideoSource.from_path(variable).frames(5)]
    expected = [k / 5 for k in range(10)] + [2.0, 2.5, 3.0, 3.5]
    np.testing.assert_allclose(times, expected, atol=1e-6)  # 2 fps stays 2 fps


def test_a_decode_past_its_time_limit_is_stopped(make_clip) -> None:
    source = VideoSource.from_path(make_clip(4, 5, name="slow-consumer.mp4"))
    frames = source.frames(5, timeout_s=0.5)
    with pytest.raises(UnreadableVideo, match="time limit") as caught:
        for _ in frames:
            time.sleep(0.2)  # a consumer slower than the limit allows: 20 frames, 4 s
    assert caught.value.stage == "analyse"


def test_a_playlist_is_refused_in_decode_too_and_reads_nothing(make_clip, tmp_path) -> None:
    private = tmp_path / "private.ts"
    private.write_bytes(make_clip(2, 10, name="secret.mp4").read_bytes())  # mp4 bytes, any name
    playlist = tmp_path / "playlist.mp4"
    playlist.write_text(
        f"#EXTM3U\n#EXT-X-TARGETDURATION:2\n#EXTINF:2.0,\n{private}\n#EXT-X-ENDLIST\n"
    )
    with pytest.raises(UnreadableVideo, match="refused: an HLS playlist") as caught:
        VideoSource.from_path(playlist)
    assert caught.value.stage == "probe"
    posing = VideoSource(playlist, "vx", 100, 2.0, 10.0, 160, 96, "h264", 0)  # as if probed
    frames = posing.frames(5)
    with pytest.raises(UnreadableVideo, match="refused: an HLS playlist") as caught:
        next(frames)
    assert caught.value.stage == "decode"
