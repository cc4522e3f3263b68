"""``doctor --aws``: the first-deployment check of a stack, one line per check.

Each check prints ``ok``, ``FAIL`` or ``skip``, what it checked and, for a failure, what to
fix. Every check runs even when an earlier one failed; one that needs what failed says
``skip`` and why. Exit code 0 when nothing failed, 1 otherwise.

The checks run with the credentials of whoever runs ``doctor``, not the functions' roles:
they prove the stack's resources exist and are wired as the code expects. The roles are
proven against the code's calls by ``tests/test_infra.py``.

What is checked, in the order of the data's flow: the lake bucket (reachable; a probe object
written, read back and deleted under ``<lake>/doctor/``; a HEAD of a missing key answering
404), the Glue database and its six Iceberg tables (``table_type`` ICEBERG and the current
metadata file readable), the Athena workgroup (``SELECT 1``) and every shipped view
(``SELECT * FROM <view> LIMIT 1``), the Spotify credentials' SSM parameter (a SecureString
with the keys the extract needs; never their values) and the extract's EventBridge Scheduler
schedule (ENABLED).
"""

from __future__ import annotations

import argparse
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from functools import partial
from typing import Any

from etl_lib.cli.options import AddCommand, settings_for
from etl_lib.config import Settings
from etl_lib.errors import ConfigError, EtlError

OK, FAIL, SKIP = "ok", "FAIL", "skip"

# Where the probe object goes, under the lake root. The Lambda roles cannot write here, so
# nothing the pipeline reads can ever be confused with it.
PROBE_PREFIX = "doctor/"

# An Athena query that runs longer than this is stopped and reported: SELECT 1 and a
# LIMIT 1 on a view take seconds, so a minute means a queue or a scan that should not be.
QUERY_DEADLINE_SECONDS = 60.0
QUERY_POLL_SECONDS = 0.5

# The stack's outputs (infra/template.yaml) and the settings they stand for.
_OUTPUT_SETTINGS = {
    "LakeRoot": "lake",
    "GlueDatabaseName": "glue_database",
    "AthenaWorkGroupName": "athena_workgroup",
    "AthenaOutputLocation": "athena_output_location",
    "CredentialsParameterName": "credentials_parameter",
}
# Every output read: the settings' and the schedule's name.
_STACK_OUTPUTS = (*_OUTPUT_SETTINGS, "ScheduleName")

# S3's answers for a missing bucket or key, and for a caller who may not know.
_NOT_FOUND_CODES = {"404", "NoSuchKey", "NotFound", "NoSuchBucket"}
_DENIED_CODES = {"403", "AccessDenied"}


@dataclass(frozen=True)
class Check:
    """One line of the report: ``status`` (ok, FAIL, skip), the thing checked, and what was
    found (for a FAIL, what to fix; for a skip, why)."""

    status: str
    subject: str
    detail: str

    @property
    def line(self) -> str:
        return f"{self.status:<5} {self.subject}: {self.detail}"


@dataclass(frozen=True)
class Target:
    """What the checks look at: the settings, and the schedule's name when known."""

    settings: Settings
    schedule_name: str | None = None


# --- The command ---------------------------------------------------------------------------


def cmd_doctor(args: argparse.Namespace) -> int:
    from etl_lib.cli.output import terminal_safe

    if not args.aws:
        raise ConfigError(
            "doctor checks a deployed stack only so far: run `spotify-etl doctor --aws` "
            "(with --stack NAME, or the SPOTIFY_ETL_* settings of the stack)"
        )
    checks = []
    for check in _every_check(args):
        checks.append(check)
        print(terminal_safe(check.line), flush=True)
    failed = sum(check.status == FAIL for check in checks)
    skipped = sum(check.status == SKIP for check in checks)
    tail = f", {skipped} skipped" if skipped else ""
    if failed:
        print(f"{failed} of {len(checks)} checks failed{tail}")
        return 1
    print(f"all {len(checks) - skipped} checks passed{tail}")
    return 0


