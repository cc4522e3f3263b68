"""Report charts as matplotlib Figures, and their deterministic PNG/SVG export.

Only matplotlib's object API is used (``matplotlib.figure.Figure``): no pyplot state, so
building charts in a library, a notebook or a server never touches a global figure list, and
style settings are applied with ``rc_context`` for the duration of one call only.

Names. Track and artist names come in every script and are drawn as they are. The SVG keeps
them as text (``svg.fonttype = "none"``), so a browser draws every script with its own fonts;
Jupyter and the report page show that SVG. The PNG is drawn by matplotlib with its font
fallback list: DejaVu Sans first (bundled with matplotlib, so Latin text looks the same on
every machine; it also has Greek, Cyrillic, Arabic and Hebrew), then whichever of
``FALLBACK_FONTS`` are installed (Noto Sans CJK, Noto Sans Devanagari, ...), glyph by glyph.
A character none of them has is a box in the PNG, without matplotlib's "Glyph ... missing"
warning. Installing the fonts (``fonts-noto-core`` and ``fonts-noto-cjk`` on Debian) draws
the real names: ``refresh_font_cache`` makes matplotlib see fonts installed after it cached
its font list.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import io
import math
import re
import unicodedata
import warnings
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path

import matplotlib
import pandas as pd
from matplotlib import colormaps, font_manager
from matplotlib import dates as mdates
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator, PercentFormatter

from etl_lib.reporting import analysis

BASE_FONT = "DejaVu Sans"
FALLBACK_FONTS = (
    "Noto Sans CJK JP",
    "Noto Sans CJK KR",
    "Noto Sans CJK SC",
    "Noto Sans CJK TC",
    "Noto Sans JP",
    "Noto Sans KR",
    "Noto Sans SC",
    "Source Han Sans",
    "IPAexGothic",
    "NanumGothic",
    "Noto Sans Devanagari",
    "Noto Sans Bengali",
    "Noto Sans Gurmukhi",
    "Noto Sans Tamil",
    "Noto Sans Telugu",
    "Noto Sans Thai",
    "Noto Sans Arabic",
    "Noto Sans Hebrew",
    "Noto Sans",
    "Hiragino Sans",
    "Apple SD Gothic Neo",
    "Yu Gothic",
    "Malgun Gothic",
    "Nirmala UI",
    "Arial Unicode MS",
)
LABEL_MAX_CHARS = 50
CREDIT_SEPARATOR = " — "
LEFT_TO_RIGHT_MARK = "\u200e"
# Beside matplotlib's cached font list: which font files it was last rebuilt for.
FONT_LIST_FINGERPRINT = "spotify-etl-font-files.sha256"
# matplotlib warns once per character that no font in the fallback list has. The names are
# still text in the SVG; in the PNG the character is a box, which is what the warning says.
_MISSING_GLYPH = r"Glyph \d+ \(.*\) missing from font\(s\)"

BUMP_FIGSIZE = (12.0, 7.0)
LINES_FIGSIZE = (11.0, 5.5)
DEFAULT_DPI = 100
# A fixed salt makes the SVG's generated ids the same on every save; each chart's ids then
# get a prefix of their own (see _unique_ids).
SVG_HASH_SALT = "spotify-charts-lake"
# Room around everything drawn: labels outside the axes are part of the saved picture.
EXPORT_PAD_INCHES = 0.15

CLIMB_COLOR = "#2a9d55"
FALL_COLOR = "#d1495b"
BAR_COLOR = "#3a6ea5"
INK = "#222222"


# ---------------------------------------------------------------------------------------------
# Fonts


def refresh_font_cache() -> bool:
    """Rebuild matplotlib's font list when font files were installed after it was cached.

    matplotlib lists the system's fonts once and keeps the list in ``fontlist-*.json`` in its
    cache folder, so a font installed later (``apt-get install fonts-noto-cjk``) is not used
    until that file is rebuilt. Returns whether it was. A file matplotlib cannot read stays
    unlisted after a rebuild; the fingerprint of the files rebuilt for, kept beside the
    list, keeps every later run from rebuilding again for it.
    """
    installed = sorted(font_manager.findSystemFonts())
    listed = {entry.fname for entry in font_manager.fontManager.ttflist}
    if set(installed) <= listed:
        return False
    marker = Path(matplotlib.get_cachedir()) / FONT_LIST_FINGERPRINT
    fingerprint = hashlib.sha256("\n".join(installed).encode()).hexdigest()
    if marker.is_file() and marker.read_text() == fingerprint:
        return False
    # matplotlib has no public rebuild: this is what its findfont does when a listed file
    # has gone (it also rewrites the cached list). The instance is updated in place,
    # because matplotlib's own modules hold references to it.
    rebuilt = font_manager._load_fontmanager(try_read_cache=False)
    vars(font_manager.fontManager).update(vars(rebuilt))
    font_manager.FontManager._findfont_cached.cache_clear()
    with contextlib.suppress(OSError):  # a read-only cache folder: rebuild again next run
        marker.write_text(fingerprint)
    font_families.cache_clear()
    return True


@functools.cache
def font_families() -> tuple[str, ...]:
    """The font fallback list the charts use: DejaVu Sans, then the installed fallbacks.

    Only installed families are listed, because matplotlib logs a warning for every missing
    one at each lookup. The first call refreshes matplotlib's font list
    (``refresh_font_cache``).
    """
    refresh_font_cache()
    installed = set(font_manager.fontManager.get_font_names())
    return (BASE_FONT, *(name for name in FALLBACK_FONTS if name in installed))


@contextlib.contextmanager
def _drawing() -> Iterator[None]:
    """Drawing without the "Glyph missing" warnings (see the module doc), and only those."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=_MISSING_GLYPH, category=UserWarning)
        yield


