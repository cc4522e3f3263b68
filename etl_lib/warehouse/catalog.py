"""The lake's tables and the shipped views for SQL.

The tables are Iceberg tables (``etl_lib.transform.iceberg``): their catalog is the one place
that says which data files make up each table now. DuckDB (the embedded default) reads them through
views over exactly the data files of each table's current snapshot, planned by pyiceberg when
a connection opens; nothing is stored on the DuckDB side, so a long-lived process sees other
processes' commits and compactions on its next connection, and no file can go stale or be
locked. Athena reads the same tables natively through the Glue Data Catalog, plus the same
derived views created in Athena (``etl_lib.warehouse.athena``). The derived views (``latest_*``,
``daily_chart``) are the shipped SQL in ``etl_lib/warehouse/sql/views``.
"""

from __future__ import annotations

import contextlib

import duckdb
import pyarrow as pa

from etl_lib.config import ENGINES
from etl_lib.errors import ConfigError, LakeError
from etl_lib.lake import storage
from etl_lib.transform import iceberg, schemas
from etl_lib.warehouse import sql

_DUCKDB_TYPES = {
    pa.string(): "VARCHAR",
    pa.int32(): "INTEGER",
    pa.int64(): "BIGINT",
    pa.bool_(): "BOOLEAN",
    pa.date32(): "DATE",
    schemas.UTC_TIMESTAMP: "TIMESTAMP WITH TIME ZONE",
}


def table_schema() -> sql.Schema:
    """Column types of the lake tables as DuckDB sees them, ``dt`` included."""
    return {
        table: {**{f.name: _DUCKDB_TYPES[f.type] for f in schema}, "dt": "VARCHAR"}
        for table, schema in schemas.TABLES.items()
    }


def connection_schema(connection: duckdb.DuckDBPyConnection) -> sql.Schema:
    """Column types of every table and view a DuckDB connection sees."""
    schema: sql.Schema = {}
    for table, column, data_type in connection.execute(
        "SELECT table_name, column_name, data_type FROM information_schema.columns"
    ).fetchall():
        schema.setdefault(table, {})[column] = data_type
    return schema


def schema_with_views() -> sql.Schema:
    """Column types of the lake tables and the shipped views, without any data."""
    with connect_empty() as connection:
        return connection_schema(connection)


@contextlib.contextmanager
def connect_empty():
    """An in-memory DuckDB connection whose tables, and so the shipped views, have the lake's
    columns and no rows: what a statement gives is its columns, and nothing is read."""
    types = table_schema()
    with duckdb.connect() as connection:
        for table, columns in types.items():
            typed_nulls = ", ".join(f"CAST(NULL AS {t}) AS {c}" for c, t in columns.items())
            connection.execute(f"CREATE VIEW {table} AS SELECT {typed_nulls} WHERE false")
        for name, view in sql.shipped("views").items():
            connection.execute(f"CREATE VIEW {name} AS {sql.to_duckdb(view, types)}")
        yield connection


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _table_view(planned: iceberg.PlannedTable) -> str:
    types = table_schema()[planned.name]
    if planned.files:
        # Columns by Iceberg field id, so files written before a column was added read it
        # as NULL, and a renamed column still finds its data.
        columns = ", ".join(
            f"{planned.field_ids[column]}: {{name: {_quote(column)}, type: {_quote(kind)}, "
            "default_value: NULL}"
            for column, kind in types.items()
        )
        paths = ", ".join(_quote(_readable_path(path)) for path in planned.files)
        return (
            f"CREATE OR REPLACE VIEW {planned.name} AS SELECT * FROM read_parquet("
            f"[{paths}], schema = MAP {{{columns}}})"
        )
    # A table with no rows yet still gets typed, queryable columns.
    nulls = ", ".join(f"CAST(NULL AS {kind}) AS {column}" for column, kind in types.items())
    return f"CREATE OR REPLACE VIEW {planned.name} AS SELECT {nulls} WHERE false"


def _readable_path(path: str) -> str:
    # DuckDB reads local files by path; s3:// through the lake's registered filesystem.
    return path.removeprefix("file://")


