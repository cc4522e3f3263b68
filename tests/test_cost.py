"""The cost command (bench/cost.py): a small simulation through the real handlers on moto's
server, and the pricing of what it counted."""

from __future__ import annotations

import copy
import json

import pytest

from bench import BenchError, cost

PLAYLISTS, DAYS, HOURS = 2, 2, 2


@pytest.fixture(scope="module")
def template() -> dict:
    return cost.load_template()


@pytest.fixture(scope="module")
def measured(template, tmp_path_factory) -> cost.Measurement:
    """Two charts, two days, the first and one quiet check of each day."""
    simulation = cost.Simulation(template, PLAYLISTS, tmp_path_factory.mktemp("cost"))
    return simulation.run(DAYS, HOURS, lambda text: None)


def simulated(measured: cost.Measurement, wanted) -> int:
    """How many requests of the simulated hours (not scaled to a month) match."""
    return sum(1 for hour in measured.hours() for r in hour.requests if wanted(r))


def line(lines: list[cost.Line], service: str, name: str) -> cost.Line:
    [found] = [x for x in lines if x.service == service and x.name == name]
    return found


@pytest.mark.slow
@pytest.mark.aws
def test_each_chart_change_is_one_raw_put_one_notification_and_one_transform(measured):
    changes = sum(hour.chart_changes for hour in measured.hours())
    assert changes == PLAYLISTS * DAYS  # every chart changes at each midnight
    raw_puts = simulated(
        measured,
        lambda r: r.actor == "extract" and r.kind == "PUT" and r.key.startswith("raw/"),
    )
    assert raw_puts == changes
    notifications = simulated(measured, lambda r: r.actor == cost.S3_NOTIFICATIONS)
    assert notifications == changes
    # One batch a day (both files in it), one report request for it, one report run.
    batches = sum(hour.transform_batches for hour in measured.hours())
    assert batches == DAYS
    report_requests = simulated(
        measured, lambda r: r.actor == "transform" and r.kind == "SendMessage"
    )
    assert report_requests == batches
    assert sum(hour.report_runs for hour in measured.hours()) == batches
    extracts = [i for h in measured.hours() for i in h.invocations if i.function == "extract"]
    assert len(extracts) == DAYS * HOURS
    # The quiet check finds no change: it writes its heartbeat, never a raw file.
    quiet = [hour for day in measured.days for hour in day[1:]]
    assert all(hour.weight == 23 / (HOURS - 1) and hour.chart_changes == 0 for hour in quiet)


@pytest.mark.slow
@pytest.mark.aws
def test_the_reports_athena_queries_are_counted_with_their_scans(measured):
    queries = simulated(measured, lambda r: r.actor == "report" and r.kind == "StartQueryExecution")
    scans = [b for hour in measured.hours() for b in hour.athena_scans]
    assert queries >= PLAYLISTS * DAYS and len(scans) == queries
    assert all(b > 0 for b in scans), "a query read nothing through the counting filesystem"
    # What Athena reads for a query: its tables' metadata and data, and their Glue entries.
    assert simulated(measured, lambda r: r.actor == cost.ATHENA and r.service == "glue")
    assert simulated(measured, lambda r: r.actor == cost.ATHENA and r.kind == "GET")


@pytest.mark.slow
@pytest.mark.aws
def test_the_prices_are_the_counts_times_the_price_table(measured, template):
    lines = cost.price(measured, template)
    for each in lines:
        assert each.usd == pytest.approx(each.quantity * each.unit_price)
        assert 0 <= each.usd_after_free_tier <= each.usd
    puts = line(lines, "S3", "PUT, COPY, POST")
    monthly_puts = measured.month(
        lambda hour: sum(r.kind in ("PUT", "COPY", "POST") for r in hour.requests)
    )
    assert puts.quantity == pytest.approx(monthly_puts) and puts.quantity > 0
    assert puts.usd == pytest.approx(monthly_puts * 0.005 / 1000)
    # Each query bills at least 10 MB: the charts of two playlists read far less.
    queries = measured.month(lambda hour: len(hour.athena_scans))
    scanned = line(lines, "Athena", "data scanned")
    assert scanned.quantity == pytest.approx(queries * 10 / 1024)
    assert scanned.usd == pytest.approx(queries * 10 / 1024**2 * 5.00)
    requests = line(lines, "Lambda", "requests")
    assert requests.quantity == pytest.approx(24 * 30 + 2 * 30)  # hourly extracts, daily rest
    # The template's alarms, each watching one metric.
    alarms = line(lines, "CloudWatch", "alarms")
    standard = len(cost.resources_of(template, "AWS::CloudWatch::Alarm"))
    assert alarms.quantity == standard and alarms.usd == pytest.approx(standard * 0.10)
    text = cost.table(measured, lines)
    biggest = max(lines, key=lambda x: x.usd)
    assert f"Biggest line: {biggest.service} {biggest.name}" in text


