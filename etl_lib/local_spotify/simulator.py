"""A deterministic daily "Top 50" chart, shaped like the Spotify Web API's playlist objects.

The model is closed-form per (track, day), so any day's chart can be computed without
replaying history:

* The catalogue is endless: track slot ``n`` debuts in week ``n // 7`` (mostly on the
  Friday, when releases land). Each slot has a peak height, a rise time (big releases debut
  at their peak, slow burners climb for weeks), a half-life, and for some a second "viral"
  bump months later, which brings tracks back after they dropped out.
* A dozen evergreen catalogue tracks hover around the bottom of the chart with a seasonal
  swing, so old releases (``release_date_precision`` "year" and "month") are always around.
* A track's score on a day is its trajectory times hash-derived daily noise; the chart is
  the top 50 scores. New entries, climbers, fallers, drop-outs and re-entries all follow.

Artists, albums and tracks depend on the seed only, so playlists share one catalogue;
each playlist mixes its id into the per-track affinity and the daily noise, so every
playlist charts differently, and a country chart (``CHART_MARKETS``) favours its own
market's artists. Nothing reads the wall clock or the global random state.

Playlists have owners, as the 2026 Web API rules need: the editorial charts
(``DEFAULT_PLAYLISTS``) belong to the user "spotify"; ``DEFAULT_USER_PLAYLISTS`` adds one
owned by "local-user", a collaborative one owned by "other-user" with "local-user" as a
collaborator, and one owned by "other-user" alone. ``owner()``, ``collaborators()`` and
``is_owner_or_collaborator()`` answer who may read a playlist's items; the server applies it.
"""

from __future__ import annotations

import base64
import hashlib
import heapq
import math
import random
from bisect import bisect_right
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from itertools import accumulate
from typing import Any

SPOTIFY_API_BASE_URL = "https://api.spotify.com/v1"
OPEN_SPOTIFY_URL = "https://open.spotify.com"
_IMAGE_URL = "https://i.scdn.co/image"
DEFAULT_PLAYLISTS: dict[str, str] = {
    "37i9dQZEVXbNG2KDcFcKOF": "Top Songs - Global",
    "37i9dQZEVXbMDoHDwVN2tF": "Top 50 - Global",
    "37i9dQZEVXbLRQDuF5jeBp": "Top 50 - USA",
    "37i9dQZEVXbKXQ4mDTEBXq": "Top 50 - Japan",
}
# A country chart favours its own market's artists (the country their label registers ISRCs
# in), as real country charts do; the global charts favour no one.
CHART_MARKETS: dict[str, str] = {
    "37i9dQZEVXbLRQDuF5jeBp": "US",
    "37i9dQZEVXbKXQ4mDTEBXq": "JP",
}
SPOTIFY_USER_ID = "spotify"  # the owner of the editorial playlists
LOCAL_USER_ID = "local-user"  # the user the local server logs in as by default
OTHER_USER_ID = "other-user"
DEFAULT_USERS: dict[str, str] = {  # user id -> display name
    SPOTIFY_USER_ID: "Spotify",
    LOCAL_USER_ID: "Local User",
    OTHER_USER_ID: "Other User",
}
CHART_SIZE = 50
# A track older than this is no longer a chart candidate; it also bounds how far back the
# start of a chart run is searched.
TRACK_LIFETIME_DAYS = 400
MARKETS = ("AR", "AU", "BR", "CA", "DE", "ES", "FR", "GB", "IN", "JP", "KR", "MX", "US")

_FOLLOWERS_REFERENCE_DAY = date(2026, 1, 1)
_FOLLOWER_GROWTH_PER_DAY = 0.0001  # about 3.7 % a year
_EPOCH = date(2000, 1, 7)  # a Friday, so day numbers divisible by 7 are release days
_BASE62 = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_ARTIST_COUNT = 320
_EVERGREEN_COUNT = 12
_SCORE_WANDER = 0.12  # standard deviation of the log-score's slow drift ...
_SCORE_JITTER = 0.03  # ... and of its day-to-day jitter
_WANDER_DAYS = 6
# _normal() is Box-Muller on 64-bit uniforms, so |value| <= sqrt(2 * 64 * ln 2) < 9.5.
_MAX_NOISE_FACTOR = math.exp(9.5 * (_SCORE_WANDER + _SCORE_JITTER))
_PLAYLIST_AFFINITY = 0.30  # standard deviation of a playlist's log-preference for a track
_HOME_MARKET_AFFINITY = 1.5  # a country chart's extra log-preference for local artists


@dataclass(frozen=True)
class UserPlaylist:
    """A playlist a (non-Spotify) user owns; collaborators may read and edit it too."""

    name: str
    owner_id: str
    collaborators: tuple[str, ...] = ()


