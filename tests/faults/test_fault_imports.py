"""Imports (``transform --input``, ``backfill``) never lose a good file, never stall, and never
write a key their own parser would not read back.
"""

from __future__ import annotations

import copy
import json
import os
import time
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from etl_lib import cli, pipeline
from etl_lib.errors import ConfigError
from etl_lib.extract import envelope
from etl_lib.lake import layout, storage
from etl_lib.local_spotify import ChartSimulator

pytestmark = [pytest.mark.faults, pytest.mark.timeout(120)]

PLAYLIST = "37i9dQZEVXbNG2KDcFcKOF"
DAY = date(2026, 10, 1)
CHART = ChartSimulator().chart(PLAYLIST, DAY)
# Files copied without their times: all share this modification time.
MTIME = datetime(2026, 10, 1, 12, 0, 0, tzinfo=UTC)


def _page(number: int) -> dict:
    """A bare paging object as saved from the API, different for each number."""
    entry = copy.deepcopy(CHART[number % len(CHART)])
    entry["item"]["name"] = f"{entry['item']['name']} (take {number})"
    return {
        "href": f"https://api.spotify.com/v1/playlists/{PLAYLIST}/items?offset=0&limit=100",
        "items": [entry],
        "offset": 0,
        "limit": 100,
        "next": None,
        "total": 1,
    }


def _envelope(**changes) -> dict:
    simulator = ChartSimulator()
    moment = datetime(2026, 10, 1, 8, tzinfo=UTC)
    page = {"items": simulator.chart(PLAYLIST, DAY), "offset": 0, "next": None}
    source = {"kind": "spotify-web-api", "api_base_url": "https://api.spotify.com/v1"}
    value = envelope.make_envelope(simulator.playlist(PLAYLIST, DAY), [page], moment, source)
    value.update(changes)
    return value


def _write(folder: Path, name: str, content: dict | bytes) -> Path:
    path = folder / name
    path.write_bytes(content if isinstance(content, bytes) else json.dumps(content).encode())
    os.utime(path, (MTIME.timestamp(), MTIME.timestamp()))
    return path


def _raw_keys(root: str) -> list[str]:
    return list(storage.list_keys(root, f"{layout.RAW}/"))


