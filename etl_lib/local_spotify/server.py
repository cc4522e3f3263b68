"""A local stand-in for the Spotify Web API and accounts service, with the rules of 2026.

It serves ``ChartSimulator`` charts over HTTP on 127.0.0.1 with Spotify's URLs, paging,
status codes and error bodies, so spotipy and ``requests`` talk to it exactly as they talk
to api.spotify.com and accounts.spotify.com. The clock is simulated: the chart served is
the one of the clock's UTC day, and tests move the clock instead of waiting.

What it models:

* Tokens: client credentials, and the Authorization Code flow with PKCE (or with the
  client secret) at ``GET /authorize`` -- approved at once as ``user_id``, no login page --
  then ``POST /api/token``, with refresh tokens that can rotate on each use.
* App mode: with ``extended_quota=False`` (an app in development mode, since 2024-11-27)
  Spotify-owned playlists answer 404 to every token.
* Who reads items (since 2026): a user's playlist's ``/items`` and ``/tracks`` answer only
  to a user token of its owner or a collaborator, 403 to anyone else; its metadata is
  readable by any token but then comes without the embedded ``items``/``tracks`` pages.
* Entries carry ``item``, the deprecated ``track``, or both (``entry_fields``).
* Faults: ``fail_next`` (429 with any Retry-After, 5xx bursts, HTML error pages, a 200
  with HTML or bytes that are not JSON, on the API or the token endpoint),
  ``quota_exceeded``, ``delay_next`` for slow replies, ``trickle_next`` for bodies (or
  status lines and headers too) sent a few bytes at a time, ``misdirect_next`` for item
  pages whose ``next`` points to themselves or to another server.
* Test hooks: ``issue_token``, ``mint_refresh_token``, ``expire_access_tokens``,
  ``revoke_refresh_tokens``; every request is logged in ``requests``.

Run it in the foreground with ``python -m etl_lib.local_spotify --port 8765``.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re
import secrets
import sys
import threading
import traceback
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from http import HTTPStatus
from typing import Any, NamedTuple, Self
from urllib.parse import parse_qsl, quote, urlencode, urlsplit

from etl_lib.local_spotify.loopback import (
    LoopbackHandler,
    LoopbackServer,
    command_line,
    serve_in_foreground,
)
from etl_lib.local_spotify.simulator import LOCAL_USER_ID, OPEN_SPOTIFY_URL, ChartSimulator

DEFAULT_CLIENT_ID = "local-client-id"
DEFAULT_CLIENT_SECRET = "local-client-secret"
DEFAULT_SCOPE = "playlist-read-private playlist-read-collaborative"
TOKEN_LIFETIME_SECONDS = 3600
# Spotify's 429 for an exhausted quota tells the app to come back much later; a client that
# only reads Retry-After then stops too, but the body is what says why.
QUOTA_EXCEEDED_RETRY_AFTER_SECONDS = 86400
DEFAULT_LIMIT = 20
# Per the OpenAPI spec: /items takes at most 50 per page, the deprecated /tracks 100.
MAX_LIMIT = {"items": 50, "tracks": 100}
# The first page embedded in a playlist object, as Spotify embeds it.
EMBEDDED_LIMIT = {"items": 50, "tracks": 100}
ENTRY_FIELDS = ("item", "track", "both")
# The scopes Spotify's authorize endpoint knows; any other is refused there.
KNOWN_SCOPES = frozenset(
    {
        "app-remote-control",
        "playlist-modify-private",
        "playlist-modify-public",
        "playlist-read-collaborative",
        "playlist-read-private",
        "streaming",
        "ugc-image-upload",
        "user-follow-modify",
        "user-follow-read",
        "user-library-modify",
        "user-library-read",
        "user-modify-playback-state",
        "user-personalized",
        "user-read-currently-playing",
        "user-read-email",
        "user-read-playback-position",
        "user-read-playback-state",
        "user-read-private",
        "user-read-recently-played",
        "user-top-read",
    }
)
# Spotify accepts plain http only for loopback redirect URIs (and wants the IP literal;
# "localhost" is accepted here too, as older apps registered it).
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "::1", "localhost"})

_PLAYLIST_PATH = re.compile(r"^/v1/playlists/(?P<id>[^/]+)$")
_PLAYLIST_ITEMS_PATH = re.compile(r"^/v1/playlists/(?P<id>[^/]+)/(?P<endpoint>items|tracks)$")
# base64url of a SHA-256 digest, without padding (RFC 7636).
_S256_CHALLENGE = re.compile(r"^[A-Za-z0-9_-]{43}$")
_DEFAULT_ERROR_MESSAGES = {
    400: "Bad request",
    401: "The access token expired",
    403: "Forbidden",
    404: "Resource not found",
    429: "API rate limit exceeded",
    500: "Server error.",
    502: "Bad gateway.",
    503: "Service unavailable",
}


class RecordedRequest(NamedTuple):
    method: str
    path: str  # with the query string, as sent


def _matches(path_contains: str | None, target: str) -> bool:
    """Whether a scripted fault or delay applies: by default to API requests only."""
    if path_contains is None:
        return target.startswith("/v1/")
    return path_contains in target


@dataclass
class _Fault:
    status: int
    remaining: int
    headers: dict[str, str]
    body: dict[str, Any] | str | bytes | None
    path_contains: str | None


@dataclass
class _Delay:
    seconds: float
    remaining: int
    path_contains: str | None


@dataclass
class _Trickle:
    piece_bytes: int
    interval_seconds: float
    remaining: int
    path_contains: str | None
    head: bool  # the status line and headers are trickled too, not only the body


@dataclass
class _Misdirection:
    target: str  # "self", or the absolute URL served as next
    remaining: int | None  # None: every page from now on
    path_contains: str | None


@dataclass
class _AccessToken:
    client_id: str
    user_id: str | None  # None: a client-credentials (app) token
    scope: str
    expires_at: datetime  # on the simulated clock; checked only with enforce_token_expiry
    expired: bool = False  # set by expire_access_tokens(), whatever the clock says


@dataclass(frozen=True)
class _Grant:
    """What a refresh token stands for."""

    client_id: str
    user_id: str
    scope: str
    # Obtained with PKCE: refreshing needs no client secret (a public client has none).
    public_client: bool


@dataclass(frozen=True)
class _AuthorizationCode:
    client_id: str
    redirect_uri: str
    code_challenge: str | None  # None: the flow with the client secret, no PKCE
    user_id: str
    scope: str


@dataclass(frozen=True)
class _Response:
    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()
    content_type: str = "application/json; charset=utf-8"
    # (bytes per piece, seconds between pieces, head too): sent slowly, see trickle_next.
    trickle: tuple[int, float, bool] | None = None


def _json_response(
    status: int, payload: Any, headers: Mapping[str, str] | None = None
) -> _Response:
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    return _Response(status, body, tuple((headers or {}).items()))


def _text_response(status: int, text: str, headers: Mapping[str, str] | None = None) -> _Response:
    return _Response(
        status, text.encode("utf-8"), tuple((headers or {}).items()), "text/plain; charset=utf-8"
    )


def _api_error(status: int, message: str, headers: Mapping[str, str] | None = None) -> _Response:
    return _json_response(status, {"error": {"status": status, "message": message}}, headers)


def _auth_error(error: str, description: str) -> _Response:
    return _json_response(400, {"error": error, "error_description": description})


def s256_challenge(code_verifier: str) -> str:
    """The PKCE ``code_challenge`` for ``code_verifier``: base64url(SHA-256), unpadded."""
    digest = hashlib.sha256(code_verifier.encode("ascii", "replace")).digest()
    return base64.urlsafe_b64encode(digest).decode("ascii").rstrip("=")


def is_loopback_redirect_uri(uri: str) -> bool:
    parts = urlsplit(uri)
    try:
        parts.port  # noqa: B018 - raises on a malformed port
    except ValueError:
        return False
    return parts.scheme == "http" and parts.hostname in LOOPBACK_HOSTS and not parts.fragment


class LocalSpotifyServer(LoopbackServer):
    """The Spotify Web API and accounts service on ``127.0.0.1``, serving a ``ChartSimulator``.

    Use as a context manager, or ``start()``/``stop()``. ``base_url``, ``token_url`` and
    ``authorize_url`` exist once started. ``port=0`` takes a free port.

    ``extended_quota`` is the app's mode: True (the default) reads Spotify-owned playlists,
    False is development mode, where they answer 404. ``user_id`` is who ``/authorize``
    logs in as. ``rotate_refresh_tokens`` makes every refresh return a new refresh token
    and retire the old one. ``entry_fields`` ("item", "track" or "both") picks which of
    an entry's item keys are served; it can be changed while running.
    """

    _name = "local Spotify server"
    _thread_prefix = "local-spotify"

    def __init__(
        self,
        simulator: ChartSimulator | None = None,
        *,
        client_id: str = DEFAULT_CLIENT_ID,
        client_secret: str = DEFAULT_CLIENT_SECRET,
        now: datetime | None = None,
        port: int = 0,
        enforce_token_expiry: bool = False,
        extended_quota: bool = True,
        user_id: str = LOCAL_USER_ID,
        rotate_refresh_tokens: bool = False,
        entry_fields: str = "both",
    ) -> None:
        super().__init__(_Handler, now=now, port=port)
        self.simulator = simulator if simulator is not None else ChartSimulator()
        self.client_id = client_id
        self.client_secret = client_secret
        # Off by default: clients judge expiry by wall time, so moving the simulated clock
        # across days would otherwise invalidate tokens they still consider fresh.
        # expire_access_tokens() is the way to test a refresh.
        self.enforce_token_expiry = enforce_token_expiry
        self.extended_quota = extended_quota
        self.user_id = user_id
        self.rotate_refresh_tokens = rotate_refresh_tokens
        self.entry_fields = entry_fields
        self.requests: list[RecordedRequest] = []
        self._lock = threading.Lock()
        self._tokens: dict[str, _AccessToken] = {}
        self._refresh_tokens: dict[str, _Grant] = {}
        self._codes: dict[str, _AuthorizationCode] = {}
        self._faults: list[_Fault] = []
        self._delays: list[_Delay] = []
        self._trickles: list[_Trickle] = []
        self._misdirections: list[_Misdirection] = []
        # Set by stop(): delayed replies wake up and are dropped instead of holding it up.
        self._stopping = threading.Event()

    @property
    def entry_fields(self) -> str:
        return self._entry_fields

    @entry_fields.setter
    def entry_fields(self, value: str) -> None:
        if value not in ENTRY_FIELDS:
            raise ValueError(f"entry_fields must be one of {ENTRY_FIELDS}, got {value!r}")
        self._entry_fields = value

    # lifecycle ----------------------------------------------------------------------------

    def start(self) -> Self:
        if self._httpd is None:
            self._stopping.clear()
        return super().start()

    def stop(self) -> None:
        """Stops serving at once; replies still being delayed are dropped, not awaited."""
        if self._httpd is not None:
            self._stopping.set()
        super().stop()

    @property
    def base_url(self) -> str:
        return f"{self.origin}/v1"

    @property
    def token_url(self) -> str:
        return f"{self.origin}/api/token"

    @property
    def authorize_url(self) -> str:
        return f"{self.origin}/authorize"

    # simulated clock ----------------------------------------------------------------------

    @LoopbackServer.clock.setter
    def clock(self, moment: datetime) -> None:
        self.set_time(moment)

    def advance(self, delta: timedelta) -> None:
        self.set_time(self._clock + delta)

    # test hooks: faults -------------------------------------------------------------------

    def fail_next(
        self,
        status: int,
        *,
        times: int = 1,
        headers: dict[str, str] | None = None,
        body: dict[str, Any] | str | bytes | None = None,
        path_contains: str | None = None,
    ) -> None:
        """Answer the next ``times`` matching requests with ``status`` instead.

        Without ``path_contains`` only authorized ``/v1`` requests match; with it, any
        request whose path and query contain it (``"/api/token"`` reaches the token
        endpoint, ``"/authorize"`` the authorize one). The default body is Spotify's error
        object; a ``str`` body is sent as text/html, like a gateway's error page; ``bytes``
        are sent as they are, labelled application/json (a truncated or garbled reply).
        """
        if not 100 <= status <= 599:
            raise ValueError(f"not an HTTP status: {status}")
        if times < 1:
            raise ValueError(f"times must be at least 1, got {times}")
        fault = _Fault(status, times, dict(headers or {}), body, path_contains)
        with self._lock:
            self._faults.append(fault)

    def quota_exceeded(
        self,
        times: int = 1,
        *,
        retry_after: int | None = QUOTA_EXCEEDED_RETRY_AFTER_SECONDS,
        path_contains: str | None = None,
    ) -> None:
        """The app's quota is used up: 429 with ``{"error": {..., "message": "QUOTA_EXCEEDED"}}``.

        It carries ``Retry-After: 86400`` by default (``retry_after=None`` leaves it out): a
        client must read the body to tell this from an ordinary rate limit.
        """
        headers = {} if retry_after is None else {"Retry-After": str(retry_after)}
        self.fail_next(
            429,
            times=times,
            headers=headers,
            body={"error": {"status": 429, "message": "QUOTA_EXCEEDED"}},
            path_contains=path_contains,
        )

    def delay_next(
        self, seconds: float, *, times: int = 1, path_contains: str | None = None
    ) -> None:
        """Hold the next ``times`` matching replies back by ``seconds``, then answer normally.

        Matching is as for ``fail_next``, except that a delay applies before the token is
        checked. Other requests are served meanwhile; ``stop()`` drops delayed replies (the
        connection closes unanswered) instead of waiting for them.
        """
        if not seconds >= 0:
            raise ValueError(f"seconds must be at least 0, got {seconds}")
        if times < 1:
            raise ValueError(f"times must be at least 1, got {times}")
        with self._lock:
            self._delays.append(_Delay(seconds, times, path_contains))

    def trickle_next(
        self,
        *,
        piece_bytes: int = 1,
        interval_seconds: float = 0.1,
        times: int = 1,
        path_contains: str | None = None,
        head: bool = False,
    ) -> None:
        """Send the next ``times`` matching replies' bodies ``piece_bytes`` at a time.

        The headers go at once; then one piece every ``interval_seconds``, so each read of a
        client sees data before its read timeout while the whole reply takes as long as the
        body is big. With ``head`` the status line and headers are sent that way too: a
        client waits for them inside its HTTP library, before any body is read. Matching is
        as for ``delay_next``; ``stop()`` cuts a trickle short.
        """
        if piece_bytes < 1:
            raise ValueError(f"piece_bytes must be at least 1, got {piece_bytes}")
        if not interval_seconds >= 0:
            raise ValueError(f"interval_seconds must be at least 0, got {interval_seconds}")
        if times < 1:
            raise ValueError(f"times must be at least 1, got {times}")
        with self._lock:
            self._trickles.append(
                _Trickle(piece_bytes, interval_seconds, times, path_contains, head)
            )

    def misdirect_next(
        self, target: str, *, times: int | None = None, path_contains: str | None = None
    ) -> None:
        """Serve item pages whose ``next`` is ``target`` instead of the true next page.

        ``"self"`` makes each page's ``next`` its own URL (a client following it never
        ends); an absolute URL sends the client elsewhere (another server, to see whether
        the token follows). Applies to the next ``times`` item pages, the last one included
        (all of them when ``times`` is None), whose URL contains ``path_contains``.
        """
        if target != "self" and not urlsplit(target).scheme:
            raise ValueError(f"target must be 'self' or an absolute URL, got {target!r}")
        if times is not None and times < 1:
            raise ValueError(f"times must be at least 1, got {times}")
        with self._lock:
            self._misdirections.append(_Misdirection(target, times, path_contains))

    # test hooks: tokens -------------------------------------------------------------------

    def issue_token(self, *, user_id: str | None = None, scope: str = "") -> str:
        """A valid access token, without a round trip to the token endpoint.

        Without ``user_id`` it is an app (client-credentials) token; with it, that user's.
        """
        return self._new_access_token(self.client_id, user_id, scope)

    def mint_refresh_token(self, user_id: str = LOCAL_USER_ID, scope: str = DEFAULT_SCOPE) -> str:
        """A refresh token as if ``user_id`` had logged in with PKCE: no browser needed.

        It belongs to ``client_id``; refreshing it needs no client secret.
        """
        return self._new_refresh_token(_Grant(self.client_id, user_id, scope, True))

    def expire_access_tokens(self) -> None:
        """Every access token issued so far answers 401 "The access token expired"."""
        with self._lock:
            for token in self._tokens.values():
                token.expired = True

    def revoke_refresh_tokens(self) -> None:
        """Every refresh token issued so far answers ``invalid_grant``; access tokens live on."""
        with self._lock:
            self._refresh_tokens.clear()

    def _new_access_token(self, client_id: str, user_id: str | None, scope: str) -> str:
        token = f"BQ{secrets.token_urlsafe(48)}"
        expires_at = self._clock + timedelta(seconds=TOKEN_LIFETIME_SECONDS)
        with self._lock:
            self._tokens[token] = _AccessToken(client_id, user_id, scope, expires_at)
        return token

    def _new_refresh_token(self, grant: _Grant) -> str:
        token = f"AQ{secrets.token_urlsafe(96)}"
        with self._lock:
            self._refresh_tokens[token] = grant
        return token

    # request handling ---------------------------------------------------------------------

    def _record(self, method: str, target: str) -> None:
        with self._lock:
            self.requests.append(RecordedRequest(method, target))

    def _take_trickle(self, target: str) -> tuple[int, float, bool] | None:
        with self._lock:
            for trickle in self._trickles:
                if _matches(trickle.path_contains, target):
                    trickle.remaining -= 1
                    if trickle.remaining == 0:
                        self._trickles.remove(trickle)
                    return trickle.piece_bytes, trickle.interval_seconds, trickle.head
        return None

    def _take_misdirection(self, page_url: str) -> str | None:
        with self._lock:
            for misdirection in self._misdirections:
                if misdirection.path_contains is None or misdirection.path_contains in page_url:
                    if misdirection.remaining is not None:
                        misdirection.remaining -= 1
                        if misdirection.remaining == 0:
                            self._misdirections.remove(misdirection)
                    return misdirection.target
        return None

    def _take_delay(self, target: str) -> float:
        with self._lock:
            for delay in self._delays:
                if _matches(delay.path_contains, target):
                    delay.remaining -= 1
                    if delay.remaining == 0:
                        self._delays.remove(delay)
                    return delay.seconds
        return 0.0

    def _take_fault(self, target: str) -> _Response | None:
        with self._lock:
            for fault in self._faults:
                if _matches(fault.path_contains, target):
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self._faults.remove(fault)
                    break
            else:
                return None
        if isinstance(fault.body, bytes):
            return _Response(fault.status, fault.body, tuple(fault.headers.items()))
        if isinstance(fault.body, str):
            return _Response(
                fault.status,
                fault.body.encode("utf-8"),
                tuple(fault.headers.items()),
                content_type="text/html; charset=utf-8",
            )
        if fault.body is not None:
            return _json_response(fault.status, fault.body, fault.headers)
        if fault.status >= 400:
            message = _DEFAULT_ERROR_MESSAGES.get(fault.status) or HTTPStatus(fault.status).phrase
            return _api_error(fault.status, message, fault.headers)
        return _json_response(fault.status, {}, fault.headers)

    def _handle(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes
    ) -> _Response | None:
        """The response to one request, or ``None`` to close the connection unanswered."""
        self._record(method, target)
        delay = self._take_delay(target)
        # The wait ends early when the server stops; the reply is then dropped.
        if delay and self._stopping.wait(delay):
            return None
        response = self._dispatch(method, target, headers, body)
        trickle = self._take_trickle(target)
        return response if trickle is None else replace(response, trickle=trickle)

    def _dispatch(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes
    ) -> _Response:
        parts = urlsplit(target)
        path = parts.path
        query = parse_qsl(parts.query, keep_blank_values=True)
        if path == "/api/token":
            return self._take_fault(target) or self._token(method, headers, body)
        if path == "/authorize":
            return self._take_fault(target) or self._authorize(method, query)
        if not path.startswith("/v1/"):
            return _api_error(404, "Service not found")
        # Spotify ignores a trailing slash, and spotipy sends one on "me/".
        path = path.rstrip("/")
        token = self._authenticate(headers)
        if isinstance(token, _Response):
            return token
        fault = self._take_fault(target)
        if fault is not None:
            return fault
        if method != "GET" and (
            path == "/v1/me" or _PLAYLIST_ITEMS_PATH.match(path) or _PLAYLIST_PATH.match(path)
        ):
            return _api_error(405, "Method not allowed")
        if path == "/v1/me":
            return self._me(token)
        if match := _PLAYLIST_ITEMS_PATH.match(path):
            return self._playlist_items(match["id"], match["endpoint"], query, token)
        if match := _PLAYLIST_PATH.match(path):
            return self._playlist(match["id"], query, token)
        return _api_error(404, "Service not found")

    # accounts service: /authorize and /api/token --------------------------------------------

    def _authorize(self, method: str, query: list[tuple[str, str]]) -> _Response:
        """Approves at once as ``user_id`` and redirects with a code, as after a login."""
        if method != "GET":
            return _text_response(405, "Method not allowed")
        params = dict(query)
        if params.get("client_id") != self.client_id:
            return _text_response(400, "INVALID_CLIENT: Invalid client")
        redirect_uri = params.get("redirect_uri")
        if not redirect_uri or not is_loopback_redirect_uri(redirect_uri):
            return _text_response(400, "INVALID_CLIENT: Invalid redirect URI")
        if params.get("response_type") != "code":
            return _text_response(400, "unsupported_response_type: response_type must be code")
        method_name, challenge = params.get("code_challenge_method"), params.get("code_challenge")
        if (method_name is None) != (challenge is None):
            return _text_response(
                400, "INVALID_REQUEST: code_challenge and code_challenge_method go together"
            )
        if method_name is not None and method_name != "S256":
            return _text_response(400, "INVALID_REQUEST: code_challenge_method must be S256")
        if challenge is not None and not _S256_CHALLENGE.match(challenge):
            return _text_response(400, "INVALID_REQUEST: Invalid code_challenge")
        requested = params.get("scope", "").split()
        if unknown := [scope for scope in requested if scope not in KNOWN_SCOPES]:
            return _text_response(400, f"INVALID_SCOPE: Invalid scope {' '.join(unknown)}")
        scope = " ".join(dict.fromkeys(requested))
        code = f"AQ{secrets.token_urlsafe(96)}"
        with self._lock:
            self._codes[code] = _AuthorizationCode(
                self.client_id, redirect_uri, challenge, self.user_id, scope
            )
        answer = [("code", code)]
        if "state" in params:
            answer.append(("state", params["state"]))
        separator = "&" if urlsplit(redirect_uri).query else "?"
        location = f"{redirect_uri}{separator}{urlencode(answer)}"
        return _text_response(302, "", {"Location": location})

    def _token(self, method: str, headers: Mapping[str, str], body: bytes) -> _Response:
        if method != "POST":
            return _api_error(405, "Method not allowed")
        form = dict(parse_qsl(body.decode("utf-8", "replace"), keep_blank_values=True))
        client_id, client_secret = form.get("client_id"), form.get("client_secret")
        authorization = headers.get("Authorization") or ""
        if authorization.startswith("Basic "):
            try:
                decoded = base64.b64decode(authorization[6:].strip(), validate=True).decode()
            except (binascii.Error, UnicodeDecodeError):
                return _auth_error("invalid_client", "Invalid client")
            client_id, _, client_secret = decoded.partition(":")
        if client_id != self.client_id:
            return _auth_error("invalid_client", "Invalid client")
        if client_secret is not None and client_secret != self.client_secret:
            return _auth_error("invalid_client", "Invalid client")
        # A public (PKCE) client sends only its id; a confidential one proves it with the secret.
        client_authenticated = client_secret is not None
        grant_type = form.get("grant_type")
        if grant_type is None:
            return _auth_error("unsupported_grant_type", "grant_type parameter is missing")
        if grant_type == "client_credentials":
            if not client_authenticated:
                return _auth_error("invalid_client", "Invalid client")
            token = self._new_access_token(client_id, None, "")
            return _json_response(
                200,
                {
                    "access_token": token,
                    "token_type": "Bearer",
                    "expires_in": TOKEN_LIFETIME_SECONDS,
                },
            )
        if grant_type == "authorization_code":
            return self._exchange_code(form, client_id, client_authenticated)
        if grant_type == "refresh_token":
            return self._refresh(form, client_id, client_authenticated)
        return _auth_error(
            "unsupported_grant_type",
            "grant_type must be client_credentials, authorization_code or refresh_token",
        )

    def _exchange_code(
        self, form: Mapping[str, str], client_id: str, client_authenticated: bool
    ) -> _Response:
        code, redirect_uri = form.get("code"), form.get("redirect_uri")
        if not code:
            return _auth_error("invalid_request", "code must be supplied")
        if not redirect_uri:
            return _auth_error("invalid_request", "redirect_uri must be supplied")
        with self._lock:
            # Single use: any attempt spends the code, a failed one included.
            pending = self._codes.pop(code, None)
        if pending is None or pending.client_id != client_id:
            return _auth_error("invalid_grant", "Invalid authorization code")
        if redirect_uri != pending.redirect_uri:
            return _auth_error("invalid_grant", "Invalid redirect URI")
        if pending.code_challenge is None:
            if not client_authenticated:
                return _auth_error("invalid_client", "Invalid client")
        else:
            verifier = form.get("code_verifier")
            if not verifier:
                return _auth_error("invalid_request", "code_verifier must be supplied")
            if s256_challenge(verifier) != pending.code_challenge:
                return _auth_error("invalid_grant", "code_verifier was incorrect")
        grant = _Grant(
            client_id, pending.user_id, pending.scope, pending.code_challenge is not None
        )
        return _json_response(
            200,
            {
                "access_token": self._new_access_token(client_id, grant.user_id, grant.scope),
                "token_type": "Bearer",
                "expires_in": TOKEN_LIFETIME_SECONDS,
                "refresh_token": self._new_refresh_token(grant),
                "scope": grant.scope,
            },
        )

    def _refresh(
        self, form: Mapping[str, str], client_id: str, client_authenticated: bool
    ) -> _Response:
        refresh_token = form.get("refresh_token")
        if not refresh_token:
            return _auth_error("invalid_request", "refresh_token must be supplied")
        with self._lock:
            grant = self._refresh_tokens.get(refresh_token)
            if grant is None or grant.client_id != client_id:
                return _auth_error("invalid_grant", "Invalid refresh token")
            if not grant.public_client and not client_authenticated:
                return _auth_error("invalid_client", "Invalid client")
            if self.rotate_refresh_tokens:
                # Under the lock: two refreshes racing with one token cannot both rotate it.
                del self._refresh_tokens[refresh_token]
        answer: dict[str, Any] = {
            "access_token": self._new_access_token(client_id, grant.user_id, grant.scope),
            "token_type": "Bearer",
            "expires_in": TOKEN_LIFETIME_SECONDS,
            "scope": grant.scope,
        }
        if self.rotate_refresh_tokens:
            answer["refresh_token"] = self._new_refresh_token(grant)
        return _json_response(200, answer)

    def _authenticate(self, headers: Mapping[str, str]) -> _AccessToken | _Response:
        """The bearer token's record, or the 401 refusing the request."""
        authorization = headers.get("Authorization")
        if not authorization:
            return _api_error(401, "No token provided")
        scheme, _, token = authorization.partition(" ")
        with self._lock:
            record = self._tokens.get(token.strip()) if scheme == "Bearer" else None
        challenge = 'Bearer realm="spotify", error="invalid_token", error_description="{}"'
        if record is None:
            message = "Invalid access token"
            return _api_error(401, message, {"WWW-Authenticate": challenge.format(message)})
        if record.expired or (self.enforce_token_expiry and self._clock >= record.expires_at):
            message = "The access token expired"
            return _api_error(401, message, {"WWW-Authenticate": challenge.format(message)})
        return record

    # Web API: /v1 -------------------------------------------------------------------------

    def _me(self, token: _AccessToken) -> _Response:
        if token.user_id is None:
            return _api_error(401, "Valid user authentication required")
        user_id = token.user_id
        return _json_response(
            200,
            {
                "account_id": self.simulator.account_id(user_id),
                "display_name": self.simulator.display_name(user_id),
                "external_urls": {"spotify": f"{OPEN_SPOTIFY_URL}/user/{user_id}"},
                "href": f"{self.base_url}/users/{user_id}",
                "id": user_id,
                "images": [],
                "type": "user",
                "uri": f"spotify:user:{user_id}",
            },
        )

    def _playlist_access(
        self, playlist_id: str, token: _AccessToken
    ) -> tuple[bool, _Response | None]:
        """(may the token read the items, the refusal of the whole playlist if any)."""
        if not self.simulator.has_playlist(playlist_id):
            return False, _api_error(404, "Resource not found")
        if self.simulator.is_spotify_owned(playlist_id):
            # Development-mode apps do not see Spotify's editorial playlists at all.
            if not self.extended_quota:
                return False, _api_error(404, "Resource not found")
            return True, None
        return self.simulator.is_owner_or_collaborator(playlist_id, token.user_id), None

    def _playlist(
        self, playlist_id: str, query: list[tuple[str, str]], token: _AccessToken
    ) -> _Response:
        may_read_items, refusal = self._playlist_access(playlist_id, token)
        if refusal is not None:
            return refusal
        day = self._clock
        playlist = self.simulator.playlist(playlist_id, day, self.base_url)
        embedded: dict[str, Any] = {}
        if may_read_items:
            entries = self.simulator.chart(playlist_id, day, api_base_url=self.base_url)
            embedded = {
                endpoint: self._page(playlist_id, endpoint, entries, 0, limit, [])
                for endpoint, limit in EMBEDDED_LIMIT.items()
            }
        # Spotify puts the embedded pages between snapshot_id and type.
        ordered: dict[str, Any] = {}
        for key, value in playlist.items():
            if key == "type":
                ordered.update(embedded)
            ordered[key] = value
        return _json_response(200, select_fields(ordered, dict(query).get("fields")))

    def _playlist_items(
        self,
        playlist_id: str,
        endpoint: str,
        query: list[tuple[str, str]],
        token: _AccessToken,
    ) -> _Response:
        may_read_items, refusal = self._playlist_access(playlist_id, token)
        if refusal is not None:
            return refusal
        if not may_read_items:
            return _api_error(403, "Forbidden")
        params = dict(query)
        limit = _parse_int(params.get("limit"), DEFAULT_LIMIT)
        if limit is None or not 1 <= limit <= MAX_LIMIT[endpoint]:
            return _api_error(400, "Invalid limit")
        offset = _parse_int(params.get("offset"), 0)
        if offset is None or offset < 0:
            return _api_error(400, "Invalid offset")
        entries = self.simulator.chart(playlist_id, self._clock, api_base_url=self.base_url)
        passed_on = [(k, v) for k, v in query if k not in ("offset", "limit")]
        page = self._page(playlist_id, endpoint, entries, offset, limit, passed_on)
        if target := self._take_misdirection(page["href"]):
            page["next"] = page["href"] if target == "self" else target
        return _json_response(200, select_fields(page, params.get("fields")))

    def _page(
        self,
        playlist_id: str,
        endpoint: str,
        entries: list[dict[str, Any]],
        offset: int,
        limit: int,
        passed_on: list[tuple[str, str]],
    ) -> dict[str, Any]:
        def url(page_offset: int) -> str:
            query = urlencode([("offset", page_offset), ("limit", limit), *passed_on])
            return f"{self.base_url}/playlists/{playlist_id}/{endpoint}?{query}"

        total = len(entries)
        return {
            "href": url(offset),
            "items": [self._shape_entry(entry) for entry in entries[offset : offset + limit]],
            "limit": limit,
            "next": url(offset + limit) if offset + limit < total else None,
            "offset": offset,
            "previous": url(max(0, offset - limit)) if offset > 0 else None,
            "total": total,
        }

    def _shape_entry(self, entry: dict[str, Any]) -> dict[str, Any]:
        """Keep ``item``, the deprecated ``track``, or both, as ``entry_fields`` says."""
        if self._entry_fields == "both":
            return entry
        left_out = "track" if self._entry_fields == "item" else "item"
        return {key: value for key, value in entry.items() if key != left_out}


