"""A local stand-in for the public playlist archive and its history on GitHub.

On one origin on 127.0.0.1 it serves what GitHub serves of the archive:

* ``GET /playlists/pretty/<playlist_id>.json`` (the raw host's URL of the newest file): the
  archive's JSON file as of now, rendered from the ``ChartSimulator`` chart of the simulated
  clock's UTC day.
* ``GET /repos/{owner}/{repo}/commits?path=playlists/pretty/<id>.json`` (GitHub's REST API,
  ``api.github.com``): the commits that touched the file, newest first, filtered by ``since``
  and ``until`` (inclusive), paged by ``per_page`` (default 30, capped at 100) and ``page``
  with GitHub's absolute ``Link`` header, and GitHub's rate-limit headers; 403 with GitHub's
  body once the budget is spent, 422 for a ``since``/``until`` that is not ISO 8601, 404 for
  another repository.
* ``GET /{owner}/{repo}/{sha}/<path>`` (GitHub's raw host, ``raw.githubusercontent.com``,
  not rate limited): the file at that commit.

The history is simulated: the archive has committed every playlist's file once a day for the
``history_days`` days up to the clock's day (``history()`` changes that), at about 11:30 UTC with
some minutes of deterministic jitter, and on about one day in five a second, earlier commit
that the daily one replaces (the previous day's ranking, or the same ranking with the previous
day's follower count). The last commit of a day holds ``archive_document`` of that day;
commits after the clock do not exist yet. Shas are sha1 digests of the repository and commit
time, so one commit updates every playlist, as in the real archive.

Test hooks: ``serve_versions`` replaces a path's history with given files (real archived
versions, say), ``corrupt_version`` serves one version cut short (not valid JSON),
``rate_limit``/``reset_rate_limit`` set and refill the API budget (requests with a token in
``Authorization`` may get their own, larger budget), and ``fail_next`` scripts failures of any
request. Unknown files get the plain-text 404 GitHub's raw host sends; ``requests`` records
every request target in order.

``python -m etl_lib.local_spotify.archive_server`` runs it in the foreground and prints its
URLs (``--help`` for the history length, the repository name and the rate limit).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import sys
import threading
import traceback
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from http import HTTPStatus
from typing import Any, NamedTuple
from urllib.parse import parse_qsl, unquote, urlencode, urlsplit

from etl_lib.local_spotify.loopback import (
    LoopbackHandler,
    LoopbackServer,
    command_line,
    serve_in_foreground,
    utc_moment,
)
from etl_lib.local_spotify.simulator import OPEN_SPOTIFY_URL, ChartSimulator, utc_day

DEFAULT_ARCHIVE_REPO = "mackorone/spotify-playlist-archive"
DEFAULT_HISTORY_DAYS = 30
# GitHub's budget for authenticated requests; unauthenticated ones get 60 an hour.
DEFAULT_RATE_LIMIT = 5000
RATE_LIMIT_WINDOW = timedelta(hours=1)
DEFAULT_PER_PAGE = 30
MAX_PER_PAGE = 100
DAILY_COMMIT_TIME = time(11, 30)
DAILY_COMMIT_JITTER_SECONDS = 15 * 60
# About one day in five has a second commit, earlier than the daily one.
EXTRA_COMMIT_ONE_DAY_IN = 5
COMMIT_AUTHOR = {
    "name": "github-actions[bot]",
    "email": "41898282+github-actions[bot]@users.noreply.github.com",
}
COMMIT_MESSAGE = "Update playlists"

_PRETTY_JSON_PATH = re.compile(r"^/playlists/pretty/(?P<id>[^/]+)\.json$")
_PLAYLIST_FILE = re.compile(r"^playlists/pretty/(?P<id>[^/]+)\.json$")
_COMMITS_PATH = re.compile(r"^/repos/(?P<owner>[^/]+)/(?P<repo>[^/]+)/commits/?$")
_RAW_PATH = re.compile(r"^/(?P<owner>[^/]+)/(?P<repo>[^/]+)/(?P<ref>[^/]+)/(?P<path>.+)$")
_DOCS_URL = "https://docs.github.com/rest/commits/commits#list-commits"
_RATE_LIMIT_DOCS_URL = "https://docs.github.com/rest/overview/rate-limits-for-the-rest-api"


class _Response(NamedTuple):
    status: int
    body: bytes
    content_type: str
    headers: tuple[tuple[str, str], ...] = ()


def _text_response(status: int) -> _Response:
    # GitHub's raw host answers errors with a short plain-text body such as "404: Not Found".
    body = f"{status}: {HTTPStatus(status).phrase}".encode()
    return _Response(status, body, "text/plain; charset=utf-8")


def _json_response(status: int, payload: Any, headers: tuple[tuple[str, str], ...]) -> _Response:
    body = json.dumps(payload, ensure_ascii=False).encode("utf-8")
    return _Response(status, body, "application/json; charset=utf-8", headers)


def _api_error(status: int, message: str, headers: tuple[tuple[str, str], ...]) -> _Response:
    # GitHub's error shape: a message, where to read more, and (since 2024) the status.
    payload = {"message": message, "documentation_url": _DOCS_URL, "status": str(status)}
    return _json_response(status, payload, headers)


def _archive_added_at(api_added_at: str | None) -> str | None:
    # The archive stores str(datetime) of Spotify's UTC time: "2026-10-01 00:00:00".
    if not api_added_at:
        return None
    return api_added_at.replace("T", " ").removesuffix("Z")


def _link(obj: dict[str, Any]) -> dict[str, Any]:
    return {"name": obj["name"], "url": obj["external_urls"]["spotify"]}


def archive_document(simulator: ChartSimulator, playlist_id: str, day: datetime) -> dict:
    """The archive's ``playlists/pretty/<id>.json`` for the simulated chart of ``day``."""
    playlist = simulator.playlist(playlist_id, day)
    tracks = []
    for entry in simulator.chart(playlist_id, day):
        item = entry["item"]
        tracks.append(
            {
                "added_at": _archive_added_at(entry.get("added_at")),
                "album": _link(item["album"]),
                "artists": [_link(artist) for artist in item["artists"]],
                "duration_ms": item["duration_ms"],
                "name": item["name"],
                "url": item["external_urls"]["spotify"],
            }
        )
    return {
        "description": playlist["description"],
        "num_followers": playlist["followers"]["total"],
        "original_name": playlist["name"],
        "owner": {
            "name": playlist["owner"]["display_name"],
            "url": f"{OPEN_SPOTIFY_URL}/user/{playlist['owner']['id']}",
        },
        "snapshot_id": playlist["snapshot_id"],
        "tracks": tracks,
        "unique_name": playlist["name"],
        "url": playlist["external_urls"]["spotify"],
    }


