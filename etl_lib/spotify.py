"""Extract: read a playlist and all its items from the Spotify Web API, through spotipy.

The API base URL, token URL and authorize URL are settings, so the same code talks to
Spotify or to the local server in ``etl_lib.local_spotify``.

Every call goes through one policy, because spotipy's own would hang or mislead: explicit
connect/read timeouts; 5xx and connection errors retried a bounded number of times with
jittered backoff; a 429 waited out only while its ``Retry-After`` fits the run's budget
(else ``RateLimited``), ``QUOTA_EXCEEDED`` stopped at once (``QuotaExceeded``); a 401
answered by one token refresh, then ``SpotifyAuthError``. HTTP failures become the
exceptions in ``etl_lib.errors`` with messages that explain Spotify's 2026 rules.
"""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import requests
import spotipy
from spotipy.cache_handler import CacheHandler, MemoryCacheHandler
from spotipy.oauth2 import SpotifyClientCredentials, SpotifyOauthError, SpotifyPKCE

from etl_lib import credentials as credential_sources
from etl_lib.config import Settings
from etl_lib.errors import (
    ConfigError,
    PlaylistForbidden,
    PlaylistNotFound,
    QuotaExceeded,
    RateLimited,
    SpotifyAuthError,
    SpotifyError,
    SpotifyUnavailable,
)

PAGE_SIZE = 50  # the API's maximum page size for playlist items
PLAYLIST_FIELDS = "id,name,snapshot_id,followers(total),owner(id)"
SPOTIFY_OWNER_ID = "spotify"
_ALTERNATIVES = (
    "use a playlist you own or collaborate on (`spotify-etl auth login`), an app with "
    "extended quota, or the public archive (`--source archive`)"
)

# spotipy logs every HTTP error at ERROR level; this module reports them as exceptions instead.
logging.getLogger("spotipy").setLevel(logging.CRITICAL)


class _StoredTokenCache(CacheHandler):
    """spotipy's token cache, seeded with the stored refresh token.

    spotipy drops a cached token whose ``scope`` is missing and then starts an interactive
    login, which would block a scheduled run; the scope is therefore always kept. A refresh
    token that Spotify rotates is handed to ``on_rotation`` so it can be stored again.
    """

    def __init__(self, refresh_token: str, scope: str, on_rotation: Callable[[str], None]):
        self._token_info = {
            "access_token": None,
            "refresh_token": refresh_token,
            "scope": scope,
            "expires_at": 0,
        }
        self._on_rotation = on_rotation

    def get_cached_token(self):
        return self._token_info

    def save_token_to_cache(self, token_info):
        previous = self._token_info["refresh_token"]
        token_info.setdefault("scope", self._token_info["scope"])
        self._token_info = token_info
        if token_info.get("refresh_token") and token_info["refresh_token"] != previous:
            self._on_rotation(token_info["refresh_token"])


class _PKCE(SpotifyPKCE):
    """PKCE auth that never falls back to an interactive prompt in a scheduled run."""

    def get_authorization_code(self, response=None):
        raise SpotifyAuthError(
            "no usable user authorization is stored: run `spotify-etl auth login`"
        )


@dataclass
class RateLimitBudget:
    """Seconds this run may still spend waiting on Retry-After."""

    remaining_seconds: float


