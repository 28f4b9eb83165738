"""Video files: discovery, probing with ffprobe and frame decoding with ffmpeg.

`VideoSource.from_path` is the only place that opens a video by path; everything after it
works on the `VideoSource` and the frames it yields.
"""

from __future__ import annotations

import math
import subprocess
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

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
# ffmpeg may only read local files: a file that is really a playlist pointing elsewhere fails.
_INPUT_OPTIONS = {"protocol_whitelist": "file"}


def find_videos(root: Path) -> list[Path]:
    """Video files under `root` (recursively, by suffix, hidden files skipped), sorted."""
    if not root.is_dir():
        raise FileNotFoundError(f"video source {root} is not a directory")
    return sorted(
        p
        for p in root.rglob("*")
        if p.suffix.lower() in VIDEO_SUFFIXES
        and p.is_file()
        and not any(part.startswith(".") for part in p.relative_to(root).parts)
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

    @property
    def name(self) -> str:
        return self.path.name

    @classmethod
    def from_path(cls, path: Path, video_id: str | None = None) -> VideoSource:
        """Probe `path` with ffprobe; raise UnreadableVideo when it holds no decodable video.

        `video_id` is the file's content id when the caller has already read it.
        """
        path = Path(path)
        if not path.is_file():
            raise UnreadableVideo("probe", f"{path} does not exist or is not a regular file")
        size = path.stat().st_size
        video_id = video_id or content_video_id(path)
        if size == 0:
            raise UnreadableVideo("probe", "the file is empty (0 bytes)")
        try:
            info = ffmpeg.probe(str(path), **_INPUT_OPTIONS)
        except ffmpeg.Error as err:
            raise UnreadableVideo(
                "probe", f"ffprobe cannot read it as a video ({_last_line(err.stderr, path)})"
            ) from None
        return cls(path=path, video_id=video_id, size_bytes=size, **parse_probe(info))

    def check_limits(self, max_duration_s: float, min_bytes_per_s: float) -> None:
        """Raise UnreadableVideo if the header claims more than a file of this size can hold:
        a duration over max_duration_s, or under min_bytes_per_s bytes per claimed second."""
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
    ) -> Iterator[tuple[float, np.ndarray]]:
        """Upright frames at `fps` (capped at the video's rate), streamed from ffmpeg.

        Yields (timestamp_s, frame): timestamp_s is seconds from the start of the video,
        frame is uint8 (height, width, 3) RGB. With start_s and duration_s, only that part
        of the video is decoded (ffmpeg seeks to start_s); timestamps stay those of the whole
        video when start_s is a multiple of 1 / rate. Raises UnreadableVideo if decoding fails
        or ends well short of what the header promises (a truncated or corrupt stream), after
        yielding the frames decoded before that. threads: ffmpeg's decoding threads (0: its
        own choice, one per core and more). max_pixels: larger frames are scaled down inside
        ffmpeg to decoded_size(max_pixels), so Python never holds more.
        """
        rate = self.analysis_rate(fps)
        window: dict[str, float] = {"threads": threads} if threads else {}
        if start_s > 0 or duration_s is not None:
            window["ss"] = start_s
        if duration_s is not None:
            window["t"] = duration_s
        width, height = self.decoded_size(max_pixels)
        stream = ffmpeg.input(str(self.path), **_INPUT_OPTIONS, **window)[str(self.stream_index)]
        stream = stream.filter("fps", fps=rate)
        if (width, height) != (self.width, self.height):
            stream = stream.filter("scale", width, height)
        cmd = (
            stream.output("pipe:", format="rawvideo", pix_fmt="rgb24", an=None, sn=None)
            .global_args("-nostdin", "-v", "error", "-xerror")
            .compile()
        )
        frame_bytes = width * height * 3
        # stderr goes to a file, never to a pipe nobody reads (which can deadlock ffmpeg).
        with tempfile.TemporaryFile() as errors:
            proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=errors)
            assert proc.stdout is not None
            try:
                index = 0
                while buf := proc.stdout.read(frame_bytes):
                    if len(buf) < frame_bytes:
                        break
                    frame = np.frombuffer(buf, np.uint8).reshape(height, width, 3)
                    yield start_s + index / rate, frame
                    index += 1
                returncode = proc.wait()
            finally:
                if proc.poll() is None:
                    proc.kill()
                    proc.wait()
                proc.stdout.close()
            errors.seek(0)
            message = _last_line(errors.read(), self.path)
        if returncode != 0:
            raise UnreadableVideo(
                "decode", f"ffmpeg failed after {index} frames ({message}): truncated or corrupt?"
            )
        if index == 0:
            raise UnreadableVideo("decode", "ffmpeg decoded no frames from the video stream")
        remaining = self.duration_s - start_s
        expected = int((remaining if duration_s is None else min(duration_s, remaining)) * rate)
        if index < 0.9 * expected - 1:
            raise UnreadableVideo(
                "decode",
                f"only {index} of the {expected} frames the header promises could be "
                "decoded: the file looks truncated or corrupt",
            )


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
    return {
        "duration_s": float(duration),
        "fps": _rate(stream.get("avg_frame_rate")) or _rate(stream.get("r_frame_rate")),
        "width": width,
        "height": height,
        "codec": str(stream.get("codec_name", "unknown")),
        "rotation": rotation,
        "stream_index": int(stream.get("index", 0)),
    }


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


def _last_line(stderr: bytes | None, path: Path) -> str:
    """ffmpeg's last error line, without the file name it starts with."""
    lines = (stderr or b"").decode(errors="replace").strip().splitlines()
    return lines[-1].strip().removeprefix(f"{path}: ") if lines else "no message"
