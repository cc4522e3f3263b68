"""The chart view, the report's chart and the comparison and drill-down queries, on a small
hand-made lake of three playlists whose every movement is known.

Playlist GLOBAL ("Top Songs - Global") has no chart on day 4 (a missed extraction); TOP50
("Top 50 - Global") has one on day 4 but none on day 5; USA ("Top Songs - USA") charts on
day 7 only. Ranks 1-4 each day:

    day       1     2     3     4     5     6     7
    GLOBAL   ABCD  BACE  BAEC   -    ABEF  ACBE  ADCB
    TOP50     -     -     -    HABD   -    ABDE  DAGH
    USA       -     -     -     -     -     -    GAZD
"""

from __future__ import annotations

from datetime import date, timedelta

import chart_lake
import pandas as pd
import pytest
from sqlglot import exp

from etl_lib.reporting import analysis, reports
from etl_lib.warehouse import execute, sql

GLOBAL = "37i9dQZEVXbNG2KDcFcKOF"
TOP50 = "37i9dQZEVXbMDoHDwVN2tF"
USA = "37i9dQZEVXbLRQDuF5jeBp"
PLAYLIST_NAMES = {GLOBAL: "Top Songs - Global", TOP50: "Top 50 - Global", USA: "Top Songs - USA"}
FIRST_DAY = date(2026, 3, 1)
CHARTS = {
    GLOBAL: {1: "ABCD", 2: "BACE", 3: "BAEC", 5: "ABEF", 6: "ACBE", 7: "ADCB"},
    TOP50: {4: "HABD", 6: "ABDE", 7: "DAGH"},
    USA: {7: "GAZD"},
}
ARTISTS = {"amy": "Amy", "zed": "Zed", "mo": "Mo", "psi": "Ψ Band"}
ARTIST_ID = {key: f"artist{key.capitalize():0<16}" for key in ARTISTS}
# Track -> (id, name, credited artists in credited order). Z's id is not Spotify-shaped.
TRACKS = {
    "A": ("trackAlphaAAAAAAAAAAAA", "Alpha", ["amy"]),
    "B": ("trackBravoBBBBBBBBBBBB", "Bravo", ["zed", "amy", "mo"]),
    "C": ("trackCharlieCCCCCCCCCC", "Charlie", ["mo"]),
    "D": ("trackDeltaDDDDDDDDDDDD", "Delta", ["psi"]),
    "E": ("trackEchoEEEEEEEEEEEEE", "Echo", ["amy", "mo"]),
    "F": ("trackFunFFFFFFFFFFFFFF", "100% Pure_Fun", ["mo"]),
    "G": ("trackGolfGGGGGGGGGGGGG", "Golf", ["amy"]),
    "H": ("trackHotelHHHHHHHHHHHH", "Hotel", ["zed"]),
    "Z": ("zulu/../<b>", "Zulu", ["zed"]),
}
ID = {letter: track[0] for letter, track in TRACKS.items()}


def day(number: int) -> str:
    return (FIRST_DAY + timedelta(days=number - 1)).isoformat()


def _track(letter: str) -> dict:
    track_id, name, artists = TRACKS[letter]
    credited = [(ARTIST_ID[key], ARTISTS[key]) for key in artists]
    album = {"id": "albumAAAAAAAAAAAAAAAAA", "name": "Album", "artists": []}
    return chart_lake.track(track_id, name, credited, album)


@pytest.fixture(scope="module")
def lake(tmp_path_factory) -> str:
    charts = {
        (playlist_id, day(number)): [_track(letter) for letter in letters]
        for playlist_id, days in CHARTS.items()
        for number, letters in days.items()
    }
    return chart_lake.build(str(tmp_path_factory.mktemp("charts") / "lake"), charts, PLAYLIST_NAMES)


def _shipped(lake_root: str, name: str, **values) -> pd.DataFrame:
    statement = sql.shipped("queries")[name]
    return execute.query(lake_root, statement, analysis.lookup_params(name, **values))


