"""The Lambda handlers, the image's packages and its Dockerfile.

Handlers run in-process against moto's AWS server on 127.0.0.1 (S3, Glue, SSM Parameter
Store, SQS) and the local Spotify server, not against AWS. moto's server stores objects,
catalogs tables and keeps queues, but runs neither S3 event notifications nor Lambda event
source mappings, so the tests play those parts: they build the SQS batch of S3 notifications
the raw-objects queue would hand the transform, and hand the report function the messages the
transform put on the report-requests queue.
"""

from __future__ import annotations

import ast
import copy
import fnmatch
import importlib
import importlib.util
import json
import re
import shlex
import subprocess
import sys
import tomllib
import types
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import quote_plus

import boto3
import pytest
import requests

from etl_lib.errors import ConfigError
from etl_lib.lake import layout, storage
from etl_lib.transform import iceberg, schemas
from etl_lib.warehouse import execute

pytestmark = pytest.mark.aws

ROOT = Path(__file__).resolve().parents[1]
LAMBDAS = ROOT / "lambdas"
EVENTS = Path(__file__).resolve().parent / "events"
BUCKET = "charts-lake"
LAKE = f"s3://{BUCKET}/lake"
CREDENTIALS_PARAMETER = "/spotify-etl/lambda-test"
GLOBAL = "37i9dQZEVXbNG2KDcFcKOF"
OTHER = "37i9dQZEVXbMDoHDwVN2tF"
MISSING = "0000000000000000000000"
# What the report image needs and the zip functions must never pay for at import, and what
# package.py leaves out of their zips as never imported.
HEAVY_MODULES = (
    "matplotlib",
    "jupyter",
    "papermill",
    "nbformat",
    "nbconvert",
    "nbclient",
    "ipykernel",
    "IPython",
    "duckdb",
    "sqlglot",
    "pyathena",
    "tqdm",
)


def load_handler(function: str) -> types.ModuleType:
    """A fresh import of lambdas/<function>/app.py, as a cold start would load it: each test
    sets its own environment before the module reads it."""
    name = f"lambdas.{function}.app"
    sys.modules.pop(name, None)
    module = importlib.import_module(name)
    # Powertools keeps one handler per service for the process, bound to the stdout of the
    # test that first made it; point it at this test's captured stdout.
    module.logger.registered_handler.stream = sys.stdout  # setStream would flush the old one
    return module


@dataclass
class FakeLambdaContext:
    function_name: str
    memory_limit_in_mb: int = 512
    aws_request_id: str = "0d6d3b4c-5b0b-4a6e-9f0a-1c2d3e4f5a6b"
    invoked_function_arn: str = field(init=False)
    remaining_ms: int = 900_000

    def __post_init__(self):
        self.invoked_function_arn = (
            f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"
        )

    def get_remaining_time_in_millis(self) -> int:
        return self.remaining_ms


def event(name: str) -> dict:
    return json.loads((EVENTS / name).read_text(encoding="utf-8"))


def notification_for(keys: list[str], bucket: str = BUCKET) -> dict:
    """The ObjectCreated notification S3 would send for these object keys."""
    [template] = event("s3_object_created.json")["Records"]
    records = []
    for key in keys:
        record = copy.deepcopy(template)
        record["s3"]["bucket"]["name"] = bucket
        # S3 form-encodes keys in notifications ('=' as %3D, ' ' as '+') but keeps '/'.
        record["s3"]["object"]["key"] = quote_plus(key, safe="/")
        records.append(record)
    return {"Records": records}


def sqs_batch(bodies: list[str], first_id: int = 1) -> dict:
    """The event an SQS event source hands a function: one message per body."""
    [template] = event("sqs_message.json")["Records"]
    messages = []
    for number, body in enumerate(bodies, start=first_id):
        message = copy.deepcopy(template)
        message["messageId"] = f"message-{number}"
        message["body"] = body
        messages.append(message)
    return {"Records": messages}


def raw_objects_batch(keys: list[str], bucket: str = BUCKET) -> dict:
    """What the raw-objects queue hands the transform: S3 sends a notification (one
    message) per object created."""
    return sqs_batch([json.dumps(notification_for([key], bucket)) for key in keys])


def emitted(output: str) -> tuple[dict[str, float], list[dict]]:
    """The EMF metrics and the structured log records in captured stdout."""
    metrics, logs = {}, []
    for line in output.splitlines():
        try:
            document = json.loads(line)
        except ValueError:
            continue
        if not isinstance(document, dict):
            continue
        if "_aws" not in document:
            logs.append(document)
            continue
        for directive in document["_aws"]["CloudWatchMetrics"]:
            assert directive["Namespace"] == "SpotifyChartsLake"
            for metric in directive["Metrics"]:
                value = document[metric["Name"]]
                metrics[metric["Name"]] = sum(value) if isinstance(value, list) else value
    return metrics, logs


def s3_keys(prefix: str) -> list[str]:
    pages = (
        boto3.client("s3").get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix)
    )
    return sorted(item["Key"] for page in pages for item in page.get("Contents", []))


@pytest.fixture
def powertools(monkeypatch):
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "spotify-charts-lake")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "SpotifyChartsLake")