def render_document(document: dict) -> bytes:
    """The bytes of an archive file: pretty-printed with sorted keys, as the archive commits it."""
    return json.dumps(document, ensure_ascii=False, indent=2, sort_keys=True).encode("utf-8")


def playlist_file_path(playlist_id: str) -> str:
    """The archive's path of a playlist's JSON file, as the commits listing's ``path`` takes it."""
    return f"playlists/pretty/{playlist_id}.json"


# -- the simulated history (pure) ---------------------------------------------------------


def _day_digest(*parts: object) -> int:
    text = "\x1f".join(str(part) for part in parts)
    return int.from_bytes(hashlib.blake2b(text.encode(), digest_size=8).digest(), "big")


def commit_times(day: date) -> list[datetime]:
    """When the simulated archive committed on ``day`` (UTC), oldest first: one or two times.

    The daily commit lands around ``DAILY_COMMIT_TIME`` with up to a quarter of an hour of
    jitter; on about one day in ``EXTRA_COMMIT_ONE_DAY_IN`` an earlier commit precedes it.
    """
    midnight = datetime.combine(day, time(0), tzinfo=UTC)
    daily_at = datetime.combine(day, DAILY_COMMIT_TIME, tzinfo=UTC)
    daily = daily_at + timedelta(seconds=_day_digest("daily", day) % DAILY_COMMIT_JITTER_SECONDS)
    if _day_digest("extra", day) % EXTRA_COMMIT_ONE_DAY_IN:
        return [daily]
    window = int((daily_at - midnight).total_seconds())
    extra = midnight + timedelta(seconds=_day_digest("extra-at", day) % window)
    return [extra, daily]


def commit_sha(repo: str, committed_at: datetime, path: str | None = None) -> str:
    """A deterministic 40-hex sha: of the repository and time, and ``path`` for served files."""
    parts = [repo.lower(), _github_time(committed_at)]
    if path is not None:
        parts.append(path)
    return hashlib.sha1("\x1f".join(parts).encode(), usedforsecurity=False).hexdigest()


