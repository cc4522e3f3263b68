"""IAM proven against the code: the calls the handlers really make, and the grants they use.

The three handlers run on moto's server on 127.0.0.1 with the environment the template gives
each function: the extract (with a refresh token Spotify rotates, so the new one is written
back), the transform of an SQS batch naming the extract's file and a corrupt one (twice: a
redelivery), and the report of the playlists the transform asked for, on Athena. On a fresh
moto, the views function (the ``AthenaViews`` custom resource) gets CloudFormation's Create,
as the first deploy sends it to an empty lake, then an Update, as a later deploy does; its
responses go to a loopback stand-in for CloudFormation's presigned URL, which needs no
permission of the function. moto's server records every request any client made (boto3,
s3fs's aiobotocore, pyiceberg's Glue client, pyathena in the report's kernel); each is mapped
to the IAM action and resource ARN that AWS would authorize, and what AWS itself does with a
function's permissions on its behalf (``ON_BEHALF``) is added. Then:

- every call is allowed by that function's role, as SAM expands it (the template's
  ``Policies`` plus what SAM adds for event sources and destinations);
- every grant of a function's ``Policies`` is used by at least one of its calls: an unused
  one fails, named by its Sid and action. The statements SAM adds itself (logs and X-Ray by
  managed policy, the destinations' and event sources' statements) are not the template's
  to trim and are left out of this check;
- a copy of the template with one needed permission removed is reported as denying exactly
  the calls that needed it.

moto's Athena runs no SQL: here each query it is sent is answered by DuckDB over the same
lake (``athena_answered_by_duckdb``), so the report runs its Athena path to the end.
Nothing here reaches AWS; moto does not enforce IAM, so the policies are evaluated by the
small simulator of ``test_infra.Policy``.
"""

from __future__ import annotations

import base64
import contextlib
import copy
import json
import os
import re
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit
from xml.etree import ElementTree

import pytest
import requests
from test_infra import (
    MOMENT,
    PLAYLIST,
    TABLE,
    Policy,
    as_list,
    function_statements,
    props,
    role_statements,
    translate,
)

from bench import cost
from bench.template import (
    ACCOUNT,
    FUNCTIONS,
    REGION,
    Resolver,
    credentials_parameter,
    load_template,
    resources_of,
)
from etl_lib.lake import layout
from etl_lib.transform import iceberg, schemas
from etl_lib.warehouse import sql as sql_files

Call = tuple[str, str, dict]  # IAM action, resource ARN, condition context
# The functions whose roles are checked (short name -> logical id): the handlers, and the
# views function of the AthenaViews custom resource.
ROLES = {**FUNCTIONS, "views": "AthenaViewsFunction"}
# The queue the transform asks for reports on, by its logical id in the template.
REPORT_REQUESTS_QUEUE = "ReportRequestsQueue"

# --- what AWS does on a function's behalf ----------------------------------------------------
# moto's server records what the handlers ask for. Some calls AWS then makes with the calling
# function's own permissions, which moto does not make, so they are never recorded; each is
# added to the function's calls before the checks. (who acts, the calls, why, AWS's page)
ON_BEHALF = {
    "athena_reads_the_catalog": (
        "Athena, per query",
        "glue:GetDatabase and glue:GetTable on the catalog, the database and each table or "
        "view the statement reads (a view's own tables too)",
        "Athena looks the tables up in the Glue Data Catalog as the caller",
        "Athena User Guide: 'Fine-grained access to databases and tables in the AWS Glue Data "
        "Catalog'",
    ),
    "athena_reads_the_tables": (
        "Athena, per query",
        "s3:GetObject on the metadata and data files of each table read (warehouse/*), "
        "s3:ListBucket and s3:GetBucketLocation on the lake bucket",
        "Athena reads the data with the caller's S3 permissions",
        "Athena User Guide: 'Control access to Amazon S3 from Athena'",
    ),
    "athena_writes_the_views": (
        "Athena, per CREATE OR REPLACE VIEW",
        "glue:CreateTable on the catalog, the database and the view when the view is new, "
        "glue:UpdateTable on them when it replaces it",
        "Athena keeps a view as a Glue table (TableType VIRTUAL_VIEW) and writes it as the caller",
        "Athena User Guide: 'Fine-grained access to databases and tables in the AWS Glue Data "
        "Catalog'",
    ),
    "athena_writes_the_results": (
        "Athena, per query",
        "s3:PutObject, s3:GetObject, s3:AbortMultipartUpload, s3:ListMultipartUploadParts on "
        "the workgroup's result location (athena-results/*)",
        "Athena writes each query's results (in parts) to the output location as the caller",
        "Athena User Guide: 'Specify a query result location' and 'Control access to Amazon S3 "
        "from Athena'",
    ),
    # Not added, since no grant of the role is needed for it: Parameter Store's KMS Decrypt
    # (a SecureString read with decryption) and Encrypt (written) on the AWS-managed key
    # aws/ssm, whose key policy grants its use to every IAM principal of the account.
    # (Systems Manager User Guide: 'Restricting decryption of SecureString parameter values')
    "lambda_polls_the_queue": (
        "the Lambda service, per SQS event source",
        "sqs:ReceiveMessage, sqs:DeleteMessage, sqs:GetQueueAttributes on the function's queue",
        "the event source mapping polls the queue with the function's execution role",
        "Lambda Developer Guide: 'Using Lambda with Amazon SQS' (execution role permissions)",
    ),
}