def _records(frame: pd.DataFrame, columns: list[str]) -> list[tuple]:
    def plain(value):
        if value is None or (not isinstance(value, str) and pd.isna(value)):
            return None
        if isinstance(value, pd.Timestamp):
            return value.date().isoformat()
        if isinstance(value, date):
            return value.isoformat()
        return int(value) if isinstance(value, float) and value.is_integer() else value

    return [tuple(plain(v) for v in row) for row in frame[columns].itertuples(index=False)]


def _letters(track_ids) -> str:
    letter_of = {track_id: letter for letter, track_id in ID.items()}
    return "".join(letter_of[track_id] for track_id in track_ids)


def test_the_chart_view_labels_every_movement_against_the_playlists_previous_chart_day(lake):
    frame = execute.query(
        lake,
        "SELECT dt, track_id, movement, previous_rank FROM chart WHERE playlist_id = ? "
        "ORDER BY dt, chart_rank",
        [GLOBAL],
    )
    found = {
        (row.dt, _letters([row.track_id])): (row.movement, row.previous_rank)
        for row in frame.itertuples()
    }
    expected = {
        1: {"A": "NEW", "B": "NEW", "C": "NEW", "D": "NEW"},
        2: {"B": "up 1", "A": "down 1", "C": "same", "E": "NEW"},
        3: {"B": "same", "A": "same", "E": "up 1", "C": "down 1"},
        # Day 4 has no chart here (TOP50 has one): day 3 is the previous chart day.
        5: {"A": "up 1", "B": "down 1", "E": "same", "F": "NEW"},
        6: {"A": "same", "C": "RE-ENTRY", "B": "down 1", "E": "down 1"},
        7: {"A": "same", "D": "RE-ENTRY", "C": "down 1", "B": "down 1"},
    }
    assert {key: movement for key, (movement, _) in found.items()} == {
        (day(number), letter): movement
        for number, movements in expected.items()
        for letter, movement in movements.items()
    }
    previous = {key: rank for key, (_, rank) in found.items()}
    assert previous[(day(5), "A")] == 2
    assert previous[(day(2), "C")] == 3
    for key, (movement, rank) in found.items():
        assert pd.isna(rank) == (movement in ("NEW", "RE-ENTRY")), key


def test_the_chart_view_counts_peak_and_days_per_playlist_and_names_every_artist(lake):
    frame = execute.query(
        lake, "SELECT * FROM chart WHERE dt = ? ORDER BY playlist_id, chart_rank", [day(7)]
    )
    assert list(frame.columns) == [
        "playlist_id",
        "dt",
        "chart_date",
        "chart_rank",
        "movement",
        "previous_rank",
        "track_name",
        "artists",
        "peak_rank",
        "days_on_chart",
        "first_seen",
        "track_id",
        "track_url",
    ]
    on_global = frame[frame["playlist_id"] == GLOBAL]
    assert _records(
        on_global,
        ["chart_rank", "track_name", "artists", "peak_rank", "days_on_chart", "first_seen"],
    ) == [
        (1, "Alpha", "Amy", 1, 6, day(1)),
        (2, "Delta", "Ψ Band", 2, 2, day(1)),
        (3, "Charlie", "Mo", 2, 5, day(1)),
        # Credited order, not alphabetical.
        (4, "Bravo", "Zed, Amy, Mo", 1, 6, day(1)),
    ]
    on_top50 = frame[frame["playlist_id"] == TOP50]
    assert _records(on_top50, ["track_name", "movement", "peak_rank", "days_on_chart"]) == [
        ("Delta", "up 2", 1, 3),
        ("Alpha", "down 1", 1, 3),
        ("Golf", "NEW", 3, 1),
        ("Hotel", "RE-ENTRY", 1, 2),
    ]
    urls = dict(zip(frame["track_id"], frame["track_url"], strict=False))
    assert urls[ID["A"]] == f"https://open.spotify.com/track/{ID['A']}"
    assert pd.isna(urls[ID["Z"]])  # not an id Spotify gives: no link made from it