@dataclass
class SpotifyReader:
    """A spotipy client plus the call policy; one per run."""

    client: spotipy.Spotify
    settings: Settings
    budget: RateLimitBudget
    sleep: Callable[[float], None] = time.sleep
    now: Callable[[], datetime] = field(default=lambda: datetime.now(UTC))

    def call(self, what: str, request: Callable[[], Any]) -> Any:
        failures = 0
        refreshed = False
        while True:
            try:
                return request()
            except spotipy.SpotifyException as exc:
                status = exc.http_status
                if status == 429:
                    self._wait_out_rate_limit(what, exc)
                    continue
                if status >= 500 and failures < self.settings.max_retries:
                    failures += 1
                    self.sleep(_backoff(failures))
                    continue
                if status == 401 and not refreshed:
                    refreshed = True
                    self._refresh_token()
                    continue
                raise _explain(exc, what, failures, refreshed) from exc
            except SpotifyOauthError as exc:
                raise SpotifyAuthError(_oauth_message(exc, self.settings)) from exc
            except (requests.ConnectionError, requests.Timeout) as exc:
                if failures < self.settings.max_retries:
                    failures += 1
                    self.sleep(_backoff(failures))
                    continue
                raise SpotifyUnavailable(
                    f"cannot reach the Spotify API at {self.settings.api_base_url} while "
                    f"reading {what} ({type(exc).__name__}, {failures + 1} attempts): check "
                    "the network or SPOTIFY_API_BASE_URL"
                ) from exc

    def _wait_out_rate_limit(self, what: str, exc: spotipy.SpotifyException) -> None:
        if _says_quota_exceeded(exc):
            raise QuotaExceeded(
                f"the app's API quota is exhausted (429 QUOTA_EXCEEDED) while reading {what}: "
                "waiting will not help; try again after the quota resets, or use another app"
            ) from exc
        wait = _retry_after_seconds(exc, self.now())
        if wait > self.budget.remaining_seconds:
            until = self.now() + timedelta(seconds=wait)
            raise RateLimited(
                f"rate limited until {until:%Y-%m-%dT%H:%M:%SZ} (429, Retry-After {wait:g} s) "
                f"while reading {what}; that is more than the "
                f"{self.budget.remaining_seconds:g} s this run may still wait",
                until=until,
            ) from exc
        self.budget.remaining_seconds -= wait
        self.sleep(wait)

    def _refresh_token(self) -> None:
        auth = self.client.auth_manager
        cached = auth.cache_handler.get_cached_token()
        if isinstance(auth, SpotifyPKCE) and cached and cached.get("refresh_token"):
            auth.refresh_access_token(cached["refresh_token"])
        else:
            auth.cache_handler.save_token_to_cache(None)

    def playlist(self, playlist_id: str) -> dict:
        return self.call(
            f"playlist {playlist_id}",
            lambda: self.client.playlist(playlist_id, fields=PLAYLIST_FIELDS),
        )

    def item_pages(self, playlist_id: str) -> list[dict]:
        """Every page of the playlist's items, following ``next`` until it is null."""
        what = f"the items of playlist {playlist_id}"
        page = self.call(
            what, lambda: self.client.playlist_items(playlist_id, limit=PAGE_SIZE, offset=0)
        )
        pages = [page]
        while page.get("next"):
            page = self.call(what, lambda previous=page: self.client.next(previous))
            pages.append(page)
        return pages

    def me(self) -> dict:
        return self.call("the current user", self.client.me)


def _backoff(failures: int) -> float:
    # Full jitter: spreads retries of many concurrent runs instead of synchronising them.
    return random.uniform(0, min(8.0, 0.5 * 2**failures))  # noqa: S311


def _says_quota_exceeded(exc: spotipy.SpotifyException) -> bool:
    return "QUOTA_EXCEEDED" in f"{exc.msg} {exc.reason}"


def _retry_after_seconds(exc: spotipy.SpotifyException, now: datetime) -> float:
    header = (exc.headers or {}).get("Retry-After")
    if header is None:
        return 1.0
    try:
        return max(0.0, float(header))
    except ValueError:
        pass
    try:  # the HTTP-date form
        return max(0.0, (parsedate_to_datetime(header) - now).total_seconds())
    except (TypeError, ValueError):
        return 1.0


def _explain(
    exc: spotipy.SpotifyException, what: str, failures: int, refreshed: bool
) -> SpotifyError:
    status = exc.http_status
    if status == 404:
        return PlaylistNotFound(
            f"{what} was not found (404). Spotify-owned playlists (owner 'spotify', such as "
            "Top 50 Global) answer 404 to apps in development mode since 2024-11-27: "
            + _ALTERNATIVES
        )
    if status == 403:
        return PlaylistForbidden(
            f"reading {what} is forbidden (403). Since February/March 2026 playlist items are "
            "served only to the playlist's owner or a collaborator, with a user token: "
            + _ALTERNATIVES
        )
    if status == 401:
        return SpotifyAuthError(
            f"the API rejected the credentials (401) while reading {what}"
            + (" even after a token refresh" if refreshed else "")
            + ": the client id, secret or refresh token is wrong or revoked; check them "
            "(`spotify-etl auth status`) or run `spotify-etl auth login` again"
        )
    if status >= 500:
        return SpotifyUnavailable(
            f"the Spotify API kept failing ({status}) while reading {what}, "
            f"{failures + 1} attempts: try again later"
        )
    return SpotifyError(f"the API answered {status} while reading {what}: {exc.msg.strip()}")


