"""The same lake on S3, against moto's S3 and Glue servers on 127.0.0.1 (not AWS): the
tables are Iceberg tables in moto's Glue Data Catalog, their files in the lake's bucket."""

from __future__ import annotations

import json
from collections import Counter

import boto3
import pytest
from conftest import use_fake_aws

from etl_lib import cli
from etl_lib.cli.demo import DEMO_PLAYLISTS, run_demo
from etl_lib.errors import LakeError
from etl_lib.lake import storage
from etl_lib.transform import iceberg, schemas

pytestmark = pytest.mark.aws

BUCKET = "charts-lake"
COUNTS_SQL = (
    "SELECT (SELECT count(*) FROM chart_entries) AS entries, (SELECT count(*) FROM tracks) AS t, "
    "(SELECT count(*) FROM albums) AS al, (SELECT count(*) FROM artists) AS ar, "
    "(SELECT count(*) FROM track_artists) AS ta, (SELECT count(*) FROM snapshots) AS s, "
    "(SELECT count(*) FROM daily_chart) AS daily, (SELECT count(*) FROM latest_tracks) AS lt"
)


@pytest.fixture
def bucket(moto_endpoint):
    # Catalogs opened by an earlier test hold Glue clients bound to that test's server.
    iceberg.forget(f"s3://{BUCKET}/lake")
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    return f"s3://{BUCKET}"


def _counts(root: str, capsys) -> dict:
    assert cli.main(["query", "--lake", root, "--format", "json", COUNTS_SQL]) == 0
    [row] = json.loads(capsys.readouterr().out)
    return row


def _objects() -> list[dict]:
    pages = boto3.client("s3").get_paginator("list_objects_v2").paginate(Bucket=BUCKET)
    return [item for page in pages for item in page.get("Contents", [])]


@pytest.mark.slow
def test_demo_on_s3_matches_the_local_lake_and_reruns_change_nothing(bucket, tmp_path, capsys):
    # The demo's pipeline (extract from the local Spotify server, transform, catalog), without
    # its report, which reads the lake like the queries below.
    s3_root, local_root = f"{bucket}/lake", str(tmp_path / "lake")
    run_demo(local_root, days=3)
    run_demo(s3_root, days=3)
    local, on_s3 = _counts(local_root, capsys), _counts(s3_root, capsys)
    assert on_s3 == local and on_s3["entries"] == len(DEMO_PLAYLISTS) * 3 * 50

    keys_before = sorted(o["Key"] for o in _objects())
    again = run_demo(s3_root, days=3)
    assert again.summary.transformed == [] and "extracted" not in again.checks
    assert sorted(o["Key"] for o in _objects()) == keys_before
    # Re-transforming everything (in bulk) twice replaces each day's rows, adds none.
    for _ in range(2):
        assert cli.main(["transform", "--lake", s3_root, "--all"]) == 0
        capsys.readouterr()
        assert _counts(s3_root, capsys) == local
    objects = _objects()
    keys = sorted(o["Key"] for o in objects)

    def outside_tables(names: list[str]) -> list[str]:
        return [k for k in names if not k.startswith("lake/warehouse/")]

    # Only the tables' files changed (new data files; the replaced ones stay for readers
    # of older snapshots until compaction expires them).
    assert outside_tables(keys) == outside_tables(keys_before)
    for table in schemas.TABLES:
        files = iceberg.plan(s3_root, table).files
        days = Counter(f.split("/dt=")[1].split("/")[0] for f in files)
        # one file a chart a day: the re-transforms replaced theirs
        assert len(days) == 3 and set(days.values()) == {len(DEMO_PLAYLISTS)}, table
        prefix = f"{bucket}/lake/warehouse/spotify_charts.db/{table}/data/dt="
        assert all(f.startswith(prefix) for f in files), table
    # No "folder" marker objects: every object is a real, non-empty file.
    assert all(not o["Key"].endswith("/") and o["Size"] > 0 for o in objects)
    assert any(o["Key"].startswith("lake/raw/playlist_id=") for o in objects)


def test_listing_is_paginated_past_1000_keys(bucket):
    client = boto3.client("s3")
    for number in range(1105):
        client.put_object(Bucket=BUCKET, Key=f"lake/raw/many/{number:05d}.json", Body=b"{}")
    keys = list(storage.list_keys(f"{bucket}/lake", "raw/many/", ".json"))
    assert len(keys) == 1105 and keys[0] == "raw/many/00000.json"


