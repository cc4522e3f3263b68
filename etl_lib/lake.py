"""Where things live in the lake, and the few I/O functions that touch it.

A lake root is a URL-ish string: ``./data/lake`` or ``s3://bucket/prefix``. Keys are
``/``-separated paths relative to the root and never depend on the OS separator, so the
same key works on a local folder and on object storage.
"""

from __future__ import annotations

import io
import os
import re
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime

import fsspec
import pyarrow as pa
import pyarrow.parquet as pq

from etl_lib.config import s3_storage_options
from etl_lib.errors import ConfigError, EtlError, LakeError

RAW = "raw"
TABLES = "tables"
QUARANTINE = "quarantine"
STATE = "_state"
HEARTBEATS = "heartbeats"

_SPOTIFY_ID = re.compile(r"^[A-Za-z0-9]{1,64}$")
_STAMP_FORMAT = "%Y%m%dT%H%M%SZ"
_RAW_KEY = re.compile(
    r"^raw/playlist_id=(?P<playlist_id>[A-Za-z0-9]+)/dt=(?P<dt>\d{4}-\d{2}-\d{2})/"
    r"(?P<stamp>\d{8}T\d{6}Z)\.json$"
)


def check_playlist_id(playlist_id: str) -> str:
    if not _SPOTIFY_ID.match(playlist_id or ""):
        raise ConfigError(
            f"playlist id {playlist_id!r} is not a Spotify ID: use the 22-character base62 id "
            "from the playlist's URL (open.spotify.com/playlist/<id>)"
        )
    return playlist_id


def utc_stamp(moment: datetime) -> str:
    return as_utc(moment).strftime(_STAMP_FORMAT)


def as_utc(moment: datetime) -> datetime:
    if moment.tzinfo is None:
        raise ValueError(f"naive datetime {moment!r}: every time in the lake is UTC-aware")
    return moment.astimezone(UTC)


def partition_date(moment: datetime) -> str:
    return as_utc(moment).strftime("%Y-%m-%d")


def raw_key(playlist_id: str, extracted_at: datetime) -> str:
    check_playlist_id(playlist_id)
    return (
        f"{RAW}/playlist_id={playlist_id}/dt={partition_date(extracted_at)}/"
        f"{utc_stamp(extracted_at)}.json"
    )


def parse_raw_key(key: str) -> dict[str, str] | None:
    """The playlist id, dt and stamp of a raw key, or None when the key is not one."""
    match = _RAW_KEY.match(key)
    return match.groupdict() if match else None


# Table file names, for Python and for SQL engines (DuckDB's ``filename``, ``glob()``).
_STAMP_PATTERN = "[0-9]{8}T[0-9]{6}Z"
_GENERATION_PATTERN = "g[0-9]{8}T[0-9]{12}Z[0-9a-f]{4}"
_TABLE_FILE = re.compile(
    r"^tables/(?P<table>[a-z_]+)/dt=(?P<dt>[0-9]{4}-[0-9]{2}-[0-9]{2})/(?P<playlist_id>[A-Za-z0-9]+)_"
    rf"(?P<first>{_STAMP_PATTERN})(?:-(?P<last>{_STAMP_PATTERN})_(?P<generation>{_GENERATION_PATTERN}))?"
    r"\.parquet$"
)
FILE_DT_PATTERN = r"dt=([0-9]{4}-[0-9]{2}-[0-9]{2})/[^/]*$"
FILE_PLAYLIST_PATTERN = rf"([A-Za-z0-9]+)_{_STAMP_PATTERN}[^/]*\.parquet$"
FILE_GENERATION_PATTERN = rf"_({_GENERATION_PATTERN})\.parquet$"
FILE_FIRST_STAMP_PATTERN = (
    rf"_({_STAMP_PATTERN})(-{_STAMP_PATTERN}_{_GENERATION_PATTERN})?\.parquet$"
)
FILE_LAST_STAMP_PATTERN = rf"({_STAMP_PATTERN})(_{_GENERATION_PATTERN})?\.parquet$"


def table_file_key(table: str, dt: str, playlist_id: str, stamp: str) -> str:
    # One file per raw file per table: re-transforming a raw file overwrites, never appends.
    return f"{TABLES}/{table}/dt={dt}/{playlist_id}_{stamp}.parquet"


def new_generation(moment: datetime) -> str:
    """A name part that sorts after every earlier one: write time to the microsecond, plus a
    random suffix for two writers in the same microsecond."""
    return "g" + as_utc(moment).strftime("%Y%m%dT%H%M%S%fZ") + uuid.uuid4().hex[:4]


def batch_file_key(
    table: str, dt: str, playlist_id: str, first_stamp: str, last_stamp: str, generation: str
) -> str:
    """A file holding many snapshots of one playlist and day (bulk transform, compaction).

    Readers skip every file of the same playlist and day whose snapshots lie within this
    file's first..last stamps and whose generation is older (a per-raw file is older than
    any batch): see ``superseded`` and the DuckDB views in ``etl_lib.catalog``.
    """
    return (
        f"{TABLES}/{table}/dt={dt}/{playlist_id}_{first_stamp}-{last_stamp}_{generation}.parquet"
    )


