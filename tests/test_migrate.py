"""``spotify-etl migrate``: a lake written by the previous release (loose Parquet files under
``tables/``, ``catalog.duckdb``), or a moved lake folder, rebuilt as Iceberg tables from its
raw zone; commands refuse such a lake until then.

The old lakes here are built without the previous release's code: raw files landed as
today, then Parquet files named and placed as that release did, and a DuckDB catalog file.
"""

from __future__ import annotations

import io
import json
import os
import shutil
from datetime import UTC, datetime, timedelta
from multiprocessing import get_context
from pathlib import Path

import boto3
import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from etl_lib import cli, migrate, pipeline
from etl_lib.extract import envelope
from etl_lib.lake import layout, storage
from etl_lib.local_spotify.simulator import ChartSimulator
from etl_lib.transform import decode, iceberg, schemas

GLOBAL = "37i9dQZEVXbNG2KDcFcKOF"
TOP_50 = "37i9dQZEVXbMDoHDwVN2tF"
FIRST_DAY = datetime(2026, 10, 1, tzinfo=UTC)
# The previous release's tables had no playlist_id beside extracted_at in these.
WITHOUT_PLAYLIST_BEFORE = ("tracks", "albums", "artists", "track_artists")
BROKEN = f"raw/playlist_id={GLOBAL}/dt=2026-10-02/20261002T120000Z.json"
COUNT_ENTRIES = "SELECT count(*) AS n FROM chart_entries"
BUCKET = "charts-lake"


def _envelopes(days: int = 2, hours=(6, 18)) -> list[dict]:
    simulator = ChartSimulator(chart_size=8)
    envelopes = []
    for playlist_id in (GLOBAL, TOP_50):
        for offset in range(days):
            for hour in hours:
                moment = FIRST_DAY + timedelta(days=offset, hours=hour)
                day = moment.date()
                entries = simulator.chart(playlist_id, day)
                page = {
                    "href": "https://api.spotify.com/v1/playlists/x/items",
                    "items": entries,
                    "limit": 100,
                    "next": None,
                    "offset": 0,
                    "previous": None,
                    "total": len(entries),
                }
                source = {
                    "kind": "spotify-web-api",
                    "api_base_url": "https://api.spotify.com/v1",
                    "endpoint": f"playlists/{playlist_id}/items",
                }
                envelopes.append(
                    envelope.make_envelope(
                        simulator.playlist(playlist_id, day), [page], moment, source
                    )
                )
    return envelopes


def _land(root: str) -> list[str]:
    """The raw zone both releases share: good snapshots, and one file the previous release
    quarantined (its copy and reason beside it, the raw file left in place)."""
    keys = [pipeline.land_raw(root, payload).raw_key for payload in _envelopes()]
    storage.write_bytes(root, BROKEN, b'{"envelope_version": 1, "pages": [')
    pipeline.quarantine(root, BROKEN, f"CorruptPayload: {BROKEN}: not JSON")
    return keys


def _parquet(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink)
    return sink.getvalue()


def _write_previous_tables(root: str, raw_keys: list[str]) -> list[str]:
    """Table files as the previous release named them: one per raw file and table, except
    the first playlist-day, which a bulk load or compaction had put in one batch file."""
    by_day: dict[tuple[str, str], list[str]] = {}
    for key in raw_keys:
        parts = layout.parse_raw_key(key)
        by_day.setdefault((parts["playlist_id"], parts["dt"]), []).append(key)
    written = []
    for number, ((playlist_id, dt), keys) in enumerate(sorted(by_day.items())):
        results = [decode.transform_raw(storage.read_bytes(root, key), key) for key in keys]
        stamps = [layout.parse_raw_key(key)["stamp"] for key in keys]
        if number == 0:
            groups = [(f"{stamps[0]}-{stamps[-1]}_g20261001T233000000000Zab12", results)]
        else:
            groups = [(stamp, [result]) for stamp, result in zip(stamps, results, strict=True)]
        for name_part, group in groups:
            for table in schemas.TABLES:
                rows = pa.concat_tables([result.tables[table] for result in group])
                if table in WITHOUT_PLAYLIST_BEFORE:
                    rows = rows.drop_columns(["playlist_id"])
                key = f"tables/{table}/dt={dt}/{playlist_id}_{name_part}.parquet"
                storage.write_bytes(root, key, _parquet(rows))
                written.append(key)
    return written


