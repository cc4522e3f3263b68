"""The flow, end to end: extract -> raw zone -> transform -> tables -> catalog.

Functions here do the I/O around the pure pieces (``spotify``, ``transform``) and are what
the CLI, the notebooks and the Lambda handlers call.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from itertools import groupby, pairwise
from multiprocessing import get_context
from pathlib import Path
from typing import Any

import pyarrow as pa

from etl_lib.config import Settings
from etl_lib.errors import ConfigError, CorruptPayload, EtlError, QuotaExceeded, RateLimited
from etl_lib.extract import archive, archive_history, envelope, sources
from etl_lib.extract.outcome import ExtractStatus
from etl_lib.lake import layout, storage
from etl_lib.progress import Progress, no_progress
from etl_lib.transform import iceberg, schemas
from etl_lib.transform.decode import TableBatch, snapshot_header

_log = logging.getLogger(__name__)

# Called with one line of text per playlist as ``extract`` goes (the CLI prints it).
Say = Callable[[str], None]


def _quiet(_: str) -> None:
    pass


@dataclass(frozen=True)
class Landed:
    """A payload in the raw zone: its key, and whether this call wrote it."""

    playlist_id: str
    raw_key: str
    written: bool
    items: int


def failure_reason(name: str, exc: BaseException) -> str:
    """One line saying why a file could not be used: the exception's type, then its message,
    which names the file."""
    message = " ".join(str(exc).split()) or "(no message)"
    if name not in message:
        message = f"{name}: {message}"
    # A lone surrogate from a payload must not make the reason itself unwritable.
    reason = f"{type(exc).__name__}: {message}".encode("utf-8", "backslashreplace").decode()
    return reason if len(reason) <= 1000 else reason[:1000] + "..."


# The first `"extracted_at":"` value of an envelope's bytes (20 characters, second precision)
# is held apart in its fingerprint, so a payload's fingerprint at another second is known
# without serializing it again: see ``_Shifted``.
_MARKER = b'"extracted_at":"'
_STAMP_LENGTH = len("2026-11-25T08:00:00Z")
Fingerprint = tuple[int, bytes, bytes]


def _fingerprint(data: bytes) -> Fingerprint:
    """Equal for equal bytes, and (bar a sha256 collision) only for equal bytes."""
    start = data.find(_MARKER)
    if start < 0:
        return -1, b"", hashlib.sha256(data).digest()
    start += len(_MARKER)
    end = start + _STAMP_LENGTH
    digest = hashlib.sha256(memoryview(data)[:start])
    digest.update(memoryview(data)[end:])
    return start, data[start:end], digest.digest()


@dataclass(frozen=True)
class PreparedEnvelope:
    """An envelope checked for landing: its id, time, bytes and entry count."""

    payload: dict
    name: str
    playlist_id: str
    extracted_at: datetime
    data: bytes
    items: int


def prepare_envelope(payload: Any, name: str = "envelope") -> PreparedEnvelope:
    """Check what landing needs (the transform's header checks and a Spotify playlist id);
    ``CorruptPayload`` naming ``name`` otherwise. No I/O."""
    header = snapshot_header(payload, name)
    try:
        playlist_id = layout.check_playlist_id(header.playlist_id)
    except ConfigError as exc:
        raise CorruptPayload(f"{name}: {exc}") from None
    items = sum(
        len(page["items"])
        for page in header.pages
        if isinstance(page, dict) and type(page.get("items")) is list
    )
    data = envelope.dumps(payload)
    return PreparedEnvelope(payload, name, playlist_id, header.extracted_at, data, items)


class _Shifted:
    """One payload's bytes and fingerprint at later seconds, for walking past collisions."""

    def __init__(self, prepared: PreparedEnvelope) -> None:
        self.prepared = prepared
        later = self.data(prepared.extracted_at + timedelta(seconds=1))
        first, second = _fingerprint(prepared.data), _fingerprint(later)
        # Only the capture time differs between the two: then the fingerprint at any second
        # is this one with that second's stamp, and no serialization per probe is needed.
        self.template = first if (first[0], first[2]) == (second[0], second[2]) else None

    def data(self, moment: datetime) -> bytes:
        payload = {**self.prepared.payload, "extracted_at": envelope.format_utc(moment)}
        return envelope.dumps(payload)

    def fingerprint(self, moment: datetime) -> Fingerprint:
        if self.template is None:
            return _fingerprint(self.data(moment))
        start, _, digest = self.template
        return start, envelope.format_utc(moment).encode(), digest


class RawLanding:
    """Lands envelopes in the raw zone under their immutable keys (``land_raw``'s rules).

    Collisions are resolved from one listing of the playlist's day, taken at its first
    collision; each existing raw file is read at most once, and the landing's own writes
    are remembered, so landing n files costs O(n) storage calls whatever their times.
    """

    def __init__(self, lake_root: str) -> None:
        self.lake_root = lake_root
        self._taken: dict[str, set[str]] = {}  # listed day prefix -> keys present
        self._fingerprints: dict[str, Fingerprint] = {}  # key -> fingerprint, read or written

    def land(self, prepared: PreparedEnvelope, *, keep_colliding: bool = False) -> Landed:
        """An existing object is never overwritten. Identical bytes are a no-op. A different
        payload on the same key is either a re-run of the same extraction instant
        (``keep_colliding``: the snapshot is already there, keep it) or a different capture
        (it moves to the next free second, so nothing is lost)."""
        playlist_id, moment = prepared.playlist_id, prepared.extracted_at
        key = layout.raw_key(playlist_id, moment)
        if self._free(key):
            return self._write(prepared, key, prepared.data)
        if keep_colliding or self._fingerprint_of(key) == _fingerprint(prepared.data):
            return Landed(playlist_id, key, False, prepared.items)
        shifted = _Shifted(prepared)
        while True:
            moment += timedelta(seconds=1)
            key = layout.raw_key(playlist_id, moment)
            if self._free(key):
                return self._write(prepared, key, shifted.data(moment))
            if self._fingerprint_of(key) == shifted.fingerprint(moment):
                return Landed(playlist_id, key, False, prepared.items)

    def _free(self, key: str) -> bool:
        day = key.rsplit("/", 1)[0] + "/"
        taken = self._taken.get(day)
        if taken is not None and key in taken:
            return False
        # Checked just before writing even in a listed day: another writer may have landed
        # the key since.
        if key not in self._fingerprints and not storage.exists(self.lake_root, key):
            return True
        if taken is None:
            taken = self._taken[day] = set(storage.list_keys(self.lake_root, day, ".json"))
        taken.add(key)
        return False

    def _fingerprint_of(self, key: str) -> Fingerprint:
        if key not in self._fingerprints:
            self._fingerprints[key] = _fingerprint(storage.read_bytes(self.lake_root, key))
        return self._fingerprints[key]

    def _write(self, prepared: PreparedEnvelope, key: str, data: bytes) -> Landed:
        storage.write_bytes(self.lake_root, key, data)
        self._fingerprints[key] = _fingerprint(data)
        taken = self._taken.get(key.rsplit("/", 1)[0] + "/")
        if taken is not None:
            taken.add(key)
        return Landed(prepared.playlist_id, key, True, prepared.items)


def land_raw(
    lake_root: str, payload: dict, *, keep_colliding: bool = False, name: str = "envelope"
) -> Landed:
    """Write an envelope to its immutable raw key, derived from playlist id and extracted_at
    (see ``RawLanding.land``); ``CorruptPayload`` naming ``name`` when it cannot be landed."""
    prepared = prepare_envelope(payload, name)
    return RawLanding(lake_root).land(prepared, keep_colliding=keep_colliding)


@dataclass(frozen=True)
class ExtractOutcome:
    """What happened to one playlist in one extract run (``ExtractStatus`` says which)."""

    playlist_id: str
    status: ExtractStatus
    snapshot_id: str | None = None
    raw_key: str | None = None
    items: int = 0
    error: EtlError | None = None


def last_snapshot(lake_root: str, playlist_id: str) -> dict | None:
    """The playlist's last snapshot landed by an extract (snapshot_id, raw_key, checked_at),
    or None when none has: one read of its state, which ``extract`` writes as one lands."""
    key = layout.last_snapshot_key(playlist_id)
    data = storage.read_bytes_if_exists(lake_root, key)
    if data is None:
        return None
    try:
        state = json.loads(data)
    except ValueError:
        state = None
    if not isinstance(state, dict):
        # Only an optimisation is lost: the playlist is downloaded again and, once a snapshot
        # lands, the state is written anew. Failing the playlist would fail it every hour.
        _log.warning(
            "%s: unreadable state %s (not a JSON object): the playlist is downloaded again",
            playlist_id,
            storage.url(lake_root, key),
        )
        return None
    return state


def check_record(outcome: ExtractOutcome, checked_at: datetime, source: str) -> dict:
    """One playlist's check as a run's heartbeat holds it (and as earlier versions wrote it
    alone, one object per playlist)."""
    return {
        "playlist_id": outcome.playlist_id,
        "checked_at": envelope.format_utc(checked_at),
        "status": outcome.status,
        "snapshot_id": outcome.snapshot_id,
        "raw_key": outcome.raw_key,
        "source": source,
        "error": str(outcome.error) if outcome.error else None,
    }


def _record_snapshot(lake_root: str, record: dict) -> None:
    # Written as the snapshot lands, not with the run's heartbeat at its end: a run that
    # crashes after landing it must not make the next run download and land it again.
    state = {k: record[k] for k in ("snapshot_id", "raw_key", "checked_at")}
    key = layout.last_snapshot_key(record["playlist_id"])
    storage.write_bytes(lake_root, key, json.dumps(state).encode())


def _write_heartbeat(lake_root: str, checks: list[dict]) -> None:
    """The run's one heartbeat: every playlist's check of the run, under the time of its
    first (nothing when no playlist was checked)."""
    if not checks:
        return
    started_at = envelope.parse_utc(checks[0]["checked_at"])
    heartbeat = {"started_at": checks[0]["checked_at"], "checks": checks}
    key = layout.heartbeat_key(started_at, (check["playlist_id"] for check in checks))
    storage.write_bytes(lake_root, key, json.dumps(heartbeat, ensure_ascii=False).encode("utf-8"))


def _extract_one(
    settings: Settings,
    source: sources.Source,
    connection: Any,
    playlist_id: str,
    extracted_at: datetime,
    force: bool,
) -> ExtractOutcome:
    previous = None if force else last_snapshot(settings.lake, playlist_id)
    known = previous.get("snapshot_id") if previous else None
    payload = source.fetch(
        connection, settings, playlist_id, extracted_at=extracted_at, known_snapshot_id=known
    )
    if payload is None:
        return ExtractOutcome(playlist_id, ExtractStatus.UNCHANGED, known, previous.get("raw_key"))
    landed = land_raw(
        settings.lake, payload, keep_colliding=True, name=f"playlist {playlist_id}'s snapshot"
    )
    status = ExtractStatus.EXTRACTED if landed.written else ExtractStatus.ALREADY_LANDED
    snapshot_id = payload["playlist"].get("snapshot_id")
    return ExtractOutcome(playlist_id, status, snapshot_id, landed.raw_key, landed.items)


def extract(
    settings: Settings,
    playlist_ids: Iterable[str] | None = None,
    *,
    clock: Callable[[], datetime] = layout.now_utc,
    reader: Any = None,
    force: bool = False,
    say: Say = _quiet,
) -> list[ExtractOutcome]:
    """Extract each playlist into the raw zone of ``settings.lake``, each independently,
    from the source ``settings.source`` names (``etl_lib.extract.sources``).

    A playlist whose snapshot_id has not changed since its last extraction is only recorded
    as checked (the API source asks for its metadata alone); ``force`` downloads it anyway.
    One playlist's failure is recorded and the others go on, except on a rate limit or an
    exhausted quota, which apply to the whole app and so stop the run. Every playlist's
    check goes into the run's one heartbeat (``layout.heartbeat_key``), written as the run
    ends, however it ends; a snapshot that lands is the playlist's ``last_snapshot`` at
    once. ``reader`` is
    the source's connection made by the caller (the API's ``SpotifyReader``: tests, the
    demo), used instead of one made from the settings.
    """
    source = sources.get(settings.source)
    storage.ensure_root(settings.lake)
    ids = [layout.check_playlist_id(p) for p in (playlist_ids or settings.playlists)]
    connection = reader if reader is not None else source.connect(settings)
    outcomes: list[ExtractOutcome] = []
    checks: list[dict] = []
    try:
        for outcome, checked_at in _check_each(settings, source, connection, ids, clock, force):
            outcomes.append(outcome)
            checks.append(check_record(outcome, checked_at, settings.source))
            playlist_id, status = outcome.playlist_id, outcome.status
            if status.landed:
                _record_snapshot(settings.lake, checks[-1])
                say(f"{playlist_id}: {status.words} {outcome.items} items -> {outcome.raw_key}")
            elif status == ExtractStatus.UNCHANGED:
                say(f"{playlist_id}: unchanged (snapshot {outcome.snapshot_id}), heartbeat only")
            elif status == ExtractStatus.NOT_ATTEMPTED:
                say(f"{playlist_id}: not attempted (the run stopped)")
            else:
                say(f"error: {outcome.error}")
    finally:
        # Also when the run dies half-way (a bug, an interrupt): the checks made are kept.
        _write_heartbeat(settings.lake, checks)
    return outcomes


def _check_each(
    settings: Settings,
    source: sources.Source,
    connection: Any,
    ids: list[str],
    clock: Callable[[], datetime],
    force: bool,
) -> Iterator[tuple[ExtractOutcome, datetime]]:
    """Each playlist's outcome and the time its check began, as the run goes. A rate limit
    or an exhausted quota stops the run: that playlist fails, and the ones after it are
    ``not_attempted`` with the same error at the same time, so that their last check says
    why they are stale."""
    for number, playlist_id in enumerate(ids):
        checked_at = clock()
        try:
            outcome = _extract_one(settings, source, connection, playlist_id, checked_at, force)
        except (RateLimited, QuotaExceeded) as exc:
            yield ExtractOutcome(playlist_id, ExtractStatus.FAILED, error=exc), checked_at
            for skipped in ids[number + 1 :]:
                yield ExtractOutcome(skipped, ExtractStatus.NOT_ATTEMPTED, error=exc), checked_at
            return
        except EtlError as exc:
            outcome = ExtractOutcome(playlist_id, ExtractStatus.FAILED, error=exc)
        yield outcome, checked_at


@dataclass
class ImportSummary:
    """What an import or backfill did: the payloads landed, and each file refused with why."""

    landed: list[Landed] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)


