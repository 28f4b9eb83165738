"""The DuckDB queries shown in the README run against a lake made by the tests."""

import re
from pathlib import Path

import duckdb
import pytest

README = Path(__file__).resolve().parents[1] / "README.md"
QUERIES = re.findall(r"```sql\n(.*?)```", README.read_text(), flags=re.DOTALL)


def test_the_readme_shows_three_queries() -> None:
    assert len(QUERIES) == 3


@pytest.mark.parametrize("query", QUERIES, ids=["shares", "per-second", "status"])
def test_readme_query_runs_on_a_real_lake(nightly_run, query: str) -> None:
    sql = query.replace("'lake/", f"'{nightly_run.lake.root}/")
    assert sql != query
    with duckdb.connect() as con:
        rows = con.sql(sql).fetchall()
    assert rows, "the query returned nothing"
    assert all(value is not None for value in rows[0][:2])
