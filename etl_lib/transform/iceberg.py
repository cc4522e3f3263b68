"""The lake's tables as Apache Iceberg tables, written and planned with pyiceberg.

Every table of ``etl_lib.transform.schemas`` is an Iceberg table partitioned by identity on
``dt`` (the capture day, a string column the shipped SQL filters on). Which table holds what is the
catalog's business, never a rule on file names:

- a local lake gets a SQL catalog on SQLite inside the lake (``iceberg_catalog.db``) and its
  warehouse under ``<lake>/warehouse``: nothing to install or start;
- an ``s3://`` lake uses the Glue Data Catalog (database ``SPOTIFY_ETL_GLUE_DATABASE``), the
  warehouse in the lake's bucket, so Athena reads the same tables natively;
- ``SPOTIFY_ETL_CATALOG_URI`` selects any other SQL catalog pyiceberg speaks (Postgres for an
  S3-compatible store without Glue, say), or a REST catalog (``http(s)://...``).

Every write is one Iceberg transaction per table, and a replay changes nothing: writing a
snapshot's rows deletes the rows of the same snapshot (playlist, day and capture time) and
appends the new ones in one commit. A commit that loses a race to another writer is retried
by pyiceberg; one whose delete the other writer invalidated is redone here from scratch
(``commit``), so two writers of the same snapshot leave it exactly once. ``snapshots`` is
committed last and is the record of which raw files are done.
"""

from __future__ import annotations

import contextlib
import functools
import itertools
import os
import random
import time
import urllib.parse
import uuid
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass

import pyarrow as pa

from etl_lib.config import TableSettings, table_settings
from etl_lib.errors import ConfigError, LakeError
from etl_lib.lake import storage
from etl_lib.transform import schemas
from etl_lib.transform.previous_layout import WAREHOUSE, check_layout, forget_layout

LOCAL_CATALOG_FILE = "iceberg_catalog.db"
LOCAL_NAMESPACE = "spotify_charts"
# Within a day, rows sit in the order the common queries read them: a chart by time and rank,
# the other tables by id (joins, latest_* views), so row-group statistics prune.
SORT_KEYS: dict[str, list[str]] = {
    "snapshots": ["playlist_id", "extracted_at"],
    "tracks": ["track_id", "extracted_at"],
    "albums": ["album_id", "extracted_at"],
    "artists": ["artist_id", "extracted_at"],
    "track_artists": ["track_id", "extracted_at", "artist_position"],
    "chart_entries": ["playlist_id", "extracted_at", "position"],
}
# Committed in this order: ``snapshots`` last, so a raw file counts as done only once every
# other table holds its rows.
WRITE_ORDER = ("chart_entries", "tracks", "albums", "artists", "track_artists", "snapshots")
TABLE_PROPERTIES = {
    # Appends merge small manifests, so planning a scan reads a bounded number of them.
    "commit.manifest-merge.enabled": "true",
    # Old metadata files go with the commits that replace them.
    "write.metadata.delete-after-commit.enabled": "true",
    "write.metadata.previous-versions-max": "20",
    "commit.retry.num-retries": "8",
    # Faster to write than pyiceberg's default zstd, and read by every engine.
    "write.parquet.compression-codec": "snappy",
}
# Transactions redone from scratch after a conflicting writer (see ``commit``).
REDO_ATTEMPTS = 20


def table_arrow_schema(name: str) -> pa.Schema:
    """A table's Arrow schema as stored: ``etl_lib.transform.schemas`` plus the ``dt`` column."""
    return schemas.TABLES[name].append(
        pa.field(schemas.PARTITION_COLUMN, pa.string(), nullable=False)
    )


def warehouse_location(lake_root: str) -> str:
    if storage.is_local(lake_root):
        # A plain path, not a file:// URL: pyiceberg would cut a URL at a "?" or "#" that a
        # folder name may hold.
        _, base = storage.filesystem(lake_root)
        return os.path.abspath(os.path.join(base, WAREHOUSE))
    return storage.url(lake_root, WAREHOUSE)


def local_catalog_path(lake_root: str) -> str:
    _, base = storage.filesystem(lake_root)
    return os.path.join(base, LOCAL_CATALOG_FILE)