def athena_on_behalf(statement: str, output: str, bucket: str, database: str) -> list[Call]:
    """ON_BEHALF's Athena entries for one statement of the report's workgroup."""
    glue = f"arn:aws:glue:{REGION}:{ACCOUNT}:"
    views = sql_files.shipped("views")
    read: set[str] = set()
    pending = list(sql_files._relations_read(statement))
    while pending:  # a view reads its own tables, with the caller's permissions too
        name = pending.pop()
        if name not in read:
            read.add(name)
            pending += sql_files._relations_read(views[name]) if name in views else []
    calls: list[Call] = [
        (action, resource, {})
        for action in ("glue:GetDatabase", "glue:GetTable")
        for resource in (glue + "catalog", glue + f"database/{database}")
    ]
    calls += [("glue:GetTable", glue + f"table/{database}/{name}", {}) for name in sorted(read)]
    lake = f"arn:aws:s3:::{bucket}"
    for name in sorted(set(read) - set(views)):
        table = f"{lake}/{iceberg.WAREHOUSE}/{database}.db/{name}"
        calls += [
            ("s3:GetObject", f"{table}/metadata/00001-read.metadata.json", {}),
            ("s3:GetObject", f"{table}/data/dt=2026-10-01/00000-read.parquet", {}),
        ]
    calls += [("s3:ListBucket", lake, {}), ("s3:GetBucketLocation", lake, {})]
    result = f"arn:aws:s3:::{output.removeprefix('s3://').rstrip('/')}/query-id.csv"
    calls += [
        (action, result, {})
        for action in (
            "s3:PutObject",
            "s3:GetObject",
            "s3:AbortMultipartUpload",
            "s3:ListMultipartUploadParts",
        )
    ]
    return calls


def athena_view_writes(view: str, database: str, exists: bool) -> list[Call]:
    """ON_BEHALF's Glue writes of a CREATE OR REPLACE VIEW of ``view``."""
    glue = f"arn:aws:glue:{REGION}:{ACCOUNT}:"
    action = "glue:UpdateTable" if exists else "glue:CreateTable"
    resources = ("catalog", f"database/{database}", f"table/{database}/{view}")
    return [(action, glue + resource, {}) for resource in resources]


def lambda_polling(template: dict, function: str) -> list[Call]:
    """ON_BEHALF's SQS polling: the queues of the function's SQS event sources."""
    resolve = Resolver(template)
    calls = []
    for source in props(template, ROLES[function]).get("Events", {}).values():
        if source["Type"] == "SQS":
            queue = resolve(source["Properties"]["Queue"])
            calls += [
                (f"sqs:{action}", queue, {})
                for action in ("ReceiveMessage", "DeleteMessage", "GetQueueAttributes")
            ]
    return calls


# --- recorded requests as IAM calls ---------------------------------------------------------


def recorded(recording: Path) -> list[dict]:
    """The requests moto's recorder wrote. It writes an entry and its newline in two writes,
    so the entries of requests served at the same time can share a line: the file is read as
    a stream of JSON objects, not as lines."""
    text = recording.read_text(encoding="utf-8")
    decoder, blank = json.JSONDecoder(), re.compile(r"\s*")
    entries, position = [], blank.match(text).end()
    while position < len(text):
        entry, position = decoder.raw_decode(text, position)
        entries.append(entry)
        position = blank.match(text, position).end()
    return entries


