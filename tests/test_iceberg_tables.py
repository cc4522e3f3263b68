"""The lake's Iceberg tables: a replay changes nothing, writers at once leave every row once,
and a column added to a table reads NULL in the rows written before it."""

from __future__ import annotations

import os
import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from conftest import in_environment, worker_processes

from etl_lib import cli, pipeline
from etl_lib.extract import envelope
from etl_lib.lake import layout, storage
from etl_lib.local_spotify import ChartSimulator
from etl_lib.transform import compaction, iceberg, schemas
from etl_lib.transform.decode import TableBatch
from etl_lib.warehouse import execute

PLAYLIST = "37i9dQZEVXbNG2KDcFcKOF"
OTHER_PLAYLIST = "37i9dQZEVXbMDoHDwVN2tF"
FIRST_DAY = date(2026, 10, 1)
SOURCE = {"kind": "spotify-web-api", "api_base_url": "https://api.spotify.com/v1"}


def simulated_envelope(simulator: ChartSimulator, playlist_id: str, moment: datetime) -> dict:
    entries = simulator.chart(playlist_id, moment.date())
    page = {"items": entries, "offset": 0, "limit": 50, "next": None, "total": len(entries)}
    playlist = simulator.playlist(playlist_id, moment.date())
    return envelope.make_envelope(playlist, [page], moment, SOURCE)


def land(
    lake_root: str,
    days: int,
    hours: tuple[int, ...],
    playlists: tuple[str, ...] = (PLAYLIST,),
) -> list[str]:
    """Land one snapshot per playlist, day and hour; their raw keys."""
    simulator = ChartSimulator()
    keys = []
    for offset in range(days):
        day = FIRST_DAY + timedelta(days=offset)
        for hour in hours:
            moment = datetime(day.year, day.month, day.day, hour, tzinfo=UTC)
            for playlist_id in playlists:
                envelope_ = simulated_envelope(simulator, playlist_id, moment)
                keys.append(pipeline.land_raw(lake_root, envelope_).raw_key)
    return keys


def rows(lake_root: str) -> dict[str, pa.Table]:
    """Every table's current rows (pyiceberg's scan), sorted on all columns."""
    tables = {}
    for name in schemas.TABLES:
        table = iceberg.scan(lake_root, name)
        tables[name] = table.sort_by([(column, "ascending") for column in table.column_names])
    return tables


def counts(lake_root: str) -> dict[str, int]:
    """Every table's row count as SQL readers see it (the DuckDB views)."""
    union = " UNION ALL ".join(
        f"SELECT '{name}' AS name, count(*) AS n FROM {name}" for name in schemas.TABLES
    )
    frame = execute.query(lake_root, union)
    return dict(zip(frame["name"], frame["n"].astype(int), strict=True))


def assert_same_rows(actual: dict[str, pa.Table], expected: dict[str, pa.Table]) -> None:
    for name in schemas.TABLES:
        assert actual[name].num_rows == expected[name].num_rows, name
        assert actual[name].equals(expected[name]), name


def reference_rows(lake_root: str, tmp_path: Path) -> dict[str, pa.Table]:
    """The rows of ``lake_root``'s raw zone transformed once into a fresh lake."""
    reference = tmp_path / "reference"
    shutil.copytree(Path(lake_root) / layout.RAW, reference / layout.RAW)
    pipeline.transform(str(reference))
    expected = rows(str(reference))
    assert expected["snapshots"].num_rows == len(pipeline.all_raw_keys(lake_root))
    return expected


def current_snapshot_id(lake_root: str, name: str) -> int:
    return iceberg.open_tables(lake_root).table(name).metadata.current_snapshot_id


def run_together(barrier, operation: str, lake_root: str, keys: list[str] | None) -> None:
    barrier.wait(timeout=120)
    if operation == "transform":
        pipeline.transform(lake_root, keys)
    elif operation == "bulk":
        pipeline.transform_bulk(lake_root, keys, workers=1)
    elif operation == "compact":
        compaction.compact(lake_root)
    else:
        raise ValueError(operation)


