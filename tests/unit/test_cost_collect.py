"""Glue job ARNs in every AWS partition: the cost collector reads each job's tags by ARN."""

from __future__ import annotations

import datetime as dt

import boto3
import pytest
from botocore.stub import Stubber

from operators.cost.collect import collect_glue


@pytest.mark.parametrize(
    "region, partition", [("us-east-1", "aws"), ("cn-north-1", "aws-cn"), ("us-gov-west-1", "aws-us-gov")]
)
def test_tags_are_read_with_the_partition_of_the_clients_region(region, partition):
    glue = boto3.client("glue", region_name=region, aws_access_key_id="k", aws_secret_access_key="s")
    now = dt.datetime(2026, 11, 30, tzinfo=dt.UTC)
    with Stubber(glue) as stub:
        stub.add_response("get_jobs", {"Jobs": [{"Name": "nightly"}]})
        stub.add_response(
            "get_tags",
            {"Tags": {"team": "finance"}},
            {"ResourceArn": f"arn:{partition}:glue:{region}:123456789012:job/nightly"},
        )
        stub.add_response("get_job_runs", {"JobRuns": []}, {"JobName": "nightly"})
        out = collect_glue(glue, "123456789012", now - dt.timedelta(days=1), now)
        stub.assert_no_pending_responses()
    assert out.jobs == 1 and out.problems == []