def _parse_int(text: str | None, default: int) -> int | None:
    if text is None:
        return default
    text = text.strip()
    return int(text) if re.fullmatch(r"-?\d+", text) else None


# -- the `fields` filter -------------------------------------------------------------------


def select_fields(document: Any, fields: str | None) -> Any:
    """Apply Spotify's ``fields`` syntax: ``a,b.c,d(e,f),!g``; ``None`` keeps everything.

    A selection applies to every element of a list. A selection made only of exclusions
    keeps everything else.
    """
    if not fields:
        return document
    selection, position = _parse_selection(fields, 0)
    if position != len(fields):
        return document  # unparseable: Spotify would 400, serving it all is kinder to tests
    return _apply_selection(document, selection)


_Selection = dict[str, "tuple[bool, _Selection | None]"]  # name -> (excluded, nested)


def _parse_selection(text: str, position: int) -> tuple[_Selection, int]:
    selection: _Selection = {}
    while position < len(text):
        excluded = text[position] == "!"
        position += excluded
        name_match = re.compile(r"[A-Za-z0-9_]+").match(text, position)
        if name_match is None:
            return selection, position
        name, position = name_match.group(), name_match.end()
        nested: _Selection | None = None
        if position < len(text) and text[position] == "(":
            nested, position = _parse_selection(text, position + 1)
            if position >= len(text) or text[position] != ")":
                return selection, position
            position += 1
        elif position < len(text) and text[position] == ".":
            nested, position = _parse_selection_path(text, position + 1)
        selection[name] = (excluded, nested)
        if position < len(text) and text[position] == ",":
            position += 1
            continue
        break
    return selection, position


