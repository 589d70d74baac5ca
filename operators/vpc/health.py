"""Gather what the subnet ranking needs, in a constant number of AWS calls.

Six reads, whatever the number of candidates (each paginated call is one request up to
its page size: 1,000 connections, 100 job runs):

1. Glue ``GetConnections``: every candidate's subnet, zone and security groups;
2. EC2 ``DescribeSubnets`` (one filter over all subnet ids): state, free IPs, VPC;
3. EC2 ``DescribeAvailabilityZones``: zone states (``impaired``, ``unavailable``...);
4. EC2 ``DescribeSecurityGroups`` (one filter over all group ids): the self-referencing rule;
5. EC2 ``DescribeRouteTables`` (one filter over the VPCs): S3 gateway endpoint or NAT routes,
   with the VPC's main table for subnets without an explicit association;
6. Glue ``GetJobRuns`` for the job: runs this operator started recently (their IPs may not
   show as ENIs yet) and recent failures with IP / ENI / AZ errors, per connection.

The reads run in three rounds of parallel requests (what a round needs comes from the one
before), so a decision costs three round trips. Filters are used instead of id lists so one missing subnet or group does not fail the
whole call: the missing one is judged unhealthy with a reason. A gateway endpoint route
counts as an S3 route: gateway endpoints exist only for S3 and DynamoDB, and telling them
apart would cost one more call (DescribePrefixLists).
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from operators.vpc.ranking import EXTRA_IPS_PER_RUN, Candidate

# The argument this operator adds to every run it starts, naming the connection it chose.
CONNECTION_ARG = "--mwaa-pipelines-connection"
ACTIVE_STATES = ("STARTING", "RUNNING", "WAITING")
# What Glue says when a subnet, an ENI or a zone is the trouble (error messages of failed runs):
# whole words only (ENI in capitals, not inside a path), so "Access Denied" (which holds "eni")
# or an S3 or IAM error never counts.
NETWORK_ERROR = re.compile(
    r"\b(?:"
    r"InsufficientFreeAddressesInSubnet|"
    r"(?:free|enough|sufficient|insufficient) (?:ip )?addresses|"
    r"ip addresses? (?:in|available|left)|"
    r"(?:elastic )?network interfaces?|(?-i:ENIs?)(?![-/.])|"  # the acronym, not a path like eni-data/
    r"subnet (?:does not have|has no|is full|not found)|"
    r"availability zones? (?:is |are )?(?:currently )?(?:constrained|unavailable|impaired)|"
    r"(?:insufficient|not enough) ec2 capacity"
    r")\b",
    re.IGNORECASE,
)
# Glue's self-referencing rule: all traffic (protocol -1), or all TCP ports, which is what
# Glue's documentation asks for ("Setting up network access to data stores").
ALL_TCP = (0, 65535)


@dataclass
class CallCounter:
    """Counts the AWS requests a decision makes (the benchmark and tests read it)."""

    calls: list[str] = field(default_factory=list)

    def __call__(self, name: str) -> None:
        self.calls.append(name)  # list.append is atomic: safe from the gather threads

    @property
    def count(self) -> int:
        return len(self.calls)


def _paginate(client: Any, operation: str, key: str, counter: CallCounter, **kwargs: Any) -> list[dict]:
    items: list[dict] = []
    for page in client.get_paginator(operation).paginate(**kwargs):
        counter(operation)
        items += page.get(key, [])
    return items


def _opens_everything_glue_needs(perm: dict) -> bool:
    protocol = str(perm.get("IpProtocol"))
    if protocol == "-1":
        return True
    return protocol in ("tcp", "6") and (perm.get("FromPort"), perm.get("ToPort")) == ALL_TCP


def _has_self_rule(group: dict) -> bool:
    gid = group["GroupId"]
    for perm in group.get("IpPermissions", []):
        if _opens_everything_glue_needs(perm) and any(
            p.get("GroupId") == gid for p in perm.get("UserIdGroupPairs", [])
        ):
            return True
    return False


def _reaches_s3(table: dict) -> bool:
    for route in table.get("Routes", []):
        if route.get("State", "active") != "active":
            continue
        if route.get("DestinationPrefixListId") and str(route.get("GatewayId", "")).startswith("vpce-"):
            return True
        if route.get("NatGatewayId") and route.get("DestinationCidrBlock") == "0.0.0.0/0":
            return True
    return False


def _route_table_by_subnet(tables: Iterable[dict]) -> tuple[dict[str, dict], dict[str, dict]]:
    explicit: dict[str, dict] = {}
    main: dict[str, dict] = {}
    for table in tables:
        for assoc in table.get("Associations", []):
            if assoc.get("SubnetId"):
                explicit[assoc["SubnetId"]] = table
            if assoc.get("Main"):
                main[table["VpcId"]] = table
    return explicit, main


@dataclass(frozen=True)
class RunHistory:
    pending_ips: dict[str, int]  # connection -> IPs held by recent active runs we started
    failures: dict[str, int]  # connection -> recent IP/ENI/AZ failures
    active_runs: tuple[dict, ...] = ()


def summarize_runs(
    runs: Sequence[dict],
    now: datetime,
    pending_window: timedelta = timedelta(minutes=10),
    failure_window: timedelta = timedelta(hours=6),
    default_workers: int = 10,
) -> RunHistory:
    """From the job's runs: pending IPs per connection and recent network failures."""
    pending: dict[str, int] = {}
    failures: dict[str, int] = {}
    active: list[dict] = []
    for run in runs:
        connection = (run.get("Arguments") or {}).get(CONNECTION_ARG)
        if not connection:
            continue
        started = run.get("StartedOn")
        age = now - started if isinstance(started, datetime) else timedelta(0)
        state = run.get("JobRunState")
        if state in ACTIVE_STATES:
            active.append(run)
            if age <= pending_window:
                workers = run.get("NumberOfWorkers") or default_workers
                pending[connection] = pending.get(connection, 0) + workers + EXTRA_IPS_PER_RUN
        elif state in ("FAILED", "ERROR", "TIMEOUT") and age <= failure_window:
            if NETWORK_ERROR.search(run.get("ErrorMessage") or ""):
                failures[connection] = failures.get(connection, 0) + 1
    return RunHistory(pending, failures, tuple(active))


