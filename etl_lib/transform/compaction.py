"""Table maintenance: rewrite each day's small files into one sorted file, then let old data go.

The hourly transform adds small files to each day of each table (``etl_lib.transform.iceberg``).
``compact`` rewrites a day's files into one file per table, sorted for the common reads, in
one Iceberg commit per table and month: a reader sees the old snapshot or the new one, never
both nor neither. A raw file committed into those days meanwhile makes the rewrite's commit fail
validation, and the rewrite is planned again with it.

Replaced files stay readable for ``SPOTIFY_ETL_SNAPSHOT_RETENTION_DAYS`` (default 7): a query
planned before a compaction still finds every file it listed. After that, ``expire`` drops
table snapshots older than the retention and deletes the files no remaining snapshot
references (data, manifests, metadata), including those of writes killed before their
commit. The retention must therefore exceed the longest write.
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from etl_lib.config import table_settings
from etl_lib.errors import ConfigError
from etl_lib.lake import layout, storage
from etl_lib.progress import Progress, no_progress
from etl_lib.transform import iceberg, schemas

STEP = "compact"
# A local write renames its temporary file within seconds, so one this old was left by a
# killed process; younger ones may belong to a writer still running.
STALE_TEMPORARY_SECONDS = 3600.0


@dataclass
class CompactSummary:
    days_rewritten: int = 0
    days_already_compact: int = 0
    files_before: int = 0
    files_after: int = 0
    snapshots_expired: int = 0
    files_deleted: int = 0


def files_per_day(lake_root: str, name: str, row_filter=None) -> Counter:
    """How many data files each day of a table's current snapshot holds."""
    return Counter(iceberg.plan(lake_root, name, row_filter).days)


def compact(
    lake_root: str,
    *,
    days: Iterable[str] | None = None,
    month: str | None = None,
    progress: Progress = no_progress,
    retention: timedelta | None = None,
) -> CompactSummary:
    """Rewrite each day in scope (every one by default) to one sorted file per table, then
    expire what the retention allows (``expire``).

    Idempotent: a day whose tables hold one file each is left as it is.
    """
    if month is not None and not _is_month(month):
        raise ConfigError(f"--month {month!r} is not a month: use YYYY-MM, e.g. 2026-01")
    day_set = set(days) if days is not None else None
    # A mistyped --lake or bucket would otherwise find nothing to do and succeed.
    storage.require_root(lake_root)
    counts = {name: files_per_day(lake_root, name) for name in schemas.TABLES}
    all_days = sorted(set().union(*counts.values()))
    summary = CompactSummary()
    todo = []
    for day in all_days:
        if day_set is not None and day not in day_set:
            continue
        if month is not None and not day.startswith(month + "-"):
            continue
        if all(counts[name][day] <= 1 for name in schemas.TABLES):
            summary.days_already_compact += 1
            continue
        todo.append(day)
    months: dict[str, list[str]] = {}
    for day in todo:
        months.setdefault(day[:7], []).append(day)
    # One commit per table and month: a year's backlog is 12 rewrites of each table, each
    # planned once, instead of 365 that would each plan the whole table.
    for month_days in progress(list(months.values()), STEP):
        for name in schemas.TABLES:
            days_to_rewrite = [day for day in month_days if counts[name][day] > 1]
            if days_to_rewrite:
                rewrite_days(lake_root, name, days_to_rewrite)
        for day in month_days:
            summary.files_before += sum(counts[name][day] for name in schemas.TABLES)
            summary.files_after += sum(min(counts[name][day], 1) for name in schemas.TABLES)
        summary.days_rewritten += len(month_days)
    expired = expire(lake_root, retention)
    summary.snapshots_expired, summary.files_deleted = expired
    # Raw-zone writes killed before their rename leave hidden temporary files behind.
    storage.remove_stale_temporaries(lake_root, STALE_TEMPORARY_SECONDS)
    return summary


