from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from etl_lib.errors import ConfigError, LakeError
from etl_lib.lake import layout, storage


def test_raw_key_is_utc_and_url_safe():
    moment = datetime(2026, 3, 1, 1, 2, 3, tzinfo=timezone(timedelta(hours=5)))
    key = layout.raw_key("37i9dQZEVXbNG2KDcFcKOF", moment)
    assert key == "raw/playlist_id=37i9dQZEVXbNG2KDcFcKOF/dt=2026-02-28/20260228T200203Z.json"
    assert layout.parse_raw_key(key) == {
        "playlist_id": "37i9dQZEVXbNG2KDcFcKOF",
        "dt": "2026-02-28",
        "stamp": "20260228T200203Z",
    }


def test_naive_times_are_refused():
    with pytest.raises(ValueError, match="naive"):
        layout.raw_key("abc", datetime(2026, 1, 1))  # noqa: DTZ001


@pytest.mark.parametrize("bad", ["", "../etc", "a/b", "id with space", "x" * 65])
def test_playlist_ids_are_checked(bad):
    with pytest.raises(ConfigError, match="not a Spotify ID"):
        layout.check_playlist_id(bad)


def test_quarantine_keys_follow_the_raw_key():
    raw = layout.raw_key("abc", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    assert layout.quarantine_key(raw) == (
        "quarantine/playlist_id=abc/dt=2026-01-02/20260102T030405Z.json"
    )
    assert layout.quarantine_reason_key(raw).endswith("20260102T030405Z.reason.txt")


def test_write_list_read_roundtrip(tmp_path):
    root = str(tmp_path / "lake")
    storage.write_bytes(root, "raw/a/1.json", b"1")
    storage.write_bytes(root, "raw/b/2.json", b"2")
    storage.write_bytes(root, "raw/b/2.txt", b"x")
    assert list(storage.list_keys(root, "raw/", ".json")) == ["raw/a/1.json", "raw/b/2.json"]
    assert storage.read_bytes(root, "raw/b/2.json") == b"2"
    assert storage.exists(root, "raw/a/1.json")
    assert not storage.exists(root, "raw/a/2.json")
    assert storage.read_bytes_if_exists(root, "raw/b/2.json") == b"2"
    assert storage.read_bytes_if_exists(root, "raw/a/2.json") is None
    assert storage.read_bytes_if_exists(root, "nothing/here.json") is None
    # A write replaces the whole object and leaves no temporary file behind.
    storage.write_bytes(root, "raw/a/1.json", b"changed")
    assert storage.read_bytes(root, "raw/a/1.json") == b"changed"
    assert sorted(p.name for p in (tmp_path / "lake" / "raw" / "a").iterdir()) == ["1.json"]
    storage.delete(root, ["raw/b/2.txt", "raw/b/missing.json"])
    assert list(storage.list_keys(root, "raw/b/")) == ["raw/b/2.json"]
    assert list(storage.list_keys(root, "nothing/")) == []


def test_bad_lake_root_is_named(tmp_path):
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    with pytest.raises(LakeError, match="is a file, not a folder"):
        storage.ensure_root(str(not_a_folder))
    with pytest.raises(LakeError, match="does not exist"):
        storage.read_bytes(str(tmp_path), "missing.json")
