"""What the lake holds, per playlist: ``spotify-etl status`` and the checks made before work.

Each fact comes from the place that records it: the last check from the extract runs'
heartbeats (the newest runs only, ``last_checks``), the last new snapshot and the rows from
the tables (one query), quarantined files and reports from their folders (one listing each).
``landed_days`` answers "which playlists and days have data" from folder names alone, fast
enough to refuse a bad request before any table is opened.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta

from etl_lib.config import SPOTIFY_ID
from etl_lib.errors import ConfigError, CorruptPayload, LakeError
from etl_lib.extract import envelope
from etl_lib.extract.outcome import ExtractStatus
from etl_lib.lake import layout, storage

_PLAYLIST_FOLDER = re.compile(r"playlist_id=([A-Za-z0-9]{1,64})")
_DAY_FOLDER = re.compile(r"dt=(\d{4}-\d{2}-\d{2})")
_QUARANTINE_KEY = re.compile(
    rf"{layout.QUARANTINE}/playlist_id=(?P<playlist_id>[A-Za-z0-9]+)/dt=[\d-]+/[^/]+\.reason\.txt"
)

# Per playlist in the tables: how many snapshots, the newest one and its name, the days
# covered, and the chart rows. One statement, so one planning of the tables.
TABLES_SQL = """
WITH snaps AS (
    SELECT playlist_id,
           count(*) AS snapshots,
           max(extracted_at) AS last_snapshot_at,
           max_by(playlist_name, extracted_at) AS playlist_name,
           min(dt) AS first_day,
           max(dt) AS last_day
    FROM snapshots
    GROUP BY playlist_id
), entries AS (
    SELECT playlist_id, count(*) AS chart_rows
    FROM chart_entries
    GROUP BY playlist_id
)
SELECT s.playlist_id, s.playlist_name, s.snapshots, s.last_snapshot_at, s.first_day,
       s.last_day, coalesce(e.chart_rows, 0) AS chart_rows
FROM snaps AS s
LEFT JOIN entries AS e ON e.playlist_id = s.playlist_id
"""


def landed_days(lake_root: str) -> dict[str, list[str]]:
    """Each playlist in the raw zone and the days it has snapshots for, from folder names
    (one listing of ``raw/`` and one per playlist; no file is opened)."""
    storage.require_root(lake_root)
    days = {}
    for folder in storage.list_folders(lake_root, layout.RAW):
        playlist = _PLAYLIST_FOLDER.fullmatch(folder)
        if playlist is None:
            continue
        found = [
            day[1]
            for name in storage.list_folders(lake_root, f"{layout.RAW}/{folder}")
            if (day := _DAY_FOLDER.fullmatch(name))
        ]
        if found:
            days[playlist[1]] = found
    return days


def landed_name(lake_root: str, playlist_id: str, day: str) -> str | None:
    """The playlist's name in its newest raw snapshot of ``day`` (as Spotify gave it)."""
    prefix = f"{layout.RAW}/playlist_id={layout.check_playlist_id(playlist_id)}/dt={day}/"
    keys = [
        key for key in storage.list_keys(lake_root, prefix, ".json") if layout.parse_raw_key(key)
    ]
    if not keys:
        return None
    try:
        payload = json.loads(storage.read_bytes(lake_root, keys[-1]))
    except (ValueError, LakeError, CorruptPayload):
        return None  # unreadable: the transform quarantines it; a name is only a courtesy
    name = payload.get("playlist", {}).get("name") if isinstance(payload, dict) else None
    return name if isinstance(name, str) else None


def playlists_with_data(lake_root: str, landed: dict[str, list[str]] | None = None) -> str:
    """``id "name" (first to last)`` for every playlist in the raw zone, for messages."""
    landed = landed_days(lake_root) if landed is None else landed
    described = []
    for playlist_id, days in sorted(landed.items()):
        name = landed_name(lake_root, playlist_id, days[-1])
        shown = f' "{shortened(name, 40)}"' if name else ""
        described.append(f"{playlist_id}{shown} ({days[0]} to {days[-1]})")
    return "; ".join(described) if described else "none"


