"""Run the report notebook with papermill and publish it under the lake's ``reports/``.

Outputs for one playlist and date go to ``<lake>/reports/<playlist_id>/<as_of>/``: the
executed notebook, an HTML export without code cells, the charts (PNG and SVG) and
``status.json`` (parameters, timings, success, or the failing cell and error). The report is
built in a local temporary folder and published only when it succeeded, ``status.json``
last, so a failing run never replaces a previous good report for the same date: its status
and notebook go to ``failed/<stamp>/`` beside it instead. Kernel deaths and timeouts are not
recorded in the notebook by papermill, so they are caught here. After each run,
``<lake>/reports/index.html`` lists every playlist and date with a report.

Names, descriptions and URLs come from Spotify, and anyone can name a public playlist: every
such value is escaped where it is written into HTML, the only links made from them point to
``https://open.spotify.com/``, and the exported page is sanitized again with nh3 (ammonia)
before it is published, so markup that slipped through an output never runs.
"""

from __future__ import annotations

import functools
import html
import json
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from importlib import resources
from pathlib import Path
from urllib.parse import quote, urlsplit

import pandas as pd

from etl_lib.errors import ConfigError, EtlError
from etl_lib.extract import envelope
from etl_lib.lake import layout, storage
from etl_lib.reporting import analysis, report_html, status
from etl_lib.warehouse import execute, sql

# The report notebooks are package data, so an installed wheel finds them too.
_NOTEBOOKS = Path(str(resources.files("etl_lib.reporting") / "notebooks"))
REPORT_NOTEBOOK = _NOTEBOOKS / "top_songs_trends.ipynb"
COMPARISON_NOTEBOOK = _NOTEBOOKS / "compare_charts.ipynb"
COMPARISON_TITLE = "Charts compared"
REPORTS = "reports"
INDEX = f"{REPORTS}/index.html"
SPOTIFY_WEB = "https://open.spotify.com/"
# The report notebook tags the output that states the playlist's name with this metadata key,
# so status.json and the index can name the playlist without another query.
PLAYLIST_NAME_METADATA = "spotify_etl_playlist_name"


@dataclass
class ReportResult:
    succeeded: bool
    output_prefix: str
    status: dict
    files: list[str] = field(default_factory=list)
    playlist_id: str | None = None  # None: the comparison of charts
    # The reason a request made no report at all (a playlist or day the lake does not hold),
    # found before any notebook ran; nothing was published for it.
    refused: EtlError | None = None
    # Not started: the run's time was up (``run_reports``' ``time_is_up``) before its turn.
    deferred: bool = False

    @property
    def error(self) -> str | None:
        return self.status.get("error")

    def url(self, lake_root: str, name: str) -> str:
        return storage.url(lake_root, f"{self.output_prefix}/{name}")


# Report queries that count from the playlist's first chart day (peak, days on chart): they
# read every day up to the window's last, the others the window's days only.
HISTORY_QUERIES = ("chart",)
# The shipped analyses (``etl_lib/warehouse/sql/queries``) the report shows, each of the
# playlist over the window (``analysis.query_params``).
REPORT_ANALYSES = (
    "rank_history",
    "climbers_and_fallers",
    "new_entries_and_dropouts",
    "longest_running_number_one",
    "artist_share",
    "release_age",
)
# The report's own queries (``etl_lib/warehouse/sql/report``), then its analyses: the names of
# ``input_queries``, in its order.
QUERY_NAMES = ("chart", "freshness", "labels", *REPORT_ANALYSES)


@dataclass(frozen=True)
class FollowUp:
    """A lookup of the id in the first row of one of the report's query results, over the
    report's window: queried once that result is in."""

    lookup: str  # a shipped lookup of one id or several (``analysis.SEVERAL_IDS``)
    of: str  # the result (``QUERY_NAMES``) whose first row it follows up on

    @property
    def key(self) -> str:
        """The id's column, in ``of`` and in the lookup's result, and its parameter."""
        return analysis.SEVERAL_IDS[self.lookup]


# The report's follow-ups, by the name its notebook reads them by: the report day's #1 on
# every chart in the lake, and the page of the artist with the largest share of the chart.
FOLLOW_UPS = {
    "top_song_history": FollowUp("track_rank_history", "chart"),
    "artist_spotlight": FollowUp("artist_page", "artist_share"),
}
# Every result the report notebook is handed (``load_inputs``): its queries, then its
# follow-ups.
INPUT_NAMES = (*QUERY_NAMES, *FOLLOW_UPS)
# The most climbers, and the most fallers, the report lists.
REPORT_TOP = 10


def input_queries(
    playlists: str | Iterable[str], as_of: date | str, days: int
) -> dict[str, tuple[str, list]]:
    """The report's queries of one playlist, or of several on the same date (one statement
    each for all of them, every row carrying its playlist_id), each with its bound
    parameters: the chart of the window's last chart day (``chart``, as the ``chart`` view
    shows it), the playlist's freshness and the names and artists of the tracks on its
    chart in the window (``labels``: ``analysis.with_labels``) from
    ``etl_lib/warehouse/sql/report``, then the analyses of ``REPORT_ANALYSES``. Each reads
    only the window's days, but those of ``HISTORY_QUERIES``."""
    first_day, last_day = analysis.window_bounds(as_of, days)
    playlist_ids = [playlists] if isinstance(playlists, str) else list(playlists)
    joined = analysis.ids_param(playlist_ids)
    report = sql.shipped("report")
    shipped = sql.shipped("queries")
    params = {
        "chart": [joined, first_day, last_day, joined],
        "freshness": [joined, first_day, last_day],
        "labels": [joined, first_day, last_day],
    }
    return {name: (report[name], bound) for name, bound in params.items()} | {
        name: (
            shipped[name],
            analysis.query_params(name, playlist_ids, as_of, days, top=REPORT_TOP),
        )
        for name in REPORT_ANALYSES
    }


# Athena runs a limited number of queries at once per account and region (its active-query
# quota, shared with the transform's commits and every other user of the account); a run of
# reports keeps this many of its queries in flight, so that it neither queues behind its own
# queries nor starves the others.
ATHENA_CONCURRENT_QUERIES = 5

# The days a query's tables hold: (first day or None for every day before, last day), or None
# for every day.
Window = tuple[str | None, str] | None
# A statement of the reports of several playlists: the playlists it covers, and its name.
Covered = tuple[tuple[str, ...], str]
# Whose rows each statement's result holds: the column that says, and each playlist it
# covers with its value there (the playlist's id, or the id its follow-up looks up).
Owners = dict[Covered, tuple[str, dict[str, str]]]


def _on_date(wanted: dict[str, str], days: int) -> dict[tuple[str, str], list[str]]:
    """The playlists of ``wanted`` (playlist id -> as_of) by their window's first and last
    day."""
    on_date: dict[tuple[str, str], list[str]] = {}
    for playlist_id, as_of in wanted.items():
        on_date.setdefault(analysis.window_bounds(as_of, days), []).append(playlist_id)
    return on_date


def _planned_inputs(
    on_date: dict[tuple[str, str], list[str]], days: int
) -> tuple[dict[Window, dict[Covered, tuple]], Owners]:
    """The queries of the reports of the playlists of ``on_date`` (``_on_date``), grouped by
    the days their tables hold, each keyed by the playlists it covers and its name, and
    whose rows each holds.

    Playlists reported on the same date share one statement per query (``input_queries`` of
    all of them): Athena bills every query at least 10 MB and reads the tables' files again
    for each, so a run of 73 charts would otherwise be 73 times the queries for the same
    files. The tables are planned for the window's days only (the queries filter on them
    too), or for every day up to its last for ``HISTORY_QUERIES``, which count from the
    first day.
    """
    planned: dict[Window, dict[Covered, tuple]] = {}
    owners: Owners = {}
    for (first_day, last_day), playlist_ids in on_date.items():
        for name, statement in input_queries(playlist_ids, last_day, days).items():
            window = (None, last_day) if name in HISTORY_QUERIES else (first_day, last_day)
            covered = (tuple(playlist_ids), name)
            planned.setdefault(window, {})[covered] = statement
            owners[covered] = ("playlist_id", {p: p for p in playlist_ids})
    return planned, owners


