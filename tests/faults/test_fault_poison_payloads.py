"""Poison raw files among good ones: each is quarantined alone with a one-line reason naming
its exception or the limit it broke, every good file is transformed exactly once, and a rerun
changes nothing. On the hourly path, the bulk path (one and two workers) and the Lambda
transform handler.
"""

from __future__ import annotations

import copy
import importlib
import json
import sys
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import boto3
import pytest

from etl_lib import cli, pipeline
from etl_lib.extract import envelope
from etl_lib.lake import layout, storage
from etl_lib.local_spotify import ChartSimulator
from etl_lib.transform import decode, iceberg, schemas
from etl_lib.warehouse import execute

pytestmark = [pytest.mark.faults, pytest.mark.timeout(180)]

PLAYLIST = "37i9dQZEVXbNG2KDcFcKOF"
FIRST_DAY = date(2026, 10, 1)
DAYS = 3
GOOD_PER_DAY = 10
ENTRIES = 50
ROOT = Path(__file__).resolve().parents[2]


def _envelope(simulator: ChartSimulator, moment: datetime) -> dict:
    entries = simulator.chart(PLAYLIST, moment.date())
    page = {"items": entries, "offset": 0, "limit": 50, "next": None, "total": len(entries)}
    source = {"kind": "spotify-web-api", "api_base_url": "https://api.spotify.com/v1"}
    return envelope.make_envelope(
        simulator.playlist(PLAYLIST, moment.date()), [page], moment, source
    )


def _at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=UTC)


def _json(value: dict) -> bytes:
    # json.dumps' default ensure_ascii writes a lone surrogate as the escape "\ud800".
    return json.dumps(value).encode()


