"""A stack with IAM enforced: Airflow calls AWS as a principal holding exactly the template's
MWAA execution-role policy, and a DAG passes with nothing more; without one of the policy's
statements it fails with AccessDenied. (First DAG: glue_subnet_failover's dry run; the others
need job-role credentials for the runs, which the stack does not give them yet.)"""

from __future__ import annotations

import json
import uuid

import pytest

from local.paths import TMP
from local.services.stack import running_stack
from tests.conftest import AirflowRunner

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def enforced():
    with running_stack(TMP / f"iam-{uuid.uuid4().hex[:6]}", discard=True, iam=True) as stack:
        runner = AirflowRunner(stack, stack.dags_folder)
        migrated = runner.run("db", "migrate")
        assert migrated.returncode == 0, migrated.stderr[-3000:]
        yield stack, runner


def test_test_keys_are_refused_once_iam_is_enforced(enforced):
    import boto3
    from botocore.exceptions import ClientError

    stack, _ = enforced
    s3 = boto3.client(
        "s3", endpoint_url=stack.info()["moto"]["endpoint_url"], region_name="us-east-1",
        aws_access_key_id="testing", aws_secret_access_key="testing",
    )  # fmt: skip
    with pytest.raises(ClientError, match="InvalidAccessKeyId|AccessDenied|403"):
        s3.list_buckets()


def test_the_subnet_dry_run_passes_with_the_mwaa_policy_and_fails_without_its_connection_reads(enforced):
    stack, runner = enforced
    conf = {"dry_run": True}
    result = runner.dags_test("glue_subnet_failover", conf)
    assert runner.task_states("glue_subnet_failover") == {"start_on_healthiest_subnet": "success"}, (
        result.stdout[-4000:] + result.stderr[-3000:]
    )

    iam = stack.boto3_client("iam")
    arn = stack.info()["seed"]["stack_outputs"]["MwaaPipelinesPolicyArn"]
    policy = iam.get_policy(PolicyArn=arn)["Policy"]
    document = iam.get_policy_version(PolicyArn=arn, VersionId=policy["DefaultVersionId"])["PolicyVersion"]["Document"]
    without = {**document, "Statement": [s for s in document["Statement"] if s.get("Sid") != "CandidateSubnetsOfTheConnections"]}  # fmt: skip
    assert len(without["Statement"]) == len(document["Statement"]) - 1
    version = iam.create_policy_version(PolicyArn=arn, PolicyDocument=json.dumps(without), SetAsDefault=True)
    try:
        refused = runner.dags_test("glue_subnet_failover", conf)
        assert runner.task_states("glue_subnet_failover") == {"start_on_healthiest_subnet": "failed"}
        output = refused.stdout + refused.stderr
        assert "AWS refused a call for lack of permission" in output
        assert "not authorized to perform: glue:GetConnections" in output
        assert "up_for_retry" not in output.lower(), "a missing permission is not retried"
    finally:
        iam.set_default_policy_version(PolicyArn=arn, VersionId=policy["DefaultVersionId"])
        iam.delete_policy_version(PolicyArn=arn, VersionId=version["PolicyVersion"]["VersionId"])
