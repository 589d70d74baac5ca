"""Seed the local AWS endpoint with the world the pipelines expect, from the package's template.

The stack is built as a user's account is: what exists before the package (the MWAA
environment, its bucket and execution role, the VPC) is created here, then
``deploy/cloudformation/mwaa-pipelines.yaml`` is deployed to the stack's CloudFormation with
that world as its parameters, as the README's deploy section tells a user to do.

Created from code, because they are the account the template is deployed into:

* the VPC, five subnets over three Availability Zones with different free IPs (ENIs use up
  addresses), route tables of which only some reach S3 (one gets the template's S3 gateway
  endpoint, one a NAT gateway, one nothing);
* the MWAA environment, its versioned bucket and its execution role (the template attaches
  its policy to that role);
* an existing JDBC connection the subnet-failover job also uses (a template parameter).

Created from code, because they are the tests' faults and plumbing, not the product's setup:

* a security group without Glue's self-referencing rule, put on the fifth subnet's connection
  in place of the template's group (a connection edited by hand, which Glue refuses);
* an SQS queue subscribed to the alert topic, so tests can read what was published;
* a job script that only holds its run (``scripts/hold.py``), for tests of stops and retries.

Everything else (buckets and their rules, Glue's security group, the connections, the job, the
EMR Serverless application, topic, sender identity, roles, policies and the Variables'
secrets) is the template's.

The world is described by plain data (``SUBNETS``) so tests and
benchmarks can reason about what they should see. ``seed()`` returns the created ids.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import boto3
from botocore.config import Config

from deploy.cloudformation.stack import create_stack
from local.paths import REGION

# The template's names for its default NamePrefix (mwaa-pipelines).
DATA_BUCKET = "mwaa-pipelines-data"
ARTIFACTS_BUCKET = "mwaa-pipelines-artifacts"
LAKE_BUCKET = "mwaa-pipelines-lake"
LOGS_BUCKET = "mwaa-pipelines-logs"
MWAA_BUCKET = "mwaa-pipelines-environment"
# A job script that holds its run for --seconds without Spark: for tests and benchmarks of what
# surrounds a run (decisions, retries, stops, concurrency) on a stack that executes its runs.
HOLD_SCRIPT = Path(__file__).parent / "scripts" / "hold.py"
HOLD_SCRIPT_KEY = "local-stack/hold.py"

SNS_TOPIC = "mwaa-pipelines-alerts"
SES_SENDER = "pipelines@example.com"
REPORT_RECIPIENTS = ("finops@example.com",)
SUBNET_DEMO_JOB = "mwaa-pipelines-subnet-failover"
MWAA_ENVIRONMENT = "mwaa-pipelines-local"
MWAA_EXECUTION_ROLE = "mwaa-pipelines-execution"
UNMANAGED_CONNECTION = "warehouse-jdbc"


@dataclass(frozen=True)
class SubnetSpec:
    key: str
    zone: str
    cidr: str
    # ENIs created at seed time to use up addresses, so free IPs differ per subnet.
    used_ips: int
    security_group: str  # "self" (has the Glue rule) or "open" (lacks it)
    route: str  # "s3-endpoint", "nat" or "none"


SUBNETS: tuple[SubnetSpec, ...] = (
    SubnetSpec("a1", "us-east-1a", "10.0.0.0/24", 0, "self", "s3-endpoint"),
    SubnetSpec("a2", "us-east-1a", "10.0.1.0/26", 20, "self", "s3-endpoint"),
    SubnetSpec("b1", "us-east-1b", "10.0.2.0/25", 40, "self", "nat"),
    SubnetSpec("c1", "us-east-1c", "10.0.3.0/25", 0, "self", "none"),
    SubnetSpec("c2", "us-east-1c", "10.0.4.0/27", 4, "open", "s3-endpoint"),
)


def connection_name(subnet_key: str) -> str:
    return f"glue-net-{subnet_key}"


def candidate_connections() -> list[str]:
    """Every subnet's connection, in SUBNETS order (the template's candidates)."""
    return [connection_name(spec.key) for spec in SUBNETS]


def client(service: str, endpoint_url: str, keys: tuple[str, str] | None = None):
    """A client of the stack's endpoint: as ``keys`` (access key id, secret) where IAM is enforced,
    else with test keys moto accepts while authorization is off."""
    key_id, secret = keys or ("testing", "testing")
    return boto3.client(
        service,
        region_name=REGION,
        endpoint_url=endpoint_url,
        aws_access_key_id=key_id,
        aws_secret_access_key=secret,
        # MWAA's control plane prefixes the host with "api."; a local endpoint has no such host.
        config=Config(inject_host_prefix=False),
    )


def create_glue_security_group(ec2, vpc_id: str, name: str, self_referencing: bool) -> str:
    """A security group, with the inbound all-traffic-from-itself rule Glue requires if asked."""
    group_id = ec2.create_security_group(GroupName=name, Description="Glue workers", VpcId=vpc_id)["GroupId"]
    if self_referencing:
        ec2.authorize_security_group_ingress(
            GroupId=group_id,
            IpPermissions=[{"IpProtocol": "-1", "UserIdGroupPairs": [{"GroupId": group_id}]}],
        )
    return group_id


def create_network_connection(glue, name: str, subnet_id: str, security_group_id: str, zone: str) -> None:
    """A Glue NETWORK connection pinning jobs to one subnet."""
    glue.create_connection(
        ConnectionInput={
            "Name": name,
            "ConnectionType": "NETWORK",
            "ConnectionProperties": {},
            "PhysicalConnectionRequirements": {
                "SubnetId": subnet_id,
                "SecurityGroupIdList": [security_group_id],
                "AvailabilityZone": zone,
            },
        }
    )


def _seed_network(ec2) -> dict:
    """The account's VPC as it stands before the template (which adds Glue's group and the endpoint)."""
    vpc_id = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    sg_open = create_glue_security_group(ec2, vpc_id, "glue-missing-self-rule", self_referencing=False)
    ec2.authorize_security_group_ingress(
        GroupId=sg_open,
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "10.0.0.0/16"}]}],
    )
    security_groups = {"open": sg_open}

    rt_endpoint = ec2.create_route_table(VpcId=vpc_id)["RouteTable"]["RouteTableId"]
    rt_nat = ec2.create_route_table(VpcId=vpc_id)["RouteTable"]["RouteTableId"]
    rt_none = ec2.create_route_table(VpcId=vpc_id)["RouteTable"]["RouteTableId"]
    route_tables = {"s3-endpoint": rt_endpoint, "nat": rt_nat, "none": rt_none}

    subnets: dict[str, dict] = {}
    for spec in SUBNETS:
        subnet = ec2.create_subnet(VpcId=vpc_id, CidrBlock=spec.cidr, AvailabilityZone=spec.zone)["Subnet"]
        subnet_id = subnet["SubnetId"]
        ec2.associate_route_table(RouteTableId=route_tables[spec.route], SubnetId=subnet_id)
        for _ in range(spec.used_ips):
            ec2.create_network_interface(SubnetId=subnet_id, Description="seeded: address in use")
        subnets[spec.key] = {"subnet_id": subnet_id, "zone": spec.zone, "route": spec.route}

    # The NAT route goes through a NAT gateway placed in the first subnet.
    eip = ec2.allocate_address(Domain="vpc")["AllocationId"]
    nat_id = ec2.create_nat_gateway(SubnetId=subnets["a1"]["subnet_id"], AllocationId=eip)["NatGateway"]["NatGatewayId"]
    ec2.create_route(RouteTableId=rt_nat, DestinationCidrBlock="0.0.0.0/0", NatGatewayId=nat_id)
    # The NAT gateway takes an address too: record free IPs as they finally stand.
    ids = [s["subnet_id"] for s in subnets.values()]
    free = {s["SubnetId"]: s["AvailableIpAddressCount"] for s in ec2.describe_subnets(SubnetIds=ids)["Subnets"]}
    for subnet in subnets.values():
        subnet["free_ips"] = free[subnet["subnet_id"]]
    return {"vpc_id": vpc_id, "security_groups": security_groups, "route_tables": route_tables, "subnets": subnets}


def _role(iam, name: str, service: str) -> str:
    doc = (
        '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":'
        f'{{"Service":"{service}"}},"Action":"sts:AssumeRole"}}]}}'
    )
    return iam.create_role(RoleName=name, AssumeRolePolicyDocument=doc)["Role"]["Arn"]


def template_parameters(network: dict) -> dict:
    """The template's parameters for this world: every subnet a candidate, in SUBNETS order."""
    subnets = [network["subnets"][spec.key] for spec in SUBNETS]
    return {
        "MwaaEnvironmentName": MWAA_ENVIRONMENT,
        "MwaaExecutionRoleName": MWAA_EXECUTION_ROLE,
        "VpcId": network["vpc_id"],
        "GlueSubnetCount": len(subnets),
        "GlueSubnetIds": [s["subnet_id"] for s in subnets],
        "GlueSubnetZones": [s["zone"] for s in subnets],
        "GlueConnectionNames": candidate_connections(),
        "SubnetFailoverJobOtherConnections": [UNMANAGED_CONNECTION],
        "S3EndpointRouteTableIds": [network["route_tables"]["s3-endpoint"]],
        "SenderEmail": SES_SENDER,
        "ReportRecipients": list(REPORT_RECIPIENTS),
    }


