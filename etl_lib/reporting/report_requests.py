"""Report requests: which playlists' reports to publish, as of which day.

On AWS the reports do not run where the data is loaded. A load with fresh data (the transform
function) or a finished backfill (``spotify-etl backfill``) puts one message on the
report-requests queue (``SPOTIFY_ETL_REPORT_QUEUE_URL``); the report function merges the
messages of a batch and publishes them in one run. The message body is
``{"reports": {"<playlist_id>": "YYYY-MM-DD", ...}}``: ``body`` writes it, ``parse`` checks one
that arrives (a queue delivers whatever was put on it).
"""

from __future__ import annotations

import json
import re
from datetime import date

from etl_lib.aws import aws_client, aws_error
from etl_lib.config import Settings
from etl_lib.errors import ConfigError, EtlError
from etl_lib.lake import layout

ISO_DAY = re.compile(r"\d{4}-\d{2}-\d{2}")


def body(reports: dict[str, str]) -> str:
    return json.dumps({"reports": reports}, sort_keys=True)


def parse(text: str) -> dict[str, str]:
    """Playlist id -> as_of of one request; ValueError or ConfigError says what is wrong."""
    document = json.loads(text)
    reports = document.get("reports") if isinstance(document, dict) else None
    if not isinstance(reports, dict):
        raise ValueError('the body has no "reports" mapping of playlist ids to days')
    for playlist_id, as_of in reports.items():
        layout.check_playlist_id(playlist_id)
        if not (isinstance(as_of, str) and ISO_DAY.fullmatch(as_of)):
            raise ValueError(f"{playlist_id}: as_of {as_of!r} is not a YYYY-MM-DD day")
        date.fromisoformat(as_of)  # a day that exists: not 2026-02-30
    return reports


def send(settings: Settings, reports: dict[str, str]) -> None:
    """Put one request for ``reports`` on the report-requests queue; a failure a user can fix
    (credentials, a missing queue) is one ``EtlError`` line."""
    from botocore.exceptions import BotoCoreError, ClientError

    if not settings.report_queue_url:
        raise ConfigError("SPOTIFY_ETL_REPORT_QUEUE_URL is not set: no queue to ask for reports")
    try:
        aws_client("sqs", settings).send_message(
            QueueUrl=settings.report_queue_url, MessageBody=body(reports)
        )
    except (BotoCoreError, ClientError) as exc:
        error = aws_error(exc, service="Amazon SQS", resource=settings.report_queue_url)
        if error is None:  # e.g. the queue does not exist: the setting names the wrong one
            details = exc.response.get("Error", {}) if isinstance(exc, ClientError) else {}
            error = EtlError(
                f"Amazon SQS did not take the report request for {settings.report_queue_url}: "
                f"{details.get('Message') or exc} (check SPOTIFY_ETL_REPORT_QUEUE_URL)"
            )
        raise error from exc
