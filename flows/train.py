"""Training a temporal model on labelled video (Aff-Wild2's layout) into the lake's registry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prefect import flow, get_run_logger

from emotrack.cluster import dask_client
from emotrack.errors import UnreadableVideo
from emotrack.lake import Lake
from emotrack.registry import model_folder
from emotrack.settings import Settings
from tasks.analyse import extract_video_features, probe_video
from tasks.publish import record_failure
from tasks.train import build_sequences, find_labelled_videos, train_and_register


@flow(name="emotrack-train", flow_run_name="train {name} on {annotations}")
def train(
    annotations: str,
    videos: str,
    lake: str,
    name: str,
    fps: float = 5.0,
    epochs: int = 30,
    seed: int = 7,
    dask_address: str | None = None,
    workers: int = 2,
    detector: str | None = None,
) -> dict[str, Any]:
    """Train model `name` on the annotated videos and add it to `lake`'s registry.

    Features come from the same stage as `emotrack run` and are stored in the lake's
    `features`: a video whose features are there already is not decoded again. Returns the
    validation metrics of the model and of the per-frame CNN.
    """
    store = Lake(lake)
    if model_folder(name, store.root) is not None:
        raise FileExistsError(f"a model named {name!r} exists already: choose another name")
    settings = (
        Settings(analysis_fps=fps, detector=detector) if detector else Settings(analysis_fps=fps)
    )
    with store.exclusive():
        # Step 1: the annotation files and the videos they name.
        labelled, paths = find_labelled_videos(Path(annotations), Path(videos))
        # Step 2: the CNN features of every video not yet in the lake, on the Dask cluster.
        sources = {}
        with dask_client(dask_address, workers, settings.worker_memory_gb) as client:
            stored = set(store.video_ids("features"))
            pending = {}
            for stem, path in paths.items():
                source = probe_video(path, None, settings, str(path))
                if isinstance(source, UnreadableVideo):
                    record_failure(store, str(path), source)
                    continue
                sources[stem] = source
                if source.video_id not in stored:
                    pending[stem] = extract_video_features.submit(
                        client, sources[stem], store, settings
                    )
            for stem, future in pending.items():
                outcome: int | Exception
                try:
                    outcome = future.result()
                except Exception as error:  # noqa: BLE001 - that video is left out
                    outcome = error
                if not isinstance(outcome, int):
                    get_run_logger().warning("%s: no features (%s); left out", stem, outcome)
                    sources.pop(stem)
        # Step 3: one labelled sequence per annotated face; train, evaluate, register.
        sequences = build_sequences(store, labelled, sources, settings.analysis_fps)
        options = {"seed": seed, "epochs": epochs}
        facts = {
            "annotations": str(annotations),
            "videos": str(videos),
            "analysis_fps": settings.analysis_fps,
            "detector": settings.detector,
        }
        return train_and_register(store, name, sequences, options, facts)
