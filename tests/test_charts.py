"""etl_lib.charts: figure structure, non-Latin names, deterministic export, a PNG baseline."""

from __future__ import annotations

import math
import os
import shutil
import warnings
from datetime import date
from pathlib import Path

import pandas as pd
import pytest
from matplotlib import dates as mdates
from matplotlib.figure import Figure
from matplotlib.testing.compare import compare_images
from matplotlib.text import Annotation

from etl_lib import charts

BASELINE = Path(__file__).parent / "baseline" / "bump_chart.png"
# To rewrite the baseline instead of comparing with it:
#   SPOTIFY_ETL_UPDATE_BASELINE=1 .venv/bin/pytest tests/test_charts.py
UPDATE_BASELINE = os.environ.get("SPOTIFY_ETL_UPDATE_BASELINE") == "1"
# Root-mean-square difference on 0-255 pixel values. A moved line or label measures far
# more; different FreeType builds rendering the same text measure less.
BASELINE_TOLERANCE = 3.0

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
    "T01": "Lazy Ocean",
    "T02": "Chase Over the Tide",
    "T03": 'The Comet Said "Drive"',
    "T04": "Velvet, Velvet Carousel",
    "T05": "Белые ночи",
    "T06": "Neon Parade",
    "T07": "Mañana Será (with Luca Tiberi)",
    "T08": "Porcelain",
    "T09": "Ocean & Signal",
    "T10": "Летний дождь",
    "T11": "Cold Heart",
    "T12": "Tide",
}
WORLD_NAMES = {
    **LATIN_NAMES,
    "T01": "밤하늘 산책",
    "T02": "さよならの季節 - Live",
    "T03": "ليلة حب (with Ronan Rasmund)",
    "T04": "दिल की धड़कन",
    "T06": "לילה לבן (feat. 박지호 & 白石カナデ)",
    "T09": "A$AP $5 Remix",
}
DEJAVU_ONLY = ("DejaVu Sans",)


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


def test_bump_chart_draws_one_line_per_top_10_track(history):
    figure = charts.bump_chart(history, LATIN_NAMES, AS_OF, DAYS)
    lines = _track_lines(figure)
    assert list(lines) == TOP_10  # in last-day rank order; T08 and T12 left out
    assert all(len(line.get_xdata()) == DAYS for line in lines.values())
    assert lines["T05"].get_label() == "Белые ночи"


def test_bump_chart_puts_rank_1_at_the_top(history):
    (axes,) = charts.bump_chart(history, LATIN_NAMES, AS_OF, DAYS).axes
    top, bottom = axes.get_ylim()[1], axes.get_ylim()[0]
    assert top < bottom and top == pytest.approx(0.5)
    assert axes.yaxis_inverted()


def test_bump_chart_breaks_lines_where_a_track_was_off_the_chart(history):
    lines = _track_lines(charts.bump_chart(history, LATIN_NAMES, AS_OF, DAYS))
    # T11: #9, off, off, #8. T09: off, #9, #7, #7. T10 entered on day 3.
    t11 = _ranks(lines["T11"])
    assert t11[0] == 9 and math.isnan(t11[1]) and math.isnan(t11[2]) and t11[3] == 8
    t09 = _ranks(lines["T09"])
    assert math.isnan(t09[0]) and t09[1:] == [9, 7, 7]
    assert [math.isnan(v) for v in _ranks(lines["T10"])] == [True, True, False, False]
    assert _ranks(lines["T01"]) == [2, 1, 1, 2]


def test_bump_chart_labels_each_line_end_with_rank_and_name(history):
    figure = charts.bump_chart(history, LATIN_NAMES, AS_OF, DAYS)
    labels = {text.get_text(): text.xy for text in _annotations(figure)}
    last_day = mdates.date2num(AS_OF)
    expected = {
        f"{rank}. {LATIN_NAMES[track]}": (last_day, rank)
        for rank, track in enumerate(TOP_10, start=1)
    }
    assert labels == expected
    (axes,) = figure.axes
    title = axes.get_title(loc="left")
    assert "1 Mar" in title and "4 Mar 2026" in title


def test_bump_chart_filters_history_to_the_window(history):
    # A 2-day window: only 03-03 and 03-04 are drawn; T11 is at #8 on the last day only.
    lines = _track_lines(charts.bump_chart(history, LATIN_NAMES, AS_OF, 2))
    assert all(len(line.get_xdata()) == 2 for line in lines.values())
    assert math.isnan(_ranks(lines["T11"])[0]) and _ranks(lines["T11"])[1] == 8