def _every_check(args: argparse.Namespace) -> Iterator[Check]:
    settings = settings_for(args)
    clients = Clients(settings)
    yield caller_identity(clients)
    target = Target(settings, args.schedule)
    if args.stack:
        stack_check, stack_target = read_stack(clients, args.stack, target)
        yield stack_check
        if stack_target is None:
            return  # what the other checks would look at is unknown
        target = stack_target
    yield from run_checks(clients, target)


def add_doctor(add: AddCommand) -> None:
    doctor = add(
        "doctor",
        cmd_doctor,
        "Check a deployed stack, one line per check with what to fix: the lake bucket, the "
        "Glue tables, Athena and the views, the Spotify credentials and the schedule.",
    )
    doctor.add_argument(
        "--aws", action="store_true", help="check the AWS deployment (the only check so far)"
    )
    doctor.add_argument(
        "--stack",
        metavar="NAME",
        help="read the lake, database, workgroup, results location, credentials parameter and "
        "schedule from this CloudFormation stack's outputs (over the SPOTIFY_ETL_* settings)",
    )
    doctor.add_argument(
        "--schedule",
        metavar="NAME",
        help="the extract's EventBridge Scheduler schedule (default: the stack's ScheduleName)",
    )


# --- AWS clients and errors -------------------------------------------------------------------


class Clients:
    """One boto3 client per service, each with the short timeouts of ``etl_lib.aws``, from
    one session: a session loads botocore's endpoint data once, and that takes a while."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._session = None
        self._clients: dict[str, Any] = {}

    def __call__(self, service: str):
        if service not in self._clients:
            from etl_lib.aws import aws_session, client_config

            if self._session is None:
                self._session = aws_session(self._settings)
            # No endpoint_url: boto3 honours AWS_ENDPOINT_URL (and per service) itself.
            self._clients[service] = self._session.client(service, config=client_config())
        return self._clients[service]


def _aws_failures() -> tuple[type[BaseException], ...]:
    from botocore.exceptions import BotoCoreError, ClientError

    return BotoCoreError, ClientError


def _error_code(exc: BaseException) -> str:
    response = getattr(exc, "response", None) or {}
    return str(response.get("Error", {}).get("Code", ""))


def _problem(exc: BaseException, service: str, resource: str) -> str:
    """What an AWS error says, in one line: ``etl_lib.aws``'s wording (with its fix) for the
    errors a user can fix there, else the operation, code and AWS's message."""
    from etl_lib.aws import aws_error

    known = aws_error(exc, service=service, resource=resource)
    return _described(exc) if known is None else str(known)


def _described(exc: BaseException) -> str:
    """An AWS error as it came: the operation, code and AWS's message, in one line."""
    response = getattr(exc, "response", None)
    if response is not None:
        error = response.get("Error", {})
        message = _first_line(error.get("Message") or "")
        code = error.get("Code") or "an error"
        return f"{exc.operation_name} answered {code}" + (f": {message}" if message else "")
    return _first_line(str(exc)) or type(exc).__name__


def _found(call: Callable[[], dict[str, Any]], *not_found: str) -> dict[str, Any] | None:
    """``call()``'s answer, or None when AWS answers one of the ``not_found`` codes (the
    service's word for "no such thing"); any other AWS error is raised."""
    try:
        return call()
    except _aws_failures() as exc:
        if _error_code(exc) in not_found:
            return None
        raise


def _guarded(subject: str, service: str, resource: str, attempt: Callable[[], Check]) -> Check:
    """``attempt()``, or a FAIL naming the AWS error it met: one check's error never stops
    the others."""
    try:
        return attempt()
    except _aws_failures() as exc:
        return Check(FAIL, subject, _problem(exc, service, resource))


def _first_line(text: str) -> str:
    lines = str(text).strip().splitlines()
    return lines[0] if lines else ""


# --- Before the checks: who and where -----------------------------------------------------


