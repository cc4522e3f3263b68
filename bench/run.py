"""``make bench``: every measurement on the same generated year, then one table.

The stages run one after another, never side by side, so each has the machine to itself.
Progress goes to stderr; the table goes to stdout, to ``bench/results.md`` (with per-query
details) and between the bench markers of ``README.md``. ``--days N`` (or ``BENCH_DAYS``)
measures the first N days only, and then writes its results under ``build/bench`` and leaves
``README.md`` alone unless ``--results`` or ``--readme`` name other places.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
from tqdm import tqdm

from bench import BenchError, baseline, bulk_probe, generate, handler, hourly, queries, report
from etl_lib.config import table_settings
from etl_lib.lake import layout
from etl_lib.transform import compaction, schemas
from etl_lib.warehouse import catalog

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "build" / "bench"
DATASET = WORK / "dataset"
LAKES = WORK / "lakes"
RESULTS = Path(__file__).resolve().with_name("results.md")
README = ROOT / "README.md"
BULK_PROBE = Path(__file__).resolve().with_name("bulk_probe.py")
DAYS_VARIABLE = "BENCH_DAYS"

# The seed-style baseline is the slowest path; its throughput is per snapshot, so the first
# days of the year measure it as well as the whole year would, in a fraction of the time.
BASELINE_DAYS = 91
QUERY_REPETITIONS = 3  # after compaction; before it, one run is slow enough to average
# The fast paths (a few seconds each) take the median of a few runs, as a single short run
# varies by a fifth from one to the next; the slow ones average over minutes by themselves.
FAST_PATH_RUNS = 3
MAX_JSON_OBJECT_BYTES = 16 * 1024 * 1024  # raw files are ~210 KB; DuckDB needs a bound

# Targets
BULK_PER_SECOND = 1_000
BULK_OVER_BASELINE = 5.0
BULK_SHARE_OF_CEILING = 0.50
FILES_PER_TABLE_DAY = 1
QUERY_SET_SECONDS = 1.0
BYTES_SHARE_OF_CSV = 0.05
HANDLER_PEAK_MB = 300


def progress(items: list, description: str) -> Iterable:
    """A progress bar on stderr; the shape of ``etl_lib.progress.Progress``."""
    return tqdm(items, desc=f"  {description}", file=sys.stderr, mininterval=0.5, leave=False)


class Stages:
    """Numbered stage headers with their wall-clock time, on stderr."""

    def __init__(self, count: int):
        self.count = count
        self.number = 0

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        self.number += 1
        label = f"[{self.number:>2}/{self.count}] {name}"
        print(f"{label} ...", file=sys.stderr, flush=True)
        # Flush the previous stage's writes (1.9 GB after generating the dataset) and its
        # garbage now, so this stage does not pay for them.
        os.sync()
        gc.collect()
        started = time.perf_counter()
        yield
        print(f"{label}: {time.perf_counter() - started:.1f} s", file=sys.stderr, flush=True)


@dataclass(frozen=True)
class Throughput:
    snapshots: int
    seconds: float

    @property
    def per_second(self) -> float:
        return self.snapshots / self.seconds

    def describe(self, scope: str = "") -> str:
        return (
            f"{self.per_second:,.0f} snapshots/s "
            f"({self.snapshots:,} in {self.seconds:.1f} s{scope})"
        )


@dataclass(frozen=True)
class BulkRun:
    """The median of the bulk transform's runs, with the parts of the median run."""

    throughput: Throughput
    import_seconds: float
    commit_seconds: float
    rows: dict[str, int]


