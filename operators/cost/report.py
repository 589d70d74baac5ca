"""The weekly cost report: HTML tables and a chart, sent through SES and stored on S3.

Built from the aggregation job's datasets for the report week (``window_runs``,
``job_daily``, ``job_weekly``, ``tag_weekly``). Two renderings of the same HTML: the e-mail
references the chart by Content-ID (a PNG part of a multipart/related message: what mail
clients display), the S3 copy embeds it as a data: URI so the one file opens anywhere.
Styles are inline, as mail clients drop <style> blocks.
"""

from __future__ import annotations

import base64
import datetime as dt
import html
from collections import defaultdict
from dataclasses import dataclass
from decimal import Decimal
from email.mime.application import MIMEApplication
from email.mime.image import MIMEImage
from email.mime.multipart import MIMEMultipart
from email.mime.text import MIMEText

from operators.cost.png_chart import stacked_bars

CHART_CID = "cost-per-day"
TOP = 10
CHART_JOBS = 6
CHART_DAYS = 28
FAILED = ("FAILED", "ERROR", "TIMEOUT")
VCPU_PER_DPU = 4  # a Glue DPU is 4 vCPUs (and 16 GB): EMR Serverless vCPU-hours count as DPU-hours / 4

_TABLE = 'style="border-collapse:collapse;font:13px Arial,Helvetica,sans-serif;margin:6px 0 18px 0"'
_TH = 'style="text-align:left;padding:4px 10px;border-bottom:2px solid #444;background:#f2f2f2"'
_TD = 'style="padding:4px 10px;border-bottom:1px solid #ddd"'
_NUM = 'style="padding:4px 10px;border-bottom:1px solid #ddd;text-align:right"'
_H2 = 'style="font:bold 16px Arial,Helvetica,sans-serif;margin:18px 0 4px 0"'


@dataclass
class Report:
    subject: str
    week_start: dt.date
    week_end: dt.date
    html_email: str  # chart by cid:
    html_file: str  # chart inline (data: URI)
    chart_png: bytes
    text: str
    totals: dict


def _money(value) -> str:
    return "-" if value is None else f"${Decimal(value):,.2f}"


def _change(value) -> str:
    if value is None:
        return "new"
    color = "#b00020" if value > 0.1 else "#1b7f3b" if value < -0.1 else "#444"
    return f'<span style="color:{color}">{value * 100:+.0f}%</span>'


def _table(headers: list[str], rows: list[list], numeric: set[int] = frozenset()) -> str:
    if not rows:
        return '<p style="font:13px Arial,Helvetica,sans-serif;color:#666">None this week.</p>'
    head = "".join(f"<th {_TH}>{html.escape(h)}</th>" for h in headers)
    body = "".join(
        "<tr>" + "".join(f"<td {_NUM if i in numeric else _TD}>{cell}</td>" for i, cell in enumerate(row)) + "</tr>"
        for row in rows
    )
    return f"<table {_TABLE}><tr>{head}</tr>{body}</table>"


def _e(value) -> str:
    return html.escape("" if value is None else str(value))


def _minutes(seconds) -> str:
    return "-" if seconds is None else f"{seconds / 60:,.0f}"


def chart(job_daily: list[dict], end: dt.date) -> tuple[bytes, list[str]]:
    """Cost per day of the top jobs over the last 28 days (the rest as "other")."""
    days = [end - dt.timedelta(days=CHART_DAYS - 1 - i) for i in range(CHART_DAYS)]
    first = days[0]
    per_job: dict[str, dict[dt.date, float]] = defaultdict(lambda: defaultdict(float))
    for row in job_daily:
        if first <= row["day"] <= end and row["cost"] is not None:
            per_job[row["job_name"]][row["day"]] += float(row["cost"])
    ranked = sorted(per_job, key=lambda j: -sum(per_job[j].values()))
    top = ranked[: CHART_JOBS - 1] if len(ranked) > CHART_JOBS else ranked
    series = [(job, [per_job[job][d] for d in days]) for job in top]
    rest = ranked[len(top) :]
    if rest:
        series.append(("other", [sum(per_job[j][d] for j in rest) for d in days]))
    labels = [d.strftime("%m-%d") for d in days]
    return stacked_bars(labels, series, f"Cost per day, top jobs, {first:%b %d} to {end:%b %d} (USD)"), top


