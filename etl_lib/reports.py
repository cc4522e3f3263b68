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

import html
import json
import os
import re
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from urllib.parse import quote, urlsplit

import pandas as pd

from etl_lib import analysis, envelope, lake, sql, warehouse
from etl_lib.errors import ConfigError

REPORT_NOTEBOOK = (
    Path(__file__).resolve().parent.parent / "notebooks" / "reports" / ("top_songs_trends.ipynb")
)
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

    @property
    def error(self) -> str | None:
        return self.status.get("error")

    def url(self, lake_root: str, name: str) -> str:
        return lake.url(lake_root, f"{self.output_prefix}/{name}")


def input_queries(
    playlist_id: str, as_of: date | str, days: int
) -> dict[str, tuple[str, list]]:
    """The report's queries (``etl_lib/sql/report``), each with its bound parameters: the
    window's daily charts, the latest track, album, credit and artist attributes seen in the
    window, and the playlist's freshness. Each reads only the window's days."""
    first_day, last_day = analysis.window_bounds(as_of, days)
    window = [first_day, last_day]
    params = {
        "daily": [playlist_id, *window],
        "freshness": [playlist_id, *window],
        "credits": [*window, *window],
    }
    return {
        name: (statement, params.get(name, window))
        for name, statement in sql.shipped("report").items()
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
    """The frames the report notebook charts, one per query of ``input_queries``."""
    statements = input_queries(playlist_id, as_of, days)
    if engine == "duckdb":
        # The tables are planned for the window's days only (the queries filter on them too).
        window = analysis.window_bounds(as_of, days)
        return warehouse.query_all(lake_root, statements, days=window)
    return {
        name: warehouse.run(lake_root, statement, bound, engine=engine, settings=settings)[0]
        for name, (statement, bound) in statements.items()
    }


def report_prefix(playlist_id: str, as_of: str) -> str:
    return f"{REPORTS}/{lake.check_playlist_id(playlist_id)}/{as_of}"


_CHART_DAYS = (
    "SELECT min(dt) AS first_day, max(dt) AS last_day FROM snapshots WHERE playlist_id = ?"
)


def _check_as_of(as_of: str) -> str:
    try:
        day = date.fromisoformat(as_of)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"--as-of {as_of!r} is not a date like 2026-10-31") from exc
    if not envelope.EARLIEST.date() <= day <= envelope.LATEST.date():
        raise ConfigError(f"--as-of {as_of} is outside {envelope.TIME_RANGE}: pass a chart date")
    return day.isoformat()


def check_request(
    lake_root: str, playlist_id: str, as_of: str, days: int, *, engine: str, settings=None
) -> str:
    """The report's date, once the request is known to make a report; else ConfigError.

    Checked before a kernel starts, so a mistyped date or window says so in one line instead
    of failing inside the notebook and leaving a failed report for a date with no chart.
    """
    lake.check_playlist_id(playlist_id)
    as_of = _check_as_of(as_of)
    longest = analysis.MAX_DAYS
    if isinstance(days, bool) or not isinstance(days, int) or not 1 <= days <= longest:
        raise ConfigError(f"--days {days!r} is not a whole number from 1 to {longest}")
    first_day, last_day = analysis.window_bounds(as_of, days)
    in_window, _ = warehouse.run(
        lake_root,
        _CHART_DAYS + " AND dt BETWEEN ? AND ?",
        [playlist_id, first_day, last_day],
        engine=engine,
        settings=settings,
    )
    if not pd.isna(in_window["first_day"].iloc[0]):
        return as_of
    # Only to say which dates would work: every day of the playlist's snapshots.
    charted, _ = warehouse.run(
        lake_root, _CHART_DAYS, [playlist_id], engine=engine, settings=settings
    )
    first_chart, last_chart = charted["first_day"].iloc[0], charted["last_day"].iloc[0]
    if pd.isna(first_chart):
        raise ConfigError(
            f"no chart data for playlist {playlist_id} in lake {lake_root}: run "
            "`spotify-etl run` (or extract and transform) first"
        )
    if last_day < str(first_chart) or str(last_chart) < first_day:
        raise ConfigError(
            f"no chart of playlist {playlist_id} between {first_day} and {last_day}: its charts "
            f"run from {first_chart} to {last_chart}; pass an --as-of in that range"
        )
    return as_of


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
    """The report's opening line, every value escaped; the name links to the playlist."""
    name = playlist_name if isinstance(playlist_name, str) and playlist_name else playlist_id
    newest_text = "none" if newest is None or pd.isna(newest) else f"{newest:%Y-%m-%d %H:%M} UTC"
    e = html.escape
    return (
        f"<p><strong>{link_html(name, spotify_object_url('playlist', playlist_id))}</strong> "
        f"(<code>{e(playlist_id)}</code>), window <strong>{e(first_day)} to {e(last_day)}"
        f"</strong> ({int(days)} days, {int(chart_days)} with a chart). Newest snapshot in the "
        f"lake: <strong>{e(newest_text)}</strong>. Engine: {e(engine)}.</p>"
    )