def timed(function: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    result = function()
    return result, time.perf_counter() - started


def product_function(module_name: str, name: str) -> Callable:
    """A function of the product the bench measures, or a clear error when it is missing."""
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise BenchError(f"{module_name} cannot be imported ({exc}): nothing to measure") from exc
    function = getattr(module, name, None)
    if function is None:
        raise BenchError(f"{module_name}.{name} does not exist: nothing to measure")
    return function


def files_per_table_day(lake_root: Path) -> int:
    """The most data files any table's current snapshot holds in any one day."""
    return max(
        (
            count
            for table in schemas.TABLES
            for count in compaction.files_per_day(str(lake_root), table).values()
        ),
        default=0,
    )


def table_rows(lake_root: Path) -> dict[str, int]:
    """Rows per table, as a reader sees them."""
    with catalog.connect(str(lake_root)) as connection:
        return {
            table: connection.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
            for table in schemas.TABLES
        }


def warm_page_cache(paths: list[Path]) -> None:
    """Read every raw file once, so every path below reads them from memory alike."""
    for path in progress(paths, "read raw files once"):
        path.read_bytes()


CEILING_QUERIES = {
    "read_json_objects": "SELECT count(*) FROM read_json_objects({files}, format = 'unstructured', "
    "maximum_object_size = {limit})",
    "read_json": "SELECT count(*) FROM read_json({files}, format = 'unstructured', "
    "maximum_object_size = {limit})",
    "read_json_columns": "SELECT count(*), sum(len(pages)) FROM read_json({files}, "
    "format = 'unstructured', maximum_object_size = {limit})",
}


def parse_ceilings(raw_root: Path, snapshots: int, runs: int) -> dict[str, Throughput]:
    """DuckDB reading the raw files and nothing else, on every core (its default)."""
    files = f"'{raw_root / layout.RAW}/*/*/*.json'"
    ceilings = {}
    with duckdb.connect() as connection:
        for name, template in CEILING_QUERIES.items():
            statement = template.format(files=files, limit=MAX_JSON_OBJECT_BYTES)
            times = []
            for _ in range(runs):
                row, seconds = timed(lambda s=statement: connection.execute(s).fetchone())
                if row[0] != snapshots:
                    raise BenchError(f"{name} read {row[0]} documents, expected {snapshots}")
                times.append(seconds)
            ceilings[name] = Throughput(snapshots, statistics.median(times))
    return ceilings


def _bulk_probe(lake_root: Path) -> dict:
    completed = subprocess.run(
        [sys.executable, str(BULK_PROBE), str(lake_root)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=3600,
    )
    for line in completed.stdout.splitlines():
        if line.startswith(bulk_probe.RESULT_PREFIX):
            return json.loads(line.removeprefix(bulk_probe.RESULT_PREFIX))
    raise BenchError(
        f"the bulk transform did not finish (exit {completed.returncode}):\n"
        + (completed.stderr or completed.stdout)[-3000:]
    )


def bulk_throughput(lake_root: Path, day_count: int, runs: int) -> BulkRun:
    """The median of ``runs`` bulk transforms of the raw zone, each into a fresh lake and
    in a fresh interpreter, as the command line runs it."""
    results = []
    for number in range(runs):
        snapshots = generate.fresh_lake(DATASET, lake_root, day_count)
        os.sync()  # the previous run's output is flushed before the clock starts
        print(f"  run {number + 1} of {runs}", file=sys.stderr, flush=True)
        result = _bulk_probe(lake_root)
        if result["transformed"] != snapshots or result["quarantined"]:
            raise BenchError(
                f"transform_bulk transformed {result['transformed']} of {snapshots} "
                f"snapshots and quarantined {result['quarantined']}"
            )
        results.append(result)
    median = sorted(results, key=lambda result: result["seconds"])[len(results) // 2]
    return BulkRun(
        Throughput(median["transformed"], median["seconds"]),
        median["import_seconds"],
        median["commit_seconds"],
        median["rows"],
    )


def baseline_throughput(out_dir: Path, day_count: int) -> Throughput:
    if out_dir.exists():
        shutil.rmtree(out_dir)
    paths = generate.raw_files(DATASET, day_count)
    _, seconds = timed(lambda: baseline.run(paths, out_dir, progress))
    return Throughput(len(paths), seconds)


def _mb(count: float) -> str:
    return f"{count / 1e6:,.1f} MB"


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}" + ("" if number == 1 else "s")


def _seconds(value: float) -> str:
    return f"{value:.2f} s" if value < 10 else f"{value:.0f} s"


@dataclass(frozen=True)
class Outputs:
    """Where the results go: the results file, and README.md's block (None: left alone)."""

    results: Path
    readme: Path | None


def parse_arguments(argv: list[str] | None) -> tuple[int, Outputs]:
    parser = argparse.ArgumentParser(
        prog="python -m bench", description="Measure the lake on a generated year."
    )
    default_days = os.environ.get(DAYS_VARIABLE, str(generate.DAYS))
    parser.add_argument(
        "--days",
        default=default_days,
        help=f"measure the first N days only (default ${DAYS_VARIABLE}, else {generate.DAYS})",
    )
    parser.add_argument(
        "--results",
        type=Path,
        help="write the results here (default: bench/results.md for the whole year, "
        "build/bench/results-<N>-days.md for fewer days)",
    )
    parser.add_argument(
        "--readme",
        type=Path,
        help="replace the bench block of this file (default: README.md for the whole year, "
        "none for fewer days)",
    )
    arguments = parser.parse_args(argv)
    try:
        day_count = int(arguments.days)
    except ValueError:
        parser.error(f"--days {arguments.days!r} is not a number of days")
    if not 2 <= day_count <= generate.DAYS:
        parser.error(f"--days {day_count}: measure between 2 and {generate.DAYS} days")
    whole_year = day_count == generate.DAYS
    results = arguments.results or (
        RESULTS if whole_year else WORK / f"results-{day_count}-days.md"
    )
    readme = arguments.readme or (README if whole_year else None)
    return day_count, Outputs(results, readme)


def main(argv: list[str] | None = None) -> int:
    day_count, outputs = parse_arguments(argv)
    try:
        return run(day_count, outputs)
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2


def run(day_count: int, outputs: Outputs) -> int:
    started = time.perf_counter()
    load_at_start = os.getloadavg()[0]  # other work on the machine skews every figure
    stages = Stages(11)
    snapshots = day_count * generate.HOURS
    baseline_days = min(BASELINE_DAYS, day_count)
    product_function("etl_lib.pipeline", "transform_bulk")
    compact = product_function("etl_lib.transform.compaction", "compact")
    input_lake, bulk_lake, hourly_lake = LAKES / "input", LAKES / "bulk", LAKES / "hourly"
    csv_root = LAKES / "csv"

    with stages.stage(f"dataset: one playlist, hourly snapshots for {day_count} days"):
        if generate.is_complete(DATASET, day_count):
            print("  reusing build/bench/dataset (same generator version)", file=sys.stderr)
        else:
            generate.generate(DATASET, progress, day_count)
        raw_paths = generate.raw_files(DATASET, day_count)
        dataset_bytes = sum(path.stat().st_size for path in raw_paths)
        generate.fresh_lake(DATASET, input_lake, day_count)
        warm_page_cache(raw_paths)

    with stages.stage("parse-only ceilings: DuckDB reading the raw JSON"):
        ceilings = parse_ceilings(input_lake, snapshots, FAST_PATH_RUNS)

    with stages.stage("bulk transform (etl_lib.pipeline.transform_bulk), fresh processes"):
        bulk = bulk_throughput(bulk_lake, day_count, FAST_PATH_RUNS)
        bulk_files_per_day = files_per_table_day(bulk_lake)
        bulk_rows = table_rows(bulk_lake)

    with stages.stage(f"seed-style baseline (json_normalize -> CSV, {baseline_days} days)"):
        seed = baseline_throughput(LAKES / "baseline_csv", baseline_days)

    with stages.stage("hourly per-file path (etl_lib.pipeline.transform, one file a call)"):
        generate.fresh_lake(DATASET, hourly_lake, day_count)
        keys = [path.relative_to(DATASET).as_posix() for path in raw_paths]
        last_day = keys[-generate.HOURS :]
        layout_files = hourly.build_layout(str(hourly_lake), keys[: -generate.HOURS], progress)
        per_file = hourly.per_file_latency(str(hourly_lake), last_day, progress)
        files_before = files_per_table_day(hourly_lake)

    with stages.stage("report queries before compaction (1 run)"):
        before = queries.warehouse_latency(str(hourly_lake), day_count, repetitions=1)

    with stages.stage("compaction (etl_lib.transform.compaction.compact), then again"):
        first_compaction, compaction_seconds = timed(
            lambda: compact(str(hourly_lake), progress=progress)
        )
        second_compaction = compact(str(hourly_lake))
        files_after = files_per_table_day(hourly_lake)
        hourly_rows = table_rows(hourly_lake)

    with stages.stage(f"report queries after compaction ({QUERY_REPETITIONS} runs)"):
        after = queries.warehouse_latency(str(hourly_lake), day_count, QUERY_REPETITIONS)

    with stages.stage("bytes read by the report queries: Parquet vs CSV"):
        if csv_root.exists():
            shutil.rmtree(csv_root)
        queries.export_csv(str(hourly_lake), csv_root)
        read = queries.bytes_read(str(hourly_lake), csv_root, day_count)
        parquet_size = queries.parquet_bytes(str(hourly_lake))
        csv_size = queries.csv_bytes(csv_root)

    with stages.stage("transform handler on one snapshot (moto S3 and Glue, fresh process)"):
        last_raw = raw_paths[-1]
        cost = handler.measure(last_raw, last_raw.relative_to(DATASET).as_posix())

    with stages.stage("report"):
        elapsed = time.perf_counter() - started
        block = results_block(
            day_count=day_count,
            dataset_bytes=dataset_bytes,
            elapsed=elapsed,
            load_at_start=load_at_start,
            ceilings=ceilings,
            bulk=bulk,
            bulk_files_per_day=bulk_files_per_day,
            same_rows=bulk_rows == hourly_rows,
            seed=seed,
            baseline_days=baseline_days,
            per_file=per_file,
            layout_files=layout_files,
            files_before=files_before,
            files_after=files_after,
            first_compaction=first_compaction,
            second_compaction=second_compaction,
            compaction_seconds=compaction_seconds,
            before=before,
            after=after,
            read=read,
            parquet_size=parquet_size,
            csv_size=csv_size,
            cost=cost,
        )
        details = per_query_details(before, after, read)
        outputs.results.parent.mkdir(parents=True, exist_ok=True)
        report.write_results(outputs.results, f"# Benchmark results\n\n{block}\n\n{details}")
        readme_updated = outputs.readme is not None and report.update_readme(outputs.readme, block)

    print(block)
    print(f"\nwritten: {_shown(outputs.results)}", file=sys.stderr)
    if outputs.readme is None:
        print("README.md left alone (fewer days than a year)", file=sys.stderr)
    elif readme_updated:
        print(f"updated: {_shown(outputs.readme)}", file=sys.stderr)
    else:
        print(
            f"{_shown(outputs.readme)} has no {report.README_START} ... {report.README_END} "
            "markers: not updated",
            file=sys.stderr,
        )
    return 0


def _shown(path: Path) -> str:
    path = path.resolve()
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def results_block(
    *,
    day_count: int,
    dataset_bytes: int,
    elapsed: float,
    load_at_start: float,
    ceilings: dict[str, Throughput],
    bulk: BulkRun,
    bulk_files_per_day: int,
    same_rows: bool,
    seed: Throughput,
    baseline_days: int,
    per_file: hourly.PerFile,
    layout_files: int,
    files_before: int,
    files_after: int,
    first_compaction,
    second_compaction,
    compaction_seconds: float,
    before: queries.Latency,
    after: queries.Latency,
    read: queries.BytesRead,
    parquet_size: int,
    csv_size: int,
    cost: handler.HandlerCost,
) -> str:
    """The summary line, the table, its notes and the machine, as README.md shows them."""
    snapshots = day_count * generate.HOURS
    period = "the year" if day_count == generate.DAYS else f"{day_count} days"
    ceiling = ceilings["read_json"]
    throughput = bulk.throughput
    share_of_ceiling = throughput.per_second / ceiling.per_second
    bulk_over_seed = throughput.per_second / seed.per_second
    per_file_median = statistics.median(per_file.seconds)
    parquet_read, csv_read = sum(read.parquet.values()), sum(read.csv.values())
    seed_scope = "" if baseline_days == day_count else f"; first {baseline_days} days"
    rows = [
        report.Row(
            "Bulk transform, raw JSON -> Iceberg tables [1]",
            throughput.describe(),
            f"≥ {BULK_PER_SECOND:,}/s",
            throughput.per_second >= BULK_PER_SECOND,
        ),
        report.Row(
            "Bulk as a share of the parse-only ceiling",
            f"{share_of_ceiling:.1%}",
            f"≥ {BULK_SHARE_OF_CEILING:.0%}",
            share_of_ceiling >= BULK_SHARE_OF_CEILING,
        ),
        report.Row("Parse-only ceiling: DuckDB `read_json` [4]", ceiling.describe()),
        report.Row(
            "DuckDB `read_json_objects` (read + validate) [4]",
            ceilings["read_json_objects"].describe(),
        ),
        report.Row(
            "DuckDB `read_json` into typed columns [4]",
            ceilings["read_json_columns"].describe(),
        ),
        report.Row(
            "Bulk as a share of DuckDB `read_json` into typed columns",
            f"{throughput.per_second / ceilings['read_json_columns'].per_second:.0%}",
        ),
        report.Row(
            "Hourly path: one raw file transformed and committed [2]",
            f"{_seconds(per_file_median)} median over {len(per_file.seconds)} files "
            f"(first {_seconds(per_file.seconds[0])}, last {_seconds(per_file.seconds[-1])})",
        ),
        report.Row("Seed-style baseline [3]", seed.describe(seed_scope)),
        report.Row(
            "Bulk / seed-style baseline",
            f"{bulk_over_seed:.1f}x",
            f"≥ {BULK_OVER_BASELINE:.0f}x",
            bulk_over_seed >= BULK_OVER_BASELINE,
        ),
        report.Row("Files per table per day, before compaction [5]", f"{files_before}"),
        report.Row(
            "Files per table per day, after compaction [5]",
            f"{files_after}",
            f"≤ {FILES_PER_TABLE_DAY}",
            files_after <= FILES_PER_TABLE_DAY,
        ),
        report.Row(
            f"Compaction of {period} [5]",
            f"{first_compaction.files_before:,} -> {first_compaction.files_after:,} data files, "
            f"{first_compaction.days_rewritten} days in {_seconds(compaction_seconds)}",
        ),
        report.Row(
            "Compaction run again (idempotence) [5]",
            f"{second_compaction.days_rewritten} days rewritten",
            "0",
            second_compaction.days_rewritten == 0,
        ),
        report.Row(
            f"Report query set on {period}, before compaction [6]",
            f"{_seconds(before.total)} (1 run)",
        ),
        report.Row(
            f"Report query set on {period}, after compaction [6]",
            f"{_seconds(after.total)} (median of {after.repetitions})",
            f"< {QUERY_SET_SECONDS:.0f} s",
            after.total < QUERY_SET_SECONDS,
        ),
        report.Row(
            "Bytes read by the report query set: Parquet vs the same tables as CSV [7]",
            f"{_mb(parquet_read)} vs {_mb(csv_read)} = {read.ratio:.1%}",
            f"≤ {BYTES_SHARE_OF_CSV:.0%}",
            read.ratio <= BYTES_SHARE_OF_CSV,
        ),
        report.Row(
            "Transform handler, one snapshot: peak RSS [8]",
            f"{cost.peak_rss_mb:.0f} MB",
            f"< {HANDLER_PEAK_MB} MB",
            cost.peak_rss_mb < HANDLER_PEAK_MB,
        ),
        report.Row(
            "Transform handler: import time of app.py [8]",
            f"{cost.import_seconds:.2f} s",
        ),
    ]
    notes = [
        "[1] `etl_lib.pipeline.transform_bulk` on a fresh lake with the default workers "
        "(one process per core), each run in a fresh interpreter as `spotify-etl` runs it: "
        "workers parse a playlist-day each and write its rows as one data file per table "
        "(pyiceberg's writer); the parent commits them, one Iceberg commit per table. Wall "
        "clock from the call to its return, worker start-up and the import of pyiceberg "
        f"({bulk.import_seconds:.2f} s) included; the parent's commits took "
        f"{bulk.commit_seconds:.2f} s of it; median of {FAST_PATH_RUNS} runs. "
        f"{_count(bulk_files_per_day, 'data file')} per table per day. A day's 24 hourly "
        "snapshots repeat that day's chart, as an unchanged chart does; the bulk path decodes "
        "a repeated track object, and works out its rows, once per day."
        + ("" if same_rows else " **Its tables' row counts differ from the hourly path's.**"),
        "[2] `etl_lib.pipeline.transform(lake, [key])` for each of the last day's "
        f"{len(per_file.seconds)} raw files in turn, as the transform function handles one "
        "S3 notification: decode, write one data file per table, then one commit per table "
        "(delete the rows of the same snapshot, append). The lake already holds the days "
        f"before it as hourly runs leave them: {layout_files:,} data files, one per table per "
        "raw file, committed at once. A commit's cost grows with the table's snapshot history: "
        f"{_count(per_file.history_before, 'snapshot')} before the first file, "
        f"{per_file.history_after} after the last (compaction's expiry keeps "
        f"{table_settings().snapshot_retention_days:g} days of them).",
        "[3] `bench/baseline.py`, what a first version would do: one process; per raw "
        "file `json.load`, `pandas.json_normalize` of the entries (track, album and artist "
        "fields) into one flat frame, one CSV file per raw file; 1 run.",
        "[4] DuckDB on every core reading the same raw files, nothing else. "
        "`read_json_objects`: reads each file and checks it is JSON, returns its text. "
        "`read_json` with `count(*)`: parses every document into typed JSON values "
        "(numbers, strings, nested objects) and builds no columns: the parse-only ceiling "
        "the bulk transform is compared with. `read_json` into typed columns: also turns "
        "`pages` (every entry, every field) into DuckDB's typed nested columns. Median "
        f"of {FAST_PATH_RUNS} runs each. Every path reads the raw files from the OS page "
        "cache (all read once beforehand).",
        "[5] `etl_lib.transform.compaction.compact` on the hourly path's lake (note [2]); "
        "files per table per day is the largest count over every table and day of the current "
        "snapshot (`etl_lib.transform.compaction.files_per_day`). Run a second time, it must "
        "rewrite nothing.",
        f"[6] The {len(after.per_query) - 1} queries the report runs after each load "
        "(`etl_lib.reporting.reports.input_queries`: from `etl_lib/warehouse/sql/report` the "
        "last day's chart with movement, peak and days on chart over the whole history, the "
        "freshness and the tracks' names and credited artists; from "
        "`etl_lib/warehouse/sql/queries` the report's analyses: rank history, climbers and "
        "fallers, new entries and drop-outs, longest-running #1, artist share, release age) "
        f"with the window set to {period}, as `reports.load_inputs` runs them: one "
        "`etl_lib.warehouse.catalog.connect` (pyiceberg plans every table's data files, "
        "DuckDB gets a view over them), then each query transpiled and run on DuckDB; the "
        "sum, the connection included. Per query in `bench/results.md`.",
        "[7] Every byte DuckDB fetched from the data files running the set once, counted "
        "by an fsspec filesystem registered with DuckDB that the catalog's own views read "
        "the planned files through (one thread; DuckDB's file cache off; Parquet "
        "prefetching off, so DuckDB fetches footers and then only the column chunks a "
        "query needs, the way Athena reads and bills Parquet); the Iceberg metadata "
        "pyiceberg reads to plan is not counted. Against the same tables written as CSV "
        "(one file per table per day) read through `read_csv` views. "
        + (
            "Both give the same results. "
            if read.same_results
            else "**The results differ between the two layouts.** "
        )
        + f"On disk: Parquet {_mb(parquet_size)} (the current snapshot's data files), "
        f"CSV {_mb(csv_size)}.",
        "[8] `lambdas/transform/app.py` in a fresh interpreter handling the S3 "
        "ObjectCreated notification of one raw snapshot, on moto's S3 and Glue server (the "
        "tables' catalog is Glue for an S3 lake); import time is loading app.py (median of "
        f"{cost.runs} runs), peak RSS the process's high-water mark (VmHWM), interpreter "
        f"included (highest of {cost.runs}); handling took {cost.handler_seconds:.2f} s.",
    ]
    days_measured = generate.days(day_count)
    summary = (
        f"Input: {snapshots:,} raw snapshots of one playlist, hourly from "
        f"{days_measured[0]} to {days_measured[-1]}, 50 entries each: "
        f"{dataset_bytes / 1e9:.2f} GB of JSON, {dataset_bytes / snapshots / 1e3:.0f} KB a "
        f"file. The run took {elapsed / 60:.1f} min."
    )
    machine = f"Machine: {report.machine()}; load average at the start {load_at_start:.2f}."
    return "\n\n".join(
        [summary, report.table(rows), "\n".join(f"- {note}" for note in notes), machine]
    )


def per_query_details(
    before: queries.Latency, after: queries.Latency, read: queries.BytesRead
) -> str:
    """Per query: latency before and after compaction, and bytes read per layout."""
    lines = [
        "## Per query",
        "",
        "Seconds as the report runs the set (before compaction: 1 run; after: median of "
        f"{after.repetitions}); *{queries.OPEN}* is `etl_lib.warehouse.catalog.connect`: planning "
        "every table's data files with pyiceberg and creating the views. Bytes: fetched "
        "from the data files, as in note [7].",
        "",
        "| query | before compaction | after | Parquet bytes | CSV bytes |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    for name in after.per_query:
        parquet = _mb(read.parquet[name]) if name in read.parquet else ""
        csv = _mb(read.csv[name]) if name in read.csv else ""
        lines.append(
            f"| {name} | {before.per_query[name]:.2f} | {after.per_query[name]:.2f} "
            f"| {parquet} | {csv} |"
        )
    lines.append(
        f"| **total** | {before.total:.2f} | {after.total:.2f} "
        f"| {_mb(sum(read.parquet.values()))} | {_mb(sum(read.csv.values()))} |"
    )
    return "\n".join(lines)