def _planned_follow_ups(
    on_date: dict[tuple[str, str], list[str]], results: dict[tuple[str, str], pd.DataFrame]
) -> tuple[dict[Window, dict[Covered, tuple]], Owners]:
    """The follow-ups (``FOLLOW_UPS``) of the reports of the playlists of ``on_date``, from
    their ``results`` by (playlist id, name): per date, one lookup each for the ids of all of
    them (two playlists with the same #1 look it up once), keyed and described like
    ``_planned_inputs``' queries; a playlist whose result has no row has nothing to follow
    and is not covered.

    They read the whole lake, as ``lookup`` does: ``artist_page``'s names and credits are
    the latest the lake knows, whatever the report's date.
    """
    statements: dict[Covered, tuple] = {}
    owners: Owners = {}
    for (first_day, last_day), playlist_ids in on_date.items():
        for name, follow_up in FOLLOW_UPS.items():
            followed = {
                p: str(results[(p, follow_up.of)][follow_up.key].iloc[0])
                for p in playlist_ids
                if len(results[(p, follow_up.of)])
            }
            if not followed:
                continue
            ids = list(dict.fromkeys(followed.values()))
            params = analysis.lookup_params(
                follow_up.lookup, **{follow_up.key: ids}, first_day=first_day, last_day=last_day
            )
            covered = (tuple(followed), name)
            statements[covered] = (sql.shipped("queries")[follow_up.lookup], params)
            owners[covered] = (follow_up.key, followed)
    return ({None: statements} if statements else {}), owners


def _run_planned(
    lake_root: str,
    planned: dict[Window, dict],
    engine: str,
    settings,
) -> tuple[dict, dict[object, EtlError]]:
    """Each planned statement's result, and the error of each that has none.

    On DuckDB the statements of one window run over one connection whose tables hold those
    days only, or every day for the window None (a failure fails its window's statements);
    on Athena (whose tables are the Glue catalog's, whole) they are submitted together, at
    most ``ATHENA_CONCURRENT_QUERIES`` at a time, each on a connection of its own (pyathena's
    are not shared between threads).
    """
    frames: dict = {}
    failures: dict[object, EtlError] = {}
    if engine == "duckdb":
        for window, statements in planned.items():
            try:
                frames |= execute.query_all(lake_root, statements, days=window)
            except EtlError as exc:
                failures |= dict.fromkeys(statements, exc)
        return frames, failures

    def run_one(job: tuple[object, tuple[str, list]]) -> pd.DataFrame | EtlError:
        statement, bound = job[1]
        try:
            return execute.run(lake_root, statement, bound, engine=engine, settings=settings)[0]
        except EtlError as exc:
            return exc

    jobs = [job for statements in planned.values() for job in statements.items()]
    with ThreadPoolExecutor(max_workers=max(1, min(ATHENA_CONCURRENT_QUERIES, len(jobs)))) as pool:
        for (key, _), outcome in zip(jobs, pool.map(run_one, jobs), strict=True):
            if isinstance(outcome, EtlError):
                failures[key] = outcome
            else:
                frames[key] = outcome
    return frames, failures


def _split_by(frame: pd.DataFrame, column: str, keys: Iterable[str]) -> dict[str, pd.DataFrame]:
    """A result of several playlists', or several ids', statement as each one's own: the rows
    whose ``column`` holds the key, in the result's order, indexed from 0 (none: the result's
    columns, empty)."""
    rows = frame.groupby(column, sort=False).indices
    return {key: _typed_alone(frame.iloc[rows.get(key, [])].reset_index(drop=True)) for key in keys}


