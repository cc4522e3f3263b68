"""`spotify-etl status` and `export`, playlist links, and the checks made before any work:
bad report parameters, SQL mistakes and a busy catalog each end in one line."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from etl_lib import cli, pipeline
from etl_lib.cli import demo, output
from etl_lib.config import Settings, playlist_id
from etl_lib.errors import ConfigError, EtlError
from etl_lib.extract import envelope
from etl_lib.extract.outcome import ExtractStatus
from etl_lib.lake import layout, storage
from etl_lib.reporting import reports, status
from etl_lib.warehouse import execute

GLOBAL = demo.DEMO_PLAYLIST
DAYS = 3


@pytest.fixture(scope="module")
def demo_lake(tmp_path_factory) -> str:
    """A small demo lake, shared: tests that change a lake copy it first (``lake_copy``)."""
    root = str(tmp_path_factory.mktemp("status") / "lake")
    demo.run_demo(root, days=DAYS)
    return root


@pytest.fixture
def lake_copy(demo_lake, tmp_path) -> str:
    root = tmp_path / "lake"
    shutil.copytree(demo_lake, root)
    # The Iceberg metadata holds absolute paths: a copy is a moved lake until migrated.
    assert cli.main(["migrate", "--lake", str(root)]) == 0
    return str(root)


def one_error_line(capsys) -> str:
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), captured.err
    assert "Traceback" not in captured.err
    return lines[0]


# ---------------------------------------------------------------------------------------------
# Playlist options


@pytest.mark.parametrize(
    "value",
    [
        GLOBAL,
        f"https://open.spotify.com/playlist/{GLOBAL}",
        f"https://open.spotify.com/playlist/{GLOBAL}?si=4f1c2d3e4b5a6978",
        f"https://open.spotify.com/playlist/{GLOBAL}/",
        f"https://open.spotify.com/intl-de/playlist/{GLOBAL}?si=x#top",
        f"https://open.spotify.com/intl-pt-BR/playlist/{GLOBAL}",
        f"https://OPEN.SPOTIFY.COM/playlist/{GLOBAL}",
        f"http://open.spotify.com/playlist/{GLOBAL}",
        f"open.spotify.com/playlist/{GLOBAL}",
        f"https://open.spotify.com/embed/playlist/{GLOBAL}",
        f"spotify:playlist:{GLOBAL}",
        f"spotify:user:spotifycharts:playlist:{GLOBAL}",
    ],
)
def test_a_playlist_is_an_id_a_link_or_a_uri(value):
    assert playlist_id(value) == GLOBAL


@pytest.mark.parametrize(
    "value",
    [
        "",
        "   ",
        f"{GLOBAL}\n",  # cut from something else: refused rather than guessed
        f" {GLOBAL}",
        "not/an/id",
        "../../etc",
        f"{GLOBAL}/../x",
        "x" * 65,
        "ａｂｃ",  # fullwidth letters
        "١٢٣",  # Arabic-Indic digits
        f"{GLOBAL}\x1b[31m",
        f"\u202e{GLOBAL}",
        f"https://open.spotify.com.evil.example/playlist/{GLOBAL}",
        f"https://evil.example/playlist/{GLOBAL}",
        f"https://open.spotify.com@evil.example/playlist/{GLOBAL}",
        f"https://user@open.spotify.com/playlist/{GLOBAL}",
        f"https://open.spotify.com:8443/playlist/{GLOBAL}",
        f"https://open.spotify.com:x/playlist/{GLOBAL}",
        f"https://[open.spotify.com/playlist/{GLOBAL}",
        f"https://open.spotify.com/album/{GLOBAL}",
        f"https://open.spotify.com/playlist/{GLOBAL}/tracks",
        "https://open.spotify.com/playlist/",
        "https://open.spotify.com/playlist/ab%2Fcd",
        f"ftp://open.spotify.com/playlist/{GLOBAL}",
        f"javascript:alert('{GLOBAL}')",
        f"spotify:track:{GLOBAL}",
        "spotify:playlist:",
        f"spotify:playlist:{GLOBAL}:extra",
    ],
)
def test_anything_else_is_refused_naming_the_value(value):
    with pytest.raises(ConfigError) as refused:
        playlist_id(value)
    message = str(refused.value)
    assert "\n" not in message and repr(value)[:40] in message


def test_the_playlists_setting_takes_links_too():
    settings = Settings.from_env(
        {
            "SPOTIFY_ETL_PLAYLISTS": f"https://open.spotify.com/playlist/{GLOBAL}?si=a, "
            "spotify:playlist:37i9dQZEVXbLRQDuF5jeBp,,"
        }
    )
    assert settings.playlists == (GLOBAL, "37i9dQZEVXbLRQDuF5jeBp")
    with pytest.raises(ConfigError, match="evil"):
        Settings.from_env({"SPOTIFY_ETL_PLAYLISTS": "https://evil/x"})


def test_a_bad_playlist_option_is_one_line_and_exit_2(demo_lake, capsys):
    for command in ("status", "report", "extract", "run", "export"):
        extra = ["--view", "chart", "--out", "x.csv"] if command == "export" else []
        code = cli.main([command, "--lake", demo_lake, "--playlist", "https://evil/p/1", *extra])
        assert code == 2, command
        assert "'https://evil/p/1' is not a Spotify ID" in one_error_line(capsys)
    code = cli.main(["transform", "--lake", demo_lake, "--input", "x", "--playlist-id", "a/b"])
    assert code == 2
    assert "'a/b'" in one_error_line(capsys)


# ---------------------------------------------------------------------------------------------
# status


def test_status_json_says_what_the_lake_holds(lake_copy, capsys):
    # A raw file that cannot be transformed, and a failed report after a good one.
    bad_key = f"raw/playlist_id={GLOBAL}/dt=2026-10-31/20261031T230000Z.json"
    storage.write_bytes(lake_copy, bad_key, b'{"not": "an envelope"}')
    pipeline.transform(lake_copy)
    storage.write_bytes(lake_copy, f"reports/{GLOBAL}/2026-10-30/report.html", b"<p>ok</p>")
    storage.write_bytes(lake_copy, f"reports/{GLOBAL}/2026-10-30/status.json", b"{}")
    failed = f"reports/{GLOBAL}/2026-10-31/failed/20261101T000000Z/status.json"
    storage.write_bytes(lake_copy, failed, b"{}")
    # A comparison of charts is no playlist's report.
    storage.write_bytes(lake_copy, "reports/compare/2026-10-31/report.html", b"<p>ok</p>")
    storage.write_bytes(lake_copy, "reports/compare/2026-10-31/status.json", b"{}")

    before = datetime.now(UTC)
    assert cli.main(["status", "--lake", lake_copy, "--format", "json"]) == 0
    after = datetime.now(UTC)
    shown = json.loads(capsys.readouterr().out)
    assert set(shown) == {"lake", "generated_at", "playlists", "unreadable"}
    assert shown["unreadable"] == []
    truth = execute.query(
        lake_copy,
        "SELECT s.playlist_id, max(s.extracted_at) AS newest, min(s.dt) AS first_day, "
        "max(s.dt) AS last_day, count(*) AS snapshots, "
        "(SELECT count(*) FROM chart_entries AS e WHERE e.playlist_id = s.playlist_id) AS rows "
        "FROM snapshots AS s GROUP BY s.playlist_id ORDER BY s.playlist_id",
    )
    assert [p["playlist_id"] for p in shown["playlists"]] == list(truth["playlist_id"])
    by_id = {p["playlist_id"]: p for p in shown["playlists"]}
    for row in truth.itertuples():
        playlist = by_id[row.playlist_id]
        newest = row.newest.to_pydatetime()
        assert playlist["last_new_snapshot"] == newest.strftime("%Y-%m-%dT%H:%M:%SZ")
        assert playlist["chart_rows"] == row.rows > 0
        assert playlist["snapshots"] == row.snapshots
        assert (playlist["first_day"], playlist["last_day"]) == (row.first_day, row.last_day)
        age = playlist["freshness_seconds"]
        assert (before - newest).total_seconds() - 1 <= age <= (after - newest).total_seconds()
        assert playlist["freshness"] == f"{round(age / 86400)} d"
        assert playlist["playlist_name"]
        # the demo checks twice a day; the second check of the last day found no change
        assert playlist["last_check"] == {
            "at": "2026-10-31T18:00:00Z",
            "status": "unchanged",
            "error": None,
        }

    chart = by_id[GLOBAL]
    assert chart["quarantined"] == {
        "files": 1,
        "location": storage.url(lake_copy, f"quarantine/playlist_id={GLOBAL}/"),
    }
    assert chart["last_report"] == {
        "date": "2026-10-31",
        "outcome": "failed",
        "path": storage.url(lake_copy, failed),
        "failed_runs": 1,
    }
    others = [p for p in shown["playlists"] if p["playlist_id"] != GLOBAL]
    assert others and all(p["last_report"] is None for p in others)
    assert all(p["quarantined"]["files"] == 0 for p in others)


def test_status_table_is_aligned_and_escapes_names(lake_copy, capsys):
    # A playlist whose name would recolour the terminal and reverse the line.
    source = next(storage.list_keys(lake_copy, f"raw/playlist_id={GLOBAL}/", ".json"))
    payload = json.loads(storage.read_bytes(lake_copy, source))
    hostile = "ZZZZZZZZZZZZZZZZZZZZZZ"
    payload["playlist"].update(id=hostile, name="Evil\x1b[31m red \u202eesrever")
    pipeline.land_raw(lake_copy, payload)
    pipeline.transform(lake_copy)

    assert cli.main(["status", "--lake", lake_copy]) == 0
    out = capsys.readouterr().out
    assert "\x1b" not in out and "\u202e" not in out
    assert "Evil\\x1b[31m red \\u202eesrever" in out
    header, *rows = out.splitlines()[1 : 1 + 1 + len(demo.DEMO_PLAYLISTS) + 1]
    assert header.split("  ")[0] == "playlist"
    # Every column starts at the same place on every line.
    start = header.index("last check")
    assert all(row[start - 2 : start] == "  " and row[start] != " " for row in rows)
    assert hostile in out and GLOBAL in out

    assert cli.main(["status", "--lake", lake_copy, "--playlist", hostile]) == 0
    only = capsys.readouterr().out
    assert hostile in only and GLOBAL not in only


def test_status_of_an_empty_lake_says_what_to_run(tmp_path, capsys):
    root = tmp_path / "lake"
    root.mkdir()
    assert cli.main(["status", "--lake", str(root)]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and "Nothing in lake" in out[0] and "spotify-etl run" in out[0]
    assert list(root.iterdir()) == []  # reading the lake created nothing in it
    assert cli.main(["status", "--lake", str(root), "--format", "json"]) == 0
    assert json.loads(capsys.readouterr().out)["playlists"] == []


# The last checks: one heartbeat per extract run, and the one-per-playlist ones of earlier
# versions. Written here as the extract writes them.
MORNING = datetime(2026, 10, 2, tzinfo=UTC)


def at(hour: float) -> datetime:
    return MORNING + timedelta(hours=hour)


def run_heartbeat(lake: str, hour: float, checks: dict[str, tuple[str, str | None]]) -> str:
    """A run's heartbeat, as ``pipeline.extract`` writes it: playlist -> (status, error)."""
    records = [
        pipeline.check_record(
            pipeline.ExtractOutcome(
                playlist_id, ExtractStatus(state), error=error and EtlError(error)
            ),
            at(hour),
            "api",
        )
        for playlist_id, (state, error) in checks.items()
    ]
    pipeline._write_heartbeat(lake, records)
    return layout.heartbeat_key(at(hour), checks)


