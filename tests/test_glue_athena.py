"""Glue catalog and Athena: pure table definitions, then the AWS calls against moto's server.

moto does not run SQL, so the Athena tests check what is sent (query text, execution
parameters, workgroup, results location) and read back results seeded through moto's API.
"""

from __future__ import annotations

import json
import socket
import urllib.request
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import boto3
import pandas as pd
import pyarrow as pa
import pytest
from botocore.exceptions import ClientError, NoCredentialsError, NoRegionError
from conftest import use_fake_aws
from pyathena.error import OperationalError

from etl_lib import athena, glue, schemas
from etl_lib.config import Settings
from etl_lib.errors import ConfigError, EtlError
from etl_lib.sql import shipped as shipped_sql

BUCKET = "charts-lake-test"
LAKE = f"s3://{BUCKET}/lake"
PLAYLIST_ID = "37i9dQZEVXbNG2KDcFcKOF"
MOTO_ACCOUNT_ID = "123456789012"


def _moto_api(endpoint: str, path: str, body: dict | None = None) -> None:
    request = urllib.request.Request(
        endpoint + path,
        data=json.dumps(body or {}).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=5) as response:
        assert response.status < 300


@pytest.fixture
def aws(moto_endpoint) -> Settings:
    """An empty moto account with the lake's bucket; the settings of an s3:// lake."""
    # moto's backends live in this process and outlive one server: start from nothing.
    _moto_api(moto_endpoint, "/moto-api/reset")
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    return Settings(lake=LAKE, aws_region="us-east-1")


def _column_info(name: str, athena_type: str) -> dict:
    # Every field Athena's GetQueryResults returns; pyathena's description reads them all.
    return {
        "CatalogName": "hive",
        "SchemaName": "",
        "TableName": "",
        "Name": name,
        "Label": name,
        "Type": athena_type,
        "Precision": 2147483647 if athena_type == "varchar" else 10,
        "Scale": 0,
        "Nullable": "UNKNOWN",
        "CaseSensitive": athena_type == "varchar",
    }


def _seed_athena_results(endpoint: str, columns: dict[str, str], rows: list[list[str]]) -> None:
    """Queue the result of the next query moto starts; Athena's first row is the header."""
    athena_rows = [{"Data": [{"VarCharValue": value} for value in row]} for row in rows]
    header = {"Data": [{"VarCharValue": name} for name in columns]}
    results = {
        "rows": [header, *athena_rows],
        "column_info": [_column_info(name, kind) for name, kind in columns.items()],
    }
    _moto_api(
        endpoint,
        "/moto-api/static/athena/query-results",
        {"account_id": MOTO_ACCOUNT_ID, "region": "us-east-1", "results": [results]},
    )


def _execution(query_id: str) -> dict:
    return boto3.client("athena").get_query_execution(QueryExecutionId=query_id)["QueryExecution"]


def _closed_port_endpoint() -> str:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


# --- Glue: pure ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arrow_type", "expected"),
    [
        (pa.string(), "string"),
        (pa.int32(), "int"),
        (pa.int64(), "bigint"),
        (pa.bool_(), "boolean"),
        (pa.date32(), "date"),
        (pa.timestamp("ms", tz="UTC"), "timestamp"),
    ],
)
def test_glue_type_maps_the_lake_types(arrow_type, expected):
    assert glue.glue_type(arrow_type) == expected


@pytest.mark.parametrize(
    "arrow_type",
    [pa.float64(), pa.large_string(), pa.timestamp("ms"), pa.timestamp("us", tz="UTC")],
)
def test_glue_type_refuses_other_types(arrow_type):
    with pytest.raises(ValueError, match="no Glue type"):
        glue.glue_type(arrow_type)


@pytest.mark.parametrize("table", list(schemas.TABLES))
def test_table_input_columns_follow_the_arrow_schema(table):
    schema = schemas.TABLES[table]
    definition = glue.table_input(table, schema, LAKE)

    columns = definition["StorageDescriptor"]["Columns"]
    assert [column["Name"] for column in columns] == schema.names
    assert [column["Type"] for column in columns] == [glue.glue_type(f.type) for f in schema]
    assert "dt" not in schema.names
    assert definition["PartitionKeys"] == [{"Name": "dt", "Type": "string"}]
    assert definition["Name"] == table
    assert definition["TableType"] == "EXTERNAL_TABLE"


