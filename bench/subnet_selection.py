"""Healthiest-subnet decisions against the reference approach, on the same random scenarios.

Each scenario is built in the local stack (moto): 2 to 20 Glue connections over 1 to 6
zones, some subnets exhausted, some zones impaired, some security groups without Glue's
self-referencing rule, some subnets without an S3 route, then a burst of 1 to 10 jobs of
2 to 50 workers decided one right after the other (as concurrent task instances are,
before any ENI of the earlier runs shows up in the subnet's free-IP count).

- ours: the operator's decision (six batched reads, full health checks, free IPs net of
  the runs it just started), its ranked connection list written to the job;
- reference: for each connection one GetConnection and one DescribeSubnets; groups
  'free IPs >= workers' and 'free IPs >= 2', ordered by free IPs (or shuffled within
  groups); no other health signal.

Every decision then starts a real run on the local stack, whose Glue applies its own checks
at submission (local/engines/glue_network.py: the job's connections in listed order, the
first with an available subnet and zone, an S3 route, the security-group rules and free IPs;
the addresses live runs hold count), and the outcome is what that run got: its output log's
``Network:`` line says full or under capacity, a run that found no connection failed.

Writes ``{"ours": {...}, "reference": {...}, "scenarios": n, ...}`` with
``full_capacity_start_rate`` (over the jobs for which, at their turn, a truly healthy
subnet still had room for all workers; ``..._whole_burst_feasible`` counts over bursts that a
packing knowing all jobs in advance could fit), ``failed_start_rate`` (and the part of it
where a healthy subnet was there to be chosen), ``aws_calls_per_decision`` (at 20 connections) and ``decision_ms_p50``.

    python bench/subnet_selection.py [--quick] [--out bench/results/subnet_selection.json] [--seed N]
"""

from __future__ import annotations

import argparse
import ipaddress
import random
import re
import statistics
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import write_results  # noqa: E402
from local.aws.faults import post_zone_state  # noqa: E402
from local.paths import TMP  # noqa: E402
from local.seeds.aws_world import create_glue_security_group, create_network_connection  # noqa: E402
from local.services.stack import running_stack  # noqa: E402
from operators.subnet.glue_operator import job_update_with_connections  # noqa: E402
from operators.vpc.health import CONNECTION_ARG, CallCounter, gather_candidates  # noqa: E402
from operators.vpc.ranking import Demand, NoHealthyConnection, rank_connections  # noqa: E402

ZONES = [f"us-east-1{c}" for c in "abcdef"]
PREFIXES = (28, 27, 26, 25, 24)  # 11, 27, 59, 123, 251 free addresses


@dataclass
class SubnetPlan:
    name: str
    zone: str
    prefix: int
    exhausted: bool
    self_rule: bool
    s3_route: bool


@dataclass
class Scenario:
    subnets: list[SubnetPlan]
    impaired: set[str]
    burst: list[int]  # workers per job


def make_scenario(rng: random.Random, connections: int | None = None) -> Scenario:
    n = connections or rng.randint(2, 20)
    zones = rng.sample(ZONES, rng.randint(1, 6))
    subnets = [
        SubnetPlan(
            name=f"c{i:02d}",
            zone=rng.choice(zones),
            prefix=rng.choice(PREFIXES),
            exhausted=False,
            self_rule=rng.random() > 0.15,
            s3_route=rng.random() > 0.15,
        )
        for i in range(n)
    ]
    for plan in subnets:
        if rng.random() < 0.15:  # exhausted: a small subnet whose addresses ENIs have taken
            plan.exhausted, plan.prefix = True, 28
    impaired = {z for z in zones if rng.random() < 0.15}
    burst = [rng.randint(2, 50) for _ in range(rng.randint(1, 10))]
    return Scenario(subnets, impaired, burst)


@dataclass
class Built:
    connections: list[str]
    truth: dict[str, dict]  # connection -> zone, free, self_rule, s3_route
    vpc: str = ""
    enis: list[str] = field(default_factory=list)


class Counting:
    """Counts requests a client makes (botocore's before-call event)."""

    def __init__(self, *clients):
        self.count = 0
        for c in clients:
            c.meta.events.register("before-call", self._hit)

    def _hit(self, **_):
        self.count += 1