def simulated_version(simulator: ChartSimulator, playlist_id: str, committed_at: datetime) -> bytes:
    """The file a simulated commit holds: the day's document, or an earlier commit's variant."""
    day = datetime.combine(utc_day(committed_at), time(0), tzinfo=UTC)
    times = commit_times(day.date())
    document = archive_document(simulator, playlist_id, day)
    if committed_at == times[-1]:
        return render_document(document)
    yesterday = archive_document(simulator, playlist_id, day - timedelta(days=1))
    if _day_digest("variant", day.date()) % 2:
        # Spotify had not updated the chart yet: yesterday's ranking, today's follower count.
        variant = {**yesterday, "num_followers": document["num_followers"]}
    else:
        # The ranking is today's, the follower count not yet.
        variant = {**document, "num_followers": yesterday["num_followers"]}
    return render_document(variant)


def _github_time(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _positive_int(value: str | None, default: int) -> int:
    # GitHub ignores a per_page or page it cannot use rather than refusing the request.
    try:
        number = int(value) if value is not None else default
    except ValueError:
        return default
    return number if number >= 1 else default


@dataclass(frozen=True)
class ArchiveCommit:
    """One commit of a file's history; ``content`` is None for simulated (computed) files."""

    sha: str
    committed_at: datetime
    content: bytes | None = None


def link_header(url: str, page: int, last_page: int) -> str | None:
    """GitHub's ``Link`` header for ``page`` of ``last_page`` pages of the listing at ``url``.

    Relations come in GitHub's order (prev, next, last, first); a single page has none.
    """
    if last_page <= 1 and page <= 1:
        return None
    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)

    def at(number: int) -> str:
        paged = [(k, v) for k, v in query if k != "page"] + [("page", str(number))]
        return parts._replace(query=urlencode(paged)).geturl()

    links = []
    if page > 1:
        links.append((page - 1, "prev"))
    if page < last_page:
        links += [(page + 1, "next"), (last_page, "last")]
    if page > 1:
        links.append((1, "first"))
    return ", ".join(f'<{at(number)}>; rel="{rel}"' for number, rel in links)


