"""etl_lib.reporting.charts: figure structure, names in every script, layout, deterministic
export."""

from __future__ import annotations

import html
import inspect
import json
import math
import os
import re
import shutil
import subprocess
import sys
import warnings
import xml.etree.ElementTree as ElementTree
from datetime import date
from pathlib import Path

import matplotlib
import pandas as pd
import pytest
from matplotlib import dates as mdates
from matplotlib.figure import Figure
from matplotlib.testing.compare import compare_images
from matplotlib.text import Annotation

from etl_lib.reporting import charts, reports

BASELINE = Path(__file__).parent / "baseline" / "bump_chart.png"
# To rewrite the baseline instead of comparing with it:
#   SPOTIFY_ETL_UPDATE_BASELINE=1 .venv/bin/pytest tests/test_charts.py
UPDATE_BASELINE = os.environ.get("SPOTIFY_ETL_UPDATE_BASELINE") == "1"
# Root-mean-square difference on 0-255 pixel values. A moved line or label measures far
# more; different FreeType builds rendering the same text measure less.
BASELINE_TOLERANCE = 3.0
SVG = "{http://www.w3.org/2000/svg}"

AS_OF = date(2026, 3, 4)
DAYS = 4
# Each day's chart, best first. On the last day T08 (#11) and T12 (#12) miss the top 10.
CHART = {
    "2026-03-01": ["T03", "T01", "T02", "T05", "T04", "T06", "T07", "T08", "T11", "T12"],
    "2026-03-02": ["T01", "T03", "T02", "T04", "T05", "T06", "T08", "T07", "T09", "T12"],
    "2026-03-03": ["T01", "T02", "T03", "T04", "T06", "T05", "T09", "T07", "T10", "T08"],
    "2026-03-04": [
        "T02", "T01", "T03", "T04", "T05", "T06", "T09", "T11", "T07", "T10", "T08", "T12",
    ],
}  # fmt: skip
TOP_10 = CHART["2026-03-04"][:10]
LATIN_NAMES = {
    "T01": ("Lazy Ocean", "Talia Lindqvist"),
    "T02": ("Chase Over the Tide", "Juno"),
    "T03": ('The Comet Said "Drive"', "Arlo Finch, Mira Vale"),
    "T04": ("Velvet, Velvet Carousel", "The Carousels"),
    "T05": ("Белые ночи", "Алина"),
    "T06": ("Neon Parade", "Parade"),
    "T07": ("Mañana Será (with Luca Tiberi)", "Rosa Ybarra"),
    "T08": ("Porcelain", "Porc"),
    "T09": ("Ocean & Signal", "Signal"),
    "T10": ("Летний дождь", "Земфира"),
    "T11": ("Cold Heart", "Elton"),
    "T12": ("Tide", "Tide Band"),
}
# One name per script a global chart holds; the browser draws them from the SVG's text.
WORLD_NAMES = {
    **LATIN_NAMES,
    "T01": ("밤하늘 산책", "박지호"),
    "T02": ("さよならの季節 - Live", "白石カナデ"),
    "T03": ("ليلة حب (with Ronan Rasmund)", "عمرو دياب"),
    "T04": ("दिल की धड़कन", "अरिजीत सिंह"),
    "T06": ("לילה לבן (feat. 박지호 & 白石カナデ)", "נועה קירל"),
    "T09": ("A$AP $5 Remix", "A$AP Rocky"),
    "T11": (
        "Burning Tide (feat. Dario Dumarais & Highway Collective) - Extended Club Mix",
        "Dario Dumarais, Highway Collective, Maren Solberg, Ode Okafor",
    ),
}


def names_frame(names: dict) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"track_id": track_id, "track_name": name, "artists": artists}
            for track_id, (name, artists) in names.items()
        ]
    )


@pytest.fixture
def history() -> pd.DataFrame:
    return pd.DataFrame(
        [
            {"chart_date": date.fromisoformat(day), "track_id": track, "chart_rank": rank}
            for day, tracks in CHART.items()
            for rank, track in enumerate(tracks, start=1)
        ]
    )


def _track_lines(figure: Figure) -> dict:
    (axes,) = figure.axes
    return {line.get_gid(): line for line in axes.get_lines() if line.get_gid()}


