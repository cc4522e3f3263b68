"""Envelope -> lake tables: the pure heart of the pipeline (no file or network I/O).

One envelope (one playlist snapshot) becomes one small Arrow table per name in
``schemas.TABLES``. Entries that are not chart tracks (episodes, local files, empty slots)
are skipped and counted, never fatal; an envelope whose structure is broken raises
``CorruptPayload``, and one beyond the limits of ``etl_lib.extract.envelope`` (item count, capture
time, nesting, number size, text) ``PayloadLimitExceeded``. An ``added_at`` outside
1900..2100, like any other odd field value, becomes null rather than refusing the snapshot.

Each envelope's source (``etl_lib.extract.sources``, found by its ``source.kind``) turns it
into API-shaped pages first: the public playlist archive's envelopes carry the archive's
document instead of API pages, for one. So every source shares one code path and one set of
tables.

Speed matters (a backfill transforms thousands of snapshots a second), so rows are
gathered as plain Python lists and each table is built by a single Arrow call.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from functools import lru_cache
from operator import itemgetter
from typing import Any, NamedTuple, TypedDict

import msgspec
import pyarrow as pa

from etl_lib.errors import CorruptPayload, PayloadLimitExceeded
from etl_lib.extract import sources
from etl_lib.extract.envelope import (
    EARLIEST,
    LATEST,
    MAX_ITEMS,
    TimeOutOfRange,
    loads,
    parse_utc,
    shown,
)
from etl_lib.lake.layout import parse_raw_key, partition_date
from etl_lib.transform import schemas

SKIPPED_EPISODES = "skipped_episodes"
SKIPPED_LOCAL = "skipped_local"
SKIPPED_NULL = "skipped_null"

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MILLISECOND = timedelta(milliseconds=1)
_INT32_LIMIT = 2**31
_INT64_LIMIT = 2**63
_RELEASE_DATE = re.compile(r"^(?P<year>\d{4})(?:-(?P<month>\d{2})(?:-(?P<day>\d{2}))?)?$")
_PRECISION_DEPTH = {"year": 1, "month": 2, "day": 3}
_OPEN_SPOTIFY = "https://open.spotify.com"


@dataclass(frozen=True)
class TransformResult:
    tables: dict[str, pa.Table]
    counts: dict[str, int]


@dataclass(frozen=True)
class SnapshotHeader:
    """What an envelope must hold before its entries are read: who, when, and the pages."""

    extracted_at: datetime
    playlist: dict
    playlist_id: str
    source_kind: str
    pages: list


# The fields the transform reads, and nothing else: decoding only these skips the bulk of a
# full-size page (available_markets, images, added_by, the deprecated ``track`` copy) without
# building Python objects for it, which is most of the cost of json.loads on Spotify pages.
# Scalars are ``Any`` so values reach the transform exactly as json.loads gives them; an
# object where a scalar or list is expected fails the decode, and the file takes json.loads.
class _Link(TypedDict, total=False):
    spotify: Any


class _Artist(TypedDict, total=False):
    id: Any
    name: Any
    external_urls: _Link | None


class _Album(TypedDict, total=False):
    id: Any
    name: Any
    album_type: Any
    release_date: Any
    release_date_precision: Any
    total_tracks: Any
    external_urls: _Link | None
    artists: list[_Artist | None] | None


class _Isrc(TypedDict, total=False):
    isrc: Any


class _Item(TypedDict, total=False):
    id: Any
    type: Any
    name: Any
    duration_ms: Any
    explicit: Any
    album: _Album | None
    artists: list[_Artist | None] | None
    track_number: Any
    disc_number: Any
    external_ids: _Isrc | None
    external_urls: _Link | None
    popularity: Any
    is_local: Any
    episode: Any
    show: Any


class _Entry(TypedDict, total=False):
    added_at: Any
    is_local: Any
    # Decoded as _Item by ``_decoded_entry``, which decodes each distinct entry once.
    item: msgspec.Raw
    # Read only when ``item`` is absent or null (recordings older than 2026).
    track: msgspec.Raw


class _Page(TypedDict, total=False):
    # Entries are decoded apart (``decode_envelope``), once per distinct entry.
    items: list[msgspec.Raw]
    offset: Any


class _Source(TypedDict, total=False):
    kind: Any


class _Playlist(TypedDict, total=False):
    id: Any
    name: Any
    snapshot_id: Any
    followers: Any


class _Envelope(TypedDict, total=False):
    extracted_at: Any
    playlist: _Playlist | None
    source: _Source | None
    pages: list[_Page] | None


_ENVELOPE_DECODER = msgspec.json.Decoder(_Envelope)
_ENTRY_DECODER = msgspec.json.Decoder(_Entry | None)
_ITEM_DECODER = msgspec.json.Decoder(_Item | None)


def decode_envelope(data: bytes, raw_key: str, seen: dict | None = None) -> Any:
    """A raw file's JSON as the transform sees it: the fields it reads, decoded fast.

    ``seen`` (JSON text of an entry -> decoded entry) is shared by the snapshots of one
    batch: a chart repeats most of its entries from one snapshot to the next, and a repeated
    entry is decoded once and handed out as the same dict, whose verdict and rows the
    transform then works out once (``TableBatch``). Anything the narrow decode does not take
    as is (another shape, NaN, bad UTF-8, lone surrogates, huge numbers, deep nesting) is
    decoded by ``envelope.loads`` instead, which checks the payload limits, so the tables
    are the same either way. The narrow decode bounds the depth of what it builds by its
    types; deeper input than Python's recursion limit takes the checked path. An envelope
    without API pages keeps its source's own document (the archive's, another source's)
    under a key only its source knows: it takes the checked path too, as the narrow decode
    cannot bound what it does not know the shape of.
    """
    if seen is None:
        seen = {}
    try:
        envelope = _ENVELOPE_DECODER.decode(data)
        pages = envelope.get("pages") or ()
        if not pages:
            return loads(data, raw_key)
        # Checked before the entries are decoded, so a huge payload costs no more memory.
        _check_item_count(sum(len(page.get("items") or ()) for page in pages), raw_key)
        for page in pages:
            if "items" in page:
                page["items"] = [_decoded_entry(raw, seen) for raw in page["items"]]
        return envelope
    except (msgspec.ValidationError, msgspec.DecodeError, RecursionError):
        return loads(data, raw_key)


def _check_item_count(items: int, raw_key: str) -> None:
    if items > MAX_ITEMS:
        raise PayloadLimitExceeded(
            f"{raw_key}: {items:,} entries, more than the {MAX_ITEMS:,} a snapshot may hold "
            "(Spotify caps a playlist at 10,000 items)"
        )


def _decoded_entry(raw: msgspec.Raw, seen: dict) -> Any:
    text = bytes(raw)
    entry = seen.get(text)
    if entry is None:
        entry = _ENTRY_DECODER.decode(text)
        if entry is not None:
            if "item" in entry:
                entry["item"] = _ITEM_DECODER.decode(entry["item"])
            if entry.get("item") is None and "track" in entry:
                entry["track"] = _ITEM_DECODER.decode(entry["track"])
        seen[text] = entry
    return entry


def transform_envelope(envelope: dict, raw_key: str) -> TransformResult:
    """All lake tables of one snapshot; ``raw_key`` is recorded in ``snapshots.raw_key``."""
    batch = TableBatch()
    counts = batch.add(envelope, raw_key)
    return TransformResult(tables=batch.to_tables(), counts=counts)


def transform_raw(data: bytes, raw_key: str) -> TransformResult:
    """All lake tables of one raw file's bytes, decoded as the bulk path decodes them."""
    return transform_envelope(decode_envelope(data, raw_key), raw_key)


