"""Run prices against hand-computed cases, to the cent, and the rules they must always keep."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spark_jobs.cost.model import (
    DEFAULT_RATES,
    LEDGER_FIELDS,
    WORKER_DPU,
    RateError,
    emr_record,
    emr_run_cost,
    glue_record,
    glue_run_cost,
    rates_from,
    record_cost,
)

T0 = dt.datetime(2026, 11, 2, 8, 0, tzinfo=dt.UTC)


def glue_run(**fields):
    return {"Id": "jr_1", "JobName": "j", "JobRunState": "SUCCEEDED", "GlueVersion": "4.0", **fields}


def job(command="glueetl", **fields):
    return {"Name": "j", "Command": {"Name": command}, **fields}


# (run fields, job fields, expected dollars, estimated); worked out by hand from the rate table:
# standard $0.44, Flex $0.29, memory-optimized (R.*) $0.52 per DPU-hour.
GLUE_CASES = {
    "G.1X x10, 30 min": ({"WorkerType": "G.1X", "NumberOfWorkers": 10, "ExecutionTime": 1800}, {}, "2.20", False),
    "1-minute minimum": ({"WorkerType": "G.1X", "NumberOfWorkers": 10, "ExecutionTime": 30}, {}, "0.07", False),
    "Glue 1.0: 10-minute minimum": (
        {"GlueVersion": "1.0", "WorkerType": "Standard", "NumberOfWorkers": 10, "ExecutionTime": 120}, {}, "0.73", False),
    "Glue 0.9 as moto reports it": (
        {"GlueVersion": "0.9", "WorkerType": "Standard", "NumberOfWorkers": 10, "MaxCapacity": 10.0,
         "AllocatedCapacity": 10, "ExecutionTime": 123}, {}, "0.73", False),
    "G.025X x2, 1 h": ({"WorkerType": "G.025X", "NumberOfWorkers": 2, "ExecutionTime": 3600}, {}, "0.22", False),
    "G.2X x4, 10 min": ({"WorkerType": "G.2X", "NumberOfWorkers": 4, "ExecutionTime": 600}, {}, "0.59", False),
    "G.4X x2, 30 min": ({"WorkerType": "G.4X", "NumberOfWorkers": 2, "ExecutionTime": 1800}, {}, "1.76", False),
    "G.8X x5, 15 min": ({"WorkerType": "G.8X", "NumberOfWorkers": 5, "ExecutionTime": 900}, {}, "4.40", False),
    "G.12X x3, 20 min": ({"WorkerType": "G.12X", "NumberOfWorkers": 3, "ExecutionTime": 1200}, {}, "5.28", False),
    "G.16X x2, 2 h": ({"WorkerType": "G.16X", "NumberOfWorkers": 2, "ExecutionTime": 7200}, {}, "28.16", False),
    "R.2X x4, 1 h": ({"WorkerType": "R.2X", "NumberOfWorkers": 4, "ExecutionTime": 3600}, {}, "4.16", False),
    "Z.2X (Ray) x5, 30 min": (
        {"WorkerType": "Z.2X", "NumberOfWorkers": 5, "ExecutionTime": 1800}, {"Command": {"Name": "glueray"}}, "2.20", False),
    "Flex from DPUSeconds": (
        {"ExecutionClass": "FLEX", "WorkerType": "G.1X", "NumberOfWorkers": 10, "ExecutionTime": 5000,
         "DPUSeconds": 7200.0}, {}, "0.58", False),
    "auto-scaled from DPUSeconds": (
        {"WorkerType": "G.1X", "NumberOfWorkers": 20, "ExecutionTime": 3600, "DPUSeconds": 36000.0},
        {"DefaultArguments": {"--enable-auto-scaling": "true"}}, "4.40", False),
    "Python shell 0.0625 DPU, 1 h": (
        {"MaxCapacity": 0.0625, "ExecutionTime": 3600}, {"Command": {"Name": "pythonshell"}}, "0.03", False),
    "Python shell 1 DPU, 90 min": (
        {"MaxCapacity": 1.0, "ExecutionTime": 5400}, {"Command": {"Name": "pythonshell"}}, "0.66", False),
    "legacy MaxCapacity only": ({"GlueVersion": "1.0", "MaxCapacity": 10.0, "ExecutionTime": 1200}, {}, "1.47", False),
    # estimated: the fields that would make it exact are missing
    "Flex without DPUSeconds": (
        {"ExecutionClass": "FLEX", "WorkerType": "G.1X", "NumberOfWorkers": 10, "ExecutionTime": 3600}, {}, "2.90", True),
    "auto-scaled without DPUSeconds": (
        {"WorkerType": "G.2X", "NumberOfWorkers": 10, "ExecutionTime": 1800},
        {"DefaultArguments": {"--enable-auto-scaling": "true"}}, "4.40", True),
    "worker type newer than the table": (
        {"WorkerType": "G.32X", "NumberOfWorkers": 1, "ExecutionTime": 3600}, {}, "14.08", True),
    "Python shell without MaxCapacity": ({"ExecutionTime": 3600}, {"Command": {"Name": "pythonshell"}}, "0.03", True),
    "no ExecutionTime: start to completion": (
        {"WorkerType": "G.1X", "NumberOfWorkers": 2, "StartedOn": T0, "CompletedOn": T0 + dt.timedelta(minutes=45)},
        {}, "0.66", True),
    "workers and capacity from the job definition": (
        {"ExecutionTime": 1800}, {"WorkerType": "G.2X", "NumberOfWorkers": 5}, "2.20", False),
}  # fmt: skip


@pytest.mark.parametrize("case", GLUE_CASES)
def test_glue_run_cost_by_hand(case):
    run, job_fields, dollars, estimated = GLUE_CASES[case]
    cost = glue_run_cost(glue_run(**run), job(**job_fields))
    assert cost.cents() == Decimal(dollars), (case, cost)
    assert cost.estimated is estimated, (case, cost.notes)
    assert bool(cost.notes) is estimated


def test_every_worker_type_is_priced_by_its_own_dpu_count():
    hour = {"NumberOfWorkers": 1, "ExecutionTime": 3600}
    for worker_type, dpu in WORKER_DPU.items():
        rate = DEFAULT_RATES["glue_memory_optimized_dpu_hour" if worker_type.startswith("R.") else "glue_dpu_hour"]
        cost = glue_run_cost(glue_run(WorkerType=worker_type, **hour), job())
        assert cost.cost_usd == dpu * rate, worker_type
        assert cost.dpu_hours == dpu


def test_glue_run_without_anything_to_price_is_kept_not_crashed():
    cost = glue_run_cost({"Id": "jr_x", "JobName": "j", "JobRunState": "RUNNING"})
    assert cost.cost_usd is None and cost.estimated and "no execution time" in cost.notes[-1]
    cost = glue_run_cost(glue_run(ExecutionTime=100))
    assert cost.cost_usd is None and "no workers" in cost.notes[-1]


EMR_X86 = {"vCPUHour": 10.0, "memoryGBHour": 40.0, "storageGBHour": 100.0}


def emr_run(**fields):
    return {"applicationId": "app", "jobRunId": "r1", "name": "nightly", "state": "SUCCESS", **fields}


def test_emr_serverless_cost_by_hand():
    # x86: 10 x 0.052624 + 40 x 0.0057785 + 100 x 0.000111 = 0.76848
    cost = emr_run_cost(emr_run(billedResourceUtilization=EMR_X86), "X86_64")
    assert cost.cost_usd == Decimal("0.76848") and cost.cents() == Decimal("0.77") and not cost.estimated
    # arm64: 10 x 0.042094 + 40 x 0.004628 + 100 x 0.000111 = 0.61716
    cost = emr_run_cost(emr_run(billedResourceUtilization=EMR_X86), "ARM64")
    assert cost.cost_usd == Decimal("0.61716") and cost.cents() == Decimal("0.62")


def test_emr_serverless_estimates_without_billed_utilization():
    cost = emr_run_cost(emr_run(billedResourceUtilization={"vCPUHour": 0.0, "memoryGBHour": 0.0},
                                totalResourceUtilization=EMR_X86))  # fmt: skip
    assert cost.cost_usd == Decimal("0.76848") and cost.estimated and cost.basis == "total_utilization"
    # moto's runs: zero utilization. 1 h x (driver 4 vCPU/16 GB + 2 executors of 4 vCPU/16 GB):
    # 12 x 0.052624 + 48 x 0.0057785 = 0.908856
    params = "--conf spark.executor.instances=2 --conf spark.executor.cores=4 --conf spark.executor.memory=16g"
    cost = emr_run_cost(emr_run(billedResourceUtilization={"vCPUHour": 0.0, "memoryGBHour": 0.0, "storageGBHour": 0.0},
                                totalExecutionDurationSeconds=3600,
                                jobDriver={"sparkSubmit": {"entryPoint": "s3://b/j.py", "sparkSubmitParameters": params}}))  # fmt: skip
    assert cost.cost_usd == Decimal("0.908856") and cost.cents() == Decimal("0.91") and cost.estimated
    assert emr_run_cost(emr_run()).cost_usd is None


def test_rate_overrides():
    rates = rates_from({"glue_dpu_hour": "0.50"})
    assert glue_run_cost(glue_run(WorkerType="G.1X", NumberOfWorkers=10, ExecutionTime=3600), job(), rates).cents() == Decimal("5.00")  # fmt: skip
    assert rates["glue_flex_dpu_hour"] == DEFAULT_RATES["glue_flex_dpu_hour"]
    with pytest.raises(RateError, match="glue_dpu_hours"):
        rates_from({"glue_dpu_hours": 1})
    with pytest.raises(RateError, match="must be a number >= 0"):
        rates_from({"glue_dpu_hour": -1})
    with pytest.raises(RateError, match="not a number"):
        rates_from({"glue_dpu_hour": "cheap"})


def test_records_are_flat_ledger_rows():
    glue = glue_record(glue_run(WorkerType="G.1X", NumberOfWorkers=2, ExecutionTime=60), job())
    emr = emr_record(emr_run(billedResourceUtilization=EMR_X86, attempt=2), "ARM64")
    assert tuple(glue) == LEDGER_FIELDS and tuple(emr) == LEDGER_FIELDS
    assert emr["attempt"] == 1 and emr["architecture"] == "ARM64"
    assert record_cost(emr) == emr_run_cost(emr_run(billedResourceUtilization=EMR_X86, attempt=2), "ARM64")


worker_types = st.sampled_from([*WORKER_DPU, "G.32X", "Bogus", None])
maybe_number = st.one_of(st.none(), st.integers(0, 200_000), st.floats(0, 1e6, allow_nan=False), st.just("n/a"))


@settings(max_examples=300, deadline=None)
@given(
    worker_type=worker_types,
    workers=st.one_of(st.none(), st.integers(0, 300)),
    seconds=maybe_number,
    dpu_seconds=maybe_number,
    capacity=maybe_number,
    version=st.sampled_from(["0.9", "1.0", "2.0", "4.0", "5.0", None]),
    command=st.sampled_from(["glueetl", "gluestreaming", "glueray", "pythonshell", None]),
    execution_class=st.sampled_from(["STANDARD", "FLEX", None]),
)
def test_glue_pricing_never_crashes_and_is_never_negative(worker_type, workers, seconds, dpu_seconds, capacity,
                                                          version, command, execution_class):  # fmt: skip
    run = {"Id": "jr", "JobName": "j", "WorkerType": worker_type, "NumberOfWorkers": workers,
           "ExecutionTime": seconds, "DPUSeconds": dpu_seconds, "MaxCapacity": capacity, "GlueVersion": version,
           "ExecutionClass": execution_class}  # fmt: skip
    cost = glue_run_cost(run, {"Command": {"Name": command}} if command else None)
    assert cost.cost_usd is None or cost.cost_usd >= 0
    assert cost.cost_usd is not None or cost.estimated


@settings(max_examples=200, deadline=None)
@given(
    workers=st.integers(1, 100),
    seconds=st.integers(0, 100_000),
    extra=st.integers(1, 10_000),
    worker_type=st.sampled_from(list(WORKER_DPU)),
)
def test_glue_cost_grows_with_time_and_workers(workers, seconds, extra, worker_type):
    def price(n, s):
        return glue_run_cost(glue_run(WorkerType=worker_type, NumberOfWorkers=n, ExecutionTime=s), job()).cost_usd

    assert price(workers, seconds + extra) >= price(workers, seconds)
    assert price(workers + 1, seconds) > price(workers, seconds)
    assert price(workers, min(seconds, 60)) == price(workers, 60)  # the minimum
