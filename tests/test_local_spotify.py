"""The local Spotify stand-in: the chart simulator's model and the HTTP server's contract."""

from __future__ import annotations

import base64
import copy
import hashlib
import re
import secrets
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests
from conftest import foreground_server

from etl_lib.local_spotify import ChartSimulator, LocalSpotifyServer
from etl_lib.local_spotify.server import select_fields
from etl_lib.local_spotify.simulator import CHART_MARKETS, DEFAULT_PLAYLISTS

TOP_SONGS = "37i9dQZEVXbNG2KDcFcKOF"
TOP_50 = "37i9dQZEVXbMDoHDwVN2tF"
OWN = "3cEYpjA9oz9GiPac4AsH4n"  # owned by local-user
COLLABORATIVE = "1ClnXq6wJ9Ekl9Gu5VdGbX"  # owned by other-user, local-user collaborates
SOMEONE_ELSES = "5Rrf7mqN8uus2AaQQQNdc1"  # owned by other-user alone
REDIRECT_URI = "http://127.0.0.1:8888/callback"
SCOPE = "playlist-read-private playlist-read-collaborative"
NOW = datetime(2026, 11, 1, 12, tzinfo=UTC)
TODAY = NOW.date()
SPEC_PATH = (
    Path(__file__).resolve().parents[1].parent / "shared" / "data" / "spotify-web-api-openapi.yml"
)
SPOTIFY_ID = re.compile(r"^[0-9A-Za-z]{22}$")
# Cyrillic, Arabic, Devanagari, kana, CJK ideographs, Hangul
NON_LATIN = re.compile(
    r"[\u0400-\u04ff\u0600-\u06ff\u0900-\u097f\u3040-\u30ff\u4e00-\u9fff\uac00-\ud7af]"
)


@pytest.fixture(scope="module")
def simulator() -> ChartSimulator:
    return ChartSimulator()


@pytest.fixture
def server(simulator):
    with LocalSpotifyServer(simulator, now=NOW) as running:
        yield running


@pytest.fixture
def api(server):
    """A session that sends a token the server issued, as every client would."""
    with requests.Session() as session:
        session.headers["Authorization"] = f"Bearer {server.issue_token()}"
        yield session


def _names(entry: dict[str, Any]) -> list[str]:
    track = entry["item"]
    return [
        track["name"],
        track["album"]["name"],
        *(artist["name"] for artist in track["artists"]),
        *(artist["name"] for artist in track["album"]["artists"]),
    ]


def _all_items(session: requests.Session, first_url: str, **params: Any) -> list[dict]:
    pages = [session.get(first_url, params=params, timeout=10).json()]
    while pages[-1]["next"] is not None:
        pages.append(session.get(pages[-1]["next"], timeout=10).json())
    return pages


# -- token endpoint ------------------------------------------------------------------------


def test_token_issued_for_basic_auth_and_for_form_credentials(server):
    by_basic_auth = requests.post(
        server.token_url,
        data={"grant_type": "client_credentials"},
        auth=(server.client_id, server.client_secret),
        timeout=10,
    )
    by_form = requests.post(
        server.token_url,
        data={
            "grant_type": "client_credentials",
            "client_id": server.client_id,
            "client_secret": server.client_secret,
        },
        timeout=10,
    )
    for response in (by_basic_auth, by_form):
        assert response.status_code == 200
        body = response.json()
        assert body["token_type"] == "Bearer" and body["expires_in"] == 3600
        assert body["access_token"]
    assert by_basic_auth.json()["access_token"] != by_form.json()["access_token"]

    token = by_form.json()["access_token"]
    playlist = requests.get(
        f"{server.base_url}/playlists/{TOP_50}",
        headers={"Authorization": f"Bearer {token}"},
        params={"fields": "id"},
        timeout=10,
    )
    assert playlist.status_code == 200 and playlist.json() == {"id": TOP_50}


def test_token_refused_for_wrong_credentials_or_grant(server):
    wrong_secret = requests.post(
        server.token_url,
        data={"grant_type": "client_credentials"},
        auth=(server.client_id, "not-the-secret"),
        timeout=10,
    )
    assert wrong_secret.status_code == 400
    assert wrong_secret.json() == {"error": "invalid_client", "error_description": "Invalid client"}

    no_credentials = requests.post(
        server.token_url, data={"grant_type": "client_credentials"}, timeout=10
    )
    assert no_credentials.status_code == 400
    assert no_credentials.json()["error"] == "invalid_client"

    wrong_grant = requests.post(
        server.token_url,
        data={"grant_type": "password"},
        auth=(server.client_id, server.client_secret),
        timeout=10,
    )
    assert wrong_grant.status_code == 400
    assert wrong_grant.json()["error"] == "unsupported_grant_type"


# -- authorization and errors ---------------------------------------------------------------


def test_api_needs_an_issued_bearer_token(server):
    url = f"{server.base_url}/playlists/{TOP_50}/items"
    missing = requests.get(url, timeout=10)
    assert missing.status_code == 401
    assert missing.json() == {"error": {"status": 401, "message": "No token provided"}}

    made_up = requests.get(url, headers={"Authorization": "Bearer made-up"}, timeout=10)
    assert made_up.status_code == 401
    assert made_up.json() == {"error": {"status": 401, "message": "Invalid access token"}}


def test_tokens_expire_on_the_simulated_clock_only_when_asked(simulator):
    with LocalSpotifyServer(simulator, now=NOW, enforce_token_expiry=True) as server:
        headers = {"Authorization": f"Bearer {server.issue_token()}"}
        url = f"{server.base_url}/playlists/{TOP_50}?fields=id"
        assert requests.get(url, headers=headers, timeout=10).status_code == 200
        server.advance(timedelta(hours=1))
        expired = requests.get(url, headers=headers, timeout=10)
        assert expired.status_code == 401
        assert expired.json()["error"]["message"] == "The access token expired"


def test_unknown_playlist_is_404(api, server):
    for path in ("playlists/0000000000000000000000", "playlists/0000000000000000000000/items"):
        response = api.get(f"{server.base_url}/{path}", timeout=10)
        assert response.status_code == 404
        assert response.json() == {"error": {"status": 404, "message": "Resource not found"}}


def test_unknown_playlist_is_a_key_error_in_the_simulator(simulator):
    assert not simulator.has_playlist("0000000000000000000000")
    with pytest.raises(KeyError):
        simulator.chart("0000000000000000000000", TODAY)


# -- paging ---------------------------------------------------------------------------------


