"""Aggregate the run ledger: cost and reliability per job and per tag, per day and week, and
the violations the alerting task sends.

    spark-submit spark_jobs/cost_aggregation.py --ledger s3://bucket/cost/ledger \\
        --output s3://bucket/cost/aggregates [--as-of 2026-11-23] [--window-days 7] \\
        [--rates JSON] [--thresholds JSON] [--budgets JSON]

Reads every ``day=`` partition of the ledger (``operators/cost/ledger.py``), prices every run
again with the current rates (``cost/spark_columns.py``, the Spark twin of
``cost/model.py``: a rate override reprices history), and writes Parquet datasets
under ``--output``:

* ``job_daily`` / ``job_weekly``: per platform and job, per day / ISO week (Monday);
* ``tag_daily`` / ``tag_weekly``: per tag (team, cost_center, environment) and value;

each with runs, succeeded, failed, timed_out, stopped, retries, duration p50/p95/max
(seconds; p50/p95 by ``percentile_approx``), DPU-hours (Glue), vCPU-hours (EMR Serverless),
cost, estimated and unpriced runs, the trailing 4 periods' average cost (4 weeks, or 28 days
for days; fewer while a job is younger) and the change against it;

* ``window_runs``: the alert window's runs, priced (for the weekly report's run tables);
* ``violations``: runs over the worker or duration threshold, failed and timed-out runs,
  weekly cost jumps against the job's trailing average and tag groups over their weekly
  budget, within the window ending ``--as-of``; jobs tagged ``remediate=false`` are left
  out. Each has a stable ``key`` the alerting task deduplicates on.

A summary (totals, row counts, seconds) is printed as JSON on the last line.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import logging
import sys
import time
from collections.abc import Sequence
from decimal import Decimal

from spark_jobs.common.cli import parse_job_args
from spark_jobs.cost.model import RateError, rates_from
from spark_jobs.cost.spark_columns import cost_columns

log = logging.getLogger("cost_aggregation")

DEFAULT_THRESHOLDS = {"max_workers": 10, "max_minutes": 480, "cost_jump": 0.5, "min_trailing_cost": 1.0}
TAGS = ("team", "cost_center", "environment")
FAILED = ("FAILED", "ERROR")
SUCCEEDED = ("SUCCEEDED", "SUCCESS")
STOPPED = ("STOPPED", "CANCELLED")
TIMED_OUT = ("TIMEOUT",)
# The window's runs, priced, for the report's run-level tables (longest, failed, by worker type).
WINDOW_RUN_COLUMNS = ("platform", "job_name", "run_id", "attempt", "state", "started_at", "execution_s", "worker_type",
                      "workers", "execution_class", "command", "architecture", "error_message", "dpu_seconds_billed",
                      "vcpu_hours", "cost", "cost_estimated", "day", *TAGS)  # fmt: skip


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cost_aggregation", description=__doc__.split("\n\n")[0])
    parser.add_argument("--ledger", required=True, help="the ledger's location (s3://... or a local folder)")
    parser.add_argument("--output", required=True, help="where the aggregate datasets go")
    parser.add_argument("--as-of", default=None, help="last day of the alert window (UTC date; default today)")
    parser.add_argument("--window-days", type=int, default=7, help="alert window length in days (default 7)")
    parser.add_argument("--rates", default="{}", help="JSON rate overrides (keys of cost_model.DEFAULT_RATES)")
    parser.add_argument("--thresholds", default="{}", help=f"JSON overrides of {DEFAULT_THRESHOLDS}")
    parser.add_argument("--budgets", default="{}", help='JSON weekly budgets in USD: {"team=finance": 500, ...}')
    return parser


class SettingsError(ValueError):
    """A job argument that cannot be used; named in the message."""


def settings_from(args: argparse.Namespace) -> tuple[dict, dict, dict, dt.date]:
    try:
        rates = rates_from(json.loads(args.rates))
    except (json.JSONDecodeError, RateError, AttributeError) as exc:
        raise SettingsError(f"--rates: {exc}") from exc
    try:
        thresholds = {**DEFAULT_THRESHOLDS, **json.loads(args.thresholds)}
        unknown = set(thresholds) - set(DEFAULT_THRESHOLDS)
        if unknown:
            raise ValueError(f"unknown threshold(s) {sorted(unknown)}; known: {sorted(DEFAULT_THRESHOLDS)}")
        thresholds = {k: float(v) for k, v in thresholds.items()}
        if any(v < 0 for v in thresholds.values()):
            raise ValueError("thresholds must be >= 0")
    except (json.JSONDecodeError, ValueError, TypeError) as exc:
        raise SettingsError(f"--thresholds: {exc}") from exc
    try:
        budgets = {str(k): float(v) for k, v in json.loads(args.budgets).items()}
        for group in budgets:
            tag, _, value = group.partition("=")
            if tag not in TAGS or not value:
                raise ValueError(f"budget group {group!r} must be <tag>=<value> with tag one of {list(TAGS)}")
    except (json.JSONDecodeError, ValueError, TypeError, AttributeError) as exc:
        raise SettingsError(f"--budgets: {exc}") from exc
    try:
        as_of = dt.date.fromisoformat(args.as_of) if args.as_of else dt.datetime.now(dt.UTC).date()
    except ValueError as exc:
        raise SettingsError(f"--as-of: {exc}") from exc
    if args.window_days < 1:
        raise SettingsError("--window-days must be >= 1")
    return rates, thresholds, budgets, as_of


def priced_runs(spark, ledger: str, rates: dict[str, Decimal]):
    """Every ledger row with its price and the period columns the aggregates group by."""
    from pyspark.sql import functions as F

    runs = spark.read.parquet(ledger)  # day= partitions discovered; _watermark.json is skipped (leading _)
    runs = cost_columns(runs, rates)
    return (
        runs.withColumn("day", F.to_date(F.col("started_at")))
        .withColumn("week", F.to_date(F.date_trunc("week", F.col("started_at"))))
        .withColumn("execution_s", F.col("execution_s").cast("double"))
    )


def _measures():
    from pyspark.sql import functions as F

    state = F.col("state")
    return [
        F.count(F.lit(1)).alias("runs"),
        F.sum(state.isin(*SUCCEEDED).cast("int")).alias("succeeded"),
        F.sum(state.isin(*FAILED).cast("int")).alias("failed"),
        F.sum(state.isin(*TIMED_OUT).cast("int")).alias("timed_out"),
        F.sum(state.isin(*STOPPED).cast("int")).alias("stopped"),
        F.sum((F.col("attempt") > 0).cast("int")).alias("retries"),
        F.percentile_approx("execution_s", 0.5, 10000).alias("duration_p50_s"),
        F.percentile_approx("execution_s", 0.95, 10000).alias("duration_p95_s"),
        F.max("execution_s").alias("duration_max_s"),
        (F.sum("dpu_seconds_billed") / 3600).cast("double").alias("dpu_hours"),
        F.sum("vcpu_hours").cast("double").alias("vcpu_hours"),
        F.sum("cost").alias("cost"),
        F.sum(F.col("cost_estimated").cast("int")).alias("estimated_runs"),
        F.sum(F.col("cost").isNull().cast("int")).alias("unpriced_runs"),
    ]


def with_trend(frame, keys: list[str], period: str, span: int):
    """Add the trailing ``span`` periods' average cost (missing periods count as zero, from the
    key's first period on) and the change of this period's cost against it."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    days = 7 if period == "week" else 1
    index = (F.datediff(F.col(period), F.lit("1970-01-05")) / days).cast("long")
    frame = frame.withColumn("_i", index)
    ordered = Window.partitionBy(*keys).orderBy("_i")
    trailing = ordered.rangeBetween(-span, -1)
    first = F.min("_i").over(Window.partitionBy(*keys))
    periods = F.least(F.lit(span), F.col("_i") - first)
    average = F.when(periods > 0, F.coalesce(F.sum("cost").over(trailing), F.lit(0)) / periods)
    return (
        frame.withColumn("trailing_avg_cost", average.cast("double"))
        .withColumn(
            "cost_change",
            F.when(F.col("trailing_avg_cost") > 0, F.col("cost").cast("double") / F.col("trailing_avg_cost") - 1),
        )
        .drop("_i")
    )


