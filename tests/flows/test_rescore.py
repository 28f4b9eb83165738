import shutil

from emotrack.inference import DEFAULT_MODEL
from emotrack.lake import Lake
from emotrack.scoring import MODEL_VERSION as CNN_PER_FRAME


def _snapshot(lake: Lake, table: str) -> dict[str, bytes]:
    return {str(p): p.read_bytes() for p in sorted((lake.root / table).rglob("*.parquet"))}


def test_rescoring_replaces_tracks_and_summaries_without_touching_features(
    nightly_run, tmp_path
) -> None:
    from emotrack.flows.rescore import rescore

    lake = Lake(tmp_path / "lake")
    shutil.copytree(nightly_run.lake.root, lake.root)
    features, videos = _snapshot(lake, "features"), _snapshot(lake, "videos")
    before = lake.read("tracks")
    assert set(before["model_version"]) == {DEFAULT_MODEL}

    assert rescore(lake=str(lake.root), model=CNN_PER_FRAME) == {
        "rescored": 4,
        "without_features": 0,
    }
    after = lake.read("tracks")
    assert set(after["model_version"]) == {CNN_PER_FRAME}
    assert len(after) == len(before)
    assert set(lake.read("summaries")["model_version"]) == {CNN_PER_FRAME}
    assert _snapshot(lake, "features") == features and _snapshot(lake, "videos") == videos

    rescore(lake=str(lake.root), model=DEFAULT_MODEL, keep_versions=True)
    both = lake.read("tracks").groupby("model_version").size().to_dict()
    assert both == {CNN_PER_FRAME: len(before), DEFAULT_MODEL: len(before)}