def _land_files(
    lake_root: str,
    files: list[Path],
    envelope_of: Callable[[Path], Any],
    step: str,
    progress: Progress,
) -> ImportSummary:
    """Land each file's envelope; a file that cannot be used is refused with its reason and
    the others go on. Storage errors are not the file's fault: they stop the import."""
    landing = RawLanding(lake_root)
    summary = ImportSummary()
    for file in progress(files, step):
        try:
            prepared = prepare_envelope(envelope_of(file), str(file))
        except MemoryError:
            raise  # this machine's limit, not the file's fault: quarantine would shelve it
        except Exception as exc:  # anything wrong with this file's content or name
            summary.refused[str(file)] = failure_reason(str(file), exc)
            continue
        summary.landed.append(landing.land(prepared))
    return summary


def import_payloads(
    lake_root: str,
    path: str,
    *,
    playlist_id: str | None = None,
    extracted_at: datetime | None = None,
    progress: Progress = no_progress,
) -> ImportSummary:
    """Land payloads captured elsewhere (a file, or every file below a folder) in the raw zone.

    An envelope keeps its own ``extracted_at``. Bare Spotify responses are wrapped in an
    envelope whose extraction time is ``extracted_at`` when given, else the UTC time in the
    file's name (``2021-03-06T00:13:23Z.json``, ``20210306T001323Z.json``), else the file's
    modification time. Every file is tried; the ones refused are listed with their reason.
    """
    source = Path(path)
    if source.is_dir():
        # Every file below the folder, subfolders included; hidden files and folders (editor
        # and VCS leftovers) are no payloads.
        files = sorted(
            p
            for p in source.rglob("*")
            if p.is_file() and not any(part.startswith(".") for part in p.relative_to(source).parts)
        )
    elif source.is_file():
        files = [source]
    elif source.exists():
        raise ConfigError(f"--input {path!r} is not a regular file or a folder: pass one of those")
    else:
        raise ConfigError(f"--input {path!r} does not exist: pass a payload file or a folder")
    if playlist_id:
        layout.check_playlist_id(playlist_id)
    storage.ensure_root(lake_root)

    def envelope_of(file: Path) -> Any:
        try:
            data = file.read_bytes()
        except OSError as exc:
            raise ConfigError(f"{file}: cannot be read ({exc.strerror or exc})") from None
        payload = envelope.loads(data, str(file))
        if envelope.is_envelope(payload):
            return payload
        captured_at = (
            extracted_at
            or archive.capture_time_from_name(file)
            or datetime.fromtimestamp(file.stat().st_mtime, UTC)
        )
        return envelope.envelope_from_capture(
            payload, extracted_at=captured_at, source_name=file.name, playlist_id=playlist_id
        )

    return _land_files(lake_root, files, envelope_of, "import", progress)


