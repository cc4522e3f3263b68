"""The Glue Data Catalog: one external Parquet table per lake table, for Athena.

Each table reads ``<lake>/tables/<table>/dt=YYYY-MM-DD/*.parquet``. ``dt`` is a partition
key of type string, found by partition projection: every day from 2000-01-01 to today is a
partition, so a load is queryable at once, without a crawler, ``MSCK REPAIR`` or
``ALTER TABLE ADD PARTITION``. Days without files are simply empty.

boto3 is imported where it is used: it is the optional ``aws`` extra, and the pure functions
here (``glue_type``, ``table_input``) work without it.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from etl_lib import schemas
from etl_lib.config import Settings
from etl_lib.errors import ConfigError, EtlError

PARQUET_INPUT_FORMAT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
PARQUET_OUTPUT_FORMAT = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
PARQUET_SERDE = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
# The earliest day partition projection enumerates; no chart in the lake is older.
PROJECTION_START = "2000-01-01"

_GLUE_TYPES = {
    pa.string(): "string",
    pa.int32(): "int",
    pa.int64(): "bigint",
    pa.bool_(): "boolean",
    pa.date32(): "date",
    schemas.UTC_TIMESTAMP: "timestamp",
}

# Small, so an unreachable endpoint fails in seconds rather than after minutes of retries;
# one retry still absorbs a dropped connection or a throttled call.
CONNECT_TIMEOUT_SECONDS = 2
READ_TIMEOUT_SECONDS = 30
TOTAL_ATTEMPTS = 2

_ACCESS_DENIED_CODES = {"AccessDenied", "AccessDeniedException"}
_BAD_CREDENTIAL_CODES = {
    "UnrecognizedClientException",
    "InvalidClientTokenId",
    "InvalidSignatureException",
    "ExpiredToken",
    "ExpiredTokenException",
}


def glue_type(arrow_type: pa.DataType) -> str:
    """The Glue (Hive) column type of one of the lake's Arrow types."""
    try:
        return _GLUE_TYPES[arrow_type]
    except KeyError:
        raise ValueError(f"no Glue type for Arrow type {arrow_type}") from None


def table_location(lake_root: str, table: str) -> str:
    return f"{lake_root.rstrip('/')}/tables/{table}/"


def table_input(table: str, schema: pa.Schema, location: str) -> dict[str, Any]:
    """The Glue ``TableInput`` of one lake table; ``location`` is the lake root (s3://...)."""
    table_root = table_location(location, table)
    return {
        "Name": table,
        "TableType": "EXTERNAL_TABLE",
        "PartitionKeys": [{"Name": schemas.PARTITION_COLUMN, "Type": "string"}],
        "StorageDescriptor": {
            "Columns": [{"Name": field.name, "Type": glue_type(field.type)} for field in schema],
            "Location": table_root,
            "InputFormat": PARQUET_INPUT_FORMAT,
            "OutputFormat": PARQUET_OUTPUT_FORMAT,
            "SerdeInfo": {
                "SerializationLibrary": PARQUET_SERDE,
                "Parameters": {"serialization.format": "1"},
            },
        },
        "Parameters": {
            "EXTERNAL": "TRUE",
            "classification": "parquet",
            "parquet.compression": "SNAPPY",
            "projection.enabled": "true",
            "projection.dt.type": "date",
            "projection.dt.format": "yyyy-MM-dd",
            "projection.dt.range": f"{PROJECTION_START},NOW",
            "projection.dt.interval": "1",
            "projection.dt.interval.unit": "DAYS",
            # ${dt} is filled in by Athena, not by Python.
            "storage.location.template": table_root + "dt=${dt}",
        },
    }


