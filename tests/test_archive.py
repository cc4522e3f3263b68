"""The public playlist archive as a source: parsing, detection, fetching, and the lake it fills."""

from __future__ import annotations

import json
import re
from collections import defaultdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from etl_lib import pipeline
from etl_lib.errors import ArchiveError, ConfigError, CorruptPayload, PlaylistNotFound
from etl_lib.extract import archive
from etl_lib.extract.envelope import parse_utc
from etl_lib.lake import layout
from etl_lib.local_spotify import ChartSimulator
from etl_lib.local_spotify.archive_server import LocalArchiveServer, archive_document
from etl_lib.transform import iceberg
from etl_lib.transform.decode import decode_envelope, transform_envelope
from etl_lib.warehouse.catalog import build_catalog
from etl_lib.warehouse.execute import query

TOP_50 = "37i9dQZEVXbMDoHDwVN2tF"
NOW = datetime(2026, 10, 1, 6, 30, tzinfo=UTC)
# Deliberately simpler than the parser under test: the rank and the first track link.
ROW_RANK_AND_TRACK = re.compile(
    r"^\| (\d+) \| \[.*?\]\(https://open\.spotify\.com/track/([A-Za-z0-9]+)\)"
)

OPEN = "https://open.spotify.com"


def link(name: str, kind: str, spotify_id: str) -> str:
    return f"[{name}]({OPEN}/{kind}/{spotify_id})"


def row(number: int, title: str, artists: str, album: str, length: str) -> str:
    return f"| {number} | {title} | {artists} | {album} | {length} |"


# The archive's markdown page, newer style (names escaped with backslashes), with the names
# that break naive parsers: brackets, bars, parentheses, commas, quotes, other scripts, and a
# row without links.
TRICKY_MARKDOWN = "\n".join(
    [
        "pretty - [cumulative](/playlists/cumulative/x.md) - [plain](/playlists/plain/{pid})",
        "",
        "### [Top 50 \\- Global](https://open.spotify.com/playlist/{pid})",
        "",
        "> Your daily update \\- of the most played tracks\\.",
        "",
        "| No. | Title | Artist(s) | Album | Length |",
        "|---|---|---|---|---|",
        row(
            1,
            link("Save Your Tears (with Ariana Grande) (Remix)", "track", "t1"),
            f"{link('The Weeknd', 'artist', 'a1')}, {link('Ariana Grande', 'artist', 'a2')}",
            link("F*CK LOVE (SAVAGE)", "album", "b1"),
            "3:11",
        ),
        row(
            2,
            link("Ballad \\[Live\\] \\| Part \\(1\\)", "track", "t2"),
            link("Tyler, The Creator", "artist", "a3"),
            link('"Quoted", Album', "album", "b2"),
            "1:02:03",
        ),
        row(
            3,
            link("별빛 속으로", "track", "t3"),
            link("김하린", "artist", "a4"),
            link("Белые ночи", "album", "b3"),
            "0:59",
        ),
        row(4, "My Local Demo", "Me", "Tapes", "2:00"),
        "",
        "Snapshot ID: `MTYxNTAxMjAwMCwwMDAw`",
        "",
    ]
)


@pytest.fixture(autouse=True)
def no_internet(monkeypatch):
    """Every HTTP request of this module must go to the local archive server."""
    original = requests.Session.request

    def local_only(self, method, url, *args, **kwargs):
        host = urlsplit(url).hostname
        assert host in ("127.0.0.1", "localhost"), f"test tried to reach {url}"
        return original(self, method, url, *args, **kwargs)

    monkeypatch.setattr(requests.Session, "request", local_only)


@pytest.fixture
def archive_server():
    with LocalArchiveServer(ChartSimulator(), now=NOW) as server:
        yield server


def archive_folder(shared_data: Path) -> Path:
    return shared_data / "playlist-archive" / "top50-global-2021"


def ranked_track_ids(markdown: str) -> list[tuple[int, str]]:
    rows = []
    for line in markdown.splitlines():
        if match := ROW_RANK_AND_TRACK.match(line):
            rows.append((int(match[1]), match[2]))
    return rows


def land_and_transform(lake_root: str, envelopes: list[dict]) -> pipeline.TransformSummary:
    for payload in envelopes:
        pipeline.land_raw(lake_root, payload)
    summary = pipeline.transform(lake_root)
    assert summary.quarantined == {}
    return summary


