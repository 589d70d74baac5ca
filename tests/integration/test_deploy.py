"""Deploy to MWAA, exercised against the local stack (moto + the MWAA API extension)."""

from __future__ import annotations

import datetime as dt
import io
import json
import os
import subprocess
import sys
import uuid
import zipfile
from pathlib import Path

import pytest

from deploy.layout import ROOT, dags_bundle
from deploy.mwaa import DeployError, deploy
from local.paths import TMP

pytestmark = pytest.mark.stack
INSPECT = Path(__file__).resolve().parent.parent / "dag" / "inspect_dags.py"


@pytest.fixture(scope="module", autouse=True)
def credentials():
    """The deploy uses the standard AWS credential chain; here, test keys in the environment."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("AWS_ACCESS_KEY_ID", "testing")
        mp.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        yield


@pytest.fixture(scope="module")
def deployed(stack):
    seeded = stack.info()["seed"]
    s3 = stack.boto3_client("s3")
    bucket = seeded["buckets"]["mwaa"]
    s3.put_object(Bucket=bucket, Key="dags/old_pipeline.py", Body=b"# removed from the repo")
    report = deploy(
        seeded["mwaa_environment"],
        scripts_uri=f"s3://{seeded['buckets']['artifacts']}/spark_jobs",
        region="us-east-1",
        endpoint_url=stack.info()["moto"]["endpoint_url"],
    )
    return report, s3, bucket, seeded


def test_dags_bundle_layout_in_the_bucket(deployed):
    report, s3, bucket, _ = deployed
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket, Prefix="dags/")["Contents"]}
    assert {f"dags/{rel}" for rel in dags_bundle()} == keys
    assert {
        "dags/spark_platform_check.py",
        "dags/operators/spark/script_operator.py",
        "dags/.airflowignore",
        "dags/constraints.txt",
    } <= keys
    assert report.deleted == ["dags/old_pipeline.py"]


def test_scripts_plugins_requirements(deployed):
    report, s3, bucket, seeded = deployed
    artifacts = seeded["buckets"]["artifacts"]
    scripts = {o["Key"] for o in s3.list_objects_v2(Bucket=artifacts, Prefix="spark_jobs/")["Contents"]}
    assert {"spark_jobs/platform_check.py", "spark_jobs/common/session.py", "spark_jobs/spark_jobs.zip"} <= scripts
    plugins = zipfile.ZipFile(io.BytesIO(s3.get_object(Bucket=bucket, Key="plugins.zip")["Body"].read()))
    assert "mwaa_pipelines.py" in plugins.namelist()
    assert not any(n.startswith("operators/") for n in plugins.namelist()), "operators travel under dags/"
    requirements = s3.get_object(Bucket=bucket, Key="requirements.txt")["Body"].read().decode()
    assert '--constraint "/usr/local/airflow/dags/constraints.txt"' in requirements


def test_environment_updated_with_new_versions(deployed, stack):
    report, _, _, seeded = deployed
    env = stack.boto3_client("mwaa").get_environment(Name=seeded["mwaa_environment"])["Environment"]
    assert report.environment_updated
    assert env["PluginsS3ObjectVersion"] == report.versions["plugins.zip"]
    assert env["RequirementsS3ObjectVersion"] == report.versions["requirements.txt"]
    assert env["PluginsS3Path"] == "plugins.zip" and env["RequirementsS3Path"] == "requirements.txt"


def test_second_deploy_changes_nothing(deployed, stack):
    _, _, _, seeded = deployed
    again = deploy(
        seeded["mwaa_environment"],
        scripts_uri=f"s3://{seeded['buckets']['artifacts']}/spark_jobs",
        region="us-east-1",
        endpoint_url=stack.info()["moto"]["endpoint_url"],
    )
    assert again.uploaded == [] and again.deleted == []
    assert not again.environment_updated


@pytest.fixture(scope="module")
def downloaded_dags(deployed):
    """dags/ as MWAA's workers see it, downloaded from the bucket."""
    _, s3, bucket, _ = deployed
    folder = TMP / "mwaa-dags-download"
    for obj in s3.list_objects_v2(Bucket=bucket, Prefix="dags/")["Contents"]:
        target = folder / obj["Key"][len("dags/") :]
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read())
    return folder


