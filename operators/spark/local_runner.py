"""The ``local`` platform: spark-submit on the Airflow worker, for development and tests.

It uses the pyspark installed beside Airflow, the Iceberg / hadoop-aws / JDBC jars that
``make jars`` fetched, and the AWS endpoint and credentials of the task's Airflow
connection, so ``s3://`` paths and Iceberg's S3FileIO reach the same (local) S3 the
operators talk to. Credentials travel in the environment, never on the command line.
"""

from __future__ import annotations

import hashlib
import importlib.util
import os
import shutil
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from operators.spark.arguments import JOBS_ARCHIVE, conf_pairs, jobs_archive

PROJECT_ROOT = Path(__file__).resolve().parents[2]
LOG4J_QUIET = (
    "rootLogger.level = warn\nrootLogger.appenderRef.stdout.ref = console\n"
    "appender.console.type = Console\nappender.console.name = console\nappender.console.target = SYSTEM_ERR\n"
    "appender.console.layout.type = PatternLayout\n"
    "appender.console.layout.pattern = %d{HH:mm:ss} %p %c{1}: %m%n\n"
)


class LocalSparkError(RuntimeError):
    """spark-submit could not start or the script failed."""


def default_scripts_dir() -> Path:
    return Path(os.environ.get("SPARK_JOBS_DIR", PROJECT_ROOT / "spark_jobs"))


def default_jars_dir() -> Path:
    return Path(os.environ.get("SPARK_JARS_DIR", PROJECT_ROOT / ".state" / "jars"))


# The JVM's class-archive messages (classes it skips while dumping, say) are noise in job logs.
CDS_QUIET = "-Xlog:cds=off -Xlog:cds+dynamic=off"


def class_archive_path(jars_dir: Path) -> Path:
    """Where the JVM class archive for this Java, this pyspark and these jars lives.

    The name is a digest of all three: an archive dumped with other classes is never used.
    """
    java_home = os.environ.get("JAVA_HOME")
    java = os.path.realpath(os.path.join(java_home, "bin", "java") if java_home else shutil.which("java") or "java")
    spec = importlib.util.find_spec("pyspark")
    spark_jars = Path(spec.submodule_search_locations[0]) / "jars" if spec and spec.submodule_search_locations else None
    digest = hashlib.sha256(java.encode())
    with_stat = [Path(java)] if os.path.exists(java) else []
    with_stat += sorted(spark_jars.glob("*.jar")) if spark_jars else []
    with_stat += sorted(jars_dir.glob("*.jar"))
    for path in with_stat:
        st = path.stat()
        digest.update(f"{path.name}:{st.st_size}:{st.st_mtime_ns}".encode())
    return jars_dir / "cds" / f"spark-{digest.hexdigest()[:16]}.jsa"


def class_sharing_options(jars_dir: Path) -> str:
    """JVM options that map the class archive ``python -m local.services.spark_cds`` dumped, if there is one.

    Starting Spark with Iceberg loads and verifies some 15,000 classes, and on a two-core
    laptop that is about a quarter of a short job's CPU (24 s against 17 s with the archive, for
    a session writing, compacting and scanning a small Iceberg table); mapped, they come ready.
    Without an archive (or with a stale one) the JVM simply loads classes the usual way.
    """
    archive = class_archive_path(jars_dir)
    return f"-XX:SharedArchiveFile={archive} {CDS_QUIET}" if archive.is_file() else ""


def local_java_options(jars_dir: Path) -> str:
    """JVM options for a local Spark driver: serial garbage collection, and the class archive if any.

    A local Spark's heap is small and its machine has few cores, where G1's concurrent
    threads compete with the tasks for CPU. The serial collector costs less: four alternating
    runs of the Iceberg benchmark's ``--quick`` on 2 cores took 47.0 s (77.7 s of CPU) on
    average against 49.0 s (84.3 s) with G1.
    """
    return f"-XX:+UseSerialGC {class_sharing_options(jars_dir)}".strip()


