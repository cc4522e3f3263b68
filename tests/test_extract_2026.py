"""Extraction against the 2026 rules, over HTTP through spotipy, against the local server.

Each case ends within its time budget with its documented outcome. Sleeping is recorded
instead of done where the test is about the decision, not the clock.
"""

from __future__ import annotations

import json
import os
import stat
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests
from conftest import LoopbackServer, QuietHandler, use_fake_aws

from etl_lib import cli, pipeline
from etl_lib.errors import (
    ConfigError,
    EtlError,
    PlaylistForbidden,
    PlaylistNotFound,
    QuotaExceeded,
    RateLimited,
    SpotifyAuthError,
    SpotifyUnavailable,
)
from etl_lib.extract import auth, credentials, spotify
from etl_lib.extract.credentials import Credentials
from etl_lib.lake import layout, storage
from etl_lib.local_spotify import ChartSimulator, LocalSpotifyServer
from etl_lib.transform import decode

GLOBAL = "37i9dQZEVXbNG2KDcFcKOF"
OWN = "3cEYpjA9oz9GiPac4AsH4n"
COLLABORATIVE = "1ClnXq6wJ9Ekl9Gu5VdGbX"
SOMEONE_ELSES = "5Rrf7mqN8uus2AaQQQNdc1"
NOON = datetime(2026, 10, 1, 12, tzinfo=UTC)


class RecordedSleep:
    def __init__(self):
        self.calls: list[float] = []

    def __call__(self, seconds: float) -> None:
        self.calls.append(seconds)


def _items_requests(server, playlist_id):
    return [r for r in server.requests if f"/playlists/{playlist_id}/items" in r.path]


@pytest.fixture
def strict_server():
    """An app in development mode: Spotify-owned playlists answer 404."""
    with LocalSpotifyServer(ChartSimulator(), now=NOON, extended_quota=False) as server:
        yield server


def _settings_for(server, tmp_path: Path, **changes):
    from etl_lib.config import Settings

    base = Settings(
        lake=str(tmp_path / "lake"),
        api_base_url=server.base_url,
        token_url=server.token_url,
        authorize_url=server.origin + "/authorize",
        credentials=Credentials(server.client_id, server.client_secret),
        credentials_file=tmp_path / "credentials.json",
        playlists=(GLOBAL,),
        read_timeout_seconds=2,
    )
    return replace(base, **changes)


def _user_settings(server, tmp_path: Path, **changes):
    token = server.mint_refresh_token()
    creds = Credentials(server.client_id, None, token, origin="environment")
    return _settings_for(server, tmp_path, credentials=creds, playlists=(OWN,), **changes)


# --- rate limits, quota, server errors, slow replies ---------------------------------------


def test_429_within_budget_waits_retry_after_then_succeeds(settings, spotify_server):
    sleep = RecordedSleep()
    reader = spotify.make_reader(settings, sleep=sleep)
    spotify_server.fail_next(429, headers={"Retry-After": "3"})
    [outcome] = pipeline.extract(settings, reader=reader)
    assert outcome.status == "extracted"
    assert sleep.calls == [3.0]
    assert reader.budget.remaining_seconds == settings.rate_limit_budget_seconds - 3


def test_429_beyond_budget_stops_the_run_with_the_time(settings, spotify_server):
    sleep = RecordedSleep()
    now = datetime(2026, 11, 25, 8, tzinfo=UTC)
    reader = spotify.make_reader(settings, sleep=sleep, now=lambda: now)
    spotify_server.fail_next(429, headers={"Retry-After": "7200"})
    started = time.monotonic()
    outcomes = pipeline.extract(settings, [GLOBAL, OWN], reader=reader)
    assert time.monotonic() - started < 5
    assert [o.status for o in outcomes] == ["failed", pipeline.ExtractStatus.NOT_ATTEMPTED]
    assert isinstance(outcomes[0].error, RateLimited)
    assert outcomes[0].error.until == now + timedelta(hours=2)
    assert "rate limited until 2026-11-25T10:00:00Z" in str(outcomes[0].error)
    assert sleep.calls == []