@dataclass
class TransformSummary:
    transformed: list[str] = field(default_factory=list)
    quarantined: dict[str, str] = field(default_factory=dict)
    rows: dict[str, int] = field(default_factory=lambda: dict.fromkeys(schemas.TABLES, 0))
    skipped: dict[str, int] = field(
        default_factory=lambda: {"skipped_episodes": 0, "skipped_local": 0, "skipped_null": 0}
    )

    def merge(self, other: TransformSummary) -> None:
        self.transformed.extend(other.transformed)
        self.quarantined.update(other.quarantined)
        for counter, more in ((self.rows, other.rows), (self.skipped, other.skipped)):
            for name, value in more.items():
                counter[name] += value


def transformed_raw_keys(lake_root: str) -> set[str]:
    """Raw files whose rows are committed: the ``snapshots`` table records them, last."""
    return iceberg.committed_raw_keys(lake_root)


def pending_raw_keys(lake_root: str) -> list[str]:
    """Raw files with no output yet and not quarantined, oldest first."""
    done = transformed_raw_keys(lake_root)
    quarantined = set(storage.list_keys(lake_root, f"{layout.QUARANTINE}/", ".reason.txt"))
    pending = []
    for key in storage.list_keys(lake_root, f"{layout.RAW}/", ".json"):
        if layout.parse_raw_key(key) is None or key in done:
            continue
        if layout.quarantine_reason_key(key) in quarantined:
            continue
        pending.append(key)
    return pending


