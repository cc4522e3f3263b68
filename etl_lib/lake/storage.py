"""The few I/O functions that touch the lake: a local folder or ``s3://bucket/prefix``.

A lake root is a URL-ish string: ``./data/lake`` or ``s3://bucket/prefix``; keys come from
``etl_lib.lake.layout``.
"""

from __future__ import annotations

import functools
import os
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import fsspec

from etl_lib.config import (
    S3FS_ATTEMPTS,
    s3_request_worst_case_seconds,
    s3_storage_options,
)
from etl_lib.errors import ConfigError, EtlError, LakeError


def url(root: str, key: str = "") -> str:
    root = root.rstrip("/")
    return f"{root}/{key}" if key else root


def is_local(root: str) -> bool:
    return "://" not in root or root.startswith("file://")


def filesystem(root: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """The filesystem behind a lake root and the root's path inside it."""
    if not is_local(root) and not root.split("://", 1)[1].split("/", 1)[0]:
        # fsspec would read the first folder as the bucket: "s3:///lake/raw/..." writes to a
        # bucket named "raw".
        raise ConfigError(
            f"lake root {root!r} names no bucket: use s3://<bucket>[/<prefix>] in --lake / "
            "SPOTIFY_ETL_LAKE"
        )
    options = {} if is_local(root) else object_store_options(root)
    try:
        fs, path = fsspec.core.url_to_fs(root, **options)
    except ImportError as exc:
        raise ConfigError(
            f"lake root {root!r} needs the AWS extra: pip install 'spotify-charts-lake[aws]'"
        ) from exc
    except ValueError as exc:
        raise LakeError(f"cannot open lake root {root!r}: {exc}") from exc
    if hasattr(fs, "retries"):
        # s3fs takes its retry count as an attribute only (config.S3FS_ATTEMPTS says why).
        fs.retries = S3FS_ATTEMPTS
    if options:
        # Worked out once per filesystem (fsspec caches it per options), not per call.
        fs.lake_deadline_seconds = s3_request_worst_case_seconds(options)
    return fs, path.rstrip("/")


def object_store_options(root: str) -> dict:
    if not root.startswith(("s3://", "s3a://")):
        return {}
    options = s3_storage_options()
    options["config_kwargs"]["http_session_cls"] = _attempt_bounded_session()
    return options


@functools.cache
def _attempt_bounded_session() -> type:
    """aiobotocore's HTTP session with an overall deadline on each attempt.

    botocore's read timeout bounds a silence, so an endpoint trickling a byte of headers
    every few seconds would hold an attempt forever; every request reaches S3 through this
    session (s3fs calls, DuckDB's reads through the registered filesystem, opened files), so
    each attempt ends within connect + read timeout, from connecting to the body's last byte,
    and a request within ``config.s3_request_worst_case_seconds``. Built on first use: only
    object-store lakes import aiobotocore.
    """
    import aiohttp
    from aiobotocore.httpsession import AIOHTTPSession

    class AttemptBoundedSession(AIOHTTPSession):
        def __init__(self, *args, timeout=None, **kwargs):
            super().__init__(*args, timeout=timeout, **kwargs)
            limits = self._timeout
            if limits.sock_connect is not None and limits.sock_read is not None:
                self._timeout = aiohttp.ClientTimeout(
                    sock_connect=limits.sock_connect,
                    sock_read=limits.sock_read,
                    total=limits.sock_connect + limits.sock_read,
                )

    return AttemptBoundedSession


def _storage_failures() -> tuple[type[BaseException], ...]:
    """Exception types that mean the object store failed (as opposed to a bug of ours)."""
    failures: tuple[type[BaseException], ...] = (OSError, TimeoutError)
    try:
        import botocore.exceptions

        failures += (botocore.exceptions.BotoCoreError, botocore.exceptions.ClientError)
    except ImportError:  # no AWS extra: only local lakes, whose errors stay as they are
        pass
    try:
        import aiohttp

        failures += (aiohttp.ClientError,)
    except ImportError:
        pass
    return failures


@contextmanager
def storage_errors(root: str, key: str = ""):
    """Turn object-store failures into one line naming the bucket, the key and the setting
    to fix. They come after botocore's bounded retries (``config.s3_storage_options``);
    local lakes keep their errors as they are."""
    try:
        yield
    except EtlError:
        raise
    except Exception as exc:
        if is_local(root) or not isinstance(exc, _storage_failures()):
            raise
        raise LakeError(_storage_failure_message(root, key, exc)) from exc


def _storage_failure_message(root: str, key: str, exc: BaseException) -> str:
    where = url(root, key)
    name = type(exc).__name__
    detail = " ".join(str(exc).split())[:300] or f"{name}: no answer in time"
    if isinstance(exc, FileNotFoundError) or "NoSuchBucket" in detail:
        return (
            f"{where}: the bucket {_bucket(root)} does not exist or the key is missing "
            f"({detail}); create the bucket or fix --lake / SPOTIFY_ETL_LAKE"
        )
    if isinstance(exc, PermissionError) or "AccessDenied" in detail:
        return (
            f"access denied to {where}: check the AWS credentials (AWS_PROFILE, "
            "AWS_ACCESS_KEY_ID) and the bucket's policy"
        )
    if "NoCredentials" in name:
        return (
            f"no AWS credentials for {where}: set AWS_PROFILE or AWS_ACCESS_KEY_ID and "
            "AWS_SECRET_ACCESS_KEY"
        )
    if "region" in detail.lower() or "PermanentRedirect" in detail:
        return (
            f"{_bucket(root)} is in another region than the one configured ({detail}) "
            f"reading {where}: set AWS_REGION to the bucket's region"
        )
    options = s3_storage_options()
    config = options["config_kwargs"]
    limits = (
        f"{config['retries']['total_max_attempts']} attempts of connect "
        f"{config['connect_timeout']:g} s + read {config['read_timeout']:g} s, at most "
        f"{s3_request_worst_case_seconds(options):.0f} s"
    )
    endpoint = options.get("client_kwargs", {}).get("endpoint_url", "AWS")
    if _is_connection_failure(exc):
        return (
            f"cannot reach the object store ({endpoint}) for {where} within {limits} "
            f"({detail}): check AWS_ENDPOINT_URL / SPOTIFY_ETL_S3_ENDPOINT_URL and the network, "
            "or raise SPOTIFY_ETL_S3_READ_TIMEOUT / SPOTIFY_ETL_S3_MAX_ATTEMPTS"
        )
    return (
        f"the object store ({endpoint}) failed on {where} within {limits} ({detail}): "
        "run the command again later, or raise SPOTIFY_ETL_S3_MAX_ATTEMPTS"
    )


def _is_connection_failure(exc: BaseException) -> bool:
    if isinstance(exc, ConnectionError | TimeoutError):
        return True
    try:
        import botocore.exceptions
    except ImportError:
        return False
    return isinstance(
        exc, botocore.exceptions.HTTPClientError | botocore.exceptions.ConnectionError
    )


# The failures of the object store a Python traceback may end with, by exception type name,
# and the built-in type each is reported as.
_REPORTED_FAILURES = (
    (re.compile(r"FileNotFound|NoSuchBucket|NoSuchKey"), FileNotFoundError),
    (re.compile(r"Permission|AccessDenied"), PermissionError),
    (re.compile(r"Timeout"), TimeoutError),
    (re.compile(r"Connection|Endpoint|ServerDisconnected|ClientOSError"), ConnectionError),
    (re.compile(r"NoCredentials|ClientError|OSError|IOError|BotoCoreError"), OSError),
)
_TRACEBACK_END = re.compile(
    r"^Traceback \(most recent call last\):\n(?:[ \t].*\n)*(?P<name>[\w.]+): (?P<detail>.*)$",
    re.MULTILINE,
)
# DuckDB before 2.0 gives the exception's own line first, then "At:" and the stack.
_EXCEPTION_THEN_STACK = re.compile(r"\A(?P<name>[\w.]+): (?P<detail>.*)\n\nAt:\n")


def reported_storage_failure(root: str, text: str) -> LakeError | None:
    """The one-line error for an object-store failure that reached us as text, else None.

    DuckDB reports an exception raised by the filesystem registered with it (``fsspec``, so
    s3fs and botocore) as its own error whose message is the Python traceback, without the
    exception itself.
    """
    if is_local(root):
        return None
    match = _TRACEBACK_END.search(text) or _EXCEPTION_THEN_STACK.match(text)
    if match is None:
        return None
    name = match["name"].rsplit(".", 1)[-1]
    for pattern, kind in _REPORTED_FAILURES:
        if pattern.search(name):
            # Same name as the original, so the message tells what it told.
            failure = type(name, (kind,), {})(match["detail"])
            return LakeError(_storage_failure_message(root, "", failure))
    return None


def _bucket(root: str) -> str:
    scheme, _, rest = root.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}"


