"""Start, seed and stop the local stack; export the Airflow environment that uses it.

    python -m local.services.stack start     # moto + seed + PostgreSQL, prints where they listen
    python -m local.services.stack env       # shell exports for Airflow against the stack
    python -m local.services.stack status
    python -m local.services.stack stop      # stops both servers by their own PIDs
    python -m local.services.stack clean     # stop, and remove data kept outside .state/

Servers listen on 127.0.0.1 only. State: ``<home>/stack.json`` (ports, PIDs, seeded ids),
``<home>/postgres``, ``<home>/airflow`` (Airflow home, SQLite metadata DB), ``<home>/dags``
(the MWAA-shaped dags bundle), ``<home>/logs``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from deploy.layout import ROOT, stage_dags_bundle
from local.paths import DEFAULT_STACK_HOME, JARS, REGION
from local.seeds.aws_world import client, seed
from local.seeds.principals import admin_keys, airflow_keys, enforce_iam
from local.seeds.tickit import DATABASE as TICKIT_DATABASE
from local.seeds.tickit import SCHEMA as TICKIT_SCHEMA
from local.seeds.tickit import seed_tickit
from local.services import postgres

START_TIMEOUT_S = 60


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Stack:
    home: Path = DEFAULT_STACK_HOME
    # IAM enforced (local/seeds/principals.py): Airflow calls AWS as a principal holding exactly
    # the template's MWAA execution-role policy; the stack's own clients as an administrator.
    iam: bool = False

    @property
    def info_file(self) -> Path:
        return self.home / "stack.json"

    @property
    def logs(self) -> Path:
        return self.home / "logs"

    @property
    def pg_data(self) -> Path:
        return self.home / "postgres"

    @property
    def airflow_home(self) -> Path:
        return self.home / "airflow"

    @property
    def runs_dir(self) -> Path:
        """Where the stack's Glue and EMR Serverless runs execute (one folder per run)."""
        return self.home / "runs"

    @property
    def dags_folder(self) -> Path:
        return self.home / "dags"

    def info(self) -> dict | None:
        if not self.info_file.exists():
            return None
        return json.loads(self.info_file.read_text())

    # -- lifecycle ---------------------------------------------------------------------
    def start(self) -> dict:
        if self.info() is not None:
            if self.is_up():
                return self.info()  # type: ignore[return-value]
            self.stop()
        self.logs.mkdir(parents=True, exist_ok=True)
        # moto keeps its world in memory, so the catalog and warehouse start fresh with it.
        if self.pg_data.is_symlink():
            shutil.rmtree(self.pg_data.resolve(), ignore_errors=True)
            self.pg_data.unlink()
        shutil.rmtree(self.pg_data, ignore_errors=True)
        shutil.rmtree(self.airflow_home, ignore_errors=True)
        shutil.rmtree(self.runs_dir, ignore_errors=True)
        moto_port, pg_port = free_port(), free_port()
        # initdb and moto's seeding each wait on a process of their own: overlap them.
        with ThreadPoolExecutor(1, thread_name_prefix="postgres-start") as pool:
            pg_started = pool.submit(self._start_postgres, pg_port)
            try:
                moto, endpoint = start_moto(moto_port, self.logs / "moto.log", self.runs_dir)
                info: dict = {"moto": {"pid": moto.pid, "port": moto_port, "endpoint_url": endpoint}}
                self.info_file.write_text(json.dumps(info, indent=2))
                info["seed"] = seed(endpoint)
                publish_spark_jobs(info)
                info["postgres"] = pg_started.result()
                info["variables"] = publish_variables(endpoint, stack_variables(info))
                if self.iam:
                    info["iam"] = enforce_iam(endpoint, info["seed"]["stack_outputs"]["MwaaPipelinesPolicyArn"])
                stage_dags_bundle(self.dags_folder)
                info["dags_folder"] = str(self.dags_folder)
                info["airflow_home"] = str(self.airflow_home)
                self.info_file.write_text(json.dumps(info, indent=2))
            except BaseException:
                with contextlib.suppress(BaseException):
                    pg_started.result()  # let it finish before stopping it
                self.stop()
                raise
        return info

    def _start_postgres(self, port: int) -> dict:
        log = postgres.start(port, self.pg_data)
        return {
            "host": "127.0.0.1",
            "port": port,
            "user": postgres.SUPERUSER,
            "data_dir": str(self.pg_data),
            "log": str(log),
            "tickit": seed_tickit("127.0.0.1", port, postgres.SUPERUSER),
        }

    def is_up(self) -> bool:
        info = self.info()
        if not info:
            return False
        try:
            with urllib.request.urlopen(f"{info['moto']['endpoint_url']}/moto-api/", timeout=2):
                pass
        except OSError:
            return False
        return (self.pg_data.resolve() / "postmaster.pid").exists()

    def stop(self) -> None:
        info = self.info() or {}
        pid = info.get("moto", {}).get("pid")
        if pid:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(pid, signal.SIGTERM)
                for _ in range(50):
                    if _exited(pid):
                        break
                    time.sleep(0.1)
                else:
                    os.killpg(pid, signal.SIGKILL)
        with contextlib.suppress(Exception):
            postgres.stop(self.pg_data)
        self.info_file.unlink(missing_ok=True)

    def clean(self) -> None:
        """Stop, and remove the cluster's data even where it lives outside the state folder."""
        self.stop()
        if self.pg_data.is_symlink():  # see local.services.postgres.server_data_dir
            shutil.rmtree(self.pg_data.resolve(), ignore_errors=True)
            self.pg_data.unlink()

    # -- what clients need ---------------------------------------------------------------
    def airflow_env(self) -> dict[str, str]:
        """Environment for Airflow (CLI, ``dags test``, standalone) against this stack."""
        info = self.info()
        if not info:
            raise RuntimeError(f"the local stack is not running (no {self.info_file}): run `make stack-start`")
        stage_dags_bundle(self.dags_folder)  # pick up DAG files added since start
        publish_spark_jobs(info)  # and the jobs as they are now, for Glue and EMR Serverless runs
        return airflow_env(info, self.airflow_home, self.dags_folder)

    def variable(self, name: str) -> str:
        """A Variable as Airflow reads it on this stack (from its Secrets Manager secret)."""
        return read_variable(self._endpoint(), name, admin_keys(self.info()))

    def set_variable(self, name: str, value: str) -> None:
        """Give a Variable another value (its secret; Airflow's environment variables would not
        win over the secrets backend, as on MWAA)."""
        publish_variables(self._endpoint(), {name: value}, admin_keys(self.info()))

    @contextlib.contextmanager
    def variable_set(self, name: str, value: str) -> Iterator[None]:
        """Give a Variable another value for a while, then put the old one back."""
        old = self.variable(name)
        self.set_variable(name, value)
        try:
            yield
        finally:
            self.set_variable(name, old)

    def _endpoint(self) -> str:
        info = self.info()
        assert info, "stack not running"
        return info["moto"]["endpoint_url"]

    def boto3_client(self, service: str):
        info = self.info()
        assert info, "stack not running"
        return client(service, info["moto"]["endpoint_url"], admin_keys(info))


