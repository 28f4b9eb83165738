"""One video from bytes to rows ready to commit: the unit of work a Dask worker runs.

`analyse_video` stages the file (a local copy of an object), reads its content id if it is
not known yet, probes it, decodes it and runs the face detector, tracker and CNN (a long
video's segments in parallel on the cluster), scores its face tracks with the model, and
renders its HTML page. It returns a VideoResult: the video's rows of every table, its page
and thumbnails, and a line for the console. An unreadable file is a result too (status
"failed", with its `failures` row), not an exception. `rescore_videos` does the same from
stored features for a few videos at a time. Nothing here writes to the lake: the flow
commits results in batches (emotrack.lake.Lake.commit).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any
from uuid import uuid4

import numpy as np
import pandas as pd
import pyarrow as pa

from emotrack.analysis import (
    FEATURE_COLUMNS,
    WHOLE,
    Segment,
    VideoFeatures,
    extract_features,
    load_models,
    on_worker,
    plan_segments,
    segment_track_ids,
    stitch_segments,
)
from emotrack.baselines import Baseline, baseline_rows
from emotrack.cluster import report, trim_heap
from emotrack.episodes import episodes_of
from emotrack.errors import UnreadableVideo
from emotrack.faces import jpeg
from emotrack.forgetting import Place, forgotten_tracks
from emotrack.html_report import video_files, video_page
from emotrack.inference import score_features
from emotrack.lake import Batch, Lake, Staged, to_arrow
from emotrack.people_lake import identity_rows
from emotrack.records import failure_rows, video_row
from emotrack.schema import IDENTITIES, SOURCES, key_of, stored
from emotrack.scoring import against_rest, score_frames, summarise_video
from emotrack.settings import Settings
from emotrack.sources import Found, local_file, source_rows, unread_id
from emotrack.storage import base_name, is_url
from emotrack.video import VideoSource, content_video_id


@dataclass(frozen=True)
class VideoJob:
    """A file to analyse, and its content id when it is known without reading it; content
    ids that are `forgotten` (emotrack.forgetting) are not analysed once read."""

    found: Found
    video_id: str | None = None
    forgotten: frozenset[str] = frozenset()
    # video_id -> faces forgotten with their person (emotrack.forgetting.forgotten_faces):
    # their tracks are left out wherever the video is analysed again
    hidden: dict[str, tuple[Place, ...]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return base_name(self.found.uri)


@dataclass
class VideoResult:
    """What a unit of work returns: a video's rows and report files, and what to say.

    rows: table -> this video's rows (without video_id, added on commit): a table present,
    even with no rows, has the video's rows in it replaced; an absent one is left alone.
    status: "ok", "failed" (unreadable, recorded with its reason in `failures`) or
    "forgotten" (its content was forgotten: nothing to commit).
    """

    uri: str
    status: str
    video_id: str | None
    rows: dict[str, pd.DataFrame]
    detail: str
    pages: dict[str, bytes] = field(default_factory=dict)
    frames: int = 0
    staged: dict[str, list[Staged]] = field(default_factory=dict)  # rows staged in the lake

    @property
    def name(self) -> str:
        return base_name(self.uri)

    def add_to(self, batch: Batch) -> None:
        """Put the result's rows into a commit: per table, they replace the rows of this
        video (or file) by the table's key (emotrack.schema), or of the keys they hold."""
        mine = {"video_id": self.video_id, "source_uri": self.uri}
        for table, rows in self.rows.items():
            key = key_of(table)
            value = mine.get(key)
            if key not in mine:  # rows of other files (_sources: the copies read here)
                batch.add(table, rows[key], rows)
            elif value is not None:
                batch.add(table, [value], rows.assign(**{key: value}))
        for table, files in self.staged.items():
            assert self.video_id is not None
            batch.add_staged(table, self.video_id, files)