def _typed_alone(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` (one playlist's, or one id's, rows of a statement of several) with the column
    types DuckDB gives the statement of that one alone. pandas types a column by its values,
    so the others' rows must not change them: an integer or boolean column holding another
    one's NULL comes nullable (Int32, boolean), and text without a row comes as object, not
    str. (Athena's frames are pandas' guesses from the values whichever way.)"""
    types = {}
    for column, dtype in frame.dtypes.items():
        if getattr(dtype, "numpy_dtype", None) is not None and not frame[column].hasnans:
            types[column] = dtype.numpy_dtype
        elif frame.empty and isinstance(dtype, pd.StringDtype):
            types[column] = object
    return frame.astype(types) if types else frame


def _per_playlist(
    owners: Owners, frames: dict, failures: dict[object, EtlError]
) -> dict[tuple[str, str], pd.DataFrame | EtlError]:
    """Each covered playlist's piece of each statement's result by (playlist id, name), or
    the statement's error: a statement that failed fails every playlist it covered."""
    results: dict[tuple[str, str], pd.DataFrame | EtlError] = {}
    for covered, (column, key_of) in owners.items():
        name = covered[1]
        if covered in failures:
            results |= {(p, name): failures[covered] for p in key_of}
            continue
        pieces = _split_by(frames[covered], column, set(key_of.values()))
        # A copy each: playlists with the same #1 get equal frames, not one shared frame.
        results |= {(p, name): pieces[key].copy() for p, key in key_of.items()}
    return results


def query_inputs(
    lake_root: str,
    wanted: dict[str, str],
    days: int,
    *,
    engine: str = "duckdb",
    settings=None,
) -> dict[str, dict[str, pd.DataFrame] | EtlError]:
    """The results the reports of every playlist and date of ``wanted`` show (``INPUT_NAMES``),
    all queried before any report runs: per playlist its results by name, or the error of a
    query.

    The playlists of one date are queried together, one statement per query of
    ``input_queries``, whose result is split by playlist_id; then, those results in, one
    statement per follow-up (``FOLLOW_UPS``) for all of their #1 songs and one for all of
    their leading artists, split by the id looked up. A statement that fails fails the
    reports of every playlist it covered. A playlist with nothing to follow up on (no chart,
    no artist) gets the lookup's columns without rows."""
    on_date = _on_date(wanted, days)
    planned, owners = _planned_inputs(on_date, days)
    results = _per_playlist(owners, *_run_planned(lake_root, planned, engine, settings))
    failed = {p for (p, _), outcome in results.items() if isinstance(outcome, EtlError)}
    ready = {window: [p for p in ids if p not in failed] for window, ids in on_date.items()}
    planned, owners = _planned_follow_ups(ready, results)
    results |= _per_playlist(owners, *_run_planned(lake_root, planned, engine, settings))
    inputs: dict[str, dict[str, pd.DataFrame] | EtlError] = {}
    for playlist_id in wanted:
        outcomes = {name: results.get((playlist_id, name)) for name in INPUT_NAMES}
        errors = [o for o in outcomes.values() if isinstance(o, EtlError)]
        if errors:
            inputs[playlist_id] = errors[0]
            continue
        inputs[playlist_id] = {
            name: _nothing_followed(name) if outcome is None else outcome
            for name, outcome in outcomes.items()
        }
    return inputs


def _nothing_followed(name: str) -> pd.DataFrame:
    """The follow-up ``name`` of a report whose result has no row to follow (no chart, no
    artist): the lookup's columns, without rows."""
    return _no_rows_of(FOLLOW_UPS[name].lookup).copy()


@functools.cache
def _no_rows_of(lookup: str) -> pd.DataFrame:
    # Once per process: each answer builds an empty catalog of every table and view.
    return execute.no_rows(sql.shipped("queries")[lookup])


# Results that a run of several reports queried beforehand, handed to the report notebook's
# kernel (``preload_inputs``) and taken by the next ``load_inputs`` of the same request.
_PRELOADED: dict[tuple, dict[str, pd.DataFrame]] = {}


def _preload_key(lake_root: str, playlist_id: str, as_of: date | str, days: int, engine: str):
    return (lake_root, playlist_id, str(as_of), days, engine)


def preload_inputs(
    folder: str, lake_root: str, playlist_id: str, as_of: str, days: int, engine: str
) -> None:
    """Keep the report's results saved in ``folder`` (one Parquet file per name of
    ``INPUT_NAMES``) for the next ``load_inputs`` of this request, in place of any kept
    before."""
    _PRELOADED.clear()
    _PRELOADED[_preload_key(lake_root, playlist_id, as_of, days, engine)] = {
        name: pd.read_parquet(Path(folder) / f"{name}.parquet") for name in INPUT_NAMES
    }


def load_inputs(
    lake_root: str,
    playlist_id: str,
    as_of: date | str,
    days: int,
    *,
    engine: str = "duckdb",
    settings=None,
) -> dict[str, pd.DataFrame]:
    """The results the report notebook shows, by name (``INPUT_NAMES``: ``query_inputs``):
    those a run of reports queried beforehand (``preload_inputs``), else queried now."""
    preloaded = _PRELOADED.pop(_preload_key(lake_root, playlist_id, as_of, days, engine), None)
    if preloaded is not None:
        return preloaded
    inputs = query_inputs(
        lake_root, {playlist_id: str(as_of)}, days, engine=engine, settings=settings
    )[playlist_id]
    if isinstance(inputs, EtlError):
        raise inputs
    return inputs


def window_query(
    lake_root: str,
    name: str,
    playlist_id: str,
    as_of: date | str,
    days: int,
    *,
    top: int = REPORT_TOP,
    engine: str = "duckdb",
    settings=None,
) -> pd.DataFrame:
    """The shipped analysis ``name`` (``analysis.WINDOW_QUERIES``) of one playlist over the
    ``days`` ending at ``as_of``, as the report runs it."""
    statement = sql.shipped("queries")[name]
    params = analysis.query_params(name, playlist_id, as_of, days, top=top)
    planned = {analysis.window_bounds(as_of, days): {name: (statement, params)}}
    frames, failures = _run_planned(lake_root, planned, engine, settings)
    if name in failures:
        raise failures[name]
    return frames[name]


def report_prefix(playlist_id: str, as_of: str) -> str:
    if layout.check_playlist_id(playlist_id) == COMPARISONS:  # that folder holds comparisons
        raise ConfigError(f"playlist id {playlist_id!r} is not a Spotify ID")
    return f"{REPORTS}/{playlist_id}/{as_of}"


def _chart_days_statement(count: int) -> str:
    """The chart days of ``count`` playlists, their ids bound."""
    marks = ", ".join("?" * count)
    return f"SELECT DISTINCT playlist_id, dt FROM snapshots WHERE playlist_id IN ({marks})"


def _check_as_of(as_of: str) -> str:
    try:
        day = date.fromisoformat(as_of)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"--as-of {as_of!r} is not a date like 2026-10-31") from exc
    if not envelope.EARLIEST.date() <= day <= envelope.LATEST.date():
        raise ConfigError(f"--as-of {as_of} is outside {envelope.TIME_RANGE}: pass a chart date")
    return day.isoformat()


def check_request(
    lake_root: str,
    playlist_id: str,
    as_of: str | None,
    days: int,
    *,
    engine: str = "duckdb",
    settings=None,
) -> str:
    """The report's date (the playlist's latest chart when ``as_of`` is None), once the
    request is known to make a report; else a ConfigError in one line (``check_requests``)."""
    checked = check_requests(
        lake_root, {playlist_id: as_of}, days, engine=engine, settings=settings
    )[playlist_id]
    if isinstance(checked, EtlError):
        raise checked
    return checked


def check_requests(
    lake_root: str,
    wanted: dict[str, str | None],
    days: int,
    *,
    engine: str = "duckdb",
    settings=None,
) -> dict[str, str | EtlError]:
    """Per playlist of ``wanted`` (playlist id -> as_of), the report's date (its latest chart
    when as_of is None), or the error in one line that says why it makes no report.

    Checked before a kernel starts, in two steps: the raw zone's folder names first (which
    playlists and days were captured; a few listings, so a mistyped playlist or date fails in
    well under a second, naming what would work), then the tables themselves (one query of
    the chart days of every playlist asked for), which a capture not transformed yet is
    missing from. A failing query of the tables fails them all: it is the lake's or the
    engine's failure, not a request's.
    """
    checked: dict[str, str | EtlError] = {}
    landed: dict[str, str | None] = {}
    # One listing of the raw zone for every request: it lists each playlist's folder.
    in_raw_zone = status.landed_days(lake_root)
    for playlist_id, as_of in wanted.items():
        try:
            report_prefix(playlist_id, str(as_of))  # a Spotify ID, not the comparisons' folder
            day = None if as_of is None else _check_as_of(as_of)
            _check_days(days)
            status.check_landed(lake_root, playlist_id, day, days, landed=in_raw_zone)
        except EtlError as exc:
            checked[playlist_id] = exc
        else:
            landed[playlist_id] = day
    if landed:
        frame, _ = execute.run(
            lake_root,
            _chart_days_statement(len(landed)),
            list(landed),
            engine=engine,
            settings=settings,
        )
        frame = frame.dropna()
        for playlist_id, day in landed.items():
            charted = sorted(str(d) for d in frame.loc[frame["playlist_id"] == playlist_id, "dt"])
            try:
                if not charted:
                    raise ConfigError(
                        f"playlist {playlist_id} has raw snapshots but no rows in the tables of "
                        f"lake {storage.url(lake_root)}: run `spotify-etl transform` (a file it "
                        "cannot read goes to quarantine/, see `spotify-etl status`)"
                    )
                checked[playlist_id] = status.check_chart_day(playlist_id, day, charted, days)
            except EtlError as exc:
                checked[playlist_id] = exc
    return {playlist_id: checked[playlist_id] for playlist_id in wanted}


def _failure(exc: BaseException) -> dict:
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from papermill.exceptions import PapermillExecutionError

    if isinstance(exc, PapermillExecutionError):
        return {
            "error": f"{exc.ename}: {exc.evalue}",
            "failing_cell": {"index": exc.cell_index, "source": exc.source},
        }
    if isinstance(exc, CellTimeoutError):
        return {"error": f"a cell ran past the timeout: {exc}", "failing_cell": None}
    if isinstance(exc, DeadKernelError):
        return {"error": f"the kernel died: {exc}", "failing_cell": None}
    return {"error": f"{type(exc).__name__}: {exc}", "failing_cell": None}


# ---------------------------------------------------------------------------------------------
# Values from Spotify in HTML


def spotify_url(url: object) -> str | None:
    """``url`` if it is a plain ``https://open.spotify.com/...`` link, else None.

    Anything else (``javascript:``, ``data:``, another host, a URL with spaces, control
    characters or backslashes that browsers would reinterpret) is never emitted as a link.
    """
    if not isinstance(url, str) or not url.startswith(SPOTIFY_WEB):
        return None
    if any(c.isspace() or ord(c) < 0x20 or ord(c) == 0x7F or c == "\\" for c in url):
        return None
    parts = urlsplit(url)
    return url if parts.scheme == "https" and parts.netloc == "open.spotify.com" else None


def spotify_object_url(kind: str, object_id: str) -> str:
    """The open.spotify.com page of a playlist, track, album or artist, id percent-encoded."""
    return f"{SPOTIFY_WEB}{kind}/{quote(str(object_id), safe='')}"


def link_html(text: object, url: object) -> str:
    """``text`` escaped, as a link only when ``url`` is an open.spotify.com link."""
    shown = html.escape(str(text))
    target = spotify_url(url)
    if target is None:
        return shown
    return f'<a href="{html.escape(target)}" rel="noopener noreferrer">{shown}</a>'


def header_html(
    *,
    playlist_name: object,
    playlist_id: str,
    first_day: str,
    last_day: str,
    days: int,
    chart_days: int,
    newest: datetime | pd.Timestamp | None,
    engine: str,
) -> str:
    """The report's heading, the playlist and the date, and a line on the window and the
    data; every value escaped, the id in small print linking to the playlist on Spotify."""
    name = playlist_name if isinstance(playlist_name, str) and playlist_name else playlist_id
    newest_text = "none" if newest is None or pd.isna(newest) else f"{newest:%Y-%m-%d %H:%M} UTC"
    e = html.escape
    playlist_link = link_html(playlist_id, spotify_object_url("playlist", playlist_id))
    return (
        f"<h1>{e(name)} — {e(last_day)}</h1>"
        f'<p class="report-meta">Window <strong>{e(first_day)} to {e(last_day)}</strong> '
        f"({int(days)} days, {int(chart_days)} with a chart). Newest snapshot in the lake: "
        f"<strong>{e(newest_text)}</strong>. Engine: {e(engine)}. "
        f"<small>Playlist {playlist_link} on Spotify.</small></p>"
    )


def display_header(
    freshness: pd.DataFrame,
    history: pd.DataFrame,
    *,
    playlist_id: str,
    as_of: date | str,
    days: int,
    engine: str,
) -> None:
    """Show ``header_html`` in the report notebook, the output tagged with the playlist's
    name (``PLAYLIST_NAME_METADATA``) for status.json and the index. ``freshness`` and
    ``history`` are the report's results of those names (``input_queries``): the days of
    the window's rank history are its chart days."""
    from IPython.display import HTML, display

    first_day, last_day = analysis.window_bounds(as_of, days)
    name = freshness["playlist_name"].iloc[0] if len(freshness) else None
    name = name if isinstance(name, str) and name else None
    header = header_html(
        playlist_name=name,
        playlist_id=playlist_id,
        first_day=str(first_day),
        last_day=str(last_day),
        days=days,
        chart_days=history["chart_date"].nunique(),
        newest=freshness["newest"].iloc[0] if len(freshness) else None,
        engine=engine,
    )
    display(HTML(header), metadata={PLAYLIST_NAME_METADATA: name})


def lookup(
    lake_root: str, name: str, *, engine: str = "duckdb", settings=None, **values
) -> pd.DataFrame:
    """The shipped lookup query ``name`` (``analysis.LOOKUP_QUERIES``: comparisons across
    charts, track and artist drill-downs) with its parameters bound by name."""
    statement = sql.shipped("queries")[name]
    params = analysis.lookup_params(name, **values)
    return execute.run(lake_root, statement, params, engine=engine, settings=settings)[0]


def comparison_header_html(top10: pd.DataFrame, *, as_of: str) -> str:
    """The comparison report's heading and the charts it compares, names escaped and linked
    to the playlists on Spotify."""
    playlists = top10.drop_duplicates("playlist_id").sort_values("playlist_name")
    named = [
        link_html(name or playlist_id, spotify_object_url("playlist", playlist_id))
        for playlist_id, name in playlists[["playlist_id", "playlist_name"]].itertuples(False)
    ]
    listed = ", ".join(named) if named else "none"
    return (
        f"<h1>{html.escape(COMPARISON_TITLE)} — {html.escape(str(as_of))}</h1>"
        f'<p class="report-meta">{len(named)} charts: {listed}.</p>'
    )


def display_text(text: object) -> None:
    """One paragraph of text in a report, escaped: it may quote names from Spotify."""
    from IPython.display import HTML, display

    display(HTML(f"<p>{html.escape(str(text))}</p>"))


def display_comparison_header(top10: pd.DataFrame, *, as_of: str) -> None:
    from IPython.display import HTML, display

    display(HTML(comparison_header_html(top10, as_of=as_of)))


# The tags a report may hold: nh3's defaults (text, tables, images, links), the page's <main>,
# and the SVG elements matplotlib writes, so charts embedded as inline SVG keep drawing.
_SVG_TAGS = frozenset(
    {"svg", "g", "path", "defs", "use", "clipPath", "rect", "circle", "ellipse", "line"}
    | {"polyline", "polygon", "text", "tspan"}
)
_SVG_ATTRIBUTES = frozenset(
    {"viewBox", "version", "xmlns", "width", "height", "x", "y", "d", "transform", "href"}
    | {"clip-path", "fill", "stroke", "stroke-width", "opacity", "points", "preserveAspectRatio"}
    | {"x1", "y1", "x2", "y2", "cx", "cy", "r", "rx", "ry", "text-anchor", "font-size"}
    | {"font-family", "font-style", "font-weight", "direction"}
)
_GLOBAL_ATTRIBUTES = frozenset({"class", "id", "style", "title", "lang", "dir", "tabindex"})
_STYLE_PROPERTIES = frozenset(
    {"text-align", "vertical-align", "width", "height", "max-width", "opacity", "fill"}
    | {"white-space"}  # report tables keep ranks and dates on one line
    | {"fill-opacity", "fill-rule", "stroke", "stroke-width", "stroke-opacity", "stroke-linecap"}
    | {"stroke-linejoin", "stroke-miterlimit", "stroke-dasharray", "stroke-dashoffset"}
    # Chart names are SVG <text>: the browser draws them in every script with these.
    | {"font", "font-family", "font-size", "font-style", "font-weight", "font-variant"}
    | {"font-stretch", "text-anchor", "direction"}
)
_DATA_IMAGE = re.compile(r"data:image/(?:png|jpeg|gif|webp|svg\+xml);base64,[A-Za-z0-9+/=\s]*")
_RELATIVE_PATH = re.compile(r"[A-Za-z0-9._~%/-]+")
_LOCAL_REFERENCE = re.compile(r"url\(\s*#[A-Za-z0-9_.:-]+\s*\)", re.IGNORECASE)


def _is_path_below(value: str) -> bool:
    """A plain relative path to a file in the page's folder or below it (``tables/x.csv``):
    no scheme, no host, not from the site's root, no step up (``..``, which browsers also
    read in ``%2e%2e``)."""
    return (
        bool(_RELATIVE_PATH.fullmatch(value))
        and not value.startswith("/")
        and ".." not in value
        and "%2e" not in value.lower()
    )


def _allowed_url(element: str, attribute: str, value: str, relative_links: bool) -> bool:
    if value.startswith("#"):  # the page's own anchors, SVG <use> and clip-path references
        return True
    if element == "img" and attribute == "src":
        return bool(_DATA_IMAGE.fullmatch(value))  # images travel inside the page
    if relative_links and _is_path_below(value):
        return True
    return spotify_url(value) is not None


def _attribute_filter(relative_links: bool):
    def keep(element: str, attribute: str, value: str) -> str | None:
        if attribute in ("href", "src"):
            return value if _allowed_url(element, attribute, value, relative_links) else None
        # CSS may fetch from anywhere through url(); only references into the page stay.
        if "url(" in _LOCAL_REFERENCE.sub("", value).lower():
            return None
        if attribute == "style" and "\\" in value:  # CSS escapes could spell url( anew
            return None
        return value

    return keep


def sanitize_html(fragment: str, *, relative_links: bool = False) -> str:
    """``fragment`` with no script, event handler, style element or foreign link left.

    Links may go to ``https://open.spotify.com/`` or to anchors in the page (and, with
    ``relative_links``, to paths beside it); images only come from ``data:image/...;base64``
    URLs; inline SVG keeps the elements and presentation attributes matplotlib uses.
    """
    import nh3

    attributes = {tag: set(names) for tag, names in nh3.ALLOWED_ATTRIBUTES.items()}
    attributes["*"] = set(_GLOBAL_ATTRIBUTES)
    attributes["div"] = {"data-mime-type"}
    attributes["table"] = attributes.get("table", set()) | {"border"}
    attributes["a"] = attributes.get("a", set()) | {"download"}  # a table's CSV file
    for tag in _SVG_TAGS:
        attributes[tag] = set(_SVG_ATTRIBUTES)
    return nh3.clean(
        fragment,
        tags=set(nh3.ALLOWED_TAGS) | {"main"} | _SVG_TAGS,
        clean_content_tags={"script", "style"},
        attributes=attributes,
        attribute_filter=_attribute_filter(relative_links),
        url_schemes={"https", "data"},
        filter_style_properties=set(_STYLE_PROPERTIES),
        strip_comments=True,
    )


# The report's own additions to JupyterLab's stylesheet: the nav between dates, the heading's
# line, and tables sized to their text and left-aligned like the rest of the page.
_REPORT_CSS = """
main { max-width: 75em; margin: 0 auto; }
.report-nav { display: flex; flex-wrap: wrap; gap: 0.4em 1.5em; align-items: baseline;
  padding: 0.6em var(--jp-cell-padding, 5px);
  border-bottom: 1px solid var(--jp-border-color2, #e0e0e0);
  font: 14px/1.4 var(--jp-ui-font-family, system-ui, sans-serif); }
.report-nav a { text-decoration: none; }
.report-nav-none { color: var(--jp-ui-font-color3, #999); }
.report-nav-current { font-weight: 600; }
.report-meta { color: var(--jp-ui-font-color2, #555); }
.jp-RenderedHTMLCommon table.report-table { table-layout: auto; margin: 0; }
.jp-RenderedHTMLCommon table.report-table td,
.jp-RenderedHTMLCommon table.report-table th { padding: 0.3em 0.8em; }
.jp-RenderedHTMLCommon .table-note { margin: 0.4em 0 0; font-size: 0.9em;
  color: var(--jp-ui-font-color2, #555); }
"""


# A template of our own: nbconvert's lab page without its <script> elements (require.js,
# MathJax, mermaid and widgets, all loaded from CDNs), so the page runs no code at all, and
# with charts as inline SVG: their names stay text the browser draws in any script, and the
# page can be searched for them. (nbconvert's own inline option escapes the SVG into text;
# sanitize_html keeps the SVG elements matplotlib writes and drops anything else.)
_REPORT_TEMPLATE = f"""{{%- extends 'lab/index.html.j2' -%}}
{{%- block html_head_js -%}}{{%- endblock html_head_js -%}}
{{%- block jupyter_widgets -%}}{{%- endblock jupyter_widgets -%}}
{{%- block html_head_js_mathjax -%}}{{%- endblock html_head_js_mathjax -%}}
{{%- block html_head_js_mermaidjs -%}}{{%- endblock html_head_js_mermaidjs -%}}
{{%- block extra_css -%}}<style type="text/css">{_REPORT_CSS}</style>{{%- endblock -%}}
{{%- block data_svg scoped -%}}
<div class="jp-RenderedSVG jp-OutputArea-output {{{{ extra_class }}}}"
 data-mime-type="image/svg+xml">
{{{{ output.data['image/svg+xml'] }}}}
</div>
{{%- endblock data_svg -%}}
"""


def _html_without_code(notebook_path: Path, *, title: str, nav: str) -> str:
    """The executed notebook as one HTML page without code cells, sanitized, titled ``title``
    and opening with ``nav`` (``report_html.nav_html``).

    The page's head (CSS, title) comes from nbconvert's template alone; everything between
    ``<main>`` and ``</main>`` (markdown cells and outputs) goes through ``sanitize_html``,
    which keeps plain relative links such as a table's ``tables/<name>.csv``.
    """
    import nbformat
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(
        extra_loaders=[DictLoader({"report.html.j2": _REPORT_TEMPLATE})],
        template_file="report.html.j2",
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
    )
    notebook = nbformat.read(notebook_path, as_version=4)
    notebook.metadata["title"] = title  # the template escapes it
    page, _ = exporter.from_notebook_node(notebook)
    start = page.index("<main>") + len("<main>")
    end = page.rindex("</main>")
    body = sanitize_html(page[start:end], relative_links=True)
    return report_html.with_nav(page[:start] + body + page[end:], nav)


def _playlist_name(executed: Path) -> str | None:
    """The name the report notebook stated (see ``PLAYLIST_NAME_METADATA``), if it got there."""
    try:
        notebook = json.loads(executed.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    for cell in notebook.get("cells", []):
        for output in cell.get("outputs", []):
            name = (output.get("metadata") or {}).get(PLAYLIST_NAME_METADATA)
            if isinstance(name, str):
                return name
    return None


# ---------------------------------------------------------------------------------------------
# The index of reports


COMPARISONS = "compare"
# Under reports/: a playlist's id, or COMPARISONS for the reports comparing charts.
_STATUS_KEY = re.compile(
    rf"{REPORTS}/(?P<folder>[A-Za-z0-9]{{1,64}})/(?P<as_of>\d{{4}}-\d{{2}}-\d{{2}})/"
    r"(?:failed/(?P<stamp>\d{8}T\d{6}Z)/)?(?P<name>status\.json|report\.html)"
)


@dataclass
class IndexEntry:
    """One playlist (or the comparison of charts) and date under ``reports/``: its good
    report, if any, and failed runs."""

    playlist_id: str | None  # None: the comparison of charts
    as_of: str
    has_report: bool = False
    failed_stamps: list[str] = field(default_factory=list)
    playlist_name: str | None = None

    @property
    def folder(self) -> str:
        """The entry's folder under ``reports/``."""
        return self.playlist_id or COMPARISONS


def index_entries(keys: list[str]) -> list[IndexEntry]:
    """The playlists, comparisons and dates that have a report or a failed run, newest date
    first."""
    entries: dict[tuple[str, str], IndexEntry] = {}
    for key in keys:
        found = _STATUS_KEY.fullmatch(key)
        if not found:
            continue
        folder = found["folder"]
        entry = entries.setdefault(
            (folder, found["as_of"]),
            IndexEntry(None if folder == COMPARISONS else folder, found["as_of"]),
        )
        if found["stamp"] and found["name"] == "status.json":
            entry.failed_stamps.append(found["stamp"])
        elif not found["stamp"] and found["name"] == "report.html":
            entry.has_report = True
    for entry in entries.values():
        entry.failed_stamps.sort()
    return sorted(entries.values(), key=lambda e: (e.as_of, e.folder), reverse=True)


_INDEX_CSS = """body { font: 15px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 60em;
  padding: 0 1em; color: #222; }
h2 { margin: 1.6em 0 0.1em; font-size: 1.25em; }
.ids { margin: 0 0 0.5em; color: #666; font-size: 0.9em; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 0.35em 0.7em; border-bottom: 1px solid #ddd;
  vertical-align: top; }
th { font-weight: 600; color: #555; }
td:first-child { white-space: nowrap; width: 8em; }
td:nth-child(2) { width: 6em; }
code { color: #555; }
.failed { color: #b00020; font-weight: bold; }
.note { color: #8a5a00; }"""


def _index_rows(entries: list[IndexEntry]) -> str:
    rows = []
    for entry in entries:
        base = f"{quote(entry.folder)}/{quote(entry.as_of)}"
        if entry.has_report:
            report = f'<a href="{base}/report.html">report</a>'
            outcome = "ok"
            if entry.failed_stamps:
                latest = html.escape(entry.failed_stamps[-1])
                count = len(entry.failed_stamps)
                outcome += (
                    f'<br><span class="note">{count} failed run{"s" * (count != 1)}, '
                    f'last <a href="{base}/failed/{latest}/status.json">{latest}</a></span>'
                )
        else:
            latest = html.escape(entry.failed_stamps[-1]) if entry.failed_stamps else ""
            report = "none"
            outcome = '<span class="failed">failed</span>'
            if latest:
                outcome += f' <a href="{base}/failed/{latest}/status.json">{latest}</a>'
        rows.append(
            f"<tr><td>{html.escape(entry.as_of)}</td><td>{report}</td><td>{outcome}</td></tr>"
        )
    return (
        "<table><thead><tr><th>Date</th><th>Report</th><th>Run</th></tr></thead><tbody>\n"
        + "\n".join(rows)
        + "\n</tbody></table>"
    )


def _index_section(heading: str, ids: str, entries: list[IndexEntry]) -> str:
    good = sum(entry.has_report for entry in entries)
    failed = sum(not entry.has_report for entry in entries)
    counts = f"{good} report{'s' * (good != 1)}" + (f", {failed} failed" if failed else "")
    summary = f'<p class="ids">{ids}{counts}</p>'
    return f"<section><h2>{heading}</h2>{summary}{_index_rows(entries)}</section>"


def index_html(entries: list[IndexEntry]) -> str:
    """The page listing ``entries``: the comparisons of charts, then each playlist by name,
    each newest date first; links are relative to ``reports/``, names escaped."""
    sections = []
    comparisons = [entry for entry in entries if entry.playlist_id is None]
    if comparisons:
        sections.append(_index_section("Charts compared", "", comparisons))
    by_playlist: dict[str, list[IndexEntry]] = {}
    for entry in entries:
        if entry.playlist_id is not None:
            by_playlist.setdefault(entry.playlist_id, []).append(entry)

    def shown_name(playlist_id: str) -> str:
        named = [e.playlist_name for e in by_playlist[playlist_id] if e.playlist_name]
        return named[0] if named else playlist_id

    for playlist_id in sorted(by_playlist, key=lambda p: (shown_name(p).casefold(), p)):
        heading = html.escape(shown_name(playlist_id))
        ids = f"<code>{html.escape(playlist_id)}</code> · "
        sections.append(_index_section(heading, ids, by_playlist[playlist_id]))
    content = "\n".join(sections) if sections else "<p>No reports yet.</p>"
    intro = (
        "<p>Newest date first. A failed run keeps the date's previous good report; its "
        "status.json says which cell failed and why.</p>"
    )
    body = sanitize_html(f"<h1>Reports</h1>\n{intro}\n{content}", relative_links=True)
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"<title>Reports</title>\n<style>\n{_INDEX_CSS}\n</style>\n</head>\n"
        f"<body>\n{body}\n</body>\n</html>\n"
    )


def publish_index(lake_root: str) -> str:
    """Rebuild ``<lake>/reports/index.html`` from one listing of ``reports/``; its key.

    Each playlist is named as its newest good report named it (one status.json read per
    playlist); a playlist without a good report is listed by its id.
    """
    keys = list(storage.list_keys(lake_root, REPORTS))
    entries = index_entries(keys)
    newest_good: dict[str, IndexEntry] = {}
    for entry in entries:  # newest first
        if entry.has_report and entry.playlist_id is not None:
            newest_good.setdefault(entry.playlist_id, entry)
    listed = set(keys)
    names = {pid: _recorded_name(lake_root, entry, listed) for pid, entry in newest_good.items()}
    for entry in entries:
        entry.playlist_name = names.get(entry.playlist_id)
    storage.write_bytes(lake_root, INDEX, index_html(entries).encode("utf-8"))
    return INDEX


def _recorded_name(lake_root: str, entry: IndexEntry, listed: set[str]) -> str | None:
    key = f"{REPORTS}/{entry.folder}/{entry.as_of}/status.json"
    if key not in listed:
        return None
    try:
        name = json.loads(storage.read_bytes(lake_root, key)).get("playlist_name")
    except ValueError:
        return None
    return name if isinstance(name, str) else None


KERNEL_LOG = "kernel.log"
# The first cell run in the kernel before each notebook (``_warm_up_code``) imports the
# report's modules in a new kernel and reads its inputs: a few seconds, not the report's own
# cells' time, so it has its own limit.
WARM_UP_TIMEOUT_SECONDS = 300


def _private_kernel_manager(folder: Path) -> type:
    """A kernel manager whose kernel talks to papermill over Unix sockets in ``folder`` (the
    report's private work folder) instead of TCP ports on localhost, which any local process
    could connect to or listen on (ipykernel warns about it on every run)."""
    from jupyter_client.manager import AsyncKernelManager

    class PrivateKernelManager(AsyncKernelManager):
        def __init__(self, **kwargs):
            super().__init__(**kwargs)
            self.transport = "ipc"
            self.ip = str(folder / "kernel")
            self.open_clients: list = []

        async def start_kernel(self, **kwargs):
            # The kernel's own log goes to a file, not the user's terminal: when the report
            # is interrupted, its shutdown tracebacks are noise; when it dies, status.json
            # quotes the file's end.
            # Temporary files of the kernel (the notebook's default chart folder, which
            # papermill's parameters then replace) go in the work folder and with it.
            env = {**(kwargs.pop("env", None) or os.environ), "TMPDIR": str(folder)}
            with open(folder / KERNEL_LOG, "ab") as log:
                await super().start_kernel(**kwargs, env=env, stderr=log)

        def client(self, **kwargs):
            # Each notebook run opens a client of the kernel, which nbclient leaves open when
            # the kernel is not its own: ``close_clients`` closes them after each run.
            opened = super().client(**kwargs)
            self.open_clients.append(opened)
            return opened

        def close_clients(self) -> None:
            while self.open_clients:
                self.open_clients.pop().stop_channels()

    return PrivateKernelManager


class _Kernel:
    """One kernel that runs notebooks one after another, started when first needed.

    Its sockets and log are in ``work``, a private folder that also holds each report's
    files while it runs. A kernel that died, or that a timeout left running a cell, is
    replaced by a new one for the next notebook.
    """

    def __init__(self, work: Path, cwd: Path):
        self.work = work
        self.cwd = cwd
        self.manager = None
        self.runs = 0

    def __enter__(self) -> _Kernel:
        return self

    def __exit__(self, *_exc) -> None:
        self.stop()

    def ready(self):
        """The kernel's manager, the kernel running."""
        from nbclient.util import run_sync

        if self.manager is not None and not run_sync(self.manager.is_alive)():
            self.stop()
        if self.manager is None:
            manager = _private_kernel_manager(self.work)(kernel_name="python3")
            # As nbclient starts a kernel of its own: history in memory, not in ~/.ipython.
            run_sync(manager.start_kernel)(
                cwd=str(self.cwd), extra_arguments=["--HistoryManager.hist_file=:memory:"]
            )
            self.manager = manager
        return self.manager

    def new_folder(self) -> Path:
        """A new folder in the work folder for one report's files."""
        self.runs += 1
        folder = self.work / f"run-{self.runs}"
        folder.mkdir()
        return folder

    def run_cell(self, code: str) -> None:
        """Run ``code`` in the kernel; nbclient's CellExecutionError if it raises."""
        import nbformat
        from nbclient import NotebookClient

        notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(code)])
        client = NotebookClient(
            notebook, km=self.ready(), kernel_name="python3", timeout=WARM_UP_TIMEOUT_SECONDS
        )
        client.execute()

    def log_size(self) -> int:
        log = self.work / KERNEL_LOG
        return log.stat().st_size if log.exists() else 0

    def log_since(self, offset: int) -> list[str] | None:
        """The lines the kernel logged since ``offset`` (``log_size``); None when no kernel
        was started."""
        log = self.work / KERNEL_LOG
        if not log.exists():
            return None
        with open(log, "rb") as text:
            text.seek(offset)
            return text.read().decode("utf-8", errors="replace").splitlines()

    def after_run(self, failure: BaseException | None) -> None:
        """Close the run's clients; stop the kernel unless it is known to be idle and alive:
        it ran every cell, or a cell raised (a timed-out cell may still be running)."""
        from nbclient.exceptions import CellExecutionError
        from papermill.exceptions import PapermillExecutionError

        if self.manager is not None:
            self.manager.close_clients()
        if failure is not None and not isinstance(
            failure, PapermillExecutionError | CellExecutionError
        ):
            self.stop()

    def stop(self) -> None:
        from nbclient.util import run_sync

        manager, self.manager = self.manager, None
        if manager is None:
            return
        manager.close_clients()
        try:
            if run_sync(manager.is_alive)():
                run_sync(manager.shutdown_kernel)(now=True)
        finally:
            run_sync(manager.cleanup_resources)()


def _warm_up_code(parameters: dict, inputs: Path | None) -> str:
    """The cell run in the kernel before a notebook: the names of the notebook before are
    gone and the cells are numbered from 1, as in a new kernel (the modules it imported stay
    loaded: that is the time saved), and the report's inputs queried beforehand, if any, are
    handed to its ``load_inputs``."""
    lines = ["get_ipython().reset(new_session=True)"]
    if inputs is not None:
        request = [parameters[name] for name in ("lake", "playlist_id", "as_of", "days", "engine")]
        arguments = ", ".join(repr(value) for value in [str(inputs), *request])
        lines += [
            "import etl_lib.reporting.reports",
            f"etl_lib.reporting.reports.preload_inputs({arguments})",
            "del etl_lib",
        ]
    return "\n".join(lines)


def _save_inputs(folder: Path, frames: dict[str, pd.DataFrame]) -> bool:
    """Write each result to ``<folder>/<name>.parquet`` for ``preload_inputs``; False when a
    result has values Parquet cannot hold (the notebook then queries them itself)."""
    folder.mkdir()
    try:
        for name, frame in frames.items():
            frame.to_parquet(folder / f"{name}.parquet")
    except (ValueError, TypeError, NotImplementedError):
        return False
    return True


def _notebook_file(notebook: Path | str | None, default: Path, kind: str) -> Path:
    notebook = Path(notebook or default)
    if not notebook.is_file():
        raise ConfigError(f"{kind} notebook {notebook} not found")
    return notebook


def run_report(
    lake_root: str,
    *,
    playlist_id: str,
    as_of: str | None,
    days: int = 30,
    engine: str = "duckdb",
    settings=None,
    notebook: Path | None = None,
    timeout_seconds: int = 600,
) -> ReportResult:
    """Execute the report for one playlist and date (its latest chart when None), and
    publish it in the lake: ``run_reports`` of one request, whose refusal is raised."""
    [result] = run_reports(
        lake_root,
        {playlist_id: as_of},
        days=days,
        engine=engine,
        settings=settings,
        comparison=False,
        notebook=notebook,
        timeout_seconds=timeout_seconds,
    )
    if result.refused is not None:
        raise result.refused
    return result


def run_reports(
    lake_root: str,
    wanted: dict[str, str | None],
    *,
    days: int = 30,
    engine: str = "duckdb",
    settings=None,
    comparison: bool = True,
    notebook: Path | None = None,
    timeout_seconds: int = 600,
    announce: Callable[[ReportResult], None] | None = None,
    time_is_up: Callable[[], bool] | None = None,
) -> list[ReportResult]:
    """Execute and publish the report of each playlist and date of ``wanted`` (playlist id
    -> as_of, None for its latest chart), and with ``comparison`` the comparison of the
    charts on the newest of those dates when two or more have a chart in its window.

    The requests are checked first: one the lake cannot answer gives a result that is
    ``refused`` and publishes nothing. Then the queries of every report run at once
    (``query_inputs``), and the notebooks one after another in one kernel, each handed its
    inputs by a first cell rather than querying them again; a notebook that fails fails its
    report alone. Results come refused requests first, then the reports in the order of
    ``wanted``, the comparison last; ``announce`` is called with each as it comes. The index
    of reports is rebuilt once, at the end.

    ``time_is_up`` is asked before each notebook starts (a Lambda function's time is bounded):
    once it answers True, the reports not started yet come back ``deferred``, publishing
    nothing, and the comparison waits for the run that makes them.
    """
    notebook = _notebook_file(notebook, REPORT_NOTEBOOK, "report")
    results: list[ReportResult] = []

    def done(result: ReportResult) -> None:
        results.append(result)
        if announce is not None:
            announce(result)

    checked = check_requests(lake_root, wanted, days, engine=engine, settings=settings)
    good = {p: as_of for p, as_of in checked.items() if isinstance(as_of, str)}
    for playlist_id, outcome in checked.items():
        if isinstance(outcome, EtlError):
            done(_unpublished(playlist_id, wanted[playlist_id], days, engine, refusal=outcome))
    compared = None
    if comparison and good:
        try:
            compared = check_comparison_request(
                lake_root, max(good.values()), days, None, engine=engine, settings=settings
            )
        except ConfigError:  # fewer than two charts in its window: nothing to compare
            compared = None
    if not good:
        return results
    inputs = query_inputs(lake_root, good, days, engine=engine, settings=settings)
    # ignore_cleanup_errors: a kernel stopped by Ctrl-C may still be removing its sockets.
    with (
        tempfile.TemporaryDirectory(prefix="reports-", ignore_cleanup_errors=True) as work,
        _Kernel(Path(work), cwd=notebook.parent) as kernel,
    ):
        deferred = False
        for playlist_id, as_of in good.items():
            parameters = {"as_of": as_of, "days": days, "playlist_id": playlist_id}
            if deferred or (time_is_up is not None and time_is_up()):
                deferred = True
                done(_unpublished(playlist_id, as_of, days, engine))
                continue
            prefetched = inputs[playlist_id]
            done(
                _run_and_publish(
                    lake_root,
                    kernel,
                    notebook=notebook,
                    parameters=parameters | {"engine": engine},
                    prefix=report_prefix(playlist_id, as_of),
                    subject=playlist_id,
                    timeout_seconds=timeout_seconds,
                    inputs=None if isinstance(prefetched, EtlError) else prefetched,
                    playlist_id=playlist_id,
                )
            )
        if compared is not None and not deferred:
            as_of, chosen = compared
            done(
                _run_and_publish(
                    lake_root,
                    kernel,
                    notebook=COMPARISON_NOTEBOOK,
                    parameters={"as_of": as_of, "days": days, "playlist_ids": chosen}
                    | {"engine": engine},
                    prefix=comparison_prefix(as_of),
                    subject=COMPARISON_TITLE,
                    timeout_seconds=timeout_seconds,
                )
            )
    publish_index(lake_root)
    return results


def _unpublished(
    playlist_id: str,
    as_of: str | None,
    days: int,
    engine: str,
    *,
    refusal: EtlError | None = None,
) -> ReportResult:
    """The result of a report that published nothing: ``refusal`` says why the request makes
    no report; without one, the run's time was up before its turn (deferred)."""
    status = {
        "parameters": {"as_of": as_of, "days": days, "playlist_id": playlist_id, "engine": engine},
        "succeeded": False,
        "error": str(refusal) if refusal else "not started: the run's time was up",
        "failing_cell": None,
        "files": [],
    }
    return ReportResult(
        False, "", status, [], playlist_id=playlist_id, refused=refusal, deferred=not refusal
    )


def comparison_prefix(as_of: str) -> str:
    return f"{REPORTS}/{COMPARISONS}/{as_of}"


_CHARTED_PLAYLISTS = (
    "SELECT DISTINCT playlist_id FROM snapshots WHERE dt BETWEEN ? AND ? ORDER BY playlist_id"
)


def _check_days(days: int) -> None:
    longest = analysis.MAX_DAYS
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= longest:
        raise ConfigError(f"--days {days!r} is not a whole number from 1 to {longest}")


def check_comparison_request(
    lake_root: str,
    as_of: str,
    days: int,
    playlist_ids: list[str] | None,
    *,
    engine: str,
    settings=None,
) -> tuple[str, list[str]]:
    """The comparison's date and the playlists it compares (by default every playlist with a
    chart in the window, at least two), or ConfigError before a kernel starts."""
    as_of = _check_as_of(as_of)
    _check_days(days)
    wanted = [layout.check_playlist_id(p) for p in playlist_ids] if playlist_ids else None
    first_day, last_day = analysis.window_bounds(as_of, days)
    charted, _ = execute.run(
        lake_root, _CHARTED_PLAYLISTS, [first_day, last_day], engine=engine, settings=settings
    )
    found = [str(p) for p in charted["playlist_id"]]
    chosen = [p for p in wanted if p in found] if wanted else found
    missing = [p for p in wanted or [] if p not in found]
    if missing:
        raise ConfigError(
            f"no chart of playlist {', '.join(missing)} between {first_day} and {last_day}; "
            f"playlists with one: {', '.join(found) or 'none'}"
        )
    if len(chosen) < 2:
        raise ConfigError(
            f"a comparison needs two playlists with a chart between {first_day} and "
            f"{last_day}; found {', '.join(chosen) or 'none'}"
        )
    return as_of, chosen


def run_comparison_report(
    lake_root: str,
    *,
    as_of: str,
    days: int = 30,
    playlist_ids: list[str] | None = None,
    engine: str = "duckdb",
    settings=None,
    notebook: Path | None = None,
    timeout_seconds: int = 600,
) -> ReportResult:
    """Execute the report comparing charts (``COMPARISON_NOTEBOOK``) on one date and publish
    it under ``reports/compare/<as_of>/``, beside the playlists' reports in the index."""
    notebook = _notebook_file(notebook, COMPARISON_NOTEBOOK, "comparison")
    as_of, chosen = check_comparison_request(
        lake_root, as_of, days, playlist_ids, engine=engine, settings=settings
    )
    parameters = {"as_of": as_of, "days": days, "playlist_ids": chosen, "engine": engine}
    with (
        tempfile.TemporaryDirectory(prefix="reports-", ignore_cleanup_errors=True) as work,
        _Kernel(Path(work), cwd=notebook.parent) as kernel,
    ):
        result = _run_and_publish(
            lake_root,
            kernel,
            notebook=notebook,
            parameters=parameters,
            prefix=comparison_prefix(as_of),
            subject=COMPARISON_TITLE,
            timeout_seconds=timeout_seconds,
        )
    publish_index(lake_root)
    return result


def _run_and_publish(
    lake_root: str,
    kernel: _Kernel,
    *,
    notebook: Path,
    parameters: dict,
    prefix: str,
    subject: str,
    timeout_seconds: int,
    inputs: dict[str, pd.DataFrame] | None = None,
    playlist_id: str | None = None,
) -> ReportResult:
    """Execute ``notebook`` with ``parameters`` (plus the lake and the folders for charts and
    tables) in ``kernel``, handed ``inputs`` if given, and publish it under ``prefix``; the
    page is titled by the playlist name the notebook stated, else by ``subject``, and the
    date. The index of reports is the caller's to rebuild."""
    import shutil

    import papermill  # a second or more of imports: only once the request is known to be good

    started = datetime.now(UTC)
    clock = time.monotonic()
    work = kernel.new_folder()
    charts_dir, tables_dir = work / "charts", work / report_html.TABLES
    charts_dir.mkdir()
    tables_dir.mkdir()
    parameters = {
        **parameters,
        # the notebook runs in its own folder: a relative local lake must not move with it
        "lake": os.path.abspath(lake_root) if storage.is_local(lake_root) else lake_root,
        "output_dir": str(charts_dir),
        "tables_dir": str(tables_dir),
    }
    saved = inputs is not None and _save_inputs(work / "inputs", inputs)
    executed = work / "report.ipynb"
    outcome: dict = {"error": None, "failing_cell": None}
    log_start = kernel.log_size()
    failure: BaseException | None = None
    try:
        kernel.run_cell(_warm_up_code(parameters, work / "inputs" if saved else None))
        papermill.execute_notebook(
            str(notebook),
            str(executed),
            parameters=parameters,
            kernel_name="python3",
            progress_bar=False,
            execution_timeout=timeout_seconds,
            cwd=str(notebook.parent),
            km=kernel.ready(),  # passed on to nbclient, which then leaves the kernel running
        )
    except Exception as exc:  # noqa: BLE001 - every failure is reported in status.json
        failure = exc
        outcome = _failure(exc)
        logged = kernel.log_since(log_start)
        if logged is not None:
            outcome["kernel_log"] = logged[-20:]
    finally:
        kernel.after_run(failure)
    status = {
        "parameters": parameters
        | {"output_dir": "charts/", "tables_dir": f"{report_html.TABLES}/"},
        "started_at": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "duration_seconds": round(time.monotonic() - clock, 2),
        "succeeded": outcome["error"] is None,
        **outcome,
        "playlist_name": _playlist_name(executed) if executed.exists() else None,
    }
    files: list[tuple[str, bytes]] = []
    if executed.exists():
        files.append(("report.ipynb", executed.read_bytes()))
    as_of = parameters["as_of"]
    dates: list[str] = []
    if status["succeeded"]:
        dates = sorted(set(_report_dates(lake_root, prefix.rsplit("/", 1)[0])) | {as_of})
        title = report_html.page_title(status["playlist_name"] or subject, as_of)
        nav = report_html.nav_html(as_of, *report_html.neighbours(dates, as_of))
        page = _html_without_code(executed, title=title, nav=nav)
        files.append(("report.html", page.encode("utf-8")))
        files += [
            (f"{folder.name}/{item.name}", item.read_bytes())
            for folder in (charts_dir, tables_dir)
            for item in sorted(folder.iterdir())
            if item.is_file()
        ]
        target = prefix
    else:
        target = f"{prefix}/failed/{started:%Y%m%dT%H%M%SZ}"
    status["files"] = [name for name, _ in files]
    for name, data in files:
        storage.write_bytes(lake_root, f"{target}/{name}", data)
    # Written last: a reader that finds status.json finds the files it lists.
    status_bytes = json.dumps(status, indent=2, ensure_ascii=False).encode("utf-8")
    storage.write_bytes(lake_root, f"{target}/status.json", status_bytes)
    if not status["succeeded"] and not storage.exists(lake_root, f"{prefix}/status.json"):
        storage.write_bytes(lake_root, f"{prefix}/status.json", status_bytes)
    shutil.rmtree(work, ignore_errors=True)  # the next report's files take its place
    if status["succeeded"]:
        _relink_neighbours(lake_root, prefix.rsplit("/", 1)[0], dates, as_of)
    return ReportResult(
        status["succeeded"], target, status, status["files"], playlist_id=playlist_id
    )


def _report_dates(lake_root: str, series: str) -> list[str]:
    """The dates under ``series`` (``reports/<playlist_id>`` or ``reports/compare``) that have
    a good report."""
    page = re.compile(re.escape(series) + r"/(\d{4}-\d{2}-\d{2})/report\.html")
    found = (page.fullmatch(key) for key in storage.list_keys(lake_root, series, "report.html"))
    return [match[1] for match in found if match]


def _relink_neighbours(lake_root: str, series: str, dates: list[str], as_of: str) -> None:
    """Point the pages before and after ``as_of`` in ``series`` at it, so the links between
    dates stay consistent whatever order the dates were published in."""
    for neighbour in report_html.neighbours(dates, as_of):
        if neighbour is None:
            continue
        key = f"{series}/{neighbour}/report.html"
        page = storage.read_bytes(lake_root, key).decode("utf-8")
        nav = report_html.nav_html(neighbour, *report_html.neighbours(dates, neighbour))
        relinked = report_html.with_nav(page, nav)
        if relinked != page:
            storage.write_bytes(lake_root, key, relinked.encode("utf-8"))
