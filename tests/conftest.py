from __future__ import annotations

import contextlib
import http.server
import multiprocessing
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
import requests

from etl_lib.config import Settings
from etl_lib.extract.credentials import Credentials
from etl_lib.transform import iceberg

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


@pytest.fixture
def shared_data() -> Path:
    """``../shared/data`` beside the repo; present in CI and dev, absent in a user's clone."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"{SHARED_DATA} not found: shared data sits beside the repo only in CI/dev")
    return SHARED_DATA


@pytest.fixture
def lake_root(tmp_path: Path) -> str:
    return str(tmp_path / "lake")


@pytest.fixture
def spotify_server():
    from etl_lib.local_spotify import ChartSimulator, LocalSpotifyServer

    with LocalSpotifyServer(ChartSimulator(), now=datetime(2026, 10, 1, 12, tzinfo=UTC)) as server:
        yield server


@pytest.fixture
def settings(spotify_server, lake_root) -> Settings:
    return Settings(
        lake=lake_root,
        api_base_url=spotify_server.base_url,
        token_url=spotify_server.token_url,
        authorize_url=spotify_server.origin + "/authorize",
        credentials=Credentials(spotify_server.client_id, spotify_server.client_secret),
        credentials_file=Path(lake_root).parent / "credentials.json",
        playlists=("37i9dQZEVXbNG2KDcFcKOF",),
        read_timeout_seconds=5,
    )


@pytest.hookimpl(tryfirst=True)  # before `-m` deselects by marker
def pytest_collection_modifyitems(items):
    # A test on moto's server is an AWS test however it reaches the server (directly or through
    # a fixture), so `-m aws` (make test-minimums) needs no list of such tests to keep up to date.
    for item in items:
        if "moto_endpoint" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.aws)


@pytest.fixture
def moto_endpoint(monkeypatch):
    """moto's AWS server on 127.0.0.1 (a free port); boto3 reaches it via AWS_ENDPOINT_URL."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    # moto keeps its backends per process, not per server: start each test from nothing.
    requests.post(f"{endpoint}/moto-api/reset", timeout=10).raise_for_status()
    use_fake_aws(monkeypatch, endpoint)
    yield endpoint
    server.stop()


def use_fake_aws(monkeypatch, endpoint: str) -> None:
    """Point boto3 and s3fs at ``endpoint`` with throwaway credentials and a region."""
    for name, value in {
        "AWS_ENDPOINT_URL": endpoint,
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_REGION": "us-east-1",
        "AWS_DEFAULT_REGION": "us-east-1",
    }.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    # Catalogs opened for an earlier server keep its Glue client.
    iceberg.forget()


def closed_port_endpoint() -> str:
    """``http://127.0.0.1:<port>`` where nothing listens (a port just bound and released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"http://127.0.0.1:{port}"


@pytest.fixture
def unreachable_aws(monkeypatch) -> str:
    """Credentials and a region, but AWS_ENDPOINT_URL points at a closed local port."""
    endpoint = closed_port_endpoint()
    use_fake_aws(monkeypatch, endpoint)
    return endpoint


@pytest.fixture
def bare_aws(monkeypatch, unreachable_aws, tmp_path) -> None:
    """No region, profile or credentials anywhere boto3 looks (and no network to find any)."""
    for name in (
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_PROFILE",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
        "AWS_CONTAINER_CREDENTIALS_FULL_URI",
        "AWS_WEB_IDENTITY_TOKEN_FILE",
        "AWS_ROLE_ARN",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "aws-config"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "aws-credentials"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")


class LoopbackServer:
    """``handler`` (an ``http.server`` request handler class) served from a thread on
    127.0.0.1, a free port, at ``origin`` until ``close()``."""

    def __init__(self, handler: type[http.server.BaseHTTPRequestHandler]) -> None:
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.origin = f"http://127.0.0.1:{self.server.server_address[1]}"
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self._thread.join(timeout=5)


class QuietHandler(http.server.BaseHTTPRequestHandler):
    """A request handler that logs nothing (``http.server`` prints every request)."""

    def log_message(self, *args) -> None:
        pass


def worker_processes():
    """Processes forked from a server that has imported the pipeline once: they start at
    once, and share none of this process's catalog connections or threads. Start them with
    ``in_environment``: a fork server's children have the environment it started with."""
    context = multiprocessing.get_context("forkserver")
    context.set_forkserver_preload(
        ["etl_lib.pipeline", "etl_lib.transform.compaction", "etl_lib.warehouse.catalog"]
    )
    return context


def in_environment(environ: dict[str, str], target, *args) -> None:
    """Run ``target`` in ``environ``, the environment of the test that started this process."""
    os.environ.clear()
    os.environ.update(environ)
    target(*args)


@contextlib.contextmanager
def foreground_server(*arguments: str) -> Iterator[list[str]]:
    """``python -m <arguments>``, a local server run as a user runs it: yields the lines of
    its banner once it says 'Ctrl-C stops the server.', then presses Ctrl-C, and checks that
    the server stopped cleanly."""
    with subprocess.Popen(
        [sys.executable, "-m", *arguments],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as process:
        try:
            banner: list[str] = []
            while not banner or not banner[-1].startswith("Ctrl-C"):
                line = process.stdout.readline()
                assert line, "the banner ended before 'Ctrl-C stops the server.'"
                banner.append(line)
            yield banner
            process.send_signal(signal.SIGINT)
            _, errors = process.communicate(timeout=10)
        finally:
            if process.poll() is None:
                process.kill()
    assert process.returncode == 0, errors


@pytest.fixture
def statements_run(monkeypatch) -> list[tuple[str, list]]:
    """Every statement ``execute.query_all`` runs in the test (DuckDB's path of a run of
    reports), with its parameters, in order."""
    from etl_lib.warehouse import execute

    ran: list[tuple[str, list]] = []
    query_all = execute.query_all

    def recording(lake_root, statements, **kwargs):
        ran.extend((statement, list(params)) for statement, params in statements.values())
        return query_all(lake_root, statements, **kwargs)

    monkeypatch.setattr(execute, "query_all", recording)
    return ran
