"""The public playlist archive's commit history: every daily version of a chart, for years.

The archive commits each tracked playlist's ``playlists/pretty/<id>.json`` once a day or so;
each commit's file is that capture's ranking. Two GitHub endpoints give the history:

* ``GET {api}/repos/{owner}/{repo}/commits?path=...&since=...&until=...&per_page=100``: the
  commits that touched the file, newest first, each ``{"sha", "commit": {"committer":
  {"date": "YYYY-MM-DDTHH:MM:SSZ"}}}``, paged through the ``Link`` header's ``rel="next"``;
* ``GET {raw}/{owner}/{repo}/{sha}/playlists/pretty/<id>.json``: the file at that commit.

The commit time (UTC) is the version's capture time. The API allows 60 requests an hour
without a token (``SPOTIFY_ARCHIVE_TOKEN`` raises it); once spent it answers 403 or 429 with
``X-RateLimit-Remaining: 0`` and ``X-RateLimit-Reset`` (epoch seconds), and the client
stops with ``ArchiveRateLimited`` rather than retrying until then. Paging stays on the API's
origin: a ``next`` link elsewhere is refused. Everything a server sends is checked before use
(a sha goes into a URL path, so only hex digits pass).

``KnownCommits`` is the record of the versions a lake holds or refused
(``layout.archive_history_key``), which makes a backfill resumable and idempotent. The parsing
and planning functions are pure; ``HistoryClient`` does the HTTP, and
``pipeline.backfill_archive_history`` the lake.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlencode

import requests

from etl_lib import bounded_http
from etl_lib.config import Settings
from etl_lib.errors import ArchiveError, ArchiveRateLimited, PlaylistNotFound
from etl_lib.extract import envelope
from etl_lib.extract.archive import archive_path

PER_PAGE = 100
# A chart committed daily for 30 years is under 110 pages; more means a server going round.
MAX_PAGES = 1_000
UNAUTHENTICATED_LIMIT = 60  # GitHub's requests an hour without a token
_SHA = re.compile(r"[0-9a-f]{7,64}")


# -- pure parsing ------------------------------------------------------------------------------


@dataclass(frozen=True, order=True)
class Commit:
    """One version of a playlist's file: when it was committed (UTC), and its sha."""

    committed_at: datetime
    sha: str


def next_link(header: str | None) -> str | None:
    """The ``rel="next"`` URL of a ``Link`` header, or None (no header, no next, garbage)."""
    if not isinstance(header, str) or not header.strip():
        return None
    for link in requests.utils.parse_header_links(header):
        rels = str(link.get("rel", "")).lower().split()
        if "next" in rels and link.get("url"):
            return link["url"]
    return None


def parse_commits(body: Any, where: str) -> list[Commit]:
    """A page of the commit listing as ``Commit``s, in the server's order.

    ``ArchiveError`` naming ``where`` for anything but a list of commits with a hex sha and
    a UTC committer (else author) date: such a page cannot be trusted for the versions it lists.
    """
    if not isinstance(body, list):
        raise ArchiveError(
            f"{where}: the commit listing is a {type(body).__name__}, not a JSON list: check "
            "SPOTIFY_ARCHIVE_API_URL"
        )
    commits = []
    for number, entry in enumerate(body, start=1):
        sha = entry.get("sha") if isinstance(entry, dict) else None
        commit = entry.get("commit") if isinstance(entry, dict) else None
        date = _commit_date(commit)
        if not isinstance(sha, str) or not _SHA.fullmatch(sha):
            raise ArchiveError(
                f"{where}: commit {number} has no usable sha ({envelope.shown(sha)}; expected "
                "hex digits)"
            )
        try:
            committed_at = envelope.parse_utc(date)
        except ValueError as exc:
            raise ArchiveError(
                f"{where}: commit {sha} has no usable committer date ({exc})"
            ) from None
        commits.append(Commit(committed_at, sha))
    return commits


