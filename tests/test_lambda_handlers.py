"""The Lambda handlers, the zip builder and the report image's Dockerfile.

Handlers run in-process against moto's AWS server on 127.0.0.1 (S3, Glue, Secrets Manager)
and the local Spotify server, not against AWS. moto's server stores objects and catalogs
tables but runs neither S3 event notifications nor Lambda functions or destinations, so the
tests play those parts: they build the notification S3 would send for the objects the
extract wrote, and the event a destination would hand the report function.
"""

from __future__ import annotations

import ast
import copy
import fnmatch
import importlib
import importlib.util
import json
import shlex
import subprocess
import sys
import tomllib
import types
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import quote_plus

import boto3
import pytest
import requests

from etl_lib.errors import ConfigError
from etl_lib.lake import layout, storage
from etl_lib.transform import iceberg, schemas
from etl_lib.warehouse import execute

ROOT = Path(__file__).resolve().parents[1]
LAMBDAS = ROOT / "lambdas"
EVENTS = Path(__file__).resolve().parent / "events"
BUCKET = "charts-lake"
LAKE = f"s3://{BUCKET}/lake"
SECRET_ID = "spotify-etl/lambda-test"
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

    def __post_init__(self):
        self.invoked_function_arn = (
            f"arn:aws:lambda:us-east-1:123456789012:function:{self.function_name}"
        )


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
    """A bucket and a client-credentials secret on moto, the environment a function gets."""
    # moto keeps its state per process, not per server: start from an empty account.
    requests.post(f"{moto_endpoint}/moto-api/reset", timeout=10).raise_for_status()
    # Catalogs opened by an earlier test hold Glue clients bound to that test's server.
    iceberg.forget(LAKE)
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    boto3.client("secretsmanager").create_secret(
        Name=SECRET_ID,
        SecretString=json.dumps(
            {"client_id": spotify_server.client_id, "client_secret": spotify_server.client_secret}
        ),
    )
    for name, value in {
        "SPOTIFY_ETL_LAKE": LAKE,
        "SPOTIFY_ETL_PLAYLISTS": f"{GLOBAL},{OTHER}",
        "SPOTIFY_ETL_SECRET_ID": SECRET_ID,
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


def run_transform(notification: dict) -> dict:
    return load_handler("transform").handler(notification, FakeLambdaContext("transform"))


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


# --- extract -> S3 notification -> transform, on moto ---------------------------------------


def test_scheduled_extract_then_notified_transform_end_to_end(aws, capsys):
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
    notification = notification_for(raw_objects)
    assert all("%3D" in r["s3"]["object"]["key"] for r in notification["Records"])

    first = run_transform(notification)
    assert first["transformed"] == sorted(o["raw_key"] for o in outcomes)
    assert first["quarantined"] == {} and first["ignored"] == []
    json.dumps(first)  # what a destination forwards must be JSON
    counts = entries_per_playlist()
    assert set(counts) == {GLOBAL, OTHER} and first["rows"]["chart_entries"] == sum(counts.values())
    metrics, _ = emitted(capsys.readouterr().out)
    assert metrics["RawFilesTransformed"] == 2 and metrics["RawFilesQuarantined"] == 0

    # One invocation, one commit per table (the raw files of a notification go together).
    assert commits_per_table() == dict.fromkeys(schemas.TABLES, 1)
    rows = table_rows()
    assert len(rows["chart_entries"]) == first["rows"]["chart_entries"]

    # At-least-once delivery: the same notification again, twice, changes no row.
    for delivery in (2, 3):
        assert run_transform(notification) == first
        assert table_rows() == rows
        assert all(n <= delivery for n in commits_per_table().values())
    assert entries_per_playlist() == counts
    assert s3_keys("lake/raw/") == raw_objects

    # The next hour: same snapshots, a heartbeat only, still a successful extract.
    again = run_extract()
    assert [o["status"] for o in again["outcomes"]] == ["unchanged", "unchanged"]
    metrics, _ = emitted(capsys.readouterr().out)
    assert metrics["SnapshotsUnchanged"] == 2 and metrics["SuccessfulExtract"] == 1
    assert s3_keys("lake/raw/") == raw_objects


def test_corrupt_object_is_quarantined_and_the_rest_of_the_batch_transforms(aws, capsys):
    raw_keys = [o["raw_key"] for o in run_extract()["outcomes"]]
    corrupt = f"raw/playlist_id={GLOBAL}/dt=2026-10-02/20261002T000000Z.json"
    boto3.client("s3").put_object(Bucket=BUCKET, Key=f"lake/{corrupt}", Body=b"\x00not json{")
    capsys.readouterr()
    notification = notification_for(
        [f"lake/{corrupt}"]
        + [f"lake/{key}" for key in raw_keys]
        + ["lake/_state/last_snapshot/x.json", "lake/raw/notes.txt", "elsewhere/raw/a.json"]
    )
    notification["Records"] += notification_for([f"lake/{raw_keys[0]}"], "other-bucket")["Records"]

    response = run_transform(notification)

    assert response["transformed"] == raw_keys
    assert list(response["quarantined"]) == [corrupt] and response["quarantined"][corrupt]
    assert response["ignored"] == [
        f"s3://{BUCKET}/lake/_state/last_snapshot/x.json",
        f"s3://{BUCKET}/lake/raw/notes.txt",
        f"s3://{BUCKET}/elsewhere/raw/a.json",
        f"s3://other-bucket/lake/{raw_keys[0]}",
    ]
    reason = storage.read_bytes(LAKE, layout.quarantine_reason_key(corrupt)).decode()
    assert reason.strip() == response["quarantined"][corrupt]
    assert storage.read_bytes(LAKE, layout.quarantine_key(corrupt)) == b"\x00not json{"
    assert set(entries_per_playlist()) == {GLOBAL, OTHER}
    metrics, logs = emitted(capsys.readouterr().out)
    assert metrics["RawFilesQuarantined"] == 1 and metrics["RawFilesTransformed"] == 2
    [quarantined_log] = [log for log in logs if log["message"] == "raw file quarantined"]
    assert quarantined_log["raw_key"] == corrupt and quarantined_log["level"] == "ERROR"
    assert quarantined_log["correlation_id"] == "C3D13FE58DE4C810"


def test_notification_without_records_transforms_nothing(aws):
    # S3 sends an s3:TestEvent, without Records, when a notification is configured.
    response = run_transform({"Service": "Amazon S3", "Event": "s3:TestEvent"})
    assert response["transformed"] == [] and response["quarantined"] == {}


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
    # The one answer the CLI's `run` and the report function both use.
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


def test_report_skipped_when_nothing_was_transformed(powertools, monkeypatch):
    # None in sys.modules makes any `import etl_lib.reporting.reports` raise: proves it is not
    # imported.
    monkeypatch.setitem(sys.modules, "etl_lib.reporting.reports", None)
    report = load_handler("report")
    context = FakeLambdaContext("report")
    assert report.handler(event("report_destination.json"), context) == {"reports": []}
    assert report.handler({"responsePayload": None}, context) == {"reports": []}


@pytest.fixture
def stub_reports(powertools, monkeypatch):
    """etl_lib.reporting.reports.run_report recorded instead of run (papermill and Athena are
    not here)."""
    calls = []

    def run_report(lake_root, *, playlist_id, as_of, days=30, engine="duckdb"):
        calls.append(
            {
                "lake_root": lake_root,
                "playlist_id": playlist_id,
                "as_of": as_of,
                "days": days,
                "engine": engine,
            }
        )
        failed = playlist_id == OTHER
        return types.SimpleNamespace(
            succeeded=not failed,
            output_prefix=f"reports/{playlist_id}/{as_of}" + ("/failed/x" if failed else ""),
            error="NameError: boom" if failed else None,
        )

    module = types.ModuleType("etl_lib.reporting.reports")
    module.run_report = run_report
    monkeypatch.setitem(sys.modules, "etl_lib.reporting.reports", module)
    monkeypatch.setenv("SPOTIFY_ETL_LAKE", LAKE)
    return calls


def test_report_per_playlist_as_of_its_newest_transformed_key(stub_reports, capsys):
    destination = event("report_destination.json")
    destination["responsePayload"]["transformed"] = [
        f"raw/playlist_id={GLOBAL}/dt=2026-10-02/20261002T000500Z.json",
        f"raw/playlist_id={GLOBAL}/dt=2026-10-01/20261001T230000Z.json",
        f"raw/playlist_id={OTHER}/dt=2026-09-30/20260930T120000Z.json",
    ]
    response = load_handler("report").handler(destination, FakeLambdaContext("report"))
    assert stub_reports == [
        {
            "lake_root": LAKE,
            "playlist_id": GLOBAL,
            "as_of": "2026-10-02",
            "days": 30,
            "engine": "athena",
        },
        {
            "lake_root": LAKE,
            "playlist_id": OTHER,
            "as_of": "2026-09-30",
            "days": 30,
            "engine": "athena",
        },
    ]
    assert [(r["playlist_id"], r["succeeded"], r["error"]) for r in response["reports"]] == [
        (GLOBAL, True, None),
        (OTHER, False, "NameError: boom"),
    ]
    metrics, logs = emitted(capsys.readouterr().out)
    assert metrics["ReportsPublished"] == 1 and metrics["ReportFailures"] == 1
    assert {log["correlation_id"] for log in logs} == {destination["requestContext"]["requestId"]}


def test_report_on_direct_request(stub_reports):
    request = {"playlist_id": GLOBAL, "as_of": "2026-10-01"}
    response = load_handler("report").handler(request, FakeLambdaContext("report"))
    assert [(c["playlist_id"], c["as_of"]) for c in stub_reports] == [(GLOBAL, "2026-10-01")]
    assert response["reports"][0]["output_prefix"] == f"reports/{GLOBAL}/2026-10-01"


# An invocation stopped by its settings publishes no metrics, which Powertools warns about.
@pytest.mark.filterwarnings("ignore:No application metrics:UserWarning")
def test_handlers_read_their_settings_through_config_per_invocation(stub_reports, monkeypatch):
    """No handler reads the environment itself, nor at import: a warm container follows the
    environment of each invocation, and a lake off S3 is one line saying what to set."""
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
    with pytest.raises(ConfigError, match="set SPOTIFY_ETL_LAKE to s3://"):
        transform.handler(notification_for(["lake/raw/x.json"]), FakeLambdaContext("transform"))


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


# --- the zips --------------------------------------------------------------------------------

RUN_FROM_ZIP = """
import importlib, json, sys
zip_dir, layer_dir, event = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
sys.path[:0] = [zip_dir, layer_dir]  # as Lambda orders them: /var/task, then the layer
app = importlib.import_module("app")
import botocore, etl_lib, pyiceberg, s3fs, spotipy
outside = [m.__name__ for m in (app, botocore, etl_lib, pyiceberg, s3fs, spotipy)
           if not m.__file__.startswith(zip_dir)]
assert not outside, f"not loaded from the zip: {outside}"
context = type("Context", (), {"function_name": "f", "memory_limit_in_mb": 512,
                               "invoked_function_arn": "arn", "aws_request_id": "r"})()
print("RESPONSE " + json.dumps(app.handler(event, context)))
"""


def build_zips(out: Path, *options: str) -> subprocess.CompletedProcess:
    command = [sys.executable, str(LAMBDAS / "package.py"), "--out", str(out), *options]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120)


