"""Run a Glue job on the healthiest VPC subnet among its candidate connections."""

from __future__ import annotations

import pendulum
from airflow.sdk import DAG, Param

from operators.subnet.glue_operator import GlueJobOnHealthiestSubnetOperator

DOC = """
### Glue job on the healthiest subnet

A Glue job in a VPC takes one IP address per worker from the subnet of its first usable
connection. This DAG decides at run time which candidate connection the job uses: it
checks every candidate (subnet and zone state, zones you avoid, free IPs net of runs just
started, the self-referencing security group rule Glue requires, a route to S3, recent
IP/ENI/AZ failures), ranks the healthy ones by the chosen strategy, writes the job's
connection list in that order (connections it does not manage stay after them), starts
the run and waits for it. Retries decide again. The ranking table, with the reason for
every candidate, is in the task log and in XCom (`subnet_ranking`).

**Params** (empty values fall back to the `glue_subnet_failover` Variable, a JSON object
with `job_name`, `candidate_connections` and `lock_uri`):
- `job_name`: the Glue job to run.
- `candidate_connections`: Glue connection names to choose from.
- `strategy`: `capacity` (most free IPs), `random`, `weighted` (spreads concurrent jobs),
  `az-spread` (least-used zone first).
- `num_workers`: workers for this run (empty: the job's own setting).
- `avoid_zones`: Availability Zones not to use, e.g. `us-east-1b`.
- `dry_run`: decide and report, start nothing.
"""

CONFIG = "var.json.get('glue_subnet_failover', {})"

with DAG(
    dag_id="glue_subnet_failover",
    description="Start a Glue job on the healthiest of its candidate subnets",
    doc_md=DOC,
    schedule=None,
    start_date=pendulum.datetime(2026, 1, 1, tz="UTC"),
    catchup=False,
    max_active_runs=10,
    render_template_as_native_obj=True,
    tags=["glue", "network", "failover"],
    # Retries decide again; backing off (30 s, 60 s, 120 s ... at most 10 min) gives ENIs of failed
    # runs time to be released and an impaired zone time to recover.
    default_args={
        "owner": "data-platform",
        "retries": 3,
        "retry_delay": pendulum.duration(seconds=30),
        "retry_exponential_backoff": True,
        "max_retry_delay": pendulum.duration(minutes=10),
    },
    params={
        "job_name": Param(
            None,
            type=["null", "string"],
            title="Glue job name",
            description="Empty: the job_name of the glue_subnet_failover Variable.",
        ),
        "candidate_connections": Param(
            [],
            type="array",
            items={"type": "string"},
            title="Candidate connections",
            description="Glue connection names; empty: from the Variable.",
        ),
        "strategy": Param(
            None,
            type=["null", "string"],
            enum=[None, "capacity", "random", "weighted", "az-spread"],
            title="Strategy",
            description="Empty: the Variable's strategy (capacity when it has none). capacity: most free IPs; "
            "random; weighted: spreads concurrent jobs; az-spread: least-used zone first.",
        ),
        "num_workers": Param(
            None,
            type=["null", "integer"],
            minimum=1,
            maximum=1000,
            title="Workers",
            description="Empty: the job's NumberOfWorkers.",
        ),
        "avoid_zones": Param(
            [],
            type="array",
            items={"type": "string", "pattern": r"^[a-z]{2}-[a-z]+-\d[a-z]$"},
            title="Zones to avoid",
            description="e.g. us-east-1b",
        ),
        "dry_run": Param(False, type="boolean", title="Dry run", description="Decide and report; start nothing."),
    },
):
    GlueJobOnHealthiestSubnetOperator(
        task_id="start_on_healthiest_subnet",
        job_name="{{ params.job_name or " + CONFIG + ".get('job_name', '') }}",
        candidate_connections="{{ params.candidate_connections or " + CONFIG + ".get('candidate_connections', []) }}",
        strategy="{{ params.strategy or " + CONFIG + ".get('strategy') or 'capacity' }}",
        num_workers="{{ params.num_workers }}",
        avoid_zones="{{ params.avoid_zones }}",
        dry_run="{{ params.dry_run }}",
        lock_uri="{{ " + CONFIG + ".get('lock_uri') }}",
        deferrable=True,
        waiter_delay=10,
    )
