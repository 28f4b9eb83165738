"""Training a temporal model on labelled video (Aff-Wild2's layout) into the lake's registry."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from emotrack.tasks.commit import commit_batch
from emotrack.tasks.train import (
    build_sequences,
    find_labelled_videos,
    probe_videos,
    train_and_register,
)
from prefect import flow, get_run_logger

from emotrack.cluster import dask_client, run_bounded
from emotrack.inference import DEFAULT_MODEL
from emotrack.lake import Lake
from emotrack.registry import model_folder
from emotrack.settings import Settings
from emotrack.sources import Found
from emotrack.units import VideoJob, VideoResult, analyse_video


@flow(name="emotrack-train", flow_run_name="train {name} on {annotations}")
def train(
    annotations: str,
    videos: str,
    lake: str,
    name: str,
    fps: float | None = None,
    epochs: int = 30,
    seed: int = 7,
    dask_address: str | None = None,
    workers: int = 2,
    detector: str | None = None,
    features: list[str] | None = None,
    geometry: bool | None = None,
    settings: Settings | None = None,
) -> dict[str, Any]:
    """Train model `name` on the annotated videos and add it to `lake`'s registry.

    `features`: what the model reads per frame, "cnn" (the default) plus "blendshapes"
    and/or "pose" (the face landmarker's). `fps`, `detector` and `geometry` are the run's
    options over `settings` (None: from EMOTRACK_*), as for the nightly flow.

    Features come from the same stage as `emotrack run` and are stored in the lake's
    `features`: a video whose features are there already is not decoded again. Returns the
    validation metrics of the model and of the per-frame CNN.
    """
    store = Lake(lake)
    if model_folder(name, store.root) is not None:
        raise FileExistsError(f"a model named {name!r} exists already: choose another name")
    settings = (settings or Settings()).with_run_options(
        analysis_fps=fps, detector=detector, geometry=geometry
    )
    with store.writing(ttl_s=settings.lock_ttl_s):
        # Step 1: the annotation files and the videos they name, probed.
        labelled, paths = find_labelled_videos(Path(annotations), Path(videos))
        sources, unreadable = probe_videos(paths, settings)
        if unreadable:
            commit_batch(store, unreadable, "unreadable training videos")
        # Step 2: the CNN features of every video not yet in the lake, on the Dask cluster.
        stored = set(store.video_ids("features"))
        jobs = [
            VideoJob(Found(str(paths[stem])), source.video_id)
            for stem, source in sources.items()
            if source.video_id not in stored
        ]
        if jobs:
            with dask_client(dask_address, workers, settings.worker_memory_gb) as client:
                window = settings.videos_in_flight * sum(client.nthreads().values())
                # Scored with the default model too: the training videos become complete
                # videos of the lake, which `emotrack rescore --model NAME` then scores.
                done = run_bounded(
                    client, analyse_video, jobs, settings, DEFAULT_MODEL, store.url, window=window
                )
                results = []
                for job, result in filter(None, done):
                    if isinstance(result, VideoResult) and result.status == "ok":
                        results.append(result)
                        continue
                    get_run_logger().warning(
                        "%s: no features (%s); left out",
                        job.name,
                        getattr(result, "detail", result),
                    )
                    sources = {k: v for k, v in sources.items() if v.source_uri != job.found.uri}
                commit_batch(store, results, "features of the training videos")
        # Step 3: one labelled sequence per annotated face; train, evaluate, register.
        sequences = build_sequences(store, labelled, sources, settings.analysis_fps)
        options = {"seed": seed, "epochs": epochs}
        facts = {
            "annotations": str(annotations),
            "videos": str(videos),
            "analysis_fps": settings.analysis_fps,
            "detector": settings.detector,
        }
        return train_and_register(store, name, sequences, options, facts, features or ["cnn"])
