"""`backfill --archive-history`: the archive's commit history, through GitHub's two endpoints
(the local archive server serves them offline), into the lake's daily charts."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from etl_lib import cli, pipeline
from etl_lib.config import Settings
from etl_lib.errors import ArchiveError, ArchiveRateLimited, ConfigError
from etl_lib.extract import archive, archive_history
from etl_lib.extract.archive_history import Commit, KnownCommits
from etl_lib.lake import layout, storage
from etl_lib.local_spotify import ChartSimulator
from etl_lib.local_spotify.archive_server import LocalArchiveServer
from etl_lib.warehouse.catalog import build_catalog
from etl_lib.warehouse.execute import query

GLOBAL = "37i9dQZEVXbNG2KDcFcKOF"
USA = "37i9dQZEVXbLRQDuF5jeBp"
TOP_50 = "37i9dQZEVXbMDoHDwVN2tF"  # the real archived versions in ../shared
NOW = datetime(2026, 10, 31, 18, tzinfo=UTC)
SHA = "0123456789abcdef0123456789abcdef01234567"


def at(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# -- pure parts --------------------------------------------------------------------------------


def test_next_link_is_the_rel_next_url_of_a_link_header():
    header = (
        '<https://api.github.com/repositories/1/commits?page=2>; rel="next", '
        '<https://api.github.com/repositories/1/commits?page=9>; rel="last"'
    )
    assert (
        archive_history.next_link(header) == "https://api.github.com/repositories/1/commits?page=2"
    )
    last_page = (
        '<https://api.github.com/x?page=1>; rel="first", '
        '<https://api.github.com/x?page=8>; rel="prev"'
    )
    assert archive_history.next_link(last_page) is None
    for garbage in (None, "", "   ", "rel=next", '<>; rel="next"', 'nonsense; "next"'):
        assert archive_history.next_link(garbage) is None, garbage


def commit_entry(sha: str, date: object) -> dict:
    return {"sha": sha, "commit": {"committer": {"date": date}, "message": "Update"}}


def test_a_commit_listing_becomes_commits_with_their_utc_commit_times():
    body = [
        commit_entry(SHA, "2021-03-06T00:13:23Z"),
        commit_entry("abcdef1", "2021-03-05T23:00:00+01:00"),
    ]
    assert archive_history.parse_commits(body, "page") == [
        Commit(at("2021-03-06T00:13:23Z"), SHA),
        Commit(at("2021-03-05T22:00:00Z"), "abcdef1"),
    ]


def test_a_commit_without_a_committer_date_is_taken_at_its_author_date():
    body = [{"sha": SHA, "commit": {"author": {"date": "2021-03-06T00:13:23Z"}}}]
    assert archive_history.parse_commits(body, "page") == [Commit(at("2021-03-06T00:13:23Z"), SHA)]


@pytest.mark.parametrize(
    ("body", "says"),
    [
        ({"message": "Not Found"}, "not a JSON list"),
        ([commit_entry("../../etc/passwd", "2021-03-06T00:13:23Z")], "no usable sha"),
        ([commit_entry(SHA.upper(), "2021-03-06T00:13:23Z")], "no usable sha"),
        ([commit_entry(SHA, "yesterday")], "no usable committer date"),
        ([commit_entry(SHA, "2021-03-06T00:13:23")], "no usable committer date"),
        ([{"sha": SHA}], "no usable committer date"),
        (["a string"], "no usable sha"),
    ],
)
def test_a_listing_that_cannot_be_trusted_is_refused_in_one_line(body, says):
    with pytest.raises(ArchiveError, match=says) as caught:
        archive_history.parse_commits(body, "https://api.github.com/x")
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize(
    ("headers", "reset"),
    [
        ({"X-RateLimit-Reset": "1700000000"}, datetime(2023, 11, 14, 22, 13, 20, tzinfo=UTC)),
        ({}, None),
        ({"X-RateLimit-Reset": "soon"}, None),
        ({"X-RateLimit-Reset": "-5"}, None),
        ({"X-RateLimit-Reset": "1e9"}, None),
        ({"X-RateLimit-Reset": "9" * 40}, None),  # past any date
        ({"X-RateLimit-Reset": "99999999999"}, None),  # year 5138: beyond the lake's range
    ],
)
def test_the_rate_limit_reset_is_a_utc_time_or_none(headers, reset):
    assert archive_history.rate_limit_reset(headers) == reset


def test_only_a_spent_budget_is_a_rate_limit():
    assert archive_history.is_rate_limited(403, {"X-RateLimit-Remaining": "0"})
    assert archive_history.is_rate_limited(429, {})
    assert not archive_history.is_rate_limited(403, {"X-RateLimit-Remaining": "12"})
    assert not archive_history.is_rate_limited(403, {})
    assert not archive_history.is_rate_limited(200, {"X-RateLimit-Remaining": "0"})


def test_the_versions_to_fetch_are_the_unknown_ones_oldest_first_each_once():
    a, b, c = (Commit(at(f"2021-03-0{day}T11:00:00Z"), f"{day}" * 40) for day in (6, 7, 8))
    same_second = Commit(c.committed_at, "9" * 40)
    known = KnownCommits(landed={b.sha: "raw/x"})
    newest_first = [same_second, c, b, a, c]
    # Of two in the same second, the one listed later (older, as the API lists) comes first.
    assert archive_history.versions_to_fetch(newest_first, known) == [a, c, same_second]


def test_listed_spans_merge_and_leave_only_the_gaps_to_list_newest_first():
    known = KnownCommits()
    known.mark_listed(at("2021-03-10T00:00:00Z"), at("2021-03-20T00:00:00Z"))
    known.mark_listed(at("2021-03-20T00:00:01Z"), at("2021-03-25T00:00:00Z"))  # adjacent
    known.mark_listed(at("2021-04-01T00:00:00Z"), at("2021-04-02T00:00:00Z"))
    known.mark_listed(at("2021-04-05T00:00:00Z"), at("2021-04-01T00:00:00Z"))  # empty: ignored
    assert known.listed == [
        (at("2021-03-10T00:00:00Z"), at("2021-03-25T00:00:00Z")),
        (at("2021-04-01T00:00:00Z"), at("2021-04-02T00:00:00Z")),
    ]
    assert known.unlisted(at("2021-03-01T00:00:00Z"), at("2021-04-30T00:00:00Z")) == [
        (at("2021-04-02T00:00:01Z"), at("2021-04-30T00:00:00Z")),
        (at("2021-03-25T00:00:01Z"), at("2021-03-31T23:59:59Z")),
        (at("2021-03-01T00:00:00Z"), at("2021-03-09T23:59:59Z")),
    ]
    assert known.unlisted(at("2021-03-12T00:00:00Z"), at("2021-03-24T00:00:00Z")) == []
    assert KnownCommits.loads(known.dumps()).listed == known.listed


def test_the_known_commits_record_reads_back_and_survives_garbage():
    known = KnownCommits(landed={SHA: "raw/playlist_id=x/dt=2021-03-06/20210306T001323Z.json"})
    known.refused["abcdef1"] = "CorruptPayload: not JSON"
    again = KnownCommits.loads(known.dumps())
    assert again == known and again.knows(SHA) and again.knows("abcdef1") and again.count == 2
    for garbage in (
        None,
        b"",
        b"[]",
        b"{not json",
        b'{"landed": [1], "refused": {"a": 3}, "listed": [["x", "y"], 5, ["2021-03-06"]]}',
    ):
        assert KnownCommits.loads(garbage) == KnownCommits()


# -- settings and the command line ---------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("SPOTIFY_ARCHIVE_API_URL", "ftp://api.github.com"),
        ("SPOTIFY_ARCHIVE_API_URL", "api.github.com"),
        ("SPOTIFY_ARCHIVE_RAW_URL", "https://user:pw@raw.githubusercontent.com"),
        ("SPOTIFY_ARCHIVE_RAW_URL", "https://raw.githubusercontent.com:notaport"),
        ("SPOTIFY_ARCHIVE_REPO", "mackorone"),
        ("SPOTIFY_ARCHIVE_REPO", "mackorone/spotify-playlist-archive/main"),
        ("SPOTIFY_ARCHIVE_REPO", "owner/.."),
    ],
)
def test_a_bad_archive_setting_is_one_line_naming_it(name, value):
    with pytest.raises(ConfigError, match=name) as caught:
        Settings.from_env({name: value})
    assert "\n" not in str(caught.value)


def test_the_token_is_read_but_never_shown():
    settings = Settings.from_env({"SPOTIFY_ARCHIVE_TOKEN": "ghp_secret"})
    assert settings.archive_token == "ghp_secret" and "ghp_secret" not in repr(settings)
    defaults = Settings.from_env({})
    assert (defaults.archive_api_url, defaults.archive_raw_url, defaults.archive_repo) == (
        "https://api.github.com",
        "https://raw.githubusercontent.com",
        "mackorone/spotify-playlist-archive",
    )


def exit_code(argv: list[str]) -> int:
    """``cli.main``'s return code, or argparse's exit code for an option it refused."""
    try:
        return cli.main(argv)
    except SystemExit as exc:
        return exc.code


@pytest.mark.parametrize(
    "arguments",
    [
        ["--since", "2021-02-30"],
        ["--since", "2021-03-10", "--until", "2021-03-01"],
        ["--playlist", "not a playlist!"],
        ["--playlist", "https://open.spotify.com/album/37i9dQZEVXbNG2KDcFcKOF"],
        ["some/folder"],
    ],
)
def test_wrong_history_input_is_one_line_and_exit_2(arguments, tmp_path, capsys):
    lake = str(tmp_path / "lake")
    assert exit_code(["backfill", "--archive-history", "--lake", lake, *arguments]) == 2
    error = capsys.readouterr().err
    assert error.startswith("error: ") and error.count("\n") == 1, error
    assert not Path(lake).exists()  # refused before anything was read or written


def test_history_options_without_archive_history_are_refused(tmp_path, capsys):
    assert cli.main(["backfill", str(tmp_path), "--since", "2021-03-01"]) == 2
    assert "--since only applies with --archive-history" in capsys.readouterr().err


# -- against the local archive server ----------------------------------------------------------


@pytest.fixture
def server() -> Iterator[LocalArchiveServer]:
    with LocalArchiveServer(ChartSimulator(), now=NOW) as running:
        yield running


def settings_for(server: LocalArchiveServer, lake_root: str, **more) -> Settings:
    values = {"playlists": (GLOBAL,), **more}
    return Settings(
        lake=lake_root, archive_api_url=server.base_url, archive_raw_url=server.base_url, **values
    )


def file_path(playlist_id: str) -> str:
    return f"playlists/pretty/{playlist_id}.json"


def downloads(server: LocalArchiveServer) -> list[str]:
    """The requests for a file at a commit (the raw host's), in order."""
    return [path for path in server.requests if "/commits" not in path and "/playlists/" in path]


def listings(server: LocalArchiveServer) -> list[str]:
    return [path for path in server.requests if "/commits?" in path]


def raw_keys(lake_root: str, playlist_id: str) -> list[str]:
    return sorted(storage.list_keys(lake_root, f"raw/playlist_id={playlist_id}/", ".json"))


def served_ranking(server: LocalArchiveServer, commit) -> list[str]:
    """The track ids of the file the server serves at a commit, in its order."""
    url = f"{server.base_url}/{server.repo}/{commit.sha}/{file_path(GLOBAL)}"
    document = requests.get(url, timeout=10).json()
    return [archive.spotify_id_from_url(track["url"], "track") for track in document["tracks"]]


def test_pages_of_history_land_once_each_and_the_days_rankings_are_the_served_files(
    server, lake_root
):
    server.history(days=180)  # a commit a day, two on some: three pages of 100
    commits = server.commits(file_path(GLOBAL))
    assert len(commits) > 2 * archive_history.PER_PAGE
    [outcome] = backfill(settings_for(server, lake_root))
    assert outcome.error is None and not outcome.refused
    assert (outcome.found, outcome.written, outcome.skipped) == (len(commits), len(commits), 0)
    pages = -(-len(commits) // archive_history.PER_PAGE)
    assert len(listings(server)) == pages == 3
    assert len(downloads(server)) == len(set(downloads(server))) == len(commits)
    assert len(raw_keys(lake_root, GLOBAL)) == len(commits)

    pipeline.transform_bulk(lake_root)
    build_catalog(lake_root)
    chart = query(
        lake_root,
        "SELECT dt, chart_rank, track_id, extracted_at FROM daily_chart "
        "WHERE playlist_id = ? ORDER BY dt, chart_rank",
        [GLOBAL],
    )
    last_of_day = {}
    for commit in commits:  # oldest first: the last one of a day wins
        last_of_day[commit.committed_at.date().isoformat()] = commit
    assert sorted(set(chart["dt"])) == sorted(last_of_day)
    for day, rows in chart.groupby("dt"):
        commit = last_of_day[day]
        assert list(rows["track_id"]) == served_ranking(server, commit), day
        assert {m.to_pydatetime() for m in rows["extracted_at"]} == {commit.committed_at}


def test_since_and_until_bound_the_versions_by_their_utc_commit_day(server, lake_root, capsys):
    server.history(days=20)
    commits = server.commits(file_path(GLOBAL))
    days = sorted({c.committed_at.date() for c in commits})
    since, until = days[5], days[9]
    in_window = [c for c in commits if since <= c.committed_at.date() <= until]
    environment = {
        "SPOTIFY_ARCHIVE_API_URL": server.base_url,
        "SPOTIFY_ARCHIVE_RAW_URL": server.base_url,
    }
    with pytest.MonkeyPatch.context() as patch:
        for name, value in environment.items():
            patch.setenv(name, value)
        code = cli.main(
            [
                "backfill",
                "--archive-history",
                "--playlist",
                f"https://open.spotify.com/playlist/{GLOBAL}?si=abc",
                "--since",
                since.isoformat(),
                "--until",
                until.isoformat(),
                "--no-report",
                "--lake",
                lake_root,
            ]
        )
    assert code == 0
    error = capsys.readouterr().err
    assert f"{GLOBAL}: {len(in_window)} versions found, {len(in_window)} landed" in error
    assert "60 requests an hour" in error  # no token set
    landed_days = {layout.parse_raw_key(key)["dt"] for key in raw_keys(lake_root, GLOBAL)}
    assert landed_days == {d.isoformat() for d in days[5:10]}
    assert len(raw_keys(lake_root, GLOBAL)) == len(in_window)
    [query_string] = {path.split("?", 1)[1] for path in listings(server)}
    assert f"since={since.isoformat()}T00%3A00%3A00Z" in query_string
    assert f"until={until.isoformat()}T23%3A59%3A59Z" in query_string


def backfill(settings: Settings, **options) -> list[pipeline.HistoryOutcome]:
    """The history backfill as of the server's clock."""
    return pipeline.backfill_archive_history(settings, clock=lambda: NOW, **options)


def test_a_rerun_downloads_nothing_and_lands_nothing_twice(server, lake_root):
    server.history(days=10)
    settings = settings_for(server, lake_root, playlists=(GLOBAL, USA))
    first = backfill(settings)
    assert all(o.error is None and o.written == o.found == o.known > 0 for o in first)
    keys = {pid: raw_keys(lake_root, pid) for pid in (GLOBAL, USA)}
    fetched, listed = len(downloads(server)), len(listings(server))
    second = backfill(settings)
    assert len(downloads(server)) == fetched  # the second run downloaded nothing
    # ... and listed only the last hour before its clock, which may not have been complete.
    assert len(listings(server)) == listed + 2
    assert all("since=2026-10-31T17%3A00%3A01Z" in path for path in listings(server)[listed:])
    assert [(o.found, o.written, o.known) for o in second] == [(0, 0, o.known) for o in first]
    assert {pid: raw_keys(lake_root, pid) for pid in (GLOBAL, USA)} == keys


def test_a_spent_rate_limit_stops_cleanly_and_the_next_run_lands_the_rest(server, lake_root):
    server.history(days=100)
    commits = server.commits(file_path(GLOBAL))
    reset = datetime(2026, 10, 31, 19, 0, tzinfo=UTC)
    server.rate_limit(1, reset)  # one listing page, then 403
    settings = settings_for(server, lake_root, playlists=(GLOBAL, USA))
    first = backfill(settings)
    assert isinstance(first[0].error, ArchiveRateLimited)
    assert first[0].error.until == reset
    message = str(first[0].error)
    assert "2026-10-31T19:00:00Z (UTC)" in message and "resumes" in message
    assert "SPOTIFY_ARCHIVE_TOKEN" in message
    assert [(o.playlist_id, o.attempted) for o in first] == [(GLOBAL, True), (USA, False)]
    assert 0 < first[0].written < len(commits)  # the first page landed before the stop
    record = KnownCommits.loads(storage.read_bytes(lake_root, layout.archive_history_key(GLOBAL)))
    assert len(record.landed) == first[0].written

    server.rate_limit(100, reset + timedelta(hours=1))  # the budget is back
    listed = len(listings(server))
    second = backfill(settings)
    assert [o.error for o in second] == [None, None]
    # Global's listing went on below its first page instead of starting over: one request
    # for the older part, one for the last hour before the clock (never taken as complete).
    last_hour, older = (path for path in listings(server)[listed:] if GLOBAL in path)
    assert "since=2026-10-31T17%3A00%3A01Z" in last_hour and "until=" not in last_hour
    assert "until=" in older and "since=" not in older
    assert first[0].written + second[0].written == len(commits)
    assert len(raw_keys(lake_root, GLOBAL)) == len(commits)
    global_downloads = [path for path in downloads(server) if GLOBAL in path]
    assert len(global_downloads) == len(set(global_downloads)) == len(commits)


def test_a_version_that_is_not_json_is_quarantined_and_the_rest_land(server, lake_root):
    server.history(days=5)
    commits = server.commits(file_path(GLOBAL))
    broken = server.corrupt_version(GLOBAL, commits[2].sha)
    [outcome] = backfill(settings_for(server, lake_root))
    assert outcome.error is None and list(outcome.refused) == [broken]
    assert "JSON" in outcome.refused[broken] and "\n" not in outcome.refused[broken]
    assert outcome.written == len(commits) - 1
    would_be = layout.raw_key(GLOBAL, commits[2].committed_at)
    reason = storage.read_bytes(lake_root, layout.quarantine_reason_key(would_be)).decode()
    assert broken in reason
    assert not storage.exists(lake_root, would_be)
    summary = pipeline.transform_bulk(lake_root)
    assert len(summary.transformed) == len(commits) - 1 and not summary.quarantined
    # Refused once is known: the next run does not download it again.
    fetched = len(downloads(server))
    [again] = backfill(settings_for(server, lake_root))
    assert len(downloads(server)) == fetched and again.known == len(commits)


def test_one_playlists_failure_does_not_stop_the_others(server, lake_root):
    server.history(days=3)
    server.fail_next(500, times=4)  # the first playlist's listing, through every retry
    settings = settings_for(server, lake_root, playlists=(GLOBAL, USA), max_retries=3)
    client = archive_history.HistoryClient(settings, sleep=lambda _: None)
    outcomes = backfill(settings, client=client)
    assert isinstance(outcomes[0].error, ArchiveError) and "500" in str(outcomes[0].error)
    assert outcomes[1].error is None and outcomes[1].written == outcomes[1].found > 0


# -- hostile replies -----------------------------------------------------------------------------


@contextmanager
def scripted_api(status: int, headers: dict[str, str], body: bytes) -> Iterator[str]:
    """A one-reply server on 127.0.0.1 answering every GET alike; yields its base URL."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (http.server's name)
            self.send_response(status)
            for name, value in headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *_):
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


def test_a_next_link_to_another_host_is_refused(lake_root):
    page = json.dumps([commit_entry(SHA, "2021-03-06T00:13:23Z")]).encode()
    link = '<https://evil.example/repos/x/y/commits?page=2>; rel="next"'
    with scripted_api(200, {"Link": link, "Content-Type": "application/json"}, page) as base:
        settings = Settings(lake=lake_root, archive_api_url=base, archive_raw_url=base)
        with archive_history.HistoryClient(settings) as client:
            pages = client.commits(GLOBAL, None, None)
            assert next(pages) == [Commit(at("2021-03-06T00:13:23Z"), SHA)]
            with pytest.raises(ArchiveError, match="refused to follow") as caught:
                next(pages)
    assert "https://evil.example:443" in str(caught.value) and "\n" not in str(caught.value)


@pytest.mark.parametrize("reset", ["soon", "", "-1", "1e99"])
def test_a_rate_limit_with_a_garbage_reset_still_stops_cleanly(reset, lake_root):
    headers = {"X-RateLimit-Remaining": "0", "X-RateLimit-Reset": reset, "Retry-After": "x"}
    body = b'{"message": "API rate limit exceeded"}'
    with scripted_api(403, headers, body) as base:
        settings = Settings(
            lake=lake_root, archive_api_url=base, archive_raw_url=base, playlists=(GLOBAL, USA)
        )
        outcomes = pipeline.backfill_archive_history(settings)
    assert [o.attempted for o in outcomes] == [True, False]
    error = outcomes[0].error
    assert isinstance(error, ArchiveRateLimited) and error.until is None
    assert "did not say" in str(error) and "\n" not in str(error)


# -- the real archive ------------------------------------------------------------------------


@pytest.mark.shared_data
def test_real_archived_versions_backfilled_from_history_land_once_with_their_ranking(
    shared_data, server, lake_root, monkeypatch, capsys
):
    """The issue's check: 58 real versions of Top 50 Global (2021, markdown), served as the
    file's commits, land each once through the command, with its exact ranking."""
    files = archive.iter_archive_files(shared_data / "playlist-archive" / "top50-global-2021")
    assert len(files) == 58
    versions = [(archive.capture_time_from_name(f), f.read_bytes()) for f in files]
    shas = server.serve_versions(TOP_50, versions)
    monkeypatch.setenv("SPOTIFY_ARCHIVE_API_URL", server.base_url)
    monkeypatch.setenv("SPOTIFY_ARCHIVE_RAW_URL", server.base_url)
    command = ["backfill", "--archive-history", "--playlist", TOP_50, "--no-report"]
    assert cli.main([*command, "--lake", lake_root]) == 0
    assert f"{TOP_50}: 58 versions found, 58 landed" in capsys.readouterr().err

    record = KnownCommits.loads(storage.read_bytes(lake_root, layout.archive_history_key(TOP_50)))
    assert set(record.landed) == set(shas) and not record.refused
    for (captured_at, data), sha in zip(versions, shas, strict=True):
        key = record.landed[sha]
        assert key == layout.raw_key(TOP_50, captured_at)  # each at its own commit time
        payload = json.loads(storage.read_bytes(lake_root, key))
        assert payload["archive"] == data.decode("utf-8-sig")  # kept as served
        assert payload["source"]["format"] == "markdown"

    entries = query(
        lake_root,
        "SELECT extracted_at, position, track_id FROM chart_entries "
        "ORDER BY extracted_at, position",
    )
    assert len(entries) == 58 * 50
    for (captured_at, data), (_, rows) in zip(
        versions, entries.groupby("extracted_at", sort=True), strict=True
    ):
        parsed = archive.parse_markdown(data.decode("utf-8"))
        expected = [archive.spotify_id_from_url(t["url"], "track") for t in parsed["tracks"]]
        assert list(rows["track_id"]) == expected, captured_at
        assert list(rows["position"]) == list(range(1, 51))

    fetched = len(downloads(server))
    assert cli.main([*command, "--lake", lake_root]) == 0  # again: nothing downloaded or landed
    assert len(downloads(server)) == fetched
    assert "0 versions found, 0 landed, 0 skipped (landed before), 0 refused; 58 known in all" in (
        capsys.readouterr().err
    )
    assert len(raw_keys(lake_root, TOP_50)) == 58


def test_the_demo_with_history_backfills_its_three_charts_days_before_its_own(lake_root):
    from etl_lib.cli.demo import DEMO_HISTORY_DAYS, DEMO_PLAYLISTS, run_demo

    result = run_demo(lake_root, days=2, history=True)
    assert [o.playlist_id for o in result.history] == list(DEMO_PLAYLISTS)
    assert all(o.error is None and not o.refused and o.written > 0 for o in result.history)
    days = query(
        lake_root,
        "SELECT playlist_id, count(DISTINCT dt) AS n FROM daily_chart GROUP BY playlist_id",
    )
    assert dict(zip(days["playlist_id"], days["n"], strict=True)) == dict.fromkeys(
        DEMO_PLAYLISTS, DEMO_HISTORY_DAYS + 2
    )


def test_the_token_goes_with_every_api_request(server, lake_root):
    """SPOTIFY_ARCHIVE_TOKEN raises GitHub's limit only if every API request carries it."""
    server.history(days=3)
    [outcome] = backfill(settings_for(server, lake_root, archive_token="ghp_secret"))
    assert outcome.error is None and outcome.written > 0
    assert server.api_tokens and set(server.api_tokens) == {"ghp_secret"}


def test_the_demo_help_names_the_days_of_history_it_backfills(capsys):
    """The parser stays light (no demo import), so its help states the days itself."""
    from etl_lib.cli.demo import DEMO_HISTORY_DAYS

    with pytest.raises(SystemExit):
        cli.build_parser().parse_args(["demo", "--help"])
    assert f"{DEMO_HISTORY_DAYS} days" in " ".join(capsys.readouterr().out.split())


class OldestFirst(archive_history.HistoryClient):
    """A listing in the other order than GitHub's (a mirror or proxy might), stopped by the
    rate limit after its first page when ``stop`` is set."""

    stop = True

    def commits(self, playlist_id, since, until):
        listed = sorted(
            (c for page in super().commits(playlist_id, since, until) for c in page),
            key=lambda commit: commit.committed_at,
        )
        per_page = archive_history.PER_PAGE
        for number, start in enumerate(range(0, len(listed), per_page)):
            if number and self.stop:
                raise ArchiveRateLimited("rate limit (test)", None)
            yield listed[start : start + per_page]


def test_a_listing_not_newest_first_stopped_half_way_still_resumes_whole(server, lake_root):
    """Only a newest-first page proves the span after its oldest commit: a listing in another
    order proves nothing until it ends, so a run it stops leaves the rest for the next."""
    server.history(days=150)
    commits = server.commits(file_path(GLOBAL))
    assert len(commits) > archive_history.PER_PAGE
    settings = settings_for(server, lake_root)
    with OldestFirst(settings) as client:
        [first] = backfill(settings, client=client)
    assert isinstance(first.error, ArchiveRateLimited)
    assert first.written == archive_history.PER_PAGE
    [second] = backfill(settings)  # GitHub's order, whole
    assert second.error is None
    assert first.written + second.written == len(commits)
    assert len(raw_keys(lake_root, GLOBAL)) == len(commits)
