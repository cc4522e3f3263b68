"""The shipped window analyses (``etl_lib/warehouse/sql/queries``) against hand-computed
answers, on a small hand-made lake run through the pipeline.

Playlist P, ranks 1-5, 2026-03-01 .. 03-04:

    rank   03-01  03-02  03-03  03-04
      1      A      A      B      B      A and B each hold #1 two days: a tie
      2      B      C      C      A
      3      C      B      A      F
      4      D      E      D      E      D leaves, re-enters, leaves; E leaves and re-enters
      5      E      F      F      C

plus Z at #1 on 02-20 (before every window used here) and another playlist, Q, with Z at #1
on 03-04: every analysis of P leaves them out. No chart on 02-28, so a window starting then
compares 03-01 with 03-04 as the 4-day window does. Track A is renamed "Alpha (Live)" on
03-04, its last day in the window. Credits, in credited order: A x1; B x2, x1, x3; C x2;
D x4 and x6, who has no name; E x5; F nobody. F has no album.

Playlist R has a day without a chart: X at #1 on 05-01, 05-02, (none on 05-03), 05-04 ..
05-06, then Y on 05-07.
"""

from __future__ import annotations

from datetime import date

import chart_lake
import pandas as pd
import pytest

from etl_lib.reporting import analysis, reports
from etl_lib.warehouse import execute, sql

P = "playlistPPPPPPPPPPPPPP"
Q = "playlistQQQQQQQQQQQQQQ"
R = "playlistRRRRRRRRRRRRRR"
AS_OF = date(2026, 3, 4)
CHARTS = {
    P: {
        "2026-02-20": "Z",
        "2026-03-01": "ABCDE",
        "2026-03-02": "ACBEF",
        "2026-03-03": "BCADF",
        "2026-03-04": "BAFEC",
    },
    Q: {"2026-03-04": "Z"},
    R: {
        "2026-05-01": "XY",
        "2026-05-02": "XY",
        "2026-05-04": "XY",
        "2026-05-05": "XY",
        "2026-05-06": "XY",
        "2026-05-07": "YX",
    },
}
ARTISTS = {
    "x1": "Talia Lindqvist",
    "x2": "박지호",
    "x3": "मीरा सिन्हा",
    "x4": "Алина",
    "x5": "ليان",
    "x6": None,
}
# Track -> (name, credited artists in credited order, album).
TRACKS = {
    "A": ("Alpha", ["x1"], "al1"),
    "B": ("Bravo", ["x2", "x1", "x3"], "al2"),
    "C": ("Charlie", ["x2"], "al3"),
    "D": ("Delta", ["x4", "x6"], "al1"),
    "E": ("Echo", ["x5"], "al4"),
    "F": ("Foxtrot", [], None),
    "X": ("X-ray", ["x1"], "al1"),
    "Y": ("Yankee", ["x2"], "al1"),
    "Z": ("Zulu", ["x1"], "al1"),
}
RENAMED = {("A", "2026-03-04"): "Alpha (Live)"}
# Album -> (release_date, release_date_precision) as Spotify sends them.
ALBUMS = {
    "al1": ("2026-03-01", "day"),
    "al2": ("2025", "year"),
    "al3": ("2026-02", "month"),
    "al4": ("2026-03-04", "day"),
}
ID = {letter: f"track{letter * 17}" for letter in TRACKS}
LETTER = {track_id: letter for letter, track_id in ID.items()}
B_ARTISTS = "박지호, Talia Lindqvist, मीरा सिन्हा"


def _track(letter: str, day: str) -> dict:
    name, artists, album_id = TRACKS[letter]
    album = None
    if album_id is not None:
        release_date, precision = ALBUMS[album_id]
        album = {
            "id": album_id,
            "name": album_id,
            "release_date": release_date,
            "release_date_precision": precision,
            "artists": [],
        }
    credited = [(key, ARTISTS[key]) for key in artists]
    return chart_lake.track(ID[letter], RENAMED.get((letter, day), name), credited, album)


@pytest.fixture(scope="module")
def lake(tmp_path_factory) -> str:
    charts = {
        (playlist_id, day): [_track(letter, day) for letter in letters]
        for playlist_id, days in CHARTS.items()
        for day, letters in days.items()
    }
    names = {playlist_id: f"Chart {playlist_id[-1]}" for playlist_id in CHARTS}
    return chart_lake.build(str(tmp_path_factory.mktemp("analysis") / "lake"), charts, names)


def _run(lake_root: str, name: str, as_of=AS_OF, days: int = 4, playlist_id=P, **kw):
    statement = sql.shipped("queries")[name]
    params = analysis.query_params(name, playlist_id, as_of, days, **kw)
    return execute.query(lake_root, statement, params)