# ---------------------------------------------------------------------------------------------
# Labels


def _clean(value: object) -> str:
    """A name as one line of text; "" when missing."""
    if value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value)):
        return ""
    return " ".join(str(value).split())


def _shorten(text: str, limit: int) -> str:
    """``text`` in at most ``limit`` characters, cut at a space where one is near the end."""
    limit = max(limit, 2)
    if len(text) <= limit:
        return text
    cut = text[: limit - 1]
    space = cut.rfind(" ")
    if space >= 0.7 * len(cut):
        cut = cut[:space]
    return cut.rstrip(" ,-–—(&") + "…"


def display_text(value: object, limit: int = LABEL_MAX_CHARS) -> str:
    """A name as a label: one line, at most ``limit`` characters, "?" when missing."""
    return _shorten(_clean(value) or "?", limit)


def track_label(track_name: object, artists: object = None, limit: int = LABEL_MAX_CHARS) -> str:
    """The label "Track — Artist, Artist", in at most ``limit`` characters.

    The artists are shortened first, the track name keeping at least 60% of the room.
    """
    name = display_text(track_name, limit)
    credit = _clean(artists)
    if not credit or len(name) + len(CREDIT_SEPARATOR) + len(credit) <= limit:
        return f"{name}{CREDIT_SEPARATOR}{credit}" if credit else name
    room = limit - len(CREDIT_SEPARATOR)
    name = _shorten(name, max(room - len(credit), math.ceil(room * 0.6)))
    return f"{name}{CREDIT_SEPARATOR}{_shorten(credit, room - len(name))}"


def track_labels(names: pd.DataFrame, limit: int = LABEL_MAX_CHARS) -> dict[str, str]:
    """track_id -> ``track_label``, from a frame with track_id, track_name and artists.

    ``artists`` may be missing (labels are then track names alone), and so may
    ``track_name`` when there is a ``name`` column instead.
    """
    name_column = "track_name" if "track_name" in names.columns else "name"
    rows = names.drop_duplicates("track_id")
    credits = rows["artists"] if "artists" in rows.columns else [None] * len(rows)
    return {
        track_id: track_label(name, credit, limit)
        for track_id, name, credit in zip(rows["track_id"], rows[name_column], credits, strict=True)
    }


def _drawable(text: str) -> str:
    """``text`` for matplotlib: "$" escaped, so that a name like "A$AP" never turns on
    mathtext, and a left-to-right mark first when it holds Arabic or Hebrew, so that a
    label such as "3. <Arabic name> — Artist" keeps "3." on the left (the Arabic run still
    reads right to left)."""
    if any(unicodedata.bidirectional(character) in ("R", "AL") for character in text):
        text = LEFT_TO_RIGHT_MARK + text
    return text.replace("$", r"\$")


