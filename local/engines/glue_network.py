"""Which of a Glue job's VPC connections a run gets, and the addresses it takes there.

What AWS documents, and this module does:

* the connection is chosen when the run is submitted: Glue checks the job's connections that
  carry a network configuration in the order they are listed and takes the first suitable
  one; a run that finds none fails (AWS re:Post, "AWS Glue job networking: managing multiple
  connections");
* a connection is suitable when its subnet exists and is available, its Availability Zone is
  healthy, the subnet has free IP addresses and its route table reaches S3 through a VPC
  endpoint or a NAT gateway (same article), and one of its security groups opens all ingress
  ports (to itself at least) and one opens all egress ports (Glue Developer Guide,
  "Troubleshooting Glue common setup errors" and "Setting up network access to data stores");
* each worker is one elastic network interface with one private IP of that subnet ("Setting
  up network access to data stores");
* the run's error names the trouble in the words of Glue's troubleshooting guide: "Could not
  find S3 endpoint or NAT gateway for subnetId ... in Vpc ...", "Inbound rule in security
  group required", "Outbound rule in security group required", "Could not find subnet for AZ",
  and EC2's InsufficientFreeAddressesInSubnet.

Where AWS says nothing, the local stack chooses, and says so: a Spark run starts when the
subnet holds addresses for its driver and one executor (2), with as many of its workers as
there are addresses, and is then under capacity (a Python shell run needs 1); a run that
finds no suitable connection reports the first listed connection's trouble. The addresses a
run holds are kept here from its start to its end, so later starts see them; they are not
created as ENIs in EC2 (on AWS they show there a little after the start, which the
healthiest-subnet operator's pending-address accounting covers). The choice is written as the
first line of the run's output log (``Network: ...``), where tests and the subnet benchmark
read it.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Sequence
from dataclasses import dataclass

from local.engines.spark_process import aws_client

MIN_SPARK_IPS = 2  # the driver and one executor
DEFAULT_WORKERS = 10  # Glue's NumberOfWorkers for a Spark job that sets none
_lock = threading.Lock()
_held: dict[str, int] = {}  # subnet id -> addresses held by live runs


@dataclass(frozen=True)
class Placement:
    """Where a run got its network: connection, subnet and how many workers' addresses."""

    connection: str
    subnet_id: str
    zone: str
    ips: int
    workers: int

    @property
    def full(self) -> bool:
        return self.ips >= self.workers

    def line(self) -> str:
        capacity = "full capacity" if self.full else "under capacity"
        return (f"Network: connection {self.connection}, subnet {self.subnet_id} in {self.zone}, "
                f"{self.ips} of {self.workers} workers' IP addresses ({capacity})")  # fmt: skip

    def release(self) -> None:
        with _lock:
            _held[self.subnet_id] = max(0, _held.get(self.subnet_id, 0) - self.ips)


class NoSuitableConnection(Exception):
    """Every network connection of the job failed Glue's checks; the message is the first's."""


def run_workers(job_run, job, python_shell: bool) -> int:
    """How many addresses the run asks for: one per worker (one for a Python shell run)."""
    if python_shell:
        return 1
    if job_run.number_of_workers or job.number_of_workers:
        return int(job_run.number_of_workers or job.number_of_workers)
    capacity = job_run.max_capacity or job.max_capacity
    return max(1, math.ceil(float(capacity))) if capacity else DEFAULT_WORKERS


def place(connections: Sequence[str], workers: int, python_shell: bool, endpoint_url: str) -> Placement | None:
    """Choose the run's connection and hold its addresses; None when the job has no network.

    Raises ``NoSuitableConnection`` when every network connection fails a check.
    """
    glue, ec2 = aws_client("glue", endpoint_url), aws_client("ec2", endpoint_url)
    networked = []
    for name in connections:
        try:
            found = glue.get_connection(Name=name)["Connection"]
        except glue.exceptions.EntityNotFoundException:
            networked.append((name, None))
            continue
        requirements = found.get("PhysicalConnectionRequirements") or {}
        if requirements.get("SubnetId"):
            networked.append((name, requirements))
    if not networked:
        return None
    minimum = 1 if python_shell else min(MIN_SPARK_IPS, workers)
    zones = {z["ZoneName"]: z.get("State") for z in ec2.describe_availability_zones()["AvailabilityZones"]}
    troubles = []
    with _lock:
        for name, requirements in networked:
            trouble, subnet, free = _check(ec2, name, requirements, zones, minimum)
            if trouble:
                troubles.append(trouble)
                continue
            ips = min(workers, free)
            _held[subnet["SubnetId"]] = _held.get(subnet["SubnetId"], 0) + ips
            return Placement(name, subnet["SubnetId"], subnet["AvailabilityZone"], ips, workers)
    raise NoSuitableConnection(troubles[0])


