"""Health data for the subnet ranking, read from the seeded local stack in six calls."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from local.seeds.aws_world import SUBNETS, connection_name
from operators.vpc.health import CONNECTION_ARG, CallCounter, gather_candidates, summarize_runs
from operators.vpc.ranking import Demand, rank_connections

pytestmark = pytest.mark.stack


def test_seeded_world_is_judged_as_seeded(stack):
    names = [connection_name(s.key) for s in SUBNETS] + ["missing-connection"]
    counter = CallCounter()
    candidates, _ = gather_candidates(
        stack.boto3_client("glue"),
        stack.boto3_client("ec2"),
        stack.info()["seed"]["glue_subnet_demo_job"],
        names,
        counter,
    )
    assert counter.count == 6, counter.calls
    by_name = {c.connection: c for c in candidates}
    seeded = stack.info()["seed"]["network"]["subnets"]
    for spec in SUBNETS:
        c = by_name[connection_name(spec.key)]
        assert c.subnet_id == seeded[spec.key]["subnet_id"]
        assert c.zone == spec.zone and c.zone_state == "available" and c.subnet_state == "available"
        assert c.free_ips == seeded[spec.key]["free_ips"]
        assert c.self_referencing_rule is (spec.security_group == "self")
        assert c.s3_route is (spec.route in ("s3-endpoint", "nat"))
    assert by_name["missing-connection"].found is False

    ranking = rank_connections(candidates, Demand(workers=10))
    rejected = {v.connection: v.reasons for v in ranking.rejected}
    assert set(rejected) == {"glue-net-c1", "glue-net-c2", "missing-connection"}
    assert ranking.chosen.connection == "glue-net-a1"  # most free IPs among healthy ones


def test_call_count_does_not_grow_with_candidates(stack):
    glue, ec2 = stack.boto3_client("glue"), stack.boto3_client("ec2")
    job = stack.info()["seed"]["glue_subnet_demo_job"]
    counts = []
    for n in (1, 3, 5):
        counter = CallCounter()
        gather_candidates(glue, ec2, job, [connection_name(s.key) for s in SUBNETS[:n]], counter)
        counts.append(counter.count)
    assert counts == [6, 6, 6]


def test_run_history_pending_and_failures():
    now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    runs = [
        {
            "Arguments": {CONNECTION_ARG: "a"},
            "JobRunState": "RUNNING",
            "StartedOn": now - timedelta(minutes=2),
            "NumberOfWorkers": 10,
        },
        {
            "Arguments": {CONNECTION_ARG: "a"},
            "JobRunState": "RUNNING",
            "StartedOn": now - timedelta(hours=1),
            "NumberOfWorkers": 10,
        },  # old enough for its ENIs to show in the subnet's count
        {
            "Arguments": {CONNECTION_ARG: "b"},
            "JobRunState": "FAILED",
            "StartedOn": now - timedelta(hours=1),
            "ErrorMessage": "Subnet subnet-1 does not have enough free IP addresses",
        },
        {
            "Arguments": {CONNECTION_ARG: "b"},
            "JobRunState": "FAILED",
            "StartedOn": now - timedelta(hours=1),
            "ErrorMessage": "ZeroDivisionError in user code",
        },
        {"Arguments": {}, "JobRunState": "RUNNING", "StartedOn": now},  # not ours
    ]
    history = summarize_runs(runs, now)
    assert history.pending_ips == {"a": 11}
    assert history.failures == {"b": 1}
    assert len(history.active_runs) == 2


def test_impaired_zone_is_seen(stack):
    """Fault injection: the stack can mark a zone impaired, and the ranking avoids it."""
    from local.aws.faults import post_zone_state

    endpoint = stack.info()["moto"]["endpoint_url"]
    post_zone_state(endpoint, "us-east-1a", "impaired")
    try:
        candidates, _ = gather_candidates(
            stack.boto3_client("glue"), stack.boto3_client("ec2"), stack.info()["seed"]["glue_subnet_demo_job"],
            [connection_name(s.key) for s in SUBNETS],
        )  # fmt: skip
        ranking = rank_connections(candidates, Demand(workers=10))
    finally:
        post_zone_state(endpoint, "us-east-1a", "available")
    assert ranking.chosen.connection == "glue-net-b1"
    rejected = {v.connection: v.reasons for v in ranking.rejected}
    assert any("impaired" in r for r in rejected["glue-net-a1"])


def test_a_self_referencing_rule_on_all_tcp_ports_is_what_glue_documents(stack):
    """Glue's documentation asks for a self-referencing inbound rule on all TCP ports; all
    traffic (protocol -1) is accepted too. A rule on a few ports only is not enough."""
    from local.seeds.aws_world import create_network_connection

    ec2, glue = stack.boto3_client("ec2"), stack.boto3_client("glue")
    network = stack.info()["seed"]["network"]
    spec = SUBNETS[0]
    subnet = network["subnets"][spec.key]
    names = []
    for ports in ((0, 65535), (443, 443)):
        suffix = uuid.uuid4().hex[:6]
        group = ec2.create_security_group(GroupName=f"glue-tcp-{suffix}", Description="Glue", VpcId=network["vpc_id"])
        ec2.authorize_security_group_ingress(
            GroupId=group["GroupId"],
            IpPermissions=[{"IpProtocol": "tcp", "FromPort": ports[0], "ToPort": ports[1],
                            "UserIdGroupPairs": [{"GroupId": group["GroupId"]}]}],
        )  # fmt: skip
        names.append(f"glue-tcp-{ports[1]}-{suffix}")
        create_network_connection(glue, names[-1], subnet["subnet_id"], group["GroupId"], spec.zone)
    candidates, _ = gather_candidates(glue, ec2, stack.info()["seed"]["glue_subnet_demo_job"], names)
    by_name = {c.connection: c for c in candidates}
    assert by_name[names[0]].self_referencing_rule is True
    assert by_name[names[1]].self_referencing_rule is False


@pytest.mark.parametrize(
    "message, network",
    [
        ("Subnet subnet-1 does not have enough free IP addresses", True),
        ("InsufficientFreeAddressesInSubnet: not enough addresses", True),
        ("Failed to create the elastic network interface for the job", True),
        ("ENI limit reached in the account", True),
        ("The requested Availability Zone is currently constrained", True),
        ("Access Denied (Service: Amazon S3; Status Code: 403)", False),
        ("User is not authorized: AccessDeniedException on glue:GetTable", False),
        ("Permission denied while reading s3://bucket/eni-data/file", False),
        ("ZeroDivisionError in user code", False),
    ],
)
def test_only_network_failures_rank_a_subnet_down(message, network):
    now = datetime(2026, 11, 23, 12, 0, tzinfo=UTC)
    runs = [{"Arguments": {CONNECTION_ARG: "a"}, "JobRunState": "FAILED", "StartedOn": now, "ErrorMessage": message}]
    assert summarize_runs(runs, now).failures == ({"a": 1} if network else {})
