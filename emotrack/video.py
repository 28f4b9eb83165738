"""Video files: discovery, probing with ffprobe and frame decoding with ffmpeg.

`VideoSource.from_path` is the only place that opens a video by path; everything after it
works on the `VideoSource` and the frames it yields.
"""

from __future__ import annotations

import math
import os
import re
import subprocess
import tempfile
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from fractions import Fraction
from pathlib import Path, PurePosixPath
from typing import IO, Any

import ffmpeg
import numpy as np

from emotrack.assets import sha256_of
from emotrack.errors import UnreadableVideo

VIDEO_SUFFIXES = frozenset(
    {
        ".mp4",
        ".m4v",
        ".mov",
        ".mkv",
        ".webm",
        ".avi",
        ".mpg",
        ".mpeg",
        ".ts",
        ".wmv",
        ".flv",
        ".3gp",
    }
)
# Every input reads only its own bytes: ffmpeg may open it only as a real video container
# (a demuxer whitelist), and only through the file protocol. Playlists and references (hls,
# concat, image2 patterns, ...) would read other files or URLs: they are refused, in probe
# and in decode. (protocol_whitelist alone does not stop a playlist reading a local file.)
VIDEO_DEMUXERS = (
    "mov",
    "mp4",
    "m4a",
    "3gp",
    "3g2",
    "mj2",  # one demuxer: QuickTime / MP4 family
    "matroska",
    "webm",
    "avi",
    "mpegts",
    "flv",
    "asf",
    "mpeg",
    "mpegvideo",
    "m4v",
    "h264",
    "hevc",
    "ogg",
    "mxf",
    "dv",
)
_INPUT_OPTIONS = {"protocol_whitelist": "file", "format_whitelist": ",".join(VIDEO_DEMUXERS)}
_REFERENCES = {
    "hls": "an HLS playlist, not a video: it points at other files or URLs",
    "concat": "a concat list, not a video: it points at other files",
    "image2": "an image sequence pattern, not a video",
}


def is_video_name(relative: str) -> bool:
    """Whether a file at this path (relative to the source, "/"-separated) is taken as a
    video: a video suffix, and no hidden part."""
    parts = relative.split("/")
    return Path(parts[-1]).suffix.lower() in VIDEO_SUFFIXES and not any(
        part.startswith(".") for part in parts
    )


def content_video_id(path: Path) -> str:
    """Stable id of a video's content: 'v' + the first 16 hex digits of its SHA-256.

    The 'v' keeps the id from ever looking like a number to readers that infer the types of
    Hive partition values (DuckDB, pandas, Spark).
    """
    return "v" + sha256_of(path)[:16]


