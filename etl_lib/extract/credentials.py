"""Where Spotify secrets come from, and where a rotated refresh token goes back to.

Three sources, first match wins: an SSM Parameter Store SecureString holding the credentials
JSON (``SPOTIFY_ETL_CREDENTIALS_PARAMETER``, for the Lambda: a standard parameter has no
monthly charge, unlike a Secrets Manager secret), environment variables, then a local JSON
file outside the repository (``~/.config/spotify-etl/credentials.json`` by default) that must
be readable by its owner only. ``etl_lib.config`` reads where they are (and the environment's
values); ``loaded`` reads them, which only the code that calls Spotify does. Secrets are never
logged, printed or written to the lake: ``Credentials`` hides them from ``repr``.
"""

from __future__ import annotations

import json
import os
import secrets
import stat
from dataclasses import replace
from pathlib import Path
from typing import Any

from etl_lib.aws import aws_error, client_config, require_boto3
from etl_lib.config import CREDENTIAL_FIELDS as FIELDS
from etl_lib.config import Credentials, Settings
from etl_lib.errors import ConfigError, EtlError


def _from_document(document: Any, origin: str, kind: str) -> Credentials:
    """Credentials read from a file or the SSM parameter (``kind``: "file", "parameter")."""
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


# Where the deploy steps say how to create the parameter, for the errors that need it made.
PARAMETER_HOW_TO = "infra/README.md, Deploying, step 1"
PARAMETER_MISSING = (
    f"does not exist: create it as a SecureString ({PARAMETER_HOW_TO}), or set "
    "SPOTIFY_ETL_CREDENTIALS_PARAMETER to the stack's CredentialsParameterName output"
)


def document_problem(document: Any) -> str | None:
    """What a credentials document lacks for any run against Spotify, in words for an error
    line (never a value), or None: a JSON object with a client_id, and a client_secret
    (client credentials) or a refresh_token (a user's authorization)."""
    if not isinstance(document, dict):
        return "does not hold a JSON object with client_id and client_secret or refresh_token"
    present = {name for name in FIELDS if isinstance(document.get(name), str) and document[name]}
    if "client_id" not in present:
        return "has no client_id"
    if not present & {"client_secret", "refresh_token"}:
        return (
            "has a client_id but neither client_secret (client credentials) nor refresh_token "
            "(`spotify-etl auth login`)"
        )
    return None


def parameter_document(parameter: dict) -> tuple[dict | None, str | None]:
    """The credentials document of a GetParameter answer's ``Parameter`` (decrypted), or what
    is wrong with it and the fix, in words for an error line after the parameter's name."""
    if parameter.get("Type") != "SecureString":
        return None, (
            f"is a {parameter.get('Type')}, which stores the credentials unencrypted: delete it "
            f"(aws ssm delete-parameter --name {parameter.get('Name')}) and create it as a "
            f"SecureString ({PARAMETER_HOW_TO})"
        )
    try:
        document = json.loads(parameter.get("Value") or "")
    except json.JSONDecodeError:
        document = None
    problem = document_problem(document)
    if problem:
        return None, f"{problem}: put the credentials JSON in it ({PARAMETER_HOW_TO})"
    return document, None


def _ssm_client(region: str | None):
    """A Parameter Store client; without a region, botocore's NoRegionError (a BotoCoreError)."""
    import boto3

    return boto3.client("ssm", region_name=region, config=client_config())


def read_parameter(name: str, *, region: str | None = None) -> Credentials:
    """The credentials JSON in the SSM Parameter Store SecureString ``name``, decrypted.

    A parameter that is missing, not a SecureString (its value is stored unencrypted) or
    lacks keys is refused with one line naming it and the fix; the values are never shown.
    """
    require_boto3("reading SPOTIFY_ETL_CREDENTIALS_PARAMETER needs boto3")
    from botocore.exceptions import BotoCoreError, ClientError

    subject = f"SSM parameter {name!r}"
    try:
        ssm = _ssm_client(region)
        parameter = ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]
    except ClientError as exc:
        code = exc.response.get("Error", {}).get("Code", "")
        if code == "ParameterNotFound":
            raise ConfigError(f"{subject} {PARAMETER_MISSING}") from exc
        raise _aws_problem(exc, subject, "ssm:GetParameter", "kms:Decrypt") from exc
    except BotoCoreError as exc:
        raise _aws_problem(exc, subject, "ssm:GetParameter", "kms:Decrypt") from exc
    document, problem = parameter_document(parameter)
    if problem:
        raise ConfigError(f"{subject} {problem}")
    return _from_document(document, f"SSM parameter {name}", "parameter")


def write_parameter(name: str, credentials: Credentials, *, region: str | None = None) -> None:
    """Store the credentials as the SecureString ``name``'s new value, creating it if need be.

    Each write is a new version (Parameter Store keeps the newest 100), encrypted with the
    account's AWS-managed key aws/ssm: a write without a key id uses it.
    """
    require_boto3("reading SPOTIFY_ETL_CREDENTIALS_PARAMETER needs boto3")
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        _ssm_client(region).put_parameter(
            Name=name,
            Value=json.dumps(credentials.as_secret_document()),
            Type="SecureString",
            Overwrite=True,
        )
    except (BotoCoreError, ClientError) as exc:
        raise _aws_problem(
            exc, f"SSM parameter {name!r}", "ssm:PutParameter", "kms:Encrypt"
        ) from exc


def _aws_problem(exc: BaseException, subject: str, action: str, kms_action: str) -> EtlError:
    """One line for an AWS error reading or writing the parameter: denied, unreachable or
    without credentials, each with its fix; anything else as AWS said it."""
    needs = f"{action} on it (and {kms_action} on its key, if that is not the AWS-managed aws/ssm)"
    known = aws_error(exc, service="SSM Parameter Store", resource=subject, needs=needs)
    return known if known is not None else ConfigError(f"cannot use {subject}: {exc}")


def loaded(settings: Settings) -> Settings:
    """``settings`` with their credentials: the ones given, else read now (``load``)."""
    if settings.credentials is not None:
        return settings
    return replace(settings, credentials=load(settings))


def load(settings: Settings) -> Credentials:
    """The SSM parameter if one is set; else the environment's values over the file."""
    if settings.credentials_parameter:
        return read_parameter(settings.credentials_parameter, region=settings.aws_region)
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
    parameter: str | None,
    credentials_file: Path,
    region: str | None = None,
) -> str | None:
    """Save a refresh token the token endpoint rotated back where the old one was read.

    Returns why it could not be saved (a token from the environment, or handed over in
    code), for the caller to say once; None once saved.
    """
    source = credentials.refresh_token_source
    if source == "parameter" and parameter:
        write_parameter(parameter, replace(credentials, refresh_token=refresh_token), region=region)
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