def _deadline(fs: fsspec.AbstractFileSystem) -> dict:
    """fsspec's overall timeout for an object-store call that sends one or a few requests.

    Each attempt is bounded by botocore's timeouts, except a PUT: it asks for
    ``100-continue`` and aiohttp applies no read timeout while waiting for that answer, so an
    endpoint that never answers would hold it forever. The deadline is the worst case one
    request may take anyway (``config.s3_request_worst_case_seconds``).
    """
    seconds = getattr(fs, "lake_deadline_seconds", None)
    return {"timeout": seconds} if seconds is not None else {}


def _full_path(root: str, key: str) -> tuple[fsspec.AbstractFileSystem, str]:
    fs, base = filesystem(root)
    return fs, f"{base}/{key}"


def ensure_root(root: str) -> None:
    """Fail early, with the path in the message, when a lake root is unusable; a missing
    local folder is created (for commands that write a lake: extract, transform, imports)."""
    fs, base = filesystem(root)
    if not is_local(root):
        _check_bucket(root, fs, base)
        return
    if os.path.exists(base) and not os.path.isdir(base):
        raise LakeError(f"lake root {root!r} is a file, not a folder: pass --lake a folder path")
    try:
        os.makedirs(base, exist_ok=True)
    except OSError as exc:
        raise LakeError(
            f"cannot create lake root {root!r} ({exc.strerror}): pass --lake a writable folder"
        ) from exc
    if not os.access(base, os.W_OK):
        raise LakeError(f"lake root {root!r} is not writable: pass --lake a writable folder")


