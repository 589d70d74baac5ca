"""The job policies in deploy/iam/: each is a policy IAM accepts once its placeholders are
filled, names only the placeholders its README row lists, and grants every action on resources
of that action's own service (no ``*`` resource)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

IAM_DIR = Path(__file__).resolve().parents[2] / "deploy" / "iam"
POLICIES = sorted(IAM_DIR.glob("*.json"))
PLACEHOLDER = re.compile(r"\$\{(\w+)\}")
SAMPLE = {"Region": "us-east-1", "AccountId": "123456789012"}


def readme_placeholders() -> dict[str, set[str]]:
    """file name -> the placeholders its row of deploy/iam/README.md's table names."""
    rows = {}
    for line in (IAM_DIR / "README.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].startswith("`") and cells[0].endswith(".json`"):
            rows[cells[0].strip("`")] = {p.strip() for p in cells[2].split(",")}
    return rows


def filled(path: Path) -> str:
    return PLACEHOLDER.sub(lambda m: SAMPLE.get(m.group(1), f"sample-{m.group(1).lower()}"), path.read_text())


def as_list(value) -> list:
    return value if isinstance(value, list) else [value]


def test_every_policy_file_is_in_the_readme_table():
    assert POLICIES, "no policy in deploy/iam"
    assert set(readme_placeholders()) == {p.name for p in POLICIES}


@pytest.mark.parametrize("path", POLICIES, ids=lambda p: p.name)
def test_the_placeholders_are_the_ones_the_readme_lists(path):
    assert set(PLACEHOLDER.findall(path.read_text())) == readme_placeholders()[path.name]


@pytest.mark.parametrize("path", POLICIES, ids=lambda p: p.name)
def test_each_action_is_granted_on_its_own_services_resources_only(path):
    for statement in json.loads(filled(path))["Statement"]:
        assert statement["Effect"] == "Allow" and statement.get("Sid"), statement
        services = {action.split(":", 1)[0] for action in as_list(statement["Action"])}
        assert len(services) == 1, f"{statement['Sid']}: one service per statement, got {services}"
        (service,) = services
        for resource in as_list(statement["Resource"]):
            assert resource != "*", f"{statement['Sid']}: a wildcard resource"
            assert resource.split(":")[2] == service, f"{statement['Sid']}: {resource} is not a {service} resource"


@pytest.mark.parametrize("path", POLICIES, ids=lambda p: p.name)
def test_iam_accepts_the_filled_policy(path, monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        iam = boto3.client("iam", region_name="us-east-1")
        arn = iam.create_policy(PolicyName=path.stem, PolicyDocument=filled(path))["Policy"]["Arn"]
        assert arn.endswith(f":policy/{path.stem}")
