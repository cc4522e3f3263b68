"""What the local servers share: serving on 127.0.0.1 from a daemon thread, and a simulated clock.

A subclass names itself (``_name``, ``_thread_prefix``), passes its request handler class to
``LoopbackServer.__init__`` and answers requests; the handler reaches it as
``self.server.app``.
"""

from __future__ import annotations

import argparse
import threading
import time
from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar, Self

DEFAULT_NOW = datetime(2026, 11, 1, 12, tzinfo=UTC)
# shutdown() waits up to one poll interval; test suites start many servers.
POLL_INTERVAL_SECONDS = 0.01


class LoopbackHTTPServer(ThreadingHTTPServer):
    # Daemon threads are not joined on close: a reply being delayed cannot hold up stop().
    daemon_threads = True
    app: Any  # the LoopbackServer (subclass) being served


class LoopbackHandler(BaseHTTPRequestHandler):
    server: LoopbackHTTPServer
    sys_version = ""

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: test output stays readable; the server's ``requests`` has the log."""


class LoopbackServer:
    """An HTTP server on ``127.0.0.1`` with a simulated clock (aware, kept in UTC).

    Use as a context manager, or ``start()``/``stop()``; ``origin`` exists once started.
    ``port=0`` takes a free port.
    """

    _name: ClassVar[str]  # for error messages: "local Spotify server"
    _thread_prefix: ClassVar[str]  # the serving thread is "<prefix>-<port>"

    def __init__(
        self,
        handler: type[LoopbackHandler],
        *,
        now: datetime | None = None,
        port: int = 0,
    ) -> None:
        self.port = port
        self._handler = handler
        self._clock = DEFAULT_NOW
        self.set_time(now if now is not None else DEFAULT_NOW)
        self._httpd: LoopbackHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # lifecycle ----------------------------------------------------------------------------

    def start(self) -> Self:
        if self._httpd is not None:
            raise RuntimeError(f"the {self._name} is already running")
        httpd = LoopbackHTTPServer(("127.0.0.1", self.port), self._handler)
        httpd.app = self
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": POLL_INTERVAL_SECONDS},
            name=f"{self._thread_prefix}-{httpd.server_address[1]}",
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

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    @property
    def origin(self) -> str:
        if self._httpd is None:
            raise RuntimeError(f"the {self._name} is not running; call start() first")
        host, port = self._httpd.server_address[:2]
        return f"http://{host}:{port}"

    # simulated clock ----------------------------------------------------------------------

    @property
    def clock(self) -> datetime:
        return self._clock

    def set_time(self, moment: datetime) -> None:
        if moment.tzinfo is None:
            raise ValueError(f"the clock needs an aware datetime, got naive {moment!r}")
        self._clock = moment.astimezone(UTC)


# -- command line (python -m etl_lib.local_spotify[.archive_server]) ------------------------


def utc_moment(text: str) -> datetime:
    """An ISO 8601 time (a trailing Z included), UTC unless it gives an offset."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00").replace("z", "+00:00"))
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


def _now_argument(text: str) -> datetime:
    try:
        return utc_moment(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not an ISO 8601 time: {text!r}") from None


def command_line(
    prog: str, description: str, *, port: int, epilog: str | None = None
) -> argparse.ArgumentParser:
    """The options every local server takes: --port, --seed (the charts) and --now."""
    parser = argparse.ArgumentParser(prog=prog, description=description, epilog=epilog)
    parser.add_argument("--port", type=int, default=port, help="0 picks a free port")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument(
        "--now",
        type=_now_argument,
        default=DEFAULT_NOW,
        help="simulated time, ISO 8601, UTC unless an offset is given "
        f"(default {DEFAULT_NOW.isoformat()})",
    )
    return parser


def serve_in_foreground(server: LoopbackServer, banner: Callable[[], Iterable[str]]) -> int:
    """Start ``server``, print its ``banner`` (scripts read its first lines) and serve until
    Ctrl-C; the server is stopped however this ends."""
    server.start()
    try:
        for line in banner():
            print(line)
        print("Ctrl-C stops the server.", flush=True)
        while True:
            time.sleep(3600)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0
