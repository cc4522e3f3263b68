"""Bulk transform and compaction: the same tables as the per-file path, resumable, idempotent,
and never a half-written or doubled state for readers."""

from __future__ import annotations

import copy
import json
import shutil
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import boto3
import pytest

from etl_lib import catalog, cli, compaction, envelope, lake, pipeline, reports, schemas, warehouse
from etl_lib.local_spotify import ChartSimulator
from etl_lib.transform import decode_envelope, transform_envelope

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
    key = lake.raw_key(PLAYLIST, datetime(2026, 10, 1, 23, tzinfo=UTC))
    lake.write_bytes(lake_root, key, b'{"extracted_at": "2026-10-01T23:00:00Z", "pages": [')
    return key


def table_rows(lake_root: str) -> dict[str, list[tuple]]:
    """Every table's rows as readers see them (the catalog views), in a fixed order."""
    catalog.build_catalog(lake_root)
    return {
        table: [
            tuple(row)
            for row in warehouse.query(lake_root, f"SELECT * FROM {table}")
            .sort_values(list(schemas.TABLES[table].names) + ["dt"])
            .itertuples(index=False)
        ]
        for table in schemas.TABLES
    }


def in_order(frame):
    return frame.sort_values(list(frame.columns)).reset_index(drop=True)


def files_per_table_day(lake_root: str) -> dict[tuple[str, str], int]:
    counts: dict[tuple[str, str], int] = {}
    for table in schemas.TABLES:
        for key in lake.list_keys(lake_root, f"{lake.TABLES}/{table}/", ".parquet"):
            day = key.split("/")[2]
            counts[(table, day)] = counts.get((table, day), 0) + 1
    return counts


def snapshot_of_files(lake_root: str) -> dict[str, bytes]:
    return {
        key: lake.read_bytes(lake_root, key)
        for key in lake.list_keys(lake_root, f"{lake.TABLES}/", ".parquet")
    }


@pytest.fixture
def per_file_lake(tmp_path: Path) -> str:
    root = str(tmp_path / "per-file")
    land_hours(root, days=3, hours=(0, 6, 12, 18))
    land_corrupt(root)
    summary = pipeline.transform(root)
    assert len(summary.quarantined) == 1
    return root


def copy_raw_zone(source: str, target: str) -> None:
    shutil.copytree(Path(source) / lake.RAW, Path(target) / lake.RAW)


@pytest.mark.parametrize("workers", [1, 2])
def test_bulk_transform_gives_the_same_tables_as_the_per_file_path(
    per_file_lake, tmp_path, workers
):
    bulk = str(tmp_path / "bulk")
    copy_raw_zone(per_file_lake, bulk)
    summary = pipeline.transform_bulk(bulk, workers=workers)

    assert len(summary.transformed) == 3 * 4 + 4
    corrupt = lake.raw_key(PLAYLIST, datetime(2026, 10, 1, 23, tzinfo=UTC))
    assert list(summary.quarantined) == [corrupt]
    assert (Path(bulk) / lake.quarantine_reason_key(corrupt)).exists()
    assert table_rows(bulk) == table_rows(per_file_lake)
    assert set(files_per_table_day(bulk).values()) == {1}
    assert pipeline.pending_raw_keys(bulk) == []


def test_the_narrow_decoder_gives_the_tables_json_loads_gives(tmp_path):
    simulator = ChartSimulator()
    snapshots = odd_envelopes(simulator, FIRST_DAY)
    nan_popularity = envelope.dumps(snapshots[0]).replace(b'"name":', b'"x":NaN,"name":', 1)
    payloads = [envelope.dumps(s) for s in snapshots] + [nan_popularity]
    for data in payloads:
        raw_key = lake.raw_key(PLAYLIST, envelope.parse_utc(json.loads(data)["extracted_at"]))
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
    real_write = lake.write_parquet
    writes = []

    def crash_on_the_second_days_commit(root, key, table, metadata=None):
        writes.append(key)
        if key.startswith(f"{lake.TABLES}/{schemas.COMMIT_TABLE}/dt=2026-10-02/"):
            raise KeyboardInterrupt  # the user pressed Ctrl-C mid-day
        real_write(root, key, table, metadata)

    monkeypatch.setattr(lake, "write_parquet", crash_on_the_second_days_commit)
    with pytest.raises(KeyboardInterrupt):
        pipeline.transform_bulk(bulk, workers=1)
    monkeypatch.setattr(lake, "write_parquet", real_write)
    # Day one is committed, day two half-written (five tables of six), day three untouched.
    pending = pipeline.pending_raw_keys(bulk)
    assert {lake.parse_raw_key(k)["dt"] for k in pending} == {"2026-10-02", "2026-10-03"}

    summary = pipeline.transform_bulk(bulk, workers=1)
    assert len(summary.transformed) == 8
    assert table_rows(bulk) == table_rows(per_file_lake)
    assert set(files_per_table_day(bulk).values()) == {1}


def test_compaction_leaves_one_file_per_table_per_day_and_the_same_rows(per_file_lake):
    before_rows = table_rows(per_file_lake)
    before_report = reports.load_inputs(per_file_lake, PLAYLIST, "2026-10-03", 3)
    assert max(files_per_table_day(per_file_lake).values()) > 1

    summary = compaction.compact(per_file_lake)
    assert summary.partitions_rewritten == 3
    assert set(files_per_table_day(per_file_lake).values()) == {1}
    assert table_rows(per_file_lake) == before_rows
    after_report = reports.load_inputs(per_file_lake, PLAYLIST, "2026-10-03", 3)
    for name, frame in before_report.items():
        assert in_order(frame).equals(in_order(after_report[name])), name
    # Rows sit sorted for the common queries.
    day_one = next(lake.list_keys(per_file_lake, "tables/chart_entries/dt=2026-10-01/"))
    chart = lake.read_parquet(per_file_lake, day_one).to_pandas()
    assert chart.equals(chart.sort_values(["extracted_at", "position"]))
    # Transformed raw files stay done: nothing is pending again.
    assert pipeline.pending_raw_keys(per_file_lake) == []