@pytest.fixture
def aws(moto_endpoint, spotify_server, powertools, tmp_path, monkeypatch):
    """A bucket and client credentials in an SSM SecureString on moto, the environment a
    function gets."""
    # moto keeps its state per process, not per server: start from an empty account.
    requests.post(f"{moto_endpoint}/moto-api/reset", timeout=10).raise_for_status()
    # Catalogs opened by an earlier test hold Glue clients bound to that test's server.
    iceberg.forget(LAKE)
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    boto3.client("ssm").put_parameter(
        Name=CREDENTIALS_PARAMETER,
        Value=json.dumps(
            {"client_id": spotify_server.client_id, "client_secret": spotify_server.client_secret}
        ),
        Type="SecureString",
    )
    for name, value in {
        "SPOTIFY_ETL_LAKE": LAKE,
        "SPOTIFY_ETL_PLAYLISTS": f"{GLOBAL},{OTHER}",
        "SPOTIFY_ETL_CREDENTIALS_PARAMETER": CREDENTIALS_PARAMETER,
        "SPOTIFY_API_BASE_URL": spotify_server.base_url,
        "SPOTIFY_TOKEN_URL": spotify_server.token_url,
        "SPOTIFY_ETL_CREDENTIALS_FILE": str(tmp_path / "no-such-credentials.json"),
    }.items():
        monkeypatch.setenv(name, value)
    for name in (
        "SPOTIFY_CLIENT_ID",
        "SPOTIFY_CLIENT_SECRET",
        "SPOTIFY_REFRESH_TOKEN",
        "SPOTIPY_CLIENT_ID",
        "SPOTIPY_CLIENT_SECRET",
        "SPOTIFY_ETL_SOURCE",
    ):
        monkeypatch.delenv(name, raising=False)
    return spotify_server


def run_extract() -> dict:
    return load_handler("extract").handler(event("schedule.json"), FakeLambdaContext("extract"))


def run_transform(batch: dict) -> dict:
    return load_handler("transform").handler(batch, FakeLambdaContext("transform"))


@pytest.fixture
def report_queue(aws, monkeypatch) -> str:
    """The report-requests queue on moto, named to the transform as the stack names it."""
    url = boto3.client("sqs").create_queue(QueueName="report-requests")["QueueUrl"]
    monkeypatch.setenv("SPOTIFY_ETL_REPORT_QUEUE_URL", url)
    return url


def received(queue_url: str) -> list[dict]:
    """Every message waiting on the queue (taken off it)."""
    sqs = boto3.client("sqs")
    messages = []
    while batch := sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10).get("Messages"):
        messages += batch
        for message in batch:
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
    return messages


def report_requests(queue_url: str) -> list[dict]:
    return [json.loads(message["Body"]) for message in received(queue_url)]


def entries_per_playlist() -> dict[str, int]:
    frame = execute.query(
        LAKE, "SELECT playlist_id, count(*) AS n FROM chart_entries GROUP BY playlist_id"
    )
    return dict(zip(frame["playlist_id"], frame["n"].astype(int), strict=True))


def table_rows() -> dict[str, list[tuple]]:
    """Every row of every table, in a fixed order."""
    frames = execute.query_all(
        LAKE, {name: (f"SELECT * FROM {name}", None) for name in schemas.TABLES}
    )
    return {
        name: sorted(
            frame.astype(object).where(frame.notna(), None).itertuples(index=False), key=repr
        )
        for name, frame in frames.items()
    }


def commits_per_table() -> dict[str, int]:
    """Commits since each table was created: one new metadata file each."""
    tables = iceberg.open_tables(LAKE)
    return {name: len(tables.existing(name).metadata.metadata_log) for name in schemas.TABLES}


# --- extract -> S3 -> raw-objects queue -> transform -> report-requests queue, on moto -------


def test_scheduled_extract_then_queued_transform_end_to_end(aws, report_queue, capsys):
    response = run_extract()
    outcomes = response["outcomes"]
    assert [(o["playlist_id"], o["status"], o["error"]) for o in outcomes] == [
        (GLOBAL, "extracted", None),
        (OTHER, "extracted", None),
    ]
    metrics, logs = emitted(capsys.readouterr().out)
    assert metrics["SnapshotsExtracted"] == 2 and metrics["ExtractFailures"] == 0
    assert metrics["SuccessfulExtract"] == 1
    assert {log.get("correlation_id") for log in logs} == {event("schedule.json")["id"]}
    assert all(log["function_name"] == "extract" for log in logs)

    raw_objects = s3_keys("lake/raw/")
    assert raw_objects == sorted(f"lake/{o['raw_key']}" for o in outcomes)
    batch = raw_objects_batch(raw_objects)
    assert all("%3D" in body for body in (m["body"] for m in batch["Records"]))

    first = run_transform(batch)
    assert first["batchItemFailures"] == []
    assert first["transformed"] == sorted(o["raw_key"] for o in outcomes)
    assert first["quarantined"] == {} and first["ignored"] == {}
    json.dumps(first)
    counts = entries_per_playlist()
    assert set(counts) == {GLOBAL, OTHER} and first["rows"]["chart_entries"] == sum(counts.values())
    metrics, logs = emitted(capsys.readouterr().out)
    assert metrics["RawFilesTransformed"] == 2 and metrics["RawFilesQuarantined"] == 0
    assert metrics["ReportRequestsFailed"] == 0
    assert {log["correlation_id"] for log in logs} == {"message-1"}

    # One batch, one commit per table, one report request for both playlists.
    assert commits_per_table() == dict.fromkeys(schemas.TABLES, 1)
    today = layout.now_utc().date().isoformat()
    assert report_requests(report_queue) == [{"reports": {GLOBAL: today, OTHER: today}}]
    assert first["reports_requested"] == {GLOBAL: today, OTHER: today}
    rows = table_rows()
    assert len(rows["chart_entries"]) == first["rows"]["chart_entries"]

    # At-least-once delivery: the same batch again, twice, changes no row.
    for delivery in (2, 3):
        assert run_transform(batch) == first
        assert table_rows() == rows
        assert all(n <= delivery for n in commits_per_table().values())
    assert entries_per_playlist() == counts
    assert s3_keys("lake/raw/") == raw_objects

    # The next hour: same snapshots, nothing downloaded, still a successful extract.
    again = run_extract()
    assert [o["status"] for o in again["outcomes"]] == ["unchanged", "unchanged"]
    metrics, _ = emitted(capsys.readouterr().out)
    assert metrics["SnapshotsUnchanged"] == 2 and metrics["SuccessfulExtract"] == 1
    assert s3_keys("lake/raw/") == raw_objects
    # One heartbeat per run, each holding both playlists' checks.
    heartbeats = s3_keys("lake/heartbeats/")
    assert len(heartbeats) == 2
    for key, run in zip(heartbeats, (outcomes, again["outcomes"]), strict=True):
        body = boto3.client("s3").get_object(Bucket=BUCKET, Key=key)["Body"].read()
        checks = json.loads(body)["checks"]
        assert [(c["playlist_id"], c["status"]) for c in checks] == [
            (o["playlist_id"], o["status"]) for o in run
        ]