def _exited(pid: int) -> bool:
    """Whether ``pid`` is gone; reaps it when this process started it (a zombie still answers kill 0)."""
    with contextlib.suppress(ChildProcessError):
        if os.waitpid(pid, os.WNOHANG)[0] == pid:
            return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


def start_moto(port: int, log_file: Path, runs_dir: Path | None = None) -> tuple[subprocess.Popen, str]:
    """Start the extended moto server on 127.0.0.1:port; return it once it answers.

    With ``runs_dir`` the job runs it is given execute there with local Spark (``local/engines``).
    """
    log_file.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "local.aws.server", "--port", str(port)]
    if runs_dir is not None:
        command += ["--runs-dir", str(runs_dir), "--jars-dir", str(JARS)]
    with open(log_file, "ab") as log:
        moto = subprocess.Popen(
            command,
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
            env={**os.environ, "PYTHONPATH": str(ROOT)},
        )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        _wait_for_http(f"{endpoint}/moto-api/", moto)
    except BaseException:
        os.killpg(moto.pid, signal.SIGKILL)
        raise
    return moto, endpoint


def _wait_for_http(url: str, process: subprocess.Popen) -> None:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"moto server exited with code {process.returncode}; see its log")
        try:
            with urllib.request.urlopen(url, timeout=2):
                return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(f"moto server did not answer on {url} within {START_TIMEOUT_S}s")


