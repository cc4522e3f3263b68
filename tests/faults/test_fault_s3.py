"""An S3 lake behind a faulty network: 500s, reset connections, an endpoint that never answers
or trickles its answer, and lake roots naming no bucket or a missing one.

A small HTTP-aware TCP proxy on 127.0.0.1 sits between the lake and moto's S3 server. It
passes requests until a set number of objects were written (PUTs), then faults the following
requests (until told to recover), so a fault lands in the middle of a run; it can fault only
the requests of one kind (listings, Parquet reads).
"""

from __future__ import annotations

import dataclasses
import json
import os
import socket
import struct
import subprocess
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta

import boto3
import pytest

from etl_lib import cli, config, pipeline
from etl_lib.extract import spotify
from etl_lib.lake import layout, storage
from etl_lib.transform import iceberg, schemas
from etl_lib.warehouse import execute

pytestmark = [pytest.mark.faults, pytest.mark.timeout(120)]

BUCKET = "fault-lake"
ROOT = f"s3://{BUCKET}/lake"
SNAPSHOTS = 4
# Small limits keep each case to seconds; the worst case follows from them as it does from
# the defaults (config.s3_request_worst_case_seconds).
FAST_LIMITS = {
    "SPOTIFY_ETL_S3_CONNECT_TIMEOUT": "1",
    "SPOTIFY_ETL_S3_READ_TIMEOUT": "1",
    "SPOTIFY_ETL_S3_MAX_ATTEMPTS": "2",
}
WORST_REQUEST = config.s3_request_worst_case_seconds(config.s3_storage_options(FAST_LIMITS))
# Well under FAST_LIMITS' read timeout.
TRICKLE_SECONDS = 0.25
# Starting the interpreter and importing pandas/pyarrow, on a busy 2-core machine.
PROCESS_ALLOWANCE = 20.0
# From giving up to the process's exit: writing the error, interpreter shutdown.
EXIT_ALLOWANCE = 5.0
S3_ERROR = (
    b"<?xml version='1.0' encoding='UTF-8'?><Error><Code>InternalError</Code>"
    b"<Message>We encountered an internal error. Please try again.</Message></Error>"
)


class FaultProxy:
    """Forwards HTTP requests to ``upstream`` one by one; once ``after_puts`` PUTs went
    through, it faults each request the chosen way (``error``: a 500, ``reset``: a TCP reset,
    ``blackhole``: silence, ``trickle``: a status line, then a header byte every
    ``TRICKLE_SECONDS``, never a whole answer), ``recover_after`` times (None: until
    ``heal``), then passes. With ``only``, just the requests whose request line holds it are
    faulted, after ``skip`` of them passed."""

    def __init__(self, upstream: tuple[str, int]):
        self.upstream = upstream
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        self._sockets: list[socket.socket] = []
        self._threads: list[threading.Thread] = []
        self.heal()
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self._listener.getsockname()[1]}"
        self._spawn(self._accept)

    def fault(
        self,
        mode: str,
        *,
        after_puts: int = 0,
        recover_after: int | None = None,
        only: bytes = b"",
        skip: int = 0,
    ) -> None:
        with self._lock:
            self.mode, self.puts_left, self.faults_left = mode, after_puts, recover_after
            self.only, self.skip_left = only, skip
            self.faulted = 0
            self.faulted_requests: list[bytes] = []
            self.first_fault_at: float | None = None

    def heal(self) -> None:
        self.fault("pass")

    def stop(self) -> None:
        self._stopped.set()
        with self._lock:
            sockets = [self._listener, *self._sockets]
        for sock in sockets:
            try:
                # Wakes the threads blocked in accept() or recv() on it; close() alone does not.
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            sock.close()
        for thread in self._threads:
            thread.join(timeout=5)

    def _next_action(self, head: bytes) -> str:
        with self._lock:
            if self.mode == "pass":
                return "pass"
            if self.puts_left > 0:
                self.puts_left -= head.startswith(b"PUT ")
                return "pass"
            if self.only not in head.split(b"\r\n", 1)[0]:
                return "pass"
            if self.skip_left > 0:
                self.skip_left -= 1
                return "pass"
            if self.faults_left is not None:
                if self.faults_left == 0:
                    return "pass"
                self.faults_left -= 1
            self.faulted += 1
            self.faulted_requests.append(head.split(b"\r\n", 1)[0])
            if self.first_fault_at is None:
                self.first_fault_at = time.monotonic()
            return self.mode

    def _spawn(self, target, *args) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)
        self._threads.append(thread)
        thread.start()

    def _track(self, sock: socket.socket) -> socket.socket:
        with self._lock:
            self._sockets.append(sock)
        return sock

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            self._spawn(self._serve, self._track(client))

    def _serve(self, client: socket.socket) -> None:
        reader = client.makefile("rb")
        upstream = None
        try:
            while not self._stopped.is_set():
                head = _read_head(reader)
                if not head:
                    return
                action = self._next_action(head)
                if action == "pass":
                    if upstream is None:
                        upstream = self._track(socket.create_connection(self.upstream))
                        self._spawn(_pump, upstream, client)
                    upstream.sendall(head)
                    _copy_body(reader, head, upstream.sendall)
                    continue
                if b"100-continue" not in head.lower():
                    _copy_body(reader, head, lambda _: None)
                if action == "error":
                    # The answer to a HEAD (an existence check) has headers only.
                    body = b"" if head.startswith(b"HEAD ") else S3_ERROR
                    client.sendall(
                        b"HTTP/1.1 500 Internal Server Error\r\nContent-Type: application/xml\r\n"
                        + f"Content-Length: {len(S3_ERROR)}\r\nConnection: close\r\n\r\n".encode()
                        + body
                    )
                elif action == "reset":
                    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                elif action == "trickle":
                    # Never silent for a read timeout, never a whole header block.
                    client.sendall(b"HTTP/1.1 200 OK\r\n")
                    while not self._stopped.wait(TRICKLE_SECONDS):
                        client.sendall(b"X")
                else:  # blackhole: the connection stays open and nothing ever comes back
                    self._stopped.wait()
                return
        except OSError:
            return
        finally:
            for sock in (client, upstream):
                if sock is not None:
                    sock.close()


