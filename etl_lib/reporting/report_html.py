"""Report pages: tables people read, their CSV files, and the links between dates.

``show_table`` is what a report notebook calls to show a DataFrame: names before ids (ids are
hidden or turned into links to ``https://open.spotify.com/``), headers in words, numbers with
thousands separators, shares as percentages, dates in ISO form, no index column and every value
escaped. The whole frame is also written as ``<tables_dir>/<name>.csv``, which ``run_report``
publishes as ``tables/<name>.csv`` beside ``report.html``; the table links to it.

The rest builds the parts of a published page that only the publishing step knows: its title,
and a ``<nav>`` with links to the index and to the nearest earlier and later dates that have a
report. The nav sits between two HTML comments, which the sanitizer removes from everything
else, so a later publication finds exactly that region and rewrites it.
"""

from __future__ import annotations

import html
import math
import re
from collections.abc import Iterable, Mapping
from datetime import date, datetime
from pathlib import Path

import pandas as pd

# reports publishes pages built here and holds the link rules both use: imported as a module.
from etl_lib.reporting import reports

TABLES = "tables"
# A table's name is a file name in the page's folder and in every CSV link.
_TABLE_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")

HEADERS = {
    "chart_rank": "Rank",
    "chart_date": "Date",
    "dt": "Date",
    "name": "Name",
    "track_name": "Track",
    "artist_name": "Artist",
    "album_name": "Album",
    "playlist_name": "Playlist",
    "artists": "Artists",
    "movement": "Move",
    "previous_rank": "Previous",
    "peak_rank": "Peak",
    "days_on_chart": "Days on chart",
    "first_seen": "First seen",
    "last_seen": "Last seen",
    "rank_change": "Change",
    "share": "Share",
}
# Columns read before the name on a chart: "3  Song title", as charts print them.
_LEADING = ("chart_rank", "rank", "position", "status")
_NAMES = ("track_name", "name", "artist_name", "album_name", "playlist_name", "artists")
# The object a name column names, by the id (or URL) column beside it, most specific first.
_LINK_KINDS = {
    "track_name": ("track",),
    "artist_name": ("artist",),
    "album_name": ("album",),
    "playlist_name": ("playlist",),
    "name": ("track", "artist", "album", "playlist"),
}
# Text a spreadsheet would run as a formula when the CSV is opened (OWASP's list).
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# Inline styles, so a table reads the same in JupyterLab as in the published page.
_NUMBER_STYLE = ' style="text-align: right; white-space: nowrap"'
_SHORT_TEXT_STYLE = ' style="text-align: left; white-space: nowrap"'
_TEXT_STYLE = ' style="text-align: left"'
# Text columns whose values are all this short (dates, "down 2") do not wrap.
_SHORT_TEXT = 16


def header_text(column: str) -> str:
    """``days_on_chart`` as ``Days on chart``; a few columns have shorter chart words."""
    return HEADERS.get(column) or column.replace("_", " ").strip().capitalize() or column


def is_hidden(column: str) -> bool:
    """Ids and URLs are for links and the CSV file, not for reading."""
    return column in ("id", "url") or column.endswith(("_id", "_url"))


def default_columns(frame: pd.DataFrame) -> list[str]:
    """The columns shown when none are given: rank first, then names, then the rest."""
    shown = [column for column in frame.columns if not is_hidden(str(column))]
    leading = [c for c in shown if c in _LEADING]
    names = [c for c in shown if c in _NAMES and c not in leading]
    return leading + names + [c for c in shown if c not in leading and c not in names]


def default_links(frame: pd.DataFrame) -> dict[str, str | tuple[str, str]]:
    """Each name column linked by the id beside it (``track_name`` by ``track_id``), or by
    its URL column when there is no id."""
    links: dict[str, str | tuple[str, str]] = {}
    for column, kinds in _LINK_KINDS.items():
        if column not in frame.columns:
            continue
        for kind in kinds:
            if f"{kind}_id" in frame.columns:
                links[column] = (kind, f"{kind}_id")
                break
            if column != "name" and f"{kind}_url" in frame.columns:
                links[column] = f"{kind}_url"
                break
    return links


def is_missing(value) -> bool:
    """A NULL of any kind pandas gives a cell: None, NA, NaT or NaN."""
    if value is None or value is pd.NA or value is pd.NaT:
        return True
    return isinstance(value, float) and math.isnan(value)


