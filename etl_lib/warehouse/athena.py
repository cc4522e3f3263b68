"""Athena through pyathena: the lake's SQL on AWS.

Athena reads the lake's tables natively: they are Iceberg tables in the Glue Data Catalog,
written by pyiceberg (``etl_lib.transform.iceberg``). The shipped views are created in the same
database (``create_views``).

Parameters are never formatted into the SQL: ``?`` placeholders stay in the query text and
the values travel as Athena ``ExecutionParameters`` (pyathena's ``qmark`` paramstyle). Athena
substitutes each one as a SQL literal, so a string goes as ``'text'``: ``athena_literal``
writes that form.

Two failures a deployment meets are handled here rather than left to the caller:
- throttling: over the account's active-query quota Athena refuses StartQueryExecution with
  TooManyRequestsException; every Athena call is retried with a bounded exponential backoff
  (``THROTTLE_RETRY``), and a query still refused after it ends in one line that names the
  quota;
- missing views: a query of a shipped view in a database where nobody created the views
  creates them once (``create_views``) and runs again.
"""

from __future__ import annotations

import logging
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

import pandas as pd

from etl_lib.aws import TOTAL_ATTEMPTS, aws_error, client_config
from etl_lib.config import Settings
from etl_lib.errors import ConfigError, EtlError
from etl_lib.warehouse import sql as sql_files

# pyathena logs every failed AWS call with a traceback at ERROR; with no logging configured,
# Python's last-resort handler would print it above the one-line error the CLI shows.
# Records still reach any handler an application configures.
logging.getLogger("pyathena").addHandler(logging.NullHandler())

SERVICE = "Athena"
logger = logging.getLogger(__name__)

# The error codes of a throttled Athena call: TooManyRequestsException is Athena's answer
# over the active-query quota, ThrottlingException over an API rate limit.
THROTTLING_CODES = ("TooManyRequestsException", "ThrottlingException")
# "TABLE_NOT_FOUND: line 1:15: Table 'awsdatacatalog.spotify_charts.chart' does not exist"
# (engine version 3); version 2 wrote the name without quotes.
_MISSING_TABLE = re.compile(r"Table '?(?P<name>[\w.\"]+?)'? does not exist")


@dataclass(frozen=True)
class ThrottleRetry:
    """How each Athena API call is retried while Athena throttles it.

    pyathena waits ``min(base * 2**n, max_delay)`` plus up to ``base`` of random jitter
    before attempt n + 2; each attempt is one botocore call, which itself makes up to
    ``etl_lib.aws.TOTAL_ATTEMPTS`` requests with at most 1 s between them (botocore's
    standard mode retries throttling too, waiting rand(0, 1) s before its first retry).
    """

    attempts: int
    base_seconds: float
    max_delay_seconds: float

    def worst_case_seconds(self) -> float:
        """The longest one call can wait before its last attempt fails."""
        backoff = sum(
            min(self.base_seconds * 2**n, self.max_delay_seconds) + self.base_seconds
            for n in range(self.attempts - 1)
        )
        botocore_waits = self.attempts * (TOTAL_ATTEMPTS - 1) * 1.0
        return backoff + botocore_waits

    def max_requests(self) -> int:
        """The most HTTP requests one throttled call makes."""
        return self.attempts * TOTAL_ATTEMPTS

    def pyathena_config(self):
        from pyathena.util import RetryConfig

        return RetryConfig(
            exceptions=THROTTLING_CODES,
            attempt=self.attempts,
            multiplier=self.base_seconds,
            max_delay=self.max_delay_seconds,
            exponential_base=2,
        )


# Waits of 1, 2, 4, 8, 16 and 20 s (+ jitter and botocore's own retry): at most 64 s per
# call, so a query throttled at its start and again while polling still ends well inside
# the report function's 900 s. Longer would only hide a quota that is too small.
THROTTLE_RETRY = ThrottleRetry(attempts=7, base_seconds=1, max_delay_seconds=20)


class MissingViewError(EtlError):
    """A query failed because a shipped view does not exist in the database."""


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
            retry_config=THROTTLE_RETRY.pyathena_config(),
            # No endpoint_url: boto3 honours AWS_ENDPOINT_URL (and AWS_ENDPOINT_URL_ATHENA).
            config=client_config(),
        )
    except (BotoCoreError, ClientError) as exc:
        error = aws_error(exc, service=SERVICE, resource=_workgroup(settings))
        if error is None:
            raise
        raise error from exc


def query(settings: Settings, sql: str, params: Sequence[Any] | None = None) -> AthenaResult:
    """Run one Athena-dialect statement; ``?`` parameters are bound by Athena, not formatted.

    A statement that fails because a shipped view is missing creates the views and runs once
    more; a second failure is raised."""
    with connect(settings) as connection:
        try:
            return _run(connection, settings, sql, params)
        except MissingViewError as missing:
            logger.warning("%s: creating the shipped views, then running it again", missing)
            _create_views(connection, settings)
            return _run(connection, settings, sql, params)


def view_statement(name: str, sql: str) -> str:
    return f"CREATE OR REPLACE VIEW {name} AS {sql.strip().removesuffix(';')}"


def create_views(settings: Settings) -> list[str]:
    """Create or replace every shipped view (``etl_lib/warehouse/sql/views``); returns their
    names."""
    with connect(settings) as connection:
        return _create_views(connection, settings)


def _create_views(connection, settings: Settings) -> list[str]:
    names = []
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
            code = details.get("Code")
            if code in THROTTLING_CODES:
                return EtlError(
                    f"Athena still throttled {cause.operation_name} in {_workgroup(settings)} "
                    f"after {THROTTLE_RETRY.attempts} attempts over about "
                    f"{THROTTLE_RETRY.worst_case_seconds():.0f} s ({code}): the account is "
                    "at its Athena active-query quota; let running queries finish, run "
                    "fewer reports at once, or raise the quota in Service Quotas"
                )
            if code == "InvalidRequestException":
                missing = _missing_view(details.get("Message", ""), settings)
                if missing is not None:
                    return MissingViewError(
                        f"Athena query {query_id} failed: view {missing} does not exist in "
                        f"{_workgroup(settings)}"
                    )
                return EtlError(
                    f"Athena refused the query in {_workgroup(settings)}: "
                    f"{_first_line(details.get('Message', ''))} "
                    "(check SPOTIFY_ETL_ATHENA_WORKGROUP and the SQL)"
                )
        return None
    if isinstance(exc, OperationalError) and cause is None:
        # Raised by pyathena for a query that ended FAILED or CANCELLED: the reason is Athena's.
        reason = _first_line(exc.args[0]) if exc.args and exc.args[0] else "no reason given"
        error_type = MissingViewError if _missing_view(reason, settings) else EtlError
        return error_type(f"Athena query {query_id} failed: {reason}")
    return None


def _missing_view(reason: str, settings: Settings) -> str | None:
    """The shipped view that Athena's error text says does not exist, if any."""
    found = _MISSING_TABLE.search(reason)
    if found is None:
        return None
    parts = found["name"].replace('"', "").split(".")
    name = parts[-1]
    database = parts[-2] if len(parts) > 1 else settings.glue_database
    if database != settings.glue_database or name not in sql_files.shipped("views"):
        return None
    return name


def _workgroup(settings: Settings) -> str:
    return f"workgroup {settings.athena_workgroup!r}, database {settings.glue_database!r}"


def _first_line(text: str) -> str:
    lines = str(text).strip().splitlines()
    return lines[0] if lines else ""