def quarantine(lake_root: str, raw_key: str, reason: str, data: bytes | None = None) -> str:
    """Copy a raw file that cannot be transformed beside the reason; the raw file stays put.

    ``data`` is the raw file's bytes when the caller has them already."""
    if data is None:
        data = storage.read_bytes(lake_root, raw_key)
    storage.write_bytes(lake_root, layout.quarantine_key(raw_key), data)
    storage.write_bytes(
        lake_root, layout.quarantine_reason_key(raw_key), (reason + "\n").encode("utf-8")
    )
    return layout.quarantine_key(raw_key)


def _quarantine_failed(
    lake_root: str,
    raw_key: str,
    exc: BaseException,
    summary: TransformSummary,
    data: bytes | None = None,
) -> None:
    reason = failure_reason(raw_key, exc)
    summary.quarantined[raw_key] = reason
    quarantine(lake_root, raw_key, reason, data)


# Raw files per commit of the per-file path: an hourly run or a Lambda batch is one commit per
# table, and a long run commits as it goes, so an interrupted one resumes where it stopped.
COMMIT_EVERY_FILES = 500
# Snapshots per commit of a bulk transform: a commit's cost hardly depends on its size.
BULK_COMMIT_EVERY_SNAPSHOTS = 20_000


def transform(
    lake_root: str,
    raw_keys: Iterable[str] | None = None,
    *,
    progress: Progress = no_progress,
) -> TransformSummary:
    """Transform the given raw files, or every pending one; bad files go to quarantine.

    Any error while decoding or transforming one raw file quarantines that file with a
    one-line reason and the run goes on; storage errors (reading the raw file, committing
    the tables) are not the file's fault and stop the run. Rows are committed every
    ``COMMIT_EVERY_FILES`` files (``iceberg.replace_snapshots``), and a raw file transformed
    again replaces its own rows, so an interrupted or repeated run never duplicates: the next
    run finds only the files still pending.
    """
    storage.ensure_root(lake_root)
    keys = list(dict.fromkeys(pending_raw_keys(lake_root) if raw_keys is None else raw_keys))
    summary = TransformSummary()
    chunk: list[str] = []
    for key in progress(keys, "transform"):
        chunk.append(key)
        if len(chunk) == COMMIT_EVERY_FILES:
            summary.merge(_commit_batch(lake_root, chunk))
            chunk = []
    if chunk:
        summary.merge(_commit_batch(lake_root, chunk))
    return summary