def test_the_report_chart_counts_days_and_peak_beyond_the_window(lake):
    inputs = reports.load_inputs(lake, GLOBAL, day(7), 1)
    chart = inputs["chart"]
    assert _records(chart, ["dt", "chart_rank", "movement", "peak_rank", "days_on_chart"]) == [
        (day(7), 1, "same", 1, 6),
        (day(7), 2, "RE-ENTRY", 2, 2),
        (day(7), 3, "down 1", 2, 5),
        (day(7), 4, "down 1", 1, 6),
    ]
    # The other queries still read the window only.
    assert set(inputs["rank_history"]["chart_date"].dt.date.astype(str)) == {day(7)}
    labels = inputs["labels"].set_index("track_id")
    assert set(labels.index) == {ID[letter] for letter in "ADCB"}
    assert labels.loc[ID["B"], "track_name"] == "Bravo"
    assert labels.loc[ID["B"], "artists"] == "Zed, Amy, Mo"


def test_the_report_chart_is_the_last_chart_day_of_the_window(lake):
    # Day 4 has no GLOBAL chart: a window ending on it shows day 3's chart.
    chart = reports.load_inputs(lake, GLOBAL, day(4), 2)["chart"]
    assert set(chart["dt"]) == {day(3)}
    assert _letters(chart["track_id"]) == "BAEC"


# The report's queries and the window analyses, each of which takes a set of playlists.
BATCHED = sorted(set(reports.QUERY_NAMES) | set(analysis.WINDOW_QUERIES))
EVERY_PLAYLIST = (GLOBAL, TOP50, USA)


def _bound(name: str, playlists, as_of: str, days: int) -> tuple[str, list]:
    """``name`` with its parameters for ``playlists`` (one id or several); the most climbers
    and fallers is 1, so that a ranking shared between playlists would drop one."""
    if name in analysis.WINDOW_QUERIES:
        params = analysis.query_params(name, playlists, as_of, days, top=1)
        return sql.shipped("queries")[name], params
    return reports.input_queries(playlists, as_of, days)[name]


@pytest.mark.parametrize("name", BATCHED)
@pytest.mark.parametrize(
    ("as_of", "days"),
    [
        # Each playlist has its own edge days: GLOBAL days 5 and 7, TOP50 4 and 7, USA 7 alone.
        (day(7), 4),
        (day(7), 7),
        # Only GLOBAL has a chart: the other two have no rows.
        (day(3), 3),
    ],
)
def test_one_statement_for_several_playlists_gives_each_what_it_gives_alone(
    lake, name, as_of, days
):
    together = execute.query(lake, *_bound(name, EVERY_PLAYLIST, as_of, days))
    assert list(together.columns)[0] == "playlist_id"
    assert set(together["playlist_id"]) <= set(EVERY_PLAYLIST)
    split = reports._split_by(together, "playlist_id", EVERY_PLAYLIST)
    for playlist_id in EVERY_PLAYLIST:
        alone = execute.query(lake, *_bound(name, playlist_id, as_of, days))
        pd.testing.assert_frame_equal(split[playlist_id], alone, obj=f"{name} of {playlist_id}")
    assert sum(len(frame) for frame in split.values()) == len(together)


def test_several_playlists_are_ranked_each_on_its_own(lake):
    """The longest run at #1 is one row per playlist (ties to the earliest run), and the
    biggest climber and faller are each playlist's, from its own edge days."""
    longest = execute.query(lake, *_bound("longest_running_number_one", EVERY_PLAYLIST, day(7), 7))
    assert _records(longest, ["playlist_id", "track_id", "run_days", "run_start"]) == [
        (USA, ID["G"], 1, day(7)),
        # H, A and D each held #1 one day: H first.
        (TOP50, ID["H"], 1, day(4)),
        (GLOBAL, ID["A"], 3, day(5)),
    ]
    # GLOBAL compares day 5 with day 7 (no chart on day 4), TOP50 day 4 with day 7, and USA
    # has one chart day: nothing to compare.
    moves = execute.query(lake, *_bound("climbers_and_fallers", EVERY_PLAYLIST, day(7), 4))
    assert _records(moves, ["playlist_id", "track_id", "rank_change"]) == [
        (TOP50, ID["D"], 3),
        (TOP50, ID["H"], -3),
        (GLOBAL, ID["B"], -2),
    ]
    freshness = execute.query(lake, *_bound("freshness", EVERY_PLAYLIST, day(3), 3))
    assert _records(freshness, ["playlist_id", "playlist_name"]) == [(GLOBAL, "Top Songs - Global")]


