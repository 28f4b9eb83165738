"""Steps of `emotrack train`: labelled videos -> sequences -> a registered temporal model."""

from __future__ import annotations

from dataclasses import asdict
from pathlib import Path
from typing import Any

from emotrack.models.temporal_gru import TemporalConfig, save_temporal_model
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from emotrack.errors import UnreadableVideo
from emotrack.lake import Lake
from emotrack.registry import register
from emotrack.settings import Settings
from emotrack.training.annotations import (
    LabelledVideo,
    annotated_face,
    find_video,
    read_annotations,
)
from emotrack.training.train_annotated import (
    LabelledSequence,
    TrainingOptions,
    evaluate_sequences,
    labelled_sequence,
    train_on_sequences,
)
from emotrack.units import VideoResult, failed_result
from emotrack.video import VideoSource


@task(name="read-annotations", cache_policy=NO_CACHE)
def find_labelled_videos(
    annotations: Path, videos: Path
) -> tuple[list[LabelledVideo], dict[str, Path]]:
    """The annotation names, and the video file of each video they name (missing ones are
    reported and left out)."""
    labelled = read_annotations(annotations)
    paths, missing = {}, []
    for stem in sorted({item.video for item in labelled}):
        path = find_video(videos, stem)
        if path is None:
            missing.append(stem)
        else:
            paths[stem] = path
    logger = get_run_logger()
    splits = {s: sum(item.split == s for item in labelled) for s in ("train", "validation")}
    logger.info("%d annotated faces (%s) in %d videos", len(labelled), splits, len(paths))
    if missing:
        logger.warning("no video file in %s for: %s", videos, ", ".join(missing))
    return labelled, paths


@task(name="probe-videos", cache_policy=NO_CACHE)
def probe_videos(
    paths: dict[str, Path], settings: Settings
) -> tuple[dict[str, VideoSource], list[VideoResult]]:
    """The probed video of each name, and the failure results of those that are unreadable
    (within the same limits as `emotrack run`)."""
    sources, unreadable = {}, []
    for stem, path in paths.items():
        try:
            source = VideoSource.from_path(path)
            source.check_limits(
                settings.max_duration_s, settings.min_bytes_per_s, settings.max_frames
            )
        except UnreadableVideo as error:
            get_run_logger().warning("%s: not processed (%s)", path.name, error)
            unreadable.append(failed_result(str(path), error, None))
            continue
        sources[stem] = source
    return sources, unreadable


@task(name="build-sequences", cache_policy=NO_CACHE)
def build_sequences(
    lake: Lake, labelled: list[LabelledVideo], sources: dict[str, VideoSource], fps: float
) -> list[LabelledSequence]:
    """One labelled sequence per annotated face whose video has features in the lake."""
    sequences = []
    for item in labelled:
        source = sources.get(item.video)
        if source is None:
            continue
        faces = annotated_face(lake.read_video("features", source.video_id), item.side)
        sequence = labelled_sequence(faces, item, source.fps, source.analysis_rate(fps))
        sequences.append(sequence)
    return sequences


@task(name="train-and-register", cache_policy=NO_CACHE)
def train_and_register(
    lake: Lake,
    name: str,
    sequences: list[LabelledSequence],
    options: dict[str, Any],
    facts: dict[str, Any],
    features: list[str] | tuple[str, ...] = ("cnn",),
) -> dict[str, Any]:
    """Train on the train split, evaluate on the validation split, add to the registry.
    With features beyond the CNN's (blendshapes, pose), the same training on the CNN's alone
    is evaluated too: the card shows the gain."""
    train = [s for s in sequences if s.split == "train"]
    validation = [s for s in sequences if s.split == "validation"]
    if not train or not validation:
        raise ValueError(
            f"training needs annotated videos in both Train_Set and Validation_Set (found "
            f"{len(train)} and {len(validation)} with features)"
        )
    cfg = TemporalConfig(version=name, features=tuple(features))
    model, training = train_on_sequences(train, cfg, TrainingOptions(**options))
    scores = evaluate_sequences(model, cfg, validation)
    if cfg.features != ("cnn",):  # the gain: the same training on the CNN's features alone
        alone = TemporalConfig(version=f"{name}-cnn-alone")
        baseline, _ = train_on_sequences(train, alone, TrainingOptions(**options))
        scores["cnn_features_alone"] = evaluate_sequences(baseline, alone, validation)["model"]
    metrics = {
        "validation": scores,
        "training": training,
        "data": {
            **facts,
            "train_names": len(train),
            "validation_names": len(validation),
            "train": sorted(s.name for s in train),
            "validation": sorted(s.name for s in validation),
        },
        "config": asdict(cfg),
    }
    folder = register(lake.root, name, lambda out: save_temporal_model(model, cfg, out), metrics)
    logger = get_run_logger()
    for who in ("model", "cnn"):
        logger.info("validation, %s: %s", who, _headline(metrics["validation"][who]))
    logger.info("registered %s in %s", name, folder)
    return metrics["validation"]


def _headline(figures: dict[str, Any]) -> str:
    keys = ("accuracy", "macro_f1", "ccc_valence", "ccc_arousal", "expression_frames")
    return ", ".join(f"{k} {figures[k]}" for k in keys if k in figures)
