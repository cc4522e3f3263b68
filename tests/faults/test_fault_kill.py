"""kill -9 at chosen points of transform, bulk transform and compaction, then a plain rerun:
the tables hold every snapshot once, as if nothing had happened.

The kill is real (SIGKILL: no ``finally``, no atexit, no flush) and lands at a step picked by
a seeded random draw among every step that leaves something on disk: creating a file of a
table (data file, manifest, manifest list, table metadata, all through pyiceberg's
``PyArrowFile.create``), deleting one (``PyArrowFileIO.delete``, ``os.remove``), switching a
table to its new metadata in the SQLite catalog (``SqlCatalog.commit_table``) and renaming a
raw-zone file into place (``os.replace``). A first run without a kill counts the steps; the
run is cut into as many stretches as there are trials and each trial's step is drawn from its
own stretch, so the kills fall early (files written, nothing committed), late (some tables
committed, not all) and between, and the same seed always picks the same steps.
"""

from __future__ import annotations

import functools
import itertools
import os
import random
import shutil
import signal
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest
from conftest import in_environment, worker_processes

from etl_lib import pipeline
from etl_lib.extract import envelope
from etl_lib.lake import layout, storage
from etl_lib.local_spotify import ChartSimulator
from etl_lib.transform import compaction, schemas
from etl_lib.warehouse import execute

pytestmark = [pytest.mark.faults, pytest.mark.timeout(240)]

PLAYLIST = "37i9dQZEVXbNG2KDcFcKOF"
FIRST_DAY = date(2026, 10, 1)
TRIALS_PER_OPERATION = 4
SEED = 20261202
OPERATIONS = {
    "transform": pipeline.transform,
    "bulk": lambda root: pipeline.transform_bulk(root, workers=1),
    # Expiring at once, so the kill also lands among the deletes of replaced files.
    "compact": lambda root: compaction.compact(root, retention=timedelta(0)),
}


def _steps():
    from pyiceberg.catalog.sql import SqlCatalog
    from pyiceberg.io.pyarrow import PyArrowFile, PyArrowFileIO

    return [
        (PyArrowFile, "create"),
        (PyArrowFileIO, "delete"),
        (SqlCatalog, "commit_table"),
        (os, "replace"),
        (os, "remove"),
    ]


def _run_counting_steps(lake_root: str, operation: str, kill_at: int, answer) -> None:
    """Run ``operation``, SIGKILLing this process at step ``kill_at`` (never when 0); the
    number of steps taken goes to ``answer``."""
    counter = itertools.count(1)
    taken = [0]

    def step(real):
        @functools.wraps(real)
        def wrapper(*args, **kwargs):
            # Data files are written by pyiceberg's threads: next() on a count is atomic.
            taken[0] = number = next(counter)
            if number == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
            return real(*args, **kwargs)

        return wrapper

    for owner, name in _steps():
        setattr(owner, name, step(getattr(owner, name)))
    OPERATIONS[operation](lake_root)
    answer.put(taken[0])


def _run(lake_root: str, operation: str, kill_at: int = 0) -> tuple[int, int | None]:
    """Exit code and steps taken of ``operation`` in a process of its own."""
    context = worker_processes()
    answer = context.SimpleQueue()
    process = context.Process(
        target=in_environment,
        args=(dict(os.environ), _run_counting_steps, lake_root, operation, kill_at, answer),
    )
    process.start()
    process.join(timeout=120)
    if process.is_alive():
        process.kill()
        process.join()
    steps = None if answer.empty() else answer.get()
    return process.exitcode, steps


def _simulated_envelope(simulator: ChartSimulator, moment: datetime) -> dict:
    entries = simulator.chart(PLAYLIST, moment.date())
    page = {"items": entries, "offset": 0, "limit": 50, "next": None, "total": len(entries)}
    source = {"kind": "spotify-web-api", "api_base_url": "https://api.spotify.com/v1"}
    playlist = simulator.playlist(PLAYLIST, moment.date())
    return envelope.make_envelope(playlist, [page], moment, source)


