"""``spotify-etl doctor --aws``, the first-deployment check, against moto's server.

A stack is set up on moto on 127.0.0.1 (not AWS): the lake bucket, the Glue database with the
six Iceberg tables and the views (``catalog --engine athena``, as the deploy steps say), an
Athena workgroup, the Spotify credentials' SSM SecureString and the extract's schedule. Every
check then passes, and each failure a user can meet makes its own line FAIL with its fix while
the others still run.

What moto cannot show, and these tests therefore do not prove:
- moto's Athena runs no SQL: every query "succeeds" with canned results, so on moto ``SELECT 1``
  and the views' ``LIMIT 1`` prove only that the workgroup exists and takes queries. A view
  Athena cannot find, and a query Athena never finishes, are shown with a stand-in Athena
  client instead.
- moto answers a HEAD of a missing key with 404 whatever the caller may do; on AWS a caller
  without ``s3:ListBucket`` gets 403. The 403 line is shown with a stand-in S3 client.
"""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.exceptions import ClientError

from etl_lib import cli
from etl_lib.cli import doctor
from etl_lib.config import Settings
from etl_lib.transform import iceberg, schemas
from etl_lib.warehouse.sql import shipped

BUCKET = "charts-doctor-lake"
LAKE = f"s3://{BUCKET}/lake"
WORKGROUP = "charts"
RESULTS = f"s3://{BUCKET}/athena-results/"
PARAMETER = "/charts/spotify"
SCHEDULE = "charts-extract"
CREDENTIALS = {"client_id": "the-client-id", "client_secret": "the-client-secret-value"}
VIEWS = list(shipped("views"))
# identity, bucket, probe, missing key, database, the tables, workgroup, the views,
# credentials parameter, schedule.
LINES = 1 + 3 + 1 + len(schemas.TABLES) + 1 + len(VIEWS) + 2


