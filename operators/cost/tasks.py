"""The cost DAGs' task bodies, shared by ``cost_alerts`` and ``cost_weekly_report``.

Each takes the resolved settings (``operators.cost.settings``) and reaches AWS through the
Amazon provider's hooks, so credentials come from the Airflow connection or the worker's
role. DAG files import this module inside their tasks only.
"""

from __future__ import annotations

import datetime as dt
import logging

log = logging.getLogger(__name__)


def collect(cfg: dict) -> dict:
    from airflow.providers.amazon.aws.hooks.emr import EmrServerlessHook
    from airflow.providers.amazon.aws.hooks.glue import GlueJobHook
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook

    from operators.cost.collect import collect as collect_runs
    from spark_jobs.cost.model import rates_from

    glue = GlueJobHook(aws_conn_id=cfg["aws_conn_id"])
    summary = collect_runs(
        glue.conn, EmrServerlessHook(aws_conn_id=cfg["aws_conn_id"]).conn,
        S3Hook(aws_conn_id=cfg["aws_conn_id"]).get_conn(), cfg["ledger_uri"], glue.account_id,
        lookback=dt.timedelta(days=cfg["lookback_days"]), overlap=dt.timedelta(hours=cfg["overlap_hours"]),
        rates=rates_from(cfg["rates"]),
    )  # fmt: skip
    print(f"collected {summary['runs']} finished run(s) from {summary['windows']}; {summary['added']} new in the "
          f"ledger; {summary['estimated']} estimated, {summary['unpriced']} unpriced")  # fmt: skip
    for problem in summary["problems"]:
        print(f"warning: {problem}")
    return summary


def alert(cfg: dict) -> dict:
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook
    from airflow.providers.amazon.aws.hooks.sns import SnsHook

    from operators.cost.alerts import publish_new, read_violations, subject

    s3 = S3Hook(aws_conn_id=cfg["aws_conn_id"]).get_conn()
    violations = read_violations(s3, f"{cfg['aggregates_uri']}/violations")
    for v in violations:
        print(f"  {v['kind']:<14} {subject(v)} | {v['detail']}")
    summary = publish_new(SnsHook(aws_conn_id=cfg["aws_conn_id"]).get_conn(), s3, cfg["topic_arn"], violations,
                          cfg["alert_state_uri"], cfg["dry_run"])  # fmt: skip
    print(f"{summary['violations']} violation(s): {summary['sent']} sent now, {summary['already_sent']} sent "
          f"before{' (dry run: nothing sent)' if summary['dry_run'] else ''}")  # fmt: skip
    return summary


def report_location(cfg: dict) -> str:
    return f"{cfg['report_uri'].rstrip('/')}/{cfg['week_start']}"


def weekly_report(cfg: dict) -> dict:
    """Render the report for ``cfg['week_start']``..``cfg['week_end']``, store it on S3, e-mail it."""
    from airflow.providers.amazon.aws.hooks.s3 import S3Hook
    from airflow.providers.amazon.aws.hooks.ses import SesHook

    from operators.cost.alerts import read_dataset
    from operators.cost.ledger import split_uri
    from operators.cost.report import build_report, mime_message

    s3 = S3Hook(aws_conn_id=cfg["aws_conn_id"]).get_conn()
    folder = report_location(cfg)
    data = {name: read_dataset(s3, f"{folder}/aggregates/{name}")
            for name in ("window_runs", "job_daily", "job_weekly", "tag_weekly")}  # fmt: skip
    week_start, week_end = dt.date.fromisoformat(cfg["week_start"]), dt.date.fromisoformat(cfg["week_end"])
    report = build_report(data["window_runs"], data["job_daily"], data["job_weekly"], data["tag_weekly"],
                          week_start, week_end)  # fmt: skip
    bucket, prefix = split_uri(folder)
    s3.put_object(Bucket=bucket, Key=f"{prefix}/report.html", Body=report.html_file.encode(),
                  ContentType="text/html; charset=utf-8")  # fmt: skip
    s3.put_object(Bucket=bucket, Key=f"{prefix}/cost-per-day.png", Body=report.chart_png, ContentType="image/png")
    print(f"{report.subject}\nstored s3://{bucket}/{prefix}/report.html ({len(report.html_file)} bytes)")
    sent = None
    if cfg["dry_run"]:
        print("dry run: not e-mailed")
    elif not (cfg["sender"] and cfg["recipients"]):
        raise ValueError("cost_alerts: the report needs `sender` and `recipients` in the Variable (or the form)")
    else:
        raw = mime_message(report, cfg["sender"], cfg["recipients"])
        sent = (
            SesHook(aws_conn_id=cfg["aws_conn_id"])
            .get_conn()
            .send_raw_email(Source=cfg["sender"], Destinations=cfg["recipients"], RawMessage={"Data": raw})["MessageId"]
        )
        print(f"e-mailed to {', '.join(cfg['recipients'])} from {cfg['sender']} (SES message {sent})")
    return {"subject": report.subject, "location": f"s3://{bucket}/{prefix}/report.html", "ses_message_id": sent,
            **report.totals}  # fmt: skip