def display_header(
    freshness: pd.DataFrame,
    daily: pd.DataFrame,
    *,
    playlist_id: str,
    as_of: date | str,
    days: int,
    engine: str,
) -> None:
    """Show ``header_html`` in the report notebook, the output tagged with the playlist's
    name (``PLAYLIST_NAME_METADATA``) for status.json and the index."""
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
        chart_days=daily["chart_date"].nunique(),
        newest=freshness["newest"].iloc[0] if len(freshness) else None,
        engine=engine,
    )
    display(HTML(header), metadata={PLAYLIST_NAME_METADATA: name})


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
)
_GLOBAL_ATTRIBUTES = frozenset({"class", "id", "style", "title", "lang", "dir", "tabindex"})
_STYLE_PROPERTIES = frozenset(
    {"text-align", "vertical-align", "width", "height", "max-width", "opacity", "fill"}
    | {"fill-opacity", "fill-rule", "stroke", "stroke-width", "stroke-opacity", "stroke-linecap"}
    | {"stroke-linejoin", "stroke-miterlimit", "stroke-dasharray", "stroke-dashoffset"}
)
_DATA_IMAGE = re.compile(r"data:image/(?:png|jpeg|gif|webp|svg\+xml);base64,[A-Za-z0-9+/=\s]*")
_RELATIVE_PATH = re.compile(r"[A-Za-z0-9._~%/-]+")
_LOCAL_REFERENCE = re.compile(r"url\(\s*#[A-Za-z0-9_.:-]+\s*\)", re.IGNORECASE)


def _allowed_url(element: str, attribute: str, value: str, relative_links: bool) -> bool:
    if value.startswith("#"):  # the page's own anchors, SVG <use> and clip-path references
        return True
    if element == "img" and attribute == "src":
        return bool(_DATA_IMAGE.fullmatch(value))  # images travel inside the page
    if relative_links and _RELATIVE_PATH.fullmatch(value) and not value.startswith("//"):
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


# A template of our own: nbconvert's lab page without its <script> elements (require.js,
# MathJax, mermaid and widgets, all loaded from CDNs), so the page runs no code at all.
_REPORT_TEMPLATE = """{%- extends 'lab/index.html.j2' -%}
{%- block html_head_js -%}{%- endblock html_head_js -%}
{%- block jupyter_widgets -%}{%- endblock jupyter_widgets -%}
{%- block html_head_js_mathjax -%}{%- endblock html_head_js_mathjax -%}
{%- block html_head_js_mermaidjs -%}{%- endblock html_head_js_mermaidjs -%}
"""


def _html_without_code(notebook_path: Path) -> str:
    """The executed notebook as one HTML page without code cells, sanitized.

    The page's head (CSS, title) comes from nbconvert's template alone; everything between
    ``<main>`` and ``</main>`` (markdown cells and outputs) goes through ``sanitize_html``.
    """
    from jinja2 import DictLoader
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(
        extra_loaders=[DictLoader({"report.html.j2": _REPORT_TEMPLATE})],
        template_file="report.html.j2",
        exclude_input=True,
        exclude_input_prompt=True,
        exclude_output_prompt=True,
    )
    page, _ = exporter.from_filename(str(notebook_path))
    start = page.index("<main>") + len("<main>")
    end = page.rindex("</main>")
    return page[:start] + sanitize_html(page[start:end]) + page[end:]


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