def earlier_heartbeat(lake: str, playlist_id: str, hour: float, state: str) -> str:
    """A check as versions before run heartbeats wrote it: one object per playlist."""
    moment = at(hour)
    key = (
        f"heartbeats/playlist_id={playlist_id}/dt={layout.partition_date(moment)}/"
        f"{layout.utc_stamp(moment)}.json"
    )
    record = {"playlist_id": playlist_id, "checked_at": envelope.format_utc(moment)}
    storage.write_bytes(lake, key, json.dumps({**record, "status": state, "error": None}).encode())
    return key


def reads_of(monkeypatch) -> list[str]:
    """The keys ``storage.read_bytes`` reads from now on."""
    read, original = [], storage.read_bytes

    def counted(root: str, key: str) -> bytes:
        read.append(key)
        return original(root, key)

    monkeypatch.setattr(storage, "read_bytes", counted)
    return read


def test_the_newest_check_wins_across_runs_and_the_heartbeats_of_earlier_versions(
    lake_root, monkeypatch
):
    storage.ensure_root(lake_root)
    a, b, c, d = "chartA", "chartB", "chartC", "chartD"
    unchanged, extracted, failed = ("unchanged", None), ("extracted", None), ("failed", "boom")
    same_set_older = run_heartbeat(lake_root, 4, {a: unchanged, b: unchanged})
    run_heartbeat(lake_root, 5, {a: extracted, d: failed})
    run_heartbeat(lake_root, 7, {a: extracted, b: failed})
    earlier_heartbeat(lake_root, a, 6, "unchanged")  # older than the 07:00 run's check of a
    earlier_heartbeat(lake_root, b, 8, "already landed")  # an older version ran after it
    earlier_heartbeat(lake_root, c, -20, "failed")
    earlier_heartbeat(lake_root, c, 6.5, "not attempted")  # the newest day's newest
    earlier_heartbeat(lake_root, c, 1, "unchanged")
    read = reads_of(monkeypatch)

    lake = status.lake_status(lake_root, [a, b, c, d], now=at(9))
    checks = {entry.playlist_id: entry.last_check for entry in lake.playlists}
    assert checks == {
        a: status.Check("2026-10-02T07:00:00Z", ExtractStatus.EXTRACTED),
        b: status.Check("2026-10-02T08:00:00Z", ExtractStatus.ALREADY_LANDED),
        c: status.Check("2026-10-02T06:30:00Z", ExtractStatus.NOT_ATTEMPTED),
        d: status.Check("2026-10-02T05:00:00Z", ExtractStatus.FAILED, "boom"),
    }
    assert lake.unreadable == []
    # The 04:00 run checked the same playlists as the 07:00 one: nothing of it can be last.
    assert same_set_older not in read
    assert len([key for key in read if layout.parse_heartbeat_key(key)]) == 2

    # A playlist not asked about costs no reading of its old heartbeats.
    read.clear()
    [only_d] = status.lake_status(lake_root, [d], now=at(9)).playlists
    assert only_d.last_check == checks[d]
    assert not [key for key in read if f"playlist_id={c}" in key or f"playlist_id={a}" in key]