def _describe_zones(ec2: Any, counter: CallCounter) -> dict[str, str]:
    counter("describe_availability_zones")
    return {z["ZoneName"]: z.get("State") for z in ec2.describe_availability_zones()["AvailabilityZones"]}


def _job_runs(glue: Any, job_name: str, counter: CallCounter) -> list[dict]:
    counter("get_job_runs")
    return glue.get_job_runs(JobName=job_name, MaxResults=100).get("JobRuns", [])


def _by_id(ec2: Any, operation: str, key: str, filter_name: str, id_key: str, ids: list[str], counter: CallCounter):
    if not ids:
        return {}
    items = _paginate(ec2, operation, key, counter, Filters=[{"Name": filter_name, "Values": ids}])
    return {item[id_key]: item for item in items}


def gather_candidates(
    glue: Any,
    ec2: Any,
    job_name: str,
    connection_names: Sequence[str],
    counter: CallCounter | None = None,
    now: datetime | None = None,
    default_workers: int = 10,
) -> tuple[list[Candidate], RunHistory]:
    """Read everything the ranking needs about ``connection_names`` in six requests."""
    counter = counter if counter is not None else CallCounter()
    now = now or datetime.now(UTC)
    wanted = list(dict.fromkeys(connection_names))
    # Three rounds of independent requests, each round in parallel: the decision waits for
    # three round trips, not six.
    with ThreadPoolExecutor(max_workers=3) as pool:
        conns_f = pool.submit(_paginate, glue, "get_connections", "ConnectionList", counter, HidePassword=True)
        zones_f = pool.submit(_describe_zones, ec2, counter)
        runs_f = pool.submit(_job_runs, glue, job_name, counter)
        connections = {c["Name"]: c for c in conns_f.result() if c["Name"] in wanted}
        requirements = {name: c.get("PhysicalConnectionRequirements") or {} for name, c in connections.items()}
        subnet_ids = sorted({r["SubnetId"] for r in requirements.values() if r.get("SubnetId")})
        group_ids = sorted({g for r in requirements.values() for g in r.get("SecurityGroupIdList") or []})

        subnets_f = pool.submit(
            _by_id, ec2, "describe_subnets", "Subnets", "subnet-id", "SubnetId", subnet_ids, counter
        )
        groups_f = pool.submit(
            _by_id, ec2, "describe_security_groups", "SecurityGroups", "group-id", "GroupId", group_ids, counter
        )
        subnets, groups = subnets_f.result(), groups_f.result()
        vpc_ids = sorted({s["VpcId"] for s in subnets.values()})
        tables = (
            _paginate(
                ec2, "describe_route_tables", "RouteTables", counter, Filters=[{"Name": "vpc-id", "Values": vpc_ids}]
            )
            if vpc_ids
            else []
        )
        zones = zones_f.result()
        history = summarize_runs(runs_f.result(), now, default_workers=default_workers)
    explicit, main = _route_table_by_subnet(tables)

    candidates = []
    for name in wanted:
        conn = connections.get(name)
        if conn is None:
            candidates.append(Candidate(connection=name, found=False))
            continue
        req = requirements[name]
        subnet = subnets.get(req.get("SubnetId") or "")
        zone = (subnet or {}).get("AvailabilityZone") or req.get("AvailabilityZone")
        table = explicit.get(req.get("SubnetId") or "") or (main.get(subnet["VpcId"]) if subnet else None)
        sg_ok = any(_has_self_rule(groups[g]) for g in req.get("SecurityGroupIdList") or [] if g in groups)
        candidates.append(
            Candidate(
                connection=name,
                connection_type=conn.get("ConnectionType"),
                subnet_id=req.get("SubnetId"),
                subnet_state=(subnet or {}).get("State", "missing" if req.get("SubnetId") else None),
                zone=zone,
                zone_state=zones.get(zone or "", "unknown"),
                free_ips=(subnet or {}).get("AvailableIpAddressCount", 0),
                pending_ips=history.pending_ips.get(name, 0),
                self_referencing_rule=sg_ok,
                s3_route=bool(table and _reaches_s3(table)),
                recent_failures=history.failures.get(name, 0),
            )
        )
    return candidates, history