class TableBatch:
    """Column lists of every lake table for one or many snapshots, turned into Arrow at once.

    Building Arrow tables costs about the same for 50 rows as for 50,000, so a bulk transform
    gathers many snapshots here and converts once. A snapshot that raises adds nothing: its
    rows are gathered apart and appended only when the whole of it is good. Should Arrow
    refuse the rows at ``to_tables``, ``drop_unconvertible`` finds the snapshots at fault.
    """

    def __init__(self) -> None:
        self.columns: dict[str, dict[str, list]] = {
            table: {name: [] for name in schema.names} for table, schema in schemas.TABLES.items()
        }
        # A chart repeats most of its entries from one snapshot to the next: each distinct
        # entry is decoded once (JSON text -> entry, see ``decode_envelope``) and its verdict
        # and rows worked out once (id(entry) -> (entry, verdict)).
        self._decoded: dict[bytes, Any] = {}
        self._derived: dict[int, tuple[Any, tuple]] = {}
        # Each snapshot's raw key and row count per table, in the order of the columns.
        self._snapshots: list[tuple[str, dict[str, int]]] = []

    def add_json(self, data: bytes, raw_key: str) -> dict[str, int]:
        """Append one raw file's snapshot, decoded with ``decode_envelope``."""
        return self.add(decode_envelope(data, raw_key, self._decoded), raw_key)

    def add(self, envelope: dict, raw_key: str) -> dict[str, int]:
        """Append one snapshot's rows; returns its entry counts."""
        columns_by_table, counts = _snapshot_columns(envelope, raw_key, self._derived)
        sizes = {}
        for table, columns in columns_by_table.items():
            target = self.columns[table]
            for name, values in columns.items():
                target[name].extend(values)
            sizes[table] = len(columns[schemas.TABLES[table].names[0]])
        self._snapshots.append((raw_key, sizes))
        return counts

    def to_tables(self) -> dict[str, pa.Table]:
        return {
            name: pa.Table.from_pydict(self.columns[name], schema=schema)
            for name, schema in schemas.TABLES.items()
        }

    def drop_unconvertible(self) -> dict[str, str]:
        """Take out the snapshots whose rows Arrow refuses; their raw keys and why.

        For after ``to_tables`` failed: each snapshot's rows are converted alone, column by
        column, and the batch keeps only the snapshots that convert.
        """
        refused: dict[str, str] = {}
        kept: list[tuple[str, dict[str, int], dict[str, int]]] = []
        offsets = dict.fromkeys(schemas.TABLES, 0)
        for raw_key, sizes in self._snapshots:
            starts = dict(offsets)
            for table, size in sizes.items():
                offsets[table] += size
            problem = self._conversion_problem(starts, sizes)
            if problem is None:
                kept.append((raw_key, sizes, starts))
            else:
                refused[raw_key] = problem
        if refused:
            old = self.columns
            self.columns = {
                table: {
                    name: [
                        value
                        for _, sizes, starts in kept
                        for value in values[starts[table] : starts[table] + sizes[table]]
                    ]
                    for name, values in columns.items()
                }
                for table, columns in old.items()
            }
            self._snapshots = [(raw_key, sizes) for raw_key, sizes, _ in kept]
        return refused

    def _conversion_problem(self, starts: dict[str, int], sizes: dict[str, int]) -> str | None:
        for table, schema in schemas.TABLES.items():
            start, end = starts[table], starts[table] + sizes[table]
            for field in schema:
                try:
                    pa.array(self.columns[table][field.name][start:end], type=field.type)
                except Exception as exc:  # whatever Arrow raises names this snapshot's value
                    return f"{table}.{field.name}: {type(exc).__name__}: {exc}"
        return None


