"""The lake's tables as Apache Iceberg tables, written and planned with pyiceberg.

Every table of ``etl_lib.schemas`` is an Iceberg table partitioned by identity on ``dt`` (the
capture day, a string column the shipped SQL filters on). Which table holds what is the
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
import os
import random
import time
import warnings
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime

import pyarrow as pa
import pyarrow.compute as pc

from etl_lib import lake, schemas
from etl_lib.config import TableSettings, table_settings
from etl_lib.errors import ConfigError, LakeError

LOCAL_CATALOG_FILE = "iceberg_catalog.db"
WAREHOUSE = "warehouse"
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
}
# Transactions redone from scratch after a conflicting writer (see ``commit``).
REDO_ATTEMPTS = 20


def table_arrow_schema(name: str) -> pa.Schema:
    """A table's Arrow schema as stored: ``etl_lib.schemas`` plus the ``dt`` column."""
    return schemas.TABLES[name].append(
        pa.field(schemas.PARTITION_COLUMN, pa.string(), nullable=False)
    )


def warehouse_location(lake_root: str) -> str:
    if lake.is_local(lake_root):
        _, base = lake.filesystem(lake_root)
        return "file://" + os.path.abspath(os.path.join(base, WAREHOUSE))
    return lake.url(lake_root, WAREHOUSE)


def local_catalog_path(lake_root: str) -> str:
    _, base = lake.filesystem(lake_root)
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
        (columns added to ``etl_lib.schemas`` are added by name; older rows read NULL)."""
        from pyiceberg.exceptions import NoSuchTableError

        try:
            table = self.catalog.load_table(self.identifier(name))
        except NoSuchTableError:
            if not create:
                return None
            table = self._create(name)
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
        expected = warehouse_location(self.lake_root)
        if lake.is_local(self.lake_root) and not table.location().startswith(expected + "/"):
            # Iceberg metadata holds absolute paths: a lake folder that moved still points at
            # the old place.
            raise LakeError(
                f"the tables of lake {self.lake_root!r} live at {table.location()}, not under "
                f"{expected} (the lake folder was moved or copied): run `spotify-etl migrate "
                f"--lake {self.lake_root}` to rebuild them from the raw zone"
            )


def _evolved(table, name: str):
    wanted = table_arrow_schema(name)
    present = set(table.schema().column_names)
    if all(field.name in present for field in wanted):
        return table
    # New columns are optional: rows written before them have no value.
    added = pa.schema([field.with_nullable(True) for field in wanted if field.name not in present])
    with table.update_schema() as update:
        update.union_by_name(added)
    return table


@functools.cache
def _open(lake_root: str, settings: TableSettings) -> LakeTables:
    try:
        from pyiceberg.catalog.sql import SqlCatalog
    except ImportError as exc:  # pragma: no cover - a core dependency
        raise ConfigError("the lake's tables need pyiceberg: pip install pyiceberg") from exc
    warehouse = warehouse_location(lake_root)
    io = {} if lake.is_local(lake_root) else {"py-io-impl": "etl_lib.iceberg.LakeFileIO"}
    uri = settings.catalog_uri
    if uri:
        if uri.startswith(("http://", "https://")):
            from pyiceberg.catalog.rest import RestCatalog

            catalog = RestCatalog("lake", uri=uri, warehouse=warehouse, **io)
        else:
            catalog = SqlCatalog("lake", uri=uri, warehouse=warehouse, **io)
        namespace = settings.namespace
    elif lake.is_local(lake_root):
        lake.ensure_root(lake_root)
        path = local_catalog_path(lake_root)
        # timeout: SQLite waits this long for another process's commit instead of failing.
        catalog = SqlCatalog("lake", uri=f"sqlite:///{path}?timeout=30", warehouse=warehouse)
        namespace = LOCAL_NAMESPACE
    else:
        from pyiceberg.catalog.glue import GlueCatalog

        options = {"warehouse": warehouse, **io}
        if settings.aws_region:
            options["glue.region"] = settings.aws_region
        if settings.aws_profile:
            options["glue.profile-name"] = settings.aws_profile
        catalog = GlueCatalog("lake", **options)
        namespace = settings.namespace
    return LakeTables(lake_root, catalog, namespace)


def open_tables(lake_root: str, settings: TableSettings | None = None) -> LakeTables:
    """The lake's catalog (created on first use for a local lake) and namespace."""
    settings = settings or table_settings()
    tables = _open(lake_root, settings)
    with _catalog_errors(lake_root):
        tables.catalog.create_namespace_if_not_exists(tables.namespace)
    return tables


@contextlib.contextmanager
def _catalog_errors(lake_root: str):
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