def s3_endpoint_conf(endpoint_url: str | None, region: str | None, catalog_name: str | None) -> dict[str, str]:
    """Spark properties that point s3a (and s3:// through s3a) and Iceberg's S3FileIO at an endpoint."""
    conf = {
        # s3:// is what scripts use on Glue/EMR; locally s3a serves it.
        "spark.hadoop.fs.s3.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem",
        "spark.hadoop.fs.s3a.aws.credentials.provider": "com.amazonaws.auth.EnvironmentVariableCredentialsProvider",
    }
    if region:
        conf["spark.hadoop.fs.s3a.endpoint.region"] = region
    if endpoint_url:
        conf.update(
            {
                "spark.hadoop.fs.s3a.endpoint": endpoint_url,
                "spark.hadoop.fs.s3a.path.style.access": "true",
                "spark.hadoop.fs.s3a.connection.ssl.enabled": str(endpoint_url.startswith("https")).lower(),
            }
        )
    if catalog_name:
        prefix = f"spark.sql.catalog.{catalog_name}"
        if endpoint_url:
            conf[f"{prefix}.s3.endpoint"] = endpoint_url
            conf[f"{prefix}.s3.path-style-access"] = "true"
        if region:
            conf[f"{prefix}.client.region"] = region
    return conf


def spark_submit_command(
    *,
    spark_submit: str,
    master: str,
    script: Path,
    args: Sequence[str],
    conf: Mapping[str, str],
    jars: Sequence[Path],
    py_files: Sequence[Path],
    app_name: str,
) -> list[str]:
    cmd = [spark_submit, "--master", master, "--name", app_name]
    if jars:
        cmd += ["--jars", ",".join(str(j) for j in jars)]
    if py_files:
        cmd += ["--py-files", ",".join(str(p) for p in py_files)]
    cmd += conf_pairs(conf)
    cmd.append(str(script))
    cmd += list(args)
    return cmd


@dataclass
class LocalSparkRun:
    """One spark-submit process; ``kill()`` stops it and its JVM (its own process group)."""

    command: list[str]
    env: dict[str, str]
    workdir: Path
    process: subprocess.Popen | None = None

    def run(self, log_line: Callable[[str], None]) -> int:
        self.process = subprocess.Popen(
            self.command,
            env=self.env,
            cwd=self.workdir,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        assert self.process.stdout is not None
        for line in self.process.stdout:
            log_line(line.rstrip())
        return self.process.wait()

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.process.pid, signal.SIGKILL)


def prepare_local_run(
    *,
    script: str,
    args: Sequence[str],
    conf: Mapping[str, str],
    master: str,
    scripts_dir: Path,
    jars_dir: Path,
    aws_env: Mapping[str, str],
    app_name: str,
) -> LocalSparkRun:
    script_path = (scripts_dir / script).resolve()
    if not script_path.is_file():
        raise LocalSparkError(f"script {script!r} not found under {scripts_dir}")
    jars = sorted(jars_dir.glob("*.jar")) if jars_dir.is_dir() else []
    if not jars:
        raise LocalSparkError(f"no Spark jars in {jars_dir}: run `make jars` (mvn dependency:copy) first")
    spark_submit = shutil.which("spark-submit", path=str(Path(sys.executable).parent)) or shutil.which("spark-submit")
    if not spark_submit:
        raise LocalSparkError("spark-submit not found: install pyspark 3.5 beside Airflow (requirements-dev.txt)")
    workdir = Path(tempfile.mkdtemp(prefix="spark-local-"))
    archive = workdir / JOBS_ARCHIVE
    archive.write_bytes(jobs_archive(scripts_dir))
    (workdir / "log4j2.properties").write_text(LOG4J_QUIET)
    java_options = f"-Dlog4j2.configurationFile=file:{workdir / 'log4j2.properties'} {local_java_options(jars_dir)}"
    full_conf = {
        "spark.driver.extraJavaOptions": java_options.strip(),
        "spark.ui.enabled": "false",
        "spark.sql.shuffle.partitions": "4",
        **conf,
    }
    command = spark_submit_command(
        spark_submit=spark_submit,
        master=master,
        script=script_path,
        args=args,
        conf=full_conf,
        jars=jars,
        py_files=[archive],
        app_name=app_name,
    )
    env = {**os.environ, **aws_env, "PYSPARK_PYTHON": sys.executable, "PYSPARK_DRIVER_PYTHON": sys.executable}
    env.pop("PYTHONPATH", None)  # the script sees only what it ships, as on Glue/EMR
    return LocalSparkRun(command=command, env=env, workdir=workdir)