@pytest.mark.slow
@pytest.mark.aws
def test_the_credentials_parameter_is_free_and_its_kms_requests_are_estimated(measured, template):
    """Each extract reads the SecureString (with decryption) and writes the refresh token
    Spotify rotated back: Parameter Store bills neither; KMS bills one request for each."""
    extracts = sum(1 for h in measured.hours() for i in h.invocations if i.function == "extract")
    reads = simulated(measured, lambda r: r.actor == "extract" and r.kind == "GetParameter")
    writes = simulated(measured, lambda r: r.actor == "extract" and r.kind == "PutParameter")
    assert reads == writes == extracts
    assert not simulated(measured, lambda r: r.service == "ssm" and r.actor != "extract")
    [parameter] = {r.key for h in measured.hours() for r in h.requests if r.service == "ssm"}
    assert parameter == cost.credentials_parameter(template, cost.Resolver(template))
    lines = cost.price(measured, template)
    assert line(lines, "SSM Parameter Store", "standard parameters").quantity == 1
    calls = line(lines, "SSM Parameter Store", "API calls")
    assert calls.quantity == pytest.approx(2 * 24 * 30)  # a read and a write per hourly run
    assert calls.usd == 0
    kms = line(lines, "KMS", "requests (estimate)")
    assert kms.quantity == pytest.approx(calls.quantity)
    assert kms.usd == pytest.approx(kms.quantity * 0.03 / 10_000)
    assert kms.usd_after_free_tier == 0  # within the 20,000 free requests a month
    assert "Decrypt 720" in kms.note and "Encrypt 720" in kms.note
    assert not [x for x in lines if x.service == "Secrets Manager"]


@pytest.mark.parametrize(
    ("operation", "parameters", "kms"),
    [
        ("GetParameter", {"Name": "/a", "WithDecryption": True}, "Decrypt"),
        ("GetParameter", {"Name": "/a"}, None),
        ("PutParameter", {"Name": "/a", "Type": "SecureString", "Overwrite": True}, "Encrypt"),
        ("PutParameter", {"Name": "/a", "Type": "String"}, None),
        ("DescribeParameters", {}, None),
    ],
)
def test_parameter_store_makes_a_kms_request_per_secure_string_read_or_write(
    operation, parameters, kms
):
    assert cost.ssm_kms_request(operation, parameters) == kms


def test_a_month_is_day_one_and_the_later_days_mean_with_quiet_hours_weighted():
    def hour(weight: float, requests: int) -> cost.Hour:
        request = cost.Request("extract", "s3", "PUT", "raw/x", 1, 0, 0, None)
        return cost.Hour(weight=weight, requests=[request] * requests)

    measured = cost.Measurement(
        playlists=1,
        days=[[hour(1, 5), hour(23, 1)], [hour(1, 2), hour(23, 1)], [hour(1, 4), hour(23, 1)]],
        hours_per_day=2,
        memory_mb={},
        traced=set(),
        import_seconds={},
        seconds=0.0,
    )
    per_day = [5 + 23, 2 + 23, 4 + 23]
    expected = per_day[0] + 29 * (per_day[1] + per_day[2]) / 2
    assert measured.month(lambda h: len(h.requests)) == pytest.approx(expected)


@pytest.mark.parametrize(
    ("method", "key", "query", "headers", "kind"),
    [
        ("PUT", "raw/a.json", {}, {}, "PUT"),
        ("PUT", "raw/a.json", {}, {"x-amz-copy-source": "/b/k"}, "COPY"),
        ("POST", "k", {"uploads": [""]}, {}, "POST"),
        ("POST", "", {"delete": [""]}, {}, "DELETE"),
        ("GET", "", {"list-type": ["2"]}, {}, "LIST"),
        ("GET", "", {"location": [""]}, {}, "GET"),
        ("GET", "k", {}, {}, "GET"),
        ("HEAD", "k", {}, {}, "HEAD"),
        ("DELETE", "k", {}, {}, "DELETE"),
    ],
)
def test_s3_requests_are_kinds_as_s3_prices_them(method, key, query, headers, kind):
    assert cost.s3_kind(method, key, query, headers) == kind


