"""Query engines behind one call: DuckDB (embedded, the default) or Athena.

SQL is written in Athena (Trino) dialect; DuckDB runs it after transpiling with the column
types known (``etl_lib.warehouse.sql``). Parameters are always bound by the engine, never
formatted in.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import duckdb
import pandas as pd

from etl_lib.errors import ConfigError
from etl_lib.warehouse import catalog, sql


def query(lake_root: str, statement: str, params: Sequence[Any] | None = None) -> pd.DataFrame:
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
                message = _clearer_message(connection, statement, params, exc)
                raise ConfigError(f"query failed: {message}") from exc
        return frames


def no_rows(statement: str) -> pd.DataFrame:
    """What an Athena-dialect statement gives over tables without rows: its result's columns,
    typed as DuckDB types them, with nothing read (each parameter is bound NULL: over no rows
    its value changes nothing)."""
    with catalog.connect_empty() as connection:
        duckdb_sql = sql.to_duckdb(statement, catalog.connection_schema(connection))
        return connection.execute(duckdb_sql, [None] * sql.parameter_count(statement)).df()


def _clearer_message(connection, statement: str, params, exc: duckdb.Error) -> str:
    """DuckDB's message for a statement it refused, as one line.

    A statement transpiled with the column types known has its names qualified, so a
    misspelled column reads to DuckDB as an alias used before it is defined; the statement
    transpiled without them is then bound again (binding runs nothing) for the message
    DuckDB gives the statement as written: which column, and the candidates.
    """
    if isinstance(exc, duckdb.BinderException | duckdb.CatalogException):
        try:
            connection.execute(sql.to_duckdb(statement), list(params or []))
        except (duckdb.BinderException, duckdb.CatalogException) as plain:
            return sql.engine_message(plain)
        except duckdb.Error:
            pass
    return sql.engine_message(exc)


def window_rows(
    lake_root: str,
    *,
    view: str | None = None,
    statement: str | None = None,
    params: Sequence[Any] = (),
    first_day: str | None = None,
    last_day: str | None = None,
    playlist_id: str | None = None,
) -> pd.DataFrame:
    """The rows of a table or view (``view``), or of an Athena-dialect ``statement``, for the
    days from ``first_day`` to ``last_day`` (either open) and one playlist if given.

    A statement reads tables that hold only the window's days. A view by name keeps the
    history before the window (a chart's days on chart count from a track's first day, the
    latest attributes are the latest up to the last day); its rows are then those of the
    window's days, when it has a ``dt``.
    """
    if first_day and last_day and first_day > last_day:
        raise ConfigError(f"--from {first_day} is after --to {last_day}")
    if (view is None) == (statement is None):
        raise ConfigError("name a --view or give a --sql statement, not both")
    windowed = first_day is not None or last_day is not None
    if statement is not None:
        days = (first_day, last_day) if windowed else None
        frame = query_all(lake_root, {"rows": (statement, params)}, days=days)["rows"]
        if playlist_id is None:
            return frame
        if "playlist_id" not in frame.columns:
            raise ConfigError("--playlist needs a playlist_id column in the statement's result")
        return frame[frame["playlist_id"] == playlist_id].reset_index(drop=True)
    columns = catalog.schema_with_views()
    if view not in columns:
        raise ConfigError(f"no view {view!r}: export one of {', '.join(sorted(columns))}")
    conditions, bound = [], []
    if playlist_id is not None:
        if "playlist_id" not in columns[view]:
            raise ConfigError(f"{view} has no playlist_id column: --playlist does not apply")
        conditions.append("playlist_id = ?")
        bound.append(playlist_id)
    days = None
    if windowed and "dt" in columns[view]:
        days = (None, last_day)
        conditions += [f"dt {op} ?" for op, day in ((">=", first_day), ("<=", last_day)) if day]
        bound += [day for day in (first_day, last_day) if day]
    elif windowed:
        days = (first_day, last_day)  # computed from the window's rows alone
    where = f" WHERE {' AND '.join(conditions)}" if conditions else ""
    return query_all(lake_root, {"rows": (f"SELECT * FROM {view}{where}", bound)}, days=days)[
        "rows"
    ]


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
        from etl_lib.config import Settings
        from etl_lib.warehouse import athena

        result = athena.query(settings or Settings.from_env(lake=lake_root), statement, params)
        return result.frame, result.bytes_scanned
    if engine != "duckdb":
        raise ConfigError(f"engine {engine!r} is not one of {', '.join(catalog.ENGINES)}")
    return query(lake_root, statement, params), None