def test_a_corrupt_heartbeat_is_skipped_and_named_not_a_traceback(lake_root, capsys):
    storage.ensure_root(lake_root)
    run_heartbeat(lake_root, 6, {"chartA": ("unchanged", None)})
    corrupt = run_heartbeat(lake_root, 7, {"chartA": ("extracted", None)})
    storage.write_bytes(lake_root, corrupt, b'{"started_at": "2026-10-02T07:00:00Z", "che')
    too_deep = run_heartbeat(lake_root, 8, {"chartF": ("unchanged", None)})
    storage.write_bytes(lake_root, too_deep, b"[" * 100_000)
    earlier = earlier_heartbeat(lake_root, "chartE", 5, "unchanged")
    storage.write_bytes(lake_root, earlier, b"\xff not json")

    assert cli.main(["status", "--lake", lake_root, "--format", "json"]) == 0
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    shown = json.loads(captured.out)
    checks = {p["playlist_id"]: p["last_check"] for p in shown["playlists"]}
    # The run before the corrupt one holds the last check that can be read.
    assert checks["chartA"] == {"at": "2026-10-02T06:00:00Z", "status": "unchanged", "error": None}
    # An earlier version's file: its key still says when the check was.
    assert checks["chartE"] == {"at": "2026-10-02T05:00:00Z", "status": None, "error": None}
    assert [line.split(": ")[0] for line in shown["unreadable"]] == [
        storage.url(lake_root, too_deep),
        storage.url(lake_root, corrupt),
        storage.url(lake_root, earlier),
    ]
    assert cli.main(["status", "--lake", lake_root]) == 0
    out = capsys.readouterr().out
    assert f"skipped an unreadable heartbeat: {storage.url(lake_root, corrupt)}: " in out


