"""Monthly AWS cost of the hourly schedule, from sizes measured on a demo lake.

    python infra/estimate_cost.py [--lake data/lake] [--playlists 1 73]

Sizes (raw envelope, the Iceberg tables' Parquet data files, heartbeat) are measured on the
lake given (run `make demo` first). Prices are AWS list prices for us-east-1 as published in
2026, written below as assumptions; Lambda durations are assumptions too (nothing here ran on
AWS). The chart is assumed to change once a day, so each playlist costs one download and 23
heartbeats a day, plus one transform (an Iceberg commit per table) and one report (a fixed
number of Athena queries) per new snapshot.
"""

from __future__ import annotations

import argparse
import statistics
from pathlib import Path

# --- prices (us-east-1 list prices, USD) -------------------------------------------------
LAMBDA_GB_SECOND_X86 = 0.0000166667
LAMBDA_REQUEST = 0.20 / 1_000_000
S3_STANDARD_GB_MONTH = 0.023
S3_PUT = 0.005 / 1000
S3_GET = 0.0004 / 1000
ATHENA_PER_TB = 5.00
ATHENA_MINIMUM_BYTES = 10 * 1024**2  # Athena bills at least 10 MB per query
SECRET_MONTH = 0.40
GLUE_REQUEST = 1.00 / 1_000_000  # beyond the first million a month, which are free
SECRETS_API_CALL = 0.05 / 10_000
ALARM_MONTH = 0.10
LOGS_INGEST_GB = 0.50

# --- assumptions --------------------------------------------------------------------------
HOURS_PER_MONTH = 730
DAYS_PER_MONTH = 30.4
CHECKS_PER_DAY = 24
CHANGES_PER_DAY = 1
EXTRACT_SECONDS_PER_PLAYLIST = 1.5  # one metadata call, plus the items on a change
EXTRACT_MEMORY_GB = 0.5
TRANSFORM_SECONDS = 2.0
TRANSFORM_MEMORY_GB = 1.0
REPORT_SECONDS = 60.0
REPORT_MEMORY_GB = 2.0
REPORT_QUERIES = 8
ALARMS_PER_DEPLOYMENT = 10
# One transform of one snapshot into existing tables (an Iceberg commit per table), as counted
# on moto's server: data, manifest, manifest-list and metadata files written, metadata and
# manifests read (more as manifests accumulate between compactions), Glue reads and updates.
TRANSFORM_PUTS = 36
TRANSFORM_GETS = 120
TRANSFORM_GLUE_REQUESTS = 24
LOG_BYTES_PER_INVOCATION = 2_000


def measured_sizes(lake_root: Path) -> dict[str, float]:
    def mean_size(pattern: str) -> float:
        sizes = [p.stat().st_size for p in lake_root.glob(pattern) if p.is_file()]
        if not sizes:
            raise SystemExit(f"no files match {lake_root}/{pattern}: run `make demo` first")
        return statistics.mean(sizes)

    tables = sum(
        mean_size(f"warehouse/*.db/{table}/data/dt=*/*.parquet")
        for table in ("snapshots", "chart_entries", "tracks", "albums", "artists", "track_artists")
    )
    return {
        "raw_bytes": mean_size("raw/playlist_id=*/dt=*/*.json"),
        "table_bytes": tables,
        "heartbeat_bytes": mean_size("heartbeats/playlist_id=*/dt=*/*.json"),
    }


def monthly_cost(playlists: int, sizes: dict[str, float]) -> dict[str, float]:
    changes = playlists * CHANGES_PER_DAY * DAYS_PER_MONTH
    checks = playlists * CHECKS_PER_DAY * DAYS_PER_MONTH
    extract_invocations = HOURS_PER_MONTH  # one run covers every playlist
    lambda_gb_seconds = (
        extract_invocations * EXTRACT_MEMORY_GB * EXTRACT_SECONDS_PER_PLAYLIST * playlists
        + changes * (TRANSFORM_MEMORY_GB * TRANSFORM_SECONDS + REPORT_MEMORY_GB * REPORT_SECONDS)
    )
    invocations = extract_invocations + 2 * changes
    stored_gb_after_a_year = 12 * changes * (
        sizes["raw_bytes"] + sizes["table_bytes"]
    ) / 1024**3 + 12 * checks * sizes["heartbeat_bytes"] / 1024**3
    # heartbeats, raw + state, tables, report
    puts = checks + changes * (1 + 1 + TRANSFORM_PUTS) + changes * 12
    gets = changes * (1 + TRANSFORM_GETS) + changes * REPORT_QUERIES * 6
    scanned_per_query = max(ATHENA_MINIMUM_BYTES, sizes["table_bytes"] * 30)
    athena = changes * REPORT_QUERIES * scanned_per_query / 1024**4 * ATHENA_PER_TB
    return {
        "Lambda": lambda_gb_seconds * LAMBDA_GB_SECOND_X86 + invocations * LAMBDA_REQUEST,
        "S3 storage (after a year)": stored_gb_after_a_year * S3_STANDARD_GB_MONTH,
        "S3 requests": puts * S3_PUT + gets * S3_GET,
        "Athena scans": athena,
        "Glue requests": changes * TRANSFORM_GLUE_REQUESTS * GLUE_REQUEST,
        "Secrets Manager": SECRET_MONTH + extract_invocations * SECRETS_API_CALL * 2,
        "CloudWatch alarms + logs": ALARMS_PER_DEPLOYMENT * ALARM_MONTH
        + invocations * LOG_BYTES_PER_INVOCATION / 1024**3 * LOGS_INGEST_GB,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lake", default="data/lake", type=Path)
    parser.add_argument("--playlists", type=int, nargs="+", default=[1, 73])
    args = parser.parse_args()
    sizes = measured_sizes(args.lake)
    print(
        f"measured on {args.lake}: raw envelope {sizes['raw_bytes'] / 1024:.0f} KiB, "
        f"table data files per snapshot {sizes['table_bytes'] / 1024:.0f} KiB, "
        f"heartbeat {sizes['heartbeat_bytes']:.0f} B"
    )
    costs = {n: monthly_cost(n, sizes) for n in args.playlists}
    print("\n| USD per month | " + " | ".join(f"{n} playlist(s)" for n in costs) + " |")
    print("| --- |" + " ---: |" * len(costs))
    for item in next(iter(costs.values())):
        print(f"| {item} | " + " | ".join(f"{c[item]:.2f}" for c in costs.values()) + " |")
    totals = " | ".join(f"**{sum(c.values()):.2f}**" for c in costs.values())
    print(f"| **total** | {totals} |")


if __name__ == "__main__":
    main()
