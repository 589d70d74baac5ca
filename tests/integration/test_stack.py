"""The seeded local world: what the pipelines and their tests rely on."""

from __future__ import annotations

import psutil
import pytest

from local.seeds.aws_world import SUBNETS, connection_name
from local.services import postgres

pytestmark = pytest.mark.stack


def test_servers_listen_on_loopback_only(stack):
    info = stack.info()
    ports = {info["moto"]["port"], info["postgres"]["port"]}
    listening = {c.laddr.port: c.laddr.ip for c in psutil.net_connections("inet") if c.status == "LISTEN"}
    for port in ports:
        assert listening.get(port) == "127.0.0.1", f"port {port} listens on {listening.get(port)}"


def test_network_world(stack):
    ec2 = stack.boto3_client("ec2")
    seeded = stack.info()["seed"]["network"]
    subnets = ec2.describe_subnets(SubnetIds=[s["subnet_id"] for s in seeded["subnets"].values()])["Subnets"]
    assert len(subnets) >= 4
    assert len({s["AvailabilityZone"] for s in subnets}) == 3
    free = [s["AvailableIpAddressCount"] for s in subnets]
    assert len(set(free)) == len(free), f"free IPs should differ per subnet: {free}"

    groups = {g["GroupId"]: g for g in ec2.describe_security_groups()["SecurityGroups"]}

    def self_referencing(group_id: str) -> bool:
        return any(
            p["IpProtocol"] == "-1" and any(pair["GroupId"] == group_id for pair in p.get("UserIdGroupPairs", []))
            for p in groups[group_id]["IpPermissions"]
        )

    assert self_referencing(seeded["security_groups"]["self"])
    assert not self_referencing(seeded["security_groups"]["open"])

    endpoints = ec2.describe_vpc_endpoints()["VpcEndpoints"]
    s3_tables = {rt for e in endpoints if e["ServiceName"].endswith(".s3") for rt in e["RouteTableIds"]}
    tables = ec2.describe_route_tables()["RouteTables"]
    by_subnet = {a["SubnetId"]: t["RouteTableId"] for t in tables for a in t.get("Associations", []) if "SubnetId" in a}
    with_s3 = {key for key, s in seeded["subnets"].items() if by_subnet[s["subnet_id"]] in s3_tables}
    assert with_s3 == {spec.key for spec in SUBNETS if spec.route == "s3-endpoint"}
    assert 0 < len(with_s3) < len(SUBNETS)


def test_glue_and_services(stack):
    seeded = stack.info()["seed"]
    glue = stack.boto3_client("glue")
    for spec in SUBNETS:
        conn = glue.get_connection(Name=connection_name(spec.key))["Connection"]
        assert conn["ConnectionType"] == "NETWORK"
        assert conn["PhysicalConnectionRequirements"]["SubnetId"] == seeded["network"]["subnets"][spec.key]["subnet_id"]
    job = glue.get_job(JobName=seeded["glue_subnet_demo_job"])["Job"]
    assert seeded["glue_unmanaged_connection"] in job["Connections"]["Connections"]

    buckets = {b["Name"] for b in stack.boto3_client("s3").list_buckets()["Buckets"]}
    assert set(seeded["buckets"].values()) <= buckets
    app = stack.boto3_client("emr-serverless").get_application(applicationId=seeded["emr_application_id"])
    assert app["application"]["type"].upper() == "SPARK"
    assert seeded["sns_topic_arn"] in [t["TopicArn"] for t in stack.boto3_client("sns").list_topics()["Topics"]]
    assert seeded["ses_sender"] in stack.boto3_client("ses").list_identities()["Identities"]


def test_update_job_through_the_server(stack):
    """The extension is loaded by the stack's moto server, not only in-process."""
    glue = stack.boto3_client("glue")
    name = stack.info()["seed"]["glue_subnet_demo_job"]
    job = glue.get_job(JobName=name)["Job"]
    update = {
        k: job[k] for k in ("Role", "Command", "GlueVersion", "WorkerType", "NumberOfWorkers", "ExecutionProperty")
    }
    update["Connections"] = {"Connections": [connection_name("b1"), stack.info()["seed"]["glue_unmanaged_connection"]]}
    glue.update_job(JobName=name, JobUpdate=update)
    assert glue.get_job(JobName=name)["Job"]["Connections"] == update["Connections"]
    glue.update_job(JobName=name, JobUpdate={**update, "Connections": job["Connections"]})


