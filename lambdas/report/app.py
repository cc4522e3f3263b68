"""Report function: after each successful load, publish the trends report of each playlist.

Event: what a Lambda destination sends on the transform's success
(``{"requestContext": ..., "requestPayload": ..., "responsePayload": <transform response>}``),
or a direct ``{"playlist_id": ..., "as_of": "YYYY-MM-DD"}``. Each playlist named by the
transformed raw keys gets a report as of the date of its newest one, queried with Athena.
"""

from __future__ import annotations

from datetime import UTC, datetime

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from etl_lib.config import Settings
from etl_lib.lake import layout

logger = Logger()
metrics = Metrics(namespace="SpotifyChartsLake")

REPORT_DAYS = 30
# A destination event carries the transform invocation's request id: one id across both logs.
DESTINATION_REQUEST_ID = "requestContext.requestId"


def reports_to_run(event: dict) -> dict[str, str]:
    """Playlist id -> as_of date, from a direct request or a forwarded transform response."""
    if event.get("playlist_id"):
        as_of = event.get("as_of") or datetime.now(UTC).date().isoformat()
        return {layout.check_playlist_id(event["playlist_id"]): as_of}
    transformed = (event.get("responsePayload") or {}).get("transformed") or []
    return layout.newest_day_by_playlist(transformed)


@logger.inject_lambda_context(correlation_id_path=DESTINATION_REQUEST_ID)
@metrics.log_metrics
def handler(event: dict, context) -> dict:
    wanted = reports_to_run(event)
    if not wanted:
        logger.info("nothing was transformed: no report to run")
        metrics.add_metric(name="ReportsPublished", unit=MetricUnit.Count, value=0)
        return {"reports": []}
    # papermill, nbconvert and matplotlib load only when a report actually runs.
    from etl_lib.reporting.reports import run_report

    settings = Settings.from_env()  # per invocation: nothing is read at import
    lake_root = settings.s3_lake()
    reports = []
    for playlist_id, as_of in wanted.items():
        result = run_report(
            lake_root,
            playlist_id=playlist_id,
            as_of=as_of,
            days=REPORT_DAYS,
            engine=settings.report_engine,
        )
        reports.append(
            {
                "playlist_id": playlist_id,
                "as_of": as_of,
                "succeeded": result.succeeded,
                "output_prefix": result.output_prefix,
                "error": result.error,
            }
        )
    succeeded = sum(report["succeeded"] for report in reports)
    metrics.add_metric(name="ReportsPublished", unit=MetricUnit.Count, value=succeeded)
    # A failed report keeps its status.json and notebook under failed/ in the lake; it is
    # not raised, since an automatic retry would fail on the same data the same way.
    metrics.add_metric(name="ReportFailures", unit=MetricUnit.Count, value=len(reports) - succeeded)
    log = logger.info if succeeded == len(reports) else logger.error
    log("reports finished", extra={"reports": reports})
    return {"reports": reports}