DEFAULT_USER_PLAYLISTS: dict[str, UserPlaylist] = {
    "3cEYpjA9oz9GiPac4AsH4n": UserPlaylist("My Daily Top 50", LOCAL_USER_ID),
    "1ClnXq6wJ9Ekl9Gu5VdGbX": UserPlaylist("Team Chart", OTHER_USER_ID, (LOCAL_USER_ID,)),
    "5Rrf7mqN8uus2AaQQQNdc1": UserPlaylist("Someone Else's Chart", OTHER_USER_ID),
}


# -- deterministic numbers ---------------------------------------------------------------


def _digest(*parts: object, size: int = 16) -> bytes:
    text = "\x1f".join(str(part) for part in parts)
    return hashlib.blake2b(text.encode(), digest_size=size).digest()


def _normal(*parts: object) -> float:
    raw = _digest(*parts, size=16)
    u1 = (int.from_bytes(raw[:8], "big") + 1) / (2**64 + 1)
    u2 = int.from_bytes(raw[8:], "big") / 2**64
    return math.sqrt(-2.0 * math.log(u1)) * math.cos(2.0 * math.pi * u2)


def _rng(*parts: object) -> random.Random:
    return random.Random(int.from_bytes(_digest(*parts), "big"))


def spotify_id(*parts: object) -> str:
    """A 22-character base62 id, like Spotify's, derived from ``parts``."""
    number = int.from_bytes(_digest("spotify-id", *parts, size=17), "big") % 62**22
    chars = []
    for _ in range(22):
        number, digit = divmod(number, 62)
        chars.append(_BASE62[digit])
    return "".join(reversed(chars))


def day_number(day: date) -> int:
    return (day - _EPOCH).days


def utc_day(moment: date) -> date:
    """The UTC calendar day of a date or an aware datetime (a naive datetime is refused)."""
    if isinstance(moment, datetime):
        if moment.tzinfo is None:
            raise ValueError(f"datetime {moment!r} has no timezone; pass an aware UTC datetime")
        return moment.astimezone(UTC).date()
    return moment


def _iso_day(number: int) -> str:
    return (_EPOCH + timedelta(days=number)).isoformat()


# -- names ---------------------------------------------------------------------------------

_FIRST_NAMES = (
    "Mira", "Kaelen", "Juno", "Teo", "Anouk", "Rafa", "Lio", "Nayeli", "Oskar", "Zuri",
    "Elodie", "Marlo", "Ines", "Caspian", "Talia", "Ronan", "Sefa", "Maelle", "Idris", "Wren",
    "Luca", "Amara", "Soren", "Noor", "Calla", "Dario", "Yara", "Emeric", "Lumi", "Ezra",
)
_LAST_NAMES = (
    "Vantrell", "Okafor-Lind", "Castellane", "Marwick", "Solberg", "Dumarais", "Ferreira",
    "Quillan", "Brightwater", "Halvorsen", "Moreau-Kim", "Ashgrove", "Delacroix", "Venn",
    "Okonjo", "Rasmund", "Tiberi", "Callow", "Esterhaus", "Lindqvist", "O'Halloran",
    "D'Amaro", "Sato-Reyes", "Blackmere", "Winslow", "Pereira", "Nakamura-Hill", "Faircloth",
)
_NICKNAMES = ("Skyline", "Lucky", "Ghost", "Velvet", "Kid", "Smoke", "Halo", "Nova")
_ADJECTIVES = (
    "Golden", "Electric", "Quiet", "Neon", "Paper", "Velvet", "Broken", "Silver", "Wild",
    "Midnight", "Lonely", "Crystal", "Sweet", "Cold", "Burning", "Hollow", "Lucky", "Tender",
    "Restless", "Faded", "Lazy", "Secret", "Honey", "Static", "Blue",
)
_NOUNS = (
    "Heart", "Summer", "Signal", "Highway", "Ocean", "Fire", "Window", "Skyline", "River",
    "Mirror", "Letter", "Echo", "Garden", "Satellite", "Shadow", "Thunder", "Daydream",
    "Horizon", "Carousel", "Porcelain", "Comet", "Lighthouse", "Parade", "Tide", "Motel",
)
_VERBS = ("Call", "Hold", "Chase", "Break", "Dance", "Run", "Wait", "Fall", "Burn", "Drive")
_ADVERBS = ("Slowly", "Again", "Tonight", "Home", "Closer", "Forever", "Back")
_PREPOSITIONS = ("Into", "Through", "Under", "Beyond", "Across", "Over")
_FOREIGN_TITLES = (
    # Japanese, Korean, Cyrillic, Arabic, Hindi, Chinese, Greek, Hebrew, Thai, Spanish and
    # Portuguese: the raw zone and the tables must carry every script unchanged.
    "真夜中のメロディー", "ひかりの向こう", "さよならの季節", "青い春の約束", "星屑ドライブ",
    "별빛 속으로", "우리의 여름", "너에게 닿기를", "밤하늘 산책", "첫눈의 기억",
    "Белые ночи", "Летний дождь", "Не уходи", "Звёзды над городом", "Тёплый ветер",
    "ليلة حب", "يا قمر", "قلبي معك", "نجوم الليل",
    "दिल की धड़कन", "तेरे बिना", "सपनों का शहर", "बारिश की बूँदें",
    "夏日微风", "星空下的约定", "Καλοκαίρι στην πόλη", "לילה לבן", "คิดถึงเธอ",
    "Corazón Salvaje", "Mañana Será", "Lágrimas de Sal", "Saudade de Você", "Coração Azul",
    "Tokyo Nights (東京の夜)", "Seoul Rain (서울의 비)",
)
_TITLE_SUFFIXES = (" - Sped Up", " - Remix", " (Acoustic)", " - Live", " (Slowed + Reverb)")
_COMPILATION_NAMES = (
    "Summer Hits {year}", "Now That's {adj}! Vol. {vol}", "{adj} & {adj2}: The Collection",
    "Best of \"{noun}\" Nights", "Love Songs, Volume {vol}",
)
_SCRIPT_NAMES: dict[str, tuple[tuple[str, ...], tuple[str, ...], str]] = {
    # script -> (family or first names, given or last names, joiner)
    "ja": (("水野", "星川", "朝霧", "白石", "葉山"), ("ひかり", "ユウ", "蒼", "カナデ"), ""),
    "ko": (("김", "박", "서", "윤", "한", "류"), ("하린", "도윤", "서아", "지호", "은솔"), ""),
    "ru": (("Алина", "Мирон", "Вера", "Тимур"), ("Веснова", "Громов", "Лесная", "Зорин"), " "),
    "ar": (("نور", "ليان", "سليم", "ريم", "كريم"), ("الحسن", "سالم", "البدر", "ناصر"), " "),
    "hi": (("आरव", "मीरा", "कबीर", "अनन्या"), ("मेहरा", "राठौर", "सिन्हा", "वर्मा"), " "),
}
_ISRC_COUNTRY = {"ja": "JP", "ko": "KR", "ru": "RU", "ar": "AE", "hi": "IN"}
_LATIN_COUNTRIES = ("US", "GB", "SE", "DE", "FR", "BR", "MX", "QZ", "QM", "NG", "ES", "CA")


