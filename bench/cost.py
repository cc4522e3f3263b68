"""The deployment's monthly AWS bill, measured: a simulated month through the real handlers.

    python -m bench.cost [--playlists 1 73] [--days 2] [--hours 24] [--readme README.md]

For each playlist count, moto's server on 127.0.0.1 gets what the template creates (the lake
bucket, the Glue database, the Athena workgroup, the queues) and the SSM SecureString of the
Spotify credentials that the deploy steps create, and the local Spotify server serves that
many charts, each changing once a day. Every simulated hour
the extract function runs; S3's notification of each raw file goes to the raw-objects queue;
a stand-in for Lambda's SQS event source hands the transform its batch and the report its
requests, as the template configures them (batch size, the messages they take and delete).
Each invocation is a cold start (``bench/cost_probe.py``: a process per function imports its
handler's module once, and each invocation runs in a fork of it, nothing run before): an
hourly function starts cold on Lambda too. The functions get the environment, memory and
handler module (the image's command) the template gives them.

Counted: every request each function made, by service and kind (S3 PUT/COPY/POST, LIST, GET,
HEAD; each Glue, Athena, SSM and SQS operation), and what AWS does for them: S3's
notifications, Lambda's receives and deletes, Athena's work for each query, and the KMS
request Parameter Store makes for each read and write of the SecureString. moto's
Athena runs no SQL: each query is answered by DuckDB over the same lake, one at a time, and
what DuckDB fetched for it is what Athena would read (the S3 requests and Glue lookups of the
tables the query reads) and scan (the bytes of their data files, whole small files fetched:
an upper bound), billed at Athena's 10 MB minimum per query. Each invocation's duration
(import and handler: Lambda bills a cold start's init) and peak resident memory (/proc VmHWM
of the process, plus the largest finished child's ru_maxrss: the report's kernel) are
measured, and its stdout: the log lines CloudWatch Logs ingests, with the EMF metrics in them.

The first ``--days`` days are simulated: day 1 creates the tables, later days are the steady
state, scaled to 30 days (``--days 30`` simulates the whole month). Of each day, the first
hourly check (the charts change at midnight) and ``--hours`` - 1 quiet ones run, the quiet
ones scaled to 23 (``--hours 24`` runs every hour). Durations are this machine's against a
local moto: AWS answers each request more slowly.
"""

from __future__ import annotations

import argparse
import io
import json
import logging
import math
import os
import re
import subprocess
import sys
import threading
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from pathlib import Path
from urllib.parse import parse_qs, quote_plus, unquote

from bench import BenchError, counting_fs
from bench.cost_probe import READY
from bench.template import (
    ACCOUNT,
    FUNCTIONS,
    REGION,
    TEMPLATE,
    Resolver,
    credentials_parameter,
    load_template,
    resources_of,
)

ROOT = Path(__file__).resolve().parents[1]
PROBE = Path(__file__).resolve().with_name("cost_probe.py")
README = ROOT / "README.md"
README_START, README_END = "<!-- cost:start -->", "<!-- cost:end -->"
SIMULATION_START = datetime(2026, 10, 1, tzinfo=UTC)
# The extract runs a little after the hour; the transform's batching window (60 s) and the
# report's (300 s) follow it.
CHECK_OFFSET = timedelta(seconds=30)
TRANSFORM_DELAY = timedelta(minutes=1)
REPORT_DELAY = timedelta(minutes=7)
DAYS_PER_MONTH = 30
# Who made a request, by the access key id it was signed with: each function's own, and the
# stand-ins for what AWS does (S3's notifications, Lambda's event sources, Athena).
SETUP = "setup"
S3_NOTIFICATIONS = "s3-notifications"
EVENT_SOURCE = "lambda-event-source"
ATHENA = "athena"
# What a function imports only once it runs, imported before each cold invocation's fork to
# save the simulation the time (cost_probe.py adds it to each invocation, as Lambda bills it).
PRELOAD = {
    "report": (
        "etl_lib.reporting.reports",
        "papermill",
        "nbclient",
        "nbconvert",
        "jupyter_client.manager",
        "pyathena",
    ),
}

# --- prices -----------------------------------------------------------------------------------
# AWS list prices, us-east-1, as published in 2026 (read from the services' pricing pages in
# January 2026; nothing here asks AWS). x86_64 Lambda; S3 Standard; CloudWatch's first tiers.
LAMBDA_GB_SECOND = 0.0000166667
LAMBDA_REQUEST = 0.20 / 1_000_000
S3_TIER1_REQUEST = 0.005 / 1000  # PUT, COPY, POST, LIST
S3_TIER2_REQUEST = 0.0004 / 1000  # GET, HEAD and every other request but DELETE
S3_STANDARD_GB_MONTH = 0.023
SQS_REQUEST = 0.40 / 1_000_000  # per 64 KB chunk of a request's payload
SQS_CHUNK_BYTES = 64 * 1024
ATHENA_PER_TB = 5.00
ATHENA_MINIMUM_BYTES = 10 * 1024**2  # each query bills at least 10 MB, rounded up to a MB
GLUE_REQUEST = 1.00 / 1_000_000
# Parameter Store: a standard parameter has no storage charge, and API calls at standard
# throughput (the default) none either.
SSM_STANDARD_PARAMETER = 0.0
SSM_STANDARD_THROUGHPUT_CALL = 0.0
# Symmetric-key requests: Parameter Store's Decrypt and Encrypt of a SecureString on the
# AWS-managed key aws/ssm (the key itself is free).
KMS_REQUEST = 0.03 / 10_000
ALARM_MONTH = 0.10  # a standard-resolution alarm, per metric it watches
COMPOSITE_ALARM_MONTH = 0.50
CUSTOM_METRIC_MONTH = 0.30  # prorated by the hour: metered only in hours it is published
HOURS_PER_BILLING_MONTH = 730
LOGS_INGESTED_GB = 0.50
XRAY_TRACE = 5.00 / 1_000_000
KMS_KEY_MONTH = 1.00
# Always-free monthly allowances (the 12-month free tier of new accounts is left out). They
# are the account's, shared with anything else it runs.
FREE = {
    "lambda_requests": 1_000_000,
    "lambda_gb_seconds": 400_000,
    "sqs_requests": 1_000_000,
    "glue_requests": 1_000_000,
    "custom_metrics": 10,
    "alarm_metrics": 10,
    "logs_gb": 5,
    "xray_traces": 100_000,
    "kms_requests": 20_000,
}
# Estimates, not measured (said so on their lines):
# S3 server access logs: one record per request to the lake bucket, about this many bytes.
ACCESS_LOG_RECORD_BYTES = 300
# Lambda's own lines per invocation (START, END, REPORT with X-Ray's trace id).
PLATFORM_LOG_BYTES = 450
# An SQS event source long-polls an idle queue with 5 pollers, each one receive per 20 s.
IDLE_POLLERS, IDLE_RECEIVES_PER_MINUTE = 5, 3
# Athena writes each query's result and its metadata file to the workgroup's location.
ATHENA_RESULT_OBJECTS = 2


# --- the template (loaded and resolved by bench/template.py) -----------------------------------


def function_properties(template: dict, short: str) -> dict:
    return template["Resources"][FUNCTIONS[short]]["Properties"]


