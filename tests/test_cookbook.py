"""Every DuckDB query and every pandas and polars snippet of the site's cookbook
(docs/cookbook.md) runs against a lake made by the tests, as an analyst would run them:
without emotrack's code."""

import re
import shutil
from pathlib import Path

import pytest

COOKBOOK = (Path(__file__).resolve().parents[1] / "docs" / "cookbook.md").read_text()
QUERIES = re.findall(r"```sql\n(.*?)```", COOKBOOK, flags=re.DOTALL)
SNIPPETS = re.findall(r"```python\n(.*?)```", COOKBOOK, flags=re.DOTALL)
SETUP, READERS = SNIPPETS[0], SNIPPETS[1:]
NAMES = [
    "shares",
    "arc",
    "episodes",
    "negative",
    "faces",
    "status",
    "versions",
    "smiles",
    "looking-away",
    "episode-action-units",
    "against-rest",
]
READER_NAMES = ["pandas-dominant", "pandas-longest", "polars-shares", "polars-happiest"]


def test_the_cookbook_has_a_duckdb_setup_eleven_queries_and_four_snippets() -> None:
    assert "duckdb.connect()" in SETUP and "read_parquet" in SETUP
    assert len(QUERIES) == len(NAMES) and len(READERS) == len(READER_NAMES)


@pytest.fixture(scope="module")
def lake(nightly_run, tmp_path_factory) -> Path:
    """The nightly lake, rescored with the per-frame CNN kept next to the default."""
    from emotrack.flows.rescore import rescore

    from emotrack.scoring import MODEL_VERSION

    root = tmp_path_factory.mktemp("cookbook") / "some lake"
    shutil.copytree(nightly_run.lake.root, root)
    rescore(lake=str(root), model=MODEL_VERSION, keep_versions=True)
    return root


def _connect(lake: Path):
    """The cookbook's DuckDB setup, run as written (the lake's path put in)."""
    scope: dict = {}
    exec(SETUP.replace('"/data/lake"', repr(str(lake))), scope)  # noqa: S102 - the cookbook's
    return scope["con"]


def _run(con, query: str) -> list:
    *settings, select = [q for q in query.split(";\n") if q.strip()]
    for statement in settings:
        con.execute(statement)
    return con.execute(select).fetchall()


@pytest.mark.parametrize("query", QUERIES, ids=NAMES)
def test_readme_query_runs_on_a_real_lake(lake, query: str, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # from any folder
    assert _run(_connect(lake), query), "the query returned nothing"


def test_readme_queries_run_on_a_lake_without_rows(tmp_path) -> None:
    from emotrack.lake import Lake

    empty = Lake(tmp_path / "lake")
    empty.create_tables()
    con = _connect(empty.root)
    for query in QUERIES:
        assert _run(con, query) == []


@pytest.mark.parametrize("snippet", READERS, ids=READER_NAMES)
def test_readme_reader_snippet_runs_on_a_real_lake(lake, snippet: str, capsys, tmp_path) -> None:
    if "polars" in snippet:  # pola-rs/polars#20944: not through a path with a space
        shutil.copytree(lake, tmp_path / "lake")
        lake = tmp_path / "lake"
    exec(snippet.replace('"/data/lake"', repr(str(lake))), {})  # noqa: S102 - the cookbook's
    assert "happy" in capsys.readouterr().out


@pytest.mark.parametrize("level", ["geometry", "labels"])
def test_readme_queries_run_on_every_storage_level(level_lakes, level: str) -> None:
    con = _connect(level_lakes[level])
    answers = {name: _run(con, query) for name, query in zip(NAMES, QUERIES, strict=True)}
    assert answers["shares"] and answers["episodes"] and answers["status"]  # labels kept