def at_once(*jobs: tuple[str, str, list[str] | None]) -> None:
    """Run the operations in as many processes, released together by a barrier, on tables
    that exist already (creating them at once is another test's, in the fault suite)."""
    for lake_root in {job[1] for job in jobs}:
        iceberg.create_tables(lake_root)
    context = worker_processes()
    barrier = context.Barrier(len(jobs))
    workers = [
        context.Process(target=in_environment, args=(dict(os.environ), run_together, barrier, *job))
        for job in jobs
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=180)
    for worker in workers:
        if worker.is_alive():
            worker.kill()
            worker.join()
    assert [worker.exitcode for worker in workers] == [0] * len(jobs)


# ---------------------------------------------------------------------------------------
# Replays


def test_transforming_the_same_raw_files_again_changes_no_table(tmp_path):
    root = str(tmp_path / "lake")
    keys = land(root, days=2, hours=(0, 8, 16), playlists=(PLAYLIST, OTHER_PLAYLIST))
    pipeline.transform(root)
    before, before_counts = rows(root), counts(root)
    assert before["snapshots"].num_rows == 12
    assert pipeline.pending_raw_keys(root) == []

    day_one = [key for key in keys if layout.parse_raw_key(key)["dt"] == "2026-10-01"]
    one_playlist_day = [key for key in day_one if PLAYLIST in key]
    replays = {
        # a snapshot beside others of its playlist and day: replaced snapshot by snapshot
        "one raw file": [keys[2]],
        # one playlist's part of a day: replaced by playlist and day
        "a playlist's day": one_playlist_day,
        # every snapshot of a day: replaced by the day's partition
        "a whole day": day_one,
        "everything": keys,
    }
    for label, replayed in replays.items():
        commit = current_snapshot_id(root, "chart_entries")
        summary = pipeline.transform(root, replayed)
        assert summary.transformed == replayed, label
        # The replay did commit (its rows replaced the old ones) and changed no row.
        assert current_snapshot_id(root, "chart_entries") != commit, label
        assert_same_rows(rows(root), before)
        assert counts(root) == before_counts, label

    pipeline.transform_bulk(root, keys, workers=1)
    assert_same_rows(rows(root), before)
    assert cli.main(["transform", "--lake", root, "--all", "--workers", "1"]) == 0
    assert_same_rows(rows(root), before)
    assert counts(root) == before_counts
    assert pipeline.pending_raw_keys(root) == []

    # A replay into compacted days rewrites only the rows of its own snapshot.
    compaction.compact(root)
    pipeline.transform(root, [keys[2]])
    assert_same_rows(rows(root), before)
    assert counts(root) == before_counts


def test_pending_raw_keys_are_the_raw_files_snapshots_does_not_hold(tmp_path):
    root = str(tmp_path / "lake")
    keys = sorted(land(root, days=2, hours=(0, 12)))
    corrupt = layout.raw_key(PLAYLIST, datetime(2026, 10, 2, 23, tzinfo=UTC))
    storage.write_bytes(root, corrupt, b'{"extracted_at": "2026-10-02T23:00:00Z", "pages": [')
    assert pipeline.pending_raw_keys(root) == sorted([*keys, corrupt])

    pipeline.transform(root, keys[:2])
    assert iceberg.committed_raw_keys(root) == set(keys[:2])
    assert pipeline.pending_raw_keys(root) == sorted([*keys[2:], corrupt])
    summary = pipeline.transform(root)
    assert list(summary.quarantined) == [corrupt]
    # Quarantined files are not pending either; the rest are done.
    assert iceberg.committed_raw_keys(root) == set(keys)
    assert pipeline.pending_raw_keys(root) == []


