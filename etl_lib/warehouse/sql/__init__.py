"""The project's SQL: written once in Athena (Trino) dialect, transpiled for DuckDB.

``shipped(folder)`` returns the ``.sql`` files of ``views/``, ``queries/`` or ``report/``
(each query's header names its parameters). ``to_duckdb`` transpiles with the column types
known, because some Trino semantics only survive transpiling when sqlglot knows the types
(integer division truncates in Trino, not in DuckDB). ``portability_problems`` names the
constructs that would still run differently, or not at all, on one of the two engines; a test
keeps the shipped SQL free of them.
"""

from __future__ import annotations

import functools
import re
from importlib import resources

import sqlglot
from sqlglot import exp
from sqlglot.errors import OptimizeError, ParseError, SqlglotError, TokenError
from sqlglot.optimizer.annotate_types import annotate_types
from sqlglot.optimizer.qualify import qualify
from sqlglot.schema import MappingSchema

from etl_lib.errors import ConfigError

SOURCE_DIALECT = "trino"
# Functions sqlglot 30.x does not translate between Trino and DuckDB.
UNPORTABLE_FUNCTIONS = ("format_datetime", "parse_datetime", "map_agg")

Schema = dict[str, dict[str, str]]  # table -> column -> DuckDB type name


def shipped(folder: str) -> dict[str, str]:
    """The SQL files in ``etl_lib/warehouse/sql/<folder>``, by name (file name without ``.sql``).

    In name order, except that a file reading another of the folder (a view over a view)
    comes after it: both engines check a view's tables when it is created.
    """
    directory = resources.files(__name__) / folder
    files = {
        item.name.removesuffix(".sql"): item.read_text(encoding="utf-8")
        for item in sorted(directory.iterdir(), key=lambda entry: entry.name)
        if item.name.endswith(".sql")
    }
    return {name: files[name] for name in _dependencies_first(files)}


def _dependencies_first(files: dict[str, str]) -> list[str]:
    reads = {name: _relations_read(text) & files.keys() - {name} for name, text in files.items()}
    ordered: list[str] = []
    while len(ordered) < len(files):
        ready = [n for n in files if n not in ordered and reads[n] <= set(ordered)]
        if not ready:
            cycle = sorted(set(files) - set(ordered))
            raise ValueError(f"shipped SQL files read each other in a cycle: {cycle}")
        ordered.append(ready[0])
    return ordered


@functools.lru_cache(maxsize=256)
def _relations_read(text: str) -> frozenset[str]:
    """The tables and views a statement reads (its own CTEs left out)."""
    expression = parse(text)
    own = {cte.alias_or_name for cte in expression.find_all(exp.CTE)}
    return frozenset({table.name for table in expression.find_all(exp.Table)} - own)


def parse(sql: str) -> exp.Expression:
    try:
        statements = sqlglot.parse(sql, read=SOURCE_DIALECT)
    except (ParseError, TokenError) as exc:
        raise ConfigError(f"SQL does not parse: {_parse_failure(sql, exc)}") from exc
    statements = [s for s in statements if s is not None]
    if len(statements) != 1:
        raise ConfigError(f"expected one SQL statement, got {len(statements)}")
    return statements[0]


def parameter_count(sql: str) -> int:
    """The number of ``?`` parameters a statement binds."""
    return len(list(parse(sql).find_all(exp.Placeholder)))


def _parse_failure(sql: str, exc: ParseError | TokenError) -> str:
    """What is wrong with ``sql``, in one line: DuckDB's parser message (the engine's own
    words, with its position) when DuckDB cannot parse it either, else the transpiler's first
    error and where it is (SQL that only Trino reads, e.g. a lambda DuckDB spells otherwise)."""
    import duckdb

    try:
        duckdb.extract_statements(sql)
    except duckdb.Error as duckdb_error:
        # DuckDB read the statement as written: its line number is the user's.
        line = re.search(r"^LINE (\d+):", str(duckdb_error), re.MULTILINE)
        where = f" (line {line[1]})" if line else ""
        return engine_message(duckdb_error) + where
    errors = getattr(exc, "errors", None)
    if not errors:
        return " ".join(str(exc).split())
    first = errors[0]
    return (
        f"{first['description']} at line {first['line']}, column {first['col']} "
        f"(near {first['highlight']!r}); the statement is read as Athena (Trino) SQL"
    )