def analyse_video(
    job: VideoJob, settings: Settings, model: str | None, lake_url: str
) -> VideoResult:
    """The unit of work of `emotrack run` (and, with model None, of `emotrack train`, which
    only needs features). `lake_url`: where models trained into the lake are found."""
    found, video_id = job.found, job.video_id
    read_here = video_id is None and is_url(found.uri)  # an object's id, read from its copy
    try:
        with local_file(found.uri, settings.max_staged_bytes, settings.staging_dir) as path:
            if read_here:
                video_id = content_video_id(path)
                if video_id in job.forgotten:
                    return VideoResult(found.uri, "forgotten", video_id, {}, "content forgotten")
            source = VideoSource.from_path(path, video_id, found.uri)  # a local id: read there
            video_id = source.video_id
            source.check_limits(
                settings.max_duration_s, settings.min_bytes_per_s, settings.max_frames
            )
            rate = source.analysis_rate(settings.analysis_fps)
            report(kind="start", uri=found.uri, duration_s=source.duration_s, rate=rate)
            features, staged = video_features(source, settings, lake_url)
            hidden = forgotten_tracks(features.table, job.hidden.get(str(video_id), ()))
            features, staged = without_tracks(features, staged, hidden)
    except UnreadableVideo as error:
        if video_id is None and is_url(found.uri):  # never copied: quarantined by its ETag
            video_id = unread_id(found)
        result = failed_result(found.uri, error, video_id, found.size)
    else:
        result = features_result(source, features, settings, model, lake_url, staged)
    if read_here and video_id is not None:
        result.rows[SOURCES] = source_rows([(found, video_id)])
    trim_heap()
    return result


def without_tracks(
    features: VideoFeatures, staged: list[Staged], hidden: set[int]
) -> tuple[VideoFeatures, list[Staged]]:
    """A video's features (and staged files) without the tracks `hidden`: their rows,
    thumbnails and identities are gone before anything is scored or committed."""
    if not hidden:
        return features, staged
    table = features.table[~features.table["track_id"].isin(hidden)].reset_index(drop=True)
    kept = replace(
        features,
        table=table,
        thumbnails={t: v for t, v in features.thumbnails.items() if t not in hidden},
        identities={t: v for t, v in features.identities.items() if t not in hidden},
    )
    files = [
        replace(s, track_ids={k: v for k, v in (s.track_ids or {}).items() if v not in hidden})
        for s in staged
    ]
    return kept, files


def video_features(
    source: VideoSource, settings: Settings, lake_url: str
) -> tuple[VideoFeatures, list[Staged]]:
    """The video's features: analysed here, or, for a video longer than a segment, its
    segments spread over the cluster (this task gives up its worker thread meanwhile).

    Segments stage their rows in the lake (Lake.stage) and send back only what scoring
    reads, without the landmarks: then the video's features are the staged files (to be
    committed with Batch.add_staged), and the table returned has no landmarks. Neither this
    worker nor the flow ever holds a long video's landmarks whole.
    """
    segments = plan_segments(source, settings)
    if segments == [WHOLE] or not on_worker():
        features = extract_features(
            source, *load_models(settings), settings, on_batch=_frames_reporter(source)
        )
        return features, []
    from distributed import worker_client

    run = uuid4().hex
    with worker_client() as client:
        futures = [
            client.submit(
                segment_features,
                source,
                segment,
                settings,
                (lake_url, f"{run}/{i:05d}.parquet"),
                pure=False,
            )
            for i, segment in enumerate(segments)
        ]
        parts: list[StagedSegment] = client.gather(futures)
    pairs = [(segment, part.features()) for segment, part in zip(segments, parts, strict=True)]
    same_person = settings.same_person if settings.identity else None
    maps = segment_track_ids(pairs, settings.track_min_iou, same_person)
    staged = [
        Staged(part.file, str(source.video_id), segment.end, ids)
        for segment, part, ids in zip(segments, parts, maps, strict=True)
        if part.file is not None  # the storage level keeps no features rows
    ]
    return stitch_segments(pairs, settings.track_min_iou, maps), staged