def test_a_raw_file_whose_snapshots_commit_failed_stays_pending_and_lands_once(
    tmp_path, monkeypatch
):
    """``snapshots`` is committed last: a run that stops before it leaves the other tables
    holding the file's rows, the file pending, and the rerun replaces those rows."""
    root = str(tmp_path / "lake")
    keys = land(root, days=2, hours=(0, 12))
    pipeline.transform(root, keys[:2])
    real_commit = iceberg.commit

    def fail_at_snapshots(catalog, name, change, **options):
        if name == "snapshots":
            raise KeyboardInterrupt  # stopped between the tables' commits
        return real_commit(catalog, name, change, **options)

    monkeypatch.setattr(iceberg, "commit", fail_at_snapshots)
    with pytest.raises(KeyboardInterrupt):
        pipeline.transform(root)
    monkeypatch.setattr(iceberg, "commit", real_commit)

    assert pipeline.pending_raw_keys(root) == sorted(keys[2:])
    partial = rows(root)
    assert partial["snapshots"].num_rows == 2
    assert partial["chart_entries"].num_rows == 4 * 50  # the stopped run's rows are in

    assert pipeline.transform(root).transformed == sorted(keys[2:])
    assert pipeline.pending_raw_keys(root) == []
    assert_same_rows(rows(root), reference_rows(root, tmp_path))


# ---------------------------------------------------------------------------------------
# Writers at once (the local SQLite catalog)


@pytest.mark.parametrize(
    "operations",
    [("transform", "transform"), ("transform", "bulk")],
    ids=["two per-file transforms", "a per-file and a bulk transform"],
)
def test_two_writers_of_the_same_raw_files_leave_every_row_once(tmp_path, operations):
    root = str(tmp_path / "lake")
    keys = land(root, days=2, hours=(0, 8, 16))
    expected = reference_rows(root, tmp_path)

    at_once(*((operation, root, keys) for operation in operations))

    assert_same_rows(rows(root), expected)
    assert counts(root) == {name: table.num_rows for name, table in expected.items()}
    assert pipeline.pending_raw_keys(root) == []


def test_two_writers_of_different_snapshots_of_the_same_days_keep_both(tmp_path):
    """Each writer's replace of "its" days must not take the other writer's snapshots."""
    root = str(tmp_path / "lake")
    keys = sorted(land(root, days=2, hours=(0, 6, 12, 18)))
    expected = reference_rows(root, tmp_path)

    at_once(("transform", root, keys[0::2]), ("transform", root, keys[1::2]))

    assert_same_rows(rows(root), expected)
    assert pipeline.pending_raw_keys(root) == []


def test_a_transform_and_a_compaction_at_once_lose_and_double_nothing(tmp_path):
    root = str(tmp_path / "lake")
    for hour in (0, 6, 12):  # several files in each day
        pipeline.transform(root, land(root, days=2, hours=(hour,)))
    late = land(root, days=2, hours=(18,))
    expected = reference_rows(root, tmp_path)
    assert compaction.files_per_day(root, "chart_entries") == {
        "2026-10-01": 3,
        "2026-10-02": 3,
    }

    at_once(("transform", root, late), ("compact", root, None))

    assert_same_rows(rows(root), expected)
    assert pipeline.pending_raw_keys(root) == []
    compaction.compact(root)
    assert set(compaction.files_per_day(root, "chart_entries").values()) == {1}
    assert_same_rows(rows(root), expected)


# ---------------------------------------------------------------------------------------
# Schema evolution


LABELLED_CHART_ENTRIES = schemas.CHART_ENTRIES.append(pa.field("chart_label", pa.string()))
_TO_TABLES = TableBatch.to_tables


def _with_label(batch: TableBatch) -> dict[str, pa.Table]:
    """The transform of a release whose ``chart_entries`` has a ``chart_label`` column."""
    chart = batch.columns["chart_entries"]
    chart["chart_label"] = ["new"] * len(chart["position"])
    return _TO_TABLES(batch)


