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
from pathlib import Path

import pytest
import requests

from etl_lib import bounded_http, cli, pipeline
from etl_lib.config import Settings
from etl_lib.errors import (
    ArchiveError,
    RateLimited,
    SpotifyAuthError,
    SpotifyProtocolError,
    SpotifyUnavailable,
)
from etl_lib.extract import archive, auth, spotify
from etl_lib.extract.credentials import Credentials
from etl_lib.extract.envelope import MAX_ITEMS
from etl_lib.lake import layout, storage
from etl_lib.local_spotify import ChartSimulator, LocalSpotifyServer
from etl_lib.local_spotify.archive_server import archive_document
from etl_lib.local_spotify.loopback import LoopbackHandler, LoopbackServer

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
        credentials_file=Path(lake_root).parent / "credentials.json",  # never the user's
        # Generous, so that a busy machine never turns a plain reply into a deadline fault;
        # the tests of deadlines use ``tight``.
        connect_timeout_seconds=5,
        read_timeout_seconds=5,
        request_deadline_seconds=10,
        max_retries=2,
        rate_limit_budget_seconds=30,
    )


@pytest.fixture
def tight(bounded) -> Settings:
    return replace(
        bounded, connect_timeout_seconds=1, read_timeout_seconds=1, request_deadline_seconds=1.5
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
    keys = list(storage.list_keys(settings.lake, "raw/"))
    assert [layout.parse_raw_key(k)["playlist_id"] for k in keys] == [GOOD]
    raw = json.loads(storage.read_bytes(settings.lake, keys[0]))
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


def _endless_page(server, total: int, items: list, offset: int = 0) -> dict:
    page_url = f"{server.base_url}/playlists/{BAD}/items?offset={{}}&limit=50"
    return {
        "href": page_url.format(offset),
        "items": items,
        "limit": 50,
        "next": page_url.format(offset + 50),  # always a page not read yet
        "offset": offset,
        "previous": None,
        "total": total,
    }


def test_a_total_beyond_what_a_snapshot_may_hold_is_not_paged_at_all(server, bounded):
    # The probe's server: total 1,000,000,000 and a fresh next link on every page.
    server.fail_next(
        200, times=50, body=_endless_page(server, 10**9, []), path_contains=f"{BAD}/items"
    )
    outcomes, elapsed = _extract(bounded)
    assert isinstance(outcomes[BAD].error, SpotifyProtocolError)
    message = _one_line(outcomes[BAD].error)
    assert "1,000,000,000 items" in message and f"{MAX_ITEMS:,}" in message
    assert _requests_for(server, BAD) == 2  # the metadata and the first page
    assert elapsed < 10
    _assert_good_landed_once(bounded, outcomes[GOOD])


def test_pages_carrying_more_items_than_a_snapshot_may_hold_stop_paging(server, bounded):
    # A modest total, but pages far longer than the 50 asked for.
    entry = {"added_at": "2026-10-01T00:00:00Z", "item": None}
    first = _endless_page(server, 100, [entry] * (MAX_ITEMS // 2 + 1))
    server.fail_next(200, times=2, body=first, path_contains=f"{BAD}/items")
    outcomes, _ = _extract(bounded)
    assert isinstance(outcomes[BAD].error, SpotifyProtocolError)
    message = _one_line(outcomes[BAD].error)
    assert f"sent {2 * (MAX_ITEMS // 2 + 1):,} items" in message and "2 pages" in message
    assert _requests_for(server, BAD) == 3
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
        assert foreign.requests == []  # nothing sent there, the token least of all
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


def _cli_environment(server, bounded: Settings, monkeypatch) -> None:
    """The environment `spotify-etl extract` reads, pointing at the local server."""
    for name, value in {
        "SPOTIFY_API_BASE_URL": server.base_url,
        "SPOTIFY_TOKEN_URL": server.token_url,
        "SPOTIFY_CLIENT_ID": server.client_id,
        "SPOTIFY_CLIENT_SECRET": server.client_secret,
        "SPOTIFY_ETL_PLAYLISTS": f"{BAD},{GOOD}",
        "SPOTIFY_ETL_CREDENTIALS_FILE": str(bounded.credentials_file),
    }.items():
        monkeypatch.setenv(name, value)
    for name in (
        "SPOTIFY_REFRESH_TOKEN",
        "SPOTIFY_ETL_CREDENTIALS_PARAMETER",
        "SPOTIFY_ETL_AUTH_MODE",
    ):
        monkeypatch.delenv(name, raising=False)


def test_the_cli_prints_one_line_for_an_html_200(server, bounded, monkeypatch, capsys):
    _cli_environment(server, bounded, monkeypatch)
    server.fail_next(200, body="<html>\n<body>\nlogin\n</body>\n</html>", path_contains=BAD)
    assert cli.main(["extract", "--lake", bounded.lake]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    [line] = [line for line in err.splitlines() if line.startswith("error:")]
    assert BAD in line and "not a JSON object" in line
    assert f"{GOOD}: extracted" in err


# --- redirects -----------------------------------------------------------------------------


@pytest.mark.parametrize("status", [301, 302, 307])
@pytest.mark.parametrize("where", ["metadata", "items"])
def test_a_redirect_is_reported_as_one_and_not_followed(server, bounded, status, where):
    path = f"/playlists/{BAD}/items" if where == "items" else f"/playlists/{BAD}?"
    with LocalSpotifyServer(ChartSimulator(), now=NOW) as foreign:
        server.fail_next(
            status,
            headers={"Location": f"{foreign.base_url}/login?next=%2F"},
            path_contains=path,
        )
        outcomes, _ = _extract(bounded)
        assert isinstance(outcomes[BAD].error, SpotifyProtocolError)
        message = _one_line(outcomes[BAD].error)
        assert f"a redirect ({status} to '{foreign.origin}')" in message
        assert "not followed" in message and "SPOTIFY_API_BASE_URL" in message
        assert "not a JSON object" not in message
        assert foreign.requests == []
    assert _requests_for(server, BAD) == (1 if where == "metadata" else 2)
    _assert_good_landed_once(bounded, outcomes[GOOD])


def test_a_redirect_from_the_token_endpoint_fails_one_playlist(server, bounded):
    server.fail_next(302, headers={"Location": "/elsewhere"}, path_contains="/api/token")
    outcomes, _ = _extract(bounded)
    message = _one_line(outcomes[BAD].error)
    assert isinstance(outcomes[BAD].error, SpotifyProtocolError)
    assert f"the token endpoint {server.token_url} answered a redirect (302 to " in message
    assert server.origin in message and "SPOTIFY_TOKEN_URL" in message
    assert _token_posts(server) == 2  # not retried; the next playlist's token is fine
    _assert_good_landed_once(bounded, outcomes[GOOD])


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


def test_a_trickled_body_ends_at_the_request_deadline(server, tight):
    # One byte every 0.2 s: each read sees data well within the 1 s read timeout.
    server.trickle_next(piece_bytes=1, interval_seconds=0.2, times=100, path_contains=BAD)
    outcomes, elapsed = _extract(tight)
    error = outcomes[BAD].error
    assert isinstance(error, SpotifyUnavailable)
    assert "within 1.5 s" in _one_line(error) and "DeadlineExceeded" in str(error)
    attempts = tight.max_retries + 1
    assert _requests_for(server, BAD) == attempts
    per_request = tight.request_deadline_seconds + tight.read_timeout_seconds
    assert elapsed < attempts * per_request + 5
    _assert_good_landed_once(tight, outcomes[GOOD])


def test_trickled_headers_end_at_the_request_deadline(server, tight):
    # The status line and headers one byte every 0.2 s: they arrive inside the HTTP library,
    # before any body is read, and each read sees data well within the 1 s read timeout.
    server.trickle_next(
        piece_bytes=1, interval_seconds=0.2, times=100, path_contains=BAD, head=True
    )
    outcomes, elapsed = _extract(tight)
    error = outcomes[BAD].error
    assert isinstance(error, SpotifyUnavailable)
    assert "within 1.5 s" in _one_line(error) and "DeadlineExceeded" in str(error)
    attempts = tight.max_retries + 1
    assert _requests_for(server, BAD) == attempts
    # The deadline itself, not the deadline plus a read timeout: the socket is cut at it.
    assert elapsed < attempts * tight.request_deadline_seconds + 5
    _assert_good_landed_once(tight, outcomes[GOOD])


class _PlainServer(LoopbackServer):
    """A loopback server for a handler written in a test."""

    _name = "test server"
    _thread_prefix = "test-server"


@pytest.fixture
def keep_alive_server():
    """HTTP/1.1 with keep-alive: ``/slow-head`` trickles its headers, anything else is quick."""
    clients: set = set()
    stop = threading.Event()

    class Handler(LoopbackHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):  # noqa: N802 - http.server's naming
            clients.add(self.client_address)
            if self.path == "/slow-head":
                self.wfile.write(b"HTTP/1.1 200 OK\r\n")
                try:
                    while not stop.wait(0.1):
                        self.wfile.write(b"X-Wait: 1\r\n")
                        self.wfile.flush()
                except (BrokenPipeError, ConnectionResetError):
                    pass
                self.close_connection = True
                return
            body = b'{"ok": true}'
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    with _PlainServer(Handler) as running:
        try:
            yield running.origin, clients
        finally:
            stop.set()  # ends trickles still under way, so stop() need not wait for them


def test_the_deadline_cuts_only_its_own_request_on_a_kept_alive_connection(keep_alive_server):
    base_url, clients = keep_alive_server
    session = bounded_http.BoundedSession(0.3, origin=base_url)
    for _ in range(4):  # idle past the deadline between requests: no late cut
        assert session.get(base_url + "/quick", timeout=(1, 1)).json() == {"ok": True}
        time.sleep(0.4)
    assert len(clients) == 1  # one connection, reused every time
    started = time.monotonic()
    with pytest.raises(bounded_http.DeadlineExceeded):
        session.get(base_url + "/slow-head", timeout=(1, 1))
    assert time.monotonic() - started < 0.3 + 0.5
    assert session.get(base_url + "/quick", timeout=(1, 1)).json() == {"ok": True}


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


INVALID_TOKEN_REPLIES = {
    "no-expires_in": (
        {"access_token": "BQ-from-a-broken-server", "token_type": "Bearer"},
        "no expires_in",
    ),
    "no-access_token": ({"token_type": "Bearer", "expires_in": 3600}, "no access_token"),
    "empty-object": ({}, "no access_token"),
    "a-list": (b"[1, 2]", "JSON that is not an object (list)"),
    "expires_in-text": (
        {"access_token": "BQ-from-a-broken-server", "expires_in": "soon"},
        "an expires_in that is not a positive number of seconds ('soon')",
    ),
    "access_token-number": (
        {"access_token": 7, "expires_in": 3600},
        "an access_token that is not a non-empty string (int)",
    ),
}


@pytest.mark.parametrize(
    "reply, problem", INVALID_TOKEN_REPLIES.values(), ids=INVALID_TOKEN_REPLIES.keys()
)
def test_a_token_reply_spotipy_cannot_use_fails_one_playlist(server, bounded, reply, problem):
    server.fail_next(200, body=reply, path_contains="/api/token")
    outcomes, _ = _extract(bounded)
    error = outcomes[BAD].error
    assert isinstance(error, SpotifyProtocolError)
    message = _one_line(error)
    assert f"the token endpoint {server.token_url} answered 200 with {problem}" in message
    assert "BQ-from-a-broken-server" not in message
    assert _token_posts(server) == 2  # not retried: the same answer would come again
    assert _requests_for(server, BAD) == 0
    _assert_good_landed_once(bounded, outcomes[GOOD])


def test_an_unusable_token_reply_to_a_refresh_fails_one_playlist(server, bounded):
    user = Credentials(server.client_id, None, server.mint_refresh_token())
    settings = replace(bounded, credentials=user)
    server.fail_next(200, body={"access_token": "BQ-x"}, path_contains="/api/token")
    reader = spotify.make_reader(settings, sleep=RecordedSleep())
    outcomes = pipeline.extract(settings, [BAD, GOOD], reader=reader, clock=lambda: NOW)
    assert isinstance(outcomes[0].error, SpotifyProtocolError)
    assert "answered 200 with no expires_in" in _one_line(outcomes[0].error)
    _assert_good_landed_once(settings, outcomes[1])


def test_the_cli_prints_one_line_per_playlist_when_every_token_reply_is_unusable(
    server, bounded, monkeypatch, capsys
):
    _cli_environment(server, bounded, monkeypatch)
    server.fail_next(200, times=100, body={"expires_in": 3600}, path_contains="/api/token")
    assert cli.main(["extract", "--lake", bounded.lake]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and "KeyError" not in err
    lines = [line for line in err.splitlines() if line.startswith("error:")]
    assert len(lines) == 2
    assert all("token endpoint" in line and "no access_token" in line for line in lines)
    assert BAD in lines[0] and GOOD in lines[1]
    assert list(storage.list_keys(bounded.lake, "raw/")) == []
    assert _requests_for(server, BAD) == _requests_for(server, GOOD) == 0


def test_login_reports_an_unusable_token_reply_in_one_line(server, bounded, tmp_path):
    settings = replace(
        bounded,
        credentials=Credentials(server.client_id),
        authorize_url=server.authorize_url,
        credentials_file=tmp_path / "credentials.json",
    )
    shown: list[str] = []

    def paste() -> str:  # the redirect the browser would land on, approved at once
        return requests.get(shown[-1], allow_redirects=False, timeout=5).headers["Location"]

    server.fail_next(
        200, body={"access_token": "BQ-x", "expires_in": "soon"}, path_contains="/api/token"
    )
    with pytest.raises(SpotifyAuthError) as raised:
        auth.login(settings, show_url=shown.append, paste=paste)
    message = _one_line(raised.value)
    assert "answered the authorization code with 200 and an expires_in" in message
    assert not settings.credentials_file.exists()

    # A reply that gives no refresh token cannot be stored for later runs.
    server.fail_next(
        200, body={"access_token": "BQ-x", "expires_in": 3600}, path_contains="/api/token"
    )
    with pytest.raises(SpotifyAuthError, match="without a refresh_token"):
        auth.login(settings, show_url=shown.append, paste=paste)
    assert not settings.credentials_file.exists()


def test_trickled_token_headers_end_at_the_deadline_and_are_retried(server, tight):
    server.trickle_next(interval_seconds=0.2, times=1, path_contains="/api/token", head=True)
    outcomes, elapsed = _extract(tight)
    assert [o.status for o in outcomes.values()] == ["extracted", "extracted"]
    assert _token_posts(server) == 2
    assert elapsed < tight.request_deadline_seconds + 5


def test_a_trickled_token_reply_ends_at_the_deadline_and_is_retried(server, tight):
    server.trickle_next(interval_seconds=0.2, times=1, path_contains="/api/token")
    outcomes, elapsed = _extract(tight)
    assert [o.status for o in outcomes.values()] == ["extracted", "extracted"]
    assert _token_posts(server) == 2
    assert elapsed < tight.request_deadline_seconds + tight.read_timeout_seconds + 5


# --- the archive ----------------------------------------------------------------------------


@pytest.fixture
def trickling_archive():
    """The archive's JSON for GOOD, served whole, or one byte every 0.2 s under /slow/."""
    document = json.dumps(archive_document(ChartSimulator(), GOOD, NOW)).encode()
    seen: list[str] = []
    stop = threading.Event()

    class Handler(LoopbackHandler):
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

    with _PlainServer(Handler) as running:
        try:
            yield running.origin, seen, document
        finally:
            stop.set()  # ends trickles still under way, so stop() need not wait for them


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