def engine_message(error: BaseException) -> str:
    """An engine's error as one line: its message and its hints ("Did you mean", "Candidate
    bindings"), without the excerpt of the statement it drew under them (a transpiled
    statement is not the one the user wrote)."""
    kept = []
    lines = str(error).splitlines()
    for number, line in enumerate(lines):
        if line.startswith("LINE ") or (
            number > 0 and lines[number - 1].startswith("LINE ") and not line.strip("^ ")
        ):
            continue
        if line.strip():
            kept.append(line.strip())
    return " ".join(kept)


def _typed(expression: exp.Expression, schema: Schema) -> exp.Expression | None:
    mapping = MappingSchema(schema, dialect="duckdb")
    try:
        qualified = qualify(
            expression.copy(),
            schema=mapping,
            dialect=SOURCE_DIALECT,
            expand_stars=False,
            quote_identifiers=False,
            identify=False,
            validate_qualify_columns=False,
        )
        typed = annotate_types(qualified, schema=mapping)
    except (OptimizeError, SqlglotError, KeyError, ValueError):
        return None
    # Qualifying expands GROUP BY ordinals; a copied ``?`` would shift the bound parameters.
    placeholders = len(list(expression.find_all(exp.Placeholder)))
    if len(list(typed.find_all(exp.Placeholder))) != placeholders:
        return None
    return typed


def to_duckdb(sql: str, schema: Schema | None = None) -> str:
    """One Athena/Trino statement as DuckDB SQL; ``?`` parameters stay bound parameters."""
    expression = parse(sql)
    typed = _typed(expression, schema) if schema else None
    try:
        return (typed or expression).transform(_keep_null_arguments).sql(dialect="duckdb")
    except SqlglotError as exc:  # a construct with no DuckDB spelling
        message = " ".join(str(exc).split())
        raise ConfigError(f"SQL cannot run on DuckDB: {message}") from exc


_NULL_KEEPING = {exp.ArgMax: "arg_max_null", exp.ArgMin: "arg_min_null"}


def _keep_null_arguments(node: exp.Expression) -> exp.Expression:
    # Trino's max_by/min_by return the chosen row's value even when it is NULL; DuckDB's
    # arg_max/arg_min skip rows whose value is NULL, its *_null variants do not.
    name = _NULL_KEEPING.get(type(node))
    if name is None:
        return node
    return exp.Anonymous(this=name, expressions=[node.this.copy(), node.expression.copy()])


def portability_problems(sql: str, schema: Schema) -> list[str]:
    """Constructs in ``sql`` that the two engines would not run the same way."""
    expression = parse(sql)
    typed = _typed(expression, schema)
    if typed is None:
        return ["cannot resolve the column types (unknown table or column?)"]
    problems = []
    for function in typed.find_all(exp.Func):
        name = (function.sql_name() or "").lower()
        anonymous = function.name.lower() if isinstance(function, exp.Anonymous) else ""
        if name in UNPORTABLE_FUNCTIONS or anonymous in UNPORTABLE_FUNCTIONS:
            problems.append(f"{anonymous or name}() does not translate between Trino and DuckDB")
    for division in typed.find_all(exp.Div):
        if _unknown(division.left) or _unknown(division.right):
            problems.append(
                f"'{division.sql(dialect=SOURCE_DIALECT)}': operand types unknown, so integer "
                "division may differ; CAST an operand to DOUBLE or to an integer type"
            )
    for difference in typed.find_all(exp.DateDiff):
        operands = [difference.this, difference.expression]
        if not all(o.type and o.type.is_type(exp.DataType.Type.DATE) for o in operands):
            problems.append(
                f"'{difference.sql(dialect=SOURCE_DIALECT)}': date_diff counts boundaries on "
                "DuckDB and whole units on Trino unless both operands are DATEs"
            )
    return problems


def _unknown(expression: exp.Expression) -> bool:
    return expression.type is None or expression.type.is_type(exp.DataType.Type.UNKNOWN)
