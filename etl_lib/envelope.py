"""The raw-zone envelope: Spotify's responses, unchanged, plus where and when they came from.

An envelope is a JSON object::

    {
      "envelope_version": 1,
      "extracted_at": "2026-11-25T08:00:00Z",          # UTC, second precision
      "source": {"kind": "spotify-web-api", "api_base_url": "...", "endpoint": "..."},
      "playlist": {"id": "...", "name": "...", "snapshot_id": "...", "followers": 123,
                   "owner_id": "..."},
      "pages": [<paging object>, ...]                   # as the API returned them
    }

Captured payloads (a bare paging object such as the recorded API responses, or a full
playlist object with its first page embedded) are wrapped into the same shape on import.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from etl_lib.errors import CorruptPayload

ENVELOPE_VERSION = 1
_PLAYLIST_IN_HREF = re.compile(r"/playlists/(?P<id>[A-Za-z0-9]+)(?:/|\?|$)")


def format_utc(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(microsecond=0).strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_utc(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        raise ValueError(f"timestamp {text!r} has no UTC offset")
    return moment.astimezone(UTC)


def playlist_metadata(playlist: dict[str, Any]) -> dict[str, Any]:
    followers = playlist.get("followers")
    owner = playlist.get("owner") or {}
    return {
        "id": playlist.get("id"),
        "name": playlist.get("name"),
        "snapshot_id": playlist.get("snapshot_id"),
        "followers": followers.get("total") if isinstance(followers, dict) else None,
        "owner_id": owner.get("id"),
    }


def make_envelope(
    playlist: dict[str, Any],
    pages: list[dict[str, Any]],
    extracted_at: datetime,
    source: dict[str, Any],
) -> dict[str, Any]:
    return {
        "envelope_version": ENVELOPE_VERSION,
        "extracted_at": format_utc(extracted_at),
        "source": source,
        "playlist": playlist_metadata(playlist),
        "pages": pages,
    }


def is_envelope(payload: Any) -> bool:
    return isinstance(payload, dict) and "envelope_version" in payload and "pages" in payload


def _is_paging_object(payload: Any) -> bool:
    return isinstance(payload, dict) and isinstance(payload.get("items"), list)


def envelope_from_capture(
    payload: Any,
    *,
    extracted_at: datetime,
    source_name: str,
    playlist_id: str | None = None,
) -> dict[str, Any]:
    """Wrap a payload captured elsewhere; an envelope passes through unchanged.

    Accepts a paging object of playlist entries (``{"items": [...], "href": ...}``) or a
    playlist object whose ``items``/``tracks`` field holds the first page.
    """
    if is_envelope(payload):
        return payload
    source = {"kind": "import", "file": source_name}
    if isinstance(payload, dict) and payload.get("type") == "playlist":
        first_page = payload.get("items") or payload.get("tracks")
        if not _is_paging_object(first_page):
            raise CorruptPayload(
                f"{source_name}: playlist object without an items page; export it with its items"
            )
        return make_envelope(payload, [first_page], extracted_at, source)
    if _is_paging_object(payload):
        found = _PLAYLIST_IN_HREF.search(str(payload.get("href") or ""))
        resolved_id = playlist_id or (found.group("id") if found else None)
        if not resolved_id:
            raise CorruptPayload(
                f"{source_name}: a paging object whose href names no playlist; "
                "pass --playlist-id to say which playlist it is"
            )
        return make_envelope({"id": resolved_id}, [payload], extracted_at, source)
    raise CorruptPayload(
        f"{source_name}: not a Spotify playlist payload (expected an envelope, a paging object "
        "with 'items', or a playlist object)"
    )


def loads(data: bytes, name: str) -> Any:
    try:
        return json.loads(data)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise CorruptPayload(f"{name}: not valid JSON ({exc})") from exc


def dumps(envelope: dict[str, Any]) -> bytes:
    return json.dumps(envelope, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
