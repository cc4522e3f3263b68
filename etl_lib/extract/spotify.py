"""Extract: read a playlist and all its items from the Spotify Web API, through spotipy.

The API base URL, token URL and authorize URL are settings, so the same code talks to
Spotify or to the local server in ``etl_lib.local_spotify``.

Every call goes through one policy, because spotipy's own would hang or mislead:

* Each request, to the API or the token endpoint, has connect/read timeouts and an overall
  deadline (``request_deadline_seconds``, covering the headers as well as the body, see
  ``etl_lib.bounded_http``); API requests go only to the API's origin (scheme, host, port of
  ``api_base_url``) and token requests only to the token endpoint's, redirects unfollowed.
* 5xx answers (the token endpoint's too), connection errors and deadlines are retried
  ``max_retries`` times with jittered backoff, then ``SpotifyUnavailable``.
* A 429 waits its ``Retry-After`` (whole seconds, at most a year) while the total fits the
  run's budget, else ``RateLimited``; a ``Retry-After`` that is absent, zero, negative, past
  or unreadable gets jittered backoff instead, ``max_retries`` times; ``QUOTA_EXCEEDED``
  stops at once (``QuotaExceeded``).
* A 401 is answered by one token refresh, then ``SpotifyAuthError``.
* A 200 whose body is not a JSON object (HTML from a proxy, a truncated reply), a redirect
  (never followed), a token reply without a usable ``access_token`` and ``expires_in``, a
  ``next`` link to another origin (the token is never sent there), a page URL seen before,
  more pages than ``total``/50 + 1, or more items than a snapshot may hold
  (``etl_lib.extract.envelope.MAX_ITEMS``) fail that playlist with ``SpotifyProtocolError``.

HTTP failures become the exceptions in ``etl_lib.errors``, one line each, with messages
that explain Spotify's 2026 rules. A refresh token the token endpoint rotates is stored
back where it was read (``credentials.store_rotated_refresh_token``).

``SOURCE`` is the Web API as a source of the pipeline (``etl_lib.extract.sources``), named
``api``.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import Any

import requests
import spotipy
from spotipy.cache_handler import CacheHandler, MemoryCacheHandler
from spotipy.oauth2 import SpotifyClientCredentials, SpotifyOauthError, SpotifyPKCE

from etl_lib import bounded_http
from etl_lib.config import Settings
from etl_lib.errors import (
    ConfigError,
    PlaylistForbidden,
    PlaylistNotFound,
    QuotaExceeded,
    RateLimited,
    SpotifyAuthError,
    SpotifyError,
    SpotifyProtocolError,
    SpotifyUnavailable,
)
from etl_lib.extract import credentials as credential_sources
from etl_lib.extract import envelope
from etl_lib.extract.envelope import MAX_ITEMS

PAGE_SIZE = 50  # the API's maximum page size for playlist items
PLAYLIST_FIELDS = "id,name,snapshot_id,followers(total),owner(id)"
# The envelopes' source.kind: what old raw files say too, so it never changes.
SOURCE_KIND = "spotify-web-api"
_ALTERNATIVES = (
    "use a playlist you own or collaborate on (`spotify-etl auth login`), an app with "
    "extended quota, or the public archive (`--source archive`)"
)

# Longer is read as "not within any run's budget"; it also keeps the time it names in range.
MAX_RETRY_AFTER_SECONDS = 366 * 86400

# spotipy logs every HTTP error at ERROR level; this module reports them as exceptions instead.
logging.getLogger("spotipy").setLevel(logging.CRITICAL)
log = logging.getLogger(__name__)


class _ServerFailure(requests.RequestException):
    """The token endpoint answered 5xx (spotipy would report it as a refused grant)."""

    def __init__(self, status: int, response: requests.Response):
        super().__init__(f"{status} from {response.url}", response=response)
        self.status = status


class InvalidTokenReply(requests.RequestException):
    """The token endpoint answered what spotipy cannot use (it would fail with a KeyError)."""

    def __init__(self, problem: str, response: requests.Response):
        super().__init__(
            f"{response.status_code} with {problem} from {response.url}", response=response
        )
        self.status = response.status_code
        self.problem = problem


class _TokenSession(bounded_http.BoundedSession):
    def request(self, method, url, *args, **kwargs):
        response = super().request(method, url, *args, **kwargs)
        if response.status_code >= 500:
            raise _ServerFailure(response.status_code, response)
        if problem := token_reply_problem(response):
            raise InvalidTokenReply(problem, response)
        return response


def token_reply_problem(response: requests.Response) -> str | None:
    """What keeps spotipy from using a token endpoint's reply, or None.

    A 2xx must be a JSON object with a non-empty ``access_token`` string and a positive
    ``expires_in`` (seconds), and ``refresh_token`` and ``scope`` strings when present; a
    4xx, when it is JSON, an object (spotipy reads its ``error``).
    """
    if not 200 <= response.status_code < 500 or 300 <= response.status_code < 400:
        return None
    try:
        reply = response.json()
    except ValueError:
        if response.status_code >= 400:
            return None  # spotipy reports a 4xx's text as it is
        return "a body that is not JSON (a proxy or captive portal answers HTML)"
    if not isinstance(reply, dict):
        return f"JSON that is not an object ({type(reply).__name__})"
    if response.status_code >= 400:
        return None
    access_token = reply.get("access_token")
    if access_token is None:
        return "no access_token"
    if not isinstance(access_token, str) or not access_token:
        # Never the value itself: it may be a credential after all.
        return f"an access_token that is not a non-empty string ({type(access_token).__name__})"
    expires_in = reply.get("expires_in")
    if expires_in is None:
        return "no expires_in"
    if (
        not isinstance(expires_in, int | float)
        or isinstance(expires_in, bool)
        or not math.isfinite(expires_in)
        or expires_in <= 0
    ):
        return f"an expires_in that is not a positive number of seconds ({_shown(expires_in)})"
    refresh_token = reply.get("refresh_token")
    if refresh_token is not None and (not isinstance(refresh_token, str) or not refresh_token):
        return f"an unusable refresh_token ({type(refresh_token).__name__})"
    scope = reply.get("scope")
    if scope is not None and not isinstance(scope, str):
        return f"a scope that is not a string ({_shown(scope)})"
    return None


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
        failures = 0  # 5xx, connection errors, deadlines
        backoffs = 0  # 429s without a usable Retry-After
        refreshed = False
        refresh_due = False
        while True:
            try:
                if refresh_due:  # in here: the token endpoint's failures get the same policy
                    self._refresh_token()
                    refresh_due = False
                return request()
            except spotipy.SpotifyException as exc:
                status = exc.http_status
                if status == 429:
                    backoffs += self._wait_out_rate_limit(what, exc, backoffs)
                    continue
                if status >= 500 and failures < self.settings.max_retries:
                    failures += 1
                    self.sleep(bounded_http.backoff_seconds(failures))
                    continue
                if status == 401 and not refreshed:
                    refreshed = refresh_due = True
                    continue
                raise _explain(exc, what, failures, refreshed) from exc
            except SpotifyOauthError as exc:
                raise SpotifyAuthError(_oauth_message(exc, self.settings)) from exc
            except bounded_http.OffOrigin as exc:
                raise SpotifyProtocolError(
                    f"refused to send a request for {what} to {exc.url}: it is not on "
                    f"{exc.origin}, where the credentials belong; check SPOTIFY_API_BASE_URL "
                    "and SPOTIFY_TOKEN_URL"
                ) from exc
            except InvalidTokenReply as exc:
                raise SpotifyProtocolError(
                    f"the token endpoint {self.settings.token_url} answered {exc.status} with "
                    f"{exc.problem} while reading {what}: check SPOTIFY_TOKEN_URL, or try "
                    "again later"
                ) from exc
            except bounded_http.Redirected as exc:
                raise self._redirected(what, exc) from exc
            except (requests.ConnectionError, requests.Timeout, _ServerFailure) as exc:
                if failures < self.settings.max_retries:
                    failures += 1
                    self.sleep(bounded_http.backoff_seconds(failures))
                    continue
                raise self._unavailable(what, exc, failures + 1) from exc

    def _redirected(self, what: str, exc: bounded_http.Redirected) -> SpotifyProtocolError:
        url = getattr(exc.request, "url", None) or ""
        if url.startswith(self.settings.token_url):
            where, setting = f"the token endpoint {self.settings.token_url}", "SPOTIFY_TOKEN_URL"
        else:
            where, setting = "the API", "SPOTIFY_API_BASE_URL"
        target = (
            f"to {_shown(exc.location_origin)}" if exc.location_origin else "without a Location"
        )
        return SpotifyProtocolError(
            f"{where} answered a redirect ({exc.status} {target}) while reading {what}; "
            f"redirects are not followed, so the credentials go nowhere else: check {setting} "
            "(a proxy or captive portal redirects), or try again later"
        )

    def _unavailable(self, what: str, exc: requests.RequestException, attempts: int):
        url = getattr(exc.request, "url", None) or ""
        on_token_endpoint = url.startswith(self.settings.token_url)
        where = (
            f"the token endpoint {self.settings.token_url}"
            if on_token_endpoint
            else f"the Spotify API at {self.settings.api_base_url}"
        )
        setting = "SPOTIFY_TOKEN_URL" if on_token_endpoint else "SPOTIFY_API_BASE_URL"
        if isinstance(exc, _ServerFailure):
            return SpotifyUnavailable(
                f"{where} kept failing ({exc.status}) while reading {what}, {attempts} "
                "attempts: try again later"
            )
        if isinstance(exc, bounded_http.DeadlineExceeded):
            return SpotifyUnavailable(
                f"{where} did not finish answering within "
                f"{self.settings.request_deadline_seconds:g} s while reading {what} "
                f"(DeadlineExceeded, {attempts} attempts): try again later, or check {setting}"
            )
        return SpotifyUnavailable(
            f"cannot reach {where} while reading {what} ({type(exc).__name__}, {attempts} "
            f"attempts): check the network or {setting}"
        )

    def _wait_out_rate_limit(self, what: str, exc: spotipy.SpotifyException, backoffs: int) -> int:
        """Sleep as the 429 asks, or raise; returns 1 when it was a backoff, else 0."""
        if _says_quota_exceeded(exc):
            raise QuotaExceeded(
                f"the app's API quota is exhausted (429 QUOTA_EXCEEDED) while reading {what}: "
                "waiting will not help; try again after the quota resets, or use another app"
            ) from exc
        header = (exc.headers or {}).get("Retry-After")
        asked = retry_after_seconds(header, self.now())
        wait: float
        if asked is not None:
            wait = asked
        else:
            if backoffs >= self.settings.max_retries:
                raise RateLimited(
                    f"rate limited until an unknown time (429 {backoffs + 1} times, no usable "
                    f"Retry-After: {_shown(header)}) while reading {what}: try again later",
                    until=self.now(),
                ) from exc
            wait = bounded_http.backoff_seconds(backoffs + 1)
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
        return 0 if asked is not None else 1

    def _refresh_token(self) -> None:
        auth = self.client.auth_manager
        cached = auth.cache_handler.get_cached_token()
        if isinstance(auth, SpotifyPKCE) and cached and cached.get("refresh_token"):
            auth.refresh_access_token(cached["refresh_token"])
        else:
            auth.cache_handler.save_token_to_cache(None)

    def playlist(self, playlist_id: str) -> dict:
        what = f"playlist {playlist_id}"
        return _json_object(
            what,
            self.call(what, lambda: self.client.playlist(playlist_id, fields=PLAYLIST_FIELDS)),
        )

    def item_pages(self, playlist_id: str) -> list[dict]:
        """Every page of the playlist's items, following ``next`` until it is null.

        ``next`` must stay on the API's origin and name a page not read yet; the pages may
        not outnumber what ``total`` allows, and neither ``total`` nor the items received
        may exceed what a snapshot may hold (``MAX_ITEMS``, so at most 401 pages): a server
        answering otherwise would otherwise be followed for ever, or be handed the token.
        """
        what = f"the items of playlist {playlist_id}"
        page = _json_object(
            what,
            self.call(
                what, lambda: self.client.playlist_items(playlist_id, limit=PAGE_SIZE, offset=0)
            ),
        )
        total = page.get("total")
        if not isinstance(total, int) or isinstance(total, bool) or total < 0:
            raise SpotifyProtocolError(
                f"the API answered {what} with a page without a valid total ({_shown(total)}): "
                "check SPOTIFY_API_BASE_URL, or try again later"
            )
        if total > MAX_ITEMS:
            raise SpotifyProtocolError(
                f"the API says {what} holds {total:,} items, more than the {MAX_ITEMS:,} a "
                "snapshot may hold: not downloaded; check SPOTIFY_API_BASE_URL, or leave this "
                "playlist out of SPOTIFY_ETL_PLAYLISTS"
            )
        most_pages = total // PAGE_SIZE + 1
        api_origin = bounded_http.origin_of(self.settings.api_base_url)
        pages = [page]
        items = _item_count(page)
        seen = {page.get("href")}
        while True:
            if items > MAX_ITEMS:
                raise SpotifyProtocolError(
                    f"the API sent {items:,} items for {what} in {len(pages)} pages, more "
                    f"than the {MAX_ITEMS:,} a snapshot may hold: stopped paging; check "
                    "SPOTIFY_API_BASE_URL, or try again later"
                )
            if (next_url := page.get("next")) is None:
                return pages
            if not isinstance(next_url, str) or bounded_http.origin_of(next_url) != api_origin:
                raise SpotifyProtocolError(
                    f"the API's next link for {what} points away from {api_origin} "
                    f"({_shown(next_url)}): stopped paging without following it, so the token "
                    "was not sent there; check SPOTIFY_API_BASE_URL"
                )
            if next_url in seen:
                raise SpotifyProtocolError(
                    f"the API's next link for {what} repeats a page already read "
                    f"({_shown(next_url)}): stopped paging after {len(pages)} pages; try again "
                    "later"
                )
            if len(pages) >= most_pages:
                raise SpotifyProtocolError(
                    f"the API kept paging {what} past {most_pages} pages, more than its total "
                    f"of {total} items needs: stopped paging; try again later"
                )
            seen.add(next_url)
            page = _json_object(
                what, self.call(what, lambda url=next_url: self.client.next({"next": url}))
            )
            pages.append(page)
            items += _item_count(page)

    def me(self) -> dict:
        what = "the current user"
        return _json_object(what, self.call(what, self.client.me))


def _item_count(page: dict) -> int:
    items = page.get("items")
    return len(items) if isinstance(items, list) else 0


def _json_object(what: str, result: Any) -> dict:
    # spotipy answers None for a 200 whose body does not parse.
    if not isinstance(result, dict):
        raise SpotifyProtocolError(
            f"the API answered {what} with a body that is not a JSON object (HTML from a proxy "
            "or captive portal, or a truncated reply): check SPOTIFY_API_BASE_URL, or try "
            "again later"
        )
    return result


def _shown(value: Any, limit: int = 120) -> str:
    """A value from the server for a one-line message: repr, shortened."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _says_quota_exceeded(exc: spotipy.SpotifyException) -> bool:
    return "QUOTA_EXCEEDED" in f"{exc.msg} {exc.reason}"


