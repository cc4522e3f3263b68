"""Report charts as matplotlib Figures, and their deterministic PNG/SVG export.

Only matplotlib's object API is used (``matplotlib.figure.Figure``): no pyplot state, so
building charts in a library, a notebook or a server never touches a global figure list, and
style settings are applied with ``rc_context`` for the duration of one call only.

Fonts. Track and artist names come in every script. The charts use matplotlib's font
fallback list: DejaVu Sans first (bundled with matplotlib, so Latin text renders the same on
every machine; it also covers Cyrillic, Greek, Arabic and Hebrew), then whichever of
``FALLBACK_FONTS`` are installed (Noto Sans CJK, Noto Sans Devanagari, ...), glyph by glyph.
Before drawing, every name goes through ``display_text``: a character that none of those
fonts has would otherwise draw as a box *and* raise matplotlib's "Glyph ... missing from
font(s)" warning, so it is replaced first. Hangul, kana and Devanagari are romanized (Revised
Romanization, Hepburn, a simple Hindi scheme); anything else (Han ideographs, ...) becomes
``□``, and the label then ends with the track or artist id, so two such names stay apart and
can be looked up. Installing a font with the glyphs (``fonts-noto-cjk`` on Debian) makes the
original names appear, with no code change.
"""

from __future__ import annotations

import functools
import io
import math
import unicodedata
from collections.abc import Iterable, Mapping
from datetime import date, timedelta
from pathlib import Path

import matplotlib
import pandas as pd
from matplotlib import colormaps, font_manager
from matplotlib import dates as mdates
from matplotlib.figure import Figure
from matplotlib.ticker import FixedLocator, FuncFormatter, MaxNLocator, PercentFormatter

from etl_lib import analysis

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
    "IPAGothic",
    "NanumGothic",
    "Noto Sans Devanagari",
    "Lohit Devanagari",
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
MISSING_GLYPH = "□"
LEFT_TO_RIGHT_MARK = "\u200e"
LABEL_MAX_CHARS = 40

BUMP_FIGSIZE = (12.0, 7.0)
DEFAULT_DPI = 100
# A fixed salt makes the SVG's generated ids the same on every save.
SVG_HASH_SALT = "spotify-charts-lake"

CLIMB_COLOR = "#2a9d55"
FALL_COLOR = "#d1495b"
BAR_COLOR = "#3a6ea5"
INK = "#222222"


# ---------------------------------------------------------------------------------------------
# Fonts and labels


@functools.cache
def font_families() -> tuple[str, ...]:
    """The font fallback list the charts use: DejaVu Sans, then the installed fallbacks.

    Only installed families are listed, because matplotlib logs a warning for every missing
    one at each lookup. Cached: after installing fonts, call ``font_families.cache_clear()``.
    """
    installed = {entry.name for entry in font_manager.fontManager.ttflist}
    return (BASE_FONT, *(name for name in FALLBACK_FONTS if name in installed))


@functools.cache
def _covered_codepoints(families: tuple[str, ...]) -> frozenset[int]:
    """Characters some family draws in both weights the charts use (labels are bold)."""
    covered: set[int] = set()
    for family in families:
        try:
            faces = [
                font_manager.findfont(
                    font_manager.FontProperties(family=family, weight=weight),
                    fallback_to_default=False,
                )
                for weight in ("normal", "bold")
            ]
        except ValueError:  # not installed after all
            continue
        charmaps = [set(font_manager.get_font(face).get_charmap()) for face in faces]
        covered.update(set.intersection(*charmaps))
    return frozenset(covered)


def display_text(
    text: object, identifier: str | None = None, families: Iterable[str] | None = None
) -> str:
    """``text`` as the chart fonts can draw it, without warnings (see the module doc).

    Characters no font in ``families`` (default ``font_families()``) has are romanized or
    replaced by ``□``; when a ``□`` was needed, `` [identifier]`` is appended. A name with
    right-to-left script starts with a left-to-right mark, so labels read left to right as a
    whole (Arabic and Hebrew runs inside still read right to left). Dollar signs are escaped
    so that a name like "$uicide" never turns on mathtext.
    """
    if text is None or (isinstance(text, float) and math.isnan(text)) or text is pd.NA:
        return identifier or "?"
    covered = _covered_codepoints(tuple(families) if families is not None else font_families())
    shown, lossy = _replace_uncovered(str(text), covered)
    shown = _shorten(" ".join(shown.split()) or "?")
    if lossy and identifier:
        shown = f"{shown} [{identifier}]"
    if ord(LEFT_TO_RIGHT_MARK) in covered and any(
        unicodedata.bidirectional(character) in ("R", "AL") for character in shown
    ):
        # A label that starts with Arabic or Hebrew would otherwise be laid out right to
        # left as a whole, moving "3." or "[id]" to the wrong end.
        shown = LEFT_TO_RIGHT_MARK + shown
    return shown.replace("$", r"\$")