def _check(ec2, name: str, requirements: dict | None, zones: dict[str, str], minimum: int):
    """(trouble or None, subnet, free addresses) for one connection."""
    if requirements is None:
        return f"Connection {name} not found (EntityNotFoundException)", None, 0
    subnet_id = requirements["SubnetId"]
    subnets = ec2.describe_subnets(Filters=[{"Name": "subnet-id", "Values": [subnet_id]}])["Subnets"]
    if not subnets or subnets[0].get("State") != "available":
        return f"The subnet ID '{subnet_id}' of connection {name} does not exist (InvalidSubnetID.NotFound)", None, 0
    subnet = subnets[0]
    zone, vpc = subnet["AvailabilityZone"], subnet["VpcId"]
    if zones.get(zone) != "available":
        return (f"Could not find subnet for AZ {zone} (connection {name}): the Availability Zone is "
                f"{zones.get(zone) or 'unknown'}"), None, 0  # fmt: skip
    free = int(subnet["AvailableIpAddressCount"]) - _held.get(subnet_id, 0)
    if free < minimum:
        return (f"The specified subnet {subnet_id} (connection {name}) does not have enough free addresses to "
                f"satisfy the request: {max(free, 0)} free, {minimum} needed to start "
                "(InsufficientFreeAddressesInSubnet)"), None, 0  # fmt: skip
    if not _reaches_s3(ec2, subnet_id, vpc):
        return f"Could not find S3 endpoint or NAT gateway for subnetId: {subnet_id} in Vpc {vpc}", None, 0
    group_ids = list(requirements.get("SecurityGroupIdList") or [])
    groups = ec2.describe_security_groups(Filters=[{"Name": "group-id", "Values": group_ids}])["SecurityGroups"]
    if not any(_opens_all(g, g.get("IpPermissions", [])) for g in groups):
        return (f"Inbound rule in security group required (connection {name}): at least one security group must "
                "open all ingress ports; its own group as the source is enough"), None, 0  # fmt: skip
    if not any(_opens_all(g, g.get("IpPermissionsEgress", [])) for g in groups):
        return (f"Outbound rule in security group required (connection {name}): at least one security group must "
                "open all egress ports"), None, 0  # fmt: skip
    return None, subnet, free


def _opens_all(group: dict, permissions: list[dict]) -> bool:
    """All ports (all traffic, or all TCP) to the group itself or to anywhere."""
    for perm in permissions:
        protocol = str(perm.get("IpProtocol"))
        every_port = protocol == "-1" or (protocol in ("tcp", "6") and (perm.get("FromPort"), perm.get("ToPort")) == (0, 65535))  # fmt: skip
        to_self = any(p.get("GroupId") == group["GroupId"] for p in perm.get("UserIdGroupPairs", []))
        anywhere = any(r.get("CidrIp") == "0.0.0.0/0" for r in perm.get("IpRanges", []))
        if every_port and (to_self or anywhere):
            return True
    return False


def _reaches_s3(ec2, subnet_id: str, vpc_id: str) -> bool:
    tables = ec2.describe_route_tables(Filters=[{"Name": "association.subnet-id", "Values": [subnet_id]}])
    tables = (
        tables["RouteTables"]
        or ec2.describe_route_tables(
            Filters=[{"Name": "vpc-id", "Values": [vpc_id]}, {"Name": "association.main", "Values": ["true"]}]
        )["RouteTables"]
    )
    for table in tables:
        for route in table.get("Routes", []):
            if route.get("State", "active") != "active":
                continue
            gateway = str(route.get("GatewayId", ""))
            if route.get("DestinationPrefixListId") and gateway.startswith("vpce-") and _is_s3_endpoint(ec2, gateway):
                return True
            if route.get("NatGatewayId") and route.get("DestinationCidrBlock") == "0.0.0.0/0":
                return True
    return False


def _is_s3_endpoint(ec2, endpoint_id: str) -> bool:
    """A gateway endpoint serves S3 or DynamoDB; only S3's lets Glue fetch its scripts."""
    try:
        endpoints = ec2.describe_vpc_endpoints(VpcEndpointIds=[endpoint_id])
    except ec2.exceptions.ClientError:
        return False
    return any(e.get("ServiceName", "").endswith(".s3") for e in endpoints["VpcEndpoints"])
