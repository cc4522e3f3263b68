from __future__ import annotations

import copy
import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from etl_lib.errors import CorruptPayload
from etl_lib.extract import envelope
from etl_lib.lake import layout
from etl_lib.transform import decode, schemas
from etl_lib.transform.decode import transform_envelope

PLAYLIST_ID = "37i9dQZEVXbMDoHDwVN2tF"
EXTRACTED_AT = datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
RAW_KEY = layout.raw_key(PLAYLIST_ID, EXTRACTED_AT)


def make_artist(artist_id: str | None, name: str = "An Artist") -> dict[str, Any]:
    return {
        "id": artist_id,
        "name": name,
        "type": "artist",
        "href": f"https://api.spotify.com/v1/artists/{artist_id}",
        "external_urls": {"spotify": f"https://open.spotify.com/artist/{artist_id}"},
    }


def make_album(
    album_id: str = "album1",
    *,
    release_date: str = "2021-03-05",
    precision: str | None = "day",
    artists: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    album = {
        "id": album_id,
        "name": f"Album {album_id}",
        "album_type": "album",
        "type": "album",
        "release_date": release_date,
        "total_tracks": 12,
        "href": f"https://api.spotify.com/v1/albums/{album_id}",
        "external_urls": {"spotify": f"https://open.spotify.com/album/{album_id}"},
        "artists": artists if artists is not None else [make_artist("artist1")],
    }
    if precision is not None:
        album["release_date_precision"] = precision
    return album


def make_track(
    track_id: str | None,
    *,
    name: str = "A Song",
    artists: list[dict[str, Any]] | None = None,
    album: dict[str, Any] | None = None,
    **fields: Any,
) -> dict[str, Any]:
    track = {
        "id": track_id,
        "type": "track",
        "name": name,
        "duration_ms": 201_000,
        "explicit": False,
        "track_number": 3,
        "disc_number": 1,
        "is_local": False,
        "external_ids": {"isrc": f"GB{track_id}"},
        "href": f"https://api.spotify.com/v1/tracks/{track_id}",
        "external_urls": {"spotify": f"https://open.spotify.com/track/{track_id}"},
        "artists": artists if artists is not None else [make_artist("artist1")],
        "album": album if album is not None else make_album(),
    }
    track.update(fields)
    return track


def make_episode(episode_id: str) -> dict[str, Any]:
    return {
        "id": episode_id,
        "type": "episode",
        "name": "An Episode",
        "show": {"id": "show1", "name": "A Show", "type": "show"},
        "episode": True,
        "track": False,
    }


def make_entry(
    item: dict[str, Any] | None,
    *,
    field: str = "item",
    added_at: str | None = "2026-11-20T10:00:00Z",
    is_local: bool = False,
) -> dict[str, Any]:
    return {"added_at": added_at, "is_local": is_local, field: item}


def make_page(entries: list[Any], offset: int | None = 0) -> dict[str, Any]:
    page = {"items": entries, "limit": 100, "total": len(entries), "next": None}
    if offset is not None:
        page["offset"] = offset
    return page


def make_envelope(pages: list[Any], **overrides: Any) -> dict[str, Any]:
    payload = {
        "envelope_version": 1,
        "extracted_at": "2026-11-25T08:00:00Z",
        "source": {"kind": "spotify-web-api", "endpoint": "/playlists/{id}/items"},
        "playlist": {
            "id": PLAYLIST_ID,
            "name": "Top 50 - Global",
            "snapshot_id": "snap1",
            "followers": 1234,
            "owner_id": "spotify",
        },
        "pages": pages,
    }
    payload.update(overrides)
    return payload


def transform_entries(*entries: Any) -> Any:
    return transform_envelope(make_envelope([make_page(list(entries))]), RAW_KEY)


def rows(result: Any, table: str) -> list[dict[str, Any]]:
    return result.tables[table].to_pylist()


def column(result: Any, table: str, name: str) -> list[Any]:
    return result.tables[table].column(name).to_pylist()


def test_every_table_has_exactly_its_schema_even_when_empty() -> None:
    for result in (
        transform_entries(make_entry(make_track("t1"))),
        transform_envelope(make_envelope([]), RAW_KEY),
    ):
        assert set(result.tables) == set(schemas.TABLES)
        for name, schema in schemas.TABLES.items():
            assert result.tables[name].schema.equals(schema, check_metadata=True), name
    assert transform_envelope(make_envelope([]), RAW_KEY).tables["chart_entries"].num_rows == 0


def test_every_row_of_every_table_names_its_snapshot() -> None:
    # The key a replayed raw file's rows are replaced by: no table may miss it.
    result = transform_entries(make_entry(make_track("t1")), make_entry(make_track("t2")))

    for name, table in result.tables.items():
        assert table.num_rows > 0, name
        for key, value in zip(schemas.SNAPSHOT_COLUMNS, (PLAYLIST_ID, EXTRACTED_AT), strict=True):
            assert set(table.column(key).to_pylist()) == {value}, (name, key)


def test_snapshot_row_describes_the_playlist_and_the_raw_file() -> None:
    result = transform_entries(make_entry(make_track("t1")), make_entry(None))

    assert rows(result, "snapshots") == [
        {
            "playlist_id": PLAYLIST_ID,
            "snapshot_id": "snap1",
            "playlist_name": "Top 50 - Global",
            "followers": 1234,
            "extracted_at": EXTRACTED_AT,
            "source": "spotify-web-api",
            "raw_key": RAW_KEY,
            "item_count": 2,
            "track_count": 1,
            "skipped_episodes": 0,
            "skipped_local": 0,
            "skipped_null": 1,
        }
    ]
    assert result.counts == {
        "items": 2,
        "tracks": 1,
        "skipped_episodes": 0,
        "skipped_local": 0,
        "skipped_null": 1,
    }


def test_extraction_time_is_stored_in_utc() -> None:
    late_evening = make_envelope([], extracted_at="2026-11-25T23:30:00-02:00")
    stored = column(
        transform_envelope(late_evening, "raw/somewhere.json"), "snapshots", "extracted_at"
    )
    assert stored == [datetime(2026, 11, 26, 1, 30, tzinfo=UTC)]
    assert layout.partition_date(stored[0]) == "2026-11-26"


def test_chart_entry_columns() -> None:
    result = transform_entries(make_entry(make_track("t1", popularity=77)))

    assert rows(result, "chart_entries") == [
        {
            "playlist_id": PLAYLIST_ID,
            "snapshot_id": "snap1",
            "extracted_at": EXTRACTED_AT,
            "position": 1,
            "track_id": "t1",
            "added_at": datetime(2026, 11, 20, 10, 0, tzinfo=UTC),
            "popularity": 77,
        }
    ]


def test_positions_run_across_pages_from_their_offsets() -> None:
    first = make_page([make_entry(make_track("t1")), make_entry(make_track("t2"))], offset=0)
    second = make_page([make_entry(make_track("t3")), make_entry(make_track("t4"))], offset=2)
    result = transform_envelope(make_envelope([first, second]), RAW_KEY)

    assert column(result, "chart_entries", "position") == [1, 2, 3, 4]
    assert column(result, "chart_entries", "track_id") == ["t1", "t2", "t3", "t4"]


def test_positions_fall_back_to_a_running_count_without_offsets() -> None:
    first = make_page([make_entry(make_track("t1")), make_entry(make_track("t2"))], offset=None)
    second = make_page([make_entry(make_track("t3"))], offset=None)
    result = transform_envelope(make_envelope([first, second]), RAW_KEY)

    assert column(result, "chart_entries", "position") == [1, 2, 3]


def test_skipped_entries_keep_their_slot() -> None:
    result = transform_entries(
        make_entry(make_track("t1")),
        make_entry(None),
        make_entry(make_episode("e1")),
        make_entry(make_track("t4")),
    )

    assert column(result, "chart_entries", "position") == [1, 4]


def test_item_is_preferred_and_track_is_the_fallback() -> None:
    both = {
        "added_at": None,
        "is_local": False,
        "item": make_track("new"),
        "track": make_track("old"),
    }
    item_null_track_set = {"added_at": None, "item": None, "track": make_track("legacy")}
    result = transform_entries(
        make_entry(make_track("t_item"), field="item"),
        make_entry(make_track("t_track"), field="track"),
        both,
        item_null_track_set,
    )

    assert column(result, "chart_entries", "track_id") == ["t_item", "t_track", "new", "legacy"]


def test_null_local_and_episode_entries_are_skipped_and_counted() -> None:
    local_file = make_track(None, name="my_demo.mp3", artists=[make_artist(None)], is_local=True)
    local_file["album"] = {"id": None, "name": "", "artists": []}
    result = transform_entries(
        make_entry(make_track("t1")),
        make_entry(None),
        make_entry(None, field="track"),
        {"added_at": "2026-01-01T00:00:00Z", "is_local": False},  # neither item nor track
        "not an entry",
        make_entry(local_file, is_local=True),
        make_entry(make_track("flagged_local"), is_local=True),
        make_entry(make_track(None)),
        make_entry(make_episode("e1")),
        make_entry(make_episode("e2"), field="track"),
    )

    assert result.counts == {
        "items": 10,
        "tracks": 1,
        "skipped_episodes": 2,
        "skipped_local": 3,
        "skipped_null": 4,
    }
    assert column(result, "chart_entries", "track_id") == ["t1"]
    assert column(result, "tracks", "track_id") == ["t1"]
    assert column(result, "artists", "artist_id") == ["artist1"]


def test_items_that_are_not_music_tracks() -> None:
    episode_as_track = make_track("e_old", episode=True)  # old endpoint: episode in track shape
    chapter = {"id": "c1", "type": "chapter", "name": "Chapter 1"}
    untyped_track = make_track("untyped")
    del untyped_track["type"]
    untyped_episode = make_episode("e_untyped")
    del untyped_episode["type"]
    result = transform_entries(
        make_entry(episode_as_track),
        make_entry(chapter),
        make_entry(untyped_track),
        make_entry(untyped_episode),
        make_entry({"id": "mystery"}),
        make_entry(["not", "an", "object"]),
    )

    assert column(result, "chart_entries", "track_id") == ["untyped"]
    assert result.counts == {
        "items": 6,
        "tracks": 1,
        "skipped_episodes": 3,
        "skipped_local": 0,
        "skipped_null": 2,
    }


def test_counts_always_add_up() -> None:
    result = transform_entries(
        make_entry(make_track("t1")), make_entry(None), make_entry(make_episode("e1")), 42
    )
    counts = result.counts
    assert counts == {
        "items": 4,
        "tracks": 1,
        "skipped_episodes": 1,
        "skipped_local": 0,
        "skipped_null": 2,
    }
    assert counts["items"] == counts["tracks"] + sum(
        count for name, count in counts.items() if name.startswith("skipped_")
    )
    # The snapshot row records the same counts.
    (snapshot,) = rows(result, "snapshots")
    assert {name: snapshot[name] for name in ("item_count", "track_count")} == {
        "item_count": counts["items"],
        "track_count": counts["tracks"],
    }
    assert all(
        snapshot[name] == count for name, count in counts.items() if name.startswith("skipped_")
    )


def test_track_columns() -> None:
    result = transform_entries(make_entry(make_track("t1", explicit=True)))

    assert rows(result, "tracks") == [
        {
            "track_id": "t1",
            "name": "A Song",
            "duration_ms": 201_000,
            "explicit": True,
            "album_id": "album1",
            "track_number": 3,
            "disc_number": 1,
            "isrc": "GBt1",
            "spotify_url": "https://open.spotify.com/track/t1",
            "playlist_id": PLAYLIST_ID,
            "extracted_at": EXTRACTED_AT,
        }
    ]


def test_missing_optional_fields_become_null() -> None:
    bare = {"id": "t1", "type": "track", "name": "Bare"}
    result = transform_entries({"item": bare})

    assert rows(result, "chart_entries")[0]["added_at"] is None
    assert rows(result, "chart_entries")[0]["popularity"] is None
    track = rows(result, "tracks")[0]
    assert track["album_id"] is None and track["isrc"] is None and track["duration_ms"] is None
    assert result.tables["albums"].num_rows == 0


def test_odd_field_values_become_null_instead_of_failing() -> None:
    odd = make_track(
        "t1", duration_ms="long", explicit="yes", track_number=2**40, name=["x"], popularity=1.5
    )
    result = transform_entries(make_entry(odd, added_at="last tuesday"))

    track = rows(result, "tracks")[0]
    assert (track["duration_ms"], track["explicit"], track["track_number"], track["name"]) == (
        None,
        None,
        None,
        None,
    )
    entry = rows(result, "chart_entries")[0]
    assert entry["added_at"] is None and entry["popularity"] is None


def test_added_at_epoch_placeholder_is_kept() -> None:
    result = transform_entries(make_entry(make_track("t1"), added_at="1970-01-01T00:00:00Z"))

    assert column(result, "chart_entries", "added_at") == [datetime(1970, 1, 1, tzinfo=UTC)]


def test_spotify_url_is_the_open_spotify_link_not_the_api_href() -> None:
    without_links = make_track("t2", artists=[make_artist("artist2")], album=make_album("album2"))
    del without_links["external_urls"]
    del without_links["artists"][0]["external_urls"]
    without_links["album"]["external_urls"] = {}
    result = transform_entries(make_entry(make_track("t1")), make_entry(without_links))

    assert column(result, "tracks", "spotify_url") == [
        "https://open.spotify.com/track/t1",
        "https://open.spotify.com/track/t2",
    ]
    assert column(result, "albums", "spotify_url") == [
        "https://open.spotify.com/album/album1",
        "https://open.spotify.com/album/album2",
    ]
    assert column(result, "artists", "spotify_url") == [
        "https://open.spotify.com/artist/artist1",
        "https://open.spotify.com/artist/artist2",
    ]


def test_multi_artist_track_keeps_credited_order() -> None:
    credited = [make_artist("a_main"), make_artist("a_feat"), make_artist("a_remix")]
    album = make_album("album1", artists=[make_artist("a_album_only"), make_artist("a_main")])
    result = transform_entries(make_entry(make_track("t1", artists=credited, album=album)))

    assert [
        (row["track_id"], row["artist_id"], row["artist_position"])
        for row in rows(result, "track_artists")
    ] == [("t1", "a_main", 1), ("t1", "a_feat", 2), ("t1", "a_remix", 3)]
    # Album artists are artists too, even when they are not credited on a charted track.
    assert column(result, "artists", "artist_id") == ["a_main", "a_feat", "a_remix", "a_album_only"]


def test_artist_without_id_is_left_out_and_others_keep_their_position() -> None:
    credited = [make_artist("a1"), make_artist(None, "Unknown"), make_artist("a3")]
    result = transform_entries(make_entry(make_track("t1", artists=credited)))

    assert column(result, "track_artists", "artist_id") == ["a1", "a3"]
    assert column(result, "track_artists", "artist_position") == [1, 3]
    assert None not in column(result, "artists", "artist_id")


def test_duplicate_track_is_one_track_row_and_two_chart_rows() -> None:
    result = transform_entries(
        make_entry(make_track("t1", name="First wins")),
        make_entry(make_track("t2", album=make_album("album2"))),
        make_entry(make_track("t1", name="Second loses")),
    )

    assert column(result, "chart_entries", "track_id") == ["t1", "t2", "t1"]
    assert column(result, "chart_entries", "position") == [1, 2, 3]
    assert column(result, "tracks", "track_id") == ["t1", "t2"]
    assert column(result, "tracks", "name") == ["First wins", "A Song"]
    assert column(result, "track_artists", "track_id") == ["t1", "t2"]
    assert column(result, "albums", "album_id") == ["album1", "album2"]
    assert column(result, "artists", "artist_id") == ["artist1"]


@pytest.mark.parametrize(
    ("release_date", "precision", "expected_date", "expected_precision"),
    [
        ("2019", "year", date(2019, 1, 1), "year"),
        ("2021-03", "month", date(2021, 3, 1), "month"),
        ("2021-03-05", "day", date(2021, 3, 5), "day"),
        ("2019", None, date(2019, 1, 1), "year"),
        ("2021-03", None, date(2021, 3, 1), "month"),
        ("2021-03-05", None, date(2021, 3, 5), "day"),
        ("2021-03-05", "year", date(2021, 1, 1), "year"),
        ("0000", "year", None, "year"),
        ("0000-00-00", "day", None, "day"),
        ("2021-02-30", "day", None, "day"),
        ("March 2021", "month", None, "month"),
        ("soon", None, None, None),
    ],
)
def test_release_date_and_precision(
    release_date: str,
    precision: str | None,
    expected_date: date | None,
    expected_precision: str | None,
) -> None:
    album = make_album(release_date=release_date, precision=precision)
    result = transform_entries(make_entry(make_track("t1", album=album)))

    album_row = rows(result, "albums")[0]
    assert album_row["release_date"] == expected_date
    assert album_row["release_date_precision"] == expected_precision


def test_album_columns() -> None:
    result = transform_entries(make_entry(make_track("t1")))

    assert rows(result, "albums") == [
        {
            "album_id": "album1",
            "name": "Album album1",
            "album_type": "album",
            "release_date": date(2021, 3, 5),
            "release_date_precision": "day",
            "total_tracks": 12,
            "spotify_url": "https://open.spotify.com/album/album1",
            "playlist_id": PLAYLIST_ID,
            "extracted_at": EXTRACTED_AT,
        }
    ]


@pytest.mark.parametrize(
    "name",
    [
        "Hello, World",
        'She said "yes"',
        "It's a 'quote'",
        "line one\nline two\r\nline three",
        "tab\tseparated; semi",
        "Дорогой длинною",
        "夜に駆ける",
        "강남스타일",
        "مرحبا بالعالم",
        "Café del Mar ☕ 🎶",
        "  leading and trailing spaces  ",
    ],
)
def test_names_survive_unchanged(name: str) -> None:
    artist = make_artist("a1", name=name)
    album = make_album("album1", artists=[artist])
    album["name"] = name
    track = make_track("t1", name=name, artists=[artist], album=album)
    payload = make_envelope([make_page([make_entry(track)])])
    payload["playlist"]["name"] = name
    result = transform_envelope(payload, RAW_KEY)

    assert column(result, "tracks", "name") == [name]
    assert column(result, "albums", "name") == [name]
    assert column(result, "artists", "name") == [name]
    assert column(result, "snapshots", "playlist_name") == [name]


def test_every_column_is_filled_from_the_fields_the_fast_decoder_keeps() -> None:
    # The bulk path decodes only the fields listed in decode's _Item, _Album, _Artist, ...
    # A column whose field is missing from that list would come out null there, while the
    # json.loads path still fills it.
    payload = make_envelope(
        [
            make_page(
                [
                    make_entry(make_track("t1", popularity=64, explicit=True)),
                    make_entry(make_track("t2", popularity=12, album=make_album("album2"))),
                ]
            )
        ]
    )
    data = json.dumps(payload).encode()
    decoded = decode.decode_envelope(data, RAW_KEY)
    assert "href" not in decoded["pages"][0]["items"][0]["item"]  # the narrow decode ran

    fast = transform_envelope(decoded, RAW_KEY)
    reference = transform_envelope(json.loads(data), RAW_KEY)

    for name, schema in schemas.TABLES.items():
        assert fast.tables[name].equals(reference.tables[name]), name
        for field in schema:
            assert fast.tables[name].column(field.name).null_count == 0, (name, field.name)


def test_a_row_is_built_with_exactly_its_schema_columns() -> None:
    # Rows are built by column name and laid out in schema order: a column the schema lacks
    # would otherwise be dropped unseen.
    artist = {"artist_id": "a1", "name": "An Artist", "spotify_url": "https://x.test/a1"}
    in_schema_order = [n for n in schemas.ARTISTS.names if n not in schemas.SNAPSHOT_COLUMNS]

    assert decode._row_values("artists", **artist) == tuple(artist[n] for n in in_schema_order)
    with pytest.raises(TypeError, match=r"columns \['genre'\] are not in its schema"):
        decode._row_values("artists", **artist, genre="pop")
    with pytest.raises(TypeError, match=r"\['name'\] are missing"):
        decode._row_values("artists", artist_id="a1", spotify_url="https://x.test/a1")


def test_same_envelope_gives_identical_tables() -> None:
    pages = [
        make_page(
            [
                make_entry(make_track("t1", artists=[make_artist("a2"), make_artist("a1")])),
                make_entry(make_episode("e1")),
                make_entry(make_track("t2", album=make_album("album2"))),
                make_entry(make_track("t1")),
            ]
        ),
        make_page([make_entry(make_track("t3"))], offset=4),
    ]
    payload = make_envelope(pages)
    untouched = copy.deepcopy(payload)

    first = transform_envelope(payload, RAW_KEY)
    second = transform_envelope(copy.deepcopy(payload), RAW_KEY)

    assert payload == untouched
    assert first.counts == second.counts
    for name in schemas.TABLES:
        assert first.tables[name].equals(second.tables[name], check_metadata=True), name


def test_import_source_kind_is_recorded() -> None:
    payload = make_envelope([], source={"kind": "import", "file": "export.json"})
    assert column(transform_envelope(payload, RAW_KEY), "snapshots", "source") == ["import"]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda p: p.pop("extracted_at"), "extracted_at"),
        (lambda p: p.update(extracted_at="yesterday"), "extracted_at"),
        (lambda p: p.update(extracted_at="2026-11-25T08:00:00"), "extracted_at"),
        (lambda p: p.update(extracted_at=1_700_000_000), "extracted_at"),
        (lambda p: p.update(pages={"items": []}), "pages"),
        (lambda p: p.pop("pages"), "pages"),
        (lambda p: p.update(pages=[{"href": "no items here"}]), "page 0"),
        (lambda p: p.update(pages=[make_page([]), "a page?"]), "page 1"),
        (lambda p: p.update(pages=[make_page([None, None]), make_page([], offset=1)]), "overlap"),
        (lambda p: p["playlist"].pop("id"), "playlist id"),
        (lambda p: p["playlist"].update(id=""), "playlist id"),
        (lambda p: p.pop("playlist"), "playlist"),
        (lambda p: p.pop("source"), "source"),
    ],
)
def test_malformed_envelope_raises_one_line_naming_the_key(change: Any, message: str) -> None:
    payload = make_envelope([make_page([make_entry(make_track("t1"))])])
    change(payload)

    with pytest.raises(CorruptPayload) as raised:
        transform_envelope(payload, RAW_KEY)
    text = str(raised.value)
    assert text.startswith(f"{RAW_KEY}: ")
    assert message in text
    assert "\n" not in text


