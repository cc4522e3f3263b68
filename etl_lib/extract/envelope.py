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
A source that keeps its own document (the public archive) stores it beside empty ``pages``.
``build`` makes every envelope, whichever the source.

What a payload may be is bounded (``PayloadLimitExceeded`` names the limit): JSON nested no
deeper than Python's parser goes (about 1,000 levels; deeper raises RecursionError),
integers of at most ``MAX_INTEGER_DIGITS`` digits, text that is valid Unicode (no lone
surrogates), at most ``MAX_ITEMS`` entries per snapshot, and an ``extracted_at`` between
``EARLIEST`` and ``LATEST``.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from typing import Any

from etl_lib.errors import ConfigError, CorruptPayload, PayloadLimitExceeded

ENVELOPE_VERSION = 1
# The source.kind of a payload captured elsewhere and imported (``envelope_from_capture``).
IMPORT_KIND = "import"
_PLAYLIST_IN_HREF = re.compile(r"/playlists/(?P<id>[A-Za-z0-9]+)(?:/|\?|$)")

# Python's own limit for turning digits into an int (and msgspec's): past it json.loads fails.
MAX_INTEGER_DIGITS = 4300
# Spotify caps a playlist at 10,000 items; twice that leaves room for a capture that saw
# items move while paging, and still refuses a payload that is not a playlist snapshot.
MAX_ITEMS = 20_000
EARLIEST = datetime(1900, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 12, 31, 23, 59, 59, tzinfo=UTC)
TIME_RANGE = "1900-01-01..2100-12-31 (UTC)"
# Text arrives as UTF-8 (checked strictly), so a lone surrogate can only come from an escape.
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


def format_utc(moment: datetime) -> str:
    m = moment.astimezone(UTC)
    # Field by field: strftime's %Y does not pad years before 1000 everywhere.
    return (
        f"{m.year:04d}-{m.month:02d}-{m.day:02d}T{m.hour:02d}:{m.minute:02d}:{m.second:02d}Z"
    )


def parse_utc(text: str) -> datetime:
    """An ISO-8601 time with a UTC offset, within ``EARLIEST``..``LATEST``, as UTC.

    Raises ValueError saying what is wrong (not a string, no offset, out of range).
    """
    if not isinstance(text, str):
        raise ValueError(f"{shown(text)} is not an ISO-8601 time string")
    try:
        moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{shown(text)} is not an ISO-8601 time") from None
    if moment.tzinfo is None:
        raise ValueError(f"timestamp {shown(text)} has no UTC offset")
    return in_time_range(moment)


class TimeOutOfRange(ValueError):
    """A time outside ``EARLIEST``..``LATEST``."""


def in_time_range(moment: datetime) -> datetime:
    """``moment`` as UTC, or ValueError when it lies outside ``EARLIEST``..``LATEST``."""
    try:
        utc = moment.astimezone(UTC)
    except OverflowError:  # year 1 or 9999 shifted by its offset past datetime's range
        utc = None
    if utc is None or not EARLIEST <= utc <= LATEST:
        raise TimeOutOfRange(f"{moment.isoformat()} is outside {TIME_RANGE}")
    return utc


def shown(value: Any, limit: int = 80) -> str:
    """A value as it goes into a one-line message: repr'd (escapes included), shortened."""
    text = repr(value)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} characters)"


_PLAYLIST_KEYS = ("id", "name", "snapshot_id", "followers", "owner_id")


def playlist_metadata(playlist: dict[str, Any]) -> dict[str, Any]:
    """What an envelope keeps of a Spotify playlist object."""
    followers = playlist.get("followers")
    owner = playlist.get("owner") or {}
    return {
        "id": playlist.get("id"),
        "name": playlist.get("name"),
        "snapshot_id": playlist.get("snapshot_id"),
        "followers": followers.get("total") if isinstance(followers, dict) else None,
        "owner_id": owner.get("id"),
    }