def build(stack, scenario: Scenario, tag: str) -> Built:
    ec2, glue = stack.boto3_client("ec2"), stack.boto3_client("glue")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    sg_self = create_glue_security_group(ec2, vpc, f"self-{tag}", self_referencing=True)
    sg_open = create_glue_security_group(ec2, vpc, f"open-{tag}", self_referencing=False)
    rt_s3 = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    rt_none = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.create_vpc_endpoint(
        VpcId=vpc, ServiceName="com.amazonaws.us-east-1.s3", VpcEndpointType="Gateway", RouteTableIds=[rt_s3]
    )
    blocks = iter(ipaddress.ip_network("10.0.0.0/16").subnets(new_prefix=23))
    truth, names, enis = {}, [], []
    for plan in scenario.subnets:
        cidr = next(blocks).subnets(new_prefix=plan.prefix).__next__()
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock=str(cidr), AvailabilityZone=plan.zone)["Subnet"]
        ec2.associate_route_table(RouteTableId=rt_s3 if plan.s3_route else rt_none, SubnetId=subnet["SubnetId"])
        free = subnet["AvailableIpAddressCount"]
        if plan.exhausted:
            for _ in range(free - 1):
                enis.append(
                    ec2.create_network_interface(SubnetId=subnet["SubnetId"])["NetworkInterface"]["NetworkInterfaceId"]
                )
            free = 1
        name = f"bench-{tag}-{plan.name}"
        create_network_connection(glue, name, subnet["SubnetId"], sg_self if plan.self_rule else sg_open, plan.zone)
        names.append(name)
        truth[name] = {"zone": plan.zone, "free": free, "self_rule": plan.self_rule, "s3_route": plan.s3_route}
    return Built(names, truth, vpc, enis)


def tear_down(stack, built: Built) -> None:
    """Remove a scenario's resources, so every scenario meets an account of ordinary size."""
    ec2, glue = stack.boto3_client("ec2"), stack.boto3_client("glue")
    for name in built.connections:
        glue.delete_connection(ConnectionName=name)
    for eni in built.enis:
        ec2.delete_network_interface(NetworkInterfaceId=eni)
    vpc_filter = [{"Name": "vpc-id", "Values": [built.vpc]}]
    for endpoint in ec2.describe_vpc_endpoints(Filters=vpc_filter)["VpcEndpoints"]:
        ec2.delete_vpc_endpoints(VpcEndpointIds=[endpoint["VpcEndpointId"]])
    tables = ec2.describe_route_tables(Filters=vpc_filter)["RouteTables"]
    for table in tables:
        for assoc in table.get("Associations", []):
            if assoc.get("SubnetId"):
                ec2.disassociate_route_table(AssociationId=assoc["RouteTableAssociationId"])
    for subnet in ec2.describe_subnets(Filters=vpc_filter)["Subnets"]:
        ec2.delete_subnet(SubnetId=subnet["SubnetId"])
    for table in tables:
        if not any(a.get("Main") for a in table.get("Associations", [])):
            ec2.delete_route_table(RouteTableId=table["RouteTableId"])
    for group in ec2.describe_security_groups(Filters=vpc_filter)["SecurityGroups"]:
        if group["GroupName"] != "default":
            ec2.delete_security_group(GroupId=group["GroupId"])
    ec2.delete_vpc(VpcId=built.vpc)


def new_job(glue, role: str, connections: list[str], hold_script: str) -> str:
    """A job whose runs stay live (the stack's hold script, for a day) until the burst is over,
    as just-started runs do: their ENIs are not yet visible, so only pending IPs count them."""
    name = f"bench-job-{uuid.uuid4().hex[:8]}"
    glue.create_job(
        Name=name, Role=role, Command={"Name": "glueetl", "ScriptLocation": hold_script},
        DefaultArguments={"--seconds": "86400"},
        WorkerType="G.1X", NumberOfWorkers=10, Connections={"Connections": connections[:1]},
        ExecutionProperty={"MaxConcurrentRuns": 100},
    )  # fmt: skip
    return name


def stop_runs(glue, job: str) -> None:
    """End a burst's runs and wait until they have ended, so their addresses are free again
    before the next approach plays the same burst."""
    live = ("WAITING", "STARTING", "RUNNING", "STOPPING")
    ids = [r["Id"] for r in glue.get_job_runs(JobName=job)["JobRuns"] if r["JobRunState"] in live]
    for i in range(0, len(ids), 25):
        glue.batch_stop_job_run(JobName=job, JobRunIds=ids[i : i + 25])
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and any(
        r["JobRunState"] in live for r in glue.get_job_runs(JobName=job)["JobRuns"]
    ):
        time.sleep(0.2)


