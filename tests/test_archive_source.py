"""The archive as a source in the pipeline and as `backfill`, end to end through the CLI."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from etl_lib import cli, pipeline
from etl_lib.config import Settings
from etl_lib.lake import storage
from etl_lib.local_spotify import ChartSimulator
from etl_lib.local_spotify.archive_server import LocalArchiveServer
from etl_lib.warehouse import execute

GLOBAL = "37i9dQZEVXbNG2KDcFcKOF"
MORNING = datetime(2026, 10, 1, 6, tzinfo=UTC)


def test_extract_from_the_archive_detects_unchanged_snapshots(tmp_path):
    with LocalArchiveServer(ChartSimulator(), now=MORNING) as server:
        settings = Settings(
            lake=str(tmp_path / "lake"),
            source="archive",
            archive_base_url=server.base_url,
            playlists=(GLOBAL,),
        )
        [first] = pipeline.extract(settings, clock=lambda: MORNING)
        [second] = pipeline.extract(settings, clock=lambda: MORNING + timedelta(hours=1))
        server.set_time(MORNING + timedelta(days=1))
        [third] = pipeline.extract(settings, clock=lambda: MORNING + timedelta(days=1))
    assert [o.status for o in (first, second, third)] == ["extracted", "unchanged", "extracted"]
    assert first.items == 50
    payload = json.loads(storage.read_bytes(settings.lake, first.raw_key))
    assert payload["source"]["kind"] == "archive"
    summary = pipeline.transform(settings.lake)
    assert summary.rows["chart_entries"] == 100 and not summary.quarantined


def test_unknown_archive_playlist_fails_alone(tmp_path):
    with LocalArchiveServer(ChartSimulator(), now=MORNING) as server:
        settings = Settings(
            lake=str(tmp_path / "lake"), source="archive", archive_base_url=server.base_url
        )
        outcomes = pipeline.extract(settings, ["0000000000000000000000", GLOBAL])
    assert [o.status for o in outcomes] == ["failed", "extracted"]
    assert "archive does not track" in str(outcomes[0].error)


@pytest.mark.shared_data
def test_backfill_command_is_idempotent(shared_data, tmp_path, capsys):
    folder = shared_data / "playlist-archive" / "top50-global-2021"
    root = str(tmp_path / "lake")
    assert cli.main(["backfill", str(folder), "--lake", root]) == 0
    output = capsys.readouterr()
    assert "landed 58 archived snapshots (58 new)" in output.err
    # One report, as of the newest day backfilled; none for the history on the way.
    [[playlist, newest]] = execute.query(
        root, "SELECT playlist_id, max(dt) FROM snapshots GROUP BY playlist_id"
    ).values.tolist()
    published = list(storage.list_keys(root, "reports/", "status.json"))
    assert published == [f"reports/{playlist}/{newest}/status.json"], published
    assert "Report: " in output.out
    days = execute.query(root, "SELECT count(DISTINCT dt) AS n FROM daily_chart")["n"].iloc[0]
    assert cli.main(["backfill", str(folder), "--lake", root]) == 0
    assert "(0 new)" in capsys.readouterr().err
    assert len(list(storage.list_keys(root, "reports/", "status.json"))) == 1  # nothing new
    counts = execute.query(
        root, "SELECT count(*) AS entries, count(DISTINCT dt) AS days FROM daily_chart"
    )
    assert counts["days"].iloc[0] == days and counts["entries"].iloc[0] == days * 50


@pytest.mark.shared_data
@pytest.mark.aws
def test_backfill_of_a_deployed_lake_asks_the_report_function_once(
    shared_data, moto_endpoint, monkeypatch, capsys
):
    """With the stack's report-requests queue set, the backfill's reports are one request to
    the report function (on moto's SQS here), each playlist as of its newest day."""
    import boto3

    folder = shared_data / "playlist-archive" / "top50-global-2021"
    boto3.client("s3").create_bucket(Bucket="lake")
    queue_url = boto3.client("sqs").create_queue(QueueName="report-requests")["QueueUrl"]
    monkeypatch.setenv("SPOTIFY_ETL_REPORT_QUEUE_URL", queue_url)
    assert cli.main(["backfill", str(folder), "--lake", "s3://lake"]) == 0
    assert "asked the report function for 1 report(s)" in capsys.readouterr().err
    [[playlist, newest]] = execute.query(
        "s3://lake", "SELECT playlist_id, max(dt) FROM snapshots GROUP BY playlist_id"
    ).values.tolist()
    received = boto3.client("sqs").receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10)
    bodies = [json.loads(m["Body"]) for m in received["Messages"]]
    assert bodies == [{"reports": {playlist: str(newest)}}]
    assert list(storage.list_keys("s3://lake", "reports/", "status.json")) == []
