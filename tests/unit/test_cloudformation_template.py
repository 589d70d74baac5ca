"""deploy/cloudformation/mwaa-pipelines.yaml: cfn-lint passes, it deploys on moto's CloudFormation
(with local/aws/cloudformation.py's types) into what the DAGs expect, and every policy it and
deploy/iam/ hold passes parliament, the IAM policy linter."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from deploy.cloudformation.stack import TEMPLATE, StackFailed, create_stack
from local.aws import cloudformation as local_cloudformation
from operators.s3_lifecycle import ensure_rule, expiry_rule, tiering_rule

ROOT = Path(__file__).resolve().parents[2]
PARLIAMENT = ROOT / ".state" / "tools" / "parliament" / "bin" / "parliament"
REGION = "us-east-1"
ZONES = ("us-east-1a", "us-east-1b", "us-east-1c")
# Findings deliberately accepted, each with its reason (policy name, parliament issue).
ACCEPTED_FINDINGS = {
    ("mwaa-pipelines-mwaa-execution", "RESOURCE_POLICY_PRIVILEGE_ESCALATION"): (
        "the MWAA role may put lifecycle rules on the data and lake buckets without deleting "
        "objects: the DAGs keep their expiry and tiering rules there by design, and expiring the "
        "files Iceberg tagged deleted is how they are meant to go"
    ),
}


@pytest.fixture(scope="module", autouse=True)
def _local_types():
    local_cloudformation.apply()


def world(subnets: int = 3) -> dict:
    """What the template expects to exist already: a VPC, subnets, route tables, the MWAA role."""
    ec2 = boto3.client("ec2", region_name=REGION)
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    ids = [
        ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.0.{i}.0/24", AvailabilityZone=ZONES[i % 3])["Subnet"]["SubnetId"]
        for i in range(subnets)
    ]
    route_table = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
    trust = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "airflow-env.amazonaws.com"}, "Action": "sts:AssumeRole"}]}  # fmt: skip
    boto3.client("iam", region_name=REGION).create_role(
        RoleName="mwaa-exec", AssumeRolePolicyDocument=json.dumps(trust)
    )
    return {
        "MwaaEnvironmentName": "my-env",
        "MwaaExecutionRoleName": "mwaa-exec",
        "VpcId": vpc,
        "GlueSubnetCount": subnets,
        "GlueSubnetIds": ids,
        "GlueSubnetZones": [ZONES[i % 3] for i in range(subnets)],
        "S3EndpointRouteTableIds": [route_table],
        "SenderEmail": "pipelines@example.com",
        "ReportRecipients": ["finops@example.com", "cto@example.com"],
    }


def deployed(**overrides) -> tuple[dict, dict]:
    params = {**world(overrides.pop("subnets", 3)), **overrides}
    return params, create_stack(boto3.client("cloudformation", region_name=REGION), params)


def variable(name: str):
    text = boto3.client("secretsmanager", region_name=REGION).get_secret_value(SecretId=f"airflow/variables/{name}")
    value = text["SecretString"]
    return json.loads(value) if value.startswith("{") else value


def policies() -> dict[str, dict]:
    iam = boto3.client("iam", region_name=REGION)
    found = {}
    for policy in iam.list_policies(Scope="Local")["Policies"]:
        version = iam.get_policy_version(PolicyArn=policy["Arn"], VersionId=policy["DefaultVersionId"])
        found[policy["PolicyName"]] = version["PolicyVersion"]["Document"]
    return found


def statements(document: dict) -> list[dict]:
    return document["Statement"]


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


# -- lint ---------------------------------------------------------------------------------------
def test_cfn_lint_passes():
    result = subprocess.run([str(ROOT / ".venv" / "bin" / "cfn-lint"), str(TEMPLATE)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_wildcard_resource_is_commented_where_it_stands():
    lines = TEMPLATE.read_text().splitlines()
    wildcards = [i for i, line in enumerate(lines) if re.match(r'\s*Resource: "\*"', line)]
    assert wildcards, "the template has no wildcard at all: this test would prove nothing"
    for i in wildcards:
        comment, j = [], i - 1
        while lines[j].strip().startswith("#"):
            comment.insert(0, lines[j].strip())
            j -= 1
        assert "resource-level" in " ".join(comment), f"line {i + 1}: '*' without its reason just above it"


# -- what the stack creates ---------------------------------------------------------------------
@mock_aws
def test_buckets_are_private_encrypted_and_carry_the_rules_the_dags_ensure():
    _, out = deployed()
    s3 = boto3.client("s3", region_name=REGION)
    for key in ("DataBucket", "LakeBucket", "ArtifactsBucket", "LogsBucket"):
        bucket = out[key]
        block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
        assert all(block.values()) and len(block) == 4, (bucket, block)
        rules = s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
        assert rules[0]["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "AES256"
    assert s3.get_bucket_versioning(Bucket=out["ArtifactsBucket"])["Status"] == "Enabled"

    # The DAGs' own rules, built from the Variables the stack wrote, are already there as wanted.
    iceberg = variable("iceberg_maintenance")
    life = iceberg["lifecycle"]
    tier = tiering_rule(iceberg["storage"]["delete_tags"], life["transition_days"], life["expire_days"], prefix=life["prefix"])  # fmt: skip
    assert life["bucket"] == out["LakeBucket"]
    assert ensure_rule(s3, out["LakeBucket"], tier) == "unchanged"
    tempdir = expiry_rule("redshift-temp/", 1, rule_id="expire-redshift-connector-tempdir")
    assert ensure_rule(s3, out["DataBucket"], tempdir) == "unchanged"
    # ...and a rule that differs would be rewritten: the comparison above can fail.
    assert ensure_rule(s3, out["DataBucket"], expiry_rule("redshift-temp/", 2, rule_id=tempdir["ID"])) == "updated"


@mock_aws
def test_one_connection_per_candidate_subnet_with_glues_self_referencing_group():
    params, out = deployed(subnets=3)
    glue = boto3.client("glue", region_name=REGION)
    failover = variable("glue_subnet_failover")
    names = failover["candidate_connections"]
    assert names == [f"mwaa-pipelines-subnet-{i}" for i in (1, 2, 3)]
    group = out["GlueSecurityGroupId"]
    for name, subnet, zone in zip(names, params["GlueSubnetIds"], params["GlueSubnetZones"], strict=True):
        req = glue.get_connection(Name=name)["Connection"]["PhysicalConnectionRequirements"]
        assert (req["SubnetId"], req["AvailabilityZone"], req["SecurityGroupIdList"]) == (subnet, zone, [group])
    sg = boto3.client("ec2", region_name=REGION).describe_security_groups(GroupIds=[group])["SecurityGroups"][0]
    assert {"IpProtocol": "-1", "UserIdGroupPairs": [group]} in [
        {"IpProtocol": p["IpProtocol"], "UserIdGroupPairs": [g["GroupId"] for g in p["UserIdGroupPairs"]]}
        for p in sg["IpPermissions"]
    ]
    job = glue.get_job(JobName=failover["job_name"])["Job"]
    assert job["Connections"]["Connections"] == [names[0]] and job["Role"] == out["GlueJobRoleArn"]
    endpoints = boto3.client("ec2", region_name=REGION).describe_vpc_endpoints()["VpcEndpoints"]
    assert [e["RouteTableIds"] for e in endpoints] == [params["S3EndpointRouteTableIds"]]


@mock_aws
def test_connections_can_be_named_and_the_job_keeps_its_other_connections():
    boto3.client("glue", region_name=REGION).create_connection(
        ConnectionInput={"Name": "warehouse", "ConnectionType": "JDBC", "ConnectionProperties": {}}
    )
    deployed(subnets=2, GlueConnectionNames=["net-a", "net-b"], SubnetFailoverJobOtherConnections=["warehouse"])
    failover = variable("glue_subnet_failover")
    assert failover["candidate_connections"] == ["net-a", "net-b"]
    job = boto3.client("glue", region_name=REGION).get_job(JobName=failover["job_name"])["Job"]
    assert job["Connections"]["Connections"] == ["net-a", "warehouse"]
    reads = next(s for s in statements(policies()["mwaa-pipelines-glue-job"]) if s["Sid"] == "ConnectionsOfTheJobs")
    assert [r.rsplit(":", 1)[1] for r in reads["Resource"]] == ["catalog", "connection/net-a", "connection/net-b"]


@mock_aws
def test_fewer_subnets_fewer_connections_and_no_endpoint_unless_asked():
    deployed(subnets=1, S3EndpointRouteTableIds="")
    assert variable("glue_subnet_failover")["candidate_connections"] == ["mwaa-pipelines-subnet-1"]
    assert [c["Name"] for c in boto3.client("glue", region_name=REGION).get_connections()["ConnectionList"]] == [
        "mwaa-pipelines-subnet-1"
    ]
    assert boto3.client("ec2", region_name=REGION).describe_vpc_endpoints()["VpcEndpoints"] == []


@mock_aws
def test_application_topic_identity_and_variables_the_dags_accept():
    from operators.cost.settings import resolve_settings as cost_settings
    from operators.iceberg.settings import resolve_settings as iceberg_settings
    from operators.spark.settings import merge_settings as spark_settings

    _, out = deployed(AlertEmail="oncall@example.com")
    app = boto3.client("emr-serverless", region_name=REGION).get_application(applicationId=out["EmrApplicationId"])
    app = app["application"]
    assert app["releaseLabel"] == "emr-7.12.0" and app["autoStartConfiguration"] == {"enabled": True}
    assert app["autoStopConfiguration"] == {"enabled": True, "idleTimeoutMinutes": 15}
    assert app["maximumCapacity"] == {"cpu": "32 vCPU", "memory": "128 GB", "disk": "1000 GB"}
    subs = boto3.client("sns", region_name=REGION).list_subscriptions_by_topic(TopicArn=out["AlertsTopicArn"])
    assert [(s["Protocol"], s["Endpoint"]) for s in subs["Subscriptions"]] == [("email", "oncall@example.com")]
    assert "pipelines@example.com" in boto3.client("ses", region_name=REGION).list_identities()["Identities"]

    spark = spark_settings(variable("spark_platform_config"), variable("spark_platform"), {})
    assert (spark.platform, spark.glue_role_arn, spark.emr_application_id) == (
        "glue",
        out["GlueJobRoleArn"],
        out["EmrApplicationId"],
    )
    assert spark.scripts_uri == out["ScriptsUri"]
    data_uri = variable("pipelines_data_uri")
    assert data_uri == f"s3://{out['DataBucket']}"
    cost = cost_settings({}, variable("cost_alerts"), data_uri)
    assert cost["topic_arn"] == out["AlertsTopicArn"] and cost["recipients"] == [
        "finops@example.com",
        "cto@example.com",
    ]
    assert iceberg_settings({}, variable("iceberg_maintenance"), data_uri)["glue_database"] == "lake"
    with pytest.raises(ClientError):  # no Redshift settings given: no Variable for it
        variable("redshift_quarterly_sales")


@mock_aws
def test_the_mwaa_role_gets_its_policy_and_may_pass_only_the_two_job_roles_to_their_services():
    _, out = deployed()
    iam = boto3.client("iam", region_name=REGION)
    attached = iam.list_attached_role_policies(RoleName="mwaa-exec")["AttachedPolicies"]
    assert [p["PolicyArn"] for p in attached] == [out["MwaaPipelinesPolicyArn"]]
    passes = [
        s for s in statements(policies()["mwaa-pipelines-mwaa-execution"]) if "iam:PassRole" in as_list(s["Action"])
    ]
    granted = {(s["Resource"], s["Condition"]["StringEquals"]["iam:PassedToService"]) for s in passes}
    assert granted == {
        (out["GlueJobRoleArn"], "glue.amazonaws.com"),
        (out["EmrJobRoleArn"], "emr-serverless.amazonaws.com"),
    }
    assert all(as_list(s["Action"]) == ["iam:PassRole"] for s in passes)
    for role, service in (("mwaa-pipelines-glue-job", "glue"), ("mwaa-pipelines-emr-serverless-job", "emr-serverless")):
        trust = iam.get_role(RoleName=role)["Role"]["AssumeRolePolicyDocument"]["Statement"]
        assert [s["Principal"] for s in trust] == [{"Service": f"{service}.amazonaws.com"}]


@mock_aws
def test_redshift_settings_add_its_variable_and_statements_and_nothing_else_changes():
    _, out = deployed(
        RedshiftJdbcUrl="jdbc:redshift://wh.example:5439/dev",
        RedshiftClusterIdentifier="wh",
        RedshiftDbUser="reporter",
    )
    redshift = variable("redshift_quarterly_sales")
    assert (redshift["backend"], redshift["cluster_identifier"], redshift["db_user"]) == ("redshift", "wh", "reporter")
    assert "aws_iam_role" not in redshift
    found = policies()
    sids = {name: [s.get("Sid") for s in statements(doc)] for name, doc in found.items()}
    assert "RedshiftTemporaryCredentials" in sids["mwaa-pipelines-glue-job"]
    assert {"PushdownCheckStatements", "PushdownCheckResults"} <= set(sids["mwaa-pipelines-mwaa-execution"])
    creds = next(
        s for s in statements(found["mwaa-pipelines-glue-job"]) if s.get("Sid") == "RedshiftTemporaryCredentials"
    )
    assert creds["Resource"] == [
        "arn:aws:redshift:us-east-1:123456789012:dbuser:wh/reporter",
        "arn:aws:redshift:us-east-1:123456789012:dbname:wh/dev",
    ]


@mock_aws
def test_a_resource_type_the_local_stack_cannot_create_fails_the_stack_instead_of_being_skipped():
    template = TEMPLATE.read_text().replace("Type: AWS::SES::EmailIdentity", "Type: AWS::SES::ConfigurationSet", 1)
    cloudformation = boto3.client("cloudformation", region_name=REGION)
    params = world(1)
    from deploy.cloudformation.stack import CAPABILITIES, parameter_list

    with pytest.raises(ClientError, match="Unrecognized resource types: \\[AWS::SES::ConfigurationSet\\]"):
        cloudformation.create_stack(StackName="s", TemplateBody=template, Parameters=parameter_list(params), Capabilities=CAPABILITIES)  # fmt: skip


@mock_aws
def test_create_stack_reports_a_refused_parameter():
    with pytest.raises(StackFailed, match="not created"):
        create_stack(boto3.client("cloudformation", region_name=REGION), {**world(1), "GlueSubnetCount": 9})


# -- parliament -----------------------------------------------------------------------------------
def parliament(document: dict) -> list[dict]:
    assert PARLIAMENT.exists(), f"{PARLIAMENT} is missing: `make install` builds it (make policy-lint)"
    result = subprocess.run(
        [str(PARLIAMENT), "--string", json.dumps(document), "--json"], capture_output=True, text=True
    )
    return [json.loads(line) for line in result.stdout.splitlines() if line.strip()]


def test_parliament_finds_what_it_should():
    """The linter is really run: a misspelt action and an object action on a bucket ARN are found."""
    bad = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "glue:StartJobRunz", "Resource": "*"},
        {"Effect": "Allow", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::bucket"},
    ]}  # fmt: skip
    assert {f["issue"] for f in parliament(bad)} == {"UNKNOWN_ACTION", "RESOURCE_MISMATCH"}


@mock_aws
def test_every_policy_of_the_template_passes_parliament():
    deployed(RedshiftJdbcUrl="jdbc:redshift://wh:5439/dev", RedshiftClusterIdentifier="wh", RedshiftDbUser="u")
    found = policies()
    assert set(found) == {
        "mwaa-pipelines-mwaa-execution",
        "mwaa-pipelines-glue-job",
        "mwaa-pipelines-emr-serverless-job",
    }
    unexplained = [
        (name, f["issue"], f.get("detail"))
        for name, document in found.items()
        for f in parliament(document)
        if (name, f["issue"]) not in ACCEPTED_FINDINGS
    ]
    assert unexplained == []


def test_every_policy_of_deploy_iam_passes_parliament():
    from tests.unit.test_iam_policies import POLICIES, filled

    for path in POLICIES:
        assert parliament(json.loads(filled(path))) == [], path.name