NETWORK_LINE = re.compile(r"^Network: connection (\S+), .*?(\d+) of (\d+) workers' IP addresses")


def outcome_of(stack, job: str, run_id: str) -> tuple[str, str | None, int]:
    """What the stack's Glue gave the run: ('full' | 'partial' | 'failed', connection, IPs)."""
    logs = stack.boto3_client("logs")
    try:
        events = logs.get_log_events(
            logGroupName="/aws-glue/jobs/output", logStreamName=run_id, startFromHead=True, limit=5
        )["events"]
    except logs.exceptions.ResourceNotFoundException:
        events = []
    for event in events:
        if match := NETWORK_LINE.match(event["message"]):
            ips, workers = int(match.group(2)), int(match.group(3))
            return ("full" if ips >= workers else "partial"), match.group(1), ips
    glue = stack.boto3_client("glue")
    deadline = time.monotonic() + 30
    while glue.get_job_run(JobName=job, RunId=run_id)["JobRun"]["JobRunState"] != "FAILED":
        if time.monotonic() > deadline:
            raise RuntimeError(f"run {run_id} of {job} has neither a network line nor failed")
        time.sleep(0.1)
    return "failed", None, 0


def decide_ours(stack, job: str, connections: list[str], workers: int) -> tuple[list[str], int, float]:
    glue, ec2 = stack.boto3_client("glue"), stack.boto3_client("ec2")
    counter = CallCounter()
    start = time.perf_counter()
    candidates, _ = gather_candidates(glue, ec2, job, connections, counter, default_workers=workers)
    try:
        ranking = rank_connections(candidates, Demand(workers))
        ordered = [v.connection for v in ranking.ordered]
    except NoHealthyConnection:
        ordered = []
    elapsed = (time.perf_counter() - start) * 1000
    run_id = None
    if ordered:
        current = glue.get_job(JobName=job)["Job"]
        glue.update_job(JobName=job, JobUpdate=job_update_with_connections(current, ordered, connections))
        run_id = glue.start_job_run(
            JobName=job, Arguments={CONNECTION_ARG: ordered[0]}, NumberOfWorkers=workers, WorkerType="G.1X"
        )["JobRunId"]
    return run_id, counter.count, elapsed


def decide_reference(stack, job: str, connections: list[str], workers: int, shuffle: random.Random | None):
    glue, ec2 = stack.boto3_client("glue"), stack.boto3_client("ec2")
    counting = Counting(glue, ec2)
    start = time.perf_counter()
    current = glue.get_job(JobName=job)["Job"]
    free = {}
    for name in connections:
        req = glue.get_connection(Name=name)["Connection"]["PhysicalConnectionRequirements"]
        subnet = ec2.describe_subnets(SubnetIds=[req["SubnetId"]])["Subnets"][0]
        free[name] = subnet["AvailableIpAddressCount"]
    full = [n for n in connections if free[n] >= workers]
    usable = [n for n in connections if 2 <= free[n] < workers]
    if shuffle:
        shuffle.shuffle(full)
        shuffle.shuffle(usable)
    else:
        full.sort(key=lambda n: -free[n])
        usable.sort(key=lambda n: -free[n])
    ordered = full + usable
    elapsed = (time.perf_counter() - start) * 1000
    calls = counting.count
    run_id = None
    if ordered:
        glue.update_job(JobName=job, JobUpdate=job_update_with_connections(current, ordered, connections))
        run_id = glue.start_job_run(JobName=job, NumberOfWorkers=workers, WorkerType="G.1X")["JobRunId"]
    return run_id, calls, elapsed


def full_capacity_available(truth: dict[str, dict], remaining: dict[str, int], impaired: set[str], workers: int):
    """At this job's turn, does some truly healthy subnet still have room for all its workers
    (one address each, Glue's rule)?"""
    return any(
        t["self_rule"] and t["s3_route"] and t["zone"] not in impaired and remaining[n] >= workers
        for n, t in truth.items()
    )


def full_capacity_possible(truth: dict[str, dict], impaired: set[str], burst: list[int]) -> bool:
    """Can every job of the burst get full capacity on a truly healthy subnet (first-fit decreasing)?"""
    bins = sorted(
        (t["free"] for t in truth.values() if t["self_rule"] and t["s3_route"] and t["zone"] not in impaired),
        reverse=True,
    )
    for need in sorted(burst, reverse=True):
        for i, room in enumerate(bins):
            if room >= need:
                bins[i] -= need
                break
        else:
            return False
    return True


