"""The Glue UpdateJob extension behaves like the real API (whole-definition replace)."""

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from local.aws import extensions as moto_ext


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


def test_get_connection_reports_its_type(glue):
    glue.create_connection(
        ConnectionInput={
            "Name": "net",
            "ConnectionType": "NETWORK",
            "ConnectionProperties": {},
            "PhysicalConnectionRequirements": {"SubnetId": "subnet-1", "AvailabilityZone": "us-east-1a"},
        }
    )
    conn = glue.get_connection(Name="net")["Connection"]
    assert conn["ConnectionType"] == "NETWORK"
    assert conn["PhysicalConnectionRequirements"]["SubnetId"] == "subnet-1"


def test_batch_stop_job_run(glue):
    from moto.moto_api import state_manager

    # Keep runs RUNNING until stopped (moto's default finishes them at once).
    state_manager.set_transition("glue::job_run", {"progression": "manual", "times": 1000})
    try:
        run_id = glue.start_job_run(JobName="j")["JobRunId"]
        result = glue.batch_stop_job_run(JobName="j", JobRunIds=[run_id, "jr_unknown"])
        assert result["SuccessfulSubmissions"] == [{"JobName": "j", "JobRunId": run_id}]
        assert [e["JobRunId"] for e in result["Errors"]] == ["jr_unknown"]
        assert glue.get_job_run(JobName="j", RunId=run_id)["JobRun"]["JobRunState"] == "STOPPED"
    finally:
        state_manager.unset_transition("glue::job_run")


def test_delete_connection(glue):
    glue.create_connection(ConnectionInput={"Name": "gone", "ConnectionType": "NETWORK", "ConnectionProperties": {}})
    glue.delete_connection(ConnectionName="gone")
    with pytest.raises(ClientError, match="EntityNotFoundException"):
        glue.get_connection(Name="gone")
    with pytest.raises(ClientError, match="EntityNotFoundException"):
        glue.delete_connection(ConnectionName="gone")


def test_cached_dispatcher_routes_like_moto_and_looks_each_host_up_once(monkeypatch):
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication, create_backend_app

    from local.aws.server import cached_dispatcher

    hosts = ["s3.us-east-1.amazonaws.com", "glue.us-east-1.amazonaws.com", "sns.eu-west-1.amazonaws.com",
             "moto_api", "ec2", "127.0.0.1:5000", None]  # fmt: skip
    plain = DomainDispatcherApplication(create_backend_app)
    expected = {host: plain.get_backend_for_host(host) for host in hosts}
    assert expected["s3.us-east-1.amazonaws.com"] == "s3" and expected["glue.us-east-1.amazonaws.com"] == "glue"

    lookups: list = []
    original = DomainDispatcherApplication.get_backend_for_host
    monkeypatch.setattr(
        DomainDispatcherApplication,
        "get_backend_for_host",
        lambda self, host: lookups.append(host) or original(self, host),
    )
    cached = cached_dispatcher()
    for _ in range(3):
        assert {host: cached.get_backend_for_host(host) for host in hosts} == expected
    assert sorted(lookups, key=str) == sorted(hosts, key=str)
