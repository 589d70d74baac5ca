"""IAM authorization on the local endpoint, evaluated as AWS evaluates identity policies.

moto can authenticate every request (SigV4 against the caller's access key) and check the
caller's policies, but its check differs from IAM's where our policies depend on it:

* requests other than S3 are checked against ``"*"`` (``local/aws/iam_resources.py`` gives
  the ARNs each action really acts on, several for Glue's catalog objects);
* a statement whose ``Condition`` does not hold counts as an explicit deny, so an unmet
  condition on one Allow statement cancels every other Allow (IAM: a statement whose
  condition is false does not apply);
* a signed request without a body (a REST GET such as EMR Serverless GetApplication) was
  verified as if its parsed parameters were its body, so its signature never matched (SigV4
  signs the payload as sent: Signature Version 4 signing process, "canonical request");
* ``iam:PassRole`` is never checked (IAM: the caller of CreateJob or StartJobRun needs it on
  the role it hands over, with ``iam:PassedToService``).

The evaluation here follows the IAM User Guide's "Policy evaluation logic" for identity-based
policies in one account: an explicit Deny wins, otherwise some Allow must match the action
(case-insensitive, wildcards), every resource (wildcards) and its conditions (the operators
below; a key absent from the request makes a condition false). moto's own trust-policy check
still guards sts:AssumeRole. Nothing changes until authorization is turned on
(``POST /moto-api/reset-auth`` with ``0``: moto then authenticates every request).
"""

from __future__ import annotations

import re
import threading
from functools import lru_cache
from typing import Any

from local.aws.iam_resources import Check, checks_for

_CURRENT = threading.local()
_APPLIED = False


@lru_cache(maxsize=4096)
def _pattern(text: str, case_sensitive: bool) -> re.Pattern:
    regex = "^" + re.escape(text).replace(r"\*", ".*").replace(r"\?", ".") + "$"
    return re.compile(regex, 0 if case_sensitive else re.IGNORECASE)


def _matches(patterns: Any, value: str, case_sensitive: bool = True) -> bool:
    items = patterns if isinstance(patterns, list) else [patterns]
    return any(_pattern(str(p), case_sensitive).match(value) for p in items)


def _condition_holds(operator: str, key: str, expected: Any, context: dict[str, str]) -> bool:
    wanted = [str(v) for v in (expected if isinstance(expected, list) else [expected])]
    actual = next((v for k, v in context.items() if k.lower() == key.lower()), None)
    qualifier, _, base = operator.rpartition(":")
    if actual is None:
        # IAM: a missing key makes the condition false, except for ForAllValues (vacuously true).
        return qualifier == "ForAllValues"
    values = actual if isinstance(actual, list) else [actual]
    if base in ("StringEquals", "ArnEquals"):
        test = lambda v: v in wanted  # noqa: E731
    elif base in ("StringLike", "ArnLike"):
        test = lambda v: _matches(wanted, v)  # noqa: E731
    elif base == "StringNotEquals":
        test = lambda v: v not in wanted  # noqa: E731
    elif base == "Bool":
        test = lambda v: v.lower() in [w.lower() for w in wanted]  # noqa: E731
    else:
        return False  # an operator not implemented here never grants anything
    if qualifier == "ForAllValues":
        return all(test(v) for v in values)
    return any(test(v) for v in values)


def _conditions_hold(conditions: dict | None, context: dict[str, str]) -> bool:
    return all(
        _condition_holds(operator, key, expected, context)
        for operator, pairs in (conditions or {}).items()
        for key, expected in pairs.items()
    )


def _applies(statement: dict, action: str, resource: str, context: dict[str, str]) -> bool:
    if "Action" in statement and not _matches(statement["Action"], action, case_sensitive=False):
        return False
    if "NotAction" in statement and _matches(statement["NotAction"], action, case_sensitive=False):
        return False
    if "Resource" in statement and not _matches(statement["Resource"], resource):
        return False
    if "NotResource" in statement and _matches(statement["NotResource"], resource):
        return False
    return _conditions_hold(statement.get("Condition"), context)


def decide(documents: list[dict], check: Check) -> str | None:
    """None when ``check`` is allowed, else the first resource it is not allowed on."""
    statements = [
        s for doc in documents for s in (doc["Statement"] if isinstance(doc["Statement"], list) else [doc["Statement"]])
    ]
    for resource in check.resources:
        applying = [s for s in statements if _applies(s, check.action, resource, check.context)]
        if not applying or any(s.get("Effect") == "Deny" for s in applying):
            return resource
    return None


def _documents(access_key) -> list[dict]:
    from moto.iam.access_control import IAMPolicy

    return [IAMPolicy(policy)._policy_json for policy in access_key.collect_policies()]


def _check_action_permitted(original):
    def check_action_permitted(self, resource: str) -> None:
        if self._action == "sts:GetCallerIdentity":  # always allowed (as moto and IAM)
            return
        response = getattr(_CURRENT, "response", None)
        checks = (
            checks_for(response, self._action, resource) if response is not None else [Check(self._action, (resource,))]
        )
        documents = _documents(self._access_key)
        for check in checks:
            refused = decide(documents, check)
            if refused is not None:
                self._pipelines_refused = (check.action, refused)
                self._raise_access_denied()
        if self._is_assuming_role_operation(resource) and not self._check_role_trust_relationship(resource):
            self._raise_access_denied()

    return check_action_permitted


def _json_protocol(response: Any) -> bool:
    from moto.core.responses import get_service_model

    try:
        return get_service_model(response.boto3_service_name).protocol in ("json", "rest-json")
    except Exception:
        return False


def _raise_access_denied(original):
    def raise_access_denied(self) -> None:
        from moto.core.exceptions import AccessDeniedError, JsonRESTError

        refused = getattr(self, "_pipelines_refused", None)
        if refused is None:
            return original(self)
        action, resource = refused
        # IAM's wording: "User: <arn> is not authorized to perform: <action> on resource: <arn>";
        # JSON services answer with their own error shape (AccessDeniedException).
        message = f"User: {self._access_key.arn} is not authorized to perform: {action} on resource: {resource}"
        response = getattr(_CURRENT, "response", None)
        if response is not None and _json_protocol(response):
            raise JsonRESTError("AccessDeniedException", message)
        raise AccessDeniedError(user_arn=self._access_key.arn, action=f"{action} on resource: {resource}")

    return raise_access_denied


def _signed_payload(original):
    def create_aws_request(self):
        request = original(self)
        if not self._body and self._method in ("GET", "HEAD", "DELETE"):
            request.data = b""
        return request

    return create_aws_request


def _remember_request(original):
    def authorize(self, resource: str = "*") -> None:
        _CURRENT.response = self
        try:
            return original(self, resource)
        finally:
            _CURRENT.response = None

    return authorize


def apply() -> None:
    """Install the evaluation into moto (idempotent); authorization stays off until reset-auth."""
    global _APPLIED
    if _APPLIED:
        return
    _APPLIED = True
    from moto.core.responses import BaseResponse
    from moto.iam.access_control import IAMRequest, IAMRequestBase

    IAMRequestBase.check_action_permitted = _check_action_permitted(IAMRequestBase.check_action_permitted)
    IAMRequest._raise_access_denied = _raise_access_denied(IAMRequest._raise_access_denied)
    IAMRequestBase._create_aws_request = _signed_payload(IAMRequestBase._create_aws_request)
    BaseResponse._authenticate_and_authorize_normal_action = _remember_request(
        BaseResponse._authenticate_and_authorize_normal_action
    )