def raw_key_of(payload: dict) -> str:
    return layout.raw_key(payload["playlist"]["id"], parse_utc(payload["extracted_at"]))


def snapshot_rows(lake_root: str, table: str, payload: dict):
    """The rows of ``table`` that came from ``payload``'s snapshot, in the table's order."""
    from pyiceberg.expressions import And, EqualTo

    rows = iceberg.scan(
        lake_root,
        table,
        And(
            EqualTo("playlist_id", payload["playlist"]["id"]),
            EqualTo("extracted_at", parse_utc(payload["extracted_at"]).isoformat()),
        ),
    )
    return rows.sort_by([(key, "ascending") for key in iceberg.SORT_KEYS[table]])


# -- the real archive history --------------------------------------------------------------


@pytest.mark.shared_data
def test_every_real_markdown_version_parses_to_fifty_ranked_rows(shared_data):
    files = archive.iter_archive_files(archive_folder(shared_data))
    assert len(files) == 58

    for file in files:
        parsed = archive.parse_markdown(file.read_text(encoding="utf-8"), source_name=file.name)
        assert parsed["id"] == TOP_50, file.name
        assert [track["position"] for track in parsed["tracks"]] == list(range(1, 51)), file.name
        for track in parsed["tracks"]:
            assert archive.spotify_id_from_url(track["url"], "track"), (file.name, track)
            assert archive.spotify_id_from_url(track["album"]["url"], "album"), (file.name, track)
            assert track["artists"], (file.name, track)
            for artist in track["artists"]:
                assert archive.spotify_id_from_url(artist["url"], "artist"), (file.name, artist)
            assert track["duration_ms"] % 1000 == 0 and track["duration_ms"] > 0


@pytest.mark.shared_data
def test_daily_chart_of_the_real_archive_is_each_days_last_capture(shared_data, lake_root):
    files = archive.iter_archive_files(archive_folder(shared_data))
    envelopes = [archive.envelope_from_archive_file(file) for file in files]
    assert {payload["source"]["format"] for payload in envelopes} == {"markdown"}
    summary = land_and_transform(lake_root, envelopes)
    assert summary.rows["chart_entries"] == 58 * 50
    build_catalog(lake_root)

    # File names are capture times (UTC); sorted by name, the last one of a date wins.
    expected_by_date: dict[str, tuple[str, list[tuple[int, str]]]] = {}
    captures_per_date: dict[str, int] = defaultdict(int)
    for file in files:
        day = file.name[:10]
        captures_per_date[day] += 1
        expected_by_date[day] = (file.name, ranked_track_ids(file.read_text(encoding="utf-8")))
    assert captures_per_date["2021-03-19"] == 2

    chart = query(
        lake_root,
        "SELECT dt, position, chart_rank, track_id, extracted_at, playlist_id FROM daily_chart "
        "ORDER BY dt, position",
    )
    assert set(chart["playlist_id"]) == {TOP_50}
    assert sorted(set(chart["dt"])) == sorted(expected_by_date)
    for day, rows in chart.groupby("dt"):
        file_name, expected_rows = expected_by_date[day]
        assert len(expected_rows) == 50, file_name
        assert list(zip(rows["position"], rows["track_id"], strict=True)) == expected_rows, day
        assert list(rows["chart_rank"]) == list(range(1, 51))
        captured_at = archive.capture_time_from_name(Path(file_name))
        assert {moment.to_pydatetime() for moment in rows["extracted_at"]} == {captured_at}

    later = query(
        lake_root, "SELECT DISTINCT extracted_at FROM daily_chart WHERE dt = '2021-03-19'"
    )
    assert later["extracted_at"][0].to_pydatetime() == datetime(2021, 3, 19, 17, 38, 28, tzinfo=UTC)


# -- detection by content ------------------------------------------------------------------