def test_one_batch_is_one_commit_and_one_report_request_whatever_its_messages_hold(
    aws, report_queue, capsys
):
    raw_keys = [o["raw_key"] for o in run_extract()["outcomes"]]
    corrupt = f"raw/playlist_id={GLOBAL}/dt=2026-10-02/20261002T000000Z.json"
    boto3.client("s3").put_object(Bucket=BUCKET, Key=f"lake/{corrupt}", Body=b"\x00not json{")
    capsys.readouterr()
    raw_objects = [f"lake/{corrupt}"] + [f"lake/{key}" for key in raw_keys]
    others = ["lake/_state/last_snapshot/x.json", "lake/raw/notes.txt", "elsewhere/raw/a.json"]
    s3_test_event = {"Service": "Amazon S3", "Event": "s3:TestEvent", "Bucket": BUCKET}
    batch = sqs_batch(
        [json.dumps(notification_for([key])) for key in raw_objects + others]
        + [
            json.dumps(notification_for([f"lake/{raw_keys[0]}"], "other-bucket")),
            json.dumps(s3_test_event),
            "<html>not a notification</html>",
            json.dumps({"Records": [{"eventSource": "aws:s3"}]}),
            # S3 may name an object twice: it is transformed once.
            json.dumps(notification_for([f"lake/{raw_keys[1]}"])),
        ]
    )

    response = run_transform(batch)

    assert response["batchItemFailures"] == []
    assert response["transformed"] == raw_keys
    assert list(response["quarantined"]) == [corrupt] and response["quarantined"][corrupt]
    assert response["ignored"] == {
        f"s3://{BUCKET}/lake/_state/last_snapshot/x.json": "not a raw file of this lake",
        f"s3://{BUCKET}/lake/raw/notes.txt": "not a raw file of this lake",
        f"s3://{BUCKET}/elsewhere/raw/a.json": "not a raw file of this lake",
        f"s3://other-bucket/lake/{raw_keys[0]}": "not a raw file of this lake",
        "message message-8": "S3's test event",
        "message message-9": "its body is not JSON",
        "message message-10": "its body is not an S3 event notification",
    }
    assert commits_per_table() == dict.fromkeys(schemas.TABLES, 1)
    reason = storage.read_bytes(LAKE, layout.quarantine_reason_key(corrupt)).decode()
    assert reason.strip() == response["quarantined"][corrupt]
    assert storage.read_bytes(LAKE, layout.quarantine_key(corrupt)) == b"\x00not json{"
    assert set(entries_per_playlist()) == {GLOBAL, OTHER}
    # The quarantined file is neither reported on nor counted as GLOBAL's newest.
    today = layout.now_utc().date().isoformat()
    assert report_requests(report_queue) == [{"reports": {GLOBAL: today, OTHER: today}}]
    metrics, logs = emitted(capsys.readouterr().out)
    assert metrics["RawFilesQuarantined"] == 1 and metrics["RawFilesTransformed"] == 2
    [quarantined_log] = [log for log in logs if log["message"] == "raw file quarantined"]
    assert quarantined_log["raw_key"] == corrupt and quarantined_log["level"] == "ERROR"
    assert quarantined_log["correlation_id"] == "message-1"


def test_a_batch_whose_commit_fails_is_delivered_again_whole(
    aws, report_queue, monkeypatch, capsys
):
    raw_keys = [o["raw_key"] for o in run_extract()["outcomes"]]
    capsys.readouterr()
    batch = raw_objects_batch([f"lake/{key}" for key in raw_keys])

    def storage_down(lake_root, tables):
        raise OSError("S3 is not answering")

    with monkeypatch.context() as patched:
        patched.setattr(iceberg, "replace_snapshots", storage_down)
        response = run_transform(batch)

    assert response["batchItemFailures"] == [
        {"itemIdentifier": "message-1"},
        {"itemIdentifier": "message-2"},
    ]
    assert report_requests(report_queue) == []
    assert s3_keys("lake/quarantine/") == []  # not the files' fault
    metrics, logs = emitted(capsys.readouterr().out)
    assert metrics["TransformBatchFailures"] == 1
    [failure] = [log for log in logs if log["level"] == "ERROR"]
    assert "S3 is not answering" in failure["exception"]
    # SQS delivers the batch again; now it goes through, once.
    again = run_transform(batch)
    assert again["batchItemFailures"] == [] and again["transformed"] == raw_keys
    assert set(entries_per_playlist()) == {GLOBAL, OTHER}
    assert len(report_requests(report_queue)) == 1