def _annotations(figure: Figure) -> list[Annotation]:
    (axes,) = figure.axes
    return [text for text in axes.texts if isinstance(text, Annotation)]


def _ranks(line) -> list[float]:
    return [float(value) for value in line.get_ydata()]


def _shown(text: str) -> str:
    """A label as drawn: without the left-to-right mark and the mathtext escapes."""
    return text.replace(charts.LEFT_TO_RIGHT_MARK, "").replace(r"\$", "$")


def _svg_texts(svg: str) -> list[str]:
    root = ElementTree.fromstring(svg)
    return ["".join(element.itertext()) for element in root.iter(f"{SVG}text")]


def _html_svg_texts(page: str) -> list[str]:
    """The text of each SVG <text> element in an HTML page (not XML: no namespaces)."""
    return [html.unescape(text) for text in re.findall(r"<text\b[^>]*>(.*?)</text>", page, re.S)]


@pytest.fixture
def no_glyph_warnings():
    """Drawing in a test, as the charts' own exports do: on a machine without the Noto fonts
    matplotlib warns about every character it draws as a box."""
    with warnings.catch_warnings():
        warnings.filterwarnings(
            "ignore", message="Glyph .* missing from font", category=UserWarning
        )
        yield


# ---------------------------------------------------------------------------------------------
# The bump chart


def test_bump_chart_draws_one_line_per_top_10_track(history):
    figure = charts.bump_chart(history, names_frame(LATIN_NAMES), AS_OF, DAYS)
    lines = _track_lines(figure)
    assert list(lines) == TOP_10  # in last-day rank order; T08 and T12 left out
    assert all(len(line.get_xdata()) == DAYS for line in lines.values())
    assert lines["T05"].get_label() == "Белые ночи — Алина"


def test_bump_chart_labels_each_line_end_with_rank_track_and_artists(history):
    figure = charts.bump_chart(history, names_frame(LATIN_NAMES), AS_OF, DAYS)
    labels = {text.get_text(): text.xy for text in _annotations(figure)}
    last_day = mdates.date2num(AS_OF)
    expected = {
        f"{rank}. {LATIN_NAMES[track][0]} — {LATIN_NAMES[track][1]}": (last_day, rank)
        for rank, track in enumerate(TOP_10, start=1)
    }
    assert labels == expected
    (axes,) = figure.axes
    title = axes.get_title(loc="left")
    assert "1 Mar" in title and "4 Mar 2026" in title


def test_bump_chart_rank_axis_spans_the_ranks_drawn(history):
    (axes,) = charts.bump_chart(history, names_frame(LATIN_NAMES), AS_OF, DAYS).axes
    # The ten lines run from #1 to #10 (T10 ends there): not the whole 12-place chart.
    assert axes.get_ylim() == (pytest.approx(10.5), pytest.approx(0.5))
    assert axes.yaxis_inverted()
    assert list(axes.get_yticks()) == list(range(1, 11))

    # A track that climbed from #40: the axis reaches down to it, ticks stay whole ranks,
    # and ranks of tracks not drawn (#41-#60 on the first day) do not stretch it.
    deep = history.copy()
    deep.loc[(deep["track_id"] == "T09") & (deep["chart_rank"] == 9), "chart_rank"] = 40
    filler = pd.DataFrame(
        {"chart_date": date(2026, 3, 1), "track_id": [f"X{n}" for n in range(20)]}
    ).assign(chart_rank=range(41, 61))
    (axes,) = charts.bump_chart(
        pd.concat([deep, filler]), names_frame(LATIN_NAMES), AS_OF, DAYS
    ).axes
    assert axes.get_ylim() == (pytest.approx(40.5), pytest.approx(0.5))
    ticks = list(axes.get_yticks())
    assert ticks[0] == 1 and all(float(tick).is_integer() for tick in ticks)
    assert max(ticks) <= 40 and len(ticks) <= 12


