"""The AWS SAM template (infra/template.yaml), validated offline: no AWS account, no network.

- cfn-lint on the SAM template, and again on the plain CloudFormation that aws-sam-translator
  expands it into (translated here, with a managed-policy loader that refuses to be called);
- checkov on the template, on a variant with the optional resources switched on, and on that
  variant expanded (so the IAM roles SAM generates are checked too): no failed check, and
  every suppression carries a reason and is actually used;
- the IAM policies, evaluated by a small simulator: the report may read and write what it
  does; no function writes anywhere else; no data action (s3, glue, athena, ssm) is
  granted on ``Resource: "*"`` (the calls the handlers really make are
  checked against their roles in tests/test_iam.py);
- Glue holds the database only: the Iceberg tables in it are pyiceberg's to create;
- every resource the deployment relies on is there, wired as the handlers expect.

Nothing here proves the stack deploys: that takes an AWS account, and moto does not enforce
IAM (the policies are evaluated here, not by moto).
"""

from __future__ import annotations

import copy
import fnmatch
import importlib
import json
import os
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from bench import cost
from bench.template import (
    ACCOUNT,
    FUNCTIONS,
    PSEUDO,
    REGION,
    TEMPLATE,
    Resolver,
    credentials_parameter,
    load_template,
    resources_of,
)
from etl_lib import config
from etl_lib.extract.credentials import Credentials
from etl_lib.lake import layout
from etl_lib.transform import iceberg

ROOT = Path(__file__).resolve().parents[1]
INFRA = ROOT / "infra"
DATA_SERVICES = ("s3:", "glue:", "athena:", "ssm:")
# The only managed policies allowed, and only as the ARNs SAM itself adds (logs, X-Ray).
ALLOWED_MANAGED_POLICIES = {
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",
    "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",
}
# Added by SAM to the role of a function with an SQS event, and only there: the Lambda
# service polls the queue with the function's role (sqs:ReceiveMessage, DeleteMessage,
# GetQueueAttributes). SAM's SQS event has no narrower form.
SQS_POLLING_POLICY = "arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole"
# Queue -> (its dead-letter queue, the function it feeds).
QUEUES = {
    "RawObjectsQueue": ("RawObjectsDeadLetterQueue", "TransformFunction"),
    "ReportRequestsQueue": ("ReportRequestsDeadLetterQueue", "ReportFunction"),
}
PLAYLIST = config.DEFAULT_PLAYLISTS[0]
MOMENT = datetime(2026, 10, 1, 12, 0, 0, tzinfo=UTC)


# --- loading and resolving (bench/template.py) ---------------------------------------------


@pytest.fixture(scope="module")
def template() -> dict:
    return load_template()


@pytest.fixture(scope="module")
def resolve(template) -> Resolver:
    return Resolver(template)


def props(template: dict, name: str) -> dict:
    return template["Resources"][name]["Properties"]


@pytest.fixture(scope="module")
def bucket(resolve, template) -> str:
    return resolve(props(template, "LakeBucket")["BucketName"])


# --- SAM translation ------------------------------------------------------------------------


def translate(sam_template: dict) -> dict:
    """The plain CloudFormation that the AWS::Serverless-2016-10-31 transform produces,
    computed offline. Local code paths are replaced by the S3 URIs `sam package` would put
    there; a managed policy *name* would need an IAM lookup, which fails the test instead."""
    import boto3
    from samtranslator.parser.parser import Parser
    from samtranslator.translator.arn_generator import ArnGenerator
    from samtranslator.translator.translator import Translator
    from samtranslator.utils.py27hash_fix import (
        to_py27_compatible_template,
        undo_mark_unicode_str_in_template,
    )

    def managed_policy_map():
        raise AssertionError("the template names a managed policy: SAM would ask IAM for it")

    document = copy.deepcopy(sam_template)
    for name in resources_of(document, "AWS::Serverless::Function"):
        properties = props(document, name)
        if "CodeUri" in properties:
            properties["CodeUri"] = f"s3://sam-artifacts-bucket/{name}.zip"
    parameter_values = {"AWS::AccountId": ACCOUNT, "AWS::StackName": PSEUDO["AWS::StackName"]}
    to_py27_compatible_template(document, parameter_values)
    # A session with a region and dummy keys: boto3 builds it locally, nothing is called.
    session = boto3.session.Session(
        region_name=REGION, aws_access_key_id="offline", aws_secret_access_key="offline"
    )
    previous_region = ArnGenerator.BOTO_SESSION_REGION_NAME
    try:
        translated = Translator(None, Parser(), boto_session=session).translate(
            document, parameter_values, get_managed_policy_map=managed_policy_map
        )
    finally:
        ArnGenerator.BOTO_SESSION_REGION_NAME = previous_region
    return json.loads(json.dumps(undo_mark_unicode_str_in_template(translated)))


def with_optional_resources(template: dict) -> dict:
    """The template with its conditional resources (the alarm topic and its key) switched on."""
    variant = copy.deepcopy(template)
    variant["Parameters"]["AlarmEmail"]["Default"] = "alarms@example.com"
    return variant


@pytest.fixture(scope="module")
def expanded(template) -> dict:
    return translate(template)


# --- 1, 2: cfn-lint -------------------------------------------------------------------------


def cfn_lint(path: Path) -> list[str]:
    from cfnlint.api import ManualArgs, lint_file

    # "I": informational checks too (e.g. explicit DeletionPolicy on stateful resources).
    matches = lint_file(
        path, config=ManualArgs(include_checks=["I"], regions=[REGION, "eu-west-1"])
    )
    return [f"{match.rule.id} {match.message} ({match.linenumber})" for match in matches]


def test_cfn_lint_passes_on_the_sam_template():
    assert cfn_lint(TEMPLATE) == []


