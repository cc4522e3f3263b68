"""The public playlist archive as a source: github.com/mackorone/spotify-playlist-archive (MIT).

The archive snapshots Spotify's editorial playlists daily, so it still has the charts that
the Web API stopped serving to ordinary apps. It publishes each playlist in two shapes:

* JSON, ``playlists/pretty/<playlist_id>.json`` (current): ``url``, ``original_name``,
  ``description``, ``snapshot_id``, ``num_followers``, ``owner{name,url}`` and ``tracks[]``
  with ``name``, ``url``, ``album{name,url}``, ``artists[{name,url}]``, ``duration_ms`` and
  ``added_at`` (``"YYYY-MM-DD HH:MM:SS"``, UTC, or null);
* markdown (older versions): a ``### [name](playlist url)`` header, a ``> description`` line
  and a ``| No. | Title | Artist(s) | Album | Length |`` table of links.

Spotify ids exist only inside the open.spotify.com links. An archive envelope keeps the
document unchanged (the JSON value, or the markdown text as a string) under ``archive``;
``pages`` is always ``[]`` so code that counts API pages sees none::

    {"envelope_version": 1, "extracted_at": "2021-03-06T00:13:23Z",
     "source": {"kind": "archive", "url" | "file": "...", "format": "json" | "markdown"},
     "playlist": {"id", "name", "snapshot_id", "followers", "owner_id"},
     "pages": [], "archive": <document>}

Parsing is pure; ``fetch_archive_envelope`` is the only function doing network I/O.
``SOURCE`` is the archive as a source of the pipeline (``etl_lib.extract.sources``), named
``archive``.
"""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import requests

from etl_lib.bounded_http import BoundedSession, DeadlineExceeded
from etl_lib.config import Settings
from etl_lib.errors import ArchiveError, ConfigError, CorruptPayload, PlaylistNotFound
from etl_lib.extract import envelope
from etl_lib.extract.envelope import loads
from etl_lib.lake import layout

SOURCE_KIND = "archive"
ArchiveFormat = Literal["json", "markdown"]

_SPOTIFY_URL = re.compile(
    r"^https?://open\.spotify\.com/(?:intl-[A-Za-z-]+/)?(?P<kind>[a-z]+)/(?P<id>[^/?#\s]+)"
    r"(?:[/?#].*)?$"
)
_ADDED_AT = re.compile(
    r"^(?P<date>\d{4}-\d{2}-\d{2})[ T](?P<time>\d{2}:\d{2}:\d{2})(?:\.\d+)?(?:Z|[+-]00:?00)?$"
)
# A capture named by its UTC time, as the archive's history is: 2021-03-06T00:13:23Z.md.
_CAPTURE_NAME = re.compile(r"^(?P<stamp>\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}Z)(?:\.[^.]+)?$")
_COMPACT_CAPTURE_NAME = re.compile(r"^(?P<stamp>\d{8}T\d{6}Z)(?:\.[^.]+)?$")
_SKIPPED_FILE_PREFIXES = (".", "readme", "license", "changelog")

# -- markdown grammar ----------------------------------------------------------------------
# The archive escapes markdown's special characters in names with a backslash (since
# mid-2021; older pages such as "F*CK LOVE" do not), so link text is "escaped pairs or any
# other character", taken lazily up to the first "](" that opens a URL. URLs never hold
# spaces or parentheses, which is what lets names contain "]", "(", "|" or commas.
_LINK = re.compile(r"\[(?P<text>(?:\\.|[^\\])*?)\]\((?P<url>[^()\s]*)\)")
_PLAYLIST_HEADER = re.compile(
    r"^###\s+\[(?P<name>.*)\]\((?P<url>https?://open\.spotify\.com/[^()\s]*playlist/"
    r"(?P<id>[A-Za-z0-9]+)[^()\s]*)\)\s*$",
    re.MULTILINE,
)
_TABLE_HEADER = re.compile(
    r"^\|\s*No\.\s*\|\s*Title\s*\|\s*Artist\(s\)\s*\|\s*Album\s*\|\s*Length\s*\|\s*$",
    re.MULTILINE,
)
_TABLE_DIVIDER = re.compile(r"^\|(?:\s*:?-+:?\s*\|)+\s*$")
_UNESCAPED_BAR = re.compile(r"(?<!\\)\|")
_ROW = re.compile(
    r"^\|\s*(?P<number>\d+)\s*\|(?P<body>.*)\|\s*(?P<length>\d+(?::\d{1,2}){1,2})\s*\|\s*$"
)
_LENGTH = re.compile(r"^(?:(?P<hours>\d+):)?(?P<minutes>\d+):(?P<seconds>\d{1,2})$")
_SNAPSHOT_LINE = re.compile(r"^Snapshot ID:\s*`(?P<id>[^`]+)`\s*$", re.MULTILINE)
_ESCAPED = re.compile(r"\\(.)")