def _commit_date(commit: Any) -> Any:
    """The commit's committer date, else its author date (GitHub gives both; the committer's
    is when the version reached the archive, which is what a capture time is)."""
    for role in ("committer", "author"):
        person = commit.get(role) if isinstance(commit, dict) else None
        date = person.get("date") if isinstance(person, dict) else None
        if date is not None:
            return date
    return None


def rate_limit_reset(headers: Any) -> datetime | None:
    """The UTC time ``X-RateLimit-Reset`` (epoch seconds) names; None when absent or garbage."""
    text = headers.get("X-RateLimit-Reset") if headers is not None else None
    if not isinstance(text, str) or not text.strip().isdigit():
        return None
    try:
        return envelope.in_time_range(datetime.fromtimestamp(int(text.strip()), UTC))
    except (ValueError, OverflowError, OSError):  # beyond datetime's range, or the lake's
        return None


def is_rate_limited(status: int, headers: Any) -> bool:
    """GitHub's primary limit: 403 or 429 with ``X-RateLimit-Remaining: 0``; a 429 always."""
    if status == 429:
        return True
    remaining = headers.get("X-RateLimit-Remaining") if headers is not None else None
    return status == 403 and isinstance(remaining, str) and remaining.strip() == "0"


def rate_limit_message(reset: datetime | None, authenticated: bool) -> str:
    when = (
        f"until {envelope.format_utc(reset)} (UTC)"
        if reset is not None
        else "until a time the reply did not say (GitHub resets it within the hour)"
    )
    limit = (
        "the token's limit"
        if authenticated
        else f"{UNAUTHENTICATED_LIMIT} requests an hour without a token: set "
        "SPOTIFY_ARCHIVE_TOKEN to a GitHub token for 5,000"
    )
    return (
        f"the archive's API rate limit is spent {when}; {limit}. Run the backfill again then: "
        "it resumes where it stopped"
    )


def commit_window(since: datetime | None, until: datetime | None) -> dict[str, str]:
    """The ``since``/``until`` query parameters for a window (either end open)."""
    window = {}
    if since is not None:
        window["since"] = envelope.format_utc(since)
    if until is not None:
        window["until"] = envelope.format_utc(until)
    return window


def in_window(commit: Commit, since: datetime | None, until: datetime | None) -> bool:
    # Checked here too: a server that ignores the window must not widen the backfill.
    return (since is None or commit.committed_at >= since) and (
        until is None or commit.committed_at <= until
    )


def versions_to_fetch(commits: list[Commit], known: KnownCommits) -> list[Commit]:
    """The commits not yet landed or refused, oldest first, each sha once.

    Oldest first so that of two versions captured in the same second, the newer lands on the
    later key (``RawLanding`` moves the second to the next free second) and is the day's
    last, as in the archive; ties keep the listing's order reversed (it lists newest first).
    """
    seen: set[str] = set()
    fresh = []
    for commit in reversed(commits):
        if commit.sha in seen or known.knows(commit.sha):
            continue
        seen.add(commit.sha)
        fresh.append(commit)
    return sorted(fresh, key=lambda commit: commit.committed_at)


# -- the record of known versions --------------------------------------------------------------


Span = tuple[datetime, datetime]  # commit times from..to, both included, whole seconds
_SECOND = timedelta(seconds=1)


