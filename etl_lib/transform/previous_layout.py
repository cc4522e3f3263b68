"""The previous release's table layout, and the check that keeps commands off a lake in it.

The previous release kept each table as loose Parquet files under ``tables/``. Until
``spotify-etl migrate`` (``etl_lib.migrate``) has rebuilt them as Iceberg tables, the tables
a command would open are empty or partial, so ``check_layout`` refuses such a lake in one
line. While ``migrate`` runs, a marker in ``tables/`` says so, so a migration that stopped
half way is not taken for a finished one either. ``etl_lib.transform.iceberg`` runs the check
when it opens a lake's tables.
"""

from __future__ import annotations

import os

from etl_lib.errors import LakeError
from etl_lib.lake import storage

WAREHOUSE = "warehouse"
PREVIOUS_TABLES = "tables"
PREVIOUS_CATALOG_FILES = ("catalog.duckdb", "catalog.duckdb.wal")
# Written before the first table is rebuilt and removed once every raw file is in the new
# tables; a hidden name, so it is never counted or listed as one of the old files.
IN_PROGRESS_MARKER = f"{PREVIOUS_TABLES}/.migration-in-progress"
# Set by ``migrate`` for its own process and the worker processes a bulk transform starts
# (forked or spawned, they inherit the environment), so they may open the tables it is
# building; not a setting.
MIGRATING_LAKE_ENV = "SPOTIFY_ETL_MIGRATING_LAKE"

# Lake roots this process found in the current layout: checked once per process.
_CURRENT_LAYOUT: set[str] = set()


def previous_layout_message(lake_root: str) -> str:
    return (
        f"lake {lake_root} holds tables in the previous release's layout: run spotify-etl "
        f"migrate --lake {lake_root} to rebuild them as Iceberg tables"
    )


def check_layout(lake_root: str) -> None:
    """Refuse, in one line naming ``spotify-etl migrate``, a lake whose tables are still the
    previous release's Parquet files (no Iceberg table written yet) or whose migration
    stopped before it finished.

    Costs one listing of the lake's top level per process and lake (one request on an
    object store): a lake without ``tables/`` is in the current layout, and is not looked
    at again.
    """
    if lake_root in _CURRENT_LAYOUT or os.environ.get(MIGRATING_LAKE_ENV) == lake_root:
        return
    entries = top_level(lake_root)
    if PREVIOUS_TABLES in entries:
        if storage.exists(lake_root, IN_PROGRESS_MARKER):
            raise LakeError(
                f"the migration of lake {lake_root} to Iceberg tables stopped before it "
                f"finished: run spotify-etl migrate --lake {lake_root} to complete it"
            )
        if WAREHOUSE not in entries:
            raise LakeError(previous_layout_message(lake_root))
    _CURRENT_LAYOUT.add(lake_root)


def forget_layout(lake_root: str | None = None) -> None:
    """Check the layout of ``lake_root`` (of every lake by default) again on next use."""
    if lake_root is None:
        _CURRENT_LAYOUT.clear()
    else:
        _CURRENT_LAYOUT.discard(lake_root)


def top_level(lake_root: str) -> set[str]:
    """The names of the files and folders directly under the lake root (one listing)."""
    fs, base = storage.filesystem(lake_root)
    if storage.is_local(lake_root):
        try:
            return set(os.listdir(base))
        except (FileNotFoundError, NotADirectoryError):
            return set()  # no lake yet: the command that needs one says so
    with storage.storage_errors(lake_root):
        try:
            return {path.rstrip("/").rsplit("/", 1)[-1] for path in fs.ls(base, refresh=True)}
        except FileNotFoundError:
            return set()