def test_format_is_detected_by_content_not_by_extension(tmp_path):
    markdown_as_text = tmp_path / "chart.txt"
    markdown_as_text.write_text(TRICKY_MARKDOWN.format(pid=TOP_50), encoding="utf-8")
    document = archive_document(ChartSimulator(), TOP_50, NOW)
    json_as_markdown = tmp_path / "2026-10-01T06:30:00Z.md"
    json_as_markdown.write_text(json.dumps(document), encoding="utf-8")

    assert archive.detect_format(markdown_as_text.read_bytes()) == "markdown"
    starts_with_a_link = b"[pretty](/p.md) - cumulative\n\n" + markdown_as_text.read_bytes()
    assert archive.detect_format(starts_with_a_link) == "markdown"
    assert archive.detect_format(json_as_markdown.read_bytes()) == "json"

    at = datetime(2021, 3, 6, 12, tzinfo=UTC)
    from_text = archive.envelope_from_archive_file(markdown_as_text, extracted_at=at)
    assert from_text["source"] == {"kind": "archive", "file": "chart.txt", "format": "markdown"}
    assert from_text["archive"] == markdown_as_text.read_text(encoding="utf-8")
    assert from_text["extracted_at"] == "2021-03-06T12:00:00Z"
    assert from_text["pages"] == []

    from_json = archive.envelope_from_archive_file(json_as_markdown)
    assert from_json["source"]["format"] == "json"
    assert from_json["archive"] == document
    assert from_json["extracted_at"] == "2026-10-01T06:30:00Z"  # from the file name


@pytest.mark.parametrize(
    "content",
    [b"just some notes\nno table here\n", b"\x89PNG\r\n\x1a\n\x00\xff", b"{not json", b"[1, 2]"],
    ids=["text", "binary", "broken-json", "json-list"],
)
def test_anything_else_is_a_corrupt_payload_naming_the_file(tmp_path, content):
    path = tmp_path / "2021-03-06T00:13:23Z.md"
    path.write_bytes(content)

    with pytest.raises(CorruptPayload) as caught:
        archive.envelope_from_archive_file(path)

    message = str(caught.value)
    assert str(path) in message and "\n" not in message


def test_json_without_tracks_or_playlist_url_is_corrupt(tmp_path):
    path = tmp_path / "2021-03-06T00:13:23Z.json"
    path.write_text(json.dumps({"items": []}), encoding="utf-8")
    with pytest.raises(CorruptPayload, match="no 'tracks' list"):
        archive.envelope_from_archive_file(path)

    path.write_text(json.dumps({"tracks": [], "url": "https://example.com/x"}), encoding="utf-8")
    with pytest.raises(CorruptPayload, match="playlist is unknown"):
        archive.envelope_from_archive_file(path)


def test_capture_time_comes_from_the_name_or_must_be_passed(tmp_path):
    markdown = TRICKY_MARKDOWN.format(pid=TOP_50)
    named = tmp_path / "2021-03-06T00:13:23Z.md"
    compact = tmp_path / "20210306T001323Z.md"
    unnamed = tmp_path / "top50.md"
    for path in (named, compact, unnamed):
        path.write_text(markdown, encoding="utf-8")

    assert archive.envelope_from_archive_file(named)["extracted_at"] == "2021-03-06T00:13:23Z"
    assert archive.envelope_from_archive_file(compact)["extracted_at"] == "2021-03-06T00:13:23Z"
    with pytest.raises(ConfigError, match="--extracted-at"):
        archive.envelope_from_archive_file(unnamed)
    with pytest.raises(ConfigError, match="UTC"):
        archive.envelope_from_archive_file(unnamed, extracted_at=datetime(2021, 3, 6))  # noqa: DTZ001


def test_iter_archive_files_lists_a_folder_sorted_without_noise(tmp_path):
    for name in ("b.md", "a.json", ".DS_Store", "README.md", "x.md.tmp"):
        (tmp_path / name).write_text("x", encoding="utf-8")
    (tmp_path / "sub").mkdir()

    assert [p.name for p in archive.iter_archive_files(tmp_path)] == ["a.json", "b.md", "x.md.tmp"]
    assert archive.iter_archive_files(tmp_path / "b.md") == [tmp_path / "b.md"]
    with pytest.raises(ConfigError, match="does not exist"):
        archive.iter_archive_files(tmp_path / "missing")


# -- fetching from the (local) archive -----------------------------------------------------