def test_bump_chart_breaks_lines_where_a_track_was_off_the_chart(history):
    lines = _track_lines(charts.bump_chart(history, names_frame(LATIN_NAMES), AS_OF, DAYS))
    # T11: #9, off, off, #8. T09: off, #9, #7, #7. T10 entered on day 3.
    t11 = _ranks(lines["T11"])
    assert t11[0] == 9 and math.isnan(t11[1]) and math.isnan(t11[2]) and t11[3] == 8
    t09 = _ranks(lines["T09"])
    assert math.isnan(t09[0]) and t09[1:] == [9, 7, 7]
    assert [math.isnan(v) for v in _ranks(lines["T10"])] == [True, True, False, False]
    assert _ranks(lines["T01"]) == [2, 1, 1, 2]


def test_bump_chart_filters_history_to_the_window(history):
    lines = _track_lines(charts.bump_chart(history, names_frame(LATIN_NAMES), AS_OF, 2))
    # A 2-day window: only 03-03 and 03-04 are drawn; T11 is at #8 on the last day only.
    assert all(len(line.get_xdata()) == 2 for line in lines.values())
    assert math.isnan(_ranks(lines["T11"])[0]) and _ranks(lines["T11"])[1] == 8


def test_a_one_day_window_says_there_is_no_movement_to_draw(history):
    figure = charts.bump_chart(history, names_frame(LATIN_NAMES), AS_OF, 1)
    (axes,) = figure.axes
    assert axes.get_lines() == []
    assert [text.get_text() for text in axes.texts] == [
        "One chart day in the window: no movement to draw"
    ]
    assert "4 Mar 2026" in axes.get_title(loc="left")


# ---------------------------------------------------------------------------------------------
# Names in every script


def test_labels_keep_every_script_as_written(history):
    figure = charts.bump_chart(history, names_frame(WORLD_NAMES), AS_OF, DAYS)
    labels = [_shown(text.get_text()) for text in _annotations(figure)]
    assert "1. さよならの季節 - Live — 白石カナデ" in labels
    assert "2. 밤하늘 산책 — 박지호" in labels
    assert "3. ليلة حب (with Ronan Rasmund) — عمرو دياب" in labels
    assert "4. दिल की धड़कन — अरिजीत सिंह" in labels
    assert "7. A$AP $5 Remix — A$AP Rocky" in labels
    assert "romaniz" not in inspect.getsource(charts).lower()
    assert not any(name.startswith("_romanize") for name in dir(charts))


def test_names_with_arabic_or_hebrew_keep_their_rank_on_the_left(history):
    figure = charts.bump_chart(history, names_frame(WORLD_NAMES), AS_OF, DAYS)
    arabic = next(t.get_text() for t in _annotations(figure) if "ليلة" in t.get_text())
    latin = next(t.get_text() for t in _annotations(figure) if "Белые" in t.get_text())
    assert arabic.startswith(charts.LEFT_TO_RIGHT_MARK + "3. ")
    assert not latin.startswith(charts.LEFT_TO_RIGHT_MARK)
    assert r"A\$AP \$5 Remix" in " ".join(t.get_text() for t in _annotations(figure))


@pytest.mark.parametrize(
    ("track", "artists", "label"),
    [
        ("Lazy Ocean", "Talia Lindqvist", "Lazy Ocean — Talia Lindqvist"),
        ("  Lazy\n Ocean ", None, "Lazy Ocean"),
        (None, "Juno", "? — Juno"),
        ("ليلة حب", "عمرو دياب", "ليلة حب — عمرو دياب"),
        # The artists give way first ...
        (
            "Burning Tide",
            "Dario Dumarais, Highway Collective, Maren Solberg, Ode Okafor",
            "Burning Tide — Dario Dumarais, Highway Collective…",
        ),
        # ... a long title takes the room short artists leave, cut at a word ...
        (
            "Burning Tide (feat. Dario Dumarais & Highway Collective) - Extended Mix",
            "Maren Solberg",
            "Burning Tide (feat. Dario… — Maren Solberg",
        ),
        # ... and keeps at least 60% of it when both are long.
        (
            "Burning Tide (feat. Dario Dumarais & Highway Collective) - Extended Mix",
            "Dario Dumarais, Highway Collective, Maren Solberg",
            "Burning Tide (feat. Dario… — Dario Dumarais…",
        ),
    ],
)
def test_track_label_shortens_artists_first(track, artists, label):
    shown = charts.track_label(track, artists)
    assert shown == label
    assert len(shown) <= charts.LABEL_MAX_CHARS


