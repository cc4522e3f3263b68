"""Commands that turn the tables into something to read: ``run`` (extract, transform,
catalog, then the reports of the playlists that changed), ``report``, ``status`` and
``demo``."""

from __future__ import annotations

import argparse
import json
import shlex
import sys
from pathlib import Path

from etl_lib import config
from etl_lib.cli.extract import add_extract_options, extract_exit_code, report_transform
from etl_lib.cli.options import AddCommand, add_engine_option, day_count, report_date, settings_for
from etl_lib.cli.output import print_frame, progress_bar, say, terminal_safe
from etl_lib.cli.tables import cmd_catalog
from etl_lib.errors import ConfigError
from etl_lib.lake import layout, storage


def cmd_run(args: argparse.Namespace) -> int:
    from etl_lib import pipeline

    outcomes = pipeline.extract(
        settings_for(args), args.playlist or None, force=args.force, say=say
    )
    extract_status = extract_exit_code(outcomes)
    summary = pipeline.transform(args.lake, progress=progress_bar)
    transform_status = report_transform(summary)
    cmd_catalog(args)
    report_status = 0
    if summary.transformed and not args.no_report:
        # New data landed: refresh each affected playlist's report for its newest day, and the
        # comparison of the charts on the newest of those days, in one run.
        newest = layout.newest_day_by_playlist(summary.transformed)
        report_status = run_reports_here(args.lake, newest, days=30, engine=args.engine)
    return extract_status or transform_status or report_status


def run_reports_here(
    lake_root: str,
    wanted: dict[str, str | None],
    *,
    days: int,
    engine: str,
    comparison: bool = True,
) -> int:
    """Run the reports of ``wanted`` (playlist id -> as_of, None for its latest chart) and,
    with ``comparison``, the comparison of the charts, a line per report as it is published;
    1 if any failed."""
    from etl_lib.reporting import reports  # papermill and the kernel only when reports run

    failed = 0

    def announce(result: reports.ReportResult) -> None:
        nonlocal failed
        subject = result.playlist_id or "the comparison of charts"
        as_of = result.status["parameters"]["as_of"]
        if result.refused is not None:
            on_day = f" on {as_of}" if as_of else ""  # None: the latest chart was asked for
            say(f"error: no report for {subject}{on_day}: {result.error}")
            failed = 1
        elif not result.succeeded:
            failed |= _report_failed(result, lake_root, subject, as_of)
        else:
            name = result.status.get("playlist_name") or subject
            print(f"Report: {terminal_safe(name)}: {result.url(lake_root, 'report.html')}")

    reports.run_reports(
        lake_root, wanted, days=days, engine=engine, comparison=comparison, announce=announce
    )
    print(f"Index:  {storage.url(lake_root, reports.INDEX)}")
    return failed


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
    say(
        f"error: the report for {playlist_id} on {as_of} failed{where}: {result.error} "
        f"(status: {result.url(lake_root, 'status.json')})"
    )
    return 1


def cmd_report(args: argparse.Namespace) -> int:
    from etl_lib.reporting import status

    if args.compare:
        return _comparison(args.lake, args.as_of, args.days, args.engine)

    playlists = list(dict.fromkeys(args.playlist or config.DEFAULT_PLAYLISTS[:1]))
    if len(playlists) > 1:
        from etl_lib.transform import iceberg

        iceberg.wait_for_catalog(args.lake)
        # One run: the queries of all, then each notebook in one kernel; a playlist or day
        # the lake does not hold fails that playlist's report only.
        wanted = dict.fromkeys(playlists, args.as_of)
        return run_reports_here(
            args.lake, wanted, days=args.days, engine=args.engine, comparison=False
        )
    # From folder names alone: a playlist or day the lake does not hold fails at once, before
    # even the table code (and pyarrow with it) is loaded.
    window = args.days if isinstance(args.days, int) and args.days >= 1 else 1
    status.check_landed(args.lake, playlists[0], args.as_of, window)
    from etl_lib.transform import iceberg

    iceberg.wait_for_catalog(args.lake)
    # No --as-of: the report checks (before any kernel) and picks the latest chart's day.
    return _report(args.lake, playlists[0], args.as_of, args.days, args.engine)


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


def cmd_demo(args: argparse.Namespace) -> int:
    # the local server is only needed here
    from etl_lib.cli.demo import DEMO_LAST_DAY, DEMO_PLAYLISTS, run_demo
    from etl_lib.reporting import reports
    from etl_lib.transform import iceberg

    result = run_demo(args.lake, days=args.days, say=say, history=args.history)
    status = report_transform(result.summary)
    for outcome in result.history or []:
        if outcome.error is not None or outcome.refused:
            why = outcome.error or f"{len(outcome.refused)} versions refused"
            say(f"error: the history of {outcome.playlist_id} did not land whole: {why}")
            status |= 1
    print(f"\nLake: {storage.url(args.lake)}")
    print("Rows per table: " + ", ".join(f"{t} {n}" for t, n in result.table_rows.items()))
    distinct = ", ".join(f"{n} {v.removeprefix('latest_')}" for v, n in result.distinct.items())
    print(f"Distinct: {distinct}")
    print(f"\nCurrent top 10 ({result.top10['dt'].iloc[0] if len(result.top10) else 'no data'}):")
    print_frame(result.top10.drop(columns=["dt"]), "table")
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

    def announce(report: reports.ReportResult) -> None:
        nonlocal status
        subject = report.playlist_id or "the comparison"
        if report.refused is not None:
            say(f"error: no report for {subject} on {as_of}: {report.error}")
            status |= 1
        elif report.succeeded:
            name = report.status.get("playlist_name") or report.playlist_id or "All charts"
            print(f"  {terminal_safe(name):<20} {report.url(args.lake, 'report.html')}")
        else:
            status |= _report_failed(report, args.lake, subject, as_of)

    # The playlists' reports and the comparison of the charts, in one kernel.
    wanted = dict.fromkeys(DEMO_PLAYLISTS, as_of)
    reports.run_reports(args.lake, wanted, days=args.days, announce=announce)
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


def add_run(add: AddCommand) -> None:
    run = add("run", cmd_run, "Extract, transform and catalog in one go.")
    add_extract_options(run)
    add_engine_option(run)
    run.add_argument("--no-report", action="store_true", help="skip the report after a load")


def add_report(add: AddCommand) -> None:
    report = add(
        "report",
        cmd_report,
        "Run the report notebook (papermill) and publish it under <lake>/reports/.",
    )
    report.add_argument(
        "--playlist",
        action="append",
        metavar="ID",
        help="playlist id, open.spotify.com link or spotify:playlist: URI; repeatable: the "
        f"reports run together, in one kernel (default: {config.DEFAULT_PLAYLISTS[0]})",
    )
    report.add_argument(
        "--as-of", type=report_date, help="report date, YYYY-MM-DD (default: the latest chart)"
    )
    report.add_argument("--days", type=day_count, default=30, help="window in days (default: 30)")
    report.add_argument(
        "--compare",
        action="store_true",
        help="compare every playlist with a chart in the window instead (reports/compare/)",
    )
    add_engine_option(report)


def add_status(add: AddCommand) -> None:
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


def add_demo(add: AddCommand) -> None:
    demo = add("demo", cmd_demo, "Run the whole pipeline offline against the local simulated API.")
    demo.add_argument("--days", type=day_count, default=30, help="simulated days (default: 30)")
    demo.add_argument(
        "--history",
        action="store_true",
        help="first backfill the charts' 60 days before those from the local archive server's "
        "commit history, as backfill --archive-history does from GitHub",
    )
