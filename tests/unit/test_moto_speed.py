"""The memoized serialization lookups give the same response bytes as moto's own."""

import re

import boto3
import pytest
from moto import mock_aws

from local.aws import speed as moto_speed
from local.seeds.aws_world import create_glue_security_group

REQUEST_ID = re.compile(rb"<(requestId|RequestId)>[^<]*</(requestId|RequestId)>")


def _world():
    """Resources whose responses walk nested shapes, aliases and EC2's key-path transformers."""
    ec2 = boto3.client("ec2", region_name="us-east-1")
    glue = boto3.client("glue", region_name="us-east-1")
    s3 = boto3.client("s3", region_name="us-east-1")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    group = create_glue_security_group(ec2, vpc, "g", self_referencing=True)
    table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    ec2.create_vpc_endpoint(VpcId=vpc, ServiceName="com.amazonaws.us-east-1.s3", RouteTableIds=[table])
    for i, zone in enumerate(("us-east-1a", "us-east-1b")):
        subnet = ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=zone)["Subnet"]
        ec2.associate_route_table(RouteTableId=table, SubnetId=subnet["SubnetId"])
        ec2.create_network_interface(SubnetId=subnet["SubnetId"], Groups=[group])
        glue.create_connection(
            ConnectionInput={
                "Name": f"c{i}",
                "ConnectionType": "NETWORK",
                "ConnectionProperties": {},
                "PhysicalConnectionRequirements": {
                    "SubnetId": subnet["SubnetId"],
                    "SecurityGroupIdList": [group],
                    "AvailabilityZone": zone,
                },
            }
        )
    s3.create_bucket(Bucket="speed-bucket")
    s3.put_object(Bucket="speed-bucket", Key="k", Body=b"x", Tagging="a=1")
    return {
        "subnets": lambda: ec2.describe_subnets(Filters=[{"Name": "vpc-id", "Values": [vpc]}]),
        "groups": lambda: ec2.describe_security_groups(Filters=[{"Name": "vpc-id", "Values": [vpc]}]),
        "tables": lambda: ec2.describe_route_tables(Filters=[{"Name": "vpc-id", "Values": [vpc]}]),
        "enis": lambda: ec2.describe_network_interfaces(),
        "zones": lambda: ec2.describe_availability_zones(),
        "connections": lambda: glue.get_connections(),
        "objects": lambda: s3.list_objects_v2(Bucket="speed-bucket"),
        "tags": lambda: s3.get_object_tagging(Bucket="speed-bucket", Key="k"),
    }, (ec2, glue, s3)


def _bodies(calls, clients) -> dict[str, bytes]:
    seen: dict[str, bytes] = {}

    def keep(http_response, model, **_):
        seen[model.name] = REQUEST_ID.sub(b"", http_response.content)

    for c in clients:
        c.meta.events.register("after-call", keep)
    for call in calls.values():
        call()
    for c in clients:
        c.meta.events.unregister("after-call", keep)
    return seen


@pytest.fixture
def world():
    moto_speed.undo()
    with mock_aws():
        yield _world()
    moto_speed.undo()


def test_same_bytes_with_and_without_the_memoized_lookups(world):
    calls, clients = world
    plain = _bodies(calls, clients)
    moto_speed.apply()
    first = _bodies(calls, clients)
    again = _bodies(calls, clients)  # served from the caches
    assert moto_speed._NAMES and moto_speed._TRANSFORMS and moto_speed._VALID_NAMES
    assert len(plain) == len(calls)
    assert first == plain
    assert again == plain
    assert b"<availableIpAddressCount>250</availableIpAddressCount>" in plain["DescribeSubnets"]


def test_a_bad_xml_name_is_still_refused():
    import xmltodict

    moto_speed.apply()
    try:
        xmltodict._validate_name("Good", "element")
        with pytest.raises(ValueError):
            xmltodict._validate_name("bad name", "element")
        assert "Good" in moto_speed._VALID_NAMES and "bad name" not in moto_speed._VALID_NAMES
    finally:
        moto_speed.undo()
