"""Small hand-made lakes for the query tests: each chart landed as the Spotify API sends a
playlist, then the raw zone transformed by the pipeline."""

from __future__ import annotations

from datetime import UTC, datetime

from etl_lib import pipeline
from etl_lib.extract import envelope

SOURCE = {"kind": "spotify-web-api", "api_base_url": "https://api.spotify.com/v1"}


def track(
    track_id: str, name: str, artists: list[tuple[str, str | None]], album: dict | None
) -> dict:
    """A Spotify track object credited to ``artists`` ((id, name), in credited order)."""
    return {
        "id": track_id,
        "name": name,
        "type": "track",
        "artists": [{"id": key, "name": shown, "type": "artist"} for key, shown in artists],
        "album": album,
        "duration_ms": 180000,
    }


def build(lake_root: str, charts: dict[tuple[str, str], list[dict]], names: dict[str, str]) -> str:
    """``lake_root`` holding ``charts`` ((playlist id, 'YYYY-MM-DD') -> its tracks in order,
    each a snapshot at noon UTC), the playlists named by ``names``; every snapshot is in the
    tables, none quarantined."""
    for (playlist_id, day), tracks in charts.items():
        items = [
            {"added_at": "2026-01-01T00:00:00Z", "is_local": False, "item": t, "track": t}
            for t in tracks
        ]
        playlist = {
            "id": playlist_id,
            "name": names[playlist_id],
            "snapshot_id": f"{playlist_id}-{day}",
            "followers": {"total": 1000},
            "owner": {"id": "spotify"},
        }
        page = {"items": items, "offset": 0, "limit": 50, "next": None, "total": len(items)}
        moment = datetime.fromisoformat(day).replace(hour=12, tzinfo=UTC)
        pipeline.land_raw(lake_root, envelope.make_envelope(playlist, [page], moment, SOURCE))
    summary = pipeline.transform(lake_root)
    assert len(summary.transformed) == len(charts)
    assert not summary.quarantined
    return lake_root