def _write_previous_catalog(root: str) -> None:
    """``catalog.duckdb``: DuckDB views over the table files, paths relative to the lake."""
    path = Path(root) / "catalog.duckdb"
    with duckdb.connect(str(path)) as connection:
        connection.execute("SET file_search_path = ?", [root])
        for table in schemas.TABLES:
            connection.execute(
                f"CREATE VIEW {table} AS SELECT * FROM read_parquet("
                f"'tables/{table}/*/*.parquet', hive_partitioning = true)"
            )
    # Left by a write that never checkpointed.
    (Path(root) / "catalog.duckdb.wal").write_bytes(b"\x00" * 64)


def _previous_lake(root: str) -> list[str]:
    keys = _land(root)
    old_files = _write_previous_tables(root, keys)
    if storage.is_local(root):
        _write_previous_catalog(root)
    return old_files


def _rows(root: str) -> dict[str, list]:
    """Every table's rows, in an order independent of files and commits."""
    return {
        name: sorted(
            tuple(sorted((column, repr(value)) for column, value in row.items()))
            for row in iceberg.scan(root, name).to_pylist()
        )
        for name in schemas.TABLES
    }


def _fresh_rows(tmp_path: Path) -> dict[str, list]:
    """The tables of a lake that never had the previous layout, from the same raw files."""
    root = str(tmp_path / "fresh")
    _land(root)
    summary = pipeline.transform(root)
    assert len(summary.transformed) == 8 and not summary.quarantined  # BROKEN: quarantined
    return _rows(root)


def _files(root: str) -> dict[str, int]:
    base = Path(root)
    return {
        str(path.relative_to(base)): path.stat().st_mtime_ns
        for path in base.rglob("*")
        if path.is_file()
    }


def _one_stderr_line(capsys) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    assert "Traceback" not in captured.err
    return lines[0]


def _count_entries(root: str, capsys) -> int:
    assert cli.main(["query", "--lake", root, "--format", "json", COUNT_ENTRIES]) == 0
    return json.loads(capsys.readouterr().out)[0]["n"]


def test_commands_refuse_a_lake_in_the_previous_layout_in_one_line(lake_root, capsys):
    _previous_lake(lake_root)
    before = _files(lake_root)
    expected = (
        f"error: lake {lake_root} holds tables in the previous release's layout: run "
        f"spotify-etl migrate --lake {lake_root} to rebuild them as Iceberg tables"
    )
    for command in (
        ["query", "--lake", lake_root, COUNT_ENTRIES],
        ["transform", "--lake", lake_root],
        ["catalog", "--lake", lake_root],
        ["compact", "--lake", lake_root],
    ):
        assert cli.main(command) == 1, command
        assert _one_stderr_line(capsys) == expected
    # Refused before anything was created: no Iceberg catalog or table beside the old files.
    assert _files(lake_root) == before


def test_migrate_rebuilds_every_table_from_the_raw_zone_and_removes_the_old_files(
    lake_root, tmp_path, capsys, monkeypatch
):
    # Workers started afresh, as for an s3:// lake: they open the tables being built, which
    # other processes may not open yet.
    monkeypatch.setattr(pipeline, "_process_context", lambda: get_context("spawn"))
    old_files = _previous_lake(lake_root)
    quarantined = {
        key: storage.read_bytes(lake_root, key)
        for key in (layout.quarantine_key(BROKEN), layout.quarantine_reason_key(BROKEN))
    }
    raw_before = {
        key: storage.read_bytes(lake_root, key) for key in pipeline.all_raw_keys(lake_root)
    }

    assert cli.main(["migrate", "--lake", lake_root, "--workers", "2"]) == 0
    assert _one_stderr_line(capsys) == (
        f"migrated lake {lake_root} to Iceberg tables: 8 raw files transformed, 1 quarantined "
        f"(left out), {len(old_files) + 2} old files removed"
    )

    assert _rows(lake_root) == _fresh_rows(tmp_path)
    assert _count_entries(lake_root, capsys) == 8 * 8
    # The old files are gone, folders included; the raw zone and the quarantine are as they were.
    assert not (Path(lake_root) / "tables").exists()
    assert not (Path(lake_root) / "catalog.duckdb").exists()
    assert not (Path(lake_root) / "catalog.duckdb.wal").exists()
    assert {k: storage.read_bytes(lake_root, k) for k in pipeline.all_raw_keys(lake_root)} == (
        raw_before
    )
    assert {k: storage.read_bytes(lake_root, k) for k in quarantined} == quarantined
    assert BROKEN not in pipeline.transformed_raw_keys(lake_root)
    assert pipeline.pending_raw_keys(lake_root) == []

    # Running it again finds nothing to do and changes no file.
    after = _files(lake_root)
    assert cli.main(["migrate", "--lake", lake_root]) == 0
    assert (
        _one_stderr_line(capsys) == f"lake {lake_root} is in the current layout: nothing to migrate"
    )
    assert _files(lake_root) == after