def test_table_input_spells_out_the_types_of_one_table():
    columns = glue.table_input("albums", schemas.ALBUMS, LAKE)["StorageDescriptor"]["Columns"]
    assert [(column["Name"], column["Type"]) for column in columns] == [
        ("album_id", "string"),
        ("name", "string"),
        ("album_type", "string"),
        ("release_date", "date"),
        ("release_date_precision", "string"),
        ("total_tracks", "int"),
        ("spotify_url", "string"),
        ("extracted_at", "timestamp"),
    ]


def test_table_input_is_parquet_with_partition_projection():
    definition = glue.table_input("chart_entries", schemas.CHART_ENTRIES, LAKE + "/")

    storage = definition["StorageDescriptor"]
    assert storage["Location"] == f"s3://{BUCKET}/lake/tables/chart_entries/"
    assert storage["InputFormat"] == (
        "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
    )
    assert storage["OutputFormat"] == (
        "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"
    )
    assert storage["SerdeInfo"]["SerializationLibrary"] == (
        "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    )
    assert definition["Parameters"] == {
        "EXTERNAL": "TRUE",
        "classification": "parquet",
        "parquet.compression": "SNAPPY",
        "projection.enabled": "true",
        "projection.dt.type": "date",
        "projection.dt.format": "yyyy-MM-dd",
        "projection.dt.range": "2000-01-01,NOW",
        "projection.dt.interval": "1",
        "projection.dt.interval.unit": "DAYS",
        "storage.location.template": f"s3://{BUCKET}/lake/tables/chart_entries/dt=${{dt}}",
    }


def test_ensure_catalog_needs_an_s3_lake(tmp_path):
    with pytest.raises(ConfigError, match="SPOTIFY_ETL_LAKE") as caught:
        glue.ensure_catalog(Settings(lake=str(tmp_path / "lake"), aws_region="us-east-1"))
    assert "\n" not in str(caught.value)


# --- Glue: against moto -------------------------------------------------------------------


def test_ensure_catalog_creates_then_updates_every_table(aws):
    assert glue.ensure_catalog(aws) == list(schemas.TABLES)
    # Idempotent: the second run updates the existing tables instead of failing.
    assert glue.ensure_catalog(aws) == list(schemas.TABLES)

    client = boto3.client("glue")
    assert client.get_database(Name=aws.glue_database)["Database"]["Name"] == "spotify_charts"
    stored = {t["Name"]: t for t in client.get_tables(DatabaseName=aws.glue_database)["TableList"]}
    assert sorted(stored) == sorted(schemas.TABLES)
    for table, schema in schemas.TABLES.items():
        expected = glue.table_input(table, schema, LAKE)
        assert (
            stored[table]["StorageDescriptor"]["Columns"]
            == (expected["StorageDescriptor"]["Columns"])
        )
        assert stored[table]["StorageDescriptor"]["Location"] == (
            f"s3://{BUCKET}/lake/tables/{table}/"
        )
        assert stored[table]["PartitionKeys"] == [{"Name": "dt", "Type": "string"}]
        assert stored[table]["Parameters"] == expected["Parameters"]
        assert stored[table]["TableType"] == "EXTERNAL_TABLE"
        versions = client.get_table_versions(DatabaseName=aws.glue_database, TableName=table)
        assert len(versions["TableVersions"]) == 2


def test_ensure_catalog_uses_the_configured_database(aws):
    settings = Settings(lake=LAKE, aws_region="us-east-1", glue_database="charts_dev")
    glue.ensure_catalog(settings)
    tables = boto3.client("glue").get_tables(DatabaseName="charts_dev")["TableList"]
    assert len(tables) == len(schemas.TABLES)


# --- Athena: pure -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "literal"),
    [
        ("37i9dQZEVXbNG2KDcFcKOF", "'37i9dQZEVXbNG2KDcFcKOF'"),
        ("O'Brien", "'O''Brien'"),
        ("x'; DROP TABLE tracks; --", "'x''; DROP TABLE tracks; --'"),
        (10, "10"),
        (True, "true"),
        (None, "NULL"),
        (1.5, "1.5"),
        (Decimal("2.50"), "2.50"),
        (date(2026, 10, 1), "DATE '2026-10-01'"),
        (
            datetime(2026, 10, 1, 14, 0, tzinfo=timezone(timedelta(hours=2))),
            "TIMESTAMP '2026-10-01 12:00:00.000'",
        ),
    ],
)
def test_athena_literal(value, literal):
    assert athena.athena_literal(value) == literal