@dataclass
class Tally:
    full: int = 0
    feasible_jobs: int = 0
    full_in_feasible_bursts: int = 0
    jobs_in_feasible_bursts: int = 0
    failed: int = 0
    failed_with_a_healthy_option: int = 0
    jobs: int = 0
    ms: list[float] = field(default_factory=list)
    calls_at_20: list[int] = field(default_factory=list)

    def result(self) -> dict:
        return {
            "full_capacity_start_rate": round(self.full / self.feasible_jobs, 4) if self.feasible_jobs else None,
            "full_capacity_start_rate_whole_burst_feasible": (
                round(self.full_in_feasible_bursts / self.jobs_in_feasible_bursts, 4)
                if self.jobs_in_feasible_bursts
                else None
            ),
            "failed_start_rate": round(self.failed / self.jobs, 4) if self.jobs else None,
            "failed_start_rate_with_a_healthy_option": (
                round(self.failed_with_a_healthy_option / self.jobs, 4) if self.jobs else None
            ),
            "aws_calls_per_decision": statistics.median(self.calls_at_20) if self.calls_at_20 else None,
            "decision_ms_p50": round(statistics.median(self.ms), 2) if self.ms else None,
            "decisions": len(self.ms),
        }


def run(stack, scenarios: int, seed: int, quick: bool) -> dict:
    rng = random.Random(seed)
    glue = stack.boto3_client("glue")
    role = stack.info()["seed"]["glue_role_arn"]
    endpoint = stack.info()["moto"]["endpoint_url"]
    hold_script = stack.info()["seed"]["hold_script"]
    tallies = {"ours": Tally(), "reference": Tally()}
    if not quick:
        tallies["reference_shuffled"] = Tally()
    for i in range(scenarios):
        scenario = make_scenario(rng, connections=20 if i < 2 else None)
        built = build(stack, scenario, f"s{i}")
        for zone in scenario.impaired:
            post_zone_state(endpoint, zone, "impaired")
        feasible = full_capacity_possible(built.truth, scenario.impaired, scenario.burst)
        for approach, tally in tallies.items():
            job = new_job(glue, role, built.connections, hold_script)
            remaining = {n: t["free"] for n, t in built.truth.items()}
            shuffle = random.Random(seed + i) if approach == "reference_shuffled" else None
            for workers in scenario.burst:
                if approach == "ours":
                    run_id, calls, ms = decide_ours(stack, job, built.connections, workers)
                else:
                    run_id, calls, ms = decide_reference(stack, job, built.connections, workers, shuffle)
                possible = full_capacity_available(built.truth, remaining, scenario.impaired, workers)
                any_healthy = full_capacity_available(built.truth, remaining, scenario.impaired, 2)
                outcome, connection, ips = outcome_of(stack, job, run_id) if run_id else ("failed", None, 0)
                if connection:
                    remaining[connection] -= ips
                tally.jobs += 1
                tally.failed += outcome == "failed"
                tally.failed_with_a_healthy_option += outcome == "failed" and any_healthy
                if possible:
                    tally.feasible_jobs += 1
                    tally.full += outcome == "full"
                if feasible:
                    tally.jobs_in_feasible_bursts += 1
                    tally.full_in_feasible_bursts += outcome == "full"
                tally.ms.append(ms)
                if len(built.connections) == 20:
                    tally.calls_at_20.append(calls)
            stop_runs(glue, job)
        for zone in scenario.impaired:
            post_zone_state(endpoint, zone, "available")
        tear_down(stack, built)
    return {name: t.result() for name, t in tallies.items()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "--quick", action="store_true", help="5 scenarios instead of 150, reference sorted only (under 60 s)"
    )
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "subnet_selection.json")
    parser.add_argument("--seed", type=int, default=20261123)
    args = parser.parse_args(argv)
    scenarios = 5 if args.quick else 150
    started = time.monotonic()
    with running_stack(TMP / f"bench-subnet-{uuid.uuid4().hex[:6]}", discard=True) as stack:
        results = run(stack, scenarios, args.seed, args.quick)
    results = {
        **results,
        "scenarios": scenarios,
        "seed": args.seed,
        "seconds": round(time.monotonic() - started, 1),
    }
    write_results(args.out, results)
    return 0


if __name__ == "__main__":
    sys.exit(main())