def ensure_catalog(settings: Settings) -> list[str]:
    """Create the Glue database if missing and create or update every table; returns names."""
    if not settings.lake.startswith("s3://"):
        raise ConfigError(
            f"the Glue catalog describes an s3:// lake; lake {settings.lake!r} is not one: "
            "set SPOTIFY_ETL_LAKE (or --lake) to s3://bucket/prefix"
        )
    require_boto3()
    from botocore.exceptions import BotoCoreError, ClientError

    database = settings.glue_database
    resource = f"Glue database {database!r}"
    try:
        glue = aws_client("glue", settings)
        try:
            glue.create_database(DatabaseInput={"Name": database})
        except glue.exceptions.AlreadyExistsException:
            pass
        names = []
        for table, schema in schemas.TABLES.items():
            resource = f"Glue table {database}.{table}"
            definition = table_input(table, schema, settings.lake)
            try:
                glue.create_table(DatabaseName=database, TableInput=definition)
            except glue.exceptions.AlreadyExistsException:
                glue.update_table(DatabaseName=database, TableInput=definition)
            names.append(table)
    except (BotoCoreError, ClientError) as exc:
        error = aws_error(exc, service="AWS Glue", resource=resource)
        if error is None:
            raise
        raise error from exc
    return names


def client_config(**overrides):
    """botocore settings of every AWS client here: short timeouts, one retry."""
    from botocore.config import Config

    values = {
        "connect_timeout": CONNECT_TIMEOUT_SECONDS,
        "read_timeout": READ_TIMEOUT_SECONDS,
        "retries": {"mode": "standard", "total_max_attempts": TOTAL_ATTEMPTS},
    }
    values.update(overrides)
    return Config(**values)


def require_boto3() -> None:
    try:
        import boto3  # noqa: F401
    except ImportError as exc:
        raise ConfigError(
            "Glue and Athena need boto3 and pyathena: pip install 'spotify-charts-lake[aws]'"
        ) from exc


def aws_session(settings: Settings):
    """A boto3 session for the settings' profile and region (unset: boto3's own defaults)."""
    require_boto3()
    import boto3

    return boto3.Session(profile_name=settings.aws_profile, region_name=settings.aws_region)


def aws_client(service: str, settings: Settings):
    # No endpoint_url: boto3 honours AWS_ENDPOINT_URL (and AWS_ENDPOINT_URL_<SERVICE>) itself.
    return aws_session(settings).client(service, config=client_config())


def aws_error(exc: BaseException, *, service: str, resource: str) -> EtlError | None:
    """A one-line ``EtlError`` for a botocore error a user can fix, else None (a bug).

    ``service`` names the AWS service ("AWS Glue"), ``resource`` what was being touched.
    """
    from botocore import exceptions as boto

    if isinstance(exc, boto.ProfileNotFound):
        return ConfigError(
            f"AWS profile {exc.kwargs.get('profile')!r} not found while using {resource}: "
            "fix AWS_PROFILE or add the profile to ~/.aws/config"
        )
    if isinstance(exc, boto.NoRegionError):
        return ConfigError(f"no AWS region for {service} ({resource}): set AWS_REGION")
    if isinstance(exc, boto.NoCredentialsError | boto.PartialCredentialsError):
        return EtlError(
            f"no AWS credentials for {service} ({resource}): set AWS_PROFILE, or "
            "AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY"
        )
    if isinstance(exc, boto.ConnectionError | boto.HTTPClientError):
        endpoint = exc.kwargs.get("endpoint_url") or "its endpoint"
        return EtlError(
            f"cannot reach {service} at {endpoint} ({resource}): check AWS_ENDPOINT_URL, "
            "AWS_REGION and the network"
        )
    if isinstance(exc, boto.ClientError):
        error = exc.response.get("Error", {})
        code = error.get("Code", "")
        message = _first_line(error.get("Message") or code)
        operation = exc.operation_name
        if code in _ACCESS_DENIED_CODES:
            return EtlError(
                f"AWS denied {operation} on {resource}: grant it to the credentials in use "
                f"(AWS_PROFILE or AWS_ACCESS_KEY_ID): {message}"
            )
        if code in _BAD_CREDENTIAL_CODES:
            return EtlError(
                f"{service} rejected the AWS credentials ({code}) for {resource}: fix "
                f"AWS_PROFILE or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY: {message}"
            )
    return None


def _first_line(text: str) -> str:
    lines = str(text).strip().splitlines()
    return lines[0] if lines else ""