@dataclass(frozen=True)
class LakeTables:
    """The lake's Iceberg catalog and the namespace its tables live in."""

    lake_root: str
    catalog: object
    namespace: str

    def identifier(self, name: str) -> tuple[str, str]:
        return (self.namespace, name)

    def table(self, name: str, *, create: bool = True):
        """The Iceberg table ``name``, created when missing and evolved to the current schema
        (columns added to ``etl_lib.transform.schemas`` are added by name; older rows read NULL)."""
        from pyiceberg.exceptions import NoSuchTableError

        try:
            table = self.catalog.load_table(self.identifier(name))
        except NoSuchTableError:
            if not create:
                return None
            table = self._create(name)
        except FileNotFoundError as exc:
            missing = str(exc.filename or "")
            if not storage.is_local(self.lake_root) or _under(missing, self.lake_root):
                raise  # a file of this lake's tables is missing (``damaged_files`` says so)
            # The catalog names metadata in a folder that is gone: the lake was moved.
            raise LakeError(self._moved_message(missing or str(exc))) from exc
        self._check_location(table)
        return _evolved(table, name)

    def existing(self, name: str):
        """The table, or None when no write has created it yet (readers never create)."""
        return self.table(name, create=False)

    def _create(self, name: str):
        from pyiceberg.catalog import Catalog
        from pyiceberg.partitioning import PartitionField, PartitionSpec
        from pyiceberg.schema import assign_fresh_schema_ids
        from pyiceberg.table.sorting import SortField, SortOrder
        from pyiceberg.transforms import IdentityTransform

        schema = assign_fresh_schema_ids(
            Catalog._convert_schema_if_needed(table_arrow_schema(name))
        )
        dt = schema.find_field(schemas.PARTITION_COLUMN)
        spec = PartitionSpec(
            PartitionField(
                source_id=dt.field_id,
                field_id=1000,
                transform=IdentityTransform(),
                name=schemas.PARTITION_COLUMN,
            )
        )
        order = SortOrder(
            *(
                SortField(
                    source_id=schema.find_field(column).field_id, transform=IdentityTransform()
                )
                for column in SORT_KEYS[name]
            )
        )
        return self.catalog.create_table_if_not_exists(
            self.identifier(name),
            schema=schema,
            partition_spec=spec,
            sort_order=order,
            location=f"{warehouse_location(self.lake_root)}/{self.namespace}.db/{name}",
            properties=TABLE_PROPERTIES,
        )

    def _check_location(self, table) -> None:
        if _under(table.location(), self.lake_root):
            return
        if storage.is_local(self.lake_root):
            # Iceberg metadata holds absolute paths: a lake folder that moved still points at
            # the old place.
            raise LakeError(self._moved_message(table.location()))
        # Two lakes cataloged in one Glue database would share (and overwrite) tables.
        raise LakeError(
            f"table {self.namespace}.{table.name()[-1]} of the catalog belongs to the lake at "
            f"{table.location()}, not to {self.lake_root}: give each lake its own database "
            "(SPOTIFY_ETL_GLUE_DATABASE)"
        )

    def _moved_message(self, location: str) -> str:
        return (
            f"the tables of lake {self.lake_root!r} live at {location}, not under "
            f"{warehouse_location(self.lake_root)} (the lake folder was moved or copied): run "
            f"`spotify-etl migrate --lake {self.lake_root}` to rebuild them from the raw zone"
        )


def _evolved(table, name: str):
    from pyiceberg.exceptions import CommitFailedException

    wanted = table_arrow_schema(name)
    for attempt in range(REDO_ATTEMPTS):
        present = set(table.schema().column_names)
        if all(field.name in present for field in wanted):
            return table
        # New columns are optional: rows written before them have no value.
        added = pa.schema(
            [field.with_nullable(True) for field in wanted if field.name not in present]
        )
        try:
            with table.update_schema() as update:
                update.union_by_name(added)
            return table
        except CommitFailedException:
            # Another writer changed the table first (the first writers of a release with a
            # new column add it at the same moment): look again at the schema it left.
            if attempt == REDO_ATTEMPTS - 1:
                raise
            table.refresh()
    return table


