"""A local stand-in for the Spotify Web API: client-credentials tokens and playlist reads.

It serves ``ChartSimulator`` charts over HTTP on 127.0.0.1 with Spotify's URLs, paging,
status codes and error bodies, so spotipy and ``requests`` talk to it exactly as they talk
to api.spotify.com. The clock is simulated: the chart served is the one of the clock's UTC
day, and tests move the clock instead of waiting. ``fail_next`` scripts 429s and 5xxs.

Run it in the foreground with ``python -m etl_lib.local_spotify --port 8765``.
"""

from __future__ import annotations

import argparse
import base64
import binascii
import json
import re
import secrets
import sys
import threading
import time
import traceback
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, urlencode, urlsplit

from etl_lib.local_spotify.simulator import ChartSimulator

DEFAULT_NOW = datetime(2026, 11, 1, 12, tzinfo=UTC)
DEFAULT_CLIENT_ID = "local-client-id"
DEFAULT_CLIENT_SECRET = "local-client-secret"
TOKEN_LIFETIME_SECONDS = 3600
DEFAULT_LIMIT = 20
# Per the OpenAPI spec: /items takes at most 50 per page, the deprecated /tracks 100.
MAX_LIMIT = {"items": 50, "tracks": 100}
# The first page embedded in a playlist object, as Spotify embeds it.
EMBEDDED_LIMIT = {"items": 50, "tracks": 100}

_PLAYLIST_PATH = re.compile(r"^/v1/playlists/(?P<id>[^/]+)$")
_PLAYLIST_ITEMS_PATH = re.compile(r"^/v1/playlists/(?P<id>[^/]+)/(?P<endpoint>items|tracks)$")
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


@dataclass
class _Fault:
    status: int
    remaining: int
    headers: dict[str, str]
    body: dict[str, Any] | str | None
    path_contains: str | None

    def matches(self, path: str) -> bool:
        if self.path_contains is None:
            return path.startswith("/v1/")
        return self.path_contains in path


@dataclass(frozen=True)
class _Response:
    status: int
    body: bytes
    headers: tuple[tuple[str, str], ...] = ()
    content_type: str = "application/json; charset=utf-8"


def _json_response(
    status: int, payload: Any, headers: Mapping[str, str] | None = None
) -> _Response:
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    return _Response(status, body, tuple((headers or {}).items()))


def _api_error(status: int, message: str, headers: Mapping[str, str] | None = None) -> _Response:
    return _json_response(status, {"error": {"status": status, "message": message}}, headers)


def _auth_error(error: str, description: str) -> _Response:
    return _json_response(400, {"error": error, "error_description": description})


