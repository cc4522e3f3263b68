"""The report query set: its latency through the warehouse, and the bytes it reads.

The set is what the report runs after each load (``etl_lib.reporting.reports.input_queries``: the
last chart day's chart over the whole history, the playlist's freshness, and the shipped
analyses of ``reports.REPORT_ANALYSES``, each track named with every credited artist), with
the window set to every day measured, run unchanged, the way ``reports.load_inputs`` runs it:
one ``catalog.connect`` (pyiceberg plans each table's data files, DuckDB gets a view over
them), then each query transpiled and run.
"""

from __future__ import annotations

import os
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from bench import BenchError, counting_fs
from bench.generate import PLAYLIST_ID, days
from etl_lib.reporting import reports
from etl_lib.transform import iceberg, schemas
from etl_lib.warehouse import catalog, sql

# The connection's share of a run: planning every table's files and creating the views.
OPEN = "open"


@dataclass(frozen=True)
class ReportQuery:
    name: str
    statement: str
    params: list


def report_queries(day_count: int) -> list[ReportQuery]:
    statements = reports.input_queries(PLAYLIST_ID, days(day_count)[-1], day_count)
    return [ReportQuery(name, sql_text, params) for name, (sql_text, params) in statements.items()]


@dataclass
class Latency:
    """Seconds of ``OPEN`` and of each query, and of the whole set (the connection
    included): the median of ``repetitions`` runs."""

    per_query: dict[str, float]
    total: float
    repetitions: int


def _median_latency(runs: list[dict[str, float]]) -> Latency:
    names = list(runs[0])
    return Latency(
        per_query={name: statistics.median(run[name] for run in runs) for name in names},
        total=statistics.median(sum(run.values()) for run in runs),
        repetitions=len(runs),
    )


def _timed_set(
    connection: duckdb.DuckDBPyConnection, day_count: int, run: dict[str, float]
) -> dict[str, float]:
    """Seconds per query of one pass over the set: transpile and run, as the report does."""
    schema = catalog.connection_schema(connection)
    for query in report_queries(day_count):
        started = time.perf_counter()
        connection.execute(sql.to_duckdb(query.statement, schema), query.params).df()
        run[query.name] = time.perf_counter() - started
    return run


def warehouse_latency(lake_root: str, day_count: int, repetitions: int) -> Latency:
    """The set as ``reports.load_inputs`` runs it, timed with the same calls: opening the
    connection (``OPEN``), then each query."""
    runs = []
    for _ in range(repetitions):
        started = time.perf_counter()
        connection = catalog.connect(lake_root)
        run = {OPEN: time.perf_counter() - started}
        with connection:
            runs.append(_timed_set(connection, day_count, run))
    return _median_latency(runs)


# -- bytes read: the Parquet tables vs the same tables as CSV ------------------------------


def export_csv(lake_root: str, csv_root: Path) -> None:
    """The lake's tables as CSV, one file per table per day: ``<table>/dt=<day>/data_0.csv``."""
    with catalog.connect(lake_root) as connection:
        for table, schema in schemas.TABLES.items():
            target = csv_root / table
            target.mkdir(parents=True, exist_ok=True)
            connection.execute(
                f"COPY (SELECT {', '.join(schema.names)}, dt FROM {table}) TO '{target}' "
                "(FORMAT csv, HEADER true, PARTITION_BY (dt), OVERWRITE_OR_IGNORE true)"
            )


def _counting_connection(filesystem: counting_fs.CountingFileSystem) -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect()
    connection.register_filesystem(filesystem)
    connection.execute("SET TimeZone = 'UTC'")  # as catalog.connect sets it
    # One thread: the same reads in the same order on every run (the bytes do not depend on it).
    connection.execute("SET threads = 1")
    # Every scan counts what it fetches, as it would from an object store.
    connection.execute("SET enable_external_file_cache = false")
    # Fetch only the byte ranges a query needs (footers, then the needed column chunks), as
    # Athena reads Parquet and bills it. By default DuckDB reads a small file whole before
    # reading its column chunks, which counts such a file about twice.
    connection.execute("SET disable_parquet_prefetching = true")
    return connection


def _data_folder(lake_root: str) -> str:
    """The local folder every table's data files are under."""
    return iceberg.warehouse_location(lake_root).removeprefix("file://")


def planned_files(lake_root: str) -> list[str]:
    """The local paths of the data files of every table's current snapshot."""
    return [
        path.removeprefix("file://")
        for table in schemas.TABLES
        for path in iceberg.plan(lake_root, table).files
    ]


