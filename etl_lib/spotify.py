"""Extract: read a playlist and all its items from the Spotify Web API, through spotipy.

The API base URL and the token URL are settings, so the same code talks to Spotify or to the
local server in ``etl_lib.local_spotify``. Spotify's HTTP failures are turned into
``etl_lib.errors`` exceptions whose messages say what happened and what to do.
"""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Any

import requests
import spotipy
from spotipy.cache_handler import MemoryCacheHandler
from spotipy.oauth2 import SpotifyClientCredentials, SpotifyOauthError

from etl_lib.config import Settings
from etl_lib.envelope import make_envelope
from etl_lib.errors import (
    ConfigError,
    PlaylistNotFound,
    SpotifyAuthError,
    SpotifyError,
)

PAGE_SIZE = 50  # the API's maximum page size for playlist items
# Transient server errors are retried by the HTTP session; 429 is not, because urllib3 would
# sleep for whatever Retry-After says (hours, for an exhausted quota).
RETRIED_STATUSES = (500, 502, 503, 504)
PLAYLIST_FIELDS = "id,name,snapshot_id,followers(total),owner(id)"

# spotipy logs every HTTP error at ERROR level; this module reports them as exceptions instead.
logging.getLogger("spotipy").setLevel(logging.CRITICAL)


def make_client(settings: Settings) -> spotipy.Spotify:
    """A spotipy client using client credentials against the configured endpoints."""
    if not settings.client_id or not settings.client_secret:
        raise ConfigError(
            "Spotify credentials are not set: export SPOTIFY_CLIENT_ID and "
            "SPOTIFY_CLIENT_SECRET (from developer.spotify.com/dashboard), "
            "or run `spotify-etl demo` to use the local simulated API"
        )
    auth = SpotifyClientCredentials(
        client_id=settings.client_id,
        client_secret=settings.client_secret,
        cache_handler=MemoryCacheHandler(),
        requests_timeout=settings.request_timeout_seconds,
    )
    auth.OAUTH_TOKEN_URL = settings.token_url
    client = spotipy.Spotify(
        auth_manager=auth,
        requests_timeout=settings.request_timeout_seconds,
        retries=3,
        status_retries=3,
        status_forcelist=RETRIED_STATUSES,
        backoff_factor=0.5,
    )
    client.prefix = settings.api_base_url.rstrip("/") + "/"
    return client


def _explain(exc: spotipy.SpotifyException, playlist_id: str) -> SpotifyError:
    status = exc.http_status
    if status == 404:
        return PlaylistNotFound(
            f"playlist {playlist_id} was not found (404). Spotify-owned editorial playlists "
            "(such as Top 50 Global) answer 404 to apps without extended quota since "
            "2024-11-27: use a playlist you own or collaborate on, or an extended-quota app"
        )
    if status == 401:
        return SpotifyAuthError(
            f"the API rejected the access token (401) while reading playlist {playlist_id}: "
            "check SPOTIFY_CLIENT_ID and SPOTIFY_CLIENT_SECRET"
        )
    if status == 403:
        return SpotifyError(
            f"reading the items of playlist {playlist_id} is forbidden (403). Since "
            "February/March 2026 playlist items are served only to the playlist's owner or "
            "a collaborator: use a playlist you own or collaborate on"
        )
    if status == 429:
        retry_after = (exc.headers or {}).get("Retry-After", "an unknown number of")
        return SpotifyError(
            f"rate limited by the API (429) while reading playlist {playlist_id}: "
            f"retry after {retry_after} seconds"
        )
    return SpotifyError(
        f"the API answered {status} while reading playlist {playlist_id}: {exc.msg.strip()}"
    )


def _call(playlist_id: str, settings: Settings, request, *args, **kwargs) -> Any:
    try:
        return request(*args, **kwargs)
    except spotipy.SpotifyException as exc:
        raise _explain(exc, playlist_id) from exc
    except SpotifyOauthError as exc:
        raise SpotifyAuthError(
            f"the token endpoint {settings.token_url} refused the client credentials "
            f"({exc.error or exc}): check SPOTIFY_CLIENT_ID and SPOTIFY_CLIENT_SECRET"
        ) from exc
    except requests.RequestException as exc:
        raise SpotifyError(
            f"cannot reach the Spotify API at {settings.api_base_url} ({type(exc).__name__}): "
            "check the network or SPOTIFY_API_BASE_URL"
        ) from exc


def fetch_playlist(client: spotipy.Spotify, settings: Settings, playlist_id: str) -> dict:
    return _call(playlist_id, settings, client.playlist, playlist_id, fields=PLAYLIST_FIELDS)


def fetch_item_pages(client: spotipy.Spotify, settings: Settings, playlist_id: str) -> list[dict]:
    """Every page of the playlist's items, following ``next`` until it is null."""
    page = _call(
        playlist_id, settings, client.playlist_items, playlist_id, limit=PAGE_SIZE, offset=0
    )
    pages = [page]
    while page.get("next"):
        page = _call(playlist_id, settings, client.next, page)
        pages.append(page)
    return pages


def extract_playlist(
    client: spotipy.Spotify, settings: Settings, playlist_id: str, extracted_at: datetime
) -> dict:
    """The raw-zone envelope of one playlist: its metadata and every items page, unchanged."""
    playlist = fetch_playlist(client, settings, playlist_id)
    pages = fetch_item_pages(client, settings, playlist_id)
    source = {
        "kind": "spotify-web-api",
        "api_base_url": settings.api_base_url,
        "endpoint": f"playlists/{playlist_id}/items",
    }
    return make_envelope(playlist, pages, extracted_at, source)