@functools.cache
def _open(lake_root: str, settings: TableSettings, process: int) -> LakeTables:
    # ``process``: a forked worker opens its own catalog; database connections (SQLite, Glue
    # clients) must not be shared across a fork.
    warehouse = warehouse_location(lake_root)
    io = (
        {}
        if storage.is_local(lake_root)
        else {"py-io-impl": "etl_lib.transform.iceberg.LakeFileIO"}
    )
    uri = settings.catalog_uri
    if uri:
        if uri.startswith(("http://", "https://")):
            from pyiceberg.catalog.rest import RestCatalog

            catalog = RestCatalog("lake", uri=uri, warehouse=warehouse, **io)
        else:
            # SQLAlchemy is imported only for SQL catalogs: the Lambda artifacts leave it out.
            from pyiceberg.catalog.sql import SqlCatalog

            catalog = _sql_catalog(SqlCatalog, uri=uri, warehouse=warehouse, **io)
        namespace = settings.namespace
    elif storage.is_local(lake_root):
        from pyiceberg.catalog.sql import SqlCatalog

        storage.ensure_root(lake_root)
        # Quoted: SQLAlchemy's URL would end the path at "?" or "#" and decode "%".
        path = urllib.parse.quote(local_catalog_path(lake_root), safe="/")
        # timeout: SQLite waits this long for another process's commit instead of failing.
        with catalog_errors(lake_root):
            sqlite_uri = f"sqlite:///{path}?timeout={CATALOG_WAIT_SECONDS}"
            catalog = _sql_catalog(SqlCatalog, uri=sqlite_uri, warehouse=warehouse)
        namespace = LOCAL_NAMESPACE
    else:
        catalog = _glue_catalog(lake_root, settings, warehouse, io)
        namespace = settings.namespace
    with catalog_errors(lake_root):
        try:
            catalog.create_namespace_if_not_exists(namespace)
        except Exception:
            # Another process created it between the check and the insert.
            if not catalog.namespace_exists(namespace):
                raise
    return LakeTables(lake_root, catalog, namespace)


def _sql_catalog(kind, **properties):
    """A SQL catalog; a second try when another process created its tables meanwhile
    (pyiceberg checks, then creates, and the loser of that race fails)."""
    from sqlalchemy.exc import OperationalError

    try:
        return kind("lake", **properties)
    except OperationalError:
        return kind("lake", **properties)


def _under(location: str, lake_root: str) -> bool:
    """Whether a table location or file lies in the lake's warehouse."""
    return location.removeprefix("file://").startswith(warehouse_location(lake_root) + "/")


def forget(lake_root: str | None = None) -> None:
    """Drop this process's open catalogs, and the tables of ``lake_root`` (of every lake by
    default), after a catalog was replaced or its endpoint changed."""
    _open.cache_clear()
    for key in [key for key in _STAGING_TABLES if lake_root in (None, key[0])]:
        del _STAGING_TABLES[key]
    forget_layout(lake_root)


def open_tables(lake_root: str, settings: TableSettings | None = None) -> LakeTables:
    """The lake's catalog (created on first use for a local lake) and namespace."""
    check_layout(lake_root)
    settings = settings or table_settings()
    return _open(lake_root, settings, os.getpid())


@contextlib.contextmanager
def catalog_errors(lake_root: str):
    """AWS errors of the catalog (Glue) as one line naming what to fix; others pass."""
    try:
        yield
    except (LakeError, ConfigError):
        raise
    except Exception as exc:
        error = _catalog_error(lake_root, exc)
        if error is None:
            raise
        raise error from exc


def _glue_catalog(lake_root: str, settings: TableSettings, warehouse: str, io: dict):
    """pyiceberg's Glue catalog on a client of ours: the short timeouts and bounded retries of
    every AWS client here (``etl_lib.aws``), and the settings' profile and region. The Glue
    database is ``settings.namespace``; Glue's table version is the commit lock."""
    from etl_lib.aws import aws_client

    with catalog_errors(lake_root):
        client = aws_client("glue", settings)
    from pyiceberg.catalog.glue import GlueCatalog

    return GlueCatalog("lake", client=client, warehouse=warehouse, **io)