def run_from_zip(archive: Path, layer: Path, tmp_path: Path, payload: dict) -> dict:
    """Run a zip's handler on its own: a bare interpreter (-S: no site-packages), the zip's
    contents first on the path, then a stand-in for the pandas layer."""
    unpacked = tmp_path / archive.stem
    with zipfile.ZipFile(archive) as opened:
        opened.extractall(unpacked)
    result = subprocess.run(
        [sys.executable, "-S", "-c", RUN_FROM_ZIP, str(unpacked), str(layer), json.dumps(payload)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    [line] = [line for line in result.stdout.splitlines() if line.startswith("RESPONSE ")]
    return json.loads(line.removeprefix("RESPONSE "))


def pandas_layer_stand_in(tmp_path: Path) -> Path:
    """The three packages package.py leaves to the AWS SDK for pandas layer, from this venv."""
    layer = tmp_path / "layer"
    layer.mkdir()
    site_packages = Path(importlib.util.find_spec("pandas").origin).parents[1]
    for name in ("pandas", "numpy", "pyarrow"):
        for path in site_packages.glob(f"{name}*"):  # the package, its .libs, its dist-info
            (layer / path.name).symlink_to(path)
    return layer


@pytest.mark.slow
def test_zips_fit_the_limits_and_run_on_their_own(aws, tmp_path):
    result = build_zips(tmp_path / "out")
    assert result.returncode == 0, result.stderr
    print(result.stdout)
    for function in ("extract", "transform"):
        archive = tmp_path / "out" / f"{function}.zip"
        assert archive.stat().st_size < 50 * 1024 * 1024
        with zipfile.ZipFile(archive) as opened:
            names = opened.namelist()
            unzipped = sum(info.file_size for info in opened.infolist())
            assert opened.read("app.py") == (LAMBDAS / function / "app.py").read_bytes()
        assert unzipped < (250 - 170) * 1024 * 1024
        assert "etl_lib/__init__.py" in names
        assert any(
            name.startswith("etl_lib/warehouse/sql/") and name.endswith(".sql") for name in names
        )
        # The demo's local servers and the report notebooks are not part of these functions.
        assert not [name for name in names if name.startswith("etl_lib/local_spotify/")]
        assert not [name for name in names if name.endswith(".ipynb")]
        tops = {name.split("/")[0] for name in names}
        assert {"s3fs", "spotipy", "botocore", "aws_lambda_powertools", "pyiceberg"} <= tops
        assert not tops & {"pandas", "numpy", "pyarrow", "duckdb", "sqlglot"}
        # pyiceberg's SQL catalog and command line are not on the Glue path.
        assert not tops & {"sqlalchemy", "rich", "pygments", "click"}
        assert not [name for name in names if name.startswith("zstandard/_cffi")]
        assert f"{function}.zip: " in result.stdout and "MB unzipped" in result.stdout
    assert (tmp_path / "out" / ".shared.zip").exists() is False

    layer = pandas_layer_stand_in(tmp_path)
    extracted = run_from_zip(tmp_path / "out" / "extract.zip", layer, tmp_path, {"id": "e"})
    assert [o["status"] for o in extracted["outcomes"]] == ["extracted", "extracted"]
    notification = notification_for(s3_keys("lake/raw/"))
    transformed = run_from_zip(tmp_path / "out" / "transform.zip", layer, tmp_path, notification)
    assert transformed["transformed"] == sorted(o["raw_key"] for o in extracted["outcomes"])
    assert set(entries_per_playlist()) == {GLOBAL, OTHER}


def test_zips_over_a_limit_fail_with_one_line(tmp_path):
    result = build_zips(tmp_path / "out", "--max-zipped-mb", "0.001", "--layer-mb", "249.99")
    assert result.returncode == 1
    [line] = result.stderr.strip().splitlines()
    assert line.startswith("error: extract.zip is ")
    assert "over the 0.001 MB limit (--max-zipped-mb)" in line
    assert "MB left beside the 249.99 MB layer" in line and "transform.zip" in line


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
    text = (LAMBDAS / "report" / "Dockerfile").read_text(encoding="utf-8")
    logical = text.replace("\\\n", " ")  # continuation lines
    instructions = []
    for line in logical.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            keyword, _, rest = line.partition(" ")
            instructions.append((keyword.upper(), " ".join(rest.split())))
    return instructions


def test_report_dockerfile_is_a_lambda_image_of_the_report_handler():
    # Not built here (no Docker engine): the text is checked instead.
    instructions = dockerfile_instructions()
    assert instructions[0] == ("FROM", "public.ecr.aws/lambda/python:3.11")
    assert instructions[-1][0] == "CMD" and json.loads(instructions[-1][1]) == ["app.handler"]
    copies = [shlex.split(rest) for keyword, rest in instructions if keyword == "COPY"]
    assert ["lambdas/report/app.py", "${LAMBDA_TASK_ROOT}/"] in copies
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


def test_zip_builder_refuses_wheels_too_new_for_the_lambda_runtime():
    package = importlib.import_module("lambdas.package")
    fits = package.runs_on_lambda
    assert fits("py3-none-any", "x86_64")
    assert fits("cp311-cp311-manylinux_2_17_x86_64.manylinux2014_x86_64", "x86_64")
    assert fits("cp311-cp311-manylinux1_x86_64", "x86_64")
    # duckdb's wheels need glibc 2.27+; the python3.11 runtime (Amazon Linux 2) has 2.26.
    assert not fits("cp311-cp311-manylinux_2_27_x86_64.manylinux_2_28_x86_64", "x86_64")
    assert not fits("cp311-cp311-manylinux2014_x86_64", "aarch64")
    assert not fits("cp311-cp311-macosx_11_0_arm64", "aarch64")


@pytest.mark.slow
def test_extract_transform_report_chain_publishes_the_report_on_s3(aws, monkeypatch, capsys):
    # moto's Athena runs no SQL, so the report reads the same S3 lake with DuckDB here.
    monkeypatch.setenv("SPOTIFY_ETL_REPORT_ENGINE", "duckdb")
    outcomes = run_extract()["outcomes"]
    transformed = run_transform(notification_for(s3_keys("lake/raw/")))
    destination = {
        "requestContext": {"requestId": "transform-request"},
        "responsePayload": transformed,
    }
    report = load_handler("report").handler(destination, FakeLambdaContext("report"))

    assert [r["succeeded"] for r in report["reports"]] == [True] * len(outcomes), report
    published = s3_keys("lake/reports/")
    for result in report["reports"]:
        prefix = f"lake/{result['output_prefix']}"
        assert f"{prefix}/report.html" in published and f"{prefix}/status.json" in published
        assert any(k.startswith(f"{prefix}/charts/") and k.endswith(".svg") for k in published)
    metrics, _ = emitted(capsys.readouterr().out)
    assert metrics["ReportsPublished"] == len(outcomes)