# -- pure helpers --------------------------------------------------------------------------


def spotify_id_from_url(url: Any, kind: str) -> str | None:
    """The id in ``https://open.spotify.com/<kind>/<id>``; None for another kind or no link."""
    parsed = _parse_spotify_url(url)
    return parsed[1] if parsed is not None and parsed[0] == kind else None


def _parse_spotify_url(url: Any) -> tuple[str, str] | None:
    if type(url) is not str:
        return None
    match = _SPOTIFY_URL.match(url)
    return (match["kind"], match["id"]) if match else None


def archive_added_at(text: Any) -> str | None:
    """``"2021-03-05 12:00:00"`` (UTC, as the archive writes it) -> ``"2021-03-05T12:00:00Z"``.

    None stays None (the archive writes null when Spotify had no date); anything else that
    is not a UTC time becomes None rather than a guess.
    """
    if type(text) is not str:
        return None
    match = _ADDED_AT.match(text.strip())
    return f"{match['date']}T{match['time']}Z" if match else None


def _unescape(text: str) -> str:
    return _ESCAPED.sub(r"\1", text).strip()


def _duration_ms(length: str) -> int | None:
    match = _LENGTH.match(length)
    if match is None:
        return None
    seconds = int(match["hours"] or 0) * 3600 + int(match["minutes"]) * 60 + int(match["seconds"])
    # The archive prints whole seconds (it floors duration_ms), so this is exact only to the
    # second: up to 999 ms short of Spotify's value.
    return seconds * 1000


# -- format detection ----------------------------------------------------------------------


def detect_format(data: bytes, name: str = "payload") -> ArchiveFormat:
    """``"json"`` or ``"markdown"``, judged by content (a ``.txt`` of markdown is markdown).

    ``name`` (the file or URL) goes into the ``CorruptPayload`` raised for anything else.
    """
    text = _decode(data, name)
    stripped = text.lstrip()
    if stripped.startswith("{"):
        try:
            json.loads(text)
        except json.JSONDecodeError as exc:
            raise CorruptPayload(f"{name}: looks like JSON but does not parse ({exc})") from exc
        return "json"
    if _PLAYLIST_HEADER.search(text) or _TABLE_HEADER.search(text):
        return "markdown"
    if stripped.startswith("["):
        # Only now: a markdown page may start with a link, "[pretty](...) - cumulative".
        try:
            json.loads(text)
        except json.JSONDecodeError:
            pass
        else:
            raise CorruptPayload(f"{name}: a JSON list, not an archive playlist object")
    raise CorruptPayload(
        f"{name}: not a playlist-archive file (expected the archive's JSON document or its "
        "markdown page with a '### [name](https://open.spotify.com/playlist/<id>)' header)"
    )


def _decode(data: bytes, name: str) -> str:
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        raise CorruptPayload(
            f"{name}: not UTF-8 text, so neither archive JSON nor archive markdown"
        ) from exc


# -- markdown ------------------------------------------------------------------------------


