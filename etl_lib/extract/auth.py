"""`spotify-etl auth login` and `auth status`: user authorization for playlist items.

Since February/March 2026 playlist items are served only to the playlist's owner or a
collaborator, which takes a user token. ``login`` runs the Authorization Code flow with PKCE
on a loopback redirect (``http://127.0.0.1:<port>/callback``, as Spotify requires), stores
the refresh token (owner-only file, or the SSM parameter), and extraction then refreshes
access tokens from it on every run.
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from http.server import BaseHTTPRequestHandler, HTTPServer
from urllib.parse import parse_qs, urlsplit

import requests
import spotipy
from spotipy.cache_handler import MemoryCacheHandler
from spotipy.oauth2 import SpotifyOauthError, SpotifyPKCE

from etl_lib import bounded_http
from etl_lib.config import Settings
from etl_lib.errors import ConfigError, SpotifyAuthError
from etl_lib.extract import credentials as credential_sources
from etl_lib.extract import spotify
from etl_lib.extract.credentials import Credentials


@dataclass(frozen=True)
class AuthStatus:
    mode: str
    origin: str
    client_id: str | None
    has_refresh_token: bool
    identity: str
    scope: str | None


def _redirect_address(redirect_uri: str) -> tuple[str, int]:
    parts = urlsplit(redirect_uri)
    if parts.scheme != "http" or parts.hostname not in ("127.0.0.1", "localhost") or not parts.port:
        raise ConfigError(
            f"redirect URI {redirect_uri!r} must be http://127.0.0.1:<port>/<path> (Spotify "
            "accepts loopback redirects over plain HTTP only on an IP literal); register the "
            "same URI in the app's settings on developer.spotify.com"
        )
    return parts.hostname, parts.port


def _code_from_redirect(url: str, expected_state: str) -> str:
    query = parse_qs(urlsplit(url).query)
    if "error" in query:
        raise SpotifyAuthError(f"authorization was refused: {query['error'][0]}")
    if query.get("state", [None])[0] != expected_state:
        raise SpotifyAuthError("the redirect's state does not match this login: start again")
    if "code" not in query:
        raise SpotifyAuthError(f"no authorization code in {url!r}: paste the full redirect URL")
    return query["code"][0]


def _wait_for_redirect(
    redirect_uri: str, show_url: Callable[[], None], timeout_seconds: float
) -> str:
    """Listen on the loopback redirect, show the URL, return where the browser was sent."""
    host, port = _redirect_address(redirect_uri)
    received: list[str] = []

    class Callback(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 - http.server's naming
            received.append(f"http://{host}:{port}{self.path}")
            body = b"Authorization received: you can close this tab and return to the terminal."
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format, *args):
            pass

    try:
        server = HTTPServer((host, port), Callback)
    except OSError as exc:
        raise ConfigError(
            f"cannot listen on {host}:{port} for the redirect ({exc.strerror}): free the port "
            "or use --paste"
        ) from exc
    deadline = time.monotonic() + timeout_seconds
    server.timeout = 0.5
    with server:
        show_url()
        while not received and time.monotonic() < deadline:
            server.handle_request()
    if not received:
        raise SpotifyAuthError(
            f"no redirect reached {redirect_uri} within {timeout_seconds:g} s: open the URL "
            "in a browser, or use --paste on a machine without one"
        )
    return received[0]


def login(
    settings: Settings,
    *,
    show_url: Callable[[str], None],
    paste: Callable[[], str] | None = None,
    timeout_seconds: float = 300,
) -> Credentials:
    """Authorize a user with PKCE and store the refresh token; returns what was stored.

    ``show_url`` receives the authorization URL (printed for headless machines). With
    ``paste`` the redirect URL is read from it instead of a loopback listener.
    """
    creds = credential_sources.loaded(settings).credentials
    if not creds.client_id:
        raise ConfigError(
            "SPOTIFY_CLIENT_ID is not set: create an app on developer.spotify.com, add "
            f"{settings.redirect_uri} as its redirect URI, and export its client id"
        )
    _redirect_address(settings.redirect_uri)
    token_cache = MemoryCacheHandler()
    auth = SpotifyPKCE(
        client_id=creds.client_id,
        redirect_uri=settings.redirect_uri,
        scope=settings.scope,
        cache_handler=token_cache,
        requests_timeout=(settings.connect_timeout_seconds, settings.read_timeout_seconds),
        requests_session=spotify.token_session(settings),
        open_browser=False,
    )
    auth.OAUTH_AUTHORIZE_URL = settings.authorize_url
    auth.OAUTH_TOKEN_URL = settings.token_url
    state = secrets.token_urlsafe(16)
    url = auth.get_authorize_url(state=state)
    if paste is not None:
        show_url(url)
        redirected = paste()
    else:
        redirected = _wait_for_redirect(
            settings.redirect_uri, lambda: show_url(url), timeout_seconds
        )
    code = _code_from_redirect(redirected, state)
    try:
        auth.get_access_token(code=code, check_cache=False)
    except SpotifyOauthError as exc:
        raise SpotifyAuthError(
            f"the token endpoint refused the authorization code ({exc.error_description or exc})"
            ": start `spotify-etl auth login` again"
        ) from exc
    except (spotify.InvalidTokenReply, bounded_http.Redirected) as exc:
        raise SpotifyAuthError(
            f"the token endpoint {settings.token_url} answered the authorization code with "
            f"{_unusable_reply(exc)}: check SPOTIFY_TOKEN_URL, then start `spotify-etl auth "
            "login` again"
        ) from exc
    except requests.RequestException as exc:  # unreachable, 5xx, too slow
        raise SpotifyAuthError(
            f"the token endpoint {settings.token_url} did not answer the authorization code "
            f"usably ({type(exc).__name__}): check SPOTIFY_TOKEN_URL, then start "
            "`spotify-etl auth login` again"
        ) from exc
    token = token_cache.get_cached_token()
    if not token.get("refresh_token"):  # the code grant must give one: runs refresh from it
        raise SpotifyAuthError(
            f"the token endpoint {settings.token_url} answered the authorization code without "
            "a refresh_token: check SPOTIFY_TOKEN_URL, then start `spotify-etl auth login` again"
        )
    user = _current_user(settings, token["access_token"])
    stored = replace(
        creds,
        refresh_token=token["refresh_token"],
        scope=token.get("scope") or settings.scope,
        user_id=user.get("id"),
    )
    if settings.credentials_parameter:
        name = settings.credentials_parameter
        credential_sources.write_parameter(name, stored, region=settings.aws_region)
        return replace(stored, origin=f"SSM parameter {name}", refresh_token_source="parameter")
    path = credential_sources.write_file(settings.credentials_file, stored)
    return replace(stored, origin=f"file {path}", refresh_token_source="file")


def _unusable_reply(exc: spotify.InvalidTokenReply | bounded_http.Redirected) -> str:
    if isinstance(exc, spotify.InvalidTokenReply):
        return f"{exc.status} and {exc.problem}"
    target = f" to {exc.location_origin!r}" if exc.location_origin else ""
    return f"a redirect ({exc.status}{target}), which is not followed"


def _current_user(settings: Settings, access_token: str) -> dict:
    client = spotipy.Spotify(
        auth=access_token,
        requests_timeout=(settings.connect_timeout_seconds, settings.read_timeout_seconds),
        requests_session=spotify.api_session(settings),
    )
    client.prefix = settings.api_base_url.rstrip("/") + "/"
    try:
        user = client.me()
    except spotipy.SpotifyException as exc:
        raise SpotifyAuthError(
            f"the API did not accept the new user token ({exc.http_status}): try again"
        ) from exc
    except requests.RequestException as exc:
        raise SpotifyAuthError(
            f"the API at {settings.api_base_url} did not answer who the new user is "
            f"({type(exc).__name__}): check SPOTIFY_API_BASE_URL, then try again"
        ) from exc
    if not isinstance(user, dict):
        raise SpotifyAuthError(
            f"the API at {settings.api_base_url} answered who the new user is with a body that "
            "is not a JSON object: check SPOTIFY_API_BASE_URL, then try again"
        )
    return user


def status(settings: Settings) -> AuthStatus:
    """Which identity and scopes the current settings would use; checks them against the API."""
    settings = credential_sources.loaded(settings)
    creds = settings.credentials
    mode = "user" if settings.uses_user_token else "client-credentials"
    reader = spotify.make_reader(settings)
    if mode == "user":
        user = reader.me()
        identity = f"user {user.get('id')} ({user.get('display_name') or 'no display name'})"
        token = reader.client.auth_manager.cache_handler.get_cached_token()
        scope = token.get("scope") if token else creds.scope
    else:
        reader.call("a client-credentials token", reader.client.auth_manager.get_access_token)
        identity = "the app itself (client credentials): no user, no private playlists"
        scope = None
    return AuthStatus(
        mode=mode,
        origin=creds.origin,
        client_id=creds.client_id,
        has_refresh_token=bool(creds.refresh_token),
        identity=identity,
        scope=scope,
    )