def format_value(value, *, percent: bool = False, signed: bool = False) -> str:
    """``value`` as a reader wants it, not escaped: ``12,345``, ``12.9%``, ``2026-10-31``;
    with ``signed``, a change: ``+3``, ``−2``."""
    if is_missing(value):
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple)) or hasattr(value, "tolist"):
        items = value.tolist() if hasattr(value, "tolist") else value
        if isinstance(items, list):
            return ", ".join(format_value(item) for item in items)
        value = items  # a NumPy scalar
    if isinstance(value, (pd.Timestamp, datetime)):
        if value.tzinfo is None and value == value.replace(hour=0, minute=0, second=0):
            return value.date().isoformat() if value.microsecond == 0 else value.isoformat()
        zone = " UTC" if value.tzinfo is not None and value.utcoffset().total_seconds() == 0 else ""
        return f"{value:%Y-%m-%d %H:%M}{zone}"
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float) and value.is_integer() and not percent:
        value = int(value)
    if isinstance(value, int):
        text = f"{value:+,}" if signed and value else f"{value:,}"
    elif isinstance(value, float):
        text = f"{value:.1%}" if percent else f"{value:{'+' if signed else ''},.1f}"
    else:
        return str(value)
    return text.replace("-", "\N{MINUS SIGN}") if signed else text