def test_fetched_archive_json_lands_and_transforms_into_the_chart(archive_server, lake_root):
    simulator = ChartSimulator()
    payload = archive.fetch_archive_envelope(
        archive_server.base_url, TOP_50, extracted_at=NOW, timeout=5
    )

    assert archive_server.requests == [f"/playlists/pretty/{TOP_50}.json"]
    assert payload["source"] == {
        "kind": "archive",
        "url": f"{archive_server.base_url}/playlists/pretty/{TOP_50}.json",
        "format": "json",
    }
    assert payload["playlist"] == {
        "id": TOP_50,
        "name": "Top 50 - Global",
        "snapshot_id": simulator.snapshot_id(TOP_50, NOW),
        "followers": simulator.followers(TOP_50, NOW.date()),
        "owner_id": "spotify",
    }
    land_and_transform(lake_root, [payload])
    chart = snapshot_rows(lake_root, "chart_entries", payload)
    snapshots = snapshot_rows(lake_root, "snapshots", payload)

    entries = simulator.chart(TOP_50, NOW)
    assert chart.column("track_id").to_pylist() == simulator.chart_track_ids(TOP_50, NOW)
    assert chart.column("position").to_pylist() == list(range(1, len(entries) + 1))
    assert chart.column("added_at").to_pylist() == [
        parse_utc(entry["added_at"]) for entry in entries
    ]
    assert chart.column("popularity").null_count == chart.num_rows
    assert snapshots.column("source").to_pylist() == ["archive"]
    assert snapshots.column("track_count").to_pylist() == [len(entries)]
    assert snapshots.column("raw_key").to_pylist() == [raw_key_of(payload)]


def test_the_server_serves_the_chart_of_its_clock_day(archive_server):
    today = archive.fetch_archive_envelope(archive_server.base_url, TOP_50, extracted_at=NOW)
    archive_server.set_time(NOW + timedelta(days=30))
    later = archive.fetch_archive_envelope(archive_server.base_url, TOP_50, extracted_at=NOW)

    simulator = ChartSimulator()
    later_ids = [archive.spotify_id_from_url(t["url"], "track") for t in later["archive"]["tracks"]]
    assert later_ids == simulator.chart_track_ids(TOP_50, NOW + timedelta(days=30))
    assert later["playlist"]["snapshot_id"] != today["playlist"]["snapshot_id"]


def test_unknown_playlist_is_playlist_not_found(archive_server):
    with pytest.raises(PlaylistNotFound, match="does not track playlist 0000000000000000000000"):
        archive.fetch_archive_envelope(
            archive_server.base_url, "0000000000000000000000", extracted_at=NOW
        )


def test_server_errors_and_unreachable_archive_are_archive_errors(archive_server):
    archive_server.fail_next(500)
    with pytest.raises(ArchiveError, match="answered 500"):
        archive.fetch_archive_envelope(archive_server.base_url, TOP_50, extracted_at=NOW)
    # The fault was used up: the next request succeeds.
    assert archive.fetch_archive_envelope(archive_server.base_url, TOP_50, extracted_at=NOW)

    with LocalArchiveServer() as stopped_soon:
        gone = stopped_soon.base_url
    with pytest.raises(ArchiveError, match="cannot reach the playlist archive"):
        archive.fetch_archive_envelope(gone, TOP_50, extracted_at=NOW, timeout=(2, 2))


def test_a_bad_playlist_id_is_refused_before_any_request(archive_server):
    with pytest.raises(ConfigError):
        archive.fetch_archive_envelope(archive_server.base_url, "../etc", extracted_at=NOW)
    assert archive_server.requests == []


# -- pure parsers ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "kind", "expected"),
    [
        (f"{OPEN}/track/7lPN2DXiMsVn7XUKtOW1CS", "track", "7lPN2DXiMsVn7XUKtOW1CS"),
        (f"{OPEN}/album/66FPnVL9G4CMKy3wvaGTcr?si=abc", "album", "66FPnVL9G4CMKy3wvaGTcr"),
        (f"{OPEN}/intl-de/artist/1McMsnEElThX1knmY4oliG", "artist", "1McMsnEElThX1knmY4oliG"),
        (f"{OPEN}/playlist/37i9dQZEVXbMDoHDwVN2tF", "playlist", TOP_50),
        (f"{OPEN}/user/spotify", "user", "spotify"),
        (f"{OPEN}/track/7lPN2DXiMsVn7XUKtOW1CS", "album", None),
        ("https://example.com/track/7lPN2DXiMsVn7XUKtOW1CS", "track", None),
        ("", "track", None),
        (None, "track", None),
    ],
)
def test_ids_come_from_open_spotify_urls(url, kind, expected):
    assert archive.spotify_id_from_url(url, kind) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2021-03-05 12:00:00", "2021-03-05T12:00:00Z"),
        ("2021-03-05T12:00:00Z", "2021-03-05T12:00:00Z"),
        (None, None),
        ("yesterday", None),
        ("2021-03-05 12:00:00+02:00", None),
    ],
)
def test_added_at_becomes_iso_utc(text, expected):
    assert archive.archive_added_at(text) == expected