def _parse_selection_path(text: str, position: int) -> tuple[_Selection, int]:
    """After ``a.``: exactly one field (possibly with its own selection)."""
    name_match = re.compile(r"!?[A-Za-z0-9_]+").match(text, position)
    if name_match is None:
        return {}, position
    excluded = name_match.group().startswith("!")
    name, position = name_match.group().lstrip("!"), name_match.end()
    nested: _Selection | None = None
    if position < len(text) and text[position] == "(":
        nested, position = _parse_selection(text, position + 1)
        position += position < len(text) and text[position] == ")"
    elif position < len(text) and text[position] == ".":
        nested, position = _parse_selection_path(text, position + 1)
    return {name: (excluded, nested)}, position


def _apply_selection(value: Any, selection: _Selection) -> Any:
    if isinstance(value, list):
        return [_apply_selection(element, selection) for element in value]
    if not isinstance(value, dict):
        return value
    only_exclusions = all(excluded for excluded, _ in selection.values())
    result = {}
    for key, item in value.items():
        chosen = selection.get(key)
        if chosen is None:
            if only_exclusions:
                result[key] = item
            continue
        excluded, nested = chosen
        if excluded:
            continue
        result[key] = item if nested is None else _apply_selection(item, nested)
    return result


# -- HTTP plumbing -------------------------------------------------------------------------