def build_report(window_runs: list[dict], job_daily: list[dict], job_weekly: list[dict], tag_weekly: list[dict],
                 week_start: dt.date, week_end: dt.date) -> Report:  # fmt: skip
    runs = [r for r in window_runs if week_start <= r["day"] <= week_end]
    weekly = [r for r in job_weekly if r["week"] == week_start]
    tags = [r for r in tag_weekly if r["week"] == week_start]
    total = sum((Decimal(r["cost"]) for r in runs if r["cost"] is not None), Decimal(0))
    trailing = sum(
        (Decimal(str(r["trailing_avg_cost"])) for r in weekly if r["trailing_avg_cost"] is not None), Decimal(0)
    )
    failures = [r for r in runs if r["state"] in FAILED]
    png, _ = chart(job_daily, week_end)

    expensive = sorted(weekly, key=lambda r: -(r["cost"] or 0))[:TOP]
    expensive_rows = [[_e(r["job_name"]), _e(r["platform"]), _e(r["team"]), r["runs"],
                       f"{(r['dpu_hours'] or 0) + (r['vcpu_hours'] or 0) / VCPU_PER_DPU:,.1f}", _money(r["cost"]),
                       _change(r["cost_change"])] for r in expensive]  # fmt: skip
    tag_rows = [[_e(r["tag_key"]), _e(r["tag_value"]), r["runs"], _money(r["cost"]), _change(r["cost_change"])]
                for r in sorted(tags, key=lambda r: (r["tag_key"], -(r["cost"] or 0)))]  # fmt: skip
    longest = sorted((r for r in runs if r["execution_s"] is not None), key=lambda r: -r["execution_s"])[:TOP]
    longest_rows = [[_e(r["job_name"]), _e(r["platform"]), _e(_short(r["run_id"])), f"{r['started_at']:%a %H:%M}",
                     _minutes(r["execution_s"]), _e(_workers(r)), _e(r["state"].lower())] for r in longest]  # fmt: skip
    retries: dict[tuple, list[dict]] = defaultdict(list)
    for r in runs:
        retries[(r["platform"], r["job_name"])].append(r)
    retry_rows = sorted(([_e(job), _e(platform), sum(x["attempt"] > 0 for x in rs), len(rs)]
                         for (platform, job), rs in retries.items() if any(x["attempt"] > 0 for x in rs)),
                        key=lambda row: -row[2])[:TOP]  # fmt: skip
    failure_rows = [[_e(r["job_name"]), _e(r["platform"]), _e(_short(r["run_id"])), f"{r['started_at']:%a %H:%M}",
                     _e(r["state"].lower()), _e((r["error_message"] or "")[:120])]
                    for r in sorted(failures, key=lambda r: r["started_at"])]  # fmt: skip
    kinds: dict[tuple, list[dict]] = defaultdict(list)
    for r in runs:
        kinds[(_worker_kind(r), (r["execution_class"] or "-").lower())].append(r)
    kind_rows = [[_e(k[0]), _e(k[1]), len(rs), f"{sum(_dpu_hours(x) for x in rs):,.1f}",
                  _money(sum((Decimal(x["cost"]) for x in rs if x["cost"] is not None), Decimal(0)))]
                 for k, rs in sorted(kinds.items(), key=lambda kv: -len(kv[1]))]  # fmt: skip

    change = (total / trailing - 1) if trailing else None
    period = f"{week_start:%a %d %b} to {week_end:%a %d %b %Y}"
    subject = f"Weekly Glue and EMR Serverless cost: {_money(total)} ({period})"
    estimated = sum(1 for r in runs if r["cost_estimated"])

    def page(image_src: str) -> str:
        return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>{_e(subject)}</title></head>
