"""Hostile names: markup and script URLs in every text field of a payload never run.

Anyone can name a public playlist, and track, album and artist names come from whoever
uploaded them. A lake is built whose raw envelopes carry script tags, Markdown
``javascript:`` links, ``<img onerror>`` and attribute break-outs in every name and
description, and ``javascript:``/``data:`` URLs as every Spotify link; the report, the index
of reports and the exploration notebook are then read back with an HTML parser.
"""

from __future__ import annotations

import json
import posixpath
import re
from datetime import UTC, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote

import pytest

from etl_lib import pipeline
from etl_lib.extract import envelope
from etl_lib.lake import storage
from etl_lib.local_spotify import ChartSimulator
from etl_lib.reporting import charts, reports
from etl_lib.warehouse import catalog, execute

pytestmark = [pytest.mark.faults, pytest.mark.timeout(90)]

ROOT = Path(__file__).resolve().parents[2]
PLAYLIST = "37i9dQZEVXbNG2KDcFcKOF"
AS_OF = "2026-10-31"
FAILED_AS_OF = "2026-10-30"
DAYS = 3
PAYLOADS = (
    "<script>alert(1)</script>",
    "[x](javascript:alert(1))",
    "<img src=x onerror=alert(1)>",
    '"><svg onload=alert(1)>',
)
BAD_URLS = ("javascript:alert(1)", "data:text/html,<script>alert(1)</script>")
TEXT_FIELDS = ("name", "description", "display_name")
URL_ATTRIBUTES = {"href", "src", "xlink:href", "action", "formaction", "srcset", "poster", "data"}
SPOTIFY_WEB = "https://open.spotify.com/"


def hostile_text(number: int) -> str:
    """All payloads, rotated so each one starts some name (tables cut long names short)."""
    shift = number % len(PAYLOADS)
    return " ".join(PAYLOADS[shift:] + PAYLOADS[:shift]) + f" #{number}"


def poison(value, numbers: dict[tuple[str, str], int]):
    """``value`` with every name and description hostile and every Spotify link a script.

    Objects are numbered per type in order of appearance (the same id keeps its number), so
    consecutive tracks, and artists, start with different payloads.
    """
    if isinstance(value, list):
        return [poison(item, numbers) for item in value]
    if not isinstance(value, dict):
        return value
    kind = str(value.get("type", "object"))
    key = (kind, str(value.get("id")))
    if key not in numbers:
        numbers[key] = sum(seen == kind for seen, _ in numbers) + 1
    number = numbers[key]
    poisoned = {}
    for field, item in value.items():
        if field in TEXT_FIELDS and isinstance(item, str):
            poisoned[field] = hostile_text(number)
        elif field == "external_urls":
            poisoned[field] = {"spotify": BAD_URLS[number % len(BAD_URLS)]}
        elif field == "images":
            poisoned[field] = [{"url": BAD_URLS[0], "height": None, "width": None}]
        else:
            poisoned[field] = poison(item, numbers)
    return poisoned


def build_hostile_lake(lake_root: str) -> str:
    """Three daily snapshots landed, transformed and cataloged; returns the playlist name."""
    simulator = ChartSimulator(chart_size=12)
    last = datetime(2026, 10, 31, 6, tzinfo=UTC)
    playlist_name = PAYLOADS[0]
    for offset in range(DAYS):
        moment = last - timedelta(days=DAYS - 1 - offset)
        numbers: dict[tuple[str, str], int] = {}
        playlist = poison(simulator.playlist(PLAYLIST, moment.date()), numbers)
        playlist["name"] = playlist_name = hostile_text(offset)
        entries = poison(simulator.chart(PLAYLIST, moment.date()), numbers)
        page = {
            "href": f"https://api.spotify.com/v1/playlists/{PLAYLIST}/items",
            "items": entries,
            "limit": 50,
            "next": None,
            "offset": 0,
            "previous": None,
            "total": len(entries),
        }
        payload = envelope.make_envelope(playlist, [page], moment, {"kind": "import"})
        # The envelope keeps only a few playlist fields; the rest is carried hostile too.
        payload["playlist"] |= {
            key: playlist[key] for key in ("description", "external_urls", "images", "owner")
        }
        assert pipeline.land_raw(lake_root, payload).written
    summary = pipeline.transform(lake_root)
    assert len(summary.transformed) == DAYS and not summary.quarantined
    catalog.build_catalog(lake_root)
    return playlist_name


