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

from datetime import UTC, datetime

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from etl_lib.config import Settings
from etl_lib.errors import ConfigError
from etl_lib.lake import layout
from etl_lib.reporting import report_requests

logger = Logger()
metrics = Metrics(namespace="SpotifyChartsLake")

REPORT_DAYS = 30
# One id per batch in every log line (absent from a direct request).
FIRST_MESSAGE_ID = "Records[0].messageId"


def reports_to_run(event: dict) -> dict[str, str]:
    """Playlist id -> as_of date, from a direct request or a batch of report requests."""
    if event.get("playlist_id"):
        as_of = event.get("as_of") or datetime.now(UTC).date().isoformat()
        return {layout.check_playlist_id(event["playlist_id"]): as_of}
    wanted: dict[str, str] = {}
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
    )
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
    log("reports finished", extra={"requested": wanted, "reports": published})
    return {"batchItemFailures": [], "reports": published}
