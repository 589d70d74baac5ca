"""SNS Publish's rules for ``Subject``, which moto applies only in part.

The Publish API reference (Amazon SNS API Reference, Publish, parameter ``Subject``): "must be
ASCII text that begins with a letter, number, or punctuation mark; must not include line
breaks or control characters; and must be less than 100 characters long". moto refuses only
subjects over 100 characters, and with a Python ``ValueError`` rather than SNS's error. Here a
subject that breaks any of the documented rules is refused as SNS refuses it:
``InvalidParameter`` "Invalid parameter: Subject", on Publish and on each PublishBatch entry.

The documented limit is the one kept: SNS has been seen to accept exactly 100 characters
(moto issue #1503), so a subject this stand-in accepts is accepted by SNS under either reading.
"""

from __future__ import annotations

from typing import Any

SUBJECT_MAX = 99  # "less than 100 characters"

_original: dict[str, Any] = {}


def subject_problem(subject: str | None) -> str | None:
    """Why SNS would refuse ``subject`` (None when it would not, or when there is none)."""
    if subject is None:
        return None
    if not subject:
        return "it is empty"
    if len(subject) > SUBJECT_MAX:
        return f"{len(subject)} characters, it must be less than 100"
    if not subject.isascii():
        return "it is not ASCII"
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in subject):
        return "it has a line break or a control character"
    if subject[0] == " ":
        return "it must begin with a letter, number or punctuation mark"
    return None


def apply() -> None:
    """Check subjects in moto's SNS backend (idempotent; :func:`undo` restores it)."""
    from moto.sns.exceptions import InvalidParameterValue
    from moto.sns.models import SNSBackend

    if _original:
        return
    _original["publish"] = SNSBackend.publish

    def publish(self: Any, *args: Any, **kwargs: Any) -> str:
        if subject_problem(kwargs.get("subject")):
            raise InvalidParameterValue("Invalid parameter: Subject")
        return _original["publish"](self, *args, **kwargs)

    SNSBackend.publish = publish


def undo() -> None:
    from moto.sns.models import SNSBackend

    if _original:
        SNSBackend.publish = _original.pop("publish")