def parse_table_file_key(key: str) -> dict[str, str] | None:
    """Table, dt, playlist id, first and last stamp and generation ("" for a per-raw file)."""
    match = _TABLE_FILE.match(key)
    if match is None:
        return None
    parts = match.groupdict()
    parts["last"] = parts["last"] or parts["first"]
    parts["generation"] = parts["generation"] or ""
    return parts


def superseded(keys: list[str]) -> set[str]:
    """The table files readers skip: those covered by a newer file of the same playlist-day.

    The rule needs only file names, so a reader decides from one listing; the writers keep
    it true (``etl_lib.compaction``): a batch file holds every snapshot in its range.
    """
    groups: dict[tuple[str, str, str], list[tuple[str, dict[str, str]]]] = {}
    for key in keys:
        parts = parse_table_file_key(key)
        if parts is not None:
            group = (parts["table"], parts["dt"], parts["playlist_id"])
            groups.setdefault(group, []).append((key, parts))
    hidden = set()
    for files in groups.values():
        batches = [parts for _, parts in files if parts["generation"]]
        for key, older in files:
            if any(
                newer["generation"] > older["generation"]
                and newer["first"] <= older["first"]
                and older["last"] <= newer["last"]
                for newer in batches
            ):
                hidden.add(key)
    return hidden


def raw_key_from_parts(playlist_id: str, dt: str, stamp: str) -> str:
    return f"{RAW}/playlist_id={playlist_id}/dt={dt}/{stamp}.json"


def raw_key_of_table_file(key: str) -> str | None:
    """The raw file a per-raw table file was made from (None for a batch file)."""
    parts = parse_table_file_key(key)
    if parts is None or parts["generation"]:
        return None
    return raw_key_from_parts(parts["playlist_id"], parts["dt"], parts["first"])


def table_file_key_for_raw(table: str, raw: str) -> str:
    parts = parse_raw_key(raw)
    if parts is None:
        raise LakeError(f"{raw!r} is not a raw key (raw/playlist_id=<id>/dt=<date>/<stamp>.json)")
    return table_file_key(table, parts["dt"], parts["playlist_id"], parts["stamp"])


def heartbeat_key(playlist_id: str, checked_at: datetime) -> str:
    check_playlist_id(playlist_id)
    return (
        f"{HEARTBEATS}/playlist_id={playlist_id}/dt={partition_date(checked_at)}/"
        f"{utc_stamp(checked_at)}.json"
    )


def last_snapshot_key(playlist_id: str) -> str:
    return f"{STATE}/last_snapshot/playlist_id={check_playlist_id(playlist_id)}.json"


def quarantine_key(raw: str) -> str:
    return f"{QUARANTINE}/{raw.removeprefix(RAW + '/')}"


def quarantine_reason_key(raw: str) -> str:
    return quarantine_key(raw).removesuffix(".json") + ".reason.txt"


def url(root: str, key: str = "") -> str:
    root = root.rstrip("/")
    return f"{root}/{key}" if key else root


def is_local(root: str) -> bool:
    return "://" not in root or root.startswith("file://")


def filesystem(root: str) -> tuple[fsspec.AbstractFileSystem, str]:
    """The filesystem behind a lake root and the root's path inside it."""
    options = {} if is_local(root) else object_store_options(root)
    try:
        fs, path = fsspec.core.url_to_fs(root, **options)
    except ImportError as exc:
        raise ConfigError(
            f"lake root {root!r} needs the AWS extra: pip install 'spotify-charts-lake[aws]'"
        ) from exc
    except ValueError as exc:
        raise LakeError(f"cannot open lake root {root!r}: {exc}") from exc
    return fs, path.rstrip("/")


def object_store_options(root: str) -> dict:
    if not root.startswith(("s3://", "s3a://")):
        return {}
    return s3_storage_options()


@contextmanager
def storage_errors(root: str):
    """Turn object-store failures into one line naming the resource and the setting to fix."""
    try:
        yield
    except (EtlError, FileNotFoundError) as exc:
        if isinstance(exc, EtlError) or is_local(root):
            raise
        raise LakeError(
            f"{_bucket(root)}: the bucket does not exist or the key is missing ({exc}); "
            "create the bucket or fix --lake / SPOTIFY_ETL_LAKE"
        ) from exc
    except PermissionError as exc:
        raise LakeError(
            f"access denied to {root}: check the AWS credentials (AWS_PROFILE, "
            "AWS_ACCESS_KEY_ID) and the bucket's policy"
        ) from exc
    except Exception as exc:
        message = str(exc)
        name = type(exc).__name__
        if is_local(root):
            raise
        if "EndpointConnectionError" in name or "ConnectTimeout" in name:
            raise LakeError(
                f"cannot reach the object store for {root} ({message.splitlines()[0]}): check "
                "AWS_ENDPOINT_URL / SPOTIFY_ETL_S3_ENDPOINT_URL and the network"
            ) from exc
        if "NoCredentials" in name:
            raise LakeError(
                f"no AWS credentials for {root}: set AWS_PROFILE or AWS_ACCESS_KEY_ID and "
                "AWS_SECRET_ACCESS_KEY"
            ) from exc
        if "region" in message.lower() or "PermanentRedirect" in message:
            raise LakeError(
                f"{_bucket(root)} is in another region than the one configured "
                f"({message.splitlines()[0]}): set AWS_REGION to the bucket's region"
            ) from exc
        raise


