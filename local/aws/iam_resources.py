"""The resources an AWS request acts on, as IAM evaluates it: the ARNs each action checks.

moto authorizes S3 requests against the bucket or object they name, and every other request
against ``"*"``: a policy granting ``glue:StartJobRun`` on ``job/mwaa-pipelines-*`` then allows
nothing, and one granting it on ``"*"`` allows every job. This table gives, for the actions the
pipelines and their tests make, the resources the Service Authorization Reference lists for them
(AWS Glue, EMR Serverless, Secrets Manager, SNS, SES, CloudWatch Logs), read from the request's
own parameters; Glue's catalog objects are checked on the catalog, the database and the table
together, as Glue documents ("Specifying AWS Glue resource ARNs"). Actions that have no
resource-level permission (EC2 Describe*, Glue GetJobs, EMR Serverless ListApplications...)
keep ``"*"``.

It also names the permissions a request needs besides its own action: ``iam:PassRole`` on the
role a Glue CreateJob / UpdateJob or an EMR Serverless StartJobRun hands to the service, with
``iam:PassedToService`` in the request context (IAM User Guide, "Grant a user permissions to
pass a role to an AWS service").
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from email import message_from_string
from email.utils import parseaddr
from typing import Any


@dataclass(frozen=True)
class Check:
    """One permission a request needs: ``action`` on every one of ``resources``."""

    action: str
    resources: tuple[str, ...]
    context: dict[str, str] = field(default_factory=dict)


class Request:
    """What the table reads of a moto response object (the request being authorized)."""

    def __init__(self, response: Any):
        self._response = response
        self.region = response.region
        self.account = response.current_account
        self.path = getattr(response, "path", "") or ""

    def param(self, name: str, default: Any = None) -> Any:
        try:
            value = self._response._get_param(name)
        except Exception:  # a body the protocol helper cannot read
            value = None
        return default if value is None else value

    def arn(self, service: str, resource: str) -> str:
        return f"arn:aws:{service}:{self.region}:{self.account}:{resource}"


def _glue(r: Request, resource: str) -> str:
    return r.arn("glue", resource)


def _job(r: Request) -> tuple[str, ...]:
    return (_glue(r, f"job/{r.param('JobName') or r.param('Name')}"),)


def _catalog_objects(r: Request, database: str | None, table: str | None = None) -> tuple[str, ...]:
    found = [_glue(r, "catalog")]
    if database is not None:
        found.append(_glue(r, f"database/{database}"))
    if table is not None:
        found.append(_glue(r, f"table/{database}/{table}"))
    return tuple(found)


def _table_input(r: Request) -> tuple[str, ...]:
    return _catalog_objects(r, r.param("DatabaseName"), (r.param("TableInput") or {}).get("Name"))


def _named_table(r: Request) -> tuple[str, ...]:
    return _catalog_objects(r, r.param("DatabaseName"), r.param("TableName") or r.param("Name"))


_EMR_PATH = re.compile(r"^/applications/(?P<app>[^/]+)(?:/jobruns/(?P<run>[^/]+))?")


def _emr(r: Request) -> tuple[str, ...]:
    match = _EMR_PATH.match(r.path)
    if not match:
        return (r.arn("emr-serverless", "/applications/*"),)
    resource = f"/applications/{match['app']}"
    if match["run"]:
        resource += f"/jobruns/{match['run']}"
    return (r.arn("emr-serverless", resource),)


def _secret(r: Request) -> tuple[str, ...]:
    name = r.param("SecretId") or r.param("Name")
    if name and name.startswith("arn:"):
        return (name,)
    from moto.secretsmanager.models import secretsmanager_backends

    secret = secretsmanager_backends[r.account][r.region].secrets.get(name)
    # A secret's ARN ends with a random suffix; one that does not exist is checked on its name.
    return (secret.arn if secret is not None else r.arn("secretsmanager", f"secret:{name}"),)


def _ses_identity(r: Request) -> tuple[str, ...]:
    source = r.param("Source") or r.param("FromEmailAddress")
    if not source:
        raw = r.param("RawMessage.Data") or ""
        source = message_from_string(_b64(raw)).get("From", "") if raw else ""
    address = parseaddr(source)[1]
    return (r.arn("ses", f"identity/{address}"),)


def _b64(text: str) -> str:
    import base64
    import binascii

    try:
        return base64.b64decode(text).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        return text


def _log_group(r: Request) -> tuple[str, ...]:
    return (r.arn("logs", f"log-group:{r.param('logGroupName')}"),)


def _log_stream(r: Request) -> tuple[str, ...]:
    return (r.arn("logs", f"log-group:{r.param('logGroupName')}:log-stream:{r.param('logStreamName')}"),)


RESOURCES = {
    # AWS Glue: jobs and runs are checked on the job.
    **{
        f"glue:{a}": _job
        for a in (
            "GetJob",
            "CreateJob",
            "UpdateJob",
            "DeleteJob",
            "StartJobRun",
            "GetJobRun",
            "GetJobRuns",
            "BatchStopJobRun",
        )
    },
    "glue:GetTags": lambda r: (r.param("ResourceArn"),),
    "glue:TagResource": lambda r: (r.param("ResourceArn"),),
    "glue:GetConnections": lambda r: (_glue(r, "catalog"), _glue(r, "connection/*")),
    "glue:GetConnection": lambda r: (_glue(r, "catalog"), _glue(r, f"connection/{r.param('Name')}")),
    "glue:DeleteConnection": lambda r: (_glue(r, "catalog"), _glue(r, f"connection/{r.param('ConnectionName')}")),
    "glue:CreateConnection": lambda r: (
        _glue(r, "catalog"),
        _glue(r, f"connection/{(r.param('ConnectionInput') or {}).get('Name')}"),
    ),
    "glue:GetDatabase": lambda r: _catalog_objects(r, r.param("Name")),
    "glue:CreateDatabase": lambda r: _catalog_objects(r, (r.param("DatabaseInput") or {}).get("Name")),
    "glue:GetDatabases": lambda r: (_glue(r, "catalog"), _glue(r, "database/*")),
    "glue:GetTables": lambda r: _catalog_objects(r, r.param("DatabaseName"), "*"),
    "glue:GetTable": _named_table,
    "glue:DeleteTable": _named_table,
    "glue:CreateTable": _table_input,
    "glue:UpdateTable": _table_input,
    "glue:GetPartitions": _named_table,
    "glue:BatchCreatePartition": _named_table,
    "glue:BatchDeletePartition": _named_table,
    # EMR Serverless: the application, or the job run under it, from the request's path.
    **{
        f"emr-serverless:{a}": _emr
        for a in (
            "GetApplication",
            "StartApplication",
            "StopApplication",
            "StartJobRun",
            "ListJobRuns",
            "GetJobRun",
            "CancelJobRun",
            "GetDashboardForJobRun",
        )
    },
    # Secrets Manager, SNS, SES, CloudWatch Logs.
    **{f"secretsmanager:{a}": _secret for a in ("GetSecretValue", "PutSecretValue", "DescribeSecret", "CreateSecret")},
    "sns:Publish": lambda r: (r.param("TopicArn") or r.param("TargetArn"),),
    "sns:Subscribe": lambda r: (r.param("TopicArn"),),
    "ses:SendRawEmail": _ses_identity,
    "ses:SendEmail": _ses_identity,
    "logs:GetLogEvents": _log_stream,
    "logs:FilterLogEvents": _log_group,
}


def _passed_role(service: str, role_param: str):
    def checks(r: Request) -> list[Check]:
        role = r.param(role_param) or (r.param("JobUpdate") or {}).get(role_param)
        if not role:
            return []
        if not role.startswith("arn:"):
            role = f"arn:aws:iam::{r.account}:role/{role}"
        return [Check("iam:PassRole", (role,), {"iam:PassedToService": service})]

    return checks


ALSO_NEEDED = {
    "glue:CreateJob": _passed_role("glue.amazonaws.com", "Role"),
    "glue:UpdateJob": _passed_role("glue.amazonaws.com", "Role"),
    "emr-serverless:StartJobRun": _passed_role("emr-serverless.amazonaws.com", "executionRoleArn"),
}


def checks_for(response: Any, action: str, default_resource: str) -> list[Check]:
    """Every permission the request needs: its action on its resources, and what else it implies."""
    request = Request(response)
    resolve = RESOURCES.get(action)
    resources = tuple(resolve(request)) if resolve else (default_resource,)
    found = [Check(action, resources)]
    also = ALSO_NEEDED.get(action)
    if also:
        found += also(request)
    return found