@dataclass(frozen=True)
class VideoSource:
    """A probed video file. Sizes are of the upright picture (after rotation)."""

    path: Path
    video_id: str
    size_bytes: int
    duration_s: float
    fps: float
    width: int
    height: int
    codec: str
    rotation: int  # degrees the stored picture is turned for display: 0, 90, 180 or 270
    stream_index: int = 0  # the container's stream that is decoded (the first video stream)
    frame_count: int | None = None  # frames (packets) in that stream, if known
    uri: str = ""  # where the video comes from (its path, or its URL on object storage)
    recorded_at: datetime | None = None  # when it was recorded (UTC), if known
    recorded_from: str | None = None  # how that is known: `container` or `file` (mtime)

    @property
    def name(self) -> str:
        return PurePosixPath(self.source_uri).name

    @property
    def source_uri(self) -> str:
        """What the lake records as the video's source: its URI, else its path."""
        return self.uri or str(self.path)

    @classmethod
    def from_path(
        cls, path: Path, video_id: str | None = None, uri: str | None = None
    ) -> VideoSource:
        """Probe `path` with ffprobe; raise UnreadableVideo when it holds no decodable video.

        `video_id` is the file's content id when the caller has already read it; `uri` is
        where the file comes from when `path` is a local copy of it.
        """
        path = Path(path)
        if not path.is_file():
            raise UnreadableVideo("probe", f"{path} does not exist or is not a regular file")
        size = path.stat().st_size
        video_id = video_id or content_video_id(path)
        if size == 0:
            raise UnreadableVideo("probe", "the file is empty (0 bytes)")
        try:
            info = ffmpeg.probe(_url(path), **_INPUT_OPTIONS)
        except ffmpeg.Error as err:
            refused = _refused_format(err.stderr)
            if refused:
                raise UnreadableVideo("probe", f"refused: {refused}") from None
            raise UnreadableVideo(
                "probe", f"ffprobe cannot read it as a video ({_last_line(err.stderr, path)})"
            ) from None
        facts = parse_probe(info)
        if facts["recorded_at"] is None and "://" not in (uri or ""):  # a local file
            facts["recorded_at"] = datetime.fromtimestamp(path.stat().st_mtime, UTC)
            facts["recorded_from"] = "file"
        if facts["frame_count"] is None:  # not in the header (Matroska, WebM): count packets
            facts["frame_count"] = _count_packets(path, facts["stream_index"])
        return cls(path=path, video_id=video_id, size_bytes=size, uri=uri or str(path), **facts)

    def check_limits(
        self, max_duration_s: float, min_bytes_per_s: float, max_frames: int | None = None
    ) -> None:
        """Raise UnreadableVideo if the file is over a limit: a duration over max_duration_s,
        under min_bytes_per_s bytes per claimed second (more than a file of this size can
        hold), or more than max_frames frames."""
        if max_frames is not None and self.frame_count and self.frame_count > max_frames:
            raise UnreadableVideo(
                "probe",
                f"it holds {self.frame_count} frames, over the limit of {max_frames} "
                "(EMOTRACK_MAX_FRAMES)",
            )
        if self.duration_s > max_duration_s:
            raise UnreadableVideo(
                "probe",
                f"it claims {self.duration_s / 3600:.1f} hours of video, over the limit of "
                f"{max_duration_s / 3600:.1f} (EMOTRACK_MAX_DURATION_S)",
            )
        if self.duration_s > 0 and self.size_bytes / self.duration_s < min_bytes_per_s:
            raise UnreadableVideo(
                "probe",
                f"it claims {self.duration_s:.0f} s of video in {self.size_bytes} bytes "
                f"({self.size_bytes / self.duration_s:.1f} bytes per second, under the "
                f"{min_bytes_per_s:g} of EMOTRACK_MIN_BYTES_PER_S): broken or crafted timestamps",
            )

    def analysis_rate(self, fps: float) -> float:
        """Frames per second actually analysed: `fps`, capped at the video's own rate."""
        return min(fps, self.fps) if self.fps > 0 else fps

    def frames_to_analyse(
        self, fps: float, start_s: float = 0.0, duration_s: float | None = None
    ) -> int:
        """At most how many frames frames() yields over this window: one per slot of the
        analysis rate, and never more than the stream's own frames in the window."""
        end = self.duration_s if duration_s is None else min(self.duration_s, start_s + duration_s)
        span = max(0.0, end - start_s)
        slots = math.ceil(span * self.analysis_rate(fps)) + 1
        if self.frame_count and self.duration_s > 0:
            return min(slots, math.ceil(self.frame_count * span / self.duration_s) + 1)
        return slots

    def decoded_size(self, max_pixels: int | None = None) -> tuple[int, int]:
        """(width, height) of the frames handed to Python: the upright size, or, if it has
        more than max_pixels pixels, scaled down to fit them (aspect kept, even sides)."""
        if not max_pixels or self.width * self.height <= max_pixels:
            return self.width, self.height
        scale = math.sqrt(max_pixels / (self.width * self.height))
        return max(2, int(self.width * scale) // 2 * 2), max(2, int(self.height * scale) // 2 * 2)

    def frames(
        self,
        fps: float,
        start_s: float = 0.0,
        duration_s: float | None = None,
        threads: int = 0,
        max_pixels: int | None = None,
        timeout_s: float | None = None,
    ) -> Iterator[tuple[float, np.ndarray]]:
        """The video's own frames, upright, at most `fps` a second, streamed from ffmpeg.

        Yields (timestamp_s, frame): timestamp_s is the frame's true presentation time in
        seconds from the start of the video, frame is uint8 (height, width, 3) RGB. The time
        line is cut into slots of 1 / rate seconds (rate: `fps` capped at the video's own)
        and the first real frame of each slot is kept: nothing is duplicated to fill a gap,
        so a variable-rate file or one with holes gives fewer frames. analysis_slot() gives
        a frame's slot, its frame_index in the lake.

        With start_s and duration_s, only that part is decoded (ffmpeg seeks to start_s);
        start_s should be a slot boundary. threads: ffmpeg's decoding threads (0: its own
        choice); when a slot spans 4 or more of the video's frames, non-reference frames are
        skipped by the decoder. max_pixels: larger frames are scaled down inside ffmpeg to
        decoded_size(max_pixels), so Python never holds more. timeout_s: ffmpeg is killed
        after this many seconds, whoever is slow (the decoder or the consumer).

        Raises UnreadableVideo if decoding fails, ends well before the end the header
        promises (truncated or corrupt), or passes timeout_s, after yielding the frames
        decoded before that.
        """
        rate = self.analysis_rate(fps)
        window: dict[str, float] = {"threads": threads} if threads else {}
        if start_s > 0 or duration_s is not None:
            window["ss"] = start_s
        if duration_s is not None:
            window["t"] = duration_s
        decoder = {"skip_frame": "noref"} if self.fps >= _SKIP_NOREF_RATIO * rate else {}
        width, height = self.decoded_size(max_pixels)
        read_times, write_times = os.pipe()  # ffmpeg prints each kept frame's time here
        stream = ffmpeg.input(_url(self.path), **_INPUT_OPTIONS, **decoder, **window)
        stream = stream[str(self.stream_index)]
        stream = stream.filter("select", _first_frame_per_slot(rate))
        if (width, height) != (self.width, self.height):
            stream = stream.filter("scale", width, height)
        stream = (
            stream.filter("settb", "AVTB")  # pts in microseconds
            .filter("metadata", mode="add", key="emotrack", value="1")  # print needs one key
            .filter("metadata", mode="print", file=f"pipe:{write_times}", direct=1)
        )
        cmd = (
            stream.output(
                "pipe:",
                format="rawvideo",
                pix_fmt="rgb24",
                fps_mode="passthrough",
                an=None,
                sn=None,
            )
            .global_args("-nostdin", "-v", "error", "-xerror")
            .compile(cmd=decoder_binary())
        )
        frame_bytes = width * height * 3
        index, last_slot, last_time = 0, -1, start_s
        # stderr goes to a file, never to a pipe nobody reads (which can deadlock ffmpeg).
        with tempfile.TemporaryFile() as errors, os.fdopen(read_times, "rb") as times:
            try:
                proc = subprocess.Popen(
                    cmd, stdout=subprocess.PIPE, stderr=errors, pass_fds=(write_times,)
                )
            finally:
                os.close(write_times)
            assert proc.stdout is not None
            watchdog = threading.Timer(timeout_s, proc.kill) if timeout_s else None
            if watchdog:
                watchdog.start()
            try:
                while buf := proc.stdout.read(frame_bytes):
                    if len(buf) < frame_bytes:
                        break
                    timestamp = start_s + _next_frame_time(times)
                    slot = analysis_slot(timestamp, rate)
                    if slot <= last_slot:  # out-of-order or negative times: never two per slot
                        continue
                    frame = np.frombuffer(buf, np.uint8).reshape(height, width, 3)
                    yield timestamp, frame
                    index, last_slot, last_time = index + 1, slot, timestamp
                returncode = proc.wait()
            finally:
                if watchdog:
                    watchdog.cancel()
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                proc.stdout.close()
            errors.seek(0)
            stderr = errors.read()
            message, refused = _last_line(stderr, self.path), _refused_format(stderr)
        if refused:
            raise UnreadableVideo("decode", f"refused: {refused}")
        if watchdog and watchdog.finished.is_set() and returncode < 0:
            raise UnreadableVideo(
                "analyse",
                f"stopped after {timeout_s:.0f} s, its time limit, with {index} frames analysed "
                "(EMOTRACK_VIDEO_TIME_BASE_S and EMOTRACK_VIDEO_TIME_PER_FRAME_S)",
            )
        if returncode != 0:
            raise UnreadableVideo(
                "decode", f"ffmpeg failed after {index} frames ({message}): truncated or corrupt?"
            )
        if index == 0:
            raise UnreadableVideo("decode", "ffmpeg decoded no frames from the video stream")
        end = self.duration_s if duration_s is None else min(self.duration_s, start_s + duration_s)
        if last_time - start_s < 0.9 * (end - start_s) - 1:
            raise UnreadableVideo(
                "decode",
                f"decoding stopped at {last_time:.1f} s of the {end:.1f} s the header promises: "
                "the file looks truncated or corrupt",
            )


def decoder_binary() -> str:
    """The ffmpeg that decodes: the static build shipped in the pinned imageio-ffmpeg wheel.
    It starts in about 15 ms where Debian's (linked to some 200 shared libraries) takes
    about 95 ms, a cost paid per video and per segment; ffprobe stays Debian's."""
    import imageio_ffmpeg

    return str(imageio_ffmpeg.get_ffmpeg_exe())


def analysis_slot(timestamp_s: float, rate: float) -> int:
    """The slot of 1 / rate seconds a frame's time falls in: its frame_index in the lake."""
    return math.floor(timestamp_s * rate + _SLOT_TOLERANCE)


# When a slot spans this many of the video's frames, frames that no other frame refers to
# (most B-frames) are not decoded at all: a quarter less decoding on H.264 here. A slot then
# still holds a reference frame unless the encoder chained 4 or more non-reference frames
# (x264 and phone encoders chain at most 2-3); such a slot is left empty, never filled.
_SKIP_NOREF_RATIO = 4

# Times are rounded to microseconds: a frame this close to a slot's start belongs to it.
_SLOT_TOLERANCE = 1e-3


def _first_frame_per_slot(rate: float) -> str:
    """ffmpeg select expression: a frame whose slot (as analysis_slot) is after the last
    selected frame's. Frames without a time are dropped."""

    def slot(t: str) -> str:
        return f"floor({t}*{rate!r}+{_SLOT_TOLERANCE!r})"

    later = f"gte({slot('t')}-{slot('prev_selected_t')},1)"
    return f"if(isnan(t),0,if(isnan(prev_selected_t),1,{later}))"


def _next_frame_time(times: IO[bytes]) -> float:
    """Seconds of the next frame that ffmpeg's metadata filter printed ("frame:N pts:P ...")."""
    for line in times:
        if line.startswith(b"frame:"):
            return int(line.split(b"pts:")[1].split()[0]) / 1e6
    raise UnreadableVideo("decode", "ffmpeg gave a frame without its time")


def parse_probe(info: dict[str, Any]) -> dict[str, Any]:
    """Pick duration, rate, upright size, codec and rotation out of ffprobe's JSON."""
    streams = [
        s
        for s in info.get("streams", [])
        if s.get("codec_type") == "video" and not s.get("disposition", {}).get("attached_pic")
    ]
    if not streams:
        kinds = sorted({s.get("codec_type", "?") for s in info.get("streams", [])})
        found = ", ".join(kinds) if kinds else "no streams"
        raise UnreadableVideo("probe", f"no video stream in the file (found: {found})")
    stream = streams[0]
    rotation = stream_rotation(stream)
    width, height = int(stream.get("width", 0)), int(stream.get("height", 0))
    if width <= 0 or height <= 0:
        raise UnreadableVideo("probe", "the video stream has no picture size")
    if rotation in (90, 270):
        width, height = height, width
    duration = stream.get("duration") or info.get("format", {}).get("duration") or 0.0
    created = creation_time(info.get("format", {}).get("tags", {})) or creation_time(
        stream.get("tags", {})
    )
    return {
        "duration_s": float(duration),
        "fps": _rate(stream.get("avg_frame_rate")) or _rate(stream.get("r_frame_rate")),
        "width": width,
        "height": height,
        "codec": str(stream.get("codec_name", "unknown")),
        "rotation": rotation,
        "stream_index": int(stream.get("index", 0)),
        "frame_count": int(stream.get("nb_frames", 0) or 0) or None,
        "recorded_at": created,
        "recorded_from": "container" if created else None,
    }


def creation_time(tags: dict[str, Any]) -> datetime | None:
    """The `creation_time` tag (ISO 8601, as cameras and phones write it) as UTC, if there
    is one and it is a real date (muxers write 1970-01-01 or 1904-01-01 for none)."""
    text = str(tags.get("creation_time") or "")
    try:
        when = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        return None
    when = when if when.tzinfo else when.replace(tzinfo=UTC)
    return when.astimezone(UTC) if when.year > 1970 else None


def _count_packets(path: Path, stream_index: int) -> int | None:
    """Packets of one stream, read from the container without decoding (None if unknown)."""
    try:
        info = ffmpeg.probe(
            _url(path),
            **_INPUT_OPTIONS,
            select_streams=str(stream_index),
            count_packets=None,
            show_entries="stream=nb_read_packets",
        )
        return int(info["streams"][0]["nb_read_packets"])
    except (ffmpeg.Error, KeyError, IndexError, ValueError):
        return None


def stream_rotation(stream: dict[str, Any]) -> int:
    """Display rotation in degrees (0/90/180/270) from the display matrix or the rotate tag."""
    degrees = 0.0
    for side_data in stream.get("side_data_list", []) or []:
        if "rotation" in side_data:
            degrees = float(side_data["rotation"])
            break
    else:
        degrees = float(stream.get("tags", {}).get("rotate", 0))
    return int(round(degrees / 90.0)) * 90 % 360


def _rate(text: str | None) -> float:
    try:
        rate = Fraction(text) if text else Fraction(0)
    except (ValueError, ZeroDivisionError):
        return 0.0
    return float(rate)


def _url(path: Path) -> str:
    """The file protocol's URL of a path: any name (a colon, a leading dash) is a file name."""
    return f"file:{path}"


def _refused_format(stderr: bytes | None) -> str | None:
    """Why ffmpeg refused to open a file as a video, if it found a format outside the
    whitelist ("[hls @ 0x...] Format not on whitelist ...", ffmpeg 5), or would not take an
    HLS playlist named like a video at all ("Not detecting m3u8/hls with non standard
    extension", ffmpeg 7 and later)."""
    if re.search(rb"Not detecting m3u8/hls with non standard extension", stderr or b""):
        return _REFERENCES["hls"]
    match = re.search(rb"\[([\w,]+) @ [^\]]*\] Format not on whitelist", stderr or b"")
    if match is None:
        return None
    name = match.group(1).decode()
    return _REFERENCES.get(name, f"its format ({name}) is not a video container")


def _last_line(stderr: bytes | None, path: Path) -> str:
    """ffmpeg's last error line, without the file name it starts with."""
    lines = (stderr or b"").decode(errors="replace").strip().splitlines()
    last = lines[-1].strip() if lines else "no message"
    return last.removeprefix(f"{_url(path)}: ").removeprefix(f"{path}: ")