@pytest.fixture
def stack(moto_endpoint, monkeypatch) -> dict[str, str]:
    """A deployed stack on moto, and the environment that names its parts."""
    iceberg.forget(LAKE)
    boto3.client("s3").create_bucket(Bucket=BUCKET)
    boto3.client("athena").create_work_group(
        Name=WORKGROUP,
        Configuration={"ResultConfiguration": {"OutputLocation": RESULTS}},
    )
    put_credentials(CREDENTIALS)
    boto3.client("scheduler").create_schedule(
        Name=SCHEDULE,
        ScheduleExpression="rate(1 hour)",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={
            "Arn": "arn:aws:lambda:us-east-1:123456789012:function:charts-extract",
            "RoleArn": "arn:aws:iam::123456789012:role/charts-scheduler",
        },
        State="ENABLED",
    )
    environment = {
        "SPOTIFY_ETL_LAKE": LAKE,
        "SPOTIFY_ETL_GLUE_DATABASE": "spotify_charts",
        "SPOTIFY_ETL_ATHENA_WORKGROUP": WORKGROUP,
        "SPOTIFY_ETL_ATHENA_OUTPUT": RESULTS,
        "SPOTIFY_ETL_CREDENTIALS_PARAMETER": PARAMETER,
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("SPOTIFY_ETL_SOURCE", raising=False)
    # The tables and the views, as the deploy steps create them (infra/README.md).
    assert cli.main(["catalog", "--engine", "athena", "--lake", LAKE]) == 0
    return environment


def put_credentials(document: dict[str, str], *, kind: str = "SecureString") -> None:
    """The credentials' parameter holding ``document``, as the deploy steps create it."""
    boto3.client("ssm").put_parameter(
        Name=PARAMETER, Value=json.dumps(document), Type=kind, Overwrite=True
    )


def run_doctor(capsys, *args: str) -> tuple[int, list[str]]:
    capsys.readouterr()
    code = cli.main(["doctor", "--aws", *args])
    captured = capsys.readouterr()
    assert "Traceback" not in captured.err
    return code, captured.out.splitlines()


def check_lines(lines: list[str]) -> list[str]:
    """The lines of the checks, without the summary line."""
    return [line for line in lines if line.split(" ", 1)[0] in (doctor.OK, doctor.FAIL, "skip")]


def statuses(lines: list[str]) -> dict[str, str]:
    """The status of each line, by the thing it checked."""
    return {line[6:].split(": ", 1)[0]: line.split(" ", 1)[0] for line in check_lines(lines)}


def test_a_deployed_stack_passes_every_check(stack, capsys):
    athena = boto3.client("athena")
    before = set(athena.list_query_executions(WorkGroup=WORKGROUP)["QueryExecutionIds"])

    code, lines = run_doctor(capsys, "--schedule", SCHEDULE)

    assert code == 0, lines
    checks = check_lines(lines)
    assert len(checks) == LINES
    assert all(line.startswith("ok    ") for line in checks), checks
    assert lines[-1] == f"all {LINES} checks passed"
    found = statuses(lines)
    assert found["S3 bucket " + BUCKET] == "ok"
    assert found[f"write, read and delete s3://{BUCKET}/lake/doctor/probe-*.txt"] == "ok"
    for name in schemas.TABLES:
        assert found[f"Glue table spotify_charts.{name}"] == "ok"
    for view in VIEWS:
        assert found[f"Athena view spotify_charts.{view}"] == "ok"
    assert f"ok    SSM parameter {PARAMETER}: SecureString, holds client_id, client_secret" in lines
    assert f"ok    EventBridge Scheduler schedule {SCHEDULE}: ENABLED, rate(1 hour)" in lines
    # The probe object is gone, and the credentials' values were never shown.
    listed = boto3.client("s3").list_objects_v2(Bucket=BUCKET, Prefix="lake/doctor/")
    assert listed["KeyCount"] == 0
    assert not any(value in "\n".join(lines) for value in CREDENTIALS.values())
    # SELECT 1 and a LIMIT 1 on every view went to the workgroup, in the lake's database.
    new = set(athena.list_query_executions(WorkGroup=WORKGROUP)["QueryExecutionIds"]) - before
    executions = [
        athena.get_query_execution(QueryExecutionId=query_id)["QueryExecution"] for query_id in new
    ]
    assert sorted(e["Query"] for e in executions) == sorted(
        ["SELECT 1", *(f"SELECT * FROM {view} LIMIT 1" for view in VIEWS)]
    )
    assert {e["QueryExecutionContext"]["Database"] for e in executions} == {"spotify_charts"}


def _missing_bucket(stack, monkeypatch):
    monkeypatch.setenv("SPOTIFY_ETL_LAKE", "s3://no-such-bucket/lake")


def _credentials_without_a_secret(stack, monkeypatch):
    put_credentials({"client_id": "the-client-id"})


def _missing_credentials(stack, monkeypatch):
    boto3.client("ssm").delete_parameter(Name=PARAMETER)


def _disabled_schedule(stack, monkeypatch):
    scheduler = boto3.client("scheduler")
    current = scheduler.get_schedule(Name=SCHEDULE)
    scheduler.update_schedule(
        Name=SCHEDULE,
        ScheduleExpression=current["ScheduleExpression"],
        FlexibleTimeWindow=current["FlexibleTimeWindow"],
        Target=current["Target"],
        State="DISABLED",
    )


def _hive_table(stack, monkeypatch):
    glue = boto3.client("glue")
    table = glue.get_table(DatabaseName="spotify_charts", Name="chart_entries")["Table"]
    glue.update_table(
        DatabaseName="spotify_charts",
        TableInput={
            "Name": "chart_entries",
            "TableType": "EXTERNAL_TABLE",
            "StorageDescriptor": table["StorageDescriptor"],
            "Parameters": {"classification": "parquet"},
        },
    )


def _missing_and_damaged_tables(stack, monkeypatch):
    glue = boto3.client("glue")
    glue.delete_table(DatabaseName="spotify_charts", Name="track_artists")
    table = glue.get_table(DatabaseName="spotify_charts", Name="tracks")["Table"]
    bucket, key = table["Parameters"]["metadata_location"].removeprefix("s3://").split("/", 1)
    boto3.client("s3").delete_object(Bucket=bucket, Key=key)


def _missing_workgroup(stack, monkeypatch):
    monkeypatch.setenv("SPOTIFY_ETL_ATHENA_WORKGROUP", "no-such-workgroup")


# How the stack is broken, then the lines that fail (with what their fix says) and the lines
# skipped because of them; every other line must still pass.
FAILURES = {
    "missing bucket": (
        _missing_bucket,
        {
            "S3 bucket no-such-bucket": "does not exist: set SPOTIFY_ETL_LAKE (or --lake) to "
            "the stack's LakeRoot output"
        },
        [
            "write, read and delete s3://no-such-bucket/lake/doctor/probe-*.txt",
            "HEAD of a missing key",
        ],
    ),
    "credentials missing a key": (
        _credentials_without_a_secret,
        {
            f"SSM parameter {PARAMETER}": "has a client_id but neither client_secret (client "
            "credentials) nor refresh_token (`spotify-etl auth login`): put the credentials "
            "JSON in it (infra/README.md, Deploying, step 1)"
        },
        [],
    ),
    "credentials missing": (
        _missing_credentials,
        {
            f"SSM parameter {PARAMETER}": "does not exist: create it as a SecureString "
            "(infra/README.md, Deploying, step 1), or set SPOTIFY_ETL_CREDENTIALS_PARAMETER to "
            "the stack's CredentialsParameterName output"
        },
        [],
    ),
    "schedule disabled": (
        _disabled_schedule,
        {
            f"EventBridge Scheduler schedule {SCHEDULE}": "is DISABLED, so the extract never "
            "runs: enable it"
        },
        [],
    ),
    "table not Iceberg": (
        _hive_table,
        {
            "Glue table spotify_charts.chart_entries": "is EXTERNAL_TABLE, not an Iceberg "
            f"table: run `spotify-etl migrate --lake {LAKE}`"
        },
        [],
    ),
    "tables missing or damaged": (
        _missing_and_damaged_tables,
        {
            "Glue table spotify_charts.track_artists": "does not exist: run `spotify-etl "
            f"catalog --engine athena --lake {LAKE}`",
            "Glue table spotify_charts.tracks": "metadata.json is missing: run `spotify-etl "
            f"migrate --lake {LAKE}` to rebuild the tables from the raw zone",
        },
        [],
    ),
    "missing workgroup": (
        _missing_workgroup,
        {
            "Athena workgroup no-such-workgroup": "does not exist: set "
            "SPOTIFY_ETL_ATHENA_WORKGROUP to the stack's AthenaWorkGroupName output"
        },
        [f"Athena view spotify_charts.{view}" for view in VIEWS],
    ),
}


@pytest.mark.parametrize("failure", list(FAILURES), ids=str)
def test_each_failure_fails_its_own_line_with_the_fix_and_the_rest_still_run(
    failure, stack, monkeypatch, capsys
):
    break_stack, fixes, skipped = FAILURES[failure]
    break_stack(stack, monkeypatch)

    code, lines = run_doctor(capsys, "--schedule", SCHEDULE)

    assert code == 1
    assert len(check_lines(lines)) == LINES
    found = statuses(lines)
    for subject, fix in fixes.items():
        assert found.pop(subject) == "FAIL", lines
        [line] = [line for line in lines if line.startswith(f"FAIL  {subject}: ")]
        assert fix in line
    for subject in skipped:
        assert found.pop(subject) == "skip", lines
    assert set(found.values()) == {"ok"}, lines
    skipped_tail = f", {len(skipped)} skipped" if skipped else ""
    assert lines[-1] == f"{len(fixes)} of {LINES} checks failed{skipped_tail}"
    assert not any(value in "\n".join(lines) for value in CREDENTIALS.values())


def test_stack_outputs_name_everything(stack, monkeypatch, capsys):
    """With --stack, the stack's outputs replace the settings: none is needed."""
    outputs = {
        "LakeRoot": LAKE,
        "GlueDatabaseName": "spotify_charts",
        "AthenaWorkGroupName": WORKGROUP,
        "AthenaOutputLocation": RESULTS,
        "CredentialsParameterName": PARAMETER,
        "ScheduleName": SCHEDULE,
    }
    template = {
        "Parameters": {"Source": {"Type": "String", "Default": "api"}},
        # CloudFormation needs one resource; the outputs are what doctor reads.
        "Resources": {"AccessLogBucket": {"Type": "AWS::S3::Bucket"}},
        "Outputs": {key: {"Value": value} for key, value in outputs.items()},
    }
    boto3.client("cloudformation").create_stack(
        StackName="charts", TemplateBody=json.dumps(template)
    )
    for name in (
        "SPOTIFY_ETL_LAKE",
        "SPOTIFY_ETL_GLUE_DATABASE",
        "SPOTIFY_ETL_ATHENA_WORKGROUP",
        "SPOTIFY_ETL_ATHENA_OUTPUT",
        "SPOTIFY_ETL_CREDENTIALS_PARAMETER",
    ):
        monkeypatch.delenv(name)

    code, lines = run_doctor(capsys, "--stack", "charts")

    assert code == 0, lines
    assert lines[1] == (
        "ok    CloudFormation stack charts: CREATE_COMPLETE, outputs used: "
        "AthenaOutputLocation, AthenaWorkGroupName, CredentialsParameterName, "
        "GlueDatabaseName, LakeRoot, ScheduleName"
    )
    assert len(check_lines(lines)) == LINES + 1
    found = statuses(lines)
    assert set(found.values()) == {"ok"}
    assert found["S3 bucket " + BUCKET] == "ok"
    assert found[f"Athena workgroup {WORKGROUP}"] == "ok"
    assert found[f"SSM parameter {PARAMETER}"] == "ok"
    assert found[f"EventBridge Scheduler schedule {SCHEDULE}"] == "ok"


def test_a_stack_that_is_not_there_is_one_line(moto_endpoint, capsys):
    code, lines = run_doctor(capsys, "--stack", "nope")

    assert code == 1
    assert lines[0].startswith("ok    AWS credentials: account 123456789012")
    assert lines[1] == (
        "FAIL  CloudFormation stack nope: not found in us-east-1: check --stack and AWS_REGION "
        "(nothing else was checked)"
    )
    assert lines[2:] == ["1 of 2 checks failed"]


def credentials_check(name: str = PARAMETER) -> doctor.Check:
    settings = Settings(lake=LAKE, credentials_parameter=name)
    return doctor.check_credentials_parameter(doctor.Clients(settings), settings)


def test_a_string_parameter_fails_as_unencrypted(moto_endpoint):
    put_credentials(CREDENTIALS, kind="String")

    check = credentials_check()

    assert check.line == (
        f"FAIL  SSM parameter {PARAMETER}: is a String, which stores the credentials "
        f"unencrypted: delete it (aws ssm delete-parameter --name {PARAMETER}) and create it "
        "as a SecureString (infra/README.md, Deploying, step 1)"
    )


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("not json", "does not hold a JSON object with client_id and client_secret or "),
        ('["client_id"]', "does not hold a JSON object"),
        ('{"client_id": "", "client_secret": "", "refresh_token": ""}', "has no client_id"),
        ('{"client_secret": "s3cret-value"}', "has no client_id"),
    ],
)
def test_a_document_that_is_not_credentials_fails_with_the_fix(moto_endpoint, value, problem):
    boto3.client("ssm").put_parameter(Name=PARAMETER, Value=value, Type="SecureString")

    check = credentials_check()

    assert check.status == doctor.FAIL
    assert check.detail.startswith(problem)
    assert check.detail.endswith(
        ": put the credentials JSON in it (infra/README.md, Deploying, step 1)"
    )
    assert "s3cret-value" not in check.line


