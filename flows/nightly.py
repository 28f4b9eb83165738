"""The nightly flow: every video under a folder -> per-frame expression tables in the lake."""

from __future__ import annotations

from collections import Counter
from pathlib import Path

from prefect import flow, get_run_logger

from emotrack.errors import UnreadableVideo
from emotrack.lake import Lake
from emotrack.settings import Settings
from tasks.analyse import extract_video_features, probe_video, score_video
from tasks.discover import discover_videos
from tasks.publish import publish_video, record_failure


@flow(name="emotrack-nightly", flow_run_name="nightly {source}")
def nightly(source: str, lake: str, fps: float = 5.0) -> dict[str, int]:
    """Process every video under `source` into `lake`; returns how many ended ok or failed."""
    settings = Settings(analysis_fps=fps)
    # Step 1: discover the videos.
    paths = discover_videos(source)
    # Steps 2-5, one video at a time (TensorFlow already uses every core for one video).
    statuses = {path: process_video(path, Lake(Path(lake)), settings) for path in paths}
    errors = [path.name for path, status in statuses.items() if status == "error"]
    if errors:  # the others are done; the run still ends Failed so that someone looks
        raise RuntimeError(f"unexpected errors in {len(errors)} video(s): {', '.join(errors)}")
    return dict(Counter(statuses.values()))


def process_video(path: Path, lake: Lake, settings: Settings) -> str:
    """Probe, analyse, score and publish one video: "ok", "failed" or "error".

    An unreadable file is recorded in `failures` ("failed"). Any other exception is logged and
    reported as "error" (it may be transient: nothing is recorded) so that the other videos
    still get processed.
    """
    try:
        source = probe_video(path)  # Step 2: probe
        features = extract_video_features(source, settings)  # Step 3: decode, faces, CNN
        tracks, summary = score_video(source, features)  # Step 4: per-frame scores, summary
        publish_video(lake, source, features, tracks, summary, settings)  # Step 5: publish
    except UnreadableVideo as error:
        record_failure(lake, path, error)
        return "failed"
    except Exception:
        get_run_logger().exception("%s: unexpected error; the other videos go on", path.name)
        return "error"
    return "ok"