def _row_labels(frame: pd.DataFrame) -> list[str]:
    if "track_name" in frame.columns or "name" in frame.columns:
        labels = track_labels(frame)
        return [_drawable(labels[track_id]) for track_id in frame["track_id"]]
    return [_drawable(str(track_id)) for track_id in frame["track_id"]]


# ---------------------------------------------------------------------------------------------
# Figures and export


class ChartFigure(Figure):
    """A matplotlib Figure that Jupyter shows as a picture.

    Figures built with the object API (no pyplot) have no image representation of their own
    until pyplot's inline backend is loaded, so a notebook, papermill and the report's HTML
    would show them as ``<Figure size ...>`` text. This one answers IPython's SVG hook with
    the markup of ``inline_svg`` (names kept as text; JupyterLab and nbconvert's HTML prefer
    it) and its PNG hook with the bytes ``save_figure`` writes, for viewers without SVG.
    """

    def _repr_svg_(self) -> str:
        return inline_svg(self)

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        _save_png(self, buffer)
        return buffer.getvalue()


def _save_png(figure: Figure, target, dpi: int = DEFAULT_DPI) -> None:
    # No "Software" entry (and PNG has no date by default): the same figure, the same bytes.
    with _drawing():
        figure.savefig(
            target,
            format="png",
            dpi=dpi,
            metadata={"Software": None},
            bbox_inches="tight",
            pad_inches=EXPORT_PAD_INCHES,
        )


_SVG_ID = re.compile(r'\bid="([^"]+)"')
_SVG_REFERENCE = re.compile(r'(href="#|url\(#)([^")]+)')


def _unique_ids(svg: str) -> str:
    """``svg`` with a prefix on every id and reference, derived from its content.

    matplotlib numbers groups ("figure_1", "axes_1") and hashes clip paths and markers from
    the salt and their shape, so two charts inline in one page would share ids: a
    reference could pick the other chart's clip path. The same SVG keeps the same ids.
    """
    prefix = "chart-" + hashlib.sha256(svg.encode()).hexdigest()[:12] + "-"
    ids = set(_SVG_ID.findall(svg))
    svg = _SVG_ID.sub(lambda match: f'id="{prefix}{match[1]}"', svg)
    return _SVG_REFERENCE.sub(
        lambda match: match[1] + prefix + match[2] if match[2] in ids else match[0], svg
    )


# matplotlib sizes an SVG in points, which a browser shows a third larger than the PNG's
# pixels: a 12-inch chart would not fit a notebook's or a report's column. One point per
# CSS pixel fits it at about the size the scaled-down PNG is shown.
_SVG_SIZE_IN_POINTS = re.compile(r'\b(width|height)="([0-9.]+)pt"')


def _svg_document(figure: Figure) -> str:
    """The figure as an SVG file: text as text, no date, no matplotlib version, fixed ids,
    sized in CSS pixels."""
    buffer = io.BytesIO()
    with matplotlib.rc_context({"svg.hashsalt": SVG_HASH_SALT, "svg.fonttype": "none"}):
        with _drawing():
            figure.savefig(
                buffer,
                format="svg",
                metadata={"Date": None, "Creator": None},
                bbox_inches="tight",
                pad_inches=EXPORT_PAD_INCHES,
            )
    return _unique_ids(_SVG_SIZE_IN_POINTS.sub(r'\1="\2px"', buffer.getvalue().decode(), count=2))


_SVG_METADATA = re.compile(r"\s*<metadata>.*?</metadata>", re.DOTALL)


def inline_svg(figure: Figure) -> str:
    """The figure's ``<svg>`` element for an HTML page: the SVG file without its XML
    prologue and metadata. Names are ``<text>`` elements; ids are unique to the chart."""
    svg = _svg_document(figure)
    return _SVG_METADATA.sub("", svg[svg.index("<svg") :], count=1)


def save_figure(
    figure: Figure, path_without_suffix: str | Path, *, dpi: int = DEFAULT_DPI
) -> list[Path]:
    """Write ``<path>.png`` and ``<path>.svg``; the same figure gives the same bytes.

    Both are cropped to what is drawn, labels outside the axes included. The SVG keeps text
    as text, carries no date and no matplotlib version, and its ids are derived from its
    content; the PNG has no "Software" entry (and no date by default). Returns [png, svg].
    """
    base = Path(path_without_suffix)
    base.parent.mkdir(parents=True, exist_ok=True)
    # Appended, not with_suffix(): a name like "top.v2" keeps its dot.
    png = base.with_name(base.name + ".png")
    svg = base.with_name(base.name + ".svg")
    _save_png(figure, png, dpi)
    svg.write_text(_svg_document(figure), encoding="utf-8")
    return [png, svg]


