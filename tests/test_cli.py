"""The command line as a user meets it: help everywhere, one-line errors, the demo."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from etl_lib import cli
from etl_lib.cli.demo import DEMO_PLAYLISTS
from etl_lib.lake import storage
from etl_lib.transform.schemas import TABLES

SUBCOMMANDS = [
    "extract", "transform", "backfill", "compact", "migrate", "catalog", "query", "run", "report",
    "status", "export", "demo",
]  # fmt: skip


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "etl_lib", *args],
        capture_output=True,
        text=True,
        timeout=300,  # the demo runs a report per chart and the comparison
        env=env,
    )


@pytest.mark.parametrize(
    "command", [[c] for c in SUBCOMMANDS] + [["auth", "login"], ["auth", "status"]], ids=str
)
def test_every_subcommand_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main([*command, "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "--lake" in out and command[-1] in out


def test_module_entry_point_lists_commands():
    result = run_cli("--help")
    assert result.returncode == 0
    for command in SUBCOMMANDS:
        assert command in result.stdout


def test_user_errors_are_one_line_without_traceback(tmp_path, settings, monkeypatch):
    for name, value in {
        "SPOTIFY_API_BASE_URL": settings.api_base_url,
        "SPOTIFY_TOKEN_URL": settings.token_url,
        "SPOTIFY_CLIENT_ID": settings.credentials.client_id,
        "SPOTIFY_CLIENT_SECRET": settings.credentials.client_secret,
        "SPOTIFY_ETL_CREDENTIALS_FILE": str(tmp_path / "no-credentials.json"),
    }.items():
        monkeypatch.setenv(name, value)
    env = dict(os.environ)
    root = str(tmp_path / "lake")
    cases = {
        "unknown playlist": ["extract", "--lake", root, "--playlist", "0000000000000000000000"],
        "invalid playlist id": ["extract", "--lake", root, "--playlist", "not/an/id"],
        "lake is a file": ["transform", "--lake", str(_a_file(tmp_path))],
        "no lake there": ["query", "--lake", str(tmp_path / "no-lake"), "SELECT 1"],
        "unknown table": ["query", "--lake", root, "SELECT * FROM no_such_table"],
        "unbalanced quote": ["query", "--lake", root, "SELECT 'x FROM daily_chart"],
        "bad option value": ["report", "--lake", root, "--days", "0"],
        "unknown option": ["status", "--lake", root, "--colour"],
        "playlist link elsewhere": ["extract", "--lake", root, "--playlist", "https://x.y/p"],
        "missing input": ["transform", "--lake", root, "--input", str(tmp_path / "nope.json")],
    }
    for label, args in cases.items():
        result = run_cli(*args, env=env)
        assert result.returncode != 0, label
        assert "Traceback" not in result.stderr, label
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (label, result.stderr)


def _a_file(tmp_path: Path) -> Path:
    path = tmp_path / "plain-file"
    path.write_text("not a folder")
    return path


def test_corrupt_raw_file_exits_non_zero_naming_it(tmp_path):
    root = str(tmp_path / "lake")
    key = "raw/playlist_id=abc/dt=2026-01-01/20260101T000000Z.json"
    storage.write_bytes(root, key, b"[1, 2")
    result = run_cli("transform", "--lake", root)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert key in result.stderr and "quarantine" in result.stderr


def test_demo_then_query(tmp_path):
    root = str(tmp_path / "lake")
    result = run_cli("demo", "--lake", root)
    assert result.returncode == 0, result.stderr
    # the charts change daily: the second check of each day is a heartbeat, not a download
    chart_days = 30 * len(DEMO_PLAYLISTS)
    assert f"{chart_days} extracted, {chart_days} unchanged" in result.stderr
    assert "Current top 10" in result.stdout
    # It ends saying where the reports are and how to explore the lake, and the kernels'
    # own chatter (transport warnings, shutdown logs) stays out of the terminal.
    index = (Path(root) / "reports" / "index.html").resolve().as_uri()
    assert result.stdout.splitlines()[-2:] == [
        f"Every report, latest first: {index}",
        f"Explore the lake in JupyterLab: make lab LAKE={Path(root).resolve()} "
        "(in the project's folder)",
    ]
    assert "IPKernelApp" not in result.stderr and "transport" not in result.stderr.lower()
    assert "chart_entries" in result.stdout
    warehouse = os.path.abspath(os.path.join(root, "warehouse"))
    assert f"Iceberg tables: {warehouse}\n" in result.stdout
    assert f"Table catalog:  {Path(root) / 'iceberg_catalog.db'}\n" in result.stdout
    assert (Path(root) / "iceberg_catalog.db").is_file()

    counts = run_cli(
        "query", "--lake", root, "--format", "json",
        "SELECT count(DISTINCT dt) AS days, count(*) AS entries FROM daily_chart",
    )
    assert counts.returncode == 0, counts.stderr
    [row] = json.loads(counts.stdout)
    assert row["days"] == 30 and row["entries"] == len(DEMO_PLAYLISTS) * 30 * 50

    csv = run_cli(
        "query", "--lake", root, "--format", "csv", "--param", "1",
        "SELECT chart_rank FROM daily_chart WHERE chart_rank = CAST(? AS INTEGER) LIMIT 1",
    )
    assert csv.stdout.splitlines() == ["chart_rank", "1"]

    # Transforming the whole raw zone again changes no row counts.
    before = run_cli("query", "--lake", root, "--format", "json", _COUNTS_SQL).stdout
    again = run_cli("transform", "--lake", root, "--all")
    assert again.returncode == 0, again.stderr
    cataloged = run_cli("catalog", "--lake", root)
    assert cataloged.returncode == 0, cataloged.stderr
    assert cataloged.stderr.startswith(
        f"cataloged 13 tables and views in {Path(root) / 'iceberg_catalog.db'} "
        "(DuckDB reads it per query): "
    ), cataloged.stderr
    assert run_cli("query", "--lake", root, "--format", "json", _COUNTS_SQL).stdout == before

    # Every day holds a file per chart and table: compaction leaves one per table, with no
    # retention the files it and the re-transform replaced go, and the tables read the same.
    compacted = run_cli(
        "compact", "--lake", root, env={**os.environ, "SPOTIFY_ETL_SNAPSHOT_RETENTION_DAYS": "0"}
    )
    assert compacted.returncode == 0, compacted.stderr
    day_files = 30 * len(TABLES)
    line = re.fullmatch(
        rf"compacted 30 days: {day_files * len(DEMO_PLAYLISTS)} files -> {day_files}; "
        r"0 already compact; expired (\d+) table snapshots, "
        r"deleted (\d+) files no snapshot needs\n",
        compacted.stderr,
    )
    assert line and int(line[1]) > 0 and int(line[2]) > 0, compacted.stderr
    assert run_cli("query", "--lake", root, "--format", "json", _COUNTS_SQL).stdout == before

    # A second demo (a new server on another port) lands nothing new.
    rerun = run_cli("demo", "--lake", root)
    assert rerun.returncode == 0
    assert f"{chart_days} already landed, {chart_days} unchanged" in rerun.stderr
    assert run_cli("query", "--lake", root, "--format", "json", _COUNTS_SQL).stdout == before


_COUNTS_SQL = (
    "SELECT (SELECT count(*) FROM chart_entries) AS entries, (SELECT count(*) FROM tracks) AS t, "
    "(SELECT count(*) FROM albums) AS al, (SELECT count(*) FROM artists) AS ar, "
    "(SELECT count(*) FROM track_artists) AS ta, (SELECT count(*) FROM snapshots) AS s"
)


@pytest.mark.shared_data
def test_recorded_responses_import_and_transform(shared_data, tmp_path):
    root = str(tmp_path / "lake")
    result = run_cli(
        "transform", "--lake", root, "--input", str(shared_data / "spotify-api-recorded"),
        "--extracted-at", "2022-07-20T00:00:00Z",
    )
    assert result.returncode == 0, result.stderr
    assert "episodes" in result.stderr
    assert run_cli("catalog", "--lake", root).returncode == 0
    skipped = run_cli(
        "query", "--lake", root, "--format", "json",
        "SELECT sum(skipped_episodes) AS episodes, sum(track_count) AS tracks, count(*) AS files "
        "FROM snapshots",
    )
    [row] = json.loads(skipped.stdout)
    assert row["files"] == 5 and row["episodes"] > 0 and row["tracks"] > 0