def test_postgres_databases(stack):
    port = stack.info()["postgres"]["port"]
    dbs = postgres.psql(port, "SELECT datname FROM pg_database").split()
    assert {"iceberg_catalog", "warehouse"} <= set(dbs)
    assert (
        postgres.psql(port, "SELECT extname FROM pg_extension", db="warehouse").split().count("pg_stat_statements") == 1
    )


def test_cluster_outside_the_checkout_starts_fresh(tmp_path, monkeypatch):
    """A checkout the postgres user cannot enter keeps its cluster in a linked temp folder;
    an orphan left there by a deleted checkout must not leak into a new stack."""
    import os

    if os.geteuid() != 0:
        pytest.skip("only root runs the cluster as another user")
    monkeypatch.setattr(postgres, "_server_user_can_reach", lambda path: False)
    requested = tmp_path / "state" / "postgres"
    outside = postgres.server_data_dir(requested)
    assert requested.is_symlink() and requested.resolve() == outside
    outside.mkdir(parents=True, exist_ok=True)
    (outside / "PG_VERSION").write_text("15")  # a cluster from an earlier checkout
    requested.unlink()  # the checkout (and its link) went away
    again = postgres.server_data_dir(requested)
    assert again == outside and not (again / "PG_VERSION").exists()
    assert postgres.server_data_dir(requested) == outside  # an existing link is kept as is


def test_stop_reaps_the_moto_server(tmp_path):
    """A stopped stack leaves no moto process behind, not even a zombie its starter never waited for."""
    from local.services.stack import Stack

    stack = Stack(tmp_path / "stack")
    pid = stack.start()["moto"]["pid"]
    assert psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    stack.clean()
    assert not psutil.pid_exists(pid)


def test_the_stack_is_the_packages_cloudformation_stack(stack):
    """The world the pipelines run in was made by deploy/cloudformation/mwaa-pipelines.yaml."""
    cloudformation = stack.boto3_client("cloudformation")
    (deployed,) = cloudformation.describe_stacks(StackName="mwaa-pipelines")["Stacks"]
    assert deployed["StackStatus"] == "CREATE_COMPLETE"
    made = {
        r["LogicalResourceId"]: r["PhysicalResourceId"]
        for r in cloudformation.list_stack_resources(StackName="mwaa-pipelines")["StackResourceSummaries"]
        if r["PhysicalResourceId"]
    }
    seeded = stack.info()["seed"]
    assert made["DataBucket"] == seeded["buckets"]["data"] and made["EmrApplication"] == seeded["emr_application_id"]
    assert made["SubnetFailoverJob"] == seeded["glue_subnet_demo_job"]
    assert [made[f"GlueConnection{i}"] for i in range(1, 6)] == seeded["glue_connections"]
    assert made["GlueSecurityGroup"] == seeded["network"]["security_groups"]["self"]
    iam = stack.boto3_client("iam")
    attached = iam.list_attached_role_policies(RoleName="mwaa-pipelines-execution")["AttachedPolicies"]
    assert [p["PolicyName"] for p in attached] == ["mwaa-pipelines-mwaa-execution"]


def test_airflow_reads_the_variables_from_the_stacks_secrets(stack, airflow_runner):
    """The secrets backend MWAA documents, on the stack's Secrets Manager: the template's secrets
    where their values fit the stack, local ones written over the rest; a Variable's environment
    variable does not win over its secret (as on MWAA, where the backend is searched first)."""
    published = stack.info()["variables"]
    assert {"pipelines_data_uri", "glue_subnet_failover"} <= set(published["as_deployed"])
    assert "spark_platform" in published["rewritten"] and "redshift_quarterly_sales" in published["added"]

    def airflow_reads(name: str, env: dict | None = None) -> str:
        result = airflow_runner.run("variables", "get", name, env=env)
        assert result.returncode == 0, result.stderr[-2000:]
        return result.stdout.strip().splitlines()[-1]

    assert airflow_reads("spark_platform") == "local"
    with stack.variable_set("spark_platform", "emr_serverless"):
        assert airflow_reads("spark_platform", env={"AIRFLOW_VAR_SPARK_PLATFORM": "glue"}) == "emr_serverless"
    assert airflow_reads("spark_platform") == "local"
    assert airflow_reads("glue_subnet_failover") == stack.variable("glue_subnet_failover")
