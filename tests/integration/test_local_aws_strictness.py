"""The local stack refuses what AWS refuses, where our code could trip (README: "What the local
stack enforces as AWS does"). Each case goes through the stack's own endpoint, as our code does."""

from __future__ import annotations

import json
import uuid

import pytest
from botocore.exceptions import ClientError

pytestmark = pytest.mark.stack


@pytest.fixture(scope="module")
def s3_object(stack):
    s3 = stack.boto3_client("s3")
    bucket = f"strict-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_object(Bucket=bucket, Key="data/file.parquet", Body=b"x", Tagging="lifecycle=live")
    return s3, bucket, "data/file.parquet"


def _refused(call, code: str, message: str) -> None:
    with pytest.raises(ClientError) as caught:
        call()
    error = caught.value.response["Error"]
    assert (error["Code"], error["Message"]) == (code, message)


def test_put_object_tagging_refuses_a_repeated_key(s3_object):
    """Iceberg's S3FileIO adds the delete tags to the object's tag set and writes it back: with a
    delete tag on the write tag's key the set holds the key twice, and S3 refuses it."""
    s3, bucket, key = s3_object
    tag_set = [{"Key": "lifecycle", "Value": "live"}, {"Key": "lifecycle", "Value": "deleted"}]
    _refused(
        lambda: s3.put_object_tagging(Bucket=bucket, Key=key, Tagging={"TagSet": tag_set}),
        "InvalidTag",
        "Cannot provide multiple Tags with the same key",
    )
    # Nothing changed.
    assert s3.get_object_tagging(Bucket=bucket, Key=key)["TagSet"] == [{"Key": "lifecycle", "Value": "live"}]


def test_put_object_tagging_limits(s3_object):
    s3, bucket, key = s3_object

    def put(tags: dict[str, str]):
        return lambda: s3.put_object_tagging(
            Bucket=bucket, Key=key, Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in tags.items()]}
        )

    _refused(put({f"k{i}": "v" for i in range(11)}), "BadRequest", "Object tags cannot be greater than 10")
    _refused(put({"k" * 129: "v"}), "InvalidTag", "The TagKey you have provided is invalid")
    _refused(put({"k": "v" * 257}), "InvalidTag", "The TagValue you have provided is invalid")
    # At the limits, S3 accepts the set.
    limits = {"k" * 128: "v" * 256, **{f"k{i}": "" for i in range(9)}}
    put(limits)()
    assert len(s3.get_object_tagging(Bucket=bucket, Key=key)["TagSet"]) == 10


def test_tagging_header_is_checked_on_put_copy_and_multipart(s3_object):
    s3, bucket, key = s3_object
    duplicate = (
        "InvalidArgument",
        "The header 'x-amz-tagging' shall be encoded as UTF-8 then URLEncoded URL query parameters "
        "without tag name duplicates.",
    )
    _refused(lambda: s3.put_object(Bucket=bucket, Key="dup.bin", Body=b"x", Tagging="a=1&a=2"), *duplicate)
    _refused(
        lambda: s3.copy_object(
            Bucket=bucket,
            Key="copy.bin",
            CopySource={"Bucket": bucket, "Key": key},
            TaggingDirective="REPLACE",
            Tagging="a=1&a=2",
        ),
        *duplicate,
    )
    # S3 checks a multipart upload's tags when it is created, not when it completes.
    _refused(lambda: s3.create_multipart_upload(Bucket=bucket, Key="mp.bin", Tagging="a=1&a=2"), *duplicate)
    many = "&".join(f"k{i}=v" for i in range(11))
    _refused(
        lambda: s3.create_multipart_upload(Bucket=bucket, Key="mp.bin", Tagging=many),
        "BadRequest",
        "Object tags cannot be greater than 10",
    )
    _refused(
        lambda: s3.put_object(Bucket=bucket, Key="long.bin", Body=b"x", Tagging="k=" + "v" * 257),
        "InvalidTag",
        "The TagValue you have provided is invalid",
    )
    for name in ("dup.bin", "copy.bin", "long.bin"):
        with pytest.raises(ClientError, match="404|NoSuchKey|Not Found"):
            s3.head_object(Bucket=bucket, Key=name)
    assert "Uploads" not in s3.list_multipart_uploads(Bucket=bucket)
    # A valid header still tags the object.
    s3.put_object(Bucket=bucket, Key="ok.bin", Body=b"x", Tagging="a=1&b=")
    tags = s3.get_object_tagging(Bucket=bucket, Key="ok.bin")["TagSet"]
    assert sorted((t["Key"], t["Value"]) for t in tags) == [("a", "1"), ("b", "")]