def test_a_run_stopped_by_a_rate_limit_records_every_playlist_in_its_one_heartbeat(
    settings, spotify_server
):
    """The playlist that met the limit failed; the ones after it were not attempted, and
    their last check says why (the limit's error), not what an older run found."""
    now = datetime(2026, 11, 25, 8, tzinfo=UTC)
    before, limited, after = "37i9dQZEVXbMDoHDwVN2tF", GLOBAL, "37i9dQZEVXbLRQDuF5jeBp"
    reader = spotify.make_reader(settings, sleep=RecordedSleep(), now=lambda: now)
    spotify_server.fail_next(429, headers={"Retry-After": "7200"}, path_contains=limited)
    outcomes = pipeline.extract(
        settings, [before, limited, after], reader=reader, clock=lambda: now
    )

    assert [o.status for o in outcomes] == ["extracted", "failed", "not_attempted"]
    [key] = storage.list_keys(settings.lake, f"{layout.HEARTBEATS}/", ".json")
    assert key == layout.heartbeat_key(now, [before, limited, after])
    heartbeat = json.loads(storage.read_bytes(settings.lake, key))
    assert heartbeat["started_at"] == "2026-11-25T08:00:00Z"
    records = {record["playlist_id"]: record for record in heartbeat["checks"]}
    assert [records[p]["status"] for p in (before, limited, after)] == [
        "extracted",
        "failed",
        "not_attempted",
    ]
    assert records[before]["raw_key"] == outcomes[0].raw_key and records[before]["error"] is None
    for playlist_id in (limited, after):
        assert "rate limited until 2026-11-25T10:00:00Z" in records[playlist_id]["error"]
        assert records[playlist_id]["checked_at"] == "2026-11-25T08:00:00Z"
    # Only the playlist that landed has a last snapshot for the next run to compare with.
    assert pipeline.last_snapshot(settings.lake, before)["raw_key"] == outcomes[0].raw_key
    assert pipeline.last_snapshot(settings.lake, after) is None


def test_a_run_that_dies_half_way_keeps_the_checks_it_made(settings, spotify_server):
    """A bug or an interrupt mid-run (here: the clock, as the second check begins) still
    leaves the run's heartbeat with the checks made before it."""
    first, second = GLOBAL, "37i9dQZEVXbMDoHDwVN2tF"

    class Died(Exception):
        pass

    moments = [NOON]

    def clock() -> datetime:
        if not moments:
            raise Died("the run died")
        return moments.pop()

    with pytest.raises(Died):
        pipeline.extract(settings, [first, second], clock=clock)
    [key] = storage.list_keys(settings.lake, f"{layout.HEARTBEATS}/", ".json")
    assert key == layout.heartbeat_key(NOON, [first])
    [record] = json.loads(storage.read_bytes(settings.lake, key))["checks"]
    assert (record["playlist_id"], record["status"]) == (first, "extracted")
    assert pipeline.last_snapshot(settings.lake, first)["raw_key"] == record["raw_key"]


@pytest.mark.parametrize("state", [b"{not json", b'["a list"]'], ids=["not-json", "not-object"])
def test_an_unreadable_state_downloads_the_playlist_again_and_writes_it_anew(
    settings, spotify_server, state, caplog
):
    """The state only saves a download: an unreadable one costs the playlist a download, is
    named in one warning, and is replaced once the snapshot lands; it fails nothing."""
    [first] = pipeline.extract(settings, [GLOBAL], clock=lambda: NOON)
    key = layout.last_snapshot_key(GLOBAL)
    storage.write_bytes(settings.lake, key, state)
    later = NOON + timedelta(hours=1)
    with caplog.at_level("WARNING", logger="etl_lib.pipeline"):
        [outcome] = pipeline.extract(settings, [GLOBAL], clock=lambda: later)
    assert outcome.status.landed and outcome.raw_key != first.raw_key
    [warning] = [r.getMessage() for r in caplog.records if r.name == "etl_lib.pipeline"]
    assert GLOBAL in warning and key in warning and "downloaded again" in warning
    assert pipeline.last_snapshot(settings.lake, GLOBAL)["raw_key"] == outcome.raw_key


