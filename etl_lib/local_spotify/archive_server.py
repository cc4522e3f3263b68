"""A local stand-in for the public playlist archive (raw.githubusercontent.com/mackorone/...).

It serves ``GET /playlists/pretty/<playlist_id>.json`` in the archive's JSON format, rendered
from the ``ChartSimulator`` chart of the simulated clock's UTC day, on 127.0.0.1. Unknown
playlists get the plain-text 404 GitHub's raw host sends. ``fail_next`` scripts failures, so
tests exercise the archive source without the internet.
"""

from __future__ import annotations

import json
import re
import sys
import threading
import traceback
from datetime import datetime
from http import HTTPStatus
from typing import Any, NamedTuple
from urllib.parse import urlsplit

from etl_lib.local_spotify.loopback import LoopbackHandler, LoopbackServer
from etl_lib.local_spotify.simulator import OPEN_SPOTIFY_URL, ChartSimulator

_PRETTY_JSON_PATH = re.compile(r"^/playlists/pretty/(?P<id>[^/]+)\.json$")


class _Response(NamedTuple):
    status: int
    body: bytes
    content_type: str


def _text_response(status: int) -> _Response:
    # GitHub's raw host answers errors with a short plain-text body such as "404: Not Found".
    body = f"{status}: {HTTPStatus(status).phrase}".encode()
    return _Response(status, body, "text/plain; charset=utf-8")


def _archive_added_at(api_added_at: str | None) -> str | None:
    # The archive stores str(datetime) of Spotify's UTC time: "2026-10-01 00:00:00".
    if not api_added_at:
        return None
    return api_added_at.replace("T", " ").removesuffix("Z")


def _link(obj: dict[str, Any]) -> dict[str, Any]:
    return {"name": obj["name"], "url": obj["external_urls"]["spotify"]}


def archive_document(simulator: ChartSimulator, playlist_id: str, day: datetime) -> dict:
    """The archive's ``playlists/pretty/<id>.json`` for the simulated chart of ``day``."""
    playlist = simulator.playlist(playlist_id, day)
    tracks = []
    for entry in simulator.chart(playlist_id, day):
        item = entry["item"]
        tracks.append(
            {
                "added_at": _archive_added_at(entry.get("added_at")),
                "album": _link(item["album"]),
                "artists": [_link(artist) for artist in item["artists"]],
                "duration_ms": item["duration_ms"],
                "name": item["name"],
                "url": item["external_urls"]["spotify"],
            }
        )
    return {
        "description": playlist["description"],
        "num_followers": playlist["followers"]["total"],
        "original_name": playlist["name"],
        "owner": {
            "name": playlist["owner"]["display_name"],
            "url": f"{OPEN_SPOTIFY_URL}/user/{playlist['owner']['id']}",
        },
        "snapshot_id": playlist["snapshot_id"],
        "tracks": tracks,
        "unique_name": playlist["name"],
        "url": playlist["external_urls"]["spotify"],
    }


class LocalArchiveServer(LoopbackServer):
    """The playlist archive on ``127.0.0.1``, serving a ``ChartSimulator``'s charts.

    Use as a context manager, or ``start()``/``stop()``; ``base_url`` exists once started and
    is what ``archive.fetch_archive_envelope`` takes. ``port=0`` takes a free port.
    """

    _name = "local archive server"
    _thread_prefix = "local-archive"

    def __init__(
        self,
        simulator: ChartSimulator | None = None,
        *,
        now: datetime | None = None,
        port: int = 0,
    ) -> None:
        super().__init__(_Handler, now=now, port=port)
        self.simulator = simulator if simulator is not None else ChartSimulator()
        self.requests: list[str] = []  # request paths, in arrival order
        self._lock = threading.Lock()
        self._faults: list[list[int]] = []  # [status, remaining]

    @property
    def base_url(self) -> str:
        return self.origin

    # test hooks ---------------------------------------------------------------------------

    def fail_next(self, status: int, times: int = 1) -> None:
        """Answer the next ``times`` requests with ``status`` and GitHub's plain-text body."""
        if not 400 <= status <= 599:
            raise ValueError(f"not an HTTP error status: {status}")
        if times < 1:
            raise ValueError(f"times must be at least 1, got {times}")
        with self._lock:
            self._faults.append([status, times])

    # request handling ---------------------------------------------------------------------

    def _take_fault(self) -> int | None:
        with self._lock:
            if not self._faults:
                return None
            fault = self._faults[0]
            fault[1] -= 1
            if fault[1] == 0:
                self._faults.pop(0)
            return fault[0]

    def _dispatch(self, method: str, target: str) -> _Response:
        with self._lock:
            self.requests.append(target)
        status = self._take_fault()
        if status is not None:
            return _text_response(status)
        if method not in ("GET", "HEAD"):
            return _text_response(405)
        match = _PRETTY_JSON_PATH.match(urlsplit(target).path)
        if match is None or not self.simulator.has_playlist(match["id"]):
            return _text_response(404)
        document = archive_document(self.simulator, match["id"], self._clock)
        # Pretty-printed with sorted keys, as the archive commits it.
        body = json.dumps(document, ensure_ascii=False, indent=2, sort_keys=True)
        return _Response(200, body.encode("utf-8"), "text/plain; charset=utf-8")


class _Handler(LoopbackHandler):
    server_version = "local-archive/1"

    def _serve(self, method: str) -> None:
        try:
            response = self.server.app._dispatch(method, self.path)
        except Exception:  # a simulator bug must show up, not hang the client
            traceback.print_exc(file=sys.stderr)
            response = _text_response(500)
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(response.body)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_HEAD(self) -> None:
        self._serve("HEAD")