def publish_spark_jobs(info: dict) -> list[str]:
    """Put ``spark_jobs/`` on the stack's S3 as the deploy step puts it on AWS (changed files
    only); returns what was uploaded."""
    from deploy.mwaa import DeployReport, Uploader, put_spark_jobs

    uri = scripts_uri(info)
    s3 = client("s3", info["moto"]["endpoint_url"], admin_keys(info))
    report = DeployReport("local stack", uri)
    put_spark_jobs(Uploader(s3, report, dry_run=False), uri)
    return report.uploaded


def scripts_uri(info: dict) -> str:
    return f"s3://{info['seed']['buckets']['artifacts']}/spark_jobs"


def spark_platform_config(info: dict, jars_dir: Path = JARS) -> dict:
    """The ``spark_platform_config`` Variable for the local stack (see operators.spark.settings)."""
    seeded = info["seed"]
    pg = info["postgres"]
    buckets = seeded["buckets"]
    return {
        "scripts_uri": scripts_uri(info),
        "glue_role_arn": seeded["glue_role_arn"],
        "emr_application_id": seeded["emr_application_id"],
        "emr_execution_role_arn": seeded["emr_execution_role_arn"],
        "log_uri": f"s3://{buckets['artifacts']}/logs/",
        # Local runs last seconds to a minute and a status check costs moto a millisecond:
        # AWS's 30 s would add up to half a minute to every Spark task of every test.
        "waiter_delay": 5,
        "iceberg_catalog": {
            "catalog-impl": "org.apache.iceberg.jdbc.JdbcCatalog",
            "uri": postgres.jdbc_url(pg["port"], "iceberg_catalog", pg.get("host", "127.0.0.1")),
            "jdbc.user": pg["user"],
            "warehouse": f"s3://{buckets['lake']}/warehouse",
            "io-impl": "org.apache.iceberg.aws.s3.S3FileIO",
        },
        "local_jars_dir": str(jars_dir),
    }


def airflow_env(info: dict, airflow_home: Path, dags_folder: Path) -> dict[str, str]:
    return {
        "AIRFLOW_HOME": str(airflow_home),
        "AIRFLOW__CORE__DAGS_FOLDER": str(dags_folder),
        "AIRFLOW__CORE__PLUGINS_FOLDER": str(ROOT / "plugins"),
        "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
        "AIRFLOW__DATABASE__SQL_ALCHEMY_CONN": f"sqlite:///{airflow_home / 'airflow.db'}",
        "AIRFLOW__LOGGING__LOGGING_LEVEL": "INFO",
        **stack_connections_env(info),
        "SPARK_JARS_DIR": str(JARS),
        "PYTHONPATH": str(ROOT),
    }


ICEBERG_DEMO_TABLE = "demo.fragmented_events"
VARIABLES_PREFIX = "airflow/variables"
CONNECTIONS_PREFIX = "airflow/connections"
SECRETS_BACKEND = "airflow.providers.amazon.aws.secrets.secrets_manager.SecretsManagerBackend"


def secrets_backend_env(endpoint_url: str) -> dict[str, str]:
    """MWAA's two options for the Secrets Manager backend (README, "Deploy to an AWS account"),
    with the stack's endpoint added: Airflow reads every Variable from the stack's secrets."""
    kwargs = {
        "connections_prefix": CONNECTIONS_PREFIX,
        "variables_prefix": VARIABLES_PREFIX,
        "endpoint_url": endpoint_url,
        "region_name": REGION,
    }
    return {"AIRFLOW__SECRETS__BACKEND": SECRETS_BACKEND, "AIRFLOW__SECRETS__BACKEND_KWARGS": json.dumps(kwargs)}