def _read_head(reader) -> bytes:
    lines = []
    while True:
        line = reader.readline(65536)
        if not line:
            return b""
        lines.append(line)
        if line in (b"\r\n", b"\n"):
            return b"".join(lines)


def _copy_body(reader, head: bytes, send) -> None:
    headers = {}
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        headers[name.strip().lower()] = value.strip()
    if headers.get(b"transfer-encoding", b"").lower() == b"chunked":
        while True:
            size_line = reader.readline()
            send(size_line)
            size = int(size_line.split(b";")[0], 16)
            if size == 0:
                while (trailer := reader.readline()) not in (b"\r\n", b"\n", b""):
                    send(trailer)
                send(b"\r\n")
                return
            send(reader.read(size + 2))
    length = int(headers.get(b"content-length", b"0"))
    if length:
        send(reader.read(length))


def _pump(source: socket.socket, target: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            target.sendall(data)
    except OSError:
        pass
    finally:
        try:
            target.shutdown(socket.SHUT_WR)
        except OSError:
            pass


@pytest.fixture
def proxy(moto_endpoint):
    host, port = moto_endpoint.removeprefix("http://").split(":")
    faulty = FaultProxy((host, int(port)))
    try:
        yield faulty
    finally:
        faulty.stop()


@pytest.fixture
def landed(moto_endpoint, settings, spotify_server, monkeypatch) -> list[str]:
    """Raw snapshots on the S3 lake (written straight to moto), none transformed yet."""
    # Catalogs opened by an earlier test hold Glue clients bound to that test's server.
    iceberg.forget(ROOT)
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    on_s3 = dataclasses.replace(settings, lake=ROOT)
    reader = spotify.make_reader(on_s3)
    start = datetime(2026, 10, 1, 6, tzinfo=UTC)
    for number in range(SNAPSHOTS):
        moment = start + timedelta(hours=6 * number)
        spotify_server.set_time(moment)
        pipeline.extract(on_s3, reader=reader, clock=lambda m=moment: m, force=True)
    raw = sorted(storage.list_keys(ROOT, f"{layout.RAW}/", ".json"))
    assert len(raw) == SNAPSHOTS
    return raw


def _cli(proxy: FaultProxy, *args: str) -> tuple[subprocess.CompletedProcess, float]:
    """The command's result and when it ended (time.monotonic)."""
    env = {**os.environ, **FAST_LIMITS, "SPOTIFY_ETL_S3_ENDPOINT_URL": proxy.url}
    done = subprocess.run(
        [sys.executable, "-m", "etl_lib", *args, "--lake", ROOT],
        env=env,
        capture_output=True,
        text=True,
        timeout=PROCESS_ALLOWANCE + 4 * WORST_REQUEST,
    )
    return done, time.monotonic()


def _table_objects() -> list[str]:
    """The objects under the tables' warehouse (data, manifest and metadata files)."""
    pages = boto3.client("s3").get_paginator("list_objects_v2").paginate(
        Bucket=BUCKET, Prefix=f"lake/{iceberg.WAREHOUSE}/"
    )
    return sorted(item["Key"] for page in pages for item in page.get("Contents", []))


def _assert_every_snapshot_once(raw: list[str]) -> None:
    """Every table holds the rows of exactly the landed snapshots, and they read back whole."""
    assert pipeline.transformed_raw_keys(ROOT) == set(raw)
    for table in schemas.TABLES:
        frame = _query(f"SELECT count(DISTINCT extracted_at) AS snapshots FROM {table}")
        assert frame == {"snapshots": len(raw)}, table
    _assert_rows_once(raw)


def _assert_rows_once(raw: list[str]) -> None:
    """Every chart entry of the raw files reads back once, whatever files hold it."""
    entries = 0
    for key in raw:
        payload = json.loads(storage.read_bytes(ROOT, key))
        entries += sum(len(page["items"]) for page in payload["pages"])
    assert pipeline.pending_raw_keys(ROOT) == []
    frame = _query("SELECT count(*) AS n, count(DISTINCT (extracted_at, position)) AS d "
                   "FROM chart_entries")
    assert frame == {"n": entries, "d": entries}


def _query(sql: str) -> dict:
    return execute.query(ROOT, sql).iloc[0].to_dict()


def test_transient_500s_are_retried_and_the_run_succeeds(proxy, landed):
    # The second write is answered with a 500 once, then passes on its retry.
    proxy.fault("error", after_puts=1, recover_after=1)
    done, _ = _cli(proxy, "transform")
    assert done.returncode == 0, done.stderr
    assert proxy.faulted == 1
    _assert_every_snapshot_once(landed)


@pytest.mark.parametrize(
    ("mode", "kind", "setting"),
    [
        ("error", "the object store", "SPOTIFY_ETL_S3_MAX_ATTEMPTS"),
        ("reset", "cannot reach the object store", "SPOTIFY_ETL_S3_ENDPOINT_URL"),
        ("blackhole", "cannot reach the object store", "SPOTIFY_ETL_S3_READ_TIMEOUT"),
    ],
)
def test_a_lasting_fault_mid_run_ends_in_one_line_and_a_rerun_completes(
    proxy, landed, mode, kind, setting, monkeypatch
):
    # After three of the files the first commit needs: the run stops before committing.
    proxy.fault(mode, after_puts=3)
    done, ended = _cli(proxy, "transform")
    assert done.returncode == 1
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ") and f"s3://{BUCKET}/lake" in lines[0]
    assert setting in lines[0]
    # A 500 that outlasts the retries is a failure of the store, not of reaching it.
    assert f"error: {kind}" in lines[0]
    assert ("failed on" in lines[0]) == (mode == "error")
    assert "Traceback" not in done.stderr
    # Bounded from the first faulted request: one request's worst case, no more.
    assert ended - proxy.first_fault_at < WORST_REQUEST + EXIT_ALLOWANCE
    # Nothing was written after the fault, and nothing was committed.
    assert len(_table_objects()) == 3
    assert pipeline.transformed_raw_keys(ROOT) == set()

    proxy.heal()
    monkeypatch.setenv("SPOTIFY_ETL_S3_ENDPOINT_URL", proxy.url)
    assert cli.main(["transform", "--lake", ROOT]) == 0
    _assert_every_snapshot_once(landed)


def test_the_documented_worst_case_follows_from_the_defaults():
    # README and s3_storage_options: 3 x (5 + 20) s + botocore's backoffs (< 1 + 2 s) + 0.1 s.
    options = config.s3_storage_options({})
    assert options["config_kwargs"]["retries"] == {"total_max_attempts": 3, "mode": "standard"}
    assert config.s3_request_worst_case_seconds(options) == pytest.approx(78.1)


@pytest.mark.parametrize("value", ["0", "-1", "nan", "inf", "soon"])
def test_a_bad_limit_is_named_in_one_line(monkeypatch, capsys, value):
    monkeypatch.setenv("SPOTIFY_ETL_S3_READ_TIMEOUT", value)
    assert cli.main(["transform", "--lake", ROOT]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "SPOTIFY_ETL_S3_READ_TIMEOUT" in err[0]


@pytest.fixture
def transformed(landed) -> list[str]:
    """The landed snapshots transformed into the S3 lake's tables (straight to moto)."""
    pipeline.transform(ROOT)
    assert pipeline.pending_raw_keys(ROOT) == []
    return landed


def _through(proxy: FaultProxy, monkeypatch) -> None:
    """Later lake calls of this process go through the proxy, under FAST_LIMITS."""
    for name, value in {**FAST_LIMITS, "SPOTIFY_ETL_S3_ENDPOINT_URL": proxy.url}.items():
        monkeypatch.setenv(name, value)


def _one_line_error(capsys) -> str:
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), err
    assert "Traceback" not in err
    return lines[0]


@pytest.mark.parametrize(
    ("command", "only", "skip"),
    [
        # DuckDB reading table files through the registered filesystem.
        (["query", "SELECT count(*) AS n FROM chart_entries"], b".parquet", 0),
        # The table listings (the first listing checks the lake is there).
        (["compact"], b"list-type=2", 1),
    ],
    ids=["query-read", "compact-listing"],
)
def test_an_answer_trickled_forever_ends_the_command_in_one_line_within_the_bound(
    proxy, transformed, monkeypatch, capsys, command, only, skip
):
    _through(proxy, monkeypatch)
    proxy.fault("trickle", only=only, skip=skip)
    code = cli.main([*command, "--lake", ROOT])
    ended = time.monotonic()
    assert code == 1
    line = _one_line_error(capsys)
    assert f"s3://{BUCKET}/lake" in line and "SPOTIFY_ETL_S3_READ_TIMEOUT" in line
    # Each request gets the configured attempts, no more (botocore's "max_attempts" would
    # have added one), and the command ends within one request's worst case.
    attempts = Counter(proxy.faulted_requests)
    assert attempts and max(attempts.values()) <= int(FAST_LIMITS["SPOTIFY_ETL_S3_MAX_ATTEMPTS"])
    assert ended - proxy.first_fault_at < WORST_REQUEST + EXIT_ALLOWANCE

    proxy.heal()
    assert cli.main([*command, "--lake", ROOT]) == 0
    _assert_rows_once(transformed)


@pytest.mark.parametrize("root", ["s3://", "s3:///lake"])
@pytest.mark.parametrize(
    "command",
    [["transform"], ["catalog"], ["compact"], ["query", "SELECT count(*) FROM snapshots"]],
    ids=["transform", "catalog", "compact", "query"],
)
def test_a_lake_root_naming_no_bucket_is_refused_in_one_line(
    moto_endpoint, capsys, root, command
):
    assert cli.main([*command, "--lake", root]) == 2
    line = _one_line_error(capsys)
    assert repr(root) in line and "bucket" in line and "--lake" in line
    # Nothing was written anywhere, such as buckets named after the lake's folders.
    assert boto3.client("s3").list_buckets()["Buckets"] == []


@pytest.mark.parametrize("bucket_exists", [False, True], ids=["no-bucket", "empty-prefix"])
@pytest.mark.parametrize(
    "command",
    [["query", "SELECT count(*) FROM snapshots"], ["compact"], ["catalog"]],
    ids=["query", "compact", "catalog"],
)
def test_readers_name_a_missing_bucket_or_an_empty_prefix_in_one_line(
    moto_endpoint, capsys, command, bucket_exists
):
    s3 = boto3.client("s3")
    if bucket_exists:
        s3.create_bucket(Bucket=BUCKET)
    assert cli.main([*command, "--lake", ROOT]) == 1
    line = _one_line_error(capsys)
    if bucket_exists:
        assert f"no lake at {ROOT}" in line
        assert s3.list_objects_v2(Bucket=BUCKET)["KeyCount"] == 0
    else:
        assert f"the bucket s3://{BUCKET} does not exist" in line
        assert s3.list_buckets()["Buckets"] == []