def test_compacting_twice_changes_nothing(per_file_lake):
    compaction.compact(per_file_lake)
    files = snapshot_of_files(per_file_lake)
    again = compaction.compact(per_file_lake)
    assert again.partitions_rewritten == 0 and again.partitions_already_compact == 3
    assert snapshot_of_files(per_file_lake) == files


def test_compaction_scope_by_day_and_month(per_file_lake):
    summary = compaction.compact(per_file_lake, days=["2026-10-02"])
    assert summary.partitions_rewritten == 1
    counts = files_per_table_day(per_file_lake)
    assert counts[("chart_entries", "dt=2026-10-02")] == 1
    assert counts[("chart_entries", "dt=2026-10-03")] == 4
    assert compaction.compact(per_file_lake, month="2026-09").partitions_rewritten == 0
    assert compaction.compact(per_file_lake, month="2026-10").partitions_rewritten == 2


def test_readers_see_neither_doubles_nor_gaps_at_any_step_of_a_compaction(
    per_file_lake, monkeypatch
):
    """Every write and delete of a compaction is a moment a reader may look; at each one the
    tables must read exactly as before."""
    expected = table_rows(per_file_lake)
    seen_states = []

    def look(label):
        seen_states.append((label, table_rows(per_file_lake) == expected))

    real_write, real_delete = lake.write_parquet, lake.delete

    def write_then_look(root, key, table, metadata=None):
        real_write(root, key, table, metadata)
        look(f"after writing {key}")

    def look_then_delete(root, keys):
        look(f"before deleting {len(keys)} files")
        real_delete(root, keys)
        look(f"after deleting {len(keys)} files")

    monkeypatch.setattr(lake, "write_parquet", write_then_look)
    monkeypatch.setattr(lake, "delete", look_then_delete)
    compaction.compact(per_file_lake, days=["2026-10-01"])
    assert len(seen_states) == 6 + 2
    assert [label for label, same in seen_states if not same] == []


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
    assert set(files_per_table_day(per_file_lake).values()) == {1}
    assert pipeline.pending_raw_keys(per_file_lake) == []

    # A repeated notification for the same raw file changes nothing.
    pipeline.transform(per_file_lake, [key])
    assert table_rows(per_file_lake) == rows
    assert set(files_per_table_day(per_file_lake).values()) == {1}


def test_retransforming_everything_replaces_batch_files(per_file_lake):
    compaction.compact(per_file_lake)
    rows = table_rows(per_file_lake)
    old_files = set(snapshot_of_files(per_file_lake))
    pipeline.retransform_all(per_file_lake, workers=1)
    assert table_rows(per_file_lake) == rows
    assert set(files_per_table_day(per_file_lake).values()) == {1}
    assert old_files.isdisjoint(snapshot_of_files(per_file_lake))


def test_cli_compact_and_bulk_transform(tmp_path, capsys):
    root = str(tmp_path / "lake")
    land_hours(root, days=2, hours=(0, 12), odd=False)
    assert cli.main(["transform", "--lake", root, "--bulk", "--workers", "2"]) == 0
    assert "transformed 4 raw files" in capsys.readouterr().err
    land_hours(root, days=2, hours=(18,), odd=False)  # after the batch files' range
    assert cli.main(["transform", "--lake", root]) == 0
    assert cli.main(["compact", "--lake", root, "--month", "2026-10"]) == 0
    err = capsys.readouterr().err
    assert "compacted 2 playlist-days: 24 files -> 12; 0 already compact" in err
    assert cli.main(["compact", "--lake", root]) == 0
    assert "compacted 0 playlist-days: 0 files -> 0; 2 already compact" in capsys.readouterr().err

    assert cli.main(["compact", "--lake", root, "--month", "2026-13"]) == 2
    assert "--month '2026-13' is not a month: use YYYY-MM" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main(["compact", "--lake", root, "--day", "yesterday"])
    assert "'yesterday' is not a day: use YYYY-MM-DD" in capsys.readouterr().err


@pytest.mark.slow
def test_compaction_on_s3(moto_endpoint, tmp_path):
    boto3.client("s3").create_bucket(Bucket="charts-lake")
    root = "s3://charts-lake/lake"
    local = str(tmp_path / "local")
    for target in (root, local):
        land_hours(target, days=2, hours=(0, 12), odd=False)
        pipeline.transform(target)
    expected = table_rows(local)
    assert table_rows(root) == expected

    summary = compaction.compact(root)
    assert (summary.partitions_rewritten, summary.files_before, summary.files_after) == (2, 24, 12)
    assert set(files_per_table_day(root).values()) == {1}
    assert table_rows(root) == expected
    files = snapshot_of_files(root)
    assert compaction.compact(root).partitions_rewritten == 0
    assert snapshot_of_files(root) == files
    assert pipeline.pending_raw_keys(root) == []

    # The bulk path on S3, in worker processes (spawned: the S3 client runs a thread).
    bulk = "s3://charts-lake/bulk"
    land_hours(bulk, days=2, hours=(0, 12), odd=False)
    summary = pipeline.transform_bulk(bulk, workers=2)
    assert len(summary.transformed) == 4
    assert table_rows(bulk) == expected
    assert set(files_per_table_day(bulk).values()) == {1}