_STATUS_KEY = re.compile(
    rf"{REPORTS}/(?P<playlist_id>[A-Za-z0-9]{{1,64}})/(?P<as_of>\d{{4}}-\d{{2}}-\d{{2}})/"
    r"(?:failed/(?P<stamp>\d{8}T\d{6}Z)/)?(?P<name>status\.json|report\.html)"
)


@dataclass
class IndexEntry:
    """One playlist and date under ``reports/``: its good report, if any, and failed runs."""

    playlist_id: str
    as_of: str
    has_report: bool = False
    failed_stamps: list[str] = field(default_factory=list)
    playlist_name: str | None = None


def index_entries(keys: list[str]) -> list[IndexEntry]:
    """The playlists and dates that have a report or a failed run, newest date first."""
    entries: dict[tuple[str, str], IndexEntry] = {}
    for key in keys:
        found = _STATUS_KEY.fullmatch(key)
        if not found:
            continue
        entry = entries.setdefault(
            (found["playlist_id"], found["as_of"]),
            IndexEntry(found["playlist_id"], found["as_of"]),
        )
        if found["stamp"] and found["name"] == "status.json":
            entry.failed_stamps.append(found["stamp"])
        elif not found["stamp"] and found["name"] == "report.html":
            entry.has_report = True
    for entry in entries.values():
        entry.failed_stamps.sort()
    return sorted(entries.values(), key=lambda e: (e.as_of, e.playlist_id), reverse=True)


_INDEX_CSS = """body { font: 15px/1.45 system-ui, sans-serif; margin: 2em auto; max-width: 60em;
  padding: 0 1em; color: #222; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 0.35em 0.7em; border-bottom: 1px solid #ddd;
  vertical-align: top; }
td:first-child { white-space: nowrap; }
code { color: #555; }
.failed { color: #b00020; font-weight: bold; }
.note { color: #8a5a00; }"""


def index_html(entries: list[IndexEntry]) -> str:
    """The page listing ``entries``; links are relative to ``reports/``, names escaped."""
    rows = []
    for entry in entries:
        base = f"{quote(entry.playlist_id)}/{quote(entry.as_of)}"
        name = html.escape(entry.playlist_name or entry.playlist_id)
        playlist = f"{name}<br><code>{html.escape(entry.playlist_id)}</code>"
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
            f"<tr><td>{html.escape(entry.as_of)}</td><td>{playlist}</td>"
            f"<td>{report}</td><td>{outcome}</td></tr>"
        )
    table = (
        "<table><thead><tr><th>Date</th><th>Playlist</th><th>Report</th><th>Run</th></tr>"
        "</thead><tbody>\n" + "\n".join(rows) + "\n</tbody></table>"
        if rows
        else "<p>No reports yet.</p>"
    )
    body = sanitize_html(f"<h1>Reports</h1>\n{table}", relative_links=True)
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
    keys = list(lake.list_keys(lake_root, REPORTS))
    entries = index_entries(keys)
    newest_good: dict[str, IndexEntry] = {}
    for entry in entries:  # newest first
        if entry.has_report:
            newest_good.setdefault(entry.playlist_id, entry)
    listed = set(keys)
    names = {pid: _recorded_name(lake_root, entry, listed) for pid, entry in newest_good.items()}
    for entry in entries:
        entry.playlist_name = names.get(entry.playlist_id)
    lake.write_bytes(lake_root, INDEX, index_html(entries).encode("utf-8"))
    return INDEX


def _recorded_name(lake_root: str, entry: IndexEntry, listed: set[str]) -> str | None:
    key = f"{report_prefix(entry.playlist_id, entry.as_of)}/status.json"
    if key not in listed:
        return None
    try:
        name = json.loads(lake.read_bytes(lake_root, key)).get("playlist_name")
    except ValueError:
        return None
    return name if isinstance(name, str) else None


