"""``spotify-etl``: a thin command line over ``etl_lib.pipeline``.

Errors a user can cause (``EtlError``) print one line and exit non-zero; anything else is a
bug and keeps its traceback. Exit codes: 0 done; 1 something failed (named on stderr);
2 bad settings or arguments; 75 stopped by a rate limit or an exhausted quota (try later).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
import unicodedata
from collections.abc import Iterable, Sequence
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from etl_lib import __version__, config
from etl_lib.config import ENGINES, Settings
from etl_lib.errors import ConfigError, EtlError, QuotaExceeded, RateLimited
from etl_lib.extract import envelope
from etl_lib.lake import layout, storage

if TYPE_CHECKING:
    import pandas as pd

    from etl_lib import pipeline

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


def _say(message: str) -> None:
    print(terminal_safe(message), file=sys.stderr, flush=True)


def _bar(items: list, description: str) -> Iterable:
    from tqdm import tqdm

    from etl_lib import pipeline
    from etl_lib.transform import compaction

    # Bulk transform works a playlist's day at a time, compaction a month; the rest file by
    # file. Hidden when stderr is not a terminal (CI, cron, Lambda logs) and for tiny jobs.
    unit = {pipeline.BULK_STEP: "day", compaction.STEP: "month"}.get(description, "file")
    return tqdm(items, desc=description, unit=unit, disable=None if len(items) > 20 else True)


def _utc_datetime(text: str) -> datetime:
    try:
        return envelope.parse_utc(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(
            f"{exc}: give an ISO-8601 UTC time such as 2026-11-25T08:00:00Z"
        ) from exc


def _day(text: str, noun: str = "day") -> str:
    try:
        day = date.fromisoformat(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"{text!r} is not a {noun}: use YYYY-MM-DD") from exc
    if not envelope.EARLIEST.date() <= day <= envelope.LATEST.date():
        raise argparse.ArgumentTypeError(f"{text} is outside {envelope.TIME_RANGE}")
    return day.isoformat()


def _report_date(text: str) -> str:
    return _day(text, "date")


def _days(text: str) -> int:
    """A number of days for a window or a simulation: ten years at most, a typo beyond."""
    days = _positive_int(text)
    from etl_lib.reporting.analysis import MAX_DAYS  # pandas: not for a plain typo

    if days > MAX_DAYS:
        raise argparse.ArgumentTypeError(f"{text!r} is more than {MAX_DAYS} days")
    return days


def _positive_int(text: str) -> int:
    if not text.isdigit() or int(text) < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return int(text)


# Every option naming a playlist: each takes an id, an open.spotify.com link or a
# spotify:playlist: URI, and the handlers see ids.
_PLAYLIST_OPTIONS = ("playlist", "playlist_id")


def _playlist_ids(args: argparse.Namespace) -> None:
    """Turn the playlist options into ids, or a ConfigError naming the value (a return code
    of 2 from ``main``, like any setting, rather than argparse's exit)."""
    for option in _PLAYLIST_OPTIONS:
        value = getattr(args, option, None)
        if isinstance(value, str):
            setattr(args, option, config.playlist_id(value))
        elif isinstance(value, list):
            setattr(args, option, [config.playlist_id(item) for item in value])


def _parameter(text: str):
    """A --param value: a JSON number, boolean or null, or a JSON string, else the raw text."""
    try:
        value = json.loads(text)
    except json.JSONDecodeError:
        return text
    return value if isinstance(value, (int, float, bool, str)) or value is None else text


def _settings(args: argparse.Namespace) -> Settings:
    return Settings.from_env(lake=args.lake, source=getattr(args, "source", None))


def _print_frame(frame: pd.DataFrame, output_format: str) -> None:

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


def _report_transform(summary: pipeline.TransformSummary) -> int:
    rows = ", ".join(f"{table} {count}" for table, count in summary.rows.items())
    skipped = ", ".join(f"{n.removeprefix('skipped_')} {c}" for n, c in summary.skipped.items())
    _say(f"transformed {len(summary.transformed)} raw files; rows written: {rows}")
    _say(f"entries skipped (not tracks): {skipped}")
    for key, reason in summary.quarantined.items():
        _say(
            f"error: {reason} (copied to {layout.quarantine_key(key)}; fix or remove the raw file)"
        )
    return 1 if summary.quarantined else 0


def _extract_status(outcomes: list[pipeline.ExtractOutcome]) -> int:
    counts = {}
    for outcome in outcomes:
        counts[outcome.status] = counts.get(outcome.status, 0) + 1
    if len(outcomes) > 1:
        _say("extract: " + ", ".join(f"{n} {status}" for status, n in counts.items()))
    errors = [o.error for o in outcomes if o.error is not None]
    if any(isinstance(e, (RateLimited, QuotaExceeded)) for e in errors):
        return EXIT_TEMPORARY_FAILURE
    return 1 if errors else 0


def cmd_extract(args: argparse.Namespace) -> int:
    from etl_lib import pipeline

    outcomes = pipeline.extract(
        _settings(args), args.playlist or None, force=args.force, progress=_say
    )
    return _extract_status(outcomes)


def _report_import(summary: pipeline.ImportSummary, done: str) -> int:
    """The import's counts, then one line per refused file; 1 when any was refused."""
    new = sum(result.written for result in summary.landed)
    refused = f"; {len(summary.refused)} files refused" if summary.refused else ""
    _say(f"{done.format(len(summary.landed))} ({new} new){refused}")
    for reason in summary.refused.values():
        _say(f"error: {reason} (not imported: fix the file, or remove it from the input)")
    return 1 if summary.refused else 0


def cmd_transform(args: argparse.Namespace) -> int:
    from etl_lib import pipeline

    import_status = 0
    if args.input:
        imported = pipeline.import_payloads(
            args.lake,
            args.input,
            playlist_id=args.playlist_id,
            extracted_at=args.extracted_at,
            track=_bar,
        )
        import_status = _report_import(imported, "imported {} payloads into the raw zone")
    elif args.playlist_id or args.extracted_at:
        raise ConfigError("--playlist-id and --extracted-at only apply with --input")
    if args.all:
        summary = pipeline.retransform_all(args.lake, workers=args.workers, track=_bar)
    elif args.bulk:
        summary = pipeline.transform_bulk(args.lake, workers=args.workers, track=_bar)
    else:
        summary = pipeline.transform(args.lake, track=_bar)
    # The good files land and transform before a refused one makes the exit code non-zero.
    return _report_transform(summary) or import_status


def cmd_backfill(args: argparse.Namespace) -> int:
    from etl_lib import pipeline

    imported = pipeline.backfill(args.lake, args.path, extracted_at=args.extracted_at, track=_bar)
    import_status = _report_import(imported, "landed {} archived snapshots")
    status = _report_transform(pipeline.transform_bulk(args.lake, track=_bar))
    cmd_catalog(args)
    return status or import_status


def cmd_compact(args: argparse.Namespace) -> int:
    from etl_lib.transform import compaction

    summary = compaction.compact(args.lake, days=args.day, month=args.month, track=_bar)
    _say(
        f"compacted {summary.days_rewritten} days: {summary.files_before} files "
        f"-> {summary.files_after}; {summary.days_already_compact} already compact; "
        f"expired {summary.snapshots_expired} table snapshots, deleted "
        f"{summary.files_deleted} files no snapshot needs"
    )
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from etl_lib import migrate

    summary = migrate.migrate(args.lake, workers=args.workers, track=_bar)
    if summary is None:
        _say(f"lake {args.lake} is in the current layout: nothing to migrate")
        return 0
    for key, reason in summary.transform.quarantined.items():
        _say(
            f"error: {reason} (copied to {layout.quarantine_key(key)}; fix or remove the raw file)"
        )
    dropped = []
    if summary.glue_tables_dropped:
        names = ", ".join(summary.glue_tables_dropped)
        dropped.append(f"the previous layout's Glue tables ({names})")
    if summary.foreign_tables:
        dropped.append(f"the catalog of tables at {summary.foreign_tables}")
    _say(
        f"migrated lake {args.lake} to Iceberg tables: {len(summary.transform.transformed)} "
        f"raw files transformed, {summary.quarantined} quarantined (left out), "
        f"{summary.old_files_removed} old files removed"
        + (f", dropped {' and '.join(dropped)}" if dropped else "")
    )
    return 1 if summary.transform.quarantined else 0


def cmd_catalog(args: argparse.Namespace) -> int:
    from etl_lib.transform import iceberg
    from etl_lib.warehouse import catalog

    engine = getattr(args, "engine", "duckdb")
    iceberg.wait_for_catalog(args.lake)
    names = catalog.build_catalog(
        args.lake, engine, _settings(args) if engine == "athena" else None
    )
    if engine == "athena":
        where = "the Glue Data Catalog and Athena"
    elif storage.is_local(args.lake):
        where = iceberg.local_catalog_path(args.lake) + " (DuckDB reads it per query)"
    else:
        where = "the Glue Data Catalog (DuckDB reads it per query)"
    _say(f"cataloged {len(names)} tables and views in {where}: {', '.join(names)}")
    return 0


def cmd_query(args: argparse.Namespace) -> int:
    from etl_lib.transform import iceberg
    from etl_lib.warehouse import execute

    settings = _settings(args) if args.engine == "athena" else None
    iceberg.wait_for_catalog(args.lake)
    frame, bytes_scanned = execute.run(
        args.lake, args.sql, args.param, engine=args.engine, settings=settings
    )
    _print_frame(frame, args.format)
    if bytes_scanned is not None:
        _say(f"Athena scanned {bytes_scanned:,} bytes")
    return 0


def cmd_run(args: argparse.Namespace) -> int:
    from etl_lib import pipeline

    outcomes = pipeline.extract(
        _settings(args), args.playlist or None, force=args.force, progress=_say
    )
    extract_status = _extract_status(outcomes)
    summary = pipeline.transform(args.lake, track=_bar)
    transform_status = _report_transform(summary)
    cmd_catalog(args)
    report_status = 0
    if summary.transformed and not args.no_report:
        # New data landed: refresh each affected playlist's report for its newest day.
        newest: dict[str, str] = {}
        for key in summary.transformed:
            parts = layout.parse_raw_key(key)
            newest[parts["playlist_id"]] = max(parts["dt"], newest.get(parts["playlist_id"], ""))
        for playlist_id, as_of in newest.items():
            report_status |= _report(args.lake, playlist_id, as_of, 30, args.engine)
        from etl_lib.reporting import status

        if len(status.landed_days(args.lake)) > 1:  # the charts compared, on the newest day
            report_status |= _comparison(args.lake, max(newest.values()), 30, args.engine)
    return extract_status or transform_status or report_status


def _comparison(lake_root: str, as_of: str | None, days: int, engine: str) -> int:
    from etl_lib.reporting import reports, status

    if as_of is None:  # the newest day any chart was captured
        as_of = max((days[-1] for days in status.landed_days(lake_root).values()), default=None)
        if as_of is None:
            raise ConfigError(
                f"no chart data in lake {storage.url(lake_root)}: run `spotify-etl run` first"
            )
    result = reports.run_comparison_report(lake_root, as_of=as_of, days=days, engine=engine)
    if not result.succeeded:
        return _report_failed(result, lake_root, "the comparison of charts", as_of)
    print(f"Report: {result.url(lake_root, 'report.html')}")
    print(f"Index:  {storage.url(lake_root, reports.INDEX)}")
    return 0


def _report(lake_root: str, playlist_id: str, as_of: str | None, days: int, engine: str) -> int:
    from etl_lib.reporting import (
        reports,  # papermill and the kernel only when a report is asked for
    )

    result = reports.run_report(
        lake_root, playlist_id=playlist_id, as_of=as_of, days=days, engine=engine
    )
    as_of = result.status["parameters"]["as_of"]  # the latest chart's day when None was asked
    if not result.succeeded:
        return _report_failed(result, lake_root, playlist_id, as_of)
    print(f"Report: {result.url(lake_root, 'report.html')}")
    print(f"Index:  {storage.url(lake_root, reports.INDEX)}")
    for name in result.files:
        if name.startswith("charts/"):
            print(f"Chart:  {result.url(lake_root, name)}")
    return 0


def _report_failed(result, lake_root: str, playlist_id: str, as_of: str) -> int:
    cell = result.status.get("failing_cell") or {}
    where = f" in cell {cell['index']}" if cell.get("index") is not None else ""
    _say(
        f"error: the report for {playlist_id} on {as_of} failed{where}: {result.error} "
        f"(status: {result.url(lake_root, 'status.json')})"
    )
    return 1


def cmd_report(args: argparse.Namespace) -> int:
    from etl_lib.reporting import status

    if args.compare:
        return _comparison(args.lake, args.as_of, args.days, args.engine)

    # From folder names alone: a playlist or day the lake does not hold fails at once, before
    # even the table code (and pyarrow with it) is loaded.
    window = args.days if isinstance(args.days, int) and args.days >= 1 else 1
    status.check_landed(args.lake, args.playlist, args.as_of, window)
    from etl_lib.transform import iceberg

    iceberg.wait_for_catalog(args.lake)
    # No --as-of: the report checks (before any kernel) and picks the latest chart's day.
    return _report(args.lake, args.playlist, args.as_of, args.days, args.engine)


def cmd_status(args: argparse.Namespace) -> int:
    from etl_lib.reporting import status
    from etl_lib.transform import iceberg

    iceberg.wait_for_catalog(args.lake)
    current = status.lake_status(args.lake, args.playlist)
    if args.format == "json":
        text = json.dumps(current.as_dict(), indent=2, ensure_ascii=False)
        print(terminal_safe(text) if sys.stdout.isatty() else text)
        return 0
    if not current.playlists:
        where = f" --lake {args.lake}" if args.lake != config.DEFAULT_LAKE else ""
        print(
            terminal_safe(
                f"Nothing in lake {current.lake} yet: run `spotify-etl run{where}` to extract "
                f"and load playlists (or `spotify-etl demo{where}` for simulated ones)."
            )
        )
        return 0
    print(terminal_safe(f"Lake {current.lake}, status at {current.generated_at} (times in UTC):"))
    print(status.table_text(status.table_rows(current), escape=terminal_safe))
    lines = status.where_lines(current)
    if lines:
        print()
        for line in lines:
            print(terminal_safe(line))
    return 0


EXPORT_FORMATS = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet"}


def cmd_export(args: argparse.Namespace) -> int:
    from etl_lib.transform import iceberg
    from etl_lib.warehouse import execute

    out = Path(args.out)
    output_format = args.format or EXPORT_FORMATS.get(out.suffix.lower())
    if output_format is None:
        raise ConfigError(
            f"--out {args.out}: name a .csv or .parquet file, or pass --format csv|parquet"
        )
    if args.view is not None and args.param:
        raise ConfigError("--param binds the ? of --sql; a --view takes none")
    iceberg.wait_for_catalog(args.lake)
    frame = execute.window_rows(
        args.lake,
        view=args.view,
        statement=args.sql,
        params=args.param,
        first_day=args.first_day,
        last_day=args.last_day,
        playlist_id=args.playlist,
    )
    _write_atomically(frame, out, output_format)
    print(terminal_safe(f"Exported {len(frame):,} rows to {out.resolve()}"))
    return 0


def _write_atomically(frame: pd.DataFrame, out: Path, output_format: str) -> None:
    """``frame`` as CSV or Parquet at ``out``: written beside it under a hidden name, then
    renamed, so a failed export leaves no half-written file (nor replaces a good one)."""
    if not out.parent.is_dir():
        raise ConfigError(f"--out {out}: the folder {out.parent} does not exist")
    temporary = Path(storage.temporary_path(str(out)))
    try:
        if output_format == "csv":
            frame.to_csv(temporary, index=False)
        else:
            import pyarrow as pa
            import pyarrow.parquet as pq

            pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), temporary)
        os.replace(temporary, out)
    except OSError as exc:
        raise EtlError(f"cannot write {out}: {exc.strerror or exc}") from exc
    finally:
        temporary.unlink(missing_ok=True)


