"""The Spark aggregation over a collected ledger: prices equal the Python model, totals add up,
and the violations are exactly the ones the seeded history contains."""

from __future__ import annotations

import datetime as dt
import email
import email.policy
import json
import uuid
from collections import defaultdict
from decimal import Decimal

import pytest

from local.aws.history import ses_sent
from local.seeds.aws_world import DATA_BUCKET, SNS_TOPIC
from local.seeds.cost_history import GLUE_JOBS, seed_cost_history
from operators.cost import alerts as cost_alerts
from operators.cost import collect as cost_collect
from operators.cost import report as cost_report
from spark_jobs import cost_aggregation as job
from spark_jobs.cost.model import rates_from, record_cost

pytestmark = pytest.mark.stack

# The end of the last complete ISO week, so the alert window is exactly one calendar week.
_today = dt.datetime.now(dt.UTC).replace(hour=0, minute=0, second=0, microsecond=0)
END = _today - dt.timedelta(days=_today.weekday()) - dt.timedelta(seconds=1)
AS_OF = END.date()
P = "agg-"  # this module's jobs, apart from other tests' histories in the shared stack


@pytest.fixture(scope="module")
def ledger(stack):
    seed_cost_history(stack, end=END, weeks=6, prefix=P)
    uri = f"s3://{DATA_BUCKET}/tests/cost-agg-{uuid.uuid4().hex[:8]}/ledger"
    glue, emr, s3 = (stack.boto3_client(s) for s in ("glue", "emr-serverless", "s3"))
    cost_collect.collect(glue, emr, s3, uri, "123456789012", now=END + dt.timedelta(hours=1),
                         lookback=dt.timedelta(weeks=7))  # fmt: skip
    return uri


@pytest.fixture(scope="module")
def spark(stack):
    from local.seeds.iceberg_tables import lake_session
    from local.services.spark_session import stop_session

    session = lake_session(stack.info(), "test-cost-aggregation")
    session.sparkContext.setLogLevel("ERROR")
    yield session
    stop_session(session)


def aggregate(spark, ledger, output, **overrides):
    argv = ["--ledger", ledger, "--output", output, "--as-of", AS_OF.isoformat(), "--window-days", "7",
            "--budgets", '{"team=finance": 1.0}']  # fmt: skip
    for key, value in overrides.items():
        argv += [f"--{key.replace('_', '-')}", value]
    return job.run(job.parse_job_args(job.build_parser(), argv), spark)


def test_spark_prices_equal_the_python_model_for_every_run(spark, ledger):
    rates = rates_from({"glue_dpu_hour": "0.47"})  # an override reprices history
    rows = job.priced_runs(spark, ledger, rates).collect()
    assert len(rows) > 300
    for row in rows:
        expected = record_cost(row.asDict(), rates).cost_usd
        if expected is None:
            assert row.cost is None
        else:
            assert abs(row.cost - expected) < Decimal("1e-9"), (row.job_name, row.run_id, row.cost, expected)


def rows_of(spark, path) -> list[dict]:
    return [r.asDict() for r in spark.read.parquet(path).collect()]


def test_aggregates_and_violations(spark, ledger):
    output = f"s3a://{DATA_BUCKET}/tests/cost-agg-out-{uuid.uuid4().hex[:8]}"
    summary = aggregate(spark, ledger, output)
    assert summary["ok"] and summary["runs"] > 300
    runs = [r.asDict() for r in job.priced_runs(spark, ledger, rates_from()).collect()]
    groups: dict[tuple, list[dict]] = defaultdict(list)
    for run in runs:
        groups[(run["platform"], run["job_name"], run["week"])].append(run)
    weekly = {(r["platform"], r["job_name"], r["week"]): r for r in rows_of(spark, f"{output}/job_weekly")}
    assert set(weekly) == set(groups)
    for key, group in groups.items():
        row = weekly[key]
        assert row["runs"] == len(group)
        assert abs(row["cost"] - sum(r["cost"] for r in group)) < Decimal("1e-6")
        assert row["failed"] == sum(r["state"] in ("FAILED", "ERROR") for r in group)
        assert row["retries"] == sum(r["attempt"] > 0 for r in group)
        assert row["duration_max_s"] == max(r["execution_s"] for r in group)
    last_week = AS_OF - dt.timedelta(days=6)
    assert weekly[("glue", f"{P}finance-close", last_week)]["cost_change"] > 1.5  # three times the workers in that week
    tags = rows_of(spark, f"{output}/tag_weekly")
    for week in {r["week"] for r in runs}:
        teams = sum(t["cost"] for t in tags if t["tag_key"] == "team" and t["week"] == week)
        assert abs(teams - sum(r["cost"] for r in runs if r["week"] == week)) < Decimal("1e-6")

    found = rows_of(spark, f"{output}/violations")
    keys = [v["key"] for v in found]
    assert len(keys) == len(set(keys))
    kinds = {(v["kind"], v["job_name"]) for v in found}
    assert ("workers_over", f"{P}finance-close") in kinds  # 8 x 3 = 24 workers in the last week
    assert ("cost_jump", f"{P}finance-close") in kinds
    assert ("duration_over", f"{P}etl-backfill") in kinds  # its 525-minute run
    assert ("budget", None) in kinds  # team=finance over its $1 weekly budget
    assert any(kind == "failed" for kind, _ in kinds)
    quiet = {P + spec.name for spec in GLUE_JOBS if spec.tags.get("remediate") == "false"}
    assert quiet and not quiet & {job_name for _, job_name in kinds}  # remediate=false: never alerted
    window = (AS_OF - dt.timedelta(days=6)).isoformat()
    assert all(window <= v["period"] <= AS_OF.isoformat() for v in found if v["run_id"])

    again = f"{output}-again"
    aggregate(spark, ledger, again)
    assert {v["key"] for v in rows_of(spark, f"{again}/violations")} == set(keys)