def caller_identity(clients: Clients) -> Check:
    """The account and identity the checks run as. No region, no credentials or an endpoint
    that does not answer stop here with one line naming what to set: every check would
    fail the same way."""
    from etl_lib.aws import aws_error

    try:
        sts = clients("sts")
        # STS answers without a region (its global endpoint); the stack's services do not.
        region = sts.meta.region_name
        if not region or region == "aws-global":
            raise ConfigError("no AWS region: set AWS_REGION to the stack's region")
        identity = sts.get_caller_identity()
    except _aws_failures() as exc:
        error = aws_error(exc, service="AWS STS", resource="the caller's identity")
        if error is None:
            error = EtlError(f"cannot tell who the AWS credentials are: {_described(exc)}")
        raise error from exc
    return Check(
        OK, "AWS credentials", f"account {identity['Account']} as {identity['Arn']}, in {region}"
    )


def read_stack(clients: Clients, stack_name: str, target: Target) -> tuple[Check, Target | None]:
    """``target`` with the stack's outputs (and its Source parameter) in place of the
    settings from the environment; None when the stack cannot be read."""
    subject = f"CloudFormation stack {stack_name}"
    try:
        stacks = clients("cloudformation").describe_stacks(StackName=stack_name)["Stacks"]
    except _aws_failures() as exc:
        if _error_code(exc) == "ValidationError":  # CloudFormation's "does not exist"
            region = clients("cloudformation").meta.region_name
            detail = f"not found in {region}: check --stack and AWS_REGION"
        else:
            detail = _problem(exc, "CloudFormation", subject)
        return Check(FAIL, subject, detail + " (nothing else was checked)"), None
    stack = stacks[0]
    outputs = {item["OutputKey"]: item["OutputValue"] for item in stack.get("Outputs", [])}
    parameters = {
        item["ParameterKey"]: item.get("ParameterValue", "") for item in stack.get("Parameters", [])
    }
    values = {name: outputs[key] for key, name in _OUTPUT_SETTINGS.items() if outputs.get(key)}
    if parameters.get("Source"):
        values["source"] = parameters["Source"]
    schedule_name = target.schedule_name or outputs.get("ScheduleName")
    used = sorted(key for key in _STACK_OUTPUTS if outputs.get(key))
    missing = sorted(key for key in _STACK_OUTPUTS if key not in outputs)
    status = stack["StackStatus"]
    detail = f"{status}, outputs used: {', '.join(used) or 'none'}"
    if missing:
        detail += f"; not among its outputs: {', '.join(missing)} (the settings stand in)"
    new_target = Target(replace(target.settings, **values), schedule_name)
    if "ROLLBACK" in status or status.endswith("_FAILED"):
        why = f"{detail}: the last deploy did not complete; its events say why "
        why += f"(aws cloudformation describe-stack-events --stack-name {stack_name})"
        return Check(FAIL, subject, why), new_target
    return Check(OK, subject, detail), new_target


# --- The checks ---------------------------------------------------------------------------------


def run_checks(clients: Clients, target: Target) -> Iterator[Check]:
    """Every check, in the order of the data's flow, as each finishes."""
    settings = target.settings
    bucket_check = check_bucket(clients, settings)
    yield bucket_check
    bucket_ok = bucket_check.status == OK
    yield check_probe_object(clients, settings, bucket_ok)
    yield check_missing_key(clients, settings, bucket_ok)
    yield from check_glue(clients, settings)
    yield from check_athena(clients, settings)
    yield check_credentials_parameter(clients, settings)
    yield check_schedule(clients, target.schedule_name)


def _bucket_and_prefix(lake: str) -> tuple[str, str]:
    """``s3://bucket/some/prefix`` -> ``("bucket", "some/prefix/")``."""
    bucket, _, prefix = lake.removeprefix("s3://").partition("/")
    prefix = prefix.strip("/")
    return bucket, prefix + "/" if prefix else ""


