"""The one exception hierarchy of the project.

``EtlError`` and its subclasses are errors a user can cause or fix (bad input, wrong
credentials, a playlist the API will not serve). The CLI prints their message as one line
and exits non-zero; anything else is a bug and keeps its traceback.
"""


class EtlError(Exception):
    """An error the user can act on; the message names the input and what to do."""

    exit_code = 1


class ConfigError(EtlError):
    """A setting or command-line value is missing or malformed."""

    exit_code = 2


class LakeError(EtlError):
    """The lake root cannot be read or written."""


class SpotifyError(EtlError):
    """The Spotify Web API (or the local server standing in for it) refused a request."""


class PlaylistNotFound(SpotifyError):
    """The API answered 404 for a playlist."""


class SpotifyAuthError(SpotifyError):
    """The token endpoint or the API rejected the credentials."""


class CorruptPayload(EtlError):
    """A raw file is not a playlist payload this project can transform."""


class PlaylistForbidden(SpotifyError):
    """The API answered 403: the token may not read this playlist's items."""


class RateLimited(SpotifyError):
    """A 429 whose Retry-After does not fit in the run's waiting budget."""

    def __init__(self, message: str, until):
        super().__init__(message)
        self.until = until


class QuotaExceeded(SpotifyError):
    """A 429 saying QUOTA_EXCEEDED: the app's quota is spent; waiting does not help."""


class SpotifyUnavailable(SpotifyError):
    """5xx answers or connection failures outlasted the bounded retries."""


class ArchiveError(EtlError):
    """The public playlist archive (or the local server standing in for it) could not be read."""


class ArchiveRateLimited(ArchiveError):
    """GitHub's API rate limit is spent (403 or 429 with ``X-RateLimit-Remaining: 0``): the
    history backfill stops until ``until`` (None when the reply did not say when)."""

    def __init__(self, message: str, until):
        super().__init__(message)
        self.until = until


class SpotifyProtocolError(SpotifyError):
    """The API answered what no correct server sends: a body that is not a JSON object, a
    redirect, a token reply spotipy cannot use, a ``next`` link to another origin, pages
    that repeat or never end, or more items than a snapshot may hold."""


class PayloadLimitExceeded(CorruptPayload):
    """A payload beyond what a playlist snapshot can be (nesting, number size, item count,
    capture time): refused with the limit it broke."""
