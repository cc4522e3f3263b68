"""Report function: after each successful load, publish the trends report of each playlist.

Event: what a Lambda destination sends on the transform's success
(``{"requestContext": ..., "requestPayload": ..., "responsePayload": <transform response>}``),
or a direct ``{"playlist_id": ..., "as_of": "YYYY-MM-DD"}``. Each playlist named by the
transformed raw keys gets a report as of the date of its newest one, queried with Athena.
"""

from __future__ import annotations

import os
from datetime import UTC, datetime

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit

from etl_lib.lake import layout

logger = Logger()
metrics = Metrics(namespace="SpotifyChartsLake")

REPORT_DAYS = 30
# Athena in AWS; DuckDB reads the same S3 lake where Athena is not available (tests on moto).
REPORT_ENGINE = os.environ.get("SPOTIFY_ETL_REPORT_ENGINE", "athena")
# A destination event carries the transform invocation's request id: one id across both logs.
DESTINATION_REQUEST_ID = "requestContext.requestId"


def reports_to_run(event: dict) -> dict[str, str]:
    """Playlist id -> as_of date, from a direct request or a forwarded transform response."""
    if event.get("playlist_id"):
        as_of = event.get("as_of") or datetime.now(UTC).date().isoformat()
        return {layout.check_playlist_id(event["playlist_id"]): as_of}
    newest: dict[str, dict[str, str]] = {}
    for raw_key in (event.get("responsePayload") or {}).get("transformed") or []:
        parts = layout.parse_raw_key(raw_key)
        if parts and parts["stamp"] > newest.get(parts["playlist_id"], {"stamp": ""})["stamp"]:
            newest[parts["playlist_id"]] = parts
    return {playlist_id: parts["dt"] for playlist_id, parts in newest.items()}


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

    lake_root = os.environ["SPOTIFY_ETL_LAKE"]
    reports = []
    for playlist_id, as_of in wanted.items():
        result = run_report(
            lake_root, playlist_id=playlist_id, as_of=as_of, days=REPORT_DAYS, engine=REPORT_ENGINE
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
