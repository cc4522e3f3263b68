"""The benchmark behind ``make bench`` (see bench/README.md)."""


class BenchError(RuntimeError):
    """The benchmark cannot measure what it was asked to (the product changed under it, or a
    path it measures failed)."""
