"""Report pages: tables with names and CSV files, titles, links between dates, the index."""

from __future__ import annotations

import json
import math
import re
from datetime import date
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urljoin

import nbformat
import pandas as pd
import pytest

from etl_lib.cli.demo import DEMO_PLAYLIST, DEMO_PLAYLISTS, run_demo
from etl_lib.errors import ConfigError
from etl_lib.lake import storage
from etl_lib.reporting import report_html, reports

SPOTIFY_WEB = "https://open.spotify.com/"
HOSTILE = '<script>alert(1)</script> "><img src=x onerror=alert(1)> [x](javascript:alert(1))'


class Page(HTMLParser):
    """Elements with their attributes, the text of each cell, and the page's text."""

    def __init__(self, text: str) -> None:
        super().__init__(convert_charrefs=True)
        self.elements: list[tuple[str, dict[str, str]]] = []
        self.texts: list[str] = []
        self.title = ""
        self.headings: list[str] = []
        self.rows: list[list[str]] = []
        self._open: list[str] = []
        self.feed(text)
        self.close()

    def handle_starttag(self, tag, attrs):
        self.elements.append((tag, {name: value or "" for name, value in attrs}))
        self._open.append(tag)
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self.rows[-1].append("")

    def handle_endtag(self, tag):
        if tag in self._open:
            del self._open[len(self._open) - 1 - self._open[::-1].index(tag) :]

    def handle_data(self, data):
        if "style" in self._open:
            return
        if "title" in self._open:
            self.title += data
            return
        self.texts.append(data)
        if "h2" in self._open:
            self.headings.append(data)
        if {"td", "th"} & set(self._open) and self.rows:
            self.rows[-1][-1] += data

    @property
    def text(self) -> str:
        return "".join(self.texts)

    def hrefs(self) -> list[str]:
        return [attrs["href"] for tag, attrs in self.elements if tag == "a" and "href" in attrs]


def chart_frame() -> pd.DataFrame:
    """Rows as the report's chart query returns them, one name hostile, one id hostile."""
    return pd.DataFrame(
        {
            "playlist_id": [DEMO_PLAYLIST] * 3,
            "chart_rank": [1, 2, 3],
            "track_id": ["4uLU6hMCjMI75M1A2tKUQC", '"><script>alert(1)</script>', "abc"],
            "track_url": [
                "https://open.spotify.com/track/4uLU6hMCjMI75M1A2tKUQC",
                "javascript:alert(1)",
                "data:text/html,<script>alert(1)</script>",
            ],
            "track_name": [HOSTILE, "Ocean & Signal", '=HYPERLINK("https://evil.example")'],
            "artists": ["Ana, Bo", "星川カナデ", "-Minus"],
            "previous_rank": [float("nan"), 1.0, 12.0],
            "days_on_chart": [12345, 2, 30],
            "share": [0.128667, 0.5, 0.0004],
            "first_seen": [date(2026, 10, 2), date(2026, 10, 30), date(2024, 1, 5)],
        },
        index=["idx-a", "idx-b", "idx-c"],
    )


def test_table_shows_names_escaped_and_links_only_to_open_spotify():
    page = Page(report_html.table_html(chart_frame()))

    tags = {tag for tag, _ in page.elements}
    assert not tags & {"script", "img", "iframe"}
    assert all(not name.startswith("on") for _, attrs in page.elements for name in attrs)
    # The hostile name is shown whole, as text, and links to its track by the track's id.
    header, *rows = page.rows
    assert rows[0][header.index("Track")] == HOSTILE
    assert page.hrefs() == [
        f"{SPOTIFY_WEB}track/4uLU6hMCjMI75M1A2tKUQC",
        f"{SPOTIFY_WEB}track/%22%3E%3Cscript%3Ealert%281%29%3C%2Fscript%3E",
        f"{SPOTIFY_WEB}track/abc",
    ]