@pytest.mark.parametrize("endpoint", ["items", "tracks"])
@pytest.mark.parametrize(("limit", "pages"), [(50, 1), (20, 3), (None, 3), (7, 8)])
def test_paging_follows_next_to_exactly_the_chart(api, server, simulator, endpoint, limit, pages):
    params = {} if limit is None else {"limit": limit}
    first_url = f"{server.base_url}/playlists/{TOP_SONGS}/{endpoint}"
    served = _all_items(api, first_url, **params)

    page_size = limit or 20
    assert len(served) == pages
    assert [page["offset"] for page in served] == [page_size * n for n in range(pages)]
    assert all(page["limit"] == page_size and page["total"] == 50 for page in served)
    assert served[0]["previous"] is None and served[-1]["next"] is None
    for earlier, later in zip(served, served[1:], strict=False):
        assert earlier["next"] == later["href"]
        assert later["previous"] == earlier["href"]
        assert later["href"].startswith(f"{server.base_url}/playlists/{TOP_SONGS}/{endpoint}?")
    ids = [entry["item"]["id"] for page in served for entry in page["items"]]
    assert ids == simulator.chart_track_ids(TOP_SONGS, TODAY)


def test_page_links_keep_the_other_query_parameters(api, server):
    page = api.get(
        f"{server.base_url}/playlists/{TOP_50}/items",
        params={"limit": 10, "offset": 10, "market": "US", "additional_types": "track"},
        timeout=10,
    ).json()
    assert page["next"] == (
        f"{server.base_url}/playlists/{TOP_50}/items"
        "?offset=20&limit=10&market=US&additional_types=track"
    )
    assert page["previous"].endswith("?offset=0&limit=10&market=US&additional_types=track")


@pytest.mark.parametrize(
    ("endpoint", "query", "message"),
    [
        ("items", "limit=51", "Invalid limit"),
        ("items", "limit=0", "Invalid limit"),
        ("items", "limit=ten", "Invalid limit"),
        ("items", "offset=-1", "Invalid offset"),
        ("tracks", "limit=101", "Invalid limit"),  # the deprecated endpoint allows 100
    ],
)
def test_bad_paging_parameters_are_400(api, server, endpoint, query, message):
    response = api.get(f"{server.base_url}/playlists/{TOP_50}/{endpoint}?{query}", timeout=10)
    assert response.status_code == 400
    assert response.json() == {"error": {"status": 400, "message": message}}


def test_offset_past_the_end_is_an_empty_last_page(api, server):
    page = api.get(f"{server.base_url}/playlists/{TOP_50}/items?offset=60&limit=20", timeout=10)
    assert page.status_code == 200
    body = page.json()
    assert body["items"] == [] and body["next"] is None and body["total"] == 50


# -- playlist object and fields ---------------------------------------------------------------


def test_playlist_object_embeds_its_first_pages(api, server, simulator):
    playlist = api.get(f"{server.base_url}/playlists/{TOP_50}", timeout=10).json()
    assert playlist["id"] == TOP_50 and playlist["name"] == "Top 50 - Global"
    assert playlist["owner"]["id"] == "spotify" and playlist["owner"]["display_name"] == "Spotify"
    assert playlist["followers"]["href"] is None and playlist["followers"]["total"] > 0
    assert playlist["snapshot_id"] == simulator.snapshot_id(TOP_50, TODAY)
    assert playlist["href"] == f"{server.base_url}/playlists/{TOP_50}"
    for endpoint in ("items", "tracks"):
        page = playlist[endpoint]
        assert page["offset"] == 0 and page["total"] == 50 and len(page["items"]) == 50
        assert page["href"].startswith(f"{server.base_url}/playlists/{TOP_50}/{endpoint}?")


def test_fields_selects_like_spotify(api, server):
    url = f"{server.base_url}/playlists/{TOP_50}"
    only_snapshot = api.get(url, params={"fields": "snapshot_id"}, timeout=10).json()
    assert list(only_snapshot) == ["snapshot_id"]

    metadata = api.get(
        url, params={"fields": "id,name,snapshot_id,followers(total),owner(id)"}, timeout=10
    ).json()
    assert set(metadata) == {"id", "name", "snapshot_id", "followers", "owner"}
    assert metadata["owner"] == {"id": "spotify"} and set(metadata["followers"]) == {"total"}

    page = api.get(
        f"{url}/items", params={"fields": "total,items(added_at,item.id)", "limit": 2}, timeout=10
    ).json()
    assert page["total"] == 50
    assert [set(entry) for entry in page["items"]] == [{"added_at", "item"}] * 2
    assert all(list(entry["item"]) == ["id"] for entry in page["items"])


def test_fields_exclusions_keep_everything_else():
    document = {"a": 1, "b": {"c": 2, "d": 3}, "e": [{"f": 4, "g": 5}]}
    assert select_fields(document, "!a") == {"b": {"c": 2, "d": 3}, "e": [{"f": 4, "g": 5}]}
    assert select_fields(document, "b(!c),e.g") == {"b": {"d": 3}, "e": [{"g": 5}]}
    assert select_fields(document, None) is document


def test_json_is_utf8_with_non_ascii_characters_kept(api, server):
    response = api.get(f"{server.base_url}/playlists/{TOP_50}/items?limit=50", timeout=10)
    assert response.headers["Content-Type"] == "application/json; charset=utf-8"
    text = response.content.decode("utf-8")
    assert "\\u" not in text, "non-ASCII must be sent as UTF-8, not as \\u escapes"
    assert NON_LATIN.search(text)


# -- the simulated clock ----------------------------------------------------------------------


def test_chart_changes_once_per_utc_day(api, server, simulator):
    def served_snapshot(moment: datetime) -> str:
        server.set_time(moment)
        url = f"{server.base_url}/playlists/{TOP_50}?fields=snapshot_id"
        return api.get(url, timeout=10).json()["snapshot_id"]

    start_of_day = datetime(2026, 11, 1, tzinfo=UTC)
    morning = served_snapshot(start_of_day)
    assert served_snapshot(start_of_day + timedelta(hours=23, minutes=59, seconds=59)) == morning
    # The same UTC day seen from another time zone is the same chart.
    assert served_snapshot(datetime.fromisoformat("2026-11-01T20:00:00-03:00")) == morning
    next_day = served_snapshot(start_of_day + timedelta(days=1))
    assert next_day != morning
    assert next_day == simulator.snapshot_id(TOP_50, date(2026, 11, 2))


def test_clock_refuses_naive_datetimes(simulator):
    server = LocalSpotifyServer(simulator)
    with pytest.raises(ValueError, match="aware"):
        server.set_time(datetime(2026, 11, 1))  # noqa: DTZ001 - the mistake under test
    assert server.clock.tzinfo is not None


