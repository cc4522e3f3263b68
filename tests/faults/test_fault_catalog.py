"""The local Iceberg catalog under concurrency, moved and damaged lakes, odd paths and
leftovers of killed writes."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import textwrap
import time
import traceback
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from conftest import in_environment, worker_processes

from etl_lib import cli, pipeline
from etl_lib.extract import envelope
from etl_lib.lake import layout, storage
from etl_lib.local_spotify import ChartSimulator
from etl_lib.transform import compaction, iceberg, schemas
from etl_lib.warehouse import catalog, execute

pytestmark = [pytest.mark.faults, pytest.mark.timeout(180)]

PLAYLIST = "37i9dQZEVXbNG2KDcFcKOF"
PER_SNAPSHOT_SQL = (
    "SELECT CAST(extracted_at AS VARCHAR) AS snapshot, count(*) AS entries "
    "FROM chart_entries GROUP BY 1 ORDER BY 1"
)


def _land(lake_root: str, snapshots: int, first: int = 0) -> list[str]:
    """Land ``snapshots`` hourly snapshots from 2026-10-01 00:00 (plus ``first`` hours)."""
    simulator = ChartSimulator()
    start = datetime(2026, 10, 1, tzinfo=UTC)
    source = {"kind": "spotify-web-api", "api_base_url": "https://api.spotify.com/v1"}
    keys = []
    for hour in range(first, first + snapshots):
        moment = start + timedelta(hours=hour)
        entries = simulator.chart(PLAYLIST, moment.date())
        page = {"items": entries, "offset": 0, "limit": 50, "next": None, "total": len(entries)}
        playlist = simulator.playlist(PLAYLIST, moment.date())
        payload = envelope.make_envelope(playlist, [page], moment, source)
        keys.append(pipeline.land_raw(lake_root, payload).raw_key)
    return keys


def _per_snapshot(lake_root: str) -> dict[str, int]:
    frame = execute.query(lake_root, PER_SNAPSHOT_SQL)
    return dict(zip(frame["snapshot"], frame["entries"].astype(int), strict=True))


@pytest.fixture
def cataloged(lake_root) -> tuple[str, dict[str, int]]:
    """A transformed, cataloged lake and its rows per snapshot."""
    _land(lake_root, snapshots=4)
    pipeline.transform(lake_root)
    catalog.build_catalog(lake_root)
    counts = _per_snapshot(lake_root)
    assert len(counts) == 4 and set(counts.values()) == {50}
    return lake_root, counts


def _python(code: str, *args: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _join(processes: list, timeout: float = 120) -> list[int]:
    """Wait for the processes (killing any still running after ``timeout``); exit codes."""
    for process in processes:
        process.join(timeout=timeout)
    for process in processes:
        if process.is_alive():
            process.kill()
            process.join()
    return [process.exitcode for process in processes]


def _one_line_error(capsys, command: list[str]) -> str:
    capsys.readouterr()
    code = cli.main(command)
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1, err
    assert len(err) == 1, err
    return err[0]


LONG_LIVED = """
    import sys
    from etl_lib.warehouse import catalog
    sql = "SELECT count(*) FROM chart_entries"
    first = catalog.connect(sys.argv[1])
    print(first.execute(sql).fetchone()[0], flush=True)
    for _ in sys.stdin:  # a line: look again, through the first connection and a new one
        with catalog.connect(sys.argv[1]) as connection:
            print(first.execute(sql).fetchone()[0], connection.execute(sql).fetchone()[0],
                  flush=True)
