"""The AthenaViews custom resource (lambdas/views/app.py) and its place in the template.

CloudFormation's side is played here: the request event (tests/events), and a loopback
HTTP server standing in for the presigned S3 URL that receives the response. Athena, Glue
and S3 are moto's server on 127.0.0.1, not AWS: moto accepts any SQL, so what is checked
is which statements were sent.
"""

from __future__ import annotations

import copy
import json
import threading
from dataclasses import dataclass

import boto3
import pytest
from conftest import LoopbackServer, QuietHandler, closed_port_endpoint
from test_infra import load_template, translate
from test_lambda_handlers import EVENTS, FakeLambdaContext, load_handler

from etl_lib.transform import iceberg, schemas
from etl_lib.warehouse import athena
from etl_lib.warehouse.sql import shipped

pytestmark = pytest.mark.aws

BUCKET = "charts-lake-views"
LAKE = f"s3://{BUCKET}"
WORKGROUP = "spotify-charts"


@dataclass
class CustomResourceContext(FakeLambdaContext):
    seconds_left: float = 300.0

    def get_remaining_time_in_millis(self) -> int:
        return int(self.seconds_left * 1000)


class ResponseReceiver(LoopbackServer):
    """The presigned S3 URL of a custom resource request: records each PUT it receives."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        receiver = self

        class Handler(QuietHandler):
            def do_PUT(self):  # noqa: N802 - http.server's name
                body = self.rfile.read(int(self.headers["Content-Length"]))
                receiver.requests.append(
                    {"path": self.path, "headers": dict(self.headers), "body": json.loads(body)}
                )
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        super().__init__(Handler)
        self.url = f"{self.origin}/response?X-Amz-Signature=abc"


@pytest.fixture
def receiver():
    receiver = ResponseReceiver()
    yield receiver
    receiver.close()


@pytest.fixture
def stack(moto_endpoint, monkeypatch):
    """The lake bucket and workgroup on moto, and the function's environment from the
    template's AthenaViewsFunction."""
    iceberg.forget(LAKE)
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    boto3.client("athena").create_work_group(Name=WORKGROUP, Configuration={})
    for name, value in {
        "SPOTIFY_ETL_LAKE": LAKE,
        "SPOTIFY_ETL_GLUE_DATABASE": "spotify_charts",
        "SPOTIFY_ETL_ATHENA_WORKGROUP": WORKGROUP,
        "SPOTIFY_ETL_ATHENA_OUTPUT": f"{LAKE}/athena-results/",
        "POWERTOOLS_SERVICE_NAME": "spotify-charts-views",
    }.items():
        monkeypatch.setenv(name, value)


def request(kind: str, receiver: ResponseReceiver) -> dict:
    event = json.loads((EVENTS / "cloudformation_create.json").read_text(encoding="utf-8"))
    event["RequestType"] = kind
    event["ResponseURL"] = receiver.url
    if kind != "Create":
        event["PhysicalResourceId"] = "AthenaViews"
    if kind == "Update":
        event["OldResourceProperties"] = copy.deepcopy(event["ResourceProperties"])
        event["OldResourceProperties"]["CodeVersion"] = event["ResourceProperties"][
            "CodeVersion"
        ].replace(":1", ":0")
    return event


def sent_queries() -> list[str]:
    client = boto3.client("athena")
    ids = client.list_query_executions(WorkGroup=WORKGROUP)["QueryExecutionIds"]
    return [
        client.get_query_execution(QueryExecutionId=query_id)["QueryExecution"]["Query"]
        for query_id in ids
    ]


def the_response(receiver: ResponseReceiver, event: dict) -> dict:
    [put] = receiver.requests
    assert put["path"] == "/response?X-Amz-Signature=abc"
    # The URL is presigned without a content type: AWS's cfn-response sends it empty.
    assert put["headers"].get("Content-Type") == ""
    body = put["body"]
    for key in ("StackId", "RequestId", "LogicalResourceId"):
        assert body[key] == event[key], key
    assert body["PhysicalResourceId"] == "AthenaViews"
    assert "\n" not in body["Reason"] and body["Reason"]
    return body


@pytest.mark.parametrize("kind", ["Create", "Update"])
def test_create_and_update_make_the_tables_and_views_and_report_success(kind, stack, receiver):
    event = request(kind, receiver)

    returned = load_handler("views").handler(event, CustomResourceContext("spotify-charts-views"))

    body = the_response(receiver, event)
    assert body == returned
    assert body["Status"] == "SUCCESS"
    views = shipped("views")
    assert body["Data"] == {"Tables": ",".join(schemas.TABLES), "Views": ",".join(views)}
    assert sorted(sent_queries()) == sorted(
        athena.view_statement(name, sql) for name, sql in views.items()
    )
    # The views' base tables exist (empty) in Glue: the same as `catalog --engine athena`.
    tables = boto3.client("glue").get_tables(DatabaseName="spotify_charts")["TableList"]
    assert {table["Name"] for table in tables} == set(schemas.TABLES)