# The naive datetime is the point: it would be read as local time, not UTC.
NAIVE_MOMENT = datetime(2026, 10, 1)  # noqa: DTZ001


@pytest.mark.parametrize("value", [NAIVE_MOMENT, float("nan"), object()])
def test_athena_literal_refuses_what_has_no_safe_literal(value):
    with pytest.raises((ValueError, TypeError)):
        athena.athena_literal(value)


def test_query_needs_a_results_location(tmp_path):
    with pytest.raises(ConfigError, match="SPOTIFY_ETL_ATHENA_OUTPUT"):
        athena.query(Settings(lake=str(tmp_path / "lake")), "SELECT 1")


# --- Athena: against moto -----------------------------------------------------------------


def test_query_binds_parameters_and_reads_results(aws, moto_endpoint):
    _seed_athena_results(
        moto_endpoint,
        {"playlist_id": "varchar", "chart_rank": "bigint", "track": "varchar"},
        [[PLAYLIST_ID, "1", "Golden"], [PLAYLIST_ID, "2", "Ordinary"]],
    )
    sql = (
        "SELECT playlist_id, chart_rank, track FROM daily_chart "
        "WHERE playlist_id = ? AND chart_rank <= ?"
    )

    result = athena.query(aws, sql, [PLAYLIST_ID, 10])

    execution = _execution(result.query_id)
    assert execution["Query"] == sql
    assert PLAYLIST_ID not in execution["Query"]
    assert execution["ExecutionParameters"] == [f"'{PLAYLIST_ID}'", "10"]
    assert execution["WorkGroup"] == "primary"
    assert execution["QueryExecutionContext"]["Database"] == "spotify_charts"
    # Athena (and moto) append <query id>.csv to the requested location.
    assert execution["ResultConfiguration"]["OutputLocation"] == (
        f"s3://{BUCKET}/lake/athena-results/{result.query_id}.csv"
    )
    expected = pd.DataFrame(
        {
            "playlist_id": [PLAYLIST_ID, PLAYLIST_ID],
            "chart_rank": [1, 2],
            "track": ["Golden", "Ordinary"],
        }
    )
    pd.testing.assert_frame_equal(result.frame, expected)
    # moto reports DataScannedInBytes = 0 for every query.
    assert result.bytes_scanned == 0


def test_query_without_parameters_sends_none(aws):
    result = athena.query(aws, "SELECT 1 AS one")

    execution = _execution(result.query_id)
    assert execution["Query"] == "SELECT 1 AS one"
    assert "ExecutionParameters" not in execution
    # Nothing seeded: moto answers with no rows and no columns.
    assert result.frame.empty


def test_query_runs_in_the_configured_workgroup_and_results_location(aws):
    boto3.client("athena").create_work_group(Name="charts", Configuration={})
    settings = Settings(
        lake=LAKE,
        aws_region="us-east-1",
        athena_workgroup="charts",
        athena_output_location=f"s3://{BUCKET}/elsewhere/",
    )

    result = athena.query(settings, "SELECT 1")

    execution = _execution(result.query_id)
    assert execution["WorkGroup"] == "charts"
    assert execution["ResultConfiguration"]["OutputLocation"].startswith(
        f"s3://{BUCKET}/elsewhere/"
    )


def test_query_in_a_missing_workgroup_names_the_setting(aws):
    settings = Settings(lake=LAKE, aws_region="us-east-1", athena_workgroup="nope")
    with pytest.raises(EtlError, match="SPOTIFY_ETL_ATHENA_WORKGROUP") as caught:
        athena.query(settings, "SELECT 1")
    assert "'nope'" in str(caught.value)
    assert "\n" not in str(caught.value)


def test_create_views_sends_create_or_replace_for_every_shipped_view(aws):
    client = boto3.client("athena")
    before = set(client.list_query_executions()["QueryExecutionIds"])

    names = athena.create_views(aws)

    views = shipped_sql("views")
    assert names == list(views)
    new_ids = set(client.list_query_executions()["QueryExecutionIds"]) - before
    sent = sorted(_execution(query_id)["Query"] for query_id in new_ids)
    assert sent == sorted(athena.view_statement(name, sql) for name, sql in views.items())
    for name, sql in views.items():
        statement = athena.view_statement(name, sql)
        assert statement.startswith(f"CREATE OR REPLACE VIEW {name} AS ")
        assert statement.endswith(sql.strip())