def test_table_links_by_url_only_when_it_is_an_open_spotify_link():
    frame = chart_frame().drop(columns=["track_id"])
    page = Page(report_html.table_html(frame))
    # Without ids, the URL column links; javascript: and data: URLs leave plain text.
    assert page.hrefs() == ["https://open.spotify.com/track/4uLU6hMCjMI75M1A2tKUQC"]
    assert [row[1] for row in page.rows[1:]] == list(frame["track_name"])


def test_table_has_words_for_headers_no_index_no_ids_and_readable_numbers():
    frame = chart_frame()
    page = Page(report_html.table_html(frame))
    header, *rows = page.rows

    # Rank, then names, then the rest; ids and URLs only in links.
    assert header == [
        "Rank",
        "Track",
        "Artists",
        "Previous",
        "Days on chart",
        "Share",
        "First seen",
    ]
    for hidden in ("idx-a", "4uLU6hMCjMI75M1A2tKUQC", DEMO_PLAYLIST, "data:text"):
        assert hidden not in page.text
    assert [row[0] for row in rows] == ["1", "2", "3"]
    assert [row[3] for row in rows] == ["", "1", "12"]  # new entries have no previous rank
    assert [row[4] for row in rows] == ["12,345", "2", "30"]
    assert [row[5] for row in rows] == ["12.9%", "50.0%", "0.0%"]
    assert [row[6] for row in rows] == ["2026-10-02", "2026-10-30", "2024-01-05"]
    assert rows[1][2] == "星川カナデ"


def test_table_columns_headers_and_links_can_be_chosen():
    frame = chart_frame()
    page = Page(
        report_html.table_html(
            frame,
            columns={"track_name": "Song", "days_on_chart": "Days", "track_id": "Id"},
            links={},
            limit=2,
        )
    )
    header, *rows = page.rows
    assert header == ["Song", "Days", "Id"]
    assert len(rows) == 2 and page.hrefs() == []
    assert "The first 2 of 3 rows." in page.text
    with pytest.raises(KeyError, match="no column 'missing'"):
        report_html.table_html(frame, columns=["missing"])


def test_table_formats_values_as_people_read_them():
    fmt = report_html.format_value
    assert fmt(1234567) == "1,234,567"
    assert fmt(3.0) == "3" and fmt(2.345) == "2.3"
    assert fmt(0.12866, percent=True) == "12.9%"
    assert fmt(pd.Timestamp("2026-10-31")) == "2026-10-31"
    assert fmt(pd.Timestamp("2026-10-31 06:05", tz="UTC")) == "2026-10-31 06:05 UTC"
    assert fmt(None) == fmt(math.nan) == fmt(pd.NA) == fmt(pd.NaT) == ""
    assert fmt(["Ana", "Bo"]) == "Ana, Bo"
    assert fmt(True) == "yes"
    assert [fmt(v, signed=True) for v in (3, -2, 0, -1.5)] == ["+3", "−2", "0", "−1.5"]
    changes = Page(report_html.table_html(pd.DataFrame({"rank_change": [30, -41]}))).rows
    assert changes == [["Change"], ["+30"], ["−41"]]
    assert report_html.header_text("days_since_release") == "Days since release"


