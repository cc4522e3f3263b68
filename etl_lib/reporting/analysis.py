"""What the report's and the notebooks' shipped queries take and give, in pandas: no I/O.

Every analysis is one Athena-dialect query, ``etl_lib/warehouse/sql/queries/<name>.sql``,
run on DuckDB or Athena (``etl_lib.reporting.reports``); this module only binds their
parameters and shapes their results for tables and charts.

The window queries (``WINDOW_QUERIES``) look at a set of playlists over a window: the ``days``
calendar dates ending at ``as_of`` inclusive (``window_dates``). Each playlist is its own: its
rows carry its ``playlist_id`` (the first column), and every computation (edge days, ranks,
shares, the one longest run at #1) is that playlist's, so a result for several playlists,
split by ``playlist_id``, holds what each would give alone. A playlist's *first day* and
*last day* are the first and last dates inside the window that have its chart, so a day the
extraction missed at either edge shifts the comparison by a day instead of making every track
look like an entry or an exit. ``query_params`` gives their positional parameters. The other shipped
queries compare charts on one day or follow tracks or artists over time
(``LOOKUP_QUERIES``): ``lookup_params`` binds their parameters by name, and ``side_by_side``
lays the top 10 of several charts out as one column per chart. ``with_labels`` names the
tracks of a result with the report's ``labels`` query.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime, timedelta

import pandas as pd

from etl_lib.extract import envelope

# The shipped queries that take the window parameters (playlists, first_day, last_day).
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

# The queries that compare charts or follow tracks or artists, each with its parameters'
# names in binding order (a name bound twice appears twice); ``lookup_params`` binds them.
# Most read the ``chart`` view, whose movement, peak and days on chart count from each
# playlist's first chart day: run them on tables planned from the first day
# (``execute.query``, or ``execute.query_all`` with ``days=(None, last day)``).
LOOKUP_QUERIES: dict[str, tuple[str, ...]] = {
    "compare_track_ranks": ("day", "playlists", "playlists", "track_id", "day"),
    "charts_per_track": ("day", "playlists", "playlists"),
    "top10_side_by_side": ("day", "playlists", "playlists"),
    "track_search": ("text", "text", "first_day", "last_day"),
    "track_rank_history": ("track_id", "first_day", "last_day"),
    "artist_search": ("text", "first_day", "last_day"),
    "artist_page": ("artist_id", "first_day", "last_day"),
}
# The lookups whose parameter named here is one id or several (a list, bound joined with
# ','): their rows carry the id they are of in a column of that name, the first.
SEVERAL_IDS = {"track_rank_history": "track_id", "artist_page": "artist_id"}
# The days a lookup covers unless told otherwise: every day the lake can hold.
FIRST_POSSIBLE_DAY = envelope.EARLIEST.date().isoformat()
LAST_POSSIBLE_DAY = envelope.LATEST.date().isoformat()

# The statuses ``new_entries_and_dropouts`` gives.
NEW_ENTRY = "new_entry"
DROPOUT = "dropout"


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
    name: str, playlists: str | Iterable[str], as_of: date | str, days: int, *, top: int = 10
) -> list:
    """The positional parameters of the shipped query ``name``, in binding order.

    Window queries take ``[playlists, first_day, last_day]`` (``playlists``: one playlist id,
    or several, bound joined with ','; the days 'YYYY-MM-DD': the window of ``window_dates``,
    computed here once rather than in every query), plus ``top`` last for
    ``climbers_and_fallers``; ``top_tracks`` (the latest chart of one playlist, no window)
    takes ``[playlist_id, playlist_id, top]``.
    """
    if name == "top_tracks":
        if not isinstance(playlists, str):
            raise ValueError(f"top_tracks takes one playlist id, got {list(playlists)!r}")
        return [playlists, playlists, int(top)]
    if name not in WINDOW_QUERIES:
        raise ValueError(f"no shipped query named {name!r}")
    joined = ids_param(playlists)
    if not joined:
        raise ValueError(f"query {name!r} needs at least one playlist id")
    params: list = [joined, *window_bounds(as_of, days)]
    if name in TOP_N_QUERIES:
        params.append(int(top))
    return params


def lookup_params(
    name: str,
    *,
    day: date | str | None = None,
    playlists: Iterable[str] | None = None,
    track_id: str | Iterable[str] | None = None,
    artist_id: str | Iterable[str] | None = None,
    text: str | None = None,
    first_day: date | str | None = None,
    last_day: date | str | None = None,
) -> list:
    """The positional parameters of the lookup query ``name`` (``LOOKUP_QUERIES``).

    ``day``, ``first_day`` and ``last_day`` are dates or 'YYYY-MM-DD'; the range defaults to
    every day. ``playlists`` limits a comparison to those playlist ids (default: every
    playlist with a chart that day). ``text`` is searched for literally, ignoring case.
    ``track_id`` and ``artist_id`` are one id, or a list of them for the lookups of
    ``SEVERAL_IDS``.
    """
    if name not in LOOKUP_QUERIES:
        raise ValueError(f"no shipped lookup query named {name!r}")
    values = {
        "day": None if day is None else _as_date(day).isoformat(),
        "playlists": ids_param(playlists or ()),
        "track_id": track_id,
        "artist_id": artist_id,
        "text": text.strip() if isinstance(text, str) else None,
        "first_day": _as_date(first_day or FIRST_POSSIBLE_DAY).isoformat(),
        "last_day": _as_date(last_day or LAST_POSSIBLE_DAY).isoformat(),
    }
    params = []
    for parameter in LOOKUP_QUERIES[name]:
        value = values[parameter]
        if parameter == SEVERAL_IDS.get(name) and value is not None:
            value = ids_param(value, kind=parameter.removesuffix("_id"))
        elif value is not None and not isinstance(value, str):
            raise ValueError(f"query {name!r} takes one {parameter}, got {list(value)!r}")
        if value is None or value == "" and parameter != "playlists":
            raise ValueError(f"query {name!r} needs {parameter}")
        params.append(value)
    return params


def ids_param(ids: str | Iterable[str], *, kind: str = "playlist") -> str:
    """The parameter of the shipped queries that take one id or several (``playlists``, and
    the ids of ``SEVERAL_IDS``): one id as it is, several joined with ','."""
    joined = [ids] if isinstance(ids, str) else list(ids)
    if any("," in one for one in joined):
        raise ValueError(f"a {kind} id holds no comma: {joined!r}")
    return ",".join(joined)


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


def with_labels(frame: pd.DataFrame, labels: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with the track_name and artists of its tracks from ``labels`` (track_id,
    track_name, artists: the report's ``labels`` query), for tables and chart labels."""
    names = labels[["track_id", "track_name", "artists"]].drop_duplicates("track_id")
    return frame.merge(names, on="track_id", how="left")


def _label(track: object, artists: object) -> str:
    parts = [part for part in (track, artists) if isinstance(part, str) and part]
    return " — ".join(parts)


def _as_date(value) -> date:
    # datetime (and pandas' Timestamp) subclass date: test them first.
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        return date.fromisoformat(value[:10])
    return pd.Timestamp(value).date()