def _snapshot_columns(
    envelope: dict, raw_key: str, derived: dict | None = None
) -> tuple[dict[str, dict[str, list]], dict[str, int]]:
    header = snapshot_header(envelope, raw_key)
    extracted_at, playlist, playlist_id = header.extracted_at, header.playlist, header.playlist_id
    source_kind, pages = header.source_kind, header.pages
    dt = partition_date(extracted_at)
    extracted_ms = _epoch_ms(extracted_at)
    _check_key_matches(raw_key, playlist_id, dt)

    rows = _Rows(derived)
    for page_number, page in enumerate(pages):
        rows.add_page(page, page_number, raw_key)

    snapshot_id = _text(playlist.get("snapshot_id"))
    counts = rows.counts()
    snapshot_columns = {
        "playlist_id": [playlist_id],
        "snapshot_id": [snapshot_id],
        "playlist_name": [_text(playlist.get("name"))],
        "followers": [_int64(playlist.get("followers"))],
        "extracted_at": [extracted_ms],
        "source": [source_kind],
        "raw_key": [raw_key],
        "item_count": [counts["items"]],
        "track_count": [counts["tracks"]],
        "skipped_episodes": [counts[SKIPPED_EPISODES]],
        "skipped_local": [counts[SKIPPED_LOCAL]],
        "skipped_null": [counts[SKIPPED_NULL]],
    }
    rows.chart["snapshot_id"] = [snapshot_id] * len(rows.chart["track_id"])
    columns_by_table = {"snapshots": snapshot_columns}
    for table in ("tracks", "albums", "artists", "track_artists", "chart_entries"):
        columns = columns_by_table[table] = rows.table_columns(table)
        # Every row of a snapshot names it (its replay key); set once per table.
        size = len(next(iter(columns.values())))
        columns["playlist_id"] = [playlist_id] * size
        columns["extracted_at"] = [extracted_ms] * size
    return columns_by_table, counts