def test_cfn_lint_passes_on_the_expanded_template(expanded, tmp_path):
    path = tmp_path / "expanded.json"
    path.write_text(json.dumps(expanded, indent=1), encoding="utf-8")
    assert cfn_lint(path) == []


def test_sam_expands_into_the_expected_resources(expanded):
    types = {name: resource["Type"] for name, resource in expanded["Resources"].items()}
    assert not [t for t in types.values() if t.startswith("AWS::Serverless::")]
    for name in FUNCTIONS.values():
        assert types[name] == "AWS::Lambda::Function"
        assert types[f"{name}Role"] == "AWS::IAM::Role"
    # Asynchronous invocations: the schedule's extract, and a direct report request. The
    # transform is only ever invoked by its queue (synchronously).
    for name in ("ExtractFunction", "ReportFunction"):
        assert types[f"{name}EventInvokeConfig"] == "AWS::Lambda::EventInvokeConfig"
    assert "TransformFunctionEventInvokeConfig" not in types
    assert "AWS::Scheduler::Schedule" in types.values()
    # Each queue feeds its function through one event source mapping that reports partial
    # batch failures; nothing invokes a function from S3 directly.
    mappings = {
        m["Properties"]["EventSourceArn"]["Fn::GetAtt"][0]: m["Properties"]
        for m in expanded["Resources"].values()
        if m["Type"] == "AWS::Lambda::EventSourceMapping"
    }
    assert set(mappings) == set(QUEUES)
    for queue, (_, function) in QUEUES.items():
        assert mappings[queue]["FunctionName"] == {"Ref": function}
        assert mappings[queue]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert "AWS::Lambda::Permission" not in types.values()
    bucket = expanded["Resources"]["LakeBucket"]
    assert set(bucket["Properties"]["NotificationConfiguration"]) == {"QueueConfigurations"}
    # S3 checks that it may send to the queue when the notification is set.
    assert "RawObjectsQueuePolicy" in as_list(bucket["DependsOn"])


# --- 3: checkov -----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def checkov_report(template, tmp_path_factory) -> dict:
    """One checkov run over the template, the variant with the optional resources on, and
    that variant expanded by SAM (so the generated roles are checked as well)."""
    folder = tmp_path_factory.mktemp("checkov")
    variant = with_optional_resources(template)
    (folder / "variant.json").write_text(json.dumps(variant, indent=1), encoding="utf-8")
    (folder / "expanded-variant.json").write_text(
        json.dumps(translate(variant), indent=1), encoding="utf-8"
    )
    command = [sys.executable, "-m", "checkov.main", "--framework", "cloudformation"]
    for path in (TEMPLATE, folder / "variant.json", folder / "expanded-variant.json"):
        command += ["-f", str(path)]
    # --skip-download: no call to Prisma Cloud for guidelines (there is no network here).
    command += ["--compact", "--skip-download", "-o", "json"]
    environment = {k: v for k, v in os.environ.items() if not k.startswith(("BC_", "PRISMA_"))}
    completed = subprocess.run(
        command, capture_output=True, text=True, timeout=240, cwd=ROOT, env=environment
    )
    assert completed.stdout.strip(), f"checkov printed nothing: {completed.stderr[-2000:]}"
    report = json.loads(completed.stdout)
    reports = report if isinstance(report, list) else [report]
    assert [r["check_type"] for r in reports] == ["cloudformation"], completed.stderr[-2000:]
    return reports[0]


def test_checkov_finds_no_failed_check(checkov_report):
    failed = [
        f"{c['check_id']} {c['resource']} ({c['file_path']}): {c['check_name']}"
        for c in checkov_report["results"]["failed_checks"]
    ]
    assert failed == []
    summary = checkov_report["summary"]
    assert summary["parsing_errors"] == 0
    assert summary["passed"] > 100  # three files were really checked
    files = {c["file_path"] for c in checkov_report["results"]["passed_checks"]}
    assert len(files) == 3


def suppressions(template: dict) -> list[tuple[str, str, str]]:
    found = []
    for name, resource in template["Resources"].items():
        for entry in resource.get("Metadata", {}).get("checkov", {}).get("skip", []):
            found.append((name, entry.get("id", ""), (entry.get("comment") or "").strip()))
    return found


def test_every_checkov_suppression_has_a_reason_and_is_used(template, checkov_report):
    found = suppressions(template)
    assert found, "expected the documented suppressions"
    for name, check_id, comment in found:
        assert re.fullmatch(r"CKV2?_AWS_\d+", check_id), (name, check_id)
        assert len(comment) >= 40, f"{name} {check_id}: the suppression needs a real reason"
    skipped = {
        (c["resource"].split(".", 1)[1], c["check_id"])
        for c in checkov_report["results"]["skipped_checks"]
    }
    unused = [(name, check_id) for name, check_id, _ in found if (name, check_id) not in skipped]
    assert unused == [], "suppressions checkov never applies: remove them"


# --- 4: IAM ---------------------------------------------------------------------------------


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def function_statements(template: dict, logical_id: str) -> list[dict]:
    """The inline statements of a SAM function's Policies (only inline documents allowed)."""
    statements = []
    for policy in props(template, logical_id).get("Policies", []):
        assert isinstance(policy, dict) and "Statement" in policy, (
            f"{logical_id}: only inline policy documents, no managed policies or templates"
        )
        statements += as_list(policy["Statement"])
    return statements


def role_statements(role: dict) -> list[dict]:
    statements = []
    for policy in role["Properties"].get("Policies", []):
        statements += as_list(policy["PolicyDocument"]["Statement"])
    return statements


def all_identity_statements(template: dict) -> list[tuple[str, dict]]:
    found = []
    for name in resources_of(template, "AWS::Serverless::Function"):
        found += [(name, s) for s in function_statements(template, name)]
    for name, role in resources_of(template, "AWS::IAM::Role").items():
        found += [(name, s) for s in role_statements(role)]
    return found


