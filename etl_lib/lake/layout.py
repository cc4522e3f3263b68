"""Where things live in the lake: the keys of raw snapshots, heartbeats and quarantine.

Pure naming, no I/O. A key is a ``/``-separated path relative to the lake root and never
depends on the OS separator, so the same key works on a local folder and on object storage.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable
from datetime import UTC, datetime

from etl_lib.config import SPOTIFY_ID
from etl_lib.errors import ConfigError

RAW = "raw"
QUARANTINE = "quarantine"
STATE = "_state"
HEARTBEATS = "heartbeats"

_RAW_KEY = re.compile(
    r"raw/playlist_id=(?P<playlist_id>[A-Za-z0-9]+)/dt=(?P<dt>\d{4}-\d{2}-\d{2})/"
    r"(?P<stamp>\d{8}T\d{6}Z)\.json"
)
# One object per extract run: the time its first check began and which playlists it holds.
_HEARTBEAT_KEY = re.compile(
    rf"{HEARTBEATS}/dt=(?P<dt>\d{{4}}-\d{{2}}-\d{{2}})/"
    r"(?P<stamp>\d{8}T\d{6}Z)-(?P<playlists>[0-9a-f]{12})\.json"
)
# Written by earlier versions: one object per playlist and check. Read, never written.
_PLAYLIST_HEARTBEAT_KEY = re.compile(
    rf"{HEARTBEATS}/playlist_id=(?P<playlist_id>[A-Za-z0-9]+)/dt=(?P<dt>\d{{4}}-\d{{2}}-\d{{2}})/"
    r"(?P<stamp>\d{8}T\d{6}Z)\.json"
)


def check_playlist_id(playlist_id: str) -> str:
    # fullmatch: "$" would also accept a trailing newline, which then ends up in folder names.
    if not isinstance(playlist_id, str) or not SPOTIFY_ID.fullmatch(playlist_id):
        raise ConfigError(
            f"playlist id {playlist_id!r} is not a Spotify ID: use the 22-character base62 id "
            "from the playlist's URL (open.spotify.com/playlist/<id>)"
        )
    return playlist_id


# Built from the fields, not with strftime: "%Y" does not pad years before 1000 on every
# platform, and keys must sort and parse alike whatever the year.
def utc_stamp(moment: datetime) -> str:
    m = as_utc(moment)
    return f"{m.year:04d}{m.month:02d}{m.day:02d}T{m.hour:02d}{m.minute:02d}{m.second:02d}Z"


def as_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment!r}: every time in the lake is UTC-aware")
    return moment.astimezone(UTC)


def partition_date(moment: datetime) -> str:
    m = as_utc(moment)
    return f"{m.year:04d}-{m.month:02d}-{m.day:02d}"


def raw_key(playlist_id: str, extracted_at: datetime) -> str:
    """The raw key of a snapshot; it always reads back with ``parse_raw_key``."""
    check_playlist_id(playlist_id)
    key = (
        f"{RAW}/playlist_id={playlist_id}/dt={partition_date(extracted_at)}/"
        f"{utc_stamp(extracted_at)}.json"
    )
    if parse_raw_key(key) is None:
        raise ValueError(f"{key!r} would not read back as a raw key")
    return key


def parse_raw_key(key: str) -> dict[str, str] | None:
    """The playlist id, dt and stamp of a raw key, or None when the key is not one."""
    match = _RAW_KEY.fullmatch(key)
    return match.groupdict() if match else None


def newest_day_by_playlist(
    raw_keys: Iterable[str], *, captured_since: datetime | None = None
) -> dict[str, str]:
    """Playlist id -> the day of its newest raw key, in the order the playlists first appear;
    other keys are left out. Of the keys a load took in, the reports to refresh, each as of
    that day. With ``captured_since``, only the playlists whose newest key was captured then
    or later: a load of history (a backfill) asks for no report."""
    newest: dict[str, dict[str, str]] = {}
    for key in raw_keys:
        parts = parse_raw_key(key)
        if parts is None:
            continue
        known = newest.get(parts["playlist_id"])
        if known is None or parts["stamp"] > known["stamp"]:  # stamps sort as times do
            newest[parts["playlist_id"]] = parts
    since = utc_stamp(captured_since) if captured_since is not None else ""
    return {pid: parts["dt"] for pid, parts in newest.items() if parts["stamp"] >= since}


def heartbeat_key(started_at: datetime, playlist_ids: Iterable[str]) -> str:
    """The key of an extract run's heartbeat, which holds the checks of ``playlist_ids``:
    ``heartbeats/dt=<day>/<stamp>-<playlists>.json``, in the day and at the time the run
    started, so keys sort as runs began. ``<playlists>`` names the set of playlists the
    object holds (``playlist_set_id``): runs with the same playlists share it, so a reader
    looking for each playlist's last check reads one object per set, the newest."""
    key = (
        f"{HEARTBEATS}/dt={partition_date(started_at)}/"
        f"{utc_stamp(started_at)}-{playlist_set_id(playlist_ids)}.json"
    )
    if parse_heartbeat_key(key) is None:
        raise ValueError(f"{key!r} would not read back as a heartbeat key")
    return key


def playlist_set_id(playlist_ids: Iterable[str]) -> str:
    """12 hex digits naming a set of playlists: equal for the same ids in any order or
    count, and (bar a 48-bit hash collision) only for those."""
    ids = sorted({check_playlist_id(playlist_id) for playlist_id in playlist_ids})
    return hashlib.sha256(",".join(ids).encode("ascii")).hexdigest()[:12]


def parse_heartbeat_key(key: str) -> dict[str, str] | None:
    """The dt, stamp and playlist set of a run's heartbeat key, or None when it is not one."""
    match = _HEARTBEAT_KEY.fullmatch(key)
    return match.groupdict() if match else None


def parse_playlist_heartbeat_key(key: str) -> dict[str, str] | None:
    """The playlist id, dt and stamp of a heartbeat key of earlier versions (one object per
    playlist and check: ``heartbeats/playlist_id=<id>/dt=<day>/<stamp>.json``), or None."""
    match = _PLAYLIST_HEARTBEAT_KEY.fullmatch(key)
    return match.groupdict() if match else None


def stamp_as_utc(stamp: str) -> str:
    """A key's stamp (``20261001T060000Z``) as ISO-8601 UTC (``2026-10-01T06:00:00Z``)."""
    return f"{stamp[:4]}-{stamp[4:6]}-{stamp[6:8]}T{stamp[9:11]}:{stamp[11:13]}:{stamp[13:15]}Z"


def last_snapshot_key(playlist_id: str) -> str:
    return f"{STATE}/last_snapshot/playlist_id={check_playlist_id(playlist_id)}.json"


def archive_history_key(playlist_id: str) -> str:
    """The record of the archive versions of a playlist the lake holds or refused (sha -> raw
    key or reason), which makes ``backfill --archive-history`` resumable and idempotent."""
    return f"{STATE}/archive_history/playlist_id={check_playlist_id(playlist_id)}.json"


def quarantine_key(raw: str) -> str:
    return f"{QUARANTINE}/{raw.removeprefix(RAW + '/')}"


def quarantine_reason_key(raw: str) -> str:
    return quarantine_key(raw).removesuffix(".json") + ".reason.txt"


def now_utc() -> datetime:
    return datetime.now(UTC)