def _catalog_error(lake_root: str, exc: BaseException) -> LakeError | None:
    try:
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError:  # no AWS extra
        return None
    if isinstance(exc, BotoCoreError | ClientError):
        from etl_lib.glue import aws_error

        error = aws_error(exc, service="AWS Glue", resource=f"the tables of {lake_root}")
        if error is not None:
            return LakeError(str(error))
    return None


def create_tables(lake_root: str) -> list[str]:
    """Create every table that does not exist yet (and evolve those that do); their names."""
    tables = open_tables(lake_root)
    with _catalog_errors(lake_root), lake.storage_errors(lake_root):
        for name in schemas.TABLES:
            tables.table(name)
    return list(schemas.TABLES)


# ---------------------------------------------------------------------------------------
# Writes


def with_partition(name: str, table: pa.Table) -> pa.Table:
    """A table's rows with ``dt`` (the UTC day of ``extracted_at``), sorted for reading."""
    days = pc.strftime(table.column("extracted_at"), format="%Y-%m-%d", locale="C")
    table = table.append_column(schemas.PARTITION_COLUMN, days.cast(pa.string()))
    table = table.cast(table_arrow_schema(name))
    return table.sort_by([(column, "ascending") for column in SORT_KEYS[name]])


def _snapshot_predicate(snapshots: pa.Table):
    """Rows of exactly these snapshots (playlist, day, capture time), in every table."""
    from pyiceberg.expressions import And, EqualTo, In

    moments: dict[tuple[str, str], list[str]] = defaultdict(list)
    for playlist_id, extracted_at in zip(
        snapshots.column("playlist_id").to_pylist(),
        snapshots.column("extracted_at").to_pylist(),
        strict=True,
    ):
        moments[(lake.partition_date(extracted_at), playlist_id)].append(extracted_at.isoformat())
    terms = [
        And(
            EqualTo(schemas.PARTITION_COLUMN, dt),
            EqualTo("playlist_id", playlist_id),
            In("extracted_at", sorted(set(values))),
        )
        for (dt, playlist_id), values in sorted(moments.items())
    ]
    return any_of(terms)


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


def replace_snapshots(lake_root: str, tables: dict[str, pa.Table]) -> None:
    """Commit the rows of the snapshots in ``tables["snapshots"]``, replacing any rows of
    the same snapshots already there: one transaction per table, ``snapshots`` last."""
    if tables["snapshots"].num_rows == 0:
        return
    catalog = open_tables(lake_root)
    predicate = _snapshot_predicate(tables["snapshots"])
    for name in WRITE_ORDER:
        rows = with_partition(name, tables[name])

        def write(_table, transaction, rows=rows):
            _delete_quietly(transaction, predicate)
            if rows.num_rows:
                transaction.append(rows)

        commit(catalog, name, write)


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
        with _catalog_errors(catalog.lake_root), lake.storage_errors(catalog.lake_root):
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


def scan(
    lake_root: str,
    name: str,
    row_filter=None,
    columns: Iterable[str] = ("*",),
) -> pa.Table:
    """The current rows of a table (empty, with the stored schema, before any write)."""
    catalog = open_tables(lake_root)
    with _catalog_errors(lake_root), lake.storage_errors(lake_root):
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
    schema: pa.Schema
    field_ids: dict[str, int]


def plan(lake_root: str, name: str, row_filter=None) -> PlannedTable:
    """The data files of a table's current snapshot (copy-on-write: no delete files)."""
    catalog = open_tables(lake_root)
    with _catalog_errors(lake_root), lake.storage_errors(lake_root):
        table = catalog.existing(name)
        if table is None:
            return PlannedTable(name, [], table_arrow_schema(name), {})
        schema = table.schema()
        options = {} if row_filter is None else {"row_filter": row_filter}
        files = [task.file.file_path for task in table.scan(**options).plan_files()]
    return PlannedTable(
        name,
        files,
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


def capture_day(moment: datetime) -> str:
    return lake.partition_date(moment)


# ---------------------------------------------------------------------------------------
# Object storage


@functools.cache
def _lake_file_io():
    from pyiceberg.io.fsspec import FsspecFileIO

    class LakeFileIO(FsspecFileIO):
        """pyiceberg's fsspec FileIO on the lake's own S3 filesystem, so table reads and
        writes get the bounded timeouts, retries and endpoint of every other lake call."""

        def _get_fs(self, scheme: str, hostname: str | None = None):
            if scheme in ("s3", "s3a", "s3n"):
                fs, _ = lake.filesystem(f"{scheme}://bucket")
                return fs
            return super()._get_fs(scheme, hostname)

    return LakeFileIO


def __getattr__(name: str):
    # pyiceberg imports ``py-io-impl`` by its dotted name; built on first use so importing
    # this module does not import pyiceberg's fsspec layer.
    if name == "LakeFileIO":
        return _lake_file_io()
    raise AttributeError(name)