def _settled(figure: ChartFigure) -> ChartFigure:
    """``figure`` laid out once, and that layout kept.

    Constrained layout starts from where the axes are, and the labels outside them move with
    the axes, so each draw would settle a little differently: the PNG, the SVG and Jupyter's
    pictures of one figure would not match. Laid out once (with the chart's style still in
    force), every export is the same drawing.
    """
    with _drawing():
        figure.draw_without_rendering()
    figure.set_layout_engine("none")
    return figure


def _style() -> dict:
    """rcParams for building one chart; applied with rc_context, never globally."""
    return {
        "font.family": list(font_families()),
        "font.size": 11,
        "axes.titlesize": 15,
        "axes.titleweight": "bold",
        "axes.titlepad": 12,
        "axes.labelsize": 12,
        "axes.edgecolor": "#888888",
        "axes.spines.top": False,
        "axes.spines.right": False,
        "xtick.labelsize": 10.5,
        "ytick.labelsize": 10.5,
        "text.color": INK,
        "axes.labelcolor": INK,
    }


def _day_label(day: date, with_year: bool = True) -> str:
    # Not strftime("%-d"): that flag does not exist on Windows.
    return f"{day.day} {day:%b}" + (f" {day:%Y}" if with_year else "")


def _span_label(first: date, last: date) -> str:
    return f"{_day_label(first, first.year != last.year)} – {_day_label(last)}"


def _no_data(axes, message: str) -> None:
    axes.text(0.5, 0.5, message, ha="center", va="center", transform=axes.transAxes, size=13)
    axes.set_xticks([])
    axes.set_yticks([])


def _as_dates(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values).dt.date


def _calendar(first: date, last: date) -> list[date]:
    return [first + timedelta(days=offset) for offset in range((last - first).days + 1)]


def _rank_axis(axes, best: int, worst: int) -> None:
    """An inverted rank axis from the best to the worst rank drawn, integer ticks only."""
    axes.set_ylim(worst + 0.5, best - 0.5)  # inverted: the best rank at the top
    span = worst - best + 1
    step = 1 if span <= 15 else 2 if span <= 30 else 5 if span <= 75 else 10
    if step <= 2:
        ticks = list(range(best, worst + 1, step))
    else:  # the best rank, then round ranks far enough below it: 1, 5, 10, ... or 4, 10, 15
        round_ranks = range(math.ceil(best / step) * step, worst + 1, step)
        ticks = [best, *(rank for rank in round_ranks if rank - best >= step / 2)]
    axes.yaxis.set_major_locator(FixedLocator(ticks))
    axes.yaxis.set_major_formatter(FuncFormatter(lambda value, _: f"{value:.0f}"))


def _date_axis(axes, days: list[date]) -> None:
    # Half a day of room on each side, so the first and last points clear the spines.
    axes.set_xlim(mdates.date2num(days[0]) - 0.5, mdates.date2num(days[-1]) + 0.5)
    # Every n-th date counted back from the last, so the last day always has its tick.
    step = max(1, math.ceil(len(days) / 10))
    axes.xaxis.set_major_locator(FixedLocator(mdates.date2num(days[::-1][::step])))
    axes.xaxis.set_major_formatter(
        FuncFormatter(lambda value, _: _day_label(mdates.num2date(value).date(), False))
    )
    axes.grid(axis="y", color="#dddddd", linewidth=0.8)
    axes.grid(axis="x", color="#f0f0f0", linewidth=0.8)
    axes.set_axisbelow(True)


def _rank_series(frame: pd.DataFrame, days: list[date]) -> list[float]:
    """One rank per day, NaN where absent, so that a line breaks there instead of bridging
    the gap."""
    ranks = frame.groupby("chart_date")["chart_rank"].min()
    return [float(ranks.get(day, math.nan)) for day in days]


# ---------------------------------------------------------------------------------------------
# Charts