def parse_markdown(text: str, *, source_name: str = "archive markdown") -> dict[str, Any]:
    """An archive markdown page as a JSON-archive-like document.

    Returns ``{"id", "name", "url", "description", "snapshot_id", "tracks"}``; each track is
    ``{"position", "name", "url", "artists": [{"name", "url"}], "album": {"name", "url"},
    "duration_ms", "added_at": None}`` in table order. A name the archive printed without a
    link gets ``url: ""``, as in its JSON. Raises ``CorruptPayload`` naming ``source_name``.
    """
    header = _PLAYLIST_HEADER.search(text)
    if header is None:
        raise CorruptPayload(
            f"{source_name}: no '### [name](https://open.spotify.com/playlist/<id>)' header, "
            "so the playlist is unknown"
        )
    lines = text.splitlines()
    table_start = next((i for i, line in enumerate(lines) if _TABLE_HEADER.match(line)), None)
    if table_start is None:
        raise CorruptPayload(
            f"{source_name}: no '| No. | Title | Artist(s) | Album | Length |' track table "
            "(a cumulative page is not a ranking: use the pretty page)"
        )
    description = None
    for line in lines[:table_start]:
        if line.startswith(">"):
            description = _unescape(line[1:])
            break
    tracks = []
    for line_number, line in enumerate(lines[table_start + 1 :], start=table_start + 2):
        if not line.startswith("|"):
            break  # the table ends at the first line that is not a row
        if _TABLE_DIVIDER.match(line):
            continue
        track = _parse_row(line, f"{source_name}, line {line_number}")
        if track["position"] != len(tracks) + 1:
            raise CorruptPayload(
                f"{source_name}, line {line_number}: row number {track['position']} where "
                f"{len(tracks) + 1} was expected (rows missing or out of order)"
            )
        tracks.append(track)
    snapshot = _SNAPSHOT_LINE.search(text)
    return {
        "id": header["id"],
        "name": _unescape(header["name"]),
        "url": header["url"],
        "description": description,
        "snapshot_id": snapshot["id"] if snapshot else None,
        "tracks": tracks,
    }


def _parse_row(line: str, where: str) -> dict[str, Any]:
    row = _ROW.match(line)
    if row is None:
        raise CorruptPayload(f"{where}: not a '| No. | Title | Artist(s) | Album | Length |' row")
    cells = _UNESCAPED_BAR.split(row["body"])
    if len(cells) == 3:
        title, artists, album = (_named_links(cell) for cell in cells)
        track = title[0] if title else {"name": None, "url": ""}
        album_link = album[0] if album else {"name": None, "url": ""}
    else:
        # An unescaped "|" inside a name (older pages): fall back on what each link points to.
        links = _named_links(row["body"])
        kinds = [(_parse_spotify_url(link["url"]) or ("", ""))[0] for link in links]
        track = next(
            (link for link, kind in zip(links, kinds, strict=True) if kind in ("track", "episode")),
            None,
        )
        if track is None:
            raise CorruptPayload(f"{where}: cannot tell the title apart from the other cells")
        artists = [link for link, kind in zip(links, kinds, strict=True) if kind == "artist"]
        album_link = next(
            (link for link, kind in zip(links, kinds, strict=True) if kind == "album"),
            {"name": None, "url": ""},
        )
    return {
        "position": int(row["number"]),
        "name": track["name"],
        "url": track["url"],
        "artists": artists,
        "album": album_link,
        "duration_ms": _duration_ms(row["length"]),
        "added_at": None,  # the markdown pages do not show it
    }


def _named_links(cell: str) -> list[dict[str, str]]:
    """The ``[name](url)`` links of a cell in order; text outside links is a name without one.

    Several artists are separated by ", " in the archive; plain text between links is split
    on that separator (so an unlinked name containing ", " cannot be told apart).
    """
    found: list[dict[str, str]] = []
    position = 0

    def plain(segment: str) -> None:
        for piece in segment.split(", "):
            name = _unescape(piece).strip(" ,")
            if name:
                found.append({"name": name, "url": ""})

    for link in _LINK.finditer(cell):
        plain(cell[position : link.start()])
        found.append({"name": _unescape(link["text"]), "url": link["url"]})
        position = link.end()
    plain(cell[position:])
    return found