def check_bucket(clients: Clients, settings: Settings) -> Check:
    if not settings.lake.startswith("s3://"):
        return Check(
            FAIL,
            f"lake {settings.lake}",
            "not on S3: set SPOTIFY_ETL_LAKE (or --lake) to the stack's LakeRoot output, "
            "or give --stack NAME",
        )
    bucket, _ = _bucket_and_prefix(settings.lake)
    subject = f"S3 bucket {bucket}"

    def attempt() -> Check:
        try:
            clients("s3").head_bucket(Bucket=bucket)
        except _aws_failures() as exc:
            code = _error_code(exc)
            if code in _NOT_FOUND_CODES:
                return Check(
                    FAIL,
                    subject,
                    "does not exist: set SPOTIFY_ETL_LAKE (or --lake) to the stack's LakeRoot "
                    "output",
                )
            if code in _DENIED_CODES:
                return Check(
                    FAIL,
                    subject,
                    "HeadBucket answered 403: grant the credentials in use s3:ListBucket on "
                    f"arn:aws:s3:::{bucket}, or check that the bucket is this account's",
                )
            raise
        return Check(OK, subject, "reachable")

    return _guarded(subject, "S3", subject, attempt)


def check_probe_object(clients: Clients, settings: Settings, bucket_ok: bool) -> Check:
    """Write, read back and delete one small object under ``<lake>/doctor/``."""
    if not settings.lake.startswith("s3://"):
        return Check(SKIP, "write, read and delete a probe object", "the lake is not on S3")
    bucket, prefix = _bucket_and_prefix(settings.lake)
    key = f"{prefix}{PROBE_PREFIX}probe-{uuid.uuid4().hex}.txt"
    subject = f"write, read and delete s3://{bucket}/{prefix}{PROBE_PREFIX}probe-*.txt"
    if not bucket_ok:
        return Check(SKIP, subject, "the bucket is not reachable")
    body = f"spotify-etl doctor probe {key}\n".encode()
    s3 = clients("s3")
    step = "PutObject"
    try:
        s3.put_object(Bucket=bucket, Key=key, Body=body)
        step = "GetObject"
        read = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        step = "DeleteObject"
        s3.delete_object(Bucket=bucket, Key=key)
    except _aws_failures() as exc:
        if step != "PutObject":
            _delete_quietly(s3, bucket, key)
        action = f"s3:{step}"
        return Check(
            FAIL,
            subject,
            f"{_problem(exc, 'S3', f's3://{bucket}/{key}')} "
            f"(the credentials in use need {action} on arn:aws:s3:::{bucket}/{prefix}*)",
        )
    if read != body:
        return Check(
            FAIL, subject, f"read back {len(read)} bytes that differ from the {len(body)} written"
        )
    return Check(OK, subject, "written, read back and deleted")


def _delete_quietly(s3, bucket: str, key: str) -> None:
    try:
        s3.delete_object(Bucket=bucket, Key=key)
    except _aws_failures():
        pass  # the probe's failure is what is reported; a leftover probe is harmless


def check_missing_key(clients: Clients, settings: Settings, bucket_ok: bool) -> Check:
    """A HEAD of a key that does not exist must answer 404: the code asks "already landed?"
    and "does it exist?" that way, and a 403 there reads as an error, not as "no"."""
    subject = "HEAD of a missing key"
    if not settings.lake.startswith("s3://"):
        return Check(SKIP, subject, "the lake is not on S3")
    if not bucket_ok:
        return Check(SKIP, subject, "the bucket is not reachable")
    bucket, prefix = _bucket_and_prefix(settings.lake)
    key = f"{prefix}{PROBE_PREFIX}missing-{uuid.uuid4().hex}"

    def attempt() -> Check:
        try:
            clients("s3").head_object(Bucket=bucket, Key=key)
        except _aws_failures() as exc:
            code = _error_code(exc)
            if code in _NOT_FOUND_CODES:
                return Check(OK, subject, "answered 404")
            if code in _DENIED_CODES:
                return Check(
                    FAIL,
                    subject,
                    "answered 403, not 404: the credentials in use lack s3:ListBucket on "
                    f"arn:aws:s3:::{bucket}, without which S3 hides whether a key exists "
                    "(each function's role needs it too: infra/README.md, IAM)",
                )
            raise
        return Check(FAIL, subject, f"s3://{bucket}/{key} exists, which nothing should create")

    return _guarded(subject, "S3", f"s3://{bucket}/{key}", attempt)


