"""Query engines behind one call: DuckDB (embedded, the default) or Athena.

SQL is written in Athena (Trino) dialect; DuckDB runs it after transpiling with the column
types known (``etl_lib.sql``). Parameters are always bound by the engine, never formatted in.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb
import pandas as pd

from etl_lib import catalog, sql
from etl_lib.errors import ConfigError


def query(
    lake_root: str, statement: str, params: Sequence[Any] | None = None
) -> pd.DataFrame:
    """Run one Athena-dialect statement on DuckDB over the lake; parameters are bound."""
    return query_all(lake_root, {"query": (statement, params)})["query"]


def query_all(
    lake_root: str,
    statements: dict[str, tuple[str, Sequence[Any] | None]],
    *,
    days: tuple[str | None, str | None] | None = None,
) -> dict[str, pd.DataFrame]:
    """Several statements (name -> statement, parameters) on one DuckDB connection; with
    ``days`` (first, last), the tables hold only those days' rows."""
    with catalog.connect(lake_root, days) as connection:
        schema = catalog.connection_schema(connection)
        frames = {}
        for name, (statement, params) in statements.items():
            duckdb_sql = sql.to_duckdb(statement, schema)
            try:
                with catalog.object_store_errors(lake_root):
                    frames[name] = connection.execute(duckdb_sql, list(params or [])).df()
            except duckdb.Error as exc:
                message = str(exc).splitlines()[0]
                raise ConfigError(f"query failed: {message}") from exc
        return frames


def run(
    lake_root: str,
    statement: str,
    params: Sequence[Any] | None = None,
    *,
    engine: str = "duckdb",
    settings=None,
) -> tuple[pd.DataFrame, int | None]:
    """The result of one statement on ``engine``, and the bytes it scanned (Athena only)."""
    if engine == "athena":
        from etl_lib import athena
        from etl_lib.config import Settings

        result = athena.query(settings or Settings.from_env(lake=lake_root), statement, params)
        return result.frame, result.bytes_scanned
    if engine != "duckdb":
        raise ConfigError(f"engine {engine!r} is not one of {', '.join(catalog.ENGINES)}")
    return query(lake_root, statement, params), None