def require_root(root: str) -> None:
    """Fail early, in one line, when a lake that a command only reads is not there.

    Readers (catalog, query, compact, report) never create a lake: a mistyped ``--lake``
    would otherwise give an empty catalog and empty answers.
    """
    fs, base = filesystem(root)
    if not is_local(root):
        if _holds_objects(root, fs, base):  # one listing in the usual case
            return
        _check_bucket(root, fs, base)  # says so if the bucket itself is missing
        raise LakeError(
            f"no lake at {root}: nothing is stored under it; pass --lake (or "
            "SPOTIFY_ETL_LAKE) an existing lake, or create one with `spotify-etl run` or "
            "`extract`"
        )
    if os.path.isdir(base):
        return
    if os.path.exists(base):
        raise LakeError(f"lake root {root!r} is a file, not a folder: pass --lake a folder path")
    raise LakeError(
        f"no lake at {root}: pass --lake (or SPOTIFY_ETL_LAKE) an existing lake's folder, or "
        "create one with `spotify-etl run`, `extract` or `demo`"
    )


def _holds_objects(root: str, fs: fsspec.AbstractFileSystem, base: str) -> bool:
    """Whether any object lies under the lake's prefix (object stores have no folders)."""
    with storage_errors(root):
        try:
            return bool(fs.ls(base, refresh=True, **_deadline(fs)))
        except FileNotFoundError:
            return False


def _check_bucket(root: str, fs: fsspec.AbstractFileSystem, base: str) -> None:
    with storage_errors(root):
        # The bucket exists and may be listed (a missing one raises FileNotFoundError).
        fs.ls(base.split("/", 1)[0], refresh=True, **_deadline(fs))


def write_bytes(root: str, key: str, data: bytes) -> None:
    """Write a whole object. Local writes go through a temporary file and a rename, so a
    reader never sees half a file; object stores give that guarantee for a single PUT."""
    fs, path = _full_path(root, key)
    if is_local(root):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        temporary = temporary_path(path)
        with open(temporary, "wb") as handle:
            handle.write(data)
        os.replace(temporary, path)
    else:
        with storage_errors(root, key):
            # One whole-object PUT: no partial object is ever visible.
            fs.pipe_file(path, data, **_deadline(fs))


_TEMPORARY_NAME = re.compile(r"\..+\.[0-9a-f]{32}\.tmp")


def temporary_path(path: str) -> str:
    """Where a local file is written before it is renamed to ``path``: a hidden name in the
    same folder that no listing or table pattern matches."""
    directory, name = os.path.split(path)
    return os.path.join(directory, f".{name}.{uuid.uuid4().hex}.tmp")


