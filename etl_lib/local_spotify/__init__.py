"""A local, offline stand-in for the Spotify Web API, serving simulated daily charts.

``ChartSimulator`` computes the charts (pure, deterministic); ``LocalSpotifyServer`` serves
them over HTTP with Spotify's URLs, tokens, paging and errors.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from etl_lib.local_spotify.simulator import (
    CHART_SIZE,
    DEFAULT_PLAYLISTS,
    SPOTIFY_API_BASE_URL,
    ChartSimulator,
    spotify_id,
)

if TYPE_CHECKING:
    from etl_lib.local_spotify.server import DEFAULT_NOW, LocalSpotifyServer, RecordedRequest

__all__ = [
    "CHART_SIZE",
    "DEFAULT_NOW",
    "DEFAULT_PLAYLISTS",
    "SPOTIFY_API_BASE_URL",
    "ChartSimulator",
    "LocalSpotifyServer",
    "RecordedRequest",
    "spotify_id",
]

_SERVER_NAMES = {"DEFAULT_NOW", "LocalSpotifyServer", "RecordedRequest"}


def __getattr__(name: str) -> Any:
    # Imported on first use so `python -m etl_lib.local_spotify.server` does not find its
    # own module already imported by the package (runpy warns about that).
    if name in _SERVER_NAMES:
        from etl_lib.local_spotify import server

        return getattr(server, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
