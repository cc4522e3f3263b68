"""Query engines. SQL is written once in Athena (Trino) dialect; DuckDB runs it transpiled.

DuckDB is the embedded stand-in for Glue + Athena: ``catalog.duckdb`` in the lake root holds
views over the Parquet tables (see ``etl_lib.catalog``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from importlib import resources
from typing import Any

import duckdb
import pandas as pd
import sqlglot
from sqlglot.errors import ParseError

from etl_lib import lake
from etl_lib.errors import ConfigError, LakeError

SOURCE_DIALECT = "trino"
CATALOG_FILE = "catalog.duckdb"


def to_duckdb(sql: str) -> str:
    """Transpile one Athena/Trino statement to DuckDB; bound parameters (``?``) are kept."""
    try:
        statements = sqlglot.transpile(sql, read=SOURCE_DIALECT, write="duckdb")
    except ParseError as exc:
        first_error = exc.errors[0]["description"] if exc.errors else str(exc)
        raise ConfigError(f"SQL does not parse as Athena (Trino) SQL: {first_error}") from exc
    if len(statements) != 1:
        raise ConfigError(f"expected one SQL statement, got {len(statements)}")
    return statements[0]


def shipped_sql(folder: str) -> dict[str, str]:
    """The project's SQL files in ``etl_lib/sql/<folder>``, by name, in Athena dialect."""
    directory = resources.files("etl_lib") / "sql" / folder
    return {
        item.name.removesuffix(".sql"): item.read_text(encoding="utf-8")
        for item in sorted(directory.iterdir(), key=lambda entry: entry.name)
        if item.name.endswith(".sql")
    }


def catalog_path(lake_root: str) -> str:
    fs, base = lake.filesystem(lake_root)
    if "file" not in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)):
        raise ConfigError(
            f"the DuckDB engine keeps its catalog in a local lake; {lake_root!r} is not local"
        )
    return os.path.join(base, CATALOG_FILE)


def connect(lake_root: str, *, read_only: bool = True) -> duckdb.DuckDBPyConnection:
    path = catalog_path(lake_root)
    if read_only and not os.path.exists(path):
        raise LakeError(
            f"no catalog in lake {lake_root!r}: run `spotify-etl catalog --lake {lake_root}` "
            "(or `spotify-etl run`) first"
        )
    return duckdb.connect(path, read_only=read_only)


def query(lake_root: str, sql: str, params: Sequence[Any] | None = None) -> pd.DataFrame:
    """Run one Athena-dialect statement on the lake's DuckDB catalog; parameters are bound."""
    statement = to_duckdb(sql)
    with connect(lake_root) as connection:
        connection.execute("SET TimeZone = 'UTC'")
        try:
            return connection.execute(statement, list(params or [])).df()
        except duckdb.Error as exc:
            message = str(exc).splitlines()[0]
            raise ConfigError(f"query failed: {message}") from exc
