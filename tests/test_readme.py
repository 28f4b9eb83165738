"""Every DuckDB query and pandas snippet in the README runs against a lake made by the tests."""

import re
import shutil
from pathlib import Path

import duckdb
import pytest

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()
COOKBOOK = README[README.index("### Queries an analyst would run") :]
COOKBOOK = COOKBOOK[: COOKBOOK.index("\n## ")]
QUERIES = re.findall(r"```sql\n(.*?)```", COOKBOOK, flags=re.DOTALL)
SNIPPETS = re.findall(r"```python\n(.*?)```", COOKBOOK, flags=re.DOTALL)
NAMES = ["lake", "shares", "arc", "episodes", "negative", "faces", "status", "versions"]


def test_the_cookbook_has_six_queries_and_two_pandas_snippets() -> None:
    assert len(QUERIES) == len(NAMES) and len(SNIPPETS) == 2


@pytest.fixture(scope="module")
def lake(nightly_run, tmp_path_factory) -> Path:
    """The nightly lake, rescored with the per-frame CNN kept next to the default."""
    from emotrack.scoring import MODEL_VERSION
    from flows.rescore import rescore

    root = tmp_path_factory.mktemp("cookbook") / "some lake"
    shutil.copytree(nightly_run.lake.root, root)
    rescore(lake=str(root), model=MODEL_VERSION, keep_versions=True)
    return root


@pytest.mark.parametrize("query", QUERIES[1:], ids=NAMES[1:])
def test_readme_query_runs_on_a_real_lake(lake, query: str, tmp_path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)  # from any folder: the lake's path is a variable
    set_lake = QUERIES[0].replace("/data/lake", str(lake))
    with duckdb.connect() as con:
        con.execute(set_lake)
        *settings, select = [q for q in query.split(";\n") if q.strip()]
        for statement in settings:
            con.execute(statement)
        rows = con.execute(select).fetchall()
    assert rows, "the query returned nothing"


def test_readme_queries_run_on_a_lake_without_failures_or_episodes(tmp_path) -> None:
    from emotrack.lake import Lake

    empty = Lake(tmp_path / "lake")
    empty.create_tables()
    with duckdb.connect() as con:
        con.execute(QUERIES[0].replace("/data/lake", str(empty.root)))
        for query in QUERIES[1:]:
            *settings, select = [q for q in query.split(";\n") if q.strip()]
            for statement in settings:
                con.execute(statement)
            assert con.execute(select).fetchall() == []


@pytest.mark.parametrize("snippet", SNIPPETS, ids=["dominant", "longest"])
def test_readme_pandas_snippet_runs_on_a_real_lake(lake, snippet: str, capsys) -> None:
    exec(snippet.replace('"/data/lake"', repr(str(lake))), {})  # noqa: S102 - the README's own
    assert "happy" in capsys.readouterr().out
