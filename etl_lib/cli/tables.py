"""Commands on the lake's tables: ``compact``, ``migrate``, ``catalog``, ``query`` and
``export``."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING

from etl_lib.cli.options import (
    AddCommand,
    add_engine_option,
    add_workers_option,
    iso_day,
    parameter,
    settings_for,
)
from etl_lib.cli.output import print_frame, progress_bar, say, terminal_safe
from etl_lib.errors import ConfigError, EtlError
from etl_lib.lake import layout, storage

if TYPE_CHECKING:
    import pandas as pd


def cmd_compact(args: argparse.Namespace) -> int:
    from etl_lib.transform import compaction

    summary = compaction.compact(args.lake, days=args.day, month=args.month, progress=progress_bar)
    say(
        f"compacted {summary.days_rewritten} days: {summary.files_before} files "
        f"-> {summary.files_after}; {summary.days_already_compact} already compact; "
        f"expired {summary.snapshots_expired} table snapshots, deleted "
        f"{summary.files_deleted} files no snapshot needs"
    )
    return 0


def cmd_migrate(args: argparse.Namespace) -> int:
    from etl_lib import migrate

    summary = migrate.migrate(args.lake, workers=args.workers, progress=progress_bar)
    if summary is None:
        say(f"lake {args.lake} is in the current layout: nothing to migrate")
        return 0
    for key, reason in summary.transform.quarantined.items():
        say(f"error: {reason} (copied to {layout.quarantine_key(key)}; fix or remove the raw file)")
    dropped = []
    if summary.glue_tables_dropped:
        names = ", ".join(summary.glue_tables_dropped)
        dropped.append(f"the previous layout's Glue tables ({names})")
    if summary.foreign_tables:
        dropped.append(f"the catalog of tables at {summary.foreign_tables}")
    say(
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
        args.lake, engine, settings_for(args) if engine == "athena" else None
    )
    if engine == "athena":
        where = "the Glue Data Catalog and Athena"
    elif storage.is_local(args.lake):
        where = iceberg.local_catalog_path(args.lake) + " (DuckDB reads it per query)"
    else:
        where = "the Glue Data Catalog (DuckDB reads it per query)"
    say(f"cataloged {len(names)} tables and views in {where}: {', '.join(names)}")
    return 0


def cmd_query(args: argparse.Namespace) -> int:
    from etl_lib.transform import iceberg
    from etl_lib.warehouse import execute

    settings = settings_for(args) if args.engine == "athena" else None
    iceberg.wait_for_catalog(args.lake)
    frame, bytes_scanned = execute.run(
        args.lake, args.sql, args.param, engine=args.engine, settings=settings
    )
    print_frame(frame, args.format)
    if bytes_scanned is not None:
        say(f"Athena scanned {bytes_scanned:,} bytes")
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


def add_compact(add: AddCommand) -> None:
    compact = add(
        "compact",
        cmd_compact,
        "Rewrite each day's small files into one sorted file per table, one commit each "
        "(readers see the old files or the new, never both), then expire table snapshots "
        "older than SPOTIFY_ETL_SNAPSHOT_RETENTION_DAYS and delete the files none needs. "
        "Running it again rewrites nothing.",
    )
    compact.add_argument(
        "--day",
        action="append",
        type=iso_day,
        metavar="YYYY-MM-DD",
        help="only this day (repeatable)",
    )
    compact.add_argument("--month", metavar="YYYY-MM", help="only the days of this month")


def add_migrate(add: AddCommand) -> None:
    migrate_command = add(
        "migrate",
        cmd_migrate,
        "Rebuild the tables of a lake written by the previous release (Parquet files under "
        "tables/, catalog.duckdb), or of a moved or copied lake folder, as Iceberg tables "
        "from the raw zone, then remove the old files. Running it again does nothing.",
    )
    add_workers_option(migrate_command, "worker processes (default: one per core)")


def add_catalog(add: AddCommand) -> None:
    add_engine_option(add("catalog", cmd_catalog, "Create or update the tables and views for SQL."))


def add_query(add: AddCommand) -> None:
    query = add("query", cmd_query, "Run one SQL statement (Athena/Trino dialect) and print it.")
    query.add_argument("sql", help="the statement; use ? for bound parameters")
    query.add_argument(
        "--param",
        action="append",
        default=[],
        type=parameter,
        metavar="VALUE",
        help="bind a ? parameter; numbers bind as numbers ('\"10\"' for the string 10)",
    )
    query.add_argument("--format", choices=("table", "csv", "json"), default="table")
    add_engine_option(query)


def add_export(add: AddCommand) -> None:
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
        type=parameter,
        metavar="VALUE",
        help="with --sql: bind a ? parameter, as in `query`",
    )
    export.add_argument(
        "--from", dest="first_day", type=iso_day, metavar="YYYY-MM-DD", help="first day (dt)"
    )
    export.add_argument(
        "--to", dest="last_day", type=iso_day, metavar="YYYY-MM-DD", help="last day (dt)"
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