def _counted_parquet_views(connection: duckdb.DuckDBPyConnection, lake_root: str) -> None:
    """The views ``catalog.connect`` creates, each data file read through the counting
    filesystem instead of from its path."""
    folder = _data_folder(lake_root)
    quoted, counted = f"'{folder}/", f"'{counting_fs.url(folder)}/"
    rewritten = 0
    for _, statement in catalog.duckdb_view_statements(lake_root):
        rewritten += statement.count(quoted)
        connection.execute(statement.replace(quoted, counted))
    expected = len(planned_files(lake_root))
    if rewritten != expected:
        raise BenchError(
            f"the catalog's views name {rewritten} of the {expected} planned data files by "
            f"their path under {folder}: their reads cannot be counted"
        )


def _csv_views(connection: duckdb.DuckDBPyConnection, csv_root: Path) -> None:
    """Each table as a ``read_csv`` of its per-day files, then the shipped derived views.

    The dialect is given (``export_csv``'s, DuckDB's defaults), so nothing is sniffed: a
    sniffing reader fetches each file once more, which would count CSV bytes twice.
    """
    types = catalog.table_schema()
    for table, schema in schemas.TABLES.items():
        columns = ", ".join(f"'{name}': '{types[table][name]}'" for name in schema.names)
        pattern = counting_fs.url(f"{csv_root.resolve()}/{table}/*/*.csv")
        connection.execute(
            f"CREATE VIEW {table} AS SELECT * FROM read_csv('{pattern}', header = true, "
            f"columns = {{{columns}}}, auto_detect = false, delim = ',', quote = '\"', "
            "escape = '\"', hive_partitioning = true, hive_types = {'dt': VARCHAR})"
        )
    for name, view in sql.shipped("views").items():
        connection.execute(f"CREATE VIEW {name} AS {sql.to_duckdb(view, types)}")


@dataclass
class BytesRead:
    """Bytes fetched per report query: through the catalog's views over the Parquet data
    files, and through the same views over the tables as CSV."""

    parquet: dict[str, int]
    csv: dict[str, int]
    same_results: bool

    @property
    def ratio(self) -> float:
        return sum(self.parquet.values()) / sum(self.csv.values())


def _counted_run(
    connection: duckdb.DuckDBPyConnection,
    filesystem: counting_fs.CountingFileSystem,
    day_count: int,
) -> tuple[dict[str, int], dict[str, pd.DataFrame]]:
    schema = catalog.connection_schema(connection)
    read, results = {}, {}
    for query in report_queries(day_count):
        filesystem.bytes_read = 0
        results[query.name] = connection.execute(
            sql.to_duckdb(query.statement, schema), query.params
        ).df()
        read[query.name] = filesystem.bytes_read
    return read, results


def _same_rows(left: pd.DataFrame, right: pd.DataFrame) -> bool:
    """Equal up to the order of tied rows (both results come from ORDER BY queries)."""
    if list(left.columns) != list(right.columns) or len(left) != len(right):
        return False
    # As text, NULLs as one marker: pandas' string dtype keeps a NULL as NaN, never equal.
    left, right = (
        frame.astype(str).fillna("\0NULL").sort_values(list(frame.columns))
        for frame in (left, right)
    )
    return bool((left.to_numpy() == right.to_numpy()).all())


def bytes_read(lake_root: str, csv_root: Path, day_count: int) -> BytesRead:
    """Bytes each report query fetches: over the lake's Parquet data files, and over the
    same tables as CSV. Both must give the same results."""
    filesystem = counting_fs.CountingFileSystem()
    with _counting_connection(filesystem) as connection:
        _counted_parquet_views(connection, lake_root)
        parquet, parquet_results = _counted_run(connection, filesystem, day_count)
    with _counting_connection(filesystem) as connection:
        _csv_views(connection, csv_root)
        csv, csv_results = _counted_run(connection, filesystem, day_count)
    if not sum(parquet.values()):
        raise BenchError("the report queries read no bytes through the counting filesystem")
    same = all(_same_rows(parquet_results[name], csv_results[name]) for name in parquet)
    return BytesRead(parquet, csv, same)


def parquet_bytes(lake_root: str) -> int:
    """On-disk size of the data files every table's current snapshot reads."""
    return sum(os.path.getsize(path) for path in planned_files(lake_root))


def csv_bytes(csv_root: Path) -> int:
    return sum(path.stat().st_size for path in csv_root.glob("*/dt=*/*.csv"))
