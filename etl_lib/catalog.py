"""Catalog the lake's tables for SQL.

DuckDB (the embedded default): views over ``tables/<table>/dt=*/*.parquet`` with ``dt`` read
from the path as a string, the type Athena's partition projection gives it too; for a local
lake they persist in ``<lake>/catalog.duckdb``. Athena: the Glue Data Catalog
(``etl_lib.glue``) plus the same derived views created in Athena (``etl_lib.athena``).
The derived views (``latest_*``, ``daily_chart``) are the shipped SQL in ``etl_lib/sql/views``.

A local catalog holds only views, and their paths are relative to the lake (DuckDB's
``file_search_path``, set by ``connect``): a copied or moved lake reads its own files, and
glob characters in the lake's path are never expanded. ``build_catalog`` writes a new
database file beside the old one and renames it over ``catalog.duckdb``: readers keep the file
they opened, and two builds at once never wait for each other.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import tempfile
import time

import duckdb
import pyarrow as pa

from etl_lib import lake, schemas, sql
from etl_lib.errors import ConfigError, LakeError

CATALOG_FILE = "catalog.duckdb"
ENGINES = ("duckdb", "athena")
# Only a process that opened catalog.duckdb for writing itself (a duckdb shell, say) holds a
# lock readers must wait for: this project's builds replace the file instead.
LOCK_WAIT_SECONDS = 10.0
# A write renames its temporary file within seconds, so one this old was left by a killed
# process; younger ones may belong to a writer still running.
STALE_TEMPORARY_SECONDS = 3600.0
_LOCK_HOLDER = re.compile(r"held in (?P<program>.*?) \(PID (?P<pid>\d+)\)")

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
    types = table_schema()
    with duckdb.connect() as connection:
        for table, columns in types.items():
            typed_nulls = ", ".join(f"CAST(NULL AS {t}) AS {c}" for c, t in columns.items())
            connection.execute(f"CREATE VIEW {table} AS SELECT {typed_nulls} WHERE false")
        for name, view in sql.shipped("views").items():
            connection.execute(f"CREATE VIEW {name} AS {sql.to_duckdb(view, types)}")
        return connection_schema(connection)


def catalog_path(lake_root: str) -> str:
    if not lake.is_local(lake_root):
        raise ConfigError(f"{lake_root!r} is not a local lake: it has no catalog.duckdb")
    _, base = lake.filesystem(lake_root)
    return os.path.join(base, CATALOG_FILE)


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _table_root(lake_root: str) -> str:
    """Where the views find ``tables/``: "" (relative to the lake, through the connection's
    ``file_search_path``) for a local lake, the lake's URL for an object store."""
    if lake.is_local(lake_root):
        return ""
    _, base = lake.filesystem(lake_root)
    return lake_root.split("://", 1)[0] + "://" + base + "/"


def _table_view(lake_root: str, table: str, schema: pa.Schema, table_root: str) -> str:
    if any(lake.list_keys(lake_root, f"{lake.TABLES}/{table}/", ".parquet")):
        pattern = f"{table_root}{lake.TABLES}/{table}/*/*.parquet"
        # Files a newer batch file covers are skipped (the rule of etl_lib.lake.superseded),
        # so a reader never counts a snapshot twice while a compaction replaces files.
        return f"""CREATE OR REPLACE VIEW {table} AS
WITH files AS (
    SELECT file,
           regexp_extract(file, {_quote(lake.FILE_DT_PATTERN)}, 1) AS day,
           regexp_extract(file, {_quote(lake.FILE_PLAYLIST_PATTERN)}, 1) AS playlist,
           regexp_extract(file, {_quote(lake.FILE_GENERATION_PATTERN)}, 1) AS generation,
           regexp_extract(file, {_quote(lake.FILE_FIRST_STAMP_PATTERN)}, 1) AS first_stamp,
           regexp_extract(file, {_quote(lake.FILE_LAST_STAMP_PATTERN)}, 1) AS last_stamp
    FROM glob({_quote(pattern)})
),
superseded AS (
    SELECT older.file
    FROM files AS older
    JOIN files AS newer
      ON newer.day = older.day AND newer.playlist = older.playlist
     AND newer.generation > older.generation
     AND newer.first_stamp <= older.first_stamp AND older.last_stamp <= newer.last_stamp
)
SELECT * EXCLUDE (filename)
FROM read_parquet({_quote(pattern)}, hive_partitioning = true, hive_types = {{'dt': VARCHAR}},
                  union_by_name = true, filename = true)
WHERE filename NOT IN (SELECT file FROM superseded)"""
    # An empty lake still gets typed, queryable tables.
    columns = [f"CAST(NULL AS {_DUCKDB_TYPES[f.type]}) AS {f.name}" for f in schema]
    columns.append("CAST(NULL AS VARCHAR) AS dt")
    return f"CREATE OR REPLACE VIEW {table} AS SELECT {', '.join(columns)} WHERE false"


def duckdb_view_statements(
    lake_root: str, table_root: str | None = None
) -> list[tuple[str, str]]:
    """(name, DDL) of every DuckDB view: the tables first, then the shipped derived views.

    ``table_root`` is the prefix of the views' ``tables/...`` patterns (by default
    ``_table_root``: none for a local lake, whose connections resolve them in the lake).
    """
    if table_root is None:
        table_root = _table_root(lake_root)
    statements = [
        (table, _table_view(lake_root, table, schema, table_root))
        for table, schema in schemas.TABLES.items()
    ]
    types = table_schema()
    for name, view in sql.shipped("views").items():
        statements.append((name, f"CREATE OR REPLACE VIEW {name} AS {sql.to_duckdb(view, types)}"))
    return statements


