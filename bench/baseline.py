"""The seed-style baseline: what a first, naive version of this project would do.

One raw file at a time: ``json.load`` it, flatten the entries with ``pandas.json_normalize``
(track, album and artist fields in one wide frame) and write one CSV per raw file. One
process, no Arrow, no Parquet, no partitioned tables.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path

import pandas as pd

# The flattened entry fields a chart CSV keeps (json_normalize's names, "_"-separated).
ENTRY_COLUMNS = [
    "added_at",
    "item_id",
    "item_name",
    "item_duration_ms",
    "item_explicit",
    "item_popularity",
    "item_track_number",
    "item_disc_number",
    "item_external_ids_isrc",
    "item_album_id",
    "item_album_name",
    "item_album_album_type",
    "item_album_release_date",
    "item_album_release_date_precision",
    "item_album_total_tracks",
]

# Wraps a list of work items for display (a progress bar), like etl_lib.progress.Progress.
Progress = Callable[[list, str], Iterable]


def snapshot_to_csv(raw_path: Path, out_dir: Path) -> int:
    """Flatten one raw snapshot into ``<out_dir>/<dt>_<stamp>.csv``; returns its rows."""
    with raw_path.open(encoding="utf-8") as handle:
        snapshot = json.load(handle)
    entries = [entry for page in snapshot["pages"] for entry in page["items"]]
    frame = pd.json_normalize(entries, sep="_").reindex(columns=ENTRY_COLUMNS)
    artists = [entry["item"]["artists"] for entry in entries]
    frame["artist_ids"] = [";".join(artist["id"] for artist in credited) for credited in artists]
    frame["artist_names"] = [
        ";".join(artist["name"] for artist in credited) for credited in artists
    ]
    frame.insert(0, "position", range(1, len(frame) + 1))
    frame.insert(0, "extracted_at", snapshot["extracted_at"])
    frame.insert(0, "snapshot_id", snapshot["playlist"]["snapshot_id"])
    frame.insert(0, "playlist_id", snapshot["playlist"]["id"])
    frame.to_csv(out_dir / f"{raw_path.parent.name}_{raw_path.stem}.csv", index=False)
    return len(frame)


def run(raw_paths: list[Path], out_dir: Path, progress: Progress) -> int:
    """Every raw file to CSV, one by one; returns the rows written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = progress(raw_paths, "seed-style baseline")
    return sum(snapshot_to_csv(path, out_dir) for path in paths)
