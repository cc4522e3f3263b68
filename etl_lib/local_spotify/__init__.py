"""A local, offline stand-in for the Spotify Web API, serving simulated daily charts.

``ChartSimulator`` computes the charts and knows who owns each playlist (pure,
deterministic); ``LocalSpotifyServer`` serves them over HTTP with Spotify's URLs, tokens
(client credentials, Authorization Code with PKCE, refresh tokens), paging, errors and the
2026 access rules: Spotify-owned playlists 404 in development mode, and a user playlist's
items answer only to its owner or a collaborator.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from etl_lib.local_spotify.simulator import (
    CHART_SIZE,
    DEFAULT_PLAYLISTS,
    DEFAULT_USER_PLAYLISTS,
    DEFAULT_USERS,
    LOCAL_USER_ID,
    OTHER_USER_ID,
    SPOTIFY_API_BASE_URL,
    SPOTIFY_USER_ID,
    ChartSimulator,
    UserPlaylist,
    spotify_id,
)

if TYPE_CHECKING:
    from etl_lib.local_spotify.server import (
        DEFAULT_NOW,
        DEFAULT_SCOPE,
        LocalSpotifyServer,
        RecordedRequest,
        s256_challenge,
    )

__all__ = [
    "CHART_SIZE",
    "DEFAULT_NOW",
    "DEFAULT_PLAYLISTS",
    "DEFAULT_SCOPE",
    "DEFAULT_USERS",
    "DEFAULT_USER_PLAYLISTS",
    "LOCAL_USER_ID",
    "OTHER_USER_ID",
    "SPOTIFY_API_BASE_URL",
    "SPOTIFY_USER_ID",
    "ChartSimulator",
    "LocalSpotifyServer",
    "RecordedRequest",
    "UserPlaylist",
    "s256_challenge",
    "spotify_id",
]

_SERVER_NAMES = {
    "DEFAULT_NOW",
    "DEFAULT_SCOPE",
    "LocalSpotifyServer",
    "RecordedRequest",
    "s256_challenge",
}


def __getattr__(name: str) -> Any:
    # Imported on first use so `python -m etl_lib.local_spotify.server` does not find its
    # own module already imported by the package (runpy warns about that).
    if name in _SERVER_NAMES:
        from etl_lib.local_spotify import server

        return getattr(server, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