def test_track_labels_accept_the_older_name_column():
    frame = pd.DataFrame({"track_id": ["a", "a", "b"], "name": ["One", "One", "Two"]})
    assert charts.track_labels(frame) == {"a": "One", "b": "Two"}


def test_the_svg_keeps_names_as_text_in_every_script(history, tmp_path):
    figure = charts.bump_chart(history, names_frame(WORLD_NAMES), AS_OF, DAYS)
    _, svg = charts.save_figure(figure, tmp_path / "world")
    texts = [_shown(text) for text in _svg_texts(svg.read_text(encoding="utf-8"))]
    for name, artists in [WORLD_NAMES[track] for track in ("T01", "T02", "T03", "T04", "T06")]:
        assert any(name in text and artists in text for text in texts), name
    assert any("Летний дождь" in text for text in texts)
    assert any("A$AP $5 Remix" in text for text in texts)
    # No glyph outlines: the browser draws the text with its own fonts.
    assert '<use xlink:href="#' + "DejaVuSans" not in svg.read_text(encoding="utf-8")


def test_inline_svg_keeps_its_text_through_the_report_sanitizer(history):
    svg = charts.inline_svg(charts.bump_chart(history, names_frame(WORLD_NAMES), AS_OF, DAYS))
    assert svg.startswith("<svg") and "<?xml" not in svg and "<metadata" not in svg
    cleaned = reports.sanitize_html(f"<div>{svg}</div>")
    assert _html_svg_texts(cleaned) == _svg_texts(svg)
    assert "밤하늘 산책 — 박지호" in " ".join(_html_svg_texts(cleaned))
    styles = re.findall(r'<text[^>]*style="([^"]*)"', cleaned)
    assert styles and all("font-family:" in style and "font-size:" in style for style in styles)
    assert any("font-weight:" in style for style in styles)  # the bold line-end labels
    assert any("text-anchor:" in style for style in styles)


def test_two_charts_in_one_page_share_no_element_ids(history):
    bump = charts.inline_svg(charts.bump_chart(history, names_frame(LATIN_NAMES), AS_OF, DAYS))
    bars = charts.inline_svg(
        charts.artist_share_bars(
            pd.DataFrame({"artist_id": ["a"], "name": ["Juno"], "entries": [3], "share": [0.3]})
        )
    )
    bump_ids = re.findall(r'\bid="([^"]+)"', bump)
    bar_ids = re.findall(r'\bid="([^"]+)"', bars)
    assert bump_ids and bar_ids and not set(bump_ids) & set(bar_ids)
    for svg, ids in ((bump, set(bump_ids)), (bars, set(bar_ids))):
        references = re.findall(r'(?:href="#|url\(#)([^")]+)', svg)
        assert references and set(references) <= ids  # clip paths and markers: its own


def test_missing_glyphs_draw_as_boxes_without_warnings(history, monkeypatch, tmp_path):
    # As on a machine without the Noto fonts: DejaVu Sans has no Hangul, kana or Devanagari.
    monkeypatch.setattr(charts, "font_families", lambda: (charts.BASE_FONT,))
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        figure = charts.bump_chart(history, names_frame(WORLD_NAMES), AS_OF, DAYS)
        charts.save_figure(figure, tmp_path / "world")
        figure._repr_png_()
        figure._repr_svg_()
    assert [str(warning.message) for warning in caught] == []
    with pytest.warns(UserWarning, match="something else"), charts._drawing():
        warnings.warn("something else", UserWarning, stacklevel=1)  # only glyphs are quiet