def _poison(simulator: ChartSimulator) -> dict[str, tuple[bytes, str]]:
    """Raw files that must each be quarantined: key -> (bytes, what the reason must name)."""
    day = FIRST_DAY + timedelta(days=1)
    base = _envelope(simulator, _at(day, 12))
    good_bytes = envelope.dumps(base)

    def variant(**changes) -> dict:
        value = copy.deepcopy(base)
        value.update(changes)
        return value

    surrogate = variant()
    surrogate["pages"][0]["items"][3]["item"]["name"] = "bad \ud800 name"
    deep = b'{"extracted_at":"2026-10-02T12:00:00Z","pages":' + b"[" * 100_000 + b"]" * 100_000
    huge_number = good_bytes.replace(b'"followers":', b'"followers":' + b"7" * 5000 + b',"x":', 1)
    cases = {
        "deep nesting": (deep + b"}", "JSON nested deeper than the parser goes"),
        "lone surrogate": (_json(surrogate), "lone surrogate"),
        "5,000-digit number": (huge_number, "longer than 4,300 digits"),
        "extracted_at year 1": (
            _json(variant(extracted_at="0001-01-01T00:00:00+01:00")),
            "outside 1900-01-01..2100-12-31",
        ),
        "extracted_at year 9999": (
            _json(variant(extracted_at="9999-12-31T23:59:59Z")),
            "outside 1900-01-01..2100-12-31",
        ),
        "naive extracted_at": (_json(variant(extracted_at="2026-10-02T12:00:00")), "no UTC offset"),
        "integer extracted_at": (_json(variant(extracted_at=1790000000)), "not a string"),
        "garbage extracted_at": (_json(variant(extracted_at="yesterday")), "not an ISO-8601"),
        "null playlist": (_json(variant(playlist=None)), "'playlist' is missing"),
        "null pages": (_json(variant(pages=None)), "'pages' is missing"),
        "far too many items": (
            _json(variant(pages=[{"items": [None] * 100_000, "offset": 0}])),
            "100,000 entries, more than the 20,000",
        ),
        "HTML": (b"<!DOCTYPE html><html><body>502 Bad Gateway</body></html>", "not valid JSON"),
        "empty file": (b"", "not valid JSON"),
        "truncated JSON": (good_bytes[: len(good_bytes) // 2], "not valid JSON"),
    }
    files = {}
    for minute, (label, (data, named)) in enumerate(cases.items(), start=1):
        files[layout.raw_key(PLAYLIST, _at(day, 12, minute))] = (data, named, label)
    return files


@dataclass
class PoisonedLake:
    root: str
    good: list[str]
    poison: dict[str, tuple[bytes, str, str]] = field(default_factory=dict)


def _fill(root: str) -> PoisonedLake:
    """30 good raw files over three days, the poison interleaved with them on the second."""
    simulator = ChartSimulator()
    good = []
    for offset in range(DAYS):
        day = FIRST_DAY + timedelta(days=offset)
        for hour in range(GOOD_PER_DAY):
            key = layout.raw_key(PLAYLIST, _at(day, hour * 2))
            storage.write_bytes(root, key, envelope.dumps(_envelope(simulator, _at(day, hour * 2))))
            good.append(key)
    poison = _poison(simulator)
    for key, (data, _, _) in poison.items():
        storage.write_bytes(root, key, data)
    return PoisonedLake(root, good, poison)


def _counts(root: str) -> dict[str, int]:
    frame = execute.query(
        root,
        "SELECT (SELECT count(*) FROM snapshots) AS snapshots, "
        "(SELECT count(DISTINCT raw_key) FROM snapshots) AS raw_files, "
        "(SELECT count(*) FROM chart_entries) AS entries, "
        "(SELECT count(*) FROM (SELECT DISTINCT snapshot_id, extracted_at, position "
        "FROM chart_entries)) AS distinct_entries",
    )
    return {name: int(frame[name].iloc[0]) for name in frame.columns}


def _check_outcome(poisoned: PoisonedLake, summary: pipeline.TransformSummary) -> None:
    assert sorted(summary.transformed) == sorted(poisoned.good)  # each good file, once
    assert set(summary.quarantined) == set(poisoned.poison)
    for key, (data, named, label) in poisoned.poison.items():
        reason = summary.quarantined[key]
        assert "\n" not in reason and key in reason, label
        assert named in reason, (label, reason)
        stored = storage.read_bytes(poisoned.root, layout.quarantine_reason_key(key)).decode()
        assert stored == reason + "\n", label
        assert storage.read_bytes(poisoned.root, layout.quarantine_key(key)) == data, label
        assert storage.read_bytes(poisoned.root, key) == data, label  # the raw file stays put
    good_snapshots = len(poisoned.good)
    assert _counts(poisoned.root) == {
        "snapshots": good_snapshots,
        "raw_files": good_snapshots,
        "entries": good_snapshots * ENTRIES,
        "distinct_entries": good_snapshots * ENTRIES,
    }
    assert summary.rows["snapshots"] == good_snapshots
    assert pipeline.pending_raw_keys(poisoned.root) == []


def _table_versions(root: str) -> dict[str, int]:
    """The current Iceberg snapshot of every table: a commit of any kind changes it."""
    tables = iceberg.open_tables(root)
    versions = {}
    for name in schemas.TABLES:
        table = tables.existing(name)
        assert table is not None and table.current_snapshot() is not None, name
        versions[name] = table.current_snapshot().snapshot_id
    return versions


def _rows_and_snapshots(root: str) -> dict[str, tuple[int, int]]:
    """Per table: its rows, and the distinct snapshots they came from."""
    counts = "SELECT count(*) AS n, count(DISTINCT (playlist_id, extracted_at)) AS s FROM {}"
    frames = execute.query_all(root, {name: (counts.format(name), None) for name in schemas.TABLES})
    return {name: (int(f["n"].iloc[0]), int(f["s"].iloc[0])) for name, f in frames.items()}


def test_hourly_path_quarantines_each_poison_file_and_transforms_every_good_one(lake_root):
    poisoned = _fill(lake_root)

    summary = pipeline.transform(lake_root)

    _check_outcome(poisoned, summary)
    versions = _table_versions(lake_root)
    rerun = pipeline.transform(lake_root)
    assert rerun.transformed == [] and rerun.quarantined == {}
    assert _table_versions(lake_root) == versions  # nothing left to commit


@pytest.mark.parametrize("workers", [1, 2])
def test_bulk_path_quarantines_each_poison_file_and_commits_the_rest_of_its_day(lake_root, workers):
    poisoned = _fill(lake_root)

    summary = pipeline.transform_bulk(lake_root, workers=workers)

    _check_outcome(poisoned, summary)
    versions = _table_versions(lake_root)
    rerun = pipeline.transform_bulk(lake_root, workers=workers)
    assert rerun.transformed == [] and rerun.quarantined == {}
    assert _table_versions(lake_root) == versions  # nothing left to commit


POISON_NAME = "rows Arrow refuses"


@pytest.fixture
def arrow_refuses_one_name(monkeypatch):
    """Rows that pass every check of the decoder but break the Arrow conversion: the track
    named ``POISON_NAME`` gets a name Arrow cannot encode."""
    real_text = decode._text

    def text(value):
        return "\ud800" if value == POISON_NAME else real_text(value)

    monkeypatch.setattr(decode, "_text", text)


def _land_day_with_one_unconvertible(root: str) -> tuple[list[str], str]:
    simulator = ChartSimulator()
    good = []
    for hour in range(6):
        moment = _at(FIRST_DAY, hour)
        key = layout.raw_key(PLAYLIST, moment)
        storage.write_bytes(root, key, envelope.dumps(_envelope(simulator, moment)))
        good.append(key)
    moment = _at(FIRST_DAY, 3, 30)
    snapshot = _envelope(simulator, moment)
    snapshot["pages"][0]["items"][0]["item"]["name"] = POISON_NAME
    bad = layout.raw_key(PLAYLIST, moment)
    storage.write_bytes(root, bad, envelope.dumps(snapshot))
    return good, bad


@pytest.mark.parametrize("path", ["hourly", "bulk"])
def test_rows_arrow_refuses_quarantine_their_file_alone(lake_root, arrow_refuses_one_name, path):
    good, bad = _land_day_with_one_unconvertible(lake_root)

    if path == "bulk":
        summary = pipeline.transform_bulk(lake_root, workers=1)
    else:
        summary = pipeline.transform(lake_root)

    assert sorted(summary.transformed) == good and list(summary.quarantined) == [bad]
    reason = summary.quarantined[bad]
    assert "\n" not in reason and bad in reason and "UnicodeEncodeError" in reason
    if path == "bulk":
        assert "tracks.name" in reason  # the column at fault is named
    assert _counts(lake_root)["snapshots"] == len(good)
    assert _counts(lake_root)["entries"] == len(good) * ENTRIES


# --- the Lambda transform handler, on moto's S3 ---------------------------------------------

BUCKET = "poison-lake"
LAKE = f"s3://{BUCKET}/lake"


@dataclass
class _LambdaContext:
    function_name: str = "transform"
    memory_limit_in_mb: int = 512
    aws_request_id: str = "5b1f0c1e-0000-4000-8000-000000000011"
    invoked_function_arn: str = "arn:aws:lambda:us-east-1:123456789012:function:transform"


def _transform_handler():
    sys.modules.pop("lambdas.transform.app", None)  # a fresh import: a cold start
    module = importlib.import_module("lambdas.transform.app")
    module.logger.registered_handler.stream = sys.stdout
    return module.handler


def _notification(keys: list[str]) -> dict:
    """The SQS batch the raw-objects queue hands the transform: one S3 notification per
    object created, each in its own message."""
    return {
        "Records": [
            {
                "messageId": f"message-{number}",
                "eventSource": "aws:sqs",
                "body": json.dumps(
                    {
                        "Records": [
                            {
                                "eventSource": "aws:s3",
                                "eventName": "ObjectCreated:Put",
                                "s3": {
                                    "bucket": {"name": BUCKET},
                                    "object": {"key": f"lake/{key}"},
                                },
                            }
                        ]
                    }
                ),
            }
            for number, key in enumerate(keys)
        ]
    }


def test_lambda_handler_quarantines_each_poison_object_and_transforms_the_rest(
    moto_endpoint, monkeypatch, capsys
):
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    monkeypatch.setenv("SPOTIFY_ETL_LAKE", LAKE)
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "spotify-charts-lake")
    monkeypatch.setenv("POWERTOOLS_METRICS_NAMESPACE", "SpotifyChartsLake")
    poisoned = _fill(LAKE)
    handler = _transform_handler()
    notification = _notification(sorted(poisoned.good + list(poisoned.poison)))

    response = handler(notification, _LambdaContext())

    assert response["batchItemFailures"] == []  # a quarantined file is handled, not retried
    summary = pipeline.TransformSummary(
        transformed=response["transformed"],
        quarantined=response["quarantined"],
        rows=response["rows"],
    )
    _check_outcome(poisoned, summary)
    assert response["rows"]["chart_entries"] == len(poisoned.good) * ENTRIES
    logged = [json.loads(line) for line in capsys.readouterr().out.splitlines() if "{" in line]
    assert sum(log.get("message") == "raw file quarantined" for log in logged) == len(
        poisoned.poison
    )
    first = _rows_and_snapshots(LAKE)
    assert first == {name: (response["rows"][name], len(poisoned.good)) for name in schemas.TABLES}
    # At-least-once delivery: the same notification again quarantines and writes the same,
    # and every table holds each good snapshot's rows once.
    assert handler(notification, _LambdaContext()) == response
    assert _rows_and_snapshots(LAKE) == first


def test_an_extracted_snapshot_with_a_lone_surrogate_lands_then_goes_to_quarantine(lake_root):
    # What spotipy hands over when the API's JSON holds the escape "\ud800": the raw zone
    # keeps it (as the escape), and the transform quarantines it with why.
    snapshot = _envelope(ChartSimulator(), _at(FIRST_DAY, 9))
    snapshot["playlist"]["name"] = "Top \ud800"
    landed = pipeline.land_raw(lake_root, snapshot)
    assert landed.written and b"\\ud800" in storage.read_bytes(lake_root, landed.raw_key)

    summary = pipeline.transform(lake_root)

    assert summary.transformed == [] and list(summary.quarantined) == [landed.raw_key]
    assert "lone surrogate" in summary.quarantined[landed.raw_key]


def test_the_command_names_each_quarantined_file_on_one_line_and_exits_1(lake_root, capsys):
    poisoned = _fill(lake_root)

    status = cli.main(["transform", "--lake", lake_root, "--bulk", "--workers", "1"])

    stderr = capsys.readouterr().err
    assert status == 1 and "Traceback" not in stderr
    assert f"transformed {len(poisoned.good)} raw files" in stderr
    errors = [line for line in stderr.splitlines() if line.startswith("error: ")]
    assert sorted(errors) == sorted(
        f"error: {storage.read_bytes(lake_root, layout.quarantine_reason_key(key)).decode().strip()} "  # noqa: E501
        f"(copied to {layout.quarantine_key(key)}; fix or remove the raw file)"
        for key in poisoned.poison
    )
    # Quarantined files are skipped from then on: the next run has nothing left to say.
    assert cli.main(["transform", "--lake", lake_root, "--bulk"]) == 0