def _catalog_error(lake_root: str, exc: BaseException) -> LakeError | ConfigError | None:
    if _is_busy(exc):
        return LakeError(busy_catalog_message(lake_root, CATALOG_WAIT_SECONDS))
    try:
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:  # no AWS extra
        return None
    if isinstance(exc, BotoCoreError | ClientError):
        from etl_lib.aws import aws_error

        database = table_settings().namespace
        resource = f"Glue database {database!r} of lake {lake_root}"
        error = aws_error(exc, service="AWS Glue", resource=resource)
        if error is not None:
            # A missing region or profile stays a ConfigError (a setting to fix).
            return error if isinstance(error, ConfigError) else LakeError(str(error))
    return None


# SQLite's wait for a lock in the catalog connections (the ``timeout`` of their URI), and what
# a command that only reads waits before it says who holds the catalog (``wait_for_catalog``).
CATALOG_WAIT_SECONDS = 30
READER_WAIT_SECONDS = 5.0


def _is_busy(exc: BaseException) -> bool:
    """Whether ``exc`` is SQLite giving up on a lock another connection holds."""
    import sqlite3

    cause = getattr(exc, "orig", exc)  # SQLAlchemy wraps the driver's exception
    return isinstance(cause, sqlite3.OperationalError) and (
        "locked" in str(cause) or "busy" in str(cause)
    )


def wait_for_catalog(lake_root: str, seconds: float = READER_WAIT_SECONDS) -> None:
    """Wait up to ``seconds`` for a lake's local table catalog to be readable, else a
    LakeError naming the process that holds it.

    Writers hold the SQLite file for the moment of a commit; a process that keeps it longer
    (a stuck writer, a SQL shell left in a transaction) would make every reader wait the
    writers' ``CATALOG_WAIT_SECONDS`` and end in a traceback. Lakes cataloged elsewhere
    (Glue, a catalog URI) and lakes with no catalog yet return at once.
    """
    if not storage.is_local(lake_root) or table_settings().catalog_uri:
        return
    path = local_catalog_path(lake_root)
    if not os.path.isfile(path):
        return
    import sqlite3

    connection = sqlite3.connect(path, timeout=seconds)
    try:
        # Reading needs SQLite's shared lock, which a writer's pending or exclusive lock holds off.
        connection.execute("SELECT count(*) FROM sqlite_master").fetchone()
    except sqlite3.OperationalError as exc:
        if not _is_busy(exc):
            raise
        raise LakeError(busy_catalog_message(lake_root, seconds)) from exc
    finally:
        connection.close()


def has_catalog(lake_root: str) -> bool:
    """Whether the lake's tables may exist: False for a local lake no write has cataloged yet
    (so that reading it does not create the catalog file)."""
    if not storage.is_local(lake_root) or table_settings().catalog_uri:
        return True
    return os.path.isfile(local_catalog_path(lake_root))


def busy_catalog_message(lake_root: str, waited_seconds: float) -> str:
    path = local_catalog_path(lake_root)
    holders = [pid for pid in _lock_holders(path) if pid != os.getpid()]
    if holders:
        who = ", ".join(f"process {pid}{_process_name(pid)}" for pid in holders)
        verb = "holds" if len(holders) == 1 else "hold"
    else:
        who, verb = "another process", "holds"
    return (
        f"the table catalog {path} is busy: {who} {verb} it for writing (waited "
        f"{waited_seconds:g} s); try again once it has finished, or stop it"
    )


def _lock_holders(path: str) -> list[int]:
    """The processes holding a write lock on ``path``, from Linux's ``/proc/locks`` (SQLite
    locks its file with POSIX locks); empty where that file does not exist."""
    try:
        status = os.stat(path)
        with open("/proc/locks", encoding="ascii", errors="replace") as locks:
            lines = locks.read().splitlines()
    except OSError:
        return []
    device = f"{os.major(status.st_dev):02x}:{os.minor(status.st_dev):02x}:{status.st_ino}"
    holders = []
    for line in lines:
        fields = line.split()
        # "1: POSIX  ADVISORY  WRITE 1234 fe:00:2753107 0 EOF"; "1: -> ..." lines are waiters.
        if len(fields) >= 6 and fields[1] != "->" and fields[3] == "WRITE":
            if fields[5] == device and fields[4].isdigit() and int(fields[4]) not in holders:
                holders.append(int(fields[4]))
    return holders