# -- archive document -> Spotify-shaped entries -------------------------------------------


def archive_entries(
    document: dict[str, Any] | str, *, source_name: str = "archive document"
) -> list[dict[str, Any] | None]:
    """The playlist's tracks as Spotify PlaylistTrackObjects, in archive order.

    ``document`` is the archive JSON, a ``parse_markdown`` result, or markdown text. The
    entries have the shape the Web API gives (``{"added_at", "is_local", "item": {...}}``) so
    they go through the same transform as API pages; fields the archive lacks (explicit,
    isrc, popularity, track and disc numbers, the album's type, date and size) are absent
    and end up null. A track element that is not an object becomes ``None`` (a null entry).
    """
    if isinstance(document, str):
        document = parse_markdown(document, source_name=source_name)
    if not isinstance(document, dict) or not isinstance(document.get("tracks"), list):
        raise CorruptPayload(f"{source_name}: not an archive playlist ('tracks' list missing)")
    return [_entry(track) if isinstance(track, dict) else None for track in document["tracks"]]


def _entry(track: dict[str, Any]) -> dict[str, Any]:
    kind, track_id = _parse_spotify_url(track.get("url")) or ("track", None)
    if kind not in ("track", "episode"):
        kind, track_id = "track", None  # not a playable Spotify link: treated as a local file
    item: dict[str, Any] = {
        # An episode keeps its type, so the transform counts it with the skipped episodes.
        "type": kind,
        "id": track_id,
        "name": track.get("name"),
        "duration_ms": track.get("duration_ms"),
        "album": _linked_object(track.get("album"), "album"),
        "artists": [
            _linked_object(artist, "artist")
            for artist in (track.get("artists") if isinstance(track.get("artists"), list) else [])
        ],
    }
    _add_external_url(item, track.get("url"))
    return {
        "added_at": archive_added_at(track.get("added_at")),
        # Without a Spotify link there is no id: only local files are like that.
        "is_local": track_id is None,
        "item": item,
    }


def _linked_object(value: Any, kind: str) -> dict[str, Any]:
    if not isinstance(value, dict):
        return {"id": None, "name": None}
    linked = {"id": spotify_id_from_url(value.get("url"), kind), "name": value.get("name")}
    _add_external_url(linked, value.get("url"))
    return linked


def _add_external_url(target: dict[str, Any], url: Any) -> None:
    if type(url) is str and url:
        target["external_urls"] = {"spotify": url}


# -- envelopes -----------------------------------------------------------------------------


def make_archive_envelope(
    document: dict[str, Any] | str,
    *,
    extracted_at: datetime,
    origin: dict[str, str],
    source_name: str,
) -> dict[str, Any]:
    """The raw-zone envelope of one archive document (JSON value, or markdown text).

    ``origin`` says where it came from (``{"url": ...}`` or ``{"file": ...}``); the document
    is stored unchanged under ``archive``.
    """
    if isinstance(document, str):
        archive_format: ArchiveFormat = "markdown"
        playlist = _markdown_playlist(parse_markdown(document, source_name=source_name))
    else:
        archive_format = "json"
        playlist = _json_playlist(document, source_name)
    source = {"kind": SOURCE_KIND, **origin, "format": archive_format}
    return envelope.build(source, playlist, extracted_at, archive=document)


def _markdown_playlist(parsed: dict[str, Any]) -> dict[str, Any]:
    return {
        "id": parsed["id"],
        "name": parsed["name"],
        "snapshot_id": parsed["snapshot_id"],
        "followers": None,
        "owner_id": None,
    }