@pytest.mark.parametrize(
    ("as_of", "days"),
    [
        # Each playlist has its own #1: A, D and G.
        (day(7), 7),
        # GLOBAL and TOP50 share their #1 (A); USA has no chart in the window.
        (day(6), 3),
        # Only GLOBAL has a chart.
        (day(3), 3),
    ],
)
def test_each_report_follows_up_on_its_own_number_one_and_leading_artist(
    lake, statements_run, monkeypatch, as_of, days
):
    """One statement per follow-up for every playlist, binding each id once; each playlist's
    piece is what the lookup of its own id gives, and a playlist with no chart gets the
    lookup's columns without rows."""
    inputs = reports.query_inputs(lake, dict.fromkeys(EVERY_PLAYLIST, as_of), days)
    ran = statements_run
    monkeypatch.undo()

    first_day, last_day = analysis.window_bounds(as_of, days)
    assert list(inputs[GLOBAL]) == list(reports.INPUT_NAMES)
    for name, follow_up in reports.FOLLOW_UPS.items():
        statement = sql.shipped("queries")[follow_up.lookup]
        ids = {
            playlist_id: inputs[playlist_id][follow_up.of][follow_up.key].iloc[0]
            for playlist_id in EVERY_PLAYLIST
            if len(inputs[playlist_id][follow_up.of])
        }
        [bound] = [params for text, params in ran if text == statement]
        assert sorted(bound[0].split(",")) == sorted(set(ids.values()))
        for playlist_id in EVERY_PLAYLIST:
            # An id the lake does not hold: the lookup's columns, without rows.
            looked_up = ids.get(playlist_id, "notInTheLake")
            alone = _shipped(
                lake,
                follow_up.lookup,
                **{follow_up.key: looked_up},
                first_day=first_day,
                last_day=last_day,
            )
            frame = inputs[playlist_id][name]
            pd.testing.assert_frame_equal(frame, alone, obj=f"{name} of {playlist_id}")
            assert len(frame) > 0 if playlist_id in ids else frame.empty
    # One statement per query, and one per follow-up.
    assert len(ran) == len(reports.INPUT_NAMES)


def test_a_playlist_without_a_chart_follows_up_on_nothing(lake):
    """No statement covers it, and its follow-ups still have the lookup's columns."""
    inputs = reports.query_inputs(lake, {USA: day(3)}, 3)[USA]
    assert inputs["chart"].empty
    for name, follow_up in reports.FOLLOW_UPS.items():
        alone = _shipped(lake, follow_up.lookup, **{follow_up.key: "notInTheLake"})
        pd.testing.assert_frame_equal(inputs[name], alone, obj=name)


@pytest.mark.parametrize(
    ("name", "ids"),
    [
        # A charts on all three playlists, H on TOP50 alone, Z's id is not Spotify-shaped,
        # and the lake holds nothing of the last.
        ("track_rank_history", [ID["Z"], ID["A"], ID["H"], "trackNotInTheLakeQQQQQ"]),
        # Bravo credits Zed, Amy and Mo: it is on each one's page.
        ("artist_page", [ARTIST_ID["zed"], ARTIST_ID["mo"], ARTIST_ID["amy"], "artistNobody"]),
    ],
)
def test_a_lookup_of_several_ids_is_the_lookups_of_each_one_after_another(lake, name, ids):
    column = analysis.SEVERAL_IDS[name]
    together = _shipped(lake, name, **{column: ids})
    assert list(together.columns)[0] == column
    alone = {one: _shipped(lake, name, **{column: one}) for one in ids}
    # By id, then in the order the lookup of each gives.
    in_order = [alone[one] for one in sorted(ids) if len(alone[one])]
    pd.testing.assert_frame_equal(together, pd.concat(in_order, ignore_index=True))
    split = reports._split_by(together, column, ids)
    for one in ids:
        pd.testing.assert_frame_equal(split[one], alone[one], obj=one)
    assert alone[ids[-1]].empty