def _commit_batch(lake_root: str, raw_keys: list[str]) -> TransformSummary:
    summary, tables = _transform_batch(lake_root, raw_keys)
    if tables is not None:
        iceberg.replace_snapshots(lake_root, tables)
    return summary


def all_raw_keys(lake_root: str) -> list[str]:
    return [
        k
        for k in storage.list_keys(lake_root, f"{layout.RAW}/", ".json")
        if layout.parse_raw_key(k)
    ]


def retransform_all(
    lake_root: str, *, workers: int | None = None, progress: Progress = no_progress
) -> TransformSummary:
    """Transform every raw file again (after a schema change), in bulk: each snapshot's new
    rows replace its old ones."""
    return transform_bulk(lake_root, all_raw_keys(lake_root), workers=workers, progress=progress)


# Below this many raw files, starting worker processes costs more than it saves.
_PARALLEL_FROM = 200
BULK_STEP = "transform (bulk)"


def transform_bulk(
    lake_root: str,
    raw_keys: Iterable[str] | None = None,
    *,
    workers: int | None = None,
    progress: Progress = no_progress,
) -> TransformSummary:
    """Transform many raw files (every pending one by default) a playlist-day at a time.

    For backfills and reprocessing: days are decoded in ``workers`` processes (default: one
    per core, or one for under 200 files) and their rows committed together, one Iceberg
    commit per table for every ``BULK_COMMIT_EVERY_SNAPSHOTS`` snapshots, so an interrupted
    run resumes where its last commit left off. Bad files go to quarantine. Workers are
    forked on Linux; elsewhere, or once this process runs threads (an S3 lake), they are
    spawned, and a script calling this needs the usual ``if __name__ == "__main__":`` guard.
    """
    storage.ensure_root(lake_root)
    keys = sorted(set(pending_raw_keys(lake_root) if raw_keys is None else raw_keys))
    jobs = [(lake_root, list(day_keys)) for _, day_keys in groupby(keys, key=_partition_of_raw_key)]
    if workers is None:
        workers = (os.cpu_count() or 1) if len(keys) >= _PARALLEL_FROM else 1
    workers = min(workers, len(jobs) or 1)
    commits = _BulkCommits(lake_root)
    if workers == 1:
        for job in progress(jobs, BULK_STEP):
            commits.add(*_stage_day(*job))
        return commits.finish()
    with ProcessPoolExecutor(workers, mp_context=_process_context()) as pool:
        futures = [pool.submit(_stage_day, *job) for job in jobs]
        for future in progress(futures, BULK_STEP):
            commits.add(*future.result())
    return commits.finish()


