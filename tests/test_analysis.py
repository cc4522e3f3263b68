"""etl_lib.reporting.analysis against hand-computed answers, and each shipped query against it.

The hand-built chart (playlist P, ranks 1-5, 2026-03-01 .. 03-04):

    rank   03-01  03-02  03-03  03-04
      1      A      A      B      B      A and B each hold #1 two days: a tie
      2      B      C      C      A
      3      C      B      A      F
      4      D      E      D      E      D leaves, re-enters, leaves; E leaves and re-enters
      5      E      F      F      C

plus another playlist's rows and a day before the window, which every analysis must ignore.
"""

from __future__ import annotations

import numbers
from datetime import date

import pandas as pd
import pytest

from etl_lib.cli.demo import DEMO_PLAYLIST, run_demo
from etl_lib.reporting import analysis
from etl_lib.warehouse import catalog, execute, sql

PLAYLIST = "P"
AS_OF = date(2026, 3, 4)
CHART = {
    "2026-03-01": "ABCDE",
    "2026-03-02": "ACBEF",
    "2026-03-03": "BCADF",
    "2026-03-04": "BAFEC",
}


def _daily_rows() -> list[dict]:
    rows = [
        {
            "playlist_id": PLAYLIST,
            "chart_date": date.fromisoformat(day),
            "chart_rank": rank,
            "track_id": track,
        }
        for day, tracks in CHART.items()
        for rank, track in enumerate(tracks, start=1)
    ]
    # Outside the analyses: another playlist, and a day before any window used here.
    rows.append({"playlist_id": "Q", "chart_date": AS_OF, "chart_rank": 1, "track_id": "Z"})
    rows.append(
        {"playlist_id": PLAYLIST, "chart_date": date(2026, 2, 20), "chart_rank": 1, "track_id": "Z"}
    )
    return rows


@pytest.fixture
def daily() -> pd.DataFrame:
    return pd.DataFrame(_daily_rows())


@pytest.fixture
def track_artists() -> pd.DataFrame:
    # B is credited to three artists; F to none.
    return pd.DataFrame(
        [
            ("A", "x1", 1),
            ("B", "x1", 1),
            ("B", "x2", 2),
            ("B", "x3", 3),
            ("C", "x2", 1),
            ("D", "x4", 1),
            ("E", "x5", 1),
        ],
        columns=["track_id", "artist_id", "artist_position"],
    )


@pytest.fixture
def artists() -> pd.DataFrame:
    return pd.DataFrame(
        [
            ("x1", "Talia Lindqvist"),
            ("x2", "박지호"),
            ("x3", "मीरा सिन्हा"),
            ("x4", "Алина"),
            ("x5", "ليان"),
        ],
        columns=["artist_id", "name"],
    )


def _rows(frame: pd.DataFrame, columns: list[str]) -> list[tuple]:
    return [tuple(row) for row in frame[columns].itertuples(index=False)]


def test_window_dates_end_at_as_of_inclusive():
    assert analysis.window_dates(date(2026, 3, 2), 3) == [
        date(2026, 2, 28),
        date(2026, 3, 1),
        date(2026, 3, 2),
    ]
    assert analysis.window_dates("2026-03-02", 1) == [date(2026, 3, 2)]
    with pytest.raises(ValueError):
        analysis.window_dates(AS_OF, 0)


def test_query_params_bind_each_shipped_query():
    assert analysis.query_params("rank_history", "P", date(2026, 10, 31), 30) == [
        "P",
        "2026-10-02",
        "2026-10-31",
    ]
    assert analysis.query_params("climbers_and_fallers", "P", "2026-10-31", 7, top=5) == [
        "P",
        "2026-10-25",
        "2026-10-31",
        5,
    ]
    assert analysis.query_params("top_tracks", "P", AS_OF, 30) == ["P", "P", 10]
    with pytest.raises(ValueError):
        analysis.query_params("no_such_query", "P", AS_OF, 30)
    assert set(analysis.WINDOW_QUERIES) <= set(sql.shipped("queries"))


def test_rank_history_leaves_the_days_off_the_chart_out(daily):
    history = analysis.rank_history(daily, PLAYLIST, AS_OF, 4)
    assert list(history.columns) == ["chart_date", "track_id", "chart_rank"]
    assert len(history) == 20  # 5 a day, nothing from Q or from before the window
    assert _rows(
        analysis.rank_history(daily, PLAYLIST, AS_OF, 4, track_ids=["D"]),
        ["chart_date", "chart_rank"],
    ) == [(date(2026, 3, 1), 4), (date(2026, 3, 3), 4)]
    # A 2-day window: 03-03 and 03-04 only.
    assert sorted(set(analysis.rank_history(daily, PLAYLIST, AS_OF, 2)["chart_date"])) == [
        date(2026, 3, 3),
        date(2026, 3, 4),
    ]