def check_landed(
    lake_root: str,
    playlist_id: str,
    as_of: str | None,
    days: int = 1,
    *,
    landed: dict[str, list[str]] | None = None,
) -> None:
    """ConfigError in one line unless the raw zone holds the playlist (and ``as_of``, when
    given): the first of a report's checks, made from folder names before any table opens.
    ``landed`` is ``landed_days`` of the lake when the caller checks several playlists: its
    listings (one per playlist in the lake) are made once."""
    landed = landed_days(lake_root) if landed is None else landed
    if layout.check_playlist_id(playlist_id) not in landed:
        raise ConfigError(
            f"no chart data for playlist {playlist_id} in lake {storage.url(lake_root)}; playlists "
            f"with data: {playlists_with_data(lake_root, landed)}"
        )
    check_chart_day(playlist_id, as_of, landed[playlist_id], days)


def check_chart_day(
    playlist_id: str, as_of: str | None, chart_days: list[str], days: int = 1
) -> str:
    """``as_of`` (default: the last of ``chart_days``) when the playlist has a chart in the
    ``days`` days ending that day; else a ConfigError naming the days that would work.

    A day the extraction missed is a good ``as_of`` as long as the window holds a chart: the
    report shows the window's last chart day, as it would after a missed morning run.
    """
    first, last = chart_days[0], chart_days[-1]
    if as_of is None:
        return last
    if not first <= as_of <= last:
        raise ConfigError(
            f"no chart of playlist {playlist_id} on {as_of}: its charts run from {first} to "
            f"{last}; pass an --as-of in that range"
        )
    window_start = (date.fromisoformat(as_of) - timedelta(days=max(int(days), 1) - 1)).isoformat()
    if any(window_start <= day <= as_of for day in chart_days):
        return as_of
    before = max(day for day in chart_days if day < as_of)
    after = min(day for day in chart_days if day > as_of)
    raise ConfigError(
        f"no chart of playlist {playlist_id} from {window_start} to {as_of}: its charts run "
        f"from {first} to {last} but skip those days; the nearest are {before} and {after} "
        "(pass one as --as-of, or more --days)"
    )


