"""The warehouse: SQL over the lake's tables, on DuckDB (local) or Athena (AWS).

``sql`` holds the shipped SQL, written once in Athena (Trino) dialect and transpiled for
DuckDB; ``catalog`` gives DuckDB views over each table's current Iceberg files plus the
shipped views; ``athena`` runs the same SQL on Athena with bound parameters; ``execute`` is
the one query call for both engines.
"""