def test_compare_track_ranks_lists_every_chart_of_the_day(lake):
    alpha = _shipped(lake, "compare_track_ranks", day=day(7), track_id=ID["A"])
    assert _records(
        alpha, ["playlist_name", "chart_rank", "movement", "peak_rank", "days_on_chart"]
    ) == [
        ("Top Songs - Global", 1, "same", 1, 6),
        ("Top 50 - Global", 2, "down 1", 1, 3),
        ("Top Songs - USA", 2, "NEW", 2, 1),
    ]
    hotel = _shipped(lake, "compare_track_ranks", day=day(7), track_id=ID["H"])
    assert _records(hotel, ["playlist_id", "chart_rank"]) == [
        (TOP50, 4),
        (GLOBAL, None),
        (USA, None),
    ]
    only_two = _shipped(
        lake, "compare_track_ranks", day=day(7), track_id=ID["A"], playlists=[GLOBAL, USA]
    )
    assert list(only_two["playlist_id"]) == [GLOBAL, USA]


def test_charts_per_track_counts_the_charts_each_track_is_on(lake):
    frame = _shipped(lake, "charts_per_track", day=day(7))
    assert _records(frame, ["track_name", "charts", "best_rank"]) == [
        ("Alpha", 3, 1),
        ("Delta", 3, 1),
        ("Golf", 2, 1),
        ("Charlie", 1, 3),
        ("Zulu", 1, 3),
        ("Bravo", 1, 4),
        ("Hotel", 1, 4),
    ]
    alpha = frame.iloc[0]
    assert alpha["chart_ranks"] == "Top Songs - Global #1; Top 50 - Global #2; Top Songs - USA #2"
    assert alpha["artists"] == "Amy"
    two = _shipped(lake, "charts_per_track", day=day(7), playlists=[GLOBAL, USA])
    assert _records(two.head(3), ["track_name", "charts"]) == [
        ("Alpha", 2),
        ("Delta", 2),
        ("Golf", 1),
    ]


def test_top10_side_by_side_gives_one_column_per_chart(lake):
    frame = _shipped(lake, "top10_side_by_side", day=day(7))
    assert list(frame.drop_duplicates("playlist_id")["playlist_name"]) == [
        "Top 50 - Global",
        "Top Songs - Global",
        "Top Songs - USA",
    ]
    table = analysis.side_by_side(frame)
    assert list(table.columns) == ["Top 50 - Global", "Top Songs - Global", "Top Songs - USA"]
    assert list(table.index) == [1, 2, 3, 4]
    assert table.loc[1, "Top Songs - USA"] == "Golf — Amy"
    assert table.loc[4, "Top Songs - Global"] == "Bravo — Zed, Amy, Mo"
    # Two charts of one name stay two columns.
    renamed = frame.assign(playlist_name=frame["playlist_name"].str.replace("Top 50", "Top Songs"))
    assert len(analysis.side_by_side(renamed).columns) == 3


def test_track_search_matches_names_and_artists_literally_and_ignoring_case(lake):
    amy = _shipped(lake, "track_search", text="AMY")
    assert _records(
        amy, ["track_name", "peak_rank", "days_on_chart", "first_seen", "last_seen"]
    ) == [
        ("Alpha", 1, 7, day(1), day(7)),
        ("Bravo", 1, 7, day(1), day(7)),
        ("Golf", 1, 1, day(7), day(7)),
        ("Echo", 3, 4, day(2), day(6)),
    ]
    assert amy.iloc[0]["charts"] == "Top 50 - Global; Top Songs - Global; Top Songs - USA"
    # % and _ are characters here, not LIKE wildcards that would match every track.
    for text in ("%", "_", "100% pure_"):
        assert list(_shipped(lake, "track_search", text=text)["track_name"]) == ["100% Pure_Fun"]
    assert _shipped(lake, "track_search", text="no such song").empty
    # A range limits what counts.
    late = _shipped(lake, "track_search", text="alpha", first_day=day(6), last_day=day(7))
    assert _records(late, ["days_on_chart", "first_seen"]) == [(2, day(6))]