def bump_chart(
    history: pd.DataFrame,
    names: pd.DataFrame,
    as_of: date | str,
    days: int,
    top: int = 10,
    *,
    title: str | None = None,
) -> ChartFigure:
    """The daily ranks of the ``top`` tracks of the window's last chart day.

    ``history`` is the ``rank_history`` query's result (chart_date, track_id, chart_rank);
    ``names`` a frame with track_id, track_name and artists (see ``track_labels``): the
    report's ``labels`` query, or the chart of the window's last day. One line
    per track (``gid`` = track id, ``label`` = "Track — Artists") over every day from the
    window's first chart day to its last, NaN where the track was off the chart, so the
    line breaks there. Each line's right end is labelled "rank. Track — Artists". The rank
    axis spans the ranks drawn, the best at the top.

    A window with one chart day has no movement to draw: the figure says so in its middle
    (the caller may also leave it out).
    """
    window = analysis.window_dates(as_of, days)
    frame = history[["chart_date", "track_id", "chart_rank"]].copy()
    frame["chart_date"] = _as_dates(frame["chart_date"])
    frame = frame[frame["chart_date"].between(window[0], window[-1])]
    with matplotlib.rc_context(_style()):
        figure = ChartFigure(figsize=BUMP_FIGSIZE, layout="constrained")
        axes = figure.add_subplot()
        if frame.empty:
            axes.set_title(title or f"Top {top} tracks, {_span_label(window[0], window[-1])}")
            _no_data(axes, "No chart data in this window")
            return _settled(figure)
        first_day, last_day = min(frame["chart_date"]), max(frame["chart_date"])
        if first_day == last_day:
            axes.set_title(title or f"Top {top} tracks on {_day_label(last_day)}", loc="left")
            _no_data(axes, "One chart day in the window: no movement to draw")
            return _settled(figure)
        shown_days = _calendar(first_day, last_day)
        leaders = frame[(frame["chart_date"] == last_day) & (frame["chart_rank"] <= top)]
        leaders = leaders.sort_values("chart_rank")
        labels = track_labels(names)
        palette = colormaps["tab10" if len(leaders) <= 10 else "tab20"].colors
        label_rows = []
        best, worst = math.inf, 1
        for index, (track_id, end_rank) in enumerate(
            zip(leaders["track_id"], leaders["chart_rank"], strict=True)
        ):
            rows = frame[frame["track_id"] == track_id]
            best = min(best, int(rows["chart_rank"].min()))
            worst = max(worst, int(rows["chart_rank"].max()))
            color = palette[index % len(palette)]
            label = labels.get(track_id) or str(track_id)
            axes.plot(
                shown_days,
                _rank_series(rows, shown_days),
                color=color,
                linewidth=2.6,
                marker="o",
                markersize=4.5,
                solid_capstyle="round",
                solid_joinstyle="round",
                label=_drawable(label),
                gid=track_id,
            )
            label_rows.append((int(end_rank), _drawable(f"{int(end_rank)}. {label}"), color))
        _rank_axis(axes, int(best), worst)
        _date_axis(axes, shown_days)
        axes.set_ylabel("Chart rank")
        _label_line_ends(axes, figure, last_day, label_rows, int(best), worst)
        axes.set_title(
            title
            or f"Top {len(leaders)} tracks on {_day_label(last_day)}: daily rank, "
            f"{_span_label(first_day, last_day)} ({len(shown_days)} days)",
            loc="left",
        )
        return _settled(figure)


def _label_line_ends(axes, figure, last_day, rows, best: int, worst: int) -> None:
    """Labels beside the lines' right ends, nudged apart where ranks crowd the axis."""
    fontsize = 10.5
    # Height of one rank in points, from the axes' share of the figure (about 0.8 of it).
    points_per_rank = figure.get_figheight() * 72 * 0.8 / (worst - best + 1)
    min_gap = fontsize * 1.35 / points_per_rank
    placed: list[float] = []
    for rank, _, _ in rows:
        placed.append(max(float(rank), placed[-1] + min_gap) if placed else float(rank))
    for (rank, text, color), label_y in zip(rows, placed, strict=True):
        axes.annotate(
            text,
            xy=(mdates.date2num(last_day), rank),
            xytext=(1.035, label_y),
            textcoords=("axes fraction", "data"),
            va="center",
            ha="left",
            fontsize=fontsize,
            color=color,
            fontweight="bold",
            annotation_clip=False,
            arrowprops={
                "arrowstyle": "-",
                "color": color,
                "linewidth": 1.0,
                "shrinkA": 2,
                "shrinkB": 4,
                "relpos": (0.0, 0.5),  # from the text's left edge, not across it
            },
        )