KERNEL_LOG = "kernel.log"


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

        async def start_kernel(self, **kwargs):
            # The kernel's own log goes to a file, not the user's terminal: when the report
            # is interrupted, its shutdown tracebacks are noise; when it dies, status.json
            # quotes the file's end.
            with open(folder / KERNEL_LOG, "ab") as log:
                await super().start_kernel(**kwargs, stderr=log)

    return PrivateKernelManager


def run_report(
    lake_root: str,
    *,
    playlist_id: str,
    as_of: str,
    days: int = 30,
    engine: str = "duckdb",
    notebook: Path | None = None,
    timeout_seconds: int = 600,
) -> ReportResult:
    """Execute the report for one playlist and date, and publish it in the lake."""
    import papermill

    # The Lambda image keeps the notebook outside the installed package; it says where.
    notebook = Path(notebook or os.environ.get("SPOTIFY_ETL_REPORT_NOTEBOOK") or REPORT_NOTEBOOK)
    if not notebook.is_file():
        raise ConfigError(f"report notebook {notebook} not found: set SPOTIFY_ETL_REPORT_NOTEBOOK")
    as_of = check_request(lake_root, playlist_id, as_of, days, engine=engine)
    prefix = report_prefix(playlist_id, as_of)
    started = datetime.now(UTC)
    clock = time.monotonic()
    # ignore_cleanup_errors: a kernel stopped by Ctrl-C may still be removing its sockets.
    with tempfile.TemporaryDirectory(prefix="report-", ignore_cleanup_errors=True) as workdir:
        work = Path(workdir)
        charts_dir = work / "charts"
        charts_dir.mkdir()
        parameters = {
            "as_of": as_of,
            "days": days,
            "playlist_id": playlist_id,
            "engine": engine,
            # the notebook runs in its own folder: a relative local lake must not move with it
            "lake": os.path.abspath(lake_root) if lake.is_local(lake_root) else lake_root,
            "output_dir": str(charts_dir),
        }
        executed = work / "report.ipynb"
        outcome: dict = {"error": None, "failing_cell": None}
        try:
            papermill.execute_notebook(
                str(notebook),
                str(executed),
                parameters=parameters,
                kernel_name="python3",
                progress_bar=False,
                execution_timeout=timeout_seconds,
                cwd=str(notebook.parent),
                kernel_manager_class=_private_kernel_manager(work),
            )
        except Exception as exc:  # noqa: BLE001 - every failure is reported in status.json
            outcome = _failure(exc)
            kernel_log = work / KERNEL_LOG
            if kernel_log.exists():
                tail = kernel_log.read_text(encoding="utf-8", errors="replace").splitlines()
                outcome["kernel_log"] = tail[-20:]
        status = {
            "parameters": parameters | {"output_dir": "charts/"},
            "started_at": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "duration_seconds": round(time.monotonic() - clock, 2),
            "succeeded": outcome["error"] is None,
            **outcome,
            "playlist_name": _playlist_name(executed) if executed.exists() else None,
        }
        files: list[tuple[str, bytes]] = []
        if executed.exists():
            files.append(("report.ipynb", executed.read_bytes()))
        if status["succeeded"]:
            files.append(("report.html", _html_without_code(executed).encode("utf-8")))
            files += [
                (f"charts/{chart.name}", chart.read_bytes())
                for chart in sorted(charts_dir.iterdir())
            ]
            target = prefix
        else:
            target = f"{prefix}/failed/{started:%Y%m%dT%H%M%SZ}"
        status["files"] = [name for name, _ in files]
        for name, data in files:
            lake.write_bytes(lake_root, f"{target}/{name}", data)
        # Written last: a reader that finds status.json finds the files it lists.
        status_bytes = json.dumps(status, indent=2, ensure_ascii=False).encode("utf-8")
        lake.write_bytes(lake_root, f"{target}/status.json", status_bytes)
        if not status["succeeded"] and not lake.exists(lake_root, f"{prefix}/status.json"):
            lake.write_bytes(lake_root, f"{prefix}/status.json", status_bytes)
    publish_index(lake_root)
    return ReportResult(status["succeeded"], target, status, status["files"])
