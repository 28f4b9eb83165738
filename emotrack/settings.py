"""One typed settings object, read from EMOTRACK_* environment variables: the only module
that reads emotrack's settings from the environment. A command builds it once (flags over
the environment) and passes it down; a flow run applies its parameters to it
(Settings.with_run_options)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


def s3_endpoint() -> str | None:
    """The object store's endpoint when it is not AWS (MinIO, moto): AWS_ENDPOINT_URL, read
    from this process's environment when a store is opened, as botocore and delta-rs read
    it themselves in the same process."""
    return os.environ.get("AWS_ENDPOINT_URL") or None


SSE_KINDS = ("AES256", "aws:kms")


def s3_encryption() -> tuple[str, str | None] | None:
    """Server-side encryption of every object emotrack writes to S3, by fsspec and by
    delta-rs alike: EMOTRACK_S3_SSE (`AES256`: SSE-S3, `aws:kms`: SSE-KMS) and, for
    aws:kms, EMOTRACK_S3_SSE_KMS_KEY_ID (the key; none: the account's AWS-managed key).
    None: the bucket's own default. Read from the environment when a store is opened, as
    s3_endpoint is, so that the Dask workers' writes have it too. Raises ValueError for
    another kind."""
    kind = os.environ.get("EMOTRACK_S3_SSE") or None
    if kind is None:
        return None
    if kind not in SSE_KINDS:
        raise ValueError(f"EMOTRACK_S3_SSE={kind!r}: must be one of {', '.join(SSE_KINDS)}")
    return kind, os.environ.get("EMOTRACK_S3_SSE_KMS_KEY_ID") or None


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
    decode_threads: int = Field(default=1, ge=0)
    """ffmpeg threads per decode (0: ffmpeg's choice). A worker decodes one video at a time
    beside its single-threaded models, so 1 uses the cores best (measured: 20 % less CPU)."""
    max_frame_pixels: int = Field(default=1920 * 1080, ge=64 * 64)
    """Frames with more pixels are scaled down by ffmpeg to fit (aspect kept) before Python
    sees them, which bounds a worker's memory whatever the file claims. The default keeps
    1080p whole; in larger frames the smallest face found grows in proportion."""
    max_duration_s: float = Field(default=24 * 3600, gt=0)
    """Videos whose header claims more are recorded as failed, not analysed."""
    min_bytes_per_s: float = Field(default=256, ge=0)
    """Videos with fewer bytes per claimed second (hours claimed by a few KB) are recorded as
    failed: a real video stream, even a still one, takes more."""
    max_frames: int = Field(default=24 * 3600 * 60, ge=1)
    """Videos whose stream holds more frames (a day at 60 fps) are recorded as failed."""
    max_staged_bytes: int = Field(default=20 * 2**30, ge=1)
    """Videos on object storage are copied to a local temporary file to be decoded, one per
    video in flight, and deleted after; larger ones are recorded as failed, not copied."""
    staging_dir: Path | None = None
    """Where those copies go (None: the system's temporary folder). Local Dask workers read
    them; workers on other machines need this to be a folder they share."""
    video_time_base_s: float = Field(default=120.0, gt=0)
    video_time_per_frame_s: float = Field(default=2.0, gt=0)
    """A video (each segment of it) is stopped and recorded as failed after base + per
    frame x the frames it really has to analyse (at most one per analysis slot, at most its
    own frames). Typical cost here: 0.01-0.15 s a frame."""
    worker_memory_gb: float = Field(default=3.0, gt=0)
    """Memory ceiling of each local Dask worker. One worker needs about 0.9 GB (TensorFlow,
    the models, a batch of frames); past the ceiling its nanny restarts it, and a video that
    does so twice is recorded in `failures`."""
    batch_frames: int = Field(default=16, ge=1)
    """Frames decoded and sent through the face detector together."""
    detector: str = "blazeface-short"
    """Face detector: blazeface-short, blazeface-full, blazeface-back or mtcnn (benchmarks)."""
    geometry: bool = True
    """Landmarks, head pose and blendshapes for every face found (MediaPipe's face
    landmarker; docs/benchmarks.md gives its cost). Off (EMOTRACK_GEOMETRY=0, `emotrack run
    --no-geometry`): those columns stay null and the CNN sees unaligned crops."""
    store: str = Field(default="full", pattern="^(full|geometry|labels)$")
    """What the lake keeps of each face (emotrack.schema.STORE_LEVELS): `full`, `geometry`
    (no landmarks, embeddings or thumbnails) or `labels` (boxes, expressions, valence and
    arousal, episodes)."""
    detect_every_s: float = Field(default=1.0, ge=0)
    """With geometry on, the detector looks for new faces this often (and on a scene cut, or
    when a face is lost); in between, each face is followed by its landmarks (docs/lake.md, "How
    faces are found"). 0 (`emotrack run --detect-every-frame`): the detector runs on every
    analysed frame, as before 0.4 (crowded footage, comparisons)."""
    aligned_crops: bool = False
    """On: the CNN sees each face turned level and centred by its landmarks
    (faces.aligned_crop; the detector's box where the landmarker could not fit the face).
    Off by default: the CNN alone does better with them on the real-face set, but the
    default model then fails the no-harm checks (docs/models.md, "Which model")."""
    min_face_score: float | None = Field(default=None, ge=0, le=1)
    """Detector confidence below which a face is dropped; None: the detector's own."""
    min_face_px: int = Field(default=40, ge=12)
    """Smallest face side, in pixels of the upright frame, that must be found (up to 1/8 more
    in frames a little taller than BlazeFace's tiles: 45 px at 640x360). Smaller values make
    BlazeFace look at more tiles of large frames (slower)."""
    track_min_iou: float = Field(default=0.3, gt=0, lt=1)
    """Overlap a detection needs with a track's last box to continue that track."""
    track_max_gap_s: float = Field(default=1.0, ge=0)
    """How long a face may go undetected and still keep its track_id."""
    identity: bool = True
    """A track is one person: where a followed face turns out to be someone else (a cut to
    another person at the same place), its track ends and a new one starts (docs/lake.md, "How
    faces are found"). Off (EMOTRACK_IDENTITY=0): tracks follow overlapping boxes, whoever
    they show, as before 0.5."""
    same_person: float = Field(default=0.3, ge=-1, le=1)
    """Cosine similarity of two SFace embeddings of faces (a frame's, a track's) at and
    above which they are taken for the same person."""
    people: bool = False
    """Recognise people across videos and nights (`emotrack run --people`): each track's
    identity is stored (`_identities`), tracks are grouped into people (`people`,
    `track_people`). Off by default: it is biometric processing (docs/people.md)."""
    people_threshold: float = Field(default=0.425, ge=-1, le=1)
    """Cosine similarity of two tracks' identities at and above which they are linked into
    one person (chosen on the identity set: benchmarks/bench_identity.py)."""
    identity_sample_every_s: float = Field(default=20.0, gt=0)
    """How often a followed face is embedded again, at a good view (a track keeps its 4
    best views): this also finds a change of person that neither a scene cut nor the face's
    look showed. New faces, cuts and sudden changes are embedded at once."""
    segment_s: float = Field(default=60.0, gt=0)
    """Videos longer than this are analysed in segments of this length, in parallel."""
    segment_overlap_s: float = Field(default=1.0, ge=0)
    """Seconds analysed twice at each segment boundary, to join the face tracks across it."""
    worker_restart_videos: int = Field(default=2000, ge=0)
    """The safety net against memory that a worker would keep per video: after this many
    videos, a run sends no more until the ones in flight are done, then replaces its local
    Dask workers by fresh processes (nothing in flight: nothing lost, nothing done twice;
    about 10 s idle). 0: never. A cluster given by --dask-address is its operator's: see
    docs/operating.md (Dask's worker lifetime)."""
    videos_in_flight: int = Field(default=2, ge=1)
    """Videos sent to each Dask worker thread at a time: one analysed, the next one ready."""
    unit_retries: int = Field(default=2, ge=0)
    """Times a video is sent again after a transient error (an I/O error while reading it),
    after 5 s, then 30 s; then it is reported as an error and the run ends Failed."""
    commit_videos: int = Field(default=250, ge=1)
    commit_seconds: float = Field(default=60.0, gt=0)
    commit_rows: int = Field(default=50_000, ge=1)
    """Analysed videos wait in the run's memory until one of these is reached, then all their
    rows go into the lake in one commit per table: this many videos, this many seconds since
    the oldest waiting one, or this many rows of all tables (a features row holds about
    4.1 KB in memory with its 478 int16 landmarks: 50,000 rows are at most about 210 MB).
    A short video's rows take about 120 KB of the run's memory while they wait (pandas' own
    per-frame overhead, 6 tables): 250 short videos, not 500, kept a 2,000-clip first run's
    driver 40 MB lower between commits and 100 MB lower at them (benchmarks/bench_first_run.py)."""
    compact_small_files: int = Field(default=8, ge=2)
    """A run compacts a table (bin-packing, no sorting) once it holds this many files
    smaller than target_file_mb; `emotrack compact` also sorts the rows by video_id."""
    target_file_mb: int = Field(default=128, ge=1)
    vacuum_retention_hours: float = Field(default=168.0, ge=0)
    """Files that compaction or a replacement took out of a table stay this long (time
    travel, readers still scanning an older version), then vacuum deletes them."""
    lock_ttl_s: float = Field(default=120.0, gt=0)
    """Object storage: the lock object's expiry; its run renews it every third of this."""
    api_auth_file: Path | None = None
    """A file holding the Prefect server's credentials (one `user:password` line, as given
    to `emotrack server --auth-file`): the commands' Prefect clients, and the flow runs that
    `serve` starts, send them. None: PREFECT_API_AUTH_STRING's, if any."""
    progress: str = Field(default="auto", pattern="^(auto|live|plain|off)$")
    """Console: a live display on a terminal and plain lines elsewhere (auto), or forced."""
    log_level: str = Field(default="WARNING", pattern="^(DEBUG|INFO|WARNING|ERROR)$")
    """What the console shows of the logs: WARNING (emotrack's own lines, warnings and
    errors), or DEBUG (`emotrack -v`: every line of Prefect, Dask and the native runtimes,
    here and in the Dask workers). The Prefect API receives every INFO line either way."""
    tf_threads: int | None = Field(default=None, ge=1)
    """Threads of TensorFlow and LiteRT in each process that runs the models. None: one in a
    Dask worker (a worker analyses one video at a time: run one worker per core), the
    runtimes' own choice elsewhere (training, evaluation)."""

    @field_validator("log_level", mode="before")
    @classmethod
    def _upper(cls, level: str) -> str:
        return str(level).upper()

    @property
    def verbose(self) -> bool:
        return self.log_level == "DEBUG"

    def with_run_options(self, **options: Any) -> Settings:
        """A copy with a run's options (flow parameters, by field name) applied; an option
        given as None leaves the field as it is. Validated as at construction."""
        given = {name: value for name, value in options.items() if value is not None}
        return type(self).model_validate({**self.model_dump(), **given})

    @model_validator(mode="after")
    def _people_need_identities(self) -> Settings:
        if self.people and not self.identity:
            raise ValueError("people: recognising people needs EMOTRACK_IDENTITY on")
        if self.people and self.store == "labels":
            raise ValueError(
                "people: --store labels keeps no track identities, without which people "
                "cannot be recognised in later videos: use --store geometry or full"
            )
        return self

    @field_validator("detector")
    @classmethod
    def _known_detector(cls, name: str) -> str:
        from emotrack.models.face_detector import DETECTORS

        if name not in DETECTORS:
            raise ValueError(f"unknown face detector {name!r}; known: {', '.join(DETECTORS)}")
        return name
