"""The transform function on one snapshot: import time and peak memory of a cold start.

moto's server (on 127.0.0.1, a free port) stands in for the lake bucket and for the Glue Data
Catalog that holds an S3 lake's tables. One raw snapshot is put there, and a fresh interpreter
(``bench/handler_probe.py``) loads ``lambdas/transform/app.py`` and handles the SQS message
of the ObjectCreated notification S3 would send for it, with the environment the deployed
function gets.
"""

from __future__ import annotations

import json
import logging
import os
import statistics
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote_plus

import boto3
from moto.server import ThreadedMotoServer

from bench.handler_probe import RESULT_PREFIX
from etl_lib.transform.iceberg import WAREHOUSE

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "lambdas" / "transform" / "app.py"
PROBE = Path(__file__).resolve().with_name("handler_probe.py")
BUCKET = "bench-lake"
PREFIX = "lake"
REGION = "us-east-1"
FAKE_CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}


@dataclass
class HandlerCost:
    import_seconds: float  # median over the runs
    handler_seconds: float  # median over the runs
    peak_rss_mb: float  # highest over the runs (10^6 bytes)
    runs: int


def _notification(key: str) -> dict:
    """What the raw-objects queue hands the transform for one object: an SQS message whose
    body is the ObjectCreated notification S3 sent (keys arrive form-encoded)."""
    notification = {
        "Records": [
            {
                "eventVersion": "2.1",
                "eventSource": "aws:s3",
                "awsRegion": REGION,
                "eventTime": "2026-10-31T23:00:01.000Z",
                "eventName": "ObjectCreated:Put",
                "responseElements": {"x-amz-request-id": "BENCH0000000001"},
                "s3": {
                    "s3SchemaVersion": "1.0",
                    "bucket": {"name": BUCKET, "arn": f"arn:aws:s3:::{BUCKET}"},
                    "object": {"key": quote_plus(key, safe="/")},
                },
            }
        ]
    }
    return {
        "Records": [
            {
                "messageId": "bench-message-1",
                "eventSource": "aws:sqs",
                "awsRegion": REGION,
                "body": json.dumps(notification),
            }
        ]
    }


def _function_environment(endpoint: str) -> dict[str, str]:
    environment = {
        name: value
        for name, value in os.environ.items()
        if not name.startswith(("AWS_", "SPOTIFY_", "SPOTIPY_", "POWERTOOLS_"))
    }
    environment.update(
        {
            "AWS_ENDPOINT_URL": endpoint,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            **FAKE_CREDENTIALS,
            "SPOTIFY_ETL_LAKE": f"s3://{BUCKET}/{PREFIX}",
            "POWERTOOLS_SERVICE_NAME": "spotify-charts-transform",
            "POWERTOOLS_METRICS_NAMESPACE": "SpotifyChartsLake",
        }
    )
    return environment


def _probe(event: dict, environment: dict[str, str]) -> dict:
    completed = subprocess.run(
        [sys.executable, str(PROBE), str(APP), json.dumps(event)],
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        timeout=300,
    )
    for line in completed.stdout.splitlines():
        if line.startswith(RESULT_PREFIX):
            return json.loads(line.removeprefix(RESULT_PREFIX))
    raise RuntimeError(
        f"the transform handler did not finish (exit {completed.returncode}):\n"
        + (completed.stderr or completed.stdout)[-3000:]
    )


def measure(raw_file: Path, raw_key: str, runs: int = 3) -> HandlerCost:
    """Handle the notification for ``raw_key`` ``runs`` times, each in a fresh process."""
    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request on stderr
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        endpoint = f"http://{host}:{port}"
        s3 = boto3.client(
            "s3",
            endpoint_url=endpoint,
            region_name=REGION,
            aws_access_key_id=FAKE_CREDENTIALS["AWS_ACCESS_KEY_ID"],
            aws_secret_access_key=FAKE_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
        )
        s3.create_bucket(Bucket=BUCKET)
        s3.put_object(Bucket=BUCKET, Key=f"{PREFIX}/{raw_key}", Body=raw_file.read_bytes())
        event = _notification(f"{PREFIX}/{raw_key}")
        environment = _function_environment(endpoint)
        results = [_probe(event, environment) for _ in range(runs)]
        tables = f"{PREFIX}/{WAREHOUSE}/"
        written = s3.list_objects_v2(Bucket=BUCKET, Prefix=tables).get("KeyCount", 0)
    finally:
        server.stop()
    for result in results:
        if result["response"]["transformed"] != [raw_key]:
            raise RuntimeError(f"the handler did not transform {raw_key}: {result['response']}")
    if not written:
        raise RuntimeError("the handler wrote no table files to the lake bucket's warehouse")
    return HandlerCost(
        import_seconds=statistics.median(r["import_seconds"] for r in results),
        handler_seconds=statistics.median(r["handler_seconds"] for r in results),
        peak_rss_mb=max(r["peak_rss_bytes"] for r in results) / 1e6,
        runs=runs,
    )
