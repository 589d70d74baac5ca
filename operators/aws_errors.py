"""AWS errors no retry can mend: a missing permission.

A task that gets AccessDenied from AWS fails the same way on every retry until someone changes
a policy; retrying only delays the message by the retries' delays (the subnet operator's
three, up to 10 minutes). The error codes are the services' own: ``AccessDenied`` (S3, IAM,
STS), ``AccessDeniedException`` (JSON services: Glue, EMR Serverless, Secrets Manager...),
``UnauthorizedOperation`` (EC2), ``AuthorizationError`` (SNS).
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

PERMISSION_CODES = frozenset({"AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError"})


def missing_permission(exc: BaseException) -> str | None:
    """The AWS message when ``exc`` is a refused permission (a botocore ClientError), else None."""
    response = getattr(exc, "response", None)
    if not isinstance(response, dict):
        return None
    error = response.get("Error") or {}
    if error.get("Code") not in PERMISSION_CODES:
        return None
    return error.get("Message") or error.get("Code")


@contextlib.contextmanager
def failing_fast_on_missing_permission(task_id: str) -> Iterator[None]:
    """Turn a refused permission into AirflowFailException (the task fails without retries),
    naming what AWS refused; every other error, and a deferral, passes through as it is."""
    from airflow.sdk.exceptions import AirflowFailException

    try:
        yield
    except AirflowFailException:
        raise
    except Exception as exc:
        refused = missing_permission(exc)
        if refused is None:
            raise
        raise AirflowFailException(f"{task_id}: AWS refused a call for lack of permission: {refused}") from exc