@dataclass
class KnownCommits:
    """The versions of one playlist a lake holds (sha -> raw key) or refused (sha -> reason),
    and the spans of commit times already listed in full (``listed``, merged, oldest first),
    so that a re-run asks the API only for the spans it has not seen: a backfill stopped by
    the rate limit goes on where its listing stopped instead of listing everything again.

    Stored as JSON under ``layout.archive_history_key``; all of it is pure.
    """

    landed: dict[str, str] = field(default_factory=dict)
    refused: dict[str, str] = field(default_factory=dict)
    listed: list[Span] = field(default_factory=list)

    def knows(self, sha: str) -> bool:
        return sha in self.landed or sha in self.refused

    @property
    def count(self) -> int:
        return len(self.landed) + len(self.refused)

    def mark_listed(self, start: datetime, end: datetime) -> None:
        """Every commit from ``start`` to ``end`` is known (listed, and landed or refused)."""
        if start > end:
            return
        spans = sorted([*self.listed, (start, end)])
        merged: list[Span] = [spans[0]]
        for span_start, span_end in spans[1:]:
            last_start, last_end = merged[-1]
            if span_start <= last_end + _SECOND:  # overlapping or adjacent seconds
                merged[-1] = (last_start, max(last_end, span_end))
            else:
                merged.append((span_start, span_end))
        self.listed = merged

    def unlisted(self, start: datetime, end: datetime) -> list[Span]:
        """The parts of ``start``..``end`` not listed yet, newest first (as the API lists)."""
        gaps: list[Span] = []
        cursor = start
        for span_start, span_end in self.listed:
            if span_end < cursor or span_start > end:
                continue
            if span_start > cursor:
                gaps.append((cursor, span_start - _SECOND))
            cursor = span_end + _SECOND
        if cursor <= end:
            gaps.append((cursor, end))
        return gaps[::-1]

    def dumps(self) -> bytes:
        record = {
            "landed": self.landed,
            "refused": self.refused,
            "listed": [[envelope.format_utc(a), envelope.format_utc(b)] for a, b in self.listed],
        }
        return json.dumps(record, ensure_ascii=False, sort_keys=True).encode("utf-8")

    @classmethod
    def loads(cls, data: bytes | None) -> KnownCommits:
        """The record; an empty one when there is none or it is unreadable (then versions
        are downloaded again, and land nothing twice: the raw zone keeps identical bytes once).
        """
        try:
            record = json.loads(data) if data is not None else {}
        except ValueError:
            record = {}
        if not isinstance(record, dict):
            record = {}
        known = cls(
            landed=_text_map(record.get("landed")), refused=_text_map(record.get("refused"))
        )
        spans = record.get("listed")
        for span in spans if isinstance(spans, list) else []:
            try:
                start, end = (envelope.parse_utc(moment) for moment in span)
            except (TypeError, ValueError):
                continue  # that span is listed again: a few requests, nothing landed twice
            known.mark_listed(start, end)
        return known