def _stage_day(
    lake_root: str, raw_keys: list[str]
) -> tuple[TransformSummary, iceberg.StagedRows | None]:
    """One playlist-day's rows, written as data files (in a worker) for a later commit."""
    summary, tables = _transform_batch(lake_root, raw_keys)
    return summary, (iceberg.stage(lake_root, tables) if tables is not None else None)


class _BulkCommits:
    """Days' staged rows gathered until enough snapshots for a commit, then committed
    together."""

    def __init__(self, lake_root: str) -> None:
        self.lake_root = lake_root
        self.summary = TransformSummary()
        self._pending: list[tuple[TransformSummary, iceberg.StagedRows]] = []
        self._snapshots = 0

    def add(self, summary: TransformSummary, staged: iceberg.StagedRows | None) -> None:
        if staged is None:
            self.summary.merge(summary)  # nothing to commit: only quarantined files
            return
        self._pending.append((summary, staged))
        self._snapshots += staged.snapshots.num_rows
        if self._snapshots >= BULK_COMMIT_EVERY_SNAPSHOTS:
            self._commit()

    def finish(self) -> TransformSummary:
        self._commit()
        return self.summary

    def _commit(self) -> None:
        if not self._pending:
            return
        iceberg.commit_staged(self.lake_root, [staged for _, staged in self._pending])
        for summary, _ in self._pending:
            self.summary.merge(summary)
        self._pending, self._snapshots = [], 0


def _process_context():
    # fork starts workers at once and needs no ``if __name__ == "__main__"`` guard in a
    # caller's script, but is only safe while this process has a single thread; an S3
    # client's event loop or pyiceberg's writer pool is a thread, and then spawn it is
    # (workers start with this process's environment as it is now).
    if sys.platform == "linux" and threading.active_count() == 1:
        return get_context("fork")
    return get_context("spawn")


def _partition_of_raw_key(key: str) -> tuple[str, str]:
    parts = layout.parse_raw_key(key)
    if parts is None:
        raise ConfigError(f"{key!r} is not a raw key (raw/playlist_id=<id>/dt=<date>/<stamp>.json)")
    return parts["playlist_id"], parts["dt"]