def create_duckdb_views(connection: duckdb.DuckDBPyConnection, lake_root: str) -> list[str]:
    _read_in_lake(connection, lake_root)
    names = []
    for name, statement in duckdb_view_statements(lake_root):
        connection.execute(statement)
        names.append(name)
    return names


def _read_in_lake(connection: duckdb.DuckDBPyConnection, lake_root: str) -> None:
    """Session settings the views need: UTC, and relative paths resolved in a local lake."""
    connection.execute("SET TimeZone = 'UTC'")
    if not lake.is_local(lake_root):
        return
    _, base = lake.filesystem(lake_root)
    if "," in base:
        # DuckDB splits file_search_path on commas, with no way to escape one.
        raise ConfigError(
            f"lake path {base!r} contains a comma, which DuckDB cannot search: "
            "rename or move the lake folder"
        )
    connection.execute(f"SET file_search_path = {_quote(base)}")


def connect(lake_root: str) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection with the lake's views.

    A local lake opens its ``catalog.duckdb`` read-only (many readers at once). An object-store
    lake gets an in-memory database reading the Parquet files through the lake's fsspec
    filesystem, so no DuckDB extension has to be downloaded.
    """
    lake.require_root(lake_root)
    if lake.is_local(lake_root):
        path = catalog_path(lake_root)
        if not os.path.exists(path):
            raise LakeError(
                f"no catalog in lake {lake_root!r}: run `spotify-etl catalog --lake {lake_root}` "
                "(or `spotify-etl run`) first"
            )
        connection = _open_read_only(path, lake_root)
        try:
            _read_in_lake(connection, lake_root)
        except BaseException:
            connection.close()
            raise
        return connection
    fs, _ = lake.filesystem(lake_root)
    connection = duckdb.connect()
    try:
        connection.register_filesystem(fs)
        with lake.storage_errors(lake_root), object_store_errors(lake_root):
            create_duckdb_views(connection, lake_root)
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
        failure = lake.reported_storage_failure(lake_root, str(exc))
        if failure is None:
            raise
        raise failure from exc


def _open_read_only(path: str, lake_root: str) -> duckdb.DuckDBPyConnection:
    """Open the catalog, waiting up to LOCK_WAIT_SECONDS for a process that locked it."""
    deadline = time.monotonic() + LOCK_WAIT_SECONDS
    pause = 0.05
    while True:
        try:
            return duckdb.connect(path, read_only=True)
        except duckdb.IOException as exc:
            message = str(exc)
            if "not a valid DuckDB database" in message:
                raise LakeError(
                    f"{path} is not a DuckDB database: run `spotify-etl catalog --lake "
                    f"{lake_root}` to rebuild it"
                ) from exc
            if "replaying WAL" in message:
                # Another program wrote to a catalog that a build has since replaced: its log
                # belongs to the old file.
                raise LakeError(
                    f"{path}.wal does not match {path} (a program other than spotify-etl "
                    f"wrote to the catalog): run `spotify-etl catalog --lake {lake_root}` to "
                    "rebuild it"
                ) from exc
            holder = _LOCK_HOLDER.search(message)
            if holder is None:
                raise
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise LakeError(
                    f"{path} is locked by {holder['program']} (PID {holder['pid']}), which "
                    f"opened it for writing; still locked after {LOCK_WAIT_SECONDS:g} s: close "
                    "that process's connection to it (this project only ever reads it), then "
                    "run the command again"
                ) from exc
            time.sleep(min(pause, remaining))
            pause = min(pause * 2, 1.0)


def build_catalog(lake_root: str, engine: str = "duckdb", settings=None) -> list[str]:
    """Create or update the catalog of ``engine``; returns the table and view names."""
    if engine == "athena":
        from etl_lib import athena, glue  # boto3 and pyathena only when asked for
        from etl_lib.config import Settings

        settings = settings or Settings.from_env(lake=lake_root)
        return glue.ensure_catalog(settings) + athena.create_views(settings)
    if not lake.is_local(lake_root):
        # Views over object storage live in each query's connection; building them here
        # checks that the lake answers (connect checks it is there).
        with connect(lake_root) as connection:
            return [row[0] for row in connection.execute("SHOW TABLES").fetchall()]
    lake.require_root(lake_root)
    # `run` catalogs after every load, so leftovers of killed writes go within the hour.
    lake.remove_stale_temporaries(lake_root, STALE_TEMPORARY_SECONDS)
    path = catalog_path(lake_root)
    # DuckDB derives its write-ahead log's path from the database's and trips on a "?" in it
    # (a lake folder may hold one): the catalog is built under a plain name, then copied in.
    with tempfile.TemporaryDirectory(prefix="spotify-etl-catalog-") as scratch:
        built = os.path.join(scratch, CATALOG_FILE)
        with duckdb.connect(built) as connection:
            names = create_duckdb_views(connection, lake_root)
            connection.execute("CHECKPOINT")  # everything in the file, no log beside it
        # A build killed midway leaves a temporary file like any other write's.
        temporary = lake.temporary_path(path)
        try:
            shutil.copyfile(built, temporary)
            # The new file is checkpointed whole and needs no log; a log beside the old file
            # (another program wrote to it) would be replayed into the new one and refused.
            # Removed before the rename: a reader then sees the old file without its log
            # (views this project rebuilds anyway), never the new one with a foreign log.
            with contextlib.suppress(FileNotFoundError):
                os.remove(f"{path}.wal")
            os.replace(temporary, path)
        finally:
            if os.path.exists(temporary):
                os.remove(temporary)
    return names