def test_emf_lines_give_each_metric_with_its_dimensions():
    line_text = json.dumps(
        {
            "_aws": {
                "Timestamp": 0,
                "CloudWatchMetrics": [
                    {
                        "Namespace": "SpotifyChartsLake",
                        "Dimensions": [["service"]],
                        "Metrics": [{"Name": "SnapshotsExtracted"}, {"Name": "ExtractFailures"}],
                    }
                ],
            },
            "service": "spotify-charts-extract",
            "SnapshotsExtracted": 1,
            "ExtractFailures": 0,
        }
    )
    dimensions = (("service", "spotify-charts-extract"),)
    assert cost.emf_metrics(line_text) == {
        ("SpotifyChartsLake", "SnapshotsExtracted", dimensions),
        ("SpotifyChartsLake", "ExtractFailures", dimensions),
    }
    assert cost.emf_metrics('{"level": "INFO", "message": "extract finished"}') == set()
    assert cost.emf_metrics("START RequestId: 1") == set()


def test_billed_custom_metrics_are_prorated_by_the_hours_they_are_published_in(template):
    metric = ("SpotifyChartsLake", "ReportsPublished", (("service", "report"),))
    invocation = cost.Invocation("report", 1, 1.0, 0, 0, {metric}, {})
    day = [cost.Hour(weight=1, invocations=[invocation]), cost.Hour(weight=23)]
    measured = cost.Measurement(
        1, [day, day], 2, {"extract": 512, "transform": 1024, "report": 2048}, set(), {}, 0.0
    )
    metrics = line(cost.price(measured, template), "CloudWatch", "custom metrics (EMF)")
    assert metrics.quantity == pytest.approx(30 / 730)  # published in one hour a day


def with_alarm(template: dict, **properties) -> dict:
    """A copy of the template with one more alarm of these properties."""
    changed = copy.deepcopy(template)
    changed["Resources"]["AddedAlarm"] = {
        "Type": "AWS::CloudWatch::Alarm",
        "Properties": {"Threshold": 0, "ComparisonOperator": "GreaterThanThreshold", **properties},
    }
    return changed


def lambda_metric(name: str, period: int = 300) -> dict:
    return {
        "Metric": {"Namespace": "AWS/Lambda", "MetricName": name},
        "Period": period,
        "Stat": "Sum",
    }


def test_an_alarm_on_metric_math_is_billed_for_each_metric_it_reads(template):
    standard, composite = cost.alarm_metrics(template)
    either = with_alarm(
        template,
        Metrics=[
            {"Id": "errors", "MetricStat": lambda_metric("Errors"), "ReturnData": False},
            {"Id": "throttles", "MetricStat": lambda_metric("Throttles"), "ReturnData": False},
            {"Id": "either", "Expression": "errors + throttles"},
        ],
    )
    assert cost.alarm_metrics(either) == (standard + 2, composite)
    single = with_alarm(template, Namespace="AWS/Lambda", MetricName="Errors", Period=300)
    assert cost.alarm_metrics(single) == (standard + 1, composite)


@pytest.mark.parametrize(
    ("properties", "refused"),
    [
        ({"Namespace": "AWS/Lambda", "MetricName": "Errors", "Period": 10}, "high-resolution"),
        (
            {
                "Metrics": [
                    {"Id": "errors", "MetricStat": lambda_metric("Errors")},
                    {"Id": "band", "Expression": "ANOMALY_DETECTION_BAND(errors, 2)"},
                ],
                "ThresholdMetricId": "band",
            },
            "anomaly detection",
        ),
    ],
)
def test_an_alarm_billed_otherwise_than_per_metric_is_refused(template, properties, refused):
    with pytest.raises(BenchError, match=f"alarm AddedAlarm .*{refused}"):
        cost.alarm_metrics(with_alarm(template, **properties))


def test_the_readme_block_is_replaced_and_a_readme_without_it_is_refused(tmp_path):
    readme = tmp_path / "README.md"
    readme.write_text(f"# x\n\n{cost.README_START}\nold\n{cost.README_END}\n\nafter\n")
    cost.write_readme(readme, "| table |", "python -m bench.cost")
    text = readme.read_text()
    assert "old" not in text and "| table |" in text and text.endswith("after\n")
    assert "From `python -m bench.cost`:" in text
    readme.write_text("# no block\n")
    with pytest.raises(BenchError, match="no <!-- cost:start -->"):
        cost.write_readme(readme, "| table |", "python -m bench.cost")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["--days", "1"], "--days must be at least 2"),
        (["--hours", "1"], "--hours must be from 2"),
        (["--playlists", "0"], "--playlists takes counts of 1 or more"),
    ],
)
def test_a_wrong_argument_is_one_line_not_a_traceback(arguments, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        cost.main(arguments)
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err


@pytest.mark.slow
def test_the_simulation_gives_moto_its_own_athena_back(measured):
    """The stand-in answers moto's Athena with DuckDB during a simulation only: moto's
    backends are process-wide, and the tests after it expect moto's canned answers."""
    from moto.athena.models import AthenaBackend

    assert AthenaBackend.start_query_execution.__qualname__ == (
        "AthenaBackend.start_query_execution"
    )