def test_show_table_writes_the_frame_as_csv_and_links_to_it(tmp_path, monkeypatch):
    shown: list[str] = []
    monkeypatch.setattr("IPython.display.display", lambda obj, **_: shown.append(obj.data))
    frame = chart_frame()

    report_html.show_table(frame, name="chart", tables_dir=tmp_path / "tables")

    written = pd.read_csv(tmp_path / "tables" / "chart.csv", keep_default_na=False)
    assert list(written.columns) == list(frame.columns)  # every column, no index
    assert written["chart_rank"].tolist() == frame["chart_rank"].tolist()
    assert written["days_on_chart"].tolist() == frame["days_on_chart"].tolist()
    assert written["share"].tolist() == frame["share"].tolist()
    assert written["track_id"].tolist() == frame["track_id"].tolist()
    assert written["first_seen"].tolist() == [d.isoformat() for d in frame["first_seen"]]
    assert written["previous_rank"].tolist() == ["", "1", "12"]  # whole numbers stay whole
    # Text a spreadsheet would run as a formula is led by a quote; the rest is unchanged.
    assert written["track_name"].tolist() == [
        HOSTILE,
        "Ocean & Signal",
        "'" + frame["track_name"].iloc[2],
    ]
    assert written["artists"].tolist() == ["Ana, Bo", "星川カナデ", "'-Minus"]
    [html] = shown
    assert report_html.TABLES + "/chart.csv" in Page(html).hrefs()


def test_show_table_without_a_folder_writes_nothing(tmp_path, monkeypatch):
    shown: list[str] = []
    monkeypatch.setattr("IPython.display.display", lambda obj, **_: shown.append(obj.data))
    monkeypatch.chdir(tmp_path)
    report_html.show_table(chart_frame(), name="chart")
    assert list(tmp_path.iterdir()) == []
    assert "Download CSV" not in shown[0]
    for bad in ("../chart", "Chart", "a/b", "", "chart.csv"):
        with pytest.raises(ValueError, match="not a file name"):
            report_html.show_table(chart_frame(), name=bad, tables_dir=tmp_path)


def test_report_pages_keep_plain_relative_links_and_no_others():
    table = report_html.table_html(chart_frame(), csv_href="tables/chart.csv")
    kept = Page(reports.sanitize_html(table, relative_links=True))
    assert kept.hrefs() == Page(table).hrefs()
    assert "tables/chart.csv" in kept.hrefs()
    for href in (
        "../secret.csv",
        "/etc/passwd",
        "//evil.example/x",
        "%2e%2e/x.csv",
        "javascript:alert(1)",
        "data:text/csv,1",
        "tables/a b.csv",
    ):
        assert (
            Page(reports.sanitize_html(f'<a href="{href}">x</a>', relative_links=True)).hrefs()
            == []
        ), href


# ---------------------------------------------------------------------------------------------
# The page: title, heading, links between dates


def test_the_heading_names_the_playlist_and_date_and_keeps_the_id_small():
    header = reports.header_html(
        playlist_name=HOSTILE,
        playlist_id=DEMO_PLAYLIST,
        first_day="2026-10-02",
        last_day="2026-10-31",
        days=30,
        chart_days=29,
        newest=pd.Timestamp("2026-10-31 06:00"),
        engine="duckdb",
    )
    page = Page(header)
    assert page.elements[0][0] == "h1"
    assert page.text.startswith(f"{HOSTILE} — 2026-10-31")
    assert page.hrefs() == [f"{SPOTIFY_WEB}playlist/{DEMO_PLAYLIST}"]
    small = header[header.index("<small>") : header.index("</small>")]
    assert DEMO_PLAYLIST in small and DEMO_PLAYLIST not in header[: header.index("<small>")]


def _executed_notebook(path: Path, *, name: str) -> Path:
    """A notebook as papermill leaves it: a markdown cell, a header output, a table output."""
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    table = report_html.table_html(chart_frame(), csv_href="tables/chart.csv")
    code = nbformat.v4.new_code_cell("import secret_code_here")
    code.outputs = [
        nbformat.v4.new_output(
            "display_data",
            data={"text/html": f"<h1>{name}</h1>", "text/plain": name},
            metadata={reports.PLAYLIST_NAME_METADATA: name},
        ),
        nbformat.v4.new_output("display_data", data={"text/html": table, "text/plain": ""}),
    ]
    notebook.cells = [nbformat.v4.new_markdown_cell("**Top songs: trends**"), code]
    nbformat.write(notebook, path)
    return path