def test_a_backfill_asks_for_no_report(aws, report_queue, monkeypatch):
    raw_keys = [o["raw_key"] for o in run_extract()["outcomes"]]
    batch = raw_objects_batch([f"lake/{key}" for key in raw_keys])
    three_days_on = layout.now_utc() + timedelta(days=3)
    monkeypatch.setattr(layout, "now_utc", lambda: three_days_on)

    response = run_transform(batch)

    # Files captured 3 days before "now": history, loaded without a report.
    assert response["transformed"] == raw_keys and response["reports_requested"] == {}
    assert report_requests(report_queue) == []
    # What counts as fresh is a setting.
    monkeypatch.setenv("SPOTIFY_ETL_REPORT_FRESH_HOURS", "96")
    assert run_transform(batch)["reports_requested"].keys() == {GLOBAL, OTHER}
    assert len(report_requests(report_queue)) == 1


def test_a_report_request_that_cannot_be_sent_fails_no_message(aws, monkeypatch, capsys):
    monkeypatch.setenv(
        "SPOTIFY_ETL_REPORT_QUEUE_URL", "https://sqs.us-east-1.amazonaws.com/123456789012/gone"
    )
    raw_keys = [o["raw_key"] for o in run_extract()["outcomes"]]
    capsys.readouterr()

    response = run_transform(raw_objects_batch([f"lake/{key}" for key in raw_keys]))

    # The rows are committed: failing the batch would only commit them again.
    assert response["batchItemFailures"] == [] and response["transformed"] == raw_keys
    assert response["reports_requested"] == {}
    metrics, logs = emitted(capsys.readouterr().out)
    assert metrics["ReportRequestsFailed"] == 1
    [failure] = [log for log in logs if log["message"] == "reports not requested"]
    assert failure["level"] == "ERROR" and set(failure["reports"]) == {GLOBAL, OTHER}


def test_fresh_reports_are_each_playlists_newest_day_when_recent():
    now = datetime(2026, 10, 3, 12, 0, tzinfo=UTC)
    keys = [
        f"raw/playlist_id={GLOBAL}/dt=2026-10-02/20261002T230000Z.json",
        f"raw/playlist_id={GLOBAL}/dt=2026-10-03/20261003T010000Z.json",
        f"raw/playlist_id={GLOBAL}/dt=2026-09-01/20260901T010000Z.json",
        # OTHER's newest file is older than 48 hours: a backfill of its history.
        f"raw/playlist_id={OTHER}/dt=2026-10-01/20261001T115959Z.json",
        f"raw/playlist_id={OTHER}/dt=2026-09-30/20260930T120000Z.json",
        "quarantine/playlist_id=x/dt=2026-10-03/20261003T000000Z.json",
    ]

    def fresh(hours: float) -> dict[str, str]:
        since = now - timedelta(hours=hours)
        return layout.newest_day_by_playlist(keys, captured_since=since)

    assert fresh(48) == {GLOBAL: "2026-10-03"}
    assert fresh(48.0003) == {GLOBAL: "2026-10-03", OTHER: "2026-10-01"}
    assert layout.newest_day_by_playlist(keys) == {GLOBAL: "2026-10-03", OTHER: "2026-10-01"}
    assert layout.newest_day_by_playlist([], captured_since=now) == {}


def test_s3_test_event_alone_transforms_nothing(aws, report_queue):
    # S3 sends an s3:TestEvent, without Records, when a notification is configured.
    batch = sqs_batch([json.dumps({"Service": "Amazon S3", "Event": "s3:TestEvent"})])
    response = run_transform(batch)
    assert response["batchItemFailures"] == [] and response["transformed"] == []
    assert s3_keys("lake/warehouse/") == [] and report_requests(report_queue) == []


def test_partial_failure_is_reported_not_raised(aws, monkeypatch, capsys):
    monkeypatch.setenv("SPOTIFY_ETL_PLAYLISTS", f"{GLOBAL},{MISSING}")
    outcomes = run_extract()["outcomes"]
    assert [o["status"] for o in outcomes] == ["extracted", "failed"]
    assert MISSING in outcomes[1]["error"] and outcomes[1]["raw_key"] is None
    metrics, logs = emitted(capsys.readouterr().out)
    assert metrics["SnapshotsExtracted"] == 1 and metrics["ExtractFailures"] == 1
    assert "SuccessfulExtract" not in metrics
    assert any(log["level"] == "WARNING" for log in logs)


def test_every_playlist_failing_raises_after_publishing_metrics(aws, monkeypatch, capsys):
    monkeypatch.setenv("SPOTIFY_ETL_PLAYLISTS", MISSING)
    extract = load_handler("extract")
    with pytest.raises(extract.ExtractFailed, match=MISSING):
        extract.handler(event("schedule.json"), FakeLambdaContext("extract"))
    metrics, _ = emitted(capsys.readouterr().out)
    assert metrics["ExtractFailures"] == 1 and "SuccessfulExtract" not in metrics