def _shorten(text: str, limit: int = LABEL_MAX_CHARS) -> str:
    return text if len(text) <= limit else text[: limit - 1].rstrip() + "…"


def _replace_uncovered(text: str, covered: frozenset[int]) -> tuple[str, bool]:
    """(text with every uncovered run romanized or boxed, whether a box was needed)."""
    box = MISSING_GLYPH if ord(MISSING_GLYPH) in covered else "?"
    pieces: list[str] = []
    lossy = False
    run: list[str] = []
    for character in [*text, None]:
        if character is not None and ord(character) not in covered:
            run.append(character)
            continue
        if run:
            romanized, run_lossy = _romanize("".join(run), box)
            pieces.append(romanized)
            lossy = lossy or run_lossy
            run = []
        if character is not None:
            pieces.append(character)
    return "".join(pieces), lossy


def _romanize(run: str, box: str) -> tuple[str, bool]:
    """A run of characters the fonts lack, in Latin letters where the script allows."""
    out: list[str] = []
    lossy = False
    index = 0
    while index < len(run):
        character = run[index]
        if _is_devanagari(character):
            end = index
            while end < len(run) and _is_devanagari(run[end]):
                end += 1
            out.append(_romanize_devanagari(run[index:end]))
            index = end
            continue
        if _is_kana(character):
            end = index
            while end < len(run) and _is_kana(run[end]):
                end += 1
            out.append(_romanize_kana(run[index:end]))
            index = end
            continue
        index += 1
        if 0xAC00 <= ord(character) <= 0xD7A3:
            out.append(_romanize_hangul(character))
        elif unicodedata.category(character)[0] == "M" or unicodedata.category(character) == "Cf":
            continue  # a combining mark or an invisible format character: nothing to show
        else:
            if not out or out[-1] != box:  # one box per run of unknown characters
                out.append(box)
            lossy = True
    return "".join(out), lossy


def _jamo_table(spelled: str) -> tuple[str, ...]:
    return tuple("" if jamo == "-" else jamo for jamo in spelled.split())


# Revised Romanization of Korean, syllable by syllable (no sound-change rules), in the
# order of Unicode's syllable block. "-" is a silent initial (ieung) or no final consonant.
_HANGUL_INITIALS = _jamo_table("g kk n d tt r m b pp s ss - j jj ch k t p h")
_HANGUL_VOWELS = _jamo_table("a ae ya yae eo e yeo ye o wa wae oe yo u wo we wi yu eu ui i")
_HANGUL_FINALS = _jamo_table("- k k k n n n t l k m l l l p l m p p t t ng t t k t p t")


def _romanize_hangul(syllable: str) -> str:
    offset = ord(syllable) - 0xAC00
    initial, rest = divmod(offset, 21 * 28)
    vowel, final = divmod(rest, 28)
    return _HANGUL_INITIALS[initial] + _HANGUL_VOWELS[vowel] + _HANGUL_FINALS[final]


def _is_kana(character: str) -> bool:
    return 0x3041 <= ord(character) <= 0x30FF


# Unicode names spell kana in Kunrei-shiki; Hepburn is what readers expect.
_KUNREI_TO_HEPBURN = {
    "si": "shi",
    "ti": "chi",
    "tu": "tsu",
    "hu": "fu",
    "zi": "ji",
    "di": "ji",
    "du": "zu",
    "wo": "o",
}