def cmd_auth_login(args: argparse.Namespace) -> int:
    from etl_lib.extract import auth

    def show(url: str) -> None:
        _say("Open this URL in a browser and approve access:\n\n  " + url + "\n")
        if args.paste:
            _say("Then paste the full URL your browser was redirected to:")

    stored = auth.login(
        _settings(args),
        show_url=show,
        paste=(lambda: input().strip()) if args.paste else None,
        timeout_seconds=args.timeout,
    )
    _say(f"logged in as user {stored.user_id}; refresh token stored in {stored.origin}")
    _say(f"scopes: {stored.scope}")
    return 0


def cmd_auth_status(args: argparse.Namespace) -> int:
    from etl_lib.extract import auth

    current = auth.status(_settings(args))
    print(f"mode:          {current.mode}")
    print(f"identity:      {current.identity}")
    print(f"scopes:        {current.scope or '(none: client credentials carry no scopes)'}")
    print(f"client id:     {current.client_id}")
    print(f"refresh token: {'stored' if current.has_refresh_token else 'none'}")
    print(f"secrets from:  {current.origin}")
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    # the local server is only needed here
    from etl_lib.cli.demo import DEMO_LAST_DAY, DEMO_PLAYLISTS, run_demo
    from etl_lib.reporting import reports
    from etl_lib.transform import iceberg

    result = run_demo(args.lake, days=args.days, progress=_say)
    status = _report_transform(result.summary)
    print(f"\nLake: {storage.url(args.lake)}")
    print("Rows per table: " + ", ".join(f"{t} {n}" for t, n in result.table_rows.items()))
    distinct = ", ".join(f"{n} {v.removeprefix('latest_')}" for v, n in result.distinct.items())
    print(f"Distinct: {distinct}")
    print(f"\nCurrent top 10 ({result.top10['dt'].iloc[0] if len(result.top10) else 'no data'}):")
    _print_frame(result.top10.drop(columns=["dt"]), "table")
    print(f"\nRaw payloads:  {storage.url(args.lake, layout.RAW)}")
    print(f"Iceberg tables: {iceberg.warehouse_location(args.lake)}")
    if storage.is_local(args.lake):
        print(f"Table catalog:  {iceberg.local_catalog_path(args.lake)}")
    print(
        'Try: spotify-etl query "SELECT chart_rank AS rank, movement, track_name, artists, '
        "peak_rank AS peak, days_on_chart AS days FROM chart "
        f"WHERE playlist_id = '{DEMO_PLAYLISTS[0]}' ORDER BY dt DESC, rank LIMIT 10\""
    )
    print()
    as_of = DEMO_LAST_DAY.date().isoformat()
    print(f"Reports for {as_of}:")
    for playlist_id in DEMO_PLAYLISTS:
        report = reports.run_report(args.lake, playlist_id=playlist_id, as_of=as_of, days=args.days)
        if report.succeeded:
            name = report.status.get("playlist_name") or playlist_id
            print(f"  {terminal_safe(name):<20} {report.url(args.lake, 'report.html')}")
        else:
            status |= _report_failed(report, args.lake, playlist_id, as_of)
    # The comparison of the charts is its own report, once the reports module offers it.
    compare = getattr(reports, "run_comparison_report", None)
    if compare is not None:
        comparison = compare(args.lake, as_of=as_of, days=args.days)
        if comparison.succeeded:
            print(f"  {'All charts':<20} {comparison.url(args.lake, 'report.html')}")
        else:
            status |= _report_failed(comparison, args.lake, "the comparison", as_of)
    index = storage.url(args.lake, reports.INDEX)
    if storage.is_local(args.lake):
        index = Path(index.removeprefix("file://")).resolve().as_uri()
    print(f"\nEvery report, latest first: {index}")
    print(f"Explore the lake in JupyterLab: {_lab_command(args.lake)}")
    return status