def test_quota_exceeded_stops_at_once(settings, spotify_server):
    sleep = RecordedSleep()
    spotify_server.quota_exceeded()
    [outcome] = pipeline.extract(settings, reader=spotify.make_reader(settings, sleep=sleep))
    assert isinstance(outcome.error, QuotaExceeded)
    assert "QUOTA_EXCEEDED" in str(outcome.error)
    assert sleep.calls == []


def test_5xx_burst_is_retried_with_backoff(settings, spotify_server):
    sleep = RecordedSleep()
    spotify_server.fail_next(503, times=2)
    [outcome] = pipeline.extract(settings, reader=spotify.make_reader(settings, sleep=sleep))
    assert outcome.status == "extracted"
    assert len(sleep.calls) == 2 and all(0 <= s <= 8 for s in sleep.calls)


def test_persistent_5xx_gives_up_after_bounded_retries(settings, spotify_server):
    sleep = RecordedSleep()
    spotify_server.fail_next(502, times=50)
    [outcome] = pipeline.extract(settings, reader=spotify.make_reader(settings, sleep=sleep))
    assert isinstance(outcome.error, SpotifyUnavailable)
    api_calls = [r for r in spotify_server.requests if r.path.startswith("/v1/")]
    assert len(api_calls) == settings.max_retries + 1
    assert len(sleep.calls) == settings.max_retries


def test_slow_replies_time_out_and_are_bounded(settings, spotify_server):
    quick = replace(settings, read_timeout_seconds=0.3, max_retries=1)
    spotify_server.delay_next(2, times=2)
    started = time.monotonic()
    [outcome] = pipeline.extract(quick, reader=spotify.make_reader(quick, sleep=RecordedSleep()))
    assert isinstance(outcome.error, SpotifyUnavailable)
    assert "ReadTimeout" in str(outcome.error)
    assert time.monotonic() - started < 2


def test_one_slow_reply_is_retried(settings, spotify_server):
    quick = replace(settings, read_timeout_seconds=0.3)
    spotify_server.delay_next(1, times=1)
    [outcome] = pipeline.extract(quick, reader=spotify.make_reader(quick, sleep=RecordedSleep()))
    assert outcome.status == "extracted"


def test_cli_exit_code_75_on_rate_limit(settings, spotify_server, monkeypatch, capsys):
    for name, value in {
        "SPOTIFY_API_BASE_URL": settings.api_base_url,
        "SPOTIFY_TOKEN_URL": settings.token_url,
        "SPOTIFY_CLIENT_ID": settings.credentials.client_id,
        "SPOTIFY_CLIENT_SECRET": settings.credentials.client_secret,
        "SPOTIFY_ETL_CREDENTIALS_FILE": str(settings.credentials_file),
    }.items():
        monkeypatch.setenv(name, value)
    spotify_server.fail_next(429, headers={"Retry-After": "86400"})
    assert cli.main(["extract", "--lake", settings.lake]) == cli.EXIT_TEMPORARY_FAILURE
    assert "rate limited until" in capsys.readouterr().err


# --- the 2026 access rules ---------------------------------------------------------------


def test_spotify_owned_playlist_404_explains_the_policy(strict_server, tmp_path):
    [outcome] = pipeline.extract(_settings_for(strict_server, tmp_path))
    assert isinstance(outcome.error, PlaylistNotFound)
    message = str(outcome.error)
    assert "2024-11-27" in message and "auth login" in message and "archive" in message