def snapshot_header(envelope: Any, raw_key: str) -> SnapshotHeader:
    """The envelope's capture time, playlist, source kind and pages, checked as the transform
    needs them (``CorruptPayload``, or ``PayloadLimitExceeded`` past a limit); the pages are
    API-shaped, as the envelope's source reads them (an archive's document becomes one)."""
    if not isinstance(envelope, dict):
        raise CorruptPayload(f"{raw_key}: envelope is a {type(envelope).__name__}, not an object")
    extracted_at = _extracted_at(envelope, raw_key)
    playlist = envelope.get("playlist")
    if not isinstance(playlist, dict):
        raise CorruptPayload(f"{raw_key}: 'playlist' is missing or not an object")
    playlist_id = _text(playlist.get("id"))
    if not playlist_id:
        raise CorruptPayload(f"{raw_key}: playlist id is missing")
    source = envelope.get("source")
    source_kind = _text(source.get("kind")) if isinstance(source, dict) else None
    if not source_kind:
        raise CorruptPayload(f"{raw_key}: 'source.kind' is missing")
    pages = sources.entry_pages(envelope, source_kind, raw_key)
    _check_item_count(
        sum(len(p["items"]) for p in pages if isinstance(p, dict) and type(p.get("items")) is list),
        raw_key,
    )
    return SnapshotHeader(extracted_at, playlist, playlist_id, source_kind, pages)


