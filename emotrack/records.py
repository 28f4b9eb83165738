"""Rows that describe inputs: the `videos` row of a video and the `failures` row of a file."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

from emotrack.errors import UnreadableVideo
from emotrack.schema import row
from emotrack.storage import is_url
from emotrack.video import VideoSource, content_video_id


def video_row(
    source: VideoSource,
    analysis_fps: float,
    frames_analysed: int,
    status: str,
    processed_at: datetime,
    stored: str | None = None,
) -> dict[str, object]:
    """The `videos` row of a probed video (`stored`: the storage level of its faces)."""
    return row(
        "videos",
        video_id=source.video_id,
        source_uri=source.source_uri,
        size_bytes=source.size_bytes,
        duration_s=source.duration_s,
        fps=source.fps,
        width=source.width,
        height=source.height,
        codec=source.codec,
        rotation=source.rotation,
        analysis_fps=source.analysis_rate(analysis_fps),
        frames_analysed=frames_analysed,
        status=status,
        processed_at=processed_at,
        stored=stored,
        recorded_at=source.recorded_at,
        recorded_from=source.recorded_from,
    )


def failure_rows(
    uri: str, error: UnreadableVideo, video_id: str | None = None, size: int | None = None
) -> tuple[dict[str, object], dict[str, object] | None]:
    """The `failures` row of an unreadable file, and its `videos` row when its id is known
    (given, or read from a local file)."""
    now = datetime.now(UTC)
    if not is_url(uri):
        try:
            video_id, size = video_id or content_video_id(Path(uri)), Path(uri).stat().st_size
        except OSError:
            video_id, size = None, None
    failure = row(
        "failures",
        source_uri=uri,
        video_id=video_id,
        stage=error.stage,
        error_type=type(error).__name__,
        message=error.message,
        failed_at=now,
    )
    if video_id is None:
        return failure, None
    # what a probe would have said stays unknown (null)
    video = row(
        "videos",
        video_id=video_id,
        source_uri=uri,
        size_bytes=size,
        status="failed",
        processed_at=now,
    )
    return failure, video
