"""The Dask cluster and what runs on it: the heavy work of each video, one task per video.

Functions whose names end in `_on_worker` run in Dask worker processes: they decode, run the
models (loaded once per worker process) and write the video's features to the lake, then
return only small results (frame counts). The flow's process never holds frames. A video
longer than `settings.segment_s` is analysed as several segments in parallel, and a last
task joins them (Dask hands the segments' tables from worker to worker).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any
from uuid import uuid4

from emotrack.analysis import (
    WHOLE,
    Segment,
    VideoFeatures,
    extract_features,
    load_models,
    plan_segments,
    stitch_segments,
)
from emotrack.lake import Lake
from emotrack.settings import Settings
from emotrack.video import VideoSource

# Each worker process runs one task at a time, with TensorFlow and LiteRT on one thread.
WORKER_ENV = {"EMOTRACK_TF_THREADS": "1", "TF_CPP_MIN_LOG_LEVEL": "2", "OMP_NUM_THREADS": "1"}


# Workers report each batch of frames they analyse under this Dask event topic.
PROGRESS_TOPIC = "emotrack-progress"

# A task whose worker dies this many times (memory limit, crash) fails with KilledWorker.
ALLOWED_FAILURES = 2


@contextmanager
def dask_client(
    address: str | None, workers: int, memory_limit_gb: float | None = None
) -> Iterator[Any]:
    """A client of the Dask scheduler at `address`, or of a new LocalCluster of `workers`
    single-threaded worker processes (TensorFlow limited to one thread each).

    A local worker whose memory passes memory_limit_gb is restarted by its nanny; a task
    that kills workers ALLOWED_FAILURES times raises distributed.KilledWorker.
    """
    import dask
    from dask.distributed import Client, LocalCluster

    if address:
        with Client(address) as client:
            yield client
        return
    limit = f"{memory_limit_gb}GB" if memory_limit_gb else "auto"
    with (
        dask.config.set({"distributed.scheduler.allowed-failures": ALLOWED_FAILURES}),
        LocalCluster(
            n_workers=workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=None,
            env=WORKER_ENV,
            memory_limit=limit,
        ) as cluster,
        Client(cluster) as client,
    ):
        yield client


def submit_features(client: Any, source: VideoSource, lake: Lake, settings: Settings) -> Any:
    """A Dask future of (frames analysed, feature rows) once the video's features are in the
    lake: one task, or one per segment and a task that joins them."""
    segments = plan_segments(source, settings)
    root = lake.url
    if segments == [WHOLE]:
        return client.submit(
            features_on_worker, source, root, settings, pure=False, key=_key("features", source)
        )
    parts = [
        client.submit(
            segment_on_worker,
            source,
            segment,
            settings,
            pure=False,
            key=_key(f"segment-{segment.first}", source),
        )
        for segment in segments
    ]
    return client.submit(
        stitch_on_worker,
        source,
        segments,
        parts,
        root,
        settings,
        pure=False,
        key=_key("stitch", source),
    )


def features_on_worker(source: VideoSource, lake_root: str, settings: Settings) -> tuple[int, int]:
    """Analyse the whole video and publish its features: (frames analysed, feature rows)."""
    models = load_models(settings)
    features = extract_features(source, *models, settings, on_batch=_reporter(source))
    return features.frames_analysed, _publish(lake_root, source, features)


def segment_on_worker(source: VideoSource, segment: Segment, settings: Settings) -> VideoFeatures:
    """The features of one segment (its overlap frames included), for stitch_on_worker."""
    models = load_models(settings)
    return extract_features(source, *models, settings, segment, on_batch=_reporter(source))


def stitch_on_worker(
    source: VideoSource,
    segments: list[Segment],
    parts: list[VideoFeatures],
    lake_root: str,
    settings: Settings,
) -> tuple[int, int]:
    """Join the segments' features into the video's and publish them."""
    features = stitch_segments(list(zip(segments, parts, strict=True)), settings.track_min_iou)
    return features.frames_analysed, _publish(lake_root, source, features)


def _reporter(source: VideoSource) -> Any:
    """on_batch for extract_features on a worker: an event the client can subscribe to."""
    from distributed import get_worker

    worker = get_worker()

    def report(frames: int) -> None:
        worker.log_event(PROGRESS_TOPIC, {"video_id": source.video_id, "frames": frames})

    return report


@contextmanager
def progress_events(client: Any, on_frames: Any) -> Iterator[None]:
    """Call on_frames(video_id, frames) for each batch that the workers report meanwhile."""

    def handle(event: tuple[float, dict[str, Any]]) -> None:
        _, message = event
        on_frames(message["video_id"], int(message["frames"]))

    client.subscribe_topic(PROGRESS_TOPIC, handle)
    try:
        yield
    finally:
        client.unsubscribe_topic(PROGRESS_TOPIC)


def _publish(lake_root: str, source: VideoSource, features: VideoFeatures) -> int:
    tables = {"features": features.table}
    return Lake(lake_root).publish(source.video_id, tables)["features"]


def _key(stage: str, source: VideoSource) -> str:
    """A unique Dask key that says what the task is (shown on the Dask dashboard)."""
    return f"{stage}-{source.video_id}-{uuid4().hex[:8]}"