# --- report ----------------------------------------------------------------------------------


def test_reports_to_refresh_are_each_playlists_newest_transformed_day():
    # The reports the CLI's `run` refreshes after a transform.
    keys = [
        f"raw/playlist_id={OTHER}/dt=2026-09-30/20260930T120000Z.json",
        f"raw/playlist_id={GLOBAL}/dt=2026-10-02/20261002T000500Z.json",
        f"raw/playlist_id={GLOBAL}/dt=2026-10-01/20261001T230000Z.json",
        f"raw/playlist_id={OTHER}/dt=2026-10-01/20261001T010000Z.json",
        "quarantine/playlist_id=x/dt=2026-10-03/20261003T000000Z.json",
        f"raw/playlist_id={GLOBAL}/dt=2026-10-09/notes.txt",
    ]
    assert layout.newest_day_by_playlist(keys) == {OTHER: "2026-10-01", GLOBAL: "2026-10-02"}
    assert list(layout.newest_day_by_playlist(keys)) == [OTHER, GLOBAL]
    assert layout.newest_day_by_playlist(iter(keys[1:3])) == {GLOBAL: "2026-10-02"}
    assert layout.newest_day_by_playlist([]) == {}


def test_report_skipped_when_nothing_was_requested(powertools, monkeypatch):
    # None in sys.modules makes any `import etl_lib.reporting.reports` raise: proves it is not
    # imported.
    monkeypatch.setitem(sys.modules, "etl_lib.reporting.reports", None)
    report = load_handler("report")
    context = FakeLambdaContext("report")
    nothing = {"batchItemFailures": [], "reports": []}
    assert report.handler({"Records": []}, context) == nothing
    assert report.handler(sqs_batch(["not json", json.dumps({"reports": {}})]), context) == nothing


@pytest.fixture
def stub_reports(powertools, monkeypatch):
    """etl_lib.reporting.reports.run_reports recorded instead of run (papermill and Athena are
    not here): one result per playlist, OTHER's failed."""
    calls = []

    def run_reports(lake_root, wanted, *, days=30, engine="duckdb", settings=None, time_is_up=None):
        calls.append(
            {
                "lake_root": lake_root,
                "wanted": dict(wanted),
                "days": days,
                "engine": engine,
                "lake_of_settings": settings.lake,
            }
        )
        if time_is_up is not None and time_is_up():  # as run_reports defers, in short
            return [
                types.SimpleNamespace(
                    playlist_id=playlist_id,
                    deferred=True,
                    status={"parameters": {"as_of": as_of}},
                )
                for playlist_id, as_of in wanted.items()
            ]
        return [
            types.SimpleNamespace(
                playlist_id=playlist_id,
                succeeded=playlist_id != OTHER,
                output_prefix=f"reports/{playlist_id}/{as_of}"
                + ("/failed/x" if playlist_id == OTHER else ""),
                error="NameError: boom" if playlist_id == OTHER else None,
                deferred=False,
                status={"parameters": {"as_of": as_of}},
            )
            for playlist_id, as_of in wanted.items()
        ]

    module = types.ModuleType("etl_lib.reporting.reports")
    module.run_reports = run_reports
    monkeypatch.setitem(sys.modules, "etl_lib.reporting.reports", module)
    monkeypatch.setenv("SPOTIFY_ETL_LAKE", LAKE)
    return calls


def test_a_batch_of_report_requests_is_one_run_of_each_playlists_newest_day(stub_reports, capsys):
    third = "3" * 22
    batch = sqs_batch(
        [
            json.dumps({"reports": {GLOBAL: "2026-10-01", OTHER: "2026-09-30"}}),
            json.dumps({"reports": {GLOBAL: "2026-10-02"}}),
            "{not json",
            json.dumps({"reports": {"../../etc": "2026-10-02"}}),
            json.dumps({"reports": {third: "2026-02-30"}}),
            json.dumps({"playlists": [GLOBAL]}),
            json.dumps({"reports": {OTHER: "2026-09-29", third: "2026-10-02"}}),
        ]
    )

    response = load_handler("report").handler(batch, FakeLambdaContext("report"))

    assert stub_reports == [
        {
            "lake_root": LAKE,
            "wanted": {GLOBAL: "2026-10-02", OTHER: "2026-09-30", third: "2026-10-02"},
            "days": 30,
            "engine": "athena",
            "lake_of_settings": LAKE,
        }
    ]
    assert response["batchItemFailures"] == []
    assert [r["playlist_id"] for r in response["reports"]] == [GLOBAL, OTHER, third]
    assert [(r["output_prefix"], r["succeeded"], r["error"]) for r in response["reports"]] == [
        (f"reports/{GLOBAL}/2026-10-02", True, None),
        (f"reports/{OTHER}/2026-09-30/failed/x", False, "NameError: boom"),
        (f"reports/{third}/2026-10-02", True, None),
    ]
    metrics, logs = emitted(capsys.readouterr().out)
    assert metrics["ReportsPublished"] == 2 and metrics["ReportFailures"] == 1
    assert {log["correlation_id"] for log in logs} == {"message-1"}
    left_out = [log for log in logs if log["message"] == "not a report request: left out"]
    assert [log["message_id"] for log in left_out] == [
        "message-3",
        "message-4",
        "message-5",
        "message-6",
    ]
    assert "is not a Spotify ID" in left_out[1]["reason"]
    assert "2026-02-30" in left_out[2]["reason"] or "day" in left_out[2]["reason"]


