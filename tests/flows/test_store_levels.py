"""`emotrack run --store full|geometry|labels`: what the lake keeps of each face, end to end
(the run, the report, rescoring where the features allow it). The cookbook's queries on
each level: tests/test_readme.py."""

from __future__ import annotations

from emotrack.flows.rescore import rescore

from emotrack.lake import Lake
from emotrack.schema import MEASURE_COLUMNS
from emotrack.scoring import MODEL_VERSION


def _thumbnails(lake: Lake) -> list[str]:
    return lake.store.keys("_report/thumbs")


def test_every_level_keeps_the_same_faces_and_labels(level_lakes) -> None:
    full, geometry, labels = (Lake(level_lakes[k]) for k in ("full", "geometry", "labels"))
    keys = ["video_id", "frame_index", "track_id", "bbox_x", "bbox_y", "emotion", "valence"]
    expected = full.read("tracks")[keys].sort_values(keys[:3], ignore_index=True)
    for lake in (geometry, labels):
        assert lake.read("tracks")[keys].sort_values(keys[:3], ignore_index=True).equals(expected)
        assert len(lake.read("episodes")) == len(full.read("episodes"))
        assert sorted(lake.read("videos")["stored"]) == [lake.read("videos")["stored"][0]] * 2


def test_full_keeps_landmarks_embeddings_and_thumbnails(level_lakes) -> None:
    lake = Lake(level_lakes["full"])
    features = lake.read("features")
    assert features["landmarks_i16"].notna().all() and features["embedding"].notna().all()
    assert _thumbnails(lake)
    assert set(lake.read("videos")["stored"]) == {"full"}


def test_geometry_keeps_pose_and_blendshapes_but_no_landmarks_embeddings_or_crops(
    level_lakes,
) -> None:
    lake = Lake(level_lakes["geometry"])
    features = lake.read("features")
    assert len(features) == Lake(level_lakes["full"]).count("features")
    assert features["landmarks_i16"].isna().all() and features["embedding"].isna().all()
    assert features["yaw_deg"].notna().any() and features["bs_jawOpen"].notna().any()
    assert features["logits"].notna().all()  # what every model scores from
    assert _thumbnails(lake) == []
    page = lake.store.read_bytes(f"_report/{features['video_id'][0]}.html").decode()
    assert "<svg" in page and "thumbs/" not in page and "head pose" in page


def test_labels_keeps_no_features_and_no_measures(level_lakes) -> None:
    lake = Lake(level_lakes["labels"])
    assert lake.count("features") == 0
    tracks = lake.read("tracks")
    assert len(tracks) and tracks[MEASURE_COLUMNS].isna().all().all()
    assert tracks[["bbox_w", "p_happy", "arousal"]].notna().all().all()
    assert _thumbnails(lake) == []
    page = lake.store.read_bytes(f"_report/{tracks['video_id'][0]}.html").decode()
    assert "<svg" in page and "head pose" not in page  # nothing the lake does not keep


def test_rescore_recomputes_geometry_lakes_and_says_what_labels_lakes_cannot(
    level_lakes, tmp_path
) -> None:
    import shutil

    geometry = Lake(shutil.copytree(level_lakes["geometry"], tmp_path / "geometry"))
    assert rescore(lake=str(geometry.root), model=MODEL_VERSION) == {
        "rescored": 2,
        "without_features": 0,
    }
    assert set(geometry.read("tracks")["model_version"]) == {MODEL_VERSION}

    labels = Lake(shutil.copytree(level_lakes["labels"], tmp_path / "labels"))
    before = labels.read("tracks")
    assert rescore(lake=str(labels.root), model=MODEL_VERSION) == {
        "rescored": 0,
        "without_features": 2,
    }
    assert labels.read("tracks").equals(before)  # kept, not emptied