def test_climbers_and_fallers_compare_the_first_and_last_day(daily):
    # On both 03-01 and 03-04: A 1->2, B 2->1, C 3->5, E 5->4 (D and F are not).
    moves = analysis.climbers_and_fallers(daily, PLAYLIST, AS_OF, 4)
    assert _rows(moves, ["track_id", "first_rank", "last_rank", "rank_change"]) == [
        ("B", 2, 1, 1),
        ("E", 5, 4, 1),
        ("A", 1, 2, -1),
        ("C", 3, 5, -2),
    ]
    # The biggest climber (ties by better last rank) and the biggest faller.
    top_one = analysis.climbers_and_fallers(daily, PLAYLIST, AS_OF, 4, top=1)
    assert list(top_one["track_id"]) == ["B", "C"]


def test_new_entries_and_dropouts_compare_the_edge_days(daily):
    changes = analysis.new_entries_and_dropouts(daily, PLAYLIST, AS_OF, 4)
    # E left on 03-03 and came back on 03-04: on both edge days, so neither.
    assert _rows(changes, ["status", "track_id", "chart_rank"]) == [
        ("new_entry", "F", 3),
        ("dropout", "D", 4),
    ]
    # 03-03 -> 03-04: E re-entered at #4, D dropped from #4.
    assert _rows(
        analysis.new_entries_and_dropouts(daily, PLAYLIST, AS_OF, 2),
        ["status", "track_id", "chart_rank"],
    ) == [("new_entry", "E", 4), ("dropout", "D", 4)]


def test_days_on_chart_and_peak_count_days_with_breaks_excluded(daily):
    result = analysis.days_on_chart_and_peak(daily, PLAYLIST, AS_OF, 4)
    d = date
    assert _rows(result, ["track_id", "days_on_chart", "peak_rank", "first_seen", "last_seen"]) == [
        ("A", 4, 1, d(2026, 3, 1), d(2026, 3, 4)),
        ("B", 4, 1, d(2026, 3, 1), d(2026, 3, 4)),
        ("C", 4, 2, d(2026, 3, 1), d(2026, 3, 4)),
        ("F", 3, 3, d(2026, 3, 2), d(2026, 3, 4)),
        ("E", 3, 4, d(2026, 3, 1), d(2026, 3, 4)),
        ("D", 2, 4, d(2026, 3, 1), d(2026, 3, 3)),
    ]


def test_longest_running_number_one_ties_go_to_the_earliest_run(daily):
    result = analysis.longest_running_number_one(daily, PLAYLIST, AS_OF, 4)
    # A held #1 on 03-01..02 and B on 03-03..04: two days each, A first.
    assert _rows(result, ["track_id", "run_days", "run_start", "run_end"]) == [
        ("A", 2, date(2026, 3, 1), date(2026, 3, 2))
    ]


def test_a_day_without_a_chart_ends_a_number_one_run():
    # X at #1 on 1, 2, (no chart on 3), 4, 5, 6; Y on 7.
    days = [1, 2, 4, 5, 6]
    rows = [
        {"playlist_id": "P", "chart_date": date(2026, 5, n), "chart_rank": 1, "track_id": "X"}
        for n in days
    ]
    rows.append(
        {"playlist_id": "P", "chart_date": date(2026, 5, 7), "chart_rank": 1, "track_id": "Y"}
    )
    result = analysis.longest_running_number_one(pd.DataFrame(rows), "P", date(2026, 5, 7), 7)
    assert _rows(result, ["track_id", "run_days", "run_start", "run_end"]) == [
        ("X", 3, date(2026, 5, 4), date(2026, 5, 6))
    ]


def test_artist_share_counts_every_credited_artist(daily, track_artists, artists):
    # 20 entries: A 4, B 4, C 4, D 2, E 3, F 3 (F credits nobody but still counts in the total).
    result = analysis.artist_share(daily, track_artists, artists, PLAYLIST, AS_OF, 4)
    assert _rows(result, ["artist_id", "name", "entries"]) == [
        ("x1", "Talia Lindqvist", 8),  # A + the 3-artist B
        ("x2", "박지호", 8),  # B + C
        ("x3", "मीरा सिन्हा", 4),  # B
        ("x5", "ليان", 3),
        ("x4", "Алина", 2),
    ]
    assert list(result["share"]) == pytest.approx([0.4, 0.4, 0.2, 0.15, 0.1])


def test_release_age_counts_from_the_first_day_of_a_year_or_month(daily):
    tracks = pd.DataFrame(
        [
            ("A", "Song A", "al1"),
            ("B", "Song B", "al2"),
            ("C", "Song C", "al3"),
            ("E", "Song E", "al4"),
            ("F", "Song F", None),
        ],
        columns=["track_id", "name", "album_id"],
    )
    albums = pd.DataFrame(
        [
            ("al1", date(2026, 3, 1), "day"),
            ("al2", "2025", "year"),
            ("al3", "2026-02", "month"),
            ("al4", date(2026, 3, 4), "day"),
        ],
        columns=["album_id", "release_date", "release_date_precision"],
    )
    result = analysis.release_age(daily, tracks, albums, PLAYLIST, AS_OF, 4)
    assert list(result["track_id"]) == ["B", "A", "F", "E", "C"]  # the 03-04 chart, by rank
    ages = [None if pd.isna(age) else int(age) for age in result["days_since_release"]]
    # B: 2025-01-01 -> 2026-03-04 = 365 + 31 + 28 + 3; C: 2026-02-01 -> 03-04; F: no album.
    assert ages == [427, 3, None, 0, 31]
    assert result["release_date"].iloc[0] == date(2025, 1, 1)