# Columns a segment stages in the lake and leaves out of what it sends back (not scored).
STAGED_ONLY = ["landmarks_i16", "landmarks"]


@dataclass(frozen=True)
class StagedSegment:
    """What a segment of a long video sends back once its rows are staged in the lake: its
    rows without STAGED_ONLY's columns, as Arrow (a few buffers: thousands of small pandas
    arrays would pin the worker's heap until the video is stitched), its thumbnails, the
    frames it owns, the staged file's key and its tracks' identities (never staged)."""

    rows: pa.Table
    thumbnails: dict[int, tuple[float, np.ndarray]]
    frames_analysed: int
    file: str | None  # None: nothing staged (the storage level keeps no features rows)
    identities: dict[int, np.ndarray]

    def features(self) -> VideoFeatures:
        """As a segment's features (FEATURE_COLUMNS, STAGED_ONLY's columns null)."""
        table = self.rows.to_pandas().assign(**dict.fromkeys(STAGED_ONLY, None))
        return VideoFeatures(
            self.frames_analysed, table[FEATURE_COLUMNS], self.thumbnails, self.identities
        )


def segment_features(
    source: VideoSource, segment: Segment, settings: Settings, stage: tuple[str, str]
) -> StagedSegment:
    """The features of one segment of a long video (its overlap frames included), staged
    in the lake (`stage`: the lake's URL, the file's name under its staging area)."""
    features = extract_features(
        source, *load_models(settings), settings, segment, on_batch=_frames_reporter(source)
    )
    lake_url, name = stage
    rows = to_arrow("features", features.table.assign(video_id=source.video_id))
    kept = stored("features", features.table, settings.store)  # nothing else is written
    file = None
    if kept is features.table:  # all of it
        file = Lake(lake_url).stage("features", name, rows)
    elif len(kept):
        file = Lake(lake_url).stage("features", name, kept.assign(video_id=source.video_id))
    slim = rows.drop_columns(["video_id", *STAGED_ONLY])
    staged = StagedSegment(
        slim, features.thumbnails, features.frames_analysed, file, features.identities
    )
    del features, rows
    trim_heap()
    return staged


def features_result(
    source: VideoSource,
    features: VideoFeatures,
    settings: Settings,
    model: str | None,
    lake_url: str,
    staged: list[Staged] | None = None,
) -> VideoResult:
    """The rows of an analysed video: its features (or, when `staged`, the files they were
    staged in), and with a model its tracks, episodes, summary, `videos` row (ok, which
    clears a failure recorded for its file) and page."""
    table = features.table.sort_values(["frame_index", "track_id"], ignore_index=True)
    level = settings.store
    rows: dict[str, pd.DataFrame] = {} if staged else {"features": stored("features", table, level)}
    result = VideoResult(
        source.source_uri,
        "ok",
        source.video_id,
        rows,
        "features stored",
        frames=features.frames_analysed,
        staged={"features": staged} if staged else {},
    )
    if model is None:
        return result
    rest = against_rest(table)
    scored = score_frames(table, score_features(table, model, lake_url, rest), rest)
    tracks = stored("tracks", scored, level)  # what the lake, and so the page, may show
    summary = summarise_video(tracks, features.frames_analysed, model, source.duration_s)
    episodes = episodes_of(tracks)
    now = datetime.now(UTC)
    video = video_row(source, settings.analysis_fps, features.frames_analysed, "ok", now, level)
    if settings.people:  # its tracks are grouped into people after the commit
        rows[IDENTITIES] = identity_rows(str(source.video_id), table, features.identities)
    rows |= {
        "tracks": tracks,
        "baselines": stored("baselines", baseline_rows(rest.baselines), level),
        "episodes": episodes,
        "summaries": pd.DataFrame([summary]),
        "videos": pd.DataFrame([video]),
        "failures": pd.DataFrame(),  # a failure recorded for this file is cleared
    }
    faces = features.thumbnails.items() if level == "full" else []  # crops: full only
    thumbnails = {t: jpeg(face) for t, (_, face) in faces}
    result.pages = video_files({**video, "model_version": model}, tracks, episodes, thumbnails)
    mostly = summary["dominant_emotion"] or "no face"
    result.detail = f"{summary['n_tracks']} face track(s), mostly {mostly}"
    return result