def test_the_last_checks_of_73_playlists_are_one_listing_of_a_day_and_one_read(
    lake_root, monkeypatch
):
    """However long the history, when the last run checked every playlist: the heartbeats'
    folders, the newest day's keys, and the newest run. A run of one playlist after it
    costs one read more."""
    storage.ensure_root(lake_root)
    charts = {f"chart{number:02d}": ("unchanged", None) for number in range(73)}
    for hour in range(-48, 1):  # three days of hourly runs
        run_heartbeat(lake_root, hour, charts)
    calls = []
    for name in ("list_folders", "list_keys", "read_bytes"):
        original = getattr(storage, name)

        def counted(*args, name=name, original=original):
            calls.append(name)
            return original(*args)

        monkeypatch.setattr(storage, name, counted)

    checks, unreadable = status.last_checks(lake_root, set(charts))
    assert set(checks) == set(charts) and unreadable == []
    assert {check.at for check in checks.values()} == {"2026-10-02T00:00:00Z"}
    assert sorted(calls) == ["list_folders", "list_keys", "read_bytes"]

    run_heartbeat(lake_root, 0.5, {"chart07": ("extracted", None)})
    calls.clear()
    checks, _ = status.last_checks(lake_root, set(charts))
    assert checks["chart07"].at == "2026-10-02T00:30:00Z"
    assert checks["chart08"].at == "2026-10-02T00:00:00Z"
    assert sorted(calls) == ["list_folders", "list_keys", "read_bytes", "read_bytes"]


