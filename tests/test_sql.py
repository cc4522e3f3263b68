"""Every shipped SQL file is Athena (Trino) SQL that runs the same on DuckDB."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest
import sqlglot

from etl_lib import pipeline
from etl_lib.cli.demo import DEMO_PLAYLIST, run_demo
from etl_lib.extract import envelope
from etl_lib.local_spotify import ChartSimulator
from etl_lib.reporting import analysis, reports
from etl_lib.warehouse import catalog, execute, sql

SHIPPED = [
    (folder, name) for folder in ("views", "queries", "report") for name in sql.shipped(folder)
]
REPORT_QUERIES = reports.input_queries(DEMO_PLAYLIST, "2026-10-31", 5)
# The demo's #1 on its last day, for the lookups: the simulator is the same on every machine.
DEMO_NUMBER_ONE = ChartSimulator().chart(DEMO_PLAYLIST, date(2026, 10, 31))[0]["item"]
LOOKUP_VALUES = {
    "day": "2026-10-31",
    "track_id": DEMO_NUMBER_ONE["id"],
    "artist_id": DEMO_NUMBER_ONE["artists"][0]["id"],
    "text": DEMO_NUMBER_ONE["artists"][0]["name"].upper(),
}
# Positional parameters each shipped query takes, bound as the report binds them.
QUERY_PARAMS = (
    {
        ("queries", name): analysis.query_params(name, DEMO_PLAYLIST, "2026-10-31", 5)
        for name in sql.shipped("queries")
        if name not in analysis.LOOKUP_QUERIES
    }
    | {
        ("queries", name): analysis.lookup_params(
            name, **{key: LOOKUP_VALUES[key] for key in set(parameters) & set(LOOKUP_VALUES)}
        )
        for name, parameters in analysis.LOOKUP_QUERIES.items()
    }
    | {("report", name): params for name, (_, params) in REPORT_QUERIES.items()}
)


@pytest.fixture(scope="module")
def demo_lake(tmp_path_factory) -> str:
    root = str(tmp_path_factory.mktemp("sql") / "lake")
    run_demo(root, days=5)
    return root


def test_sql_is_shipped():
    assert {"daily_chart", "latest_tracks", "latest_albums", "latest_artists", "chart"} <= set(
        sql.shipped("views")
    )
    assert "top_tracks" in sql.shipped("queries")


def test_a_view_is_created_after_the_views_it_reads():
    # Both engines check a view's tables when creating it, and chart sorts before daily_chart.
    order = list(sql.shipped("views"))
    for view in ("daily_chart", "latest_tracks", "latest_track_artists", "latest_artists"):
        assert order.index(view) < order.index("chart"), order


@pytest.mark.parametrize(("folder", "name"), SHIPPED)
def test_parses_as_trino_and_is_portable(folder, name):
    text = sql.shipped(folder)[name]
    assert sqlglot.parse_one(text, read="trino") is not None
    # queries read the views too: their column types come from DuckDB after transpiling
    assert sql.portability_problems(text, catalog.schema_with_views()) == []


@pytest.mark.parametrize(("folder", "name"), SHIPPED)
def test_runs_on_duckdb_against_the_demo_data(demo_lake, folder, name):
    text = sql.shipped(folder)[name]
    statement = f"SELECT * FROM ({text}) AS shipped" if folder == "views" else text
    frame = execute.query(demo_lake, statement, QUERY_PARAMS.get((folder, name)))
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
    frame = execute.query(
        demo_lake, "SELECT position / 2 AS half FROM chart_entries WHERE position = 5 LIMIT 1"
    )
    assert frame["half"].iloc[0] == 2  # Trino truncates; plain DuckDB would give 2.5


def test_date_diff_between_dates_is_portable():
    statement = "SELECT date_diff('day', release_date, CAST(dt AS DATE)) AS age FROM albums"
    assert sql.portability_problems(statement, catalog.table_schema()) == []


def test_dt_is_a_string_in_duckdb_as_in_athena(demo_lake):
    frame = execute.query(
        demo_lake,
        "SELECT data_type FROM information_schema.columns "
        "WHERE table_name = 'chart_entries' AND column_name = 'dt'",
    )
    assert frame["data_type"].tolist() == ["VARCHAR"]


def test_views_hold_one_row_per_id_when_two_playlists_share_a_snapshot_time(lake_root):
    # Every table row names its playlist: the same tracks charted by two playlists captured
    # in the same second are two rows per table, but one per id in the views and the report.
    other = "37i9dQZEVXbMDoHDwVN2tF"
    moment = datetime(2026, 10, 31, 12, tzinfo=UTC)
    simulator = ChartSimulator()
    entries = simulator.chart(DEMO_PLAYLIST, moment.date())
    page = {"items": entries, "offset": 0, "limit": 50, "next": None, "total": len(entries)}
    for playlist_id in (DEMO_PLAYLIST, other):
        playlist = {**simulator.playlist(DEMO_PLAYLIST, moment.date()), "id": playlist_id}
        source = {"kind": "spotify-web-api", "api_base_url": "https://api.spotify.com/v1"}
        pipeline.land_raw(lake_root, envelope.make_envelope(playlist, [page], moment, source))
    assert len(pipeline.transform(lake_root).transformed) == 2

    counts = {
        "tracks": "SELECT count(*) AS n, count(DISTINCT track_id) AS ids, "
        "count(DISTINCT playlist_id) AS playlists FROM tracks",
        "latest_tracks": "SELECT count(*) AS n, count(DISTINCT track_id) AS ids FROM latest_tracks",
        "credits": "SELECT count(*) AS n, count(DISTINCT (track_id, artist_position)) AS ids "
        "FROM latest_track_artists",
        "daily_chart": "SELECT count(*) AS n, count(DISTINCT (playlist_id, track_id)) AS ids "
        "FROM daily_chart",
    }
    frames = execute.query_all(lake_root, {k: (q, None) for k, q in counts.items()})
    found = {name: frame.iloc[0].astype(int).to_dict() for name, frame in frames.items()}

    tracks = len(entries)
    assert found["tracks"] == {"n": 2 * tracks, "ids": tracks, "playlists": 2}
    assert found["latest_tracks"] == {"n": tracks, "ids": tracks}
    assert found["credits"]["n"] == found["credits"]["ids"] >= tracks
    assert found["daily_chart"] == {"n": 2 * tracks, "ids": 2 * tracks}
    # The report names each track and its artists as the chart view does: one row a track,
    # no credit listed twice.
    labelled = execute.query(lake_root, *REPORT_QUERIES["labels"])
    charted = execute.query(lake_root, "SELECT * FROM chart WHERE playlist_id = ?", [DEMO_PLAYLIST])
    assert len(labelled) == tracks
    labels, chart_labels = (
        frame.set_index("track_id")[["track_name", "artists"]].sort_index()
        for frame in (labelled, charted)
    )
    assert labels.equals(chart_labels)
