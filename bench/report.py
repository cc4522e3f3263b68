"""The results table (markdown), the machine it ran on, and where the table is written."""

from __future__ import annotations

import os
import platform
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pandas
import pyarrow

README_START = "<!-- bench:start -->"
README_END = "<!-- bench:end -->"


@dataclass(frozen=True)
class Row:
    measurement: str
    value: str
    target: str = ""
    met: bool | None = None  # None: a figure without a target

    def cells(self) -> list[str]:
        verdict = "" if self.met is None else ("met" if self.met else "**missed**")
        return [self.measurement, self.value, self.target, verdict]


def table(rows: list[Row]) -> str:
    lines = ["| measurement | value | target | met? |", "| --- | --- | --- | --- |"]
    lines += ["| " + " | ".join(row.cells()) + " |" for row in rows]
    return "\n".join(lines)


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> str:
    try:
        with open("/proc/meminfo", encoding="utf-8") as meminfo:
            for line in meminfo:
                if line.startswith("MemTotal:"):
                    return f"{int(line.split()[1]) / 1024**2:.1f} GiB RAM"
    except OSError:
        pass
    return "RAM unknown"


def machine() -> str:
    return (
        f"{_cpu_model()}, {os.cpu_count()} cores, {_memory_gib()}, "
        f"{platform.system()} {platform.release()}; Python {platform.python_version()}, "
        f"DuckDB {duckdb.__version__}, pyarrow {pyarrow.__version__}, "
        f"pandas {pandas.__version__}; {datetime.now(UTC):%Y-%m-%d}"
    )


def write_results(path: Path, text: str) -> None:
    path.write_text(text if text.endswith("\n") else text + "\n", encoding="utf-8")


def update_readme(readme: Path, block: str) -> bool:
    """Replace what lies between the bench markers; False when the markers are missing."""
    text = readme.read_text(encoding="utf-8")
    pattern = re.compile(re.escape(README_START) + r".*?" + re.escape(README_END), re.DOTALL)
    if not pattern.search(text):
        return False
    replacement = f"{README_START}\n{block.strip()}\n{README_END}"
    readme.write_text(pattern.sub(lambda _: replacement, text, count=1), encoding="utf-8")
    return True
