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


def test_migrate_then_compact_a_0_1_0_lake(tmp_path: Path, capsys) -> None:
    import shutil

    from emotrack.lake import Lake
    from emotrack.schema import PUBLIC

    old = Path(__file__).resolve().parents[1] / "data" / "lake-0.1.0"
    shutil.copytree(old, tmp_path / "lake")
    assert main(["migrate", "--lake", str(tmp_path / "lake")]) == 0
    assert "converted to Delta tables" in capsys.readouterr().out
    assert main(["migrate", "--lake", str(tmp_path / "lake")]) == 0
    assert "nothing to convert" in capsys.readouterr().out
    lake = Lake(tmp_path / "lake")
    before = {t: lake.count(t) for t in PUBLIC}
    assert main(["compact", "--lake", str(tmp_path / "lake"), "--retention-hours", "0"]) == 0
    assert "tracks" in capsys.readouterr().out
    assert {t: lake.count(t) for t in PUBLIC} == before
    on_disk = list((tmp_path / "lake" / "summaries").glob("*.parquet"))
    assert len(on_disk) == len(lake.files("summaries")) == 1  # the old version vacuumed


def test_sql_on_a_folder_that_is_no_lake_says_so(tmp_path: Path, capsys) -> None:
    assert main(["sql", "--lake", str(tmp_path), "SELECT 1"]) == 2
    assert "has no videos table" in capsys.readouterr().err


def test_sql_with_a_mistaken_query_says_what_duckdb_says_without_a_traceback(
    tmp_path: Path, capsys
) -> None:
    from emotrack.lake import Lake

    Lake(tmp_path / "lake").create_tables()
    assert main(["sql", "--lake", str(tmp_path / "lake"), "SELECT yaw FROM tracks"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("emotrack: the query failed: Binder Error") and "yaw_deg" in err


def test_detect_every_frame_reaches_the_settings_of_run_and_serve(monkeypatch) -> None:
    from emotrack.cli import build_parser
    from emotrack.commands import settings_from

    monkeypatch.delenv("EMOTRACK_DETECT_EVERY_S", raising=False)
    parser = build_parser()
    plain = settings_from(parser.parse_args(["run", "videos", "--lake", "lake"]))
    every = settings_from(
        parser.parse_args(["run", "videos", "--lake", "lake", "--detect-every-frame"])
    )
    serve = parser.parse_args(["serve", "--source", "s", "--lake", "l", "--detect-every-frame"])
    assert plain.detect_every_s == 1.0 and every.detect_every_s == 0.0
    assert settings_from(serve).detect_every_s == 0.0


def test_a_time_budget_reads_hours_minutes_or_seconds(capsys) -> None:
    import pytest

    from emotrack.cli import duration_s

    assert duration_s("6h") == 21600 and duration_s("90m") == 5400
    assert duration_s("1.5h") == 5400 and duration_s("3600") == duration_s("3600s") == 3600
    for bad in ("soon", "0h", "-5m"):
        with pytest.raises(SystemExit):
            main(["run", "/archive", "--lake", "/lake", "--time-budget", bad])
        assert "--time-budget" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["run", "/archive", "--lake", "/lake", "--max-videos", "0"])
