"""Transform function: turn the raw objects an S3 notification names into table rows.

Event: an S3 ``ObjectCreated`` notification (``Records[].s3``). Only the objects it names
are transformed; the raw prefix is never listed. Their rows go into the lake's Iceberg
tables in one commit per table (``pipeline.transform``), ``snapshots`` last. Delivery is at
least once, which is safe: a snapshot's rows replace any rows of the same snapshot already
committed, so a redelivered or retried event leaves every row once, and so do two
invocations committing at the same time (Glue refuses the commit made from a stale table
version, and it is made again on top of the other). A file that cannot be transformed, for
whatever reason its content gives, is quarantined with a one-line reason, logged and
reported in the response, and the rest of the batch goes on. A storage or catalog error is
not the file's fault: it fails the invocation, which Lambda's asynchronous retries then
repeat. The response is what the OnSuccess destination hands to the report function.
"""

from __future__ import annotations

from urllib.parse import unquote_plus

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from etl_lib import pipeline
from etl_lib.config import Settings
from etl_lib.lake import layout

logger = Logger()
metrics = Metrics(namespace="SpotifyChartsLake")

S3_NOTIFICATION_REQUEST_ID = 'Records[0].responseElements."x-amz-request-id"'


def lake_raw_keys(event: dict, lake_root: str) -> tuple[list[str], list[str]]:
    """The lake's raw keys the notification names, and the other objects it names."""
    bucket, _, prefix = lake_root.removeprefix("s3://").rstrip("/").partition("/")
    root = f"{prefix}/" if prefix else ""
    raw_keys: list[str] = []
    ignored: list[str] = []
    for record in event.get("Records") or []:
        name = record["s3"]["bucket"]["name"]
        # Keys arrive URL-encoded: '=' as %3D, a space as '+'.
        key = unquote_plus(record["s3"]["object"]["key"])
        relative = key[len(root) :] if name == bucket and key.startswith(root) else ""
        if layout.parse_raw_key(relative) is None:  # also rules out keys outside raw/, non-JSON
            ignored.append(f"s3://{name}/{key}")
        elif relative not in raw_keys:  # one batch may name an object twice
            raw_keys.append(relative)
    return raw_keys, ignored


@logger.inject_lambda_context(correlation_id_path=S3_NOTIFICATION_REQUEST_ID)
@metrics.log_metrics
def handler(event: dict, context) -> dict:
    lake_root = Settings.from_env().s3_lake()
    raw_keys, ignored = lake_raw_keys(event, lake_root)
    if ignored:
        logger.warning("not raw files of this lake: ignored", extra={"ignored": ignored})
    summary = pipeline.transform(lake_root, raw_keys) if raw_keys else pipeline.TransformSummary()
    for raw_key, reason in summary.quarantined.items():
        logger.error("raw file quarantined", extra={"raw_key": raw_key, "reason": reason})
    counts = {
        "RawFilesTransformed": len(summary.transformed),
        "RawFilesQuarantined": len(summary.quarantined),
        "ChartEntriesWritten": summary.rows["chart_entries"],
    }
    for name, value in counts.items():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    response = {
        "transformed": summary.transformed,
        "quarantined": summary.quarantined,
        "rows": summary.rows,
        "ignored": ignored,
    }
    logger.info("transform finished", extra=response)
    return response