def event_source(template: dict, short: str) -> dict | None:
    """The properties of a function's SQS event source, if it has one."""
    for source in function_properties(template, short).get("Events", {}).values():
        if source["Type"] == "SQS":
            return source["Properties"]
    return None


# --- requests, counted as moto's server serves them ---------------------------------------------


@dataclass(frozen=True)
class Request:
    actor: str  # the access key id it was signed with
    service: str  # as signed: s3, glue, athena, sqs, ssm...
    kind: str  # S3: PUT, COPY, POST, LIST, GET, HEAD, DELETE; else the operation
    key: str  # S3: the object key; Glue: the table; else ""
    chunks: int  # SQS bills a request per 64 KB of payload
    bytes_in: int
    bytes_out: int
    query: str | None  # Athena's stand-in: the query it was made for
    # The KMS request AWS makes for it: Parameter Store's Decrypt (a SecureString read with
    # decryption) or Encrypt (a SecureString written), on the parameter's key.
    kms: str | None = None


def ssm_kms_request(operation: str, parameters: dict) -> str | None:
    """The KMS request Parameter Store makes for an SSM call on a standard SecureString (the
    AWS KMS Developer Guide, 'How AWS Systems Manager Parameter Store uses AWS KMS'): Decrypt
    for a read with decryption, Encrypt for a write; the only parameter the handlers call is
    the credentials' SecureString."""
    if operation == "GetParameter" and parameters.get("WithDecryption"):
        return "Decrypt"
    if operation == "PutParameter" and parameters.get("Type") == "SecureString":
        return "Encrypt"
    return None


def s3_kind(method: str, key: str, query: dict, headers: dict) -> str:
    """The S3 request kind, as S3 prices it."""
    if method == "DELETE" or (method == "POST" and "delete" in query):
        return "DELETE"  # free, multi-object deletes too
    if method == "HEAD":
        return "HEAD"
    if method == "GET" and not key:
        return "GET" if {"location", "versioning"} & set(query) else "LIST"
    if method == "GET":
        return "GET"
    if "x-amz-copy-source" in headers:
        return "COPY"
    return "POST" if method == "POST" else "PUT"


class CountingApp:
    """moto's WSGI app, with every request it serves recorded as a ``Request``."""

    def __init__(self, app) -> None:
        self.app = app
        self.requests: list[Request] = []
        self.lock = threading.Lock()

    def __call__(self, environ, start_response):
        authorization = environ.get("HTTP_AUTHORIZATION", "")
        signed = re.search(r"Credential=([^/]+)/\d+/[^/]+/([^/]+)/", authorization)
        if not signed:  # moto's own API (reset), nothing AWS would bill
            return self.app(environ, start_response)
        # Not a generator itself: a `return` of moto's response from one would send no body.
        return self._counted(environ, start_response, signed[1], signed[2])

    def _counted(self, environ, start_response, actor: str, service: str):
        method = environ["REQUEST_METHOD"]
        headers = {
            name[5:].replace("_", "-").lower(): value
            for name, value in environ.items()
            if name.startswith("HTTP_")
        }
        length = int(environ.get("CONTENT_LENGTH") or 0)
        bytes_in = int(headers.get("x-amz-decoded-content-length") or length)
        key, operation, chunks = "", headers.get("x-amz-target", "").split(".")[-1], 1
        kms = None
        if service == "s3":
            bucket, _, key = unquote(environ.get("PATH_INFO", "")).lstrip("/").partition("/")
            query = parse_qs(environ.get("QUERY_STRING", ""), keep_blank_values=True)
            operation = s3_kind(method, key, query, headers)
        else:
            body = environ["wsgi.input"].read(length) if length else b""
            environ["wsgi.input"] = io.BytesIO(body)
            if not operation:  # the query protocol: the operation is a form field
                operation = parse_qs(body.decode("utf-8", "replace")).get("Action", [""])[0]
            if service == "glue" and body:
                parameters = json.loads(body)
                key = parameters.get("Name") or parameters.get("TableInput", {}).get("Name", "")
            if service == "sqs":
                chunks = max(1, math.ceil(len(body) / SQS_CHUNK_BYTES))
            if service == "ssm" and body:
                parameters = json.loads(body)
                key = parameters.get("Name", "")
                kms = ssm_kms_request(operation, parameters)
        sent = []

        def counting_start_response(status, response_headers, exc_info=None):
            return start_response(status, response_headers, exc_info)

        for chunk in self.app(environ, counting_start_response):
            sent.append(len(chunk))
            yield chunk
        with self.lock:
            self.requests.append(
                Request(actor, service, operation, key, chunks, bytes_in, sum(sent), None, kms)
            )

    def take(self) -> list[Request]:
        with self.lock:
            taken, self.requests = self.requests, []
        return taken

    def take_actor(self, actor: str) -> list[Request]:
        with self.lock:
            taken = [r for r in self.requests if r.actor == actor]
            self.requests = [r for r in self.requests if r.actor != actor]
        return taken


class MotoServer:
    """moto's server on 127.0.0.1 (a free port) behind a ``CountingApp``."""

    def __init__(self) -> None:
        from moto.moto_server.werkzeug_app import (
            DomainDispatcherApplication,
            MotoRequestHandler,
            create_backend_app,
        )
        from werkzeug.serving import make_server

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # no line per request
        self.app = CountingApp(DomainDispatcherApplication(create_backend_app))
        self.server = make_server(
            "127.0.0.1", 0, self.app, threaded=True, request_handler=MotoRequestHandler
        )
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> MotoServer:
        import requests

        self.thread.start()
        # moto keeps its backends per process: each simulation starts from nothing.
        requests.post(f"{self.endpoint}/moto-api/reset", timeout=10).raise_for_status()
        return self

    def __exit__(self, *exc_info) -> None:
        self.server.shutdown()
        self.thread.join()


# --- Athena on moto, answered by DuckDB --------------------------------------------------------


def python_value(literal: str):
    """An Athena execution parameter (``athena.athena_literal``) back as the value bound."""
    if literal == "NULL":
        return None
    if literal in ("true", "false"):
        return literal == "true"
    if literal.startswith("'"):
        return literal[1:-1].replace("''", "'")
    if literal.startswith("DATE '"):
        return date.fromisoformat(literal[6:-1])
    if literal.startswith("TIMESTAMP '"):
        return datetime.fromisoformat(literal[11:-1]).replace(tzinfo=UTC)
    return float(literal) if "." in literal else int(literal)


def athena_column(series) -> tuple[str, list[str | None]]:
    """An Athena type for a DuckDB result column, and its values as Athena's text."""
    import pandas as pd

    present = series.dropna()
    sample = present.iloc[0] if len(present) else ""
    if pd.api.types.is_bool_dtype(series) or isinstance(sample, bool):
        kind, text = "boolean", lambda v: "true" if v else "false"
    elif pd.api.types.is_integer_dtype(series) or isinstance(sample, int):
        kind, text = "bigint", lambda v: str(int(v))
    elif pd.api.types.is_float_dtype(series) or isinstance(sample, float):
        kind, text = "double", lambda v: repr(float(v))
    elif pd.api.types.is_datetime64_any_dtype(series) or isinstance(sample, datetime):
        kind = "timestamp"

        def text(value):
            stamp = pd.Timestamp(value)
            if stamp.tzinfo is not None:
                stamp = stamp.tz_convert(UTC).tz_localize(None)
            return stamp.strftime("%Y-%m-%d %H:%M:%S.%f")[:-3]
    elif isinstance(sample, date):
        kind, text = "date", lambda v: v.isoformat()
    elif isinstance(sample, Decimal):
        kind, text = "decimal", lambda v: format(v, "f")
    else:
        kind, text = "varchar", str

    def missing(value) -> bool:
        return value is None or (pd.api.types.is_scalar(value) and bool(pd.isna(value)))

    return kind, [None if missing(v) else text(v) for v in series.astype(object)]


