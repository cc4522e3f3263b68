"""``make bench``: every measurement on the same generated year, then one table.

The stages run one after another, never side by side, so each has the machine to itself.
Progress goes to stderr; the table goes to stdout, to ``bench/results.md`` (with per-query
details) and between the bench markers of ``README.md``.
"""

from __future__ import annotations

import gc
import importlib
import os
import shutil
import statistics
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
from tqdm import tqdm

from bench import baseline, generate, handler, queries, report
from bench.generate import SNAPSHOTS
from bench.queries import BenchError
from etl_lib import catalog, lake, pipeline

ROOT = Path(__file__).resolve().parents[1]
WORK = ROOT / "build" / "bench"
DATASET = WORK / "dataset"
LAKES = WORK / "lakes"
RESULTS = Path(__file__).resolve().with_name("results.md")
README = ROOT / "README.md"

# The seed-style baseline is the slowest path; its throughput is per snapshot, so the first
# days of the year measure it as well as the whole year would, in a fraction of the time.
BASELINE_DAYS = 91
QUERY_REPETITIONS = 3  # after compaction; before it, one run already takes minutes
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
    """A progress bar on stderr; the shape of ``etl_lib.pipeline.Track``."""
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


def max_files_per_table_day(lake_root: Path) -> int:
    """The most Parquet files any table has in any one day partition."""
    folders = Counter(path.parent for path in (lake_root / lake.TABLES).glob("*/dt=*/*.parquet"))
    return max(folders.values(), default=0)


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


def parse_ceilings(raw_root: Path, runs: int) -> dict[str, Throughput]:
    """DuckDB reading the raw files and nothing else, on every core (its default)."""
    files = f"'{raw_root / lake.RAW}/*/*/*.json'"
    ceilings = {}
    with duckdb.connect() as connection:
        for name, template in CEILING_QUERIES.items():
            statement = template.format(files=files, limit=MAX_JSON_OBJECT_BYTES)
            times = []
            for _ in range(runs):
                row, seconds = timed(lambda s=statement: connection.execute(s).fetchone())
                if row[0] != SNAPSHOTS:
                    raise BenchError(f"{name} read {row[0]} documents, expected {SNAPSHOTS}")
                times.append(seconds)
            ceilings[name] = Throughput(SNAPSHOTS, statistics.median(times))
    return ceilings


def transform_throughput(
    transform: Callable, lake_root: Path, runs: int = 1
) -> tuple[Throughput, pipeline.TransformSummary]:
    """The median of ``runs`` transforms of the whole raw zone, each into a fresh lake."""
    times = []
    for _ in range(runs):
        generate.fresh_lake(DATASET, lake_root)
        os.sync()  # the previous run's output is flushed before the clock starts
        summary, seconds = timed(lambda: transform(str(lake_root), track=progress))
        if len(summary.transformed) != SNAPSHOTS or summary.quarantined:
            raise BenchError(
                f"{transform.__name__} transformed {len(summary.transformed)} of {SNAPSHOTS} "
                f"snapshots and quarantined {len(summary.quarantined)}"
            )
        times.append(seconds)
    return Throughput(SNAPSHOTS, statistics.median(times)), summary


def baseline_throughput(out_dir: Path) -> Throughput:
    if out_dir.exists():
        shutil.rmtree(out_dir)
    kept = {day.isoformat() for day in generate.days()[:BASELINE_DAYS]}
    paths = [p for p in generate.raw_files(DATASET) if p.parent.name.removeprefix("dt=") in kept]
    _, seconds = timed(lambda: baseline.run(paths, out_dir, progress))
    return Throughput(len(paths), seconds)


def _mb(count: float) -> str:
    return f"{count / 1e6:,.1f} MB"


def _seconds(value: float) -> str:
    return f"{value:.2f} s" if value < 10 else f"{value:.0f} s"


def main() -> int:
    try:
        return run()
    except BenchError as exc:
        print(f"bench: {exc}", file=sys.stderr)
        return 2