def test_items_of_a_user_playlist_need_the_owner(strict_server, tmp_path):
    settings = _settings_for(strict_server, tmp_path, playlists=(OWN,))
    [outcome] = pipeline.extract(settings)
    assert isinstance(outcome.error, PlaylistForbidden)
    assert "owner or a collaborator" in str(outcome.error)
    assert "auth login" in str(outcome.error)


def test_user_token_reads_own_and_collaborative_playlists(strict_server, tmp_path):
    settings = _user_settings(strict_server, tmp_path)
    outcomes = pipeline.extract(settings, [OWN, COLLABORATIVE, SOMEONE_ELSES])
    assert [o.status for o in outcomes] == ["extracted", "extracted", "failed"]
    assert isinstance(outcomes[2].error, PlaylistForbidden)


def test_run_over_three_playlists_with_one_failing(settings, spotify_server):
    ids = [GLOBAL, "0000000000000000000000", "37i9dQZEVXbMDoHDwVN2tF"]
    outcomes = pipeline.extract(settings, ids)
    assert [o.status for o in outcomes] == ["extracted", "failed", "extracted"]
    assert {
        layout.parse_raw_key(k)["playlist_id"] for k in storage.list_keys(settings.lake, "raw/")
    } == {ids[0], ids[2]}


# --- user tokens -------------------------------------------------------------------------


def test_expired_access_token_is_refreshed(strict_server, tmp_path):
    settings = _user_settings(strict_server, tmp_path)
    reader = spotify.make_reader(settings)
    first = pipeline.extract(settings, reader=reader, force=True, clock=lambda: NOON)
    strict_server.expire_access_tokens()
    refreshes_before = _token_posts(strict_server)
    later = NOON + timedelta(hours=1)
    second = pipeline.extract(settings, reader=reader, force=True, clock=lambda: later)
    assert [o.status for o in first + second] == ["extracted", "extracted"]
    assert _token_posts(strict_server) == refreshes_before + 1


def _token_posts(server) -> int:
    return sum(1 for r in server.requests if r.method == "POST" and r.path.startswith("/api/token"))


def test_revoked_refresh_token_says_log_in_again(strict_server, tmp_path):
    settings = _user_settings(strict_server, tmp_path)
    strict_server.revoke_refresh_tokens()
    [outcome] = pipeline.extract(settings)
    assert isinstance(outcome.error, SpotifyAuthError)
    assert "auth login" in str(outcome.error)


def test_rotated_refresh_token_is_stored_back_owner_only(tmp_path):
    with LocalSpotifyServer(
        ChartSimulator(), now=NOON, extended_quota=False, rotate_refresh_tokens=True
    ) as server:
        original = server.mint_refresh_token()
        path = credentials.write_file(
            tmp_path / "credentials.json", Credentials(server.client_id, refresh_token=original)
        )
        stored = credentials.read_file(path)
        settings = _settings_for(server, tmp_path, credentials=stored, playlists=(OWN,))
        [outcome] = pipeline.extract(settings)
        assert outcome.status == "extracted"
        rotated = credentials.read_file(path)
        assert rotated.refresh_token and rotated.refresh_token != original
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        # the rotated token works for the next run; the old one no longer does
        [again] = pipeline.extract(
            replace(settings, credentials=rotated),
            force=True,
            clock=lambda: NOON + timedelta(hours=1),
        )
        assert again.status == "extracted"


def test_secrets_never_reach_the_lake(strict_server, tmp_path):
    settings = _user_settings(strict_server, tmp_path)
    pipeline.extract(settings)
    pipeline.transform(settings.lake)
    secret_values = [settings.credentials.refresh_token, strict_server.client_secret]
    for path in Path(settings.lake).rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            assert not any(value.encode() in content for value in secret_values), path
    assert settings.credentials.refresh_token not in repr(settings)


