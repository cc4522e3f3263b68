"""Settings: one place that reads the environment; everything else receives values.

Reading the settings never reads a secret: the Spotify credentials are loaded by the code
that calls Spotify (``etl_lib.extract.credentials.loaded``), so a query, a catalog or a report
runs with a credentials file or SSM parameter it cannot read.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from etl_lib.errors import ConfigError

DEFAULT_LAKE = "./data/lake"
DEFAULT_API_BASE_URL = "https://api.spotify.com/v1"
DEFAULT_TOKEN_URL = "https://accounts.spotify.com/api/token"
DEFAULT_AUTHORIZE_URL = "https://accounts.spotify.com/authorize"
DEFAULT_ARCHIVE_BASE_URL = (
    "https://raw.githubusercontent.com/mackorone/spotify-playlist-archive/main"
)
# The archive's history: GitHub's REST API lists the commits of a playlist's file, and the raw
# content host serves the file as it was at each commit.
DEFAULT_ARCHIVE_API_URL = "https://api.github.com"
DEFAULT_ARCHIVE_RAW_URL = "https://raw.githubusercontent.com"
DEFAULT_ARCHIVE_REPO = "mackorone/spotify-playlist-archive"
# GitHub's owner and repository names: letters, digits, "-", "_" and "." (no "." or ".." alone).
_GITHUB_REPO = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})/(?!\.\.?$)[A-Za-z0-9._-]{1,100}")
DEFAULT_REDIRECT_URI = "http://127.0.0.1:8888/callback"
DEFAULT_SCOPE = "playlist-read-private playlist-read-collaborative"
# "Top Songs - Global": the chart this product was built for.
DEFAULT_PLAYLISTS = ("37i9dQZEVXbNG2KDcFcKOF",)
AUTH_MODES = ("auto", "client-credentials", "user")
# The built-in sources' names (argparse choices, the stack's allowed values); tests check them
# against etl_lib.extract.sources, the registry, which refuses an unknown name when extract
# looks it up (a source registered there is not known down here, so Settings takes any name).
SOURCES = ("api", "archive")
# Where SQL runs: DuckDB embedded over the lake's files, or Athena over the Glue catalog.
ENGINES = ("duckdb", "athena")

DEFAULT_CREDENTIALS_FILE = Path("~/.config/spotify-etl/credentials.json")
CREDENTIAL_FIELDS = ("client_id", "client_secret", "refresh_token", "scope", "user_id")

# Spotify's ids are 22 base62 characters; shorter ones stay allowed for tests and other
# sources. ASCII only: a Unicode digit or letter would end up in folder names.
SPOTIFY_ID = re.compile(r"[A-Za-z0-9]{1,64}")
_SPOTIFY_WEB_HOST = "open.spotify.com"
# /playlist/<id>, /intl-de/playlist/<id>, /embed/playlist/<id>, an optional trailing slash.
_PLAYLIST_PATH = re.compile(
    r"/(?:intl-[A-Za-z]{2,3}(?:[-_][A-Za-z]{2,4})?/|embed/)?playlist/([^/]*)/?"
)
_PLAYLIST_URI = re.compile(r"spotify:(?:user:[^:]+:)?playlist:([^:]*)", re.IGNORECASE)


def playlist_id(value: str) -> str:
    """The playlist id in ``value``: a bare id, an ``https://open.spotify.com/playlist/<id>``
    link as the share button copies it (``?si=...``, ``/intl-xx/`` and all), or a
    ``spotify:playlist:<id>`` URI. Anything else is a ConfigError naming the value."""
    # Not stripped: a stray newline or space is a sign of a value cut from something else.
    text = value if isinstance(value, str) else ""
    found = text if SPOTIFY_ID.fullmatch(text) else _id_in_link(text)
    if found is None or not SPOTIFY_ID.fullmatch(found):
        shown = repr(value) if len(repr(value)) <= 90 else repr(value)[:80] + "..."
        raise ConfigError(
            f"playlist {shown} is not a Spotify ID, playlist link or URI: give the 22-character "
            "id, https://open.spotify.com/playlist/<id> or spotify:playlist:<id>"
        )
    return found


def _id_in_link(text: str) -> str | None:
    uri = _PLAYLIST_URI.fullmatch(text)
    if uri:
        return uri[1]
    if not text.lower().startswith(("https://", "http://", _SPOTIFY_WEB_HOST + "/")):
        return None
    try:
        parts = urlsplit(text if "://" in text else "https://" + text)
        port = parts.port
    except ValueError:  # a port that is not a number, brackets that do not close
        return None
    # hostname, not netloc: "open.spotify.com@elsewhere" has a user part and another host.
    if parts.hostname != _SPOTIFY_WEB_HOST or parts.username is not None or port is not None:
        return None
    path = _PLAYLIST_PATH.fullmatch(parts.path)
    return path[1] if path else None


def playlist_ids(text: str) -> tuple[str, ...]:
    """Comma-separated playlists (ids, links or URIs), as ids; blanks between commas ignored."""
    return tuple(playlist_id(part.strip()) for part in text.split(",") if part.strip())


@dataclass(frozen=True)
class Credentials:
    """Spotify app credentials and a user's refresh token, as values: reading and storing them
    is ``etl_lib.extract.credentials``. The secrets stay out of ``repr``."""

    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    refresh_token: str | None = field(default=None, repr=False)
    scope: str | None = None
    user_id: str | None = None
    # Where these came from, for `auth status`.
    origin: str = "none"
    # Where the refresh token was read ("parameter", "environment" or "file"), which is where
    # a rotated one goes back; None when it was handed over in code.
    refresh_token_source: str | None = None

    def as_secret_document(self) -> dict[str, str]:
        return {name: getattr(self, name) for name in CREDENTIAL_FIELDS if getattr(self, name)}


@dataclass(frozen=True)
class Settings:
    lake: str = DEFAULT_LAKE
    playlists: tuple[str, ...] = DEFAULT_PLAYLISTS
    source: str = "api"
    api_base_url: str = DEFAULT_API_BASE_URL
    token_url: str = DEFAULT_TOKEN_URL
    authorize_url: str = DEFAULT_AUTHORIZE_URL
    archive_base_url: str = DEFAULT_ARCHIVE_BASE_URL
    archive_api_url: str = DEFAULT_ARCHIVE_API_URL
    archive_raw_url: str = DEFAULT_ARCHIVE_RAW_URL
    archive_repo: str = DEFAULT_ARCHIVE_REPO
    # Optional: raises GitHub's API rate limit from 60 requests an hour to 5,000.
    archive_token: str | None = field(default=None, repr=False)
    # auto: a user refresh token when one is stored, else client credentials.
    auth_mode: str = "auto"
    # None until the code that calls Spotify loads them (``credentials.loaded``) from the
    # SSM parameter, or from the environment's values (below) over the credentials file.
    credentials: Credentials | None = None
    environment_credentials: Credentials = field(default_factory=Credentials)
    credentials_file: Path = DEFAULT_CREDENTIALS_FILE
    # The name of the SSM Parameter Store SecureString holding the credentials as JSON.
    credentials_parameter: str | None = None
    # AWS: unset values fall back to what boto3 itself reads (AWS_REGION, AWS_PROFILE,
    # AWS_ENDPOINT_URL, the credential variables and files).
    aws_region: str | None = None
    aws_profile: str | None = None
    glue_database: str = "spotify_charts"
    athena_workgroup: str = "primary"
    # Where Athena writes query results; default: <lake>/athena-results/ for an s3:// lake.
    athena_output_location: str | None = None
    redirect_uri: str = DEFAULT_REDIRECT_URI
    scope: str = DEFAULT_SCOPE
    connect_timeout_seconds: float = 5.0
    read_timeout_seconds: float = 20.0
    # The whole of one HTTP request (connect, send, status line, headers, body): requests
    # bounds each socket read only, so a server trickling bytes could hold a reply open forever.
    request_deadline_seconds: float = 60.0
    max_retries: int = 3
    # Waiting on Retry-After beyond this, per run, stops the run instead (a Lambda has 15 min).
    rate_limit_budget_seconds: float = 120.0
    # The report function's engine: Athena in AWS; DuckDB reads the same S3 lake where Athena
    # is not available (tests on moto).
    report_engine: str = "athena"
    # The queue the transform asks for reports on after a batch; unset: no report requests.
    report_queue_url: str | None = None
    # A playlist's newest raw file captured longer ago than this is history (a backfill): its
    # load asks for no report, so a backfill of thousands of files starts no report storm.
    report_fresh_hours: float = 48.0

    def __post_init__(self) -> None:
        if self.auth_mode not in AUTH_MODES:
            raise ConfigError(f"auth mode {self.auth_mode!r} is not one of {', '.join(AUTH_MODES)}")
        if self.report_engine not in ENGINES:
            raise ConfigError(
                f"report engine {self.report_engine!r} is not one of {', '.join(ENGINES)}: "
                "set SPOTIFY_ETL_REPORT_ENGINE to one"
            )
        check_http_url("SPOTIFY_ARCHIVE_API_URL", self.archive_api_url, DEFAULT_ARCHIVE_API_URL)
        check_http_url("SPOTIFY_ARCHIVE_RAW_URL", self.archive_raw_url, DEFAULT_ARCHIVE_RAW_URL)
        if not isinstance(self.archive_repo, str) or not _GITHUB_REPO.fullmatch(self.archive_repo):
            raise ConfigError(
                f"SPOTIFY_ARCHIVE_REPO={self.archive_repo!r} is not a GitHub repository: set it "
                f"to owner/name, such as {DEFAULT_ARCHIVE_REPO}"
            )

    @property
    def athena_results(self) -> str | None:
        if self.athena_output_location:
            return self.athena_output_location
        if self.lake.startswith("s3://"):
            return self.lake.rstrip("/") + "/athena-results/"
        return None

    def s3_lake(self) -> str:
        """The lake root, which the Lambda functions need on S3."""
        if not self.lake.startswith("s3://"):
            raise ConfigError(
                f"the lake {self.lake!r} is not on S3: set SPOTIFY_ETL_LAKE to "
                "s3://<bucket>/<prefix>"
            )
        return self.lake

    @property
    def uses_user_token(self) -> bool:
        if self.auth_mode == "auto":
            if self.credentials is None:  # a bug of ours: "auto" depends on what is stored
                raise RuntimeError("the credentials are not loaded: use credentials.loaded()")
            return bool(self.credentials.refresh_token)
        return self.auth_mode == "user"

    @classmethod
    def from_env(cls, environ: dict[str, str] | None = None, **overrides) -> Settings:
        """The settings the environment gives (``overrides`` win where not None); the
        credentials are left for the code that calls Spotify to load."""
        env = os.environ if environ is None else environ
        playlists = playlist_ids(env.get("SPOTIFY_ETL_PLAYLISTS", ""))
        credentials_file = Path(env.get("SPOTIFY_ETL_CREDENTIALS_FILE") or DEFAULT_CREDENTIALS_FILE)
        credentials_parameter = env.get("SPOTIFY_ETL_CREDENTIALS_PARAMETER") or None
        region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None
        values = {
            "lake": default_lake(env),
            "playlists": playlists or DEFAULT_PLAYLISTS,
            "source": env.get("SPOTIFY_ETL_SOURCE") or "api",
            "api_base_url": env.get("SPOTIFY_API_BASE_URL") or DEFAULT_API_BASE_URL,
            "token_url": env.get("SPOTIFY_TOKEN_URL") or DEFAULT_TOKEN_URL,
            "authorize_url": env.get("SPOTIFY_AUTHORIZE_URL") or DEFAULT_AUTHORIZE_URL,
            "archive_base_url": env.get("SPOTIFY_ARCHIVE_BASE_URL") or DEFAULT_ARCHIVE_BASE_URL,
            "archive_api_url": env.get("SPOTIFY_ARCHIVE_API_URL") or DEFAULT_ARCHIVE_API_URL,
            "archive_raw_url": env.get("SPOTIFY_ARCHIVE_RAW_URL") or DEFAULT_ARCHIVE_RAW_URL,
            "archive_repo": env.get("SPOTIFY_ARCHIVE_REPO") or DEFAULT_ARCHIVE_REPO,
            "archive_token": env.get("SPOTIFY_ARCHIVE_TOKEN") or None,
            "auth_mode": env.get("SPOTIFY_ETL_AUTH_MODE") or "auto",
            "environment_credentials": _environment_credentials(env),
            "credentials_file": credentials_file,
            "credentials_parameter": credentials_parameter,
            "aws_region": region,
            "aws_profile": env.get("AWS_PROFILE") or None,
            "glue_database": env.get("SPOTIFY_ETL_GLUE_DATABASE") or "spotify_charts",
            "athena_workgroup": env.get("SPOTIFY_ETL_ATHENA_WORKGROUP") or "primary",
            "athena_output_location": env.get("SPOTIFY_ETL_ATHENA_OUTPUT") or None,
            "redirect_uri": env.get("SPOTIFY_REDIRECT_URI") or DEFAULT_REDIRECT_URI,
            # 0 is a real choice: never wait on Retry-After.
            "rate_limit_budget_seconds": _positive(
                env, "SPOTIFY_ETL_RATE_LIMIT_BUDGET", 120.0, allow_zero=True
            ),
            "request_deadline_seconds": _positive(env, "SPOTIFY_ETL_HTTP_DEADLINE", 60.0),
            "report_engine": env.get("SPOTIFY_ETL_REPORT_ENGINE") or "athena",
            "report_queue_url": env.get("SPOTIFY_ETL_REPORT_QUEUE_URL") or None,
            "report_fresh_hours": _positive(
                env, "SPOTIFY_ETL_REPORT_FRESH_HOURS", 48.0, unit="hours"
            ),
        }
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def check_http_url(name: str, value: str, default: str) -> str:
    """``value`` when it is an http(s) URL with a host and nothing after its path (no query,
    fragment or user part); else a ConfigError naming the setting ``name``."""
    try:
        parts = urlsplit(value) if isinstance(value, str) else None
        port_ok = parts is not None and (parts.port is None or parts.port > 0)
    except ValueError:  # a port that is not a number, brackets that do not close
        parts, port_ok = None, False
    if (
        parts is None
        or not port_ok
        or parts.scheme.lower() not in ("http", "https")
        or not parts.hostname
        or parts.username is not None
        or parts.query
        or parts.fragment
        or any(char.isspace() for char in value)
    ):
        shown = repr(value) if len(repr(value)) <= 90 else repr(value)[:80] + "..."
        raise ConfigError(
            f"{name}={shown} is not an http:// or https:// URL: set it to one such as "
            f"{default} (no query, fragment or credentials in it), or unset it"
        )
    return value


def default_lake(environ: dict[str, str] | None = None) -> str:
    """The lake root: SPOTIFY_ETL_LAKE, else ``DEFAULT_LAKE``."""
    env = os.environ if environ is None else environ
    return env.get("SPOTIFY_ETL_LAKE") or DEFAULT_LAKE


def _environment_credentials(env) -> Credentials:
    """What the environment gives of the credentials (SPOTIPY_*: spotipy's own names)."""
    values = {
        "client_id": env.get("SPOTIFY_CLIENT_ID") or env.get("SPOTIPY_CLIENT_ID"),
        "client_secret": env.get("SPOTIFY_CLIENT_SECRET") or env.get("SPOTIPY_CLIENT_SECRET"),
        "refresh_token": env.get("SPOTIFY_REFRESH_TOKEN"),
    }
    source = "environment" if values["refresh_token"] else None
    return Credentials(**values, origin="environment", refresh_token_source=source)


DEFAULT_SNAPSHOT_RETENTION_DAYS = 7.0


@dataclass(frozen=True)
class TableSettings:
    """Where the lake's Iceberg tables are cataloged (``etl_lib.transform.iceberg``), and how long
    replaced data stays readable."""

    # Any pyiceberg SQL catalog URI (postgresql+psycopg://..., sqlite:///...) or a REST
    # catalog (http(s)://...); unset: SQLite inside a local lake, Glue for an s3:// lake.
    catalog_uri: str | None = None
    # The Glue database (or the namespace in a catalog given by URI).
    namespace: str = "spotify_charts"
    aws_region: str | None = None
    aws_profile: str | None = None
    # Compaction expires table snapshots older than this and deletes the files only they held.
    snapshot_retention_days: float = DEFAULT_SNAPSHOT_RETENTION_DAYS


def table_settings(environ: dict[str, str] | None = None) -> TableSettings:
    """The table settings from the environment (no credentials are read)."""
    env = os.environ if environ is None else environ
    return TableSettings(
        catalog_uri=env.get("SPOTIFY_ETL_CATALOG_URI") or None,
        namespace=env.get("SPOTIFY_ETL_GLUE_DATABASE") or "spotify_charts",
        aws_region=env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION") or None,
        aws_profile=env.get("AWS_PROFILE") or None,
        snapshot_retention_days=_positive(
            env,
            "SPOTIFY_ETL_SNAPSHOT_RETENTION_DAYS",
            DEFAULT_SNAPSHOT_RETENTION_DAYS,
            allow_zero=True,
            unit="days",
        ),
    )


# Every S3 request is bounded by these together; see s3_storage_options.
S3_CONNECT_TIMEOUT_SECONDS = 5.0
S3_READ_TIMEOUT_SECONDS = 20.0
S3_MAX_ATTEMPTS = 3
# s3fs retries some errors again around each botocore call (5 attempts by default), which
# multiplies the worst case; one s3fs attempt leaves botocore's as the only retry policy.
S3FS_ATTEMPTS = 1
# botocore's standard mode waits rand(0, 1) * min(2 ** (attempt - 1), 20) s before a retry;
# s3fs sleeps min(1.7 ** attempt * 0.1, 15) s after each failed attempt, the last one too.
_BOTOCORE_MAX_BACKOFF_SECONDS = 20


def s3_storage_options(environ: dict[str, str] | None = None) -> dict:
    """fsspec/s3fs options for an s3:// lake.

    Honours AWS_ENDPOINT_URL(_S3), AWS_REGION/AWS_DEFAULT_REGION and AWS_PROFILE as boto3
    does; credentials are left to botocore's usual chain. SPOTIFY_ETL_S3_ENDPOINT_URL points
    only the lake at an S3-compatible store.

    Each S3 request is bounded: a connect timeout (SPOTIFY_ETL_S3_CONNECT_TIMEOUT, default
    5 s), a read timeout (SPOTIFY_ETL_S3_READ_TIMEOUT, default 20 s, the longest silence
    while waiting for an answer) and botocore's attempts (SPOTIFY_ETL_S3_MAX_ATTEMPTS,
    default 3, standard retry mode), with s3fs's own retries reduced to one attempt
    (``S3FS_ATTEMPTS``). Each attempt, from connecting to the answer's last byte, is also cut
    at connect + read timeout (``etl_lib.lake`` adds that to the HTTP session), so an endpoint
    that trickles its answer fails like one that never answers: a request after at most
    attempts x (connect + read) + the backoffs between attempts (under 1 + 2 + ... s):
    3 x (5 + 20) + 3 + 0.1 = 78.1 s with the defaults (``s3_request_worst_case_seconds``).
    A storage operation of a few requests (an existence check, a footer read) has that as
    its overall deadline too; a listing takes one bounded request per 1,000 keys. The command
    stops at the first request that fails, with one line naming the key.
    """
    env = os.environ if environ is None else environ
    client_kwargs = {}
    # Resolved here rather than left to botocore so that fsspec's filesystem cache, keyed on
    # these options, never hands out a client bound to another endpoint or region.
    endpoint = (
        env.get("SPOTIFY_ETL_S3_ENDPOINT_URL")
        or env.get("AWS_ENDPOINT_URL_S3")
        or env.get("AWS_ENDPOINT_URL")
    )
    if endpoint:
        client_kwargs["endpoint_url"] = endpoint
    region = env.get("AWS_REGION") or env.get("AWS_DEFAULT_REGION")
    if region:
        client_kwargs["region_name"] = region
    options: dict = {
        "config_kwargs": {
            "connect_timeout": _positive(
                env, "SPOTIFY_ETL_S3_CONNECT_TIMEOUT", S3_CONNECT_TIMEOUT_SECONDS
            ),
            "read_timeout": _positive(env, "SPOTIFY_ETL_S3_READ_TIMEOUT", S3_READ_TIMEOUT_SECONDS),
            # botocore's "max_attempts" counts retries after the first attempt (3 would make 4
            # attempts); "total_max_attempts" counts every attempt.
            "retries": {
                "total_max_attempts": int(
                    _positive(env, "SPOTIFY_ETL_S3_MAX_ATTEMPTS", S3_MAX_ATTEMPTS, integer=True)
                ),
                "mode": "standard",
            },
        },
    }
    if client_kwargs:
        options["client_kwargs"] = client_kwargs
    if env.get("AWS_PROFILE"):
        options["profile"] = env["AWS_PROFILE"]
    return options


def s3_request_worst_case_seconds(options: dict) -> float:
    """The longest one S3 request can take under ``s3_storage_options``: every attempt
    connecting just within the connect timeout, then waiting out the read timeout."""
    config = options["config_kwargs"]
    attempts = config["retries"]["total_max_attempts"]
    backoffs = sum(min(2**retry, _BOTOCORE_MAX_BACKOFF_SECONDS) for retry in range(attempts - 1))
    per_call = attempts * (config["connect_timeout"] + config["read_timeout"]) + backoffs
    s3fs_sleeps = sum(min(1.7**attempt * 0.1, 15) for attempt in range(S3FS_ATTEMPTS))
    return S3FS_ATTEMPTS * per_call + s3fs_sleeps


def _positive(
    env,
    name: str,
    default: float,
    *,
    integer: bool = False,
    allow_zero: bool = False,
    unit: str = "seconds",
) -> float:
    """A finite number from the environment, above 0 (or from 0 with ``allow_zero``): nan or
    inf would turn every bound made from it into no bound at all."""
    text = env.get(name)
    if not text:
        return default
    kind = "a whole number" if integer else f"a number of {unit}"
    least = "0 or more" if allow_zero else "above 0"
    try:
        value = int(text) if integer else float(text)
    except ValueError as exc:
        raise ConfigError(f"{name}={text!r} is not {kind}: set it to {kind} {least}") from exc
    if not (0 <= value if allow_zero else 0 < value) or value == float("inf"):
        raise ConfigError(f"{name}={text!r} is not {kind} {least}: set it to one")
    return value
