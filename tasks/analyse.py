"""Steps 2-3: probe a video, then decode it and run faces and the expression CNN over it."""

from __future__ import annotations

from pathlib import Path

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE
from prefect.states import State

from emotrack.analysis import VideoFeatures, extract_features, load_models
from emotrack.errors import UnreadableVideo
from emotrack.settings import Settings
from emotrack.video import VideoSource


@task(name="probe-video", task_run_name="probe [{path.name}]", cache_policy=NO_CACHE)
def probe_video(path: Path, video_id: str | None = None) -> VideoSource:
    """ffprobe facts about one file; raises UnreadableVideo if it holds no usable video."""
    source = VideoSource.from_path(path, video_id)
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
def extract_video_features(source: VideoSource, settings: Settings) -> VideoFeatures:
    """Decode, detect and track faces, and run the CNN (models loaded once per process)."""
    features = extract_features(source, *load_models(settings), settings)
    get_run_logger().info(
        "%s: %d frames analysed, %d face observations",
        source.name,
        features.frames_analysed,
        len(features.table),
    )
    return features