class _Rows:
    """The per-entry tables of one snapshot, filled in playlist order.

    Chart entries, one per entry, go straight into column lists. The other tables gather
    rows as their values in schema order: a track's rows are built by column name once per
    batch (``_TrackRows``) and the same values appended wherever the track appears.
    """

    def __init__(self, derived: dict | None = None) -> None:
        self._derived = derived
        self.chart: dict[str, list] = {
            "position": [],
            "track_id": [],
            "added_at": [],
            "popularity": [],
        }
        self.rows: dict[str, list[tuple]] = {table: [] for table in _ROW_LAYOUTS}
        self.item_count = 0
        self.skipped = {SKIPPED_EPISODES: 0, SKIPPED_LOCAL: 0, SKIPPED_NULL: 0}
        self._seen_tracks: set[str] = set()
        self._seen_albums: set[str] = set()
        self._seen_artists: set[str] = set()

    def counts(self) -> dict[str, int]:
        return {"items": self.item_count, "tracks": len(self.chart["track_id"]), **self.skipped}

    def add_page(self, page: Any, page_number: int, raw_key: str) -> None:
        if not isinstance(page, dict) or not isinstance(page.get("items"), list):
            raise CorruptPayload(f"{raw_key}: page {page_number} has no 'items' list")
        entries = page["items"]
        offset = page.get("offset")
        if type(offset) is not int:
            offset = self.item_count
        elif offset < self.item_count:
            # Positions would collide: the capture repeated or reordered a page.
            raise CorruptPayload(
                f"{raw_key}: page {page_number} has offset {offset} but earlier pages already "
                f"hold {self.item_count} entries (pages overlap or are out of order)"
            )
        elif offset + len(entries) >= _INT32_LIMIT:
            raise CorruptPayload(f"{raw_key}: page {page_number} has an impossible offset {offset}")
        self.item_count += len(entries)
        chart_positions = self.chart["position"]
        chart_track_ids = self.chart["track_id"]
        chart_added_at = self.chart["added_at"]
        chart_popularity = self.chart["popularity"]
        skipped = self.skipped
        # Skipped entries keep their slot: positions are the playlist's own order.
        for position, entry in enumerate(entries, start=offset + 1):
            skip_reason, rows, added_at = self._verdict(entry)
            if skip_reason is not None:
                skipped[skip_reason] += 1
                continue
            track_id = rows.track_id
            chart_positions.append(position)
            chart_track_ids.append(track_id)
            chart_added_at.append(added_at)
            chart_popularity.append(rows.popularity)
            if track_id not in self._seen_tracks:
                self._seen_tracks.add(track_id)
                self._add_track(rows)

    def _verdict(self, entry: Any) -> tuple[str | None, _TrackRows | None, int | None]:
        if self._derived is None:
            return _entry_verdict(entry)
        # Keyed by identity: the decoder hands out one dict per distinct entry, kept alive
        # here beside its verdict.
        known = self._derived.get(id(entry))
        if known is None or known[0] is not entry:
            known = self._derived[id(entry)] = (entry, _entry_verdict(entry))
        return known[1]

    def _add_track(self, rows: _TrackRows) -> None:
        self.rows["tracks"].append(rows.track)
        self.rows["track_artists"].extend(rows.track_artists)
        for artist_id, artist in rows.credited_artists:
            self._add_artist(artist_id, artist)
        album_id = rows.album_id
        if album_id is not None and album_id not in self._seen_albums:
            self._seen_albums.add(album_id)
            self.rows["albums"].append(rows.album)
            for artist_id, artist in rows.album_artists:
                self._add_artist(artist_id, artist)

    def _add_artist(self, artist_id: str, artist: tuple) -> None:
        if artist_id in self._seen_artists:
            return
        self._seen_artists.add(artist_id)
        self.rows["artists"].append(artist)

    def table_columns(self, table: str) -> dict[str, list]:
        """One per-entry table's columns (all but ``schemas.SNAPSHOT_COLUMNS``)."""
        if table == "chart_entries":
            return self.chart
        names = _ROW_LAYOUTS[table].names
        rows = self.rows[table]
        if not rows:
            return {name: [] for name in names}
        return dict(zip(names, zip(*rows, strict=True), strict=True))


class _RowLayout(NamedTuple):
    """A table's columns in schema order but the snapshot's (set once per snapshot), and a
    function giving a row's values in that order."""

    names: tuple[str, ...]
    values: Callable[[dict[str, Any]], tuple]

    @classmethod
    def of(cls, table: str) -> _RowLayout:
        names = tuple(n for n in schemas.TABLES[table].names if n not in schemas.SNAPSHOT_COLUMNS)
        if len(names) == 1:
            return cls(names, lambda row: (row[names[0]],))
        return cls(names, itemgetter(*names))


# The tables whose rows ``_TrackRows`` builds.
_ROW_LAYOUTS = {
    table: _RowLayout.of(table) for table in ("tracks", "albums", "artists", "track_artists")
}


def _row_values(table: str, /, **row: Any) -> tuple:
    """A row built by column name, as its values in ``table``'s schema order (the snapshot's
    columns left out). Done once per distinct track, so gathering a snapshot's rows and
    turning them into columns costs what tuples cost."""
    layout = _ROW_LAYOUTS[table]
    if row.keys() != set(layout.names):
        # Checked, not left to the lookup: a column the schema lacks would be dropped unseen.
        raise TypeError(
            f"{table} row: columns {sorted(row.keys() - set(layout.names))} are not in its "
            f"schema, {sorted(set(layout.names) - row.keys())} are missing"
        )
    return layout.values(row)


@dataclass(frozen=True, slots=True)
class _TrackRows:
    """What one track object gives the tables, the same in whichever snapshot it appears.
    Rows are built by column name and kept as their values (``_row_values``); artists come
    with their id, which decides whether a snapshot already has them."""

    track_id: str
    track: tuple
    popularity: int | None
    track_artists: tuple[tuple, ...]
    credited_artists: tuple[tuple[str, tuple], ...]
    album_id: str | None
    album: tuple | None
    album_artists: tuple[tuple[str, tuple], ...]