def test_a_missing_key_reads_as_none_and_a_missing_bucket_is_still_named(bucket):
    root = f"{bucket}/lake"
    storage.write_bytes(root, "_state/a.json", b"{}")
    assert storage.read_bytes_if_exists(root, "_state/a.json") == b"{}"
    assert storage.read_bytes_if_exists(root, "_state/missing.json") is None
    with pytest.raises(LakeError, match="the key is missing"):
        storage.read_bytes(root, "_state/missing.json")
    with pytest.raises(LakeError, match="s3://no-such-bucket"):
        storage.ensure_root("s3://no-such-bucket/lake")


def test_missing_bucket_is_named(moto_endpoint, capsys):
    assert cli.main(["transform", "--lake", "s3://no-such-bucket/lake"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "s3://no-such-bucket" in err[0] and "--lake" in err[0]


def test_unreachable_endpoint_is_named(monkeypatch, capsys):
    use_fake_aws(monkeypatch, "http://127.0.0.1:9")
    assert cli.main(["transform", "--lake", "s3://some-bucket/lake"]) != 0
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "cannot reach" in err[0] and "AWS_ENDPOINT_URL" in err[0]


@pytest.mark.parametrize(
    ("failure", "expected"),
    [
        (PermissionError("Access Denied"), "access denied to s3://b/lake"),
        (
            OSError("AuthorizationHeaderMalformed: the region 'us-east-1' is wrong"),
            "set AWS_REGION",
        ),
        (FileNotFoundError("NoSuchBucket"), "create the bucket or fix --lake"),
    ],
)
def test_storage_failures_become_one_line(failure, expected):
    with pytest.raises(LakeError, match=expected), storage.storage_errors("s3://b/lake"):
        raise failure


def test_catalog_and_query_with_the_athena_engine(bucket, capsys):
    root = f"{bucket}/lake"
    assert cli.main(["catalog", "--engine", "athena", "--lake", root]) == 0
    assert "Glue Data Catalog and Athena" in capsys.readouterr().err
    tables = boto3.client("glue").get_tables(DatabaseName="spotify_charts")["TableList"]
    assert {t["Name"] for t in tables} == {
        "snapshots",
        "chart_entries",
        "tracks",
        "albums",
        "artists",
        "track_artists",
    }
    assert {t["Parameters"]["table_type"] for t in tables} == {"ICEBERG"}
    sent = "SELECT * FROM daily_chart WHERE chart_rank <= ?"
    assert cli.main(["query", "--engine", "athena", "--lake", root, "--param", "3", sent]) == 0
    out, err = capsys.readouterr()
    assert "(no rows)" in out and "Athena scanned 0 bytes" in err
    athena = boto3.client("athena")
    executions = athena.list_query_executions()["QueryExecutionIds"]
    details = [athena.get_query_execution(QueryExecutionId=i)["QueryExecution"] for i in executions]
    [query] = [d for d in details if d["Query"] == sent]
    assert query["ExecutionParameters"] == ["3"]


@pytest.mark.parametrize(
    "duckdb_message",
    [
        # DuckDB 2: the Python traceback.
        "Traceback (most recent call last):\n"
        '  File "/site-packages/aiobotocore/httpsession.py", line 269, in send\n'
        'botocore.exceptions.ReadTimeoutError: Read timeout on endpoint URL: "http://s3/k"',
        # DuckDB 1.x (the lowest pyproject.toml allows): the exception, then "At:" and the stack.
        'ReadTimeoutError: Read timeout on endpoint URL: "http://s3/k"\n\nAt:\n'
        "  /site-packages/aiobotocore/httpsession.py(269): send\n",
    ],
    ids=["duckdb-2", "duckdb-1"],
)
def test_a_store_failure_duckdb_reports_as_text_becomes_one_line(duckdb_message):
    failure = storage.reported_storage_failure("s3://charts-lake/lake", duckdb_message)
    assert isinstance(failure, LakeError)
    assert str(failure).startswith("cannot reach the object store")
    assert 'Read timeout on endpoint URL: "http://s3/k"' in str(failure)
    assert "\n" not in str(failure)
    # A DuckDB error of the query itself is not a store failure.
    assert storage.reported_storage_failure("s3://charts-lake/lake", "Binder Error: x") is None
