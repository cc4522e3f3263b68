"""Where Spotify secrets come from, and where a rotated refresh token goes back to.

Three sources, first match wins: AWS Secrets Manager (``SPOTIFY_ETL_SECRET_ID``, for the
Lambda), environment variables, then a local JSON file outside the repository
(``~/.config/spotify-etl/credentials.json`` by default) that must be readable by its owner
only. ``etl_lib.config`` reads where they are (and the environment's values); ``loaded``
reads them, which only the code that calls Spotify does. Secrets are never logged, printed
or written to the lake: ``Credentials`` hides them from ``repr``.
"""

from __future__ import annotations

import json
import os
import secrets
import stat
from dataclasses import replace
from pathlib import Path
from typing import Any

from etl_lib.config import CREDENTIAL_FIELDS as FIELDS
from etl_lib.config import Credentials, Settings
from etl_lib.errors import ConfigError


def _from_document(document: Any, origin: str, kind: str) -> Credentials:
    """Credentials read from a file or a secret (``kind``: "file" or "secret")."""
    if not isinstance(document, dict):
        raise ConfigError(f"{origin} does not hold a JSON object with Spotify credentials")
    values = {name: document.get(name) for name in FIELDS}
    source = kind if values["refresh_token"] else None
    return Credentials(**values, origin=origin, refresh_token_source=source)


def read_file(path: Path) -> Credentials:
    path = path.expanduser()
    if not path.exists():
        return Credentials()
    mode = path.stat().st_mode
    if mode & (stat.S_IRWXG | stat.S_IRWXO):
        raise ConfigError(
            f"{path} is readable by other users (mode {stat.S_IMODE(mode):o}): "
            f"run `chmod 600 {path}`"
        )
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise ConfigError(f"{path} is not valid JSON ({exc.msg}): fix or delete it") from exc
    return _from_document(document, f"file {path}", "file")


def write_file(path: Path, credentials: Credentials) -> Path:
    """Write owner-only (0600), atomically, through a temporary file of its own.

    The temporary file gets a fresh random name and is created exclusively without following
    symlinks, and is 0600 before the first byte, so nothing left in the folder (a stale
    temporary file of any mode, a symlink planted to catch the secret) is ever written through
    or reused. A crash leaves the previous file whole.
    """
    path = path.expanduser()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    document = json.dumps(credentials.as_secret_document(), indent=2).encode("utf-8")
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)
    for _attempt in range(8):
        temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}.tmp")
        try:
            descriptor = os.open(temporary, flags, 0o600)
        except FileExistsError:  # something already there, perhaps planted: another name
            continue
        break
    else:
        raise ConfigError(
            f"cannot create a temporary file beside {path}: its folder is full of names this "
            f"writer would use; remove the .{path.name}.*.tmp files there"
        )
    try:
        with os.fdopen(descriptor, "wb") as handle:
            os.fchmod(handle.fileno(), 0o600)  # the umask can only narrow the mode: pinned
            handle.write(document)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    # The rename itself survives a power cut once the folder is synced too.
    folder = os.open(path.parent, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        os.fsync(folder)
    finally:
        os.close(folder)
    return path


def read_secrets_manager(secret_id: str, *, region: str | None = None) -> Credentials:
    try:
        import boto3
        from botocore.exceptions import BotoCoreError, ClientError
    except ImportError as exc:
        raise ConfigError(
            "reading SPOTIFY_ETL_SECRET_ID needs boto3: pip install 'spotify-charts-lake[aws]'"
        ) from exc
    try:
        client = boto3.client("secretsmanager", region_name=region)
        secret = client.get_secret_value(SecretId=secret_id)
    except (BotoCoreError, ClientError) as exc:
        raise ConfigError(f"cannot read secret {secret_id!r} from Secrets Manager: {exc}") from exc
    try:
        document = json.loads(secret.get("SecretString") or "")
    except json.JSONDecodeError as exc:
        raise ConfigError(
            f"secret {secret_id!r} is not a JSON object with client_id, client_secret, "
            "refresh_token"
        ) from exc
    return _from_document(document, f"secret {secret_id}", "secret")


def write_secrets_manager(secret_id: str, credentials: Credentials, *, region=None) -> None:
    import boto3
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        boto3.client("secretsmanager", region_name=region).put_secret_value(
            SecretId=secret_id, SecretString=json.dumps(credentials.as_secret_document())
        )
    except (BotoCoreError, ClientError) as exc:
        raise ConfigError(
            f"cannot write secret {secret_id!r} to Secrets Manager ({exc}): allow "
            "secretsmanager:PutSecretValue on it"
        ) from exc


def loaded(settings: Settings) -> Settings:
    """``settings`` with their credentials: the ones given, else read now (``load``)."""
    if settings.credentials is not None:
        return settings
    return replace(settings, credentials=load(settings))


def load(settings: Settings) -> Credentials:
    """Secrets Manager if a secret id is set; else the environment's values over the file."""
    if settings.secret_id:
        return read_secrets_manager(settings.secret_id, region=settings.aws_region)
    from_file = read_file(settings.credentials_file)
    from_env = settings.environment_credentials
    merged = {name: getattr(from_env, name) or getattr(from_file, name) for name in FIELDS}
    used_env = any(getattr(from_env, name) for name in FIELDS)
    used_file = any(getattr(from_file, name) for name in FIELDS)
    origin = " + ".join(
        label for label, used in (("environment", used_env), (from_file.origin, used_file)) if used
    )
    source = from_env.refresh_token_source or from_file.refresh_token_source
    return replace(Credentials(**merged), origin=origin or "none", refresh_token_source=source)


def store_rotated_refresh_token(
    credentials: Credentials,
    refresh_token: str,
    *,
    secret_id: str | None,
    credentials_file: Path,
    region: str | None = None,
) -> str | None:
    """Save a refresh token the token endpoint rotated back where the old one was read.

    Returns why it could not be saved (a token from the environment, or handed over in
    code), for the caller to say once; None once saved.
    """
    source = credentials.refresh_token_source
    if source == "secret" and secret_id:
        write_secrets_manager(
            secret_id, replace(credentials, refresh_token=refresh_token), region=region
        )
        return None
    if source == "file":
        # From the file as it is now, so values from the environment stay out of it, except
        # the client id the token belongs to when the file lacks one.
        stored = read_file(credentials_file)
        updated = replace(
            stored, refresh_token=refresh_token, client_id=stored.client_id or credentials.client_id
        )
        try:
            write_file(credentials_file, updated)
        except OSError as exc:
            raise ConfigError(
                f"cannot store the rotated refresh token in {credentials_file} "
                f"({exc.strerror or exc}): make its folder writable by you, then run "
                "`spotify-etl auth login` again, since the old token is no longer valid"
            ) from exc
        return None
    if source == "environment":
        return (
            "Spotify rotated the refresh token from SPOTIFY_REFRESH_TOKEN, which this run cannot "
            "update, and the old one is no longer valid: set SPOTIFY_REFRESH_TOKEN to a new one, "
            "or unset it and run `spotify-etl auth login` to keep it in the credentials file"
        )
    return (
        "Spotify rotated the refresh token, which was given to this run directly and is not "
        "stored anywhere: the old one is no longer valid; run `spotify-etl auth login`"
    )