def athena_results(frame):
    from moto.athena.models import QueryResults

    columns = {name: athena_column(frame[name]) for name in frame.columns}
    info = [
        {
            "CatalogName": "hive",
            "SchemaName": "",
            "TableName": "",
            "Name": name,
            "Label": name,
            "Type": kind,
            "Precision": 0,
            "Scale": 0,
            "Nullable": "UNKNOWN",
            "CaseSensitive": kind == "varchar",
        }
        for name, (kind, _) in columns.items()
    ]
    header = {"Data": [{"VarCharValue": name} for name in columns]}
    rows = [
        {"Data": [{} if value is None else {"VarCharValue": value} for value in values]}
        for values in zip(*(values for _, values in columns.values()), strict=True)
    ]
    return QueryResults(rows=[header, *rows], column_info=info)


def answering_athena(start, answer):
    """moto's ``AthenaBackend.start_query_execution`` (``start``), with each query but DDL
    answered by ``answer(query_id, statement, values)``: a DataFrame, which GetQueryResults
    then returns. moto's own runs no SQL and answers every query with no rows."""

    def start_query_execution(self, query, context, config, workgroup, execution_parameters):
        query_id = start(self, query, context, config, workgroup, execution_parameters)
        if re.match(r"\s*(CREATE|DROP|ALTER)\b", query, re.IGNORECASE):
            return query_id  # DDL (CREATE OR REPLACE VIEW): no rows, and no scan to bill
        values = [python_value(p) for p in execution_parameters or []]
        self.query_results[query_id] = athena_results(answer(query_id, query, values))
        return query_id

    return start_query_execution


def relations_read(statement: str) -> frozenset[str]:
    """The tables a statement reads, through the shipped views it reads."""
    from etl_lib.warehouse import sql as sql_files

    views = sql_files.shipped("views")
    read: set[str] = set()
    pending = list(sql_files._relations_read(statement))
    while pending:
        name = pending.pop()
        if name not in read:
            read.add(name)
            pending += sql_files._relations_read(views[name]) if name in views else []
    return frozenset(read - set(views))


class AthenaStandIn:
    """moto's Athena, each query answered by DuckDB, one at a time.

    Athena plans a query's tables from their Iceberg metadata, then reads their data files.
    The stand-in plans every table (pyiceberg through the Glue catalog on moto, signed
    ``ATHENA``) once per state of the tables (``tables_changed``), keeps what each table's
    planning requested, and reads local copies of the data files through a counting
    filesystem (``bench/counting_fs.py``, with ``bench/queries.py``'s settings: footers, then
    only the column chunks a query needs, as Athena reads and bills Parquet). Each query is
    then counted as Athena's: the planning requests of the tables it reads, one S3 GET per
    read of a data file, and the bytes read (``scans``: query id -> bytes).
    """

    def __init__(self, lake_root: str, mirror: Path, database: str) -> None:
        self.lake_root = lake_root
        self.bucket = lake_root.removeprefix("s3://").split("/")[0]
        self.mirror = mirror
        self.database = database
        self.lock = threading.Lock()
        self.connection = None
        self.filesystem = None
        self.planning: dict[str, Counter] = {}  # table -> (service, kind) -> requests
        self.requests: list[Request] = []  # Athena's, per query
        self.scans: dict[str, int] = {}
        self.app: CountingApp | None = None

    def tables_changed(self) -> None:
        with self.lock:
            if self.connection is not None:
                self.connection.close()
            self.connection = None

    def _plan(self) -> None:
        """Views over local copies of every table's current data files, and what planning
        each table requested."""
        from moto.s3.models import s3_backends

        from bench.queries import _counting_connection
        from etl_lib.warehouse import catalog

        self.app.take_actor(ATHENA)  # nothing of Athena's is pending: planning starts here
        statements = catalog.duckdb_view_statements(self.lake_root)
        self.planning = defaultdict(Counter)
        for request in self.app.take_actor(ATHENA):
            table = request.key if request.service == "glue" else table_of(request.key)
            if table:
                self.planning[table][(request.service, request.kind)] += 1
        store = s3_backends[ACCOUNT]["aws"]
        quoted = f"'s3://{self.bucket}/"
        self.filesystem = ReadCountingFileSystem()
        self.connection = _counting_connection(self.filesystem)
        for _, statement in statements:
            for key in re.findall(rf"{re.escape(quoted)}([^']+)'", statement):
                copy = self.mirror / key
                if not copy.exists():  # data files never change once written
                    copy.parent.mkdir(parents=True, exist_ok=True)
                    copy.write_bytes(store.get_object(self.bucket, key).value)
            local = f"'{counting_fs.url(str(self.mirror.resolve()))}/"
            self.connection.execute(statement.replace(quoted, local))

    def answer(self, query_id: str, statement: str, values: list):
        from etl_lib.warehouse import catalog, sql

        with self.lock:
            if self.connection is None:
                self._plan()
            tables = relations_read(statement)
            for table in sorted(tables):
                for (service, kind), count in self.planning.get(table, {}).items():
                    self.requests += [
                        Request(ATHENA, service, kind, table, 1, 0, 0, query_id)
                    ] * count
            self.filesystem.bytes_read = self.filesystem.reads = 0
            schema = catalog.connection_schema(self.connection)
            frame = self.connection.execute(sql.to_duckdb(statement, schema), values).df()
            self.scans[query_id] = self.filesystem.bytes_read
            data_reads = Request(ATHENA, "s3", "GET", "data", 1, 0, 0, query_id)
            self.requests += [data_reads] * self.filesystem.reads
            return frame

    def install(self, app: CountingApp) -> None:
        """Answer moto's Athena queries with DuckDB until ``uninstall``: moto's backends are
        process-wide, so anything else in this process (a test) would see it too."""
        from moto.athena.models import AthenaBackend

        self.app = app
        self._moto_start = AthenaBackend.start_query_execution
        AthenaBackend.start_query_execution = answering_athena(self._moto_start, self.answer)

    def uninstall(self) -> None:
        from moto.athena.models import AthenaBackend

        if getattr(self, "_moto_start", None) is not None:
            AthenaBackend.start_query_execution = self._moto_start
            self._moto_start = None

    def take(self) -> tuple[list[Request], list[int]]:
        """Athena's requests and each query's bytes scanned since the last call."""
        with self.lock:
            requests, scans = self.requests, list(self.scans.values())
            self.requests, self.scans = [], {}
        return requests, scans


class ReadCountingFileSystem(counting_fs.CountingFileSystem):
    """Counts the reads too: each is one ranged GET of the object store."""

    def __init__(self, **kwargs) -> None:
        super().__init__(**kwargs)
        self.reads = 0

    def count(self, size: int) -> None:
        super().count(size)
        with self._lock:
            self.reads += 1


