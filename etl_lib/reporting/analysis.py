"""Chart analyses: pure functions on small pandas frames, no I/O.

The input frames are shaped like the views (``README.md``): ``daily_chart`` rows
(playlist_id, chart_date, chart_rank, track_id), ``latest_tracks`` (track_id, name, album_id),
``latest_track_artists`` (track_id, artist_id), ``latest_artists`` (artist_id, name) and
``latest_albums`` (album_id, release_date, release_date_precision). Dates may be ``date``
objects, timestamps or ISO strings; dates in the results are ``datetime.date`` objects.

Every analysis looks at one playlist over a window: the ``days`` calendar dates ending at
``as_of`` inclusive (``window_dates``). The window's *first day* and *last day* are the first
and last dates inside it that have a chart, so a day the extraction missed at either edge
shifts the comparison by a day instead of making every track look like an entry or an exit.

Each analysis has an equivalent Athena-dialect query, ``etl_lib/warehouse/sql/queries/<function>.sql``;
``query_params`` gives the positional parameters to bind to those. The other shipped queries
compare charts on one day or follow one track or artist over time (``LOOKUP_QUERIES``):
``lookup_params`` binds their parameters by name, and ``side_by_side`` lays the top 10 of
several charts out as one column per chart.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta

import pandas as pd

from etl_lib.extract import envelope

# The shipped queries that take the window parameters (playlist_id, first_day, last_day).
WINDOW_QUERIES = (
    "rank_history",
    "climbers_and_fallers",
    "new_entries_and_dropouts",
    "days_on_chart_and_peak",
    "longest_running_number_one",
    "artist_share",
    "release_age",
)
# ... of which these also take a top-N limit, bound last.
TOP_N_QUERIES = ("climbers_and_fallers",)
# The longest window (and demo) in days: ten years; beyond is a typo, and the dates around
# year 1 or 9999 overflow.
MAX_DAYS = 3660

# The queries that compare charts or follow one track or artist, each with its parameters'
# names in binding order (a name bound twice appears twice); ``lookup_params`` binds them.
# Most read the ``chart`` view, whose movement, peak and days on chart count from each
# playlist's first chart day: run them on tables planned from the first day
# (``warehouse.query``, or ``warehouse.query_all`` with ``days=(None, last day)``).
LOOKUP_QUERIES: dict[str, tuple[str, ...]] = {
    "compare_track_ranks": ("day", "playlists", "playlists", "day", "track_id", "day"),
    "charts_per_track": ("day", "playlists", "playlists", "day"),
    "top10_side_by_side": ("day", "playlists", "playlists", "day"),
    "track_search": ("text", "text", "first_day", "last_day", "first_day", "last_day"),
    "track_rank_history": ("track_id", "first_day", "last_day", "first_day", "last_day"),
    "artist_search": ("text", "first_day", "last_day"),
    "artist_page": ("artist_id", "first_day", "last_day", "first_day", "last_day"),
}
# The days a lookup covers unless told otherwise: every day the lake can hold.
FIRST_POSSIBLE_DAY = envelope.EARLIEST.date().isoformat()
LAST_POSSIBLE_DAY = envelope.LATEST.date().isoformat()

NEW_ENTRY = "new_entry"
DROPOUT = "dropout"

_HISTORY_COLUMNS = ["chart_date", "track_id", "chart_rank"]


def window_dates(as_of: date | str, days: int) -> list[date]:
    """The ``days`` calendar dates ending at ``as_of`` inclusive, oldest first."""
    if days < 1:
        raise ValueError(f"a window needs at least one day, got days={days}")
    last_day = _as_date(as_of)
    return [last_day - timedelta(days=offset) for offset in range(days - 1, -1, -1)]


def window_bounds(as_of: date | str, days: int) -> tuple[str, str]:
    """The window's first and last day as 'YYYY-MM-DD', the strings queries bind for ``dt``."""
    window = window_dates(as_of, days)
    return window[0].isoformat(), window[-1].isoformat()