def _romanize_kana(run: str) -> str:
    syllables: list[str] = []
    double_next = False  # after a small tsu: the next consonant is doubled
    for character in run:
        name = unicodedata.name(character, "")
        if name == "KATAKANA-HIRAGANA PROLONGED SOUND MARK":
            if syllables and syllables[-1][-1:] in "aeiou":
                syllables.append(syllables[-1][-1])
            continue
        if name == "KATAKANA MIDDLE DOT":
            syllables.append(" ")
            continue
        sound = name.rpartition("LETTER ")[2].lower()
        if not sound or " " in sound.removeprefix("small "):
            continue  # iteration marks, voicing marks and the like
        if sound == "small tu":
            double_next = True
            continue
        if sound.startswith("small "):
            sound = sound.removeprefix("small ")
            previous = syllables[-1] if syllables else ""
            if sound in ("ya", "yu", "yo") and previous.endswith("i") and len(previous) > 1:
                # kya, sha, cha, ja: the small y-kana merges with the i-syllable before it
                stem = previous[:-1]
                syllables[-1] = stem + (sound[1:] if stem.endswith(("sh", "ch", "j")) else sound)
                continue
        sound = _KUNREI_TO_HEPBURN.get(sound, sound)
        if double_next and sound[0] not in "aeiou":
            sound = ("t" if sound.startswith("ch") else sound[0]) + sound
        double_next = False
        syllables.append(sound)
    return "".join(syllables)


def _is_devanagari(character: str) -> bool:
    return 0x0900 <= ord(character) <= 0x097F


# Retroflex and other distinctions that plain Latin letters do not make.
_DEVANAGARI_SIMPLER = {"dd": "d", "ddh": "dh", "tt": "t", "tth": "th", "nn": "n", "ss": "sh"}
_DEVANAGARI_SIGNS = {"ANUSVARA": "n", "CANDRABINDU": "n", "VISARGA": "h"}


def _romanize_devanagari(run: str) -> str:
    """A simple Hindi romanization: consonants carry an 'a' unless a vowel sign or virama
    follows, and a word's final 'a' is silent (dil, not dila)."""
    out: list[str] = []
    inherent_a = False  # the last consonant still carries its 'a'
    letters_in_word = 0

    def end_word() -> None:
        nonlocal inherent_a, letters_in_word
        if inherent_a and letters_in_word == 1:
            out.append("a")  # a one-letter word keeps its vowel: na
        inherent_a, letters_in_word = False, 0

    for character in run:
        name = unicodedata.name(character, "")
        if name.startswith("DEVANAGARI LETTER "):
            sound = name.removeprefix("DEVANAGARI LETTER ").lower()
            consonant = sound.endswith("a") and sound not in ("a", "aa") and " " not in sound
            if inherent_a:
                out.append("a")
            if consonant:
                out.append(_DEVANAGARI_SIMPLER.get(sound[:-1], sound[:-1]))
            else:
                out.append(sound.replace("vocalic ", "").replace(" ", ""))
            inherent_a = consonant
            letters_in_word += 1
        elif name.startswith("DEVANAGARI VOWEL SIGN "):
            sign = name.removeprefix("DEVANAGARI VOWEL SIGN ").lower()
            out.append("ri" if sign == "vocalic r" else sign.split()[-1])
            inherent_a = False
        elif name.removeprefix("DEVANAGARI SIGN ") in _DEVANAGARI_SIGNS:
            if inherent_a:
                out.append("a")
            out.append(_DEVANAGARI_SIGNS[name.removeprefix("DEVANAGARI SIGN ")])
            inherent_a = False
        elif name == "DEVANAGARI SIGN VIRAMA":
            inherent_a = False
        elif name.startswith("DEVANAGARI DIGIT "):
            end_word()
            out.append(str(unicodedata.digit(character)))
        elif name in ("DEVANAGARI DANDA", "DEVANAGARI DOUBLE DANDA"):
            end_word()
            out.append(".")
        # other signs (nukta, accents) only modify the letter before them
    end_word()
    return "".join(out)


# ---------------------------------------------------------------------------------------------
# Charts


class ChartFigure(Figure):
    """A matplotlib Figure that Jupyter shows as a picture.

    Figures built with the object API (no pyplot) have no image representation of their own
    until pyplot's inline backend is loaded, so a notebook, papermill and the report's HTML
    would show them as ``<Figure size ...>`` text. This one answers IPython's PNG hook with
    the same bytes ``save_figure`` writes.
    """

    def _repr_png_(self) -> bytes:
        buffer = io.BytesIO()
        _save_png(self, buffer)
        return buffer.getvalue()


def _save_png(figure: Figure, target, dpi: int = DEFAULT_DPI) -> None:
    # No "Software" entry (and PNG has no date by default): the same figure, the same bytes.
    figure.savefig(target, format="png", dpi=dpi, metadata={"Software": None})


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


def _names_lookup(track_names) -> Mapping[str, str]:
    if isinstance(track_names, pd.DataFrame):
        return dict(zip(track_names["track_id"], track_names["name"], strict=True))
    if isinstance(track_names, pd.Series):
        return track_names.to_dict()
    return dict(track_names or {})