def table_of(key: str) -> str | None:
    """The table an object of the warehouse belongs to."""
    match = re.search(r"\.db/([^/]+)/", key)
    return match[1] if match else None


# --- invoking the handlers ----------------------------------------------------------------------


@dataclass
class Invocation:
    function: str
    day: int
    seconds: float  # init (the import) and the handler
    peak_rss_bytes: int
    log_bytes: int
    metrics: set[tuple]  # (namespace, name, dimensions) of each EMF metric it published
    response: dict


def emf_metrics(line: str) -> set[tuple]:
    """The metrics an EMF log line publishes: namespace, name and dimension values."""
    try:
        document = json.loads(line)
    except ValueError:
        return set()
    if not isinstance(document, dict) or "_aws" not in document:
        return set()
    found = set()
    for directive in document["_aws"].get("CloudWatchMetrics", []):
        for dimension_set in directive.get("Dimensions", [[]]):
            dimensions = tuple((name, str(document.get(name))) for name in dimension_set)
            for metric in directive.get("Metrics", []):
                found.add((directive["Namespace"], metric["Name"], dimensions))
    return found


class Function:
    """One function's handler in a process of its own (``bench/cost_probe.py``), with the
    template's environment and memory; ``invoke`` runs one cold invocation."""

    def __init__(
        self,
        name: str,
        properties: dict,
        environment: dict[str, str],
        work: Path,
        preload: tuple[str, ...] = (),
    ):
        self.name = name
        memory_mb = self.memory_mb = int(properties.get("MemorySize", 128))
        self.errors = (work / f"{name}.stderr").open("w+", encoding="utf-8")
        # The module of the handler the image's command (or the zip's Handler) names.
        command = properties.get("ImageConfig", {}).get("Command") or [properties["Handler"]]
        module = command[0].rsplit(".", 1)[0]
        self.process = subprocess.Popen(
            [sys.executable, str(PROBE), module, name, str(memory_mb), ",".join(preload)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=self.errors,
            cwd=ROOT,
            # The image's code root: the command names lambdas.<name>.app from it.
            env={**environment, "PYTHONPATH": str(ROOT)},
            text=True,
        )
        ready = self.process.stdout.readline()
        if not ready.startswith(READY):
            self.errors.seek(0)
            errors = self.errors.read()[-3000:]
            self.close()
            raise BenchError(f"the {name} handler did not load:\n{errors}")
        self.import_seconds = json.loads(ready.removeprefix(READY))["import_seconds"]

    def invoke(self, event: dict, now: datetime, day: int) -> Invocation:
        self.process.stdin.write(json.dumps({"event": event, "now": now.isoformat()}) + "\n")
        self.process.stdin.flush()
        answer = self.process.stdout.readline()
        if not answer:
            self.errors.seek(0)
            raise BenchError(f"the {self.name} handler's process ended:\n{self.errors.read()}")
        result = json.loads(answer)
        if "error" in result:
            raise BenchError(
                f"the {self.name} handler failed at {now:%Y-%m-%d %H:%M}:\n"
                f"{result['log'][-2000:]}\n{result['error']}"
            )
        lines = result["log"].splitlines()
        return Invocation(
            function=self.name,
            day=day,
            seconds=result["seconds"],
            peak_rss_bytes=result["peak_rss_bytes"],
            log_bytes=sum(len(line.encode()) + 1 for line in lines),
            metrics=set().union(*(emf_metrics(line) for line in lines)),
            response=result["response"],
        )

    def close(self) -> None:
        self.process.stdin.close()  # the probe's loop ends, and with it the process
        self.process.wait(timeout=60)
        self.process.stdout.close()
        self.errors.close()


# --- the simulation ------------------------------------------------------------------------------


def playlist_ids(count: int) -> dict[str, str]:
    """``count`` chart playlists (22-character base62 ids, as Spotify's), the first the
    global chart."""
    from etl_lib.config import DEFAULT_PLAYLISTS
    from etl_lib.local_spotify.simulator import spotify_id

    ids = {DEFAULT_PLAYLISTS[0]: "Top Songs - Global"}
    number = 0
    while len(ids) < count:
        number += 1
        ids[spotify_id("cost-chart", number)] = f"Top 50 - Country {number}"
    return ids


@dataclass
class Hour:
    """What one simulated hour did, and how many of the day's hours it stands for."""

    weight: float = 1.0
    requests: list[Request] = field(default_factory=list)
    invocations: list[Invocation] = field(default_factory=list)
    athena_scans: list[int] = field(default_factory=list)  # bytes read, per query
    chart_changes: int = 0  # raw files landed
    transform_batches: int = 0
    report_runs: int = 0


@dataclass
class Measurement:
    playlists: int
    days: list[list[Hour]]
    hours_per_day: int  # hours simulated of each day's 24
    memory_mb: dict[str, int]
    traced: set[str]
    import_seconds: dict[str, float]
    seconds: float  # how long the simulation took

    def month(self, measure) -> float:
        """``measure(hour)`` over a month: each day's hours weighted by the hours they stand
        for; day 1 once, then the later days' mean for the other 29 (or the first 30)."""

        def daily(hours: list[Hour]) -> float:
            return sum(hour.weight * measure(hour) for hour in hours)

        if len(self.days) >= DAYS_PER_MONTH:
            return sum(daily(day) for day in self.days[:DAYS_PER_MONTH])
        later = [daily(day) for day in self.days[1:]]
        return daily(self.days[0]) + (DAYS_PER_MONTH - 1) * sum(later) / len(later)

    def hours(self):
        return (hour for day in self.days for hour in day)


class Stack:
    """What the template creates, on moto, and each function's environment."""

    def __init__(self, template: dict, server: MotoServer, spotify, playlists: list[str]):
        import boto3

        self.template = template
        self.server = server
        self.spotify = spotify
        self.resolve = Resolver(template, {"Playlists": ",".join(playlists)})
        self.bucket = self.resolve.name("LakeBucket")
        self.database = self.resolve.name("GlueDatabase")

        def client(service: str, actor: str = SETUP):
            return boto3.client(
                service,
                endpoint_url=server.endpoint,
                region_name=REGION,
                aws_access_key_id=actor,
                aws_secret_access_key="testing",
            )

        self.client = client
        client("s3").create_bucket(Bucket=self.bucket)
        client("glue").create_database(DatabaseInput={"Name": self.database})
        for logical_id, workgroup in resources_of(template, "AWS::Athena::WorkGroup").items():
            configuration = self.resolve(workgroup["Properties"]["WorkGroupConfiguration"])
            output = configuration["ResultConfiguration"]["OutputLocation"]
            client("athena").create_work_group(
                Name=self.resolve.name(logical_id),
                Configuration={"ResultConfiguration": {"OutputLocation": output}},
            )
        sqs = client("sqs")
        for logical_id in resources_of(template, "AWS::SQS::Queue"):
            url = sqs.create_queue(QueueName=self.resolve.name(logical_id))["QueueUrl"]
            self.resolve.names[logical_id] = url
            self.resolve.names[f"{logical_id}.Arn"] = sqs.get_queue_attributes(
                QueueUrl=url, AttributeNames=["QueueArn"]
            )["Attributes"]["QueueArn"]
        # The user's Spotify credentials, in the SecureString the deploy steps create. Spotify
        # may rotate the refresh token on every refresh: the extract then writes it back.
        spotify.rotate_refresh_tokens = True
        credentials = json.dumps(
            {
                "client_id": spotify.client_id,
                "client_secret": spotify.client_secret,
                "refresh_token": spotify.mint_refresh_token(),
            }
        )
        client("ssm").put_parameter(
            Name=credentials_parameter(template, self.resolve),
            Value=credentials,
            Type="SecureString",
        )

    def queue_of(self, function: str) -> tuple[str, str, int]:
        """URL, ARN and batch size of the queue a function's SQS event source reads."""
        source = event_source(self.template, function)
        attribute = source["Queue"]["Fn::GetAtt"]
        logical_id = attribute.split(".")[0] if isinstance(attribute, str) else attribute[0]
        return (
            self.resolve.names[logical_id],
            self.resolve.names[f"{logical_id}.Arn"],
            int(source.get("BatchSize", 10)),
        )

    def environment(self, function: str) -> dict[str, str]:
        """The function's environment from the template, its AWS calls signed as itself."""
        variables = function_properties(self.template, function)["Environment"]["Variables"]
        environment = {
            name: value
            for name, value in os.environ.items()
            if not name.startswith(("AWS_", "SPOTIFY_", "SPOTIPY_", "POWERTOOLS_"))
        }
        environment.update({name: str(self.resolve(value)) for name, value in variables.items()})
        environment.update(
            {
                "AWS_ENDPOINT_URL": self.server.endpoint,
                "AWS_REGION": REGION,
                "AWS_DEFAULT_REGION": REGION,
                "AWS_ACCESS_KEY_ID": function,
                "AWS_SECRET_ACCESS_KEY": "testing",
                # The local Spotify server stands in for Spotify.
                "SPOTIFY_API_BASE_URL": self.spotify.base_url,
                "SPOTIFY_TOKEN_URL": self.spotify.token_url,
                "SPOTIFY_ETL_CREDENTIALS_FILE": "/nonexistent/credentials.json",
            }
        )
        return environment


def notification(bucket: str, key: str) -> str:
    """S3's ObjectCreated notification of one object (keys arrive form-encoded)."""
    record = {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": REGION,
        "eventName": "ObjectCreated:Put",
        "s3": {
            "s3SchemaVersion": "1.0",
            "bucket": {"name": bucket, "arn": f"arn:aws:s3:::{bucket}"},
            "object": {"key": quote_plus(key, safe="/")},
        },
    }
    return json.dumps({"Records": [record]})


class Simulation:
    """The stack on moto, the local Spotify server, and the three functions."""

    def __init__(self, template: dict, playlist_count: int, work: Path) -> None:
        self.template = template
        self.playlist_count = playlist_count
        self.work = work

    def run(self, days: int, hours_per_day: int, say) -> Measurement:
        from etl_lib.local_spotify import ChartSimulator, LocalSpotifyServer
        from etl_lib.transform import iceberg

        started = time.perf_counter()
        charts = playlist_ids(self.playlist_count)
        memory, traced = {}, set()
        for short in FUNCTIONS:
            properties = function_properties(self.template, short)
            memory[short] = int(properties.get("MemorySize", 128))
            if properties.get("Tracing") == "Active":
                traced.add(short)
        saved_environment = dict(os.environ)
        simulated: list[list[Hour]] = []
        functions: dict[str, Function] = {}
        with (
            MotoServer() as server,
            LocalSpotifyServer(ChartSimulator(playlists=charts), now=SIMULATION_START) as spotify,
        ):
            try:
                # Athena's stand-in plans the tables from this process, signed as ATHENA.
                os.environ.update(
                    {
                        "AWS_ENDPOINT_URL": server.endpoint,
                        "AWS_REGION": REGION,
                        "AWS_DEFAULT_REGION": REGION,
                        "AWS_ACCESS_KEY_ID": ATHENA,
                        "AWS_SECRET_ACCESS_KEY": "testing",
                    }
                )
                os.environ.pop("AWS_PROFILE", None)
                iceberg.forget()
                self.stack = Stack(self.template, server, spotify, list(charts))
                self.athena = AthenaStandIn(
                    f"s3://{self.stack.bucket}", self.work / "athena-mirror", self.stack.database
                )
                self.athena.install(server.app)
                for short in FUNCTIONS:
                    functions[short] = Function(
                        short,
                        function_properties(self.template, short),
                        self.stack.environment(short),
                        self.work,
                        PRELOAD.get(short, ()),
                    )
                self.functions = functions
                server.app.take()  # the set-up's requests are no one's
                # The charts change at midnight: the first check of a day lands them, the
                # others find nothing new; each quiet hour simulated stands for its share.
                quiet_weight = (24 - 1) / (hours_per_day - 1)
                for number in range(1, days + 1):
                    day = []
                    for hour_of_day in range(hours_per_day):
                        moment = SIMULATION_START + timedelta(days=number - 1, hours=hour_of_day)
                        hour = Hour(weight=1.0 if hour_of_day == 0 else quiet_weight)
                        self.run_hour(hour, moment, number)
                        hour.requests += [
                            r for r in server.app.take() if r.actor not in (ATHENA, SETUP)
                        ]
                        athena_requests, hour.athena_scans = self.athena.take()
                        hour.requests += athena_requests
                        if hour_of_day and hour.chart_changes:
                            raise BenchError(f"a chart changed at {moment}, not at midnight")
                        day.append(hour)
                    simulated.append(day)
                    say(
                        f"{self.playlist_count} playlist(s): day {number} of {days} simulated "
                        f"({time.perf_counter() - started:.0f} s)"
                    )
            finally:
                if getattr(self, "athena", None) is not None:
                    self.athena.uninstall()
                for function in functions.values():
                    function.close()
                os.environ.clear()
                os.environ.update(saved_environment)
                iceberg.forget()
        return Measurement(
            playlists=self.playlist_count,
            days=simulated,
            hours_per_day=hours_per_day,
            memory_mb=memory,
            traced=traced,
            import_seconds={name: f.import_seconds for name, f in functions.items()},
            seconds=time.perf_counter() - started,
        )

    def run_hour(self, day: Hour, moment: datetime, number: int) -> None:
        """One scheduled extract; S3's notification of each raw file it landed; the
        transform of the raw-objects queue's batches; the reports they asked for."""
        checked = moment + CHECK_OFFSET
        self.stack.spotify.clock = checked
        event = {"id": f"scheduled-{checked:%Y%m%dT%H}", "detail-type": "Scheduled Event"}
        extract = self.functions["extract"].invoke(event, checked, number)
        day.invocations.append(extract)
        outcomes = extract.response["outcomes"]
        if failed := [o for o in outcomes if o["error"]]:
            raise BenchError(f"the extract failed at {checked:%Y-%m-%d %H:%M}: {failed[0]}")
        landed = [o["raw_key"] for o in outcomes if o["status"] == "extracted"]
        day.chart_changes += len(landed)
        if not landed:
            return
        queue, _, _ = self.stack.queue_of("transform")
        sqs = self.stack.client("sqs", S3_NOTIFICATIONS)
        for raw_key in landed:
            sqs.send_message(QueueUrl=queue, MessageBody=notification(self.stack.bucket, raw_key))
        transformed = self.drain(day, "transform", moment + TRANSFORM_DELAY, number)
        self.athena.tables_changed()
        day.transform_batches += len(transformed)
        done = [key for response in transformed for key in response.get("transformed", [])]
        if sorted(done) != sorted(landed):
            raise BenchError(f"the transform left raw files out: {transformed}")
        reported = self.drain(day, "report", moment + REPORT_DELAY, number)
        day.report_runs += len(reported)
        results = [r for response in reported for r in response["reports"]]
        if failures := [r for r in results if not r["succeeded"]]:
            raise BenchError(f"a report failed on day {number}: {failures[0]}")

    def drain(self, day: Hour, function: str, now: datetime, number: int) -> list[dict]:
        """Lambda's SQS event source: receive a batch (10 messages a call, up to the batch
        size), invoke the function, delete what it did not report failed; until empty."""
        queue, queue_arn, batch_size = self.stack.queue_of(function)
        sqs = self.stack.client("sqs", EVENT_SOURCE)
        responses = []
        while True:
            messages: list[dict] = []
            while len(messages) < batch_size:
                wanted = min(10, batch_size - len(messages))
                received = sqs.receive_message(QueueUrl=queue, MaxNumberOfMessages=wanted)
                if not received.get("Messages"):
                    break
                messages += received["Messages"]
            if not messages:
                return responses
            event = {
                "Records": [
                    {
                        "messageId": m["MessageId"],
                        "receiptHandle": m["ReceiptHandle"],
                        "body": m["Body"],
                        "attributes": {"ApproximateReceiveCount": "1"},
                        "messageAttributes": {},
                        "eventSource": "aws:sqs",
                        "eventSourceARN": queue_arn,
                        "awsRegion": REGION,
                    }
                    for m in messages
                ]
            }
            invocation = self.functions[function].invoke(event, now, number)
            day.invocations.append(invocation)
            failed = {f["itemIdentifier"] for f in invocation.response["batchItemFailures"]}
            if failed:
                raise BenchError(f"the {function} handler failed messages: {invocation.response}")
            for start in range(0, len(messages), 10):
                sqs.delete_message_batch(
                    QueueUrl=queue,
                    Entries=[
                        {"Id": str(n), "ReceiptHandle": m["ReceiptHandle"]}
                        for n, m in enumerate(messages[start : start + 10])
                    ],
                )
            responses.append(invocation.response)


# --- pricing -------------------------------------------------------------------------------------


@dataclass
class Line:
    service: str
    name: str
    quantity: float
    unit: str
    unit_price: float  # USD per unit
    free_quantity: float = 0.0  # the always-free allowance that applies to this line
    note: str = ""
    price_text: str = ""  # the unit price as AWS states it, where that reads better

    @property
    def usd(self) -> float:
        return self.quantity * self.unit_price

    @property
    def usd_after_free_tier(self) -> float:
        return max(0.0, self.quantity - self.free_quantity) * self.unit_price


def month_counts(measured: Measurement, key) -> Counter:
    """Requests a month, by ``key(request)`` (None: not counted)."""
    keys = {key(r) for hour in measured.hours() for r in hour.requests} - {None}
    counts = Counter()
    for wanted in keys:
        counts[wanted] = measured.month(
            lambda hour, wanted=wanted: sum(r.chunks for r in hour.requests if key(r) == wanted)
        )
    return counts


def by_actor(measured: Measurement, service: str, kinds: tuple[str, ...]) -> str:
    counts = month_counts(
        measured, lambda r: r.actor if r.service == service and r.kind in kinds else None
    )
    return ", ".join(f"{actor} {count:,.0f}" for actor, count in counts.most_common())


def share_allowance(lines: list[Line], allowance: float) -> None:
    """An allowance shared by several lines, used up in their order."""
    for line in lines:
        line.free_quantity = min(line.quantity, allowance)
        allowance -= line.free_quantity


def alarm_metrics(template: dict) -> tuple[int, int]:
    """Metrics watched by the template's standard alarms (an alarm on metric math is billed
    for each metric it reads), and its composite alarms. An alarm CloudWatch bills another
    way is refused rather than priced as standard."""
    metrics = 0
    for name, alarm in resources_of(template, "AWS::CloudWatch::Alarm").items():
        properties = alarm["Properties"]
        # A single-metric alarm names its metric and period in its own properties.
        queries = properties.get("Metrics") or [{"MetricStat": properties}]
        read = [q["MetricStat"] for q in queries if "MetricStat" in q]
        expressions = " ".join(q.get("Expression", "") for q in queries)
        if re.search(r"ANOMALY_DETECTION_BAND|\bSELECT\b", expressions, re.IGNORECASE):
            raise BenchError(
                f"alarm {name} uses anomaly detection or a Metrics Insights query, which "
                "CloudWatch bills otherwise than per metric: price it in bench/cost.py"
            )
        if any(isinstance(m.get("Period"), int) and m["Period"] < 60 for m in read):
            raise BenchError(
                f"alarm {name} is high-resolution (a period under 60 s), billed $0.30 a "
                "metric and outside the free tier: price it in bench/cost.py"
            )
        metrics += len(read)
    return metrics, len(resources_of(template, "AWS::CloudWatch::CompositeAlarm"))


def price(measured: Measurement, template: dict) -> list[Line]:
    """The month's bill, line by line, from what the simulation counted."""
    lines: list[Line] = []
    invocations = {
        name: measured.month(
            lambda hour, name=name: sum(i.function == name for i in hour.invocations)
        )
        for name in FUNCTIONS
    }
    queries = measured.month(lambda hour: len(hour.athena_scans))

    # Lambda: requests, and GB-seconds at the template's memory, each invocation rounded up
    # to the millisecond.
    lambda_requests = Line(
        "Lambda",
        "requests",
        sum(invocations.values()),
        "requests",
        LAMBDA_REQUEST,
        note=", ".join(f"{n} {c:,.0f}" for n, c in invocations.items()),
    )
    share_allowance([lambda_requests], FREE["lambda_requests"])
    compute = []
    for name in FUNCTIONS:
        gigabytes = measured.memory_mb[name] / 1024
        seconds = measured.month(
            lambda hour, name=name: sum(
                math.ceil(i.seconds * 1000) / 1000 for i in hour.invocations if i.function == name
            )
        )
        count = invocations[name]
        compute.append(
            Line(
                "Lambda",
                f"compute: {name} ({measured.memory_mb[name]} MB)",
                seconds * gigabytes,
                "GB-s",
                LAMBDA_GB_SECOND,
                note=f"{count:,.0f} invocations, {seconds / max(count, 1):.1f} s each",
            )
        )
    share_allowance(compute, FREE["lambda_gb_seconds"])
    lines += [lambda_requests, *compute]

    # S3, the lake bucket: every request by kind, and what Athena writes for each query.
    s3_counts = month_counts(measured, lambda r: r.kind if r.service == "s3" else None)
    for kinds, label, unit_price in (
        (("PUT", "COPY", "POST"), "PUT, COPY, POST", S3_TIER1_REQUEST),
        (("LIST",), "LIST", S3_TIER1_REQUEST),
        (("GET",), "GET", S3_TIER2_REQUEST),
        (("HEAD",), "HEAD", S3_TIER2_REQUEST),
        (("DELETE",), "DELETE", 0.0),
    ):
        lines.append(
            Line(
                "S3",
                label,
                sum(s3_counts[k] for k in kinds),
                "requests",
                unit_price,
                note=by_actor(measured, "s3", kinds),
            )
        )
    lines.append(
        Line(
            "S3",
            "PUT: Athena's query results (estimate)",
            queries * ATHENA_RESULT_OBJECTS,
            "requests",
            S3_TIER1_REQUEST,
            note=f"{ATHENA_RESULT_OBJECTS} objects per query (the result and its "
            "metadata), which moto's Athena does not write",
        )
    )
    written = measured.month(
        lambda hour: sum(
            r.bytes_in
            for r in hour.requests
            if r.service == "s3" and r.kind in ("PUT", "POST") and r.actor in FUNCTIONS
        )
    )
    lines.append(
        Line(
            "S3",
            "storage after the first month",
            written / 1024**3,
            "GB-month",
            S3_STANDARD_GB_MONTH,
            note="every byte the functions wrote (replaced versions are kept 30 "
            "days); grows by as much each month",
        )
    )
    lake_requests = sum(s3_counts.values()) + queries * ATHENA_RESULT_OBJECTS
    retention_days = int(template["Parameters"]["AccessLogRetentionDays"]["Default"])
    lines.append(
        Line(
            "S3",
            "access-log storage (estimate)",
            lake_requests * ACCESS_LOG_RECORD_BYTES / 1024**3 * retention_days / DAYS_PER_MONTH,
            "GB-month",
            S3_STANDARD_GB_MONTH,
            note=f"{ACCESS_LOG_RECORD_BYTES} B per request to the lake bucket, "
            f"kept {retention_days} days",
        )
    )

    # Athena: the bytes each query would scan, at least 10 MB, rounded up to a MB.
    billed = measured.month(
        lambda hour: sum(
            max(ATHENA_MINIMUM_BYTES, math.ceil(b / 1024**2) * 1024**2) for b in hour.athena_scans
        )
    )
    largest = max((b for hour in measured.hours() for b in hour.athena_scans), default=0)
    lines.append(
        Line(
            "Athena",
            "data scanned",
            billed / 1024**3,
            "GB",
            ATHENA_PER_TB / 1024,
            price_text=f"${ATHENA_PER_TB:g} per TB",
            note=f"{queries:,.0f} queries, billed 10 MB minimum each; the most one "
            f"read: {largest / 1024**2:.2f} MB",
        )
    )
    athena_calls = month_counts(measured, lambda r: r.kind if r.service == "athena" else None)
    lines.append(
        Line(
            "Athena",
            "API calls",
            sum(athena_calls.values()),
            "requests",
            0.0,
            note=", ".join(f"{k} {v:,.0f}" for k, v in athena_calls.most_common()),
        )
    )

    # Glue: catalog requests (the functions', and Athena's look-ups of the tables).
    glue = Line(
        "Glue",
        "catalog requests",
        sum(month_counts(measured, lambda r: r.kind if r.service == "glue" else None).values()),
        "requests",
        GLUE_REQUEST,
        note=by_actor(
            measured,
            "glue",
            tuple({r.kind for h in measured.hours() for r in h.requests if r.service == "glue"}),
        ),
    )
    share_allowance([glue], FREE["glue_requests"])
    lines.append(glue)

    # SQS: every request, a request per 64 KB of payload; and the idle long polls of the
    # event sources, which the simulation does not make.
    sqs_kinds = tuple({r.kind for h in measured.hours() for r in h.requests if r.service == "sqs"})
    sqs = Line(
        "SQS",
        "requests",
        sum(month_counts(measured, lambda r: r.kind if r.service == "sqs" else None).values()),
        "requests",
        SQS_REQUEST,
        note=by_actor(measured, "sqs", sqs_kinds),
    )
    sources = sum(event_source(template, name) is not None for name in FUNCTIONS)
    idle = Line(
        "SQS",
        "event sources polling idle queues (estimate)",
        sources * IDLE_POLLERS * IDLE_RECEIVES_PER_MINUTE * 60 * 24 * DAYS_PER_MONTH,
        "requests",
        SQS_REQUEST,
        note=f"{sources} queues x {IDLE_POLLERS} pollers x a 20 s long poll",
    )
    share_allowance([sqs, idle], FREE["sqs_requests"])
    lines += [sqs, idle]

    # Credentials: a standard SecureString in Parameter Store, which bills neither the
    # parameter nor its calls at standard throughput; each read and write of it is a KMS
    # request on the AWS-managed key aws/ssm, which Parameter Store makes.
    ssm_calls = month_counts(measured, lambda r: r.kind if r.service == "ssm" else None)
    if ssm_calls:
        parameters = {
            r.key for hour in measured.hours() for r in hour.requests if r.service == "ssm"
        }
        lines.append(
            Line(
                "SSM Parameter Store",
                "standard parameters",
                len(parameters),
                "parameter-month",
                SSM_STANDARD_PARAMETER,
                note="a standard SecureString: no storage charge",
            )
        )
        lines.append(
            Line(
                "SSM Parameter Store",
                "API calls",
                sum(ssm_calls.values()),
                "requests",
                SSM_STANDARD_THROUGHPUT_CALL,
                note="free at standard throughput: "
                + ", ".join(f"{k} {v:,.0f}" for k, v in ssm_calls.most_common()),
            )
        )
    kms_calls = month_counts(measured, lambda r: r.kms)
    if kms_calls:
        kms = Line(
            "KMS",
            "requests (estimate)",
            sum(kms_calls.values()),
            "requests",
            KMS_REQUEST,
            note="not seen on moto: Parameter Store's "
            + ", ".join(f"{k} {v:,.0f}" for k, v in kms_calls.most_common())
            + " on aws/ssm, one per read with decryption and per write of the SecureString",
            price_text="$0.03 per 10,000 requests",
        )
        share_allowance([kms], FREE["kms_requests"])
        lines.append(kms)

    # CloudWatch: the template's alarms, the EMF metrics the handlers publish, the logs.
    standard, composite = alarm_metrics(template)
    alarms = Line("CloudWatch", "alarms", standard, "alarm metric-month", ALARM_MONTH)
    share_allowance([alarms], FREE["alarm_metrics"])
    lines.append(alarms)
    if composite:
        lines.append(
            Line("CloudWatch", "composite alarms", composite, "alarm-month", COMPOSITE_ALARM_MONTH)
        )
    published = set().union(*(i.metrics for h in measured.hours() for i in h.invocations))
    metric_hours = sum(
        measured.month(
            lambda hour, metric=metric: any(metric in i.metrics for i in hour.invocations)
        )
        for metric in published
    )
    metrics = Line(
        "CloudWatch",
        "custom metrics (EMF)",
        metric_hours / HOURS_PER_BILLING_MONTH,
        "metric-month",
        CUSTOM_METRIC_MONTH,
        note=f"{len(published)} metrics (namespace, name, dimensions) the handlers publish, "
        "billed for the hours they are published in",
    )
    share_allowance([metrics], FREE["custom_metrics"])
    lines.append(metrics)
    logged = measured.month(
        lambda hour: sum(i.log_bytes + PLATFORM_LOG_BYTES for i in hour.invocations)
    )
    logs = Line(
        "CloudWatch",
        "log ingestion",
        logged / 1024**3,
        "GB",
        LOGS_INGESTED_GB,
        note=f"the handlers' output, measured, plus {PLATFORM_LOG_BYTES} B of "
        "Lambda's own lines per invocation",
    )
    share_allowance([logs], FREE["logs_gb"])
    lines.append(logs)

    # X-Ray: one trace per invocation of a function with active tracing.
    traces = Line(
        "X-Ray",
        "traces",
        sum(invocations[n] for n in measured.traced),
        "traces",
        XRAY_TRACE,
        note="functions with Tracing: Active: " + ", ".join(sorted(measured.traced)),
    )
    share_allowance([traces], FREE["xray_traces"])
    lines.append(traces)
    return lines


# --- the report ----------------------------------------------------------------------------------


def money(usd: float) -> str:
    return f"{usd:.2f}" if usd >= 0.01 or usd == 0 else f"{usd:.4f}"


def quantity_text(value: float) -> str:
    return f"{value:,.0f}" if value >= 100 else f"{value:,.3g}"


def unit_price_text(line: Line) -> str:
    if line.price_text:
        return line.price_text
    if line.unit_price == 0:
        return "free"
    if line.unit_price < 0.001:
        return f"${line.unit_price * 1_000_000:,.2f} per million {line.unit}"
    cents = f"{line.unit_price:.2f}"
    shown = cents if float(cents) == line.unit_price else f"{line.unit_price:g}"
    return f"${shown} per {line.unit}"


def table(measured: Measurement, lines: list[Line]) -> str:
    total = sum(line.usd for line in lines)
    total_free = sum(line.usd_after_free_tier for line in lines)
    biggest = max(lines, key=lambda line: line.usd)
    biggest_free = max(lines, key=lambda line: line.usd_after_free_tier)
    rows = [
        f"**{measured.playlists} playlist(s)**, checked hourly, each chart changing once a "
        "day, a report after every load:",
        "",
        "| service | line | quantity a month | unit price | USD a month "
        "| after the always-free tiers | counted |",
        "| --- | --- | ---: | --- | ---: | ---: | --- |",
    ]
    for line in lines:
        rows.append(
            f"| {line.service} | {line.name} | {quantity_text(line.quantity)} | "
            f"{unit_price_text(line)} | {money(line.usd)} | {money(line.usd_after_free_tier)} "
            f"| {line.note} |"
        )
    rows.append(f"| **total** | | | | **{money(total)}** | **{money(total_free)}** | |")
    rows += [
        "",
        f"Biggest line: {biggest.service} {biggest.name}, ${money(biggest.usd)} of "
        f"${money(total)} ({biggest.usd / total:.0%}); after the always-free tiers: "
        f"{biggest_free.service} {biggest_free.name}, ${money(biggest_free.usd_after_free_tier)} "
        f"of ${money(total_free)}.",
        "",
    ]
    for name in FUNCTIONS:
        invocations = [i for h in measured.hours() for i in h.invocations if i.function == name]
        if invocations:
            peak = max(i.peak_rss_bytes for i in invocations) / 1024**2
            init = measured.import_seconds[name]
            rows.append(
                f"- {name}: peak resident memory {peak:,.0f} MB of its "
                f"{measured.memory_mb[name]} MB; init (imports) {init:.1f} s."
            )
    return "\n".join(rows)


def report(measurements: list[tuple[Measurement, list[Line]]], template_path: Path) -> str:
    first = measurements[0][0]
    simulated_days = len(first.days)
    scope = (
        f"measured over {simulated_days} simulated days, days 2..{simulated_days} scaled to "
        f"{DAYS_PER_MONTH}"
        if simulated_days < DAYS_PER_MONTH
        else f"measured over {DAYS_PER_MONTH} simulated days"
    )
    if first.hours_per_day < 24:
        scope += (
            f"; of each day's 24 hourly checks, the first (the charts change at midnight) and "
            f"{first.hours_per_day - 1} quiet one(s) ran, the quiet ones scaled to 23"
        )
    parts = [
        f"AWS list prices, us-east-1 (2026), of {template_path.relative_to(ROOT)} with its "
        f"defaults; {scope}. Every request was counted on moto's server as the real handlers "
        "made it; durations are this machine's against a local moto (AWS answers each request "
        "more slowly), billed at the template's memory.",
    ]
    for measured, lines in measurements:
        parts += ["", table(measured, lines)]
    parts += [
        "",
        "Not in the totals: ECR storage of the report image ($0.10 per GB-month); with "
        f"AlarmEmail set, the alarm topic's KMS key (${KMS_KEY_MONTH:.2f} a month) and its "
        "requests. The always-free tiers are the account's, shared with anything else it runs; "
        "S3 and Athena have none.",
    ]
    return "\n".join(parts)


def write_readme(readme: Path, text: str, command: str) -> None:
    """Replace the block between README_START and README_END with the table."""
    content = readme.read_text(encoding="utf-8")
    if README_START not in content or README_END not in content:
        raise BenchError(
            f"{readme} has no {README_START} ... {README_END} block for the cost table"
        )
    head, rest = content.split(README_START, 1)
    _, tail = rest.split(README_END, 1)
    block = f"{README_START}\nFrom `{command}`:\n\n{text}\n{README_END}"
    readme.write_text(head + block + tail, encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m bench.cost", description=__doc__.splitlines()[0]
    )
    parser.add_argument(
        "--playlists",
        type=int,
        nargs="+",
        default=[1, 73],
        help="playlist counts to simulate, each on its own stack (default 1 73)",
    )
    parser.add_argument(
        "--days",
        type=int,
        default=2,
        help="days simulated: day 1, then the steady state scaled to 30 "
        "(default 2; 30 simulates the whole month)",
    )
    parser.add_argument(
        "--hours",
        type=int,
        default=24,
        help="hourly checks simulated of each day's 24: the first and N-1 "
        "quiet ones, scaled to 23 (default 24: every hour)",
    )
    parser.add_argument("--template", type=Path, default=TEMPLATE)
    parser.add_argument(
        "--readme",
        type=Path,
        default=None,
        help=f"write the table into this file between {README_START} and {README_END}",
    )
    args = parser.parse_args(argv)
    if args.days < 2:
        parser.error(
            "--days must be at least 2: day 1 creates the tables, the later ones "
            "are the steady state"
        )
    if not 2 <= args.hours <= 24:
        parser.error("--hours must be from 2 (the first check and a quiet one) to 24")
    if any(count < 1 for count in args.playlists):
        parser.error("--playlists takes counts of 1 or more")
    template = load_template(args.template)
    work = ROOT / "build" / "cost"
    measurements = []
    for count in args.playlists:
        folder = work / f"{count}-playlists"
        if folder.exists():
            import shutil

            shutil.rmtree(folder)
        folder.mkdir(parents=True)
        measured = Simulation(template, count, folder).run(
            args.days, args.hours, lambda text: print(text, file=sys.stderr, flush=True)
        )
        measurements.append((measured, price(measured, template)))
    text = report(measurements, args.template.resolve())
    print(text)
    if args.readme:
        command = "python -m bench.cost " + " ".join(argv if argv is not None else sys.argv[1:])
        write_readme(args.readme, text, command.strip())
    return 0


if __name__ == "__main__":
    sys.exit(main())