def _process_name(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/comm", encoding="utf-8", errors="replace") as comm:
            return f" ({comm.read().strip()[:40]})"
    except OSError:
        return ""


def create_tables(lake_root: str) -> list[str]:
    """Create every table that does not exist yet (and evolve those that do); their names."""
    tables = open_tables(lake_root)
    with catalog_errors(lake_root), storage.storage_errors(lake_root), damaged_files(lake_root):
        for name in schemas.TABLES:
            tables.table(name)
    return list(schemas.TABLES)


# ---------------------------------------------------------------------------------------
# Writes


def with_partition(name: str, table: pa.Table) -> pa.Table:
    """A table's rows with ``dt`` (the UTC day of ``extracted_at``), sorted by day, then
    for reading."""
    table = table.append_column(schemas.PARTITION_COLUMN, _days(table.column("extracted_at")))
    table = table.cast(table_arrow_schema(name))
    order = [schemas.PARTITION_COLUMN, *SORT_KEYS[name]]
    return table.sort_by([(column, "ascending") for column in order])


def _days(moments: pa.ChunkedArray) -> pa.ChunkedArray:
    """'YYYY-MM-DD' of UTC timestamps (a cast: ten times faster than strftime, same text)."""
    return moments.cast(pa.date32()).cast(pa.string())


Written = dict[str, dict[str, set]]  # dt -> playlist_id -> capture times


def _written(snapshots: pa.Table) -> Written:
    """The snapshots being written, by day and playlist."""
    written: Written = defaultdict(lambda: defaultdict(set))
    for dt, playlist_id, moment in zip(
        _days(snapshots.column("extracted_at")).to_pylist(),
        snapshots.column("playlist_id").to_pylist(),
        snapshots.column("extracted_at").to_pylist(),
        strict=True,
    ):
        written[dt][playlist_id].add(moment)
    return written


def _replay_predicate(table, written: Written):
    """The rows of ``table`` that writing the ``written`` snapshots replaces, as a cheap filter.

    Exact at the table's current state, and as coarse as that allows: a day whose rows all
    belong to the written snapshots (or that has none yet) is matched by its partition alone,
    so whole files go without being read; likewise one playlist's part of a day; only a
    playlist-day that also holds other snapshots is matched snapshot by snapshot. A
    concurrent commit into the days or playlist-days matched makes this commit fail
    validation, and it is redone on the new state (``commit``).
    """
    from pyiceberg.expressions import And, EqualTo, In

    present: dict[str, dict[str, set]] = defaultdict(lambda: defaultdict(set))
    if table.current_snapshot() is not None:
        rows = table.scan(
            row_filter=In(schemas.PARTITION_COLUMN, sorted(written)),
            selected_fields=(schemas.PARTITION_COLUMN, "playlist_id", "extracted_at"),
        ).to_arrow()
        # One row per snapshot, not per entry, before any Python sees them.
        rows = rows.group_by(list(rows.column_names), use_threads=False).aggregate([])
        for dt, playlist_id, moment in zip(
            rows.column(schemas.PARTITION_COLUMN).to_pylist(),
            rows.column("playlist_id").to_pylist(),
            rows.column("extracted_at").to_pylist(),
            strict=True,
        ):
            present[dt][playlist_id].add(moment)
    whole_days = []
    playlist_days: dict[str, list[str]] = defaultdict(list)
    single_snapshots = []
    for dt, by_playlist in sorted(written.items()):
        if set(present[dt]) <= set(by_playlist) and all(
            present[dt][p] <= moments for p, moments in by_playlist.items()
        ):
            whole_days.append(dt)
            continue
        for playlist_id, moments in sorted(by_playlist.items()):
            if present[dt][playlist_id] <= moments:
                playlist_days[playlist_id].append(dt)
            else:
                single_snapshots.append(
                    And(
                        EqualTo(schemas.PARTITION_COLUMN, dt),
                        EqualTo("playlist_id", playlist_id),
                        In("extracted_at", sorted(m.isoformat() for m in moments)),
                    )
                )
    terms = []
    if whole_days:
        terms.append(In(schemas.PARTITION_COLUMN, whole_days))
    for playlist_id, days in sorted(playlist_days.items()):
        terms.append(And(EqualTo("playlist_id", playlist_id), In(schemas.PARTITION_COLUMN, days)))
    return any_of(terms + single_snapshots)


def any_of(terms: list):
    """``Or`` of many terms as a balanced tree: a chain would recurse once per term."""
    from pyiceberg.expressions import AlwaysFalse, Or

    if not terms:
        return AlwaysFalse()
    while len(terms) > 1:
        terms = [
            Or(*terms[i : i + 2]) if i + 1 < len(terms) else terms[i]
            for i in range(0, len(terms), 2)
        ]
    return terms[0]


@dataclass(frozen=True)
class StagedRows:
    """Snapshots' rows written as data files but not committed yet (picklable, so a bulk
    transform's worker processes write files in parallel and one process commits them)."""

    snapshots: pa.Table  # playlist_id and extracted_at of each snapshot written
    files: dict[str, list]  # table name -> pyiceberg DataFiles


def stage(lake_root: str, tables: dict[str, pa.Table]) -> StagedRows:
    """Write the rows of ``tables`` as data files, one per table and day (``write_day_files``)."""
    files = {}
    with catalog_errors(lake_root), storage.storage_errors(lake_root):
        for name in WRITE_ORDER:
            rows = with_partition(name, tables[name])
            files[name] = (
                write_day_files(_staging_table(lake_root, name), rows) if rows.num_rows else []
            )
    return StagedRows(tables["snapshots"].select(["playlist_id", "extracted_at"]), files)


_STAGING_TABLES: dict[tuple[str, str, int], object] = {}


def _staging_table(lake_root: str, name: str):
    """The table whose location, partitioning and schema staged files are written with.

    Loaded once per process: a bulk transform stages hundreds of days. The commit checks
    the files against the table as it is then; a column added meanwhile reads NULL in them."""
    key = (lake_root, name, os.getpid())
    table = _STAGING_TABLES.get(key)
    if table is None or set(table.schema().column_names) < set(table_arrow_schema(name).names):
        with damaged_files(lake_root):
            table = _STAGING_TABLES[key] = open_tables(lake_root).table(name)
    return table


def commit_staged(lake_root: str, staged: list[StagedRows]) -> None:
    """Commit staged rows, replacing any rows of the same snapshots already there: one
    transaction per table, ``snapshots`` last."""
    snapshots = pa.concat_tables([part.snapshots for part in staged])
    if snapshots.num_rows == 0:
        return
    catalog = open_tables(lake_root)
    written = _written(snapshots)
    for name in WRITE_ORDER:
        files = [data_file for part in staged for data_file in part.files[name]]

        def write(table, transaction, files=files):
            with damaged_files(lake_root):
                predicate = _replay_predicate(table, written)
            replace_rows(transaction, predicate, files)

        commit(catalog, name, write)


def replace_snapshots(lake_root: str, tables: dict[str, pa.Table]) -> None:
    """Commit the rows of the snapshots in ``tables["snapshots"]``, replacing any rows of
    the same snapshots already there (``stage``, then ``commit_staged``)."""
    if tables["snapshots"].num_rows:
        commit_staged(lake_root, [stage(lake_root, tables)])


def write_day_files(table, rows: pa.Table) -> list:
    """Rows sorted by ``dt`` (``with_partition``) written as one data file per day.

    ``Transaction.append`` would split the rows by partition with one filter of the whole
    table per day, which makes a year's bulk load quadratic; sorted rows are cut into days
    as slices instead and handed to pyiceberg's own writer (in parallel, as ``append``
    does), so every file carries the field ids and statistics pyiceberg gives it."""
    from pyiceberg.io.pyarrow import bin_pack_arrow_table, pyarrow_to_schema, write_file
    from pyiceberg.partitioning import PartitionFieldValue, PartitionKey
    from pyiceberg.table import TableProperties, WriteTask
    from pyiceberg.utils.properties import property_as_int

    metadata = table.metadata
    spec, schema = metadata.spec(), metadata.schema()
    (day_field,) = spec.fields
    target_size = property_as_int(
        metadata.properties,
        TableProperties.WRITE_TARGET_FILE_SIZE_BYTES,
        TableProperties.WRITE_TARGET_FILE_SIZE_BYTES_DEFAULT,
    )
    task_schema = pyarrow_to_schema(
        rows.schema, name_mapping=schema.name_mapping, format_version=metadata.format_version
    )
    days = rows.group_by(schemas.PARTITION_COLUMN, use_threads=False).aggregate([([], "count_all")])
    write_uuid = uuid.uuid4()
    counter = itertools.count(0)
    tasks = []
    offset = 0
    for day, size in zip(
        days.column(schemas.PARTITION_COLUMN).to_pylist(),
        days.column("count_all").to_pylist(),
        strict=True,
    ):
        key = PartitionKey(
            field_values=[PartitionFieldValue(field=day_field, value=day)],
            partition_spec=spec,
            schema=schema,
        )
        for batches in bin_pack_arrow_table(rows.slice(offset, size), target_size):
            tasks.append(
                WriteTask(
                    write_uuid=write_uuid,
                    task_id=next(counter),
                    record_batches=batches,
                    partition_key=key,
                    schema=task_schema,
                )
            )
        offset += size
    return list(write_file(io=table.io, table_metadata=metadata, tasks=tasks))


def replace_rows(transaction, predicate, files: list) -> None:
    """Delete the rows ``predicate`` matches and add the data files ``files``, in one
    transaction (validated, at commit, against what other writers committed meanwhile)."""
    _delete_quietly(transaction, predicate)
    if files:
        with transaction.update_snapshot().merge_append() as append:
            for data_file in files:
                append.append_data_file(data_file)


def _delete_quietly(transaction, predicate) -> None:
    # A first write of a snapshot matches nothing, which pyiceberg warns about.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Delete operation did not match any records")
        transaction.delete(predicate)


def commit(catalog: LakeTables, name: str, change: Callable, *, create: bool = True):
    """Run ``change(table, transaction)`` on table ``name`` and commit it, redoing it from the
    table's newest state when a concurrent writer invalidated it (pyiceberg retries plain
    commit races itself; a delete or overwrite whose rows another writer changed is refused
    with ``ValidationException`` and must be planned again)."""
    from pyiceberg.exceptions import CommitFailedException, ValidationException

    pause = 0.05
    for attempt in range(REDO_ATTEMPTS):
        with catalog_errors(catalog.lake_root), storage.storage_errors(catalog.lake_root):
            with damaged_files(catalog.lake_root):
                table = catalog.table(name, create=create)
            if table is None:
                return None
            transaction = table.transaction()
            change(table, transaction)
            try:
                return transaction.commit_transaction()
            except (CommitFailedException, ValidationException):
                if attempt == REDO_ATTEMPTS - 1:
                    raise
        time.sleep(pause * (1 + random.random()))
        pause = min(pause * 2, 2.0)
    return None


# ---------------------------------------------------------------------------------------
# Reads


@contextlib.contextmanager
def damaged_files(lake_root: str):
    """A file of the tables (metadata, manifest list, manifest, data file) that is missing or
    cannot be decoded, as one line naming it and the way back: rebuilding the tables from the
    raw zone. For reads only; any other failure passes unchanged."""
    from pyiceberg.exceptions import ValidationError

    try:
        yield
    except (LakeError, ConfigError):
        raise
    # Damaged table metadata, a damaged Avro file (manifest list, manifest), a damaged
    # Parquet file, a missing file: never what a write raises.
    except (
        ValidationError,
        UnicodeDecodeError,
        EOFError,
        pa.ArrowInvalid,
        FileNotFoundError,
    ) as exc:
        path = _file_being_read(exc)
        if path is None:
            raise
        reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise LakeError(
            f"cannot read {path}, a file of the tables of lake {lake_root} ({reason}): run "
            f"`spotify-etl migrate --lake {lake_root}` to rebuild the tables from the raw zone"
        ) from exc


def _file_being_read(exc: BaseException) -> str | None:
    """The table file pyiceberg was reading when ``exc`` was raised: the innermost frame that
    holds one (pyiceberg names it in none of these errors but a missing file's)."""
    from pyiceberg.io import InputFile
    from pyiceberg.table import FileScanTask

    frames = []
    trace = exc.__traceback__
    while trace is not None:
        frames.append(trace.tb_frame)
        trace = trace.tb_next
    for frame in reversed(frames):
        for value in frame.f_locals.values():
            if isinstance(value, FileScanTask):
                return value.file.file_path
            # An Avro reader (manifest lists, manifests) holds the file it reads.
            value = getattr(value, "input_file", value)
            if isinstance(value, InputFile):
                return value.location
    return None


def scan(
    lake_root: str,
    name: str,
    row_filter=None,
    columns: Iterable[str] = ("*",),
) -> pa.Table:
    """The current rows of a table (empty, with the stored schema, before any write)."""
    catalog = open_tables(lake_root)
    with catalog_errors(lake_root), storage.storage_errors(lake_root), damaged_files(lake_root):
        table = catalog.existing(name)
        if table is None:
            schema = table_arrow_schema(name)
            if tuple(columns) != ("*",):
                schema = pa.schema([schema.field(c) for c in columns])
            return schema.empty_table()
        options = {"selected_fields": tuple(columns)}
        if row_filter is not None:
            options["row_filter"] = row_filter
        return table.scan(**options).to_arrow()


def committed_raw_keys(lake_root: str) -> set[str]:
    """The raw files whose rows every table holds: those recorded in ``snapshots``."""
    return set(scan(lake_root, "snapshots", columns=("raw_key",)).column("raw_key").to_pylist())


@dataclass(frozen=True)
class PlannedTable:
    """What a reader needs of one table: its current data files and its column types."""

    name: str
    files: list[str]
    days: list[str]  # each file's partition (its dt), from the table's metadata
    schema: pa.Schema
    field_ids: dict[str, int]


def plan(lake_root: str, name: str, row_filter=None) -> PlannedTable:
    """The data files of a table's current snapshot (copy-on-write: no delete files)."""
    catalog = open_tables(lake_root)
    with catalog_errors(lake_root), storage.storage_errors(lake_root), damaged_files(lake_root):
        table = catalog.existing(name)
        if table is None:
            return PlannedTable(name, [], [], table_arrow_schema(name), {})
        schema = table.schema()
        options = {} if row_filter is None else {"row_filter": row_filter}
        files = [task.file for task in table.scan(**options).plan_files()]
    return PlannedTable(
        name,
        [file.file_path for file in files],
        [file.partition[0] for file in files],
        schema.as_arrow(),
        {field.name: field.field_id for field in schema.fields},
    )


def day_range(first: str | None, last: str | None):
    """A row filter on ``dt`` between two days (either end open)."""
    from pyiceberg.expressions import AlwaysTrue, And, GreaterThanOrEqual, LessThanOrEqual

    terms = []
    if first is not None:
        terms.append(GreaterThanOrEqual(schemas.PARTITION_COLUMN, first))
    if last is not None:
        terms.append(LessThanOrEqual(schemas.PARTITION_COLUMN, last))
    if not terms:
        return AlwaysTrue()
    return terms[0] if len(terms) == 1 else And(*terms)


# ---------------------------------------------------------------------------------------
# Object storage


@functools.cache
def _lake_file_io():
    from pyiceberg.io.fsspec import FsspecFileIO

    class LakeFileIO(FsspecFileIO):
        """pyiceberg's fsspec FileIO on the lake's own S3 filesystem, so table reads and
        writes get the bounded timeouts, retries and endpoint of every other lake call."""

        def get_fs(self, scheme: str, hostname: str | None = None):
            # Not kept per FileIO (pyiceberg's default): fsspec already keeps one filesystem
            # per set of options, and a table held across a change of AWS settings (endpoint,
            # region, profile) then reaches the store the lake's other calls reach.
            return self._get_fs(scheme, hostname)

        def _get_fs(self, scheme: str, hostname: str | None = None):
            if scheme in ("s3", "s3a", "s3n"):
                fs, _ = storage.filesystem(f"{scheme}://bucket")
                return fs
            return super()._get_fs(scheme, hostname)

    return LakeFileIO


def __getattr__(name: str):
    # pyiceberg imports ``py-io-impl`` by its dotted name; built on first use so importing
    # this module does not import pyiceberg's fsspec layer.
    if name == "LakeFileIO":
        return _lake_file_io()
    raise AttributeError(name)
