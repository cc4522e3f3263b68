"""Where Spotify secrets come from, and where a rotated refresh token goes back to.

Three sources, first match wins: AWS Secrets Manager (``SPOTIFY_ETL_SECRET_ID``, for the
Lambda), environment variables, then a local JSON file outside the repository
(``~/.config/spotify-etl/credentials.json`` by default) that must be readable by its owner
only. Secrets are never logged, printed or written to the lake: ``Credentials`` hides them
from ``repr``.
"""

from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from etl_lib.errors import ConfigError

DEFAULT_CREDENTIALS_FILE = Path("~/.config/spotify-etl/credentials.json")
FIELDS = ("client_id", "client_secret", "refresh_token", "scope", "user_id")


@dataclass(frozen=True)
class Credentials:
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    refresh_token: str | None = field(default=None, repr=False)
    scope: str | None = None
    user_id: str | None = None
    # Where these came from, for `auth status` and for saving a rotated refresh token.
    origin: str = "none"

    def as_secret_document(self) -> dict[str, str]:
        return {name: getattr(self, name) for name in FIELDS if getattr(self, name)}


def _from_document(document: Any, origin: str) -> Credentials:
    if not isinstance(document, dict):
        raise ConfigError(f"{origin} does not hold a JSON object with Spotify credentials")
    return Credentials(**{name: document.get(name) for name in FIELDS}, origin=origin)


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
    return _from_document(document, f"file {path}")


def write_file(path: Path, credentials: Credentials) -> Path:
    """Write owner-only (0600) via a temporary file, so the secret is never world-readable."""
    path = path.expanduser()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_name(path.name + ".tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
        json.dump(credentials.as_secret_document(), handle, indent=2)
    os.replace(temporary, path)
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
    return _from_document(document, f"secret {secret_id}")


def write_secrets_manager(secret_id: str, credentials: Credentials, *, region=None) -> None:
    import boto3

    boto3.client("secretsmanager", region_name=region).put_secret_value(
        SecretId=secret_id, SecretString=json.dumps(credentials.as_secret_document())
    )


def from_environment(environ: dict[str, str]) -> Credentials:
    values = {
        "client_id": environ.get("SPOTIFY_CLIENT_ID") or environ.get("SPOTIPY_CLIENT_ID"),
        "client_secret": environ.get("SPOTIFY_CLIENT_SECRET")
        or environ.get("SPOTIPY_CLIENT_SECRET"),
        "refresh_token": environ.get("SPOTIFY_REFRESH_TOKEN"),
    }
    return Credentials(**values, origin="environment")


def load(
    environ: dict[str, str] | None = None,
    *,
    secret_id: str | None = None,
    credentials_file: Path | None = None,
    region: str | None = None,
) -> Credentials:
    """Secrets Manager if a secret id is set; else environment variables over the file."""
    env = os.environ if environ is None else environ
    if secret_id:
        return read_secrets_manager(secret_id, region=region)
    from_file = read_file(credentials_file or DEFAULT_CREDENTIALS_FILE)
    from_env = from_environment(env)
    merged = {name: getattr(from_env, name) or getattr(from_file, name) for name in FIELDS}
    used_env = any(getattr(from_env, name) for name in FIELDS)
    used_file = any(getattr(from_file, name) for name in FIELDS)
    origin = " + ".join(
        label for label, used in (("environment", used_env), (from_file.origin, used_file)) if used
    )
    return replace(Credentials(**merged), origin=origin or "none")