def _lab_command(lake_root: str) -> str:
    """How to open JupyterLab on ``lake_root``: the Makefile points the notebooks at a lake."""
    if not storage.is_local(lake_root):
        return f"make lab LAKE={shlex.quote(lake_root)}"
    folder = Path(lake_root.removeprefix("file://")).resolve()
    if folder == Path(config.DEFAULT_LAKE).resolve() and Path("Makefile").is_file():
        return "make lab"
    return f"make lab LAKE={shlex.quote(str(folder))} (in the project's folder)"


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):
        # One line like every other mistake a user can make, not the usage block: --help
        # shows that.
        _say(f"error: {self.prog}: {message}")
        self.exit(2)


def build_parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--lake",
        default=os.environ.get("SPOTIFY_ETL_LAKE") or config.DEFAULT_LAKE,
        metavar="ROOT",
        help="lake root folder (default: $SPOTIFY_ETL_LAKE or ./data/lake)",
    )
    parser = _Parser(
        prog="spotify-etl",
        description="Spotify playlist charts -> raw zone -> Iceberg tables -> SQL.",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    def add(name, handler, help_text, to=commands) -> argparse.ArgumentParser:
        sub = to.add_parser(name, parents=[common], help=help_text, description=help_text)
        sub.set_defaults(handler=handler)
        return sub

    def add_extract_options(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--playlist",
            action="append",
            metavar="ID",
            help="playlist to extract: id, open.spotify.com link or spotify:playlist: URI "
            "(repeatable; default: $SPOTIFY_ETL_PLAYLISTS)",
        )
        sub.add_argument(
            "--source",
            choices=config.SOURCES,
            help="the Spotify Web API, or the public playlist archive "
            "(default: $SPOTIFY_ETL_SOURCE or api)",
        )
        sub.add_argument(
            "--force",
            action="store_true",
            help="download the items even when the snapshot_id has not changed",
        )

    add_extract_options(
        add(
            "extract",
            cmd_extract,
            "Extract playlists into the raw zone (unchanged ones are only checked).",
        )
    )

    transform = add(
        "transform", cmd_transform, "Transform pending raw files into the lake's Iceberg tables."
    )
    transform.add_argument(
        "--input",
        metavar="FILE_OR_DIR",
        help="first import payloads captured elsewhere (our envelope, or a bare Spotify "
        "playlist/paging object) into the raw zone",
    )
    transform.add_argument(
        "--playlist-id",
        help="with --input: the playlist a bare paging object belongs to",
    )
    transform.add_argument(
        "--extracted-at",
        type=_utc_datetime,
        help="with --input: when a bare payload was captured (default: a UTC time in its "
        "file name, else the file's mtime)",
    )
    transform.add_argument(
        "--all",
        action="store_true",
        help="re-transform every raw file, not only pending ones (in bulk, like --bulk)",
    )
    transform.add_argument(
        "--bulk",
        action="store_true",
        help="for backfills: transform a playlist's day at a time, in parallel, into one file "
        "per table per day (an interrupted run resumes where it stopped)",
    )
    transform.add_argument(
        "--workers",
        type=_positive_int,
        metavar="N",
        help="with --bulk or --all: worker processes (default: one per core)",
    )

    compact = add(
        "compact",
        cmd_compact,
        "Rewrite each day's small files into one sorted file per table, one commit each "
        "(readers see the old files or the new, never both), then expire table snapshots "
        "older than SPOTIFY_ETL_SNAPSHOT_RETENTION_DAYS and delete the files none needs. "
        "Running it again rewrites nothing.",
    )
    compact.add_argument(
        "--day", action="append", type=_day, metavar="YYYY-MM-DD", help="only this day (repeatable)"
    )
    compact.add_argument("--month", metavar="YYYY-MM", help="only the days of this month")

    migrate_command = add(
        "migrate",
        cmd_migrate,
        "Rebuild the tables of a lake written by the previous release (Parquet files under "
        "tables/, catalog.duckdb), or of a moved or copied lake folder, as Iceberg tables "
        "from the raw zone, then remove the old files. Running it again does nothing.",
    )
    migrate_command.add_argument(
        "--workers",
        type=_positive_int,
        metavar="N",
        help="worker processes (default: one per core)",
    )

    backfill = add(
        "backfill",
        cmd_backfill,
        "Import archived ranked snapshots (archive JSON or markdown, detected by content), "
        "then transform and catalog.",
    )
    backfill.add_argument("path", help="a snapshot file, or a folder of them")
    backfill.add_argument(
        "--extracted-at",
        type=_utc_datetime,
        help="capture time for files whose name is not one (e.g. 2021-03-06T00:13:23Z.md)",
    )

    def add_engine_option(sub: argparse.ArgumentParser) -> None:
        sub.add_argument(
            "--engine",
            choices=ENGINES,
            default="duckdb",
            help="duckdb (embedded, default) or athena (Glue Data Catalog + Athena)",
        )

    add_engine_option(add("catalog", cmd_catalog, "Create or update the tables and views for SQL."))

    query = add("query", cmd_query, "Run one SQL statement (Athena/Trino dialect) and print it.")
    query.add_argument("sql", help="the statement; use ? for bound parameters")
    query.add_argument(
        "--param",
        action="append",
        default=[],
        type=_parameter,
        metavar="VALUE",
        help="bind a ? parameter; numbers bind as numbers ('\"10\"' for the string 10)",
    )
    query.add_argument("--format", choices=("table", "csv", "json"), default="table")
    add_engine_option(query)

    run = add("run", cmd_run, "Extract, transform and catalog in one go.")
    add_extract_options(run)
    add_engine_option(run)
    run.add_argument("--no-report", action="store_true", help="skip the report after a load")

    report = add(
        "report",
        cmd_report,
        "Run the report notebook (papermill) and publish it under <lake>/reports/.",
    )
    report.add_argument(
        "--playlist",
        default=config.DEFAULT_PLAYLISTS[0],
        metavar="ID",
        help="playlist id, open.spotify.com link or spotify:playlist: URI "
        f"(default: {config.DEFAULT_PLAYLISTS[0]})",
    )
    report.add_argument(
        "--as-of", type=_report_date, help="report date, YYYY-MM-DD (default: the latest chart)"
    )
    report.add_argument("--days", type=_days, default=30, help="window in days (default: 30)")
    report.add_argument(
        "--compare",
        action="store_true",
        help="compare every playlist with a chart in the window instead (reports/compare/)",
    )
    add_engine_option(report)

    status = add(
        "status",
        cmd_status,
        "Per playlist: the last check, the last new snapshot, chart rows, freshness, "
        "quarantined raw files and the last report.",
    )
    status.add_argument(
        "--playlist",
        action="append",
        metavar="ID",
        help="only this playlist (id, link or URI; repeatable; default: every one in the lake)",
    )
    status.add_argument("--format", choices=("table", "json"), default="table")

    export = add(
        "export",
        cmd_export,
        "Write a view, a table or a query's result for a window of days to a CSV or Parquet "
        "file (written whole or not at all).",
    )
    what = export.add_mutually_exclusive_group(required=True)
    what.add_argument("--view", metavar="NAME", help="a view or table, e.g. daily_chart")
    what.add_argument("--sql", metavar="SQL", help="one statement (Athena/Trino dialect)")
    export.add_argument(
        "--param",
        action="append",
        default=[],
        type=_parameter,
        metavar="VALUE",
        help="with --sql: bind a ? parameter, as in `query`",
    )
    export.add_argument(
        "--from", dest="first_day", type=_day, metavar="YYYY-MM-DD", help="first day (dt)"
    )
    export.add_argument(
        "--to", dest="last_day", type=_day, metavar="YYYY-MM-DD", help="last day (dt)"
    )
    export.add_argument(
        "--playlist", metavar="ID", help="only this playlist's rows (id, link or URI)"
    )
    export.add_argument(
        "--out", required=True, metavar="FILE", help="a .csv or .parquet file to write"
    )
    export.add_argument(
        "--format", choices=("csv", "parquet"), help="default: from the --out file's extension"
    )

    auth_parser = commands.add_parser(
        "auth",
        help="Log in as a Spotify user, or show the identity in use.",
        description="User authorization (Authorization Code with PKCE) for playlist items.",
    )
    auth_commands = auth_parser.add_subparsers(
        dest="auth_command", required=True, metavar="COMMAND"
    )
    login = add(
        "login",
        cmd_auth_login,
        "Authorize a Spotify user (PKCE on a 127.0.0.1 redirect) and store the refresh token.",
        to=auth_commands,
    )
    login.add_argument(
        "--paste",
        action="store_true",
        help="headless machines: open the printed URL elsewhere, paste the redirect URL back",
    )
    login.add_argument(
        "--timeout", type=float, default=300, help="seconds to wait for the redirect"
    )
    add(
        "status",
        cmd_auth_status,
        "Show which identity and scopes extraction would use.",
        to=auth_commands,
    )

    demo = add("demo", cmd_demo, "Run the whole pipeline offline against the local simulated API.")
    demo.add_argument("--days", type=_days, default=30, help="simulated days (default: 30)")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        _playlist_ids(args)
        return args.handler(args)
    except (RateLimited, QuotaExceeded) as exc:
        _say(f"error: {exc}")
        return EXIT_TEMPORARY_FAILURE
    except EtlError as exc:
        _say(f"error: {exc}")
        return exc.exit_code
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