def test_status_on_s3(moto_endpoint, demo_lake, capsys):
    import boto3

    bucket = "status-lake"
    boto3.client("s3").create_bucket(Bucket=bucket)
    root = f"s3://{bucket}/lake"
    # The raw zone and a report only: the tables of an s3:// lake live in Glue.
    for key in storage.list_keys(demo_lake, "raw/"):
        storage.write_bytes(root, key, storage.read_bytes(demo_lake, key))
    storage.write_bytes(root, f"reports/{GLOBAL}/2026-10-31/report.html", b"<p>ok</p>")
    pipeline.transform(root)
    assert cli.main(["status", "--lake", root, "--format", "json"]) == 0
    shown = {p["playlist_id"]: p for p in json.loads(capsys.readouterr().out)["playlists"]}
    assert set(shown) == set(demo.DEMO_PLAYLISTS)
    assert shown[GLOBAL]["snapshots"] == DAYS and shown[GLOBAL]["chart_rows"] == DAYS * 50
    assert shown[GLOBAL]["last_report"]["outcome"] == "ok"
    assert shown[GLOBAL]["last_check"] is None  # imported by copying: no extraction ran
    # The report's first check reads the same folders there.
    assert status.landed_days(root) == status.landed_days(demo_lake)
    with pytest.raises(ConfigError, match="its charts run from 2026-10-29 to 2026-10-31"):
        reports.check_request(root, GLOBAL, "2027-01-01", 3)
    assert reports.check_request(root, GLOBAL, None, 3) == "2026-10-31"


# ---------------------------------------------------------------------------------------------
# export