class Recording:
    """Maps what moto's server recorded to IAM calls. ``aliases`` names a real ARN (a queue)
    as the template's resolver names it; ``athena`` is moto's Athena backend, which knows the
    workgroup of a query id. moto's Athena keeps no view in Glue, so the views Athena would have
    created so far are remembered here (``views``)."""

    def __init__(self, *, aliases: dict[str, str], athena, bucket: str, database: str) -> None:
        self.aliases = aliases
        self.athena = athena
        self.bucket = bucket
        self.database = database
        self.views: set[str] = set()

    def calls(self, recording: Path) -> list[Call]:
        """(IAM action, resource ARN, condition context) of every request recorded; a
        request this mapping does not know fails the test, so a new kind of call is looked
        at rather than let through."""
        calls = []
        for entry in recorded(recording):
            headers = {name.lower(): value for name, value in entry["headers"].items()}
            body = entry.get("body") or ""
            if entry.get("body_encoded"):
                body = base64.b64decode(body)
            service = re.search(r"Credential=[^/]+/\d+/[^/]+/([^/]+)/", headers["authorization"])[1]
            url = urlsplit(entry["url"])
            target = headers.get("x-amz-target", "").split(".")[-1]
            if service == "s3":
                calls += s3_calls(entry["method"], url, headers, body)
            elif service == "glue":
                calls += glue_calls(target, json.loads(body))
            elif service == "ssm":
                calls.append(ssm_call(target, json.loads(body)))
            elif service == "athena":
                calls += self.athena_calls(target, json.loads(body))
            elif service == "sqs":
                calls += self.sqs_calls(target, body)
            else:
                raise AssertionError(f"a call to {service} that no test maps: {entry['url']}")
        return calls

    def athena_calls(self, operation: str, params: dict) -> list[Call]:
        """Athena authorizes a query's calls on its workgroup; Athena's own reads and writes
        for a started query follow (ON_BEHALF)."""
        if operation == "StartQueryExecution":
            workgroup = params["WorkGroup"]
        elif operation in ("GetQueryExecution", "GetQueryResults", "StopQueryExecution"):
            execution = self.athena.executions[params["QueryExecutionId"]]
            workgroup = execution.workgroup.name
        else:
            raise AssertionError(f"an Athena call no test maps: {operation}")
        arn = f"arn:aws:athena:{REGION}:{ACCOUNT}:workgroup/{workgroup}"
        calls: list[Call] = [(f"athena:{operation}", arn, {})]
        if operation == "StartQueryExecution":
            output = self.athena.work_groups[workgroup].configuration["ResultConfiguration"][
                "OutputLocation"
            ]
            statement = params["QueryString"]
            calls += athena_on_behalf(statement, output, self.bucket, self.database)
            view = re.match(r"\s*CREATE\s+OR\s+REPLACE\s+VIEW\s+(\w+)", statement, re.I)
            if view:
                calls += athena_view_writes(view[1], self.database, view[1] in self.views)
                self.views.add(view[1])
        return calls

    def sqs_calls(self, operation: str, body) -> list[Call]:
        """boto3 speaks SQS's JSON protocol (x-amz-target); older clients the query protocol
        (an Action form field): both name the queue by its URL."""
        if operation:
            queue_url = json.loads(body)["QueueUrl"]
        else:
            text = body.decode() if isinstance(body, bytes) else body
            form = parse_qs(text)
            operation, queue_url = form["Action"][0], form["QueueUrl"][0]
        account, name = urlsplit(queue_url).path.strip("/").split("/")
        arn = f"arn:aws:sqs:{REGION}:{account}:{name}"
        return [(f"sqs:{operation}", self.aliases.get(arn, arn), {})]