def aggregates(runs) -> dict:
    from pyspark.sql import functions as F

    job_keys = ["platform", "job_name"]
    out = {}
    for period, span, suffix in (("day", 28, "daily"), ("week", 4, "weekly")):
        jobs = runs.groupBy(*job_keys, period).agg(*_measures(), *[F.first(t, ignorenulls=True).alias(t) for t in (*TAGS, "remediate")])  # fmt: skip
        out[f"job_{suffix}"] = with_trend(jobs, job_keys, period, span)
        tagged = runs.select(
            "*",
            F.explode(
                F.array(
                    *[
                        F.struct(
                            F.lit(t).alias("tag_key"), F.coalesce(F.col(t), F.lit("(untagged)")).alias("tag_value")
                        )
                        for t in TAGS
                    ]
                )
            ).alias("_tag"),  # fmt: skip
        ).select("*", "_tag.tag_key", "_tag.tag_value")
        tags = tagged.groupBy("tag_key", "tag_value", period).agg(*_measures())
        out[f"tag_{suffix}"] = with_trend(tags, ["tag_key", "tag_value"], period, span)
    return out


def violations(runs, job_weekly, tag_weekly, thresholds: dict, budgets: dict, as_of: dt.date, window_days: int):
    """Everything to alert on in the window, one row each, with a stable deduplication key."""
    from pyspark.sql import functions as F

    start = as_of - dt.timedelta(days=window_days - 1)
    in_window = (F.col("day") >= F.lit(start)) & (F.col("day") <= F.lit(as_of))
    alertable = F.coalesce(F.lower(F.col("remediate")), F.lit("")) != "false"
    recent = runs.where(in_window & alertable)
    run_text = F.format_string("%s job %s, run %s started %s", "platform", "job_name", "run_id",
                               F.date_format("started_at", "yyyy-MM-dd HH:mm 'UTC'"))  # fmt: skip
    minutes = F.col("execution_s") / 60
    error = F.when(F.col("error_message").isNotNull(), F.concat(F.lit(": "), F.col("error_message"))).otherwise("")
    per_run = []
    for kind, condition, value, threshold, detail in (
        ("workers_over", F.col("workers") > thresholds["max_workers"], F.col("workers"), thresholds["max_workers"],
         F.format_string("%s: %.0f workers, over the threshold of %.0f", run_text, "workers", F.lit(thresholds["max_workers"]))),
        ("duration_over", F.col("execution_s") > thresholds["max_minutes"] * 60, minutes, thresholds["max_minutes"],
         F.format_string("%s: ran %.0f minutes, over the threshold of %.0f", run_text, minutes, F.lit(thresholds["max_minutes"]))),
        ("failed", F.col("state").isin(*FAILED), F.lit(None).cast("double"), None,
         F.concat(F.format_string("%s: %s", run_text, F.lower("state")), error)),
        ("timed_out", F.col("state").isin(*TIMED_OUT), minutes, None,
         F.concat(F.format_string("%s: timed out after %.0f minutes", run_text, minutes), error)),
    ):  # fmt: skip
        per_run.append(
            recent.where(condition).select(
                F.concat_ws(":", F.lit(kind), F.col("platform"), F.col("run_id")).alias("key"),
                F.lit(kind).alias("kind"),
                "platform",
                "job_name",
                "run_id",
                F.col("day").cast("string").alias("period"),
                value.cast("double").alias("value"),
                F.lit(threshold).cast("double").alias("threshold"),
                detail.alias("detail"),
                *TAGS,
            )  # fmt: skip
        )
    week_start = as_of - dt.timedelta(days=as_of.weekday())
    weeks = (F.col("week") >= F.lit(start - dt.timedelta(days=start.weekday()))) & (F.col("week") <= F.lit(week_start))
    jumps = job_weekly.where(
        weeks & (F.coalesce(F.lower(F.col("remediate")), F.lit("")) != "false")
        & (F.col("cost_change") > thresholds["cost_jump"]) & (F.col("trailing_avg_cost") >= thresholds["min_trailing_cost"])
    ).select(
        F.concat_ws(":", F.lit("cost_jump"), "platform", "job_name", F.col("week").cast("string")).alias("key"),
        F.lit("cost_jump").alias("kind"), "platform", "job_name", F.lit(None).cast("string").alias("run_id"),
        F.col("week").cast("string").alias("period"), F.col("cost").cast("double").alias("value"),
        F.col("trailing_avg_cost").alias("threshold"),
        F.format_string("weekly cost of %s %s jumped to $%.2f in the week of %s: %+.0f%% against its trailing "
                        "average of $%.2f", "platform", "job_name", F.col("cost").cast("double"),
                        F.col("week").cast("string"), F.col("cost_change") * 100, "trailing_avg_cost").alias("detail"),
        *TAGS,
    )  # fmt: skip
    frames = [*per_run, jumps]
    if budgets:
        spark = runs.sparkSession
        budget_frame = spark.createDataFrame(
            [(g.partition("=")[0], g.partition("=")[2], float(b)) for g, b in budgets.items()],
            "tag_key string, tag_value string, budget double",
        )
        over = (
            tag_weekly.where(weeks).join(budget_frame, ["tag_key", "tag_value"]).where(F.col("cost") > F.col("budget"))
        )
        frames.append(over.select(
            F.concat_ws(":", F.lit("budget"), F.concat_ws("=", "tag_key", "tag_value"), F.col("week").cast("string")).alias("key"),
            F.lit("budget").alias("kind"), F.lit(None).cast("string").alias("platform"),
            F.lit(None).cast("string").alias("job_name"), F.lit(None).cast("string").alias("run_id"),
            F.col("week").cast("string").alias("period"), F.col("cost").cast("double").alias("value"),
            F.col("budget").alias("threshold"),
            F.format_string("%s=%s spent $%.2f in the week of %s, over its budget of $%.2f", "tag_key", "tag_value",
                            F.col("cost").cast("double"), F.col("week").cast("string"), "budget").alias("detail"),
            *[F.when(F.col("tag_key") == t, F.col("tag_value")).alias(t) for t in TAGS],
        ))  # fmt: skip
    result = frames[0]
    for frame in frames[1:]:
        result = result.unionByName(frame)
    return result