def test_report_on_direct_request(stub_reports):
    request = {"playlist_id": GLOBAL, "as_of": "2026-10-01"}
    response = load_handler("report").handler(request, FakeLambdaContext("report"))
    assert [call["wanted"] for call in stub_reports] == [{GLOBAL: "2026-10-01"}]
    assert response["reports"][0]["output_prefix"] == f"reports/{GLOBAL}/2026-10-01"
    # Without a day: the playlist's latest chart (None to run_reports), not today's date,
    # which may have no chart yet.
    load_handler("report").handler({"playlist_id": GLOBAL}, FakeLambdaContext("report"))
    assert stub_reports[-1]["wanted"] == {GLOBAL: None}


# An invocation stopped by its settings publishes no metrics, which Powertools warns about.
@pytest.mark.filterwarnings("ignore:No application metrics:UserWarning")
def test_handlers_read_their_settings_through_config_per_invocation(stub_reports, monkeypatch):
    """No handler reads the environment itself, nor at import: a warm container follows the
    environment of each invocation, and a setting a user got wrong is one line saying what
    to set."""
    for function in ("extract", "transform", "report"):
        source = (LAMBDAS / function / "app.py").read_text(encoding="utf-8")
        assert "os.environ" not in source and "getenv" not in source, function
    report = load_handler("report")
    request = {"playlist_id": GLOBAL, "as_of": "2026-10-01"}
    monkeypatch.setenv("SPOTIFY_ETL_REPORT_ENGINE", "duckdb")
    report.handler(request, FakeLambdaContext("report"))
    monkeypatch.delenv("SPOTIFY_ETL_REPORT_ENGINE")
    report.handler(request, FakeLambdaContext("report"))
    assert [call["engine"] for call in stub_reports] == ["duckdb", "athena"]
    monkeypatch.setenv("SPOTIFY_ETL_LAKE", "/tmp/lake")
    with pytest.raises(ConfigError, match="set SPOTIFY_ETL_LAKE to s3://"):
        report.handler(request, FakeLambdaContext("report"))
    transform = load_handler("transform")
    batch = raw_objects_batch(["lake/raw/x.json"])
    with pytest.raises(ConfigError, match="set SPOTIFY_ETL_LAKE to s3://"):
        transform.handler(batch, FakeLambdaContext("transform"))
    monkeypatch.setenv("SPOTIFY_ETL_LAKE", LAKE)
    for wrong in ("0", "-1", "two days", "inf"):
        monkeypatch.setenv("SPOTIFY_ETL_REPORT_FRESH_HOURS", wrong)
        with pytest.raises(ConfigError, match="SPOTIFY_ETL_REPORT_FRESH_HOURS=") as raised:
            transform.handler(batch, FakeLambdaContext("transform"))
        assert "\n" not in str(raised.value) and "hours" in str(raised.value)


# --- import weight ---------------------------------------------------------------------------

IMPORT_BOTH_HANDLERS = """
import importlib, json, sys, time
started = time.perf_counter()
for function in ("extract", "transform"):
    importlib.import_module(f"lambdas.{function}.app")
seconds = time.perf_counter() - started
heavy = sorted(n for n in sys.modules if n.split(".")[0].startswith(HEAVY))
print(json.dumps({"seconds": seconds, "heavy": heavy}))
"""


def test_extract_and_transform_imports_stay_light(record_property):
    code = f"HEAVY = {HEAVY_MODULES!r}\n" + IMPORT_BOTH_HANDLERS
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    report = json.loads(result.stdout.splitlines()[-1])
    record_property("handler_import_seconds", round(report["seconds"], 3))
    print(f"extract + transform handlers import in {report['seconds']:.2f} s")
    assert report["heavy"] == []


def test_the_report_handler_imports_no_storage_or_report_stack_until_it_runs():
    """Deciding which reports to run reads only the event's keys: loading the handler brings
    neither the lake's storage (fsspec) nor the notebook stack."""
    code = (
        "import importlib, json, sys\n"
        "importlib.import_module('lambdas.report.app')\n"
        "print(json.dumps(sorted(n for n in sys.modules if n.split('.')[0] in "
        "('fsspec', 's3fs', 'pandas', 'papermill', 'matplotlib') or n == 'etl_lib.lake.storage')))"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, check=True
    )
    assert json.loads(result.stdout.splitlines()[-1]) == []


# --- the image's packages ------------------------------------------------------------------

RUN_FROM_IMAGE_SITE = """
import importlib, json, sys
site, function, event = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
sys.path.insert(0, site)  # as in the image: the handlers and packages, and nothing else
app = importlib.import_module(f"lambdas.{function}.app")
import botocore, etl_lib, pyarrow, pyiceberg, s3fs, spotipy
outside = [m.__name__ for m in (app, botocore, etl_lib, pyarrow, pyiceberg, s3fs, spotipy)
           if not m.__file__.startswith(site)]
assert not outside, f"not loaded from the image's packages: {outside}"
context = type("Context", (), {"function_name": "f", "memory_limit_in_mb": 512,
                               "invoked_function_arn": "arn", "aws_request_id": "r"})()
print("RESPONSE " + json.dumps(app.handler(event, context)))
"""


def image_package():
    return importlib.import_module("lambdas.package")


