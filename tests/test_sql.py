"""Every shipped SQL file is Athena (Trino) SQL that runs the same on DuckDB."""

from __future__ import annotations

import pytest
import sqlglot

from etl_lib import analysis, catalog, sql, warehouse
from etl_lib.demo import DEMO_PLAYLIST, run_demo

SHIPPED = [("views", name) for name in sql.shipped("views")] + [
    ("queries", name) for name in sql.shipped("queries")
]
# Positional parameters each shipped query takes, bound as the report binds them.
QUERY_PARAMS = {
    name: analysis.query_params(name, DEMO_PLAYLIST, "2026-10-31", 5)
    for name in sql.shipped("queries")
}


@pytest.fixture(scope="module")
def demo_lake(tmp_path_factory) -> str:
    root = str(tmp_path_factory.mktemp("sql") / "lake")
    run_demo(root, days=5)
    return root


def test_sql_is_shipped():
    assert {"daily_chart", "latest_tracks", "latest_albums", "latest_artists"} <= set(
        sql.shipped("views")
    )
    assert "top_tracks" in sql.shipped("queries")


@pytest.mark.parametrize(("folder", "name"), SHIPPED)
def test_parses_as_trino_and_is_portable(folder, name):
    text = sql.shipped(folder)[name]
    assert sqlglot.parse_one(text, read="trino") is not None
    # queries read the views too: their column types come from DuckDB after transpiling
    assert sql.portability_problems(text, catalog.schema_with_views()) == []


@pytest.mark.parametrize(("folder", "name"), SHIPPED)
def test_runs_on_duckdb_against_the_demo_data(demo_lake, folder, name):
    text = sql.shipped(folder)[name]
    statement = text if folder == "queries" else f"SELECT * FROM ({text}) AS shipped"
    frame = warehouse.query(demo_lake, statement, QUERY_PARAMS.get(name))
    assert len(frame) > 0


@pytest.mark.parametrize(
    ("statement", "problem"),
    [
        ("SELECT format_datetime(extracted_at, 'yyyy') FROM chart_entries", "format_datetime"),
        ("SELECT map_agg(track_id, position) FROM chart_entries", "map_agg"),
        ("SELECT plays / days FROM listening_stats", "operand types unknown"),
        (
            "SELECT date_diff('day', extracted_at, added_at) FROM chart_entries",
            "date_diff",
        ),
    ],
)
def test_unportable_constructs_are_rejected(statement, problem):
    problems = sql.portability_problems(statement, catalog.table_schema())
    assert any(problem in p for p in problems), problems


def test_integer_division_keeps_trino_semantics_on_duckdb(demo_lake):
    frame = warehouse.query(
        demo_lake, "SELECT position / 2 AS half FROM chart_entries WHERE position = 5 LIMIT 1"
    )
    assert frame["half"].iloc[0] == 2  # Trino truncates; plain DuckDB would give 2.5


def test_date_diff_between_dates_is_portable():
    statement = "SELECT date_diff('day', release_date, CAST(dt AS DATE)) AS age FROM albums"
    assert sql.portability_problems(statement, catalog.table_schema()) == []


def test_dt_is_a_string_in_duckdb_as_in_athena(demo_lake):
    frame = warehouse.query(
        demo_lake,
        "SELECT data_type FROM information_schema.columns "
        "WHERE table_name = 'chart_entries' AND column_name = 'dt'",
    )
    assert frame["data_type"].tolist() == ["VARCHAR"]
