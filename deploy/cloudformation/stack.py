"""Create the package's CloudFormation stack and read back what it made.

The local stack deploys ``mwaa-pipelines.yaml`` with this to its own (moto's) CloudFormation,
and the tests use it to check the template; on AWS, the README's ``aws cloudformation deploy``
command does the same job. Parameters are given as a plain dict (lists as Python lists).
"""

from __future__ import annotations

from pathlib import Path

TEMPLATE = Path(__file__).resolve().parent / "mwaa-pipelines.yaml"
STACK_NAME = "mwaa-pipelines"
# Named roles and policies need this acknowledgement on AWS too.
CAPABILITIES = ["CAPABILITY_NAMED_IAM"]


class StackFailed(RuntimeError):
    """CloudFormation refused the template or could not create a resource; the message says which."""


def parameter_list(parameters: dict[str, object]) -> list[dict[str, str]]:
    def text(value: object) -> str:
        if isinstance(value, list | tuple):
            return ",".join(str(v) for v in value)
        return str(value)

    return [{"ParameterKey": key, "ParameterValue": text(value)} for key, value in parameters.items()]


def create_stack(cloudformation, parameters: dict[str, object], stack_name: str = STACK_NAME) -> dict[str, str]:
    """Create the stack, wait for it, and return its outputs (``OutputKey`` -> value)."""
    try:
        cloudformation.create_stack(
            StackName=stack_name,
            TemplateBody=TEMPLATE.read_text(),
            Parameters=parameter_list(parameters),
            Capabilities=CAPABILITIES,
            OnFailure="DO_NOTHING",
        )
        cloudformation.get_waiter("stack_create_complete").wait(
            StackName=stack_name, WaiterConfig={"Delay": 1, "MaxAttempts": 600}
        )
    except Exception as exc:
        raise StackFailed(f"stack {stack_name} was not created: {exc}") from exc
    stack = cloudformation.describe_stacks(StackName=stack_name)["Stacks"][0]
    return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}