def test_the_page_is_titled_by_playlist_and_date_and_opens_with_the_nav(tmp_path):
    executed = _executed_notebook(tmp_path / "report.ipynb", name=HOSTILE)
    title = report_html.page_title(HOSTILE, "2026-10-31")
    nav = report_html.nav_html("2026-10-31", "2026-10-30", None)

    text = reports._html_without_code(executed, title=title, nav=nav)
    page = Page(text)

    assert page.title == f"{HOSTILE} — 2026-10-31"
    assert "<script" not in text and "secret_code_here" not in text
    main = text[text.index("<main>") :]
    assert main.index(report_html.NAV_START) < main.index("Top songs: trends")
    assert page.hrefs()[:2] == ["../../index.html", "../2026-10-30/report.html"]
    assert "tables/chart.csv" in page.hrefs()  # the CSV link survives the sanitizer
    assert "no later report" in page.text
    assert report_html.page_title(None, "2026-10-31") == "Report — 2026-10-31"


def test_nav_is_rewritten_in_place_or_added_to_an_older_page():
    first = report_html.nav_html("2026-10-30", None, None)
    page = f"<html><body><main>{first}<p>body</p></main></body></html>"
    second = report_html.nav_html("2026-10-30", "2026-10-29", "2026-10-31")
    rewritten = report_html.with_nav(page, second)
    assert rewritten.count(report_html.NAV_START) == 1 and second in rewritten
    assert "<p>body</p>" in rewritten
    older = report_html.with_nav("<main><p>body</p></main>", second)
    assert older == f"<main>{second}<p>body</p></main>"
    assert report_html.neighbours(["2026-10-29", "2026-10-31", "2026-11-02"], "2026-10-30") == (
        "2026-10-29",
        "2026-10-31",
    )
    with pytest.raises(ValueError):
        report_html.nav_html("../x", None, None)


# ---------------------------------------------------------------------------------------------
# The index


def test_index_groups_playlists_lists_comparisons_and_flags_failures():
    keys = [
        f"reports/{DEMO_PLAYLIST}/2026-10-30/report.html",
        f"reports/{DEMO_PLAYLIST}/2026-10-30/status.json",
        f"reports/{DEMO_PLAYLIST}/2026-10-31/failed/20261031T060000Z/status.json",
        f"reports/{DEMO_PLAYLIST}/2026-10-31/status.json",
        "reports/AAAAplaylist/2026-10-31/report.html",
        "reports/compare/2026-10-29/report.html",
        "reports/compare/2026-10-31/report.html",
        "reports/compare/2026-10-31/failed/20261031T070000Z/status.json",
    ]
    entries = reports.index_entries(keys)
    assert [(e.folder, e.as_of) for e in entries] == [
        ("compare", "2026-10-31"),
        ("AAAAplaylist", "2026-10-31"),
        (DEMO_PLAYLIST, "2026-10-31"),
        (DEMO_PLAYLIST, "2026-10-30"),
        ("compare", "2026-10-29"),
    ]
    for entry in entries:
        if entry.playlist_id == DEMO_PLAYLIST:
            entry.playlist_name = HOSTILE
    page = Page(reports.index_html(entries))

    # Comparisons first, then the playlists by name.
    assert page.headings == ["Charts compared", HOSTILE, "AAAAplaylist"]
    assert page.text.count(HOSTILE) == 1 and "<script" not in reports.index_html(entries)
    assert page.hrefs() == [
        "compare/2026-10-31/report.html",
        "compare/2026-10-31/failed/20261031T070000Z/status.json",
        "compare/2026-10-29/report.html",
        f"{DEMO_PLAYLIST}/2026-10-31/failed/20261031T060000Z/status.json",
        f"{DEMO_PLAYLIST}/2026-10-30/report.html",
        "AAAAplaylist/2026-10-31/report.html",
    ]
    failed = [a for tag, a in page.elements if tag == "span" and a.get("class") == "failed"]
    assert len(failed) == 1
    # The playlist's dates, newest first.
    dates = [row[0] for row in page.rows if re.fullmatch(r"\d{4}-\d{2}-\d{2}", row[0])]
    assert dates == ["2026-10-31", "2026-10-29", "2026-10-31", "2026-10-30", "2026-10-31"]