def _transform_batch(
    lake_root: str, raw_keys: list[str]
) -> tuple[TransformSummary, dict[str, pa.Table] | None]:
    """The tables of many raw files, and what became of each (nothing is committed here).

    A file whose content breaks the transform, or whose rows Arrow refuses, is quarantined
    and left out; the tables are None when no file was good."""
    summary = TransformSummary()
    batch = TableBatch()
    counts_by_key: dict[str, dict[str, int]] = {}
    data_by_key: dict[str, bytes] = {}  # kept for the quarantine copy if Arrow refuses rows
    for key in raw_keys:
        data = storage.read_bytes(lake_root, key)
        try:
            counts_by_key[key] = batch.add_json(data, key)
            data_by_key[key] = data
        except MemoryError:
            raise  # this machine's limit, not the file's fault: quarantine would shelve it
        except Exception as exc:  # whatever this file's content breaks: its own fault
            _quarantine_failed(lake_root, key, exc, summary, data)
    if not counts_by_key:
        return summary, None
    try:
        tables = batch.to_tables()
    except MemoryError:
        raise
    except Exception:
        # Rows Arrow refuses: find the files they came from, and keep the rest.
        for key, problem in batch.drop_unconvertible().items():
            _quarantine_failed(
                lake_root, key, CorruptPayload(f"{key}: {problem}"), summary, data_by_key[key]
            )
            del counts_by_key[key]
        if not counts_by_key:
            return summary, None
        tables = batch.to_tables()
    summary.transformed.extend(counts_by_key)
    for table, data in tables.items():
        summary.rows[table] += data.num_rows
    for counts in counts_by_key.values():
        for name in summary.skipped:
            summary.skipped[name] += counts.get(name, 0)
    return summary, tables


def backfill(
    lake_root: str,
    path: str,
    *,
    extracted_at: datetime | None = None,
    progress: Progress = no_progress,
) -> ImportSummary:
    """Land archived ranked snapshots (archive JSON or markdown, by content) in the raw zone.

    Each file's capture time comes from its name (``2021-03-06T00:13:23Z.md``) unless
    ``extracted_at`` is given. Every file is tried; the ones refused are listed with their
    reason. Re-running lands nothing twice.
    """
    files = archive.iter_archive_files(Path(path))
    storage.ensure_root(lake_root)
    return _land_files(
        lake_root,
        files,
        lambda file: archive.envelope_from_archive_file(file, extracted_at=extracted_at),
        "backfill",
        progress,
    )


@dataclass
class HistoryOutcome:
    """What the history backfill did for one playlist: the versions the archive listed in
    the window, the ones landed (``written``: new raw files; the rest were there already),
    skipped (known from an earlier run) and refused (sha -> why), and the error that stopped
    it (with ``attempted`` False when an earlier playlist's rate limit stopped the run)."""

    playlist_id: str
    found: int = 0
    landed: list[Landed] = field(default_factory=list)
    skipped: int = 0
    refused: dict[str, str] = field(default_factory=dict)
    error: EtlError | None = None
    attempted: bool = True
    known: int = 0  # versions landed or refused by this run and earlier ones

    @property
    def written(self) -> int:
        return sum(landed.written for landed in self.landed)


# Commits younger than this may still be on their way to the API's listing (a push takes a
# moment): they are listed again by the next run rather than taken as complete.
HISTORY_LISTING_GRACE = timedelta(hours=1)


def backfill_archive_history(
    settings: Settings,
    playlist_ids: Iterable[str] | None = None,
    *,
    since: datetime | None = None,
    until: datetime | None = None,
    client: archive_history.HistoryClient | None = None,
    clock: Callable[[], datetime] = layout.now_utc,
    say: Say = _quiet,
) -> list[HistoryOutcome]:
    """Land every version of each playlist the archive committed between ``since`` and
    ``until`` (either open) in the raw zone, each captured at its commit time (UTC).

    Every version lands, so the raw zone keeps the archive's history as it was; a day's
    ranking is its last version, as ``daily_chart`` reads it. The versions landed or refused,
    and the spans of commit times listed in full, are recorded in the lake
    (``layout.archive_history_key``) after each page of the listing and however the playlist
    ends: a re-run lists only what it has not seen and downloads nothing twice, and a run
    stopped by the rate limit or an interrupt resumes where it stopped; a version downloaded
    again after a hard kill lands nothing twice (``RawLanding`` keeps identical bytes once).
    A version that is not archive JSON or markdown is quarantined under the raw key it would
    have had, with its reason. One playlist's failure is recorded and the others go on,
    except a spent rate limit, which stops the run: the playlists after it are not
    attempted. Nothing is transformed here.
    """
    storage.ensure_root(settings.lake)
    ids = [layout.check_playlist_id(p) for p in (playlist_ids or settings.playlists)]
    # Listed in full up to here: later commits may not all be visible yet.
    settled = clock() - HISTORY_LISTING_GRACE
    outcomes: list[HistoryOutcome] = []
    history = client if client is not None else archive_history.HistoryClient(settings)
    with history:
        for number, playlist_id in enumerate(ids):
            outcome = HistoryOutcome(playlist_id)
            outcomes.append(outcome)
            try:
                _backfill_history_of(settings.lake, history, outcome, since, until, settled)
            except archive_history.ArchiveRateLimited as exc:
                outcome.error = exc
                outcomes.extend(
                    HistoryOutcome(skipped, error=exc, attempted=False)
                    for skipped in ids[number + 1 :]
                )
                say(_history_line(outcome))
                break
            except EtlError as exc:
                outcome.error = exc
            say(_history_line(outcome))
    return outcomes