def _oauth_message(exc: SpotifyOauthError, settings: Settings) -> str:
    if exc.error == "invalid_grant":
        return (
            f"the token endpoint {settings.token_url} rejected the stored refresh token "
            f"({exc.error_description or exc.error}): run `spotify-etl auth login` again"
        )
    if exc.error in ("invalid_client", "unauthorized_client"):
        return (
            f"the token endpoint {settings.token_url} refused the client credentials "
            f"({exc.error_description or exc.error}): check SPOTIFY_CLIENT_ID and "
            "SPOTIFY_CLIENT_SECRET"
        )
    return (
        f"the token endpoint {settings.token_url} failed ({exc.error or exc}): "
        "check the credentials and SPOTIFY_TOKEN_URL, or try again later"
    )


def _store_rotated_refresh_token(settings: Settings) -> Callable[[str], None]:
    def store(refresh_token: str) -> None:
        updated = replace(settings.credentials, refresh_token=refresh_token)
        if settings.secret_id:
            credential_sources.write_secrets_manager(
                settings.secret_id, updated, region=settings.aws_region
            )
        elif settings.credentials.origin.startswith("file") or not settings.credentials.origin:
            credential_sources.write_file(settings.credentials_file, updated)
        # A token from the environment cannot be written back; the next login replaces it.

    return store


def auth_manager(settings: Settings):
    creds = settings.credentials
    timeout = settings.connect_timeout_seconds, settings.read_timeout_seconds
    if not creds.client_id:
        raise ConfigError(
            "Spotify credentials are not set: export SPOTIFY_CLIENT_ID (and "
            "SPOTIFY_CLIENT_SECRET for client credentials), or run `spotify-etl auth login`; "
            "`spotify-etl demo` needs none"
        )
    if settings.uses_user_token:
        if not creds.refresh_token:
            raise ConfigError(
                "user authorization is selected but none is stored: run `spotify-etl auth login`"
            )
        auth = _PKCE(
            client_id=creds.client_id,
            redirect_uri=settings.redirect_uri,
            scope=creds.scope or settings.scope,
            cache_handler=_StoredTokenCache(
                creds.refresh_token,
                creds.scope or settings.scope,
                _store_rotated_refresh_token(settings),
            ),
            requests_timeout=timeout,
            open_browser=False,
        )
        auth.OAUTH_AUTHORIZE_URL = settings.authorize_url
    else:
        if not creds.client_secret:
            raise ConfigError(
                "SPOTIFY_CLIENT_SECRET is not set: client credentials need the app's secret "
                "(or run `spotify-etl auth login` to use a user token)"
            )
        auth = SpotifyClientCredentials(
            client_id=creds.client_id,
            client_secret=creds.client_secret,
            cache_handler=MemoryCacheHandler(),
            requests_timeout=timeout,
        )
    auth.OAUTH_TOKEN_URL = settings.token_url
    return auth


def make_reader(settings: Settings, **policy) -> SpotifyReader:
    # A plain session: retries are this module's policy, not urllib3's (which sleeps for
    # any Retry-After, however long).
    client = spotipy.Spotify(
        auth_manager=auth_manager(settings),
        requests_session=requests.Session(),
        requests_timeout=(settings.connect_timeout_seconds, settings.read_timeout_seconds),
    )
    client.prefix = settings.api_base_url.rstrip("/") + "/"
    budget = RateLimitBudget(settings.rate_limit_budget_seconds)
    return SpotifyReader(client, settings, budget, **policy)


def playlist_source(settings: Settings, playlist_id: str) -> dict:
    return {
        "kind": "spotify-web-api",
        "api_base_url": settings.api_base_url,
        "endpoint": f"playlists/{playlist_id}/items",
    }
