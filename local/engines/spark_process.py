"""One platform run as a local spark-submit process, and the stack's room for runs.

A run's files (its entry point, ``--py-files``, ``--jars``) are fetched from the stack's S3
into the run's own folder, as the platforms copy them onto their workers; the process gets
the stack's endpoint and test credentials in its environment only. Its stdout and stderr go
to separate files (both platforms keep them apart), and it runs in a process group of its
own so that a stop or a timeout ends the JVM and the Python workers together.
"""

from __future__ import annotations

import contextlib
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from operators.spark.local_runner import LOG4J_QUIET, local_java_options, s3_endpoint_conf, spark_submit_command

REGION = "us-east-1"
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing"}
STOP_GRACE_S = 10
# Jars the local image always has on the classpath, as the platforms' images have their S3
# connector and SDK (EMRFS / Glue's S3 support) without being asked; the PostgreSQL driver
# serves the local stack's Iceberg JDBC catalog (on AWS the catalog is Glue's).
IMAGE_JARS = ("hadoop-aws-*.jar", "aws-java-sdk-bundle-*.jar", "postgresql-*.jar")
# Jars put on the classpath only when a run asks for them (EMR Serverless: by their path in
# the image; Glue: --datalake-formats iceberg).
ICEBERG_JARS = ("iceberg-spark-runtime-*.jar", "iceberg-aws-bundle-*.jar")


class RunRefused(RuntimeError):
    """The run cannot start as given (a missing file, an unsupported option); the message says why."""


@dataclass(frozen=True)
class EngineConfig:
    """Where the stack's runs find S3, Spark's jars and room to work (set by the server)."""

    endpoint_url: str
    jars_dir: Path
    runs_dir: Path
    slots: int = 2

    def jars(self, patterns: Sequence[str]) -> list[Path]:
        return sorted({p for pattern in patterns for p in self.jars_dir.glob(pattern)})


def aws_client(service: str, endpoint_url: str):
    """A boto3 client of the stack's own endpoint, as the engines' runs see it."""
    import boto3

    return boto3.client(
        service, endpoint_url=endpoint_url, region_name=REGION,
        aws_access_key_id=CREDENTIALS["AWS_ACCESS_KEY_ID"], aws_secret_access_key=CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
    )  # fmt: skip


def split_s3_uri(uri: str) -> tuple[str, str]:
    match = re.fullmatch(r"s3a?://([^/]+)/(.+)", uri)
    if not match:
        raise RunRefused(f"{uri!r} is not an s3:// object URI")
    return match.group(1), match.group(2)


def fetch(s3, uri: str, folder: Path) -> Path:
    """Copy ``s3://bucket/key`` into ``folder`` under the key's file name."""
    from botocore.exceptions import ClientError

    bucket, key = split_s3_uri(uri)
    folder.mkdir(parents=True, exist_ok=True)
    target = folder / PurePosixPath(key).name
    try:
        s3.download_file(bucket, key, str(target))
    except ClientError as err:
        code = err.response.get("Error", {}).get("Code", "")
        raise RunRefused(f"{uri} could not be read from S3 ({code or err})") from err
    return target


def catalog_endpoint_conf(conf: Mapping[str, str], endpoint_url: str) -> dict[str, str]:
    """S3 endpoint properties for s3a and for each Iceberg catalog the run's properties define."""
    catalogs = sorted({m.group(1) for k in conf if (m := re.fullmatch(r"spark\.sql\.catalog\.([^.]+)", k))})
    out = s3_endpoint_conf(endpoint_url, REGION, None)
    for name in catalogs:
        out.update({k: v for k, v in s3_endpoint_conf(endpoint_url, REGION, name).items() if ".catalog." in k})
    return out


