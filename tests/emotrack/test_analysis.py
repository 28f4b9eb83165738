"""One video -> features: segments, their stitching, and decoding ahead of the models."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from emotrack.analysis import (
    WHOLE,
    Segment,
    extract_features,
    join_tracks,
    load_models,
    plan_segments,
    prefetch,
    stitch_segments,
)
from emotrack.settings import Settings
from emotrack.video import VideoSource


def _source(duration_s: float, fps: float = 25.0) -> VideoSource:
    return VideoSource(Path("x.mp4"), "vx", 1, duration_s, fps, 640, 360, "h264", 0)


def test_short_videos_are_one_segment_and_long_ones_split_with_overlap() -> None:
    settings = Settings(segment_s=120, segment_overlap_s=2)
    assert plan_segments(_source(150), settings) == [WHOLE]
    segments = plan_segments(_source(600), settings)  # 3000 frames at 5 fps
    assert segments == [
        Segment(0, 600, 10),
        Segment(600, 600, 10),
        Segment(1200, 600, 10),
        Segment(1800, 600, 10),
        Segment(2400, None, 0),
    ]
    assert segments[1].window(5.0) == (120.0, 122.0)
    assert segments[-1].window(5.0) == (480.0, None)


def _rows(frame_ids: list[tuple[int, int, float]]) -> pd.DataFrame:
    """Feature-like rows (frame_index, track_id, bbox_x) with 40 px boxes at y = 0."""
    return pd.DataFrame(
        [
            {
                "frame_index": f,
                "track_id": t,
                "bbox_x": x,
                "bbox_y": 0.0,
                "bbox_w": 40.0,
                "bbox_h": 40.0,
            }
            for f, t, x in frame_ids
        ]
    )


def test_tracks_join_by_box_overlap_in_the_shared_frames() -> None:
    before = _rows([(10, 0, 0), (10, 1, 200), (11, 0, 2), (11, 1, 202)])
    after = _rows([(10, 0, 201), (10, 1, 1), (11, 0, 203), (11, 1, 3), (11, 2, 400)])
    assert join_tracks(before, after, min_iou=0.3) == {0: 1, 1: 0}
    assert join_tracks(before.iloc[:0], after, min_iou=0.3) == {}


def test_prefetch_keeps_order_passes_errors_on_and_stops_early() -> None:
    assert list(prefetch(iter(range(50)), depth=3)) == list(range(50))

    def broken():
        yield 1
        raise ValueError("decoder broke")

    with pytest.raises(ValueError, match="decoder broke"):
        list(prefetch(broken(), depth=2))

    closed = []

    def endless():
        try:
            n = 0
            while True:
                yield n
                n += 1
        finally:
            closed.append(True)

    items = prefetch(endless(), depth=2)
    assert [next(items) for _ in range(5)] == [0, 1, 2, 3, 4]
    items.close()  # the consumer stops early: the producer stops and closes its source
    assert closed == [True]


@pytest.mark.parametrize("detect_every_s", [0.0, 1.0])
def test_a_video_analysed_in_segments_matches_the_video_analysed_whole(
    asset, detect_every_s
) -> None:
    settings = Settings(segment_s=6, segment_overlap_s=2, detect_every_s=detect_every_s)
    source = VideoSource.from_path(asset("WolfgangLanger_Pexels.mp4"))  # 19.7 s, one face
    models = load_models(settings)
    whole = extract_features(source, *models, settings)
    segments = plan_segments(source, settings)
    assert len(segments) == 3
    parts = [(s, extract_features(source, *models, settings, s)) for s in segments]
    assert parts[0][1].table["frame_index"].max() >= segments[1].first  # overlap analysed
    stitched = stitch_segments(parts, settings.track_min_iou)
    assert stitched.frames_analysed == whole.frames_analysed == 99  # slots 0-98 of 19.7 s
    ours, theirs = stitched.table, whole.table
    assert ours["frame_index"].tolist() == theirs["frame_index"].tolist()
    np.testing.assert_allclose(ours["timestamp_s"], theirs["timestamp_s"], rtol=0, atol=1e-9)
    if detect_every_s == 0:  # the same boxes, crops and outputs
        boxes = ["bbox_x", "bbox_w"]
        np.testing.assert_allclose(ours[boxes], theirs[boxes], atol=1e-3)
        np.testing.assert_allclose(np.stack(ours["logits"]), np.stack(theirs["logits"]), atol=1e-4)
    else:  # a segment's first frame is a detection where the whole video's may be followed:
        # boxes then differ as much as this face's detections differ frame to frame (to 20 %)
        centre = (ours["bbox_x"] + ours["bbox_w"] / 2) - (theirs["bbox_x"] + theirs["bbox_w"] / 2)
        assert (centre.abs() < 0.15 * theirs["bbox_w"]).all()
    assert ours["track_id"].tolist() == theirs["track_id"].tolist()
    assert set(ours["track_id"]) == {0}  # one person, one track across both boundaries


def test_boxes_of_downscaled_frames_are_stored_in_pixels_of_the_upright_frame(asset) -> None:
    source = VideoSource.from_path(asset("single_face.mp4"))  # 640x360
    full = Settings()
    small = Settings(max_frame_pixels=320 * 180)
    assert source.decoded_size(small.max_frame_pixels) == (320, 180)
    ours = extract_features(source, *load_models(small), small).table
    theirs = extract_features(source, *load_models(full), full).table
    assert len(ours) == len(theirs) == 12
    box = ["bbox_x", "bbox_y", "bbox_w", "bbox_h"]
    np.testing.assert_allclose(ours[box], theirs[box], atol=12)  # same face, same pixels