def test_every_label_lies_inside_the_figure(history, no_glyph_warnings):
    """Long, right-to-left and bold labels get room in the layout: nothing is clipped even
    where a figure is shown uncropped."""
    figures = [
        charts.bump_chart(history, names_frame(WORLD_NAMES), AS_OF, DAYS),
        charts.climbers_fallers_bars(
            pd.DataFrame(
                {
                    "track_id": ["T03", "T11"],
                    "first_rank": [12, 4],
                    "last_rank": [3, 9],
                    "rank_change": [9, -5],
                    "track_name": [WORLD_NAMES["T03"][0], WORLD_NAMES["T11"][0]],
                    "artists": [WORLD_NAMES["T03"][1], WORLD_NAMES["T11"][1]],
                }
            )
        ),
        charts.track_rank_lines(
            pd.DataFrame(
                {
                    "chart_date": ["2026-03-01", "2026-03-02", "2026-03-01"],
                    "playlist_name": ["Top 50 - الإمارات العربية المتحدة"] * 2 + ["トップ50 日本"],
                    "chart_rank": [4, 2, 30],
                }
            )
        ),
    ]
    for figure in figures:
        figure.draw_without_rendering()
        width, height = figure.get_size_inches()
        drawn = figure.get_tightbbox()  # inches: every artist drawn, ticks in view only
        assert drawn.x0 >= -0.01 and drawn.y0 >= -0.01, drawn
        assert drawn.x1 <= width + 0.01 and drawn.y1 <= height + 0.01, (drawn, width, height)
        (axes,) = figure.axes
        legend = axes.get_legend()
        labels = [*axes.texts, *(legend.get_texts() if legend else []), axes.title]
        labels += [axes._left_title, *axes.get_yticklabels()]
        for text in (text for text in labels if text.get_text()):
            extent = text.get_window_extent()
            inside = extent.x0 >= -0.5 and extent.x1 <= figure.bbox.x1 + 0.5
            assert inside, (text.get_text(), extent, figure.bbox)


# ---------------------------------------------------------------------------------------------
# Jupyter and export


def test_chart_figures_show_as_svg_and_png_in_jupyter(history):
    figure = charts.bump_chart(history, names_frame(WORLD_NAMES), AS_OF, DAYS)
    svg, png = figure._repr_svg_(), figure._repr_png_()
    assert svg.startswith("<svg") and "さよならの季節" in svg
    assert png.startswith(b"\x89PNG\r\n\x1a\n")
    assert figure._repr_svg_() == svg and figure._repr_png_() == png


def test_save_figure_writes_identical_bytes_for_the_same_data(history, tmp_path):
    names = names_frame(WORLD_NAMES)
    first = charts.save_figure(charts.bump_chart(history, names, AS_OF, DAYS), tmp_path / "a")
    second = charts.save_figure(
        charts.bump_chart(history, names, AS_OF, DAYS), tmp_path / "b" / "chart"
    )
    assert [path.name for path in first] == ["a.png", "a.svg"]
    assert [path.suffix for path in second] == [".png", ".svg"]
    assert first[1].read_bytes() == second[1].read_bytes()
    assert first[0].read_bytes() == second[0].read_bytes()
    svg = first[1].read_text(encoding="utf-8")
    assert "<dc:date>" not in svg and "Matplotlib v" not in svg
    assert b"Software" not in first[0].read_bytes()[:4096]
    # The file and the inline markup are the same drawing, with the same ids.
    inline = charts.inline_svg(charts.bump_chart(history, names, AS_OF, DAYS))
    assert re.findall(r'id="[^"]+"', inline) == re.findall(r'id="[^"]+"', svg)
    assert _svg_texts(inline) == _svg_texts(svg)


def test_bump_chart_matches_the_baseline_image(history, tmp_path):
    figure = charts.bump_chart(history, names_frame(LATIN_NAMES), AS_OF, DAYS)
    png, _ = charts.save_figure(figure, tmp_path / "bump_chart", dpi=50)
    if UPDATE_BASELINE:
        BASELINE.parent.mkdir(exist_ok=True)
        shutil.copyfile(png, BASELINE)
        pytest.skip(f"baseline rewritten: {BASELINE}")
    assert BASELINE.stat().st_size < 200_000
    problem = compare_images(str(BASELINE), str(png), tol=BASELINE_TOLERANCE)
    assert problem is None, problem


def test_charts_leave_the_global_matplotlib_settings_alone(history, tmp_path):
    before = dict(matplotlib.rcParams)
    figure = charts.bump_chart(history, names_frame(WORLD_NAMES), AS_OF, DAYS)
    charts.save_figure(figure, tmp_path / "c")
    figure._repr_svg_()
    assert dict(matplotlib.rcParams) == before


# ---------------------------------------------------------------------------------------------
# Fonts


def test_dejavu_sans_comes_first_in_the_fallback_list():
    assert charts.font_families()[0] == "DejaVu Sans"