# --- Errors -------------------------------------------------------------------------------


@pytest.fixture
def unreachable_aws(monkeypatch) -> str:
    """Credentials and a region, but AWS_ENDPOINT_URL points at a closed local port."""
    endpoint = _closed_port_endpoint()
    use_fake_aws(monkeypatch, endpoint)
    return endpoint


def test_ensure_catalog_with_unreachable_endpoint_is_one_line(unreachable_aws):
    with pytest.raises(EtlError) as caught:
        glue.ensure_catalog(Settings(lake=LAKE, aws_region="us-east-1"))
    message = str(caught.value)
    assert unreachable_aws in message
    assert "AWS_ENDPOINT_URL" in message
    assert "\n" not in message


def test_query_with_unreachable_endpoint_is_one_line(unreachable_aws):
    with pytest.raises(EtlError) as caught:
        athena.query(Settings(lake=LAKE, aws_region="us-east-1"), "SELECT ?", ["x"])
    message = str(caught.value)
    assert unreachable_aws in message
    assert "Athena" in message
    assert "\n" not in message


@pytest.fixture
def bare_aws(monkeypatch, unreachable_aws, tmp_path) -> None:
    """No region, profile or credentials anywhere boto3 looks (and no network to find any)."""
    for name in (
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_PROFILE",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_ROLE_ARN",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


def test_missing_region_names_aws_region(bare_aws):
    with pytest.raises(ConfigError, match="AWS_REGION"):
        glue.ensure_catalog(Settings(lake=LAKE))
    with pytest.raises(ConfigError, match="AWS_REGION"):
        athena.query(Settings(lake=LAKE), "SELECT 1")


def test_missing_credentials_name_the_settings(bare_aws):
    with pytest.raises(EtlError, match="no AWS credentials.*AWS_ACCESS_KEY_ID") as caught:
        glue.ensure_catalog(Settings(lake=LAKE, aws_region="us-east-1"))
    assert "spotify_charts" in str(caught.value)
    with pytest.raises(EtlError, match="no AWS credentials.*AWS_ACCESS_KEY_ID"):
        athena.query(Settings(lake=LAKE, aws_region="us-east-1"), "SELECT 1")


def test_missing_profile_names_aws_profile(bare_aws):
    settings = Settings(lake=LAKE, aws_region="us-east-1", aws_profile="ghost")
    with pytest.raises(ConfigError, match="'ghost'.*AWS_PROFILE"):
        glue.ensure_catalog(settings)
    with pytest.raises(ConfigError, match="'ghost'.*AWS_PROFILE"):
        athena.query(settings, "SELECT 1")


def test_aws_error_maps_denied_and_missing_credentials():
    denied = ClientError(
        {"Error": {"Code": "AccessDeniedException", "Message": "not allowed\nsecond line"}},
        "CreateTable",
    )
    error = glue.aws_error(denied, service="AWS Glue", resource="Glue table db.tracks")
    assert isinstance(error, EtlError)
    assert "CreateTable" in str(error) and "db.tracks" in str(error)
    assert "\n" not in str(error)

    error = glue.aws_error(NoCredentialsError(), service="AWS Glue", resource="x")
    assert "AWS_PROFILE" in str(error)
    error = glue.aws_error(NoRegionError(), service="Athena", resource="x")
    assert isinstance(error, ConfigError) and "AWS_REGION" in str(error)

    bug = ClientError({"Error": {"Code": "ValidationException", "Message": "bad"}}, "CreateTable")
    assert glue.aws_error(bug, service="AWS Glue", resource="x") is None


def test_failed_query_carries_athenas_reason():
    # moto never fails a query: this is what pyathena raises for a FAILED execution.
    failed = OperationalError("COLUMN_NOT_FOUND: line 1:8: Column 'nope' cannot be resolved")
    error = athena._query_error(failed, Settings(lake=LAKE), "query-1")
    assert str(error) == (
        "Athena query query-1 failed: COLUMN_NOT_FOUND: line 1:8: Column 'nope' cannot be resolved"
    )


def test_utc_literal_matches_lake_timestamps():
    moment = datetime(2026, 10, 1, 12, 0, 0, 123000, tzinfo=UTC)
    assert athena.athena_literal(moment) == "TIMESTAMP '2026-10-01 12:00:00.123'"