def _is_numeric(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def _link_url(row: Mapping, target: str | tuple[str, str]) -> str | None:
    if isinstance(target, tuple):
        kind, id_column = target
        object_id = row.get(id_column)
        if is_missing(object_id) or object_id == "":
            return None
        return reports.spotify_object_url(kind, str(object_id))
    return reports.spotify_url(row.get(target))


def table_html(
    frame: pd.DataFrame,
    *,
    columns: Iterable[str] | Mapping[str, str] | None = None,
    links: Mapping[str, str | tuple[str, str]] | None = None,
    percent: Iterable[str] | None = None,
    limit: int | None = None,
    csv_href: str | None = None,
) -> str:
    """``frame`` as an HTML table, every value escaped, without its index.

    ``columns``: the columns to show in order, or a mapping of column to header; by default
    every column but ids and URLs (``default_columns``). ``links``: for a shown column, the
    column holding its URL or a ``(kind, id column)`` pair such as ``("track", "track_id")``;
    by default names link by the id beside them (``default_links``); only links to
    open.spotify.com are made. ``percent``: columns of fractions shown as percentages (by
    default, columns named ``share`` or ending in ``_share``). ``limit``: the rows shown (the
    CSV has all). ``csv_href``: a relative link to the table's CSV file.
    """
    if isinstance(columns, Mapping):
        headers = {str(column): str(header) for column, header in columns.items()}
    else:
        shown = default_columns(frame) if columns is None else list(columns)
        headers = {column: header_text(column) for column in shown}
    unknown = [column for column in headers if column not in frame.columns]
    if unknown:
        raise KeyError(f"no column {', '.join(map(repr, unknown))} in the table")
    links = default_links(frame) if links is None else dict(links)
    if percent is None:
        percent = [c for c in frame.columns if str(c) == "share" or str(c).endswith("_share")]
    percent = set(percent)
    signed = {c for c in headers if c == "change" or c.endswith("_change")}
    shown_rows = frame if limit is None else frame.head(limit)
    records = shown_rows.to_dict("records")
    texts = {
        column: [
            format_value(row[column], percent=column in percent, signed=column in signed)
            for row in records
        ]
        for column in headers
    }
    styles = {
        column: _NUMBER_STYLE
        if _is_numeric(frame[column])
        else _SHORT_TEXT_STYLE
        if all(len(text) <= _SHORT_TEXT for text in texts[column])
        else _TEXT_STYLE
        for column in headers
    }

    head = "".join(
        f"<th{styles[column]}>{html.escape(header)}</th>" for column, header in headers.items()
    )
    body = []
    for number, row in enumerate(records):
        cells = []
        for column in headers:
            text = texts[column][number]
            target = links.get(column)
            url = _link_url(row, target) if target is not None and text else None
            content = reports.link_html(text, url) if url else html.escape(text)
            cells.append(f"<td{styles[column]}>{content}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    if not body:
        body.append(f'<tr><td colspan="{len(headers)}">No rows.</td></tr>')
    # tex2jax_ignore: JupyterLab typesets $...$ in outputs, and names are text.
    table = (
        '<table class="report-table tex2jax_ignore">'
        f"<thead><tr>{head}</tr></thead><tbody>{''.join(body)}</tbody></table>"
    )
    notes = []
    if limit is not None and len(frame) > limit:
        notes.append(f"The first {limit:,} of {len(frame):,} rows.")
    if csv_href is not None:
        notes.append(f'<a href="{html.escape(csv_href)}" download>Download CSV</a>')
    note = f'<p class="table-note">{" ".join(notes)}</p>' if notes else ""
    return f'<div class="report-table-wrap">{table}{note}</div>'


def check_table_name(name: str) -> str:
    if not isinstance(name, str) or not _TABLE_NAME.fullmatch(name):
        raise ValueError(
            f"table name {name!r} is not a file name like 'top_10' "
            "(lower-case letters, digits, '_' and '-')"
        )
    return name


def _csv_safe(value):
    if isinstance(value, str) and value.startswith(_FORMULA_START):
        return "'" + value
    return value


def csv_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """``frame`` as written to its CSV file: every column, no index, whole numbers without a
    decimal point, and text that a spreadsheet would run as a formula (``=HYPERLINK(...)``)
    led by a ``'``."""
    written = frame.reset_index(drop=True).copy()
    for column in written.columns:
        values = written[column]
        if not _is_numeric(values):
            written[column] = values.map(_csv_safe)
        elif pd.api.types.is_float_dtype(values) and (values.dropna() % 1 == 0).all():
            # Ranks with gaps (a new entry has no previous rank) stay whole numbers: "3", not "3.0".
            written[column] = values.astype("Int64")
    return written


def write_csv(frame: pd.DataFrame, tables_dir: str | Path, name: str) -> Path:
    """``<tables_dir>/<name>.csv`` holding ``csv_frame(frame)``; its path."""
    folder = Path(tables_dir)
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{check_table_name(name)}.csv"
    csv_frame(frame).to_csv(path, index=False, encoding="utf-8")
    return path


def show_table(
    frame: pd.DataFrame,
    *,
    name: str,
    columns: Iterable[str] | Mapping[str, str] | None = None,
    links: Mapping[str, str | tuple[str, str]] | None = None,
    percent: Iterable[str] | None = None,
    limit: int | None = None,
    tables_dir: str | Path | None = None,
) -> None:
    """Display ``frame`` in the notebook as ``table_html`` renders it.

    With ``tables_dir``, the whole frame is also written to ``<tables_dir>/<name>.csv`` and
    the table links to ``tables/<name>.csv``, where ``run_report`` publishes it beside
    ``report.html``; without it nothing is written and there is no link.
    """
    from IPython.display import HTML, display

    check_table_name(name)
    csv_href = None
    if tables_dir is not None:
        write_csv(frame, tables_dir, name)
        csv_href = f"{TABLES}/{name}.csv"
    display(
        HTML(
            table_html(
                frame,
                columns=columns,
                links=links,
                percent=percent,
                limit=limit,
                csv_href=csv_href,
            )
        )
    )


# ---------------------------------------------------------------------------------------------
# The page around a report


NAV_START = "<!-- report-dates -->"
NAV_END = "<!-- /report-dates -->"
_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")


def page_title(subject: object, as_of: str) -> str:
    """The page's title, "Top Songs - Global — 2026-10-31" (not escaped: the exporter does)."""
    shown = subject if isinstance(subject, str) and subject.strip() else "Report"
    return f"{shown} — {as_of}"


def neighbours(dates: Iterable[str], as_of: str) -> tuple[str | None, str | None]:
    """The nearest date before ``as_of`` and after it among ``dates``, or None."""
    earlier = [day for day in dates if day < as_of]
    later = [day for day in dates if day > as_of]
    return (max(earlier) if earlier else None, min(later) if later else None)


def nav_html(as_of: str, earlier: str | None, later: str | None) -> str:
    """Links from ``<series>/<as_of>/report.html`` to the index and the neighbouring dates,
    between the ``NAV_START`` and ``NAV_END`` markers."""
    for day in (as_of, earlier, later):
        if day is not None and not _DATE.fullmatch(day):
            raise ValueError(f"not a report date: {day!r}")

    def date_link(day: str | None, text: str, rel: str) -> str:
        if day is None:
            return f'<span class="report-nav-none">{text}</span>'
        return f'<a href="../{day}/report.html" rel="{rel}">{text}</a>'

    earlier_text = f"← {earlier}" if earlier else "← no earlier report"
    later_text = f"{later} →" if later else "no later report →"
    return (
        f'{NAV_START}<nav class="report-nav" aria-label="Reports">'
        '<a href="../../index.html">All reports</a>'
        f"{date_link(earlier, earlier_text, 'prev')}"
        f'<span class="report-nav-current">{as_of}</span>'
        f"{date_link(later, later_text, 'next')}"
        f"</nav>{NAV_END}"
    )


def with_nav(page: str, nav: str) -> str:
    """``page`` with its nav region replaced by ``nav``, or ``nav`` put first in ``<main>``
    on a page published before there was one."""
    start = page.find(NAV_START)
    end = page.find(NAV_END, start)
    if start != -1 and end != -1:
        return page[:start] + nav + page[end + len(NAV_END) :]
    opening = page.find("<main>")
    if opening == -1:
        raise ValueError("a report page without <main>")
    opening += len("<main>")
    return page[:opening] + nav + page[opening:]