def test_export_a_view_for_a_window_to_csv_and_parquet(demo_lake, tmp_path, capsys):
    window = ["--from", "2026-10-30", "--to", "2026-10-31"]
    out = tmp_path / "chart.csv"
    playlist = ["--playlist", f"spotify:playlist:{GLOBAL}"]
    assert cli.main(["export", "--lake", demo_lake, "--view", "daily_chart", *window,
                     *playlist, "--out", str(out)]) == 0  # fmt: skip
    line = capsys.readouterr().out.strip()
    exported = pd.read_csv(out, dtype={"dt": str})
    assert line == f"Exported {len(exported):,} rows to {out.resolve()}"
    assert len(exported) == 2 * 50
    assert set(exported["dt"]) == {"2026-10-30", "2026-10-31"}
    assert set(exported["playlist_id"]) == {GLOBAL}

    parquet = tmp_path / "entries.parquet"
    assert cli.main(["export", "--lake", demo_lake, "--sql",
                     "SELECT dt, count(*) AS n FROM chart_entries GROUP BY dt ORDER BY dt",
                     "--from", "2026-10-31", "--out", str(parquet)]) == 0  # fmt: skip
    table = pq.read_table(parquet).to_pydict()
    # one new snapshot a day per chart (the day's second check finds it unchanged)
    assert table == {"dt": ["2026-10-31"], "n": [50 * len(demo.DEMO_PLAYLISTS)]}
    assert not [p.name for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_export_keeps_a_view_history_before_the_window(demo_lake, tmp_path):
    # Days on chart count from a track's first day, not from the window's first.
    out = tmp_path / "chart.csv"
    assert cli.main(["export", "--lake", demo_lake, "--view", "daily_chart", "--from",
                     "2026-10-31", "--format", "csv", "--out", str(out)]) == 0  # fmt: skip
    last_day = pd.read_csv(out, dtype={"dt": str})
    everything = execute.query(demo_lake, "SELECT * FROM daily_chart WHERE dt = '2026-10-31'")
    assert len(last_day) == len(everything) > 0


def test_export_mistakes_are_one_line_and_leave_no_file(demo_lake, tmp_path, capsys):
    good = tmp_path / "kept.csv"
    good.write_text("a previous export\n")
    cases = {
        "unknown view": (["--view", "daily_chrt"], "daily_chart, "),
        "no playlist column": (["--view", "latest_tracks", "--playlist", GLOBAL], "playlist_id"),
        "param with a view": (["--view", "chart", "--param", "1"], "--param"),
        "bad sql": (["--sql", "SELECT chart_rnk FROM daily_chart"], "chart_rank"),
        "window backwards": (
            ["--view", "chart", "--from", "2026-10-31", "--to", "2026-10-01"],
            "after",
        ),
    }
    for label, (args, named) in cases.items():
        code = cli.main(["export", "--lake", demo_lake, *args, "--out", str(good)])
        assert code == 2, label
        assert named in one_error_line(capsys), label
    assert cli.main(["export", "--lake", demo_lake, "--view", "chart", "--out",
                     str(tmp_path / "chart.txt")]) == 2  # fmt: skip
    assert ".csv or .parquet" in one_error_line(capsys)
    assert good.read_text() == "a previous export\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["kept.csv"]


def test_a_failed_write_leaves_no_half_file(demo_lake, tmp_path, monkeypatch, capsys):
    out = tmp_path / "chart.parquet"

    def break_midway(table, where, **kwargs):
        Path(where).write_bytes(b"PAR1 half a file")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(pq, "write_table", break_midway)
    assert cli.main(["export", "--lake", demo_lake, "--view", "chart", "--out", str(out)]) == 1
    assert "No space left on device" in one_error_line(capsys)
    assert list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------------------------------------
# Credentials: read only by the commands that call Spotify

CREDENTIAL_VARIABLES = (
    "SPOTIFY_CLIENT_ID",
    "SPOTIFY_CLIENT_SECRET",
    "SPOTIFY_REFRESH_TOKEN",
    "SPOTIPY_CLIENT_ID",
    "SPOTIPY_CLIENT_SECRET",
    "SPOTIFY_ETL_CREDENTIALS_PARAMETER",
)


def test_reading_commands_run_with_a_credentials_file_nobody_may_read(
    lake_copy, tmp_path, monkeypatch, capsys
):
    exposed = tmp_path / "credentials.json"
    exposed.write_text(json.dumps({"client_id": "id", "client_secret": "secret"}))
    exposed.chmod(0o644)  # open to other users: refused whenever it is read
    for name in CREDENTIAL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SPOTIFY_ETL_CREDENTIALS_FILE", str(exposed))
    assert cli.main(["extract", "--lake", lake_copy]) == 2
    assert f"{exposed} is readable by other users" in one_error_line(capsys)
    # What the Athena engine builds its settings with: nothing secret is read.
    assert Settings.from_env(lake=lake_copy).credentials is None

    assert cli.main(["catalog", "--lake", lake_copy]) == 0
    sql = "SELECT count(*) AS entries FROM chart_entries"
    query = ["query", "--lake", lake_copy, "--engine", "duckdb", "--format", "csv", sql]
    assert cli.main(query) == 0
    entries = int(capsys.readouterr().out.splitlines()[1])
    assert entries > 0
    assert cli.main(["status", "--lake", lake_copy]) == 0
    assert cli.main(["report", "--lake", lake_copy, "--playlist", GLOBAL]) == 0
    assert "Report: " in capsys.readouterr().out


def test_reading_commands_run_with_a_credentials_parameter_that_does_not_exist(
    lake_copy, moto_endpoint, monkeypatch, capsys
):
    for name in CREDENTIAL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("SPOTIFY_ETL_CREDENTIALS_PARAMETER", "/spotify-etl/nowhere")
    assert cli.main(["auth", "status", "--lake", lake_copy]) == 2
    assert "SSM parameter '/spotify-etl/nowhere' does not exist" in one_error_line(capsys)

    assert cli.main(["catalog", "--lake", lake_copy]) == 0
    assert cli.main(["query", "--lake", lake_copy, "SELECT count(*) AS n FROM chart"]) == 0
    assert cli.main(["status", "--lake", lake_copy, "--format", "json"]) == 0


# ---------------------------------------------------------------------------------------------
# Errors before work


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "etl_lib", *args], capture_output=True, text=True, timeout=120
    )