def run() -> int:
    started = time.perf_counter()
    load_at_start = os.getloadavg()[0]  # other work on the machine skews every figure
    stages = Stages(11)
    transform_bulk = product_function("etl_lib.pipeline", "transform_bulk")
    compact = product_function("etl_lib.compaction", "compact")
    bulk_lake, per_file_lake = LAKES / "bulk", LAKES / "per_file"

    with stages.stage("dataset: one playlist, hourly snapshots for a year"):
        if generate.is_complete(DATASET):
            print("  reusing build/bench/dataset (same generator version)", file=sys.stderr)
        else:
            generate.generate(DATASET, progress)
        raw_paths = generate.raw_files(DATASET)
        dataset_bytes = generate.raw_bytes(DATASET)
        warm_page_cache(raw_paths)

    with stages.stage("parse-only ceilings: DuckDB reading the raw JSON"):
        ceilings = parse_ceilings(DATASET, FAST_PATH_RUNS)

    with stages.stage("bulk transform (etl_lib.pipeline.transform_bulk)"):
        bulk, bulk_summary = transform_throughput(transform_bulk, bulk_lake, FAST_PATH_RUNS)

    with stages.stage("per-file transform (etl_lib.pipeline.transform)"):
        per_file, per_file_summary = transform_throughput(pipeline.transform, per_file_lake)
    same_tables = bulk_summary.rows == per_file_summary.rows

    with stages.stage(f"seed-style baseline (json_normalize -> CSV, {BASELINE_DAYS} days)"):
        seed = baseline_throughput(LAKES / "baseline_csv")

    with stages.stage("report queries before compaction (1 run)"):
        catalog.build_catalog(str(per_file_lake))
        files_before = max_files_per_table_day(per_file_lake)
        before = queries.warehouse_latency(str(per_file_lake), repetitions=1)

    with stages.stage("compaction (etl_lib.compaction.compact), then again"):
        first_compaction, compaction_seconds = timed(
            lambda: compact(str(per_file_lake), track=progress)
        )
        second_compaction = compact(str(per_file_lake))
        files_after = max_files_per_table_day(per_file_lake)

    with stages.stage(f"report queries after compaction ({QUERY_REPETITIONS} runs)"):
        catalog.build_catalog(str(per_file_lake))
        after = queries.warehouse_latency(str(per_file_lake), QUERY_REPETITIONS)
        after_plain = queries.plain_view_latency(str(per_file_lake), QUERY_REPETITIONS)

    with stages.stage("bytes read by the report queries: Parquet vs CSV"):
        csv_root = LAKES / "csv"
        if csv_root.exists():
            shutil.rmtree(csv_root)
        queries.export_csv(str(per_file_lake), csv_root)
        read = queries.bytes_read(str(per_file_lake), csv_root)
        parquet_size = queries.table_bytes(per_file_lake, ".parquet")
        csv_size = queries.table_bytes(csv_root, ".csv")

    with stages.stage("transform handler on one snapshot (moto S3, fresh process)"):
        last_raw = raw_paths[-1]
        cost = handler.measure(last_raw, last_raw.relative_to(DATASET).as_posix())

    with stages.stage("report"):
        ceiling = ceilings["read_json"]
        share_of_ceiling = bulk.per_second / ceiling.per_second
        bulk_over_seed = bulk.per_second / seed.per_second
        parquet_read, csv_read = sum(read.parquet.values()), sum(read.csv.values())
        seed_scope = "" if BASELINE_DAYS == generate.DAYS else f"; first {BASELINE_DAYS} days"
        rows = [
            report.Row(
                "Bulk transform, raw JSON -> Parquet tables [1]",
                bulk.describe(),
                f"≥ {BULK_PER_SECOND:,}/s",
                bulk.per_second >= BULK_PER_SECOND,
            ),
            report.Row("Per-file transform [2]", per_file.describe()),
            report.Row("Seed-style baseline [3]", seed.describe(seed_scope)),
            report.Row("Parse-only ceiling: DuckDB `read_json` [4]", ceiling.describe()),
            report.Row(
                "DuckDB `read_json_objects` (read + validate) [4]",
                ceilings["read_json_objects"].describe(),
            ),
            report.Row(
                "DuckDB `read_json` into typed columns [4]",
                ceilings["read_json_columns"].describe(),
            ),
            report.Row("Bulk / per-file", f"{bulk.per_second / per_file.per_second:.1f}x"),
            report.Row(
                "Bulk / seed-style baseline",
                f"{bulk_over_seed:.1f}x",
                f"≥ {BULK_OVER_BASELINE:.0f}x",
                bulk_over_seed >= BULK_OVER_BASELINE,
            ),
            report.Row(
                "Bulk as a share of the parse-only ceiling",
                f"{share_of_ceiling:.1%}",
                f"≥ {BULK_SHARE_OF_CEILING:.0%}",
                share_of_ceiling >= BULK_SHARE_OF_CEILING,
            ),
            report.Row(
                "Bulk as a share of DuckDB `read_json` into typed columns",
                f"{bulk.per_second / ceilings['read_json_columns'].per_second:.0%}",
            ),
            report.Row("Files per table per day, before compaction [5]", f"{files_before}"),
            report.Row(
                "Files per table per day, after compaction [5]",
                f"{files_after}",
                f"≤ {FILES_PER_TABLE_DAY}",
                files_after <= FILES_PER_TABLE_DAY,
            ),
            report.Row(
                "Compaction of the year [5]",
                f"{first_compaction.files_before:,} -> {first_compaction.files_after:,} files, "
                f"{first_compaction.partitions_rewritten} partitions in "
                f"{_seconds(compaction_seconds)}",
            ),
            report.Row(
                "Compaction run again (idempotence) [5]",
                f"{second_compaction.partitions_rewritten} partitions rewritten",
                "0",
                second_compaction.partitions_rewritten == 0,
            ),
            report.Row(
                "Report query set on the year, before compaction [6]",
                f"{_seconds(before.total)} (1 run)",
            ),
            report.Row(
                "Report query set on the year, after compaction [6]",
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
            "(one process per core); wall clock from the call to the last Parquet file "
            f"written, worker start-up included; median of {FAST_PATH_RUNS} runs. A day's 24 "
            "hourly snapshots repeat that day's chart, as an unchanged chart does; the bulk "
            "path decodes a repeated track object, and works out its rows, once per day.",
            "[2] `etl_lib.pipeline.transform` on a fresh lake: one process, one Parquet file "
            "per table per raw file (the hourly path); 1 run."
            + ("" if same_tables else " **Its row counts differ from the bulk path's.**"),
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
            "[5] `etl_lib.compaction.compact` on the per-file lake; files per table per day is "
            "the largest count over every table and day partition. Run a second time, it "
            "must rewrite nothing.",
            f"[6] The {len(after.per_query)} queries the report runs after each load "
            "(`etl_lib.reports.input_queries`, SQL in `etl_lib/sql/report`: the window's daily "
            "charts, the latest track, album, credit and artist attributes, freshness) with "
            "the window set to the whole year, on one catalog connection as "
            "`reports.load_inputs` runs them (transpile, run on DuckDB); the sum over the set. "
            "Per query in `bench/results.md`.",
            "[7] Every byte DuckDB fetched from the table files running the set once (a "
            "counting fsspec filesystem; one thread; DuckDB's file cache off; Parquet "
            "prefetching off, so DuckDB fetches footers and then only the column chunks a "
            "query needs, the way Athena reads and bills Parquet): the compacted "
            "lake's Parquet through the catalog's views, and the same tables written as CSV "
            "(one file per table per day, same `dt` folders) through `read_csv` views. "
            + (
                "Both give the same results. "
                if read.same_results
                else "**The results differ between the two layouts.** "
            )
            + f"On disk: Parquet {_mb(parquet_size)}, CSV {_mb(csv_size)}.",
            "[8] `lambda/transform/app.py` in a fresh interpreter handling the S3 "
            "ObjectCreated notification of one raw snapshot, on moto's S3 server; import "
            f"time is loading app.py (median of {cost.runs} runs), peak RSS the process's "
            f"high-water mark (VmHWM), interpreter included (highest of {cost.runs}); "
            "handling took "
            f"{cost.handler_seconds:.2f} s.",
        ]
        elapsed = time.perf_counter() - started
        summary = (
            f"Input: {SNAPSHOTS:,} raw snapshots of one playlist, hourly from "
            f"{generate.days()[0]} to {generate.days()[-1]}, 50 entries each: "
            f"{dataset_bytes / 1e9:.2f} GB of JSON, {dataset_bytes / SNAPSHOTS / 1e3:.0f} KB a "
            f"file. The run took {elapsed / 60:.1f} min."
        )
        machine = f"Machine: {report.machine()}; load average at the start {load_at_start:.2f}."
        block = "\n\n".join(
            [summary, report.table(rows), "\n".join(f"- {note}" for note in notes), machine]
        )
        details = per_query_details(before, after, after_plain, read)
        report.write_results(RESULTS, f"# Benchmark results\n\n{block}\n\n{details}")
        readme_updated = report.update_readme(README, block)

    print(block)
    print(f"\nwritten: {RESULTS.relative_to(ROOT)}", file=sys.stderr)
    if not readme_updated:
        print(
            f"README.md has no {report.README_START} ... {report.README_END} markers: not updated",
            file=sys.stderr,
        )
    return 0


def per_query_details(
    before: queries.Latency,
    after: queries.Latency,
    after_plain: queries.Latency,
    read: queries.BytesRead,
) -> str:
    """Per query: latency before and after compaction, and bytes read per layout."""
    lines = [
        "## Per query",
        "",
        "Seconds on one catalog connection, as the report runs them (before: 1 run; after: "
        f"median of {after.repetitions}); *plain views*: the same SQL on DuckDB over bare "
        "`read_parquet` views of the compacted files, without the catalog views' rule that "
        "skips files a newer batch file covers. Bytes: fetched from the table files, as in "
        "note [7].",
        "",
        "| query | before compaction | after | after, plain views | Parquet bytes "
        "| Parquet bytes, plain views | CSV bytes |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for name in after.per_query:
        lines.append(
            f"| {name} | {before.per_query[name]:.2f} | {after.per_query[name]:.2f} "
            f"| {after_plain.per_query[name]:.2f} | {_mb(read.parquet[name])} "
            f"| {_mb(read.parquet_plain_views[name])} | {_mb(read.csv[name])} |"
        )
    lines.append(
        f"| **total** | {before.total:.2f} | {after.total:.2f} | {after_plain.total:.2f} "
        f"| {_mb(sum(read.parquet.values()))} | {_mb(sum(read.parquet_plain_views.values()))} "
        f"| {_mb(sum(read.csv.values()))} |"
    )
    return "\n".join(lines)
