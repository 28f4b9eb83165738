"""Decode -> faces -> tracks -> CNN features for one video, streamed in small batches."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from queue import Full, Queue
from typing import Any, NamedTuple, TypeVar

import numpy as np
import pandas as pd

from emotrack.action_units import AU_COLUMNS, action_units
from emotrack.assets import FACE_IDENTITY, FACE_LANDMARKER, expression_cnn_path, fetch_asset
from emotrack.face_stage import FaceStage
from emotrack.faces import (
    Face,
    FaceTracker,
    aligned_crop,
    crop_face,
    faces_from_boxes,
    iou,
    pack_landmarks,
    thumbnail,
)
from emotrack.identity import IdentityStage, mean_embedding, sample_quality
from emotrack.models.expression_cnn import load_expression_features, predict_features
from emotrack.models.face_detector import BLAZEFACE, detect_faces, load_face_detector
from emotrack.models.face_identity import FaceIdentity, load_face_identity
from emotrack.models.face_landmarker import (
    BLENDSHAPE_COLUMNS,
    POSE_COLUMNS,
    SHAPE_COLUMNS,
    FaceLandmarker,
    Geometry,
    load_face_landmarker,
)
from emotrack.models.tensorflow_runtime import configure as configure_runtime
from emotrack.schema import MEASURE_COLUMNS, columns
from emotrack.settings import Settings
from emotrack.video import VideoSource, analysis_slot
from emotrack.vocabulary import NEUTRAL, softmax

T = TypeVar("T")


@dataclass(frozen=True)
class VideoFeatures:
    """The CNN features of one video: one row per face per analysed frame.

    table columns: frame_index, timestamp_s (seconds from the start), track_id, bbox_x,
    bbox_y, bbox_w, bbox_h (pixels, upright frame), face_score, logits (7 float32, pre-softmax),
    embedding (128 float32, pooled last convolutional block), then the face's geometry:
    landmarks_i16 (478 x, y, z, flat, faces.pack_landmarks), landmark_score, yaw_deg,
    pitch_deg, roll_deg and bs_* (NaN / None where the landmarker could not fit the face).
    """

    frames_analysed: int
    table: pd.DataFrame
    # track_id -> (how far from neutral the CNN saw it, in [0, 1]; the face then, uint8 RGB)
    thumbnails: dict[int, tuple[float, np.ndarray]] = field(default_factory=dict)
    # track_id -> who the face is: float32 (128,) of unit length (emotrack.identity), in
    # memory only; empty when identity is off
    identities: dict[int, np.ndarray] = field(default_factory=dict)


class Models(NamedTuple):
    detector: Any
    cnn: Any
    landmarker: FaceLandmarker | None  # None: geometry turned off
    identity: FaceIdentity | None  # None: identity turned off


def load_models(settings: Settings) -> Models:
    """The face detector, the expression CNN, the face landmarker and the identity model
    (verified weights), once per process, their runtimes set up first (threads, quiet; see
    Settings.tf_threads)."""
    threads = model_threads(settings)
    configure_runtime(threads, settings.verbose)
    cnn_path = expression_cnn_path(settings.cache_dir, settings.expression_model_path)
    landmarker = identity = None
    if settings.geometry:
        landmarker = load_face_landmarker(fetch_asset(FACE_LANDMARKER, settings.cache_dir))
    if settings.identity:
        identity = load_face_identity(fetch_asset(FACE_IDENTITY, settings.cache_dir), threads)
    cnn = load_expression_features(cnn_path)
    return Models(load_detector(settings), cnn, landmarker, identity)


def model_threads(settings: Settings) -> int | None:
    """Settings.tf_threads, or its default: one in a Dask worker, the runtimes' own choice
    elsewhere."""
    if settings.tf_threads is not None:
        return settings.tf_threads
    return 1 if on_worker() else None


def on_worker() -> bool:
    """Whether this code runs in a Dask worker."""
    from distributed import get_worker

    try:
        get_worker()
    except ValueError:
        return False
    return True


def load_detector(settings: Settings) -> Any:
    """The face detector named by `settings.detector`, with verified weights."""
    name = settings.detector
    weights = fetch_asset(BLAZEFACE[name].asset, settings.cache_dir) if name in BLAZEFACE else None
    return load_face_detector(name, weights, settings.min_face_px, settings.min_face_score)


@dataclass(frozen=True)
class Segment:
    """A stretch of a video analysed on its own, in analysis slots (1 / rate seconds each).

    It owns frames [first, first + frames) (to the end of the video when frames is None) and
    also analyses the `overlap` frames after them, which the next segment owns: tracks are
    joined across the boundary where both saw the same face.
    """

    first: int = 0
    frames: int | None = None
    overlap: int = 0

    @property
    def end(self) -> int | None:
        """The first frame it does not own (the next segment's first); None: to the end."""
        return None if self.frames is None else self.first + self.frames

    def window(self, rate: float) -> tuple[float, float | None]:
        """(start_s, duration_s or None for "to the end") of the frames to decode."""
        if self.frames is None:
            return self.first / rate, None
        return self.first / rate, (self.frames + self.overlap) / rate


WHOLE = Segment()


def plan_segments(source: VideoSource, settings: Settings) -> list[Segment]:
    """The segments of a video: one, or a few of about `segment_s` seconds each."""
    rate = source.analysis_rate(settings.analysis_fps)
    count = round(source.duration_s / settings.segment_s)
    if count <= 1:
        return [WHOLE]
    size = math.ceil(source.duration_s * rate / count)
    overlap = math.ceil(settings.segment_overlap_s * rate)
    return [
        Segment(i * size, None if i == count - 1 else size, 0 if i == count - 1 else overlap)
        for i in range(count)
    ]


def extract_features(
    source: VideoSource,
    detector: Any,
    cnn: Any,
    landmarker: FaceLandmarker | None,
    identity: FaceIdentity | None,
    settings: Settings,
    segment: Segment = WHOLE,
    on_batch: Callable[[int], None] | None = None,
) -> VideoFeatures:
    """Run the face detector, tracker, landmarker (unless None), identity model (unless
    None: a track then follows overlapping boxes, whoever they show) and expression CNN over
    `source` at the analysis rate.

    Over `segment` only, if given: its table then also holds the overlap frames after it,
    and frames_analysed counts only the frames it owns. ffmpeg decodes the next frames in a
    thread while the models work; at most about 2 * `settings.batch_frames` frames are held,
    each of at most `settings.max_frame_pixels` pixels. on_batch(frames) is called after each
    batch, with the number of frames it held (progress reports).
    """
    rate = source.analysis_rate(settings.analysis_fps)
    tracker = FaceTracker(
        min_iou=settings.track_min_iou, max_gap=round(settings.track_max_gap_s * rate)
    )
    stage = face_stage(detector, landmarker, settings, rate)
    people = None
    if identity is not None:
        every = max(1, round(settings.identity_sample_every_s * rate))
        people = IdentityStage(identity.embed, tracker.restart, every, settings.same_person)
    rows: list[dict[str, Any]] = []
    thumbnails: dict[int, tuple[float, np.ndarray]] = {}
    width, _ = source.decoded_size(settings.max_frame_pixels)
    upright = source.width / width  # boxes go to the lake in pixels of the upright frame
    window = segment.window(rate)
    to_analyse = source.frames_to_analyse(settings.analysis_fps, *window)
    decoded = source.frames(
        settings.analysis_fps,
        *window,
        threads=settings.decode_threads,
        max_pixels=settings.max_frame_pixels,
        timeout_s=settings.video_time_base_s + settings.video_time_per_frame_s * to_analyse,
    )
    end = math.inf if segment.end is None else segment.end
    owned = 0
    frames = prefetch(decoded, settings.batch_frames)
    for batch in batched(frames, settings.batch_frames):
        crops, seen = [], []
        for timestamp, frame in batch:
            index = analysis_slot(timestamp, rate)
            owned += index < end
            found = stage.faces(frame)
            ids = tracker.update(index, [face for face, _, _ in found])
            if people is not None:
                looks = [(f, g, sample_quality(f.w * upright, g)) for f, g, _ in found]
                ids = people.update(index, frame, looks, ids, stage.cut)
            for (face, geometry, detected), track_id in zip(found, ids, strict=True):
                points = geometry.landmarks if settings.aligned_crops else None
                crops.append(
                    crop_face(frame, face) if points is None else aligned_crop(frame, points)
                )
                seen.append((frame, face, track_id))
                rows.append(
                    {
                        "frame_index": index,
                        "timestamp_s": float(timestamp),
                        "track_id": track_id,
                        "bbox_x": face.x * upright,
                        "bbox_y": face.y * upright,
                        "bbox_w": face.w * upright,
                        "bbox_h": face.h * upright,
                        "face_score": face.score,
                        "detected": detected,
                        **geometry_row(geometry, face, upright),
                    }
                )
        if crops:
            logits, embedding = predict_features(cnn, np.stack(crops))
            for row, lg, em in zip(rows[-len(crops) :], logits, embedding, strict=True):
                row["logits"] = lg
                row["embedding"] = em
            keep_thumbnails(thumbnails, seen, 1.0 - softmax(logits)[:, NEUTRAL])
        if on_batch is not None:
            on_batch(len(batch))
    table = pd.DataFrame(rows, columns=FEATURE_COLUMNS)
    table[AU_COLUMNS] = action_units(table)
    identities = {} if people is None else people.embeddings()
    return VideoFeatures(owned, table, thumbnails, identities)


def face_stage(
    detector: Any, landmarker: FaceLandmarker | None, settings: Settings, rate: float
) -> FaceStage:
    """The face stage of one stretch of video at `rate` analysed frames a second: the
    detector (faces of at least settings.min_face_px) finds faces, the landmarker (if any)
    measures and follows them."""

    def detect(frame: np.ndarray) -> list[Face]:
        (boxes,) = detect_faces(detector, [frame])
        return faces_from_boxes(boxes, settings.min_face_px)

    measure = None
    if landmarker is not None:

        def measure(frame: np.ndarray, face: Face, roll_deg: float) -> Geometry:
            return landmarker.measure(frame, (face.x, face.y, face.w, face.h), roll_deg)

    every = max(1, round(settings.detect_every_s * rate))
    return FaceStage(detect, measure, detect_every=every, min_iou=settings.track_min_iou)


def geometry_row(geometry: Geometry, face: Face, upright: float = 1.0) -> dict[str, Any]:
    """A face's geometry columns, landmarks packed relative to its box (faces.pack_landmarks,
    in pixels of the upright frame: frame pixels times `upright`); NaN and None where the
    landmarker could not fit the face."""
    row: dict[str, Any] = {
        "landmarks_i16": None,
        "landmarks": None,  # emotrack 0.3's float32 pixels: null in new rows
        "landmark_score": np.nan if geometry.presence is None else geometry.presence,
        **dict.fromkeys(MEASURE_COLUMNS, np.nan),
    }
    if geometry.landmarks is not None:
        box = Face(face.x * upright, face.y * upright, face.w * upright, face.h * upright, 1.0)
        row["landmarks_i16"] = pack_landmarks(geometry.landmarks * np.float32(upright), box)
    if geometry.pose is not None:
        row.update(zip(POSE_COLUMNS, geometry.pose, strict=True))
    if geometry.blendshapes is not None:
        row.update(zip(BLENDSHAPE_COLUMNS, geometry.blendshapes.tolist(), strict=True))
    if geometry.shape is not None:
        row.update(zip(SHAPE_COLUMNS, geometry.shape.tolist(), strict=True))
    return row


def keep_thumbnails(
    best: dict[int, tuple[float, np.ndarray]],
    faces: list[tuple[np.ndarray, Face, int]],
    expressed: np.ndarray,
) -> None:
    """Keep in `best` each track's face where the CNN saw it least neutral so far: the
    report's thumbnail, cut from frames already decoded (faces: (frame, face, track_id))."""
    for (frame, face, track_id), score in zip(faces, expressed, strict=True):
        if track_id not in best or score > best[track_id][0]:
            best[track_id] = (float(score), thumbnail(frame, face))


def stitch_segments(
    parts: list[tuple[Segment, VideoFeatures]],
    min_iou: float,
    maps: list[dict[int, int]] | None = None,
    same_person: float | None = None,
) -> VideoFeatures:
    """One video's features from its segments' (in order): each segment's rows of the frames
    it owns, with the video's track ids (`maps`, or segment_track_ids(parts, min_iou,
    same_person)). A track's identity is the mean of its segments' (of unit length)."""
    maps = segment_track_ids(parts, min_iou, same_person) if maps is None else maps
    pieces: list[pd.DataFrame] = []
    thumbnails: dict[int, tuple[float, np.ndarray]] = {}
    found: dict[int, list[np.ndarray]] = {}
    for (segment, features), ids in zip(parts, maps, strict=True):
        pieces.append(owned_rows(features.table, segment, ids))
        for local, best in features.thumbnails.items():
            video = ids.get(local)
            if video is not None and best[0] > thumbnails.get(video, (-1.0,))[0]:
                thumbnails[video] = best
        for local, embedding in features.identities.items():
            if local in ids:
                found.setdefault(ids[local], []).append(embedding)
    identities = {t: mean_embedding([(1.0, e) for e in seen]) for t, seen in found.items()}
    stitched = (
        pd.concat(pieces, ignore_index=True) if pieces else pd.DataFrame(columns=FEATURE_COLUMNS)
    )
    frames = sum(features.frames_analysed for _, features in parts)
    return VideoFeatures(frames, stitched, thumbnails, identities)


def owned_rows(table: pd.DataFrame, segment: Segment, ids: dict[int, int]) -> pd.DataFrame:
    """A segment's rows of the frames it owns (not its overlap), with the video's track ids
    (`ids`: the segment's -> the video's, from segment_track_ids)."""
    end = math.inf if segment.end is None else segment.end
    owned = table[table["frame_index"] < end]
    return owned.assign(track_id=owned["track_id"].map(ids)).reset_index(drop=True)


def segment_track_ids(
    parts: list[tuple[Segment, VideoFeatures]], min_iou: float, same_person: float | None = None
) -> list[dict[int, int]]:
    """Per segment (in order), its track ids -> the video's.

    A track of the next segment that overlaps a track of this one (box IoU >= min_iou) in
    the overlap frames continues that track's id, unless both have identities (the
    segments' VideoFeatures.identities) whose cosine is under `same_person` (None: boxes
    alone decide): the same place, someone else. Ids are numbered 0, 1, ... in order of
    first appearance in the frames each segment owns, as for a video analysed whole; a track
    seen only in a segment's overlap frames, and not continued, has none. Only frame_index,
    track_id and the box columns of each table are read.
    """
    joined: list[dict[int, int]] = []
    carried = pd.DataFrame(columns=FEATURE_COLUMNS)
    first_seen: dict[int, tuple[int, int]] = {}  # joined id -> (first owned frame, local id)
    next_id = 0
    before: dict[int, np.ndarray] = {}
    for segment, features in parts:
        table = features.table
        after = features.identities

        def alike(after_id: int, before_id: int) -> bool:
            a, b = after.get(after_id), before.get(before_id)  # noqa: B023 - used at once
            return same_person is None or a is None or b is None or float(a @ b) >= same_person

        ids = join_tracks(carried, table, min_iou, alike)
        for local in sorted(set(table["track_id"]) - set(ids)):
            ids[local], next_id = next_id, next_id + 1
        end = math.inf if segment.end is None else segment.end
        owned = table[table["frame_index"] < end]
        for local, frame in owned.groupby("track_id")["frame_index"].min().items():
            key = (int(frame), int(ids[local]))
            first_seen[ids[local]] = min(first_seen.get(ids[local], key), key)
        joined.append(ids)
        carried = table[table["frame_index"] >= end]
        before = after
    order = sorted(first_seen, key=lambda track: first_seen[track])
    renumber = {old: new for new, old in enumerate(order)}
    return [
        {int(local): renumber[video] for local, video in ids.items() if video in renumber}
        for ids in joined
    ]


def join_tracks(
    before: pd.DataFrame,
    after: pd.DataFrame,
    min_iou: float,
    alike: Callable[[int, int], bool] = lambda after_id, before_id: True,
) -> dict[int, int]:
    """after's track id -> before's track id, for tracks that overlap in the same frames.

    Pairs are taken greedily by the number of shared frames where their boxes overlap by
    min_iou or more; each track joins at most one other, and only where alike(after's id,
    before's id).
    """
    box = ["frame_index", "track_id", "bbox_x", "bbox_y", "bbox_w", "bbox_h"]
    pairs = before[box].merge(after[box], on="frame_index", suffixes=("_a", "_b"))
    if pairs.empty:
        return {}
    pairs["overlap"] = [
        iou(
            Face(r.bbox_x_a, r.bbox_y_a, r.bbox_w_a, r.bbox_h_a, 1.0),
            Face(r.bbox_x_b, r.bbox_y_b, r.bbox_w_b, r.bbox_h_b, 1.0),
        )
        for r in pairs.itertuples()
    ]
    votes = pairs[pairs["overlap"] >= min_iou].groupby(["track_id_b", "track_id_a"]).size()
    joined: dict[int, int] = {}
    for (after_id, before_id), _ in votes.sort_values(ascending=False, kind="stable").items():
        if (
            after_id not in joined
            and before_id not in joined.values()
            and alike(int(after_id), int(before_id))
        ):
            joined[int(after_id)] = int(before_id)
    return joined


def prefetch(items: Iterator[T], depth: int) -> Iterator[T]:
    """The items of `items`, produced by a background thread up to `depth` items ahead.

    Lets ffmpeg decode (and this process copy frames out of its pipe) while the caller runs
    the models. An exception in `items` is raised to the caller; when the caller stops early,
    the thread stops and closes `items` (which ends ffmpeg).
    """
    queue: Queue[tuple[Any, BaseException | None]] = Queue(maxsize=depth)
    stop, end = threading.Event(), object()

    def put(entry: tuple[Any, BaseException | None]) -> bool:
        while not stop.is_set():
            try:
                queue.put(entry, timeout=0.1)
                return True
            except Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not put((item, None)):
                    return
            put((end, None))
        except BaseException as error:  # noqa: BLE001 - handed to the consumer
            put((end, error))
        finally:
            close = getattr(items, "close", None)
            if close is not None:
                close()

    thread = threading.Thread(target=produce, name="emotrack-prefetch", daemon=True)
    thread.start()
    try:
        while True:
            item, error = queue.get()
            if error is not None:
                raise error
            if item is end:
                return
            yield item
    finally:
        stop.set()
        thread.join()


def batched(items: Iterable[Any], size: int) -> Iterator[tuple[Any, ...]]:
    """Consecutive tuples of `size` items (the last may be shorter); Python 3.12's batched."""
    iterator = iter(items)
    while batch := tuple(islice(iterator, size)):
        yield batch


FEATURE_COLUMNS = columns("features", without=["video_id"])  # video_id is added on commit