"""


def test_a_long_lived_process_sees_other_processes_commits_on_its_next_connect(cataloged):
    lake_root, counts = cataloged
    reader = _python(LONG_LIVED, lake_root)
    try:
        assert int(reader.stdout.readline()) == 200

        def look_again() -> tuple[int, int]:
            reader.stdin.write("again\n")
            reader.stdin.flush()
            first, fresh = reader.stdout.readline().split()
            return int(first), int(fresh)

        # A commit of this process; the open connection keeps reading what it planned.
        pipeline.transform(lake_root, _land(lake_root, snapshots=2, first=4))
        assert look_again() == (200, 300)
        # A compaction: the first connection's files stay for the retention.
        assert compaction.compact(lake_root).days_rewritten == 1
        assert look_again() == (200, 300)
        pipeline.transform(lake_root, _land(lake_root, snapshots=1, first=6))
        assert look_again() == (200, 350)
        reader.stdin.close()
        assert reader.wait(timeout=60) == 0, reader.stderr.read()
    finally:
        if reader.poll() is None:
            reader.kill()
            reader.wait()
        for stream in (reader.stdin, reader.stdout, reader.stderr):
            stream.close()


@pytest.mark.parametrize("how", ["moved", "copied"])
def test_a_lake_folder_moved_or_copied_is_refused_in_one_line_naming_migrate(
    cataloged, tmp_path, capsys, how
):
    lake_root, counts = cataloged
    elsewhere = str(tmp_path / "elsewhere" / "lake")
    shutil.copytree(lake_root, elsewhere)
    if how == "moved":
        shutil.rmtree(lake_root)
    for command in (["query", PER_SNAPSHOT_SQL], ["catalog"], ["transform"], ["compact"]):
        line = _one_line_error(capsys, [command[0], "--lake", elsewhere, *command[1:]])
        assert f"spotify-etl migrate --lake {elsewhere}" in line, line
        assert f"{lake_root}/{iceberg.WAREHOUSE}/" in line, line  # where the tables still are
    if how == "copied":
        assert _per_snapshot(lake_root) == counts  # the original is untouched


def _build_after(barrier, lake_root: str, names) -> None:
    barrier.wait(timeout=120)
    try:
        names.put(sorted(catalog.build_catalog(lake_root)))
    except BaseException:
        names.put(traceback.format_exc())  # for the assertion, not only this process's stderr
        raise


def test_catalog_builds_at_once_on_a_lake_without_tables_all_succeed(lake_root):
    keys = _land(lake_root, snapshots=2)
    context, environ = worker_processes(), dict(os.environ)
    builders = 3
    barrier, names = context.Barrier(builders), context.Queue()
    processes = [
        context.Process(
            target=in_environment, args=(environ, _build_after, barrier, lake_root, names)
        )
        for _ in range(builders)
    ]
    for process in processes:
        process.start()
    built = [names.get(timeout=120) for _ in processes]
    exit_codes = _join(processes)

    assert [answer for answer in built if isinstance(answer, str)] == []
    assert exit_codes == [0] * builders
    assert all(names == built[0] for names in built)
    assert set(schemas.TABLES) <= set(built[0])
    tables = iceberg.open_tables(lake_root)
    listed = [identifier[-1] for identifier in tables.catalog.list_tables(tables.namespace)]
    assert sorted(listed) == sorted(schemas.TABLES)
    assert pipeline.transform(lake_root).transformed == keys
    assert _per_snapshot(lake_root) == {
        "2026-10-01 00:00:00+00": 50,
        "2026-10-01 01:00:00+00": 50,
    }


def _current_metadata(lake_root: str, name: str) -> str:
    return iceberg.open_tables(lake_root).table(name).metadata_location.removeprefix("file://")


def _truncate(path: str) -> None:
    with open(path, "r+b") as file:
        file.truncate(20)


def _damage(lake_root: str, damage: str) -> str:
    """Damage one file of the ``chart_entries`` table; its path."""
    table = iceberg.open_tables(lake_root).table("chart_entries")
    manifest_list = table.current_snapshot().manifest_list.removeprefix("file://")
    manifest = table.current_snapshot().manifests(table.io)[0].manifest_path
    path = {
        "metadata cut short": _current_metadata(lake_root, "chart_entries"),
        "metadata missing": _current_metadata(lake_root, "chart_entries"),
        "manifest list cut short": manifest_list,
        "manifest missing": manifest.removeprefix("file://"),
    }[damage]
    if damage.endswith("missing"):
        os.remove(path)
    else:
        _truncate(path)
    return path


@pytest.mark.parametrize(
    "damage",
    ["metadata cut short", "metadata missing", "manifest list cut short", "manifest missing"],
)
def test_a_damaged_table_file_is_named_in_one_line(cataloged, capsys, damage):
    lake_root, _ = cataloged
    _land(lake_root, snapshots=1, first=8)  # a transform has something to commit
    path = _damage(lake_root, damage)
    commands = (
        ["query", PER_SNAPSHOT_SQL],
        ["transform"],
        ["compact"],
        ["catalog"],
        ["report", "--playlist", PLAYLIST],
    )
    for command in commands:
        line = _one_line_error(capsys, [command[0], "--lake", lake_root, *command[1:]])
        assert path in line, (command, line)
        assert f"spotify-etl migrate --lake {lake_root}" in line, (command, line)


def _transform_one_by_one(lake_root: str, done) -> None:
    try:
        for key in pipeline.pending_raw_keys(lake_root):
            pipeline.transform(lake_root, [key])
    finally:
        done.set()


def _compact_until(lake_root: str, done, rounds) -> None:
    while True:
        finished = done.is_set()
        compaction.compact(lake_root)
        rounds.put(1)
        if finished:
            return


def _read_until(lake_root: str, done, answers) -> None:
    try:
        while True:
            finished = done.is_set()
            answers.put(_per_snapshot(lake_root))
            if finished:
                return
    finally:
        answers.put(None)


def test_transform_compaction_and_queries_at_once_answer_consistently(lake_root):
    _land(lake_root, snapshots=2)
    pipeline.transform(lake_root)
    assert len(_land(lake_root, snapshots=12, first=2)) == 12

    context, environ = worker_processes(), dict(os.environ)
    done, rounds = context.Event(), context.Queue()
    answers = [context.Queue(), context.Queue()]
    processes = [
        context.Process(
            target=in_environment, args=(environ, _transform_one_by_one, lake_root, done)
        ),
        context.Process(
            target=in_environment, args=(environ, _compact_until, lake_root, done, rounds)
        ),
        *(
            context.Process(target=in_environment, args=(environ, _read_until, lake_root, done, a))
            for a in answers
        ),
    ]
    for process in processes:
        process.start()
    seen = []
    for queue in answers:
        seen.append([])
        while (answer := queue.get(timeout=120)) is not None:
            seen[-1].append(answer)
    assert _join(processes) == [0] * len(processes)

    final = _per_snapshot(lake_root)
    assert len(final) == 14 and set(final.values()) == {50}
    assert not rounds.empty()
    for answers_of_one_reader in seen:
        assert len(answers_of_one_reader) >= 2
        count = 0
        for answer in answers_of_one_reader:
            # Every snapshot a query sees is whole and counted once; none goes missing later.
            assert all(final[snapshot] == entries for snapshot, entries in answer.items())
            assert len(answer) >= count
            count = len(answer)
    compaction.compact(lake_root)
    assert set(compaction.files_per_day(lake_root, "chart_entries").values()) == {1}
    assert _per_snapshot(lake_root) == final


@pytest.mark.parametrize(
    "folder",
    ["lake [x]?*{ab}", "a,b", "it's here", "100%20 sure", "no#1"],
    ids=["glob", "comma", "quote", "percent", "hash"],
)
def test_a_lake_path_with_odd_characters_works_end_to_end(tmp_path, capsys, folder):
    odd = str(tmp_path / folder)
    # What a glob of the path could match: a decoy lake that must never be read.
    decoy = str(tmp_path / "lake xQab")
    pipeline.transform(decoy, _land(decoy, snapshots=1, first=9))
    _land(odd, snapshots=3)
    for command in (["transform"], ["compact"], ["catalog"]):
        assert cli.main([*command, "--lake", odd]) == 0
    pipeline.transform(odd, pipeline.all_raw_keys(odd)[:1])  # a second file in the day
    assert compaction.compact(odd, retention=timedelta(0)).files_deleted > 0
    capsys.readouterr()
    assert cli.main(["query", "--lake", odd, "--format", "json", PER_SNAPSHOT_SQL]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(row["snapshot"][:13], row["entries"]) for row in rows] == [
        ("2026-10-01 00", 50),
        ("2026-10-01 01", 50),
        ("2026-10-01 02", 50),
    ]
    # Every file of the tables is inside the lake folder.
    for table in schemas.TABLES:
        for path in iceberg.plan(odd, table).files:
            assert path.removeprefix("file://").startswith(odd + "/"), path
    assert sorted(os.listdir(tmp_path)) == sorted([folder, "lake xQab"])


def test_stale_temporary_raw_files_are_cleaned_and_never_read(cataloged):
    lake_root, counts = cataloged
    [first, *_] = sorted(Path(lake_root, layout.RAW).rglob("*.json"))
    # Whole raw files under temporary names: read by mistake, they would add snapshots.
    stale = Path(storage.temporary_path(str(first)))
    fresh = Path(storage.temporary_path(str(first)))
    for path in (stale, fresh):
        shutil.copyfile(first, path)
    two_hours_ago = time.time() - 2 * 3600
    os.utime(stale, (two_hours_ago, two_hours_ago))

    assert pipeline.pending_raw_keys(lake_root) == []
    assert pipeline.transform(lake_root).transformed == []
    assert _per_snapshot(lake_root) == counts
    assert cli.main(["compact", "--lake", lake_root]) == 0
    assert not stale.exists()
    assert fresh.exists()  # young enough to belong to a write still running
    assert _per_snapshot(lake_root) == counts


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
def test_a_command_that_reads_a_lake_refuses_a_missing_one_in_one_line(tmp_path, capsys, command):
    typo = tmp_path / "typo" / "lake"
    code = cli.main([*command, "--lake", str(typo)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert len(err) == 1 and err[0].startswith(f"error: no lake at {typo}"), err
    assert not (tmp_path / "typo").exists()
