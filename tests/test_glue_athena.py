"""The lake's Iceberg tables in the Glue Data Catalog, and Athena, against moto's server.

An ``s3://`` lake's tables are written by pyiceberg's Glue catalog into moto's Glue and S3 on
127.0.0.1 (not AWS), then read back with DuckDB. moto leaves out Glue's optimistic lock
(``UpdateTable`` with a ``VersionId`` that is no longer current must fail), so the tests of
concurrent writers add it (``GlueCommitLock``). moto does not run SQL, so the Athena tests
check what is sent (query text, execution parameters, workgroup, results location) and read
back results seeded through moto's API.
"""

from __future__ import annotations

import dataclasses
import json
import subprocess
import sys
import threading
import urllib.request
from collections import Counter
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal

import boto3
import pandas as pd
import pytest
from botocore.exceptions import ClientError, NoCredentialsError, NoRegionError, ProfileNotFound
from conftest import LoopbackServer, QuietHandler, closed_port_endpoint
from pyathena.error import OperationalError

from etl_lib import aws as aws_helpers
from etl_lib import cli, pipeline
from etl_lib.config import Settings
from etl_lib.errors import ConfigError, EtlError
from etl_lib.extract import spotify
from etl_lib.lake import layout, storage
from etl_lib.transform import iceberg, schemas
from etl_lib.warehouse import athena, execute
from etl_lib.warehouse.sql import shipped as shipped_sql

pytestmark = pytest.mark.aws

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
    # Catalogs opened by an earlier test hold Glue clients bound to that test's server.
    iceberg.forget(LAKE)
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


# --- Glue: the lake's Iceberg tables ---------------------------------------------------

SNAPSHOTS = 3
WAREHOUSE = f"s3://{BUCKET}/lake/warehouse"


def land(settings: Settings, spotify_server, count: int = SNAPSHOTS) -> list[str]:
    """``count`` raw snapshots, 12 hours apart, landed in the S3 lake; none transformed."""
    on_s3 = dataclasses.replace(settings, lake=LAKE)
    reader = spotify.make_reader(on_s3)
    start = datetime(2026, 10, 1, 6, tzinfo=UTC)
    for number in range(count):
        moment = start + timedelta(hours=12 * number)
        spotify_server.set_time(moment)
        pipeline.extract(on_s3, reader=reader, clock=lambda m=moment: m, force=True)
    raw = sorted(storage.list_keys(LAKE, f"{layout.RAW}/", ".json"))
    assert len(raw) == count
    return raw


@pytest.fixture
def landed(aws, settings, spotify_server) -> list[str]:
    return land(settings, spotify_server)


def table_counts() -> dict[str, int]:
    """Rows per table, read by DuckDB through the Glue catalog's current snapshots."""
    statement = " UNION ALL ".join(
        f"SELECT '{name}' AS name, count(*) AS n FROM {name}" for name in schemas.TABLES
    )
    frame = execute.query(LAKE, statement)
    return dict(zip(frame["name"], frame["n"].astype(int), strict=True))


def glue_tables(database: str = "spotify_charts") -> dict[str, dict]:
    pages = boto3.client("glue").get_paginator("get_tables").paginate(DatabaseName=database)
    return {table["Name"]: table for page in pages for table in page["TableList"]}


def test_transform_writes_iceberg_tables_to_glue_that_duckdb_reads(landed):
    summary = pipeline.transform(LAKE, landed)
    assert summary.transformed == landed and summary.quarantined == {}

    # pyiceberg created the database: nothing else here did.
    assert boto3.client("glue").get_database(Name="spotify_charts")["Database"]["Name"]
    tables = glue_tables()
    assert sorted(tables) == sorted(schemas.TABLES)
    s3 = boto3.client("s3")
    for name, table in tables.items():
        parameters = table["Parameters"]
        assert parameters["table_type"] == "ICEBERG", name
        location = f"{WAREHOUSE}/spotify_charts.db/{name}"
        assert table["StorageDescriptor"]["Location"] == location
        metadata = parameters["metadata_location"]
        assert metadata.startswith(f"{location}/metadata/") and metadata.endswith(".json")
        # The metadata file Glue points at is in the lake's bucket.
        s3.head_object(Bucket=BUCKET, Key=metadata.removeprefix(f"s3://{BUCKET}/"))
        columns = [column["Name"] for column in table["StorageDescriptor"]["Columns"]]
        assert columns == [*schemas.TABLES[name].names, schemas.PARTITION_COLUMN]
    # No table definitions of our own anywhere else: the old Parquet layout is gone.
    assert list(storage.list_keys(LAKE, "tables/", "")) == []

    assert table_counts() == summary.rows
    assert summary.rows["chart_entries"] == SNAPSHOTS * 50
    entries = execute.query(
        LAKE,
        "SELECT count(*) AS n, count(DISTINCT (playlist_id, extracted_at, position)) AS d, "
        "count(DISTINCT dt) AS days FROM chart_entries",
    ).iloc[0]
    assert (entries["n"], entries["d"], entries["days"]) == (SNAPSHOTS * 50, SNAPSHOTS * 50, 2)


