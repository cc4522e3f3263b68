"""Run in a fresh interpreter by ``bench.handler``: handle one S3 notification with the
transform function's handler, as Lambda would on a cold start, and print what it cost.

Usage: python bench/handler_probe.py <path to lambdas/transform/app.py> <event JSON>
Prints one line: RESULT_PREFIX + {"import_seconds", "handler_seconds", "peak_rss_bytes",
"response"}.
"""

from __future__ import annotations

import importlib.util
import json
import resource
import sys
import time
from pathlib import Path

RESULT_PREFIX = "BENCH_RESULT "


class LambdaContext:
    function_name = "spotify-charts-transform"
    memory_limit_in_mb = 1024
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:spotify-charts-transform"
    aws_request_id = "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b"


def peak_rss_bytes() -> int:
    """This process's resident-memory high-water mark, interpreter included.

    On Linux it is read from /proc (VmHWM): ``getrusage``'s ru_maxrss would report the
    parent's peak instead when the parent was bigger, as it carries over fork + exec.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return peak if sys.platform == "darwin" else peak * 1024  # bytes on macOS, KiB elsewhere


def main(app_path: str, event_json: str) -> None:
    started = time.perf_counter()
    # Imported as lambdas.transform.app from the repository root, the way the function's image
    # runs it (its command is lambdas.transform.app.handler).
    sys.path.insert(0, str(Path(app_path).resolve().parents[2]))
    app = importlib.import_module("lambdas.transform.app")
    imported = time.perf_counter()
    response = app.handler(json.loads(event_json), LambdaContext())
    handled = time.perf_counter()
    result = {
        "import_seconds": imported - started,
        "handler_seconds": handled - imported,
        "peak_rss_bytes": peak_rss_bytes(),
        "response": response,
    }
    print(RESULT_PREFIX + json.dumps(result), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
