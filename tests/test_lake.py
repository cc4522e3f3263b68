from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from etl_lib import lake
from etl_lib.errors import ConfigError, LakeError


def test_raw_key_is_utc_and_url_safe():
    moment = datetime(2026, 3, 1, 1, 2, 3, tzinfo=timezone(timedelta(hours=5)))
    key = lake.raw_key("37i9dQZEVXbNG2KDcFcKOF", moment)
    assert key == "raw/playlist_id=37i9dQZEVXbNG2KDcFcKOF/dt=2026-02-28/20260228T200203Z.json"
    assert lake.parse_raw_key(key) == {
        "playlist_id": "37i9dQZEVXbNG2KDcFcKOF",
        "dt": "2026-02-28",
        "stamp": "20260228T200203Z",
    }


def test_naive_times_are_refused():
    with pytest.raises(ValueError, match="naive"):
        lake.raw_key("abc", datetime(2026, 1, 1))  # noqa: DTZ001


@pytest.mark.parametrize("bad", ["", "../etc", "a/b", "id with space", "x" * 65])
def test_playlist_ids_are_checked(bad):
    with pytest.raises(ConfigError, match="not a Spotify ID"):
        lake.check_playlist_id(bad)


def test_quarantine_keys_follow_the_raw_key():
    raw = lake.raw_key("abc", datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC))
    assert lake.quarantine_key(raw) == (
        "quarantine/playlist_id=abc/dt=2026-01-02/20260102T030405Z.json"
    )
    assert lake.quarantine_reason_key(raw).endswith("20260102T030405Z.reason.txt")


def test_write_list_read_roundtrip(tmp_path):
    root = str(tmp_path / "lake")
    lake.write_bytes(root, "raw/a/1.json", b"1")
    lake.write_bytes(root, "raw/b/2.json", b"2")
    lake.write_bytes(root, "raw/b/2.txt", b"x")
    assert list(lake.list_keys(root, "raw/", ".json")) == ["raw/a/1.json", "raw/b/2.json"]
    assert lake.read_bytes(root, "raw/b/2.json") == b"2"
    assert lake.exists(root, "raw/a/1.json")
    assert not lake.exists(root, "raw/a/2.json")
    # A write replaces the whole object and leaves no temporary file behind.
    lake.write_bytes(root, "raw/a/1.json", b"changed")
    assert lake.read_bytes(root, "raw/a/1.json") == b"changed"
    assert sorted(p.name for p in (tmp_path / "lake" / "raw" / "a").iterdir()) == ["1.json"]
    lake.delete(root, ["raw/b/2.txt", "raw/b/missing.json"])
    assert list(lake.list_keys(root, "raw/b/")) == ["raw/b/2.json"]
    assert list(lake.list_keys(root, "nothing/")) == []


def test_bad_lake_root_is_named(tmp_path):
    not_a_folder = tmp_path / "file"
    not_a_folder.write_text("x")
    with pytest.raises(LakeError, match="is a file, not a folder"):
        lake.ensure_root(str(not_a_folder))
    with pytest.raises(LakeError, match="does not exist"):
        lake.read_bytes(str(tmp_path), "missing.json")