# -- fault injection and the request log --------------------------------------------------------


def test_fail_next_429_with_retry_after_then_normal(api, server):
    url = f"{server.base_url}/playlists/{TOP_50}/items"
    server.fail_next(429, headers={"Retry-After": "2"})
    limited = api.get(url, timeout=10)
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "2"
    assert limited.json() == {"error": {"status": 429, "message": "API rate limit exceeded"}}
    assert api.get(url, timeout=10).status_code == 200


def test_fail_next_several_times_matching_a_path(api, server):
    server.fail_next(503, times=2, path_contains="/items")
    server.fail_next(502, body="<html><body>Bad gateway</body></html>", path_contains="/tracks")
    playlist_url = f"{server.base_url}/playlists/{TOP_50}"

    assert api.get(playlist_url, timeout=10).status_code == 200  # not a matching path
    assert [api.get(f"{playlist_url}/items", timeout=10).status_code for _ in range(3)] == [
        503,
        503,
        200,
    ]
    gateway = api.get(f"{playlist_url}/tracks", timeout=10)
    assert gateway.status_code == 502 and gateway.headers["Content-Type"].startswith("text/html")


def test_fail_next_can_reach_the_token_endpoint(server):
    server.fail_next(500, path_contains="/api/token")

    def ask_for_a_token() -> int:
        return requests.post(
            server.token_url,
            data={"grant_type": "client_credentials"},
            auth=(server.client_id, server.client_secret),
            timeout=10,
        ).status_code

    assert [ask_for_a_token(), ask_for_a_token()] == [500, 200]


def test_requests_are_recorded_with_their_query(api, server):
    server.requests.clear()
    api.get(f"{server.base_url}/playlists/{TOP_50}/items?limit=50", timeout=10)
    api.get(f"{server.base_url}/playlists/{TOP_50}?fields=snapshot_id", timeout=10)
    assert server.requests == [
        ("GET", f"/v1/playlists/{TOP_50}/items?limit=50"),
        ("GET", f"/v1/playlists/{TOP_50}?fields=snapshot_id"),
    ]
    assert server.requests[0].method == "GET"


def test_server_stops_and_frees_its_port(simulator):
    server = LocalSpotifyServer(simulator).start()
    base_url = server.base_url
    server.stop()
    server.stop()  # idempotent
    with pytest.raises(requests.ConnectionError):
        requests.get(f"{base_url}/playlists/{TOP_50}", timeout=2)
    with pytest.raises(RuntimeError, match="not running"):
        _ = server.base_url


def test_spotipy_reads_the_local_server(server):
    import spotipy
    from spotipy.cache_handler import MemoryCacheHandler
    from spotipy.oauth2 import SpotifyClientCredentials

    auth = SpotifyClientCredentials(
        client_id=server.client_id,
        client_secret=server.client_secret,
        cache_handler=MemoryCacheHandler(),
    )
    auth.OAUTH_TOKEN_URL = server.token_url
    client = spotipy.Spotify(auth_manager=auth, retries=0)
    client.prefix = f"{server.base_url}/"

    page = client.playlist_items(TOP_SONGS, limit=50)
    assert page["total"] == 50 and len(page["items"]) == 50 and page["next"] is None
    assert client.playlist(TOP_SONGS, fields="snapshot_id") == {
        "snapshot_id": server.simulator.snapshot_id(TOP_SONGS, TODAY)
    }


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT cannot be sent to a child there")
def test_module_runs_in_the_foreground_until_interrupted():
    with foreground_server("etl_lib.local_spotify", "--port", "0") as banner:
        pass
    assert re.match(r"base_url: +http://127\.0\.0\.1:\d+/v1$", banner[0].strip())
    assert re.match(r"token_url: +http://127\.0\.0\.1:\d+/api/token$", banner[1].strip())
    text = "".join(banner)
    assert re.search(r"authorize_url: +http://127\.0\.0\.1:\d+/authorize\n", text)
    for playlist_id in (TOP_50, OWN, COLLABORATIVE, SOMEONE_ELSES):
        assert f"playlist:      {playlist_id}" in text
    assert "collaborators local-user" in text
    assert re.search(r"login: +GET http://127\.0\.0\.1:\d+/authorize\?client_id=", text)


# -- Authorization Code with PKCE, refresh tokens, user tokens ------------------------------------


def _pkce_pair() -> tuple[str, str]:
    """(code_verifier, code_challenge), computed here as a client would, per RFC 7636."""
    verifier = secrets.token_urlsafe(64)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def _authorize(server, challenge: str | None, **overrides: str | None) -> requests.Response:
    params: dict[str, str | None] = {
        "client_id": server.client_id,
        "response_type": "code",
        "redirect_uri": REDIRECT_URI,
        "code_challenge_method": "S256" if challenge else None,
        "code_challenge": challenge,
        "scope": SCOPE,
        "state": "state-42",
    }
    params.update(overrides)
    return requests.get(server.authorize_url, params=params, allow_redirects=False, timeout=10)


def _code_from(authorized: requests.Response, redirect_uri: str = REDIRECT_URI) -> str:
    assert authorized.status_code == 302, authorized.text
    location = authorized.headers["Location"]
    assert location.startswith(f"{redirect_uri}?")
    answer = dict(parse_qsl(urlsplit(location).query))
    assert answer["state"] == "state-42"
    return answer["code"]


def _exchange(
    server, code: str, verifier: str | None, *, redirect_uri: str = REDIRECT_URI, **extra: Any
) -> requests.Response:
    form = {
        "grant_type": "authorization_code",
        "code": code,
        "redirect_uri": redirect_uri,
        "client_id": server.client_id,
        "code_verifier": verifier,  # None: requests leaves it out
    }
    return requests.post(server.token_url, data=form, timeout=10, **extra)


def _refresh(server, refresh_token: str, **extra: Any) -> requests.Response:
    form = {"grant_type": "refresh_token", "refresh_token": refresh_token}
    if "auth" not in extra:
        form["client_id"] = server.client_id  # a PKCE client has no secret to send
    return requests.post(server.token_url, data=form, timeout=10, **extra)


def _get(server, path: str, token: str | None, **params: Any) -> requests.Response:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return requests.get(f"{server.base_url}/{path}", headers=headers, params=params, timeout=10)


def _invalid_grant(description: str) -> dict[str, str]:
    return {"error": "invalid_grant", "error_description": description}