def test_comparisons_folder_is_not_a_playlist_id():
    with pytest.raises(ConfigError):
        reports.report_prefix(reports.COMPARISONS, "2026-10-31")


# ---------------------------------------------------------------------------------------------
# Publishing: stand-in notebooks on a small demo lake (a kernel per report)

STAND_IN_PARAMETERS = """as_of = "2026-10-31"
days = 3
playlist_id = "37i9dQZEVXbNG2KDcFcKOF"
playlist_ids = None
engine = "duckdb"
lake = "unused"
output_dir = None
tables_dir = None
"""
STAND_IN_BODY = """from pathlib import Path

import pandas as pd
from IPython.display import HTML, display

from etl_lib.reporting import report_html, reports

Path(output_dir, "chart.svg").write_text("<svg xmlns='http://www.w3.org/2000/svg'/>")
subject = ", ".join(playlist_ids) if playlist_ids else playlist_id
display(HTML(f"<h1>{subject} {as_of}</h1>"), metadata={reports.PLAYLIST_NAME_METADATA: NAME})
frame = pd.DataFrame({"chart_rank": [1, 2], "track_name": ["A <b>", "B"], "track_id": ["a", "b"]})
report_html.show_table(frame, name="chart", tables_dir=tables_dir)
"""


def stand_in_notebook(path: Path, *, name: str | None) -> Path:
    parameters = nbformat.v4.new_code_cell(STAND_IN_PARAMETERS)
    parameters.metadata["tags"] = ["parameters"]
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {
        "name": "python3",
        "display_name": "Python 3",
        "language": "python",
    }
    notebook.cells = [
        nbformat.v4.new_markdown_cell("**A stand-in report**"),
        parameters,
        nbformat.v4.new_code_cell(f"NAME = {name!r}\n" + STAND_IN_BODY),
    ]
    nbformat.write(notebook, path)
    return path


@pytest.fixture(scope="module")
def small_lake(tmp_path_factory) -> str:
    root = str(tmp_path_factory.mktemp("pages") / "lake")
    run_demo(root, days=3)  # 2026-10-29 to 2026-10-31, three playlists
    return root


def _nav_links(root: str, key: str) -> list[str]:
    page = storage.read_bytes(root, key).decode("utf-8")
    nav = page[page.index(report_html.NAV_START) : page.index(report_html.NAV_END)]
    assert page.count(report_html.NAV_START) == 1
    return [urljoin(key, unquote(href)) for href in Page(nav).hrefs()]