def test_login_with_pkce_on_a_loopback_redirect_then_status(strict_server, tmp_path):
    port = _free_port()
    settings = _settings_for(
        strict_server,
        tmp_path,
        credentials=Credentials(strict_server.client_id),
        redirect_uri=f"http://127.0.0.1:{port}/callback",
    )

    def browser(url: str) -> None:  # approves and follows the redirect, as a browser would
        threading.Thread(target=requests.get, args=(url,), kwargs={"timeout": 5}).start()

    stored = auth.login(settings, show_url=browser, timeout_seconds=10)
    assert stored.user_id == "local-user" and stored.refresh_token
    on_disk = json.loads((tmp_path / "credentials.json").read_text())
    assert on_disk["refresh_token"] == stored.refresh_token
    assert stat.S_IMODE(os.stat(tmp_path / "credentials.json").st_mode) == 0o600

    logged_in = replace(settings, credentials=credentials.read_file(tmp_path / "credentials.json"))
    current = auth.status(logged_in)
    assert current.mode == "user" and "local-user" in current.identity
    assert "playlist-read-private" in current.scope
    [outcome] = pipeline.extract(replace(logged_in, playlists=(OWN,)))
    assert outcome.status == "extracted"


def test_login_by_pasting_the_redirect_url(strict_server, tmp_path):
    settings = _settings_for(
        strict_server, tmp_path, credentials=Credentials(strict_server.client_id)
    )
    shown: list[str] = []

    def paste() -> str:
        answer = requests.get(shown[0], allow_redirects=False, timeout=5)
        return answer.headers["Location"]

    stored = auth.login(settings, show_url=shown.append, paste=paste)
    assert stored.user_id == "local-user"


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_credentials_file_readable_by_others_is_refused(tmp_path):
    path = tmp_path / "credentials.json"
    path.write_text(json.dumps({"client_id": "x", "refresh_token": "y"}))
    path.chmod(0o644)
    with pytest.raises(ConfigError, match="chmod 600"):
        credentials.read_file(path)


# --- change detection --------------------------------------------------------------------


def test_unchanged_snapshot_costs_one_small_call_and_leaves_a_heartbeat(settings, spotify_server):
    reader = spotify.make_reader(settings)
    morning, evening = NOON - timedelta(hours=4), NOON + timedelta(hours=4)
    [first] = pipeline.extract(settings, reader=reader, clock=lambda: morning)
    items_before = len(_items_requests(spotify_server, GLOBAL))
    requests_before = len(spotify_server.requests)
    [second] = pipeline.extract(settings, reader=reader, clock=lambda: evening)

    assert (first.status, second.status) == ("extracted", "unchanged")
    assert second.snapshot_id == first.snapshot_id
    assert len(_items_requests(spotify_server, GLOBAL)) == items_before
    assert len(spotify_server.requests) - requests_before == 1
    heartbeats = list(storage.list_keys(settings.lake, "heartbeats/", ".json"))
    assert heartbeats == [layout.heartbeat_key(moment, [GLOBAL]) for moment in (morning, evening)]
    [last] = json.loads(storage.read_bytes(settings.lake, heartbeats[-1]))["checks"]
    assert last["status"] == "unchanged" and last["checked_at"] == "2026-10-01T16:00:00Z"

    [forced] = pipeline.extract(
        settings, reader=reader, force=True, clock=lambda: evening + timedelta(minutes=1)
    )
    assert forced.status == "extracted"
    spotify_server.set_time(NOON + timedelta(days=1))
    [next_day] = pipeline.extract(settings, reader=reader, clock=lambda: NOON + timedelta(days=1))
    assert next_day.status == "extracted" and next_day.snapshot_id != first.snapshot_id


@pytest.mark.parametrize("entry_fields", ["item", "track", "both"])
def test_entries_with_item_track_or_both_give_the_same_chart(tmp_path, entry_fields):
    with LocalSpotifyServer(ChartSimulator(), now=NOON) as server:
        server.entry_fields = entry_fields
        settings = _settings_for(server, tmp_path)
        [outcome] = pipeline.extract(settings, clock=lambda: NOON)
        raw = json.loads(storage.read_bytes(settings.lake, outcome.raw_key))
    result = decode.transform_envelope(raw, outcome.raw_key)
    expected = ChartSimulator().chart_track_ids(GLOBAL, NOON.date())
    assert result.tables["chart_entries"].column("track_id").to_pylist() == expected