def _text_map(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {k: v for k, v in value.items() if isinstance(k, str) and isinstance(v, str)}


# -- HTTP --------------------------------------------------------------------------------------


class VersionMissing(ArchiveError):
    """The raw host has no file at this commit (404): the commit deleted or moved it."""


class HistoryClient:
    """The two endpoints, each on its own origin-bound session; the token goes to the API only.

    5xx answers, connection failures and deadlines are retried ``settings.max_retries`` times
    with jittered backoff; a spent rate limit raises ``ArchiveRateLimited`` at once.
    """

    def __init__(self, settings: Settings, *, sleep: Callable[[float], None] = time.sleep):
        self.settings = settings
        self.sleep = sleep
        self.api_url = settings.archive_api_url.rstrip("/")
        self.raw_url = settings.archive_raw_url.rstrip("/")
        deadline = settings.request_deadline_seconds
        self._api = bounded_http.BoundedSession(deadline, origin=self.api_url)
        self._api.headers["Accept"] = "application/vnd.github+json"
        if settings.archive_token:
            self._api.headers["Authorization"] = f"Bearer {settings.archive_token}"
        self._raw = bounded_http.BoundedSession(deadline, origin=self.raw_url)

    def __enter__(self) -> HistoryClient:
        return self

    def __exit__(self, *_: object) -> None:
        self._api.close()
        self._raw.close()

    def commits(
        self, playlist_id: str, since: datetime | None, until: datetime | None
    ) -> Iterator[list[Commit]]:
        """The commits that touched the playlist's file in the window, a page at a time."""
        query = {"path": archive_path(playlist_id), **commit_window(since, until)}
        url = (
            f"{self.api_url}/repos/{self.settings.archive_repo}/commits?"
            f"{urlencode({**query, 'per_page': PER_PAGE})}"
        )
        origin = bounded_http.origin_of(self.api_url)
        seen: set[str] = set()
        while url is not None:
            if len(seen) >= MAX_PAGES or url in seen:
                raise ArchiveError(
                    f"the archive's commit listing for {playlist_id} goes round ({len(seen)} "
                    f"pages, then {url} again or more): check SPOTIFY_ARCHIVE_API_URL"
                )
            seen.add(url)
            response = self._get(self._api, url, f"the commit listing of {playlist_id}")
            if response.status_code == 404:
                raise PlaylistNotFound(
                    f"the archive's API answered 404 for {url}: check SPOTIFY_ARCHIVE_REPO "
                    f"({self.settings.archive_repo}) and SPOTIFY_ARCHIVE_API_URL"
                )
            try:
                body = response.json()
            except ValueError:
                raise ArchiveError(
                    f"{url}: the commit listing is not JSON: check SPOTIFY_ARCHIVE_API_URL"
                ) from None
            yield parse_commits(body, url)
            url = next_link(response.headers.get("Link"))
            if url is not None and bounded_http.origin_of(url) != origin:
                raise ArchiveError(
                    f"refused to follow the commit listing's next page to "
                    f"{bounded_http.origin_of(url)}: it is not the API's origin {origin} "
                    "(SPOTIFY_ARCHIVE_API_URL), where the token belongs"
                )

    def version(self, playlist_id: str, sha: str) -> tuple[str, bytes]:
        """The URL and bytes of the playlist's file at commit ``sha``."""
        if not _SHA.fullmatch(sha):
            raise ValueError(f"{sha!r} is not a commit sha")
        url = f"{self.raw_url}/{self.settings.archive_repo}/{sha}/{archive_path(playlist_id)}"
        response = self._get(self._raw, url, f"{playlist_id} at commit {sha}")
        if response.status_code == 404:
            raise VersionMissing(f"{url}: no such file at this commit (404; deleted or moved)")
        return url, response.content

    def _get(self, session: requests.Session, url: str, what: str) -> requests.Response:
        failures = 0
        while True:
            try:
                response = session.get(
                    url,
                    timeout=(
                        self.settings.connect_timeout_seconds,
                        self.settings.read_timeout_seconds,
                    ),
                )
            except (bounded_http.OffOrigin, bounded_http.Redirected) as exc:
                raise ArchiveError(
                    f"not following {what} off its origin ({exc}): check "
                    "SPOTIFY_ARCHIVE_API_URL and SPOTIFY_ARCHIVE_RAW_URL"
                ) from exc
            except (requests.ConnectionError, requests.Timeout) as exc:
                if failures < self.settings.max_retries:
                    failures += 1
                    self.sleep(bounded_http.backoff_seconds(failures))
                    continue
                raise ArchiveError(
                    f"cannot read {what} from {url} ({type(exc).__name__}, {failures + 1} "
                    "attempts): check the network, or try again later"
                ) from exc
            status = response.status_code
            if is_rate_limited(status, response.headers):
                reset = rate_limit_reset(response.headers)
                raise ArchiveRateLimited(
                    rate_limit_message(reset, bool(self.settings.archive_token)), reset
                )
            if status >= 500 and failures < self.settings.max_retries:
                failures += 1
                self.sleep(bounded_http.backoff_seconds(failures))
                continue
            if status in (200, 404):
                return response
            hint = (
                ": check SPOTIFY_ARCHIVE_TOKEN"
                if status in (401, 403) and self.settings.archive_token
                else ": try again later"
            )
            raise ArchiveError(f"the archive answered {status} for {what} ({url}){hint}")
