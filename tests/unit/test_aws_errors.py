"""operators/aws_errors.py: which AWS errors are a missing permission (no retry mends them)."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError

from operators.aws_errors import missing_permission


def client_error(code: str, message: str = "m") -> ClientError:
    return ClientError({"Error": {"Code": code, "Message": message}}, "Op")


@pytest.mark.parametrize(
    "code", ["AccessDenied", "AccessDeniedException", "UnauthorizedOperation", "AuthorizationError"]
)
def test_each_services_refusal_is_a_missing_permission(code):
    assert missing_permission(client_error(code, "User: u is not authorized")) == "User: u is not authorized"


@pytest.mark.parametrize(
    "exc",
    [client_error("ThrottlingException"), client_error("EntityNotFoundException"), ValueError("x"), RuntimeError()],
)
def test_other_errors_are_not(exc):
    assert missing_permission(exc) is None


def test_a_refused_permission_fails_the_task_without_retries_and_other_errors_pass():
    from datetime import timedelta

    from airflow.sdk.exceptions import AirflowFailException, TaskDeferred

    from operators.aws_errors import failing_fast_on_missing_permission

    with pytest.raises(AirflowFailException, match="t1: AWS refused a call for lack of permission: no glue:GetJob"):
        with failing_fast_on_missing_permission("t1"):
            raise client_error("AccessDeniedException", "no glue:GetJob")
    with pytest.raises(ClientError, match="Throttling"):
        with failing_fast_on_missing_permission("t1"):
            raise client_error("ThrottlingException", "slow down")
    with pytest.raises(TaskDeferred):  # a deferral is not an error
        with failing_fast_on_missing_permission("t1"):
            raise TaskDeferred(trigger=None, method_name="m", timeout=timedelta(seconds=1))