def query_params(
    name: str, playlist_id: str, as_of: date | str, days: int, *, top: int = 10
) -> list:
    """The positional parameters of the shipped query ``name``, in binding order.

    Window queries take ``[playlist_id, first_day, last_day]`` ('YYYY-MM-DD': the window of
    ``window_dates``, computed here once rather than in every query), plus ``top`` last for
    ``climbers_and_fallers``; ``top_tracks`` (the latest chart, no window) takes
    ``[playlist_id, playlist_id, top]``.
    """
    if name == "top_tracks":
        return [playlist_id, playlist_id, int(top)]
    if name not in WINDOW_QUERIES:
        raise ValueError(f"no shipped query named {name!r}")
    params: list = [playlist_id, *window_bounds(as_of, days)]
    if name in TOP_N_QUERIES:
        params.append(int(top))
    return params


def lookup_params(
    name: str,
    *,
    day: date | str | None = None,
    playlists: Iterable[str] | None = None,
    track_id: str | None = None,
    artist_id: str | None = None,
    text: str | None = None,
    first_day: date | str | None = None,
    last_day: date | str | None = None,
) -> list:
    """The positional parameters of the lookup query ``name`` (``LOOKUP_QUERIES``).

    ``day``, ``first_day`` and ``last_day`` are dates or 'YYYY-MM-DD'; the range defaults to
    every day. ``playlists`` limits a comparison to those playlist ids (default: every
    playlist with a chart that day). ``text`` is searched for literally, ignoring case.
    """
    if name not in LOOKUP_QUERIES:
        raise ValueError(f"no shipped lookup query named {name!r}")
    if playlists is not None and isinstance(playlists, str):
        playlists = [playlists]
    if playlists is not None and any("," in playlist for playlist in playlists):
        raise ValueError(f"a playlist id holds no comma: {list(playlists)!r}")
    values = {
        "day": None if day is None else _as_date(day).isoformat(),
        "playlists": ",".join(playlists or ()),
        "track_id": track_id,
        "artist_id": artist_id,
        "text": text.strip() if isinstance(text, str) else None,
        "first_day": _as_date(first_day or FIRST_POSSIBLE_DAY).isoformat(),
        "last_day": _as_date(last_day or LAST_POSSIBLE_DAY).isoformat(),
    }
    params = []
    for parameter in LOOKUP_QUERIES[name]:
        value = values[parameter]
        if value is None or value == "" and parameter != "playlists":
            raise ValueError(f"query {name!r} needs {parameter}")
        params.append(value)
    return params


def side_by_side(top10: pd.DataFrame) -> pd.DataFrame:
    """The rows of ``top10_side_by_side`` as one column per chart, one row per rank.

    Each cell is 'track name — artists'; columns are the charts' names (a name two charts
    share gets the playlist id added), in the rows' order. The index is the rank.
    """
    charts = top10.drop_duplicates("playlist_id")[["playlist_id", "playlist_name"]]
    names = charts["playlist_name"].where(charts["playlist_name"].notna(), charts["playlist_id"])
    repeated = names.duplicated(keep=False)
    titles = [
        f"{title} ({playlist_id})" if twice else title
        for title, playlist_id, twice in zip(names, charts["playlist_id"], repeated, strict=True)
    ]
    column_of = dict(zip(charts["playlist_id"], titles, strict=True))
    cells = top10.assign(
        chart=top10["playlist_id"].map(column_of),
        entry=[
            _label(track, artists)
            for track, artists in zip(top10["track_name"], top10["artists"], strict=True)
        ],
    )
    table = cells.pivot_table(
        index="chart_rank", columns="chart", values="entry", aggfunc="first"
    ).reindex(columns=titles)
    table.index.name = "rank"
    table.columns.name = None
    return table


def _label(track: object, artists: object) -> str:
    parts = [part for part in (track, artists) if isinstance(part, str) and part]
    return " — ".join(parts)


