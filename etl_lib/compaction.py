"""One file per table per day: rewriting a playlist-day's many small files into one.

A partition here is one playlist's day (``tables/<table>/dt=<day>/<playlist>_*`` across the
tables). The hourly transform leaves one small file per snapshot and table; a bulk transform
and ``compact`` leave one *batch* file per table, sorted for the common queries.

Readers never see a half-written state or a snapshot twice, on a local folder or on S3,
without any locking. Every file is written whole (one PUT, or a rename), and readers skip
every file that a newer batch file of the same playlist-day covers (the rule of
``etl_lib.lake.superseded``, applied by the DuckDB views in ``etl_lib.catalog``). So a
rewrite writes its batch files first and deletes the files they replace last: a reader in
between already skips the old files. Writers keep the rule true: a batch holds every
snapshot in its range. Files written while a rewrite runs are not among those it read, so
they are never deleted, and one that falls inside the new range is taken in by a second
rewrite (``rewrite_partition``); a raw file transformed into a day already compacted is
merged the same way (``settle_raw_file``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from etl_lib import lake, schemas
from etl_lib.errors import ConfigError

# Within a partition, rows sit in the order the common queries read them: a chart by time and
# rank, the dimension tables by id (joins, latest_* views), so row-group statistics prune.
SORT_KEYS: dict[str, list[str]] = {
    "snapshots": ["playlist_id", "extracted_at"],
    "tracks": ["track_id", "extracted_at"],
    "albums": ["album_id", "extracted_at"],
    "artists": ["artist_id", "extracted_at"],
    "track_artists": ["track_id", "extracted_at", "artist_position"],
    "chart_entries": ["playlist_id", "extracted_at", "position"],
}
# The raw files a batch file of the commit table was made from (their stamps; playlist and day
# are the batch's), in its Parquet metadata, so a transform knows they are done without
# reading any rows.
RAW_STAMPS_METADATA = "spotify_charts_lake.raw_stamps"

# Wraps a list of work items for display (the CLI passes a progress bar); identity by default.
Track = Callable[[list, str], Iterable]
STEP = "compact"


def untracked(items: list, _description: str) -> Iterable:
    return items


@dataclass(frozen=True)
class Partition:
    dt: str
    playlist_id: str


@dataclass
class PartitionFiles:
    """The files of one partition, per table, as listed at one moment."""

    files: dict[str, list[str]] = field(
        default_factory=lambda: {table: [] for table in schemas.TABLES}
    )

    def all_keys(self) -> list[str]:
        return [key for keys in self.files.values() for key in keys]

    def is_compact(self) -> bool:
        """One batch file per table: nothing left to rewrite."""
        return all(
            len(keys) == 1 and lake.parse_table_file_key(keys[0])["generation"]
            for keys in self.files.values()
        )


def list_partitions(lake_root: str) -> dict[Partition, PartitionFiles]:
    """Every partition with table files, and its files; one listing per table."""
    partitions: dict[Partition, PartitionFiles] = defaultdict(PartitionFiles)
    for table in schemas.TABLES:
        for key in lake.list_keys(lake_root, f"{lake.TABLES}/{table}/", ".parquet"):
            parts = lake.parse_table_file_key(key)
            if parts is not None:
                partitions[Partition(parts["dt"], parts["playlist_id"])].files[table].append(key)
    return dict(partitions)


def list_partition(
    lake_root: str, partition: Partition, tables: Iterable[str] = tuple(schemas.TABLES)
) -> PartitionFiles:
    """The files of one playlist-day, now (of ``tables`` only, when given)."""
    files = PartitionFiles()
    for table in tables:
        prefix = f"{lake.TABLES}/{table}/dt={partition.dt}/"
        for key in lake.list_keys(lake_root, prefix, ".parquet"):
            parts = lake.parse_table_file_key(key)
            if parts is not None and parts["playlist_id"] == partition.playlist_id:
                files.files[table].append(key)
    return files


def settle_raw_file(lake_root: str, raw_key: str) -> str:
    """After a per-raw file write: keep the reader rule true for this snapshot.

    A batch file whose range covers the snapshot hides the new per-raw files. If the batch
    holds the snapshot, they are redundant and removed; if not (the raw file arrived after
    the day was compacted), the day is rewritten with it. Returns what was done.
    """
    parts = lake.parse_raw_key(raw_key)
    partition = Partition(parts["dt"], parts["playlist_id"])
    commits = list_partition(lake_root, partition, [schemas.COMMIT_TABLE])
    commit_key = lake.table_file_key_for_raw(schemas.COMMIT_TABLE, raw_key)
    if commit_key not in lake.superseded(commits.files[schemas.COMMIT_TABLE]):
        return "kept"
    files = list_partition(lake_root, partition)
    covering = [
        key
        for key in files.files[schemas.COMMIT_TABLE]
        if lake.parse_table_file_key(key)["generation"]
    ]
    if any(raw_key in committed_raw_keys(lake_root, key) for key in covering):
        lake.delete(lake_root, [lake.table_file_key_for_raw(t, raw_key) for t in schemas.TABLES])
        return "already in a batch file"
    rewrite_partition(lake_root, partition, files)
    return "merged into the day's batch file"


def _generation_order(key: str) -> tuple[str, str]:
    parts = lake.parse_table_file_key(key)
    return parts["generation"], key


def newest_copies(
    tables: list[tuple[str, pa.Table]], hidden: pa.Array | None = None
) -> pa.Table | None:
    """One copy of each snapshot in one partition's files of one table: for each
    ``extracted_at``, the rows of the newest file holding it; snapshots in ``hidden`` (being
    replaced) are dropped. What readers see, plus any snapshot a race left hidden."""
    seen = hidden if hidden is not None else pa.array([], type=schemas.UTC_TIMESTAMP)
    kept = []
    for _key, table in sorted(tables, key=lambda pair: _generation_order(pair[0]), reverse=True):
        moments = table.column("extracted_at")
        if len(seen):
            table = table.filter(pc.invert(pc.is_in(moments, value_set=seen)))
        kept.append(table)
        seen = pa.concat_arrays([seen, pc.unique(moments.combine_chunks())])
    return pa.concat_tables(kept) if kept else None


def committed_raw_keys(lake_root: str, key: str) -> list[str]:
    """The raw files whose rows a commit-table file holds."""
    raw = lake.raw_key_of_table_file(key)
    if raw is not None:
        return [raw]
    parts = lake.parse_table_file_key(key)
    stamps = lake.read_parquet_metadata(lake_root, key).get(RAW_STAMPS_METADATA.encode(), b"")
    return [
        lake.raw_key_from_parts(parts["playlist_id"], parts["dt"], stamp)
        for stamp in stamps.decode().split(",")
        if stamp
    ]


def rewrite_partition(
    lake_root: str,
    partition: Partition,
    existing: PartitionFiles,
    new_tables: dict[str, pa.Table] | None = None,
    new_raw_keys: Iterable[str] = (),
) -> list[str]:
    """Write one batch file per table holding the partition's visible rows plus
    ``new_tables`` (a bulk transform's snapshots, which win over older copies), then delete
    the ``existing`` files. Returns the keys written."""
    replaced = None
    if new_tables is not None:
        replaced = pc.unique(new_tables["snapshots"].column("extracted_at").combine_chunks())
    raw_keys = set(new_raw_keys)
    for key in existing.files[schemas.COMMIT_TABLE]:
        raw_keys.update(committed_raw_keys(lake_root, key))

    merged: dict[str, pa.Table] = {}
    for table, schema in schemas.TABLES.items():
        pieces = [(key, lake.read_parquet(lake_root, key)) for key in existing.files[table]]
        old = newest_copies([(k, t.cast(schema)) for k, t in pieces], replaced)
        parts = [t for t in ((new_tables or {}).get(table), old) if t is not None]
        combined = pa.concat_tables(parts) if parts else schema.empty_table()
        merged[table] = combined.sort_by([(name, "ascending") for name in SORT_KEYS[table]])

    moments = merged["snapshots"].column("extracted_at")
    if len(moments) == 0:
        # Nothing to keep (only empty files): the partition goes away.
        lake.delete(lake_root, existing.all_keys())
        return []
    first, last = (lake.utc_stamp(m.as_py()) for m in (pc.min(moments), pc.max(moments)))
    generation = lake.new_generation(lake.now_utc())
    written = []
    for table in schemas.TABLES:  # the commit table is last in this order
        key = lake.batch_file_key(
            table, partition.dt, partition.playlist_id, first, last, generation
        )
        metadata = None
        if table == schemas.COMMIT_TABLE:
            stamps = sorted(lake.parse_raw_key(raw_key)["stamp"] for raw_key in raw_keys)
            metadata = {RAW_STAMPS_METADATA: ",".join(stamps)}
        lake.write_parquet(lake_root, key, merged[table], metadata)
        written.append(key)
    lake.delete(lake_root, existing.all_keys())
    # A per-raw file written while this ran, inside the new range, is now hidden from
    # readers but not in the batch: take it in with another rewrite. Its commit-table file
    # is enough to see it (one listing); one still being written settles itself afterwards
    # (``settle_raw_file``).
    commits = list_partition(lake_root, partition, [schemas.COMMIT_TABLE])
    if lake.superseded(commits.all_keys()) - set(written):
        return rewrite_partition(lake_root, partition, list_partition(lake_root, partition))
    return written


@dataclass
class CompactSummary:
    partitions_rewritten: int = 0
    partitions_already_compact: int = 0
    files_before: int = 0
    files_after: int = 0


def _in_scope(partition: Partition, days: set[str] | None, month: str | None, playlists) -> bool:
    if days is not None and partition.dt not in days:
        return False
    if month is not None and not partition.dt.startswith(month + "-"):
        return False
    return not playlists or partition.playlist_id in playlists


def compact(
    lake_root: str,
    *,
    days: Iterable[str] | None = None,
    month: str | None = None,
    playlist_ids: Iterable[str] | None = None,
    track: Track = untracked,
) -> CompactSummary:
    """Rewrite each partition in scope (every one by default) to one file per table.

    Idempotent: a partition that already has one batch file per table is left as it is.
    """
    if month is not None and not _is_month(month):
        raise ConfigError(f"--month {month!r} is not a month: use YYYY-MM, e.g. 2026-01")
    day_set = set(days) if days is not None else None
    playlists = set(playlist_ids or ())
    # A mistyped --lake or bucket would otherwise find nothing to do and succeed.
    lake.require_root(lake_root)
    summary = CompactSummary()
    partitions = list_partitions(lake_root)
    todo = []
    for partition, files in sorted(partitions.items(), key=lambda item: _order(item[0])):
        if not _in_scope(partition, day_set, month, playlists):
            continue
        if files.is_compact():
            summary.partitions_already_compact += 1
            continue
        todo.append((partition, files))
    for partition, files in track(todo, STEP):
        summary.files_before += len(files.all_keys())
        summary.files_after += len(rewrite_partition(lake_root, partition, files))
        summary.partitions_rewritten += 1
    return summary


def _order(partition: Partition) -> tuple[str, str]:
    return partition.dt, partition.playlist_id


def _is_month(text: str) -> bool:
    year, _, month = text.partition("-")
    return (
        len(year) == 4
        and year.isdigit()
        and len(month) == 2
        and month.isdigit()
        and 1 <= int(month) <= 12
    )