def check_glue(clients: Clients, settings: Settings) -> Iterator[Check]:
    """The database, then each of the six tables: Iceberg, with a readable metadata file."""
    from etl_lib.transform import schemas

    database = settings.glue_database
    subject = f"Glue database {database}"

    def attempt() -> Check:
        answer = _found(
            lambda: clients("glue").get_database(Name=database), "EntityNotFoundException"
        )
        if answer is None:
            return Check(
                FAIL,
                subject,
                "does not exist: set SPOTIFY_ETL_GLUE_DATABASE to the stack's "
                "GlueDatabaseName output",
            )
        return Check(OK, subject, "exists")

    database_check = _guarded(subject, "AWS Glue", subject, attempt)
    yield database_check
    for name in schemas.TABLES:
        table_subject = f"Glue table {database}.{name}"
        if database_check.status != OK:
            yield Check(SKIP, table_subject, "the database is not there")
            continue
        check_table = partial(_check_table, clients, settings, name, table_subject)
        yield _guarded(table_subject, "AWS Glue", table_subject, check_table)


def _check_table(clients: Clients, settings: Settings, name: str, subject: str) -> Check:
    lake = settings.lake
    answer = _found(
        lambda: clients("glue").get_table(DatabaseName=settings.glue_database, Name=name),
        "EntityNotFoundException",
    )
    if answer is None:
        return Check(
            FAIL,
            subject,
            f"does not exist: run `spotify-etl catalog --engine athena --lake {lake}` "
            "(it creates the tables not written yet), or let the first transform create it",
        )
    table = answer["Table"]
    parameters = table.get("Parameters", {})
    table_type = parameters.get("table_type", "")
    if table_type.upper() != "ICEBERG":
        kind = table_type or table.get("TableType") or "a table without table_type"
        return Check(
            FAIL,
            subject,
            f"is {kind}, not an Iceberg table: run `spotify-etl migrate --lake {lake}` to "
            "rebuild the tables as Iceberg tables",
        )
    location = parameters.get("metadata_location", "")
    if not location.startswith("s3://"):
        return Check(
            FAIL,
            subject,
            f"its metadata_location {location or '(none)'} is not on S3: run "
            f"`spotify-etl migrate --lake {lake}` to rebuild the tables from the raw zone",
        )
    bucket, key = location.removeprefix("s3://").split("/", 1)
    try:
        # A byte is enough to prove the file is there and the credentials may read it.
        clients("s3").get_object(Bucket=bucket, Key=key, Range="bytes=0-0")
    except _aws_failures() as exc:
        if _error_code(exc) in _NOT_FOUND_CODES:
            return Check(
                FAIL,
                subject,
                f"its metadata file {location} is missing: run `spotify-etl migrate --lake "
                f"{lake}` to rebuild the tables from the raw zone",
            )
        return Check(FAIL, subject, f"cannot read {location}: {_problem(exc, 'S3', location)}")
    return Check(OK, subject, "Iceberg, metadata file readable")