def _mwaa_env() -> dict[str, str]:
    return {
        **os.environ,
        "PYTHONPATH": "",
        "AIRFLOW_HOME": str(TMP / "mwaa-airflow"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    }


def test_operator_imports_resolve_from_the_deployed_dags_folder(downloaded_dags):
    """Parse the downloaded dags/ with only that folder on sys.path."""
    folder, env = downloaded_dags, _mwaa_env()
    out = subprocess.run(
        [sys.executable, str(INSPECT), str(folder)], env=env, capture_output=True, text=True, timeout=300, cwd="/"
    )
    assert out.returncode == 0, out.stderr[-3000:]
    parsed = json.loads(out.stdout.strip().splitlines()[-1])
    assert parsed["import_errors"] == {}
    assert "spark_platform_check" in parsed["dags"]
    # .airflowignore keeps the operators package out of DAG discovery.
    assert all("/operators/" not in d["fileloc"] for d in parsed["dags"].values())


def test_every_operators_module_imports_from_the_deployed_dags_folder(deployed, downloaded_dags):
    """Task bodies import operators' modules when they run, not at parse time: each package
    and module must be there, and resolve from dags/ and plugins.zip alone, as on an MWAA
    worker (which has both folders on sys.path)."""
    _, s3, bucket, _ = deployed
    plugins = TMP / "mwaa-plugins-download"
    zipfile.ZipFile(io.BytesIO(s3.get_object(Bucket=bucket, Key="plugins.zip")["Body"].read())).extractall(plugins)
    repo_modules = sorted(
        ".".join(p.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        for p in (ROOT / "operators").rglob("*.py")
    )
    probe = (
        "import importlib, sys; sys.path[:0] = sys.argv[1:3]; "
        "mods = [importlib.import_module(n) for n in sys.argv[3:]]; "
        "outside = [m.__name__ for m in mods if not m.__file__.startswith(sys.argv[1])]; "
        "assert not outside, outside; print(len(mods))"
    )
    out = subprocess.run(
        [sys.executable, "-c", probe, str(downloaded_dags), str(plugins), *repo_modules],
        env=_mwaa_env(),
        capture_output=True,
        text=True,
        timeout=300,
        cwd="/",
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert int(out.stdout) == len(repo_modules) > 20


def test_clear_errors(stack):
    endpoint = stack.info()["moto"]["endpoint_url"]
    with pytest.raises(DeployError, match="'nope' not found"):
        deploy("nope", region="us-east-1", endpoint_url=endpoint)
    mwaa = stack.boto3_client("mwaa")
    s3 = stack.boto3_client("s3")
    s3.create_bucket(Bucket="unversioned-env-bucket")
    mwaa.create_environment(
        Name="unversioned",
        SourceBucketArn="arn:aws:s3:::unversioned-env-bucket",
        DagS3Path="dags",
        ExecutionRoleArn="arn:aws:iam::123456789012:role/x",
        NetworkConfiguration={"SubnetIds": ["subnet-1", "subnet-2"]},
    )
    with pytest.raises(DeployError, match="versioning enabled"):
        deploy("unversioned", region="us-east-1", endpoint_url=endpoint)


def test_mwaa_extension_rejects_unknown_object_versions(stack):
    from botocore.exceptions import ClientError

    name = stack.info()["seed"]["mwaa_environment"]
    with pytest.raises(ClientError, match="ValidationException"):
        stack.boto3_client("mwaa").update_environment(
            Name=name, PluginsS3Path="plugins.zip", PluginsS3ObjectVersion="no-such-version"
        )


def _environment(stack, name: str, kms: bool) -> None:
    """A fresh MWAA environment with its own versioned bucket (KMS default encryption or not)."""
    s3, mwaa = stack.boto3_client("s3"), stack.boto3_client("mwaa")
    bucket = f"{name}-bucket"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    if kms:
        key = stack.boto3_client("kms").create_key(Description="MWAA bucket")["KeyMetadata"]["Arn"]
        s3.put_bucket_encryption(
            Bucket=bucket,
            ServerSideEncryptionConfiguration={
                "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key}}]
            },
        )
    mwaa.create_environment(Name=name, SourceBucketArn=f"arn:aws:s3:::{bucket}", DagS3Path="dags",
                            ExecutionRoleArn="arn:aws:iam::123456789012:role/x",
                            NetworkConfiguration={"SubnetIds": ["subnet-1", "subnet-2"]})  # fmt: skip


def test_sse_kms_buckets_deploy_only_what_changed(stack):
    """Under SSE-KMS an object's ETag is not the MD5 of its data (the stack answers as S3 does):
    the deploy compares SHA-256 checksums, so a second deploy uploads nothing and restarts nothing."""
    import hashlib

    name = f"kms-{uuid.uuid4().hex[:8]}"
    _environment(stack, name, kms=True)
    endpoint = stack.info()["moto"]["endpoint_url"]
    first = deploy(name, region="us-east-1", endpoint_url=endpoint, poll_seconds=0.5)
    assert first.uploaded and first.environment_updated
    s3 = stack.boto3_client("s3")
    head = s3.head_object(Bucket=f"{name}-bucket", Key="requirements.txt")
    assert head["ServerSideEncryption"] == "aws:kms"
    assert head["ETag"].strip('"') != hashlib.md5((ROOT / "requirements.txt").read_bytes()).hexdigest()
    again = deploy(name, region="us-east-1", endpoint_url=endpoint, poll_seconds=0.5)
    assert again.uploaded == [] and not again.environment_updated


def test_a_busy_environment_is_waited_for_or_named(stack):
    """MWAA refuses UpdateEnvironment while an update runs (UPDATING): the deploy waits for
    AVAILABLE, or stops with the status when it would wait too long."""
    name = f"busy-{uuid.uuid4().hex[:8]}"
    _environment(stack, name, kms=False)
    endpoint = stack.info()["moto"]["endpoint_url"]
    assert deploy(name, region="us-east-1", endpoint_url=endpoint, poll_seconds=0.5).environment_updated
    mwaa = stack.boto3_client("mwaa")
    assert mwaa.get_environment(Name=name)["Environment"]["Status"] == "UPDATING"
    with pytest.raises(Exception, match="ValidationException"):  # what MWAA answers an update now
        mwaa.update_environment(Name=name, DagS3Path="dags")
    with pytest.raises(DeployError, match=f"{name} is still UPDATING"):
        deploy(name, region="us-east-1", endpoint_url=endpoint, wait=dt.timedelta(0))
    s3 = stack.boto3_client("s3")
    s3.put_object(Bucket=f"{name}-bucket", Key="requirements.txt", Body=b"# changed elsewhere\n")
    again = deploy(name, region="us-east-1", endpoint_url=endpoint, poll_seconds=0.5)
    assert again.environment_updated
    assert (
        mwaa.get_environment(Name=name)["Environment"]["RequirementsS3ObjectVersion"]
        == again.versions["requirements.txt"]
    )