def retry_after_seconds(header: str | None, now: datetime) -> int | None:
    """Whole seconds to wait, at most ``MAX_RETRY_AFTER_SECONDS``; None when unusable.

    Unusable: absent, not a number or an HTTP date, NaN, zero, negative, a date not in the
    future. Fractions round up; infinity and anything huge become the maximum.
    """
    if header is None:
        return None
    text = header.strip()
    try:
        seconds = float(text)
    except ValueError:
        try:  # the HTTP-date form
            seconds = (parsedate_to_datetime(text) - now).total_seconds()
        except (TypeError, ValueError, OverflowError, IndexError):
            return None
    if math.isnan(seconds) or seconds <= 0:
        return None
    if seconds >= MAX_RETRY_AFTER_SECONDS:
        return MAX_RETRY_AFTER_SECONDS
    return math.ceil(seconds)


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
    # The message may be a whole HTML page: one line of it, shortened.
    detail = " ".join(str(exc.msg).split())
    detail = detail if len(detail) <= 200 else detail[:197] + "..."
    return SpotifyError(f"the API answered {status} while reading {what}: {detail}")


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
    said = False

    def store(refresh_token: str) -> None:
        nonlocal said
        problem = credential_sources.store_rotated_refresh_token(
            settings.credentials,
            refresh_token,
            parameter=settings.credentials_parameter,
            credentials_file=settings.credentials_file,
            region=settings.aws_region,
        )
        if problem and not said:  # once per run, however often the token rotates in it
            said = True
            log.warning("%s", problem)

    return store