def check_athena(clients: Clients, settings: Settings) -> Iterator[Check]:
    """SELECT 1 in the workgroup, then a LIMIT 1 on every shipped view (at once)."""
    from etl_lib.warehouse.sql import shipped

    workgroup = settings.athena_workgroup
    subject = f"Athena workgroup {workgroup}"
    views = list(shipped("views"))
    runner = AthenaRunner(clients("athena"), settings)
    first = _guarded(subject, "Athena", subject, lambda: _check_workgroup(runner, subject))
    yield first
    subjects = {view: f"Athena view {settings.glue_database}.{view}" for view in views}
    if first.status != OK:
        for view_subject in subjects.values():
            yield Check(SKIP, view_subject, "the workgroup did not run SELECT 1")
        return
    statements = {view: f"SELECT * FROM {view} LIMIT 1" for view in views}
    try:
        outcomes = runner.run(statements)
    except _aws_failures() as exc:
        outcomes = dict.fromkeys(views, _problem(exc, "Athena", subject))
    for view, view_subject in subjects.items():
        reason = outcomes[view]
        if reason is None:
            yield Check(OK, view_subject, "SELECT * ... LIMIT 1 ran")
        else:
            yield Check(FAIL, view_subject, _view_fix(reason, settings.lake))


def _check_workgroup(runner: AthenaRunner, subject: str) -> Check:
    workgroup = runner.workgroup()
    if workgroup is None:
        return Check(
            FAIL,
            subject,
            "does not exist: set SPOTIFY_ETL_ATHENA_WORKGROUP to the stack's "
            "AthenaWorkGroupName output",
        )
    state = workgroup.get("State", "ENABLED")
    if state != "ENABLED":
        return Check(FAIL, subject, f"is {state}: enable it (Athena console, Workgroups)")
    results = workgroup.get("Configuration", {}).get("ResultConfiguration", {})
    if runner.output_location is None and not results.get("OutputLocation"):
        return Check(
            FAIL,
            subject,
            "has no query results location: set SPOTIFY_ETL_ATHENA_OUTPUT to the stack's "
            "AthenaOutputLocation output",
        )
    reason = runner.run({"select 1": "SELECT 1"})["select 1"]
    if reason is not None:
        return Check(FAIL, subject, f"SELECT 1 did not run: {reason}")
    return Check(OK, subject, "ran SELECT 1")


def _view_fix(reason: str, lake: str) -> str:
    lowered = reason.lower()
    if "does not exist" in lowered or "not found" in lowered:
        return (
            f"{reason}: run `spotify-etl catalog --engine athena --lake {lake}` to create the views"
        )
    return f"{reason} (the query is in the workgroup's history in the Athena console)"


