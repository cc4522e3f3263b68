"""Extract -> raw -> transform -> catalog -> query, over HTTP against the local Spotify server."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime, timedelta

from etl_lib import pipeline
from etl_lib.errors import PlaylistNotFound, SpotifyAuthError
from etl_lib.extract import spotify
from etl_lib.extract.outcome import ExtractStatus
from etl_lib.lake import layout, storage
from etl_lib.reporting import status
from etl_lib.transform import iceberg, schemas
from etl_lib.warehouse import catalog, execute

PLAYLIST = "37i9dQZEVXbNG2KDcFcKOF"


def _extract_days(settings, server, days: int, hours=(6, 18)) -> list:
    reader = spotify.make_reader(settings)
    start = datetime(2026, 10, 1, tzinfo=UTC)
    landed = []
    for day in range(days):
        for hour in hours:
            moment = start + timedelta(days=day, hours=hour)
            server.set_time(moment)
            landed += pipeline.extract(
                settings, reader=reader, clock=lambda m=moment: m, force=True
            )
    return landed


def _table_counts(root: str) -> dict[str, int]:
    return {
        table: int(execute.query(root, f"SELECT count(*) AS n FROM {table}")["n"].iloc[0])
        for table in schemas.TABLES
    }


def _table_rows(root: str) -> dict[str, list[dict]]:
    """Every row of every table, in one order whatever the files hold."""
    rows = {}
    for table in schemas.TABLES:
        data = iceberg.scan(root, table)
        rows[table] = data.sort_by([(c, "ascending") for c in data.column_names]).to_pylist()
    return rows


def test_extract_lands_envelope_with_every_page(settings, spotify_server):
    moment = datetime(2026, 10, 1, 9, 30, 5, tzinfo=UTC)
    [landed] = pipeline.extract(settings, clock=lambda: moment)
    assert landed.status == "extracted"

    assert landed.raw_key == f"raw/playlist_id={PLAYLIST}/dt=2026-10-01/20261001T093005Z.json"
    payload = json.loads(storage.read_bytes(settings.lake, landed.raw_key))
    assert payload["extracted_at"] == "2026-10-01T09:30:05Z"
    assert payload["playlist"]["id"] == PLAYLIST
    assert payload["playlist"]["snapshot_id"]
    assert payload["source"]["api_base_url"] == spotify_server.base_url
    items = [item for page in payload["pages"] for item in page["items"]]
    assert len(items) == payload["pages"][0]["total"] == landed.items
    assert payload["pages"][-1]["next"] is None


def test_extract_follows_paging_until_next_is_null(settings, spotify_server):
    pages = spotify.make_reader(settings).item_pages(PLAYLIST)
    assert pages[-1]["next"] is None
    offsets = [page["offset"] for page in pages]
    assert offsets == sorted(offsets) and offsets[0] == 0
    assert sum(len(p["items"]) for p in pages) == pages[0]["total"]


def test_pipeline_end_to_end_and_rerun_changes_nothing(settings, spotify_server):
    landed = _extract_days(settings, spotify_server, days=3)
    assert [result.status for result in landed] == ["extracted"] * 6

    summary = pipeline.transform(settings.lake)
    assert len(summary.transformed) == 6 and not summary.quarantined
    names = catalog.build_catalog(settings.lake)
    assert set(names) == set(schemas.TABLES) | {
        "daily_chart", "latest_tracks", "latest_albums", "latest_artists", "latest_track_artists",
        "chart", "playlist_names",
    }  # fmt: skip
    before = _table_counts(settings.lake)
    assert before["chart_entries"] == sum(result.items for result in landed)
    assert before["snapshots"] == 6
    rows = _table_rows(settings.lake)
    assert all(rows.values())

    daily = execute.query(
        settings.lake,
        "SELECT dt, count(*) AS n, min(extracted_at) AS first_at, max(chart_rank) AS last_rank "
        "FROM daily_chart GROUP BY dt ORDER BY dt",
    )
    assert list(daily["dt"]) == ["2026-10-01", "2026-10-02", "2026-10-03"]
    assert list(daily["last_rank"]) == list(daily["n"])
    # the day's last snapshot (18:00) is the one ranked
    assert all(moment.hour == 18 for moment in daily["first_at"])

    # A second extract at the same instants, a second transform of everything: no change.
    again = _extract_days(settings, spotify_server, days=3)
    assert [result.status for result in again] == [ExtractStatus.ALREADY_LANDED] * 6
    assert pipeline.pending_raw_keys(settings.lake) == []
    pipeline.retransform_all(settings.lake)
    assert _table_counts(settings.lake) == before  # the next query sees the new commit
    assert _table_rows(settings.lake) == rows

    latest = execute.query(
        settings.lake, "SELECT count(*) AS n, count(DISTINCT track_id) AS d FROM latest_tracks"
    )
    assert latest["n"].iloc[0] == latest["d"].iloc[0] > 0


def test_query_binds_parameters(settings, spotify_server):
    _extract_days(settings, spotify_server, days=1, hours=(12,))
    pipeline.transform(settings.lake)
    frame = execute.query(
        settings.lake,
        "SELECT track_id FROM daily_chart WHERE playlist_id = ? AND chart_rank <= ?",
        [PLAYLIST, 3],
    )
    assert len(frame) == 3
    nothing = execute.query(
        settings.lake, "SELECT * FROM daily_chart WHERE playlist_id = ?", ["x' OR '1'='1"]
    )
    assert nothing.empty


def test_unknown_playlist_is_explained(settings):
    [outcome] = pipeline.extract(settings, ["0000000000000000000000"])
    assert outcome.status == "failed"
    assert isinstance(outcome.error, PlaylistNotFound)
    assert "own or collaborate" in str(outcome.error)


def test_wrong_credentials_are_named(settings):
    wrong = replace(settings, credentials=replace(settings.credentials, client_secret="wrong"))
    [outcome] = pipeline.extract(wrong)
    assert isinstance(outcome.error, SpotifyAuthError)
    assert "SPOTIFY_CLIENT_ID" in str(outcome.error)


def test_corrupt_raw_file_is_quarantined_with_reason(settings, spotify_server):
    [good] = pipeline.extract(settings)
    assert good.status == "extracted"
    bad_key = layout.raw_key(PLAYLIST, datetime(2026, 10, 2, tzinfo=UTC))
    storage.write_bytes(settings.lake, bad_key, b"{not json")

    summary = pipeline.transform(settings.lake)

    assert summary.transformed == [good.raw_key]
    assert list(summary.quarantined) == [bad_key]
    assert storage.read_bytes(settings.lake, bad_key) == b"{not json"  # raw stays put
    reason = storage.read_bytes(settings.lake, layout.quarantine_reason_key(bad_key)).decode()
    assert bad_key in reason and "JSON" in reason
    assert pipeline.pending_raw_keys(settings.lake) == []


def test_colliding_captures_are_both_kept(lake_root):
    moment = datetime(2026, 10, 1, tzinfo=UTC)

    def capture(name):
        return {
            "envelope_version": 1,
            "extracted_at": "2026-10-01T00:00:00Z",
            "source": {"kind": "import"},
            "playlist": {"id": PLAYLIST, "name": name},
            "pages": [{"items": []}],
        }

    first = pipeline.land_raw(lake_root, capture("a"))
    second = pipeline.land_raw(lake_root, capture("b"))
    repeat = pipeline.land_raw(lake_root, capture("a"))

    assert first.raw_key == layout.raw_key(PLAYLIST, moment)
    assert second.raw_key == layout.raw_key(PLAYLIST, moment + timedelta(seconds=1))
    assert repeat.raw_key == first.raw_key and not repeat.written


def _earlier_heartbeat_key(playlist_id: str, checked_at: datetime) -> str:
    """Where versions before run heartbeats wrote a check: one object per playlist."""
    day, stamp = layout.partition_date(checked_at), layout.utc_stamp(checked_at)
    return f"heartbeats/playlist_id={playlist_id}/dt={day}/{stamp}.json"


def test_heartbeats_hold_status_names_and_old_worded_ones_still_read(lake_root):
    """Heartbeats now hold names without spaces; ones written by older versions hold words
    (``already landed``, ``not attempted``): ``spotify-etl status`` reads both alike and
    shows words."""
    checked_at = datetime(2026, 10, 1, 6, tzinfo=UTC)
    storage.ensure_root(lake_root)
    landed = pipeline.ExtractOutcome("newformat1", ExtractStatus.ALREADY_LANDED, "s1", "raw/x")
    pipeline._write_heartbeat(lake_root, [pipeline.check_record(landed, checked_at, "api")])
    written = storage.read_bytes(lake_root, layout.heartbeat_key(checked_at, ["newformat1"]))
    assert json.loads(written)["checks"][0]["status"] == "already_landed"
    for playlist_id, words in (("oldformat1", "already landed"), ("oldformat2", "not attempted")):
        heartbeat = {"playlist_id": playlist_id, "status": words, "error": None}
        key = _earlier_heartbeat_key(playlist_id, checked_at)
        storage.write_bytes(lake_root, key, json.dumps(heartbeat).encode())
    storage.write_bytes(
        lake_root,
        _earlier_heartbeat_key("strange1", checked_at),
        json.dumps({"status": "exploded"}).encode(),
    )

    lake = status.lake_status(lake_root, now=checked_at)
    checks = {entry.playlist_id: entry.last_check.status for entry in lake.playlists}
    assert checks == {
        "newformat1": ExtractStatus.ALREADY_LANDED,
        "oldformat1": ExtractStatus.ALREADY_LANDED,
        "oldformat2": ExtractStatus.NOT_ATTEMPTED,
        "strange1": None,
    }
    shown = {row["id"]: row["last check"] for row in status.table_rows(lake)}
    assert shown["oldformat1"] == shown["newformat1"] == "2026-10-01 06:00 already landed"
    assert shown["oldformat2"].endswith(" not attempted")
    assert shown["strange1"].endswith(" (status unknown)")