def token_session(settings: Settings) -> requests.Session:
    """The session for the token endpoint: its origin only, each request within the deadline."""
    return _TokenSession(settings.request_deadline_seconds, origin=settings.token_url)


def api_session(settings: Settings) -> requests.Session:
    """The session for the API: its origin only, each request within the deadline.

    No urllib3 retries: retries are this module's policy (urllib3 would sleep for any
    Retry-After, however long).
    """
    return bounded_http.BoundedSession(
        settings.request_deadline_seconds, origin=settings.api_base_url
    )


def auth_manager(settings: Settings):
    settings = credential_sources.loaded(settings)  # read only here, where Spotify is called
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
            requests_session=token_session(settings),
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
            requests_session=token_session(settings),
        )
    auth.OAUTH_TOKEN_URL = settings.token_url
    return auth


def make_reader(settings: Settings, **policy) -> SpotifyReader:
    client = spotipy.Spotify(
        auth_manager=auth_manager(settings),
        requests_session=api_session(settings),
        requests_timeout=(settings.connect_timeout_seconds, settings.read_timeout_seconds),
    )
    client.prefix = settings.api_base_url.rstrip("/") + "/"
    budget = RateLimitBudget(settings.rate_limit_budget_seconds)
    return SpotifyReader(client, settings, budget, **policy)