def check_statement(owner: str, statement: dict) -> None:
    assert "NotAction" not in statement and "NotResource" not in statement, owner
    actions = [a.lower() for a in as_list(statement["Action"])]
    assert "*" not in actions, f"{owner}: Action '*'"
    if statement["Effect"] != "Allow":
        return
    data_actions = [a for a in actions if a.startswith(DATA_SERVICES)]
    for action in data_actions:
        service, _, name = action.partition(":")
        assert name != "*", f"{owner}: {action} grants a whole service"
    if data_actions:
        assert "*" not in as_list(statement["Resource"]), f"{owner}: {data_actions} on Resource '*'"


def test_no_data_action_on_every_resource(template, expanded):
    checked = 0
    for owner, statement in all_identity_statements(template) + all_identity_statements(expanded):
        check_statement(owner, statement)
        checked += 1
    assert checked > 20


def test_only_the_managed_policies_sam_adds(template, expanded):
    for name, role in resources_of(template, "AWS::IAM::Role").items():
        assert not role["Properties"].get("ManagedPolicyArns"), name
    fed_by_a_queue = {f"{function}Role" for _, function in QUEUES.values()}
    for name, role in resources_of(expanded, "AWS::IAM::Role").items():
        managed = set(role["Properties"].get("ManagedPolicyArns", []))
        if name in fed_by_a_queue:
            assert SQS_POLLING_POLICY in managed, name
        allowed = ALLOWED_MANAGED_POLICIES | (
            {SQS_POLLING_POLICY} if name in fed_by_a_queue else set()
        )
        assert managed <= allowed, name


class Policy:
    """Allow-statements of one principal, evaluated like IAM for what this template uses:
    wildcard actions and resources, StringLike/StringEquals conditions (a condition key
    missing from the request makes the statement not apply)."""

    def __init__(self, statements: list[dict], resolve: Resolver) -> None:
        self.statements = [resolve(s) for s in statements if s["Effect"] == "Allow"]

    def allows(self, action: str, resource: str, context: dict | None = None) -> bool:
        return any(self._matches(s, action, resource, context or {}) for s in self.statements)

    @staticmethod
    def _matches(statement: dict, action: str, resource: str, context: dict) -> bool:
        actions = as_list(statement["Action"])
        if not any(fnmatch.fnmatchcase(action.lower(), a.lower()) for a in actions):
            return False
        if not any(fnmatch.fnmatchcase(resource, r) for r in as_list(statement["Resource"])):
            return False
        for operator, tests in statement.get("Condition", {}).items():
            assert operator in ("StringLike", "StringEquals"), operator
            for key, wanted in tests.items():
                if key not in context:
                    return False
                value = context[key]
                if operator == "StringLike":
                    if not any(fnmatch.fnmatchcase(value, w) for w in as_list(wanted)):
                        return False
                elif value not in as_list(wanted):
                    return False
        return True


@pytest.fixture(scope="module")
def policies(template, resolve) -> dict[str, Policy]:
    return {
        short: Policy(function_statements(template, logical_id), resolve)
        for short, logical_id in FUNCTIONS.items()
    }


# Keys as etl_lib writes them: the raw zone's by its own functions, the tables' where
# pyiceberg puts them (<warehouse>/<database>.db/<table>/{data,metadata}/).
RAW_KEY = layout.raw_key(PLAYLIST, MOMENT)
TABLE = f"{iceberg.WAREHOUSE}/{config.Settings().glue_database}.db/chart_entries"
KEYS = {
    "raw": RAW_KEY,
    "heartbeat": layout.heartbeat_key(MOMENT, [PLAYLIST]),
    "state": layout.last_snapshot_key(PLAYLIST),
    "table_data": f"{TABLE}/data/dt=2026-10-01/00000-0-5f1d2c3b.parquet",
    "table_metadata": f"{TABLE}/metadata/00001-5f1d2c3b.metadata.json",
    "quarantine": layout.quarantine_key(RAW_KEY),
    "quarantine_reason": layout.quarantine_reason_key(RAW_KEY),
    "report": f"reports/{PLAYLIST}/2026-10-01/status.json",
    "athena_result": "athena-results/0b3c1d52-query.csv",
}
# What each function writes (for extract and transform, what the calls recorded below show).
WRITTEN = {
    "extract": ("raw", "heartbeat", "state"),
    "transform": ("table_data", "table_metadata", "quarantine", "quarantine_reason"),
    "report": ("report", "athena_result"),
}
# The report queries Athena, which moto does not run: what it needs, from its code.
REPORT_NEEDS = [
    ("s3:GetObject", "table_data"),
    ("s3:GetObject", "table_metadata"),
    ("s3:PutObject", "report"),
    ("s3:GetObject", "report"),
    ("s3:PutObject", "athena_result"),
    ("s3:GetObject", "athena_result"),
]
WRITES = ("s3:PutObject", "s3:DeleteObject", "s3:DeleteObjectVersion", "s3:RestoreObject")


def test_report_may_read_the_tables_and_write_its_results(policies, bucket):
    report = policies["report"]
    for action, key in REPORT_NEEDS:
        assert report.allows(action, f"arn:aws:s3:::{bucket}/{KEYS[key]}"), (action, key)
    # A report file not written yet reads as 404 only to a caller that may list the bucket.
    assert report.allows("s3:ListBucket", f"arn:aws:s3:::{bucket}")


