"""HTTP requests with an overall deadline: the Spotify API, its token endpoint, the archive.

``requests`` bounds connecting and each socket read, not a whole request: a server that
sends a byte just before every read timeout holds a reply open for as long as it likes,
while its status line and headers arrive as much as while its body does. ``BoundedSession``
arms a watchdog for every request: at the deadline it shuts down the request's socket, so
whatever read or write is blocked on it fails at once, and the request raises
``DeadlineExceeded`` (a ``requests.Timeout``). A request thus ends at its deadline, or once
its connect timeout has run out if the deadline passes while it is still connecting. The body
is also checked against the deadline piece by piece as it arrives, which bounds transports
the watchdog cannot reach (a SOCKS proxy, an adapter mounted by a test or a plugin) to the
deadline plus one read timeout. With ``origin`` set the session sends nothing to any other
scheme, host or port, follows no redirect and raises ``Redirected`` for a 3xx answer.
"""

from __future__ import annotations

import contextvars
import http.client
import random
import socket
import threading
import time
import zlib
from urllib.parse import urljoin, urlsplit

import requests
import urllib3
from requests.adapters import HTTPAdapter
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool

_PIECE_BYTES = 64 * 1024


class DeadlineExceeded(requests.Timeout):
    """The whole request took longer than its deadline."""


class OffOrigin(requests.RequestException):
    """A request for a URL outside the session's origin; nothing was sent."""

    def __init__(self, url: str, origin: str):
        super().__init__(f"{url} is not on {origin}")
        self.url = url
        self.origin = origin


class Redirected(requests.RequestException):
    """A 3xx answer on a session bound to one origin: not followed."""

    def __init__(self, response: requests.Response):
        self.status = response.status_code
        location = response.headers.get("Location")
        # Where it points, not the whole URL: a login portal's query can be long and opaque.
        self.location_origin = origin_of(urljoin(response.url, location)) if location else None
        where = f"to {self.location_origin}" if self.location_origin else "without a Location"
        super().__init__(f"{self.status} {where} from {response.url}", response=response)


def origin_of(url: str) -> str:
    """``scheme://host:port`` with the default port spelled out, lower-cased."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or {"http": 80, "https": 443}.get(scheme)
    except ValueError:  # a port that is not a number
        port = None
    return f"{scheme}://{(parts.hostname or '').lower()}:{port}"


class _Watchdog:
    """Shuts down the sockets of one request once its deadline has passed.

    Connections report their sockets through ``_watchdog`` (below) once connected and as
    they start a request: the socket, since http.client lets go of a connection's socket
    when a reply without keep-alive arrives, while its body is still to be read. ``disarm``
    must come before a connection goes back to its pool, so that a late timer never cuts a
    connection another request is using.
    """

    def __init__(self, seconds: float):
        self._lock = threading.Lock()
        self._sockets: list[socket.socket] = []
        self._armed = True
        self.fired = False
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True
        self._timer.start()

    def watch(self, sock: socket.socket | None) -> None:
        if sock is None:  # not connected yet: connect() reports it
            return
        with self._lock:
            if not self._armed:
                return
            self._sockets.append(sock)
            if self.fired:  # the deadline passed while it was connecting
                _shut_down(sock)

    def disarm(self) -> None:
        with self._lock:
            self._armed = False
            self._sockets.clear()
        self._timer.cancel()

    def _fire(self) -> None:
        with self._lock:
            if not self._armed:
                return
            self.fired = True
            for sock in self._sockets:
                _shut_down(sock)


def _shut_down(sock: socket.socket) -> None:
    try:
        # The plain socket's shutdown, also under TLS: ssl.SSLSocket.shutdown would drop
        # its TLS state under the thread that is reading, while this only ends the stream.
        socket.socket.shutdown(sock, socket.SHUT_RDWR)
    except OSError:  # already closed
        pass


_watchdog: contextvars.ContextVar[_Watchdog | None] = contextvars.ContextVar(
    "bounded_http_watchdog", default=None
)


class _WatchedConnection:
    """Mixed into urllib3's connections: reports them to the running request's watchdog."""

    def connect(self):
        super().connect()
        if (watchdog := _watchdog.get()) is not None:
            watchdog.watch(self.sock)

    def putrequest(self, *args, **kwargs):
        # A connection reused from the pool connected during an earlier request.
        if (watchdog := _watchdog.get()) is not None:
            watchdog.watch(self.sock)
        return super().putrequest(*args, **kwargs)


class _WatchedHTTPConnection(_WatchedConnection, HTTPConnectionPool.ConnectionCls):
    pass


class _WatchedHTTPSConnection(_WatchedConnection, HTTPSConnectionPool.ConnectionCls):
    pass


class _WatchedHTTPConnectionPool(HTTPConnectionPool):
    ConnectionCls = _WatchedHTTPConnection


class _WatchedHTTPSConnectionPool(HTTPSConnectionPool):
    ConnectionCls = _WatchedHTTPSConnection


_WATCHED_POOLS = {"http": _WatchedHTTPConnectionPool, "https": _WatchedHTTPSConnectionPool}


class _WatchedAdapter(HTTPAdapter):
    """requests' adapter, with pools whose connections the watchdog can reach."""

    def init_poolmanager(self, *args, **kwargs):
        super().init_poolmanager(*args, **kwargs)
        self.poolmanager.pool_classes_by_scheme = _WATCHED_POOLS

    def proxy_manager_for(self, proxy, **proxy_kwargs):
        manager = super().proxy_manager_for(proxy, **proxy_kwargs)
        if not proxy.lower().startswith("socks"):  # SOCKS pools are urllib3's own kind
            manager.pool_classes_by_scheme = _WATCHED_POOLS
        return manager