def test_a_migration_that_stopped_is_refused_until_a_second_run_finishes_it(
    lake_root, tmp_path, capsys, monkeypatch
):
    _previous_lake(lake_root)
    # One commit per playlist-day; the third one never happens.
    monkeypatch.setattr(pipeline, "BULK_COMMIT_EVERY_SNAPSHOTS", 1)
    commit_staged = iceberg.commit_staged
    commits = []

    def stop_at_the_third_commit(root, staged):
        commits.append(staged)
        if len(commits) == 3:
            raise KeyboardInterrupt
        commit_staged(root, staged)

    monkeypatch.setattr(iceberg, "commit_staged", stop_at_the_third_commit)
    with pytest.raises(KeyboardInterrupt):
        migrate.migrate(lake_root, workers=1)
    monkeypatch.setattr(iceberg, "commit_staged", commit_staged)
    done = {
        layout.raw_key(playlist_id, moment)
        for staged in commits[:2]
        for part in staged
        for playlist_id, moment in zip(
            part.snapshots.column("playlist_id").to_pylist(),
            part.snapshots.column("extracted_at").to_pylist(),
            strict=True,
        )
    }
    assert len(done) == 4  # two playlist-days of two snapshots each

    # Half the rows are in Iceberg tables now, but the lake is not taken for a migrated one.
    assert cli.main(["query", "--lake", lake_root, COUNT_ENTRIES]) == 1
    assert _one_stderr_line(capsys) == (
        f"error: the migration of lake {lake_root} to Iceberg tables stopped before it "
        f"finished: run spotify-etl migrate --lake {lake_root} to complete it"
    )

    summary = migrate.migrate(lake_root, workers=1)
    assert sorted(summary.transform.transformed) == sorted(
        set(pipeline.all_raw_keys(lake_root)) - done - {BROKEN}
    )
    assert _rows(lake_root) == _fresh_rows(tmp_path)
    assert not (Path(lake_root) / "tables").exists()
    assert _count_entries(lake_root, capsys) == 8 * 8


def test_migrate_changes_nothing_when_old_tables_name_raw_files_the_raw_zone_lacks(
    lake_root, capsys
):
    old_files = _previous_lake(lake_root)
    # A snapshot whose raw file was deleted since (the raw zone is meant to keep them all).
    gone = f"raw/playlist_id={GLOBAL}/dt=2026-09-30/20260930T060000Z.json"
    source = f"tables/snapshots/dt=2026-10-02/{TOP_50}_20261002T060000Z.parquet"
    assert source in old_files
    snapshot = pq.read_table(io.BytesIO(storage.read_bytes(lake_root, source)))
    snapshot = snapshot.set_column(
        snapshot.schema.get_field_index("raw_key"), "raw_key", pa.array([gone])
    )
    storage.write_bytes(
        lake_root,
        f"tables/snapshots/dt=2026-09-30/{GLOBAL}_20260930T060000Z.parquet",
        _parquet(snapshot),
    )
    before = _files(lake_root)

    assert cli.main(["migrate", "--lake", lake_root]) == 1
    line = _one_stderr_line(capsys)
    assert "hold 1 snapshots whose raw files are not in the raw zone" in line
    assert f"(first: {gone})" in line and "run migrate again" in line
    assert _files(lake_root) == before


