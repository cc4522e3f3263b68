"""Bring a lake written by the previous release (or a moved lake folder) to Iceberg tables.

The previous release kept each table as loose Parquet files under ``tables/`` with a
``catalog.duckdb`` of views over them (and, for an ``s3://`` lake, Glue tables of its own
over those files). The raw zone is the source of truth and its layout has not changed, so
``migrate`` rebuilds the tables from it instead of converting files: it transforms the raw
files no Iceberg table holds yet (every one, the first time; quarantined files stay out),
then removes the old files, then catalogs the tables. Tables whose metadata is missing or
damaged are rebuilt the same way.

``check_layout`` keeps the other commands off a lake in the old layout: the tables they
would open are empty or partial until ``migrate`` has run. While ``migrate`` runs, a
marker in ``tables/`` says so, so a migration that stopped half way is not taken for a
finished one either.

A local lake's Iceberg catalog holds absolute paths: a lake folder that was moved or copied
still names the old folder's files. ``migrate`` drops such a catalog and its warehouse and
rebuilds them from the raw zone, like an old layout.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
from dataclasses import dataclass, field
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from etl_lib import pipeline
from etl_lib.config import table_settings
from etl_lib.errors import LakeError
from etl_lib.lake import layout, storage
from etl_lib.progress import Progress, no_progress
from etl_lib.transform import iceberg, schemas
from etl_lib.transform.previous_layout import (
    IN_PROGRESS_MARKER,
    MIGRATING_LAKE_ENV,
    PREVIOUS_CATALOG_FILES,
    PREVIOUS_TABLES,
    forget_layout,
    top_level,
)


@dataclass(frozen=True)
class MigrateSummary:
    """What a migration did."""

    transform: pipeline.TransformSummary
    quarantined: int  # raw files in quarantine: no table holds their rows
    old_files_removed: int
    cataloged: list[str]
    # Glue tables of the previous layout (s3:// lakes), dropped for the Iceberg tables.
    glue_tables_dropped: list[str] = field(default_factory=list)
    # Where the Iceberg catalog of a moved or copied lake pointed before it was dropped.
    foreign_tables: str | None = None


def migrate(
    lake_root: str, *, workers: int | None = None, progress: Progress = no_progress
) -> MigrateSummary | None:
    """Rebuild the lake's tables as Iceberg tables from the raw zone and remove the previous
    release's files; None when there is nothing to migrate.

    Raw files the Iceberg tables already hold are not transformed again, so a migration
    that stopped resumes where it left off. Nothing is changed when the old ``snapshots``
    files name raw files the raw zone does not hold: rebuilding would lose those rows.
    """
    from etl_lib.warehouse import catalog  # DuckDB when migrating, not on every check of the layout

    storage.require_root(lake_root)
    foreign = foreign_tables(lake_root)
    old_catalog_files = [name for name in PREVIOUS_CATALOG_FILES if storage.exists(lake_root, name)]
    previous = PREVIOUS_TABLES in top_level(lake_root) or bool(old_catalog_files)
    with _migrating(lake_root):
        glue_tables = _previous_glue_tables(lake_root)
        damaged = None if (previous or foreign or glue_tables) else _unreadable(lake_root)
        if not (previous or foreign or glue_tables or damaged):
            return None
        _check_raw_zone_covers_old_tables(lake_root)
        storage.write_bytes(lake_root, IN_PROGRESS_MARKER, b"spotify-etl migrate is running\n")
        if damaged and not storage.is_local(lake_root):
            glue_tables = _existing_tables(lake_root)
        if foreign or (damaged and storage.is_local(lake_root)):
            _drop_local_tables(lake_root)
        for name in glue_tables:
            _drop_glue_table(lake_root, name)
        summary = pipeline.transform_bulk(lake_root, workers=workers, progress=progress)
        storage.delete(lake_root, [IN_PROGRESS_MARKER])
        removed = _remove_previous_files(lake_root, old_catalog_files)
        cataloged = catalog.build_catalog(lake_root, "duckdb")
    quarantined = sum(
        1 for _ in storage.list_keys(lake_root, f"{layout.QUARANTINE}/", ".reason.txt")
    )
    return MigrateSummary(summary, quarantined, removed, cataloged, glue_tables, foreign)


@contextlib.contextmanager
def _migrating(lake_root: str):
    """Let this process and its workers open the lake's tables while they are rebuilt."""
    forget_layout(lake_root)
    before = os.environ.get(MIGRATING_LAKE_ENV)
    os.environ[MIGRATING_LAKE_ENV] = lake_root
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(MIGRATING_LAKE_ENV, None)
        else:
            os.environ[MIGRATING_LAKE_ENV] = before


