"""Report function: publish the trends reports that loads asked for, in one run.

Event: a batch from the report-requests SQS queue, each message's body
``{"reports": {"<playlist_id>": "YYYY-MM-DD", ...}}`` as the transform sends it after a load
with fresh data, or a direct ``{"playlist_id": ..., "as_of": "YYYY-MM-DD"}``. The requests
of a batch are merged, each playlist as of the newest day asked for, and run in one call
(``reports.run_reports``: one kernel, the queries of all the playlists together, and their
comparison), queried with Athena. A message that is not such a request is logged and left
out: delivering it again would not make it one.
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from etl_lib.config import Settings
from etl_lib.errors import ConfigError, EtlError
from etl_lib.lake import layout
from etl_lib.reporting import report_requests

logger = Logger()
metrics = Metrics(namespace="SpotifyChartsLake")

REPORT_DAYS = 30
# A report takes about 10 to 30 s (one notebook in the warm kernel, its charts and HTML); a new
# one starts only with this much of the function's time left, so a run of many playlists ends
# within its timeout and hands the rest to the next run.
TIME_FOR_ONE_REPORT_MS = 120_000
# One id per batch in every log line (absent from a direct request).
FIRST_MESSAGE_ID = "Records[0].messageId"


def reports_to_run(event: dict) -> dict[str, str | None]:
    """Playlist id -> as_of date, from a direct request (no as_of: the playlist's latest
    chart, as ``run_reports`` reads None) or a batch of report requests."""
    if event.get("playlist_id"):
        return {layout.check_playlist_id(event["playlist_id"]): event.get("as_of") or None}
    wanted: dict[str, str | None] = {}
    for message in event.get("Records") or []:
        try:
            requested = report_requests.parse(message.get("body") or "")
        except (ValueError, ConfigError) as exc:
            logger.error(
                "not a report request: left out",
                extra={"message_id": message.get("messageId"), "reason": str(exc)},
            )
            continue
        for playlist_id, as_of in requested.items():
            wanted[playlist_id] = max(as_of, wanted.get(playlist_id, as_of))
    return wanted


@logger.inject_lambda_context(correlation_id_path=FIRST_MESSAGE_ID)
@metrics.log_metrics
def handler(event: dict, context) -> dict:
    wanted = reports_to_run(event)
    if not wanted:
        logger.info("no report requested")
        metrics.add_metric(name="ReportsPublished", unit=MetricUnit.Count, value=0)
        return {"batchItemFailures": [], "reports": []}
    # papermill, nbconvert and matplotlib load only when a report actually runs.
    from etl_lib.reporting.reports import run_reports

    settings = Settings.from_env()  # per invocation: nothing is read at import
    results = run_reports(
        settings.s3_lake(),
        wanted,
        days=REPORT_DAYS,
        engine=settings.report_engine,
        settings=settings,
        time_is_up=lambda: context.get_remaining_time_in_millis() < TIME_FOR_ONE_REPORT_MS,
    )
    # Reports the function had no time to start go back on the queue as one request: the
    # next run makes them (and the comparison). A message not put back is logged and counted.
    deferred = {r.playlist_id: r.status["parameters"]["as_of"] for r in results if r.deferred}
    requeued = bool(deferred) and request_again(settings, deferred)
    metrics.add_metric(name="ReportsDeferred", unit=MetricUnit.Count, value=len(deferred))
    results = [r for r in results if not r.deferred]
    # playlist_id None: the comparison of the charts.
    published = [
        {
            "playlist_id": r.playlist_id,
            "output_prefix": r.output_prefix,
            "succeeded": r.succeeded,
            "error": r.error,
        }
        for r in results
    ]
    succeeded = sum(report["succeeded"] for report in published)
    metrics.add_metric(name="ReportsPublished", unit=MetricUnit.Count, value=succeeded)
    # A failed report keeps its status.json and notebook under failed/ in the lake; it is
    # not raised, since delivering the request again would fail on the same data the same way.
    metrics.add_metric(
        name="ReportFailures", unit=MetricUnit.Count, value=len(published) - succeeded
    )
    log = logger.info if succeeded == len(published) else logger.error
    log(
        "reports finished",
        extra={"requested": wanted, "reports": published, "deferred": deferred},
    )
    return {
        "batchItemFailures": [],
        "reports": published,
        "deferred": deferred,
        "requeued": requeued,
    }


def request_again(settings: Settings, deferred: dict[str, str]) -> bool:
    try:
        report_requests.send(settings, deferred)
    except EtlError:
        logger.exception("deferred reports not requested again", extra={"deferred": deferred})
        return False
    return True
