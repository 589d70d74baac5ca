"""The principals of a stack with IAM enforced, and the switch that turns authorization on.

* ``mwaa-pipelines-airflow``: what Airflow's ``aws_default`` connection (and the secrets
  backend) call AWS as. It holds exactly one policy, the template's MWAA execution-role policy
  (the same managed policy the template attaches to the environment's role), so a DAG that
  passes here needs nothing that policy does not grant.
* ``local-stack-admin``: the stack's own clients after start (seeding helpers, tests reading
  what a run made), allowed everything, as the account's administrator who deploys the stack.

Authorization is turned on last, through moto's ``/moto-api/reset-auth``: from then on every
request is authenticated and evaluated (``local/aws/iam_enforcement.py``).
"""

from __future__ import annotations

import json
import urllib.request

from local.seeds.aws_world import client

AIRFLOW_USER = "mwaa-pipelines-airflow"
ADMIN_USER = "local-stack-admin"
TEST_KEYS = ("testing", "testing")
_EVERYTHING = {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}


def _user_with_keys(iam, name: str) -> dict[str, str]:
    iam.create_user(UserName=name)
    key = iam.create_access_key(UserName=name)["AccessKey"]
    return {"user": name, "access_key_id": key["AccessKeyId"], "secret_access_key": key["SecretAccessKey"]}


def enforce_iam(endpoint_url: str, mwaa_policy_arn: str) -> dict[str, dict[str, str]]:
    """Create the two principals, turn authorization on, and return their keys."""
    iam = client("iam", endpoint_url)
    admin = _user_with_keys(iam, ADMIN_USER)
    iam.put_user_policy(UserName=ADMIN_USER, PolicyName="administrator", PolicyDocument=json.dumps(_EVERYTHING))
    airflow = _user_with_keys(iam, AIRFLOW_USER)
    iam.attach_user_policy(UserName=AIRFLOW_USER, PolicyArn=mwaa_policy_arn)
    request = urllib.request.Request(
        f"{endpoint_url}/moto-api/reset-auth", data=b"0", method="POST", headers={"Content-Type": "text/plain"}
    )
    with urllib.request.urlopen(request, timeout=10):
        pass
    return {"admin": admin, "airflow": airflow}


def _keys(info: dict | None, who: str) -> tuple[str, str] | None:
    found = ((info or {}).get("iam") or {}).get(who)
    return (found["access_key_id"], found["secret_access_key"]) if found else None


def admin_keys(info: dict | None) -> tuple[str, str] | None:
    """The stack's own keys: its administrator's where IAM is enforced, else None (test keys)."""
    return _keys(info, "admin")


def airflow_keys(info: dict | None) -> tuple[str, str]:
    """The keys Airflow calls AWS with on this stack."""
    return _keys(info, "airflow") or TEST_KEYS
