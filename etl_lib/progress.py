"""How long-running steps show progress: a wrapper around their list of work items."""

from __future__ import annotations

from collections.abc import Callable, Iterable

# Wraps a list of work items for display (the CLI passes a progress bar); identity by default.
Progress = Callable[[list, str], Iterable]


def no_progress(items: list, _description: str) -> Iterable:
    return items