def test_a_moved_or_copied_lake_is_refused_then_rebuilt_by_migrate(lake_root, tmp_path, capsys):
    _previous_lake(lake_root)
    assert cli.main(["migrate", "--lake", lake_root]) == 0
    capsys.readouterr()
    expected = _rows(lake_root)
    original_files = _files(lake_root)

    copy = str(tmp_path / "copy")
    shutil.copytree(lake_root, copy)
    assert cli.main(["query", "--lake", copy, COUNT_ENTRIES]) == 1
    line = _one_stderr_line(capsys)
    assert f"run `spotify-etl migrate --lake {copy}`" in line and "moved or copied" in line

    assert cli.main(["migrate", "--lake", copy]) == 0
    assert _one_stderr_line(capsys) == (
        f"migrated lake {copy} to Iceberg tables: 8 raw files transformed, 1 quarantined "
        f"(left out), 0 old files removed, dropped the catalog of tables at "
        f"{lake_root}/warehouse"
    )
    assert _rows(copy) == expected
    assert _count_entries(copy, capsys) == 8 * 8
    # The copy's tables are its own: the original's files are neither read nor changed.
    assert all(
        path.startswith(iceberg.warehouse_location(copy) + "/")
        for name in schemas.TABLES
        for path in iceberg.plan(copy, name).files
    )
    assert _files(lake_root) == original_files

    # Moved away: the catalog names files that no longer exist anywhere.
    moved = str(tmp_path / "moved")
    os.rename(lake_root, moved)
    assert migrate.foreign_tables(moved) is not None
    summary = migrate.migrate(moved)
    assert summary is not None and len(summary.transform.transformed) == 8
    assert _rows(moved) == expected
    assert migrate.migrate(moved) is None


def test_migrate_rebuilds_tables_whose_metadata_is_damaged(lake_root, capsys):
    _previous_lake(lake_root)
    assert cli.main(["migrate", "--lake", lake_root]) == 0
    capsys.readouterr()
    expected = _rows(lake_root)
    table = iceberg.open_tables(lake_root).table("chart_entries")
    Path(table.metadata_location).write_text("{ not metadata")
    iceberg.forget(lake_root)

    assert cli.main(["query", "--lake", lake_root, COUNT_ENTRIES]) == 1
    line = _one_stderr_line(capsys)
    assert table.metadata_location in line
    assert f"run `spotify-etl migrate --lake {lake_root}`" in line

    assert cli.main(["migrate", "--lake", lake_root]) == 0
    assert "8 raw files transformed" in _one_stderr_line(capsys)
    assert _rows(lake_root) == expected
    assert cli.main(["migrate", "--lake", lake_root]) == 0
    assert "nothing to migrate" in _one_stderr_line(capsys)


@pytest.mark.slow
def test_migrate_on_s3_drops_the_previous_glue_tables_and_old_objects(
    moto_endpoint, tmp_path, capsys
):
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    root = f"s3://{BUCKET}/lake"
    old_files = _previous_lake(root)
    glue = boto3.client("glue")
    glue.create_database(DatabaseInput={"Name": "spotify_charts"})
    for table in ("snapshots", "chart_entries"):
        # The previous release's external Parquet table (partition projection on dt).
        glue.create_table(
            DatabaseName="spotify_charts",
            TableInput={
                "Name": table,
                "TableType": "EXTERNAL_TABLE",
                "StorageDescriptor": {"Location": f"{root}/tables/{table}/"},
                "Parameters": {"classification": "parquet", "projection.enabled": "true"},
            },
        )

    assert cli.main(["query", "--lake", root, COUNT_ENTRIES]) == 1
    assert _one_stderr_line(capsys) == (
        f"error: lake {root} holds tables in the previous release's layout: run "
        f"spotify-etl migrate --lake {root} to rebuild them as Iceberg tables"
    )

    assert cli.main(["migrate", "--lake", root]) == 0
    assert _one_stderr_line(capsys) == (
        f"migrated lake {root} to Iceberg tables: 8 raw files transformed, 1 quarantined "
        f"(left out), {len(old_files)} old files removed, dropped the previous layout's Glue "
        "tables (chart_entries, snapshots)"
    )
    assert _rows(root) == _fresh_rows(tmp_path)
    assert _count_entries(root, capsys) == 8 * 8
    assert list(storage.list_keys(root, "tables/")) == []
    kinds = {
        table["Name"]: table["Parameters"].get("table_type")
        for table in glue.get_tables(DatabaseName="spotify_charts")["TableList"]
    }
    assert kinds == dict.fromkeys(schemas.TABLES, "ICEBERG")

    assert cli.main(["migrate", "--lake", root]) == 0
    assert _one_stderr_line(capsys) == f"lake {root} is in the current layout: nothing to migrate"