def track_rank_lines(history: pd.DataFrame, *, title: str | None = None) -> ChartFigure:
    """One track's rank over time: one line per chart (playlist), gaps for days off it.

    ``history`` has chart_date, chart_rank and playlist_name or playlist_id (a missing name
    shows the id). The rank axis spans the ranks drawn, the best at the top; the dates run
    from the first to the last day in ``history``.
    """
    frame = history.copy()
    frame["chart_date"] = _as_dates(frame["chart_date"])
    if "playlist_name" in frame.columns:
        fallback = frame["playlist_id"] if "playlist_id" in frame.columns else "?"
        frame["chart"] = frame["playlist_name"].where(frame["playlist_name"].notna(), fallback)
    else:
        frame["chart"] = frame["playlist_id"]
    with matplotlib.rc_context(_style()):
        figure = ChartFigure(figsize=LINES_FIGSIZE, layout="constrained")
        axes = figure.add_subplot()
        axes.set_title(title or "Rank over time", loc="left")
        if frame.empty:
            _no_data(axes, "Not on any chart in this period")
            return _settled(figure)
        shown_days = _calendar(min(frame["chart_date"]), max(frame["chart_date"]))
        # Best chart first, so the legend reads like the lines from the top.
        order = frame.groupby("chart")["chart_rank"].min().sort_values(kind="stable").index
        palette = colormaps["tab10"].colors
        for index, chart in enumerate(order):
            axes.plot(
                shown_days,
                _rank_series(frame[frame["chart"] == chart], shown_days),
                color=palette[index % len(palette)],
                linewidth=2.2,
                marker="o",
                markersize=4.5,
                solid_joinstyle="round",
                label=_drawable(display_text(chart)),
            )
        _rank_axis(axes, int(frame["chart_rank"].min()), int(frame["chart_rank"].max()))
        _date_axis(axes, shown_days)
        axes.set_ylabel("Chart rank")
        axes.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False)
        return _settled(figure)


def _horizontal_bars(
    values: list[float],
    labels: list[str],
    annotations: list[str],
    colors: list[str],
    *,
    title: str,
    xlabel: str,
    empty_message: str,
    percent: bool = False,
) -> ChartFigure:
    """One horizontal bar per row, the first row at the top, each annotated at its end."""
    with matplotlib.rc_context(_style()):
        figure = ChartFigure(
            figsize=(10.0, max(3.2, 0.5 * len(values) + 1.8)), layout="constrained"
        )
        axes = figure.add_subplot()
        axes.set_title(title, loc="left")
        if not values:
            _no_data(axes, empty_message)
            return _settled(figure)
        positions = list(range(len(values)))
        axes.barh(positions, values, color=colors, height=0.68)
        # Tick labels are drawn after this rc_context ends: their fonts are given here.
        axes.set_yticks(positions, labels=labels, fontfamily=list(font_families()))
        axes.set_ylim(len(values) - 0.5, -0.5)  # first row at the top
        axes.axvline(0, color="#888888", linewidth=0.8)
        for position, value, note in zip(positions, values, annotations, strict=True):
            # Right of the bar's end, or right of zero for a negative bar: never over the
            # labels on the left.
            axes.annotate(
                note,
                xy=(max(value, 0), position),
                xytext=(5, 0),
                textcoords="offset points",
                ha="left",
                va="center",
                fontsize=10,
            )
        low = min(0.0, min(values))
        high = max(0.0, max(values))
        # Room for the annotations right of the longest bar (or of zero).
        axes.set_xlim(low * 1.05, high + 0.35 * (high - low))
        if percent:
            axes.xaxis.set_major_formatter(PercentFormatter(xmax=1.0, decimals=0))
        else:
            axes.xaxis.set_major_locator(MaxNLocator(integer=True))
        axes.grid(axis="x", color="#e6e6e6", linewidth=0.8)
        axes.set_axisbelow(True)
        axes.set_xlabel(xlabel)
        axes.tick_params(axis="y", length=0)
        return _settled(figure)


