"""The flow, end to end: extract -> raw zone -> transform -> tables -> catalog.

Functions here do the I/O around the pure pieces (``spotify``, ``transform``) and are what
the CLI, the notebooks and the Lambda handlers call.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from etl_lib import envelope, lake, schemas, spotify
from etl_lib.config import Settings
from etl_lib.errors import ConfigError, CorruptPayload
from etl_lib.transform import TransformResult, transform_envelope

Progress = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


@dataclass(frozen=True)
class Landed:
    """A payload in the raw zone: its key, and whether this call wrote it."""

    playlist_id: str
    raw_key: str
    written: bool
    items: int


def land_raw(lake_root: str, payload: dict, *, keep_colliding: bool = False) -> Landed:
    """Write an envelope to its immutable raw key, derived from playlist id and extracted_at.

    An existing object at that key is never overwritten. Identical bytes are a no-op. A
    different payload on the same key is either a re-run of the same extraction instant
    (``keep_colliding``: the snapshot is already there, keep it) or a different capture (move
    to the next free second, so nothing is lost).
    """
    playlist_id = lake.check_playlist_id(str(payload["playlist"].get("id") or ""))
    extracted_at = envelope.parse_utc(payload["extracted_at"])
    items = sum(len(page.get("items") or []) for page in payload["pages"])
    while True:
        data = envelope.dumps(payload)
        key = lake.raw_key(playlist_id, extracted_at)
        if not lake.exists(lake_root, key):
            lake.write_bytes(lake_root, key, data)
            return Landed(playlist_id, key, True, items)
        if keep_colliding or lake.read_bytes(lake_root, key) == data:
            return Landed(playlist_id, key, False, items)
        extracted_at += timedelta(seconds=1)
        payload = {**payload, "extracted_at": envelope.format_utc(extracted_at)}


def extract(
    settings: Settings,
    playlist_ids: Iterable[str] | None = None,
    *,
    clock: Callable[[], datetime] = lake.now_utc,
    client=None,
    progress: Progress = _quiet,
) -> list[Landed]:
    """Extract each playlist into the raw zone of ``settings.lake``."""
    lake.ensure_root(settings.lake)
    ids = [lake.check_playlist_id(p) for p in (playlist_ids or settings.playlists)]
    client = client or spotify.make_client(settings)
    landed = []
    for playlist_id in ids:
        payload = spotify.extract_playlist(client, settings, playlist_id, clock())
        result = land_raw(settings.lake, payload, keep_colliding=True)
        progress(f"extracted {playlist_id}: {result.items} items -> {result.raw_key}")
        landed.append(result)
    return landed


def import_payloads(
    lake_root: str,
    path: str,
    *,
    playlist_id: str | None = None,
    extracted_at: datetime | None = None,
    progress: Progress = _quiet,
) -> list[Landed]:
    """Land payloads captured elsewhere (a file, or every file in a folder) in the raw zone.

    Bare Spotify responses are wrapped in an envelope; their extraction time is
    ``extracted_at`` when given, else the file's modification time (UTC).
    """
    source = Path(path)
    if source.is_dir():
        files = sorted(p for p in source.iterdir() if p.is_file() and not p.name.startswith("."))
    elif source.is_file():
        files = [source]
    else:
        raise ConfigError(f"--input {path!r} does not exist: pass a payload file or a folder")
    if playlist_id:
        lake.check_playlist_id(playlist_id)
    lake.ensure_root(lake_root)
    landed = []
    for file in files:
        captured_at = extracted_at or datetime.fromtimestamp(file.stat().st_mtime, UTC)
        payload = envelope.envelope_from_capture(
            envelope.loads(file.read_bytes(), str(file)),
            extracted_at=captured_at,
            source_name=file.name,
            playlist_id=playlist_id,
        )
        result = land_raw(lake_root, payload)
        progress(f"imported {file} -> {result.raw_key}")
        landed.append(result)
    return landed


@dataclass
class TransformSummary:
    transformed: list[str] = field(default_factory=list)
    quarantined: dict[str, str] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=lambda: dict.fromkeys(schemas.TABLES, 0))
    skipped: dict[str, int] = field(
        default_factory=lambda: {"skipped_episodes": 0, "skipped_local": 0, "skipped_null": 0}
    )

    def add(self, raw_key: str, result: TransformResult) -> None:
        self.transformed.append(raw_key)
        for table, data in result.tables.items():
            self.rows[table] += data.num_rows
        for name in self.skipped:
            self.skipped[name] += result.counts.get(name, 0)


def pending_raw_keys(lake_root: str) -> list[str]:
    """Raw files with no output yet and not quarantined, oldest first."""
    done = set(lake.list_keys(lake_root, f"{lake.TABLES}/{schemas.COMMIT_TABLE}/", ".parquet"))
    quarantined = set(lake.list_keys(lake_root, f"{lake.QUARANTINE}/", ".reason.txt"))
    pending = []
    for key in lake.list_keys(lake_root, f"{lake.RAW}/", ".json"):
        if lake.parse_raw_key(key) is None:
            continue
        if lake.table_file_key_for_raw(schemas.COMMIT_TABLE, key) in done:
            continue
        if lake.quarantine_reason_key(key) in quarantined:
            continue
        pending.append(key)
    return pending


def transform_raw_file(lake_root: str, raw_key: str) -> TransformResult:
    """Transform one raw file and write one Parquet file per table (overwriting its own)."""
    payload = envelope.loads(lake.read_bytes(lake_root, raw_key), raw_key)
    if not isinstance(payload, dict):
        raise CorruptPayload(f"{raw_key}: not a JSON object")
    result = transform_envelope(payload, raw_key)
    for table in schemas.TABLES:  # the commit table is last in this order
        key = lake.table_file_key_for_raw(table, raw_key)
        lake.write_parquet(lake_root, key, result.tables[table])
    return result


def quarantine(lake_root: str, raw_key: str, reason: str) -> str:
    """Copy a raw file that cannot be transformed beside the reason; the raw file stays put."""
    lake.write_bytes(lake_root, lake.quarantine_key(raw_key), lake.read_bytes(lake_root, raw_key))
    lake.write_bytes(
        lake_root, lake.quarantine_reason_key(raw_key), (reason + "\n").encode("utf-8")
    )
    return lake.quarantine_key(raw_key)


def transform(
    lake_root: str,
    raw_keys: Iterable[str] | None = None,
    *,
    progress: Progress = _quiet,
) -> TransformSummary:
    """Transform the given raw files, or every pending one; bad files go to quarantine."""
    lake.ensure_root(lake_root)
    keys = list(pending_raw_keys(lake_root) if raw_keys is None else raw_keys)
    summary = TransformSummary()
    for number, key in enumerate(keys, start=1):
        try:
            summary.add(key, transform_raw_file(lake_root, key))
        except CorruptPayload as exc:
            summary.quarantined[key] = str(exc)
            progress(f"quarantined {key}: {exc} -> {quarantine(lake_root, key, str(exc))}")
        if number % 100 == 0 or number == len(keys):
            progress(f"transformed {number}/{len(keys)} raw files")
    return summary


def retransform_all(lake_root: str, *, progress: Progress = _quiet) -> TransformSummary:
    """Transform every raw file again (after a schema change): outputs are overwritten."""
    keys = [k for k in lake.list_keys(lake_root, f"{lake.RAW}/", ".json") if lake.parse_raw_key(k)]
    return transform(lake_root, keys, progress=progress)