def test_tables_go_to_the_configured_glue_database(aws, settings, spotify_server, monkeypatch):
    monkeypatch.setenv("SPOTIFY_ETL_GLUE_DATABASE", "charts_dev")
    [raw_key] = land(settings, spotify_server, count=1)
    pipeline.transform(LAKE, [raw_key])

    assert sorted(glue_tables("charts_dev")) == sorted(schemas.TABLES)
    names = [d["Name"] for d in boto3.client("glue").get_databases()["DatabaseList"]]
    assert names == ["charts_dev"]
    location = glue_tables("charts_dev")["snapshots"]["StorageDescriptor"]["Location"]
    assert location == f"{WAREHOUSE}/charts_dev.db/snapshots"
    assert pipeline.transformed_raw_keys(LAKE) == {raw_key}


class GlueCommitLock:
    """Glue's optimistic lock, which moto leaves out: ``UpdateTable`` with a ``VersionId``
    that is no longer the table's current version fails with
    ``ConcurrentModificationException``, as on AWS.

    The first ``UpdateTable`` of table ``hold`` waits (at most ``HOLD_SECONDS``) for a second
    one of the same table to arrive, so two writers' commits are in flight at once, both
    made from the same table version: one must lose and be redone."""

    HOLD_SECONDS = 30.0

    def __init__(self, monkeypatch, hold: str) -> None:
        from moto.core.exceptions import JsonRESTError
        from moto.glue.responses import GlueResponse

        self.hold = hold
        self.conflicts: Counter[str] = Counter()
        self.held = 0
        self._lock = threading.Lock()
        self._second = threading.Event()
        original = GlueResponse.update_table

        def update_table(response):
            parameters = response.parameters
            name = parameters["TableInput"]["Name"]
            if name == self.hold:
                with self._lock:
                    self.held += 1
                    first = self.held == 1
                if first:
                    self._second.wait(self.HOLD_SECONDS)
                else:
                    self._second.set()
            with self._lock:
                table = response.glue_backend.get_table(parameters["DatabaseName"], name)
                version = parameters.get("VersionId")
                if version is not None and version != str(table._current_version):
                    self.conflicts[name] += 1
                    raise JsonRESTError(
                        "ConcurrentModificationException",
                        f"table {name} is at version {table._current_version}, not {version}",
                    )
                return original(response)

        monkeypatch.setattr(GlueResponse, "update_table", update_table)


# One transform of the raw keys given on stdin, once told to go: both writers are ready (their
# imports done) before either starts.
WRITER = """
import json, sys
from etl_lib import pipeline
keys = json.loads(sys.stdin.readline())
print("ready", flush=True)
sys.stdin.readline()
summary = pipeline.transform(sys.argv[1], keys)
print(json.dumps({"transformed": summary.transformed, "rows": summary.rows}), flush=True)
"""


@pytest.mark.slow
def test_two_writers_of_the_same_raw_files_leave_every_row_once(landed, monkeypatch):
    lock = GlueCommitLock(monkeypatch, hold="chart_entries")
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, LAKE],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    try:
        for writer in writers:
            writer.stdin.write(json.dumps(landed) + "\n")
            writer.stdin.flush()
        for writer in writers:
            assert writer.stdout.readline().strip() == "ready", writer.stderr.read()
        for writer in writers:
            writer.stdin.write("go\n")
            writer.stdin.flush()
        results = [writer.communicate(timeout=240) for writer in writers]
    finally:
        for writer in writers:
            if writer.poll() is None:
                writer.kill()
                writer.wait()
    for writer, (_, err) in zip(writers, results, strict=True):
        assert writer.returncode == 0, err[-3000:]
    first, second = (json.loads(out.strip().splitlines()[-1]) for out, _ in results)
    assert first == second and first["transformed"] == landed

    # Both commits of chart_entries were made from the same table version: one lost and was
    # redone on top of the other's rows.
    assert lock.held >= 2 and lock.conflicts["chart_entries"] >= 1
    assert table_counts() == first["rows"]
    entries = execute.query(
        LAKE,
        "SELECT count(*) AS n, count(DISTINCT (playlist_id, extracted_at, position)) AS d "
        "FROM chart_entries",
    ).iloc[0]
    assert entries["n"] == entries["d"] == SNAPSHOTS * 50
    assert pipeline.transformed_raw_keys(LAKE) == set(landed)