def climbers_fallers_bars(frame: pd.DataFrame, *, title: str | None = None) -> ChartFigure:
    """The ``climbers_and_fallers`` query's result as bars: climbs right (green), falls left
    (red).

    Labels are "Track — Artists" when ``frame`` has track_name (or name) and artists
    columns, else track ids.
    """
    rows = frame.sort_values("rank_change", ascending=False, kind="stable")
    changes = [int(v) for v in rows["rank_change"]]
    notes = [
        f"{change:+d}  (#{int(first)} → #{int(last)})".replace("-", "−")
        for change, first, last in zip(changes, rows["first_rank"], rows["last_rank"], strict=True)
    ]
    return _horizontal_bars(
        changes,
        _row_labels(rows),
        notes,
        [CLIMB_COLOR if change > 0 else FALL_COLOR for change in changes],
        title=title or "Biggest climbers and fallers",
        xlabel="Places climbed (negative: fallen), first to last day of the window",
        empty_message="No track moved between the first and last day",
    )


def days_on_chart_leaders(
    frame: pd.DataFrame, top: int = 10, *, title: str | None = None
) -> ChartFigure:
    """The ``top`` tracks by days on the chart, with their peak.

    ``frame`` has track_id, days_on_chart, peak_rank and, for labels, track_name and
    artists: the chart rows of one day, whose days_on_chart count every chart day since the
    track was first seen. Rows of several days (a chart_date or dt column) count with each
    track's latest.
    """
    date_column = next((c for c in ("chart_date", "dt") if c in frame.columns), None)
    rows = frame
    if date_column is not None:
        rows = rows.sort_values(date_column).drop_duplicates("track_id", keep="last")
    rows = rows.sort_values(
        ["days_on_chart", "peak_rank", "track_id"], ascending=[False, True, True]
    ).head(top)
    values = [int(v) for v in rows["days_on_chart"]]
    notes = [
        f"{d} day{'s' if d != 1 else ''}, peak #{int(p)}"
        for d, p in zip(values, rows["peak_rank"], strict=True)
    ]
    return _horizontal_bars(
        values,
        _row_labels(rows),
        notes,
        [BAR_COLOR] * len(values),
        title=title or f"Longest on the chart (top {top})",
        xlabel="Days on the chart since first seen",
        empty_message="No chart data in this window",
    )


def charts_per_track_bars(
    frame: pd.DataFrame, top: int = 15, *, title: str | None = None
) -> ChartFigure:
    """Songs by the number of charts (playlists) they are on, most first.

    ``frame`` has track_id, charts (a count) and, for labels, track_name and artists; a
    best_rank column adds each song's best rank across those charts to its bar.
    """
    sort_columns = ["charts", *(["best_rank"] if "best_rank" in frame.columns else [])]
    rows = frame.sort_values(
        [*sort_columns, "track_id"], ascending=[False, *([True] * len(sort_columns))]
    ).head(top)
    values = [int(v) for v in rows["charts"]]
    best = rows["best_rank"] if "best_rank" in rows.columns else [None] * len(rows)
    notes = [
        f"{n} chart{'s' if n != 1 else ''}" + (f", best #{int(b)}" if pd.notna(b) else "")
        for n, b in zip(values, best, strict=True)
    ]
    return _horizontal_bars(
        values,
        _row_labels(rows),
        notes,
        [BAR_COLOR] * len(values),
        title=title or f"Songs on the most charts (top {top})",
        xlabel="Charts the song is on",
        empty_message="No chart data for this day",
    )


def artist_share_bars(
    frame: pd.DataFrame, top: int = 10, *, title: str | None = None
) -> ChartFigure:
    """The ``top`` artists of the ``artist_share`` query's result by share of chart entries."""
    rows = frame.sort_values(["entries", "artist_id"], ascending=[False, True]).head(top)
    shares = [float(v) for v in rows["share"]]
    labels = [_drawable(display_text(name)) for name in rows["name"]]
    notes = [f"{s:.1%}  ({int(e)} entries)" for s, e in zip(shares, rows["entries"], strict=True)]
    return _horizontal_bars(
        shares,
        labels,
        notes,
        [BAR_COLOR] * len(shares),
        title=title or f"Share of chart entries by artist (top {top})",
        xlabel="Share of chart entries (every credited artist counts)",
        empty_message="No chart data in this window",
        percent=True,
    )