def _json_playlist(document: Any, source_name: str) -> dict[str, Any]:
    if not isinstance(document, dict) or not isinstance(document.get("tracks"), list):
        raise CorruptPayload(
            f"{source_name}: not an archive playlist document (no 'tracks' list); expected "
            "playlists/pretty/<id>.json from the archive"
        )
    playlist_id = spotify_id_from_url(document.get("url"), "playlist")
    if playlist_id is None:
        raise CorruptPayload(
            f"{source_name}: its 'url' {document.get('url')!r} is not an "
            "open.spotify.com/playlist/<id> link, so the playlist is unknown"
        )
    owner = document.get("owner")
    followers = document.get("num_followers")
    snapshot_id = document.get("snapshot_id")
    name = document.get("original_name") or document.get("unique_name") or document.get("name")
    return {
        "id": playlist_id,
        "name": name if type(name) is str else None,
        "snapshot_id": snapshot_id if type(snapshot_id) is str else None,
        "followers": followers if type(followers) is int else None,
        "owner_id": spotify_id_from_url(owner.get("url"), "user")
        if isinstance(owner, dict)
        else None,
    }


def capture_time_from_name(path: Path) -> datetime | None:
    """The UTC instant in a file name like ``2021-03-06T00:13:23Z.md`` (or ``...Z.json``,
    ``20210306T001323Z.json``); None when the name holds no valid time."""
    for pattern, time_format in (
        (_CAPTURE_NAME, "%Y-%m-%dT%H:%M:%SZ"),
        (_COMPACT_CAPTURE_NAME, "%Y%m%dT%H%M%SZ"),
    ):
        if match := pattern.fullmatch(path.name):
            try:
                return datetime.strptime(match["stamp"], time_format).replace(tzinfo=UTC)
            except ValueError:  # shaped like a time but not one: month 13, second 61
                return None
    return None