def test_a_user_token_parameter_needs_no_client_secret(moto_endpoint):
    put_credentials({"client_id": "the-client-id", "refresh_token": "a-refresh-token", "scope": ""})

    check = credentials_check()

    assert (
        check.line
        == f"ok    SSM parameter {PARAMETER}: SecureString, holds client_id, refresh_token"
    )


def test_a_missing_parameter_names_the_setting(moto_endpoint):
    check = credentials_check("/no/such/parameter")

    assert check.status == doctor.FAIL
    assert "does not exist: create it as a SecureString" in check.detail
    assert "set SPOTIFY_ETL_CREDENTIALS_PARAMETER" in check.detail


def test_an_unset_parameter_name_is_skipped_with_the_setting():
    settings = Settings(lake=LAKE)

    check = doctor.check_credentials_parameter(_no_aws, settings)

    assert check.line == (
        "skip  Spotify credentials: SPOTIFY_ETL_CREDENTIALS_PARAMETER is not set: set it to the "
        "stack's CredentialsParameterName output, or give --stack NAME"
    )


def test_the_archive_source_needs_no_credentials():
    settings = Settings(lake=LAKE, source="archive", credentials_parameter="/never/read")

    check = doctor.check_credentials_parameter(_no_aws, settings)

    assert check.line == (
        "skip  Spotify credentials: the source is archive, which needs no credentials"
    )