def test_track_rank_history_has_a_line_per_chart(lake):
    frame = _shipped(lake, "track_rank_history", track_id=ID["A"])
    assert _records(frame, ["playlist_id", "chart_date", "chart_rank"]) == [
        (TOP50, day(4), 2),
        (TOP50, day(6), 1),
        (TOP50, day(7), 2),
        (GLOBAL, day(1), 1),
        (GLOBAL, day(2), 2),
        (GLOBAL, day(3), 2),
        (GLOBAL, day(5), 1),
        (GLOBAL, day(6), 1),
        (GLOBAL, day(7), 1),
        (USA, day(7), 2),
    ]
    assert frame["playlist_name"].iloc[0] == "Top 50 - Global"


def test_artist_search_and_page_count_every_credit(lake):
    found = _shipped(lake, "artist_search", text="mo")
    assert _records(
        found,
        ["name", "tracks", "charts", "peak_rank", "days_on_chart", "first_seen", "last_seen"],
    ) == [("Mo", 4, 2, 1, 7, day(1), day(7))]
    assert found.iloc[0]["artist_url"].startswith("https://open.spotify.com/artist/")

    page = _shipped(lake, "artist_page", artist_id=found.iloc[0]["artist_id"])
    assert _records(
        page, ["playlist_id", "track_name", "days_on_chart", "peak_rank", "first_seen", "last_seen"]
    ) == [
        (GLOBAL, "Bravo", 6, 1, day(1), day(7)),
        (GLOBAL, "Charlie", 5, 2, day(1), day(7)),
        (GLOBAL, "Echo", 4, 3, day(2), day(6)),
        (TOP50, "Bravo", 2, 2, day(4), day(6)),
        (GLOBAL, "100% Pure_Fun", 1, 4, day(5), day(5)),
        (TOP50, "Echo", 1, 4, day(6), day(6)),
    ]
    assert page.iloc[0]["artists"] == "Zed, Amy, Mo"


def test_lookup_params_bind_by_name():
    assert analysis.lookup_params(
        "compare_track_ranks", day=date(2026, 3, 7), track_id="t", playlists=[GLOBAL, USA]
    ) == ["2026-03-07", f"{GLOBAL},{USA}", f"{GLOBAL},{USA}", "t", "2026-03-07"]
    assert analysis.lookup_params("charts_per_track", day="2026-03-07") == ["2026-03-07", "", ""]
    assert analysis.lookup_params("artist_search", text="  Mo ") == [
        "Mo",
        analysis.FIRST_POSSIBLE_DAY,
        analysis.LAST_POSSIBLE_DAY,
    ]
    # One id, or several joined.
    assert analysis.lookup_params("track_rank_history", track_id="t", last_day="2026-03-07") == [
        "t",
        analysis.FIRST_POSSIBLE_DAY,
        "2026-03-07",
    ]
    assert analysis.lookup_params("artist_page", artist_id=("a", "b"))[0] == "a,b"
    for name, values in [
        ("track_search", {"text": "   "}),
        ("track_rank_history", {}),
        ("track_rank_history", {"track_id": []}),
        ("artist_page", {"artist_id": ["a,b"]}),
        ("compare_track_ranks", {"day": "2026-03-07", "track_id": ["a", "b"]}),
        ("charts_per_track", {}),
        ("charts_per_track", {"day": "2026-03-07", "playlists": ["a,b"]}),
        ("no_such_query", {}),
    ]:
        with pytest.raises(ValueError):
            analysis.lookup_params(name, **values)
    assert set(analysis.LOOKUP_QUERIES) <= set(sql.shipped("queries"))
    for name, parameters in analysis.LOOKUP_QUERIES.items():
        placeholders = sql.parse(sql.shipped("queries")[name]).find_all(exp.Placeholder)
        assert len(list(placeholders)) == len(parameters), name
