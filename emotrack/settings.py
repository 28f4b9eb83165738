"""One typed settings object, read from EMOTRACK_* environment variables."""

from __future__ import annotations

import os
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


def _default_cache_dir() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "emotrack"


class Settings(BaseSettings):
    """Everything a run can be tuned by; per-run values are flow parameters instead."""

    model_config = SettingsConfigDict(env_prefix="EMOTRACK_", frozen=True)

    cache_dir: Path = Field(default_factory=_default_cache_dir)
    """Where pinned wheels, model weights and sample videos are cached after verification."""
    expression_model_path: Path | None = None
    """Local copy of the FER2013 mini-Xception (.hdf5); still checked against its SHA-256."""
    analysis_fps: float = Field(default=5.0, gt=0)
    """Frames analysed per second of video (capped at the video's own frame rate)."""
    batch_frames: int = Field(default=16, ge=1)
    """Frames decoded and sent through the face detector together."""
    min_face_score: float = Field(default=0.90, ge=0, le=1)
    """MTCNN confidence below which a detection is dropped."""
    min_face_px: int = Field(default=24, ge=12)
    """Smallest face side, in pixels of the upright frame, that is detected."""
    track_min_iou: float = Field(default=0.3, gt=0, lt=1)
    """Overlap a detection needs with a track's last box to continue that track."""
    track_max_gap_s: float = Field(default=1.0, ge=0)
    """How long a face may go undetected and still keep its track_id."""