def test_non_latin_names_neither_raise_nor_warn(history, tmp_path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        figure = charts.bump_chart(history, WORLD_NAMES, AS_OF, DAYS)
        charts.save_figure(figure, tmp_path / "world")
        artists = pd.DataFrame(
            {
                "artist_id": ["a1", "a2", "a3"],
                "name": ["박지호", "白石カナデ", "मीरा सिन्हा"],
                "entries": [3, 2, 1],
                "share": [0.3, 0.2, 0.1],
            }
        )
        charts.save_figure(charts.artist_share_bars(artists), tmp_path / "artists")
    assert [str(w.message) for w in caught] == []
    labels = [text.get_text() for text in _annotations(figure)]
    korean = next(label for label in labels if label.startswith("2. "))
    expected = "밤하늘 산책" if ord("밤") in _covered() else "bamhaneul sanchaek"
    assert korean == f"2. {expected}"
    assert r"A\$AP \$5 Remix" in " ".join(labels)  # escaped: no mathtext


def _covered() -> frozenset[int]:
    return charts._covered_codepoints(charts.font_families())


@pytest.mark.parametrize(
    ("name", "shown"),
    [
        ("Белые ночи", "Белые ночи"),
        ("ليلة حب", "\u200eليلة حب"),  # a left-to-right mark first: "3." stays left
        ("밤하늘 산책", "bamhaneul sanchaek"),
        ("Seoul Rain (서울의 비)", "Seoul Rain (seoului bi)"),
        ("きゃっと ちょっと コーヒー", "kyatto chotto koohii"),
        ("दिल की धड़कन", "dil kii dhadakan"),
        ("白石カナデ", "□kanade [ID1]"),  # no reading for Han without a dictionary
        ("A$AP", r"A\$AP"),
        (None, "ID1"),
    ],
)
def test_display_text_replaces_what_the_fonts_cannot_draw(name, shown):
    assert charts.display_text(name, "ID1", families=DEJAVU_ONLY) == shown


def test_display_text_shortens_long_names():
    shown = charts.display_text("Burning Tide (feat. Dario Dumarais & Highway Collective)")
    assert len(shown) == charts.LABEL_MAX_CHARS and shown.endswith("…")


def test_dejavu_sans_comes_first_in_the_fallback_list():
    assert charts.font_families()[0] == "DejaVu Sans"


def test_climbers_fallers_bars():
    frame = pd.DataFrame(
        {
            "track_id": ["T1", "T2", "T3"],
            "first_rank": [12, 4, 2],
            "last_rank": [3, 5, 9],
            "rank_change": [9, -1, -7],
            "name": ["Climber", "Slip", "Faller"],
        }
    )
    (axes,) = charts.climbers_fallers_bars(frame).axes
    bars = axes.patches
    assert [bar.get_width() for bar in bars] == [9, -1, -7]
    assert [label.get_text() for label in axes.get_yticklabels()] == ["Climber", "Slip", "Faller"]
    assert bars[0].get_facecolor() != bars[2].get_facecolor()
    assert axes.texts[0].get_text() == "+9  (#12 → #3)"


def test_days_on_chart_leaders_keeps_the_top_n():
    frame = pd.DataFrame(
        {
            "track_id": ["T1", "T2", "T3"],
            "days_on_chart": [4, 2, 3],
            "peak_rank": [1, 4, 2],
        }
    )
    (axes,) = charts.days_on_chart_leaders(frame, top=2).axes
    assert [bar.get_width() for bar in axes.patches] == [4, 3]
    assert [label.get_text() for label in axes.get_yticklabels()] == ["T1", "T3"]


def test_artist_share_bars():
    frame = pd.DataFrame(
        {
            "artist_id": ["x1", "x2", "x3"],
            "name": ["Talia Lindqvist", "Алина", "Juno"],
            "entries": [8, 4, 2],
            "share": [0.4, 0.2, 0.1],
        }
    )
    (axes,) = charts.artist_share_bars(frame, top=10).axes
    assert [bar.get_width() for bar in axes.patches] == [0.4, 0.2, 0.1]
    assert [label.get_text() for label in axes.get_yticklabels()] == [
        "Talia Lindqvist",
        "Алина",
        "Juno",
    ]
    assert axes.texts[0].get_text() == "40.0%  (8 entries)"


def test_empty_frames_give_a_figure_that_says_so(tmp_path):
    empty_history = pd.DataFrame(columns=["chart_date", "track_id", "chart_rank"])
    figures = [
        charts.bump_chart(empty_history, {}, AS_OF, DAYS),
        charts.climbers_fallers_bars(
            pd.DataFrame(columns=["track_id", "first_rank", "last_rank", "rank_change"])
        ),
        charts.artist_share_bars(pd.DataFrame(columns=["artist_id", "name", "entries", "share"])),
    ]
    for index, figure in enumerate(figures):
        assert any("No " in text.get_text() for text in figure.axes[0].texts)
        charts.save_figure(figure, tmp_path / f"empty{index}")


def test_save_figure_writes_identical_bytes_for_the_same_data(history, tmp_path):
    first = charts.save_figure(charts.bump_chart(history, LATIN_NAMES, AS_OF, DAYS), tmp_path / "a")
    second = charts.save_figure(
        charts.bump_chart(history, LATIN_NAMES, AS_OF, DAYS), tmp_path / "b" / "chart"
    )
    assert [path.name for path in first] == ["a.png", "a.svg"]
    assert [path.suffix for path in second] == [".png", ".svg"]
    assert first[1].read_bytes() == second[1].read_bytes()
    assert first[0].read_bytes() == second[0].read_bytes()
    svg = first[1].read_text()
    assert "<dc:date>" not in svg and "Matplotlib v" not in svg
    assert b"Software" not in first[0].read_bytes()[:4096]


def test_bump_chart_matches_the_baseline_image(history, tmp_path):
    figure = charts.bump_chart(history, LATIN_NAMES, AS_OF, DAYS)
    png, _ = charts.save_figure(figure, tmp_path / "bump_chart", dpi=50)
    if UPDATE_BASELINE:
        BASELINE.parent.mkdir(exist_ok=True)
        shutil.copyfile(png, BASELINE)
        pytest.skip(f"baseline rewritten: {BASELINE}")
    assert BASELINE.stat().st_size < 200_000
    problem = compare_images(str(BASELINE), str(png), tol=BASELINE_TOLERANCE)
    assert problem is None, problem


def test_charts_leave_the_global_matplotlib_settings_alone(history, tmp_path):
    import matplotlib

    before = dict(matplotlib.rcParams)
    charts.save_figure(charts.bump_chart(history, WORLD_NAMES, AS_OF, DAYS), tmp_path / "c")
    assert dict(matplotlib.rcParams) == before
