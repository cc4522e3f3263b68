"""HTTP requests with an overall deadline: the Spotify API, its token endpoint, the archive.

``requests`` bounds connecting and each socket read, not a whole request: a server that
sends a byte just before every read timeout holds a reply open for as long as it likes.
``BoundedSession`` reads each body in pieces as they arrive and fails the request with
``DeadlineExceeded`` (a ``requests.Timeout``) once it has taken longer than its deadline,
so a request lasts at most its deadline plus one read timeout. With ``origin`` set it sends
nothing to any other scheme, host or port, and follows no redirect.
"""

from __future__ import annotations

import http.client
import time
import zlib
from urllib.parse import urlsplit

import requests

_PIECE_BYTES = 64 * 1024


class DeadlineExceeded(requests.Timeout):
    """The whole request took longer than its deadline."""


class OffOrigin(requests.RequestException):
    """A request for a URL outside the session's origin; nothing was sent."""

    def __init__(self, url: str, origin: str):
        super().__init__(f"{url} is not on {origin}")
        self.url = url
        self.origin = origin


def origin_of(url: str) -> str:
    """``scheme://host:port`` with the default port spelled out, lower-cased."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port or {"http": 80, "https": 443}.get(scheme)
    except ValueError:  # a port that is not a number
        port = None
    return f"{scheme}://{(parts.hostname or '').lower()}:{port}"


class BoundedSession(requests.Session):
    """A ``requests.Session`` whose every request ends within ``deadline_seconds``.

    Callers still pass ``timeout=(connect, read)`` as usual; the deadline comes on top.
    """

    def __init__(self, deadline_seconds: float, *, origin: str | None = None):
        super().__init__()
        self.deadline_seconds = deadline_seconds
        self.origin = origin_of(origin) if origin else None
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
        response = super().request(method, url, *args, **kwargs)
        read_body(response, deadline, self.deadline_seconds)
        return response


def read_body(response: requests.Response, deadline: float, deadline_seconds: float) -> None:
    """Read a streamed response's body into it, or close it and raise past ``deadline``."""
    try:
        body = b"".join(_pieces(response, deadline, deadline_seconds))
    except BaseException:
        response.close()
        raise
    # What requests itself does once a body is read: .content, .text and .json() use it.
    response._content = body
    response._content_consumed = True
    if hasattr(response.raw, "release_conn"):
        response.raw.release_conn()  # back to the pool, for the next page
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