class _Handler(LoopbackHandler):
    server_version = "local-spotify/1"

    def _serve(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        try:
            response = self.server.app._handle(method, self.path, self.headers, body)
        except Exception:  # a simulator bug must show up, not hang the client
            traceback.print_exc(file=sys.stderr)
            response = _api_error(500, "Server error.")
        if response is None:
            self.close_connection = True
            return
        headers = [
            ("Content-Type", response.content_type),
            ("Content-Length", str(len(response.body))),
            *response.headers,
        ]
        try:
            if response.trickle is not None and response.trickle[2]:
                data = self._head(response.status, headers) + response.body
            else:
                self.send_response(response.status)
                for name, value in headers:
                    self.send_header(name, value)
                self.end_headers()
                data = response.body
            if response.trickle is None:
                self.wfile.write(data)
                return
            piece_bytes, interval, _ = response.trickle
            for start in range(0, len(data), piece_bytes):
                self.wfile.write(data[start : start + piece_bytes])
                self.wfile.flush()
                if self.server.app._stopping.wait(interval):
                    self.close_connection = True
                    return
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up first (a read timeout on a delayed reply): nothing to tell.
            self.close_connection = True

    def _head(self, status: int, headers: list[tuple[str, str]]) -> bytes:
        """The status line and headers as ``send_response`` would write them, as bytes."""
        lines = [
            f"{self.protocol_version} {status} {self.responses.get(status, ('',))[0]}",
            f"Server: {self.version_string()}",
            f"Date: {self.date_time_string()}",
            *(f"{name}: {value}" for name, value in headers),
        ]
        return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_DELETE(self) -> None:
        self._serve("DELETE")


# -- command line --------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = command_line(
        "python -m etl_lib.local_spotify",
        "Serve simulated Spotify charts on 127.0.0.1 with the Web API's URLs.",
        port=8765,
        epilog="The same charts in the public archive's format, with the archive's GitHub "
        "commit history: python -m etl_lib.local_spotify.archive_server",
    )
    parser.add_argument("--client-id", default=DEFAULT_CLIENT_ID)
    parser.add_argument("--client-secret", default=DEFAULT_CLIENT_SECRET)
    parser.add_argument(
        "--development-mode",
        action="store_true",
        help="an app without extended quota: Spotify-owned playlists answer 404",
    )
    parser.add_argument(
        "--user-id", default=LOCAL_USER_ID, help="who /authorize logs in as (default %(default)s)"
    )
    parser.add_argument(
        "--rotate-refresh-tokens",
        action="store_true",
        help="every refresh returns a new refresh token and retires the old one",
    )
    parser.add_argument("--entry-fields", choices=ENTRY_FIELDS, default="both")
    args = parser.parse_args(argv)

    server = LocalSpotifyServer(
        ChartSimulator(seed=args.seed),
        client_id=args.client_id,
        client_secret=args.client_secret,
        now=args.now,
        port=args.port,
        extended_quota=not args.development_mode,
        user_id=args.user_id,
        rotate_refresh_tokens=args.rotate_refresh_tokens,
        entry_fields=args.entry_fields,
    )
    simulator = server.simulator

    def banner() -> list[str]:
        lines = [
            # base_url and token_url come first: scripts read the first two lines.
            f"base_url:      {server.base_url}",
            f"token_url:     {server.token_url}",
            f"authorize_url: {server.authorize_url}",
            f"client_id:     {server.client_id}",
            f"client_secret: {server.client_secret}",
            f"simulated now: {server.clock.isoformat()}",
        ]
        mode = "development (Spotify-owned playlists answer 404)"
        lines.append(f"app mode:      {'extended quota' if server.extended_quota else mode}")
        for playlist_id, name in simulator.playlists.items():
            who = f"owner {simulator.owner(playlist_id)}"
            if collaborators := simulator.collaborators(playlist_id):
                who += f", collaborators {', '.join(collaborators)}"
            lines.append(f"playlist:      {playlist_id}  {name}  ({who})")
        login_query = urlencode(
            {
                "client_id": server.client_id,
                "response_type": "code",
                "redirect_uri": "http://127.0.0.1:<port>/callback",
                "code_challenge_method": "S256",
                "code_challenge": "<base64url(sha256(code_verifier))>",
                "scope": DEFAULT_SCOPE,
            },
            safe="<>():/",
            quote_via=quote,
        )
        lines.append(
            f"login:         GET {server.authorize_url}?{login_query}\n"
            f"               approves at once as {server.user_id!r} and redirects with ?code=; "
            f"exchange it at token_url (grant_type=authorization_code, code_verifier=...)"
        )
        return lines

    return serve_in_foreground(server, banner)


if __name__ == "__main__":
    raise SystemExit(main())
