"""`emotrack train` on a small Aff-Wild2-format dataset built from real face media."""

import json
import shlex
import shutil

import cv2
import pandas as pd

from emotrack.lake import Lake
from emotrack.video import VideoSource


def test_train_registers_a_model_that_its_printed_command_applies(
    nightly_run, asset, tmp_path, prefect_server, capsys, labelled_dataset, monkeypatch
) -> None:
    from prefect.settings import PREFECT_API_URL

    from emotrack.cli import main

    # the session's Prefect server, rather than one per command (test_storage_errors runs
    # commands on a machine of their own, each with its own server)
    monkeypatch.setenv("PREFECT_API_URL", str(PREFECT_API_URL.value()))

    lake = Lake(tmp_path / "lake")  # a lake that has run nightly over some of the videos
    shutil.copytree(nightly_run.lake.root, lake.root)
    videos = tmp_path / "videos"
    videos.mkdir()
    shutil.copyfile(asset("WolfgangLanger_Pexels.mp4"), videos / "talk.mp4")
    shutil.copyfile(nightly_run.source / "smile.mp4", videos / "smile.mp4")
    shutil.copyfile(nightly_run.source / "single_face.mp4", videos / "single_face.mp4")
    ann = labelled_dataset(tmp_path, {p.stem: p for p in videos.iterdir()})
    stored = {p: p.stat().st_mtime_ns for p in (lake.root / "features").rglob("*.parquet")}

    assert (
        main(
            [
                "train",
                "--annotations",
                str(ann),
                "--videos",
                str(videos),
                "--lake",
                str(lake.root),
                "--name",
                "test-gru",
                "--epochs",
                "3",
                "--features",
                "cnn,blendshapes,pose",
            ]
        )
        == 0
    )
    printed = capsys.readouterr().out

    # features: the two videos the lake had are not decoded again; the new one is added,
    # with its geometry, as a complete video of the lake
    assert {p: p.stat().st_mtime_ns for p in stored} == stored
    talk = VideoSource.from_path(videos / "talk.mp4").video_id
    talk_features = lake.read_video("features", talk)
    assert talk_features["yaw_deg"].notna().mean() > 0.9
    assert lake.read_video("videos", talk)["status"].tolist() == ["ok"]
    # metrics for the model, the same training on the CNN's features alone, and the CNN,
    # on the same validation frames
    entry = lake.root / "_models" / "test-gru"
    metrics = json.loads((entry / "metrics.json").read_text())
    validation = metrics["validation"]
    for who in ("model", "cnn_features_alone", "cnn"):
        figures = validation[who]
        assert figures["expression_frames"] > 0 and 0 <= figures["macro_f1"] <= 1
        assert -1 <= figures["ccc_valence"] <= 1 and -1 <= figures["ccc_arousal"] <= 1
        assert figures["expression_frames"] == validation["model"]["expression_frames"]
    assert metrics["config"]["features"] == ["cnn", "blendshapes", "pose"]
    assert metrics["config"]["inputs"] == 8 + 52 + 3
    # the registry entry: weights, config, metrics, confusion matrices, card
    assert metrics["data"]["train"] == ["smile", "talk"]
    assert metrics["data"]["validation"] == ["single_face"]
    before, kept = (
        metrics["training"][k] for k in ("expression_frames_before", "expression_frames_kept")
    )
    assert before[3] == kept[3] == 15  # happy, the rarer class, kept whole: 3 s at 5 fps
    assert before[6] == 49 and kept[6] < 30  # neutral kept down to about as many
    assert before[0] == before[1] == kept[0] == 0  # Other and unannotated are not classes
    assert metrics["training"]["va_frames_kept"] < metrics["training"]["va_frames_before"]
    for who in ("model", "cnn"):
        matrix = pd.read_csv(entry / f"confusion_{who}.csv", index_col=0)
        assert matrix.shape == (7, 7)
        assert matrix.to_numpy().sum() == validation[who]["expression_frames"]
        assert cv2.imread(str(entry / f"confusion_{who}.png")) is not None
    card = (entry / "MODEL_CARD.md").read_text()
    assert "Balancing by downsampling" in card and "per-frame CNN" in card
    assert "CNN features alone" in card and "blendshapes and pose" in card
    assert (entry / "model.weights.h5").stat().st_size > 10_000

    assert main(["models", "--lake", str(lake.root)]) == 0
    assert "test-gru" in capsys.readouterr().out

    # the command train printed applies the model to the lake's videos, the training ones too
    (command,) = [line for line in printed.splitlines() if line.startswith("use it with: ")]
    assert main(shlex.split(command.removeprefix("use it with: emotrack "))) == 0
    tracks = lake.read("tracks")
    assert set(tracks["model_version"]) == {"test-gru"}
    complete = set(lake.read("videos").query("status == 'ok'").video_id)
    assert talk in complete and set(tracks["video_id"]) == complete & set(
        lake.video_ids("features")
    )

    # another lake: the model imported by name, then applied there
    other = Lake(tmp_path / "other")
    shutil.copytree(nightly_run.lake.root, other.root)
    assert main(["import-model", str(entry), "--lake", str(other.root)]) == 0
    (command,) = [
        line for line in capsys.readouterr().out.splitlines() if line.startswith("use it with: ")
    ]
    assert main(shlex.split(command.removeprefix("use it with: emotrack "))) == 0
    assert set(other.read("tracks")["model_version"]) == {"test-gru"}
    assert main(["import-model", str(entry), "--lake", str(other.root)]) == 2  # name taken
