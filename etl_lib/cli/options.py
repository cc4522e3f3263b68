"""What the options take (times, days, numbers, ``?`` parameters, playlists), the settings a
command runs with, and the options several commands share."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from datetime import date, datetime

from etl_lib import config
from etl_lib.config import ENGINES, Settings
from etl_lib.extract import envelope

# build_parser's add(name, handler, help_text, to=...): one command's parser, with --lake.
AddCommand = Callable[..., argparse.ArgumentParser]


def utc_datetime(text: str) -> datetime:
    try:
        return envelope.parse_utc(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"{exc}: give an ISO-8601 UTC time such as 2026-11-25T08:00:00Z"
        ) from exc


def iso_day(text: str, noun: str = "day") -> str:
    try:
        day = date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a {noun}: use YYYY-MM-DD") from exc
    if not envelope.EARLIEST.date() <= day <= envelope.LATEST.date():
        raise argparse.ArgumentTypeError(f"{text} is outside {envelope.TIME_RANGE}")
    return day.isoformat()


def report_date(text: str) -> str:
    return iso_day(text, "date")


def day_count(text: str) -> int:
    """A number of days for a window or a simulation: ten years at most, a typo beyond."""
    days = positive_int(text)
    from etl_lib.reporting.analysis import MAX_DAYS  # pandas: not for a plain typo

    if days > MAX_DAYS:
        raise argparse.ArgumentTypeError(f"{text!r} is more than {MAX_DAYS} days")
    return days


def positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return int(text)


# Every option naming a playlist: each takes an id, an open.spotify.com link or a
# spotify:playlist: URI, and the handlers see ids.
_PLAYLIST_OPTIONS = ("playlist", "playlist_id")


def playlists_as_ids(args: argparse.Namespace) -> None:
    """Turn the playlist options into ids, or a ConfigError naming the value (a return code
    of 2 from ``main``, like any setting, rather than argparse's exit)."""
    for option in _PLAYLIST_OPTIONS:
        value = getattr(args, option, None)
        if isinstance(value, str):
            setattr(args, option, config.playlist_id(value))
        elif isinstance(value, list):
            setattr(args, option, [config.playlist_id(item) for item in value])


def parameter(text: str):
    """A --param value: a JSON number, boolean or null, or a JSON string, else the raw text."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return text
    return value if isinstance(value, (int, float, bool, str)) or value is None else text


def settings_for(args: argparse.Namespace) -> Settings:
    return Settings.from_env(lake=args.lake, source=getattr(args, "source", None))


def add_workers_option(sub: argparse.ArgumentParser, help_text: str) -> None:
    sub.add_argument("--workers", type=positive_int, metavar="N", help=help_text)


def add_engine_option(sub: argparse.ArgumentParser) -> None:
    sub.add_argument(
        "--engine",
        choices=ENGINES,
        default="duckdb",
        help="duckdb (embedded, default) or athena (Glue Data Catalog + Athena)",
    )
