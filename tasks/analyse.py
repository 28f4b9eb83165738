"""Steps 2-3: probe a video, then decode it, run faces and the CNN over it, store the features."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from distributed import KilledWorker
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.states import State

from emotrack.cluster import ALLOWED_FAILURES, submit_features
from emotrack.errors import UnreadableVideo
from emotrack.lake import Lake
from emotrack.settings import Settings
from emotrack.video import VideoSource
from tasks import named


@task(name="probe-video", task_run_name=named("probe"), cache_policy=NO_CACHE)
def probe_video(
    path: Path, video_id: str | None, settings: Settings, uri: str
) -> VideoSource | UnreadableVideo:
    """ffprobe facts about the file `uri` (read at `path`, a local copy of it on object
    storage), or the UnreadableVideo that says why it holds no usable video or is over the
    settings' limits (returned, not raised: an unreadable input is an outcome to record, not
    a failed task with a traceback)."""
    try:
        source = VideoSource.from_path(path, video_id, uri)
        source.check_limits(settings.max_duration_s, settings.min_bytes_per_s, settings.max_frames)
    except UnreadableVideo as error:
        return error
    get_run_logger().info(
        "%s: %s %dx%d, %.1f s at %.2f fps, rotation %d",
        source.name,
        source.codec,
        source.width,
        source.height,
        source.duration_s,
        source.fps,
        source.rotation,
    )
    return source


def worker_died(error: KilledWorker, settings: Settings) -> UnreadableVideo:
    """The failure recorded for a video whose analysis kept killing its Dask worker."""
    return UnreadableVideo(
        "analyse",
        f"stopped: the Dask worker analysing it died {ALLOWED_FAILURES} times (memory limit "
        f"of {settings.worker_memory_gb:g} GB per worker exceeded, or a crash): {error}",
    )


def _transient(task: object, task_run: object, state: State) -> bool:
    """Retry an I/O-like error; never an unreadable video (retrying cannot fix the file)."""
    try:
        state.result()
    except UnreadableVideo:
        return False
    except OSError:
        return True
    except Exception:  # noqa: BLE001 - anything else is not known to be transient
        return False
    return False


@task(
    name="extract-features",
    task_run_name="faces+cnn [{source.name}]",
    cache_policy=NO_CACHE,
    retries=2,
    retry_delay_seconds=[5.0, 30.0],
    retry_condition_fn=_transient,
)
def extract_video_features(
    client: Any, source: VideoSource, lake: Lake, settings: Settings
) -> int | UnreadableVideo:
    """Decode, detect and track faces, run the CNN and publish the features, on a Dask worker
    (segments of a long video in parallel). Returns the number of frames analysed, or the
    UnreadableVideo that stopped it (a decode error, the time limit, or a worker that kept
    dying), returned like probe_video's."""
    try:
        frames, rows = submit_features(client, source, lake, settings).result()
    except UnreadableVideo as error:
        return error
    except KilledWorker as error:
        return worker_died(error, settings)
    get_run_logger().info(
        "%s: %d frames analysed, %d face observations in %s", source.name, frames, rows, lake.url
    )
    return int(frames)