def s3_calls(method: str, url, headers: dict, body) -> list[Call]:
    bucket, _, key = unquote(url.path).lstrip("/").partition("/")
    query = parse_qs(url.query, keep_blank_values=True)
    bucket_arn = f"arn:aws:s3:::{bucket}"
    if not key:
        if method == "GET" and ("list-type" in query or not query):
            context = {"s3:prefix": query.get("prefix", [""])[0]}
            if "delimiter" in query:
                context["s3:delimiter"] = query["delimiter"][0]
            return [("s3:ListBucket", bucket_arn, context)]
        if method == "GET" and "location" in query:
            return [("s3:GetBucketLocation", bucket_arn, {})]
        if method == "HEAD":
            return [("s3:ListBucket", bucket_arn, {})]
        if method == "POST" and "delete" in query:
            keys = [e.text for e in ElementTree.fromstring(body).iter() if e.tag.endswith("Key")]
            return [("s3:DeleteObject", f"{bucket_arn}/{k}", {}) for k in keys]
        raise AssertionError(f"an S3 bucket request no test maps: {method} {url.geturl()}")
    object_arn = f"{bucket_arn}/{key}"
    if method in ("GET", "HEAD"):
        # S3 answers a read of a missing key with 404 only to a caller that may list the
        # bucket (else 403), and the lake's existence checks depend on that 404.
        return [("s3:GetObject", object_arn, {}), ("s3:ListBucket", bucket_arn, {})]
    if method == "PUT" or (method == "POST" and {"uploads", "uploadId"} & set(query)):
        calls = [("s3:PutObject", object_arn, {})]
        if "x-amz-copy-source" in headers:
            source = unquote(headers["x-amz-copy-source"]).lstrip("/")
            calls.append(("s3:GetObject", f"arn:aws:s3:::{source}", {}))
        return calls
    if method == "DELETE":
        action = "s3:AbortMultipartUpload" if "uploadId" in query else "s3:DeleteObject"
        return [(action, object_arn, {})]
    raise AssertionError(f"an S3 object request no test maps: {method} {url.geturl()}")