PARAMETER = "/spotify-etl/test"


def test_user_credentials_from_an_ssm_parameter_with_rotation(tmp_path, moto_endpoint):
    import boto3

    from etl_lib.config import Settings

    with LocalSpotifyServer(
        ChartSimulator(), now=NOON, extended_quota=False, rotate_refresh_tokens=True
    ) as server:
        original = server.mint_refresh_token()
        ssm = boto3.client("ssm")
        ssm.put_parameter(
            Name=PARAMETER,
            Value=json.dumps({"client_id": server.client_id, "refresh_token": original}),
            Type="SecureString",
        )
        settings = Settings.from_env(
            {
                "SPOTIFY_ETL_CREDENTIALS_PARAMETER": PARAMETER,
                "SPOTIFY_ETL_LAKE": str(tmp_path / "lake"),
                "SPOTIFY_API_BASE_URL": server.base_url,
                "SPOTIFY_TOKEN_URL": server.token_url,
                "SPOTIFY_ETL_PLAYLISTS": OWN,
                "AWS_REGION": "us-east-1",
            }
        )
        # Read by the code that calls Spotify, not with the settings.
        assert settings.credentials is None
        loaded = credentials.loaded(settings)
        assert loaded.credentials.origin == f"SSM parameter {PARAMETER}"
        assert loaded.uses_user_token
        [outcome] = pipeline.extract(settings)
        assert outcome.status == "extracted"
        # The rotated token went back, encrypted, and the client id with it.
        stored = ssm.get_parameter(Name=PARAMETER, WithDecryption=True)["Parameter"]
        assert stored["Type"] == "SecureString" and stored["Version"] > 1
        document = json.loads(stored["Value"])
        assert document["refresh_token"] not in (None, original)
        assert document["client_id"] == server.client_id


def test_login_stores_the_refresh_token_in_the_ssm_parameter(
    strict_server, tmp_path, moto_endpoint
):
    import boto3

    settings = _settings_for(
        strict_server,
        tmp_path,
        credentials=Credentials(strict_server.client_id),
        credentials_parameter=PARAMETER,
        aws_region="us-east-1",
    )
    shown: list[str] = []

    def paste() -> str:
        answer = requests.get(shown[0], allow_redirects=False, timeout=5)
        return answer.headers["Location"]

    stored = auth.login(settings, show_url=shown.append, paste=paste)
    assert stored.origin == f"SSM parameter {PARAMETER}"
    assert not (tmp_path / "credentials.json").exists()
    parameter = boto3.client("ssm").get_parameter(Name=PARAMETER, WithDecryption=True)
    assert parameter["Parameter"]["Type"] == "SecureString"
    # What the next run reads, and where it writes a rotated token back.
    read = credentials.read_parameter(PARAMETER, region="us-east-1")
    assert read.refresh_token == stored.refresh_token and read.client_id == strict_server.client_id
    assert read.refresh_token_source == "parameter" and read.user_id == "local-user"


def _parameter_settings(name: str = PARAMETER):
    from etl_lib.config import Settings

    return Settings(credentials_parameter=name, aws_region="us-east-1")


def test_a_missing_parameter_is_named_with_the_fix(moto_endpoint):
    with pytest.raises(ConfigError) as raised:
        credentials.load(_parameter_settings("/spotify-etl/missing"))
    assert str(raised.value) == (
        "SSM parameter '/spotify-etl/missing' does not exist: create it as a SecureString "
        "(infra/README.md, Deploying, step 1), or set SPOTIFY_ETL_CREDENTIALS_PARAMETER to the "
        "stack's CredentialsParameterName output"
    )


