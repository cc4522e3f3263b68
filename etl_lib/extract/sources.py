"""Where playlist snapshots come from: one small protocol, and the registry of sources by name.

A source fetches one playlist's snapshot into an envelope (``etl_lib.extract.envelope.build``)
and turns an envelope back into API-shaped pages of playlist entries, the one shape the
transform reads. The Spotify Web API (``api``, ``etl_lib.extract.spotify``) and the public
playlist archive (``archive``, ``etl_lib.extract.archive``) are the two built in; adding
another is one module defining a ``Source`` plus one ``register`` call.

Settings choose a source by its name (``--source``, ``SPOTIFY_ETL_SOURCE``); an envelope
names its source by ``source.kind``, which a source lists in ``kinds`` (the API's envelopes
say ``spotify-web-api``, as raw files always have, and captures imported from elsewhere
``import``). An envelope of a kind no source claims is refused, never read as empty.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from etl_lib.config import Settings
from etl_lib.errors import ConfigError, CorruptPayload
from etl_lib.extract import archive, spotify


class Source(Protocol):
    """A place playlist snapshots come from."""

    name: str  # what settings choose it by
    kinds: tuple[str, ...]  # the envelope source.kind values it reads back

    def connect(self, settings: Settings) -> Any:
        """What this run's fetches share (a signed-in client; None when nothing is), made
        once per run before the first fetch, so a missing setting stops the run at once."""

    def fetch(
        self,
        connection: Any,
        settings: Settings,
        playlist_id: str,
        *,
        extracted_at: datetime,
        known_snapshot_id: str | None,
    ) -> dict | None:
        """One playlist's snapshot as an envelope captured at ``extracted_at``; None when its
        snapshot_id is still ``known_snapshot_id``, so nothing more is downloaded. Failures
        raise ``etl_lib.errors.EtlError`` subclasses (they fail this playlist only)."""

    def pages(self, payload: dict, raw_key: str) -> list:
        """The envelope's entries as API-shaped pages (``{"items": [...], "offset": n}``);
        pure, no I/O. ``CorruptPayload`` naming ``raw_key`` when they cannot be read."""


_BY_NAME: dict[str, Source] = {}
_BY_KIND: dict[str, Source] = {}


def register(source: Source) -> Source:
    """Make ``source`` choosable by its name and its envelopes readable by their kinds."""
    taken = [kind for kind in source.kinds if kind in _BY_KIND]
    if source.name in _BY_NAME or taken:
        raise ValueError(
            f"source {source.name!r} (kinds {', '.join(source.kinds)}) clashes with one "
            "already registered: unregister it first"
        )
    _BY_NAME[source.name] = source
    for kind in source.kinds:
        _BY_KIND[kind] = source
    return source


def unregister(name: str) -> None:
    source = _BY_NAME.pop(name, None)
    for kind in source.kinds if source is not None else ():
        del _BY_KIND[kind]


def get(name: str) -> Source:
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ConfigError(
            f"unknown source {name!r}: choose one of {', '.join(names())} "
            "(--source or SPOTIFY_ETL_SOURCE)"
        ) from None


def names() -> tuple[str, ...]:
    return tuple(_BY_NAME)


def entry_pages(payload: dict, kind: str, raw_key: str) -> list:
    """An envelope's entries as API-shaped pages, read by the source of its ``kind``."""
    source = _BY_KIND.get(kind)
    if source is None:
        raise CorruptPayload(
            f"{raw_key}: source.kind {kind!r} is none of the kinds the registered sources "
            f"read ({', '.join(_BY_KIND)}): register its source in etl_lib.extract.sources"
        )
    return source.pages(payload, raw_key)


register(spotify.SOURCE)
register(archive.SOURCE)