def test_without_a_schedule_name_its_check_is_skipped():
    check = doctor.check_schedule(_no_aws, None)

    assert check.line == (
        "skip  extract schedule: its name is not known: give --stack NAME (its ScheduleName "
        "output) or --schedule"
    )


def _no_aws(service: str):
    raise AssertionError(f"{service} was called")


# --- Before any check: credentials, region, endpoint ---------------------------------------


def _one_error_line(capsys, expected_code: int) -> str:
    capsys.readouterr()
    assert cli.main(["doctor", "--aws"]) == expected_code
    captured = capsys.readouterr()
    assert captured.out == ""
    [line] = captured.err.strip().splitlines()
    return line


def test_no_region_is_one_line_naming_aws_region(bare_aws, capsys):
    line = _one_error_line(capsys, 2)
    assert line == "error: no AWS region: set AWS_REGION to the stack's region"


def test_no_credentials_is_one_line_naming_them(bare_aws, monkeypatch, capsys):
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    line = _one_error_line(capsys, 1)
    assert line.startswith("error: no AWS credentials for AWS STS")
    assert "AWS_ACCESS_KEY_ID" in line


def test_unreachable_endpoint_is_one_line_naming_it(unreachable_aws, capsys):
    line = _one_error_line(capsys, 1)
    assert line.startswith(f"error: cannot reach AWS STS at {unreachable_aws}")
    assert "AWS_ENDPOINT_URL" in line


