"""Athena views function: the stack's custom resource ``AthenaViews`` that makes the lake's
tables and the shipped views ready in Athena on every deploy.

CloudFormation sends Create, Update or Delete. Create and Update run what
``spotify-etl catalog --engine athena`` runs (``catalog.build_catalog``): the Iceberg tables
that do not exist yet are created empty, and every shipped view is created or replaced.
Delete does nothing: the views are tables of the Glue database and go with it.

CloudFormation learns the outcome only from the response PUT to the request's presigned
``ResponseURL``; without one it waits an hour before failing the deploy. So a response is
always sent, failures included, and before the function's own timeout.

Built into the report function's image (the Dockerfile copies this file as
``views_app.py``): it has pyathena and pyiceberg.
"""

from __future__ import annotations

import json
import threading
import time
import urllib.error
import urllib.request

from aws_lambda_powertools import Logger

logger = Logger()

SUCCESS = "SUCCESS"
FAILED = "FAILED"
# Time kept back from the function's timeout to send the response.
RESPONSE_RESERVE_SECONDS = 20
RESPONSE_TIMEOUT_SECONDS = 10
RESPONSE_ATTEMPTS = 3
# CloudFormation refuses a response body over 4 KiB; the reason is the only long part.
REASON_LIMIT = 1000


def build_catalog() -> dict[str, str]:
    """Create the missing tables and create or replace the views; their names, for the
    resource's attributes (``!GetAtt AthenaViews.Views``)."""
    from etl_lib.config import Settings
    from etl_lib.warehouse import catalog
    from etl_lib.warehouse.sql import shipped

    settings = Settings.from_env()  # per request: nothing is read at import
    names = catalog.build_catalog(settings.s3_lake(), "athena", settings)
    views = shipped("views")
    return {
        "Tables": ",".join(name for name in names if name not in views),
        "Views": ",".join(name for name in names if name in views),
    }


@logger.inject_lambda_context
def handler(event: dict, context) -> dict:
    request_type = event["RequestType"]
    logger.info("custom resource request", extra={"request_type": request_type})
    if request_type == "Delete":
        status, reason, data = SUCCESS, "nothing to delete: the views go with the database", {}
    else:
        status, reason, data = _run_within(_seconds_left(context) - RESPONSE_RESERVE_SECONDS)
    response = {
        "Status": status,
        "Reason": _one_line(reason)[:REASON_LIMIT],
        # The same id on every request: a new one would make CloudFormation delete the old.
        "PhysicalResourceId": event.get("PhysicalResourceId") or event["LogicalResourceId"],
        "StackId": event["StackId"],
        "RequestId": event["RequestId"],
        "LogicalResourceId": event["LogicalResourceId"],
        "Data": data,
    }
    send_response(event["ResponseURL"], response)
    (logger.info if status == SUCCESS else logger.error)("responded", extra=response)
    return response


def _run_within(seconds: float) -> tuple[str, str, dict]:
    """``build_catalog`` in a thread given ``seconds``: (status, reason, data)."""
    outcome: dict = {}

    def work() -> None:
        try:
            outcome["data"] = build_catalog()
        except Exception as exc:  # any failure must still reach CloudFormation
            logger.exception("creating the tables and views failed")
            outcome["error"] = exc

    worker = threading.Thread(target=work, daemon=True)
    worker.start()
    worker.join(max(seconds, 1))
    if worker.is_alive():
        return FAILED, f"the tables and views were not ready within {seconds:.0f} s", {}
    if "error" in outcome:
        from etl_lib.errors import EtlError

        error = outcome["error"]
        # An EtlError says what to fix in one sentence; anything else is a bug of ours.
        reason = str(error) if isinstance(error, EtlError) else f"{type(error).__name__}: {error}"
        return FAILED, reason, {}
    data = outcome["data"]
    return SUCCESS, f"views ready: {data['Views']}", data


def send_response(url: str, response: dict) -> None:
    """PUT the response to CloudFormation's presigned S3 URL; a few tries, each bounded."""
    body = json.dumps(response).encode()
    for attempt in range(1, RESPONSE_ATTEMPTS + 1):
        # An empty Content-Type, as AWS's cfn-response sends: the URL is signed without one,
        # and urllib would otherwise add application/x-www-form-urlencoded.
        request = urllib.request.Request(
            url,
            data=body,
            method="PUT",
            headers={"Content-Type": "", "Content-Length": str(len(body))},
        )
        try:
            with urllib.request.urlopen(request, timeout=RESPONSE_TIMEOUT_SECONDS) as answer:
                answer.read()
            return
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            logger.warning("sending the response failed", extra={"attempt": attempt})
            if attempt == RESPONSE_ATTEMPTS:
                raise RuntimeError(f"cannot send the response to CloudFormation: {exc}") from exc
            time.sleep(attempt)


def _seconds_left(context) -> float:
    return context.get_remaining_time_in_millis() / 1000


def _one_line(text: str) -> str:
    return " ".join(str(text).split()) or "no reason given"