def _artist_name(rng: random.Random) -> tuple[str, str]:
    """A made-up artist name and the country its label registers ISRCs in."""
    style = rng.choices(
        ("person", "band", "stylized", "nickname", "comma", "ja", "ko", "ru", "ar", "hi"),
        weights=(40, 12, 8, 4, 4, 7, 8, 6, 5, 6),
    )[0]
    country = rng.choice(_LATIN_COUNTRIES)
    if style == "person":
        name = f"{rng.choice(_FIRST_NAMES)} {rng.choice(_LAST_NAMES)}"
    elif style == "band":
        name = rng.choice(
            (
                f"The {rng.choice(_ADJECTIVES)} {rng.choice(_NOUNS)}s",
                f"{rng.choice(_FIRST_NAMES)} & the {rng.choice(_NOUNS)}s",
                f"{rng.choice(_NOUNS)} Collective",
            )
        )
    elif style == "stylized":
        name = f"{rng.choice(_NOUNS).lower()}{rng.choice(('', 'x', '9', '.wav', ' kid'))}"
    elif style == "nickname":
        first, last = rng.choice(_FIRST_NAMES), rng.choice(_LAST_NAMES)
        name = f'{first} "{rng.choice(_NICKNAMES)}" {last}'
    elif style == "comma":
        name = f"{rng.choice(_FIRST_NAMES)}, the {rng.choice(_NOUNS)}"
    else:
        firsts, lasts, joiner = _SCRIPT_NAMES[style]
        name = f"{rng.choice(firsts)}{joiner}{rng.choice(lasts)}"
        country = _ISRC_COUNTRY[style]
    return name, country


def _title(rng: random.Random) -> str:
    adj, noun, noun2 = rng.choice(_ADJECTIVES), rng.choice(_NOUNS), rng.choice(_NOUNS)
    verb = rng.choice(_VERBS)
    patterns = (
        (f"{adj} {noun}", 18),
        (noun, 8),
        (f"{verb} Me {rng.choice(_ADVERBS)}", 6),
        (f"{verb} {rng.choice(_PREPOSITIONS)} the {noun}", 6),
        (f"{noun}, {noun2}", 5),
        (f"{adj}, {adj} {noun}", 3),
        (f"Don't {verb} {rng.choice(_ADVERBS)}", 5),
        (f"{noun} 'n' {noun2}", 2),
        (f'"{adj}" {noun}', 3),
        (f'The {noun} Said "{verb}"', 2),
        (f"{noun} & {noun2}", 5),
        (f"I'm {adj}", 3),
        (rng.choice(_FOREIGN_TITLES), 14),
    )
    title = rng.choices([text for text, _ in patterns], weights=[w for _, w in patterns])[0]
    if rng.random() < 0.07:
        title += rng.choice(_TITLE_SUFFIXES)
    return title


def _credit_list(names: list[str]) -> str:
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} & {names[-1]}"