def foreign_tables(lake_root: str) -> str | None:
    """Where the tables of a local lake's own catalog live, when that is not under this
    lake's warehouse (the folder was moved or copied) or their metadata is gone; else None.

    Read from the catalog database itself: loading a table whose metadata lies in a folder
    that no longer exists would fail before its location could be compared."""
    if not storage.is_local(lake_root) or table_settings().catalog_uri:
        return None
    path = Path(iceberg.local_catalog_path(lake_root))
    if not path.is_file():
        return None
    try:
        with contextlib.closing(
            sqlite3.connect(path.resolve().as_uri() + "?mode=ro", uri=True)
        ) as database:
            locations = [
                row[0]
                for row in database.execute(
                    "SELECT metadata_location FROM iceberg_tables "
                    "WHERE metadata_location IS NOT NULL ORDER BY table_name"
                )
            ]
    except sqlite3.OperationalError:
        return None  # a catalog no table was written to yet
    warehouse = iceberg.warehouse_location(lake_root) + "/"
    for location in locations:
        outside = not location.startswith(warehouse)
        if outside or not os.path.exists(location.removeprefix("file://")):
            # <warehouse>/<namespace>.db/<table>/metadata/<file>: name the warehouse.
            return location.rsplit("/", 4)[0]
    return None


def _unreadable(lake_root: str) -> str | None:
    """Why the lake's tables cannot be read (a metadata, manifest list or manifest file
    missing or damaged), or None when every table plans."""
    try:
        for name in schemas.TABLES:
            iceberg.plan(lake_root, name)
    except LakeError as exc:
        return str(exc)
    return None


def _existing_tables(lake_root: str) -> list[str]:
    """The lake's table names its catalog holds (to drop before a rebuild)."""
    tables = iceberg.open_tables(lake_root)
    with iceberg.catalog_errors(lake_root):
        return sorted(
            name for name in schemas.TABLES if tables.catalog.table_exists(tables.identifier(name))
        )


def _drop_local_tables(lake_root: str) -> None:
    """Remove a local lake's Iceberg catalog and warehouse, and forget them in this process."""
    _, base = storage.filesystem(lake_root)
    catalog_file = iceberg.local_catalog_path(lake_root)
    for path in (catalog_file, catalog_file + "-journal", catalog_file + "-wal"):
        with contextlib.suppress(FileNotFoundError):
            os.remove(path)
    shutil.rmtree(os.path.join(base, iceberg.WAREHOUSE), ignore_errors=True)
    # Catalogs and tables opened before still hold the removed database and locations.
    iceberg.forget(lake_root)


def _previous_glue_tables(lake_root: str) -> list[str]:
    """The lake's table names that the Glue database holds as the previous release's
    external Parquet tables (not Iceberg); pyiceberg cannot load or replace those."""
    if storage.is_local(lake_root) or table_settings().catalog_uri:
        return []
    tables = iceberg.open_tables(lake_root)
    glue = tables.catalog.glue
    names = []
    with iceberg.catalog_errors(lake_root):
        for page in glue.get_paginator("get_tables").paginate(DatabaseName=tables.namespace):
            for table in page["TableList"]:
                kind = (table.get("Parameters") or {}).get("table_type", "")
                if table["Name"] in schemas.TABLES and kind.lower() != "iceberg":
                    names.append(table["Name"])
    return sorted(names)


def _drop_glue_table(lake_root: str, name: str) -> None:
    tables = iceberg.open_tables(lake_root)
    with iceberg.catalog_errors(lake_root):
        tables.catalog.drop_table(tables.identifier(name))


def _check_raw_zone_covers_old_tables(lake_root: str) -> None:
    """Refuse to migrate when the old ``snapshots`` files hold snapshots whose raw files are
    gone: the rebuilt tables would silently lack them."""
    prefix = f"{PREVIOUS_TABLES}/snapshots/"
    files = list(storage.list_keys(lake_root, prefix, ".parquet"))
    if not files:
        return
    fs, base = storage.filesystem(lake_root)
    try:
        with storage.storage_errors(lake_root, prefix):
            named = pq.read_table(
                [f"{base}/{key}" for key in files], columns=["raw_key"], filesystem=fs
            )
    except (pa.ArrowException, OSError) as exc:
        raise LakeError(
            f"cannot read the previous layout's snapshots under {storage.url(lake_root, prefix)} "
            f"({' '.join(str(exc).split())[:300]}): remove or restore the broken file, then "
            "run migrate again"
        ) from exc
    missing = sorted(
        set(named.column("raw_key").to_pylist()) - set(pipeline.all_raw_keys(lake_root))
    )
    if missing:
        raise LakeError(
            f"the tables of lake {lake_root} hold {len(missing)} snapshots whose raw files are "
            f"not in the raw zone (first: {missing[0]}); migrate rebuilds the tables from the "
            "raw zone and would lose them: restore those raw files (or delete "
            f"{storage.url(lake_root, PREVIOUS_TABLES)} to let them go), then run migrate again"
        )


def _remove_previous_files(lake_root: str, catalog_files: list[str]) -> int:
    """Delete the previous layout's table files and DuckDB catalog; how many there were."""
    keys = list(storage.list_keys(lake_root, f"{PREVIOUS_TABLES}/"))
    storage.delete(lake_root, catalog_files)
    storage.delete(lake_root, keys)
    if storage.is_local(lake_root):
        # Folders (and temporary files of killed writes) stay behind file deletion.
        _, base = storage.filesystem(lake_root)
        shutil.rmtree(os.path.join(base, PREVIOUS_TABLES), ignore_errors=True)
    return len(keys) + len(catalog_files)