def build(
    source: dict[str, Any],
    playlist: dict[str, Any],
    extracted_at: datetime,
    pages: list[Any] | None = None,
    **documents: Any,
) -> dict[str, Any]:
    """The one place an envelope is made, by every source and import.

    ``source`` says where the snapshot came from (its ``kind`` picks the source that reads
    it back, ``etl_lib.extract.sources``); ``playlist`` is the playlist's metadata (``id``,
    ``name``, ``snapshot_id``, ``followers``, ``owner_id``); ``pages`` the API's pages as
    they came. A source that keeps its own document instead passes no pages and names the
    document's key, e.g. ``archive=<document>``. The keys keep one order, so an envelope
    built again from the same capture has the same bytes (landing compares bytes).
    """
    if extracted_at.tzinfo is None:
        raise ConfigError(
            f"extracted_at {extracted_at.isoformat()} has no UTC offset: give a UTC time "
            "such as 2026-11-25T08:00:00Z"
        )
    metadata = {key: playlist.get(key) for key in _PLAYLIST_KEYS}
    return {
        "envelope_version": ENVELOPE_VERSION,
        "extracted_at": format_utc(extracted_at),
        "source": source,
        "playlist": metadata,
        "pages": [] if pages is None else pages,
        **documents,
    }


def make_envelope(
    playlist: dict[str, Any],
    pages: list[dict[str, Any]],
    extracted_at: datetime,
    source: dict[str, Any],
) -> dict[str, Any]:
    """The envelope of Spotify API responses: a playlist object and its items' pages."""
    return build(source, playlist_metadata(playlist), extracted_at, pages)


def api_pages(envelope: dict[str, Any], raw_key: str) -> list[Any]:
    """An envelope's entries as the API gave them: its ``pages``, unchanged (no I/O)."""
    pages = envelope.get("pages")
    if not isinstance(pages, list):
        raise CorruptPayload(f"{raw_key}: 'pages' is missing or not a list")
    return pages


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
    source = {"kind": IMPORT_KIND, "file": source_name}
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
    """A payload's JSON, within the limits above; ``CorruptPayload`` saying why not."""
    try:
        text = data.decode("utf-8-sig")  # strict: UTF-8-encoded surrogates are refused too
    except UnicodeDecodeError as exc:
        raise CorruptPayload(
            f"{name}: not valid JSON (not UTF-8 text: {exc.reason} at byte {exc.start})"
        ) from exc
    try:
        value = json.loads(text)
    except RecursionError:
        raise PayloadLimitExceeded(
            f"{name}: JSON nested deeper than the parser goes (RecursionError)"
        ) from None
    except json.JSONDecodeError as exc:
        raise CorruptPayload(f"{name}: not valid JSON ({exc})") from exc
    except ValueError as exc:  # int() of more digits than Python converts
        raise PayloadLimitExceeded(
            f"{name}: a number longer than {MAX_INTEGER_DIGITS:,} digits"
        ) from exc
    # Only a \ud800-style escape can put a lone surrogate in the text: walk the value then.
    if _SURROGATE_ESCAPE.search(text):
        _check_texts(value, name)
    return value


def _check_texts(value: Any, name: str) -> None:
    stack = [value]
    while stack:
        node = stack.pop()
        if isinstance(node, str):
            _check_text(node, name)
        elif isinstance(node, dict):
            stack.extend(node)
            stack.extend(node.values())
        elif isinstance(node, list):
            stack.extend(node)


def _check_text(text: str, name: str) -> None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise PayloadLimitExceeded(
            f"{name}: text that is not valid Unicode (a lone surrogate "
            f"{shown(exc.object[exc.start : exc.end])} in {shown(text, 60)})"
        ) from None


def dumps(envelope: dict[str, Any]) -> bytes:
    try:
        return json.dumps(envelope, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    except UnicodeEncodeError:
        # A lone surrogate (from an API response's JSON escape) has no UTF-8 form: keep the
        # payload as it came, with escapes, and let the transform quarantine it with why.
        return json.dumps(envelope, separators=(",", ":")).encode("ascii")
