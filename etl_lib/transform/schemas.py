"""Explicit Arrow schemas of the lake tables.

Every row names the snapshot it came from (``playlist_id``, ``extracted_at``): that is the key
a replayed raw file's rows are replaced by. The stored tables (``etl_lib.transform.iceberg``) add
``dt``, the UTC day of ``extracted_at`` as a string, their partition column. Timestamps are
UTC, built with millisecond precision (Spotify's are second precision) and stored as
Iceberg's microsecond timestamps.
"""

from __future__ import annotations

import pyarrow as pa

UTC_TIMESTAMP = pa.timestamp("ms", tz="UTC")
PARTITION_COLUMN = "dt"

SNAPSHOTS = pa.schema(
    [
        pa.field("playlist_id", pa.string(), nullable=False),
        pa.field("snapshot_id", pa.string()),
        pa.field("playlist_name", pa.string()),
        pa.field("followers", pa.int64()),
        pa.field("extracted_at", UTC_TIMESTAMP, nullable=False),
        pa.field("source", pa.string(), nullable=False),
        pa.field("raw_key", pa.string(), nullable=False),
        pa.field("item_count", pa.int32(), nullable=False),
        pa.field("track_count", pa.int32(), nullable=False),
        pa.field("skipped_episodes", pa.int32(), nullable=False),
        pa.field("skipped_local", pa.int32(), nullable=False),
        pa.field("skipped_null", pa.int32(), nullable=False),
    ]
)

CHART_ENTRIES = pa.schema(
    [
        pa.field("playlist_id", pa.string(), nullable=False),
        pa.field("snapshot_id", pa.string()),
        pa.field("extracted_at", UTC_TIMESTAMP, nullable=False),
        pa.field("position", pa.int32(), nullable=False),
        pa.field("track_id", pa.string(), nullable=False),
        pa.field("added_at", UTC_TIMESTAMP),
        pa.field("popularity", pa.int32()),
    ]
)

TRACKS = pa.schema(
    [
        pa.field("track_id", pa.string(), nullable=False),
        pa.field("name", pa.string()),
        pa.field("duration_ms", pa.int64()),
        pa.field("explicit", pa.bool_()),
        pa.field("album_id", pa.string()),
        pa.field("track_number", pa.int32()),
        pa.field("disc_number", pa.int32()),
        pa.field("isrc", pa.string()),
        pa.field("spotify_url", pa.string()),
        pa.field("playlist_id", pa.string(), nullable=False),
        pa.field("extracted_at", UTC_TIMESTAMP, nullable=False),
    ]
)

ALBUMS = pa.schema(
    [
        pa.field("album_id", pa.string(), nullable=False),
        pa.field("name", pa.string()),
        pa.field("album_type", pa.string()),
        pa.field("release_date", pa.date32()),
        pa.field("release_date_precision", pa.string()),
        pa.field("total_tracks", pa.int32()),
        pa.field("spotify_url", pa.string()),
        pa.field("playlist_id", pa.string(), nullable=False),
        pa.field("extracted_at", UTC_TIMESTAMP, nullable=False),
    ]
)

ARTISTS = pa.schema(
    [
        pa.field("artist_id", pa.string(), nullable=False),
        pa.field("name", pa.string()),
        pa.field("spotify_url", pa.string()),
        pa.field("playlist_id", pa.string(), nullable=False),
        pa.field("extracted_at", UTC_TIMESTAMP, nullable=False),
    ]
)

TRACK_ARTISTS = pa.schema(
    [
        pa.field("track_id", pa.string(), nullable=False),
        pa.field("artist_id", pa.string(), nullable=False),
        pa.field("artist_position", pa.int32(), nullable=False),
        pa.field("playlist_id", pa.string(), nullable=False),
        pa.field("extracted_at", UTC_TIMESTAMP, nullable=False),
    ]
)

TABLES: dict[str, pa.Schema] = {
    "snapshots": SNAPSHOTS,
    "tracks": TRACKS,
    "albums": ALBUMS,
    "artists": ARTISTS,
    "track_artists": TRACK_ARTISTS,
    "chart_entries": CHART_ENTRIES,
}
# In every table, naming the snapshot a row came from; set once per snapshot, so the rows
# built per entry (``etl_lib.transform.decode``) leave them out.
SNAPSHOT_COLUMNS = ("playlist_id", "extracted_at")
