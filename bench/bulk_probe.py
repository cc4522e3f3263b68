"""Run in a fresh interpreter by ``bench.run``: one bulk transform of a lake's raw zone, as
``spotify-etl`` runs it, and print what it cost.

A fresh process per run starts from the state a command line starts from: no table catalog
opened yet, no worker pool, no threads (so the workers are forked, as on the command line).

Usage: python bench/bulk_probe.py <lake>
Prints one line: RESULT_PREFIX + {"seconds", "import_seconds", "commit_seconds",
"transformed", "quarantined", "rows"}.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

RESULT_PREFIX = "BENCH_RESULT "


def main(lake_root: str) -> None:
    # Run as a script, whose folder Python puts first on the path: the repository root
    # instead, so ``bench``'s own module names cannot shadow any other.
    sys.path[0] = str(Path(__file__).resolve().parents[1])
    from etl_lib import pipeline
    from etl_lib.transform import iceberg

    commits: list[float] = []
    commit_staged = iceberg.commit_staged

    def timed_commit(*args, **kwargs):
        started = time.perf_counter()
        try:
            return commit_staged(*args, **kwargs)
        finally:
            commits.append(time.perf_counter() - started)

    # The parent's commits, timed where transform_bulk calls them.
    iceberg.commit_staged = timed_commit
    started = time.perf_counter()
    # The table library is imported by the first table call; timed apart, inside the run.
    import pyiceberg.catalog.sql  # noqa: F401
    import pyiceberg.io.pyarrow  # noqa: F401
    import pyiceberg.table  # noqa: F401

    imported = time.perf_counter()
    summary = pipeline.transform_bulk(lake_root)
    finished = time.perf_counter()
    result = {
        "seconds": finished - started,
        "import_seconds": imported - started,
        "commit_seconds": sum(commits),
        "transformed": len(summary.transformed),
        "quarantined": len(summary.quarantined),
        "rows": summary.rows,
    }
    print(RESULT_PREFIX + json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv[1])