def _land_raw_zone(lake_root: str) -> None:
    """Three days of four snapshots each, plus one file that goes to quarantine."""
    simulator = ChartSimulator()
    for offset in range(3):
        day = FIRST_DAY + timedelta(days=offset)
        for hour in (0, 6, 12, 18):
            moment = datetime(day.year, day.month, day.day, hour, tzinfo=UTC)
            pipeline.land_raw(lake_root, _simulated_envelope(simulator, moment))
    corrupt = layout.raw_key(PLAYLIST, datetime(2026, 10, 2, 23, tzinfo=UTC))
    storage.write_bytes(lake_root, corrupt, b'{"extracted_at": "2026-10-02T23:00:00Z", "pages": [')


def _table_rows(lake_root: str) -> dict[str, list[tuple]]:
    """Every table's rows as readers see them (the DuckDB views), in a fixed order."""
    frames = execute.query_all(
        lake_root, {table: (f"SELECT * FROM {table}", None) for table in schemas.TABLES}
    )
    rows = {}
    for table, frame in frames.items():
        frame = frame.sort_values(list(schemas.TABLES[table].names) + ["dt"])
        rows[table] = [tuple(row) for row in frame.itertuples(index=False)]
    return rows


def _quarantined(lake_root: str) -> list[str]:
    return list(storage.list_keys(lake_root, f"{layout.QUARANTINE}/", ".reason.txt"))


def _files_per_day(lake_root: str) -> set[int]:
    return {
        count
        for table in schemas.TABLES
        for count in compaction.files_per_day(lake_root, table).values()
    }


@pytest.fixture(scope="module")
def raw_lake(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("raw") / "lake"
    _land_raw_zone(str(root))
    return root


@pytest.fixture(scope="module")
def expected_rows(raw_lake, tmp_path_factory) -> dict[str, list[tuple]]:
    root = tmp_path_factory.mktemp("expected") / "lake"
    shutil.copytree(raw_lake, root)
    pipeline.transform(str(root))
    rows = _table_rows(str(root))
    assert len(rows["snapshots"]) == 12 and len(rows["chart_entries"]) == 12 * 50
    return rows


def _start(raw_lake: Path, root: Path, operation: str) -> None:
    """The lake an operation starts from: the raw zone, and for a compaction the tables
    written by two transforms (two files a day). Tables are built in place: their metadata
    names absolute paths."""
    shutil.copytree(raw_lake, root)
    if operation == "compact":
        keys = pipeline.pending_raw_keys(str(root))
        pipeline.transform(str(root), keys[0::2])
        pipeline.transform(str(root), keys[1::2])
        assert _files_per_day(str(root)) == {2}


def _kill_points(raw_lake: Path, operation: str, tmp_path: Path) -> list[int]:
    counting = tmp_path / "count"
    _start(raw_lake, counting, operation)
    exit_code, steps = _run(str(counting), operation)
    assert exit_code == 0
    assert steps >= TRIALS_PER_OPERATION, f"{operation} took only {steps} steps"
    draw = random.Random(f"{SEED}-{operation}")
    bounds = [1 + steps * trial // TRIALS_PER_OPERATION for trial in range(TRIALS_PER_OPERATION)]
    return [draw.randrange(start, end) for start, end in itertools.pairwise([*bounds, steps + 1])]


@pytest.mark.parametrize("operation", list(OPERATIONS))
def test_a_rerun_after_kill_9_leaves_every_snapshot_once(
    operation, raw_lake, expected_rows, tmp_path
):
    for trial, kill_at in enumerate(_kill_points(raw_lake, operation, tmp_path)):
        root = tmp_path / f"trial-{trial}"
        _start(raw_lake, root, operation)
        context = f"{operation} killed at step {kill_at}"

        exit_code, _ = _run(str(root), operation, kill_at)
        assert exit_code == -signal.SIGKILL, context
        if operation == "compact":
            # Whatever the kill interrupted, readers see the same rows as before.
            assert _table_rows(str(root)) == expected_rows, context

        OPERATIONS[operation](str(root))
        assert _table_rows(str(root)) == expected_rows, context
        assert len(_quarantined(str(root))) == 1, context
        # Nothing is left half-done for later runs: no raw file pending, and compacting the
        # result again rewrites nothing.
        assert pipeline.pending_raw_keys(str(root)) == [], context
        if operation != "transform":
            assert _files_per_day(str(root)) == {1}, context
            assert compaction.compact(str(root)).days_rewritten == 0, context