def _track_rows(track_id: str, track: dict) -> _TrackRows:
    album = track.get("album")
    album_id = _object_id(album)
    external_ids = track.get("external_ids")
    row = _row_values(
        "tracks",
        track_id=track_id,
        name=_text(track.get("name")),
        duration_ms=_int64(track.get("duration_ms")),
        explicit=_flag(track.get("explicit")),
        album_id=album_id,
        track_number=_int32(track.get("track_number")),
        disc_number=_int32(track.get("disc_number")),
        isrc=_text(external_ids.get("isrc")) if isinstance(external_ids, dict) else None,
        spotify_url=_spotify_url(track, "track", track_id),
    )
    track_artists = []
    credited_artists = []
    credited = track.get("artists")
    if isinstance(credited, list):
        credited_ids: set[str] = set()
        for artist_position, artist in enumerate(credited, start=1):
            artist_id = _object_id(artist)
            # A local file's artists have no id; a repeated credit would duplicate the key.
            if artist_id is None or artist_id in credited_ids:
                continue
            credited_ids.add(artist_id)
            track_artists.append(
                _row_values(
                    "track_artists",
                    track_id=track_id,
                    artist_id=artist_id,
                    artist_position=_int32(artist_position),
                )
            )
            credited_artists.append((artist_id, _artist_row(artist_id, artist)))
    album_row = None
    album_artists = []
    if album_id is not None:
        release_date, precision = _release_date(
            _text(album.get("release_date")), _text(album.get("release_date_precision"))
        )
        album_row = _row_values(
            "albums",
            album_id=album_id,
            name=_text(album.get("name")),
            album_type=_text(album.get("album_type")),
            release_date=release_date,
            release_date_precision=precision,
            total_tracks=_int32(album.get("total_tracks")),
            spotify_url=_spotify_url(album, "album", album_id),
        )
        listed = album.get("artists")
        if isinstance(listed, list):
            for artist in listed:
                artist_id = _object_id(artist)
                if artist_id is not None:
                    album_artists.append((artist_id, _artist_row(artist_id, artist)))
    return _TrackRows(
        track_id=track_id,
        track=row,
        popularity=_int32(track.get("popularity")),
        track_artists=tuple(track_artists),
        credited_artists=tuple(credited_artists),
        album_id=album_id,
        album=album_row,
        album_artists=tuple(album_artists),
    )


def _artist_row(artist_id: str, artist: dict) -> tuple:
    return _row_values(
        "artists",
        artist_id=artist_id,
        name=_text(artist.get("name")),
        spotify_url=_spotify_url(artist, "artist", artist_id),
    )


def _entry_verdict(entry: Any) -> tuple[str | None, _TrackRows | None, int | None]:
    """``(None, rows, added_at)`` for an entry that becomes a chart row, else
    ``(skip counter, None, None)``.

    Every entry lands in exactly one bucket, so items == tracks + all skipped counters.
    """
    if not isinstance(entry, dict):
        return SKIPPED_NULL, None, None
    # 2026 API: ``item``; recordings made before it only have the deprecated ``track``.
    item = entry.get("item")
    if item is None:
        item = entry.get("track")
    skip_reason, rows = _item_verdict(item)
    if skip_reason in (SKIPPED_NULL, SKIPPED_EPISODES):
        return skip_reason, None, None
    if entry.get("is_local") is True:
        return SKIPPED_LOCAL, None, None
    if skip_reason is not None:
        return skip_reason, None, None
    added_at = entry.get("added_at")
    return None, rows, _timestamp_ms(added_at) if type(added_at) is str else None


def _item_verdict(item: Any) -> tuple[str | None, _TrackRows | None]:
    """The skip counter an entry's item alone decides, or its rows when it is a chart track."""
    if not isinstance(item, dict):
        return SKIPPED_NULL, None
    kind = item.get("type")
    if kind is None:
        # Hand-made or trimmed exports may drop ``type``: judge by shape.
        if "album" in item or "artists" in item:
            kind = "track"
        elif "show" in item:
            kind = "episode"
        else:
            return SKIPPED_NULL, None
    # Anything that is not a music track (episodes, audiobook chapters, types Spotify adds
    # later) is spoken or unknown content, not a chart entry: counted with the episodes.
    # ``episode: true`` marks an episode served in track shape by the old endpoint.
    if kind != "track" or item.get("episode") is True:
        return SKIPPED_EPISODES, None
    if item.get("is_local") is True:
        return SKIPPED_LOCAL, None
    track_id = _object_id(item)
    if track_id is None:
        # Only local files lack an id in practice; they cannot be joined to anything.
        return SKIPPED_LOCAL, None
    return None, _track_rows(track_id, item)


