"""Bulk transform and compaction: the same tables as the per-file path, resumable, idempotent,
never a half-written or doubled state for readers, and old files kept for the retention."""

from __future__ import annotations

import copy
import json
import os
import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import boto3
import duckdb
import pyarrow.parquet as pq
import pytest
from conftest import in_environment, worker_processes

from etl_lib import cli, pipeline
from etl_lib.extract import envelope
from etl_lib.lake import layout, storage
from etl_lib.local_spotify import ChartSimulator
from etl_lib.reporting import reports
from etl_lib.transform import compaction, iceberg, schemas
from etl_lib.transform.decode import decode_envelope, transform_envelope
from etl_lib.warehouse import catalog, execute

PLAYLIST = "37i9dQZEVXbNG2KDcFcKOF"
FIRST_DAY = date(2026, 10, 1)
SOURCE = {"kind": "spotify-web-api", "api_base_url": "https://api.spotify.com/v1"}


def simulated_envelope(simulator: ChartSimulator, moment: datetime) -> dict:
    day = moment.date()
    entries = simulator.chart(PLAYLIST, day)
    page = {"items": entries, "offset": 0, "limit": 50, "next": None, "total": len(entries)}
    return envelope.make_envelope(simulator.playlist(PLAYLIST, day), [page], moment, SOURCE)


def odd_envelopes(simulator: ChartSimulator, day: date) -> list[dict]:
    """Snapshots that take the transform's side roads: skipped entries, the deprecated
    ``track`` field, values the narrow decoder does not take (so json.loads decodes them)."""
    base = simulated_envelope(simulator, datetime(day.year, day.month, day.day, 20, tzinfo=UTC))
    items = base["pages"][0]["items"]

    skipped = copy.deepcopy(base)
    entries = skipped["pages"][0]["items"]
    entries[1] = None
    entries[2] = {**entries[2], "is_local": True}
    entries[3] = {**entries[3], "item": {"type": "episode", "id": "ep1", "show": {"id": "s"}}}
    entries[4] = {"added_at": entries[4]["added_at"], "track": entries[4]["item"]}  # 2025 shape

    album_as_text = copy.deepcopy(base)
    album_as_text["pages"][0]["items"][0]["item"]["album"] = "not an object"

    odd_values = copy.deepcopy(base)
    odd_values["pages"][0]["items"][5]["item"]["duration_ms"] = True
    odd_values["pages"][0]["items"][6]["item"]["name"] = 12

    two_pages = copy.deepcopy(base)
    two_pages["pages"] = [
        {"items": items[:20], "offset": 0},
        {"items": items[20:], "offset": 20},
    ]
    snapshots = [skipped, album_as_text, odd_values, two_pages]
    for minute, snapshot in enumerate(snapshots):
        snapshot["extracted_at"] = envelope.format_utc(
            datetime(day.year, day.month, day.day, 20, minute + 1, tzinfo=UTC)
        )
    return snapshots


def land_hours(lake_root: str, days: int, hours: tuple[int, ...], odd: bool = True) -> list[str]:
    simulator = ChartSimulator()
    keys = []
    for offset in range(days):
        day = FIRST_DAY + timedelta(days=offset)
        for hour in hours:
            moment = datetime(day.year, day.month, day.day, hour, tzinfo=UTC)
            keys.append(pipeline.land_raw(lake_root, simulated_envelope(simulator, moment)).raw_key)
        if odd and offset == 0:
            for snapshot in odd_envelopes(simulator, day):
                keys.append(pipeline.land_raw(lake_root, snapshot).raw_key)
    return keys


def land_corrupt(lake_root: str) -> str:
    key = layout.raw_key(PLAYLIST, datetime(2026, 10, 1, 23, tzinfo=UTC))
    storage.write_bytes(lake_root, key, b'{"extracted_at": "2026-10-01T23:00:00Z", "pages": [')
    return key


def table_rows(lake_root: str) -> dict[str, list[tuple]]:
    """Every table's rows as readers see them (the DuckDB views), in a fixed order."""
    frames = execute.query_all(
        lake_root, {table: (f"SELECT * FROM {table}", None) for table in schemas.TABLES}
    )
    # Missing values as None: DuckDB before 1.2 gives NULLs in integer columns as NaN, and two
    # NaNs never compare equal.
    return {
        table: [
            tuple(row)
            for row in frame.sort_values(list(schemas.TABLES[table].names) + ["dt"])
            .astype(object)
            .where(frame.notna(), None)
            .itertuples(index=False)
        ]
        for table, frame in frames.items()
    }


