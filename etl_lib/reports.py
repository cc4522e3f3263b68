"""Run the report notebook with papermill and publish it under the lake's ``reports/``.

Outputs for one playlist and date go to ``<lake>/reports/<playlist_id>/<as_of>/``: the
executed notebook, an HTML export without code cells, the charts (PNG and SVG) and
``status.json`` (parameters, timings, success, or the failing cell and error). The report is
built in a local temporary folder and published only when it succeeded, ``status.json``
last, so a failing run never replaces a previous good report for the same date: its status
and notebook go to ``failed/<stamp>/`` beside it instead. Kernel deaths and timeouts are not
recorded in the notebook by papermill, so they are caught here.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path

import pandas as pd

from etl_lib import analysis, lake, sql, warehouse
from etl_lib.errors import ConfigError

REPORT_NOTEBOOK = (
    Path(__file__).resolve().parent.parent / "notebooks" / "reports" / ("top_songs_trends.ipynb")
)
REPORTS = "reports"


@dataclass
class ReportResult:
    succeeded: bool
    output_prefix: str
    status: dict
    files: list[str] = field(default_factory=list)

    @property
    def error(self) -> str | None:
        return self.status.get("error")

    def url(self, lake_root: str, name: str) -> str:
        return lake.url(lake_root, f"{self.output_prefix}/{name}")


def input_queries(
    playlist_id: str, as_of: date | str, days: int
) -> dict[str, tuple[str, list]]:
    """The report's queries (``etl_lib/sql/report``), each with its bound parameters: the
    window's daily charts, the latest track, album, credit and artist attributes, and the
    playlist's freshness."""
    first_day, last_day = analysis.window_bounds(as_of, days)
    params = {"daily": [playlist_id, first_day, last_day], "freshness": [playlist_id, last_day]}
    return {
        name: (statement, params.get(name, []))
        for name, statement in sql.shipped("report").items()
    }


def load_inputs(
    lake_root: str,
    playlist_id: str,
    as_of: date | str,
    days: int,
    *,
    engine: str = "duckdb",
    settings=None,
) -> dict[str, pd.DataFrame]:
    """The frames the report notebook charts, one per query of ``input_queries``."""
    statements = input_queries(playlist_id, as_of, days)
    if engine == "duckdb":
        return warehouse.query_all(lake_root, statements)
    return {
        name: warehouse.run(lake_root, statement, bound, engine=engine, settings=settings)[0]
        for name, (statement, bound) in statements.items()
    }


def report_prefix(playlist_id: str, as_of: str) -> str:
    return f"{REPORTS}/{lake.check_playlist_id(playlist_id)}/{as_of}"


def _check_as_of(as_of: str) -> str:
    try:
        return date.fromisoformat(as_of).isoformat()
    except ValueError as exc:
        raise ConfigError(f"--as-of {as_of!r} is not a date like 2026-10-31") from exc


def _failure(exc: BaseException) -> dict:
    from nbclient.exceptions import CellTimeoutError, DeadKernelError
    from papermill.exceptions import PapermillExecutionError

    if isinstance(exc, PapermillExecutionError):
        return {
            "error": f"{exc.ename}: {exc.evalue}",
            "failing_cell": {"index": exc.cell_index, "source": exc.source},
        }
    if isinstance(exc, CellTimeoutError):
        return {"error": f"a cell ran past the timeout: {exc}", "failing_cell": None}
    if isinstance(exc, DeadKernelError):
        return {"error": f"the kernel died: {exc}", "failing_cell": None}
    return {"error": f"{type(exc).__name__}: {exc}", "failing_cell": None}


def _html_without_code(notebook_path: Path) -> str:
    from nbconvert import HTMLExporter

    exporter = HTMLExporter(
        exclude_input=True, exclude_input_prompt=True, exclude_output_prompt=True
    )
    body, _ = exporter.from_filename(str(notebook_path))
    return body


def run_report(
    lake_root: str,
    *,
    playlist_id: str,
    as_of: str,
    days: int = 30,
    engine: str = "duckdb",
    notebook: Path | None = None,
    timeout_seconds: int = 600,
) -> ReportResult:
    """Execute the report for one playlist and date, and publish it in the lake."""
    import papermill

    # The Lambda image keeps the notebook outside the installed package; it says where.
    notebook = Path(notebook or os.environ.get("SPOTIFY_ETL_REPORT_NOTEBOOK") or REPORT_NOTEBOOK)
    if not notebook.is_file():
        raise ConfigError(f"report notebook {notebook} not found: set SPOTIFY_ETL_REPORT_NOTEBOOK")
    as_of = _check_as_of(as_of)
    prefix = report_prefix(playlist_id, as_of)
    started = datetime.now(UTC)
    clock = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="report-") as workdir:
        work = Path(workdir)
        charts_dir = work / "charts"
        charts_dir.mkdir()
        parameters = {
            "as_of": as_of,
            "days": days,
            "playlist_id": playlist_id,
            "engine": engine,
            # the notebook runs in its own folder: a relative local lake must not move with it
            "lake": os.path.abspath(lake_root) if lake.is_local(lake_root) else lake_root,
            "output_dir": str(charts_dir),
        }
        executed = work / "report.ipynb"
        outcome: dict = {"error": None, "failing_cell": None}
        try:
            papermill.execute_notebook(
                str(notebook),
                str(executed),
                parameters=parameters,
                kernel_name="python3",
                progress_bar=False,
                execution_timeout=timeout_seconds,
                cwd=str(notebook.parent),
            )
        except Exception as exc:  # noqa: BLE001 - every failure is reported in status.json
            outcome = _failure(exc)
        status = {
            "parameters": parameters | {"output_dir": "charts/"},
            "started_at": started.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "duration_seconds": round(time.monotonic() - clock, 2),
            "succeeded": outcome["error"] is None,
            **outcome,
        }
        files: list[tuple[str, bytes]] = []
        if executed.exists():
            files.append(("report.ipynb", executed.read_bytes()))
        if status["succeeded"]:
            files.append(("report.html", _html_without_code(executed).encode("utf-8")))
            files += [
                (f"charts/{chart.name}", chart.read_bytes())
                for chart in sorted(charts_dir.iterdir())
            ]
            target = prefix
        else:
            target = f"{prefix}/failed/{started:%Y%m%dT%H%M%SZ}"
        status["files"] = [name for name, _ in files]
        for name, data in files:
            lake.write_bytes(lake_root, f"{target}/{name}", data)
        # Written last: a reader that finds status.json finds the files it lists.
        status_bytes = json.dumps(status, indent=2, ensure_ascii=False).encode("utf-8")
        lake.write_bytes(lake_root, f"{target}/status.json", status_bytes)
        if not status["succeeded"] and not lake.exists(lake_root, f"{prefix}/status.json"):
            lake.write_bytes(lake_root, f"{prefix}/status.json", status_bytes)
    return ReportResult(status["succeeded"], target, status, status["files"])