def shortened(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


@dataclass
class Check:
    at: str  # ISO-8601 UTC
    status: ExtractStatus | None  # None: a heartbeat without a status this version knows
    error: str | None = None


@dataclass
class Quarantine:
    files: int = 0
    location: str | None = None


@dataclass
class LastReport:
    date: str
    outcome: str  # ok or failed
    path: str
    failed_runs: int = 0


@dataclass
class PlaylistStatus:
    """One playlist as ``spotify-etl status`` shows it; None where nothing is recorded."""

    playlist_id: str
    playlist_name: str | None = None
    last_check: Check | None = None
    last_new_snapshot: str | None = None
    freshness_seconds: int | None = None
    freshness: str | None = None
    first_day: str | None = None
    last_day: str | None = None
    snapshots: int = 0
    chart_rows: int = 0
    quarantined: Quarantine = field(default_factory=Quarantine)
    last_report: LastReport | None = None


@dataclass
class LakeStatus:
    lake: str
    generated_at: str  # ISO-8601 UTC
    playlists: list[PlaylistStatus]
    unreadable: list[str] = field(default_factory=list)  # files skipped: "<url>: <why>"

    def as_dict(self) -> dict:
        return asdict(self)


def human_age(seconds: float) -> str:
    """A duration the way people say it: ``40 s``, ``12 min``, ``3 h``, ``32 d``."""
    seconds = max(0, int(seconds))
    if seconds < 90:
        return f"{seconds} s"
    if seconds < 90 * 60:
        return f"{round(seconds / 60)} min"
    if seconds < 48 * 3600:
        return f"{round(seconds / 3600)} h"
    return f"{round(seconds / 86400)} d"


def lake_status(
    lake_root: str, playlist_ids: list[str] | None = None, *, now: datetime | None = None
) -> LakeStatus:
    """Every playlist the lake knows of (or only ``playlist_ids``), newest name first known."""
    from etl_lib.transform import iceberg  # the tables: once the lake is known to exist
    from etl_lib.warehouse import execute

    storage.require_root(lake_root)
    now = layout.as_utc(now) if now is not None else layout.now_utc()
    found: dict[str, PlaylistStatus] = {}

    def entry(playlist_id: str) -> PlaylistStatus:
        return found.setdefault(playlist_id, PlaylistStatus(playlist_id))

    tables = execute.query(lake_root, TABLES_SQL) if iceberg.has_catalog(lake_root) else None
    for row in [] if tables is None else tables.itertuples(index=False):
        status = entry(row.playlist_id)
        status.playlist_name = row.playlist_name if isinstance(row.playlist_name, str) else None
        newest = row.last_snapshot_at.to_pydatetime()
        status.last_new_snapshot = envelope.format_utc(newest)
        status.freshness_seconds = int((now - newest).total_seconds())
        status.freshness = human_age(status.freshness_seconds)
        status.first_day, status.last_day = str(row.first_day), str(row.last_day)
        status.snapshots, status.chart_rows = int(row.snapshots), int(row.chart_rows)
    _add_quarantine(lake_root, entry)
    _add_reports(lake_root, entry)
    # Last: the heartbeats are read until every playlist known by then has its last check.
    wanted = set(playlist_ids) if playlist_ids else set(found)
    checks, unreadable = last_checks(lake_root, wanted)
    for playlist_id, check in checks.items():
        entry(playlist_id).last_check = check
    # After the checks: a lake without tables yet shows the playlists its last run checked.
    wanted_order = list(dict.fromkeys(playlist_ids)) if playlist_ids else sorted(found)
    return LakeStatus(
        lake=storage.url(lake_root),
        generated_at=envelope.format_utc(now),
        playlists=[
            found.get(playlist_id) or PlaylistStatus(playlist_id) for playlist_id in wanted_order
        ],
        unreadable=unreadable,
    )


def last_checks(lake_root: str, wanted: set[str]) -> tuple[dict[str, Check], list[str]]:
    """Each playlist's last check, and the heartbeat files that could not be read (each as
    ``<url>: <why>``; the checks they held are looked for in older ones).

    An extract run leaves one heartbeat holding every playlist it checked; the last check of
    a playlist is the one of the newest run (by start) that checked it. Runs are read newest
    first, day folder by day folder, and only one per set of playlists (a newer run of the
    same set checked each of them later), until each of ``wanted`` is found (after at least
    one run, so that a lake without tables yet still shows its last run's playlists): when
    the last run checked them all, that is one listing of the heartbeats, one of the last
    day and one read. The one-per-playlist heartbeats of earlier versions are consulted per
    playlist (its newest day, then that day's newest check); the newer of the two wins.
    """
    folders = storage.list_folders(lake_root, layout.HEARTBEATS)
    days = _days_newest_first(folders)
    checks: dict[str, Check] = {}
    unreadable: list[str] = []
    sets_read: set[str] = set()

    def done() -> bool:
        return bool(checks) and wanted <= checks.keys()

    for day in days:
        if done():
            break
        keys = storage.list_keys(lake_root, f"{layout.HEARTBEATS}/dt={day}/", ".json")
        for key in sorted(keys, reverse=True):
            parts = layout.parse_heartbeat_key(key)
            if parts is None or parts["playlists"] in sets_read:
                continue
            try:
                run = run_checks(storage.read_bytes(lake_root, key), parts["stamp"])
            except (ValueError, RecursionError, LakeError) as exc:  # deep nesting: recursion
                unreadable.append(f"{storage.url(lake_root, key)}: {_reason(exc)}")
                continue
            sets_read.add(parts["playlists"])
            for playlist_id, check in run.items():
                checks.setdefault(playlist_id, check)
            if done():
                break
    for name in folders:
        if (playlist := _PLAYLIST_FOLDER.fullmatch(name)) is None:
            continue
        if wanted and playlist[1] not in wanted:  # not shown: not worth its listing
            continue
        newer = checks.get(playlist[1])
        earlier = _earlier_check(lake_root, playlist[1], newer.at if newer else None, unreadable)
        if earlier is not None:
            checks[playlist[1]] = earlier
    return checks, unreadable


def run_checks(data: bytes, stamp: str) -> dict[str, Check]:
    """Playlist id -> its check, from the bytes of a run's heartbeat whose key has ``stamp``
    (the time of a check whose own time is unreadable). ValueError saying what is wrong
    when the file is not a heartbeat."""
    heartbeat = json.loads(data)
    records = heartbeat.get("checks") if isinstance(heartbeat, dict) else None
    if not isinstance(records, list):
        raise ValueError("not a run's heartbeat: no list of checks")
    checks: dict[str, Check] = {}
    for number, record in enumerate(records):
        playlist_id = record.get("playlist_id") if isinstance(record, dict) else None
        if not isinstance(playlist_id, str) or not SPOTIFY_ID.fullmatch(playlist_id):
            raise ValueError(f"check {number + 1} names no playlist (a Spotify id)")
        try:
            at = envelope.format_utc(envelope.parse_utc(record.get("checked_at")))
        except ValueError:
            at = layout.stamp_as_utc(stamp)
        checks[playlist_id] = _check(at, record)  # a playlist checked twice: the later check
    return checks


def _check(at: str, heartbeat: object) -> Check:
    heartbeat = heartbeat if isinstance(heartbeat, dict) else {}
    status, error = heartbeat.get("status"), heartbeat.get("error")
    return Check(at, ExtractStatus.read(status), error if isinstance(error, str) else None)


def _earlier_check(
    lake_root: str, playlist_id: str, newer_than: str | None, unreadable: list[str]
) -> Check | None:
    """The playlist's last check in the heartbeats of earlier versions, when it is later
    than ``newer_than`` (ISO-8601 UTC; None: any)."""
    prefix = f"{layout.HEARTBEATS}/playlist_id={playlist_id}"
    folders = storage.list_folders(lake_root, prefix)
    days = _days_newest_first(folders)
    for day in days:
        if newer_than is not None and day < newer_than[:10]:
            return None
        keys = [
            key
            for key in storage.list_keys(lake_root, f"{prefix}/dt={day}/", ".json")
            if layout.parse_playlist_heartbeat_key(key)
        ]
        if not keys:
            continue
        at = layout.stamp_as_utc(layout.parse_playlist_heartbeat_key(keys[-1])["stamp"])
        if newer_than is not None and at <= newer_than:
            return None
        try:
            heartbeat = json.loads(storage.read_bytes(lake_root, keys[-1]))
        except (ValueError, RecursionError, LakeError) as exc:
            # Its key still says when the check was: shown as a check of unknown outcome.
            unreadable.append(f"{storage.url(lake_root, keys[-1])}: {_reason(exc)}")
            heartbeat = {}
        return _check(at, heartbeat)
    return None


def _days_newest_first(folders: list[str]) -> list[str]:
    return sorted(
        (day[1] for name in folders if (day := _DAY_FOLDER.fullmatch(name))), reverse=True
    )


def _reason(exc: BaseException) -> str:
    return " ".join(str(exc).split())[:300] or type(exc).__name__


def _add_quarantine(lake_root: str, entry) -> None:
    for key in storage.list_keys(lake_root, f"{layout.QUARANTINE}/", ".reason.txt"):
        match = _QUARANTINE_KEY.fullmatch(key)
        if match is None:
            continue
        quarantine = entry(match["playlist_id"]).quarantined
        quarantine.files += 1
        quarantine.location = storage.url(
            lake_root, f"{layout.QUARANTINE}/playlist_id={match['playlist_id']}/"
        )


def _add_reports(lake_root: str, entry) -> None:
    from etl_lib.reporting import reports

    latest: dict[str, reports.IndexEntry] = {}
    for report in reports.index_entries(list(storage.list_keys(lake_root, reports.REPORTS))):
        if report.playlist_id is not None:  # None: a comparison of charts, no playlist's
            latest.setdefault(report.playlist_id, report)  # newest date first
    for playlist_id, report in latest.items():
        prefix = f"{reports.REPORTS}/{report.folder}/{report.as_of}"
        if report.has_report:
            outcome, key = "ok", f"{prefix}/report.html"
        else:
            outcome, key = "failed", f"{prefix}/failed/{report.failed_stamps[-1]}/status.json"
        entry(playlist_id).last_report = LastReport(
            report.as_of, outcome, storage.url(lake_root, key), len(report.failed_stamps)
        )


# ---------------------------------------------------------------------------------------------
# Shown to people


def _when(iso: str | None) -> str:
    return "-" if iso is None else iso.replace("T", " ").removesuffix("Z")[:16]


def _words(check: Check) -> str:
    return "(status unknown)" if check.status is None else check.status.words


def table_rows(status: LakeStatus) -> list[dict[str, str]]:
    """One row of text per playlist, as the terminal table shows them."""
    rows = []
    for playlist in status.playlists:
        check, report = playlist.last_check, playlist.last_report
        snapshot = _when(playlist.last_new_snapshot)
        if playlist.freshness is not None:
            snapshot += f", {playlist.freshness} ago"
        rows.append(
            {
                "playlist": shortened(playlist.playlist_name or "(no name yet)", 32),
                "id": playlist.playlist_id,
                "last check": "never" if check is None else f"{_when(check.at)} {_words(check)}",
                "last new snapshot": snapshot,
                "chart rows": f"{playlist.chart_rows:,}",
                "quarantined": str(playlist.quarantined.files),
                "last report": "-" if report is None else f"{report.date} {report.outcome}",
            }
        )
    return rows


def table_text(rows: list[dict[str, str]], escape: Callable[[str], str] = str) -> str:
    """``rows`` as aligned columns (wide characters count double), each cell through
    ``escape`` first so that escaped names keep the columns straight."""
    if not rows:
        return ""
    headers = list(rows[0])
    cells = [headers] + [[escape(row[header]) for header in headers] for row in rows]
    widths = [max(_display_width(line[column]) for line in cells) for column in range(len(headers))]
    return "\n".join(
        "  ".join(
            cell + " " * (width - _display_width(cell))
            for cell, width in zip(line, widths, strict=True)
        ).rstrip()
        for line in cells
    )


def _display_width(text: str) -> int:
    return sum(
        0
        if unicodedata.combining(char)
        else 2
        if unicodedata.east_asian_width(char) in ("W", "F")
        else 1
        for char in text
    )


def where_lines(status: LakeStatus) -> list[str]:
    """Where the quarantined files, the last reports and failed checks are, and which
    heartbeats could not be read."""
    lines = []
    for playlist in status.playlists:
        if playlist.quarantined.files:
            count = playlist.quarantined.files
            lines.append(
                f"{playlist.playlist_id}: {count} quarantined raw file{'s' * (count != 1)} in "
                f"{playlist.quarantined.location} (each beside a .reason.txt)"
            )
        if playlist.last_check and playlist.last_check.error:
            lines.append(
                f"{playlist.playlist_id}: the last check failed: {playlist.last_check.error}"
            )
        if playlist.last_report is not None:
            lines.append(f"{playlist.playlist_id}: last report {playlist.last_report.path}")
    lines += [f"skipped an unreadable heartbeat: {skipped}" for skipped in status.unreadable]
    return lines