def _rows(frame: pd.DataFrame, columns: list[str]) -> list[tuple]:
    """Rows as plain values: track ids as letters, dates as dates, NULLs as None."""

    def plain(column: str, value):
        if value is None or (not isinstance(value, str) and pd.isna(value)):
            return None
        if column == "track_id":
            return LETTER[value]
        if isinstance(value, pd.Timestamp):
            return value.date()
        if isinstance(value, float) and value.is_integer():
            return int(value)
        return value

    return [
        tuple(plain(column, value) for column, value in zip(columns, row, strict=True))
        for row in frame[columns].itertuples(index=False)
    ]


def d(day: int, month: int = 3) -> date:
    return date(2026, month, day)


def test_window_dates_end_at_as_of_inclusive():
    assert analysis.window_dates(date(2026, 3, 2), 3) == [d(28, 2), d(1), d(2)]
    assert analysis.window_dates("2026-03-02", 1) == [d(2)]
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


def test_rank_history_leaves_the_days_off_the_chart_out(lake):
    history = _run(lake, "rank_history")
    assert list(history.columns) == ["playlist_id", "chart_date", "track_id", "chart_rank"]
    assert set(history["playlist_id"]) == {P}
    # 5 a day, by day and rank; nothing from Q or from before the window.
    assert _rows(history, ["chart_date", "track_id", "chart_rank"]) == [
        (date.fromisoformat(day), letter, rank)
        for day, letters in CHARTS[P].items()
        if day >= "2026-03-01"
        for rank, letter in enumerate(letters, start=1)
    ]
    only_d = history[history["track_id"] == ID["D"]]
    assert _rows(only_d, ["chart_date", "chart_rank"]) == [(d(1), 4), (d(3), 4)]
    assert sorted(set(_run(lake, "rank_history", days=2)["chart_date"].dt.date)) == [d(3), d(4)]


def test_climbers_and_fallers_compare_the_first_and_last_day(lake):
    # On both 03-01 and 03-04: A 1->2, B 2->1, C 3->5, E 5->4 (D and F are not).
    moves = _run(lake, "climbers_and_fallers")
    assert list(moves.columns) == [
        "playlist_id",
        "track_id",
        "first_rank",
        "last_rank",
        "rank_change",
    ]
    assert _rows(moves, list(moves.columns[1:])) == [
        ("B", 2, 1, 1),
        ("E", 5, 4, 1),
        ("A", 1, 2, -1),
        ("C", 3, 5, -2),
    ]
    # The biggest climber (ties by better last rank) and the biggest faller.
    assert _rows(_run(lake, "climbers_and_fallers", top=1), ["track_id"]) == [("B",), ("C",)]
    # 02-28 has no chart: a window starting then still compares 03-01 with 03-04.
    assert _run(lake, "climbers_and_fallers", days=5).equals(moves)


def test_new_entries_and_dropouts_compare_the_edge_days(lake):
    changes = _run(lake, "new_entries_and_dropouts")
    assert list(changes.columns) == ["playlist_id", "status", "track_id", "chart_rank"]
    # E left on 03-03 and came back on 03-04: on both edge days, so neither.
    assert _rows(changes, list(changes.columns[1:])) == [
        (analysis.NEW_ENTRY, "F", 3),
        (analysis.DROPOUT, "D", 4),
    ]
    # 03-03 -> 03-04: E re-entered at #4, D dropped from #4.
    assert _rows(_run(lake, "new_entries_and_dropouts", days=2), ["status", "track_id"]) == [
        (analysis.NEW_ENTRY, "E"),
        (analysis.DROPOUT, "D"),
    ]


def test_days_on_chart_and_peak_count_days_with_breaks_excluded(lake):
    result = _run(lake, "days_on_chart_and_peak")
    assert _rows(result, ["track_id", "days_on_chart", "peak_rank", "first_seen", "last_seen"]) == [
        ("A", 4, 1, d(1), d(4)),
        ("B", 4, 1, d(1), d(4)),
        ("C", 4, 2, d(1), d(4)),
        ("F", 3, 3, d(2), d(4)),
        ("E", 3, 4, d(1), d(4)),
        ("D", 2, 4, d(1), d(3)),
    ]


def test_longest_running_number_one_ties_go_to_the_earliest_run(lake):
    result = _run(lake, "longest_running_number_one")
    assert list(result.columns) == ["playlist_id", "track_id", "run_days", "run_start", "run_end"]
    # A held #1 on 03-01..02 and B on 03-03..04: two days each, A first.
    assert _rows(result, list(result.columns)) == [(P, "A", 2, d(1), d(2))]


