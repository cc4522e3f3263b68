"""The local DuckDB catalog under concurrency, odd paths, copies and leftovers of killed writes."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from etl_lib import catalog, cli, lake, pipeline, spotify, warehouse

pytestmark = [pytest.mark.faults, pytest.mark.timeout(120)]

CATALOG = catalog.CATALOG_FILE
PER_SNAPSHOT_SQL = (
    "SELECT CAST(extracted_at AS VARCHAR) AS snapshot, count(*) AS entries "
    "FROM chart_entries GROUP BY 1 ORDER BY 1"
)
# A subprocess's interpreter start and imports, on a busy 2-core machine.
START_ALLOWANCE = 15.0


def _land(settings, server, lake_root: str, snapshots: int, first: int = 0) -> list[str]:
    """Extract ``snapshots`` hourly snapshots into ``lake_root``'s raw zone."""
    settings = dataclasses.replace(settings, lake=lake_root)
    reader = spotify.make_reader(settings)
    start = datetime(2026, 10, 1, tzinfo=UTC)
    for hour in range(first, first + snapshots):
        moment = start + timedelta(hours=hour)
        server.set_time(moment)
        pipeline.extract(settings, reader=reader, clock=lambda m=moment: m, force=True)
    return pipeline.pending_raw_keys(lake_root)


def _per_snapshot(lake_root: str) -> dict[str, int]:
    frame = warehouse.query(lake_root, PER_SNAPSHOT_SQL)
    return dict(zip(frame["snapshot"], frame["entries"].astype(int), strict=True))


@pytest.fixture
def cataloged(settings, spotify_server) -> tuple[str, dict[str, int]]:
    """A transformed, cataloged lake and its rows per snapshot."""
    _land(settings, spotify_server, settings.lake, snapshots=4)
    pipeline.transform(settings.lake)
    catalog.build_catalog(settings.lake)
    counts = _per_snapshot(settings.lake)
    assert len(counts) == 4 and set(counts.values()) == {50}
    return settings.lake, counts