def _bucket(root: str) -> str:
    scheme, _, rest = root.partition("://")
    return f"{scheme}://{rest.split('/', 1)[0]}"


def _full_path(root: str, key: str) -> tuple[fsspec.AbstractFileSystem, str]:
    fs, base = filesystem(root)
    return fs, f"{base}/{key}"


def ensure_root(root: str) -> None:
    """Fail early, with the path in the message, when a lake root is unusable."""
    fs, base = filesystem(root)
    if not is_local(root):
        with storage_errors(root):
            fs.ls(base.split("/", 1)[0], refresh=True)  # the bucket exists and may be listed
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


def write_bytes(root: str, key: str, data: bytes) -> None:
    """Write a whole object. Local writes go through a temporary file and a rename, so a
    reader never sees half a file; object stores give that guarantee for a single PUT."""
    fs, path = _full_path(root, key)
    if is_local(root):
        directory = os.path.dirname(path)
        os.makedirs(directory, exist_ok=True)
        temporary = os.path.join(directory, f".{os.path.basename(path)}.{uuid.uuid4().hex}.tmp")
        with open(temporary, "wb") as handle:
            handle.write(data)
        os.replace(temporary, path)
    else:
        with storage_errors(root):
            fs.pipe_file(path, data)  # one whole-object PUT: no partial object is ever visible


def write_new(root: str, key: str, data: bytes) -> bool:
    """Write an immutable object; an existing object is kept as is. True if written."""
    if exists(root, key):
        return False
    write_bytes(root, key, data)
    return True


def read_bytes(root: str, key: str) -> bytes:
    fs, path = _full_path(root, key)
    try:
        with storage_errors(root):
            return fs.cat_file(path)
    except FileNotFoundError as exc:
        raise LakeError(f"{url(root, key)} does not exist") from exc


def exists(root: str, key: str) -> bool:
    fs, path = _full_path(root, key)
    with storage_errors(root):
        return fs.exists(path)


def list_keys(root: str, prefix: str, suffix: str = "") -> Iterator[str]:
    """Keys under a prefix, sorted; temporary files of interrupted local writes are ignored."""
    fs, base = filesystem(root)
    start = f"{base}/{prefix}".rstrip("/")
    with storage_errors(root):
        # find() pages through ListObjectsV2 on S3: no 1,000-key ceiling.
        paths = fs.find(start) if fs.exists(start) else []
    keys = []
    for path in paths:
        key = path[len(base) + 1 :] if base else path
        name = key.rsplit("/", 1)[-1]
        if name.startswith(".") or not key.endswith(suffix):
            continue
        keys.append(key)
    return iter(sorted(keys))


def write_parquet(
    root: str, key: str, table: pa.Table, metadata: dict[str, str] | None = None
) -> None:
    """Write a table as one Parquet object, with ``metadata`` in its footer."""
    buffer = io.BytesIO()
    # No copy of the Arrow schema in the footer: Parquet's own types read back the same
    # (etl_lib.schemas), and every reader fetches the footer, so it is most of what a small
    # file costs to query.
    with pq.ParquetWriter(buffer, table.schema, compression="snappy", store_schema=False) as out:
        out.write_table(table)
        if metadata:
            out.add_key_value_metadata(metadata)
    write_bytes(root, key, buffer.getvalue())


def read_parquet(root: str, key: str) -> pa.Table:
    return pq.read_table(io.BytesIO(read_bytes(root, key)))


def read_parquet_metadata(root: str, key: str) -> dict[bytes, bytes]:
    """A Parquet file's key-value metadata, reading only its footer."""
    fs, path = _full_path(root, key)
    with storage_errors(root), fs.open(path, "rb") as handle:
        return pq.read_metadata(handle).metadata or {}


def delete(root: str, keys: list[str]) -> None:
    """Remove objects; on S3 in batched DeleteObjects calls. Missing keys are fine."""
    if not keys:
        return
    fs, base = filesystem(root)
    paths = [f"{base}/{key}" for key in keys]
    with storage_errors(root):
        if is_local(root):
            for path in paths:
                try:
                    os.remove(path)
                except FileNotFoundError:
                    pass
        else:
            fs.rm(paths)


def now_utc() -> datetime:
    return datetime.now(UTC)