def test_delete_reports_success_without_touching_athena(stack, receiver):
    event = request("Delete", receiver)

    load_handler("views").handler(event, CustomResourceContext("spotify-charts-views"))

    body = the_response(receiver, event)
    assert body["Status"] == "SUCCESS" and body["Data"] == {}
    assert sent_queries() == []
    assert boto3.client("glue").get_databases()["DatabaseList"] == []


def test_a_missing_workgroup_is_reported_failed_in_one_line(stack, receiver, monkeypatch):
    monkeypatch.setenv("SPOTIFY_ETL_ATHENA_WORKGROUP", "nope")
    event = request("Create", receiver)

    load_handler("views").handler(event, CustomResourceContext("spotify-charts-views"))

    body = the_response(receiver, event)
    assert body["Status"] == "FAILED"
    assert "'nope'" in body["Reason"] and "SPOTIFY_ETL_ATHENA_WORKGROUP" in body["Reason"]
    assert body["Data"] == {}


def test_an_unreachable_endpoint_is_reported_failed(stack, receiver, monkeypatch):
    closed = closed_port_endpoint()
    monkeypatch.setenv("AWS_ENDPOINT_URL", closed)
    iceberg.forget()
    event = request("Update", receiver)

    load_handler("views").handler(event, CustomResourceContext("spotify-charts-views"))

    body = the_response(receiver, event)
    assert body["Status"] == "FAILED"
    assert closed in body["Reason"]


def test_work_that_outlasts_the_function_is_reported_before_its_timeout(
    stack, receiver, monkeypatch
):
    module = load_handler("views")
    release = threading.Event()
    monkeypatch.setattr(module, "build_catalog", lambda: release.wait(30))
    monkeypatch.setattr(module, "RESPONSE_RESERVE_SECONDS", 0)
    event = request("Create", receiver)
    try:
        module.handler(event, CustomResourceContext("spotify-charts-views", seconds_left=1))
    finally:
        release.set()

    body = the_response(receiver, event)
    assert body["Status"] == "FAILED" and "not ready within 1 s" in body["Reason"]


def test_an_unreachable_response_url_is_raised_after_a_few_tries(stack, monkeypatch):
    module = load_handler("views")
    monkeypatch.setattr(module.time, "sleep", lambda seconds: None)
    closed = f"{closed_port_endpoint()}/response"
    with pytest.raises(RuntimeError, match="cannot send the response to CloudFormation"):
        module.send_response(closed, {"Status": "SUCCESS"})


# --- the template ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def template() -> dict:
    return load_template()


def test_the_resource_is_refreshed_by_every_new_image(template):
    resources = template["Resources"]
    views = resources["AthenaViews"]
    assert views["Type"] == "Custom::AthenaViews"
    properties = views["Properties"]
    assert properties["ServiceToken"] == {"Ref": "AthenaViewsFunction.Alias"}
    # A new image is a new published version: the property changes, CloudFormation sends
    # Update, the views are replaced with the image's SQL.
    assert properties["CodeVersion"] == {"Ref": "AthenaViewsFunction.Version"}
    assert properties["Database"] == {"Ref": "GlueDatabase"}
    assert properties["WorkGroup"] == {"Ref": "AthenaWorkGroup"}

    function = resources["AthenaViewsFunction"]
    report = resources["ReportFunction"]
    for key in ("Dockerfile", "DockerContext", "DockerTag"):
        assert function["Metadata"][key] == report["Metadata"][key], key
    function_properties = function["Properties"]
    assert function_properties["PackageType"] == "Image"
    assert function_properties["ImageUri"] == report["Properties"]["ImageUri"]
    assert function_properties["ImageConfig"] == {"Command": ["lambdas.views.app.handler"]}
    # The response is sent before the timeout; a throttled Athena call gives up before it.
    timeout = function_properties["Timeout"]
    assert athena.THROTTLE_RETRY.worst_case_seconds() * 2 < timeout <= 900


def test_the_image_carries_the_handler_under_the_name_the_function_runs():
    dockerfile = (EVENTS.parents[1] / "lambdas" / "Dockerfile").read_text()
    assert "COPY lambdas/views/app.py ${LAMBDA_TASK_ROOT}/lambdas/views/" in dockerfile


def test_sam_expands_the_function_with_a_published_version(template):
    expanded = translate(template)["Resources"]
    views = expanded["AthenaViews"]
    assert views["Type"] == "Custom::AthenaViews"
    [version_id] = [
        name
        for name, resource in expanded.items()
        if resource["Type"] == "AWS::Lambda::Version" and name.startswith("AthenaViewsFunction")
    ]
    assert views["Properties"]["CodeVersion"] == {"Ref": version_id}
    role = expanded["AthenaViewsFunctionRole"]["Properties"]
    actions = {
        action
        for policy in role["Policies"]
        for statement in policy["PolicyDocument"]["Statement"]
        for action in (
            statement["Action"] if isinstance(statement["Action"], list) else [statement["Action"]]
        )
    }
    # Athena keeps views as Glue tables: CREATE OR REPLACE VIEW creates or updates one.
    assert {"glue:CreateTable", "glue:UpdateTable", "glue:GetTable"} <= actions
    assert {"athena:StartQueryExecution", "athena:GetQueryExecution"} <= actions
    assert "glue:DeleteTable" not in actions and "glue:DeleteDatabase" not in actions