def envelope_from_archive_file(path: Path, *, extracted_at: datetime | None = None) -> dict:
    """The envelope of one archive file, JSON or markdown (judged by content).

    The capture time is ``extracted_at`` when given, else the UTC time in the file name
    (the archive's history names versions ``2021-03-06T00:13:23Z.md``).
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ConfigError(f"cannot read archive file {path}: {exc.strerror or exc}") from exc
    name = str(path)
    captured_at = extracted_at or capture_time_from_name(path)
    if captured_at is None:
        detect_format(data, name)  # a file that is no archive file says so first
        raise ConfigError(
            f"{name}: its name is not a UTC capture time like 2021-03-06T00:13:23Z.md, so "
            "when it was captured is unknown: pass --extracted-at"
        )
    return envelope_from_archive_bytes(
        data, extracted_at=captured_at, origin={"file": path.name}, source_name=name
    )


def envelope_from_archive_bytes(
    data: bytes, *, extracted_at: datetime, origin: dict[str, str], source_name: str
) -> dict:
    """The envelope of one archive document's bytes, JSON or markdown (judged by content),
    captured at ``extracted_at``; ``CorruptPayload`` naming ``source_name`` otherwise."""
    archive_format = detect_format(data, source_name)
    # JSON within the payload limits (nesting, number size, text), as every import is.
    document: dict[str, Any] | str = (
        loads(data, source_name) if archive_format == "json" else _decode(data, source_name)
    )
    return make_archive_envelope(
        document, extracted_at=extracted_at, origin=origin, source_name=source_name
    )


def iter_archive_files(path: Path) -> list[Path]:
    """The archive files to import: ``path`` itself, or the files directly in that folder.

    A folder's files come sorted by name (for the archive's history, capture order);
    subfolders, dotfiles and README/LICENSE/CHANGELOG files are skipped.
    """
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise ConfigError(
            f"{path} does not exist: pass an archive file or a folder of archive files"
        )
    return sorted(
        (
            child
            for child in path.iterdir()
            if child.is_file() and not child.name.lower().startswith(_SKIPPED_FILE_PREFIXES)
        ),
        key=lambda child: child.name,
    )


# -- network ---------------------------------------------------------------------------------


def archive_path(playlist_id: str) -> str:
    """The file the archive commits for a playlist: ``playlists/pretty/<id>.json``."""
    return f"playlists/pretty/{layout.check_playlist_id(playlist_id)}.json"


def archive_url(base_url: str, playlist_id: str) -> str:
    return f"{base_url.rstrip('/')}/{archive_path(playlist_id)}"


def fetch_archive_envelope(
    base_url: str,
    playlist_id: str,
    *,
    extracted_at: datetime,
    timeout: float | tuple[float, float] = 10,
    deadline_seconds: float = 60,
) -> dict:
    """Download ``playlists/pretty/<playlist_id>.json`` from the archive as an envelope.

    ``timeout`` is seconds for connecting and for each read, or a ``(connect, read)`` pair;
    ``deadline_seconds`` bounds the whole download, however slowly the body arrives.
    404 raises ``PlaylistNotFound``; a body that is not the archive's JSON raises
    ``CorruptPayload``; other failures raise ``ArchiveError``.
    """
    layout.check_playlist_id(playlist_id)
    url = archive_url(base_url, playlist_id)
    connect_read = timeout if isinstance(timeout, tuple) else (timeout, timeout)
    try:
        with BoundedSession(deadline_seconds) as session:
            response = session.get(url, timeout=connect_read)
    except DeadlineExceeded as exc:
        raise ArchiveError(
            f"the playlist archive at {url} did not finish answering within "
            f"{deadline_seconds:g} s: try again later, or check the archive base URL"
        ) from exc
    except requests.RequestException as exc:
        raise ArchiveError(
            f"cannot reach the playlist archive at {url} ({type(exc).__name__}): check the "
            "network or the archive base URL"
        ) from exc
    with response:
        if response.status_code == 404:
            raise PlaylistNotFound(
                f"the archive does not track playlist {playlist_id} (404 for {url}); see its "
                "list of tracked playlists at github.com/mackorone/spotify-playlist-archive"
            )
        if response.status_code != 200:
            raise ArchiveError(
                f"the playlist archive answered {response.status_code} for {url}: try again later"
            )
        content = response.content
    if detect_format(content, url) != "json":
        raise CorruptPayload(f"{url}: expected the archive's JSON document, got markdown")
    return make_archive_envelope(
        json.loads(_decode(content, url)),
        extracted_at=extracted_at,
        origin={"url": url},
        source_name=url,
    )


# -- the archive as a pipeline source ---------------------------------------------------------


def archive_pages(payload: dict[str, Any], raw_key: str) -> list[dict[str, Any]]:
    """An archive envelope's tracks as one API-shaped page, so they take the API's path.

    Positions are archive order, 1..N. The document (JSON value or markdown text) sits under
    ``archive``; ``pages`` stays empty, because one snapshot must not come from two places.
    Pure: no I/O.
    """
    if payload.get("pages"):
        raise CorruptPayload(f"{raw_key}: an archive envelope with API pages too (ambiguous)")
    if "archive" not in payload:
        raise CorruptPayload(f"{raw_key}: archive envelope without its 'archive' document")
    document = payload["archive"]
    if not isinstance(document, dict | str):
        raise CorruptPayload(
            f"{raw_key}: 'archive' is a {type(document).__name__}, not a JSON object or "
            "markdown text"
        )
    return [{"items": archive_entries(document, source_name=raw_key), "offset": 0}]


class ArchiveSource:
    """Snapshots from the public archive (``--source archive``): no credentials needed."""

    name = "archive"
    kinds = (SOURCE_KIND,)

    def connect(self, settings: Settings) -> None:
        return None  # one plain download per playlist: nothing to share between them

    def fetch(
        self,
        connection: None,
        settings: Settings,
        playlist_id: str,
        *,
        extracted_at: datetime,
        known_snapshot_id: str | None,
    ) -> dict[str, Any] | None:
        # The archive has no metadata-only answer: the document is small, so it is fetched
        # whole and compared.
        payload = fetch_archive_envelope(
            settings.archive_base_url,
            playlist_id,
            extracted_at=extracted_at,
            timeout=(settings.connect_timeout_seconds, settings.read_timeout_seconds),
            deadline_seconds=settings.request_deadline_seconds,
        )
        snapshot_id = payload["playlist"]["snapshot_id"]
        if known_snapshot_id and snapshot_id == known_snapshot_id:
            return None
        return payload

    def pages(self, payload: dict[str, Any], raw_key: str) -> list[dict[str, Any]]:
        return archive_pages(payload, raw_key)


SOURCE = ArchiveSource()