def test_a_column_added_to_a_table_reads_null_in_older_rows(tmp_path, monkeypatch):
    root = str(tmp_path / "lake")
    old_keys = land(root, days=1, hours=(0, 6))
    pipeline.transform(root)

    monkeypatch.setitem(schemas.TABLES, "chart_entries", LABELLED_CHART_ENTRIES)
    monkeypatch.setattr(TableBatch, "to_tables", _with_label)
    new_keys = land(root, days=1, hours=(12,))  # into the day that holds the old rows
    assert pipeline.transform(root).transformed == new_keys

    field = iceberg.open_tables(root).table("chart_entries").schema().find_field("chart_label")
    assert not field.required

    def labels() -> dict[str, tuple[str | None, int]]:
        frame = execute.query(
            root,
            "SELECT CAST(extracted_at AS VARCHAR) AS moment, chart_label, count(*) AS n "
            "FROM chart_entries GROUP BY 1, 2 ORDER BY 1",
        )
        return {
            moment[11:13]: (label if isinstance(label, str) else None, int(n))
            for moment, label, n in frame.itertuples(index=False)
        }

    expected = {"00": (None, 50), "06": (None, 50), "12": ("new", 50)}
    assert compaction.files_per_day(root, "chart_entries") == {"2026-10-01": 2}
    assert labels() == expected
    compaction.compact(root, days=["2026-10-01"])
    assert compaction.files_per_day(root, "chart_entries") == {"2026-10-01": 1}
    assert labels() == expected
    scanned = iceberg.scan(root, "chart_entries", columns=("chart_label",))
    assert scanned.column("chart_label").null_count == 100

    # The DuckDB view has the column with its type; replaying the old files fills it.
    column_types = execute.query(
        root,
        "SELECT data_type FROM information_schema.columns "
        "WHERE table_name = 'chart_entries' AND column_name = 'chart_label'",
    )
    assert column_types["data_type"].tolist() == ["VARCHAR"]
    pipeline.transform(root, old_keys)
    assert labels() == {"00": ("new", 50), "06": ("new", 50), "12": ("new", 50)}
    assert pipeline.pending_raw_keys(root) == []


def transform_with_the_new_column(barrier, lake_root: str, keys: list[str]) -> None:
    schemas.TABLES["chart_entries"] = LABELLED_CHART_ENTRIES
    TableBatch.to_tables = _with_label
    iceberg.open_tables(lake_root)  # connected before the start: the writers meet sooner
    barrier.wait(timeout=120)
    pipeline.transform(lake_root, keys)


def test_the_first_writers_of_a_new_column_add_it_together(tmp_path):
    """Writers of a release that adds a column, at once: they all add it, none fails."""
    root = str(tmp_path / "lake")
    pipeline.transform(root, land(root, days=1, hours=(0,)))
    new_keys = land(root, days=1, hours=(6, 12, 18))
    context = worker_processes()
    barrier = context.Barrier(len(new_keys))
    writers = [
        context.Process(
            target=in_environment,
            args=(dict(os.environ), transform_with_the_new_column, barrier, root, [key]),
        )
        for key in new_keys
    ]
    for writer in writers:
        writer.start()
    for writer in writers:
        writer.join(timeout=180)
        if writer.is_alive():
            writer.kill()
            writer.join()
    assert [writer.exitcode for writer in writers] == [0] * len(new_keys)

    labels = iceberg.scan(root, "chart_entries", columns=("extracted_at", "chart_label"))
    by_hour = labels.group_by(["extracted_at", "chart_label"]).aggregate([([], "count_all")])
    assert sorted(
        (row["extracted_at"].hour, row["chart_label"], row["count_all"])
        for row in by_hour.to_pylist()
    ) == [(0, None, 50), (6, "new", 50), (12, "new", 50), (18, "new", 50)]
