"""local/aws/iam_enforcement.py: with authorization on, the local endpoint allows and refuses as
IAM does for the policies the package ships (each case failed on moto's own check)."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws, settings

from local.aws import iam_enforcement

REGION = "us-east-1"
ACCOUNT = "123456789012"
TRUST = json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"Service": "glue.amazonaws.com"}, "Action": "sts:AssumeRole"}]})  # fmt: skip


@pytest.fixture
def aws(monkeypatch):
    iam_enforcement.apply()
    with mock_aws():
        admin = boto3.client("iam", region_name=REGION)
        admin.create_role(RoleName="glue-job", AssumeRolePolicyDocument=TRUST)
        admin.create_role(RoleName="emr-job", AssumeRolePolicyDocument=TRUST)
        glue = boto3.client("glue", region_name=REGION)
        for name in ("mwaa-pipelines-a", "other-team-job"):
            glue.create_job(Name=name, Role="glue-job", Command={"Name": "glueetl", "ScriptLocation": "s3://b/s.py"})
        glue.create_database(DatabaseInput={"Name": "lake"})
        glue.create_database(DatabaseInput={"Name": "private"})
        boto3.client("secretsmanager", region_name=REGION).create_secret(Name="airflow/variables/x", SecretString="1")
        boto3.client("secretsmanager", region_name=REGION).create_secret(Name="payroll/db", SecretString="2")
        boto3.client("s3", region_name=REGION).create_bucket(Bucket="data")
        yield admin
        monkeypatch.setattr(settings, "INITIAL_NO_AUTH_ACTION_COUNT", float("inf"))


def principal(admin, monkeypatch, *statements: dict) -> boto3.Session:
    """A user holding exactly ``statements``; authorization on from here."""
    name = f"user{len(admin.list_users()['Users'])}"
    admin.create_user(UserName=name)
    admin.put_user_policy(
        UserName=name,
        PolicyName="p",
        PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": list(statements)}),
    )
    key = admin.create_access_key(UserName=name)["AccessKey"]
    monkeypatch.setattr(settings, "INITIAL_NO_AUTH_ACTION_COUNT", 0)
    return boto3.Session(aws_access_key_id=key["AccessKeyId"], aws_secret_access_key=key["SecretAccessKey"], region_name=REGION)  # fmt: skip


def allow(action, resource, **condition) -> dict:
    statement = {"Effect": "Allow", "Action": action, "Resource": resource}
    if condition:
        statement["Condition"] = condition
    return statement


def denied(call) -> str:
    with pytest.raises(ClientError) as caught:
        call()
    assert caught.value.response["Error"]["Code"] in ("AccessDenied", "AccessDeniedException"), caught.value.response
    return caught.value.response["Error"]["Message"]


def test_a_grant_on_a_job_name_pattern_allows_those_jobs_only(aws, monkeypatch):
    session = principal(aws, monkeypatch, allow("glue:GetJob", f"arn:aws:glue:{REGION}:{ACCOUNT}:job/mwaa-pipelines-*"))
    glue = session.client("glue")
    assert glue.get_job(JobName="mwaa-pipelines-a")["Job"]["Name"] == "mwaa-pipelines-a"
    message = denied(lambda: glue.get_job(JobName="other-team-job"))
    assert f"glue:GetJob on resource: arn:aws:glue:{REGION}:{ACCOUNT}:job/other-team-job" in message


def test_pass_role_is_needed_on_that_role_for_that_service(aws, monkeypatch):
    glue_role, emr_role = (f"arn:aws:iam::{ACCOUNT}:role/{n}" for n in ("glue-job", "emr-job"))
    session = principal(
        aws,
        monkeypatch,
        allow("glue:CreateJob", "*"),
        allow("iam:PassRole", glue_role, StringEquals={"iam:PassedToService": "glue.amazonaws.com"}),
        allow("iam:PassRole", emr_role, StringEquals={"iam:PassedToService": "emr-serverless.amazonaws.com"}),
    )
    glue = session.client("glue")
    command = {"Name": "glueetl", "ScriptLocation": "s3://b/s.py"}
    glue.create_job(Name="j1", Role=glue_role, Command=command)
    message = denied(lambda: glue.create_job(Name="j2", Role=emr_role, Command=command))
    assert f"iam:PassRole on resource: {emr_role}" in message


def test_an_unmet_condition_leaves_the_other_grants_in_force(aws, monkeypatch):
    session = principal(
        aws,
        monkeypatch,
        allow("s3:GetObject", "arn:aws:s3:::data/*", StringEquals={"aws:SourceVpce": "vpce-1"}),
        allow("s3:PutObject", "arn:aws:s3:::data/*"),
    )
    session.client("s3").put_object(Bucket="data", Key="k", Body=b"x")
    denied(lambda: session.client("s3").get_object(Bucket="data", Key="k"))


def test_an_explicit_deny_wins(aws, monkeypatch):
    session = principal(
        aws,
        monkeypatch,
        allow("secretsmanager:GetSecretValue", "*"),
        {"Effect": "Deny", "Action": "secretsmanager:GetSecretValue", "Resource": f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:payroll/*"},
    )  # fmt: skip
    secrets = session.client("secretsmanager")
    assert secrets.get_secret_value(SecretId="airflow/variables/x")["SecretString"] == "1"
    denied(lambda: secrets.get_secret_value(SecretId="payroll/db"))


def test_secrets_are_checked_on_their_arn_with_its_suffix(aws, monkeypatch):
    session = principal(
        aws, monkeypatch, allow("secretsmanager:GetSecretValue", f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:airflow/variables/*")
    )  # fmt: skip
    secrets = session.client("secretsmanager")
    assert secrets.get_secret_value(SecretId="airflow/variables/x")["SecretString"] == "1"
    denied(lambda: secrets.get_secret_value(SecretId="payroll/db"))
    # A Variable without a secret: not found, as the secrets backend expects, not AccessDenied.
    with pytest.raises(secrets.exceptions.ResourceNotFoundException):
        secrets.get_secret_value(SecretId="airflow/variables/missing")


def test_a_table_is_checked_with_its_database_and_the_catalog(aws, monkeypatch):
    catalog = f"arn:aws:glue:{REGION}:{ACCOUNT}:"
    session = principal(
        aws, monkeypatch,
        allow("glue:CreateTable", [catalog + "catalog", catalog + "database/lake", catalog + "table/lake/*", catalog + "table/private/*"]),
    )  # fmt: skip
    glue = session.client("glue")
    glue.create_table(DatabaseName="lake", TableInput={"Name": "t"})
    message = denied(lambda: glue.create_table(DatabaseName="private", TableInput={"Name": "t"}))
    assert "database/private" in message


def test_emr_serverless_runs_are_checked_on_their_application(aws, monkeypatch):
    emr_admin = boto3.client("emr-serverless", region_name=REGION)
    ours = emr_admin.create_application(name="ours", releaseLabel="emr-7.12.0", type="SPARK")["applicationId"]
    theirs = emr_admin.create_application(name="theirs", releaseLabel="emr-7.12.0", type="SPARK")["applicationId"]
    session = principal(aws, monkeypatch, allow("emr-serverless:GetApplication", f"arn:aws:emr-serverless:{REGION}:{ACCOUNT}:/applications/{ours}"))  # fmt: skip
    emr = session.client("emr-serverless")
    assert emr.get_application(applicationId=ours)["application"]["name"] == "ours"
    denied(lambda: emr.get_application(applicationId=theirs))


def test_actions_without_resource_level_permission_need_a_star(aws, monkeypatch):
    session = principal(aws, monkeypatch, allow("ec2:DescribeSubnets", f"arn:aws:ec2:{REGION}:{ACCOUNT}:subnet/*"))
    denied(lambda: session.client("ec2").describe_subnets())