def test_dates_published_out_of_order_link_to_their_neighbours(small_lake, tmp_path):
    notebook = stand_in_notebook(tmp_path / "stand_in.ipynb", name="Top Songs - Global")
    broken = tmp_path / "broken.ipynb"
    source = json.loads(notebook.read_text())
    source["cells"].append(nbformat.v4.new_code_cell("raise RuntimeError('broken')"))
    broken.write_text(json.dumps(source))
    base = f"reports/{DEMO_PLAYLIST}"
    for as_of in ("2026-10-31", "2026-10-29", "2026-10-30"):
        result = reports.run_report(
            small_lake, playlist_id=DEMO_PLAYLIST, as_of=as_of, days=3, notebook=notebook
        )
        assert result.succeeded, result.status
    # A failed run is no neighbour, and leaves the pages as they were.
    dates = ("2026-10-29", "2026-10-30", "2026-10-31")
    pages = {d: storage.read_bytes(small_lake, f"{base}/{d}/report.html") for d in dates}
    failed = reports.run_report(
        small_lake, playlist_id=DEMO_PLAYLIST, as_of="2026-10-30", days=3, notebook=broken
    )
    assert not failed.succeeded
    assert {d: storage.read_bytes(small_lake, f"{base}/{d}/report.html") for d in dates} == pages

    index = "reports/index.html"
    assert _nav_links(small_lake, f"{base}/2026-10-29/report.html") == [
        index,
        f"{base}/2026-10-30/report.html",
    ]
    assert _nav_links(small_lake, f"{base}/2026-10-30/report.html") == [
        index,
        f"{base}/2026-10-29/report.html",
        f"{base}/2026-10-31/report.html",
    ]
    assert _nav_links(small_lake, f"{base}/2026-10-31/report.html") == [
        index,
        f"{base}/2026-10-30/report.html",
    ]
    page = Page(storage.read_bytes(small_lake, f"{base}/2026-10-30/report.html").decode())
    assert page.title == "Top Songs - Global — 2026-10-30"
    # The table's CSV is published beside the page, where its link points.
    assert "tables/chart.csv" in page.hrefs()
    assert storage.exists(small_lake, f"{base}/2026-10-30/tables/chart.csv")
    status = json.loads(storage.read_bytes(small_lake, f"{base}/2026-10-30/status.json"))
    assert "tables/chart.csv" in status["files"] and "charts/chart.svg" in status["files"]


def test_comparison_report_is_published_under_compare_and_listed(small_lake, tmp_path):
    notebook = stand_in_notebook(tmp_path / "compare.ipynb", name=None)
    for as_of in ("2026-10-31", "2026-10-30"):
        result = reports.run_comparison_report(small_lake, as_of=as_of, days=2, notebook=notebook)
        assert result.succeeded, result.status
        assert result.output_prefix == f"reports/compare/{as_of}"
    # Every playlist with a chart in the window is compared, and the notebook was told so.
    assert result.status["parameters"]["playlist_ids"] == sorted(DEMO_PLAYLISTS)
    key = "reports/compare/2026-10-30/report.html"
    page = Page(storage.read_bytes(small_lake, key).decode())
    assert page.title == "Charts compared — 2026-10-30"
    assert ", ".join(sorted(DEMO_PLAYLISTS)) in page.text
    assert _nav_links(small_lake, key) == [
        "reports/index.html",
        "reports/compare/2026-10-31/report.html",
    ]
    assert storage.exists(small_lake, "reports/compare/2026-10-30/tables/chart.csv")

    chosen = reports.run_comparison_report(
        small_lake,
        as_of="2026-10-31",
        days=1,
        playlist_ids=list(DEMO_PLAYLISTS[:2]),
        notebook=notebook,
    )
    assert chosen.status["parameters"]["playlist_ids"] == list(DEMO_PLAYLISTS[:2])

    index = Page(storage.read_bytes(small_lake, reports.INDEX).decode())
    assert "Charts compared" in index.text
    assert "compare/2026-10-30/report.html" in index.hrefs()
    for href in index.hrefs():
        assert storage.exists(small_lake, f"reports/{unquote(href)}"), href


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"days": 0}, "--days 0 is not a whole number"),
        ({"as_of": "2026-13-01"}, "is not a date"),
        (
            {"playlist_ids": ["37i9dQZEVXbMDoHDwVN2tF"]},
            "no chart of playlist 37i9dQZEVXbMDoHDwVN2tF",
        ),
        ({"playlist_ids": [DEMO_PLAYLIST]}, "a comparison needs two playlists"),
        ({"as_of": "2026-01-31"}, "found none"),
    ],
)
def test_comparison_request_is_checked_before_a_kernel_starts(
    small_lake, tmp_path, options, message
):
    notebook = stand_in_notebook(tmp_path / "compare.ipynb", name=None)
    arguments = {"as_of": "2026-10-31", "days": 2, "notebook": notebook} | options
    with pytest.raises(ConfigError, match=re.escape(message)):
        reports.run_comparison_report(small_lake, **arguments)