@pytest.mark.parametrize("not_an_envelope", [None, [], "{}", 3])
def test_non_object_envelope_raises(not_an_envelope: Any) -> None:
    with pytest.raises(CorruptPayload, match="envelope"):
        transform_envelope(not_an_envelope, RAW_KEY)  # type: ignore[arg-type]


def test_raw_key_of_another_playlist_or_day_raises() -> None:
    payload = make_envelope([])
    other_playlist = layout.raw_key("0therP1aylist", EXTRACTED_AT)
    other_day = layout.raw_key(PLAYLIST_ID, datetime(2026, 11, 24, 8, 0, tzinfo=UTC))

    with pytest.raises(CorruptPayload, match="0therP1aylist"):
        transform_envelope(payload, other_playlist)
    with pytest.raises(CorruptPayload, match="dt=2026-11-24"):
        transform_envelope(payload, other_day)


# --- the real recorded API responses -------------------------------------------------------

# Counted by hand in the files (2022 recordings: every entry uses the old `track` field).
RECORDED_COUNTS = {
    "get_playlist.txt": {"items": 4, "tracks": 4, "skipped_episodes": 0},
    "playlist_items_episodes.json": {"items": 4, "tracks": 0, "skipped_episodes": 4},
    "playlist_items_episodes_and_tracks.json": {"items": 4, "tracks": 2, "skipped_episodes": 2},
    "playlist_items_tracks.json": {"items": 2, "tracks": 2, "skipped_episodes": 0},
    "playlist_tracks.txt": {"items": 40, "tracks": 40, "skipped_episodes": 0},
}