_FONT_PROBE = """
import json
from matplotlib import font_manager
from etl_lib.reporting import charts

def listed():
    return any(e.fname.endswith("ProbeSans.ttf") for e in font_manager.fontManager.ttflist)

before = listed()
rebuilt = charts.refresh_font_cache()
print(json.dumps([before, rebuilt, listed(), charts.refresh_font_cache()]))
"""


@pytest.mark.slow
def test_fonts_installed_after_matplotlib_cached_its_list_are_found(tmp_path):
    fonts = tmp_path / "data" / "fonts"
    fonts.mkdir(parents=True)
    # A private matplotlib cache and a private user font folder ($XDG_DATA_HOME/fonts).
    env = {
        **os.environ,
        "MPLCONFIGDIR": str(tmp_path / "mpl"),
        "XDG_DATA_HOME": str(tmp_path / "data"),
        "XDG_CACHE_HOME": str(tmp_path / "cache"),
    }

    def probe() -> list[bool]:
        run = subprocess.run(
            [sys.executable, "-c", _FONT_PROBE], env=env, capture_output=True, text=True
        )
        assert run.returncode == 0, run.stderr
        return json.loads(run.stdout)

    assert probe() == [False, False, False, False]  # the list is cached, without the font
    bundled = Path(matplotlib.get_data_path()) / "fonts" / "ttf" / "cmss10.ttf"
    shutil.copyfile(bundled, fonts / "ProbeSans.ttf")  # "installed" after the cache
    assert probe() == [False, True, True, False]  # noticed, rebuilt once
    assert probe() == [True, False, True, False]  # the rebuilt list was cached


# ---------------------------------------------------------------------------------------------
# Drill-down and bar charts


def test_track_rank_lines_draws_one_line_per_chart_with_gaps():
    history = pd.DataFrame(
        {
            "chart_date": ["2026-03-01", "2026-03-02", "2026-03-04", "2026-03-02", "2026-03-03"],
            "playlist_id": ["g", "g", "g", "j", "j"],
            "playlist_name": ["Top Songs - Global"] * 3 + [None, None],
            "chart_rank": [5, 3, 1, 12, 20],
        }
    )
    (axes,) = charts.track_rank_lines(history, title="Lazy Ocean — Talia Lindqvist").axes
    lines = {line.get_label(): _ranks(line) for line in axes.get_lines()}
    assert list(lines) == ["Top Songs - Global", "j"]  # best chart first; no name: the id
    global_ranks, other = lines["Top Songs - Global"], lines["j"]
    assert global_ranks[:2] == [5, 3] and math.isnan(global_ranks[2]) and global_ranks[3] == 1
    assert math.isnan(other[0]) and other[1:3] == [12, 20] and math.isnan(other[3])
    assert axes.get_ylim() == (pytest.approx(20.5), pytest.approx(0.5))
    assert [text.get_text() for text in axes.get_legend().get_texts()] == list(lines)
    assert axes.get_title(loc="left") == "Lazy Ocean — Talia Lindqvist"


def test_climbers_fallers_bars_label_tracks_with_their_artists():
    frame = pd.DataFrame(
        {
            "track_id": ["T1", "T2", "T3"],
            "first_rank": [12, 4, 2],
            "last_rank": [3, 5, 9],
            "rank_change": [9, -1, -7],
            "track_name": ["Climber", "Slip", "Faller"],
            "artists": ["Ann", "Bo, Cy", None],
        }
    )
    (axes,) = charts.climbers_fallers_bars(frame).axes
    bars = axes.patches
    assert [bar.get_width() for bar in bars] == [9, -1, -7]
    assert [label.get_text() for label in axes.get_yticklabels()] == [
        "Climber — Ann",
        "Slip — Bo, Cy",
        "Faller",
    ]
    assert bars[0].get_facecolor() != bars[2].get_facecolor()
    assert axes.texts[0].get_text() == "+9  (#12 → #3)"