def failed_result(
    uri: str, error: UnreadableVideo, video_id: str | None, size: int | None = None
) -> VideoResult:
    """An unreadable file: its `failures` row, and its `videos` row (failed) when its id is
    known."""
    failure, video = failure_rows(uri, error, video_id, size)
    rows = {"failures": pd.DataFrame([failure])}
    if video is not None:
        rows["videos"] = pd.DataFrame([video])
    video_id = str(video["video_id"]) if video else None
    return VideoResult(uri, "failed", video_id, rows, str(error))


@dataclass(frozen=True)
class RescoreJob:
    """Videos to score again from their stored features: their `videos` rows, and the
    resting faces of their tracks' people (video_id -> track_id -> Baseline; --people)."""

    videos: list[dict[str, Any]]
    people: dict[str, dict[int, Baseline]] = field(default_factory=dict)

    @property
    def name(self) -> str:
        return f"rescore-{self.videos[0]['video_id']}"


def rescore_jobs(
    videos: list[dict[str, Any]], people: dict[str, dict[int, Baseline]], per_job: int
) -> list[RescoreJob]:
    """`videos` (their `videos` rows), per_job a job, each job with the resting faces of
    its videos' people (`people`: video_id -> track_id -> Baseline)."""
    parts = (videos[i : i + per_job] for i in range(0, len(videos), per_job))
    return [
        RescoreJob(
            part, {v["video_id"]: people[v["video_id"]] for v in part if v["video_id"] in people}
        )
        for part in parts
    ]


def rescore_videos(
    job: RescoreJob, model: str, lake_url: str, pages: bool = True
) -> list[VideoResult]:
    """The unit of work of `emotrack rescore`: tracks, episodes, summaries (and pages) of a
    few videos, scored by `model` from their features (one read of the lake for all); a
    track of a person with a resting face is read against it, any other against its own."""
    features = Lake(lake_url).read_videos("features", [v["video_id"] for v in job.videos])
    by_video = dict(iter(features.groupby("video_id")))
    results = []
    for video in job.videos:
        table = by_video.get(video["video_id"], features.iloc[:0]).drop(columns="video_id")
        table = table.sort_values(["frame_index", "track_id"], ignore_index=True)
        rest = against_rest(table, job.people.get(video["video_id"]))
        tracks = score_frames(table, score_features(table, model, lake_url, rest), rest)
        frames = int(video["frames_analysed"] or 0)
        summary = summarise_video(tracks, frames, model, video["duration_s"])
        episodes = episodes_of(tracks)
        rows = {
            "tracks": tracks,
            "baselines": baseline_rows(rest.baselines),  # rows written before baselines get them
            "episodes": episodes,
            "summaries": pd.DataFrame([summary]),
        }
        result = VideoResult(video["source_uri"], "ok", video["video_id"], rows, "rescored")
        if pages:  # the thumbnails stay those the analysis wrote, one per track
            shown = {int(t) for t in tracks["track_id"].unique()}
            page = video_page({**video, "model_version": model}, tracks, episodes, shown)
            result.pages = {f"{video['video_id']}.html": page.encode()}
        results.append(result)
    return results


def _frames_reporter(source: VideoSource) -> Any:
    def frames(count: int) -> None:
        report(kind="frames", uri=source.source_uri, frames=count)

    return frames
