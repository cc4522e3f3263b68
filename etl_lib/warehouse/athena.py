"""Athena through pyathena: the lake's SQL on AWS.

Athena reads the lake's tables natively: they are Iceberg tables in the Glue Data Catalog,
written by pyiceberg (``etl_lib.transform.iceberg``). The shipped views are created in the same
database (``create_views``).

Parameters are never formatted into the SQL: ``?`` placeholders stay in the query text and
the values travel as Athena ``ExecutionParameters`` (pyathena's ``qmark`` paramstyle). Athena
substitutes each one as a SQL literal, so a string goes as ``'text'``: ``athena_literal``
writes that form.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pandas as pd

from etl_lib.aws import aws_error, client_config
from etl_lib.config import Settings
from etl_lib.errors import ConfigError, EtlError
from etl_lib.warehouse import sql as sql_files

# pyathena logs every failed AWS call with a traceback at ERROR; with no logging configured,
# Python's last-resort handler would print it above the one-line error the CLI shows.
# Records still reach any handler an application configures.
logging.getLogger("pyathena").addHandler(logging.NullHandler())

SERVICE = "Athena"


@dataclass
class AthenaResult:
    frame: pd.DataFrame
    bytes_scanned: int | None
    query_id: str


def athena_literal(value: Any) -> str:
    """One ``ExecutionParameters`` entry: the value as an Athena (Trino) SQL literal."""
    if value is None:
        return "NULL"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float | Decimal):
        if not math.isfinite(value):
            raise ValueError(f"{value!r} has no Athena literal")
        return repr(value) if isinstance(value, float) else format(value, "f")
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: every time in the lake is UTC-aware")
        # The lake's timestamps are UTC and Athena reads them without a zone.
        utc = value.astimezone(UTC).replace(tzinfo=None)
        return f"TIMESTAMP '{utc.isoformat(sep=' ', timespec='milliseconds')}'"
    if isinstance(value, date):
        return f"DATE '{value.isoformat()}'"
    raise TypeError(f"no Athena literal for {type(value).__name__} {value!r}")


def connect(settings: Settings):
    """A pyathena connection to the settings' workgroup, results location and database."""
    staging_dir = settings.athena_results
    if staging_dir is None:
        raise ConfigError(
            f"Athena needs an s3:// location for query results and lake {settings.lake!r} "
            "is not on S3: set SPOTIFY_ETL_ATHENA_OUTPUT or use an s3:// lake"
        )
    try:
        import pyathena
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError as exc:
        raise ConfigError(
            "Athena needs boto3 and pyathena: pip install 'spotify-charts-lake[aws]'"
        ) from exc
    try:
        return pyathena.connect(
            work_group=settings.athena_workgroup,
            s3_staging_dir=staging_dir,
            region_name=settings.aws_region,
            profile_name=settings.aws_profile,
            schema_name=settings.glue_database,
            # No endpoint_url: boto3 honours AWS_ENDPOINT_URL (and AWS_ENDPOINT_URL_ATHENA).
            config=client_config(),
        )
    except (BotoCoreError, ClientError) as exc:
        error = aws_error(exc, service=SERVICE, resource=_workgroup(settings))
        if error is None:
            raise
        raise error from exc


def query(settings: Settings, sql: str, params: Sequence[Any] | None = None) -> AthenaResult:
    """Run one Athena-dialect statement; ``?`` parameters are bound by Athena, not formatted."""
    with connect(settings) as connection:
        return _run(connection, settings, sql, params)


def view_statement(name: str, sql: str) -> str:
    return f"CREATE OR REPLACE VIEW {name} AS {sql.strip().removesuffix(';')}"


def create_views(settings: Settings) -> list[str]:
    """Create or replace every shipped view (``etl_lib/warehouse/sql/views``); returns their
    names."""
    names = []
    with connect(settings) as connection:
        for name, sql in sql_files.shipped("views").items():
            _run(connection, settings, view_statement(name, sql))
            names.append(name)
    return names


def _run(
    connection, settings: Settings, sql: str, params: Sequence[Any] | None = None
) -> AthenaResult:
    from pyathena.error import Error as PyAthenaError

    execution_parameters = [athena_literal(value) for value in params or ()]
    cursor = connection.cursor()
    try:
        # qmark: the SQL is sent as written and the values as ExecutionParameters.
        cursor.execute(sql, execution_parameters or None, paramstyle="qmark")
        columns = [column[0] for column in cursor.description or ()]
        frame = pd.DataFrame(cursor.fetchall(), columns=columns)
    except PyAthenaError as exc:
        error = _query_error(exc, settings, cursor.query_id)
        if error is None:
            raise
        raise error from exc
    return AthenaResult(
        frame=frame, bytes_scanned=cursor.data_scanned_in_bytes, query_id=cursor.query_id
    )


def _query_error(exc: Exception, settings: Settings, query_id: str | None) -> EtlError | None:
    from botocore.exceptions import BotoCoreError, ClientError
    from pyathena.error import OperationalError

    cause = exc.__cause__
    if isinstance(cause, BotoCoreError | ClientError):
        error = aws_error(cause, service=SERVICE, resource=_workgroup(settings))
        if error is not None:
            return error
        if isinstance(cause, ClientError):
            details = cause.response.get("Error", {})
            if details.get("Code") == "InvalidRequestException":
                return EtlError(
                    f"Athena refused the query in {_workgroup(settings)}: "
                    f"{_first_line(details.get('Message', ''))} "
                    "(check SPOTIFY_ETL_ATHENA_WORKGROUP and the SQL)"
                )
        return None
    if isinstance(exc, OperationalError) and cause is None:
        # Raised by pyathena for a query that ended FAILED or CANCELLED: the reason is Athena's.
        reason = _first_line(exc.args[0]) if exc.args and exc.args[0] else "no reason given"
        return EtlError(f"Athena query {query_id} failed: {reason}")
    return None


def _workgroup(settings: Settings) -> str:
    return f"workgroup {settings.athena_workgroup!r}, database {settings.glue_database!r}"


def _first_line(text: str) -> str:
    lines = str(text).strip().splitlines()
    return lines[0] if lines else ""