def test_a_bad_report_fails_before_loading_the_report_stack(demo_lake):
    # In a fresh process: the check must not load papermill, the kernel or the table catalog
    # (together over a second to import), so a mistake is answered at once.
    probe = (
        "import sys\n"
        "from etl_lib import cli\n"
        "try:\n"
        "    code = cli.main(sys.argv[1:])\n"
        "except SystemExit as exited:\n"
        "    code = exited.code\n"
        "heavy = ('papermill', 'nbconvert', 'matplotlib', 'pyiceberg', 'pandas')\n"
        "print(sorted(name for name in heavy if name in sys.modules))\n"
        "sys.exit(code)\n"
    )
    cases = {
        "no such playlist": (["--playlist", "0000000000000000000000"], GLOBAL),
        "after the data": (["--as-of", "2027-01-01"], "2026-10-29 to 2026-10-31"),
        "before the data": (["--as-of", "2026-01-01"], "2026-10-29 to 2026-10-31"),
        "no window": (["--days", "0"], "--days"),
        "not a date": (["--as-of", "2026-1-1"], "YYYY-MM-DD"),
    }
    for label, (args, named) in cases.items():
        started = time.monotonic()
        result = subprocess.run(
            [sys.executable, "-c", probe, "report", "--lake", demo_lake, *args],
            capture_output=True,
            text=True,
            timeout=60,
        )
        elapsed = time.monotonic() - started
        assert result.returncode == 2, (label, result.stderr)
        lines = result.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: "), (label, result.stderr)
        assert named in lines[0], (label, lines[0])
        assert result.stdout.strip() == "[]", (label, result.stdout)
        assert elapsed < 10, (label, elapsed)  # under 1 s on an idle machine


def test_a_playlist_without_data_lists_those_with_data(demo_lake, capsys):
    assert cli.main(["report", "--lake", demo_lake, "--playlist", "0000000000000000000000"]) == 2
    line = one_error_line(capsys)
    assert "0000000000000000000000" in line
    for playlist in demo.DEMO_PLAYLISTS:
        assert playlist in line
    assert '"Top Songs - Global"' in line


def test_a_day_missing_inside_the_range_names_the_nearest(lake_copy):
    middle = f"raw/playlist_id={GLOBAL}/dt=2026-10-30/"
    shutil.rmtree(Path(lake_copy) / middle)
    with pytest.raises(ConfigError) as refused:
        reports.check_request(lake_copy, GLOBAL, "2026-10-30", 1)
    assert "2026-10-29 and 2026-10-31" in str(refused.value)
    # A longer window holds charts: the report shows its last chart day, as after a missed run.
    assert reports.check_request(lake_copy, GLOBAL, "2026-10-30", 3) == "2026-10-30"
    # Captured but not transformed yet: the tables say so, before any kernel.
    key = layout.raw_key("0123456789abcdefghijkl", datetime(2026, 10, 31, 6, tzinfo=UTC))
    source = next(storage.list_keys(lake_copy, f"raw/playlist_id={GLOBAL}/", ".json"))
    storage.write_bytes(lake_copy, key, storage.read_bytes(lake_copy, source))
    with pytest.raises(ConfigError, match="spotify-etl transform"):
        reports.check_request(lake_copy, "0123456789abcdefghijkl", None, 3)
    assert reports.check_request(lake_copy, GLOBAL, None, 3) == "2026-10-31"