def _day_label(day: date, with_year: bool = True) -> str:
    # Not strftime("%-d"): that flag does not exist on Windows.
    return f"{day.day} {day:%b}" + (f" {day:%Y}" if with_year else "")


def _no_data(axes, message: str) -> None:
    axes.text(0.5, 0.5, message, ha="center", va="center", transform=axes.transAxes, size=13)
    axes.set_xticks([])
    axes.set_yticks([])


def bump_chart(
    history: pd.DataFrame,
    track_names,
    as_of: date | str,
    days: int,
    top: int = 10,
    *,
    title: str | None = None,
) -> Figure:
    """The ranks over the window of the ``top`` tracks of its last chart day.

    ``history`` is ``analysis.rank_history`` output (chart_date, track_id, chart_rank);
    ``track_names`` maps track_id to name (a dict, a Series, or a frame with track_id and
    name). Rank 1 is at the top. One line per track (``gid`` = track id, ``label`` = name)
    over every date of the window, NaN where the track was off the chart, so the line breaks
    there instead of bridging the gap. Each line's right end is labelled "rank. name".
    """
    window = analysis.window_dates(as_of, days)
    names = _names_lookup(track_names)
    frame = history[["chart_date", "track_id", "chart_rank"]].copy()
    frame["chart_date"] = pd.to_datetime(frame["chart_date"]).dt.date
    frame = frame[[window[0] <= day <= window[-1] for day in frame["chart_date"]]]
    with matplotlib.rc_context(_style()):
        figure = ChartFigure(figsize=BUMP_FIGSIZE, layout="constrained")
        axes = figure.add_subplot()
        span = f"{_day_label(window[0], window[0].year != window[-1].year)} – " + _day_label(
            window[-1]
        )
        if frame.empty:
            axes.set_title(title or f"Top {top} tracks, {span}")
            _no_data(axes, "No chart data in this window")
            return figure
        last_day = max(frame["chart_date"])
        leaders = frame[(frame["chart_date"] == last_day) & (frame["chart_rank"] <= top)]
        leaders = leaders.sort_values("chart_rank")
        palette = colormaps["tab10" if len(leaders) <= 10 else "tab20"].colors
        lowest_rank = 1
        label_rows = []
        for index, (track_id, end_rank) in enumerate(
            zip(leaders["track_id"], leaders["chart_rank"], strict=True)
        ):
            ranks = frame[frame["track_id"] == track_id].groupby("chart_date")["chart_rank"].min()
            series = [float(ranks.get(day, math.nan)) for day in window]
            lowest_rank = max(lowest_rank, int(ranks.max()))
            color = palette[index % len(palette)]
            name = display_text(names.get(track_id), track_id)
            axes.plot(
                window,
                series,
                color=color,
                linewidth=2.6,
                marker="o",
                markersize=4.5,
                solid_capstyle="round",
                label=name,
                gid=track_id,
            )
            label_rows.append((int(end_rank), f"{int(end_rank)}. {name}", color))
        axes.set_ylim(lowest_rank + 0.5, 0.5)  # inverted: rank 1 at the top
        axes.yaxis.set_major_locator(FixedLocator(_rank_ticks(lowest_rank)))
        axes.set_xlim(
            mdates.date2num(window[0] - timedelta(hours=12)),
            mdates.date2num(window[-1] + timedelta(hours=12)),
        )
        # Every n-th date counted back from the last, so the last day always has its tick.
        step = max(1, math.ceil(len(window) / 10))
        axes.xaxis.set_major_locator(FixedLocator(mdates.date2num(window[::-1][::step])))
        axes.xaxis.set_major_formatter(
            FuncFormatter(lambda value, _: _day_label(mdates.num2date(value).date(), False))
        )
        axes.grid(axis="y", color="#dddddd", linewidth=0.8)
        axes.grid(axis="x", color="#f0f0f0", linewidth=0.8)
        axes.set_axisbelow(True)
        axes.set_ylabel("Chart rank")
        _label_line_ends(axes, figure, last_day, label_rows, lowest_rank)
        axes.set_title(
            title
            or f"Top {len(leaders)} tracks on {_day_label(last_day)}: daily rank, {span} "
            f"({days} days)",
            loc="left",
        )
    return figure


def _rank_ticks(lowest_rank: int) -> list[int]:
    step = 1 if lowest_rank <= 12 else 5 if lowest_rank <= 60 else 10
    ticks = [1, *range(step if step > 1 else 2, lowest_rank + 1, step)]
    return sorted(set(ticks))