def test_pkce_login_end_to_end(server):
    verifier, challenge = _pkce_pair()
    code = _code_from(_authorize(server, challenge))

    exchanged = _exchange(server, code, verifier)
    assert exchanged.status_code == 200, exchanged.text
    tokens = exchanged.json()
    assert set(tokens) == {"access_token", "token_type", "expires_in", "refresh_token", "scope"}
    assert tokens["token_type"] == "Bearer" and tokens["expires_in"] == 3600
    assert tokens["scope"] == SCOPE

    me = _get(server, "me", tokens["access_token"])
    assert me.status_code == 200
    assert {key: me.json()[key] for key in ("id", "display_name", "type", "uri")} == {
        "id": "local-user",
        "display_name": "Local User",
        "type": "user",
        "uri": "spotify:user:local-user",
    }
    assert me.json()["href"] == f"{server.base_url}/users/local-user"
    page = _get(server, f"playlists/{OWN}/items", tokens["access_token"], limit=50)
    assert page.status_code == 200 and page.json()["total"] == 50

    reused = _exchange(server, code, verifier)
    assert reused.status_code == 400
    assert reused.json() == _invalid_grant("Invalid authorization code")


def test_pkce_wrong_verifier_is_invalid_grant_and_spends_the_code(server):
    verifier, challenge = _pkce_pair()
    code = _code_from(_authorize(server, challenge))
    wrong = _exchange(server, code, _pkce_pair()[0])
    assert wrong.status_code == 400
    assert wrong.json() == _invalid_grant("code_verifier was incorrect")
    assert _exchange(server, code, verifier).json() == _invalid_grant("Invalid authorization code")


def test_code_is_bound_to_its_redirect_uri_and_client(server):
    verifier, challenge = _pkce_pair()
    code = _code_from(_authorize(server, challenge))
    moved = _exchange(server, code, verifier, redirect_uri="http://127.0.0.1:9999/elsewhere")
    assert moved.json() == _invalid_grant("Invalid redirect URI")

    code = _code_from(_authorize(server, challenge))
    stranger = requests.post(
        server.token_url,
        data={
            "grant_type": "authorization_code",
            "code": code,
            "redirect_uri": REDIRECT_URI,
            "client_id": "someone-else",
            "code_verifier": verifier,
        },
        timeout=10,
    )
    assert stranger.json() == {"error": "invalid_client", "error_description": "Invalid client"}


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"client_id": "unknown-client"}, "INVALID_CLIENT: Invalid client"),
        ({"client_id": None}, "INVALID_CLIENT: Invalid client"),
        ({"redirect_uri": "https://example.com/callback"}, "INVALID_CLIENT: Invalid redirect URI"),
        ({"redirect_uri": "http://192.168.1.5:8888/cb"}, "INVALID_CLIENT: Invalid redirect URI"),
        ({"redirect_uri": None}, "INVALID_CLIENT: Invalid redirect URI"),
        ({"response_type": "token"}, "response_type must be code"),
        ({"code_challenge_method": "plain"}, "code_challenge_method must be S256"),
        ({"code_challenge_method": None}, "go together"),
        ({"code_challenge": "too-short"}, "Invalid code_challenge"),
        ({"scope": "playlist-read-private rule-the-world"}, "INVALID_SCOPE"),
    ],
)
def test_authorize_refuses_bad_requests_with_a_400_page(server, overrides, message):
    refused = _authorize(server, _pkce_pair()[1], **overrides)
    assert refused.status_code == 400
    assert refused.headers["Content-Type"].startswith("text/plain")
    assert message in refused.text


@pytest.mark.parametrize(
    "redirect_uri",
    ["http://127.0.0.1:43210/callback", "http://localhost:8080/cb", "http://[::1]:5000/auth?x=1"],
)
def test_authorize_accepts_loopback_redirects_on_any_port(server, redirect_uri):
    verifier, challenge = _pkce_pair()
    authorized = _authorize(server, challenge, redirect_uri=redirect_uri, state=None)
    assert authorized.status_code == 302
    location = authorized.headers["Location"]
    separator = "&" if "?" in redirect_uri else "?"
    assert location.startswith(f"{redirect_uri}{separator}code=") and "state=" not in location


def test_authorization_code_without_pkce_needs_the_client_secret(server):
    code = _code_from(_authorize(server, None))
    public = _exchange(server, code, None)
    assert public.json() == {"error": "invalid_client", "error_description": "Invalid client"}

    code = _code_from(_authorize(server, None))
    confidential = _exchange(server, code, None, auth=(server.client_id, server.client_secret))
    assert confidential.status_code == 200
    refresh_token = confidential.json()["refresh_token"]
    assert _refresh(server, refresh_token).json()["error"] == "invalid_client"
    by_secret = _refresh(server, refresh_token, auth=(server.client_id, server.client_secret))
    assert by_secret.status_code == 200


def test_authorize_logs_in_as_the_current_user(server):
    server.user_id = "other-user"
    verifier, challenge = _pkce_pair()
    tokens = _exchange(server, _code_from(_authorize(server, challenge)), verifier).json()
    assert _get(server, "me", tokens["access_token"]).json()["display_name"] == "Other User"
    assert _get(server, f"playlists/{SOMEONE_ELSES}/items", tokens["access_token"]).ok


def test_refresh_without_rotation_keeps_the_refresh_token(server):
    refresh_token = server.mint_refresh_token()
    first, second = _refresh(server, refresh_token), _refresh(server, refresh_token)
    for refreshed in (first, second):
        assert refreshed.status_code == 200
        body = refreshed.json()
        assert "refresh_token" not in body, "Spotify sends one only when it rotates"
        assert body["scope"] == SCOPE and body["token_type"] == "Bearer"
    assert first.json()["access_token"] != second.json()["access_token"]
    assert _get(server, f"playlists/{OWN}/items", first.json()["access_token"]).ok
    by_basic_auth = _refresh(server, refresh_token, auth=(server.client_id, server.client_secret))
    assert by_basic_auth.status_code == 200


def test_refresh_with_rotation_retires_the_old_refresh_token(simulator):
    with LocalSpotifyServer(simulator, now=NOW, rotate_refresh_tokens=True) as server:
        original = server.mint_refresh_token(scope="playlist-read-private")
        rotated = _refresh(server, original).json()
        assert rotated["refresh_token"] != original and rotated["scope"] == "playlist-read-private"
        assert _refresh(server, original).json() == _invalid_grant("Invalid refresh token")
        again = _refresh(server, rotated["refresh_token"]).json()
        assert again["refresh_token"] not in (original, rotated["refresh_token"])
        assert _get(server, "me", again["access_token"]).json()["id"] == "local-user"