def _extracted_at(envelope: dict, raw_key: str) -> datetime:
    text = envelope.get("extracted_at")
    if not isinstance(text, str):
        raise CorruptPayload(
            f"{raw_key}: 'extracted_at' is missing or not a string ({shown(text)}): an "
            "ISO-8601 UTC time such as 2026-11-25T08:00:00Z is expected"
        )
    try:
        return parse_utc(text)
    except ValueError as exc:
        error = PayloadLimitExceeded if isinstance(exc, TimeOutOfRange) else CorruptPayload
        raise error(f"{raw_key}: 'extracted_at' {exc}") from exc


def _check_key_matches(raw_key: str, playlist_id: str, dt: str) -> None:
    # Tables are written under the raw key's partition; a misfiled raw file would put a
    # snapshot under another playlist or day.
    parts = parse_raw_key(raw_key)
    if parts is None:
        return
    if parts["playlist_id"] != playlist_id:
        raise CorruptPayload(
            f"{raw_key}: the envelope is playlist {playlist_id!r}, the key says "
            f"{parts['playlist_id']!r}"
        )
    if parts["dt"] != dt:
        raise CorruptPayload(
            f"{raw_key}: the envelope was extracted on {dt}, the key says dt={parts['dt']}"
        )


@lru_cache(maxsize=4096)
def _timestamp_ms(text: str) -> int | None:
    # Whole playlists are often added at once, so the same string repeats: cached.
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        return None
    if moment.tzinfo is None:
        # Spotify documents every timestamp as UTC, even when the offset is missing.
        moment = moment.replace(tzinfo=UTC)
    milliseconds = _epoch_ms(moment)
    return milliseconds if _EARLIEST_MS <= milliseconds <= _LATEST_MS else None


def _epoch_ms(moment: datetime) -> int:
    # Integer arithmetic: float timestamps can be off by one millisecond.
    return (moment - _EPOCH) // _MILLISECOND


_EARLIEST_MS = _epoch_ms(EARLIEST)
_LATEST_MS = _epoch_ms(LATEST)


@lru_cache(maxsize=4096)
def _release_date(text: str | None, precision: str | None) -> tuple[date | None, str | None]:
    """The first day of the release period and its precision ("year", "month" or "day").

    A given precision is kept as Spotify sent it, even when the date is unusable ("0000").
    """
    shape = _RELEASE_DATE.match(text) if text is not None else None
    if shape is None:
        return None, precision
    year, month, day = shape.group("year", "month", "day")
    if precision is None:
        precision = "day" if day else "month" if month else "year"
    # Parts finer than the stated precision carry no information; drop them.
    depth = _PRECISION_DEPTH.get(precision, 3)
    month = month if month and depth >= 2 else "1"
    day = day if day and depth >= 3 else "1"
    try:
        return date(int(year), int(month), int(day)), precision
    except ValueError:
        return None, precision


def _spotify_url(obj: dict, kind: str, object_id: str) -> str:
    # The open.spotify.com link people click, not the API ``href``.
    external_urls = obj.get("external_urls")
    if isinstance(external_urls, dict):
        link = external_urls.get("spotify")
        if type(link) is str and link:
            return link
    return f"{_OPEN_SPOTIFY}/{kind}/{object_id}"


def _object_id(obj: Any) -> str | None:
    if not isinstance(obj, dict):
        return None
    value = obj.get("id")
    return value if type(value) is str and value else None


# Odd field values become null rather than failing the whole snapshot in Arrow.
def _text(value: Any) -> str | None:
    return value if type(value) is str else None


def _flag(value: Any) -> bool | None:
    return value if type(value) is bool else None


def _int32(value: Any) -> int | None:
    return value if type(value) is int and -_INT32_LIMIT <= value < _INT32_LIMIT else None


def _int64(value: Any) -> int | None:
    return value if type(value) is int and -_INT64_LIMIT <= value < _INT64_LIMIT else None