def ssm_call(operation: str, params: dict) -> Call:
    """A Parameter Store call, authorized on the parameter's ARN (its name without the leading
    slash after ``parameter/``)."""
    if operation not in ("GetParameter", "PutParameter"):
        raise AssertionError(f"an SSM call no test maps: {operation}")
    name = params["Name"].lstrip("/")
    return (f"ssm:{operation}", f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter/{name}", {})


def glue_calls(operation: str, params: dict) -> list[Call]:
    """Glue authorizes a call on the catalog, the database and, for a table call, the
    table: each must be allowed."""
    arn = f"arn:aws:glue:{REGION}:{ACCOUNT}:"
    if operation in ("GetDatabase", "DeleteDatabase"):
        database, table = params["Name"], None
    elif operation == "CreateDatabase":
        database, table = params["DatabaseInput"]["Name"], None
    elif operation in ("GetTable", "DeleteTable"):
        database, table = params["DatabaseName"], params["Name"]
    elif operation in ("CreateTable", "UpdateTable"):
        database, table = params["DatabaseName"], params["TableInput"]["Name"]
    elif operation == "GetTables":
        database, table = params["DatabaseName"], "*"
    else:
        raise AssertionError(f"a Glue call no test maps: {operation}")
    resources = [arn + "catalog", arn + f"database/{database}"]
    if table is not None:
        resources.append(arn + f"table/{database}/{table}")
    return [(f"glue:{operation}", resource, {}) for resource in resources]


# --- Athena on moto, answered by DuckDB (bench/cost.py's answering_athena) -------------------


def athena_answered_by_duckdb(monkeypatch, lake_root: str, recorder) -> None:
    """moto's Athena runs no SQL and answers every query with no rows: from here on, each
    statement it is sent is run by DuckDB over the same lake (the engine every other test
    trusts with the shipped SQL), and its result is what GetQueryResults returns. DuckDB's
    own reads of the lake are not the caller's: the recorder is paused while it runs (the
    caller waits for the answer, so nothing else is recorded meanwhile)."""
    from moto.athena.models import AthenaBackend

    from etl_lib.warehouse import execute

    def answer(query_id: str, statement: str, values: list):
        was_recording = recorder._user_enabled
        recorder.stop_recording()
        try:
            return execute.query(lake_root, statement, values)
        finally:
            if was_recording:
                recorder.start_recording()

    start = AthenaBackend.start_query_execution
    monkeypatch.setattr(
        AthenaBackend, "start_query_execution", cost.answering_athena(start, answer)
    )


# --- the stack on moto, and the calls of one run of each handler ------------------------------


def sqs_event(bodies: list[str], queue_arn: str) -> dict:
    """The event Lambda's SQS event source hands a function for these message bodies."""
    return {
        "Records": [
            {
                "messageId": f"message-{number}",
                "receiptHandle": f"receipt-{number}",
                "body": body,
                "attributes": {"ApproximateReceiveCount": "1"},
                "messageAttributes": {},
                "eventSource": "aws:sqs",
                "eventSourceARN": queue_arn,
                "awsRegion": REGION,
            }
            for number, body in enumerate(bodies)
        ]
    }


def transform_event(keys: list[str], bucket: str) -> dict:
    """The batch the transform gets for these objects: one S3 notification per message."""
    from test_lambda_handlers import notification_for

    bodies = [json.dumps(notification_for([key], bucket)) for key in keys]
    return sqs_event(bodies, f"arn:aws:sqs:{REGION}:{ACCOUNT}:raw-objects")


class Stack:
    """moto with what the stack creates and the handlers expect: the lake bucket, the Glue
    database, the Athena workgroup, the queues the functions' environments name, and the
    credentials' SecureString the deploy steps create;
    ``run`` runs one handler with that function's environment from the template and returns
    its response and the IAM calls its requests (and AWS on its behalf) made."""

    def __init__(self, template: dict, endpoint: str, spotify_server, monkeypatch, folder: Path):
        import boto3
        from moto.athena.models import athena_backends
        from moto.moto_api import recorder

        self.template = template
        self.resolve = Resolver(template)
        self.monkeypatch = monkeypatch
        self.recorder = recorder
        self.bucket = self.resolve(props(template, "LakeBucket")["BucketName"])
        self.database = self.resolve({"Ref": "GlueDatabase"})
        boto3.client("s3").create_bucket(Bucket=self.bucket)
        boto3.client("glue").create_database(DatabaseInput={"Name": self.database})
        workgroup = self.resolve(props(template, "AthenaWorkGroup"))
        boto3.client("athena").create_work_group(
            Name=workgroup["Name"],
            Configuration={
                "ResultConfiguration": {
                    "OutputLocation": workgroup["WorkGroupConfiguration"]["ResultConfiguration"][
                        "OutputLocation"
                    ]
                }
            },
        )
        # A user's refresh token, which the local server replaces on every refresh: the
        # extract writes the new one back to the parameter.
        spotify_server.rotate_refresh_tokens = True
        boto3.client("ssm").put_parameter(
            Name=credentials_parameter(template, self.resolve),
            Value=json.dumps(
                {
                    "client_id": spotify_server.client_id,
                    "client_secret": spotify_server.client_secret,
                    "refresh_token": spotify_server.mint_refresh_token(),
                }
            ),
            Type="SecureString",
        )
        # Real names of what the resolver calls <Queue> (URL) and <Queue.Arn>.
        self.stand_ins: dict[str, str] = {}
        aliases: dict[str, str] = {}
        sqs = boto3.client("sqs")
        for name in resources_of(template, "AWS::SQS::Queue"):
            url = sqs.create_queue(QueueName=name)["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
                "QueueArn"
            ]
            self.stand_ins[f"<{name}>"] = url
            self.stand_ins[f"<{name}.Arn>"] = arn
            aliases[arn] = f"<{name}.Arn>"
        self.mapping = Recording(
            aliases=aliases,
            athena=athena_backends[ACCOUNT][REGION],
            bucket=self.bucket,
            database=self.database,
        )
        self.recording = folder / "recording.jsonl"
        monkeypatch.setattr(recorder, "_location", str(self.recording))
        for name in [
            n for n in os.environ if n.startswith(("SPOTIFY_", "SPOTIPY_", "POWERTOOLS_"))
        ]:
            monkeypatch.delenv(name)
        # The local Spotify server stands in for Spotify.
        monkeypatch.setenv("SPOTIFY_API_BASE_URL", spotify_server.base_url)
        monkeypatch.setenv("SPOTIFY_TOKEN_URL", spotify_server.token_url)
        monkeypatch.setenv("SPOTIFY_ETL_CREDENTIALS_FILE", str(folder / "no-credentials.json"))
        self.variables: set[str] = set()
        # Catalogs opened by an earlier test hold Glue clients bound to that test's server.
        iceberg.forget(f"s3://{self.bucket}")
        athena_answered_by_duckdb(monkeypatch, f"s3://{self.bucket}", recorder)

    def queue_url(self, logical_id: str) -> str:
        return self.stand_ins[f"<{logical_id}>"]

    def run(self, function: str, event: dict) -> tuple[dict, list[Call]]:
        from test_lambda_handlers import FakeLambdaContext, load_handler

        for name in self.variables:
            self.monkeypatch.delenv(name)
        environment = self.resolve(
            props(self.template, ROLES[function])["Environment"]["Variables"]
        )
        for name, value in environment.items():
            self.monkeypatch.setenv(name, self.stand_ins.get(str(value), str(value)))
        self.variables = set(environment)
        handler = load_handler(function).handler
        self.recorder.reset_recording()
        self.recorder.start_recording()
        try:
            response = handler(event, FakeLambdaContext(function))
        finally:
            self.recorder.stop_recording()
        calls = self.mapping.calls(self.recording)
        return response, calls + lambda_polling(self.template, function)


@pytest.fixture(scope="module")
def template() -> dict:
    return load_template()


@contextlib.contextmanager
def stack_on_moto(template: dict, folder: Path):
    """A ``Stack`` on a moto server of its own on 127.0.0.1, emptied first (moto's backends
    are the process's), and the local Spotify server."""
    from conftest import use_fake_aws
    from moto.server import ThreadedMotoServer

    from etl_lib.local_spotify import ChartSimulator, LocalSpotifyServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    endpoint = f"http://{host}:{port}"
    requests.post(f"{endpoint}/moto-api/reset", timeout=10).raise_for_status()
    spotify = LocalSpotifyServer(ChartSimulator(), now=MOMENT)
    try:
        with spotify, pytest.MonkeyPatch.context() as monkeypatch:
            use_fake_aws(monkeypatch, endpoint)
            stack = Stack(template, endpoint, spotify, monkeypatch, folder)
            try:
                yield stack
            finally:
                stack.recorder.stop_recording()
    finally:
        server.stop()
        iceberg.forget()


@pytest.fixture(scope="module")
def handler_calls(template, tmp_path_factory) -> dict[str, list[Call]]:
    """The calls of each function: one extract -> transform -> report chain on moto, then the
    views function's deploys on a fresh one (``views_calls``)."""
    with stack_on_moto(template, tmp_path_factory.mktemp("iam")) as stack:
        calls = chain_calls(stack)
    with stack_on_moto(template, tmp_path_factory.mktemp("views")) as stack:
        calls["views"] = views_calls(stack)
    return calls


def report_event(stack: Stack, transformed: dict) -> dict:
    """The report's event: the messages the transform sent to the report-requests queue, or,
    in a template without that queue, the one message it would have sent."""
    import boto3

    if f"<{REPORT_REQUESTS_QUEUE}>" not in stack.stand_ins:
        wanted = layout.newest_day_by_playlist(transformed["transformed"])
        return sqs_event([json.dumps({"reports": wanted})], "arn:aws:sqs:::report-requests")
    queue = stack.queue_url(REPORT_REQUESTS_QUEUE)
    messages = boto3.client("sqs").receive_message(QueueUrl=queue, MaxNumberOfMessages=10)
    bodies = [message["Body"] for message in messages.get("Messages", [])]
    assert bodies, "the transform asked for no report"
    return sqs_event(bodies, stack.stand_ins[f"<{REPORT_REQUESTS_QUEUE}.Arn>"])


def chain_calls(stack: Stack) -> dict[str, list[Call]]:
    import boto3

    calls: dict[str, list[Call]] = {}
    extracted, calls["extract"] = stack.run("extract", {"id": "scheduled-run"})
    assert [o["status"] for o in extracted["outcomes"]] == ["extracted"], extracted

    [raw_key] = [o["raw_key"] for o in extracted["outcomes"]]
    corrupt = layout.raw_key(PLAYLIST, MOMENT)
    boto3.client("s3").put_object(Bucket=stack.bucket, Key=corrupt, Body=b"{not json")
    batch = transform_event([raw_key, corrupt], stack.bucket)
    first, calls["transform"] = stack.run("transform", batch)
    again, redelivered = stack.run("transform", batch)
    assert first["transformed"] == again["transformed"] == [raw_key], first
    assert list(first["quarantined"]) == [corrupt]
    calls["transform"] += redelivered

    reported, calls["report"] = stack.run("report", report_event(stack, first))
    assert reported["reports"] and all(r["succeeded"] for r in reported["reports"]), reported
    return calls


def views_calls(stack: Stack) -> list[Call]:
    """The views function's calls for the requests CloudFormation sends it: Create on the
    first deploy, to a lake with no table yet (the tables are created empty, then the views),
    and Update on a later deploy (the tables are there; the views are replaced)."""
    from test_views_resource import ResponseReceiver, request

    calls: list[Call] = []
    receiver = ResponseReceiver()
    try:
        for kind in ("Create", "Update"):
            response, made = stack.run("views", request(kind, receiver))
            assert response["Status"] == "SUCCESS", response
            calls += made
        assert [put["body"]["Status"] for put in receiver.requests] == ["SUCCESS"] * 2
    finally:
        receiver.close()
    return calls


# --- the checks ------------------------------------------------------------------------------


# The data actions of the AWS-managed policies SAM attaches by ARN (AWSLambdaBasicExecutionRole
# and AWSXrayWriteOnlyAccess grant logs and X-Ray only, which no handler calls itself).
MANAGED_POLICY_STATEMENTS = {
    # An SQS event source: the Lambda service polls the queue with the function's role.
    "arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole": [
        {
            "Effect": "Allow",
            "Action": ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes"],
            "Resource": "*",
        }
    ],
}
# Grants kept for a path of the code that one chain on moto does not reach, with that path.
NOT_EXERCISED = {
    (
        "transform",
        "ReadWriteTables",
        "s3:DeleteObject",
    ): "pyiceberg deletes a table's metadata files beyond the newest 20 after a commit "
    "(iceberg.TABLE_PROPERTIES: write.metadata.previous-versions-max): the 21st commit of a "
    "table, and the chain makes three",
    ("report", "RequestDeferredReports", "sqs:SendMessage"): "a report run with too little "
    "time left puts the reports it did not start back on the queue "
    "(tests/test_lambda_handlers.py); the chain's run has time for all",
    **{
        ("report", "RecreateTheViews", action): "athena.query creates the views again when a "
        "query finds a shipped view missing (tests/test_glue_athena.py); the chain's stack has "
        "them"
        for action in ("glue:CreateTable", "glue:UpdateTable")
    },
}


def expanded_policies(template: dict) -> dict[str, Policy]:
    """Each function's role as SAM expands it: the template's Policies, SAM's own statements
    (destinations) and the data actions of the managed policies it attaches."""
    expanded = translate(template)
    resolve = Resolver(expanded)
    policies = {}
    for short, logical_id in ROLES.items():
        role = expanded["Resources"][f"{logical_id}Role"]
        statements = role_statements(role)
        for arn in role["Properties"].get("ManagedPolicyArns", []):
            statements += MANAGED_POLICY_STATEMENTS.get(arn, [])
        policies[short] = Policy(statements, resolve)
    return policies


def denied(policy: Policy, calls: list[Call]) -> list[tuple[str, str, str]]:
    """The calls ``policy`` does not allow, once each."""
    return sorted({(a, r, json.dumps(c)) for a, r, c in calls if not policy.allows(a, r, c)})


def unused_grants(template: dict, function: str, calls: list[Call]) -> list[str]:
    """Each (action, resource) of the function's Policies that none of its calls uses, as
    ``Sid: action on resource``."""
    resolve = Resolver(template)
    unused = []
    for statement in function_statements(template, ROLES[function]):
        if statement["Effect"] != "Allow":
            continue
        for action in as_list(statement["Action"]):
            for resource in as_list(resolve(statement["Resource"])):
                grant = Policy([{**statement, "Action": action, "Resource": resource}], resolve)
                if (function, statement.get("Sid"), action) in NOT_EXERCISED:
                    continue
                if not any(grant.allows(a, r, c) for a, r, c in calls):
                    unused.append(f"{statement.get('Sid', '(no Sid)')}: {action} on {resource}")
    return unused


@pytest.mark.slow
def test_every_call_the_handlers_make_is_allowed_to_them(handler_calls, template):
    policies = expanded_policies(template)
    for function, calls in handler_calls.items():
        assert denied(policies[function], calls) == [], function

    actions = {function: {a for a, _, _ in calls} for function, calls in handler_calls.items()}
    assert {
        "ssm:GetParameter",
        "ssm:PutParameter",
        "s3:PutObject",
    } <= actions["extract"]
    assert {"glue:CreateTable", "glue:UpdateTable"} <= actions["transform"]
    if REPORT_REQUESTS_QUEUE in template["Resources"]:
        assert "sqs:SendMessage" in actions["transform"]
    assert {"athena:StartQueryExecution", "athena:GetQueryResults"} <= actions["report"]
    # What was checked is the Iceberg commit: files under warehouse/ and the Glue tables.
    written = {
        r.split(":::", 1)[1] for a, r, _ in handler_calls["transform"] if a == "s3:PutObject"
    }
    assert any(f"/{TABLE}/data/" in key for key in written)
    assert any(f"/{TABLE}/metadata/" in key for key in written)
    assert any("/quarantine/" in key for key in written)
    published = {r for a, r, _ in handler_calls["report"] if a == "s3:PutObject"}
    assert any(key.endswith("/report.html") for key in published), sorted(published)
    # The views function's deploys: Create made every table and view, Update replaced the views.
    made = {(a, r.rsplit("/", 1)[1]) for a, r, _ in handler_calls["views"] if ":table/" in r}
    views = sql_files.shipped("views")
    assert {("glue:CreateTable", name) for name in [*schemas.TABLES, *views]} <= made
    assert {("glue:UpdateTable", name) for name in views} <= made
    assert {a for a, _ in made} == {
        "glue:GetTable",
        "glue:CreateTable",
        "glue:UpdateTable",
    }


@pytest.mark.slow
def test_no_function_is_granted_what_none_of_its_calls_uses(handler_calls, template):
    unused = {
        function: unused_grants(template, function, calls)
        for function, calls in handler_calls.items()
    }
    assert unused == {function: [] for function in handler_calls}


def without_action(template: dict, function: str, sid: str, action: str) -> dict:
    """A copy of the template whose statement ``sid`` of ``function`` no longer grants
    ``action``."""
    changed = copy.deepcopy(template)
    for policy in props(changed, ROLES[function])["Policies"]:
        for statement in as_list(policy["Statement"]):
            if statement.get("Sid") == sid:
                actions = as_list(statement["Action"])
                assert action in actions, (sid, actions)
                statement["Action"] = [a for a in actions if a != action]
                return changed
    raise AssertionError(f"{function} has no statement {sid}")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("function", "sid", "action", "denied_resource"),
    [
        (
            "transform",
            "CatalogTheTables",
            "glue:UpdateTable",
            r"table/.+/(snapshots|chart_entries)",
        ),
        ("transform", "ReadWriteTables", "s3:PutObject", rf"/{re.escape(iceberg.WAREHOUSE)}/"),
        (
            "extract",
            "SpotifyCredentials",
            "ssm:PutParameter",
            r":parameter/spotify-charts/spotify$",
        ),
        (
            "extract",
            "SpotifyCredentials",
            "ssm:GetParameter",
            r":parameter/spotify-charts/spotify$",
        ),
        ("report", "AthenaQueriesInTheWorkgroup", "athena:GetQueryResults", r"workgroup/"),
        ("views", "ReadWriteTableMetadata", "s3:PutObject", r"/warehouse/.+/metadata/"),
        ("views", "CatalogTablesAndViews", "glue:UpdateTable", r"table/.+/latest_tracks$"),
    ],
)
def test_removing_a_needed_permission_denies_exactly_its_calls(
    handler_calls, template, function, sid, action, denied_resource
):
    """The positive test's recorded calls against a template missing one permission: the
    check names that action's calls and nothing else."""
    policy = expanded_policies(without_action(template, function, sid, action))[function]
    found = denied(policy, handler_calls[function])
    assert found, f"{action} removed and nothing denied"
    assert {a for a, _, _ in found} == {action}
    assert any(re.search(denied_resource, resource) for _, resource, _ in found), found