def test_expired_access_tokens_answer_401_until_refreshed(server):
    refresh_token = server.mint_refresh_token()
    access_token = _refresh(server, refresh_token).json()["access_token"]
    app_token = server.issue_token()
    assert _get(server, f"playlists/{OWN}/items", access_token).ok

    server.expire_access_tokens()
    for token in (access_token, app_token):
        expired = _get(server, f"playlists/{OWN}/items", token)
        assert expired.status_code == 401
        assert expired.json() == {"error": {"status": 401, "message": "The access token expired"}}
        assert "invalid_token" in expired.headers["WWW-Authenticate"]

    fresh = _refresh(server, refresh_token).json()["access_token"]
    assert _get(server, f"playlists/{OWN}/items", fresh).ok


def test_revoked_refresh_token_is_invalid_grant(server):
    refresh_token = server.mint_refresh_token()
    access_token = _refresh(server, refresh_token).json()["access_token"]
    server.revoke_refresh_tokens()
    revoked = _refresh(server, refresh_token)
    assert revoked.status_code == 400
    assert revoked.json() == _invalid_grant("Invalid refresh token")
    assert _get(server, "me", access_token).ok, "access tokens live until they expire"
    assert _refresh(server, "AQmade-up").json() == _invalid_grant("Invalid refresh token")


def test_refresh_token_belongs_to_its_client(server):
    refresh_token = server.mint_refresh_token()
    stranger = requests.post(
        server.token_url,
        data={"grant_type": "refresh_token", "refresh_token": refresh_token, "client_id": "x"},
        timeout=10,
    )
    assert stranger.json()["error"] == "invalid_client"
    wrong_secret = _refresh(server, refresh_token, auth=(server.client_id, "not-the-secret"))
    assert wrong_secret.json()["error"] == "invalid_client"


def test_me_needs_a_user_token(api, server):
    app_only = api.get(f"{server.base_url}/me", timeout=10)
    assert app_only.status_code == 401
    assert app_only.json() == {
        "error": {"status": 401, "message": "Valid user authentication required"}
    }
    user = _get(server, "me", server.issue_token(user_id="other-user"))
    assert user.json()["id"] == "other-user"


def test_token_endpoint_faults_reach_refreshes_too(server):
    refresh_token = server.mint_refresh_token()
    server.fail_next(503, times=2, path_contains="/api/token")
    assert [_refresh(server, refresh_token).status_code for _ in range(3)] == [503, 503, 200]


def test_spotipy_pkce_logs_in_and_refreshes(server):
    import spotipy
    from spotipy.cache_handler import MemoryCacheHandler
    from spotipy.oauth2 import SpotifyPKCE

    cache = MemoryCacheHandler()
    auth = SpotifyPKCE(
        client_id=server.client_id,
        redirect_uri=REDIRECT_URI,
        scope=SCOPE,
        cache_handler=cache,
        open_browser=False,
    )
    auth.OAUTH_AUTHORIZE_URL = server.authorize_url
    auth.OAUTH_TOKEN_URL = server.token_url
    redirected = requests.get(auth.get_authorize_url(), allow_redirects=False, timeout=10)
    auth.get_access_token(auth.parse_response_code(redirected.headers["Location"]))

    client = spotipy.Spotify(auth_manager=auth, retries=0)
    client.prefix = f"{server.base_url}/"
    assert client.current_user()["id"] == "local-user"
    server.expire_access_tokens()
    cache.token_info["expires_at"] = 0  # spotipy refreshes by its own clock
    assert client.playlist_items(OWN, limit=50)["total"] == 50


# -- who may read what (the 2024 and 2026 rules) -------------------------------------------------


@pytest.fixture
def development_mode(simulator):
    with LocalSpotifyServer(simulator, now=NOW, extended_quota=False) as running:
        yield running


@pytest.mark.parametrize("path", ["{id}", "{id}/items", "{id}/tracks", "{id}?fields=id"])
@pytest.mark.parametrize("user_id", [None, "local-user"])
def test_spotify_owned_playlists_are_404_in_development_mode(development_mode, path, user_id):
    token = development_mode.issue_token(user_id=user_id)
    for playlist_id in (TOP_50, TOP_SONGS):
        response = _get(development_mode, "playlists/" + path.format(id=playlist_id), token)
        assert response.status_code == 404
        assert response.json() == {"error": {"status": 404, "message": "Resource not found"}}


def test_development_mode_still_serves_the_users_own_playlists(development_mode):
    token = development_mode.issue_token(user_id="local-user")
    assert _get(development_mode, f"playlists/{OWN}/items", token).status_code == 200


@pytest.mark.parametrize(
    ("playlist_id", "user_id", "status"),
    [
        (OWN, "local-user", 200),  # owner
        (OWN, "other-user", 403),
        (OWN, None, 403),  # an app token reads no user's items, extended quota or not
        (COLLABORATIVE, "local-user", 200),  # collaborator
        (COLLABORATIVE, "other-user", 200),  # owner
        (COLLABORATIVE, None, 403),
        (SOMEONE_ELSES, "local-user", 403),
        (SOMEONE_ELSES, "other-user", 200),
        (TOP_50, None, 200),  # Spotify-owned, extended quota: anyone
        (TOP_50, "local-user", 200),
    ],
)
@pytest.mark.parametrize("endpoint", ["items", "tracks"])
def test_items_answer_only_to_the_owner_or_a_collaborator(
    server, playlist_id, user_id, status, endpoint
):
    token = server.issue_token(user_id=user_id)
    response = _get(server, f"playlists/{playlist_id}/{endpoint}", token)
    assert response.status_code == status
    if status == 403:
        assert response.json() == {"error": {"status": 403, "message": "Forbidden"}}
    else:
        assert response.json()["total"] == 50


def test_user_playlist_metadata_is_readable_without_its_items(server, simulator):
    app_view = _get(server, f"playlists/{OWN}", server.issue_token())
    assert app_view.status_code == 200
    playlist = app_view.json()
    assert "items" not in playlist and "tracks" not in playlist
    assert playlist["name"] == "My Daily Top 50" and playlist["collaborative"] is False
    assert playlist["owner"]["id"] == "local-user"
    assert playlist["owner"]["display_name"] == "Local User"
    assert playlist["snapshot_id"] == simulator.snapshot_id(OWN, TODAY)
    selected = _get(server, f"playlists/{OWN}", server.issue_token(), fields="snapshot_id,items")
    assert selected.json() == {"snapshot_id": playlist["snapshot_id"]}

    owner_view = _get(server, f"playlists/{OWN}", server.issue_token(user_id="local-user")).json()
    assert owner_view["items"]["total"] == 50 and owner_view["tracks"]["total"] == 50
    assert list(owner_view).index("items") == list(owner_view).index("type") - 2

    team = _get(server, f"playlists/{COLLABORATIVE}", server.issue_token()).json()
    assert team["collaborative"] is True and team["public"] is False
    assert team["owner"]["id"] == "other-user" and "items" not in team