def _label_line_ends(axes, figure, last_day, rows, lowest_rank: int) -> None:
    """Names beside the lines' right ends, nudged apart where ranks crowd the axis."""
    fontsize = 10.5
    # Height of one rank in points, from the axes' share of the figure (about 0.8 of it).
    points_per_rank = figure.get_figheight() * 72 * 0.8 / (lowest_rank + 0.5)
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
) -> Figure:
    """One horizontal bar per row, the first row at the top, each annotated at its end."""
    with matplotlib.rc_context(_style()):
        figure = ChartFigure(
            figsize=(10.0, max(3.2, 0.5 * len(values) + 1.8)), layout="constrained"
        )
        axes = figure.add_subplot()
        axes.set_title(title, loc="left")
        if not values:
            _no_data(axes, empty_message)
            return figure
        positions = list(range(len(values)))
        axes.barh(positions, values, color=colors, height=0.68)
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
    return figure


def _track_labels(frame: pd.DataFrame) -> list[str]:
    if "name" in frame.columns:
        return [display_text(n, t) for n, t in zip(frame["name"], frame["track_id"], strict=True)]
    return [str(t) for t in frame["track_id"]]


def climbers_fallers_bars(frame: pd.DataFrame, *, title: str | None = None) -> Figure:
    """``analysis.climbers_and_fallers`` as bars: climbs right (green), falls left (red).

    Labels are the ``name`` column when present (``analysis.with_track_names``), else ids.
    """
    rows = frame.sort_values("rank_change", ascending=False, kind="stable")
    changes = [int(v) for v in rows["rank_change"]]
    notes = [
        f"{change:+d}  (#{int(first)} → #{int(last)})".replace("-", "−")
        for change, first, last in zip(changes, rows["first_rank"], rows["last_rank"], strict=True)
    ]
    return _horizontal_bars(
        changes,
        _track_labels(rows),
        notes,
        [CLIMB_COLOR if change > 0 else FALL_COLOR for change in changes],
        title=title or "Biggest climbers and fallers",
        xlabel="Places climbed (negative: fallen), first to last day of the window",
        empty_message="No track moved between the first and last day",
    )


def days_on_chart_leaders(
    frame: pd.DataFrame, top: int = 10, *, title: str | None = None
) -> Figure:
    """The ``top`` tracks of ``analysis.days_on_chart_and_peak`` by days on chart."""
    rows = frame.sort_values(
        ["days_on_chart", "peak_rank", "track_id"], ascending=[False, True, True]
    ).head(top)
    values = [int(v) for v in rows["days_on_chart"]]
    notes = [f"{d} days, peak #{int(p)}" for d, p in zip(values, rows["peak_rank"], strict=True)]
    return _horizontal_bars(
        values,
        _track_labels(rows),
        notes,
        [BAR_COLOR] * len(values),
        title=title or f"Most days on the chart (top {top})",
        xlabel="Days on the chart in the window",
        empty_message="No chart data in this window",
    )


def artist_share_bars(frame: pd.DataFrame, top: int = 10, *, title: str | None = None) -> Figure:
    """The ``top`` artists of ``analysis.artist_share`` by share of chart entries."""
    rows = frame.sort_values(["entries", "artist_id"], ascending=[False, True]).head(top)
    shares = [float(v) for v in rows["share"]]
    labels = [display_text(n, a) for n, a in zip(rows["name"], rows["artist_id"], strict=True)]
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


# ---------------------------------------------------------------------------------------------
# Export


def save_figure(
    figure: Figure, path_without_suffix: str | Path, *, dpi: int = DEFAULT_DPI
) -> list[Path]:
    """Write ``<path>.png`` and ``<path>.svg``; the same figure gives the same bytes.

    The SVG carries no date, no matplotlib version and ids from a fixed hash salt; the PNG
    no "Software" entry (it has no date by default). Text is drawn as paths in the SVG, so it
    shows the same without the fonts. Returns [png, svg].
    """
    base = Path(path_without_suffix)
    base.parent.mkdir(parents=True, exist_ok=True)
    # Appended, not with_suffix(): a name like "top.v2" keeps its dot.
    png = base.with_name(base.name + ".png")
    svg = base.with_name(base.name + ".svg")
    with matplotlib.rc_context({"svg.hashsalt": SVG_HASH_SALT, "svg.fonttype": "path"}):
        _save_png(figure, png, dpi)
        figure.savefig(svg, format="svg", dpi=dpi, metadata={"Date": None, "Creator": None})
    return [png, svg]
