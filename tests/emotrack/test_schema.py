from pathlib import Path

import pandas as pd
import pytest

from emotrack.lake import to_arrow
from emotrack.schema import (
    COMMIT_ORDER,
    FACE_COLUMNS,
    MEASURE_COLUMNS,
    TABLES,
    key_of,
    markdown,
    readme_with_columns,
    row,
)

LAKE_PAGE = Path(__file__).resolve().parents[2] / "docs" / "lake.md"


def test_the_lake_page_lists_every_column_of_every_table_as_declared() -> None:
    text = LAKE_PAGE.read_text()
    assert readme_with_columns(text) == text, "run: python -m emotrack.schema docs/lake.md"
    for name in ("videos", "features", "tracks", "episodes", "summaries", "failures"):
        assert f"| `{name}` |" in markdown()
    assert "_sources" not in markdown()  # emotrack's own table is not the analysts'


def test_a_column_name_is_declared_once_per_table_and_every_table_is_committed() -> None:
    for table in TABLES.values():
        assert len(table.names) == len(set(table.names)), table.name
        assert key_of(table.name) in table.names
    assert sorted(COMMIT_ORDER) == sorted(TABLES) and COMMIT_ORDER[-1] == "videos"


def test_features_and_tracks_share_the_face_and_its_measures() -> None:
    for name in ("features", "tracks"):
        names = TABLES[name].names
        assert set(FACE_COLUMNS) <= set(names) and set(MEASURE_COLUMNS) <= set(names)
    assert TABLES["tracks"].versioned and not TABLES["features"].versioned


def test_a_row_has_every_column_in_order_and_refuses_unknown_ones() -> None:
    built = row("failures", source_uri="a.mp4", stage="probe")
    assert list(built) == TABLES["failures"].names and built["video_id"] is None
    with pytest.raises(ValueError, match="no column"):
        row("failures", source_uri="a.mp4", stag="probe")


def test_rows_without_a_required_value_are_refused_and_optional_ones_become_null() -> None:
    failure = row(
        "failures",
        source_uri="a.mp4",
        stage="probe",
        error_type="E",
        message="m",
        failed_at=pd.Timestamp.now(tz="UTC"),
    )
    data = to_arrow("failures", pd.DataFrame([failure]))
    assert data.schema == TABLES["failures"].arrow and data["video_id"].null_count == 1
    with pytest.raises(ValueError, match="message"):
        to_arrow("failures", pd.DataFrame([{**failure, "message": None}]))


def test_each_storage_level_leaves_out_what_it_says() -> None:
    import pandas as pd

    from emotrack.schema import MEASURE_COLUMNS, stored

    rows = pd.DataFrame(
        {"frame_index": [0, 1], "embedding": [[1.0], [2.0]], "landmarks_i16": [[1], [2]]}
        | {c: [0.5, 0.6] for c in MEASURE_COLUMNS}
    )
    assert stored("features", rows, "full") is rows
    geometry = stored("features", rows, "geometry")
    assert geometry[["embedding", "landmarks_i16"]].isna().all().all()
    assert geometry[MEASURE_COLUMNS].equals(rows[MEASURE_COLUMNS])
    assert stored("features", rows, "labels").empty
    labels = stored("tracks", rows, "labels")
    assert labels[MEASURE_COLUMNS].isna().all().all() and len(labels) == 2
    assert stored("tracks", rows, "geometry") is rows
