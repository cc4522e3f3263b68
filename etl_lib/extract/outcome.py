"""What an extract run did with one playlist: the statuses its heartbeats record."""

from __future__ import annotations

from enum import StrEnum


class ExtractStatus(StrEnum):
    """One playlist's outcome in one extract run, as the run's heartbeat stores it.

    ``extracted``: a new snapshot landed in the raw zone; ``already_landed``: it was there
    already (a re-run at the same instant); ``unchanged``: same snapshot_id as the last one,
    nothing downloaded; ``failed``: this playlist's error (the others went on);
    ``not_attempted``: the run stopped early on a rate limit or an exhausted quota, before
    this playlist (its heartbeat record holds that error).
    """

    EXTRACTED = "extracted"
    ALREADY_LANDED = "already_landed"
    UNCHANGED = "unchanged"
    FAILED = "failed"
    NOT_ATTEMPTED = "not_attempted"

    @property
    def words(self) -> str:
        """As people read it: ``already landed``."""
        return self.value.replace("_", " ")

    @property
    def landed(self) -> bool:
        """A snapshot of the playlist is in the raw zone after this check."""
        return self in (ExtractStatus.EXTRACTED, ExtractStatus.ALREADY_LANDED)

    @classmethod
    def read(cls, text: object) -> ExtractStatus | None:
        """A status from a heartbeat, or None for anything else. Heartbeats written before
        statuses were names hold words with spaces (``already landed``): read alike."""
        if not isinstance(text, str):
            return None
        try:
            return cls(text.strip().replace(" ", "_"))
        except ValueError:
            return None