def row_counts(connection: duckdb.DuckDBPyConnection) -> dict[str, int]:
    return {
        table: connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        for table in schemas.TABLES
    }


def in_order(frame):
    return frame.sort_values(list(frame.columns)).reset_index(drop=True)


def files_per_table_day(lake_root: str) -> dict[tuple[str, str], int]:
    """How many data files each day of each table's current snapshot holds."""
    return {
        (table, day): count
        for table in schemas.TABLES
        for day, count in compaction.files_per_day(lake_root, table).items()
    }


def current_files(lake_root: str) -> set[str]:
    """The data files every table's current snapshot reads."""
    return {path for table in schemas.TABLES for path in iceberg.plan(lake_root, table).files}


def stored_files(lake_root: str) -> set[str]:
    """Every file in the tables' folders: data, manifests, metadata."""
    return {
        os.path.join(directory, name)
        for directory, _, names in os.walk(Path(lake_root) / iceberg.WAREHOUSE)
        for name in names
    }


def local_path(location: str) -> str:
    return location.removeprefix("file://")


def table_commits(lake_root: str) -> dict[str, int]:
    tables = iceberg.open_tables(lake_root)
    return {name: tables.table(name).metadata.current_snapshot_id for name in schemas.TABLES}


def transform_in_parts(lake_root: str, parts: int) -> pipeline.TransformSummary:
    """The per-file path committing ``parts`` times, so each day gets several files."""
    keys = pipeline.pending_raw_keys(lake_root)
    summary = pipeline.TransformSummary()
    for part in range(parts):
        summary.merge(pipeline.transform(lake_root, keys[part::parts]))
    return summary


@pytest.fixture
def per_file_lake(tmp_path: Path) -> str:
    root = str(tmp_path / "per-file")
    land_hours(root, days=3, hours=(0, 6, 12, 18))
    land_corrupt(root)
    summary = transform_in_parts(root, 2)
    assert len(summary.quarantined) == 1
    assert files_per_table_day(root)[("chart_entries", "2026-10-02")] == 2
    return root


def copy_raw_zone(source: str, target: str) -> None:
    shutil.copytree(Path(source) / layout.RAW, Path(target) / layout.RAW)


@pytest.mark.parametrize("workers", [1, 2])
def test_bulk_transform_gives_the_same_tables_as_the_per_file_path(
    per_file_lake, tmp_path, workers
):
    bulk = str(tmp_path / "bulk")
    copy_raw_zone(per_file_lake, bulk)
    summary = pipeline.transform_bulk(bulk, workers=workers)

    assert len(summary.transformed) == 3 * 4 + 4
    corrupt = layout.raw_key(PLAYLIST, datetime(2026, 10, 1, 23, tzinfo=UTC))
    assert list(summary.quarantined) == [corrupt]
    assert (Path(bulk) / layout.quarantine_reason_key(corrupt)).exists()
    assert table_rows(bulk) == table_rows(per_file_lake)
    # One playlist, so one staged file per table and day, in one commit.
    assert set(files_per_table_day(bulk).values()) == {1}
    assert len(files_per_table_day(bulk)) == 3 * len(schemas.TABLES)
    assert pipeline.pending_raw_keys(bulk) == []


def test_the_narrow_decoder_gives_the_tables_json_loads_gives(tmp_path):
    simulator = ChartSimulator()
    snapshots = odd_envelopes(simulator, FIRST_DAY)
    nan_popularity = envelope.dumps(snapshots[0]).replace(b'"name":', b'"x":NaN,"name":', 1)
    payloads = [envelope.dumps(s) for s in snapshots] + [nan_popularity]
    for data in payloads:
        raw_key = layout.raw_key(PLAYLIST, envelope.parse_utc(json.loads(data)["extracted_at"]))
        fast = transform_envelope(decode_envelope(data, raw_key), raw_key)
        reference = transform_envelope(json.loads(data), raw_key)
        assert fast.counts == reference.counts
        for table in schemas.TABLES:
            assert fast.tables[table].equals(reference.tables[table]), table


