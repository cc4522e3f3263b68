"""Run by ``bench.cost`` in a fresh interpreter per function: that function's invocations,
each a cold start, and what each cost.

Usage: python bench/cost_probe.py <handler module> <function name> <memory MB> [module,...]

The process imports the handler's module once, as Lambda's init does, and prints
``READY {"import_seconds": ...}``. Then each line on stdin is one invocation,
``{"event": ..., "now": "<simulated time, ISO 8601>"}``: a forked child runs the handler in
the module as imported (nothing has run in it yet, as on a cold start) and the answer is one
line, ``{"seconds", "peak_rss_bytes", "log", "response" or "error"}``:

- seconds: the import plus the handler, as Lambda bills a cold start's init and invocation.
  The modules listed after the memory (those the handler imports when it runs: the report's
  papermill, nbconvert...) are imported before the fork too, to save each invocation the
  time; that time, measured once, is added to each invocation's, which pays it on Lambda;
- peak_rss_bytes: the child's resident high-water mark (/proc VmHWM, the imported modules'
  pages included) plus that of its largest finished child (``ru_maxrss`` of
  RUSAGE_CHILDREN: the report's notebook kernel), which share the function's memory;
- log: what the handler wrote to stdout and stderr (Powertools' log lines and EMF metrics:
  what CloudWatch Logs ingests).

The lake code reads the time through ``etl_lib.lake.layout.now_utc`` (``pipeline.extract``
binds it as its default clock): in the child both follow the simulated time, moving on with
the wall clock from there, so raw keys, heartbeats and "fresh" reports follow the simulation.
"""

from __future__ import annotations

import importlib
import json
import os
import resource
import sys
import tempfile
import time
import traceback
from datetime import UTC, datetime

READY = "READY "


class LambdaContext:
    aws_request_id = "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b"

    def __init__(self, function_name: str, memory_mb: int) -> None:
        self.function_name = function_name
        self.memory_limit_in_mb = memory_mb
        self.invoked_function_arn = (
            f"arn:aws:lambda:us-east-1:123456789012:function:{function_name}"
        )
        self._started = time.monotonic()

    def get_remaining_time_in_millis(self) -> int:
        # The functions' longest timeout (the report's 900 s), counted from the invocation.
        return int((900 - (time.monotonic() - self._started)) * 1000)


def peak_rss_bytes() -> int:
    own = 0
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                own = int(line.split()[1]) * 1024
    return own + resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss * 1024


def simulated_clock(simulated_start: datetime):
    started = time.time()

    def now() -> datetime:
        return datetime.fromtimestamp(simulated_start.timestamp() + time.time() - started, UTC)

    return now


def run_child(app, request: dict, function: str, memory_mb: int, output: int, result_path: str):
    """In the forked child: the handler's output to ``output``, its result to a file."""
    started = time.perf_counter()
    os.dup2(output, 1)
    os.dup2(output, 2)
    from etl_lib import pipeline
    from etl_lib.lake import layout

    clock = simulated_clock(datetime.fromisoformat(request["now"]))
    layout.now_utc = clock
    pipeline.extract.__kwdefaults__["clock"] = clock
    try:
        response = app.handler(request["event"], LambdaContext(function, memory_mb))
        result = {"response": response}
    except Exception:  # noqa: BLE001 - the invocation failed: reported to the parent
        result = {"error": traceback.format_exc()}
    result["handler_seconds"] = time.perf_counter() - started
    sys.stdout.flush()
    sys.stderr.flush()
    result["peak_rss_bytes"] = peak_rss_bytes()
    with open(result_path, "w", encoding="utf-8") as file:
        json.dump(result, file, default=str)


def main(module: str, function: str, memory_mb: str, preload: str = "") -> None:
    protocol = os.fdopen(os.dup(1), "w", buffering=1)
    os.dup2(2, 1)  # whatever an import prints stays out of the answers
    started = time.perf_counter()
    from etl_lib import pipeline  # noqa: F401 - imported before the fork, as the app does

    # The handler's module as the image's command names it (lambdas.<name>.app).
    app = importlib.import_module(module)
    for module in filter(None, preload.split(",")):
        importlib.import_module(module)
    import_seconds = time.perf_counter() - started
    protocol.write(READY + json.dumps({"import_seconds": import_seconds}) + "\n")
    for line in sys.stdin:
        request = json.loads(line)
        with tempfile.TemporaryDirectory(prefix="cost-probe-") as work:
            log_path, result_path = f"{work}/log", f"{work}/result.json"
            output = os.open(log_path, os.O_WRONLY | os.O_CREAT, 0o600)
            sys.stdout.flush()
            child = os.fork()
            if child == 0:
                try:
                    run_child(app, request, function, int(memory_mb), output, result_path)
                finally:
                    os._exit(0)
            os.waitpid(child, 0)
            os.close(output)
            with open(log_path, encoding="utf-8", errors="replace") as file:
                log = file.read()
            try:
                with open(result_path, encoding="utf-8") as file:
                    result = json.load(file)
            except FileNotFoundError:
                result = {"error": "the invocation's process ended without a result"}
        result["seconds"] = import_seconds + result.pop("handler_seconds", 0.0)
        result["log"] = log
        protocol.write(json.dumps(result, default=str) + "\n")


if __name__ == "__main__":
    main(*sys.argv[1:5])
