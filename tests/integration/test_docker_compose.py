"""docker-compose.yaml stays valid and in step with the native stack.

No Docker engine runs here, so the file is validated with `docker-compose config` and
its references are checked; its seeding code is the native stack's, run here for real.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess

import pytest
import yaml

from deploy.layout import ROOT
from local.services.stack import free_port, stack_connections_env, stack_variables, start_moto

COMPOSE = ROOT / "docker-compose.yaml"
AIRFLOW_SERVICES = {"airflow-api-server", "airflow-scheduler", "airflow-dag-processor", "airflow-triggerer"}


@pytest.fixture(scope="module")
def config() -> dict:
    exe = shutil.which("docker-compose")
    assert exe, "docker-compose is installed by `make system`"
    out = subprocess.run([exe, "-f", str(COMPOSE), "config"], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return yaml.safe_load(out.stdout)


def pinned_airflow() -> str:
    constraints = (ROOT / "dags" / "constraints.txt").read_text()
    return re.search(r"^apache-airflow==(\S+)$", constraints, re.M).group(1)


def test_services(config):
    assert AIRFLOW_SERVICES | {"postgres", "moto", "seed", "airflow-init"} <= set(config["services"])


def test_every_mounted_path_and_file_exists(config):
    for name, service in config["services"].items():
        for volume in service.get("volumes", []):
            source = volume["source"] if isinstance(volume, dict) else volume.split(":")[0]
            if source.startswith(("/", ".")):
                assert (ROOT / source).exists(), f"{name} mounts missing {source}"
            else:
                assert source in config["volumes"], f"{name} mounts an undeclared volume {source}"
        build = service.get("build")
        if build:
            assert (ROOT / build["context"] / build["dockerfile"]).is_file()


def test_mounts_follow_mwaa_layout(config):
    for name in AIRFLOW_SERVICES:
        targets = {
            (v["target"] if isinstance(v, dict) else v.split(":")[1]) for v in config["services"][name]["volumes"]
        }
        assert {
            "/usr/local/airflow/dags",
            "/usr/local/airflow/dags/operators",
            "/usr/local/airflow/plugins",
            "/usr/local/airflow/requirements/requirements.txt",
            "/usr/local/airflow/startup/startup.sh",
        } <= targets, name


def test_airflow_version_matches_requirements(config):
    version = pinned_airflow()
    assert version == "3.3.1"
    dockerfile = (ROOT / "local" / "docker" / "Dockerfile").read_text()
    assert f"ARG AIRFLOW_VERSION={version}" in dockerfile
    assert "-c /tmp/constraints.txt" in dockerfile, "the image installs under MWAA's constraints"
    for name in AIRFLOW_SERVICES:
        service = config["services"][name]
        assert service["build"]["args"]["AIRFLOW_VERSION"] == version
        assert service["image"].endswith(f":{version}")
    assert f"apache-airflow=={version}" in (ROOT / "Makefile").read_text()


def test_ports_bind_loopback_only(config):
    for name, service in config["services"].items():
        for port in service.get("ports", []):
            host_ip = port.get("host_ip") if isinstance(port, dict) else port.split(":")[0]
            assert host_ip == "127.0.0.1", f"{name} publishes {port}"


@pytest.mark.stack
def test_compose_seed_writes_the_native_stack_variables(stack, tmp_path):
    """The seed service's code, run against a fresh moto: same names, same shapes."""
    from local.launchers.compose_seed import main
    from local.services.stack import read_variable

    out_file = tmp_path / "airflow.env"
    moto, endpoint = start_moto(free_port(), tmp_path / "moto.log")
    try:
        code = main(
            [
                "--endpoint-url",
                endpoint,
                "--postgres-host",
                "postgres",
                "--jars-dir",
                "/opt/spark-jars",
                "--out",
                str(out_file),
            ]
        )
        names = stack_variables(stack.info())
        variables = {name: read_variable(endpoint, name) for name in names}
    finally:
        os.killpg(moto.pid, signal.SIGTERM)
        moto.wait(timeout=20)
    assert code == 0
    exported = dict(
        shlex.split(line.removeprefix("export "))[0].split("=", 1) for line in out_file.read_text().splitlines()
    )
    native = stack_connections_env(stack.info())
    assert set(exported) == set(native)
    assert '"endpoint_url": "http://' in exported["AIRFLOW_CONN_AWS_DEFAULT"]
    assert endpoint in exported["AIRFLOW__SECRETS__BACKEND_KWARGS"]
    assert "jdbc:postgresql://postgres:5432/iceberg_catalog" in variables["spark_platform_config"]
    assert {name: stack.variable(name) != "" for name in names} == {
        name: value != "" for name, value in variables.items()
    }
    assert endpoint in exported["AIRFLOW_CONN_AWS_DEFAULT"]
    assert stack.info()["moto"]["endpoint_url"] in native["AIRFLOW_CONN_AWS_DEFAULT"]


def test_compose_seed_fills_the_warehouse_like_the_native_stack(stack, tmp_path):
    """With --seed-warehouse the seed service creates the same TICKIT tables (same seed, same rows)."""
    import psycopg2

    from local.launchers.compose_seed import main

    pg = stack.info()["postgres"]
    moto, endpoint = start_moto(free_port(), tmp_path / "moto.log")
    try:
        code = main(["--endpoint-url", endpoint, "--postgres-host", pg["host"], "--postgres-port", str(pg["port"]),
                     "--postgres-user", pg["user"], "--jars-dir", "/opt/spark-jars", "--out", str(tmp_path / "env"),
                     "--seed-warehouse"])  # fmt: skip
    finally:
        os.killpg(moto.pid, signal.SIGTERM)
        moto.wait(timeout=20)
    assert code == 0
    with psycopg2.connect(host=pg["host"], port=pg["port"], user=pg["user"], dbname="warehouse") as conn:
        with conn.cursor() as cur:
            cur.execute("SELECT count(*), sum(qtysold), min(dateid), max(dateid) FROM tickit.sales")
            count, total, low, high = cur.fetchone()
    conn.close()
    assert count == pg["tickit"]["sales_rows"] and low >= 1 and high <= 4 * 366
    assert total > count  # qtysold is 1 to 4 per sale