def test_with_track_names_adds_a_name_column(daily):
    tracks = pd.DataFrame({"track_id": ["A", "B"], "name": ["Song A", "Song B"]})
    moves = analysis.with_track_names(
        analysis.climbers_and_fallers(daily, PLAYLIST, AS_OF, 4), tracks
    )
    assert list(moves["name"].fillna("?")) == ["Song B", "?", "Song A", "?"]


def test_an_empty_window_gives_empty_frames(daily):
    long_ago = date(2020, 1, 1)
    assert analysis.rank_history(daily, PLAYLIST, long_ago, 3).empty
    assert analysis.climbers_and_fallers(daily, PLAYLIST, long_ago, 3).empty
    assert analysis.longest_running_number_one(daily, PLAYLIST, long_ago, 3).empty


# --- the shipped SQL gives the same answers -------------------------------------------------

WINDOWS = [(date(2026, 10, 31), 30), (date(2026, 10, 20), 7), (date(2026, 10, 31), 5)]


@pytest.fixture(scope="module")
def demo(tmp_path_factory) -> dict:
    root = str(tmp_path_factory.mktemp("analysis") / "lake")
    run_demo(root, days=30)
    frames = {
        view: execute.query(root, f"SELECT * FROM {view}")
        for view in (
            "daily_chart",
            "latest_tracks",
            "latest_albums",
            "latest_artists",
            "latest_track_artists",
        )
    }
    return {"lake": root, **frames}


def _pandas_answer(name: str, demo: dict, as_of: date, days: int) -> pd.DataFrame:
    function = getattr(analysis, name)
    if name == "artist_share":
        return function(
            demo["daily_chart"],
            demo["latest_track_artists"],
            demo["latest_artists"],
            DEMO_PLAYLIST,
            as_of,
            days,
        )
    if name == "release_age":
        return function(
            demo["daily_chart"],
            demo["latest_tracks"],
            demo["latest_albums"],
            DEMO_PLAYLIST,
            as_of,
            days,
        )
    return function(demo["daily_chart"], DEMO_PLAYLIST, as_of, days)


def _comparable(frame: pd.DataFrame) -> list[tuple]:
    """Rows with dates as dates, numbers as rounded floats, missing values as None."""

    def value(item):
        if item is None or (not isinstance(item, str) and pd.isna(item)):
            return None
        if isinstance(item, pd.Timestamp):
            return item.date()
        if isinstance(item, numbers.Real) and not isinstance(item, bool):
            return round(float(item), 9)
        return item

    return [tuple(value(item) for item in row) for row in frame.itertuples(index=False)]


@pytest.mark.parametrize("as_of,days", WINDOWS, ids=lambda v: str(v))
@pytest.mark.parametrize("name", analysis.WINDOW_QUERIES)
def test_the_shipped_query_equals_the_pandas_function(demo, name, as_of, days):
    expected = _pandas_answer(name, demo, as_of, days)
    text = sql.shipped("queries")[name]
    actual = execute.query(
        demo["lake"], text, analysis.query_params(name, DEMO_PLAYLIST, as_of, days)
    )
    assert list(actual.columns) == list(expected.columns)
    # Both are documented as fully ordered, so the order is compared too.
    assert _comparable(actual) == _comparable(expected)
    if days == 5:
        # What tests/test_sql.py binds (a 5-day demo ending 2026-10-31): no query comes back empty.
        assert len(actual) > 0


def test_the_analysis_queries_are_portable():
    schema = catalog.schema_with_views()
    for name in analysis.WINDOW_QUERIES:
        assert sql.portability_problems(sql.shipped("queries")[name], schema) == [], name


def test_track_names_join_every_named_artist_in_credited_order():
    tracks = pd.DataFrame({"track_id": ["t1", "t2", "t3"], "name": ["One", "Two", None]})
    credits = pd.DataFrame(
        {
            "track_id": ["t1", "t1", "t1", "t2"],
            "artist_id": ["a3", "a1", "a2", "a9"],
            "artist_position": [2, 0, 1, 0],
        }
    )
    artists = pd.DataFrame(
        {"artist_id": ["a1", "a2", "a3", "a9"], "name": ["Ann", None, "Cy", "Zoë"]}
    )
    names = analysis.track_names(tracks, credits, artists).set_index("track_id")
    assert names.loc["t1", "artists"] == "Ann, Cy"  # a2 has no name: left out, order kept
    assert names.loc["t2", ["track_name", "artists"]].tolist() == ["Two", "Zoë"]
    assert pd.isna(names.loc["t3", "artists"]) and pd.isna(names.loc["t3", "track_name"])