class LocalArchiveServer(LoopbackServer):
    """The playlist archive and its GitHub history on ``127.0.0.1``, from a ``ChartSimulator``.

    Use as a context manager, or ``start()``/``stop()``; ``base_url`` exists once started and
    is what ``archive.fetch_archive_envelope`` takes, and also GitHub's API and raw content
    URL for ``repo``. ``port=0`` takes a free port.
    """

    _name = "local archive server"
    _thread_prefix = "local-archive"

    def __init__(
        self,
        simulator: ChartSimulator | None = None,
        *,
        now: datetime | None = None,
        port: int = 0,
        repo: str = DEFAULT_ARCHIVE_REPO,
        history_days: int = DEFAULT_HISTORY_DAYS,
    ) -> None:
        super().__init__(_Handler, now=now, port=port)
        if repo.count("/") != 1 or not all(repo.split("/")):
            raise ValueError(f"repo must be owner/name, got {repo!r}")
        self.simulator = simulator if simulator is not None else ChartSimulator()
        self.repo = repo
        self.requests: list[str] = []  # request targets, in arrival order
        self.api_tokens: list[str | None] = []  # the token of each API request, or None
        self._lock = threading.Lock()
        self._faults: list[list[int]] = []  # [status, remaining]
        self._history_start = utc_day(self._clock)  # set by history() below
        self.history(history_days)
        self._served: dict[str, list[ArchiveCommit]] = {}  # path -> oldest first
        self._corrupt: set[tuple[str, str]] = set()  # (sha, path)
        self._rate_limit = DEFAULT_RATE_LIMIT
        self._authenticated_limit: int | None = None
        self._rate_reset_at = self._clock + RATE_LIMIT_WINDOW
        self._rate_used: dict[str | None, int] = {}  # token (None: anonymous) -> used

    @property
    def base_url(self) -> str:
        return self.origin

    # test hooks ---------------------------------------------------------------------------

    def fail_next(self, status: int, times: int = 1) -> None:
        """Answer the next ``times`` requests with ``status`` and GitHub's plain-text body."""
        if not 400 <= status <= 599:
            raise ValueError(f"not an HTTP error status: {status}")
        if times < 1:
            raise ValueError(f"times must be at least 1, got {times}")
        with self._lock:
            self._faults.append([status, times])

    def history(self, days: int) -> None:
        """The simulated archive has committed daily for ``days`` days up to the clock's day.

        The first day stays put when the clock moves: later days bring new commits.
        """
        if days < 1:
            raise ValueError(f"history days must be at least 1, got {days}")
        with self._lock:
            self._history_start = utc_day(self._clock) - timedelta(days=days - 1)

    def serve_versions(
        self,
        playlist_id: str,
        versions: list[tuple[datetime, bytes]],
        *,
        path: str | None = None,
    ) -> list[str]:
        """Serve ``versions`` (commit time, file bytes) as the whole history of the playlist's file.

        ``path`` defaults to ``playlists/pretty/<id>.json``. Returns the versions' shas, in
        the order given.
        """
        path = path if path is not None else playlist_file_path(playlist_id)
        commits = []
        for committed_at, content in versions:
            if committed_at.tzinfo is None:
                raise ValueError(f"commit time {committed_at!r} is naive; pass an aware datetime")
            committed_at = committed_at.astimezone(UTC).replace(microsecond=0)
            sha = commit_sha(self.repo, committed_at, path)
            commits.append(ArchiveCommit(sha, committed_at, bytes(content)))
        shas = [commit.sha for commit in commits]
        if len(set(shas)) != len(shas):
            raise ValueError(f"two versions of {path} share a commit time (to the second)")
        with self._lock:
            self._served[path] = sorted(commits, key=lambda commit: commit.committed_at)
        return shas

    def corrupt_version(
        self, playlist_id: str, commit: datetime | str, *, path: str | None = None
    ) -> str:
        """Serve the file at one commit (its time or sha) cut in half: not valid JSON.

        Returns the commit's sha.
        """
        path = path if path is not None else playlist_file_path(playlist_id)
        if isinstance(commit, datetime) and commit.tzinfo is None:
            raise ValueError(f"commit time {commit!r} is naive; pass an aware datetime")
        for candidate in self._commits(path):
            if isinstance(commit, str):
                if candidate.sha != commit:
                    continue
            elif candidate.committed_at != commit.astimezone(UTC).replace(microsecond=0):
                continue
            with self._lock:
                self._corrupt.add((candidate.sha, path))
            return candidate.sha
        raise ValueError(f"no commit {commit!r} touched {path}; list them with commits(path)")

    def rate_limit(
        self, limit: int, reset_at: datetime, *, authenticated_limit: int | None = None
    ) -> None:
        """Give the API ``limit`` requests until ``reset_at`` (then a fresh hour), from now on.

        With ``authenticated_limit``, each token in ``Authorization`` has a budget of its own
        of that size, as GitHub gives signed-in users more than anonymous callers.
        """
        if limit < 0 or (authenticated_limit is not None and authenticated_limit < 0):
            raise ValueError(f"a rate limit is a count of requests, got {limit}")
        if reset_at.tzinfo is None:
            raise ValueError(f"reset_at {reset_at!r} is naive; pass an aware datetime")
        with self._lock:
            self._rate_limit = limit
            self._authenticated_limit = authenticated_limit
            self._rate_reset_at = reset_at.astimezone(UTC)
            self._rate_used.clear()

    def reset_rate_limit(self) -> None:
        """Refill every API budget, as the reset time passing does."""
        with self._lock:
            self._rate_used.clear()

    def commits(self, path: str) -> list[ArchiveCommit]:
        """Every commit that touched ``path`` up to the clock, oldest first."""
        return self._commits(path)

    # history ------------------------------------------------------------------------------

    def _commits(self, path: str) -> list[ArchiveCommit]:
        with self._lock:
            served = self._served.get(path)
            start, clock = self._history_start, self._clock
        if served is not None:
            return list(served)
        match = _PLAYLIST_FILE.match(path)
        if match is None or not self.simulator.has_playlist(match["id"]):
            return []
        commits = []
        day = start
        while day <= utc_day(clock):
            for committed_at in commit_times(day):
                if committed_at <= clock:
                    commits.append(ArchiveCommit(commit_sha(self.repo, committed_at), committed_at))
            day += timedelta(days=1)
        return commits

    def _file_at(self, sha: str, path: str) -> bytes | None:
        commit = next((c for c in self._commits(path) if c.sha == sha), None)
        if commit is None:
            return None
        if commit.content is not None:
            content = commit.content
        else:
            playlist_id = _PLAYLIST_FILE.match(path)["id"]
            content = simulated_version(self.simulator, playlist_id, commit.committed_at)
        with self._lock:
            corrupt = (sha, path) in self._corrupt
        return content[: len(content) // 2] if corrupt else content

    # request handling ---------------------------------------------------------------------

    def _take_fault(self) -> int | None:
        with self._lock:
            if not self._faults:
                return None
            fault = self._faults[0]
            fault[1] -= 1
            if fault[1] == 0:
                self._faults.pop(0)
            return fault[0]

    def _is_repo(self, owner: str, repo: str) -> bool:
        # GitHub's owner and repository names are case-insensitive.
        return f"{owner}/{repo}".lower() == self.repo.lower()

    def _dispatch(self, method: str, target: str, authorization: str | None = None) -> _Response:
        with self._lock:
            self.requests.append(target)
        status = self._take_fault()
        if status is not None:
            return _text_response(status)
        if method not in ("GET", "HEAD"):
            return _text_response(405)
        path = urlsplit(target).path
        if path.startswith("/repos/"):
            return self._api(target, _token(authorization))
        match = _PRETTY_JSON_PATH.match(path)
        if match is not None:
            if not self.simulator.has_playlist(match["id"]):
                return _text_response(404)
            document = archive_document(self.simulator, match["id"], self._clock)
            return _Response(200, render_document(document), "text/plain; charset=utf-8")
        match = _RAW_PATH.match(path)
        if match is None or not self._is_repo(match["owner"], match["repo"]):
            return _text_response(404)
        # The raw host takes the path percent-encoded ("Global%20Top%2050.md").
        content = self._file_at(match["ref"], unquote(match["path"]))
        if content is None:
            return _text_response(404)
        return _Response(200, content, "text/plain; charset=utf-8")

    def _charge(self, token: str | None) -> tuple[bool, tuple[tuple[str, str], ...]]:
        """Count one API request; whether it may go on, and the rate-limit headers to send."""
        with self._lock:
            if self._clock >= self._rate_reset_at:
                self._rate_used.clear()
                self._rate_reset_at = self._clock + RATE_LIMIT_WINDOW
            limit = self._rate_limit
            if token is not None and self._authenticated_limit is not None:
                limit = self._authenticated_limit
            used = self._rate_used.get(token, 0)
            allowed = used < limit
            if allowed:
                used += 1
                self._rate_used[token] = used
            reset = math.ceil(self._rate_reset_at.timestamp())
        headers = (
            ("X-RateLimit-Limit", str(limit)),
            ("X-RateLimit-Remaining", str(max(0, limit - used))),
            ("X-RateLimit-Reset", str(reset)),
            ("X-RateLimit-Used", str(used)),
            ("X-RateLimit-Resource", "core"),
        )
        return allowed, headers

    def _api(self, target: str, token: str | None) -> _Response:
        with self._lock:
            self.api_tokens.append(token)
        allowed, headers = self._charge(token)
        if not allowed:
            who = "your token" if token is not None else "127.0.0.1"
            payload = {
                "message": f"API rate limit exceeded for {who}. (But here's the good news: "
                "Authenticated requests get a higher rate limit. Check out the documentation "
                "for more details.)",
                "documentation_url": _RATE_LIMIT_DOCS_URL,
            }
            return _json_response(403, payload, headers)
        parts = urlsplit(target)
        match = _COMMITS_PATH.match(parts.path)
        if match is None or not self._is_repo(match["owner"], match["repo"]):
            return _api_error(404, "Not Found", headers)
        query = dict(parse_qsl(parts.query, keep_blank_values=True))
        bounds = {}
        for name in ("since", "until"):
            if name in query:
                try:
                    bounds[name] = utc_moment(query[name])
                except ValueError:
                    message = f"Invalid value for parameter '{name}': {query[name]!r}"
                    return _api_error(422, message, headers)
        per_page = min(_positive_int(query.get("per_page"), DEFAULT_PER_PAGE), MAX_PER_PAGE)
        page = _positive_int(query.get("page"), 1)
        # A listing without ``path`` would be the whole repository's: here, no file's.
        commits = [
            commit
            for commit in self._commits(query.get("path", "").strip("/"))
            if bounds.get("since", commit.committed_at) <= commit.committed_at
            and commit.committed_at <= bounds.get("until", commit.committed_at)
        ]
        commits.reverse()  # newest first
        last_page = max(1, math.ceil(len(commits) / per_page))
        listed = commits[(page - 1) * per_page : page * per_page]
        link = link_header(f"{self.origin}{target}", page, last_page)
        if link is not None:
            headers += (("Link", link),)
        return _json_response(200, [self._commit_object(commit) for commit in listed], headers)

    def _commit_object(self, commit: ArchiveCommit) -> dict[str, Any]:
        # The fields of GitHub's commit listing a client may use; the rest is left out.
        signature = {**COMMIT_AUTHOR, "date": _github_time(commit.committed_at)}
        return {
            "sha": commit.sha,
            "commit": {
                "author": signature,
                "committer": signature,
                "message": COMMIT_MESSAGE,
                "url": f"{self.origin}/repos/{self.repo}/git/commits/{commit.sha}",
            },
            "url": f"{self.origin}/repos/{self.repo}/commits/{commit.sha}",
            "html_url": f"https://github.com/{self.repo}/commit/{commit.sha}",
        }


def _token(authorization: str | None) -> str | None:
    # GitHub takes both "Bearer <token>" and the older "token <token>".
    if not authorization:
        return None
    scheme, _, token = authorization.strip().partition(" ")
    if scheme.lower() in ("bearer", "token") and token.strip():
        return token.strip()
    return None


class _Handler(LoopbackHandler):
    server_version = "local-archive/1"

    def _serve(self, method: str) -> None:
        try:
            response = self.server.app._dispatch(
                method, self.path, self.headers.get("Authorization")
            )
        except Exception:  # a simulator bug must show up, not hang the client
            traceback.print_exc(file=sys.stderr)
            response = _text_response(500)
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers:
            self.send_header(name, value)
        self.end_headers()
        if method != "HEAD":
            self.wfile.write(response.body)

    def do_GET(self) -> None:
        self._serve("GET")

    def do_HEAD(self) -> None:
        self._serve("HEAD")


def main(argv: list[str] | None = None) -> int:
    parser = command_line(
        "python -m etl_lib.local_spotify.archive_server",
        "Serve the simulated playlist archive and its GitHub commit history on 127.0.0.1: "
        "the API (commits listing) and raw content host share one origin.",
        port=8766,
    )
    parser.add_argument(
        "--history-days",
        type=int,
        default=DEFAULT_HISTORY_DAYS,
        help="days of daily commits up to --now (default %(default)s)",
    )
    parser.add_argument("--repo", default=DEFAULT_ARCHIVE_REPO, help="owner/name it answers to")
    parser.add_argument(
        "--rate-limit",
        type=int,
        default=DEFAULT_RATE_LIMIT,
        help="API requests per simulated hour (GitHub: 60 without a token, 5000 with one; "
        "default %(default)s)",
    )
    args = parser.parse_args(argv)
    if args.history_days < 1:
        parser.error(f"--history-days must be at least 1, got {args.history_days}")

    server = LocalArchiveServer(
        ChartSimulator(seed=args.seed),
        now=args.now,
        port=args.port,
        repo=args.repo,
        history_days=args.history_days,
    )
    server.rate_limit(args.rate_limit, args.now + RATE_LIMIT_WINDOW)

    def banner() -> list[str]:
        base, repo = server.base_url, server.repo
        first_day = utc_day(args.now) - timedelta(days=args.history_days - 1)
        return [
            # base_url comes first: scripts read the first line.
            f"base_url:      {base}  (the archive, GitHub's API and its raw host)",
            f"repo:          {repo}",
            f"simulated now: {server.clock.isoformat()}",
            f"history:       {first_day} to {utc_day(args.now)}, a commit a day around "
            f"{DAILY_COMMIT_TIME:%H:%M} UTC, some days two",
            f"rate limit:    {args.rate_limit} API requests an hour",
            f"today's file:  GET {base}/playlists/pretty/<id>.json",
            f"commits:       GET {base}/repos/{repo}/commits?path=playlists/pretty/<id>.json"
            "[&since=ISO][&until=ISO][&per_page=N][&page=K]",
            f"file at sha:   GET {base}/{repo}/<sha>/playlists/pretty/<id>.json",
            *(
                f"playlist:      {playlist_id}  {name}"
                for playlist_id, name in server.simulator.playlists.items()
            ),
        ]

    return serve_in_foreground(server, banner)


if __name__ == "__main__":
    raise SystemExit(main())