@pytest.mark.parametrize("function", sorted(WRITTEN))
def test_each_function_writes_nowhere_else(function, policies, bucket):
    policy = policies[function]
    allowed_writes = {KEYS[key] for key in WRITTEN[function]}
    for key in KEYS.values():
        if key in allowed_writes:
            continue
        for action in WRITES:
            assert not policy.allows(action, f"arn:aws:s3:::{bucket}/{key}"), (action, key)
    for action in ("s3:DeleteObject", "s3:PutBucketPolicy", "s3:PutLifecycleConfiguration"):
        assert not policy.allows(action, f"arn:aws:s3:::{bucket}/{KEYS['raw']}")
        assert not policy.allows(action, f"arn:aws:s3:::{bucket}")


def test_transform_cannot_retrigger_itself(template, policies, bucket):
    """The transform is notified (through its queue) of raw/*.json and never writes there;
    what it writes (warehouse/, quarantine/) is outside the notification's filter."""
    notifications = props(template, "LakeBucket")["NotificationConfiguration"]
    [notification] = notifications["QueueConfigurations"]
    assert notification["Queue"] == {"Fn::GetAtt": ["RawObjectsQueue", "Arn"]}
    rules = {r["Name"]: r["Value"] for r in notification["Filter"]["S3Key"]["Rules"]}
    assert rules == {"prefix": "raw/", "suffix": ".json"}
    policy = policies["transform"]
    any_raw_object = f"arn:aws:s3:::{bucket}/raw/any/key.json"
    for action in ("s3:PutObject", "s3:CopyObject", "s3:PutObjectAcl", "s3:RestoreObject"):
        assert not policy.allows(action, any_raw_object), action
    assert RAW_KEY.startswith(rules["prefix"]) and RAW_KEY.endswith(rules["suffix"])
    for key in WRITTEN["transform"]:
        assert not KEYS[key].startswith(rules["prefix"]), key


def parameter_arn(name: str) -> str:
    return f"arn:aws:ssm:{REGION}:{ACCOUNT}:parameter{name}"


def test_only_the_extract_touches_the_credentials_parameter(template, resolve, policies):
    name = credentials_parameter(template, resolve)
    assert name == "/spotify-charts/spotify"  # /<NamePrefix>/spotify when none is given
    extract = policies["extract"]
    for action in ("ssm:GetParameter", "ssm:PutParameter"):
        assert extract.allows(action, parameter_arn(name)), action
        for other in ("/spotify-charts/other", "/spotify-charts/spotify/below", "/other"):
            assert not extract.allows(action, parameter_arn(other)), (action, other)
    for action in ("ssm:DeleteParameter", "ssm:GetParametersByPath", "ssm:LabelParameterVersion"):
        assert not extract.allows(action, parameter_arn(name)), action
    # No KMS grant: the AWS-managed key aws/ssm encrypts the parameter, and its key policy
    # lets every principal of the account use it through Parameter Store.
    statements = function_statements(template, "ExtractFunction")
    actions = [a for statement in statements for a in as_list(statement["Action"])]
    assert not [a for a in actions if a.lower().startswith("kms:")]
    for function in ("transform", "report"):
        assert not policies[function].allows("ssm:GetParameter", parameter_arn(name))
        env = resolve(props(template, FUNCTIONS[function])["Environment"]["Variables"])
        assert "SPOTIFY_ETL_CREDENTIALS_PARAMETER" not in env


def test_a_given_credentials_parameter_name_is_used_everywhere(template):
    given = Resolver(template, {"CredentialsParameterName": "/team/charts/spotify"})
    assert credentials_parameter(template, given) == "/team/charts/spotify"
    assert given(template["Outputs"]["CredentialsParameterName"]["Value"]) == (
        "/team/charts/spotify"
    )
    extract = Policy(function_statements(template, "ExtractFunction"), given)
    assert extract.allows("ssm:PutParameter", parameter_arn("/team/charts/spotify"))
    assert not extract.allows("ssm:PutParameter", parameter_arn("/spotify-charts/spotify"))
    # The ARN is built as arn:...:parameter<name>: a name must start with a slash.
    pattern = template["Parameters"]["CredentialsParameterName"]["AllowedPattern"]
    for accepted in ("", "/spotify", "/team/charts/spotify", "/a_b/c-d.e"):
        assert re.fullmatch(pattern, accepted), accepted
    for refused in ("spotify", "/", "/team//spotify", "/team/spotify/", "/a b"):
        assert not re.fullmatch(pattern, refused), refused


def test_glue_access_is_limited_to_the_lake_database(policies, resolve, template):
    report, transform = policies["report"], policies["transform"]
    workgroup = resolve(props(template, "AthenaWorkGroup")["Name"])
    database = resolve({"Ref": "GlueDatabase"})
    prefix = f"arn:aws:%s:{REGION}:{ACCOUNT}:"
    queries = ("StartQueryExecution", "GetQueryExecution", "GetQueryResults")
    for action in queries:
        assert report.allows(f"athena:{action}", prefix % "athena" + f"workgroup/{workgroup}")
        assert not report.allows(f"athena:{action}", prefix % "athena" + "workgroup/primary")
    for resource in ("catalog", f"database/{database}", f"table/{database}/daily_chart"):
        assert report.allows("glue:GetTable", prefix % "glue" + resource)
    assert not report.allows("glue:GetTable", prefix % "glue" + "table/other_db/t")
    for action in ("glue:CreateTable", "glue:UpdateTable", "glue:DeleteTable"):
        assert not report.allows(action, prefix % "glue" + f"table/{database}/snapshots")
    for function in ("extract", "transform"):
        assert not policies[function].allows("athena:StartQueryExecution", "*")
    # The transform commits the tables of its database, and deletes none.
    assert transform.allows("glue:UpdateTable", prefix % "glue" + f"table/{database}/snapshots")
    assert not transform.allows("glue:UpdateTable", prefix % "glue" + "table/other_db/t")
    assert not transform.allows("glue:CreateDatabase", prefix % "glue" + "database/other_db")
    assert not transform.allows("glue:DeleteTable", prefix % "glue" + f"table/{database}/tracks")
    assert not transform.allows("glue:DeleteDatabase", prefix % "glue" + f"database/{database}")