@pytest.fixture(scope="module")
def image_site(tmp_path_factory) -> Path:
    """The image's Python packages, installed into a folder by ``lambdas/package.py`` (pip,
    wheels for Python 3.12 on Amazon Linux 2023, from PyPI or pip's cache)."""
    package = image_package()
    python = package.image_python(None)
    if python is None:
        pytest.skip("no Python 3.12 here to import the image's packages (python3.12 or pyenv)")
    out = tmp_path_factory.mktemp("image")
    result = subprocess.run(
        [sys.executable, str(LAMBDAS / "package.py"), "--out", str(out)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    print(result.stdout)
    assert "handlers import from it" in result.stdout
    assert re.search(r"size: \d+ MB of Python packages", result.stdout)
    return out / "site"


def run_from_image_site(site: Path, function: str, payload: dict) -> dict:
    """Run a handler as the image would: Python 3.12 without site-packages (-S), the image's
    packages alone on the path."""
    result = subprocess.run(
        [
            image_package().image_python(None),
            "-S",
            "-c",
            RUN_FROM_IMAGE_SITE,
            str(site),
            function,
            json.dumps(payload),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    [line] = [line for line in result.stdout.splitlines() if line.startswith("RESPONSE ")]
    return json.loads(line.removeprefix("RESPONSE "))


@pytest.mark.slow
def test_the_image_packages_install_and_the_handlers_run_from_them(image_site, aws, report_queue):
    installed = {path.name for path in image_site.iterdir()}
    # The project as the image installs it: its SQL and report notebooks (package data), the
    # four handlers, and not the demo's local servers (.dockerignore).
    assert (image_site / "etl_lib" / "warehouse" / "sql" / "views").is_dir()
    notebooks = image_site / "etl_lib" / "reporting" / "notebooks"
    assert {p.name for p in notebooks.glob("*.ipynb")} == set(REPORT_NOTEBOOKS)
    assert not (image_site / "etl_lib" / "local_spotify").exists()
    for function in image_package().FUNCTIONS:
        assert (image_site / "lambdas" / function / "app.py").read_bytes() == (
            LAMBDAS / function / "app.py"
        ).read_bytes()
    assert {"pandas", "pyarrow", "duckdb", "papermill", "matplotlib", "pyathena"} <= installed
    # Wheels built for the image's Python, not this one's.
    assert list(image_site.glob("pyarrow/lib.cpython-312-*.so"))
    assert not list(image_site.glob("pyarrow/lib.cpython-311-*.so"))

    extracted = run_from_image_site(image_site, "extract", {"id": "e"})
    assert [o["status"] for o in extracted["outcomes"]] == ["extracted", "extracted"]
    batch = raw_objects_batch(s3_keys("lake/raw/"))
    transformed = run_from_image_site(image_site, "transform", batch)
    assert transformed["batchItemFailures"] == []
    assert transformed["transformed"] == sorted(o["raw_key"] for o in extracted["outcomes"])
    assert set(entries_per_playlist()) == {GLOBAL, OTHER}
    [request] = report_requests(report_queue)
    assert set(request["reports"]) == {GLOBAL, OTHER}


def test_image_platform_names_every_glibc_the_image_loads():
    package = image_package()
    tags = package.platform_tags("x86_64")
    assert tags[0] == "manylinux_2_34_x86_64" and "manylinux_2_17_x86_64" in tags
    assert "manylinux2014_x86_64" in tags and "manylinux1_x86_64" in tags
    assert not [tag for tag in tags if tag.startswith("manylinux_2_35")]
    assert package.platform_tags("arm64")[0] == "manylinux_2_34_aarch64"


def test_image_distributions_hold_every_requirement_of_the_images_extras():
    """What the image installs: the project's requirements and those of every extra the
    Dockerfile names, and what they need; never the test and development tools."""
    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    package = image_package()
    pins = package.image_distributions()
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    wanted = project["dependencies"] + [
        text
        for extra in package.EXTRAS.split(",")
        for text in project["optional-dependencies"][extra]
    ]
    assert {canonicalize_name(Requirement(text).name) for text in wanted} <= set(pins)
    # pyiceberg's and papermill's own requirements are followed too.
    assert {"pydantic", "pyroaring", "nbclient", "ipykernel"} <= set(pins)
    assert not {"pytest", "moto", "cfn-lint", "checkov", "ruff"} & set(pins)


# --- the report image ------------------------------------------------------------------------


REPORT_NOTEBOOKS = ("top_songs_trends.ipynb", "compare_charts.ipynb")


def context_files(sources: list[str]) -> set[str]:
    """The files under these sources that the build context holds: .dockerignore's patterns
    leave out a path when they match it or one of its folders."""
    ignore = [
        line.strip()
        for line in (ROOT / ".dockerignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    ]
    found = set()
    for source in sources:
        paths = [ROOT / source] if (ROOT / source).is_file() else (ROOT / source).rglob("*")
        for path in paths:
            name = path.relative_to(ROOT).as_posix()
            parts = name.split("/")
            folders = ["/".join(parts[: i + 1]) for i in range(len(parts))]
            if path.is_file() and not any(
                fnmatch.fnmatchcase(folder, pattern) for folder in folders for pattern in ignore
            ):
                found.add(name)
    return found


def dockerfile_instructions() -> list[tuple[str, str]]:
    text = (LAMBDAS / "Dockerfile").read_text(encoding="utf-8")
    logical = text.replace("\\\n", " ")  # continuation lines
    instructions = []
    for line in logical.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            instructions.append((keyword.upper(), " ".join(rest.split())))
    return instructions


def test_dockerfile_is_one_lambda_image_of_every_handler():
    # Not built here (no Docker engine): the text is checked instead.
    instructions = dockerfile_instructions()
    python = ".".join(map(str, image_package().IMAGE_PYTHON))
    assert instructions[0] == ("FROM", f"public.ecr.aws/lambda/python:{python}")
    assert instructions[-1][0] == "CMD"
    assert json.loads(instructions[-1][1]) == ["lambdas.report.app.handler"]
    copies = [shlex.split(rest) for keyword, rest in instructions if keyword == "COPY"]
    for function in image_package().FUNCTIONS:
        handler = f"lambdas/{function}/app.py"
        assert [handler, f"${{LAMBDA_TASK_ROOT}}/lambdas/{function}/"] in copies
    # The build context is the repository root: every source copied is there.
    for *sources, _target in copies:
        assert all((ROOT / source).exists() for source in sources), sources
    copied = {name for *sources, _target in copies for name in context_files(sources)}
    assert "etl_lib/__init__.py" in copied and "pyproject.toml" in copied
    # The notebooks come with the installed package (package data), nothing else copies them,
    # and the demo's local servers stay out of the image.
    assert {f"etl_lib/reporting/notebooks/{n}" for n in REPORT_NOTEBOOKS} <= copied
    assert not [name for name in copied if name.startswith("etl_lib/local_spotify/")]
    assert not [src for *sources, _ in copies for src in sources if "notebooks" in src]
    runs = " ".join(rest for keyword, rest in instructions if keyword == "RUN")
    assert "ipykernel install --sys-prefix" in runs
    [extras] = {
        rest.split("[", 1)[1].split("]")[0]
        for kw, rest in instructions
        if kw == "RUN" and "pip install" in rest and "[" in rest
    }
    assert {"aws", "lambda", "notebooks"} <= set(extras.split(","))
    environment = " ".join(rest for keyword, rest in instructions if keyword == "ENV")
    assert "NOTEBOOK" not in environment
    package_data = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"][
        "setuptools"
    ]["package-data"]
    assert "notebooks/*.ipynb" in package_data["etl_lib.reporting"]
    # The build-time checks run Python in the image: what they import exists.
    for keyword, rest in instructions:
        if keyword == "RUN" and rest.startswith('python -c "'):
            code = ast.parse(rest.removeprefix('python -c "').removesuffix('"'))
            for node in ast.walk(code):
                if isinstance(node, ast.ImportFrom):
                    module = importlib.import_module(node.module)
                    assert all(
                        hasattr(module, alias.name)
                        or importlib.util.find_spec(f"{node.module}.{alias.name}")
                        for alias in node.names
                    ), rest


@pytest.mark.slow
def test_extract_transform_report_chain_publishes_the_report_on_s3(
    aws, report_queue, monkeypatch, capsys
):
    # moto's Athena runs no SQL, so the report reads the same S3 lake with DuckDB here.
    monkeypatch.setenv("SPOTIFY_ETL_REPORT_ENGINE", "duckdb")
    outcomes = run_extract()["outcomes"]
    transformed = run_transform(raw_objects_batch(s3_keys("lake/raw/")))
    assert transformed["batchItemFailures"] == []
    # What the report-requests queue's event source would hand the report function.
    messages = received(report_queue)
    batch = {
        "Records": [
            {
                "messageId": message["MessageId"],
                "receiptHandle": message["ReceiptHandle"],
                "body": message["Body"],
                "eventSource": "aws:sqs",
            }
            for message in messages
        ]
    }
    report = load_handler("report").handler(batch, FakeLambdaContext("report"))

    assert report["batchItemFailures"] == []
    # One report per playlist, then their comparison (playlist_id None).
    *charts, comparison = [r["playlist_id"] for r in report["reports"]]
    assert sorted(charts) == sorted(o["playlist_id"] for o in outcomes) and comparison is None
    assert all(r["succeeded"] for r in report["reports"]), report
    published = s3_keys("lake/reports/")
    for result in report["reports"]:
        prefix = f"lake/{result['output_prefix']}"
        assert f"{prefix}/report.html" in published and f"{prefix}/status.json" in published
    for result in report["reports"][:-1]:
        prefix = f"lake/{result['output_prefix']}"
        assert any(k.startswith(f"{prefix}/charts/") and k.endswith(".svg") for k in published)
    metrics, logs = emitted(capsys.readouterr().out)
    assert metrics["ReportsPublished"] == len(outcomes) + 1
    report_logs = [log for log in logs if log.get("function_name") == "report"]
    assert {log["correlation_id"] for log in report_logs} == {messages[0]["MessageId"]}


def test_reports_without_time_to_start_go_back_on_the_queue_as_one_request(
    stub_reports, report_queue, capsys
):
    """A run of many playlists stops starting reports when the function's time runs short;
    the rest are asked for again, once, on the report-requests queue."""
    report = load_handler("report")
    batch = sqs_batch([json.dumps({"reports": {GLOBAL: "2026-10-01", OTHER: "2026-10-02"}})])
    context = FakeLambdaContext("report", remaining_ms=report.TIME_FOR_ONE_REPORT_MS - 1)

    response = report.handler(batch, context)

    assert response["reports"] == []
    assert response["deferred"] == {GLOBAL: "2026-10-01", OTHER: "2026-10-02"}
    assert response["requeued"] is True
    assert report_requests(report_queue) == [{"reports": response["deferred"]}]
    metrics, _ = emitted(capsys.readouterr().out)
    assert metrics["ReportsDeferred"] == 2