def stack_connections_env(info: dict) -> dict[str, str]:
    """Airflow's connections and secrets backend for a stack, as environment variables.

    Shared by the native stack and docker-compose (``local/launchers/compose_seed.py``). The
    Variables are not here: they are the stack's Secrets Manager secrets (:func:`publish_variables`).
    """
    pg = info["postgres"]
    key_id, secret = airflow_keys(info)
    aws_conn = {
        "conn_type": "aws",
        "login": key_id,
        "password": secret,
        "extra": {"region_name": REGION, "endpoint_url": info["moto"]["endpoint_url"]},
    }
    return {
        "AIRFLOW_CONN_AWS_DEFAULT": json.dumps(aws_conn),
        # The Redshift stand-in: PostgreSQL, reached by Spark over JDBC and by the verification
        # task through the Postgres provider (its statement log holds what ran).
        "AIRFLOW_CONN_WAREHOUSE_POSTGRES": json.dumps(
            {
                "conn_type": "postgres",
                "host": pg.get("host", "127.0.0.1"),
                "port": pg["port"],
                "login": pg["user"],
                "schema": TICKIT_DATABASE,
            }
        ),
        **secrets_backend_env(info["moto"]["endpoint_url"]),
        "AWS_DEFAULT_REGION": REGION,
        # The stack's keys only (test keys, or its own IAM users'): nothing reaches a real AWS
        # account by accident. The secrets backend's client finds them here, as MWAA's finds the
        # execution role.
        "AWS_ACCESS_KEY_ID": key_id,
        "AWS_SECRET_ACCESS_KEY": secret,
    }


def stack_variables(info: dict, jars_dir: Path = JARS) -> dict[str, str]:
    """The Variables the pipelines read on a stack, by name, as text (JSON for the JSON ones).

    The template's secrets already hold ``pipelines_data_uri`` and ``glue_subnet_failover``
    as the stack needs them. The others differ locally, and :func:`publish_variables` writes
    these values over the template's (or adds them):

    * ``spark_platform``: ``local`` (spark-submit on the worker) instead of ``glue``;
    * ``spark_platform_config``: the JDBC Iceberg catalog in PostgreSQL (the Glue Data Catalog
      has no local stand-in), the local jars, and a 5 s wait interval;
    * ``iceberg_maintenance``: the demo table, and snapshots expired at age 0;
    * ``cost_alerts``: demo budgets;
    * ``redshift_quarterly_sales``: the PostgreSQL stand-in instead of a cluster.
    """
    seeded = info["seed"]
    pg = info["postgres"]
    return {
        "spark_platform": "local",
        "spark_platform_config": json.dumps(spark_platform_config(info, jars_dir)),
        "pipelines_data_uri": f"s3://{seeded['buckets']['data']}",
        "glue_subnet_failover": json.dumps(
            {
                "job_name": seeded["glue_subnet_demo_job"],
                "candidate_connections": seeded["glue_connections"],
                "lock_uri": f"s3://{seeded['buckets']['data']}/_locks",
            }
        ),
        "redshift_quarterly_sales": json.dumps(
            {
                "backend": "postgres",
                "jdbc_url": postgres.jdbc_url(pg["port"], TICKIT_DATABASE, pg.get("host", "127.0.0.1")),
                "user": pg["user"],
                "schema": TICKIT_SCHEMA,
                "postgres_conn_id": "warehouse_postgres",
                "tempdir": f"s3://{seeded['buckets']['data']}/redshift-temp/",
                "tempdir_expire_days": 1,
            }
        ),  # fmt: skip
        # The demo table is built by local/seeds/iceberg_tables.py (make demo); expiring at age 0
        # shows removed files being tagged within one run.
        "iceberg_maintenance": json.dumps(
            {
                "tables": [ICEBERG_DEMO_TABLE],
                "catalog": "lake",
                "policy": {"snapshot_max_age_days": 0, "retain_last": 1},
                "storage": {"write_tags": {"lifecycle": "live"}, "delete_tags": {"deleted": "true"}},
                "lifecycle": {
                    "bucket": seeded["buckets"]["lake"],
                    "prefix": "warehouse/",
                    "transition_days": 30,
                    "expire_days": 180,
                },
                "report_uri": f"s3://{seeded['buckets']['data']}/iceberg-maintenance",
            }
        ),  # fmt: skip
        # Cost alerts and the weekly report: history is seeded by local/seeds/cost_history.py (make demo).
        "cost_alerts": json.dumps(
            {
                "data_uri": f"s3://{seeded['buckets']['data']}",
                "topic_arn": seeded["sns_topic_arn"],
                "sender": seeded["ses_sender"],
                "recipients": ["finops@example.com"],
                "budgets": {"team=finance": 150.0, "team=analytics": 400.0},
                "window_days": 7,
                "lookback_days": 42,
            }
        ),
    }