# --- 5: Glue --------------------------------------------------------------------------------


def test_glue_holds_the_database_and_pyiceberg_the_tables(template, resolve):
    database = props(template, "GlueDatabase")
    assert resolve(database["DatabaseInput"]["Name"]) == config.Settings().glue_database
    assert resources_of(template, "AWS::Glue::Table") == {}
    assert resources_of(template, "AWS::Glue::Crawler") == {}
    # The functions that open the tables name the stack's database, not the default.
    for function in ("transform", "report"):
        env = props(template, FUNCTIONS[function])["Environment"]["Variables"]
        assert env["SPOTIFY_ETL_GLUE_DATABASE"] == {"Ref": "GlueDatabase"}, function
    renamed = Resolver(template, {"GlueDatabaseName": "charts_dev"})
    env = renamed(props(template, "TransformFunction")["Environment"]["Variables"])
    assert config.table_settings(env).namespace == "charts_dev"


# --- 6: the rest of the deployment ----------------------------------------------------------


def test_lake_bucket_is_private_encrypted_versioned_and_tls_only(template, resolve):
    bucket = resolve(props(template, "LakeBucket"))
    [encryption] = bucket["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert encryption["ServerSideEncryptionByDefault"]["SSEAlgorithm"] in ("AES256", "aws:kms")
    assert set(bucket["PublicAccessBlockConfiguration"].values()) == {True}
    assert len(bucket["PublicAccessBlockConfiguration"]) == 4
    assert bucket["VersioningConfiguration"] == {"Status": "Enabled"}
    assert bucket["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    assert bucket["LoggingConfiguration"]["DestinationBucketName"] == "<AccessLogBucket>"
    assert template["Resources"]["LakeBucket"]["DeletionPolicy"] == "Retain"
    policy = props(template, "LakeBucketPolicy")
    assert policy["Bucket"] == {"Ref": "LakeBucket"}
    [deny] = [s for s in policy["PolicyDocument"]["Statement"] if s["Effect"] == "Deny"]
    assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert deny["Principal"] == "*" and deny["Action"] == "s3:*"
    assert len(deny["Resource"]) == 2  # the bucket and its objects


def test_lifecycle_keeps_raw_and_expires_results_and_old_versions(template, resolve):
    def rules(resolver: Resolver) -> dict[str, dict]:
        lifecycle = resolver(props(template, "LakeBucket")["LifecycleConfiguration"])
        return {rule.get("Prefix", ""): rule for rule in lifecycle["Rules"]}

    by_prefix = rules(resolve)
    raw = by_prefix["raw/"]
    assert raw["Status"] == "Enabled"
    assert [t["StorageClass"] for t in raw["Transitions"]] == ["STANDARD_IA"]
    assert "ExpirationInDays" not in raw  # raw is never deleted by default
    assert "ExpirationInDays" in rules(Resolver(template, {"RawExpirationDays": "3650"}))["raw/"]
    results = by_prefix["athena-results/"]
    assert results["ExpirationInDays"] == resolve({"Ref": "QueryResultsRetentionDays"})
    everything = by_prefix[""]
    assert "NoncurrentVersionExpiration" in everything
    assert "AbortIncompleteMultipartUpload" in everything
    for prefix in ("warehouse/", "reports/", "_state/", "heartbeats/", "quarantine/"):
        assert prefix not in by_prefix  # no rule deletes the lake's data


def test_functions_are_wired_as_the_handlers_expect(template, resolve, bucket):
    package = importlib.import_module("lambdas.package")
    architecture = template["Parameters"]["Architecture"]["Default"]
    assert architecture in package.WHEEL_ARCH  # lambdas/package.py can install for it
    dockerfile = (ROOT / "lambdas" / "Dockerfile").read_text(encoding="utf-8")
    python = ".".join(map(str, package.IMAGE_PYTHON))
    assert f"FROM public.ecr.aws/lambda/python:{python}\n" in dockerfile
    functions = {**FUNCTIONS, "views": "AthenaViewsFunction"}
    assert set(functions) == set(package.FUNCTIONS)
    for short, logical_id in functions.items():
        function = template["Resources"][logical_id]
        properties = resolve(function["Properties"])
        assert properties["FunctionName"] == f"spotify-charts-{short}"
        assert 0 < properties["Timeout"] <= 900
        assert properties["Tracing"] == "Active"
        assert properties["Architectures"] == [architecture]
        # One image for every function (lambdas/Dockerfile, built from the repository
        # root), each running its own handler, copied where the command finds it.
        assert properties["PackageType"] == "Image"
        assert function["Properties"]["ImageUri"] == {"Ref": "ImageUri"}
        assert properties["ImageConfig"] == {"Command": [f"lambdas.{short}.app.handler"]}
        assert "def handler(" in (ROOT / "lambdas" / short / "app.py").read_text()
        assert f"COPY lambdas/{short}/app.py ${{LAMBDA_TASK_ROOT}}/lambdas/{short}/" in dockerfile
        metadata = function["Metadata"]
        assert (INFRA / metadata["DockerContext"]).resolve() == ROOT
        assert metadata["Dockerfile"] == "lambdas/Dockerfile"
        assert metadata["DockerTag"] == f"python{python}"
        assert not {"Runtime", "Handler", "CodeUri", "Layers"} & set(properties)
        if short != "views":
            assert properties["Environment"]["Variables"]["SPOTIFY_ETL_LAKE"] == f"s3://{bucket}"
    extract = resolve(props(template, "ExtractFunction"))
    assert extract["ReservedConcurrentExecutions"] == 1
    budget = extract["Environment"]["Variables"]["SPOTIFY_ETL_RATE_LIMIT_BUDGET"]
    assert extract["Timeout"] > float(budget)
    assert float(template["Parameters"]["RateLimitBudgetSeconds"]["MaxValue"]) < extract["Timeout"]
    [schedule] = extract["Events"].values()
    assert schedule["Type"] in ("ScheduleV2", "Schedule")
    assert props(template, "ExtractFunction")["Events"]["Hourly"]["Properties"][
        "ScheduleExpression"
    ] == {"Ref": "Schedule"}
    assert template["Parameters"]["Schedule"]["Default"] == "rate(1 hour)"
    report = resolve(props(template, "ReportFunction"))
    assert report["MemorySize"] >= 2048
    # raw-objects queue -> transform -> report-requests queue -> report.
    transform = props(template, "TransformFunction")
    [source] = transform["Events"].values()
    assert source["Type"] == "SQS"
    assert source["Properties"]["Queue"] == {"Fn::GetAtt": ["RawObjectsQueue", "Arn"]}
    assert source["Properties"]["FunctionResponseTypes"] == ["ReportBatchItemFailures"]
    assert source["Properties"]["BatchSize"] >= 10
    assert source["Properties"]["MaximumBatchingWindowInSeconds"] > 0
    # Destinations of asynchronous invocations would never fire for a queue's batches.
    assert "EventInvokeConfig" not in transform
    variables = transform["Environment"]["Variables"]
    assert variables["SPOTIFY_ETL_REPORT_QUEUE_URL"] == {"Ref": "ReportRequestsQueue"}
    [requests] = props(template, "ReportFunction")["Events"].values()
    assert requests["Type"] == "SQS"
    assert requests["Properties"]["Queue"] == {"Fn::GetAtt": ["ReportRequestsQueue", "Arn"]}
    # Reports are gathered over minutes, and run at most two at a time (Athena's quota):
    # the event source never hands out more batches than the reservation can run.
    assert requests["Properties"]["MaximumBatchingWindowInSeconds"] >= 60
    reserved = report["ReservedConcurrentExecutions"]
    assert 1 <= reserved <= 5
    assert requests["Properties"]["ScalingConfig"]["MaximumConcurrency"] <= reserved


def test_environment_is_what_settings_read(template, resolve, bucket):
    """Every SPOTIFY_ETL_* variable is one config.py reads, and Settings built from each
    function's environment point at this stack's lake, database, workgroup and results."""
    source = (ROOT / "etl_lib" / "config.py").read_text(encoding="utf-8")
    read_by_settings = set(re.findall(r'"(SPOTIFY_ETL_[A-Z_]+)"', source))
    for logical_id in FUNCTIONS.values():
        env = resolve(props(template, logical_id)["Environment"]["Variables"])
        assert {k for k in env if k.startswith("SPOTIFY_ETL_")} <= read_by_settings, logical_id
        settings = config.Settings.from_env(env, credentials=Credentials())
        assert settings.lake == f"s3://{bucket}"
    extract = config.Settings.from_env(
        resolve(props(template, "ExtractFunction")["Environment"]["Variables"]),
        credentials=Credentials(),
    )
    assert extract.playlists == config.DEFAULT_PLAYLISTS
    assert extract.source == "api"
    assert extract.credentials_parameter == credentials_parameter(template, resolve)
    assert template["Parameters"]["Source"]["AllowedValues"] == list(config.SOURCES)
    report_env = resolve(props(template, "ReportFunction")["Environment"]["Variables"])
    report = config.Settings.from_env(report_env, credentials=Credentials())
    workgroup = resolve(props(template, "AthenaWorkGroup"))
    assert report.athena_workgroup == workgroup["Name"]
    assert report.glue_database == "spotify_charts"
    # The transform's tables go to the database the report queries.
    transform_env = resolve(props(template, "TransformFunction")["Environment"]["Variables"])
    assert config.table_settings(transform_env).namespace == report.glue_database
    results = workgroup["WorkGroupConfiguration"]["ResultConfiguration"]["OutputLocation"]
    assert report.athena_results == results == f"s3://{bucket}/athena-results/"


def test_failed_invocations_go_to_an_encrypted_queue(template, resolve):
    queue = props(template, "FailedInvocationsQueue")
    assert queue.get("SqsManagedSseEnabled") is True or "KmsMasterKeyId" in queue
    # The functions invoked asynchronously (the transform is fed by its queue only).
    for logical_id in ("ExtractFunction", "ReportFunction"):
        invoke = props(template, logical_id)["EventInvokeConfig"]
        assert isinstance(invoke["MaximumRetryAttempts"], int)
        assert invoke["DestinationConfig"]["OnFailure"] == {
            "Type": "SQS",
            "Destination": {"Fn::GetAtt": ["FailedInvocationsQueue", "Arn"]},
        }
    schedule = props(template, "ExtractFunction")["Events"]["Hourly"]["Properties"]
    assert schedule["DeadLetterConfig"] == {
        "Arn": {"Fn::GetAtt": ["FailedInvocationsQueue", "Arn"]}
    }


def test_queues_are_encrypted_tls_only_and_end_in_a_watched_dead_letter_queue(template, resolve):
    queues = resources_of(template, "AWS::SQS::Queue")
    policies = {
        policy["Properties"]["Queues"][0]["Ref"]: policy["Properties"]["PolicyDocument"]
        for policy in resources_of(template, "AWS::SQS::QueuePolicy").values()
    }
    watched = watched_queues(template, resolve)
    for name, queue in queues.items():
        properties = queue["Properties"]
        assert properties["SqsManagedSseEnabled"] is True, name
        [deny] = [s for s in policies[name]["Statement"] if s["Effect"] == "Deny"]
        assert deny["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}, name
        assert deny["Resource"] == {"Fn::GetAtt": [name, "Arn"]}, name
    for name, (dead_letter, function) in QUEUES.items():
        properties = resolve(queues[name]["Properties"])
        redrive = properties["RedrivePolicy"]
        assert redrive["deadLetterTargetArn"] == f"<{dead_letter}.Arn>"
        assert redrive["maxReceiveCount"] == 5
        # A message keeps its first enqueue time in the dead-letter queue: kept longer there.
        kept = resolve(queues[dead_letter]["Properties"])["MessageRetentionPeriod"]
        assert kept == 14 * 24 * 3600 > properties["MessageRetentionPeriod"]
        assert f"<{dead_letter}.QueueName>" in watched, dead_letter
        # AWS's advice: at least 6 x the function's timeout, plus its batching window.
        [source] = props(template, function)["Events"].values()
        assert source["Properties"]["Queue"] == {"Fn::GetAtt": [name, "Arn"]}
        timeout = resolve(props(template, function)["Timeout"])
        window = source["Properties"]["MaximumBatchingWindowInSeconds"]
        assert properties["VisibilityTimeout"] >= 6 * timeout + window, name
    assert "<FailedInvocationsQueue.QueueName>" in watched


def test_only_the_lake_bucket_notifies_the_raw_objects_queue(template, resolve, bucket):
    [allow] = [
        s
        for s in resolve(props(template, "RawObjectsQueuePolicy"))["PolicyDocument"]["Statement"]
        if s["Effect"] == "Allow"
    ]
    assert allow["Principal"] == {"Service": "s3.amazonaws.com"}
    assert allow["Action"] == "sqs:SendMessage"
    assert allow["Resource"] == "<RawObjectsQueue.Arn>"
    assert allow["Condition"] == {
        "ArnLike": {"aws:SourceArn": f"arn:aws:s3:::{bucket}"},
        "StringEquals": {"aws:SourceAccount": ACCOUNT},
    }
    # The other queues take messages from this account's roles only: no service is allowed.
    for name in (
        "RawObjectsDeadLetterQueue",
        "ReportRequestsQueue",
        "ReportRequestsDeadLetterQueue",
    ):
        statements = props(template, f"{name}Policy")["PolicyDocument"]["Statement"]
        assert [s["Effect"] for s in statements] == ["Deny"], name
    # The bucket's name is computed, so the queue policy names it without a reference back.
    assert resolve(props(template, "LakeBucket")["BucketName"]) == bucket


def test_only_the_transform_and_the_report_request_reports(policies):
    """The transform asks for reports after a load; the report asks again for those it had
    no time to start. Neither sends anywhere else, and the extract sends nothing."""
    queue = "<ReportRequestsQueue.Arn>"
    for function in ("transform", "report"):
        assert policies[function].allows("sqs:SendMessage", queue), function
        assert not policies[function].allows("sqs:SendMessage", "<RawObjectsQueue.Arn>")
        assert not policies[function].allows("sqs:SendMessage", "<FailedInvocationsQueue.Arn>")
    assert not policies["extract"].allows("sqs:SendMessage", queue)


def test_each_function_logs_to_its_own_group_with_retention(template, resolve):
    groups = resources_of(template, "AWS::Logs::LogGroup")
    for logical_id in FUNCTIONS.values():
        properties = props(template, logical_id)
        group_id = properties["LoggingConfig"]["LogGroup"]["Ref"]
        group = resolve(groups[group_id]["Properties"])
        assert group["LogGroupName"] == "/aws/lambda/" + resolve(properties["FunctionName"])
        assert group["RetentionInDays"] == resolve({"Ref": "LogRetentionDays"})


def test_athena_workgroup_enforces_its_limits(template, resolve):
    configuration = resolve(props(template, "AthenaWorkGroup")["WorkGroupConfiguration"])
    assert configuration["EnforceWorkGroupConfiguration"] is True
    assert configuration["PublishCloudWatchMetricsEnabled"] is True
    assert configuration["BytesScannedCutoffPerQuery"] == resolve(
        {"Ref": "AthenaBytesScannedCutoff"}
    )
    assert int(configuration["BytesScannedCutoffPerQuery"]) == 1024**3
    assert configuration["ResultConfiguration"]["EncryptionConfiguration"]["EncryptionOption"]


def test_the_credentials_are_never_in_the_template(template):
    """The stack names the credentials' SecureString; its value is the user's to put. No
    secret or parameter resource holds them (a Secrets Manager secret is $0.40 a month)."""
    assert not resources_of(template, "AWS::SecretsManager::Secret", "AWS::SSM::Parameter")
    for name, spec in template["Parameters"].items():
        assert not re.search(r"secret|token|password|key$", name, re.IGNORECASE), name
        assert "NoEcho" not in spec


def watched_queues(template: dict, resolve: Resolver) -> set[str]:
    """The queues an alarm watches for any visible message, as ``<LogicalId.QueueName>``."""
    alarms = [
        resolve(a["Properties"]) for a in resources_of(template, "AWS::CloudWatch::Alarm").values()
    ]
    return {
        a["Dimensions"][0]["Value"]
        for a in alarms
        if a.get("Namespace") == "AWS/SQS"
        and a["MetricName"] == "ApproximateNumberOfMessagesVisible"
        and a["Threshold"] == 0
        and a["ComparisonOperator"] == "GreaterThanThreshold"
    }


def test_alarms_cover_errors_and_freshness(template, resolve):
    alarms = {
        name: resolve(resource["Properties"])
        for name, resource in resources_of(template, "AWS::CloudWatch::Alarm").items()
    }
    for logical_id in FUNCTIONS.values():
        function_name = resolve(props(template, logical_id)["FunctionName"])
        [alarm] = [
            a
            for a in alarms.values()
            if a.get("Namespace") == "AWS/Lambda"
            and a["MetricName"] == "Errors"
            and a["Dimensions"] == [{"Name": "FunctionName", "Value": function_name}]
        ]
        assert alarm["Period"] == 300 and alarm["Threshold"] == 0
        assert alarm["ComparisonOperator"] == "GreaterThanThreshold"
    freshness = alarms["NoSuccessfulExtractAlarm"]
    assert freshness["Namespace"] == "SpotifyChartsLake"
    assert freshness["Period"] * freshness["EvaluationPeriods"] == 3 * 3600
    assert freshness["TreatMissingData"] == "breaching"
    assert freshness["ComparisonOperator"] == "LessThanThreshold" and freshness["Threshold"] == 1
    # Custom metrics: published by the handler (Powertools, namespace SpotifyChartsLake) under
    # the dimension service = POWERTOOLS_SERVICE_NAME of that function.
    services = {}
    for short, logical_id in FUNCTIONS.items():
        variables = resolve(props(template, logical_id)["Environment"]["Variables"])
        services[variables["POWERTOOLS_SERVICE_NAME"]] = short
    custom = [a for a in alarms.values() if a.get("Namespace") == "SpotifyChartsLake"]
    assert len(custom) >= 3
    for alarm in custom:
        [dimension] = alarm["Dimensions"]
        assert dimension["Name"] == "service"
        short = services[dimension["Value"]]
        handler = (ROOT / "lambdas" / short / "app.py").read_text(encoding="utf-8")
        assert 'namespace="SpotifyChartsLake"' in handler
        assert f'"{alarm["MetricName"]}"' in handler, (short, alarm["MetricName"])
    # Notifications only when an email is given, through an encrypted topic.
    assert not resolve.condition("HasAlarmEmail")
    assert Resolver(template, {"AlarmEmail": "ops@example.com"}).condition("HasAlarmEmail")
    assert all("AlarmActions" not in alarm for alarm in alarms.values())
    with_email = Resolver(template, {"AlarmEmail": "ops@example.com"})
    for name, resource in resources_of(template, "AWS::CloudWatch::Alarm").items():
        assert with_email(resource["Properties"])["AlarmActions"] == ["<AlarmTopic>"], name
    topic = template["Resources"]["AlarmTopic"]
    assert topic["Condition"] == "HasAlarmEmail"
    assert topic["Properties"]["KmsMasterKeyId"]


def test_the_alarms_stay_within_the_free_alarm_metrics(template):
    """CloudWatch's always-free tier is 10 alarm metrics a month; an alarm on metric math is
    billed for every metric it reads (``cost.alarm_metrics`` counts them), and a composite
    alarm is never free."""
    standard, composite = cost.alarm_metrics(template)
    assert standard <= cost.FREE["alarm_metrics"] == 10
    assert composite == 0


def test_a_throttled_invocation_that_never_runs_ends_where_an_alarm_watches(template, resolve):
    """No Throttles alarms: each way a function is invoked retries a throttle, then hands the
    event to a queue with an alarm. SQS event sources redeliver until the queue's receive
    limit moves the message to its dead-letter queue; asynchronous invocations (the
    schedule's, CloudFormation's, a direct one) go to their on-failure destination, and
    deliveries the scheduler could not make to its dead-letter queue."""
    watched = watched_queues(template, resolve)
    queues = resources_of(template, "AWS::SQS::Queue")
    alarmed = {
        resolve(a["Properties"])["MetricName"]
        for a in resources_of(template, "AWS::CloudWatch::Alarm").values()
    }
    assert "Throttles" not in alarmed
    functions = resources_of(template, "AWS::Serverless::Function")
    assert set(FUNCTIONS.values()) < set(functions)
    for logical_id, function in functions.items():
        properties = function["Properties"]
        ends = []
        for source in properties.get("Events", {}).values():
            if source["Type"] == "SQS":
                queue = source["Properties"]["Queue"]["Fn::GetAtt"][0]
                redrive = queues[queue]["Properties"]["RedrivePolicy"]
                ends.append(redrive["deadLetterTargetArn"]["Fn::GetAtt"][0])
            else:
                assert source["Type"] == "ScheduleV2", (logical_id, source["Type"])
                ends.append(source["Properties"]["DeadLetterConfig"]["Arn"]["Fn::GetAtt"][0])
        if "EventInvokeConfig" in properties:
            destination = properties["EventInvokeConfig"]["DestinationConfig"]["OnFailure"]
            ends.append(destination["Destination"]["Fn::GetAtt"][0])
        assert ends, f"{logical_id}: a throttled invocation ends nowhere"
        for queue in ends:
            assert f"<{queue}.QueueName>" in watched, (logical_id, queue)


def test_parameters_and_outputs(template):
    parameters = template["Parameters"]
    assert parameters["Playlists"]["Default"] == ",".join(config.DEFAULT_PLAYLISTS)
    assert parameters["GlueDatabaseName"]["Default"] == config.Settings().glue_database
    for name in (
        "NamePrefix",
        "Schedule",
        "AthenaBytesScannedCutoff",
        "LogRetentionDays",
        "AlarmEmail",
        "RawTransitionDays",
        "QueryResultsRetentionDays",
        "Source",
        "CredentialsParameterName",
        "ImageUri",
    ):
        assert name in parameters, name
    outputs = template["Outputs"]
    for name in (
        "LakeBucketName",
        "LakeRoot",
        "ExtractFunctionName",
        "TransformFunctionName",
        "ReportFunctionName",
        "AthenaWorkGroupName",
        "CredentialsParameterName",
        "RawObjectsQueueUrl",
        "RawObjectsDeadLetterQueueUrl",
        "ReportRequestsQueueUrl",
        "ReportRequestsDeadLetterQueueUrl",
    ):
        assert name in outputs, name