def _errors(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error: ")]


BAD_FILES = {
    "null_playlist.json": (_envelope(playlist=None), "'playlist' is missing"),
    "no_time.json": (
        {k: v for k, v in _envelope().items() if k != "extracted_at"},
        "'extracted_at' is missing",
    ),
    "naive_time.json": (_envelope(extracted_at="2026-10-01T08:00:00"), "no UTC offset"),
    "integer_time.json": (_envelope(extracted_at=1790000000), "not a string"),
    "garbage_time.json": (_envelope(extracted_at="soon"), "not an ISO-8601 time"),
    "year_999.json": (_envelope(extracted_at="0999-06-01T00:00:00Z"), "outside 1900-01-01"),
    "null_pages.json": (_envelope(pages=None), "'pages' is missing"),
    "newline_id.json": (
        _envelope(playlist={**_envelope()["playlist"], "id": PLAYLIST + "\n"}),
        "is not a Spotify ID",
    ),
    "orphan_page.json": ({"items": [], "href": "https://example.com/x"}, "--playlist-id"),
    "gateway.html": (b"<html><body>502 Bad Gateway</body></html>", "not valid JSON"),
    "deep.json": (b"[" * 50_000 + b"]" * 50_000, "JSON nested deeper than the parser goes"),
    "huge_number.json": (b'{"items": [], "total": ' + b"9" * 5000 + b"}", "4,300 digits"),
}


def test_folder_import_lands_every_good_file_and_lists_each_bad_one(tmp_path, capsys):
    folder = tmp_path / "saved"
    folder.mkdir()
    for name, (content, _) in BAD_FILES.items():
        _write(folder, name, content)
    # Good files, sorted among the bad ones: the capture time comes from the envelope, the
    # file's name, or its modification time.
    _write(folder, "a_envelope.json", _envelope())
    _write(folder, "2021-03-06T00:13:23Z.json", _page(1))
    _write(folder, "20210306T001324Z.json", _page(2))
    (folder / "more").mkdir()
    _write(folder / "more", "zz_saved_page.json", _page(3))  # subfolders are imported too
    (folder / ".git").mkdir()
    _write(folder / ".git", "HEAD", b"ref: refs/heads/main")  # hidden: no payload, no error
    root = str(tmp_path / "lake")

    status = cli.main(["transform", "--lake", root, "--input", str(folder)])

    stderr = capsys.readouterr().err
    assert status == 1 and "Traceback" not in stderr
    assert "imported 4 payloads into the raw zone (4 new); 12 files refused" in stderr
    assert "transformed 4 raw files" in stderr
    errors = _errors(stderr)
    assert len(errors) == len(BAD_FILES)
    for name, (_, named) in BAD_FILES.items():
        [line] = [e for e in errors if str(folder / name) in e]
        assert named in line, (name, line)
    assert _raw_keys(root) == sorted(
        [
            layout.raw_key(PLAYLIST, datetime(2026, 10, 1, 8, tzinfo=UTC)),
            layout.raw_key(PLAYLIST, datetime(2021, 3, 6, 0, 13, 23, tzinfo=UTC)),
            layout.raw_key(PLAYLIST, datetime(2021, 3, 6, 0, 13, 24, tzinfo=UTC)),
            layout.raw_key(PLAYLIST, MTIME),
        ]
    )
    assert not [p for p in Path(root).rglob("*") if "\n" in p.name]

    # Importing the same folder again lands nothing twice and transforms nothing.
    again = cli.main(["transform", "--lake", root, "--input", str(folder)])
    stderr = capsys.readouterr().err
    assert again == 1
    assert "imported 4 payloads into the raw zone (0 new); 12 files refused" in stderr
    assert "transformed 0 raw files" in stderr
    assert len(_raw_keys(root)) == 4


def test_backfill_lands_every_good_archive_file_and_lists_each_bad_one(tmp_path, capsys):
    folder = tmp_path / "history"
    folder.mkdir()
    track = {
        "name": "Song",
        "url": "https://open.spotify.com/track/4uLU6hMCjMI75M1A2tKUQC",
        "album": {"name": "Album", "url": "https://open.spotify.com/album/6rqhFgbbKwnb9MLmUQDhG6"},
        "artists": [{"name": "A", "url": "https://open.spotify.com/artist/0gxyHStUsqpMadRV0Di1Qt"}],
        "duration_ms": 200000,
        "added_at": "2021-03-05 12:00:00",
    }
    document = {
        "url": f"https://open.spotify.com/playlist/{PLAYLIST}",
        "original_name": "Top Songs",
        "snapshot_id": "s1",
        "tracks": [track],
    }
    _write(folder, "2021-03-06T00:13:23Z.json", document)
    _write(folder, "2021-03-07T00:13:23Z.json", {**document, "snapshot_id": "s2"})
    _write(folder, "2021-03-08T00:00:00Z.json", b"<html>rate limited</html>")
    _write(folder, "0999-03-08T00:00:00Z.json", document)
    _write(folder, "2021-13-45T00:00:00Z.json", document)  # shaped like a time, is not one
    _write(folder, "notes-without-time.json", document)
    root = str(tmp_path / "lake")

    status = cli.main(["backfill", str(folder), "--lake", root])

    stderr = capsys.readouterr().err
    assert status == 1 and "Traceback" not in stderr
    assert "landed 2 archived snapshots (2 new); 4 files refused" in stderr
    assert "transformed 2 raw files" in stderr
    errors = _errors(stderr)
    for name, named in {
        "2021-03-08T00:00:00Z.json": "playlist-archive file",
        "0999-03-08T00:00:00Z.json": "outside 1900-01-01",
        "2021-13-45T00:00:00Z.json": "pass --extracted-at",
        "notes-without-time.json": "pass --extracted-at",
    }.items():
        [line] = [e for e in errors if str(folder / name) in e]
        assert named in line, (name, line)
    assert [layout.parse_raw_key(k)["stamp"] for k in _raw_keys(root)] == [
        "20210306T001323Z",
        "20210307T001323Z",
    ]


def test_keys_are_zero_padded_and_read_back_by_their_parser(tmp_path):
    year_999 = datetime(999, 6, 1, tzinfo=UTC)
    key = layout.raw_key(PLAYLIST, year_999)
    assert key == f"raw/playlist_id={PLAYLIST}/dt=0999-06-01/09990601T000000Z.json"
    assert layout.parse_raw_key(key) == {
        "playlist_id": PLAYLIST,
        "dt": "0999-06-01",
        "stamp": "09990601T000000Z",
    }
    heartbeat = layout.heartbeat_key(year_999, [PLAYLIST])
    assert heartbeat.startswith("heartbeats/dt=0999-06-01/09990601T000000Z-")
    assert layout.parse_heartbeat_key(heartbeat)["stamp"] == "09990601T000000Z"
    assert envelope.format_utc(year_999) == "0999-06-01T00:00:00Z"
    assert layout.parse_raw_key(layout.raw_key(PLAYLIST, MTIME) + "\n") is None

    # A capture time outside 1900..2100 is refused, never landed under a strange key.
    folder = tmp_path / "saved"
    folder.mkdir()
    _write(folder, "page.json", _page(1))
    root = str(tmp_path / "lake")
    result = pipeline.import_payloads(root, str(folder), extracted_at=year_999)
    assert result.landed == []
    [reason] = result.refused.values()
    assert "outside 1900-01-01..2100-12-31" in reason and "\n" not in reason
    assert _raw_keys(root) == []


def test_a_playlist_id_with_a_trailing_newline_is_refused(tmp_path, capsys):
    with pytest.raises(ConfigError):
        layout.check_playlist_id(PLAYLIST + "\n")
    with pytest.raises(ConfigError):
        layout.raw_key(PLAYLIST + "\n", MTIME)
    folder = tmp_path / "saved"
    folder.mkdir()
    _write(folder, "page.json", _page(1))
    root = str(tmp_path / "lake")
    status = cli.main(
        ["transform", "--lake", root, "--input", str(folder), "--playlist-id", "abc\n"]
    )
    lines = capsys.readouterr().err.strip().splitlines()
    assert status == 2 and len(lines) == 1 and "is not a Spotify ID" in lines[0]
    assert not Path(root, layout.RAW).exists()


class _StorageCalls:
    """Counts the storage calls an import makes, by kind."""

    def __init__(self, monkeypatch) -> None:
        self.calls = {"exists": 0, "list_keys": 0, "read_bytes": 0, "write_bytes": 0}
        for name in self.calls:
            module = layout if hasattr(layout, name) else storage
            monkeypatch.setattr(module, name, self._counted(name, getattr(module, name)))

    def _counted(self, name, real):
        def counted(*args, **kwargs):
            self.calls[name] += 1
            return real(*args, **kwargs)

        return counted

    def take(self) -> dict[str, int]:
        calls, self.calls = self.calls, dict.fromkeys(self.calls, 0)
        return calls


FILES = 400


def test_files_sharing_one_mtime_import_in_linear_time(tmp_path, monkeypatch):
    folder = tmp_path / "copied"
    folder.mkdir()
    for number in range(FILES):
        _write(folder, f"page_{number:04d}.json", _page(number))
    root = str(tmp_path / "lake")
    storage_calls = _StorageCalls(monkeypatch)

    started = time.monotonic()
    first = pipeline.import_payloads(root, str(folder))
    first_seconds = time.monotonic() - started

    assert first.refused == {}
    assert all(result.written for result in first.landed) and len(first.landed) == FILES
    assert _raw_keys(root) == [
        layout.raw_key(PLAYLIST, MTIME + timedelta(seconds=n)) for n in range(FILES)
    ]
    calls = storage_calls.take()
    # One write per new key, a few checks; the day is listed once, nothing is read back.
    assert calls["write_bytes"] == FILES and calls["read_bytes"] == 0
    assert calls["list_keys"] <= 2 and calls["exists"] <= FILES + 1, calls

    started = time.monotonic()
    again = pipeline.import_payloads(root, str(folder))
    again_seconds = time.monotonic() - started

    assert again.refused == {} and not any(result.written for result in again.landed)
    assert [r.raw_key for r in again.landed] == [r.raw_key for r in first.landed]
    calls = storage_calls.take()
    # Each existing key is read at most once, and nothing is written.
    assert calls["write_bytes"] == 0 and calls["read_bytes"] <= FILES
    assert calls["list_keys"] <= 2 and calls["exists"] <= 2, calls
    # The quadratic version took minutes for this; linear takes a few seconds at most.
    assert first_seconds < 30 and again_seconds < 30