# What a cut socket surfaces as, depending on where the request was blocked.
_TRANSPORT_ERRORS = (
    requests.RequestException,
    urllib3.exceptions.HTTPError,
    http.client.HTTPException,
    OSError,
)


class BoundedSession(requests.Session):
    """A ``requests.Session`` whose every request ends within ``deadline_seconds``.

    Callers still pass ``timeout=(connect, read)`` as usual; the deadline comes on top.
    """

    def __init__(self, deadline_seconds: float, *, origin: str | None = None):
        super().__init__()
        self.deadline_seconds = deadline_seconds
        self.origin = origin_of(origin) if origin else None
        self.mount("https://", _WatchedAdapter())
        self.mount("http://", _WatchedAdapter())
        # A plain body is read piece by piece as it arrives; a compressed one would have to
        # be decoded by hand (done below for servers that compress anyway).
        self.headers["Accept-Encoding"] = "identity"

    def request(self, method, url, *args, **kwargs):
        if self.origin is not None:
            if origin_of(url) != self.origin:
                raise OffOrigin(url, self.origin)
            # A redirect could lead anywhere, credentials attached or not.
            kwargs["allow_redirects"] = False
        kwargs["stream"] = True
        deadline = time.monotonic() + self.deadline_seconds
        watchdog = _Watchdog(self.deadline_seconds)
        watching = _watchdog.set(watchdog)
        response = None
        try:
            response = super().request(method, url, *args, **kwargs)
            read_body(response, deadline, self.deadline_seconds)
            if watchdog.fired:  # a body without a length ends where the socket was cut
                raise DeadlineExceeded(self._too_long(url), response=response)
        except BaseException as exc:
            if response is not None:
                response.close()
            cut = isinstance(exc, _TRANSPORT_ERRORS) and not isinstance(exc, DeadlineExceeded)
            if watchdog.fired and cut:
                raise DeadlineExceeded(
                    self._too_long(url),
                    request=getattr(exc, "request", None),
                    response=getattr(exc, "response", None),
                ) from exc
            raise
        finally:
            watchdog.disarm()  # before the connection can serve another request
            _watchdog.reset(watching)
        _release(response)
        if self.origin is not None and 300 <= response.status_code < 400:
            raise Redirected(response)
        return response

    def _too_long(self, url: str) -> str:
        return f"{url} took longer than {self.deadline_seconds:g} s"


def read_body(response: requests.Response, deadline: float, deadline_seconds: float) -> None:
    """Read a streamed response's body into it; raise past ``deadline``.

    The caller closes the response if this raises, and releases its connection otherwise.
    """
    body = b"".join(_pieces(response, deadline, deadline_seconds))
    # What requests itself does once a body is read: .content, .text and .json() use it.
    response._content = body
    response._content_consumed = True


def _release(response: requests.Response) -> None:
    """Hand a fully read response's connection back to its pool, for the next page."""
    if hasattr(response.raw, "release_conn"):
        response.raw.release_conn()
    else:
        response.close()


def _pieces(response: requests.Response, deadline: float, deadline_seconds: float):
    def check_deadline() -> None:
        if time.monotonic() > deadline:
            raise DeadlineExceeded(
                f"{response.url} took longer than {deadline_seconds:g} s", response=response
            )

    check_deadline()
    plain = getattr(getattr(response.raw, "_fp", None), "read1", None)
    if plain is None:
        # Not urllib3 over http.client (an adapter of tests or plugins): its own chunks.
        for piece in response.iter_content(_PIECE_BYTES):
            yield piece
            check_deadline()
        return
    decoder = _decoder(response.headers.get("Content-Encoding"))
    source = response.raw._fp
    try:
        while piece := source.read1(_PIECE_BYTES):  # returns what one socket read brought
            yield decoder.decompress(piece) if decoder else piece
            check_deadline()
        if source.length:  # the connection closed before Content-Length bytes arrived
            raise requests.ConnectionError(
                f"{response.url}: the body ended {source.length} bytes short", response=response
            )
        source.read()  # marks the reply complete, so the connection can be reused
    except requests.RequestException:
        raise  # ours, above (requests' exceptions are OSErrors too)
    except TimeoutError as exc:
        raise requests.ReadTimeout(str(exc), response=response) from exc
    except (http.client.HTTPException, OSError, zlib.error) as exc:
        raise requests.ConnectionError(
            f"{response.url}: the body could not be read ({type(exc).__name__})",
            response=response,
        ) from exc
    if decoder:
        yield decoder.flush()


def _decoder(content_encoding: str | None):
    encoding = (content_encoding or "identity").strip().lower()
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if encoding == "deflate":
        return zlib.decompressobj()
    if encoding == "identity":
        return None
    raise requests.ContentDecodingError(f"unsupported Content-Encoding {content_encoding!r}")


def backoff_seconds(failures: int) -> float:
    """The wait before retrying after ``failures`` failures in a row: exponential up to 8 s,
    with full jitter, so that many runs failing together do not retry in step."""
    return random.uniform(0, min(8.0, 0.5 * 2**failures))  # noqa: S311