def test_athena_catalog_command_creates_empty_iceberg_tables_and_the_views(aws, capsys):
    assert cli.main(["catalog", "--engine", "athena", "--lake", LAKE]) == 0
    assert "Glue Data Catalog and Athena" in capsys.readouterr().err
    tables = glue_tables()
    assert sorted(tables) == sorted(schemas.TABLES)
    assert {t["Parameters"]["table_type"] for t in tables.values()} == {"ICEBERG"}
    sent = {
        boto3.client("athena").get_query_execution(QueryExecutionId=query_id)["QueryExecution"][
            "Query"
        ]
        for query_id in boto3.client("athena").list_query_executions()["QueryExecutionIds"]
    }
    assert sent == {athena.view_statement(n, v) for n, v in shipped_sql("views").items()}
    # Empty tables read as empty, with their columns, before any transform.
    assert table_counts() == dict.fromkeys(schemas.TABLES, 0)


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


def test_unreachable_glue_is_named_in_one_line(aws, settings, spotify_server, monkeypatch, capsys):
    land(settings, spotify_server, count=1)
    # S3 answers (moto); only Glue's endpoint is a closed port.
    endpoint = closed_port_endpoint()
    monkeypatch.setenv("AWS_ENDPOINT_URL_GLUE", endpoint)
    assert cli.main(["transform", "--lake", LAKE]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert f"cannot reach AWS Glue at {endpoint}" in err[0] and "AWS_ENDPOINT_URL" in err[0]
    assert "'spotify_charts'" in err[0] and LAKE in err[0]


def test_missing_region_for_glue_names_aws_region(aws, settings, spotify_server, monkeypatch):
    land(settings, spotify_server, count=1)
    # S3 finds its region by itself; Glue has none.
    monkeypatch.delenv("AWS_REGION")
    monkeypatch.delenv("AWS_DEFAULT_REGION")
    with pytest.raises(ConfigError, match="no AWS region for AWS Glue.*set AWS_REGION"):
        pipeline.transform(LAKE)


def test_query_with_unreachable_endpoint_is_one_line(unreachable_aws):
    with pytest.raises(EtlError) as caught:
        athena.query(Settings(lake=LAKE, aws_region="us-east-1"), "SELECT ?", ["x"])
    message = str(caught.value)
    assert unreachable_aws in message
    assert "Athena" in message
    assert "\n" not in message


def test_missing_region_names_aws_region(bare_aws):
    with pytest.raises(ConfigError, match="AWS_REGION"):
        athena.query(Settings(lake=LAKE), "SELECT 1")


def test_missing_credentials_name_the_settings(bare_aws):
    with pytest.raises(EtlError, match="no AWS credentials.*AWS_ACCESS_KEY_ID") as caught:
        athena.query(Settings(lake=LAKE, aws_region="us-east-1"), "SELECT 1")
    assert "spotify_charts" in str(caught.value)


def test_missing_profile_names_aws_profile(bare_aws):
    settings = Settings(lake=LAKE, aws_region="us-east-1", aws_profile="ghost")
    with pytest.raises(ConfigError, match="'ghost'.*AWS_PROFILE"):
        athena.query(settings, "SELECT 1")


def test_aws_error_maps_denied_and_missing_credentials():
    denied = ClientError(
        {"Error": {"Code": "AccessDeniedException", "Message": "not allowed\nsecond line"}},
        "CreateTable",
    )
    error = aws_helpers.aws_error(denied, service="AWS Glue", resource="Glue table db.tracks")
    assert isinstance(error, EtlError)
    assert "CreateTable" in str(error) and "db.tracks" in str(error)
    assert "\n" not in str(error)

    error = aws_helpers.aws_error(NoCredentialsError(), service="AWS Glue", resource="x")
    assert "AWS_PROFILE" in str(error)
    error = aws_helpers.aws_error(NoRegionError(), service="Athena", resource="x")
    assert isinstance(error, ConfigError) and "AWS_REGION" in str(error)
    error = aws_helpers.aws_error(
        ProfileNotFound(profile="ghost"), service="AWS Glue", resource="x"
    )
    assert isinstance(error, ConfigError) and "'ghost'" in str(error)
    assert "AWS_PROFILE" in str(error)

    bug = ClientError({"Error": {"Code": "ValidationException", "Message": "bad"}}, "CreateTable")
    assert aws_helpers.aws_error(bug, service="AWS Glue", resource="x") is None


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


# --- Athena: throttling and missing views, through a proxy in front of moto -----------------


class AthenaProxy(LoopbackServer):
    """An HTTP proxy on 127.0.0.1 in front of moto's server that answers as Athena would
    when it throttles or when a query reads a table that does not exist.

    ``throttle_starts``: how many StartQueryExecution requests to refuse next, each with
    Athena's 400 TooManyRequestsException. ``fail_queries``: query text -> how many of its
    next executions end FAILED with ``failure_reason``. Every other request goes to moto
    unchanged. ``starts`` lists the query text of every StartQueryExecution received."""

    TARGET = "AmazonAthena."

    def __init__(self, upstream: str) -> None:
        self.upstream = upstream
        self.throttle_starts = 0
        self.fail_queries: dict[str, int] = {}
        self.failure_reason = ""
        self.starts: list[str] = []
        self._failing_ids: set[str] = set()
        self._lock = threading.Lock()
        proxy = self

        class Handler(QuietHandler):
            def do_POST(self):  # noqa: N802 - http.server's name
                proxy._handle(self)

            def do_GET(self):  # noqa: N802
                proxy._handle(self)

            def do_PUT(self):  # noqa: N802
                proxy._handle(self)

            def do_HEAD(self):  # noqa: N802
                proxy._handle(self)

        super().__init__(Handler)

    def _handle(self, request) -> None:
        length = int(request.headers.get("Content-Length") or 0)
        body = request.rfile.read(length) if length else b""
        target = request.headers.get("X-Amz-Target", "")
        operation = target.removeprefix(self.TARGET) if target.startswith(self.TARGET) else ""
        if operation == "StartQueryExecution":
            query = json.loads(body)["QueryString"]
            with self._lock:
                self.starts.append(query)
                throttled = self.throttle_starts > 0
                self.throttle_starts -= throttled
            if throttled:
                error = {"__type": "TooManyRequestsException", "Message": "Rate exceeded"}
                self._reply(request, 400, json.dumps(error).encode())
                return
        status, headers, answer = self._forward(request, body)
        if operation == "StartQueryExecution" and status == 200:
            with self._lock:
                remaining = self.fail_queries.get(query, 0)
                if remaining:
                    self.fail_queries[query] = remaining - 1
                    self._failing_ids.add(json.loads(answer)["QueryExecutionId"])
        if operation == "GetQueryExecution" and status == 200:
            execution = json.loads(answer)["QueryExecution"]
            if execution["QueryExecutionId"] in self._failing_ids:
                answer = json.dumps({"QueryExecution": self._failed(execution)}).encode()
        self._reply(request, status, answer, headers)

    def _failed(self, execution: dict) -> dict:
        # What Athena's GetQueryExecution says of a query that failed in analysis: state
        # FAILED, the reason, and an AthenaError of the USER category, not retryable.
        status = execution["Status"]
        status.update(
            State="FAILED",
            StateChangeReason=self.failure_reason,
            AthenaError={
                "ErrorCategory": 2,
                "Retryable": False,
                "ErrorMessage": self.failure_reason,
            },
        )
        execution["Statistics"]["DataScannedInBytes"] = 0
        return execution

    def _forward(self, request, body: bytes) -> tuple[int, dict, bytes]:
        import http.client

        connection = http.client.HTTPConnection(self.upstream.removeprefix("http://"), timeout=30)
        headers = {k: v for k, v in request.headers.items() if k.lower() != "host"}
        try:
            connection.request(request.command, request.path, body=body, headers=headers)
            response = connection.getresponse()
            answer = response.read()
            kept = {
                k: v
                for k, v in response.getheaders()
                if k.lower() not in ("content-length", "transfer-encoding", "connection")
            }
            return response.status, kept, answer
        finally:
            connection.close()

    @staticmethod
    def _reply(request, status: int, body: bytes, headers: dict | None = None) -> None:
        request.send_response(status)
        for name, value in (headers or {"Content-Type": "application/x-amz-json-1.1"}).items():
            request.send_header(name, value)
        request.send_header("Content-Length", str(len(body)))
        request.end_headers()
        if request.command != "HEAD":
            request.wfile.write(body)


@pytest.fixture
def athena_proxy(aws, moto_endpoint, monkeypatch):
    """``AthenaProxy`` in front of moto, where boto3 sends every AWS call; short backoff."""
    proxy = AthenaProxy(moto_endpoint)
    monkeypatch.setenv("AWS_ENDPOINT_URL", proxy.origin)
    # Three attempts of each call, a few milliseconds apart: the bound, not the wait, is tested.
    monkeypatch.setattr(
        athena, "THROTTLE_RETRY", athena.ThrottleRetry(3, base_seconds=0.01, max_delay_seconds=0.02)
    )
    yield proxy
    proxy.close()


def test_worst_case_throttling_wait_is_well_inside_the_report_function_timeout():
    retry = athena.THROTTLE_RETRY
    assert retry.worst_case_seconds() <= 900 / 10
    assert retry.max_requests() == retry.attempts * aws_helpers.TOTAL_ATTEMPTS
    config = retry.pyathena_config()
    assert set(config.exceptions) == {"TooManyRequestsException", "ThrottlingException"}
    assert config.attempt == retry.attempts and config.max_delay == retry.max_delay_seconds


def test_a_throttled_query_is_retried_until_athena_accepts_it(athena_proxy):
    bound = athena.THROTTLE_RETRY.max_requests()
    athena_proxy.throttle_starts = bound - 1

    result = athena.query(aws_settings(), "SELECT 1 AS one")

    assert athena_proxy.starts == ["SELECT 1 AS one"] * bound
    assert _execution(result.query_id)["Query"] == "SELECT 1 AS one"


def test_a_query_throttled_past_the_bound_fails_in_one_line_naming_the_quota(athena_proxy):
    bound = athena.THROTTLE_RETRY.max_requests()
    athena_proxy.throttle_starts = bound + 5

    with pytest.raises(EtlError) as caught:
        athena.query(aws_settings(), "SELECT 1 AS one")

    message = str(caught.value)
    assert "\n" not in message
    assert "TooManyRequestsException" in message and "active-query quota" in message
    assert "'primary'" in message and "Service Quotas" in message
    # Exactly the bound: no attempt after the last one, none left unmade.
    assert len(athena_proxy.starts) == bound
    assert boto3.client("athena").list_query_executions()["QueryExecutionIds"] == []


MISSING_CHART = (
    "TABLE_NOT_FOUND: line 1:15: Table 'awsdatacatalog.spotify_charts.chart' does not exist"
)


def test_a_query_of_a_missing_view_creates_the_views_and_runs_again(athena_proxy):
    statement = "SELECT * FROM chart"
    athena_proxy.fail_queries[statement] = 1
    athena_proxy.failure_reason = MISSING_CHART

    result = athena.query(aws_settings(), statement)

    views = shipped_sql("views")
    creates = [athena.view_statement(name, sql) for name, sql in views.items()]
    assert athena_proxy.starts == [statement, *creates, statement]
    assert _execution(result.query_id)["Status"]["State"] == "SUCCEEDED"


def test_a_query_still_missing_its_view_after_creating_them_is_raised(athena_proxy):
    statement = "SELECT * FROM chart"
    athena_proxy.fail_queries[statement] = 2
    athena_proxy.failure_reason = MISSING_CHART

    with pytest.raises(EtlError, match=r"failed: TABLE_NOT_FOUND.*'awsdatacatalog") as caught:
        athena.query(aws_settings(), statement)

    assert "\n" not in str(caught.value)
    # The views were created once, not again for the second failure.
    assert athena_proxy.starts.count(statement) == 2
    assert len(athena_proxy.starts) == 2 + len(shipped_sql("views"))


def test_a_missing_table_that_is_not_a_shipped_view_creates_nothing(athena_proxy):
    statement = "SELECT * FROM nonesuch"
    athena_proxy.fail_queries[statement] = 1
    athena_proxy.failure_reason = (
        "TABLE_NOT_FOUND: line 1:15: Table 'awsdatacatalog.spotify_charts.nonesuch' does not exist"
    )

    with pytest.raises(EtlError, match="nonesuch' does not exist"):
        athena.query(aws_settings(), statement)

    assert athena_proxy.starts == [statement]


@pytest.mark.parametrize(
    ("reason", "view"),
    [
        (MISSING_CHART, "chart"),
        (
            "SYNTAX_ERROR: line 1:15: Table awsdatacatalog.spotify_charts.daily_chart "
            "does not exist",
            "daily_chart",
        ),
        ("TABLE_NOT_FOUND: line 1:15: Table 'awsdatacatalog.other_db.chart' does not exist", None),
        ("COLUMN_NOT_FOUND: line 1:8: Column 'chart' cannot be resolved", None),
    ],
)
def test_missing_view_is_read_from_athenas_reason(reason, view):
    assert athena._missing_view(reason, Settings(lake=LAKE)) == view


def aws_settings() -> Settings:
    return Settings(lake=LAKE, aws_region="us-east-1")