def test_simulator_knows_owners_and_collaborators(simulator):
    assert simulator.owner(TOP_50) == "spotify" and simulator.collaborators(TOP_50) == ()
    assert simulator.owner(OWN) == "local-user"
    assert simulator.owner(COLLABORATIVE) == "other-user"
    assert simulator.collaborators(COLLABORATIVE) == ("local-user",)
    assert simulator.collaborators(SOMEONE_ELSES) == ()
    assert simulator.is_spotify_owned(TOP_SONGS) and not simulator.is_spotify_owned(OWN)
    assert simulator.is_owner_or_collaborator(COLLABORATIVE, "local-user")
    assert not simulator.is_owner_or_collaborator(SOMEONE_ELSES, "local-user")
    assert not simulator.is_owner_or_collaborator(OWN, None)
    with pytest.raises(KeyError):
        simulator.owner("0000000000000000000000")

    own = simulator.chart_track_ids(OWN, TODAY)
    assert len(own) == 50 and own != simulator.chart_track_ids(TOP_50, TODAY)
    assert ChartSimulator().chart_track_ids(OWN, TODAY) == own
    assert {entry["added_by"]["id"] for entry in simulator.chart(OWN, TODAY)} == {"local-user"}
    team_editors = {entry["added_by"]["id"] for entry in simulator.chart(COLLABORATIVE, TODAY)}
    assert team_editors == {"local-user", "other-user"}
    assert ChartSimulator(user_playlists={}).playlists.keys() == DEFAULT_PLAYLISTS.keys()
    assert {TOP_50, TOP_SONGS} <= DEFAULT_PLAYLISTS.keys()
    with pytest.raises(ValueError, match="both"):
        ChartSimulator(playlists={OWN: "clash"})


# -- slow replies and quota ------------------------------------------------------------------------


def test_quota_exceeded_is_a_429_that_says_so(api, server):
    url = f"{server.base_url}/playlists/{TOP_50}/items"
    server.quota_exceeded()
    exhausted = api.get(url, timeout=10)
    assert exhausted.status_code == 429
    assert exhausted.json() == {"error": {"status": 429, "message": "QUOTA_EXCEEDED"}}
    assert exhausted.headers["Retry-After"] == "86400"
    assert api.get(url, timeout=10).status_code == 200

    server.quota_exceeded(times=2, retry_after=None)
    twice = [api.get(url, timeout=10) for _ in range(3)]
    assert [response.status_code for response in twice] == [429, 429, 200]
    assert "Retry-After" not in twice[0].headers


def test_delay_next_slows_matching_replies_only(api, server):
    url = f"{server.base_url}/playlists/{TOP_50}?fields=id"
    server.delay_next(0.3, path_contains="fields=id")
    started = time.monotonic()
    with ThreadPoolExecutor(1) as pool:
        slow = pool.submit(api.get, url, timeout=10)
        time.sleep(0.05)  # let the slow request reach the server first
        quick_started = time.monotonic()
        quick = requests.get(
            f"{server.base_url}/playlists/{TOP_50}?fields=name",
            headers=api.headers,
            timeout=10,
        )
        quick_took = time.monotonic() - quick_started
        assert slow.result().status_code == 200
    assert time.monotonic() - started >= 0.3
    assert quick.status_code == 200 and quick_took < 0.2, "other requests are not held up"
    started = time.monotonic()
    assert api.get(url, timeout=10).status_code == 200
    assert time.monotonic() - started < 0.2, "the delay was used up"


def test_delay_next_reaches_the_token_endpoint(server):
    server.delay_next(0.25, path_contains="/api/token")
    started = time.monotonic()
    refreshed = _refresh(server, server.mint_refresh_token())
    assert refreshed.status_code == 200 and time.monotonic() - started >= 0.25


def test_stop_does_not_wait_for_delayed_replies(simulator):
    server = LocalSpotifyServer(simulator, now=NOW).start()
    server.delay_next(30, times=2)
    url = f"{server.base_url}/playlists/{TOP_50}"
    with pytest.raises(requests.ReadTimeout):
        requests.get(url, headers={"Authorization": f"Bearer {server.issue_token()}"}, timeout=0.2)
    started = time.monotonic()
    server.stop()
    assert time.monotonic() - started < 2


# -- entry shapes ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("entry_fields", "keys"),
    [("item", {"item"}), ("track", {"track"}), ("both", {"item", "track"})],
)
def test_entry_fields_choose_item_track_or_both(simulator, entry_fields, keys):
    with LocalSpotifyServer(simulator, now=NOW, entry_fields=entry_fields) as server:
        token = server.issue_token()
        pages = [
            _get(server, f"playlists/{TOP_50}/items", token).json(),
            _get(server, f"playlists/{TOP_50}/tracks", token).json(),
            _get(server, f"playlists/{TOP_50}", token).json()["items"],
            _get(server, f"playlists/{TOP_50}", token).json()["tracks"],
        ]
        for page in pages:
            for entry in page["items"]:
                assert {"item", "track"} & set(entry) == keys
                assert {"added_at", "added_by", "is_local"} <= set(entry)
        ids = [next(entry[key]["id"] for key in keys) for entry in pages[2]["items"]]
        assert ids == simulator.chart_track_ids(TOP_50, TODAY)


def test_entry_fields_can_change_while_running_and_refuse_unknown_shapes(api, server, simulator):
    server.entry_fields = "item"
    page = api.get(f"{server.base_url}/playlists/{TOP_50}/items?limit=1", timeout=10).json()
    assert "track" not in page["items"][0]
    with pytest.raises(ValueError, match="entry_fields"):
        server.entry_fields = "tracks"
    with pytest.raises(ValueError, match="entry_fields"):
        LocalSpotifyServer(simulator, entry_fields="neither")


# -- the simulator's charts ---------------------------------------------------------------------


def test_charts_are_deterministic_per_seed_day_and_playlist(simulator):
    twin = ChartSimulator(seed=2026)
    assert twin.chart(TOP_50, TODAY) == simulator.chart(TOP_50, TODAY)
    assert twin.snapshot_id(TOP_50, TODAY) == simulator.snapshot_id(TOP_50, TODAY)

    today = simulator.chart_track_ids(TOP_50, TODAY)
    assert len(today) == 50 == len(set(today))
    assert simulator.chart_track_ids(TOP_50, TODAY + timedelta(days=1)) != today
    assert simulator.chart_track_ids(TOP_SONGS, TODAY) != today
    assert ChartSimulator(seed=7).chart_track_ids(TOP_50, TODAY) != today
    assert simulator.snapshot_id(TOP_50, TODAY + timedelta(days=1)) != simulator.snapshot_id(
        TOP_50, TODAY
    )