def playlist_source(settings: Settings, playlist_id: str) -> dict:
    return {
        "kind": SOURCE_KIND,
        "api_base_url": settings.api_base_url,
        "endpoint": f"playlists/{playlist_id}/items",
    }


class SpotifyApiSource:
    """Snapshots from the Spotify Web API (``--source api``, the default)."""

    name = "api"
    # "import": API responses captured elsewhere, wrapped by envelope.envelope_from_capture.
    kinds = (SOURCE_KIND, envelope.IMPORT_KIND)

    def connect(self, settings: Settings) -> SpotifyReader:
        # One reader per run: one token, one rate-limit budget for every playlist.
        return make_reader(settings)

    def fetch(
        self,
        connection: SpotifyReader,
        settings: Settings,
        playlist_id: str,
        *,
        extracted_at: datetime,
        known_snapshot_id: str | None,
    ) -> dict | None:
        metadata = connection.playlist(playlist_id)  # small: no items, what the envelope keeps
        if known_snapshot_id and metadata.get("snapshot_id") == known_snapshot_id:
            return None
        pages = connection.item_pages(playlist_id)
        return envelope.make_envelope(
            metadata, pages, extracted_at, playlist_source(settings, playlist_id)
        )

    def pages(self, payload: dict, raw_key: str) -> list:
        return envelope.api_pages(payload, raw_key)


SOURCE = SpotifyApiSource()
