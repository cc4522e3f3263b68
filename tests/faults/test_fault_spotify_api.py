"""A misbehaving Spotify API: every case ends within its bound, with one line for that playlist.

The local server is told to misbehave for one playlist (or for the token endpoint); a healthy
playlist in the same run is still extracted, the requests the server saw stay few, and the
token never reaches another origin. Timeouts, deadline, retries and budget are small so that
each case ends in seconds.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from etl_lib import archive, cli, lake, pipeline, spotify
from etl_lib.config import Settings
from etl_lib.credentials import Credentials
from etl_lib.errors import (
    ArchiveError,
    RateLimited,
    SpotifyProtocolError,
    SpotifyUnavailable,
)
from etl_lib.local_spotify import ChartSimulator, LocalSpotifyServer
from etl_lib.local_spotify.archive_server import archive_document

pytestmark = [pytest.mark.faults, pytest.mark.timeout(30)]

BAD = "37i9dQZEVXbMDoHDwVN2tF"  # the playlist the server misbehaves for
GOOD = "37i9dQZEVXbNG2KDcFcKOF"
NOW = datetime(2026, 10, 1, 12, tzinfo=UTC)
CHART_SIZE = 120  # three item pages of 50, so there is a next link to follow
PAGES = 3


class RecordedSleep:
    """Sleeps nothing, remembers what it was asked: backoff is decided, not waited."""

    def __init__(self):
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


@pytest.fixture(scope="module")
def simulator():
    """Charts simulated once: the first chart of a day takes seconds, more than the timeouts
    below allow, which are meant for the faults only."""
    charts = ChartSimulator(chart_size=CHART_SIZE)
    for playlist_id in (BAD, GOOD):
        charts.chart(playlist_id, NOW)
    return charts


@pytest.fixture
def server(simulator):
    with LocalSpotifyServer(simulator, now=NOW) as running:
        yield running


@pytest.fixture
def bounded(server, lake_root) -> Settings:
    return Settings(
        lake=lake_root,
        api_base_url=server.base_url,
        token_url=server.token_url,
        credentials=Credentials(server.client_id, server.client_secret),
        playlists=(BAD, GOOD),
        connect_timeout_seconds=1,
        read_timeout_seconds=1,
        request_deadline_seconds=1.5,
        max_retries=2,
        rate_limit_budget_seconds=30,
    )


def _requests_for(server, playlist_id: str) -> int:
    return sum(1 for r in server.requests if f"/playlists/{playlist_id}" in r.path)


def _extract(settings: Settings, ids=(BAD, GOOD), sleep=None):
    reader = spotify.make_reader(settings, sleep=sleep or RecordedSleep())
    started = time.monotonic()
    outcomes = pipeline.extract(settings, list(ids), reader=reader, clock=lambda: NOW)
    return {o.playlist_id: o for o in outcomes}, time.monotonic() - started


def _assert_good_landed_once(settings: Settings, outcome) -> None:
    assert outcome.status == "extracted", outcome.error
    assert outcome.items == CHART_SIZE
    keys = list(lake.list_keys(settings.lake, "raw/"))
    assert [lake.parse_raw_key(k)["playlist_id"] for k in keys] == [GOOD]
    raw = json.loads(lake.read_bytes(settings.lake, keys[0]))
    assert sum(len(page["items"]) for page in raw["pages"]) == CHART_SIZE


def _one_line(error) -> str:
    message = str(error)
    assert message and "\n" not in message
    return message


# --- paging -------------------------------------------------------------------------------


def test_a_next_link_to_itself_stops_paging(server, bounded):
    server.misdirect_next("self", path_contains=BAD)
    outcomes, elapsed = _extract(bounded)
    assert isinstance(outcomes[BAD].error, SpotifyProtocolError)
    assert "repeats a page already read" in _one_line(outcomes[BAD].error)
    # The metadata and the first page, whose next is its own href: not requested again.
    assert _requests_for(server, BAD) == 2
    assert elapsed < 10
    _assert_good_landed_once(bounded, outcomes[GOOD])


def test_pages_beyond_what_total_allows_stop_paging(server, bounded):
    # Each next link is new (an offset that only grows) but the pages never end.
    for offset in range(100, 100 + 50 * 20, 50):
        server.misdirect_next(
            f"{server.base_url}/playlists/{BAD}/items?offset={offset}&limit=50",
            times=1,
            path_contains=BAD,
        )
    outcomes, _ = _extract(bounded)
    assert isinstance(outcomes[BAD].error, SpotifyProtocolError)
    most = CHART_SIZE // 50 + 1  # total/50 + 1
    assert f"past {most} pages" in _one_line(outcomes[BAD].error)
    assert _requests_for(server, BAD) == 1 + most
    _assert_good_landed_once(bounded, outcomes[GOOD])


def test_a_next_link_to_another_origin_is_not_followed_and_gets_no_token(server, bounded):
    with LocalSpotifyServer(ChartSimulator(), now=NOW) as foreign:
        foreign_page = f"{foreign.base_url}/playlists/{BAD}/items?offset=50&limit=50"
        server.misdirect_next(foreign_page, path_contains=BAD)
        outcomes, _ = _extract(bounded)
        assert isinstance(outcomes[BAD].error, SpotifyProtocolError)
        message = _one_line(outcomes[BAD].error)
        assert "points away from" in message and foreign.origin in message
        _assert_good_landed_once(bounded, outcomes[GOOD])
        # Below the paging check too: the API's session sends nothing off its origin.
        reader = spotify.make_reader(bounded, sleep=RecordedSleep())
        with pytest.raises(SpotifyProtocolError, match="not on"):
            reader.call("a foreign page", lambda: reader.client.next({"next": foreign_page}))
        assert foreign.requests == [] and foreign.authorized_requests == []
    assert _requests_for(server, BAD) == 2  # metadata and the first page only


# --- bodies that are not JSON objects -----------------------------------------------------


@pytest.mark.parametrize(
    "body",
    [
        "<html><body><h1>Welcome to the hotel Wi-Fi</h1></body></html>",
        b'{"snapshot_id": "abc", "name": ',
        b"[1, 2, 3]",
        b"",
    ],
    ids=["html", "truncated-json", "json-list", "empty"],
)
def test_a_200_that_is_not_a_json_object_fails_that_playlist_only(server, bounded, body):
    server.fail_next(200, body=body, path_contains=BAD)
    outcomes, _ = _extract(bounded)
    assert isinstance(outcomes[BAD].error, SpotifyProtocolError)
    assert "not a JSON object" in _one_line(outcomes[BAD].error)
    assert _requests_for(server, BAD) == 1
    _assert_good_landed_once(bounded, outcomes[GOOD])


def test_the_cli_prints_one_line_for_an_html_200(server, bounded, monkeypatch, capsys):
    for name, value in {
        "SPOTIFY_API_BASE_URL": server.base_url,
        "SPOTIFY_TOKEN_URL": server.token_url,
        "SPOTIFY_CLIENT_ID": server.client_id,
        "SPOTIFY_CLIENT_SECRET": server.client_secret,
        "SPOTIFY_ETL_PLAYLISTS": f"{BAD},{GOOD}",
        "SPOTIFY_ETL_CREDENTIALS_FILE": str(bounded.credentials_file) + ".absent",
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("SPOTIFY_REFRESH_TOKEN", "SPOTIFY_ETL_SECRET_ID", "SPOTIFY_ETL_AUTH_MODE"):
        monkeypatch.delenv(name, raising=False)
    server.fail_next(200, body="<html>\n<body>\nlogin\n</body>\n</html>", path_contains=BAD)
    assert cli.main(["extract", "--lake", bounded.lake]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    [line] = [line for line in err.splitlines() if line.startswith("error:")]
    assert BAD in line and "not a JSON object" in line
    assert f"{GOOD}: extracted" in err


# --- Retry-After ---------------------------------------------------------------------------


PAST = format_datetime(datetime(2015, 10, 21, 7, 28, tzinfo=UTC), usegmt=True)


@pytest.mark.parametrize("retry_after", ["0", "-1", "nan", "soon", PAST, "", None])
def test_an_unusable_retry_after_gets_bounded_jittered_backoff(server, bounded, retry_after):
    headers = {} if retry_after is None else {"Retry-After": retry_after}
    server.fail_next(429, times=2, headers=headers, path_contains=BAD)
    sleep = RecordedSleep()
    outcomes, _ = _extract(bounded, sleep=sleep)
    assert outcomes[BAD].status == "extracted", outcomes[BAD].error
    assert len(sleep.calls) == 2 and all(0 <= s <= 8 for s in sleep.calls)
    assert outcomes[GOOD].status == "extracted", outcomes[GOOD].error
    assert _requests_for(server, BAD) == 2 + 1 + PAGES  # two 429s, then all


@pytest.mark.parametrize("retry_after", ["0", "nan", "soon"])
def test_a_429_storm_without_usable_retry_after_stops_after_bounded_tries(
    server, bounded, retry_after
):
    server.fail_next(429, times=1000, headers={"Retry-After": retry_after}, path_contains=BAD)
    sleep = RecordedSleep()
    outcomes, elapsed = _extract(bounded, ids=(GOOD, BAD), sleep=sleep)
    _assert_good_landed_once(bounded, outcomes[GOOD])
    assert isinstance(outcomes[BAD].error, RateLimited)
    assert "no usable Retry-After" in _one_line(outcomes[BAD].error)
    assert _requests_for(server, BAD) == bounded.max_retries + 1
    assert len(sleep.calls) == bounded.max_retries
    assert elapsed < 10


@pytest.mark.parametrize(
    "retry_after",
    ["inf", "1e12", "86400", "99999999999999999999999", None],
    ids=["inf", "1e12", "a-day", "huge-integer", "a-date-next-year"],
)
def test_a_retry_after_beyond_the_budget_stops_the_run_at_once(server, bounded, retry_after):
    header = retry_after or format_datetime(NOW + timedelta(days=365), usegmt=True)
    server.fail_next(429, headers={"Retry-After": header}, path_contains=BAD)
    sleep = RecordedSleep()
    reader = spotify.make_reader(bounded, sleep=sleep, now=lambda: NOW)
    outcomes = pipeline.extract(bounded, [GOOD, BAD], reader=reader, clock=lambda: NOW)
    good, bad = outcomes
    _assert_good_landed_once(bounded, good)
    assert isinstance(bad.error, RateLimited)
    assert "rate limited until" in _one_line(bad.error)
    assert NOW + timedelta(days=1) <= bad.error.until <= NOW + timedelta(days=367)
    assert sleep.calls == []
    assert _requests_for(server, BAD) == 1


def test_a_small_retry_after_is_waited_in_whole_seconds(server, bounded):
    server.fail_next(429, headers={"Retry-After": "1.2"}, path_contains=BAD)
    sleep = RecordedSleep()
    outcomes, _ = _extract(bounded, sleep=sleep)
    assert outcomes[BAD].status == "extracted"
    assert sleep.calls == [2]


# --- slow bodies ----------------------------------------------------------------------------


def test_a_trickled_body_ends_at_the_request_deadline(server, bounded):
    # One byte every 0.2 s: each read sees data well within the 1 s read timeout.
    server.trickle_next(piece_bytes=1, interval_seconds=0.2, times=100, path_contains=BAD)
    outcomes, elapsed = _extract(bounded)
    error = outcomes[BAD].error
    assert isinstance(error, SpotifyUnavailable)
    assert "within 1.5 s" in _one_line(error) and "DeadlineExceeded" in str(error)
    attempts = bounded.max_retries + 1
    assert _requests_for(server, BAD) == attempts
    per_request = bounded.request_deadline_seconds + bounded.read_timeout_seconds
    assert elapsed < attempts * per_request + 3
    _assert_good_landed_once(bounded, outcomes[GOOD])


# --- the token endpoint ---------------------------------------------------------------------


def _token_posts(server) -> int:
    return sum(1 for r in server.requests if r.path.startswith("/api/token"))


def test_a_5xx_burst_from_the_token_endpoint_is_retried(server, bounded):
    server.fail_next(503, times=2, path_contains="/api/token")
    sleep = RecordedSleep()
    outcomes, _ = _extract(bounded, sleep=sleep)
    assert [o.status for o in outcomes.values()] == ["extracted", "extracted"]
    assert _token_posts(server) == 3
    assert len(sleep.calls) == 2


def test_a_token_endpoint_that_keeps_failing_fails_one_playlist_then_recovers(server, bounded):
    server.fail_next(502, times=bounded.max_retries + 1, path_contains="/api/token")
    outcomes, _ = _extract(bounded)
    error = outcomes[BAD].error
    assert isinstance(error, SpotifyUnavailable)
    message = _one_line(error)
    assert "token endpoint" in message and "(502)" in message and "3 attempts" in message
    assert _token_posts(server) == bounded.max_retries + 2
    assert _requests_for(server, BAD) == 0
    _assert_good_landed_once(bounded, outcomes[GOOD])


def test_a_5xx_from_the_token_endpoint_during_a_mid_run_refresh_is_retried(server, bounded):
    user = Credentials(server.client_id, None, server.mint_refresh_token())
    settings = replace(bounded, credentials=user)
    reader = spotify.make_reader(settings, sleep=RecordedSleep())
    reader.me()  # the first access token
    server.fail_next(401, path_contains=BAD)  # that token expires ...
    server.fail_next(503, path_contains="/api/token")  # ... and the first refresh fails
    outcomes = pipeline.extract(settings, [BAD, GOOD], reader=reader, clock=lambda: NOW)
    assert [o.status for o in outcomes] == ["extracted", "extracted"], outcomes[0].error
    assert _token_posts(server) == 3


def test_a_token_endpoint_answering_html_fails_one_playlist(server, bounded):
    server.fail_next(200, body="<html>maintenance</html>", path_contains="/api/token")
    outcomes, _ = _extract(bounded)
    assert isinstance(outcomes[BAD].error, SpotifyProtocolError)
    assert "token endpoint" in _one_line(outcomes[BAD].error)
    _assert_good_landed_once(bounded, outcomes[GOOD])


def test_a_trickled_token_reply_ends_at_the_deadline_and_is_retried(server, bounded):
    server.trickle_next(interval_seconds=0.2, times=1, path_contains="/api/token")
    outcomes, elapsed = _extract(bounded)
    assert [o.status for o in outcomes.values()] == ["extracted", "extracted"]
    assert _token_posts(server) == 2
    assert elapsed < bounded.request_deadline_seconds + bounded.read_timeout_seconds + 3


# --- the archive ----------------------------------------------------------------------------


@pytest.fixture
def trickling_archive():
    """The archive's JSON for GOOD, served whole, or one byte every 0.2 s under /slow/."""
    document = json.dumps(archive_document(ChartSimulator(), GOOD, NOW)).encode()
    seen: list[str] = []
    stop = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's naming
            seen.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(document)))
            self.end_headers()
            try:
                if not self.path.startswith("/slow/"):
                    self.wfile.write(document)
                    return
                for position in range(len(document)):
                    self.wfile.write(document[position : position + 1])
                    if stop.wait(0.2):
                        return
            except (BrokenPipeError, ConnectionResetError):
                return

        def log_message(self, format, *args):
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, kwargs={"poll_interval": 0.05})
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", seen, document
    finally:
        stop.set()
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def test_a_trickled_archive_download_ends_at_its_deadline(trickling_archive):
    base_url, seen, document = trickling_archive
    started = time.monotonic()
    with pytest.raises(ArchiveError, match="within 1.5 s") as raised:
        archive.fetch_archive_envelope(
            base_url + "/slow", GOOD, extracted_at=NOW, timeout=1, deadline_seconds=1.5
        )
    assert time.monotonic() - started < 1.5 + 1 + 1
    _one_line(raised.value)
    payload = archive.fetch_archive_envelope(
        base_url, GOOD, extracted_at=NOW, timeout=1, deadline_seconds=1.5
    )
    assert payload["archive"] == json.loads(document)
    assert len(seen) == 2