def _break_connections(glue, network: dict) -> None:
    """Put the group without Glue's rule on the connections of the subnets SUBNETS says lack it."""
    for spec in SUBNETS:
        if spec.security_group != "self":
            subnet = network["subnets"][spec.key]
            glue.delete_connection(ConnectionName=connection_name(spec.key))
            group = network["security_groups"][spec.security_group]
            create_network_connection(glue, connection_name(spec.key), subnet["subnet_id"], group, subnet["zone"])


def seed(endpoint_url: str) -> dict:
    """Create the local AWS world on a fresh moto server and return its ids."""
    s3 = client("s3", endpoint_url)
    # MWAA requires a versioned bucket: deploys pin plugins.zip / requirements.txt versions.
    s3.create_bucket(Bucket=MWAA_BUCKET)
    s3.put_bucket_versioning(Bucket=MWAA_BUCKET, VersioningConfiguration={"Status": "Enabled"})
    iam = client("iam", endpoint_url)
    mwaa_role_arn = _role(iam, MWAA_EXECUTION_ROLE, "airflow-env.amazonaws.com")
    network = _seed_network(client("ec2", endpoint_url))
    glue = client("glue", endpoint_url)
    glue.create_connection(
        ConnectionInput={
            "Name": UNMANAGED_CONNECTION,
            "ConnectionType": "JDBC",
            "ConnectionProperties": {"JDBC_CONNECTION_URL": "jdbc:postgresql://warehouse.internal:5432/dev"},
        }
    )

    outputs = create_stack(client("cloudformation", endpoint_url), template_parameters(network))

    network["security_groups"]["self"] = outputs["GlueSecurityGroupId"]
    for spec in SUBNETS:
        network["subnets"][spec.key]["security_group_id"] = network["security_groups"][spec.security_group]
    _break_connections(glue, network)
    s3.put_object(Bucket=outputs["ArtifactsBucket"], Key=HOLD_SCRIPT_KEY, Body=HOLD_SCRIPT.read_bytes())

    topic_arn = outputs["AlertsTopicArn"]
    sqs = client("sqs", endpoint_url)
    queue_url = sqs.create_queue(QueueName=f"{SNS_TOPIC}-inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    client("sns", endpoint_url).subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)

    client("mwaa", endpoint_url).create_environment(
        Name=MWAA_ENVIRONMENT,
        SourceBucketArn=f"arn:aws:s3:::{MWAA_BUCKET}",
        DagS3Path="dags",
        ExecutionRoleArn=mwaa_role_arn,
        NetworkConfiguration={
            "SubnetIds": [network["subnets"]["a1"]["subnet_id"], network["subnets"]["b1"]["subnet_id"]],
            "SecurityGroupIds": [network["security_groups"]["self"]],
        },
        AirflowVersion="3.3.1",
    )

    return {
        "region": REGION,
        "mwaa_environment": MWAA_ENVIRONMENT,
        "buckets": {
            "data": outputs["DataBucket"],
            "artifacts": outputs["ArtifactsBucket"],
            "lake": outputs["LakeBucket"],
            "logs": outputs["LogsBucket"],
            "mwaa": MWAA_BUCKET,
        },
        "glue_role_arn": outputs["GlueJobRoleArn"],
        "emr_execution_role_arn": outputs["EmrJobRoleArn"],
        "emr_application_id": outputs["EmrApplicationId"],
        "mwaa_execution_role_arn": mwaa_role_arn,
        "hold_script": f"s3://{outputs['ArtifactsBucket']}/{HOLD_SCRIPT_KEY}",
        "network": network,
        "glue_connections": candidate_connections(),
        "glue_unmanaged_connection": UNMANAGED_CONNECTION,
        "glue_subnet_demo_job": outputs["SubnetFailoverJobName"],
        "sns_topic_arn": topic_arn,
        "sns_inbox_queue_url": queue_url,
        "ses_sender": SES_SENDER,
        "stack_outputs": outputs,
    }