# -- catalogue records ---------------------------------------------------------------------


@dataclass(frozen=True)
class Artist:
    id: str
    name: str
    isrc_country: str


@dataclass(frozen=True)
class Album:
    id: str
    name: str
    album_type: str  # album, single or compilation
    release_date: str  # "2019", "2021-03" or "2021-03-05", as precise as the label gave it
    release_date_precision: str
    total_tracks: int
    artists: tuple[Artist, ...]


@dataclass(frozen=True)
class Track:
    key: str
    id: str
    name: str
    artists: tuple[Artist, ...]
    album: Album
    disc_number: int
    track_number: int
    duration_ms: int
    explicit: bool
    isrc: str | None


@dataclass(frozen=True)
class _Trajectory:
    debut: int  # day number of the first day it can chart
    peak: float
    rise_days: int
    half_life: float
    bump_at: float  # age in days of the viral resurgence; bump_height 0 means none
    bump_height: float
    bump_width: float

    def level(self, age: int) -> float:
        if age < self.rise_days:
            level = self.peak * (0.15 + 0.85 * age / self.rise_days)
        else:
            level = self.peak * 0.5 ** ((age - self.rise_days) / self.half_life)
        if self.bump_height:
            level += self.bump_height * math.exp(-(((age - self.bump_at) / self.bump_width) ** 2))
        return level


@dataclass(frozen=True)
class _Evergreen:
    base: float
    swing: float
    peak_day_of_year: int

    def level(self, day: int) -> float:
        day_of_year = (_EPOCH + timedelta(days=day)).timetuple().tm_yday
        season = math.cos(2 * math.pi * (day_of_year - self.peak_day_of_year) / 365.25)
        return self.base * (1.0 + self.swing * season)


@dataclass
class _Memo:
    tracks: dict[str, Track] = field(default_factory=dict)
    trajectories: dict[int, _Trajectory] = field(default_factory=dict)
    rankings: dict[tuple[str, int], tuple[str, ...]] = field(default_factory=dict)
    run_starts: dict[tuple[str, int], dict[str, int]] = field(default_factory=dict)
    affinities: dict[tuple[str, str], float] = field(default_factory=dict)
    wanders: dict[tuple[str, str, int], float] = field(default_factory=dict)


_MEMO: dict[tuple[int, int], _Memo] = {}


# -- the simulator -------------------------------------------------------------------------


