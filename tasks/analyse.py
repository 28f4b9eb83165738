"""Steps 2-3: probe a video, then decode it, run faces and the CNN over it, store the features."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.states import State

from emotrack.cluster import submit_features
from emotrack.errors import UnreadableVideo
from emotrack.lake import Lake
from emotrack.settings import Settings
from emotrack.video import VideoSource


@task(name="probe-video", task_run_name="probe [{path.name}]", cache_policy=NO_CACHE)
def probe_video(path: Path, video_id: str | None, settings: Settings) -> VideoSource:
    """ffprobe facts about one file; raises UnreadableVideo if it holds no usable video or
    claims more than the settings' limits."""
    source = VideoSource.from_path(path, video_id)
    source.check_limits(settings.max_duration_s, settings.min_bytes_per_s, settings.max_frames)
    get_run_logger().info(
        "%s: %s %dx%d, %.1f s at %.2f fps, rotation %d",
        path.name,
        source.codec,
        source.width,
        source.height,
        source.duration_s,
        source.fps,
        source.rotation,
    )
    return source


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
def extract_video_features(client: Any, source: VideoSource, lake: Lake, settings: Settings) -> int:
    """Decode, detect and track faces, run the CNN and publish the features, on a Dask worker
    (segments of a long video in parallel). Returns the number of frames analysed."""
    frames, rows = submit_features(client, source, lake, settings).result()
    get_run_logger().info(
        "%s: %d frames analysed, %d face observations in %s", source.name, frames, rows, lake.root
    )
    return int(frames)