def test_json_tracks_become_spotify_shaped_entries():
    document = {
        "url": f"https://open.spotify.com/playlist/{TOP_50}",
        "tracks": [
            {
                "added_at": "2021-03-05 12:00:00",
                "album": {"name": 'Album, "Deluxe"', "url": "https://open.spotify.com/album/b1"},
                "artists": [
                    {"name": "Tyler, The Creator", "url": "https://open.spotify.com/artist/a2"},
                    {"name": "김하린", "url": "https://open.spotify.com/artist/a1"},
                ],
                "duration_ms": 201_000,
                "name": 'Белые ночи "live"',
                "url": "https://open.spotify.com/track/t1",
            },
            {"name": "A Podcast", "url": "https://open.spotify.com/episode/e1", "artists": []},
            "not a track",
        ],
    }

    track_entry, episode_entry, null_entry = archive.archive_entries(document)

    assert track_entry == {
        "added_at": "2021-03-05T12:00:00Z",
        "is_local": False,
        "item": {
            "type": "track",
            "id": "t1",
            "name": 'Белые ночи "live"',
            "duration_ms": 201_000,
            "external_urls": {"spotify": "https://open.spotify.com/track/t1"},
            "album": {
                "id": "b1",
                "name": 'Album, "Deluxe"',
                "external_urls": {"spotify": "https://open.spotify.com/album/b1"},
            },
            "artists": [
                {
                    "id": "a2",
                    "name": "Tyler, The Creator",
                    "external_urls": {"spotify": "https://open.spotify.com/artist/a2"},
                },
                {
                    "id": "a1",
                    "name": "김하린",
                    "external_urls": {"spotify": "https://open.spotify.com/artist/a1"},
                },
            ],
        },
    }
    assert episode_entry["item"]["type"] == "episode"
    assert null_entry is None


def test_markdown_rows_survive_escapes_commas_quotes_and_scripts():
    parsed = archive.parse_markdown(TRICKY_MARKDOWN.format(pid=TOP_50))

    assert parsed["id"] == TOP_50
    assert parsed["name"] == "Top 50 - Global"
    assert parsed["description"] == "Your daily update - of the most played tracks."
    assert parsed["snapshot_id"] == "MTYxNTAxMjAwMCwwMDAw"
    first, second, third, local = parsed["tracks"]
    assert first["name"] == "Save Your Tears (with Ariana Grande) (Remix)"
    assert [a["name"] for a in first["artists"]] == ["The Weeknd", "Ariana Grande"]
    assert [archive.spotify_id_from_url(a["url"], "artist") for a in first["artists"]] == [
        "a1",
        "a2",
    ]
    assert first["album"]["name"] == "F*CK LOVE (SAVAGE)"
    assert first["duration_ms"] == 191_000
    assert second["name"] == "Ballad [Live] | Part (1)"
    assert [a["name"] for a in second["artists"]] == ["Tyler, The Creator"]
    assert second["album"] == {
        "name": '"Quoted", Album',
        "url": "https://open.spotify.com/album/b2",
    }
    assert second["duration_ms"] == 3_723_000  # h:mm:ss
    assert (third["name"], third["artists"][0]["name"], third["album"]["name"]) == (
        "별빛 속으로",
        "김하린",
        "Белые ночи",
    )
    assert local["url"] == "" and local["name"] == "My Local Demo"
    assert [a["name"] for a in local["artists"]] == ["Me"]


def test_an_unescaped_bar_in_a_name_falls_back_on_link_kinds():
    row = (
        "| 1 | [A | B](https://open.spotify.com/track/t1) | [X](https://open.spotify.com/artist/a1)"
        ", [Y](https://open.spotify.com/artist/a2) | [C | D](https://open.spotify.com/album/b1) "
        "| 2:05 |"
    )
    markdown = TRICKY_MARKDOWN.format(pid=TOP_50).split("| 1 |")[0] + row + "\n"

    (track,) = archive.parse_markdown(markdown)["tracks"]

    assert track["name"] == "A | B" and track["album"]["name"] == "C | D"
    assert [a["name"] for a in track["artists"]] == ["X", "Y"]