<body style="margin:0;padding:16px;background:#fff;color:#222">
<div style="max-width:860px;font:14px Arial,Helvetica,sans-serif">
<h1 style="font:bold 20px Arial,Helvetica,sans-serif;margin:0 0 4px 0">Glue and EMR Serverless cost, {_e(period)}</h1>
<p style="margin:0 0 12px 0"><b style="font-size:18px">{_money(total)}</b> for {len(runs)} runs
({_change(change) if change is not None else "no history yet"} against the trailing 4-week average of
{_money(trailing)}); {len(failures)} failed or timed out{f"; {estimated} priced by estimate" if estimated else ""}.</p>
<img src="{image_src}" width="820" height="420" alt="Cost per day of the top jobs over the last 28 days" style="display:block;border:0;max-width:100%;height:auto">
<h2 {_H2}>Most expensive jobs</h2>
{_table(["Job", "Platform", "Team", "Runs", "DPU-h", "Cost", "vs 4 weeks"], expensive_rows, {3, 4, 5, 6})}
<h2 {_H2}>Cost by tag</h2>
{_table(["Tag", "Value", "Runs", "Cost", "vs 4 weeks"], tag_rows, {2, 3, 4})}
<h2 {_H2}>Longest runs</h2>
{_table(["Job", "Platform", "Run", "Started (UTC)", "Minutes", "Workers", "State"], longest_rows, {4})}
<h2 {_H2}>Most retries</h2>
{_table(["Job", "Platform", "Retries", "Runs"], retry_rows, {2, 3})}
<h2 {_H2}>Failures and timeouts</h2>
{_table(["Job", "Platform", "Run", "Started (UTC)", "State", "Error"], failure_rows)}
<h2 {_H2}>Runs by worker type and execution class</h2>
{_table(["Worker type", "Class", "Runs", "DPU-h", "Cost"], kind_rows, {2, 3, 4})}
<p style="font:12px Arial,Helvetica,sans-serif;color:#666">DPU-h counts EMR Serverless vCPU-hours as 4 per DPU.
Costs are estimates from list prices (see the rate table); runs flagged as estimated lacked billing fields.</p>
</div></body></html>
"""

    text = (f"{subject}\n{len(runs)} runs, {len(failures)} failed or timed out.\nTop jobs:\n"
            + "\n".join(f"  {r['job_name']}: {_money(r['cost'])}" for r in expensive))  # fmt: skip
    return Report(
        subject=subject, week_start=week_start, week_end=week_end, html_email=page(f"cid:{CHART_CID}"),
        html_file=page("data:image/png;base64," + base64.b64encode(png).decode()), chart_png=png, text=text,
        totals={"cost": str(total), "runs": len(runs), "failures": len(failures), "trailing_avg": str(trailing)},
    )  # fmt: skip


def _worker_kind(run: dict) -> str:
    if run["worker_type"]:
        return run["worker_type"]
    if run["platform"] == "emr_serverless":
        return f"EMR Serverless {(run['architecture'] or 'X86_64').lower()}"
    return "Python shell" if run["command"] == "pythonshell" else "capacity (no worker type)"


def _dpu_hours(run: dict) -> float:
    return float(run["dpu_seconds_billed"] or 0) / 3600 + float(run["vcpu_hours"] or 0) / VCPU_PER_DPU


def _short(run_id: str | None) -> str:
    return (run_id or "")[:14]


def _workers(run: dict) -> str:
    if run.get("workers"):
        return f"{run['workers']:.0f} x {run['worker_type']}"
    return run.get("command") or "-"


def mime_message(report: Report, sender: str, recipients: list[str]) -> bytes:
    """multipart/mixed [ multipart/related [ alternative (text, html), chart.png ], report.html ]."""
    root = MIMEMultipart("mixed")
    root["Subject"], root["From"], root["To"] = report.subject, sender, ", ".join(recipients)
    related = MIMEMultipart("related")
    alternative = MIMEMultipart("alternative")
    alternative.attach(MIMEText(report.text, "plain", "utf-8"))
    alternative.attach(MIMEText(report.html_email, "html", "utf-8"))
    related.attach(alternative)
    image = MIMEImage(report.chart_png, "png")
    image.add_header("Content-ID", f"<{CHART_CID}>")
    image.add_header("Content-Disposition", "inline", filename="cost-per-day.png")
    related.attach(image)
    root.attach(related)
    attachment = MIMEApplication(report.html_file.encode(), "html")
    attachment.add_header("Content-Disposition", "attachment", filename=f"cost-report-{report.week_start}.html")
    root.attach(attachment)
    return root.as_bytes()