def _history_line(outcome: HistoryOutcome) -> str:
    counts = (
        f"{outcome.playlist_id}: {outcome.found} versions found, {outcome.written} landed, "
        f"{outcome.skipped + len(outcome.landed) - outcome.written} skipped (landed before), "
        f"{len(outcome.refused)} refused; {outcome.known} known in all"
    )
    return counts + (" (stopped)" if outcome.error is not None else "")


def _backfill_history_of(
    lake_root: str,
    history: archive_history.HistoryClient,
    outcome: HistoryOutcome,
    since: datetime | None,
    until: datetime | None,
    settled: datetime,
) -> None:
    playlist_id = outcome.playlist_id
    record_key = layout.archive_history_key(playlist_id)
    known = archive_history.KnownCommits.loads(storage.read_bytes_if_exists(lake_root, record_key))
    saved = known.dumps()
    landing = RawLanding(lake_root)

    def save() -> None:
        nonlocal saved
        outcome.known = known.count
        if (data := known.dumps()) != saved:
            storage.write_bytes(lake_root, record_key, data)
            saved = data

    start, end = since or envelope.EARLIEST, until or envelope.LATEST
    try:
        for gap_start, gap_end in known.unlisted(start, end):
            # What a complete listing of this gap proves known: nothing after ``settled``.
            complete_to = min(gap_end, settled)
            pages = history.commits(
                playlist_id,
                None if gap_start == envelope.EARLIEST else gap_start,
                None if gap_end == envelope.LATEST else gap_end,
            )
            newest_first, previous_oldest = True, None
            for page in pages:
                listed = [c for c in page if archive_history.in_window(c, gap_start, gap_end)]
                fresh = archive_history.versions_to_fetch(listed, known)
                outcome.found += len(listed)
                outcome.skipped += len(listed) - len(fresh)
                for commit in fresh:
                    _land_version(lake_root, history, landing, playlist_id, commit, known, outcome)
                times = [commit.committed_at for commit in listed]
                # A page proves the span after its oldest commit listed only if the listing is
                # newest first, as GitHub's is; another order proves nothing until it ends.
                newest_first = newest_first and all(a >= b for a, b in pairwise(times))
                if times and previous_oldest is not None and times[0] > previous_oldest:
                    newest_first = False
                if times and newest_first:
                    # All from this page's oldest on is known now, bar others in that same
                    # second on the next page.
                    previous_oldest = times[-1]
                    known.mark_listed(previous_oldest + timedelta(seconds=1), complete_to)
                save()
            known.mark_listed(gap_start, complete_to)
            save()
    finally:
        # Also when a rate limit, an interrupt or a bug ends the playlist half-way.
        save()


def _land_version(
    lake_root: str,
    history: archive_history.HistoryClient,
    landing: RawLanding,
    playlist_id: str,
    commit: archive_history.Commit,
    known: archive_history.KnownCommits,
    outcome: HistoryOutcome,
) -> None:
    try:
        url, data = history.version(playlist_id, commit.sha)
    except archive_history.VersionMissing as exc:
        known.refused[commit.sha] = outcome.refused[commit.sha] = failure_reason(commit.sha, exc)
        return
    try:
        payload = archive.envelope_from_archive_bytes(
            data, extracted_at=commit.committed_at, origin={"url": url}, source_name=url
        )
        prepared = prepare_envelope(payload, url)
        if prepared.playlist_id != playlist_id:
            raise CorruptPayload(
                f"{url}: the file at this commit is playlist {prepared.playlist_id}, not "
                f"{playlist_id}"
            )
    except MemoryError:
        raise  # this machine's limit, not the version's fault: quarantine would shelve it
    except Exception as exc:  # anything wrong with this version's content
        reason = failure_reason(url, exc)
        quarantine(lake_root, layout.raw_key(playlist_id, commit.committed_at), reason, data)
        known.refused[commit.sha] = outcome.refused[commit.sha] = reason
        return
    landed = landing.land(prepared)
    outcome.landed.append(landed)
    known.landed[commit.sha] = landed.raw_key