def test_markdown_with_missing_or_misnumbered_rows_is_corrupt():
    markdown = TRICKY_MARKDOWN.format(pid=TOP_50)
    with pytest.raises(CorruptPayload, match="row number 3 where 2 was expected"):
        archive.parse_markdown(markdown.replace("| 2 |", "| 3 |", 1), source_name="x.md")
    with pytest.raises(CorruptPayload, match="header"):
        archive.parse_markdown(markdown.replace("### ", "## "), source_name="x.md")
    with pytest.raises(CorruptPayload, match="track table"):
        archive.parse_markdown(markdown.replace("| No. |", "| Rank |"), source_name="x.md")


# -- transform of archive envelopes --------------------------------------------------------


def markdown_envelope() -> dict[str, Any]:
    return archive.make_archive_envelope(
        TRICKY_MARKDOWN.format(pid=TOP_50),
        extracted_at=datetime(2021, 3, 6, 0, 13, 23, tzinfo=UTC),
        origin={"file": "2021-03-06T00:13:23Z.md"},
        source_name="2021-03-06T00:13:23Z.md",
    )


@pytest.mark.parametrize(
    ("poison", "message"),
    [
        (b'"followers": ' + b"7" * 5000, "longer than 4,300 digits"),
        (b'"name": "bad \\ud800 name"', "lone surrogate"),
    ],
    ids=["5,000-digit number", "lone surrogate"],
)
def test_an_archive_document_is_decoded_with_the_payload_checks(poison, message):
    """The archive's document has no API pages: the fast decoder does not know its shape,
    so it goes through the checked path and hostile values are refused, naming the file."""
    payload = markdown_envelope()
    raw_key = raw_key_of(payload)
    data = json.dumps(payload).encode()
    data = data[:-1] + b', "extra": {' + poison + b"}}"
    with pytest.raises(CorruptPayload, match=message):
        decode_envelope(data, raw_key)


def test_markdown_envelope_transforms_into_the_same_tables():
    payload = markdown_envelope()
    result = transform_envelope(payload, raw_key_of(payload))

    assert result.tables["chart_entries"].column("position").to_pylist() == [1, 2, 3]
    assert result.tables["chart_entries"].column("track_id").to_pylist() == ["t1", "t2", "t3"]
    assert result.counts["skipped_local"] == 1  # the row without a Spotify link
    assert result.tables["track_artists"].to_pylist()[:2] == [
        {"track_id": "t1", "artist_id": "a1", "artist_position": 1, "playlist_id": TOP_50,
         "extracted_at": datetime(2021, 3, 6, 0, 13, 23, tzinfo=UTC)},
        {"track_id": "t1", "artist_id": "a2", "artist_position": 2, "playlist_id": TOP_50,
         "extracted_at": datetime(2021, 3, 6, 0, 13, 23, tzinfo=UTC)},
    ]  # fmt: skip
    (snapshot,) = result.tables["snapshots"].to_pylist()
    assert (snapshot["source"], snapshot["snapshot_id"], snapshot["followers"]) == (
        "archive",
        "MTYxNTAxMjAwMCwwMDAw",
        None,
    )
    track = result.tables["tracks"].to_pylist()[0]
    assert (track["explicit"], track["isrc"], track["track_number"], track["disc_number"]) == (
        None,
        None,
        None,
        None,
    )
    album = result.tables["albums"].to_pylist()[0]
    assert (album["album_type"], album["release_date"], album["total_tracks"]) == (None, None, None)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda p: p.pop("archive"), "without its 'archive' document"),
        (lambda p: p.update(archive=[1, 2]), "not a JSON object or markdown text"),
        (lambda p: p.update(pages=[{"items": []}]), "API pages too"),
        (lambda p: p.update(archive="# nothing here"), "header"),
        (lambda p: p.update(archive={"url": "x"}), "'tracks' list missing"),
    ],
)
def test_broken_archive_envelopes_are_corrupt(change, message):
    payload = markdown_envelope()
    change(payload)
    with pytest.raises(CorruptPayload, match=message):
        transform_envelope(payload, raw_key_of(payload))


def test_archive_envelope_without_pages_key_still_transforms():
    payload = markdown_envelope()
    del payload["pages"]
    assert transform_envelope(payload, raw_key_of(payload)).counts["tracks"] == 3