def test_an_interrupted_bulk_transform_resumes_without_duplicates(
    per_file_lake, tmp_path, monkeypatch
):
    bulk = str(tmp_path / "bulk")
    copy_raw_zone(per_file_lake, bulk)
    monkeypatch.setattr(pipeline, "BULK_COMMIT_EVERY_SNAPSHOTS", 1)  # a commit per day
    real_commit = iceberg.commit
    committed = []

    def stop_before_the_second_days_snapshots(tables, name, change, **options):
        if name == "snapshots" and committed.count("snapshots") == 1:
            raise KeyboardInterrupt  # the user pressed Ctrl-C between two tables' commits
        committed.append(name)
        return real_commit(tables, name, change, **options)

    monkeypatch.setattr(iceberg, "commit", stop_before_the_second_days_snapshots)
    with pytest.raises(KeyboardInterrupt):
        pipeline.transform_bulk(bulk, workers=1)
    monkeypatch.setattr(iceberg, "commit", real_commit)
    # Day one is committed, day two in five tables of six, day three not at all.
    assert committed == [*iceberg.WRITE_ORDER, *iceberg.WRITE_ORDER[:-1]]
    pending = pipeline.pending_raw_keys(bulk)
    assert {layout.parse_raw_key(k)["dt"] for k in pending} == {"2026-10-02", "2026-10-03"}

    summary = pipeline.transform_bulk(bulk, workers=1)
    assert len(summary.transformed) == 8
    assert table_rows(bulk) == table_rows(per_file_lake)
    assert set(files_per_table_day(bulk).values()) == {1}


def test_compaction_leaves_one_file_per_table_per_day_and_the_same_rows(per_file_lake):
    before_rows = table_rows(per_file_lake)
    before_report = reports.load_inputs(per_file_lake, PLAYLIST, "2026-10-03", 3)
    before_files = files_per_table_day(per_file_lake)
    assert max(before_files.values()) > 1

    summary = compaction.compact(per_file_lake)
    assert (summary.days_rewritten, summary.days_already_compact) == (3, 0)
    assert summary.files_before == sum(before_files.values())
    assert summary.files_after == 3 * len(schemas.TABLES)
    assert set(files_per_table_day(per_file_lake).values()) == {1}
    assert table_rows(per_file_lake) == before_rows
    after_report = reports.load_inputs(per_file_lake, PLAYLIST, "2026-10-03", 3)
    for name, frame in before_report.items():
        assert in_order(frame).equals(in_order(after_report[name])), name
    # Rows sit sorted for the common queries.
    (day_one,) = iceberg.plan(
        per_file_lake, "chart_entries", iceberg.day_range("2026-10-01", "2026-10-01")
    ).files
    chart = pq.read_table(local_path(day_one)).to_pandas()
    order = iceberg.SORT_KEYS["chart_entries"]
    assert chart[order].equals(chart[order].sort_values(order).reset_index(drop=True))
    # Transformed raw files stay done: nothing is pending again.
    assert pipeline.pending_raw_keys(per_file_lake) == []


def test_compacting_twice_changes_nothing(per_file_lake):
    compaction.compact(per_file_lake)
    files, commits = current_files(per_file_lake), table_commits(per_file_lake)
    again = compaction.compact(per_file_lake)
    assert (again.days_rewritten, again.days_already_compact) == (0, 3)
    assert (again.files_before, again.files_after) == (0, 0)
    assert current_files(per_file_lake) == files
    assert table_commits(per_file_lake) == commits


def test_compaction_scope_by_day_and_month(per_file_lake):
    summary = compaction.compact(per_file_lake, days=["2026-10-02"])
    assert summary.days_rewritten == 1
    counts = files_per_table_day(per_file_lake)
    assert counts[("chart_entries", "2026-10-02")] == 1
    assert counts[("chart_entries", "2026-10-03")] == 2
    assert compaction.compact(per_file_lake, month="2026-09").days_rewritten == 0
    assert compaction.compact(per_file_lake, month="2026-10").days_rewritten == 2
    assert set(files_per_table_day(per_file_lake).values()) == {1}


def count_rows_until_stopped(lake_root: str, stop, answers) -> None:
    """Open a connection and count every table's rows, again and again, until ``stop``."""
    while True:
        stopping = stop.is_set()
        with catalog.connect(lake_root) as connection:
            answers.put(row_counts(connection))
        if stopping:
            answers.put(None)
            return


def compact_while_a_reader_counts(lake_root: str, monkeypatch, days: list[str]):
    """Compact ``days`` while a reader in another process counts every table over and over;
    after each commit of the compaction it reads at least once more. Returns the summary,
    what was rewritten, the counts before, and every count the reader saw."""
    with catalog.connect(lake_root) as connection:
        expected = row_counts(connection)
    context = worker_processes()
    stop, answers = context.Event(), context.Queue()
    reader = context.Process(
        target=in_environment,
        args=(dict(os.environ), count_rows_until_stopped, lake_root, stop, answers),
    )
    reader.start()
    try:
        seen = [answers.get(timeout=120)]
        real_rewrite = compaction.rewrite_days
        rewritten = []

        def rewrite_then_let_the_reader_look(lake_root, name, days):
            real_rewrite(lake_root, name, days)
            rewritten.append((name, days))
            # The second answer from now comes from a read that began after this commit.
            seen.extend(answers.get(timeout=120) for _ in range(2))

        monkeypatch.setattr(compaction, "rewrite_days", rewrite_then_let_the_reader_look)
        summary = compaction.compact(lake_root, days=days)
        stop.set()
        while (answer := answers.get(timeout=120)) is not None:
            seen.append(answer)
    finally:
        stop.set()
        reader.join(timeout=60)
        if reader.is_alive():
            reader.kill()
            reader.join()
    assert reader.exitcode == 0
    return summary, rewritten, expected, seen


