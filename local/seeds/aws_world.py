"""Seed the local AWS endpoint with the world the pipelines expect.

One VPC with five subnets over three Availability Zones, each with a different number
of free IPs; a security group with the self-referencing all-traffic inbound rule Glue
requires and one without; route tables of which only some reach S3 (gateway endpoint
or NAT); a Glue NETWORK connection per subnet; Glue jobs; S3 buckets; an EMR Serverless
application; an SNS topic (with an SQS queue subscribed, so tests can read what was
published); an SES identity; the IAM roles the jobs run as.

The world is described by plain data (``SUBNETS``, ``CONNECTIONS``) so tests and
benchmarks can reason about what they should see. ``seed()`` returns the created ids.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import boto3
from botocore.config import Config

from local.paths import REGION

DATA_BUCKET = "mwaa-pipelines-data"
ARTIFACTS_BUCKET = "mwaa-pipelines-artifacts"
LAKE_BUCKET = "mwaa-pipelines-lake"
MWAA_BUCKET = "mwaa-pipelines-environment"
BUCKETS = (DATA_BUCKET, ARTIFACTS_BUCKET, LAKE_BUCKET, MWAA_BUCKET)
# A job script that holds its run for --seconds without Spark: for tests and benchmarks of what
# surrounds a run (decisions, retries, stops, concurrency) on a stack that executes its runs.
HOLD_SCRIPT = Path(__file__).parent / "scripts" / "hold.py"
HOLD_SCRIPT_KEY = "local-stack/hold.py"

GLUE_ROLE = "mwaa-pipelines-glue"
EMR_ROLE = "mwaa-pipelines-emr-serverless"
SNS_TOPIC = "mwaa-pipelines-alerts"
SES_SENDER = "pipelines@example.com"
SUBNET_DEMO_JOB = "subnet_failover_demo"
MWAA_ENVIRONMENT = "mwaa-pipelines-local"
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


def client(service: str, endpoint_url: str):
    return boto3.client(
        service,
        region_name=REGION,
        endpoint_url=endpoint_url,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
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
    vpc_id = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    sg_self = create_glue_security_group(ec2, vpc_id, "glue-self-referencing", self_referencing=True)
    sg_open = create_glue_security_group(ec2, vpc_id, "glue-missing-self-rule", self_referencing=False)
    ec2.authorize_security_group_ingress(
        GroupId=sg_open,
        IpPermissions=[{"IpProtocol": "tcp", "FromPort": 443, "ToPort": 443, "IpRanges": [{"CidrIp": "10.0.0.0/16"}]}],
    )
    security_groups = {"self": sg_self, "open": sg_open}

    rt_endpoint = ec2.create_route_table(VpcId=vpc_id)["RouteTable"]["RouteTableId"]
    rt_nat = ec2.create_route_table(VpcId=vpc_id)["RouteTable"]["RouteTableId"]
    rt_none = ec2.create_route_table(VpcId=vpc_id)["RouteTable"]["RouteTableId"]
    ec2.create_vpc_endpoint(
        VpcId=vpc_id,
        ServiceName=f"com.amazonaws.{REGION}.s3",
        VpcEndpointType="Gateway",
        RouteTableIds=[rt_endpoint],
    )
    route_tables = {"s3-endpoint": rt_endpoint, "nat": rt_nat, "none": rt_none}

    subnets: dict[str, dict] = {}
    for spec in SUBNETS:
        subnet = ec2.create_subnet(VpcId=vpc_id, CidrBlock=spec.cidr, AvailabilityZone=spec.zone)["Subnet"]
        subnet_id = subnet["SubnetId"]
        ec2.associate_route_table(RouteTableId=route_tables[spec.route], SubnetId=subnet_id)
        for _ in range(spec.used_ips):
            ec2.create_network_interface(SubnetId=subnet_id, Description="seeded: address in use")
        subnets[spec.key] = {
            "subnet_id": subnet_id,
            "zone": spec.zone,
            "security_group_id": security_groups[spec.security_group],
            "route": spec.route,
        }

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


def _seed_glue(glue, network: dict, glue_role_arn: str) -> list[str]:
    names = []
    for key, subnet in network["subnets"].items():
        name = connection_name(key)
        create_network_connection(glue, name, subnet["subnet_id"], subnet["security_group_id"], subnet["zone"])
        names.append(name)
    glue.create_connection(
        ConnectionInput={
            "Name": UNMANAGED_CONNECTION,
            "ConnectionType": "JDBC",
            "ConnectionProperties": {"JDBC_CONNECTION_URL": "jdbc:postgresql://warehouse.internal:5432/dev"},
        }
    )
    glue.create_job(
        Name=SUBNET_DEMO_JOB,
        Role=glue_role_arn,
        Command={"Name": "glueetl", "ScriptLocation": f"s3://{ARTIFACTS_BUCKET}/spark_jobs/platform_check.py"},
        GlueVersion="5.0",
        WorkerType="G.1X",
        NumberOfWorkers=10,
        Connections={"Connections": [names[0], UNMANAGED_CONNECTION]},
        ExecutionProperty={"MaxConcurrentRuns": 10},
        # The stack executes its runs: the platform check writes its probe and report here.
        DefaultArguments={
            "--output": f"s3://{DATA_BUCKET}/glue-subnet-demo/platform-check",
            "--run-id": "glue-subnet-demo",
            "--extra-py-files": f"s3://{ARTIFACTS_BUCKET}/spark_jobs/spark_jobs.zip",
        },
        Tags={"team": "platform", "cost-center": "cc-100", "environment": "dev"},
    )
    return names


def _role(iam, name: str, service: str) -> str:
    doc = (
        '{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":'
        f'{{"Service":"{service}"}},"Action":"sts:AssumeRole"}}]}}'
    )
    return iam.create_role(RoleName=name, AssumeRolePolicyDocument=doc)["Role"]["Arn"]


def seed(endpoint_url: str) -> dict:
    """Create the local AWS world on a fresh moto server and return its ids."""
    s3 = client("s3", endpoint_url)
    for bucket in BUCKETS:
        s3.create_bucket(Bucket=bucket)
    # MWAA requires a versioned bucket: deploys pin plugins.zip / requirements.txt versions.
    s3.put_bucket_versioning(Bucket=MWAA_BUCKET, VersioningConfiguration={"Status": "Enabled"})
    s3.put_object(Bucket=ARTIFACTS_BUCKET, Key=HOLD_SCRIPT_KEY, Body=HOLD_SCRIPT.read_bytes())
    iam = client("iam", endpoint_url)
    glue_role_arn = _role(iam, GLUE_ROLE, "glue.amazonaws.com")
    emr_role_arn = _role(iam, EMR_ROLE, "emr-serverless.amazonaws.com")

    network = _seed_network(client("ec2", endpoint_url))
    connections = _seed_glue(client("glue", endpoint_url), network, glue_role_arn)

    emr = client("emr-serverless", endpoint_url)
    app_id = emr.create_application(name="mwaa-pipelines", releaseLabel="emr-7.12.0", type="SPARK")["applicationId"]

    sns = client("sns", endpoint_url)
    topic_arn = sns.create_topic(Name=SNS_TOPIC)["TopicArn"]
    sqs = client("sqs", endpoint_url)
    queue_url = sqs.create_queue(QueueName=f"{SNS_TOPIC}-inbox")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic_arn, Protocol="sqs", Endpoint=queue_arn)
    client("ses", endpoint_url).verify_email_identity(EmailAddress=SES_SENDER)

    mwaa_role_arn = _role(iam, "mwaa-pipelines-execution", "airflow-env.amazonaws.com")
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
        "buckets": {"data": DATA_BUCKET, "artifacts": ARTIFACTS_BUCKET, "lake": LAKE_BUCKET, "mwaa": MWAA_BUCKET},
        "glue_role_arn": glue_role_arn,
        "emr_execution_role_arn": emr_role_arn,
        "emr_application_id": app_id,
        "hold_script": f"s3://{ARTIFACTS_BUCKET}/{HOLD_SCRIPT_KEY}",
        "network": network,
        "glue_connections": connections,
        "glue_unmanaged_connection": UNMANAGED_CONNECTION,
        "glue_subnet_demo_job": SUBNET_DEMO_JOB,
        "sns_topic_arn": topic_arn,
        "sns_inbox_queue_url": queue_url,
        "ses_sender": SES_SENDER,
    }