def run(args: argparse.Namespace, spark) -> dict:
    from pyspark.sql import functions as F

    started = time.monotonic()
    rates, thresholds, budgets, as_of = settings_from(args)
    runs = priced_runs(spark, args.ledger, rates).cache()
    counted = runs.count()
    if counted == 0:
        raise SettingsError(f"--ledger: no runs under {args.ledger}")
    log.info("ledger %s: %d run(s)", args.ledger, counted)
    datasets = {name: frame.cache() for name, frame in aggregates(runs).items()}  # violations reads the weekly ones
    start = as_of - dt.timedelta(days=args.window_days - 1)
    datasets["window_runs"] = runs.where((F.col("day") >= F.lit(start)) & (F.col("day") <= F.lit(as_of))).select(
        *WINDOW_RUN_COLUMNS
    )
    datasets["violations"] = violations(runs, datasets["job_weekly"], datasets["tag_weekly"], thresholds, budgets,
                                        as_of, args.window_days)  # fmt: skip
    counts = {}
    for name, frame in datasets.items():
        target = f"{args.output.rstrip('/')}/{name}"
        frame.coalesce(1).write.mode("overwrite").parquet(target)
        counts[name] = frame.count()
        log.info("wrote %s: %d row(s)", target, counts[name])
    totals = runs.agg(F.sum("cost").alias("cost"), F.count(F.lit(1)).alias("runs")).first()
    summary = {
        "ok": True, "runs": counted, "cost": str(totals.cost), "rows": counts, "as_of": as_of.isoformat(),
        "window_days": args.window_days, "thresholds": thresholds, "budgets": budgets, "output": args.output,
        "seconds": round(time.monotonic() - started, 3),
    }  # fmt: skip
    runs.unpersist()
    return summary


def main(argv: Sequence[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", stream=sys.stderr)
    args = parse_job_args(build_parser(), argv)
    try:
        settings_from(args)
    except SettingsError as exc:
        log.error("%s", exc)
        print(json.dumps({"ok": False, "error": str(exc)}))
        return 2
    from spark_jobs.common.session import get_spark

    spark = get_spark("cost_aggregation")
    try:
        summary = run(args, spark)
    except SettingsError as exc:
        log.error("%s", exc)
        print(json.dumps({"ok": False, "error": str(exc)}))
        return 2
    print(json.dumps(summary))
    return 0


if __name__ == "__main__":
    sys.exit(main())
