"""The Glue UpdateJob extension behaves like the real API (whole-definition replace)."""

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from local import moto_ext


@pytest.fixture
def glue():
    moto_ext.apply()
    with mock_aws():
        client = boto3.client("glue", region_name="us-east-1")
        client.create_job(
            Name="j",
            Role="arn:aws:iam::123456789012:role/r",
            Command={"Name": "glueetl", "ScriptLocation": "s3://b/a.py"},
            Connections={"Connections": ["c1", "jdbc"]},
            DefaultArguments={"--x": "1"},
            NumberOfWorkers=5,
            WorkerType="G.1X",
            Tags={"team": "t"},
        )
        yield client


def test_update_job_replaces_definition_and_keeps_runs(glue):
    run_id = glue.start_job_run(JobName="j")["JobRunId"]
    glue.update_job(
        JobName="j",
        JobUpdate={
            "Role": "arn:aws:iam::123456789012:role/r",
            "Command": {"Name": "glueetl", "ScriptLocation": "s3://b/a.py"},
            "Connections": {"Connections": ["c2", "jdbc"]},
            "NumberOfWorkers": 7,
            "WorkerType": "G.2X",
        },
    )
    job = glue.get_job(JobName="j")["Job"]
    assert job["Connections"] == {"Connections": ["c2", "jdbc"]}
    assert job["NumberOfWorkers"] == 7 and job["WorkerType"] == "G.2X"
    # Left out of JobUpdate -> reset, as AWS documents for UpdateJob.
    assert job.get("DefaultArguments", {}) == {}
    assert glue.get_job_run(JobName="j", RunId=run_id)["JobRun"]["Id"] == run_id
    arn = "arn:aws:glue:us-east-1:123456789012:job/j"
    assert glue.get_tags(ResourceArn=arn)["Tags"] == {"team": "t"}


def test_update_job_errors_like_aws(glue):
    with pytest.raises(ClientError, match="EntityNotFoundException"):
        glue.update_job(
            JobName="missing", JobUpdate={"Role": "r", "Command": {"Name": "glueetl", "ScriptLocation": "s3://b/a"}}
        )
    with pytest.raises(ClientError, match="InvalidInputException"):
        glue.update_job(JobName="j", JobUpdate={"NumberOfWorkers": 2})