def with_track_names(frame: pd.DataFrame, tracks: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with a ``name`` column from ``tracks`` (track_id, name), for labelling."""
    names = tracks[["track_id", "name"]].drop_duplicates("track_id")
    return frame.merge(names, on="track_id", how="left")


def track_names(tracks: pd.DataFrame, credits: pd.DataFrame, artists: pd.DataFrame) -> pd.DataFrame:
    """track_id, track_name and artists (every credited artist with a name, in credited
    order, joined with ', ') of each track in ``tracks``: the labels of the report's tables
    and charts, from its ``tracks``, ``credits`` and ``artists`` inputs."""
    names = artists[["artist_id", "name"]].drop_duplicates("artist_id")
    credited = credits.merge(names.rename(columns={"name": "artist"}), on="artist_id")
    credited = credited[credited["artist"].notna()].sort_values(
        ["track_id", "artist_position"], kind="stable"
    )
    joined = credited.groupby("track_id", sort=False)["artist"].agg(", ".join)
    frame = tracks[["track_id", "name"]].drop_duplicates("track_id")
    frame = frame.rename(columns={"name": "track_name"})
    return frame.merge(joined.rename("artists"), left_on="track_id", right_index=True, how="left")


def with_labels(frame: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with track_name and artists from ``labels`` (track_id, track_name, artists:
    ``track_names``), for tables and chart labels that name every artist."""
    names = labels[["track_id", "track_name", "artists"]].drop_duplicates("track_id")
    return frame.merge(names, on="track_id", how="left")


def rank_history(
    daily: pd.DataFrame,
    playlist_id: str,
    as_of: date | str,
    days: int,
    track_ids: Iterable[str] | None = None,
) -> pd.DataFrame:
    """(chart_date, track_id, chart_rank) over the window, optionally for some tracks only.

    A day a track was not on the chart has no row: the gap is the break a chart draws.
    """
    window = _chart_window(daily, playlist_id, as_of, days)
    if track_ids is not None:
        window = window[window["track_id"].isin(list(track_ids))]
    return window.sort_values(["chart_date", "chart_rank"]).reset_index(drop=True)


def climbers_and_fallers(
    daily: pd.DataFrame, playlist_id: str, as_of: date | str, days: int, top: int | None = 10
) -> pd.DataFrame:
    """The biggest rank changes from the window's first day to its last day.

    Only tracks on the chart on both days count (entries and exits have no change to
    measure: see ``new_entries_and_dropouts``). ``rank_change = first_rank - last_rank``, so a
    positive change is a climb (from #12 to #3 is +9). At most ``top`` climbers and ``top``
    fallers (``None``: all of them), biggest moves first, ties by better last rank; unchanged
    tracks are left out. Sorted by rank_change descending (biggest climber first, biggest
    faller last), then last_rank, then track_id.
    """
    window = _chart_window(daily, playlist_id, as_of, days)
    columns = ["track_id", "first_rank", "last_rank", "rank_change"]
    if window.empty:
        return pd.DataFrame(columns=columns)
    first = _day(window, window["chart_date"].min()).rename(columns={"chart_rank": "first_rank"})
    last = _day(window, window["chart_date"].max()).rename(columns={"chart_rank": "last_rank"})
    moves = first.merge(last, on="track_id", how="inner")
    moves["rank_change"] = moves["first_rank"] - moves["last_rank"]
    climbers = moves[moves["rank_change"] > 0].sort_values(
        ["rank_change", "last_rank", "track_id"], ascending=[False, True, True]
    )
    fallers = moves[moves["rank_change"] < 0].sort_values(
        ["rank_change", "last_rank", "track_id"], ascending=[True, True, True]
    )
    if top is not None:
        climbers, fallers = climbers.head(top), fallers.head(top)
    result = pd.concat([climbers, fallers])[columns]
    return result.sort_values(
        ["rank_change", "last_rank", "track_id"], ascending=[False, True, True]
    ).reset_index(drop=True)


def new_entries_and_dropouts(
    daily: pd.DataFrame, playlist_id: str, as_of: date | str, days: int
) -> pd.DataFrame:
    """Tracks on the window's last day but not its first (``new_entry``), and the reverse
    (``dropout``).

    The comparison is between the two edge days only, so a track that came and went inside
    the window is neither. ``chart_rank`` is the rank on the day the track was on the chart
    (the last day for a new entry, the first day for a dropout). Columns: status, track_id,
    chart_rank; new entries first, each group by rank.
    """
    window = _chart_window(daily, playlist_id, as_of, days)
    columns = ["status", "track_id", "chart_rank"]
    if window.empty:
        return pd.DataFrame(columns=columns)
    first = _day(window, window["chart_date"].min())
    last = _day(window, window["chart_date"].max())
    entries = last[~last["track_id"].isin(first["track_id"])].assign(status=NEW_ENTRY)
    dropouts = first[~first["track_id"].isin(last["track_id"])].assign(status=DROPOUT)
    result = pd.concat([entries, dropouts])[columns]
    return result.sort_values(["status", "chart_rank"], ascending=[False, True]).reset_index(
        drop=True
    )


def days_on_chart_and_peak(
    daily: pd.DataFrame, playlist_id: str, as_of: date | str, days: int
) -> pd.DataFrame:
    """Per track charting in the window: days_on_chart, peak_rank, first_seen, last_seen.

    Days on chart count dates with the track on the chart, breaks excluded. Sorted by days on
    chart (descending), then peak rank, then track_id.
    """
    window = _chart_window(daily, playlist_id, as_of, days)
    columns = ["track_id", "days_on_chart", "peak_rank", "first_seen", "last_seen"]
    if window.empty:
        return pd.DataFrame(columns=columns)
    result = window.groupby("track_id", as_index=False).agg(
        days_on_chart=("chart_date", "nunique"),
        peak_rank=("chart_rank", "min"),
        first_seen=("chart_date", "min"),
        last_seen=("chart_date", "max"),
    )
    return result.sort_values(
        ["days_on_chart", "peak_rank", "track_id"], ascending=[False, True, True]
    ).reset_index(drop=True)[columns]


def longest_running_number_one(
    daily: pd.DataFrame, playlist_id: str, as_of: date | str, days: int
) -> pd.DataFrame:
    """The longest run of consecutive days at #1 in the window: one row (or none).

    A run is consecutive *calendar* days at rank 1, so a day without a chart ends it: what
    was #1 that day is unknown. Ties go to the run that started first. Columns: track_id,
    run_days, run_start, run_end.
    """
    window = _chart_window(daily, playlist_id, as_of, days)
    number_ones = window[window["chart_rank"] == 1].sort_values("chart_date")
    runs: list[dict] = []
    for chart_date, track_id in zip(
        number_ones["chart_date"], number_ones["track_id"], strict=True
    ):
        current = runs[-1] if runs else None
        if (
            current is not None
            and current["track_id"] == track_id
            and current["run_end"] + timedelta(days=1) == chart_date
        ):
            current["run_end"] = chart_date
            current["run_days"] += 1
        else:
            runs.append(
                {
                    "track_id": track_id,
                    "run_days": 1,
                    "run_start": chart_date,
                    "run_end": chart_date,
                }
            )
    columns = ["track_id", "run_days", "run_start", "run_end"]
    if not runs:
        return pd.DataFrame(columns=columns)
    # min() keeps the first of equal keys; runs are in date order, so ties go to the earliest.
    longest = min(runs, key=lambda run: (-run["run_days"], run["run_start"]))
    return pd.DataFrame([longest], columns=columns)


def artist_share(
    daily: pd.DataFrame,
    track_artists: pd.DataFrame,
    artists: pd.DataFrame,
    playlist_id: str,
    as_of: date | str,
    days: int,
) -> pd.DataFrame:
    """Each artist's share of the window's chart entries, counting every credited artist.

    A chart entry is one track on one day. A track credited to three artists gives each of
    them that entry, so the shares add up to more than 1 when tracks have several artists.
    ``share = entries / all chart entries in the window``. Columns: artist_id, name, entries,
    share; most entries first, then artist_id.
    """
    window = _chart_window(daily, playlist_id, as_of, days)
    columns = ["artist_id", "name", "entries", "share"]
    if window.empty:
        return pd.DataFrame(columns=columns)
    # An artist credited twice on one track still gets that track's entry once.
    credits = track_artists[["track_id", "artist_id"]].drop_duplicates()
    credited = window.merge(credits, on="track_id", how="inner")
    counts = credited.groupby("artist_id", as_index=False).agg(entries=("track_id", "size"))
    counts["share"] = counts["entries"] / float(len(window))
    names = artists[["artist_id", "name"]].drop_duplicates("artist_id")
    result = counts.merge(names, on="artist_id", how="left")
    return result.sort_values(["entries", "artist_id"], ascending=[False, True]).reset_index(
        drop=True
    )[columns]


def release_age(
    daily: pd.DataFrame,
    tracks: pd.DataFrame,
    albums: pd.DataFrame,
    playlist_id: str,
    as_of: date | str,
    days: int,
) -> pd.DataFrame:
    """Per track on the window's last chart day: days from its album's release to that day.

    A release date known only to the year or the month counts from its first day: the lake's
    ``albums`` table stores it so, and Spotify's strings (``2019``, ``2019-06``) are read so
    (2019-01-01, 2019-06-01); ``release_date_precision`` is kept so readers can tell. A
    track without an album or release date has a null age. Columns: chart_date, chart_rank,
    track_id, album_id, release_date, release_date_precision, days_since_release; by rank.
    """
    window = _chart_window(daily, playlist_id, as_of, days)
    columns = [
        "chart_date",
        "chart_rank",
        "track_id",
        "album_id",
        "release_date",
        "release_date_precision",
        "days_since_release",
    ]
    if window.empty:
        return pd.DataFrame(columns=columns)
    last_day = window["chart_date"].max()
    charting = window[window["chart_date"] == last_day]
    track_albums = tracks[["track_id", "album_id"]].drop_duplicates("track_id")
    album_dates = albums[["album_id", "release_date", "release_date_precision"]].drop_duplicates(
        "album_id"
    )
    result = charting.merge(track_albums, on="track_id", how="left").merge(
        album_dates, on="album_id", how="left"
    )
    result["release_date"] = [_release_day(value) for value in result["release_date"]]
    result["days_since_release"] = pd.array(
        [
            None if released is None else (chart_date - released).days
            for chart_date, released in zip(
                result["chart_date"], result["release_date"], strict=True
            )
        ],
        dtype="Int64",
    )
    return result.sort_values("chart_rank").reset_index(drop=True)[columns]


def _chart_window(
    daily: pd.DataFrame, playlist_id: str, as_of: date | str, days: int
) -> pd.DataFrame:
    """The playlist's (chart_date, track_id, chart_rank) rows inside the window."""
    dates = window_dates(as_of, days)
    frame = daily.loc[daily["playlist_id"] == playlist_id, _HISTORY_COLUMNS].copy()
    frame["chart_date"] = _as_dates(frame["chart_date"])
    frame["chart_rank"] = frame["chart_rank"].astype("int64")
    inside = [dates[0] <= chart_date <= dates[-1] for chart_date in frame["chart_date"]]
    return frame[inside].reset_index(drop=True)


def _day(window: pd.DataFrame, chart_date: date) -> pd.DataFrame:
    return window.loc[window["chart_date"] == chart_date, ["track_id", "chart_rank"]]


def _as_dates(values: pd.Series) -> pd.Series:
    return pd.Series([_as_date(value) for value in values], index=values.index, dtype="object")


def _as_date(value) -> date:
    # datetime (and pandas' Timestamp) subclass date: test them first.
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        return date.fromisoformat(value[:10])
    return pd.Timestamp(value).date()


def _release_day(value) -> date | None:
    """A release date as its first possible day; ``None`` when unknown."""
    # pandas' NaT is a datetime too, so test for "missing" before any type.
    if value is None or (not isinstance(value, str) and pd.isna(value)):
        return None
    if isinstance(value, str):
        # Spotify's own forms: "2019", "2019-06", "2019-06-14".
        parts = [int(part) for part in value.strip().split("-")]
        year, month, day = (parts + [1, 1])[:3]
        return date(year, month, day)
    # A date already is the first day of a year or month precision (the albums table).
    return _as_date(value)
