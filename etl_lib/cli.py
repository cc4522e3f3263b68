"""``spotify-etl``: a thin command line over ``etl_lib.pipeline``.

Errors a user can cause (``EtlError``) print one line and exit non-zero; anything else is a
bug and keeps its traceback.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from datetime import datetime

import pandas as pd

from etl_lib import __version__, catalog, envelope, lake, pipeline, warehouse
from etl_lib.config import Settings
from etl_lib.errors import ConfigError, EtlError


def _say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def _utc_datetime(text: str) -> datetime:
    try:
        return envelope.parse_utc(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"{text!r} is not an ISO-8601 time with a UTC offset, e.g. 2026-11-25T08:00:00Z"
        ) from exc


def _settings(args: argparse.Namespace) -> Settings:
    return Settings.from_env(lake=args.lake)


def _print_frame(frame: pd.DataFrame, output_format: str) -> None:
    if output_format == "csv":
        sys.stdout.write(frame.to_csv(index=False))
    elif output_format == "json":
        sys.stdout.write(
            frame.to_json(orient="records", date_format="iso", force_ascii=False) + "\n"
        )
    elif frame.empty:
        print("(no rows)")
    else:
        with pd.option_context("display.max_rows", 200, "display.max_colwidth", 60):
            print(frame.to_string(index=False))


def _report_transform(summary: pipeline.TransformSummary) -> int:
    rows = ", ".join(f"{table} {count}" for table, count in summary.rows.items())
    skipped = ", ".join(f"{n.removeprefix('skipped_')} {c}" for n, c in summary.skipped.items())
    _say(f"transformed {len(summary.transformed)} raw files; rows written: {rows}")
    _say(f"entries skipped (not tracks): {skipped}")
    for key, reason in summary.quarantined.items():
        _say(f"error: {reason} (copied to {lake.quarantine_key(key)}; fix or remove the raw file)")
    return 1 if summary.quarantined else 0


def cmd_extract(args: argparse.Namespace) -> int:
    settings = _settings(args)
    pipeline.extract(settings, args.playlist or None, progress=_say)
    return 0


def cmd_transform(args: argparse.Namespace) -> int:
    if args.input:
        pipeline.import_payloads(
            args.lake,
            args.input,
            playlist_id=args.playlist_id,
            extracted_at=args.extracted_at,
            progress=_say,
        )
    elif args.playlist_id or args.extracted_at:
        raise ConfigError("--playlist-id and --extracted-at only apply with --input")
    if args.all:
        summary = pipeline.retransform_all(args.lake, progress=_say)
    else:
        summary = pipeline.transform(args.lake, progress=_say)
    return _report_transform(summary)


def cmd_catalog(args: argparse.Namespace) -> int:
    names = catalog.build_catalog(args.lake)
    _say(f"cataloged {len(names)} views in {warehouse.catalog_path(args.lake)}: {', '.join(names)}")
    return 0


def cmd_query(args: argparse.Namespace) -> int:
    frame = warehouse.query(args.lake, args.sql, args.param)
    _print_frame(frame, args.format)
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    settings = _settings(args)
    pipeline.extract(settings, args.playlist or None, progress=_say)
    status = _report_transform(pipeline.transform(args.lake, progress=_say))
    cmd_catalog(args)
    return status


def cmd_demo(args: argparse.Namespace) -> int:
    from etl_lib.demo import run_demo  # the local server is only needed here

    result = run_demo(args.lake, days=args.days, progress=_say)
    status = _report_transform(result.summary)
    print(f"\nLake: {lake.url(args.lake)}")
    print("Rows per table: " + ", ".join(f"{t} {n}" for t, n in result.table_rows.items()))
    distinct = ", ".join(f"{n} {v.removeprefix('latest_')}" for v, n in result.distinct.items())
    print(f"Distinct: {distinct}")
    print(f"\nCurrent top 10 ({result.top10['dt'].iloc[0] if len(result.top10) else 'no data'}):")
    _print_frame(result.top10.drop(columns=["dt"]), "table")
    print(f"\nRaw payloads:  {lake.url(args.lake, lake.RAW)}")
    print(f"Parquet tables: {lake.url(args.lake, lake.TABLES)}")
    print(f"DuckDB catalog: {warehouse.catalog_path(args.lake)}")
    print('Try: spotify-etl query "SELECT * FROM daily_chart ORDER BY dt DESC, chart_rank LIMIT 5"')
    return status


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--lake",
        default=Settings.from_env().lake,
        metavar="ROOT",
        help="lake root folder (default: $SPOTIFY_ETL_LAKE or ./data/lake)",
    )
    parser = argparse.ArgumentParser(
        prog="spotify-etl",
        description="Spotify playlist charts -> raw zone -> Parquet tables -> SQL.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name: str, handler, help_text: str) -> argparse.ArgumentParser:
        sub = commands.add_parser(name, parents=[common], help=help_text, description=help_text)
        sub.set_defaults(handler=handler)
        return sub

    playlist_help = "playlist id to extract (repeatable; default: $SPOTIFY_ETL_PLAYLISTS)"
    extract = add("extract", cmd_extract, "Extract playlists from the Spotify API to the raw zone.")
    extract.add_argument("--playlist", action="append", metavar="ID", help=playlist_help)

    transform = add(
        "transform", cmd_transform, "Transform pending raw files into Parquet tables."
    )
    transform.add_argument(
        "--input",
        metavar="FILE_OR_DIR",
        help="first import payloads captured elsewhere (our envelope, or a bare Spotify "
        "playlist/paging object) into the raw zone",
    )
    transform.add_argument(
        "--playlist-id", help="with --input: the playlist a bare paging object belongs to"
    )
    transform.add_argument(
        "--extracted-at",
        type=_utc_datetime,
        help="with --input: when the payload was captured (default: the file's mtime, UTC)",
    )
    transform.add_argument(
        "--all", action="store_true", help="re-transform every raw file, not only pending ones"
    )

    add("catalog", cmd_catalog, "Create or update the DuckDB views over the lake's tables.")

    query = add("query", cmd_query, "Run one SQL statement (Athena/Trino dialect) and print it.")
    query.add_argument("sql", help="the statement; use ? for bound parameters")
    query.add_argument(
        "--param", action="append", default=[], metavar="VALUE", help="bind a ? parameter"
    )
    query.add_argument("--format", choices=("table", "csv", "json"), default="table")

    run = add("run", cmd_run, "Extract, transform and catalog in one go.")
    run.add_argument("--playlist", action="append", metavar="ID", help=playlist_help)

    demo = add(
        "demo", cmd_demo, "Run the whole pipeline offline against the local simulated API."
    )
    demo.add_argument("--days", type=int, default=30, help="simulated days (default: 30)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.handler(args)
    except EtlError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