def test_bad_settings_name_the_argument(spark, ledger):
    with pytest.raises(job.SettingsError, match="--rates"):
        aggregate(spark, ledger, "/tmp/unused", rates='{"glue_dpu_hours": 1}')
    with pytest.raises(job.SettingsError, match="--budgets"):
        aggregate(spark, ledger, "/tmp/unused", budgets='{"squad=x": 1}')
    with pytest.raises(job.SettingsError, match="--thresholds"):
        aggregate(spark, ledger, "/tmp/unused", thresholds='{"max_workerz": 3}')


def drain(sqs, queue_url) -> list[dict]:
    """Every message delivered to the queue so far (SNS envelopes, decoded)."""
    out = []
    while True:
        batch = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10, WaitTimeSeconds=1).get("Messages", [])
        if not batch:
            return out
        for m in batch:
            out.append(json.loads(m["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=m["ReceiptHandle"])


def test_each_violation_is_alerted_once_through_sns(stack, spark, ledger):
    output = f"s3://{DATA_BUCKET}/tests/cost-alerts-{uuid.uuid4().hex[:8]}"
    aggregate(spark, ledger, output)
    s3, sns, sqs = (stack.boto3_client(s) for s in ("s3", "sns", "sqs"))
    seeded = stack.info()["seed"]
    queue_url = sqs.get_queue_url(QueueName=f"{SNS_TOPIC}-inbox")["QueueUrl"]
    drain(sqs, queue_url)
    violations = cost_alerts.read_violations(s3, f"{output}/violations")
    state = f"{output}/alerts/sent.json"

    dry = cost_alerts.publish_new(sns, s3, seeded["sns_topic_arn"], violations, state, dry_run=True)
    assert dry["sent"] == 0 and sum(dry["by_kind"].values()) == len(violations) and drain(sqs, queue_url) == []

    first = cost_alerts.publish_new(sns, s3, seeded["sns_topic_arn"], violations, state, dry_run=False)
    delivered = drain(sqs, queue_url)
    assert first["sent"] == len(violations) == len(delivered) > 5
    by_subject = {m["Subject"] for m in delivered}
    assert f"[cost] weekly cost jump: {P}finance-close" in by_subject
    keys = [json.loads(m["Message"].split("\n\n", 1)[1])["key"] for m in delivered]
    assert sorted(keys) == sorted(v["key"] for v in violations)
    assert all(m["MessageAttributes"]["kind"]["Value"] in cost_alerts.TITLES for m in delivered)

    again = cost_alerts.publish_new(sns, s3, seeded["sns_topic_arn"], violations, state, dry_run=False)
    assert again["sent"] == 0 and again["already_sent"] == len(violations) and drain(sqs, queue_url) == []


def test_weekly_report_is_mailed_through_ses_and_reads_well(stack, spark, ledger):
    week_start = AS_OF - dt.timedelta(days=6)
    output = f"s3://{DATA_BUCKET}/tests/cost-report-{uuid.uuid4().hex[:8]}"
    aggregate(spark, ledger, output)
    s3, ses = stack.boto3_client("s3"), stack.boto3_client("ses")
    data = {n: cost_alerts.read_dataset(s3, f"{output}/{n}") for n in ("window_runs", "job_daily", "job_weekly", "tag_weekly")}  # fmt: skip
    report = cost_report.build_report(data["window_runs"], data["job_daily"], data["job_weekly"], data["tag_weekly"],
                                      week_start, AS_OF)  # fmt: skip
    week_cost = sum(r["cost"] for r in data["window_runs"])
    assert report.totals["runs"] == len(data["window_runs"]) > 50
    assert f"${week_cost:,.2f}" in report.subject
    for title in ("Most expensive jobs", "Cost by tag", "Longest runs", "Most retries", "Failures and timeouts",
                  "Runs by worker type and execution class"):  # fmt: skip
        assert f">{title}</h2>" in report.html_email
    assert f"{P}finance-close" in report.html_email  # the most expensive job of the week
    assert report.chart_png.startswith(b"\x89PNG") and f'src="cid:{cost_report.CHART_CID}"' in report.html_email
    assert "data:image/png;base64," in report.html_file and "cid:" not in report.html_file

    sender = stack.info()["seed"]["ses_sender"]
    raw = cost_report.mime_message(report, sender, ["finops@example.com"])
    message_id = ses.send_raw_email(Source=sender, Destinations=["finops@example.com"], RawMessage={"Data": raw})["MessageId"]  # fmt: skip
    sent = [m for m in ses_sent(stack.info()["moto"]["endpoint_url"]) if m["id"] == message_id]
    assert len(sent) == 1 and set(sent[0]["destinations"]) == {"finops@example.com"}  # moto adds the To: header's
    mail = email.message_from_string(sent[0]["raw_data"], policy=email.policy.default)
    assert mail["Subject"] == report.subject
    html_part = mail.get_body(("html",))
    assert "Most expensive jobs" in html_part.get_content()
    images = [p for p in mail.walk() if p.get_content_type() == "image/png"]
    assert len(images) == 1 and images[0]["Content-ID"] == f"<{cost_report.CHART_CID}>"
    assert images[0].get_content() == report.chart_png
