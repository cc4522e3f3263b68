"""The command line as a user meets it: help everywhere, one-line errors, the demo."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from etl_lib import cli, lake

SUBCOMMANDS = ["extract", "transform", "backfill", "catalog", "query", "run", "report", "demo"]


def run_cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "etl_lib", *args],
        capture_output=True,
        text=True,
        timeout=120,
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
    import os

    env = dict(os.environ)
    root = str(tmp_path / "lake")
    cases = {
        "unknown playlist": ["extract", "--lake", root, "--playlist", "0000000000000000000000"],
        "invalid playlist id": ["extract", "--lake", root, "--playlist", "not/an/id"],
        "lake is a file": ["transform", "--lake", str(_a_file(tmp_path))],
        "no catalog yet": ["query", "--lake", root, "SELECT 1"],
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
    lake.write_bytes(root, key, b"[1, 2")
    result = run_cli("transform", "--lake", root)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert key in result.stderr and "quarantine" in result.stderr


def test_demo_then_query(tmp_path):
    root = str(tmp_path / "lake")
    result = run_cli("demo", "--lake", root)
    assert result.returncode == 0, result.stderr
    # the chart changes daily: the second check of each day is a heartbeat, not a download
    assert "30 extracted, 30 unchanged" in result.stderr
    assert "Current top 10" in result.stdout
    assert "chart_entries" in result.stdout

    counts = run_cli(
        "query", "--lake", root, "--format", "json",
        "SELECT count(DISTINCT dt) AS days, count(*) AS entries FROM daily_chart",
    )
    assert counts.returncode == 0, counts.stderr
    [row] = json.loads(counts.stdout)
    assert row["days"] == 30 and row["entries"] == 30 * 50

    csv = run_cli(
        "query", "--lake", root, "--format", "csv", "--param", "1",
        "SELECT chart_rank FROM daily_chart WHERE chart_rank = CAST(? AS INTEGER) LIMIT 1",
    )
    assert csv.stdout.splitlines() == ["chart_rank", "1"]

    # Transforming the whole raw zone again changes no row counts.
    before = run_cli("query", "--lake", root, "--format", "json", _COUNTS_SQL).stdout
    again = run_cli("transform", "--lake", root, "--all")
    assert again.returncode == 0, again.stderr
    run_cli("catalog", "--lake", root)
    assert run_cli("query", "--lake", root, "--format", "json", _COUNTS_SQL).stdout == before

    # A second demo (a new server on another port) lands nothing new.
    rerun = run_cli("demo", "--lake", root)
    assert rerun.returncode == 0
    assert "30 already landed, 30 unchanged" in rerun.stderr
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