def duckdb_view_statements(
    lake_root: str, days: tuple[str | None, str | None] | None = None
) -> list[tuple[str, str]]:
    """(name, DDL) of every DuckDB view: the tables first, then the shipped derived views.

    ``days`` (first, last; either may be None) limits the tables to those days' files: a
    query of a window plans and reads nothing else.
    """
    row_filter = iceberg.day_range(*days) if days is not None else None
    statements = [
        (name, _table_view(iceberg.plan(lake_root, name, row_filter))) for name in schemas.TABLES
    ]
    types = table_schema()
    for name, view in sql.shipped("views").items():
        statements.append((name, f"CREATE OR REPLACE VIEW {name} AS {sql.to_duckdb(view, types)}"))
    return statements


def connect(
    lake_root: str, days: tuple[str | None, str | None] | None = None
) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB connection with a view per table over its current data files,
    and the shipped views. An object-store lake is read through the lake's fsspec
    filesystem, so no DuckDB extension has to be downloaded."""
    storage.require_root(lake_root)
    connection = duckdb.connect()
    try:
        connection.execute("SET TimeZone = 'UTC'")
        if not storage.is_local(lake_root):
            fs, _ = storage.filesystem(lake_root)
            connection.register_filesystem(fs)
            # One thread: every read goes through Python (fsspec) and holds the GIL, so more
            # threads only wait for it; and a worker thread still releasing a Python file when
            # the connection closes deadlocks with the closing thread, which holds the GIL
            # (seen with DuckDB 1.1, the oldest release pyproject.toml allows).
            connection.execute("SET threads = 1")
        # Creating a view reads its files' footers: a store failure there is one line too.
        with object_store_errors(lake_root), _damaged_data_files(lake_root):
            for _, statement in duckdb_view_statements(lake_root, days):
                connection.execute(statement)
    except BaseException:
        connection.close()
        raise
    return connection


@contextlib.contextmanager
def object_store_errors(lake_root: str):
    """DuckDB errors that are the object store failing under the registered filesystem, as
    the one line ``etl_lib.lake`` gives any storage failure; other DuckDB errors pass."""
    try:
        yield
    except duckdb.Error as exc:
        failure = storage.reported_storage_failure(lake_root, str(exc))
        if failure is None:
            raise
        raise failure from exc


@contextlib.contextmanager
def _damaged_data_files(lake_root: str):
    """A data file the table metadata lists but DuckDB cannot open or decode, in one line."""
    try:
        yield
    except (duckdb.IOException, duckdb.InvalidInputException) as exc:
        detail = " ".join(str(exc).split())[:300]
        raise LakeError(
            f"cannot read a data file of the tables of lake {lake_root} ({detail}): run "
            f"`spotify-etl migrate --lake {lake_root}` to rebuild the tables from the raw zone"
        ) from exc


def build_catalog(lake_root: str, engine: str = "duckdb", settings=None) -> list[str]:
    """Make the tables and views of ``engine`` ready; returns the table and view names.

    DuckDB: the Iceberg tables are created when missing (an empty lake gets empty tables)
    and every view is checked to open. Athena: the same tables are in Glue already (pyiceberg
    writes them there); the shipped views are created in Athena.
    """
    if engine == "athena":
        from etl_lib.config import Settings
        from etl_lib.warehouse import athena  # boto3 and pyathena only when asked for

        settings = settings or Settings.from_env(lake=lake_root)
        return ensure_tables(lake_root) + athena.create_views(settings)
    if engine != "duckdb":
        raise ConfigError(f"engine {engine!r} is not one of {', '.join(ENGINES)}")
    storage.require_root(lake_root)
    ensure_tables(lake_root)
    with connect(lake_root) as connection, object_store_errors(lake_root):
        return [row[0] for row in connection.execute("SHOW TABLES").fetchall()]


def ensure_tables(lake_root: str) -> list[str]:
    """Create every Iceberg table that does not exist yet; returns their names."""
    return iceberg.create_tables(lake_root)