def test_thirty_days_of_churn(simulator):
    days = [TODAY - timedelta(days=29 - offset) for offset in range(30)]
    charts = [simulator.chart_track_ids(TOP_50, day) for day in days]
    new_entries = climbers = fallers = drop_outs = 0
    re_entries: set[str] = set()
    seen = set(charts[0])
    dropped: set[str] = set()
    for yesterday, today in zip(charts, charts[1:], strict=False):
        rank_yesterday = {track: rank for rank, track in enumerate(yesterday)}
        for rank, track in enumerate(today):
            if track in rank_yesterday:
                climbers += rank < rank_yesterday[track]
                fallers += rank > rank_yesterday[track]
            elif track in dropped:
                re_entries.add(track)
            elif track not in seen:
                new_entries += 1
        gone = set(yesterday) - set(today)
        drop_outs += len(gone)
        dropped |= gone
        seen |= set(today)
    assert new_entries > 0 and climbers > 0 and fallers > 0 and drop_outs > 0
    assert re_entries, "some track should leave the top 50 and come back within 30 days"
    # A chart, not a lottery: most of the chart carries over from one day to the next.
    assert drop_outs < 29 * 10


def test_added_at_is_the_start_of_the_current_run(simulator):
    yesterday = set(simulator.chart_track_ids(TOP_50, TODAY - timedelta(days=1)))
    for entry in simulator.chart(TOP_50, TODAY):
        added = datetime.fromisoformat(entry["added_at"].replace("Z", "+00:00"))
        assert entry["added_at"].endswith("T00:00:00Z") and added.date() <= TODAY
        if entry["item"]["id"] not in yesterday:
            assert added.date() == TODAY
        else:
            assert added.date() < TODAY


def test_chart_entries_carry_the_awkward_metadata(simulator):
    entries = simulator.chart(TOP_50, TODAY)
    tracks = [entry["item"] for entry in entries]
    names = [name for entry in entries for name in _names(entry)]

    assert any(2 <= len(track["artists"]) <= 4 for track in tracks)
    assert any("feat." in track["name"] for track in tracks)
    precisions = {track["album"]["release_date_precision"] for track in tracks}
    assert precisions == {"year", "month", "day"}
    for track in tracks:
        precision = track["album"]["release_date_precision"]
        pattern = {"year": r"\d{4}", "month": r"\d{4}-\d{2}", "day": r"\d{4}-\d{2}-\d{2}"}
        assert re.fullmatch(pattern[precision], track["album"]["release_date"])
    assert {track["album"]["album_type"] for track in tracks} <= {"album", "single", "compilation"}
    assert {track["explicit"] for track in tracks} == {True, False}
    for character in (",", '"', "'", "&"):
        assert any(character in name for name in names), character
    assert any(NON_LATIN.search(name) for name in names)


def test_chart_entries_look_like_the_2026_api(simulator):
    for rank, entry in enumerate(simulator.chart(TOP_50, TODAY), start=1):
        track = entry["item"]
        assert entry["track"] == track, "the deprecated 'track' mirrors 'item'"
        assert entry["is_local"] is False and entry["added_by"]["id"] == "spotify"
        assert "popularity" not in track
        assert SPOTIFY_ID.match(track["id"]) and SPOTIFY_ID.match(track["album"]["id"])
        assert track["uri"] == f"spotify:track:{track['id']}"
        album = track["album"]
        assert album["external_urls"]["spotify"] == f"https://open.spotify.com/album/{album['id']}"
        assert album["href"] == f"https://api.spotify.com/v1/albums/{album['id']}"
        for artist in track["artists"]:
            assert SPOTIFY_ID.match(artist["id"])
            assert artist["external_urls"]["spotify"].endswith(f"/artist/{artist['id']}")
        assert 60_000 < track["duration_ms"] < 600_000, rank
        isrc = track["external_ids"].get("isrc")
        assert isrc is None or re.fullmatch(r"[A-Z]{2}[A-Z0-9]{3}\d{7}", isrc), isrc


# -- the official OpenAPI spec ------------------------------------------------------------------


@pytest.fixture(scope="module")
def openapi():
    if not SPEC_PATH.is_file():
        pytest.skip(
            "../shared/data/spotify-web-api-openapi.yml not found: "
            "shared data is only present beside the repo in CI/dev"
        )
    return _OpenApi(SPEC_PATH)


class _OpenApi:
    """Validators for the spec's response schemas, with its ``$ref``s resolving in place."""

    URI = "urn:spotify-web-api-openapi"

    def __init__(self, path: Path) -> None:
        import yaml
        from referencing import Registry
        from referencing.jsonschema import DRAFT4

        loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
        self.spec = _with_explicit_discriminator_mappings(
            yaml.load(path.read_text(encoding="utf-8"), Loader=loader)
        )
        self.registry = Registry().with_resource(self.URI, DRAFT4.create_resource(self.spec))

    def response_validator(self, path: str, status: str, *, fallback: str | None = None):
        """The validator for ``GET path``'s ``status`` response (or a components response)."""
        from openapi_schema_validator import OAS30Validator

        responses = self.spec["paths"][path]["get"]["responses"]
        if status in responses:
            pointer = responses[status]["$ref"].removeprefix("#")
        else:
            assert fallback is not None, f"GET {path} documents no {status} response"
            pointer = f"/components/responses/{fallback}"
        schema_pointer = f"{pointer}/content/application~1json/schema"
        return OAS30Validator(
            {"$ref": f"{self.URI}#{schema_pointer}"},
            registry=self.registry,
            format_checker=OAS30Validator.FORMAT_CHECKER,
        )


def _with_explicit_discriminator_mappings(spec: dict[str, Any]) -> dict[str, Any]:
    """Map discriminator values to schemas where the spec leaves it implicit.

    OpenAPI's implicit mapping takes the value as a schema name, but Spotify's ``type`` is
    "track" or "episode" while the schemas are TrackObject and EpisodeObject: without an
    explicit mapping no real response validates.
    """
    schemas = spec["components"]["schemas"]

    def type_values(schema: dict[str, Any]) -> list[str]:
        if "$ref" in schema:
            return type_values(schemas[schema["$ref"].rsplit("/", 1)[-1]])
        values = list(schema.get("properties", {}).get("type", {}).get("enum", []))
        for part in schema.get("allOf", []):
            values += type_values(part)
        return values

    def visit(node: Any) -> None:
        if isinstance(node, dict):
            discriminator = node.get("discriminator")
            if isinstance(discriminator, dict) and "mapping" not in discriminator:
                discriminator["mapping"] = {
                    value: option["$ref"]
                    for option in node.get("oneOf", node.get("anyOf", []))
                    for value in type_values(option)
                }
            for child in node.values():
                visit(child)
        elif isinstance(node, list):
            for child in node:
                visit(child)

    visit(spec)
    return spec


