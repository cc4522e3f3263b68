"""Catalog the lake's tables for SQL: DuckDB views over the Parquet files (Glue comes later).

Each table is a view over ``tables/<table>/dt=*/*.parquet`` with ``dt`` read from the path as
a string (the type Athena's partition projection gives it too). The derived views
(``latest_*``, ``daily_chart``) are the shipped Athena-dialect SQL in ``etl_lib/sql/views``.
"""

from __future__ import annotations

import pyarrow as pa

from etl_lib import lake, schemas
from etl_lib.warehouse import connect, shipped_sql, to_duckdb

_DUCKDB_TYPES = {
    pa.string(): "VARCHAR",
    pa.int32(): "INTEGER",
    pa.int64(): "BIGINT",
    pa.bool_(): "BOOLEAN",
    pa.date32(): "DATE",
    schemas.UTC_TIMESTAMP: "TIMESTAMP WITH TIME ZONE",
}


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _table_view(lake_root: str, table: str, schema: pa.Schema) -> str:
    fs, base = lake.filesystem(lake_root)
    if any(lake.list_keys(lake_root, f"{lake.TABLES}/{table}/", ".parquet")):
        pattern = f"{base}/{lake.TABLES}/{table}/*/*.parquet"
        return (
            f"CREATE OR REPLACE VIEW {table} AS SELECT * FROM read_parquet({_quote(pattern)}, "
            "hive_partitioning = true, hive_types = {'dt': VARCHAR}, union_by_name = true)"
        )
    # An empty lake still gets typed, queryable tables.
    columns = [f"CAST(NULL AS {_DUCKDB_TYPES[f.type]}) AS {f.name}" for f in schema]
    columns.append("CAST(NULL AS VARCHAR) AS dt")
    return f"CREATE OR REPLACE VIEW {table} AS SELECT {', '.join(columns)} WHERE false"


def build_catalog(lake_root: str) -> list[str]:
    """Create or replace every view; returns the view names."""
    lake.ensure_root(lake_root)
    names = []
    with connect(lake_root, read_only=False) as connection:
        connection.execute("SET TimeZone = 'UTC'")
        for table, schema in schemas.TABLES.items():
            connection.execute(_table_view(lake_root, table, schema))
            names.append(table)
        for name, sql in shipped_sql("views").items():
            connection.execute(f"CREATE OR REPLACE VIEW {name} AS {to_duckdb(sql)}")
            names.append(name)
    return names