@pytest.mark.parametrize(
    ("statement", "named"),
    [
        ("SELECT chart_rnk FROM daily_chart", 'Candidate bindings: "chart_rank"'),
        ("SELECT * FROM daily_chrt", 'Did you mean "daily_chart"'),
        ("SELECT (chart_rank FROM daily_chart", 'syntax error at or near "FROM"'),
        ("SELECT 'abc FROM daily_chart", "unterminated string"),
        ("SELECT format_datetime(current_timestamp, 'yyyy') AS y", "format_datetime"),
        ("SELECT chart_rank FROM daily_chart WHERE chart_rnk = 1", "chart_rnk"),
    ],
)
def test_a_sql_mistake_is_one_line_in_the_engine_words(demo_lake, capsys, statement, named):
    assert cli.main(["query", "--lake", demo_lake, statement]) == 2
    line = one_error_line(capsys)
    assert named in line, line
    assert "sqlglot" not in line and "LINE 1" not in line


def test_a_busy_catalog_is_waited_for_then_named(demo_lake, tmp_path):
    holder = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sqlite3, sys, time\n"
            "db = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
            "db.execute('BEGIN EXCLUSIVE')\n"
            "print('locked', flush=True)\n"
            "time.sleep(60)\n",
            str(Path(demo_lake) / "iceberg_catalog.db"),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        for command in (["query", "SELECT 1 AS one"], ["catalog"], ["status"]):
            started = time.monotonic()
            result = run_cli(*command, "--lake", demo_lake)
            elapsed = time.monotonic() - started
            assert result.returncode == 1, result.stderr
            lines = result.stderr.strip().splitlines()
            assert len(lines) == 1, result.stderr
            assert "is busy" in lines[0] and f"process {holder.pid}" in lines[0], lines[0]
            assert 4 < elapsed < 30, elapsed
    finally:
        holder.kill()
        holder.wait()
        holder.stdout.close()
    # Once it is gone, the same command works.
    result = run_cli("query", "--lake", demo_lake, "--format", "json", "SELECT 1 AS one")
    assert result.returncode == 0 and json.loads(result.stdout) == [{"one": 1}]


def test_a_missed_day_is_a_report_date_when_the_window_holds_a_chart():
    chart_days = ["2026-10-01", "2026-10-02", "2026-10-05"]
    # 10-03 and 10-04 were missed: a 3-day window ending 10-04 holds 10-02, a 2-day one none.
    assert status.check_chart_day("p", "2026-10-04", chart_days, 3) == "2026-10-04"
    with pytest.raises(ConfigError, match=r"nearest are 2026-10-02 and 2026-10-05"):
        status.check_chart_day("p", "2026-10-04", chart_days, 2)
    with pytest.raises(ConfigError, match=r"run from 2026-10-01 to 2026-10-05; pass"):
        status.check_chart_day("p", "2026-10-06", chart_days, 30)
    assert status.check_chart_day("p", None, chart_days) == "2026-10-05"


def test_report_compare_checks_the_window_before_any_kernel(demo_lake, capsys):
    started = time.monotonic()
    code = cli.main(["report", "--compare", "--lake", demo_lake, "--as-of", "2027-03-01"])
    assert code == 2
    assert "a comparison needs two playlists with a chart between 2027-01-31 and 2027-03-01" in (
        one_error_line(capsys)
    )
    assert time.monotonic() - started < 5  # no kernel started (one takes longer alone)


def test_query_table_names_first_text_cut_numbers_aligned(demo_lake, capsys):
    long_name = "A" * 60
    statement = (
        "SELECT * FROM (VALUES (1, ?, 'x'), (250, 'Sigur Rós', NULL), (3, ?, 'y')) "
        "AS t(rank, name, note)"
    )
    assert (
        cli.main(
            ["query", "--lake", demo_lake, "--param", long_name, "--param", "\x1b[2Jbad", statement]
        )
        == 0
    )
    header, *lines = capsys.readouterr().out.splitlines()
    assert header.split() == ["rank", "name", "note"]
    assert lines[0].startswith("   1  " + "A" * (output.TABLE_MAX_CELL - 3) + "...")
    assert lines[1].startswith(" 250  Sigur Rós") and lines[1].rstrip().endswith("Sigur Rós")
    assert "\x1b" not in lines[2] and "\\x1b[2Jbad" in lines[2]