def _errors(validator, instance) -> list[str]:
    return [
        f"{'/'.join(map(str, error.absolute_path))}: {error.message[:200]}"
        for error in validator.iter_errors(instance)
    ]


@pytest.mark.shared_data
def test_responses_validate_against_the_official_openapi_spec(openapi, api, server):
    playlist_url = f"{server.base_url}/playlists/{TOP_50}"
    playlist_validator = openapi.response_validator("/playlists/{playlist_id}", "200")
    playlist = api.get(playlist_url, timeout=10).json()
    assert _errors(playlist_validator, playlist) == []

    for endpoint in ("items", "tracks"):
        page_validator = openapi.response_validator(f"/playlists/{{playlist_id}}/{endpoint}", "200")
        for page in _all_items(api, f"{playlist_url}/{endpoint}", limit=20):
            assert _errors(page_validator, page) == [], endpoint

    unauthorized = requests.get(playlist_url, timeout=10)
    validator = openapi.response_validator("/playlists/{playlist_id}", "401")
    assert unauthorized.status_code == 401 and _errors(validator, unauthorized.json()) == []

    missing = api.get(f"{server.base_url}/playlists/0000000000000000000000", timeout=10)
    validator = openapi.response_validator("/playlists/{playlist_id}", "404", fallback="NotFound")
    assert missing.status_code == 404 and _errors(validator, missing.json()) == []

    bad_limit = api.get(f"{playlist_url}/items?limit=51", timeout=10)
    validator = openapi.response_validator(
        "/playlists/{playlist_id}/items", "400", fallback="BadRequest"
    )
    assert bad_limit.status_code == 400 and _errors(validator, bad_limit.json()) == []

    server.fail_next(429, headers={"Retry-After": "1"})
    limited = api.get(playlist_url, timeout=10)
    validator = openapi.response_validator("/playlists/{playlist_id}", "429")
    assert limited.status_code == 429 and _errors(validator, limited.json()) == []


@pytest.mark.shared_data
def test_openapi_validation_catches_a_broken_response(openapi, api, server):
    validator = openapi.response_validator("/playlists/{playlist_id}/items", "200")
    page = api.get(f"{server.base_url}/playlists/{TOP_50}/items", timeout=10).json()
    assert _errors(validator, page) == []

    wrong_type = copy.deepcopy(page)
    broken_track = wrong_type["items"][3]["item"]
    broken_track["duration_ms"] = str(broken_track["duration_ms"])
    assert any("items/3/item" in error for error in _errors(validator, wrong_type))

    missing_total = copy.deepcopy(page)
    del missing_total["total"]
    assert any("'total' is a required property" in e for e in _errors(validator, missing_total))

    bad_precision = copy.deepcopy(page)
    bad_precision["items"][0]["track"]["album"]["release_date_precision"] = "week"
    assert _errors(validator, bad_precision)

    bad_timestamp = copy.deepcopy(page)
    bad_timestamp["items"][0]["added_at"] = "yesterday"
    assert _errors(validator, bad_timestamp)


@pytest.mark.shared_data
def test_2026_responses_validate_against_the_official_openapi_spec(openapi, server):
    user_token, app_token = server.issue_token(user_id="local-user"), server.issue_token()

    me = _get(server, "me", user_token)
    assert me.status_code == 200
    assert _errors(openapi.response_validator("/me", "200"), me.json()) == []
    unauthorized = openapi.response_validator("/me", "401")
    for token in (app_token, None, "made-up"):
        refused = _get(server, "me", token)
        assert refused.status_code == 401 and _errors(unauthorized, refused.json()) == [], token

    playlist_validator = openapi.response_validator("/playlists/{playlist_id}", "200")
    for playlist_id in (OWN, COLLABORATIVE, SOMEONE_ELSES):
        for token in (user_token, app_token):
            playlist = _get(server, f"playlists/{playlist_id}", token).json()
            assert _errors(playlist_validator, playlist) == [], (playlist_id, token)

    for endpoint in ("items", "tracks"):
        path = f"/playlists/{{playlist_id}}/{endpoint}"
        forbidden = _get(server, f"playlists/{SOMEONE_ELSES}/{endpoint}", user_token)
        validator = openapi.response_validator(path, "403")
        assert forbidden.status_code == 403 and _errors(validator, forbidden.json()) == []

        page_validator = openapi.response_validator(path, "200")
        for entry_fields in ("item", "track", "both"):
            server.entry_fields = entry_fields
            page = _get(server, f"playlists/{COLLABORATIVE}/{endpoint}", user_token, limit=50)
            assert _errors(page_validator, page.json()) == [], (endpoint, entry_fields)

        server.quota_exceeded()
        exhausted = _get(server, f"playlists/{OWN}/{endpoint}", user_token)
        validator = openapi.response_validator(path, "429")
        assert exhausted.status_code == 429 and _errors(validator, exhausted.json()) == []

    server.extended_quota = False
    hidden = _get(server, f"playlists/{TOP_50}", app_token)
    validator = openapi.response_validator("/playlists/{playlist_id}", "404", fallback="NotFound")
    assert hidden.status_code == 404 and _errors(validator, hidden.json()) == []

    server.expire_access_tokens()
    expired = _get(server, f"playlists/{OWN}/items", user_token)
    validator = openapi.response_validator("/playlists/{playlist_id}/items", "401")
    assert expired.status_code == 401 and _errors(validator, expired.json()) == []


def test_a_country_chart_favours_its_own_market_and_the_global_ones_none(simulator):
    """The ISRC's first two letters name the country of the track's lead artist."""
    assert CHART_MARKETS

    def entries_from(market: str, playlist_id: str) -> int:
        days = [date(2026, 10, 1) + timedelta(days=n) for n in range(30)]
        return sum(
            entry["item"]["external_ids"].get("isrc", "").startswith(market)
            for day in days
            for entry in simulator.chart(playlist_id, day)
        )

    for country_chart, market in CHART_MARKETS.items():
        at_home = entries_from(market, country_chart)
        assert at_home > 1.5 * entries_from(market, TOP_SONGS), market
        assert at_home > 1.5 * entries_from(market, TOP_50), market
