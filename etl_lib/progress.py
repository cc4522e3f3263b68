"""How long-running steps show progress: a wrapper around their list of work items."""

from __future__ import annotations

from collections.abc import Callable, Iterable

# Wraps a list of work items for display (the CLI passes a progress bar); identity by default.
Track = Callable[[list, str], Iterable]


def untracked(items: list, _description: str) -> Iterable:
    return items
