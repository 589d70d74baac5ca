"""The cost model as Spark column expressions over ledger rows.

Mirrors :func:`spark_jobs.cost.model.record_cost` branch by branch, from the same
tables (rates, DPUs per worker type, minimums), so a rate override reprices the whole
ledger in one pass. The benchmark and tests compare the two on the same rows.
"""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal

from spark_jobs.cost.model import LEGACY_GLUE_VERSIONS, MINIMUM_S, PYTHON_SHELL, WORKER_DPU

# Decimal types sized so Spark never trims the scale: its rule for products and quotients
# whose declared precision passes 38 digits keeps as few as 6 decimals, a visible error on
# a run priced per second. Inputs and rates are narrow; every step is cast back to MID.
QTY = "DECIMAL(18, 8)"
RATE = "DECIMAL(12, 8)"
MID = "DECIMAL(24, 12)"


def _literal_map(values: Mapping[str, Decimal]):
    from pyspark.sql import functions as F

    return F.create_map(*[x for k, v in values.items() for x in (F.lit(k), F.lit(str(v)).cast(RATE))])


def _mul(a, b):
    return (a * b).cast(MID)


def _per_hour(seconds):
    return (seconds / 3600).cast(MID)


def cost_columns(df, rates: Mapping[str, Decimal]):
    """``df`` with ``dpu_seconds_billed``, ``vcpu_hours``, ``memory_gb_hours``, ``storage_gb_hours``
    and ``cost`` (USD, decimal) computed from its ledger columns."""
    from pyspark.sql import functions as F

    def num(name: str):
        return F.col(name).cast(QTY)

    zero = F.lit(0).cast(QTY)

    def positive(name: str):
        return F.coalesce(num(name), zero) > 0

    rate = _literal_map(rates)
    shell = F.col("command") == PYTHON_SHELL
    glue_rate_key = (
        F.when(shell, "glue_python_shell_dpu_hour")
        .when(F.col("execution_class") == "FLEX", "glue_flex_dpu_hour")
        .when(F.col("worker_type").startswith("R."), "glue_memory_optimized_dpu_hour")
        .otherwise("glue_dpu_hour")
    )
    legacy = F.col("glue_version").isin(*LEGACY_GLUE_VERSIONS) & ~F.coalesce(shell, F.lit(False))
    minimum = F.when(legacy, MINIMUM_S["legacy"]).otherwise(MINIMUM_S["default"]).cast(QTY)
    billed_s = F.greatest(num("execution_s"), minimum)  # null when execution_s is null
    guessed = F.regexp_extract(F.col("worker_type"), r"^[A-Z]\.(\d+)X$", 1)
    per_worker = F.coalesce(
        _literal_map(WORKER_DPU)[F.col("worker_type")],
        F.when(guessed != "", guessed.cast(RATE)),
    )
    glue_dpu_s = (
        F.when(shell, _mul(F.coalesce(num("max_capacity"), F.lit("0.0625").cast(QTY)), billed_s))
        .when(positive("dpu_seconds"), num("dpu_seconds").cast(MID))
        .when(per_worker.isNotNull() & positive("workers"), _mul(_mul(num("workers"), per_worker), billed_s))
        .when(positive("max_capacity"), _mul(num("max_capacity"), billed_s))
        .when(positive("allocated_capacity"), _mul(num("allocated_capacity"), billed_s))
    )

    arch = F.when(F.upper(F.col("architecture")) == "ARM64", "arm64").otherwise("x86_64")
    billed = positive("billed_vcpu_hours") | positive("billed_memory_gb_hours")
    total = positive("total_vcpu_hours") | positive("total_memory_gb_hours")
    requested_hours = _per_hour(F.greatest(num("execution_s"), F.lit(MINIMUM_S["default"]).cast(QTY)))

    def usage(kind: str, requested):
        return (
            F.when(billed, F.coalesce(num(f"billed_{kind}"), zero))
            .when(total, F.coalesce(num(f"total_{kind}"), zero))
            .when(positive("execution_s"), requested)
            .cast(MID)
        )

    vcpu = usage("vcpu_hours", _mul(F.coalesce(num("requested_vcpu"), zero), requested_hours))
    memory = usage("memory_gb_hours", _mul(F.coalesce(num("requested_memory_gb"), zero), requested_hours))
    storage = usage("storage_gb_hours", zero)
    emr_cost = (
        _mul(vcpu, rate[F.concat(F.lit("emr_"), arch, F.lit("_vcpu_hour"))])
        + _mul(memory, rate[F.concat(F.lit("emr_"), arch, F.lit("_memory_gb_hour"))])
        + _mul(storage, rate[F.lit("emr_storage_gb_hour")])
    ).cast(MID)
    is_emr = F.col("platform") == "emr_serverless"
    return (
        df.withColumn("dpu_seconds_billed", F.when(~is_emr, glue_dpu_s))
        .withColumn("vcpu_hours", F.when(is_emr, vcpu))
        .withColumn("memory_gb_hours", F.when(is_emr, memory))
        .withColumn("storage_gb_hours", F.when(is_emr, storage))
        .withColumn(
            "cost",
            F.when(is_emr, emr_cost).otherwise(_per_hour(_mul(F.col("dpu_seconds_billed"), rate[glue_rate_key]))),
        )
    )