@pytest.mark.slow
def test_a_grant_no_call_uses_is_named_by_its_sid_and_action(handler_calls, template):
    changed = copy.deepcopy(template)
    statements = props(changed, FUNCTIONS["extract"])["Policies"][0]["Statement"]
    statements.append(
        {
            "Sid": "ReadTheTables",
            "Effect": "Allow",
            "Action": ["s3:GetObject"],
            "Resource": {"Fn::Sub": "arn:${AWS::Partition}:s3:::${NamePrefix}-lake-*/warehouse/*"},
        }
    )
    assert unused_grants(changed, "extract", handler_calls["extract"]) == [
        "ReadTheTables: s3:GetObject on arn:aws:s3:::spotify-charts-lake-*/warehouse/*"
    ]


def test_the_report_may_recreate_exactly_the_shipped_views(template):
    """The report's grant to create views names each shipped view, and no table."""
    [statement] = [
        s
        for s in function_statements(template, FUNCTIONS["report"])
        if s.get("Sid") == "RecreateTheViews"
    ]
    resources = as_list(Resolver(template)(statement["Resource"]))
    tables = {r.rsplit("/", 1)[1] for r in resources if ":table/" in r}
    assert tables == set(sql_files.shipped("views"))
    assert not tables & set(schemas.TABLES)