@dataclass(eq=False)
class SparkProcess:
    """A spark-submit of ``entry_point`` with ``args``; ``start``, then ``wait`` or ``stop``."""

    workdir: Path
    entry_point: Path
    args: Sequence[str]
    conf: Mapping[str, str]
    jars: Sequence[Path]
    py_files: Sequence[Path]
    app_name: str
    config: EngineConfig
    extra_env: Mapping[str, str] = field(default_factory=dict)
    process: subprocess.Popen | None = None

    @property
    def stdout_path(self) -> Path:
        return self.workdir / "stdout"

    @property
    def stderr_path(self) -> Path:
        return self.workdir / "stderr"

    def command(self) -> list[str]:
        spark_submit = Path(sys.executable).with_name("spark-submit")
        log4j = self.workdir / "log4j2.properties"
        log4j.write_text(LOG4J_QUIET)
        java = f"-Dlog4j2.configurationFile=file:{log4j} {local_java_options(self.config.jars_dir)}".strip()
        conf = {
            "spark.driver.extraJavaOptions": java,
            "spark.ui.enabled": "false",
            "spark.sql.shuffle.partitions": "4",
            **catalog_endpoint_conf(self.conf, self.config.endpoint_url),
            **self.conf,
        }
        conf.pop("spark.jars", None)  # resolved into ``jars`` (image paths mean local files)
        return spark_submit_command(
            spark_submit=str(spark_submit), master="local[2]", script=self.entry_point, args=self.args,
            conf=conf, jars=self.jars, py_files=self.py_files, app_name=self.app_name,
        )  # fmt: skip

    def environment(self) -> dict[str, str]:
        env = {
            **os.environ,
            **CREDENTIALS,
            "AWS_REGION": REGION,
            "AWS_DEFAULT_REGION": REGION,
            "AWS_ENDPOINT_URL_S3": self.config.endpoint_url,
            "PYSPARK_PYTHON": sys.executable,
            "PYSPARK_DRIVER_PYTHON": sys.executable,
            **self.extra_env,
        }
        env.pop("PYTHONPATH", None)  # the script sees only what the run ships, as on the platforms
        env.pop("AWS_ENDPOINT_URL", None)
        return env

    def start(self) -> None:
        with open(self.stdout_path, "wb") as out, open(self.stderr_path, "wb") as err:
            self.process = subprocess.Popen(
                self.command(), cwd=self.workdir, env=self.environment(), stdout=out, stderr=err,
                start_new_session=True,
            )  # fmt: skip

    def wait(self, deadline: float | None, stopping: threading.Event, tick=None, every: float = 2.0) -> str:
        """``exited``, ``timeout`` (past ``deadline``, a monotonic time) or ``stopped``; the
        process is ended in the last two cases. ``tick`` is called every ``every`` seconds
        while it runs (to pass its output on)."""
        assert self.process is not None
        last = time.monotonic()
        while self.process.poll() is None:
            if stopping.is_set():
                self.stop()
                return "stopped"
            if deadline is not None and time.monotonic() >= deadline:
                self.stop()
                return "timeout"
            stopping.wait(0.5)
            if tick is not None and time.monotonic() - last >= every:
                tick()
                last = time.monotonic()
        return "exited"

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(STOP_GRACE_S)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def last_error(self) -> str:
        """The last exception line the driver printed, or its last line. A PySpark driver's
        Python output (tracebacks included) reaches the JVM's stdout, so stdout is read first."""
        for path in (self.stdout_path, self.stderr_path):
            text = path.read_text(errors="replace") if path.exists() else ""
            lines = [line.strip() for line in text.splitlines() if line.strip()]
            errors = [line for line in lines if re.match(r"^([\w.]+(Error|Exception)|Caused by)\b", line)]
            if errors:
                return errors[-1][:2000]
        text = self.stderr_path.read_text(errors="replace") if self.stderr_path.exists() else ""
        return (text.strip().splitlines() or ["no output"])[-1][:2000]


class Capacity:
    """How many runs execute at once on this machine; the rest wait in their platform's
    queued state (EMR Serverless SCHEDULED, Glue WAITING), as runs wait for capacity there."""

    def __init__(self, slots: int):
        self._slots = threading.BoundedSemaphore(max(1, slots))

    def acquire(self, stopping: threading.Event) -> bool:
        while not stopping.is_set():
            if self._slots.acquire(timeout=0.5):
                return True
        return False

    def release(self) -> None:
        self._slots.release()


_ROOM: list[Capacity] = []


def stack_capacity(slots: int) -> Capacity:
    """The one room every engine's runs share (Glue's and EMR Serverless' run on one machine)."""
    if not _ROOM:
        _ROOM.append(Capacity(slots))
    return _ROOM[0]


class Processes:
    """Every live run process of the server, so that stopping the server ends them too."""

    def __init__(self):
        self._live: set[SparkProcess] = set()
        self._lock = threading.Lock()

    def add(self, run: SparkProcess) -> None:
        with self._lock:
            self._live.add(run)

    def discard(self, run: SparkProcess) -> None:
        with self._lock:
            self._live.discard(run)

    def stop_all(self) -> None:
        with self._lock:
            live = list(self._live)
        for run in live:
            if run.process is not None and run.process.poll() is None:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(run.process.pid, signal.SIGKILL)


LIVE = Processes()
