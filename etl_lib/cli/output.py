"""What the command line shows: one-line messages on stderr, progress bars, tables of rows,
and the exit code for "try again later". Text from Spotify or a payload is escaped before it
reaches a terminal (``terminal_safe``)."""

from __future__ import annotations

import sys
import unicodedata
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd


# The rest of the package is imported where a command uses it: pandas, the engines and the
# Spotify client take about a second to load, and a mistyped option or a report for a
# playlist the lake does not hold should fail faster than that.

EXIT_TEMPORARY_FAILURE = 75  # sysexits' EX_TEMPFAIL: schedulers retry later


def terminal_safe(text: str) -> str:
    """``text`` with control and format characters shown as escapes (``\\x1b``, ``\\u202e``).

    Messages carry names and error texts from Spotify or a payload; printed raw, an escape
    sequence could retitle or recolour the user's terminal, or a bidi override reorder it.
    Line breaks and tabs stay: they are ours.
    """
    if text.isprintable():
        return text
    return "".join(
        char
        if char in "\n\t" or unicodedata.category(char) not in _UNPRINTED
        else char.encode("unicode_escape").decode("ascii")
        for char in text
    )


_UNPRINTED = {"Cc", "Cf", "Cs", "Co", "Cn"}


def say(message: str) -> None:
    print(terminal_safe(message), file=sys.stderr, flush=True)


def progress_bar(items: list, description: str) -> Iterable:
    from tqdm import tqdm

    from etl_lib import pipeline
    from etl_lib.transform import compaction

    # Bulk transform works a playlist's day at a time, compaction a month; the rest file by
    # file. Hidden when stderr is not a terminal (CI, cron, Lambda logs) and for tiny jobs.
    unit = {pipeline.BULK_STEP: "day", compaction.STEP: "month"}.get(description, "file")
    return tqdm(items, desc=description, unit=unit, disable=None if len(items) > 20 else True)


def print_frame(frame: pd.DataFrame, output_format: str) -> None:

    # CSV and JSON are data: written as they are to a file or a pipe, escaped on a terminal.
    shown = terminal_safe if sys.stdout.isatty() else str
    if output_format == "csv":
        sys.stdout.write(shown(frame.to_csv(index=False)))
    elif output_format == "json":
        sys.stdout.write(
            shown(frame.to_json(orient="records", date_format="iso", force_ascii=False)) + "\n"
        )
    elif frame.empty:
        print("(no rows)")
    else:
        print(_table_text(frame))


# A terminal table: text left-aligned and cut to fit (wide characters count double), numbers
# right-aligned; more rows than this are better read with --format csv.
TABLE_MAX_ROWS = 200
TABLE_MAX_CELL = 48


def _table_text(frame: pd.DataFrame) -> str:
    import pandas as pd

    from etl_lib.reporting import status
    from etl_lib.reporting.report_html import is_missing

    shown = frame.head(TABLE_MAX_ROWS)
    columns: dict[str, list[str]] = {}
    for name in shown.columns:
        values = shown[name]
        texts = ["" if is_missing(v) else status.shortened(str(v), TABLE_MAX_CELL) for v in values]
        if pd.api.types.is_numeric_dtype(values) and not pd.api.types.is_bool_dtype(values):
            width = max(map(len, [str(name), *texts]))
            texts = [text.rjust(width) for text in texts]
        columns[str(name)] = texts
    rows = [dict(zip(columns, cells, strict=True)) for cells in zip(*columns.values(), strict=True)]
    text = status.table_text(rows, escape=terminal_safe)
    if len(frame) > TABLE_MAX_ROWS:
        text += f"\n... {len(frame) - TABLE_MAX_ROWS:,} more rows (use --format csv for all)"
    return text