def test_a_day_without_a_chart_ends_a_number_one_run(lake):
    result = _run(lake, "longest_running_number_one", as_of=d(7, 5), days=7, playlist_id=R)
    assert _rows(result, ["track_id", "run_days", "run_start", "run_end"]) == [
        ("X", 3, d(4, 5), d(6, 5))
    ]


def test_artist_share_counts_every_credited_artist(lake):
    # 20 entries: A 4, B 4, C 4, D 2, E 3, F 3 (F credits nobody but counts in the total).
    result = _run(lake, "artist_share")
    assert list(result.columns) == ["playlist_id", "artist_id", "name", "entries", "share"]
    assert _rows(result, ["artist_id", "name", "entries"]) == [
        ("x1", "Talia Lindqvist", 8),  # A + the 3-artist B
        ("x2", "박지호", 8),  # B + C
        ("x3", "मीरा सिन्हा", 4),  # B
        ("x5", "ليان", 3),
        ("x4", "Алина", 2),
        ("x6", None, 2),  # credited on D without a name
    ]
    assert list(result["share"]) == pytest.approx([0.4, 0.4, 0.2, 0.15, 0.1, 0.1])


def test_release_age_counts_from_the_first_day_of_a_year_or_month(lake):
    result = _run(lake, "release_age")
    columns = ["track_id", "chart_rank", "release_date", "release_date_precision"]
    # The 03-04 chart, by rank. B: 2025-01-01 -> 2026-03-04 = 365 + 31 + 28 + 3;
    # C: 2026-02-01 -> 03-04; F has no album, so no release date and no age.
    assert _rows(result, [*columns, "days_since_release"]) == [
        ("B", 1, date(2025, 1, 1), "year", 427),
        ("A", 2, d(1), "day", 3),
        ("F", 3, None, None, None),
        ("E", 4, d(4), "day", 0),
        ("C", 5, d(1, 2), "month", 31),
    ]
    assert set(result["chart_date"].dt.date) == {AS_OF}


def test_a_one_day_window_has_nothing_to_compare(lake):
    assert _run(lake, "climbers_and_fallers", days=1).empty
    assert _run(lake, "new_entries_and_dropouts", days=1).empty
    assert len(_run(lake, "rank_history", days=1)) == 5
    assert set(_run(lake, "days_on_chart_and_peak", days=1)["days_on_chart"]) == {1}
    number_one = _run(lake, "longest_running_number_one", days=1)
    assert _rows(number_one, ["track_id", "run_days", "run_start"]) == [("B", 1, d(4))]


@pytest.mark.parametrize("name", analysis.WINDOW_QUERIES)
def test_an_empty_window_gives_no_rows(lake, name):
    assert _run(lake, name, as_of=date(2020, 1, 1), days=3).empty


def test_labels_name_each_track_as_its_last_snapshot_in_the_window_does(lake):
    labels = reports.load_inputs(lake, P, AS_OF, 4)["labels"]
    # Every track on P's chart in the window, once; not Z (before it, or on Q). Every
    # credited artist with a name, in credited order: D's second artist has none, F no
    # credit at all. A was renamed on 03-04.
    assert _rows(labels, ["track_id", "track_name", "artists"]) == [
        ("A", "Alpha (Live)", "Talia Lindqvist"),
        ("B", "Bravo", B_ARTISTS),
        ("C", "Charlie", "박지호"),
        ("D", "Delta", "Алина"),
        ("E", "Echo", "ليان"),
        ("F", "Foxtrot", None),
    ]
    changes = analysis.with_labels(_run(lake, "new_entries_and_dropouts"), labels)
    assert _rows(changes, ["track_id", "chart_rank", "track_name", "artists"]) == [
        ("F", 3, "Foxtrot", None),
        ("D", 4, "Delta", "Алина"),
    ]


def test_the_report_runs_the_same_queries_on_one_connection(lake):
    # load_inputs plans the window's tables once for all its analyses, window_query for one:
    # the same results as each query run alone over the whole lake.
    results = reports.load_inputs(lake, P, AS_OF, 4)
    assert set(reports.REPORT_ANALYSES) <= set(results)
    for name in reports.REPORT_ANALYSES:
        alone = _run(lake, name, top=reports.REPORT_TOP)
        pd.testing.assert_frame_equal(results[name], alone, check_dtype=False, obj=name)
        one = reports.window_query(lake, name, P, AS_OF, 4)
        pd.testing.assert_frame_equal(one, alone, check_dtype=False, obj=name)
    assert results["freshness"]["playlist_name"].tolist() == ["Chart P"]
    assert _rows(results["chart"], ["track_id", "movement", "days_on_chart"]) == [
        ("B", "same", 4),
        ("A", "up 1", 4),
        ("F", "up 2", 3),
        ("E", "RE-ENTRY", 3),
        ("C", "down 3", 4),
    ]
