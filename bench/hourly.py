"""The hourly path: one raw file at a time, as the transform function handles a notification.

``build_layout`` gives a lake the data files hourly runs leave behind before any compaction:
each raw file's rows in data files of their own, one per table (what
``pipeline.transform(lake, [key])`` stages for one file). It commits them all at once: the
files are the ones hourly runs write, without a year of one commit per file, which would take
hours (``per_file_latency`` measures what one such commit costs). ``per_file_latency`` then
runs ``pipeline.transform(lake, [key])`` for each of a day's files in turn, timing each.
"""

from __future__ import annotations

import os
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from multiprocessing import get_context

from bench import BenchError
from etl_lib import pipeline
from etl_lib.lake import storage
from etl_lib.progress import Progress
from etl_lib.transform import iceberg
from etl_lib.transform.decode import TableBatch


def _stage_raw_file(lake_root: str, raw_key: str) -> iceberg.StagedRows:
    """One raw file's rows written as data files of their own, not committed."""
    batch = TableBatch()
    batch.add_json(storage.read_bytes(lake_root, raw_key), raw_key)
    return iceberg.stage(lake_root, batch.to_tables())


def _process_context():
    # Forked workers start at once; a process running threads must spawn them instead.
    if sys.platform == "linux" and threading.active_count() == 1:
        return get_context("fork")
    return get_context("spawn")


def build_layout(lake_root: str, raw_keys: list[str], progress: Progress) -> int:
    """Commit every raw file's rows as data files of their own (one commit per table);
    returns the data files committed."""
    iceberg.create_tables(lake_root)  # before the workers, which would race to create them
    with ProcessPoolExecutor(os.cpu_count() or 1, mp_context=_process_context()) as pool:
        futures = [pool.submit(_stage_raw_file, lake_root, key) for key in raw_keys]
        staged = [future.result() for future in progress(futures, "stage each raw file")]
    iceberg.commit_staged(lake_root, staged)
    return sum(len(files) for part in staged for files in part.files.values())


@dataclass(frozen=True)
class PerFile:
    """Seconds of ``pipeline.transform(lake, [key])`` per raw file, in the order run, and
    how many snapshots the tables' history held before the first and after the last."""

    seconds: list[float]
    history_before: int
    history_after: int


def history_length(lake_root: str) -> int:
    """Snapshots in the history of the ``chart_entries`` table (every table has as many)."""
    table = iceberg.open_tables(lake_root).existing("chart_entries")
    return 0 if table is None else len(table.metadata.snapshots)


def per_file_latency(lake_root: str, raw_keys: list[str], progress: Progress) -> PerFile:
    """Transform and commit each raw file on its own, as one S3 notification each."""
    before = history_length(lake_root)
    seconds = []
    for key in progress(raw_keys, "transform one raw file at a time"):
        started = time.perf_counter()
        summary = pipeline.transform(lake_root, [key])
        seconds.append(time.perf_counter() - started)
        if summary.transformed != [key] or summary.quarantined:
            raise BenchError(f"{key} did not transform: {summary.quarantined or 'no rows'}")
    return PerFile(seconds, before, history_length(lake_root))