def test_doctor_without_aws_says_what_it_checks(capsys):
    assert cli.main(["doctor"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [
        "error: doctor checks a deployed stack only so far: run `spotify-etl doctor --aws` "
        "(with --stack NAME, or the SPOTIFY_ETL_* settings of the stack)"
    ]


def test_doctor_has_help(capsys):
    with pytest.raises(SystemExit) as exit_info:
        cli.main(["doctor", "--help"])
    assert exit_info.value.code == 0
    out = capsys.readouterr().out
    assert "--aws" in out and "--stack" in out and "--schedule" in out


# --- What moto cannot show: stand-in clients ----------------------------------------------


def _client_error(code: str, operation: str, message: str = "") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, operation)


class DenyingS3:
    """S3 as a caller without s3:ListBucket meets it: a missing key answers 403."""

    def head_object(self, **_):
        raise _client_error("403", "HeadObject", "Forbidden")


def test_a_403_for_a_missing_key_names_list_bucket():
    settings = Settings(lake=LAKE, aws_region="us-east-1")

    check = doctor.check_missing_key(lambda service: DenyingS3(), settings, bucket_ok=True)

    assert check.status == doctor.FAIL
    assert check.line.startswith("FAIL  HEAD of a missing key: answered 403, not 404: ")
    assert f"s3:ListBucket on arn:aws:s3:::{BUCKET}" in check.line
    assert "infra/README.md, IAM)" in check.line


class ScriptedAthena:
    """Athena answering each query with the states scripted for its text, in turn (the last
    one repeats); it records the queries it was asked to stop."""

    def __init__(self, states: dict[str, list[tuple[str, str]]]) -> None:
        self.states = states
        self.queries: dict[str, str] = {}
        self.stopped: list[str] = []

    def get_work_group(self, WorkGroup):  # noqa: N803 (boto3's parameter names)
        return {"WorkGroup": {"Name": WorkGroup, "State": "ENABLED", "Configuration": {}}}

    def start_query_execution(self, QueryString, **_):  # noqa: N803
        query_id = f"q{len(self.queries)}"
        self.queries[query_id] = QueryString
        return {"QueryExecutionId": query_id}

    def get_query_execution(self, QueryExecutionId):  # noqa: N803
        script = self.states.get(self.queries[QueryExecutionId], [("SUCCEEDED", "")])
        state, reason = script.pop(0) if len(script) > 1 else script[0]
        status = {"State": state, "StateChangeReason": reason}
        return {"QueryExecution": {"Status": status}}

    def stop_query_execution(self, QueryExecutionId):  # noqa: N803
        self.stopped.append(QueryExecutionId)


def test_a_view_athena_cannot_find_fails_with_the_catalog_command():
    settings = Settings(lake=LAKE, aws_region="us-east-1", athena_workgroup=WORKGROUP)
    missing = (
        "FAILED",
        "TABLE_NOT_FOUND: line 1:15: Table 'awsdatacatalog.spotify_charts.daily_chart' "
        "does not exist",
    )
    athena = ScriptedAthena({"SELECT * FROM daily_chart LIMIT 1": [("RUNNING", ""), missing]})

    checks = list(doctor.check_athena(lambda service: athena, settings))

    by_subject = {check.subject: check for check in checks}
    failed = by_subject["Athena view spotify_charts.daily_chart"]
    assert failed.status == doctor.FAIL
    assert "Table 'awsdatacatalog.spotify_charts.daily_chart' does not exist" in failed.detail
    assert f"run `spotify-etl catalog --engine athena --lake {LAKE}`" in failed.detail
    others = [check for check in checks if check is not failed]
    assert {check.status for check in others} == {doctor.OK}
    assert len(checks) == 1 + len(VIEWS)


def test_a_query_athena_never_finishes_is_stopped_at_the_deadline():
    settings = Settings(lake=LAKE, aws_region="us-east-1", athena_workgroup=WORKGROUP)
    athena = ScriptedAthena({"SELECT 1": [("QUEUED", "")]})
    now = [0.0]
    runner = doctor.AthenaRunner(
        athena,
        settings,
        deadline_seconds=60,
        poll_seconds=0.5,
        sleep=lambda seconds: now.__setitem__(0, now[0] + seconds),
        clock=lambda: now[0],
    )

    outcome = runner.run({"select 1": "SELECT 1", "quick": "SELECT 2"})

    assert outcome["quick"] is None
    assert outcome["select 1"].startswith("query q0 still queued after 60 s, stopped")
    assert athena.stopped == ["q0"]
    assert 60 <= now[0] <= 61


class RolledBackStacks:
    def describe_stacks(self, StackName):  # noqa: N803
        outputs = [{"OutputKey": "LakeRoot", "OutputValue": LAKE}]
        return {"Stacks": [{"StackStatus": "UPDATE_ROLLBACK_COMPLETE", "Outputs": outputs}]}


def test_a_stack_whose_last_deploy_rolled_back_fails_but_its_outputs_are_used():
    target = doctor.Target(Settings(lake="./data/lake"))

    check, read = doctor.read_stack(lambda service: RolledBackStacks(), "charts", target)

    assert check.status == doctor.FAIL
    assert check.detail.startswith("UPDATE_ROLLBACK_COMPLETE, outputs used: LakeRoot; ")
    assert "aws cloudformation describe-stack-events --stack-name charts" in check.detail
    assert read.settings.lake == LAKE