class AthenaRunner:
    """Athena queries with a deadline: started together, polled, stopped when late.

    boto3 rather than ``etl_lib.warehouse.athena``: the checks need each query's outcome
    within a bounded time and no results, and a missing view must show as missing rather
    than be re-created on the way.
    """

    def __init__(
        self,
        client,
        settings: Settings,
        *,
        deadline_seconds: float = QUERY_DEADLINE_SECONDS,
        poll_seconds: float = QUERY_POLL_SECONDS,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.client = client
        self.settings = settings
        self.output_location = settings.athena_results
        self.deadline_seconds = deadline_seconds
        self.poll_seconds = poll_seconds
        self.sleep = sleep
        self.clock = clock

    def workgroup(self) -> dict[str, Any] | None:
        """The workgroup as GetWorkGroup describes it (State, Configuration); None when
        there is no such workgroup."""
        answer = _found(
            lambda: self.client.get_work_group(WorkGroup=self.settings.athena_workgroup),
            "InvalidRequestException",  # Athena's word for a workgroup that does not exist
        )
        return (answer or {}).get("WorkGroup") or None

    def run(self, statements: dict[str, str]) -> dict[str, str | None]:
        """Each statement's outcome by name: None when it succeeded, else why not."""
        outcomes: dict[str, str | None] = {}
        running: dict[str, str] = {}
        for name, sql in statements.items():
            request: dict[str, Any] = {
                "QueryString": sql,
                "WorkGroup": self.settings.athena_workgroup,
                "QueryExecutionContext": {"Database": self.settings.glue_database},
            }
            if self.output_location:
                request["ResultConfiguration"] = {"OutputLocation": self.output_location}
            try:
                running[name] = self.client.start_query_execution(**request)["QueryExecutionId"]
            except _aws_failures() as exc:
                outcomes[name] = _problem(
                    exc, "Athena", f"workgroup {self.settings.athena_workgroup}"
                )
        deadline = self.clock() + self.deadline_seconds
        last_state: dict[str, str] = {}
        while running:
            for name, query_id in list(running.items()):
                execution = self.client.get_query_execution(QueryExecutionId=query_id)
                status = execution["QueryExecution"]["Status"]
                state = last_state[name] = status.get("State", "QUEUED")
                if state == "SUCCEEDED":
                    outcomes[name] = None
                elif state in {"FAILED", "CANCELLED"}:
                    reason = _first_line(status.get("StateChangeReason") or "")
                    outcomes[name] = f"{state.lower()}: {reason or 'no reason given'}"
                else:
                    continue
                del running[name]
            if running and self.clock() >= deadline:
                for name, query_id in running.items():
                    self._stop(query_id)
                    outcomes[name] = (
                        f"query {query_id} still {last_state[name].lower()} after "
                        f"{self.deadline_seconds:g} s, stopped: look for queued or long "
                        "queries in the workgroup (Athena's active-query quota)"
                    )
                break
            if running:
                self.sleep(self.poll_seconds)
        return outcomes

    def _stop(self, query_id: str) -> None:
        try:
            self.client.stop_query_execution(QueryExecutionId=query_id)
        except _aws_failures():
            pass  # the query being late is what is reported


def check_credentials_parameter(clients: Clients, settings: Settings) -> Check:
    """The SSM parameter holds what the extract needs, encrypted: it is a SecureString whose
    JSON has a client_id, and a client_secret (client credentials) or a refresh_token (a
    user's authorization). Only key names are shown, never values."""
    from etl_lib.extract.credentials import PARAMETER_MISSING, parameter_document

    if settings.source == "archive":
        return Check(
            SKIP, "Spotify credentials", "the source is archive, which needs no credentials"
        )
    name = settings.credentials_parameter
    if not name:
        return Check(
            SKIP,
            "Spotify credentials",
            "SPOTIFY_ETL_CREDENTIALS_PARAMETER is not set: set it to the stack's "
            "CredentialsParameterName output, or give --stack NAME",
        )
    subject = f"SSM parameter {name}"

    def attempt() -> Check:
        answer = _found(
            lambda: clients("ssm").get_parameter(Name=name, WithDecryption=True),
            "ParameterNotFound",
        )
        if answer is None:
            return Check(FAIL, subject, PARAMETER_MISSING)
        document, problem = parameter_document(answer["Parameter"])
        if problem:
            return Check(FAIL, subject, problem)
        present = sorted(key for key, value in document.items() if isinstance(value, str) and value)
        return Check(OK, subject, f"SecureString, holds {', '.join(present)}")

    return _guarded(subject, "SSM Parameter Store", subject, attempt)


def check_schedule(clients: Clients, schedule_name: str | None) -> Check:
    if not schedule_name:
        return Check(
            SKIP,
            "extract schedule",
            "its name is not known: give --stack NAME (its ScheduleName output) or --schedule",
        )
    subject = f"EventBridge Scheduler schedule {schedule_name}"

    def attempt() -> Check:
        schedule = _found(
            lambda: clients("scheduler").get_schedule(Name=schedule_name),
            "ResourceNotFoundException",
        )
        if schedule is None:
            return Check(
                FAIL,
                subject,
                "does not exist in the default group: check --schedule, or redeploy the stack",
            )
        state = schedule.get("State", "")
        if state != "ENABLED":
            return Check(
                FAIL,
                subject,
                f"is {state or 'in no state'}, so the extract never runs: enable it "
                f"(EventBridge Scheduler console, Schedules, {schedule_name}, Enable)",
            )
        return Check(OK, subject, f"ENABLED, {schedule.get('ScheduleExpression', '')}".rstrip(", "))

    return _guarded(subject, "EventBridge Scheduler", subject, attempt)