def test_readers_never_see_a_count_change_while_a_compaction_runs(per_file_lake, monkeypatch):
    summary, rewritten, expected, seen = compact_while_a_reader_counts(
        per_file_lake, monkeypatch, ["2026-10-01"]
    )
    assert summary.days_rewritten == 1
    assert len(rewritten) == len(schemas.TABLES)
    assert len(seen) >= 2 * len(rewritten) + 2
    assert [answer for answer in seen if answer != expected] == []
    assert files_per_table_day(per_file_lake)[("snapshots", "2026-10-01")] == 1


def test_a_raw_file_arriving_after_its_day_was_compacted_is_merged_in(per_file_lake):
    compaction.compact(per_file_lake)
    rows_before = table_rows(per_file_lake)
    late = simulated_envelope(ChartSimulator(), datetime(2026, 10, 2, 9, 30, tzinfo=UTC))
    key = pipeline.land_raw(per_file_lake, late).raw_key

    summary = pipeline.transform(per_file_lake)
    assert summary.transformed == [key]
    rows = table_rows(per_file_lake)
    assert len(rows["snapshots"]) == len(rows_before["snapshots"]) + 1
    assert len(rows["chart_entries"]) == len(rows_before["chart_entries"]) + 50
    assert files_per_table_day(per_file_lake)[("chart_entries", "2026-10-02")] == 2
    assert pipeline.pending_raw_keys(per_file_lake) == []

    # A repeated notification for the same raw file changes nothing.
    pipeline.transform(per_file_lake, [key])
    assert table_rows(per_file_lake) == rows
    summary = compaction.compact(per_file_lake)
    assert (summary.days_rewritten, summary.days_already_compact) == (1, 2)
    assert set(files_per_table_day(per_file_lake).values()) == {1}
    assert table_rows(per_file_lake) == rows


def test_retransforming_everything_keeps_the_rows(per_file_lake):
    compaction.compact(per_file_lake)
    rows = table_rows(per_file_lake)
    old_files = current_files(per_file_lake)
    summary = pipeline.retransform_all(per_file_lake, workers=1)
    assert len(summary.transformed) == 3 * 4 + 4
    assert table_rows(per_file_lake) == rows
    # Every day's rows were replaced by the new files, one per table and day.
    assert set(files_per_table_day(per_file_lake).values()) == {1}
    assert old_files.isdisjoint(current_files(per_file_lake))


def test_old_files_stay_for_the_retention_then_go(per_file_lake):
    planned_before = catalog.connect(per_file_lake)
    try:
        expected = row_counts(planned_before)
        stored = stored_files(per_file_lake)
        summary = compaction.compact(per_file_lake)
        # Within the retention (7 days by default) nothing is expired or deleted, so a query
        # planned before the compaction still finds every file it listed.
        assert summary.days_rewritten == 3
        assert (summary.snapshots_expired, summary.files_deleted) == (0, 0)
        assert stored <= stored_files(per_file_lake)
        assert row_counts(planned_before) == expected

        compacted = {local_path(path) for path in current_files(per_file_lake)}
        stored = stored_files(per_file_lake)
        tables = iceberg.open_tables(per_file_lake)
        history = sum(len(tables.table(name).metadata.snapshots) for name in schemas.TABLES)
        expired, deleted = compaction.expire(per_file_lake, timedelta(0))
        # Every table keeps only its current snapshot; the files only older ones read go.
        assert expired == history - len(schemas.TABLES)
        left = stored_files(per_file_lake)
        assert deleted == len(stored - left) > 0
        # Nothing new but the expiry's own table metadata.
        assert all(path.endswith(".metadata.json") for path in left - stored)
        assert compacted <= left
        data_files = {path for path in stored if path.endswith(".parquet")}
        assert data_files - left  # replaced data files went
        assert {path for path in left if path.endswith(".parquet")} == compacted
        with catalog.connect(per_file_lake) as connection:
            assert row_counts(connection) == expected
        # The query planned before lists files that are gone now.
        with pytest.raises(duckdb.IOException):
            row_counts(planned_before)
    finally:
        planned_before.close()
    assert pipeline.pending_raw_keys(per_file_lake) == []
    assert compaction.compact(per_file_lake, retention=timedelta(0)).files_deleted == 0


