"""Settings: one place that reads the environment; everything else receives values."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

DEFAULT_LAKE = "./data/lake"
DEFAULT_API_BASE_URL = "https://api.spotify.com/v1"
DEFAULT_TOKEN_URL = "https://accounts.spotify.com/api/token"
# "Top Songs - Global": the chart this product was built for.
DEFAULT_PLAYLISTS = ("37i9dQZEVXbNG2KDcFcKOF",)


@dataclass(frozen=True)
class Settings:
    lake: str = DEFAULT_LAKE
    api_base_url: str = DEFAULT_API_BASE_URL
    token_url: str = DEFAULT_TOKEN_URL
    client_id: str | None = field(default=None, repr=False)
    client_secret: str | None = field(default=None, repr=False)
    playlists: tuple[str, ...] = DEFAULT_PLAYLISTS
    request_timeout_seconds: float = 10.0

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides) -> Settings:
        env = os.environ if environ is None else environ
        playlists = tuple(
            p.strip() for p in env.get("SPOTIFY_ETL_PLAYLISTS", "").split(",") if p.strip()
        )
        values = {
            "lake": env.get("SPOTIFY_ETL_LAKE") or DEFAULT_LAKE,
            "api_base_url": env.get("SPOTIFY_API_BASE_URL") or DEFAULT_API_BASE_URL,
            "token_url": env.get("SPOTIFY_TOKEN_URL") or DEFAULT_TOKEN_URL,
            # spotipy's own variable names are accepted too, for users who already set them.
            "client_id": env.get("SPOTIFY_CLIENT_ID") or env.get("SPOTIPY_CLIENT_ID"),
            "client_secret": env.get("SPOTIFY_CLIENT_SECRET") or env.get("SPOTIPY_CLIENT_SECRET"),
            "playlists": playlists or DEFAULT_PLAYLISTS,
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)
