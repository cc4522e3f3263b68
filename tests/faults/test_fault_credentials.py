"""Credentials under rotation and hostile leftovers: the user-token flow keeps working.

Runs go through ``spotify-etl extract`` as the README tells users to run it: the client id in
the environment, the refresh token in the credentials file, against the local server rotating
refresh tokens on every use (each old one stops working at once).
"""

from __future__ import annotations

import json
import logging
import os
import stat
from datetime import UTC, datetime
from pathlib import Path

import pytest

from etl_lib import cli
from etl_lib.extract import credentials
from etl_lib.extract.credentials import Credentials
from etl_lib.lake import storage
from etl_lib.local_spotify import ChartSimulator, LocalSpotifyServer

pytestmark = [pytest.mark.faults, pytest.mark.timeout(30)]

OWN = "3cEYpjA9oz9GiPac4AsH4n"  # owned by the user the local server logs in as
NOON = datetime(2026, 10, 1, 12, tzinfo=UTC)
SECRET_NAMES = (
    "SPOTIFY_CLIENT_SECRET",
    "SPOTIPY_CLIENT_ID",
    "SPOTIPY_CLIENT_SECRET",
    "SPOTIFY_REFRESH_TOKEN",
    "SPOTIFY_ETL_CREDENTIALS_PARAMETER",
    "SPOTIFY_ETL_AUTH_MODE",
)


@pytest.fixture
def rotating_server():
    with LocalSpotifyServer(
        ChartSimulator(), now=NOON, extended_quota=False, rotate_refresh_tokens=True
    ) as server:
        yield server


@pytest.fixture
def user_flow(rotating_server, tmp_path, monkeypatch):
    """The README's setup: SPOTIFY_CLIENT_ID exported, the refresh token alone in the file."""
    path = tmp_path / "config" / "credentials.json"
    credentials.write_file(path, Credentials(refresh_token=rotating_server.mint_refresh_token()))
    assert "client_id" not in json.loads(path.read_text())
    _cli_environment(rotating_server, monkeypatch, path)
    return path


def _cli_environment(server, monkeypatch, credentials_file, **more: str) -> None:
    """`spotify-etl extract` of OWN against ``server``, the client id exported, no other
    secret set but ``more``."""
    for name in SECRET_NAMES:
        monkeypatch.delenv(name, raising=False)
    for name, value in {
        "SPOTIFY_CLIENT_ID": server.client_id,
        "SPOTIFY_API_BASE_URL": server.base_url,
        "SPOTIFY_TOKEN_URL": server.token_url,
        "SPOTIFY_ETL_CREDENTIALS_FILE": str(credentials_file),
        "SPOTIFY_ETL_PLAYLISTS": OWN,
        **more,
    }.items():
        monkeypatch.setenv(name, value)


def _extract(lake_root: str, capsys) -> tuple[int, str]:
    code = cli.main(["extract", "--lake", lake_root])
    return code, capsys.readouterr().err


def _mode(path: Path) -> int:
    return stat.S_IMODE(os.lstat(path).st_mode)


def _raw_keys(lake_root: str) -> list[str]:
    return list(storage.list_keys(lake_root, "raw/"))


def test_three_user_token_runs_in_a_row_each_store_the_rotated_token(
    user_flow, rotating_server, lake_root, capsys
):
    tokens = [credentials.read_file(user_flow).refresh_token]
    for run in range(3):
        code, err = _extract(lake_root, capsys)
        assert code == 0, f"run {run + 1}: {err}"
        stored = credentials.read_file(user_flow)
        assert _mode(user_flow) == 0o600
        # Saved back where it came from, with the client id it belongs to from then on.
        assert stored.client_id == rotating_server.client_id
        assert stored.refresh_token not in tokens
        tokens.append(stored.refresh_token)
    # The first run landed the snapshot; the next two found it unchanged: one raw file.
    assert len(_raw_keys(lake_root)) == 1
    assert "unchanged" in err
    assert sorted(p.name for p in user_flow.parent.iterdir()) == ["credentials.json"]


@pytest.mark.parametrize("leftover", ["world-readable file", "symlink to another file"])
def test_a_hostile_stale_temporary_file_is_never_written_through(
    user_flow, lake_root, capsys, tmp_path, leftover
):
    victim = tmp_path / "victim.txt"
    victim.write_text("not yours\n")
    victim.chmod(0o644)
    # The old writer's fixed name, and one shaped like the current writer's names.
    planted = [
        user_flow.with_name(user_flow.name + ".tmp"),
        user_flow.with_name(f".{user_flow.name}.0123456789abcdef.tmp"),
    ]
    for path in planted:
        if leftover == "world-readable file":
            path.write_text("{}")
            path.chmod(0o644)
        else:
            path.symlink_to(victim)

    code, err = _extract(lake_root, capsys)

    assert code == 0, err
    assert _mode(user_flow) == 0o600 and not user_flow.is_symlink()
    assert credentials.read_file(user_flow).refresh_token  # readable: the next run can start
    assert victim.read_text() == "not yours\n" and _mode(victim) == 0o644
    for path in planted:  # left as they were, never reused
        if leftover == "world-readable file":
            assert path.read_text() == "{}" and _mode(path) == 0o644
        else:
            assert path.is_symlink() and path.resolve() == victim
    code, err = _extract(lake_root, capsys)
    assert code == 0, err


def test_a_temporary_name_already_taken_is_skipped_not_reused(tmp_path, monkeypatch):
    path = tmp_path / "credentials.json"
    victim = tmp_path / "victim.txt"
    victim.write_text("not yours\n")
    names = iter(["planted", "planted", "fresh"])
    monkeypatch.setattr(credentials.secrets, "token_hex", lambda _n: next(names))
    taken = tmp_path / ".credentials.json.planted.tmp"
    taken.symlink_to(victim)
    old_umask = os.umask(0)  # the most permissive umask: the mode must not depend on it
    try:
        credentials.write_file(path, Credentials("id", refresh_token="secret-token"))
    finally:
        os.umask(old_umask)
    assert victim.read_text() == "not yours\n"
    assert _mode(path) == 0o600
    assert json.loads(path.read_text()) == {"client_id": "id", "refresh_token": "secret-token"}
    assert not (tmp_path / ".credentials.json.fresh.tmp").exists()


def test_a_rotated_token_from_the_environment_is_not_written_and_said_once(
    rotating_server, tmp_path, monkeypatch, lake_root, caplog, capsys
):
    path = tmp_path / "config" / "credentials.json"
    token = rotating_server.mint_refresh_token()
    _cli_environment(rotating_server, monkeypatch, path, SPOTIFY_REFRESH_TOKEN=token)
    # Two refreshes in one run: the access token expires mid-run.
    rotating_server.fail_next(401, path_contains="/items")
    with caplog.at_level(logging.WARNING, logger="etl_lib.extract.spotify"):
        code, err = _extract(lake_root, capsys)
    assert code == 0, err
    assert not path.exists()
    warnings = [r.getMessage() for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(warnings) == 1
    assert "SPOTIFY_REFRESH_TOKEN" in warnings[0] and "auth login" in warnings[0]
    assert "\n" not in warnings[0]
    token_posts = [r for r in rotating_server.requests if r.path.startswith("/api/token")]
    assert len(token_posts) == 2