def test_an_expiry_that_loses_a_race_to_a_writer_is_done_again(per_file_lake, monkeypatch):
    from pyiceberg.catalog.sql import SqlCatalog
    from pyiceberg.exceptions import CommitFailedException
    from pyiceberg.table.update import RemoveSnapshotsUpdate

    late = simulated_envelope(ChartSimulator(), datetime(2026, 10, 3, 21, tzinfo=UTC))
    key = pipeline.land_raw(per_file_lake, late).raw_key
    real_commit = SqlCatalog.commit_table
    raced = []

    def a_writer_commits_first(catalog_, table, requirements, updates):
        if not raced and any(isinstance(u, RemoveSnapshotsUpdate) for u in updates):
            raced.append(table.name())
            pipeline.transform(per_file_lake, [key])
            raise CommitFailedException("the table changed since it was loaded")
        return real_commit(catalog_, table, requirements, updates)

    monkeypatch.setattr(SqlCatalog, "commit_table", a_writer_commits_first)
    compaction.expire(per_file_lake, timedelta(0))
    assert raced
    tables = iceberg.open_tables(per_file_lake)
    assert {len(tables.table(name).metadata.snapshots) for name in schemas.TABLES} == {1}
    assert pipeline.pending_raw_keys(per_file_lake) == []
    with catalog.connect(per_file_lake) as connection:
        assert row_counts(connection)["snapshots"] == 3 * 4 + 4 + 1


def test_cli_compact_and_bulk_transform(tmp_path, capsys):
    root = str(tmp_path / "lake")
    land_hours(root, days=2, hours=(0, 12), odd=False)
    assert cli.main(["transform", "--lake", root, "--bulk", "--workers", "2"]) == 0
    assert "transformed 4 raw files" in capsys.readouterr().err
    land_hours(root, days=2, hours=(18,), odd=False)
    assert cli.main(["transform", "--lake", root]) == 0
    assert cli.main(["compact", "--lake", root, "--month", "2026-10"]) == 0
    err = capsys.readouterr().err
    assert "compacted 2 days: 24 files -> 12; 0 already compact; expired 0" in err
    assert cli.main(["compact", "--lake", root]) == 0
    assert "compacted 0 days: 0 files -> 0; 2 already compact" in capsys.readouterr().err

    assert cli.main(["compact", "--lake", root, "--month", "2026-13"]) == 2
    assert "--month '2026-13' is not a month: use YYYY-MM" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["compact", "--lake", root, "--day", "yesterday"])
    assert "'yesterday' is not a day: use YYYY-MM-DD" in capsys.readouterr().err


@pytest.mark.slow
def test_compaction_on_s3(moto_endpoint, tmp_path, monkeypatch):
    boto3.client("s3").create_bucket(Bucket="charts-lake")
    root = "s3://charts-lake/lake"
    local = str(tmp_path / "local")
    for target in (root, local):
        land_hours(target, days=2, hours=(0, 12), odd=False)
        transform_in_parts(target, 2)
    expected = table_rows(local)
    assert table_rows(root) == expected

    # Read while compacting: on S3 and Glue too, a reader sees the old snapshot or the new.
    summary, rewritten, counts, seen = compact_while_a_reader_counts(
        root, monkeypatch, ["2026-10-01", "2026-10-02"]
    )
    assert len(rewritten) == len(schemas.TABLES)
    assert len(seen) >= 2 * len(rewritten) + 2
    assert [answer for answer in seen if answer != counts] == []
    assert (summary.days_rewritten, summary.files_before, summary.files_after) == (2, 24, 12)
    assert set(files_per_table_day(root).values()) == {1}
    assert table_rows(root) == expected
    files = current_files(root)
    assert compaction.compact(root).days_rewritten == 0
    assert current_files(root) == files
    assert pipeline.pending_raw_keys(root) == []

    # The bulk path on S3, in worker processes (spawned: the S3 client runs a thread). A
    # Glue database holds one lake's tables: the second lake gets its own.
    monkeypatch.setenv("SPOTIFY_ETL_GLUE_DATABASE", "bulk_charts")
    bulk = "s3://charts-lake/bulk"
    land_hours(bulk, days=2, hours=(0, 12), odd=False)
    summary = pipeline.transform_bulk(bulk, workers=2)
    assert len(summary.transformed) == 4
    assert table_rows(bulk) == expected
    assert set(files_per_table_day(bulk).values()) == {1}
