"""Extract function: on a schedule, land each configured playlist's snapshot in the raw zone.

Event: an EventBridge Scheduler or rule event; only its ``id`` is read, as the correlation id.
Settings come from the environment (``Settings.from_env``), the Spotify credentials from an
SSM Parameter Store SecureString (``SPOTIFY_ETL_CREDENTIALS_PARAMETER``).
"""

from __future__ import annotations

from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.logging import correlation_paths
from aws_lambda_powertools.metrics import MetricUnit

from etl_lib import pipeline
from etl_lib.config import Settings

logger = Logger()
metrics = Metrics(namespace="SpotifyChartsLake")

# Every status gets its metric on every run, zero included, so a graph shows "none" rather
# than a gap. SuccessfulExtract is the heartbeat an alarm watches for (missing 3 hours).
STATUS_METRICS = {
    pipeline.ExtractStatus.EXTRACTED: "SnapshotsExtracted",
    pipeline.ExtractStatus.UNCHANGED: "SnapshotsUnchanged",
    pipeline.ExtractStatus.ALREADY_LANDED: "SnapshotsAlreadyLanded",
    pipeline.ExtractStatus.FAILED: "ExtractFailures",
    pipeline.ExtractStatus.NOT_ATTEMPTED: "ExtractsNotAttempted",
}


class ExtractFailed(RuntimeError):
    """No playlist was extracted: raised so the async invocation counts as an error."""


@logger.inject_lambda_context(correlation_id_path=correlation_paths.EVENT_BRIDGE)
@metrics.log_metrics
def handler(event: dict, context) -> dict:
    # Read per invocation, not at import. The credentials are read when the run calls Spotify,
    # so a refresh token the previous run rotated (and wrote back to the parameter) is used.
    settings = Settings.from_env()
    outcomes = [
        {
            "playlist_id": outcome.playlist_id,
            "status": outcome.status,
            "raw_key": outcome.raw_key,
            "error": str(outcome.error) if outcome.error else None,
        }
        for outcome in pipeline.extract(settings)
    ]
    for status, metric in STATUS_METRICS.items():
        count = sum(outcome["status"] == status for outcome in outcomes)
        metrics.add_metric(name=metric, unit=MetricUnit.Count, value=count)
    failures = [outcome for outcome in outcomes if outcome["error"]]
    if not failures:
        metrics.add_metric(name="SuccessfulExtract", unit=MetricUnit.Count, value=1)
        logger.info("extract finished", extra={"outcomes": outcomes})
    elif len(failures) < len(outcomes):
        logger.warning("some playlists failed", extra={"outcomes": outcomes})
    else:
        logger.error("every playlist failed", extra={"outcomes": outcomes})
        raise ExtractFailed("; ".join(f"{o['playlist_id']}: {o['error']}" for o in failures))
    return {"outcomes": outcomes}