def test_a_parameter_that_is_not_a_secure_string_is_refused(moto_endpoint):
    import boto3

    document = {"client_id": "the-id", "client_secret": "plain-text-secret"}
    boto3.client("ssm").put_parameter(Name=PARAMETER, Value=json.dumps(document), Type="String")
    with pytest.raises(ConfigError) as raised:
        credentials.load(_parameter_settings())
    message = str(raised.value)
    assert message.startswith(
        f"SSM parameter '{PARAMETER}' is a String, which stores the credentials unencrypted: "
        f"delete it (aws ssm delete-parameter --name {PARAMETER}) and create it as a SecureString"
    )
    assert "plain-text-secret" not in message


@pytest.mark.parametrize(
    ("document", "problem"),
    [
        ({"client_secret": "the-secret-value"}, "has no client_id"),
        ({"client_id": "the-id"}, "has a client_id but neither client_secret"),
        ({"client_id": "the-id", "refresh_token": ""}, "has a client_id but neither"),
    ],
)
def test_a_parameter_missing_keys_names_them_not_the_values(moto_endpoint, document, problem):
    import boto3

    boto3.client("ssm").put_parameter(
        Name=PARAMETER, Value=json.dumps(document), Type="SecureString"
    )
    with pytest.raises(ConfigError) as raised:
        credentials.load(_parameter_settings())
    message = str(raised.value)
    assert message.startswith(f"SSM parameter '{PARAMETER}' {problem}")
    assert message.endswith(": put the credentials JSON in it (infra/README.md, Deploying, step 1)")
    assert "the-secret-value" not in message


@pytest.mark.aws
def test_no_region_or_no_endpoint_is_one_line_naming_the_parameter(bare_aws, monkeypatch):
    from etl_lib.config import Settings

    with pytest.raises(ConfigError) as raised:
        credentials.load(Settings(credentials_parameter=PARAMETER))
    assert str(raised.value) == (
        f"no AWS region for SSM Parameter Store (SSM parameter '{PARAMETER}'): set AWS_REGION"
    )
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with pytest.raises(EtlError, match=rf"cannot reach SSM Parameter Store at .*'{PARAMETER}'"):
        credentials.load(Settings(credentials_parameter=PARAMETER, aws_region="us-east-1"))


class _DeniedSsm(QuietHandler):
    """Parameter Store answering every call as AWS does a caller its policy does not allow."""

    def do_POST(self):
        operation = self.headers["X-Amz-Target"].split(".")[-1]
        self.rfile.read(int(self.headers["Content-Length"]))
        body = json.dumps(
            {
                "__type": "AccessDeniedException",
                "message": f"User: arn:aws:sts::123456789012:assumed-role/extract is not "
                f"authorized to perform: ssm:{operation} on resource: parameter{PARAMETER}",
            }
        ).encode()
        self.send_response(400)
        self.send_header("Content-Type", "application/x-amz-json-1.1")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def denied_ssm(monkeypatch):
    server = LoopbackServer(_DeniedSsm)
    use_fake_aws(monkeypatch, server.origin)
    yield
    server.close()


@pytest.mark.aws
def test_access_denied_names_the_parameter_and_the_grant(denied_ssm):
    with pytest.raises(ConfigError) as raised:
        credentials.load(_parameter_settings())
    assert str(raised.value) == (
        f"AWS denied GetParameter on SSM parameter '{PARAMETER}': allow ssm:GetParameter on it "
        "(and kms:Decrypt on its key, if that is not the AWS-managed aws/ssm) to the "
        "credentials in use"
    )
    stored = Credentials("the-id", refresh_token="old", refresh_token_source="parameter")
    with pytest.raises(ConfigError, match=r"allow ssm:PutParameter on it .*kms:Encrypt"):
        credentials.store_rotated_refresh_token(
            stored,
            "rotated",
            parameter=PARAMETER,
            credentials_file=Path("/nonexistent/credentials.json"),
            region="us-east-1",
        )