class LocalSpotifyServer:
    """The Spotify Web API on ``127.0.0.1``, serving a ``ChartSimulator``.

    Use as a context manager, or ``start()``/``stop()``. ``base_url`` and ``token_url`` exist
    once started. ``port=0`` takes a free port.
    """

    def __init__(
        self,
        simulator: ChartSimulator | None = None,
        *,
        client_id: str = DEFAULT_CLIENT_ID,
        client_secret: str = DEFAULT_CLIENT_SECRET,
        now: datetime | None = None,
        port: int = 0,
        enforce_token_expiry: bool = False,
    ) -> None:
        self.simulator = simulator if simulator is not None else ChartSimulator()
        self.client_id = client_id
        self.client_secret = client_secret
        self.port = port
        # Off by default: clients judge expiry by wall time, so moving the simulated clock
        # across days would otherwise invalidate tokens they still consider fresh.
        self.enforce_token_expiry = enforce_token_expiry
        self.requests: list[RecordedRequest] = []
        self._clock = DEFAULT_NOW
        self.set_time(now if now is not None else DEFAULT_NOW)
        self._lock = threading.Lock()
        self._tokens: dict[str, datetime] = {}
        self._faults: list[_Fault] = []
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    # lifecycle ----------------------------------------------------------------------------

    def start(self) -> LocalSpotifyServer:
        if self._httpd is not None:
            raise RuntimeError("the local Spotify server is already running")
        httpd = _HTTPServer(("127.0.0.1", self.port), _Handler)
        httpd.app = self
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"local-spotify-{httpd.server_address[1]}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        httpd, thread = self._httpd, self._thread
        if httpd is None:
            return
        httpd.shutdown()
        httpd.server_close()
        if thread is not None:
            thread.join()
        self._httpd = self._thread = None

    def __enter__(self) -> LocalSpotifyServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def origin(self) -> str:
        if self._httpd is None:
            raise RuntimeError("the local Spotify server is not running; call start() first")
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    @property
    def base_url(self) -> str:
        return f"{self.origin}/v1"

    @property
    def token_url(self) -> str:
        return f"{self.origin}/api/token"

    # simulated clock ----------------------------------------------------------------------

    @property
    def clock(self) -> datetime:
        return self._clock

    @clock.setter
    def clock(self, moment: datetime) -> None:
        self.set_time(moment)

    def set_time(self, moment: datetime) -> None:
        if moment.tzinfo is None:
            raise ValueError(f"the clock needs an aware datetime, got naive {moment!r}")
        self._clock = moment.astimezone(UTC)

    def advance(self, delta: timedelta) -> None:
        self.set_time(self._clock + delta)

    # test hooks ---------------------------------------------------------------------------

    def fail_next(
        self,
        status: int,
        *,
        times: int = 1,
        headers: dict[str, str] | None = None,
        body: dict[str, Any] | str | None = None,
        path_contains: str | None = None,
    ) -> None:
        """Answer the next ``times`` matching requests with ``status`` instead.

        Without ``path_contains`` only authorized ``/v1`` requests match; with it, any
        request whose path and query contain it (``"/api/token"`` reaches the token
        endpoint). The default body is Spotify's error object; a ``str`` body is sent as
        text/html, like a gateway's error page.
        """
        if not 100 <= status <= 599:
            raise ValueError(f"not an HTTP status: {status}")
        if times < 1:
            raise ValueError(f"times must be at least 1, got {times}")
        fault = _Fault(status, times, dict(headers or {}), body, path_contains)
        with self._lock:
            self._faults.append(fault)

    def clear_faults(self) -> None:
        with self._lock:
            self._faults.clear()

    def issue_token(self) -> str:
        """A valid access token, without a round trip to the token endpoint."""
        token = f"BQ{secrets.token_urlsafe(48)}"
        with self._lock:
            self._tokens[token] = self._clock + timedelta(seconds=TOKEN_LIFETIME_SECONDS)
        return token

    # request handling ---------------------------------------------------------------------

    def _record(self, method: str, target: str) -> None:
        with self._lock:
            self.requests.append(RecordedRequest(method, target))

    def _take_fault(self, path: str) -> _Response | None:
        with self._lock:
            for fault in self._faults:
                if fault.matches(path):
                    fault.remaining -= 1
                    if fault.remaining == 0:
                        self._faults.remove(fault)
                    break
            else:
                return None
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

    def _dispatch(
        self, method: str, target: str, headers: Mapping[str, str], body: bytes
    ) -> _Response:
        """The response to one request; the HTTP handler only moves bytes."""
        self._record(method, target)
        parts = urlsplit(target)
        path = parts.path
        query = parse_qsl(parts.query, keep_blank_values=True)
        if path == "/api/token":
            return self._take_fault(target) or self._token(method, headers, body)
        if not path.startswith("/v1/"):
            return _api_error(404, "Service not found")
        refusal = self._check_bearer(headers)
        if refusal is not None:
            return refusal
        fault = self._take_fault(target)
        if fault is not None:
            return fault
        if match := _PLAYLIST_ITEMS_PATH.match(path):
            if method != "GET":
                return _api_error(405, "Method not allowed")
            return self._playlist_items(match["id"], match["endpoint"], query)
        if match := _PLAYLIST_PATH.match(path):
            if method != "GET":
                return _api_error(405, "Method not allowed")
            return self._playlist(match["id"], query)
        return _api_error(404, "Service not found")

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
        if client_id != self.client_id or client_secret != self.client_secret:
            return _auth_error("invalid_client", "Invalid client")
        grant_type = form.get("grant_type")
        if grant_type is None:
            return _auth_error("unsupported_grant_type", "grant_type parameter is missing")
        if grant_type != "client_credentials":
            return _auth_error(
                "unsupported_grant_type",
                "grant_type must be client_credentials, authorization_code or refresh_token",
            )
        token = self.issue_token()
        return _json_response(
            200,
            {"access_token": token, "token_type": "Bearer", "expires_in": TOKEN_LIFETIME_SECONDS},
        )

    def _check_bearer(self, headers: Mapping[str, str]) -> _Response | None:
        authorization = headers.get("Authorization")
        if not authorization:
            return _api_error(401, "No token provided")
        scheme, _, token = authorization.partition(" ")
        with self._lock:
            expires_at = self._tokens.get(token.strip()) if scheme == "Bearer" else None
        challenge = 'Bearer realm="spotify", error="invalid_token", error_description="{}"'
        if expires_at is None:
            message = "Invalid access token"
            return _api_error(401, message, {"WWW-Authenticate": challenge.format(message)})
        if self.enforce_token_expiry and self._clock >= expires_at:
            message = "The access token expired"
            return _api_error(401, message, {"WWW-Authenticate": challenge.format(message)})
        return None

    def _playlist(self, playlist_id: str, query: list[tuple[str, str]]) -> _Response:
        if not self.simulator.has_playlist(playlist_id):
            return _api_error(404, "Resource not found")
        day = self._clock
        playlist = self.simulator.playlist(playlist_id, day, self.base_url)
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
        self, playlist_id: str, endpoint: str, query: list[tuple[str, str]]
    ) -> _Response:
        if not self.simulator.has_playlist(playlist_id):
            return _api_error(404, "Resource not found")
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
            "items": entries[offset : offset + limit],
            "limit": limit,
            "next": url(offset + limit) if offset + limit < total else None,
            "offset": offset,
            "previous": url(max(0, offset - limit)) if offset > 0 else None,
            "total": total,
        }


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


