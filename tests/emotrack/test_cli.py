from pathlib import Path

from emotrack.cli import main


def test_report_lists_every_video_and_failure(nightly_run, capsys) -> None:
    assert main(["report", "--lake", str(nightly_run.lake.root)]) == 0
    out = capsys.readouterr().out
    for name in ["single_face.mp4", "no_face.mp4", "smile.mp4", "portrait.mov"]:
        assert f"ok      {name}" in out
    assert "failed  empty.mp4: probe: the file is empty (0 bytes)" in out
    assert "mostly happy" in out


def test_sql_runs_a_query_against_the_table_views(nightly_run, capsys) -> None:
    query = "SELECT count(DISTINCT video_id) AS videos FROM tracks"
    assert main(["sql", "--lake", str(nightly_run.lake.root), query]) == 0
    assert "videos" in capsys.readouterr().out


def test_run_refuses_a_source_that_is_not_a_folder(tmp_path: Path, capsys) -> None:
    assert main(["run", str(tmp_path / "nope"), "--lake", str(tmp_path / "lake")]) == 2
    assert "is not a folder" in capsys.readouterr().err


def test_rescore_refuses_an_unknown_model(tmp_path: Path, capsys) -> None:
    assert main(["rescore", "--lake", str(tmp_path), "--model", "no-such-model"]) == 2
    assert "unknown model" in capsys.readouterr().err


def test_run_refuses_an_unknown_model_before_decoding_anything(tmp_path: Path, capsys) -> None:
    lake = tmp_path / "lake"
    assert main(["run", str(tmp_path), "--lake", str(lake), "--model", "nope"]) == 2
    assert "unknown model" in capsys.readouterr().err and not lake.exists()
