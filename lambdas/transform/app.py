"""Transform function: turn the raw objects S3 reported, a batch at a time, into table rows.

Event: a batch of messages from the raw-objects SQS queue, each message's body an S3
``ObjectCreated`` notification (``Records[].s3``) for objects under ``raw/``. Only the
objects they name are transformed; the raw prefix is never listed. The rows of the whole
batch go into the lake's Iceberg tables in one commit per table (``pipeline.transform``),
``snapshots`` last. Delivery is at least once, which is safe: a snapshot's rows replace any
rows of the same snapshot already committed, so a redelivered message leaves every row once,
and so do two invocations committing at the same time (Glue refuses the commit made from a
stale table version, and it is made again on top of the other).

What can never succeed is not retried: a file its content keeps from being transformed is
quarantined with a one-line reason (that is its answer), and a message that is not an S3
notification, S3's test event, or an object that is not a raw file of this lake is logged
and left out. A storage or catalog error is not a message's fault: every message of the
batch is then reported in ``batchItemFailures``, so SQS delivers them again, and after the
queue's receive limit moves them to its dead-letter queue.

After a batch, one message on the report-requests queue asks for the reports of the
playlists whose newest raw file is fresh (captured within ``report_fresh_hours``); older
files are history being backfilled, which asks for no report.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import timedelta
from urllib.parse import unquote_plus

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from etl_lib import pipeline
from etl_lib.config import Settings
from etl_lib.errors import EtlError
from etl_lib.lake import layout
from etl_lib.reporting import report_requests

logger = Logger()
metrics = Metrics(namespace="SpotifyChartsLake")

# One id per batch in every log line: the first message's (S3's request id is inside the
# message body, which a correlation path cannot parse when the body is not JSON).
FIRST_MESSAGE_ID = "Records[0].messageId"


@dataclass
class Batch:
    """What an SQS batch asks for: the lake's raw keys (each once) and the messages."""

    message_ids: list[str] = field(default_factory=list)
    raw_keys: list[str] = field(default_factory=list)
    # What was left out (a message or an object), and why.
    ignored: dict[str, str] = field(default_factory=dict)


def lake_raw_keys(notification: dict, lake_root: str) -> tuple[list[str], list[str]]:
    """The lake's raw keys an S3 notification names, and the other objects it names."""
    bucket, _, prefix = lake_root.removeprefix("s3://").rstrip("/").partition("/")
    root = f"{prefix}/" if prefix else ""
    raw_keys: list[str] = []
    others: list[str] = []
    for record in notification["Records"]:
        name = record["s3"]["bucket"]["name"]
        # Keys arrive URL-encoded: '=' as %3D, a space as '+'.
        key = unquote_plus(record["s3"]["object"]["key"])
        relative = key[len(root) :] if name == bucket and key.startswith(root) else ""
        if layout.parse_raw_key(relative) is None:  # also rules out keys outside raw/, non-JSON
            others.append(f"s3://{name}/{key}")
        else:
            raw_keys.append(relative)
    return raw_keys, others


def read_batch(event: dict, lake_root: str) -> Batch:
    batch = Batch()
    for message in event.get("Records") or []:
        message_id = message["messageId"]
        batch.message_ids.append(message_id)
        try:
            notification = json.loads(message.get("body") or "")
        except ValueError:
            batch.ignored[f"message {message_id}"] = "its body is not JSON"
            continue
        if isinstance(notification, dict) and notification.get("Event") == "s3:TestEvent":
            # Sent once by S3 when the notification is configured.
            batch.ignored[f"message {message_id}"] = "S3's test event"
            continue
        try:
            raw_keys, others = lake_raw_keys(notification, lake_root)
        except (KeyError, TypeError, AttributeError):
            batch.ignored[f"message {message_id}"] = "its body is not an S3 event notification"
            continue
        for raw_key in raw_keys:
            if raw_key not in batch.raw_keys:  # a batch may name an object twice
                batch.raw_keys.append(raw_key)
        batch.ignored.update(dict.fromkeys(others, "not a raw file of this lake"))
    return batch


def request_reports(settings: Settings, reports: dict[str, str]) -> bool:
    """One message on the report-requests queue for these playlists; False if it was not
    sent. Not sending fails nothing: the rows are committed, and a retry of the batch would
    only commit them again; the next load of each playlist asks again."""
    try:
        report_requests.send(settings, reports)
    except EtlError:
        logger.exception("reports not requested", extra={"reports": reports})
        return False
    logger.info("reports requested", extra={"reports": reports})
    return True


@logger.inject_lambda_context(correlation_id_path=FIRST_MESSAGE_ID)
@metrics.log_metrics
def handler(event: dict, context) -> dict:
    settings = Settings.from_env()
    lake_root = settings.s3_lake()
    batch = read_batch(event, lake_root)
    if batch.ignored:
        logger.warning("left out of the batch", extra={"ignored": batch.ignored})
    try:
        summary = (
            pipeline.transform(lake_root, batch.raw_keys)
            if batch.raw_keys
            else pipeline.TransformSummary()
        )
    except Exception:  # noqa: BLE001 - storage or catalog: every message goes back to SQS
        logger.exception(
            "transform failed: every message of the batch will be delivered again",
            extra={"raw_keys": batch.raw_keys},
        )
        # Lambda's Errors metric does not see a batch reported as failed: this does.
        metrics.add_metric(name="TransformBatchFailures", unit=MetricUnit.Count, value=1)
        return {
            "batchItemFailures": [{"itemIdentifier": m} for m in batch.message_ids],
            "ignored": batch.ignored,
        }
    for raw_key, reason in summary.quarantined.items():
        logger.error("raw file quarantined", extra={"raw_key": raw_key, "reason": reason})
    fresh_since = layout.now_utc() - timedelta(hours=settings.report_fresh_hours)
    reports = layout.newest_day_by_playlist(summary.transformed, captured_since=fresh_since)
    requested: dict[str, str] = {}
    requests_failed = 0
    if reports and not settings.report_queue_url:
        logger.warning("no report queue (SPOTIFY_ETL_REPORT_QUEUE_URL): no report requested")
    elif reports and request_reports(settings, reports):
        requested = reports
    elif reports:
        requests_failed = 1
    counts = {
        "RawFilesTransformed": len(summary.transformed),
        "RawFilesQuarantined": len(summary.quarantined),
        "ChartEntriesWritten": summary.rows["chart_entries"],
        "ReportRequestsFailed": requests_failed,
        "TransformBatchFailures": 0,
    }
    for name, value in counts.items():
        metrics.add_metric(name=name, unit=MetricUnit.Count, value=value)
    response = {
        "batchItemFailures": [],
        "transformed": summary.transformed,
        "quarantined": summary.quarantined,
        "rows": summary.rows,
        "ignored": batch.ignored,
        "reports_requested": requested,
    }
    logger.info("transform finished", extra=response)
    return response