def remove_stale_temporaries(root: str, older_than_seconds: float) -> list[str]:
    """Delete the temporary files of local writes that were killed before their rename.

    Only files untouched for ``older_than_seconds`` go: a live writer's file is younger.
    Readers never see any of them (hidden names, skipped by ``list_keys``). Returns their paths.
    """
    if not is_local(root):
        return []  # object stores get whole-object PUTs, no temporary files
    _, base = filesystem(root)
    cutoff = datetime.now(UTC).timestamp() - older_than_seconds
    removed = []
    for directory, _, names in os.walk(base):
        for name in names:
            if not _TEMPORARY_NAME.fullmatch(name):
                continue
            path = os.path.join(directory, name)
            try:
                if os.stat(path).st_mtime < cutoff:
                    os.remove(path)
                    removed.append(path)
            except FileNotFoundError:
                pass  # renamed or removed meanwhile by its writer or another cleaner
    return removed


def _one_get(fs: fsspec.AbstractFileSystem) -> dict:
    """s3fs's options for reading a whole object in one GET.

    By default s3fs first asks for the object's size (a HEAD; for a missing key, two LISTs
    more) to download objects over 50 MB in parallel parts; the lake's objects are a few MB
    at most, so that was one request more per read for nothing.
    """
    return {"max_concurrency": 1} if hasattr(fs, "max_concurrency") else {}


def read_bytes(root: str, key: str) -> bytes:
    fs, path = _full_path(root, key)
    try:
        with storage_errors(root, key):
            return fs.cat_file(path, **_one_get(fs), **_deadline(fs))
    except FileNotFoundError as exc:
        raise LakeError(f"{url(root, key)} does not exist") from exc


def read_bytes_if_exists(root: str, key: str) -> bytes | None:
    """The object's bytes, or None when there is no such key: one GET, no existence check
    first (on S3 that was a HEAD more). A missing bucket reads as None too, as in
    ``list_keys``: commands that write check the root first (``ensure_root``)."""
    fs, path = _full_path(root, key)
    with storage_errors(root, key):
        # Inside storage_errors: s3fs raises FileNotFoundError for S3's 404, which that
        # context would otherwise report as a failure of the object store.
        try:
            return fs.cat_file(path, **_one_get(fs), **_deadline(fs))
        except FileNotFoundError:
            return None


def exists(root: str, key: str) -> bool:
    fs, path = _full_path(root, key)
    with storage_errors(root, key):
        return fs.exists(path, **_deadline(fs))


def list_folders(root: str, prefix: str) -> list[str]:
    """The names of the folders right under a prefix (``dt=2026-10-31``, ...), sorted: one
    request on an object store, however many keys lie below them."""
    fs, base = filesystem(root)
    path = f"{base}/{prefix}".rstrip("/")
    with storage_errors(root, prefix):
        try:
            entries = fs.ls(path, detail=True, refresh=True, **_deadline(fs))
        except (FileNotFoundError, NotADirectoryError):
            return []
    names = [
        entry["name"].rstrip("/").rsplit("/", 1)[-1]
        for entry in entries
        if entry.get("type") == "directory"
    ]
    return sorted(name for name in names if not name.startswith("."))


def list_keys(root: str, prefix: str, suffix: str = "") -> Iterator[str]:
    """Keys under a prefix, sorted; temporary files of interrupted local writes are ignored."""
    fs, base = filesystem(root)
    start = f"{base}/{prefix}".rstrip("/")
    with storage_errors(root, prefix):
        # find() pages through ListObjectsV2 on S3: no 1,000-key ceiling. Each page is one
        # request under the session's bounds (``_attempt_bounded_session``); the listing as a
        # whole takes as many pages as the prefix holds. A prefix with nothing under it lists
        # nothing: no existence check first (on S3 that was one more request per listing, a
        # read of the prefix's own key, which the functions' roles need not allow).
        try:
            paths = fs.find(start)
        except FileNotFoundError:
            paths = []
    keys = []
    for path in paths:
        key = path[len(base) + 1 :] if base else path
        name = key.rsplit("/", 1)[-1]
        if name.startswith(".") or not key.endswith(suffix):
            continue
        keys.append(key)
    return iter(sorted(keys))


def delete(root: str, keys: list[str]) -> None:
    """Remove objects; on S3 in batched DeleteObjects calls. Missing keys are fine."""
    if not keys:
        return
    fs, base = filesystem(root)
    paths = [f"{base}/{key}" for key in keys]
    named = keys[0] if len(keys) == 1 else f"{keys[0]} and {len(keys) - 1} more keys"
    with storage_errors(root, named):
        if is_local(root):
            for path in paths:
                try:
                    os.remove(path)
                except FileNotFoundError:
                    pass
        else:
            fs.rm(paths, **_deadline(fs))