class _HTTPServer(ThreadingHTTPServer):
    daemon_threads = True
    app: LocalSpotifyServer


class _Handler(BaseHTTPRequestHandler):
    server: _HTTPServer
    server_version = "local-spotify/1"
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: test output stays readable; ``LocalSpotifyServer.requests`` has the log."""

    def _serve(self, method: str) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length > 0 else b""
        try:
            response = self.server.app._dispatch(method, self.path, self.headers, body)
        except Exception:  # a simulator bug must show up, not hang the client
            traceback.print_exc(file=sys.stderr)
            response = _api_error(500, "Server error.")
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(response.body)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_POST(self) -> None:
        self._serve("POST")

    def do_PUT(self) -> None:
        self._serve("PUT")

    def do_DELETE(self) -> None:
        self._serve("DELETE")


# -- command line --------------------------------------------------------------------------


def _parse_moment(text: str) -> datetime:
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)  # a bare date or time on the command line is UTC
    return moment


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m etl_lib.local_spotify",
        description="Serve simulated Spotify charts on 127.0.0.1 with the Web API's URLs.",
    )
    parser.add_argument("--port", type=int, default=8765, help="0 picks a free port")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument(
        "--now",
        type=_parse_moment,
        default=DEFAULT_NOW,
        help=f"simulated time, ISO 8601, UTC unless an offset is given "
        f"(default {DEFAULT_NOW.isoformat()})",
    )
    parser.add_argument("--client-id", default=DEFAULT_CLIENT_ID)
    parser.add_argument("--client-secret", default=DEFAULT_CLIENT_SECRET)
    args = parser.parse_args(argv)

    server = LocalSpotifyServer(
        ChartSimulator(seed=args.seed),
        client_id=args.client_id,
        client_secret=args.client_secret,
        now=args.now,
        port=args.port,
    )
    server.start()
    try:
        print(f"base_url:      {server.base_url}")
        print(f"token_url:     {server.token_url}")
        print(f"client_id:     {server.client_id}")
        print(f"client_secret: {server.client_secret}")
        print(f"simulated now: {server.clock.isoformat()}")
        for playlist_id, name in server.simulator.playlists.items():
            print(f"playlist:      {playlist_id}  {name}")
        print("Ctrl-C stops the server.", flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
