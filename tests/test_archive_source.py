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
    assert "landed 58 archived snapshots (58 new)" in capsys.readouterr().err
    days = execute.query(root, "SELECT count(DISTINCT dt) AS n FROM daily_chart")["n"].iloc[0]
    assert cli.main(["backfill", str(folder), "--lake", root]) == 0
    assert "(0 new)" in capsys.readouterr().err
    counts = execute.query(
        root, "SELECT count(*) AS entries, count(DISTINCT dt) AS days FROM daily_chart"
    )
    assert counts["days"].iloc[0] == days and counts["entries"].iloc[0] == days * 50