def test_days_on_chart_counts_since_first_seen_with_each_tracks_latest_row():
    # Chart rows of two days: days_on_chart counts from before any window (120, 45 ...).
    frame = pd.DataFrame(
        {
            "chart_date": ["2026-03-03"] * 3 + ["2026-03-04"] * 3,
            "track_id": ["T1", "T2", "T3"] * 2,
            "track_name": ["Old Favourite", "Newcomer", "Middle"] * 2,
            "artists": ["Ann", "Bo", "Cy"] * 2,
            "days_on_chart": [119, 1, 44, 120, 2, 45],
            "peak_rank": [1, 9, 3, 1, 7, 3],
        }
    )
    (axes,) = charts.days_on_chart_leaders(frame, top=2).axes
    assert [bar.get_width() for bar in axes.patches] == [120, 45]
    assert [label.get_text() for label in axes.get_yticklabels()] == [
        "Old Favourite — Ann",
        "Middle — Cy",
    ]
    assert [text.get_text() for text in axes.texts] == ["120 days, peak #1", "45 days, peak #3"]
    assert "since first seen" in axes.get_xlabel()


def test_charts_per_track_bars():
    frame = pd.DataFrame(
        {
            "track_id": ["a", "b", "c"],
            "track_name": ["Everywhere", "Somewhere", "Local Hit"],
            "artists": ["Ann", "Bo", "Cy"],
            "charts": [3, 2, 1],
            "best_rank": [1, 4, 2],
        }
    )
    (axes,) = charts.charts_per_track_bars(frame, top=2).axes
    assert [bar.get_width() for bar in axes.patches] == [3, 2]
    assert [label.get_text() for label in axes.get_yticklabels()] == [
        "Everywhere — Ann",
        "Somewhere — Bo",
    ]
    assert axes.texts[0].get_text() == "3 charts, best #1"


def test_artist_share_bars():
    frame = pd.DataFrame(
        {
            "artist_id": ["x1", "x2", "x3"],
            "name": ["Talia Lindqvist", "Алина", "박지호"],
            "entries": [8, 4, 2],
            "share": [0.4, 0.2, 0.1],
        }
    )
    (axes,) = charts.artist_share_bars(frame, top=10).axes
    assert [bar.get_width() for bar in axes.patches] == [0.4, 0.2, 0.1]
    assert [label.get_text() for label in axes.get_yticklabels()] == [
        "Talia Lindqvist",
        "Алина",
        "박지호",
    ]
    assert axes.texts[0].get_text() == "40.0%  (8 entries)"


def test_empty_frames_give_a_figure_that_says_so(tmp_path):
    empty_history = pd.DataFrame(columns=["chart_date", "track_id", "chart_rank"])
    no_names = pd.DataFrame(columns=["track_id", "track_name", "artists"])
    figures = [
        charts.bump_chart(empty_history, no_names, AS_OF, DAYS),
        charts.track_rank_lines(pd.DataFrame(columns=["chart_date", "playlist_id", "chart_rank"])),
        charts.climbers_fallers_bars(
            pd.DataFrame(columns=["track_id", "first_rank", "last_rank", "rank_change"])
        ),
        charts.days_on_chart_leaders(
            pd.DataFrame(columns=["track_id", "days_on_chart", "peak_rank"])
        ),
        charts.charts_per_track_bars(pd.DataFrame(columns=["track_id", "charts"])),
        charts.artist_share_bars(pd.DataFrame(columns=["artist_id", "name", "entries", "share"])),
    ]
    for index, figure in enumerate(figures):
        assert any(
            "No " in text.get_text() or "Not " in text.get_text() for text in figure.axes[0].texts
        )
        charts.save_figure(figure, tmp_path / f"empty{index}")


def test_the_image_installs_fonts_matplotlib_can_use():
    # Not built here (no Docker engine): the Dockerfile's text is checked instead.
    dockerfile = Path(__file__).parents[1] / "lambdas" / "Dockerfile"
    runs = [
        " ".join(line.split())
        for line in dockerfile.read_text(encoding="utf-8").replace("\\\n", " ").splitlines()
        if line.startswith("RUN ")
    ]
    fonts = next(run for run in runs if "dnf install" in run)
    assert "google-noto-sans-cjk-fonts" in fonts and "google-noto-sans-devanagari-fonts" in fonts
    assert fonts.endswith("fc-cache -f")
    check = runs[runs.index(fonts) + 1 :]
    assert any("charts.font_families()" in run and "Noto Sans CJK JP" in run for run in check)