class ChartSimulator:
    """Daily charts for a few playlists, the same for the same seed on every machine."""

    def __init__(
        self,
        seed: int = 2026,
        playlists: dict[str, str] | None = None,
        *,
        chart_size: int = CHART_SIZE,
        user_playlists: dict[str, UserPlaylist] | None = None,
        users: dict[str, str] | None = None,
    ) -> None:
        """``playlists`` are Spotify-owned (id -> name); ``user_playlists`` are users' own.

        ``playlists`` ends up holding every playlist's name, both kinds. ``users`` adds or
        renames display names (id -> name) on top of ``DEFAULT_USERS``.
        """
        self.seed = seed
        editorial = dict(DEFAULT_PLAYLISTS if playlists is None else playlists)
        self.user_playlists = dict(
            DEFAULT_USER_PLAYLISTS if user_playlists is None else user_playlists
        )
        if clash := editorial.keys() & self.user_playlists.keys():
            raise ValueError(f"playlists both Spotify's and a user's: {sorted(clash)}")
        self.playlists = editorial | {
            playlist_id: playlist.name for playlist_id, playlist in self.user_playlists.items()
        }
        self.users = DEFAULT_USERS | dict(users or {})
        self.chart_size = chart_size
        self._artists = self._make_artists()
        cumulative = list(accumulate(1.0 / (rank + 1) ** 0.6 for rank in range(_ARTIST_COUNT)))
        self._artist_popularity = cumulative  # Zipf: a few artists hold many chart slots
        self._evergreen_levels = self._make_evergreens()
        self._various_artists = Artist(spotify_id("various-artists"), "Various Artists", "QZ")
        # Everything below is a pure function of the seed, so simulators with the same seed
        # share the memo (test suites build one per test); concurrent fills only repeat work.
        memo = _MEMO.setdefault((seed, chart_size), _Memo())
        self._tracks = memo.tracks
        self._trajectories = memo.trajectories
        self._rankings = memo.rankings
        self._run_starts = memo.run_starts
        self._affinities = memo.affinities
        self._wanders = memo.wanders

    # public API ---------------------------------------------------------------------------

    def has_playlist(self, playlist_id: str) -> bool:
        return playlist_id in self.playlists

    def owner(self, playlist_id: str) -> str:
        """The owner's user id: "spotify" for the editorial playlists."""
        self._playlist_name(playlist_id)
        user_playlist = self.user_playlists.get(playlist_id)
        return SPOTIFY_USER_ID if user_playlist is None else user_playlist.owner_id

    def collaborators(self, playlist_id: str) -> tuple[str, ...]:
        """The user ids besides the owner who may edit (and so read) the playlist."""
        self._playlist_name(playlist_id)
        user_playlist = self.user_playlists.get(playlist_id)
        return () if user_playlist is None else user_playlist.collaborators

    def is_spotify_owned(self, playlist_id: str) -> bool:
        return self.owner(playlist_id) == SPOTIFY_USER_ID

    def is_owner_or_collaborator(self, playlist_id: str, user_id: str | None) -> bool:
        """Whether ``user_id`` (``None``: no user, an app token) owns or co-edits it."""
        if user_id is None:
            return False
        return user_id == self.owner(playlist_id) or user_id in self.collaborators(playlist_id)

    def display_name(self, user_id: str) -> str:
        return self.users.get(user_id, user_id)

    def account_id(self, user_id: str) -> str:
        """The user's immutable, pseudonymous ``account_id`` (unlike ``id``, never renamed)."""
        return spotify_id(self.seed, "account", user_id)

    def chart_track_ids(self, playlist_id: str, day: date) -> list[str]:
        """The Spotify track ids of the day's chart, best first."""
        return [self.track(key).id for key in self._ranking(playlist_id, utc_day(day))]

    def chart(
        self, playlist_id: str, day: date, *, api_base_url: str = SPOTIFY_API_BASE_URL
    ) -> list[dict[str, Any]]:
        """The day's entries, best first, each a PlaylistTrackObject as the 2026 API has it."""
        day = utc_day(day)
        ranking = self._ranking(playlist_id, day)
        run_starts = self._current_run_starts(playlist_id, day_number(day))
        return [
            {
                "added_at": f"{_iso_day(run_starts[key])}T00:00:00Z",
                "added_by": _user_object(self._added_by(playlist_id, key), api_base_url),
                "is_local": False,
                "item": self._track_object(self.track(key), api_base_url),
                # Deprecated since 2026 but still served next to "item".
                "track": self._track_object(self.track(key), api_base_url),
            }
            for key in ranking
        ]

    def snapshot_id(self, playlist_id: str, day: date) -> str:
        """Changes exactly when the chart (order or entry dates) changes."""
        day = utc_day(day)
        run_starts = self._current_run_starts(playlist_id, day_number(day))
        content = "|".join(
            f"{self.track(key).id}@{run_starts[key]}" for key in self._ranking(playlist_id, day)
        )
        digest = _digest("snapshot", playlist_id, content, size=20)
        return base64.b64encode(b"\x00\x00\x00\x01" + digest).decode("ascii")

    def playlist(
        self, playlist_id: str, day: date, api_base_url: str = SPOTIFY_API_BASE_URL
    ) -> dict[str, Any]:
        """The PlaylistObject's metadata; the server embeds the first items page."""
        name = self._playlist_name(playlist_id)
        day = utc_day(day)
        image_hex = _digest("playlist-image", self.seed, playlist_id, size=12).hex()
        owner_id = self.owner(playlist_id)
        collaborative = bool(self.collaborators(playlist_id))
        if owner_id == SPOTIFY_USER_ID:
            description = f"Your daily update of the most played tracks right now - {name}."
            # Editorial playlist covers come without dimensions.
            images = [
                {"height": None, "url": f"{_IMAGE_URL}/ab67706f00000002{image_hex}", "width": None}
            ]
        else:
            description = f"Updated daily by {self.display_name(owner_id)}."
            # A user's playlist without an uploaded cover gets a mosaic of its album covers.
            images = [
                {"height": size, "url": f"https://mosaic.scdn.co/{size}/{image_hex}", "width": size}
                for size in (640, 300, 60)
            ]
        return {
            "collaborative": collaborative,
            "description": description,
            "external_urls": {"spotify": f"{OPEN_SPOTIFY_URL}/playlist/{playlist_id}"},
            "followers": {"href": None, "total": self.followers(playlist_id, day)},
            "href": f"{api_base_url}/playlists/{playlist_id}",
            "id": playlist_id,
            "images": images,
            "name": name,
            "owner": {
                "display_name": self.display_name(owner_id),
                **_user_object(owner_id, api_base_url),
            },
            "primary_color": None,
            # Spotify makes every collaborative playlist private.
            "public": not collaborative,
            "snapshot_id": self.snapshot_id(playlist_id, day),
            "type": "playlist",
            "uri": f"spotify:playlist:{playlist_id}",
        }

    def followers(self, playlist_id: str, day: date) -> int:
        """Grows slowly and never shrinks, like a big editorial playlist's.

        A user's playlist has a handful of followers, and keeps them.
        """
        if not self.is_spotify_owned(playlist_id):
            return _digest("followers", self.seed, playlist_id)[0] % 40
        size_at_reference = 15_000_000 + 150_000 * _digest("followers", self.seed, playlist_id)[0]
        days_since_reference = day_number(utc_day(day)) - day_number(_FOLLOWERS_REFERENCE_DAY)
        return int(size_at_reference * math.exp(_FOLLOWER_GROWTH_PER_DAY * days_since_reference))

    def track(self, key: str) -> Track:
        """A catalogue track by its simulator key (``s<slot>`` or ``e<index>``)."""
        cached = self._tracks.get(key)
        if cached is None:
            cached = self._tracks[key] = self._make_track(key)
        return cached

    # chart mechanics ----------------------------------------------------------------------

    def _added_by(self, playlist_id: str, key: str) -> str:
        """Who added a track: the owner, or on a collaborative playlist any of its editors."""
        editors = (self.owner(playlist_id), *self.collaborators(playlist_id))
        if len(editors) == 1:
            return editors[0]
        return editors[_digest(self.seed, "added-by", playlist_id, key)[0] % len(editors)]

    def _playlist_name(self, playlist_id: str) -> str:
        try:
            return self.playlists[playlist_id]
        except KeyError:
            raise KeyError(playlist_id) from None

    def _ranking(self, playlist_id: str, day: date) -> tuple[str, ...]:
        self._playlist_name(playlist_id)
        return self._ranking_on(playlist_id, day_number(day))

    def _ranking_on(self, playlist_id: str, day: int) -> tuple[str, ...]:
        cached = self._rankings.get((playlist_id, day))
        if cached is not None:
            return cached
        candidates: list[tuple[float, str, float]] = []  # (noiseless score, key, level)
        first_week = (day - TRACK_LIFETIME_DAYS) // 7 - 1
        for slot in range(first_week * 7, (day // 7 + 1) * 7):
            trajectory = self._trajectory(slot)
            age = day - trajectory.debut
            if 0 <= age <= TRACK_LIFETIME_DAYS:
                key = f"s{slot}"
                level = trajectory.level(age)
                candidates.append((level * math.exp(self._affinity(playlist_id, key)), key, level))
        for index, evergreen in enumerate(self._evergreen_levels):
            key = f"e{index}"
            level = evergreen.level(day)
            candidates.append((level * math.exp(self._affinity(playlist_id, key)), key, level))
        # The noise is bounded, so once even the luckiest remaining candidate cannot beat
        # the current 50th score, the rest are skipped: the result equals a full sort.
        candidates.sort(key=lambda candidate: (-candidate[0], candidate[1]))
        best: list[tuple[float, str]] = []  # min-heap of (score, key) of the top so far
        for noiseless, key, level in candidates:
            if len(best) == self.chart_size and noiseless * _MAX_NOISE_FACTOR < best[0][0]:
                break
            scored = (self._score(playlist_id, key, day, level), key)
            if len(best) < self.chart_size:
                heapq.heappush(best, scored)
            elif scored[0] > best[0][0]:
                heapq.heapreplace(best, scored)
        best.sort(key=lambda scored: (-scored[0], scored[1]))
        ranking = tuple(key for _, key in best)
        self._rankings[(playlist_id, day)] = ranking
        return ranking

    def _affinity(self, playlist_id: str, key: str) -> float:
        affinity = self._affinities.get((playlist_id, key))
        if affinity is None:
            affinity = _PLAYLIST_AFFINITY * _normal(self.seed, playlist_id, "affinity", key)
            market = CHART_MARKETS.get(playlist_id)
            if market is not None and self.track(key).artists[0].isrc_country == market:
                affinity += _HOME_MARKET_AFFINITY
            self._affinities[(playlist_id, key)] = affinity
        return affinity

    def _score(self, playlist_id: str, key: str, day: int, level: float) -> float:
        affinity = self._affinity(playlist_id, key)
        # Mostly a slow wander (interpolated between values every few days) plus a little
        # day-to-day jitter: real chart positions drift rather than jump.
        anchor, offset = divmod(day, _WANDER_DAYS)
        weight = (1 - math.cos(math.pi * offset / _WANDER_DAYS)) / 2
        wander = (1 - weight) * self._wander(playlist_id, key, anchor) + weight * self._wander(
            playlist_id, key, anchor + 1
        )
        jitter = _normal(self.seed, playlist_id, key, day)
        return level * math.exp(affinity + _SCORE_WANDER * wander + _SCORE_JITTER * jitter)

    def _wander(self, playlist_id: str, key: str, anchor: int) -> float:
        cached = self._wanders.get((playlist_id, key, anchor))
        if cached is None:
            cached = _normal(self.seed, playlist_id, key, "wander", anchor)
            self._wanders[(playlist_id, key, anchor)] = cached
        return cached

    def _current_run_starts(self, playlist_id: str, day: int) -> dict[str, int]:
        """For each track charting on ``day``: the first day of its unbroken run up to it."""
        cached = self._run_starts.get((playlist_id, day))
        if cached is not None:
            return cached
        starts = {key: day for key in self._ranking_on(playlist_id, day)}
        still_running = set(starts)
        earlier = day - 1
        while still_running and day - earlier <= TRACK_LIFETIME_DAYS:
            charting = set(self._ranking_on(playlist_id, earlier))
            for key in list(still_running):
                if key in charting:
                    starts[key] = earlier
                else:
                    still_running.discard(key)
            earlier -= 1
        self._run_starts[(playlist_id, day)] = starts
        return starts

    def _trajectory(self, slot: int) -> _Trajectory:
        cached = self._trajectories.get(slot)
        if cached is not None:
            return cached
        rng = _rng(self.seed, "trajectory", slot)
        release_day = (slot // 7) * 7
        debut = release_day if rng.random() < 0.65 else release_day + rng.randrange(7)
        peak = rng.lognormvariate(0.0, 1.0)
        rise_days = 0 if rng.random() < 0.55 else rng.randint(3, 35)
        half_life = min(250.0, max(3.0, rng.lognormvariate(math.log(20.0), 0.7)))
        bump_at, bump_height, bump_width = 0.0, 0.0, 1.0
        if rng.random() < 0.22:
            bump_at = rise_days + rng.uniform(25.0, 200.0)
            bump_height = peak * rng.uniform(0.4, 1.3)
            bump_width = rng.uniform(4.0, 18.0)
        cached = _Trajectory(debut, peak, rise_days, half_life, bump_at, bump_height, bump_width)
        self._trajectories[slot] = cached
        return cached

    def _make_evergreens(self) -> tuple[_Evergreen, ...]:
        rng = _rng(self.seed, "evergreens")
        return tuple(
            _Evergreen(
                base=rng.uniform(0.35, 0.7),
                swing=rng.uniform(0.1, 0.6),
                peak_day_of_year=rng.randrange(366),
            )
            for _ in range(_EVERGREEN_COUNT)
        )

    # catalogue ----------------------------------------------------------------------------

    def _make_artists(self) -> list[Artist]:
        rng = _rng(self.seed, "artists")
        artists: list[Artist] = []
        seen: set[str] = set()
        while len(artists) < _ARTIST_COUNT:
            name, country = _artist_name(rng)
            if name not in seen:
                seen.add(name)
                artists.append(Artist(spotify_id(self.seed, "artist", name), name, country))
        return artists

    def _pick_artist(self, rng: random.Random, exclude: set[int]) -> int:
        while True:
            point = rng.random() * self._artist_popularity[-1]
            index = bisect_right(self._artist_popularity, point)
            if index not in exclude:
                return index

    def _make_track(self, key: str) -> Track:
        kind, number = key[0], int(key[1:])
        rng = _rng(self.seed, "track", key)
        primary = self._pick_artist(rng, set())
        credited = [primary]
        for _ in range(rng.choices((0, 1, 2, 3), weights=(60, 27, 9, 4))[0]):
            credited.append(self._pick_artist(rng, set(credited)))
        artists = tuple(self._artists[index] for index in credited)

        base_title = _title(rng)
        featured = len(artists) > 1 and rng.random() < 0.6
        name = base_title
        if featured:
            joiner = rng.choice(("feat.", "feat.", "with"))
            name = f"{base_title} ({joiner} {_credit_list([a.name for a in artists[1:]])})"

        if kind == "e":
            album, track_number = self._catalogue_album(rng, artists, key, precision_hint=number)
        else:
            debut = self._trajectory(number).debut
            roll = rng.random()
            if roll < 0.15:
                album, track_number = self._catalogue_album(rng, artists, key, None)
            elif roll < 0.60:
                release_day = debut - (0 if rng.random() < 0.7 else rng.randint(1, 21))
                album_artists = artists if not featured else artists[:1]
                total = rng.choices((1, 2, 3, 4), weights=(70, 15, 10, 5))[0]
                album = Album(
                    id=spotify_id(self.seed, "album", key),
                    name=base_title,
                    album_type="single",
                    release_date=_iso_day(release_day),
                    release_date_precision="day",
                    total_tracks=total,
                    artists=album_artists,
                )
                track_number = 1
            else:
                album = self._artist_album(primary, debut)
                track_number = 1 + int.from_bytes(_digest(self.seed, "track-no", key), "big") % (
                    album.total_tracks
                )

        duration = int(rng.gauss(195_000, 38_000) + (25_000 if kind == "e" else 0))
        duration = min(412_000, max(92_000, duration))
        release_year = int(album.release_date[:4])
        isrc = None
        if rng.random() >= 0.035:
            registrant = spotify_id(self.seed, "registrant", artists[0].id)[:3].upper()
            serial = rng.randrange(100_000)
            isrc = f"{artists[0].isrc_country}{registrant}{release_year % 100:02d}{serial:05d}"
        return Track(
            key=key,
            id=spotify_id(self.seed, "track", key),
            name=name,
            artists=artists,
            album=album,
            disc_number=1,
            track_number=track_number,
            duration_ms=duration,
            explicit=rng.random() < 0.38,
            isrc=isrc,
        )

    def _artist_album(self, artist_index: int, debut: int) -> Album:
        """The album of an artist's era: tracks debuting close together share it."""
        offset = int.from_bytes(_digest(self.seed, "era", artist_index), "big") % 120
        era = (debut + offset) // 120
        rng = _rng(self.seed, "artist-album", artist_index, era)
        artist = self._artists[artist_index]
        name = _title(rng)
        if rng.random() < 0.15:
            name += rng.choice((" (Deluxe)", " (Deluxe Edition)", ": Chapter II"))
        return Album(
            id=spotify_id(self.seed, "album", artist.id, era),
            name=name,
            album_type="album",
            release_date=_iso_day(era * 120 - offset),
            release_date_precision="day",
            total_tracks=rng.randint(8, 22),
            artists=(artist,),
        )

    def _catalogue_album(
        self, rng: random.Random, artists: tuple[Artist, ...], key: str, precision_hint: int | None
    ) -> tuple[Album, int]:
        """An old release resurfacing; labels often dated those to the year or month only."""
        if precision_hint is None:
            precision = rng.choices(("year", "month", "day"), weights=(40, 35, 25))[0]
            year = rng.randint(1965, 2022)
        else:
            # Evergreens cycle through the precisions so every chart has coarse dates.
            precision = ("year", "month", "day")[precision_hint % 3]
            year = rng.randint(1958, 2016)
        month, day_of_month = rng.randint(1, 12), rng.randint(1, 28)
        release_date = {
            "year": f"{year}",
            "month": f"{year}-{month:02d}",
            "day": f"{year}-{month:02d}-{day_of_month:02d}",
        }[precision]
        album_type = rng.choices(("album", "compilation", "single"), weights=(60, 25, 15))[0]
        if album_type == "compilation":
            name = rng.choice(_COMPILATION_NAMES).format(
                year=year, adj=rng.choice(_ADJECTIVES), adj2=rng.choice(_ADJECTIVES),
                noun=rng.choice(_NOUNS), vol=rng.randint(2, 40),
            )
            album_artists: tuple[Artist, ...] = (self._various_artists,)
            total = rng.randint(18, 40)
        elif album_type == "single":
            name, album_artists, total = _title(rng), artists[:1], rng.randint(1, 3)
        else:
            name, album_artists, total = _title(rng), artists[:1], rng.randint(9, 16)
        album = Album(
            id=spotify_id(self.seed, "album", key),
            name=name,
            album_type=album_type,
            release_date=release_date,
            release_date_precision=precision,
            total_tracks=total,
            artists=album_artists,
        )
        return album, rng.randint(1, min(total, 12))

    # JSON objects -------------------------------------------------------------------------

    def _track_object(self, track: Track, api_base_url: str) -> dict[str, Any]:
        album = track.album
        image_hex = _digest("album-image", album.id, size=12).hex()
        return {
            "album": {
                "album_type": album.album_type,
                "artists": [_artist_object(a, api_base_url) for a in album.artists],
                "available_markets": list(MARKETS),
                "external_urls": {"spotify": f"{OPEN_SPOTIFY_URL}/album/{album.id}"},
                "href": f"{api_base_url}/albums/{album.id}",
                "id": album.id,
                "images": [
                    {"height": size, "url": f"{_IMAGE_URL}/ab67616d0000{code}{image_hex}",
                     "width": size}
                    for size, code in ((640, "b273"), (300, "1e02"), (64, "4851"))
                ],
                "name": album.name,
                "release_date": album.release_date,
                "release_date_precision": album.release_date_precision,
                "total_tracks": album.total_tracks,
                "type": "album",
                "uri": f"spotify:album:{album.id}",
            },
            "artists": [_artist_object(a, api_base_url) for a in track.artists],
            "available_markets": list(MARKETS),
            "disc_number": track.disc_number,
            "duration_ms": track.duration_ms,
            "explicit": track.explicit,
            "external_ids": {"isrc": track.isrc} if track.isrc else {},
            "external_urls": {"spotify": f"{OPEN_SPOTIFY_URL}/track/{track.id}"},
            "href": f"{api_base_url}/tracks/{track.id}",
            "id": track.id,
            "is_local": False,
            "name": track.name,
            "track_number": track.track_number,
            "type": "track",
            "uri": f"spotify:track:{track.id}",
        }


def _artist_object(artist: Artist, api_base_url: str) -> dict[str, Any]:
    return {
        "external_urls": {"spotify": f"{OPEN_SPOTIFY_URL}/artist/{artist.id}"},
        "href": f"{api_base_url}/artists/{artist.id}",
        "id": artist.id,
        "name": artist.name,
        "type": "artist",
        "uri": f"spotify:artist:{artist.id}",
    }


def _user_object(user_id: str, api_base_url: str) -> dict[str, Any]:
    return {
        "external_urls": {"spotify": f"{OPEN_SPOTIFY_URL}/user/{user_id}"},
        "href": f"{api_base_url}/users/{user_id}",
        "id": user_id,
        "type": "user",
        "uri": f"spotify:user:{user_id}",
    }