def test_sns_refuses_subjects_the_publish_api_forbids(stack):
    sns = stack.boto3_client("sns")
    topic = sns.create_topic(Name=f"strict-{uuid.uuid4().hex[:8]}")["TopicArn"]
    for bad in ("s" * 100, "two\nlines", "caf\u00e9", " leading space", ""):
        _refused(lambda s=bad: sns.publish(TopicArn=topic, Message="m", Subject=s), "InvalidParameter",
                 "Invalid parameter: Subject")  # fmt: skip
    assert sns.publish(TopicArn=topic, Message="m", Subject="s" * 99)["MessageId"]
    batch = sns.publish_batch(
        TopicArn=topic,
        PublishBatchRequestEntries=[{"Id": "ok", "Message": "m", "Subject": "fine"},
                                    {"Id": "long", "Message": "m", "Subject": "s" * 100}],
    )  # fmt: skip
    assert [s["Id"] for s in batch["Successful"]] == ["ok"] and [f["Id"] for f in batch["Failed"]] == ["long"]


def test_cost_alerts_fit_sns_for_any_job_name(stack):
    """A job name that makes the subject 100 characters or more is cut to SNS's limit, and sent."""
    from operators.cost import alerts

    sns, s3 = stack.boto3_client("sns"), stack.boto3_client("s3")
    seeded = stack.info()["seed"]
    state = f"s3://{seeded['buckets']['data']}/strict-{uuid.uuid4().hex[:8]}/alert-state.json"
    violations = [
        {
            "key": f"failed:glue:jr_{n}",
            "kind": "failed",
            "job_name": "j" * n,
            "detail": "failed run",
            "platform": "glue",
        }
        for n in (80, 81, 200)  # subjects of 99, 100 and 219 characters before any cut
    ]
    summary = alerts.publish_new(sns, s3, seeded["sns_topic_arn"], violations, state, dry_run=False)
    assert summary["sent"] == 3
    assert all(len(alerts.subject(v)) < 100 for v in violations)


def test_a_lease_taken_over_is_never_deleted_by_its_old_holder(stack):
    """The old holder's release runs while another holder takes the expired lease over: the new
    holder's lease must survive (a check-then-delete would remove it between the two calls)."""
    import datetime as dt

    from operators.subnet.lease import S3Lease

    s3 = stack.boto3_client("s3")
    bucket, key = stack.info()["seed"]["buckets"]["data"], f"_locks/strict-{uuid.uuid4().hex[:8]}"
    old = S3Lease(s3, bucket, key, owner="old", ttl=dt.timedelta(seconds=-1))  # expired at once
    old.acquire()
    new = S3Lease(s3, bucket, key, owner="new", wait=dt.timedelta(seconds=5))

    class TakeOverBeforeDelete:
        """The old holder's client: the new holder takes the lease over just before any delete."""

        def __getattr__(self, name):
            if name == "delete_object":
                new.acquire()
            return getattr(s3, name)

    old.s3 = TakeOverBeforeDelete()
    old.release()
    holder = json.loads(s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    assert holder["owner"] == "new"
    new.release()
    with pytest.raises(ClientError, match="NoSuchKey|Not Found|404"):
        s3.head_object(Bucket=bucket, Key=key)


def test_glue_refuses_runs_over_the_jobs_limit_and_spark_tasks_size_it(stack, aws_env):
    """Glue refuses a run over the job's MaxConcurrentRuns. The provider's default of 1 refuses
    the second of four mapped tasks sharing the job; SparkScriptOperator sizes it from the fan-out."""
    from airflow.sdk import DAG

    from operators.spark.script_operator import SparkScriptOperator
    from operators.spark.settings import merge_settings

    seeded = stack.info()["seed"]
    settings = merge_settings({"scripts_uri": f"s3://{seeded['buckets']['artifacts']}/spark_jobs",
                               "glue_role_arn": seeded["glue_role_arn"], "glue_max_concurrent_runs": 1},
                              "glue", None)  # fmt: skip
    glue = stack.boto3_client("glue")
    started: list[tuple[str, str]] = []
    try:
        for limit, mapped in ((None, True), (1, False)):  # ours, then the provider's default
            name = f"fan-out-{uuid.uuid4().hex[:8]}"
            with DAG(f"d-{name}", schedule=None, max_active_runs=1):
                op = SparkScriptOperator(task_id="convert", script="json_to_parquet.py", job_name=name,
                                         aws_conn_id=None, max_active_tis_per_dagrun=4,
                                         concurrent_run_limit=limit)  # fmt: skip
            op._mapped = mapped
            op._build_delegate(settings, ["--input", "x"]).hook.create_or_update_glue_job()
            allowed = glue.get_job(JobName=name)["Job"]["ExecutionProperty"]["MaxConcurrentRuns"]
            assert allowed == (4 if limit is None else 1)
            # The runs hold (the stack's hold script) so that they are live when the next comes.
            hold = {"--scriptLocation": seeded["hold_script"], "--seconds": "120"}
            for _ in range(allowed):
                started.append((name, glue.start_job_run(JobName=name, Arguments=hold)["JobRunId"]))
            with pytest.raises(ClientError, match="ConcurrentRunsExceededException"):
                glue.start_job_run(JobName=name, Arguments=hold)
    finally:
        for name, run_id in started:
            glue.batch_stop_job_run(JobName=name, JobRunIds=[run_id])