def publish_variables(
    endpoint_url: str, variables: dict[str, str], keys: tuple[str, str] | None = None
) -> dict[str, list[str]]:
    """Make the stack's ``airflow/variables/*`` secrets hold ``variables``; return which names
    were already as wanted (the template's), which were rewritten and which were added."""
    secrets = client("secretsmanager", endpoint_url, keys)
    outcome: dict[str, list[str]] = {"as_deployed": [], "rewritten": [], "added": []}
    for name, value in variables.items():
        secret_id = f"{VARIABLES_PREFIX}/{name}"
        try:
            current = secrets.get_secret_value(SecretId=secret_id)["SecretString"]
        except secrets.exceptions.ResourceNotFoundException:
            secrets.create_secret(Name=secret_id, SecretString=value)
            outcome["added"].append(name)
            continue
        if _same_value(current, value):
            outcome["as_deployed"].append(name)
        else:
            secrets.put_secret_value(SecretId=secret_id, SecretString=value)
            outcome["rewritten"].append(name)
    return outcome


def _same_value(a: str, b: str) -> bool:
    try:
        return json.loads(a) == json.loads(b)
    except ValueError:
        return a == b


def read_variable(endpoint_url: str, name: str, keys: tuple[str, str] | None = None) -> str:
    """A Variable's value as Airflow reads it on the stack (its secret)."""
    return client("secretsmanager", endpoint_url, keys).get_secret_value(SecretId=f"{VARIABLES_PREFIX}/{name}")[
        "SecretString"
    ]


@contextlib.contextmanager
def running_stack(home: Path = DEFAULT_STACK_HOME, discard: bool = False, iam: bool = False) -> Iterator[Stack]:
    """A started stack, stopped on exit; ``discard`` also removes its data and folder; ``iam``
    enforces IAM (see :class:`Stack`)."""
    stack = Stack(home, iam=iam)
    stack.start()
    try:
        yield stack
    finally:
        if discard:
            stack.clean()
            shutil.rmtree(home, ignore_errors=True)
        else:
            stack.stop()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="local.services.stack", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("command", choices=["start", "stop", "status", "env", "clean"])
    parser.add_argument("--home", type=Path, default=DEFAULT_STACK_HOME)
    args = parser.parse_args(argv)
    stack = Stack(args.home)
    if args.command == "start":
        info = stack.start()
        print(f"moto (AWS APIs):  {info['moto']['endpoint_url']}  pid {info['moto']['pid']}")
        print(f"PostgreSQL:       127.0.0.1:{info['postgres']['port']}  user {info['postgres']['user']}")
        print(f"dags bundle:      {info['dags_folder']}")
        print(f"state:            {stack.home}")
    elif args.command == "stop":
        stack.stop()
        print("local stack stopped")
    elif args.command == "clean":
        stack.clean()
        print("local stack stopped and its data removed")
    elif args.command == "status":
        print("up" if stack.is_up() else "down")
        return 0 if stack.is_up() else 1
    else:
        for key, value in stack.airflow_env().items():
            print(f"export {key}={shlex.quote(value)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
