"""The report query set: its latency through the warehouse, and the bytes it reads.

The set is what the report runs after each load (``etl_lib.reports.input_queries``: the
window's daily charts, the latest track, album, credit and artist attributes, freshness),
with the window set to the whole year, run unchanged.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import duckdb
import pandas as pd

from bench import counting_fs
from bench.generate import DAYS, PLAYLIST_ID, days
from etl_lib import catalog, lake, reports, schemas, sql


class BenchError(RuntimeError):
    """The benchmark cannot measure what it was asked to (the product changed under it)."""


@dataclass(frozen=True)
class ReportQuery:
    name: str
    statement: str
    params: list


def report_queries() -> list[ReportQuery]:
    statements = reports.input_queries(PLAYLIST_ID, days()[-1], DAYS)
    return [ReportQuery(name, sql_text, params) for name, (sql_text, params) in statements.items()]


@dataclass
class Latency:
    """Seconds per query and for the whole set: the median of ``repetitions`` runs."""

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


def _timed_set(connection: duckdb.DuckDBPyConnection) -> dict[str, float]:
    """Seconds per query of one pass over the set: transpile and run, as the report does."""
    schema = catalog.connection_schema(connection)
    run = {}
    for query in report_queries():
        started = time.perf_counter()
        connection.execute(sql.to_duckdb(query.statement, schema), query.params).df()
        run[query.name] = time.perf_counter() - started
    return run


def warehouse_latency(lake_root: str, repetitions: int) -> Latency:
    """The set as the report runs it (``reports.load_inputs``: one catalog connection, each
    query transpiled and run), timed per query with the same calls."""
    runs = []
    for _ in range(repetitions):
        with catalog.connect(lake_root) as connection:
            runs.append(_timed_set(connection))
    return _median_latency(runs)


def _plain_views(connection: duckdb.DuckDBPyConnection, table_sources: dict[str, str]) -> None:
    """Each table as a bare scan of its files, then the shipped derived views over them."""
    connection.execute("SET TimeZone = 'UTC'")
    for table, source in table_sources.items():
        connection.execute(f"CREATE OR REPLACE VIEW {table} AS SELECT * FROM {source}")
    types = catalog.table_schema()
    for name, view in sql.shipped("views").items():
        connection.execute(f"CREATE OR REPLACE VIEW {name} AS {sql.to_duckdb(view, types)}")


def _hive_options() -> str:
    return "hive_partitioning = true, hive_types = {'dt': VARCHAR}"


def _parquet_sources(base: str) -> dict[str, str]:
    """Each table as a bare ``read_parquet`` of its files under ``base`` (a path or URL)."""
    return {
        table: f"read_parquet('{base}/{lake.TABLES}/{table}/*/*.parquet', {_hive_options()})"
        for table in schemas.TABLES
    }


def plain_view_latency(lake_root: str, repetitions: int) -> Latency:
    """The same SQL over bare ``read_parquet`` views: the floor under the catalog's views,
    which also skip the files a newer batch file covers."""
    with duckdb.connect() as connection:
        _plain_views(connection, _parquet_sources(str(Path(lake_root).resolve())))
        runs = [_timed_set(connection) for _ in range(repetitions)]
    return _median_latency(runs)


# -- bytes read: Parquet tables vs the same tables as CSV ----------------------------------


def export_csv(lake_root: str, csv_root: Path) -> None:
    """The lake's tables as CSV, one file per table per day: ``<table>/dt=<day>/data_0.csv``."""
    with duckdb.connect() as connection:
        catalog.create_duckdb_views(connection, lake_root)
        for table, schema in schemas.TABLES.items():
            target = csv_root / lake.TABLES / table
            target.mkdir(parents=True, exist_ok=True)
            connection.execute(
                f"COPY (SELECT {', '.join(schema.names)}, dt FROM {table}) TO '{target}' "
                "(FORMAT csv, HEADER true, PARTITION_BY (dt), OVERWRITE_OR_IGNORE true)"
            )


def _counting_connection(filesystem: counting_fs.CountingFileSystem) -> duckdb.DuckDBPyConnection:
    connection = duckdb.connect()
    connection.register_filesystem(filesystem)
    # One thread: the same reads in the same order on every run (the bytes do not depend on it).
    connection.execute("SET threads = 1")
    # Every scan counts what it fetches, as it would from an object store.
    connection.execute("SET enable_external_file_cache = false")
    # Fetch only the byte ranges a query needs (footers, then the needed column chunks), as
    # Athena reads Parquet and bills it. By default DuckDB reads a small file whole before
    # reading its column chunks, which counts such a file about twice.
    connection.execute("SET disable_parquet_prefetching = true")
    return connection


def _parquet_views(connection: duckdb.DuckDBPyConnection, lake_root: str) -> None:
    """The catalog's own views, reading the same files through the counting filesystem."""
    connection.execute("SET TimeZone = 'UTC'")
    base = str(Path(lake_root).resolve())
    table_root = counting_fs.url(base) + "/"
    for _, statement in catalog.duckdb_view_statements(base, table_root=table_root):
        connection.execute(statement)


def _csv_sources(csv_root: Path) -> dict[str, str]:
    types = catalog.table_schema()
    sources = {}
    for table, schema in schemas.TABLES.items():
        columns = ", ".join(f"'{name}': '{types[table][name]}'" for name in schema.names)
        pattern = counting_fs.url(f"{csv_root.resolve()}/{lake.TABLES}/{table}/*/*.csv")
        sources[table] = (
            f"read_csv('{pattern}', header = true, columns = {{{columns}}}, {_hive_options()})"
        )
    return sources


@dataclass
class BytesRead:
    """Bytes fetched per report query: through the catalog's views over Parquet, through
    bare ``read_parquet`` views over the same files, and through CSV views."""

    parquet: dict[str, int]
    parquet_plain_views: dict[str, int]
    csv: dict[str, int]
    same_results: bool

    @property
    def ratio(self) -> float:
        return sum(self.parquet.values()) / sum(self.csv.values())


def _counted_run(
    connection: duckdb.DuckDBPyConnection, filesystem: counting_fs.CountingFileSystem
) -> tuple[dict[str, int], dict[str, pd.DataFrame]]:
    schema = catalog.connection_schema(connection)
    read, results = {}, {}
    for query in report_queries():
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
    left, right = (frame.astype(str).sort_values(list(frame.columns)) for frame in (left, right))
    return bool((left.to_numpy() == right.to_numpy()).all())


def bytes_read(lake_root: str, csv_root: Path) -> BytesRead:
    """Bytes each report query fetches: over the lake's Parquet, and over the same tables
    as CSV. Both layouts must give the same results."""
    counted_lake = counting_fs.url(str(Path(lake_root).resolve()))
    filesystem = counting_fs.CountingFileSystem()
    with _counting_connection(filesystem) as connection:
        _parquet_views(connection, lake_root)
        parquet, parquet_results = _counted_run(connection, filesystem)
    with _counting_connection(filesystem) as connection:
        _plain_views(connection, _parquet_sources(counted_lake))
        parquet_plain, plain_results = _counted_run(connection, filesystem)
    with _counting_connection(filesystem) as connection:
        _plain_views(connection, _csv_sources(csv_root))
        csv, csv_results = _counted_run(connection, filesystem)
    same = all(
        _same_rows(parquet_results[name], other[name])
        for name in parquet
        for other in (plain_results, csv_results)
    )
    return BytesRead(parquet, parquet_plain, csv, same)


def table_bytes(root: Path, suffix: str) -> int:
    return sum(path.stat().st_size for path in (root / lake.TABLES).glob(f"*/dt=*/*{suffix}"))