def _python(code: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(process: subprocess.Popen, timeout: float = 60) -> tuple[str, str]:
    try:
        out, err = process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()
    assert process.returncode == 0, err
    assert "Traceback" not in err, err
    return out, err


HOLD_A_QUERY = """
    import json, sys
    from etl_lib import catalog
    connection = catalog.connect(sys.argv[1])
    sql = "SELECT count(*) FROM chart_entries"
    print(connection.execute(sql).fetchone()[0], flush=True)
    sys.stdin.readline()  # holds the connection until told to query again
    print(connection.execute(sql).fetchone()[0], flush=True)
    connection.close()
"""


def test_catalog_while_a_query_holds_the_catalog_succeeds_at_once(cataloged):
    lake_root, counts = cataloged
    reader = _python(HOLD_A_QUERY, lake_root)
    try:
        assert int(reader.stdout.readline()) == sum(counts.values())
        started = time.monotonic()
        for _ in range(3):
            assert cli.main(["catalog", "--lake", lake_root]) == 0
        assert time.monotonic() - started < catalog.LOCK_WAIT_SECONDS
        assert _per_snapshot(lake_root) == counts
        # The open connection still reads its catalog, whole.
        reader.stdin.write("again\n")
        reader.stdin.flush()
        out, _ = _finish(reader)
        assert int(out) == sum(counts.values())
    finally:
        if reader.poll() is None:
            reader.kill()
            reader.communicate()


HOLD_FOR_WRITING = """
    import sys, duckdb
    connection = duckdb.connect(sys.argv[1])  # what a duckdb shell on the file does
    print("holding", flush=True)
    sys.stdin.readline()
"""


def test_a_catalog_locked_for_writing_is_waited_for_then_named_with_its_pid(
    cataloged, monkeypatch, capsys
):
    lake_root, counts = cataloged
    monkeypatch.setattr(catalog, "LOCK_WAIT_SECONDS", 1.0)
    holder = _python(HOLD_FOR_WRITING, catalog.catalog_path(lake_root))
    try:
        assert holder.stdout.readline().strip() == "holding"
        capsys.readouterr()
        started = time.monotonic()
        assert cli.main(["query", "--lake", lake_root, "SELECT 1"]) == 1
        waited = time.monotonic() - started
        assert 1.0 <= waited < 5.0
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and f"PID {holder.pid}" in err[0] and CATALOG in err[0]
        # A build does not wait for it: the new catalog is a new file, not locked.
        assert cli.main(["catalog", "--lake", lake_root]) == 0
        assert _per_snapshot(lake_root) == counts
    finally:
        holder.kill()
        holder.communicate()


BUILD = """
    import sys
    from etl_lib import catalog
    for _ in range(int(sys.argv[2])):
        catalog.build_catalog(sys.argv[1])
"""


def test_concurrent_catalog_builds_all_succeed(cataloged):
    lake_root, counts = cataloged
    builders = [_python(BUILD, lake_root, "5") for _ in range(3)]
    for builder in builders:
        _finish(builder)
    assert _per_snapshot(lake_root) == counts
    assert [name for name in os.listdir(lake_root) if name.startswith(".")] == []


WRITER = """
    import sys, time
    from etl_lib import pipeline
    for key in pipeline.pending_raw_keys(sys.argv[1]):
        pipeline.transform(sys.argv[1], [key])
        time.sleep(0.2)
"""
CATALOGER = """
    import sys, time
    from etl_lib import catalog
    deadline = time.monotonic() + float(sys.argv[2])
    while time.monotonic() < deadline:
        catalog.build_catalog(sys.argv[1])
"""
READER = """
    import json, sys, time
    from etl_lib import warehouse
    deadline = time.monotonic() + float(sys.argv[2])
    while time.monotonic() < deadline:
        frame = warehouse.query(sys.argv[1], sys.argv[3])
        print(json.dumps(dict(zip(frame["snapshot"], frame["entries"].astype(int).tolist()))),
              flush=True)
"""


def test_catalog_query_and_transform_at_once_answer_consistently(settings, spotify_server):
    lake_root = settings.lake
    _land(settings, spotify_server, lake_root, snapshots=2)
    pipeline.transform(lake_root)
    catalog.build_catalog(lake_root)
    pending = _land(settings, spotify_server, lake_root, snapshots=12, first=2)
    assert len(pending) == 12

    seconds = "4"
    processes = [
        _python(WRITER, lake_root),
        _python(CATALOGER, lake_root, seconds),
        _python(READER, lake_root, seconds, PER_SNAPSHOT_SQL),
        _python(READER, lake_root, seconds, PER_SNAPSHOT_SQL),
    ]
    outputs = [_finish(process, timeout=START_ALLOWANCE + 60)[0] for process in processes]

    final = _per_snapshot(lake_root)
    assert len(final) == 14 and set(final.values()) == {50}
    for output in outputs[2:]:
        answers = [json.loads(line) for line in output.splitlines()]
        assert len(answers) >= 2
        seen = 0
        for answer in answers:
            # Every snapshot a query sees is whole and counted once; none goes missing later.
            assert all(final[snapshot] == entries for snapshot, entries in answer.items())
            assert len(answer) >= seen
            seen = len(answer)


def test_a_lake_path_with_glob_characters_works_end_to_end(
    tmp_path, settings, spotify_server, capsys
):
    odd = str(tmp_path / "lake [x]?*{ab}")
    # What the path would match as a glob: a decoy lake that must never be read.
    decoy = str(tmp_path / "lake xQab")
    _land(settings, spotify_server, decoy, snapshots=1, first=9)
    assert cli.main(["transform", "--lake", decoy]) == 0
    _land(settings, spotify_server, odd, snapshots=3)
    for command in (["transform"], ["compact"], ["catalog"]):
        assert cli.main([*command, "--lake", odd]) == 0
    capsys.readouterr()
    assert cli.main(["query", "--lake", odd, "--format", "json", PER_SNAPSHOT_SQL]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(row["snapshot"][:13], row["entries"]) for row in rows] == [
        ("2026-10-01 00", 50),
        ("2026-10-01 01", 50),
        ("2026-10-01 02", 50),
    ]


def test_a_lake_path_with_a_comma_is_refused_in_one_line(
    settings, spotify_server, tmp_path, capsys
):
    comma = str(tmp_path / "a,b")
    _land(settings, spotify_server, comma, snapshots=1)
    assert cli.main(["catalog", "--lake", comma]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "comma" in err[0] and "a,b" in err[0]


def test_a_copied_lake_reads_its_own_files(cataloged, tmp_path):
    lake_root, counts = cataloged
    copy = str(tmp_path / "elsewhere" / "lake")
    shutil.copytree(lake_root, copy)
    shutil.rmtree(lake_root)
    assert _per_snapshot(copy) == counts
    files = warehouse.query(copy, "SELECT DISTINCT filename FROM read_parquet("
                            "'tables/chart_entries/*/*.parquet', filename = true)")
    assert all(name.startswith(copy) for name in files["filename"])


def test_stale_temporary_files_are_cleaned_and_never_read(cataloged):
    lake_root, counts = cataloged
    [first, *_] = sorted(Path(lake_root, lake.TABLES, "chart_entries").rglob("*.parquet"))
    # Whole Parquet files under temporary names: read by mistake, they would add rows.
    stale = Path(lake.temporary_path(str(first)))
    fresh = Path(lake.temporary_path(str(first)))
    stale_catalog = Path(lake.temporary_path(catalog.catalog_path(lake_root)))
    for path in (stale, fresh, stale_catalog):
        shutil.copyfile(first, path)
    assert pq.read_table(stale).num_rows == 50
    two_hours_ago = time.time() - 2 * 3600
    for path in (stale, stale_catalog):
        os.utime(path, (two_hours_ago, two_hours_ago))

    assert _per_snapshot(lake_root) == counts
    assert pipeline.pending_raw_keys(lake_root) == []
    assert cli.main(["catalog", "--lake", lake_root]) == 0
    assert not stale.exists() and not stale_catalog.exists()
    assert fresh.exists()  # young enough to belong to a write still running
    assert _per_snapshot(lake_root) == counts
    assert cli.main(["compact", "--lake", lake_root]) == 0
    assert _per_snapshot(lake_root) == counts


WRITE_A_VIEW = """
    import sys, duckdb
    connection = duckdb.connect(sys.argv[1])  # another program writing to the catalog
    connection.execute("CREATE VIEW answer AS SELECT 42")
    print("written", flush=True)
    sys.stdin.readline()
"""


def test_a_catalog_another_program_wrote_to_is_replaced_with_its_log(cataloged, tmp_path, capsys):
    lake_root, counts = cataloged
    path = catalog.catalog_path(lake_root)
    writer = _python(WRITE_A_VIEW, path)
    try:
        assert writer.stdout.readline().strip() == "written"
        assert os.path.exists(f"{path}.wal")
        saved_log = tmp_path / "foreign.wal"
        shutil.copyfile(f"{path}.wal", saved_log)
        assert cli.main(["catalog", "--lake", lake_root]) == 0
        # The old file's log went with it: the new catalog answers, and keeps answering.
        assert not os.path.exists(f"{path}.wal")
        for _ in range(2):
            assert _per_snapshot(lake_root) == counts

        # A foreign log beside a catalog it does not belong to: one line saying what to run.
        shutil.copyfile(saved_log, f"{path}.wal")
        capsys.readouterr()
        assert cli.main(["query", "--lake", lake_root, "SELECT 1"]) == 1
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "spotify-etl catalog" in err[0] and ".wal" in err[0], err
        assert cli.main(["catalog", "--lake", lake_root]) == 0
        assert _per_snapshot(lake_root) == counts
    finally:
        writer.kill()
        writer.communicate()


@pytest.mark.parametrize(
    "command",
    [
        ["catalog"],
        ["query", "SELECT count(*) FROM snapshots"],
        ["compact"],
        ["report", "--playlist", "37i9dQZEVXbNG2KDcFcKOF"],
        ["report", "--playlist", "37i9dQZEVXbNG2KDcFcKOF", "--as-of", "2026-10-01"],
    ],
    ids=["catalog", "query", "compact", "report", "report-as-of"],
)
def test_a_command_that_reads_a_lake_refuses_a_missing_one_in_one_line(
    tmp_path, capsys, command
):
    typo = tmp_path / "typo" / "lake"
    code = cli.main([*command, "--lake", str(typo)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert len(err) == 1 and err[0].startswith(f"error: no lake at {typo}"), err
    assert not (tmp_path / "typo").exists()