def rewrite_days(lake_root: str, name: str, days: list[str]) -> None:
    """One commit replacing a table's files of ``days`` with one sorted file per day."""
    from pyiceberg.expressions import In

    days_filter = In(schemas.PARTITION_COLUMN, sorted(days))

    def rewrite(table, transaction):
        with iceberg.damaged_files(lake_root):
            rows = table.scan(row_filter=days_filter).to_arrow()
        if rows.num_rows == 0:
            return
        order = [schemas.PARTITION_COLUMN, *iceberg.SORT_KEYS[name]]
        rows = rows.sort_by([(column, "ascending") for column in order])
        files = iceberg.write_day_files(table, rows)
        # Whole days go, so no file is read to delete them. Validated against commits since
        # the scan: a late file in these days fails it, and ``iceberg.commit`` plans the
        # rewrite again with that file's rows.
        iceberg.replace_rows(transaction, days_filter, files)

    iceberg.commit(iceberg.open_tables(lake_root), name, rewrite, create=False)


def expire(lake_root: str, retention: timedelta | None = None) -> tuple[int, int]:
    """Drop table snapshots older than ``retention`` (default: the setting) and delete the
    files no remaining snapshot references and untouched for as long; returns how many of
    each. The current snapshot of every table is always kept."""
    if retention is None:
        retention = timedelta(days=table_settings().snapshot_retention_days)
    cutoff = layout.now_utc() - retention
    tables = iceberg.open_tables(lake_root)
    expired = deleted = 0
    for name in schemas.TABLES:
        if tables.existing(name) is None:
            continue
        expired += _expire_snapshots(tables, name, cutoff)
        deleted += _delete_unreferenced(lake_root, tables.existing(name), cutoff)
    return expired, deleted


def _expire_snapshots(tables: iceberg.LakeTables, name: str, cutoff: datetime) -> int:
    """Drop the table's snapshots older than ``cutoff`` but the current one; how many."""
    from pyiceberg.exceptions import CommitFailedException

    for attempt in range(iceberg.REDO_ATTEMPTS):
        table = tables.existing(name)
        current = table.metadata.current_snapshot_id
        old = [
            snapshot.snapshot_id
            for snapshot in table.metadata.snapshots
            if snapshot.timestamp_ms < cutoff.timestamp() * 1000 and snapshot.snapshot_id != current
        ]
        if not old:
            return 0
        try:
            table.maintenance.expire_snapshots().by_ids(old).commit()
            return len(old)
        except CommitFailedException:
            # A writer committed meanwhile (pyiceberg does not retry this update): again,
            # on the table as that writer left it.
            if attempt == iceberg.REDO_ATTEMPTS - 1:
                raise
    return 0


def _referenced_files(table) -> set[str]:
    io = table.io
    referenced = {table.metadata_location}
    referenced.update(entry.metadata_file for entry in table.metadata.metadata_log)
    manifests = {}
    for snapshot in table.metadata.snapshots:
        referenced.add(snapshot.manifest_list)
        for manifest in snapshot.manifests(io):
            manifests[manifest.manifest_path] = manifest
    referenced.update(manifests)
    for manifest in manifests.values():
        for entry in manifest.fetch_manifest_entry(io, discard_deleted=False):
            referenced.add(entry.data_file.file_path)
    return {_plain(path) for path in referenced}


def _plain(path: str) -> str:
    """A file's path without its scheme, as filesystem listings give it."""
    return path.split("://", 1)[1] if "://" in path else path


def _delete_unreferenced(lake_root: str, table, cutoff: datetime) -> int:
    referenced = _referenced_files(table)
    location = _plain(table.location())
    orphans = []
    if storage.is_local(lake_root):
        for directory, _, names in os.walk(location):
            for file_name in names:
                path = os.path.join(directory, file_name)
                if path in referenced:
                    continue
                try:
                    modified = datetime.fromtimestamp(os.stat(path).st_mtime, UTC)
                except FileNotFoundError:
                    continue
                if modified < cutoff:
                    orphans.append(path)
        for path in orphans:
            try:
                os.remove(path)
            except FileNotFoundError:
                pass
        return len(orphans)
    fs, _ = storage.filesystem(lake_root)
    with storage.storage_errors(lake_root, location):
        listing = fs.find(location, detail=True)
        for path, info in listing.items():
            modified = info.get("LastModified")
            if path not in referenced and modified is not None and modified < cutoff:
                orphans.append(path)
        if orphans:
            fs.rm(orphans)
    return len(orphans)


def _is_month(text: str) -> bool:
    year, _, month = text.partition("-")
    return (
        len(year) == 4
        and year.isdigit()
        and len(month) == 2
        and month.isdigit()
        and 1 <= int(month) <= 12
    )