class Page(HTMLParser):
    """Every element with its attributes, and the text a reader sees, in document order."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.texts: list[str] = []
        self._skip = 0  # inside <style>: CSS, not text
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, {name: value or "" for name, value in attrs}))
        self._skip += tag == "style"

    def handle_startendtag(self, tag, attrs):
        self.elements.append((tag, {name: value or "" for name, value in attrs}))

    def handle_endtag(self, tag):
        if tag == "style" and self._skip:
            self._skip -= 1

    def handle_data(self, data):
        if not self._skip:
            self.texts.append(data)

    @property
    def text(self) -> str:
        return "".join(self.texts)


def assert_nothing_live(
    page: Page, *, relative_links: bool = False, up_links: bool = False
) -> None:
    """No script, no event handler, no embedded document, no link but open.spotify.com (and,
    with ``relative_links``, plain paths below the page; with ``up_links``, also above it)."""
    tags = [tag for tag, _ in page.elements]
    for forbidden in ("script", "iframe", "object", "embed", "form", "base", "frame", "link"):
        assert forbidden not in tags, forbidden
    for tag, attributes in page.elements:
        for name, value in attributes.items():
            assert not name.startswith("on"), (tag, name, value)
            folded = re.sub(r"\s", "", value).lower()
            assert "javascript:" not in folded and "vbscript:" not in folded, (tag, name)
            if name == "http-equiv":
                assert value.lower() != "refresh"
            if name not in URL_ATTRIBUTES:
                continue
            if value.startswith(("#", SPOTIFY_WEB)):
                continue
            if tag == "img" and name == "src" and value.startswith("data:image/"):
                continue
            assert relative_links and re.fullmatch(r"[A-Za-z0-9._~%/-]+", value), (tag, name)
            assert not value.startswith("/") and (up_links or ".." not in value), value


@pytest.fixture(scope="module")
def hostile_lake(tmp_path_factory) -> tuple[str, str]:
    root = str(tmp_path_factory.mktemp("hostile") / "lake")
    return root, build_hostile_lake(root)


@pytest.fixture(scope="module")
def published(hostile_lake, tmp_path_factory):
    """A good report for AS_OF and a failed run for FAILED_AS_OF, both published."""
    root, _ = hostile_lake
    good = reports.run_report(root, playlist_id=PLAYLIST, as_of=AS_OF, days=30)
    assert good.succeeded, good.status
    notebook = json.loads(reports.REPORT_NOTEBOOK.read_text())
    notebook["cells"] = notebook["cells"][:2] + [
        {
            "cell_type": "code",
            "metadata": {},
            "execution_count": None,
            "outputs": [],
            "source": ["raise RuntimeError('<script>alert(1)</script> in a failing cell')"],
        }
    ]
    broken = tmp_path_factory.mktemp("broken") / "broken.ipynb"
    broken.write_text(json.dumps(notebook))
    failed = reports.run_report(
        root, playlist_id=PLAYLIST, as_of=FAILED_AS_OF, days=30, notebook=broken
    )
    assert not failed.succeeded
    return root, good, failed


def test_the_lake_holds_the_hostile_values_unchanged(hostile_lake):
    root, playlist_name = hostile_lake
    newest = execute.query(
        root, "SELECT playlist_name FROM snapshots ORDER BY extracted_at DESC LIMIT 1"
    )
    urls = execute.query(root, "SELECT DISTINCT spotify_url FROM latest_tracks")
    assert newest["playlist_name"].tolist() == [playlist_name]
    # Values are data, kept as they came; escaping is the job of whatever shows them.
    assert set(urls["spotify_url"]) <= set(BAD_URLS)


def test_report_html_runs_nothing_and_shows_every_name_as_text(published):
    root, good, _ = published
    page = Page(storage.read_bytes(root, f"{good.output_prefix}/report.html").decode("utf-8"))

    # Relative links: the index and the neighbouring dates (in the nav) and each table's CSV.
    assert_nothing_live(page, relative_links=True, up_links=True)
    # The page keeps nbconvert's stylesheet; only the script elements are gone.
    assert any(tag == "style" for tag, _ in page.elements)
    assert "jp-Notebook" in next(attrs["class"] for tag, attrs in page.elements if tag == "body")
    # The playlist name is shown whole, as text, and links only to the playlist on Spotify.
    assert good.status["playlist_name"] in page.text
    links = [attrs["href"] for tag, attrs in page.elements if tag == "a" and "href" in attrs]
    assert f"{SPOTIFY_WEB}playlist/{PLAYLIST}" in links
    for link in links:
        if not link.startswith(("#", SPOTIFY_WEB)):
            target = posixpath.normpath(f"{good.output_prefix}/{unquote(link)}")
            assert storage.exists(root, target), link
    # Track and artist names fill the tables as text: each payload starts some of them.
    cells = [text.strip() for text in page.texts]
    for payload in PAYLOADS:
        assert sum(cell.startswith(payload) for cell in cells) >= 2, payload


def test_index_lists_each_report_once_with_names_as_text(published, hostile_lake):
    root, good, failed = published
    page = Page(storage.read_bytes(root, reports.INDEX).decode("utf-8"))

    assert_nothing_live(page, relative_links=True)
    assert good.status["playlist_name"] in page.text
    dates = [text for text in page.texts if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text)]
    assert dates == [AS_OF, FAILED_AS_OF]  # latest first, each once
    failed_flags = [
        attrs for tag, attrs in page.elements if tag == "span" and attrs.get("class") == "failed"
    ]
    assert len(failed_flags) == 1
    # Every link resolves, relative to the index, to a file published in the lake.
    hrefs = [attrs["href"] for tag, attrs in page.elements if tag == "a"]
    assert f"{PLAYLIST}/{AS_OF}/report.html" in hrefs
    assert f"{failed.output_prefix.removeprefix('reports/')}/status.json" in hrefs
    for href in hrefs:
        assert storage.exists(root, f"{reports.REPORTS}/{unquote(href)}"), href


def test_the_failing_cells_message_stays_in_status_json(published):
    root, _, failed = published
    status = json.loads(storage.read_bytes(root, f"{failed.output_prefix}/status.json"))
    assert status["error"] == "RuntimeError: <script>alert(1)</script> in a failing cell"
    assert "report.html" not in status["files"]


def test_exploration_notebook_outputs_escape_every_name(hostile_lake, tmp_path):
    import papermill

    root, _ = hostile_lake
    executed = tmp_path / "explore.ipynb"
    papermill.execute_notebook(
        str(ROOT / "notebooks" / "explore_top_songs.ipynb"),
        str(executed),
        parameters={"lake": root},
        kernel_name="python3",
        progress_bar=False,
        cwd=str(ROOT / "notebooks"),
    )
    notebook = json.loads(executed.read_text())
    html_outputs = [
        "".join(output["data"]["text/html"])
        for cell in notebook["cells"]
        for output in cell.get("outputs", [])
        if "text/html" in output.get("data", {})
    ]
    assert html_outputs
    shown = ""
    for fragment in html_outputs:
        page = Page(fragment)
        assert_nothing_live(page)
        # JupyterLab typesets $...$ in outputs unless told not to: names stay text.
        for tag, attrs in page.elements:
            if tag == "table":
                assert "tex2jax_ignore" in attrs.get("class", "")
        shown += page.text
    for payload in PAYLOADS:
        assert payload in shown, payload
    markdown = [
        output
        for cell in notebook["cells"]
        for output in cell.get("outputs", [])
        if "text/markdown" in output.get("data", {})
    ]
    assert markdown == []


def test_spotify_links_only_to_open_spotify():
    assert reports.spotify_url("https://open.spotify.com/track/abc") is not None
    for url in (
        *BAD_URLS,
        "http://open.spotify.com/track/abc",
        "https://open.spotify.com.evil.example/track/abc",
        "https://open.spotify.com@evil.example/",
        "https://open.spotify.com/track/a b",
        "https://open.spotify.com/\\evil.example",
        " https://open.spotify.com/track/abc",
        "HTTPS://evil.example/",
        None,
        42,
    ):
        assert reports.spotify_url(url) is None, url
        assert "<a" not in reports.link_html("<b>x</b>", url)
    assert reports.link_html("<b>x</b>", BAD_URLS[0]) == "&lt;b&gt;x&lt;/b&gt;"
    odd_id = '"><script>'
    link = reports.link_html("x", reports.spotify_object_url("track", odd_id))
    assert Page(link).elements == [
        ("a", {"href": f"{SPOTIFY_WEB}track/%22%3E%3Cscript%3E", "rel": "noopener noreferrer"})
    ]


@pytest.mark.parametrize(
    "fragment",
    [
        "<script>alert(1)</script>",
        '<a href="javascript:alert(1)">x</a>',
        '<a href=" jAvAsCrIpT:alert(1)">x</a>',
        '<a href="data:text/html,<script>alert(1)</script>">x</a>',
        '<a href="http://evil.example/">x</a>',
        '<a href="//evil.example/">x</a>',
        '<img src="x" onerror="alert(1)">',
        '<img src="data:text/html;base64,PHNjcmlwdD4=">',
        '<svg onload="alert(1)"><a xlink:href="javascript:alert(1)"><text>x</text></a></svg>',
        "<iframe src='https://open.spotify.com/'></iframe>",
        '<div style="background:url(https://evil.example/x.png)">x</div>',
        "<style>body{background:url(https://evil.example/)}</style>",
        '<form action="https://evil.example/"><button formaction="javascript:alert(1)">',
        '<math><mtext><table><mglyph><style><img src=x onerror=alert(1)></style></mtext></math>',
        '<meta http-equiv="refresh" content="0;url=https://evil.example/">',
    ],
)
def test_sanitizer_leaves_nothing_live(fragment):
    cleaned = reports.sanitize_html(fragment)
    assert_nothing_live(Page(cleaned))
    assert "evil.example" not in cleaned.replace("&", "")


def test_sanitizer_keeps_embedded_png_and_inline_svg_charts(tmp_path):
    import base64

    import pandas as pd

    frame = pd.DataFrame(
        {
            "track_id": ["a", "b"],
            "name": [PAYLOADS[0], PAYLOADS[3]],
            "first_rank": [5, 1],
            "last_rank": [1, 5],
            "rank_change": [4, -4],
        }
    )
    png, svg = charts.save_figure(charts.climbers_fallers_bars(frame), tmp_path / "moves")
    svg_text = svg.read_text()
    svg_text = svg_text[svg_text.index("<svg") :]
    image = f'<img src="data:image/png;base64,{base64.b64encode(png.read_bytes()).decode()}">'
    cleaned = reports.sanitize_html(f"<div>{image}{svg_text}</div>")

    assert_nothing_live(Page(cleaned))
    elements = Page(cleaned).elements
    source = Page(svg_text).elements
    assert [a["src"] for t, a in elements if t == "img"] == [image[10:-2]]
    for tag in ("svg", "path", "use", "clippath", "g"):
        assert sum(t == tag for t, _ in elements) == sum(t == tag for t, _ in source), tag
    # Glyphs are <use> references into the SVG's own <defs>: each keeps its target.
    assert [a.get("xlink:href") for t, a in elements if t == "use"] == [
        a.get("xlink:href") for t, a in source if t == "use"
    ]
    assert [a.get("clip-path") for t, a in elements if t == "path"] == [
        a.get("clip-path") for t, a in source if t == "path"
    ]


def test_index_flags_failed_runs_beside_a_good_report():
    base = f"reports/{PLAYLIST}"
    keys = [
        f"{base}/2026-10-01/status.json",
        f"{base}/2026-10-01/report.html",
        f"{base}/2026-10-01/failed/20261001T060000Z/status.json",
        f"{base}/2026-10-01/failed/20261002T060000Z/status.json",
        f"{base}/2026-10-02/status.json",
        f"{base}/2026-10-02/failed/20261002T070000Z/status.json",
        f"{base}/2026-10-02/failed/20261002T070000Z/report.ipynb",
        "reports/index.html",
        f"{base}/not-a-date/status.json",
        f"reports/{PAYLOADS[0]}/2026-10-03/report.html",
    ]
    entries = reports.index_entries(keys)
    assert [(e.as_of, e.has_report, len(e.failed_stamps)) for e in entries] == [
        ("2026-10-02", False, 1),
        ("2026-10-01", True, 2),
    ]
    for entry in entries:
        entry.playlist_name = PAYLOADS[3]
    page = Page(reports.index_html(entries))
    assert_nothing_live(page, relative_links=True)
    assert page.text.count(PAYLOADS[3]) == 1  # the heading of the playlist's dates
    assert "2 failed runs, last 20261002T060000Z" in page.text
    hrefs = [attrs["href"] for tag, attrs in page.elements if tag == "a"]
    assert hrefs == [
        f"{PLAYLIST}/2026-10-02/failed/20261002T070000Z/status.json",
        f"{PLAYLIST}/2026-10-01/report.html",
        f"{PLAYLIST}/2026-10-01/failed/20261002T060000Z/status.json",
    ]
