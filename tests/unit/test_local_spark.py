import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from operators.spark.local_runner import (
    LocalSparkError,
    LocalSparkRun,
    class_archive_path,
    class_sharing_options,
    prepare_local_run,
    s3_endpoint_conf,
    spark_submit_command,
)


def test_s3_conf_maps_s3_scheme_and_endpoint():
    conf = s3_endpoint_conf("http://127.0.0.1:5000", "us-east-1", "lake")
    assert conf["spark.hadoop.fs.s3.impl"] == "org.apache.hadoop.fs.s3a.S3AFileSystem"
    assert conf["spark.hadoop.fs.s3a.endpoint"] == "http://127.0.0.1:5000"
    assert conf["spark.hadoop.fs.s3a.connection.ssl.enabled"] == "false"
    assert conf["spark.sql.catalog.lake.s3.endpoint"] == "http://127.0.0.1:5000"
    # Credentials never appear in Spark properties (they would show in `ps`).
    assert not any("secret" in k.lower() or "access.key" in k.lower() for k in conf)
    # Real AWS: no endpoint override at all.
    assert "spark.hadoop.fs.s3a.endpoint" not in s3_endpoint_conf(None, "eu-west-1", None)


def test_command_order_puts_script_args_last():
    cmd = spark_submit_command(
        spark_submit="spark-submit",
        master="local[2]",
        script=Path("/x/job.py"),
        args=["--a", "1"],
        conf={"k": "v"},
        jars=[Path("/j/a.jar"), Path("/j/b.jar")],
        py_files=[Path("/p/spark_jobs.zip")],
        app_name="job",
    )
    assert cmd[-3:] == ["/x/job.py", "--a", "1"]
    assert "--jars" in cmd and cmd[cmd.index("--jars") + 1] == "/j/a.jar,/j/b.jar"
    assert cmd[cmd.index("--conf") + 1] == "k=v"


def test_missing_script_and_jars_are_clear(tmp_path):
    (tmp_path / "common").mkdir()
    (tmp_path / "__init__.py").write_text("")
    kwargs = dict(args=[], conf={}, master="local[1]", scripts_dir=tmp_path, aws_env={}, app_name="t")
    with pytest.raises(LocalSparkError, match="script 'nope.py' not found"):
        prepare_local_run(script="nope.py", jars_dir=tmp_path, **kwargs)
    (tmp_path / "job.py").write_text("print(1)")
    with pytest.raises(LocalSparkError, match="make jars"):
        prepare_local_run(script="job.py", jars_dir=tmp_path / "empty", **kwargs)


def _alive(pid: int) -> bool:
    """True when the process exists and is not a zombie (PID 1 in a container may not reap)."""
    try:
        with open(f"/proc/{pid}/status") as status:
            return not any(line.startswith("State:") and "Z" in line.split()[1] for line in status)
    except FileNotFoundError:
        return False


def test_kill_stops_the_whole_process_group(tmp_path):
    # A parent that starts a child, as spark-submit starts a JVM.
    script = (
        "import subprocess,sys,time; "
        "c = subprocess.Popen([sys.executable,'-c','import time; time.sleep(60)']); "
        "print(c.pid, flush=True); time.sleep(60)"
    )
    run = LocalSparkRun(command=[sys.executable, "-c", script], env=dict(os.environ), workdir=tmp_path)
    run.process = subprocess.Popen(run.command, start_new_session=True, stdout=subprocess.PIPE, text=True)
    child = int(run.process.stdout.readline())
    assert _alive(child)
    run.kill()
    assert run.process.poll() is not None
    deadline = time.monotonic() + 5
    while _alive(child) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(child)


def test_class_archive_is_named_for_its_jars_and_used_only_when_present(tmp_path):
    jar = tmp_path / "a.jar"
    jar.write_bytes(b"one")
    first = class_archive_path(tmp_path)
    assert class_sharing_options(tmp_path) == ""  # nothing dumped yet: the JVM starts as usual
    first.parent.mkdir()
    first.write_bytes(b"archive")
    assert f"-XX:SharedArchiveFile={first}" in class_sharing_options(tmp_path)
    jar.write_bytes(b"changed")  # a different jar: the old archive no longer applies
    assert class_archive_path(tmp_path) != first
    assert class_sharing_options(tmp_path) == ""


def test_default_folders_are_the_repositorys(monkeypatch):
    """Without SPARK_JOBS_DIR / SPARK_JARS_DIR the runner finds the jobs and jars of the project it
    sits in (the repository, or MWAA's dags/ folder with operators/ and spark_jobs/ side by side)."""
    from deploy.layout import ROOT, SPARK_JOBS_DIR
    from operators.spark.local_runner import default_jars_dir, default_scripts_dir

    monkeypatch.delenv("SPARK_JOBS_DIR", raising=False)
    monkeypatch.delenv("SPARK_JARS_DIR", raising=False)
    assert default_scripts_dir() == SPARK_JOBS_DIR
    assert (default_scripts_dir() / "platform_check.py").is_file()
    assert default_jars_dir() == ROOT / ".state" / "jars"
