"""kill -9 at chosen points of transform, bulk transform and compaction, then a plain rerun:
the tables hold every snapshot once, as if nothing had happened.

The kill is real (SIGKILL: no ``finally``, no atexit, no flush) and lands at a file-system
step picked by a seeded random draw: just before the Nth ``os.replace`` (a write's temporary
file is complete but not yet renamed into place) or the Nth ``os.remove`` (a compaction's
deletes). A first run without a kill counts the steps, so the draws cover the whole run and
the same seed always picks the same steps.
"""

from __future__ import annotations

import json
import random
import shutil
import signal
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from etl_lib import catalog, compaction, envelope, lake, pipeline, schemas, warehouse
from etl_lib.local_spotify import ChartSimulator

pytestmark = [pytest.mark.faults, pytest.mark.timeout(240)]

PLAYLIST = "37i9dQZEVXbNG2KDcFcKOF"
FIRST_DAY = date(2026, 10, 1)
TRIALS_PER_OPERATION = 3
SEED = 20261202

# Runs one operation on a lake in a fresh interpreter, SIGKILLing itself at the chosen step.
_RUNNER = r"""
import json, os, signal, sys
from etl_lib import compaction, pipeline

lake_root, operation, kill_at = sys.argv[1], sys.argv[2], int(sys.argv[3])
steps = 0

def step(real):
    def wrapper(*args, **kwargs):
        global steps
        steps += 1
        if steps == kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        return real(*args, **kwargs)
    return wrapper

os.replace = step(os.replace)
os.remove = step(os.remove)
if operation == "transform":
    pipeline.transform(lake_root)
elif operation == "bulk":
    pipeline.transform_bulk(lake_root, workers=1)
elif operation == "compact":
    compaction.compact(lake_root)
print(json.dumps({"steps": steps}))
"""


def _run(lake_root: str, operation: str, kill_at: int = 0) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", _RUNNER, lake_root, operation, str(kill_at)],
        capture_output=True,
        text=True,
        timeout=120,
    )


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
    corrupt = lake.raw_key(PLAYLIST, datetime(2026, 10, 2, 23, tzinfo=UTC))
    lake.write_bytes(lake_root, corrupt, b'{"extracted_at": "2026-10-02T23:00:00Z", "pages": [')


def _table_rows(lake_root: str) -> dict[str, list[tuple]]:
    """Every table's rows as readers see them (the catalog views), in a fixed order."""
    catalog.build_catalog(lake_root)
    rows = {}
    for table in schemas.TABLES:
        frame = warehouse.query(lake_root, f"SELECT * FROM {table}")
        frame = frame.sort_values(list(schemas.TABLES[table].names) + ["dt"])
        rows[table] = [tuple(row) for row in frame.itertuples(index=False)]
    return rows


def _quarantined(lake_root: str) -> list[str]:
    return list(lake.list_keys(lake_root, f"{lake.QUARANTINE}/", ".reason.txt"))


@pytest.fixture(scope="module")
def raw_lake(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("raw") / "lake"
    _land_raw_zone(str(root))
    return root


@pytest.fixture(scope="module")
def per_file_lake(raw_lake, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("per-file") / "lake"
    shutil.copytree(raw_lake, root)
    pipeline.transform(str(root))
    return root


@pytest.fixture(scope="module")
def expected_rows(per_file_lake, tmp_path_factory) -> dict[str, list[tuple]]:
    # Read from a copy: building the catalog writes into the lake.
    root = tmp_path_factory.mktemp("expected") / "lake"
    shutil.copytree(per_file_lake, root)
    rows = _table_rows(str(root))
    assert len(rows["snapshots"]) == 12 and len(rows["chart_entries"]) == 12 * 50
    return rows


def _kill_points(start: Path, operation: str, tmp_path: Path) -> list[int]:
    counting = tmp_path / "count"
    shutil.copytree(start, counting)
    done = _run(str(counting), operation)
    assert done.returncode == 0, done.stderr
    steps = json.loads(done.stdout.splitlines()[-1])["steps"]
    assert steps >= TRIALS_PER_OPERATION, f"{operation} made only {steps} file-system steps"
    draw = random.Random(f"{SEED}-{operation}")
    return sorted(draw.sample(range(1, steps + 1), TRIALS_PER_OPERATION))


@pytest.mark.parametrize("operation", ["transform", "bulk", "compact"])
def test_a_rerun_after_kill_9_leaves_every_snapshot_once(
    operation, raw_lake, per_file_lake, expected_rows, tmp_path
):
    start = per_file_lake if operation == "compact" else raw_lake
    for trial, kill_at in enumerate(_kill_points(start, operation, tmp_path)):
        root = tmp_path / f"trial-{trial}"
        shutil.copytree(start, root)

        killed = _run(str(root), operation, kill_at)
        assert killed.returncode == -signal.SIGKILL, (kill_at, killed.stderr)

        rerun = _run(str(root), operation)
        assert rerun.returncode == 0, (kill_at, rerun.stderr)
        context = f"{operation} killed before file-system step {kill_at}"
        assert _table_rows(str(root)) == expected_rows, context
        assert len(_quarantined(str(root))) == 1, context
        # Nothing is left half-done for later runs: no raw file pending, and compacting the
        # result again rewrites nothing.
        assert pipeline.pending_raw_keys(str(root)) == [], context
        if operation != "transform":
            assert compaction.compact(str(root)).partitions_rewritten == 0, context