@pytest.fixture
def recorded_folder(shared_data: Path) -> Path:
    # shared_data (conftest) is ../shared/data beside the repo and skips when it is absent.
    folder = shared_data / "spotify-api-recorded"
    if not folder.is_dir():
        pytest.skip(f"{folder} not found: shared data sits beside the repo only in CI/dev")
    return folder


def _first_page(payload: dict[str, Any]) -> dict[str, Any]:
    if payload.get("type") == "playlist":
        return payload.get("items") or payload["tracks"]
    return payload


@pytest.mark.shared_data
def test_every_recorded_response_transforms(recorded_folder: Path) -> None:
    files = sorted(path for path in recorded_folder.iterdir() if path.suffix in {".json", ".txt"})
    assert {path.name for path in files} >= set(RECORDED_COUNTS)

    for path in files:
        payload = json.loads(path.read_bytes())
        wrapped = envelope.envelope_from_capture(
            payload, extracted_at=EXTRACTED_AT, source_name=path.name
        )
        raw_key = layout.raw_key(wrapped["playlist"]["id"], EXTRACTED_AT)
        result = transform_envelope(wrapped, raw_key)

        entries = _first_page(payload)["items"]
        played = [entry.get("item") or entry.get("track") for entry in entries]
        track_ids = [item["id"] for item in played if item and item.get("type") == "track"]
        episodes = [item for item in played if item and item.get("type") == "episode"]
        expected = {
            "items": len(entries),
            "tracks": len(track_ids),
            "skipped_episodes": len(episodes),
            "skipped_local": 0,
            "skipped_null": sum(item is None for item in played),
        }
        assert result.counts == expected, path.name
        if path.name in RECORDED_COUNTS:
            assert {name: result.counts[name] for name in RECORDED_COUNTS[path.name]} == (
                RECORDED_COUNTS[path.name]
            ), path.name

        assert column(result, "chart_entries", "track_id") == track_ids, path.name
        assert column(result, "tracks", "track_id") == list(dict.fromkeys(track_ids)), path.name
        snapshot = rows(result, "snapshots")[0]
        assert (snapshot["source"], snapshot["raw_key"]) == ("import", raw_key)
        assert (snapshot["item_count"], snapshot["track_count"]) == (
            expected["items"],
            expected["tracks"],
        )
        assert all(
            url.startswith("https://open.spotify.com/")
            for table in ("tracks", "albums", "artists")
            for url in column(result, table, "spotify_url")
        ), path.name
        for name, schema in schemas.TABLES.items():
            assert result.tables[name].schema.equals(schema), (path.name, name)


@pytest.mark.shared_data
def test_recorded_tracks_page_in_detail(recorded_folder: Path) -> None:
    payload = json.loads((recorded_folder / "playlist_tracks.txt").read_bytes())
    wrapped = envelope.envelope_from_capture(
        payload, extracted_at=EXTRACTED_AT, source_name="playlist_tracks.txt"
    )
    result = transform_envelope(wrapped, layout.raw_key(wrapped["playlist"]["id"], EXTRACTED_AT))

    tracks = [entry["track"] for entry in payload["items"]]
    assert column(result, "chart_entries", "position") == list(range(1, 41))
    assert result.tables["track_artists"].num_rows == sum(len(t["artists"]) for t in tracks)
    assert column(result, "tracks", "isrc") == [t["external_ids"]["isrc"] for t in tracks]
    assert column(result, "chart_entries", "popularity") == [t["popularity"] for t in tracks]
    assert column(result, "chart_entries", "added_at")[0] == datetime(
        2022, 7, 15, 19, 37, 22, tzinfo=UTC
    )
