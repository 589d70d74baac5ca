"""requirements.txt installs under MWAA's constraints, the way MWAA's test-requirements does.

A clean venv gets the base MWAA image's Airflow (apache-airflow 3.3.1 under the same
constraints), then ``pip install -r requirements.txt`` runs with the requirements file's
own ``--constraint`` line pointed at our copy of MWAA's constraints (on MWAA the line
names /usr/local/airflow/dags/constraints.txt, where the deploy step puts that copy).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from deploy.layout import MWAA_DAGS_PATH, ROOT
from local.paths import TMP

pytestmark = pytest.mark.slow
CONSTRAINTS = ROOT / "dags" / "constraints.txt"


def pins() -> dict[str, str]:
    out = {}
    for line in CONSTRAINTS.read_text().splitlines():
        if "==" in line and not line.startswith("#"):
            name, version = line.split("==", 1)
            out[name.strip().lower()] = version.strip()
    return out


@pytest.fixture(scope="module")
def mwaa_venv() -> Path:
    venv = TMP / "mwaa-requirements-venv"
    shutil.rmtree(venv, ignore_errors=True)
    uv = Path(sys.executable).parent / "uv"
    subprocess.run([str(uv), "venv", "-q", "--seed", "--python", sys.executable, str(venv)], check=True)
    # The MWAA image: Airflow itself, under the constraints.
    subprocess.run(
        [
            str(uv),
            "pip",
            "install",
            "-q",
            "--python",
            str(venv / "bin" / "python"),
            "apache-airflow==3.3.1",
            "-c",
            str(CONSTRAINTS),
        ],
        check=True,
        timeout=900,
    )
    return venv


def localized_requirements(tmp_path: Path, extra: str = "") -> Path:
    text = (ROOT / "requirements.txt").read_text()
    assert f'--constraint "{MWAA_DAGS_PATH}/constraints.txt"' in text, "MWAA must find the constraints under dags/"
    path = tmp_path / "requirements.txt"
    path.write_text(text.replace(f"{MWAA_DAGS_PATH}/constraints.txt", str(CONSTRAINTS)) + extra)
    return path


def pip_install(venv: Path, requirements: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(venv / "bin" / "python"), "-m", "pip", "install", "--disable-pip-version-check", "-r", str(requirements)],
        capture_output=True,
        text=True,
        timeout=900,
    )


def test_requirements_install_under_mwaa_constraints(mwaa_venv, tmp_path):
    result = pip_install(mwaa_venv, localized_requirements(tmp_path))
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    freeze = subprocess.run(
        [str(mwaa_venv / "bin" / "python"), "-m", "pip", "freeze"], capture_output=True, text=True, check=True
    ).stdout
    installed = {n.lower(): v for n, _, v in (line.partition("==") for line in freeze.splitlines()) if v}
    expected = pins()
    for package in ("apache-airflow", "apache-airflow-providers-amazon", "aiobotocore", "boto3"):
        assert installed[package] == expected[package], package
    probe = "import airflow.providers.amazon.aws.operators.glue, airflow.providers.amazon.aws.operators.emr"
    subprocess.run([str(mwaa_venv / "bin" / "python"), "-c", probe], check=True, timeout=120)


def test_a_conflicting_pin_is_refused(mwaa_venv, tmp_path):
    """The constraints are really applied: a pin against them cannot install."""
    result = pip_install(mwaa_venv, localized_requirements(tmp_path, "boto3==1.34.0\n"))
    assert result.returncode != 0
    assert "boto3" in result.stdout + result.stderr
