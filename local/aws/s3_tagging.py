"""Object tag sets checked as S3 checks them, where moto lets them through.

S3 ("Categorizing your objects using tags", Amazon S3 User Guide; PutObjectTagging in the
API Reference) allows at most 10 tags on an object, keys unique within the set, keys of 1 to
128 and values of 0 to 256 Unicode characters. moto turns each tag set into a Python dict as
it parses the request, so a set with a repeated key silently keeps its last value instead of
being refused. That is exactly the request Iceberg's S3FileIO sends when a delete tag shares its
key with a write tag (it adds the delete tags to the object's current set and writes the set
back), and S3 refuses it; here it must be refused too.

This module checks every tag set an object can receive, before moto parses it, with S3's own
error codes and messages:

* ``PutObjectTagging`` (XML body): a repeated key is ``InvalidTag`` "Cannot provide multiple
  Tags with the same key";
* ``x-amz-tagging`` on ``PutObject``, ``CopyObject`` (``REPLACE``) and
  ``CreateMultipartUpload``: a repeated key is ``InvalidArgument`` (the header must be URL query
  parameters "without tag name duplicates");
* more than 10 tags: ``BadRequest`` "Object tags cannot be greater than 10";
* a key empty or over 128 characters: ``InvalidTag`` "The TagKey you have provided is invalid";
  a value over 256 characters: ``InvalidTag`` "The TagValue you have provided is invalid".

S3 checks a multipart upload's tags when the upload is created; moto only when it completes,
so the header check above also moves that refusal to where S3 makes it.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

MAX_TAGS = 10
MAX_KEY = 128
MAX_VALUE = 256
HEADER_DUPLICATES = (
    "The header 'x-amz-tagging' shall be encoded as UTF-8 then URLEncoded URL query parameters "
    "without tag name duplicates."
)

_originals: dict[str, Any] = {}


def tag_set_error(pairs: list[tuple[str, str]], duplicate: tuple[str, str]) -> tuple[str, str] | None:
    """S3's (code, message) for a tag set given as (key, value) pairs in request order, or None.

    ``duplicate`` is the (code, message) for a repeated key, which differs by where the set came
    from (XML body or header).
    """
    if len({key for key, _ in pairs}) != len(pairs):
        return duplicate
    if len(pairs) > MAX_TAGS:
        return "BadRequest", f"Object tags cannot be greater than {MAX_TAGS}"
    for key, value in pairs:
        if not key or len(key) > MAX_KEY:
            return "InvalidTag", "The TagKey you have provided is invalid"
        if len(value) > MAX_VALUE:
            return "InvalidTag", "The TagValue you have provided is invalid"
    return None


def _xml_pairs(body: bytes | str) -> list[tuple[str, str]]:
    import xmltodict

    parsed = xmltodict.parse(body, force_list={"Tag": True})
    tag_set = (parsed.get("Tagging") or {}).get("TagSet") or {}
    return [(tag.get("Key") or "", tag.get("Value") or "") for tag in tag_set.get("Tag") or []]


def _header_pairs(headers: Any) -> list[tuple[str, str]]:
    return parse_qsl(headers.get("x-amz-tagging") or "", keep_blank_values=True)


def apply() -> None:
    """Check tag sets in moto's S3 request parsing (idempotent; :func:`undo` restores it)."""
    from moto.s3.exceptions import S3ClientError
    from moto.s3.responses import S3Response

    if _originals:
        return
    _originals["headers"] = S3Response._tagging_from_headers
    _originals["xml"] = S3Response._tagging_from_xml
    _originals["copy"] = S3Response.copy_object

    def refuse(error: tuple[str, str] | None) -> None:
        if error:
            raise S3ClientError(*error)

    def check_header(headers: Any) -> None:
        refuse(tag_set_error(_header_pairs(headers), ("InvalidArgument", HEADER_DUPLICATES)))

    def tagging_from_headers(self: Any, headers: Any) -> dict[str, str]:
        check_header(headers)
        return _originals["headers"](self, headers)

    def copy_object(self: Any) -> Any:
        # moto copies first and reads the replacement tags after; S3 refuses before copying.
        if self.headers.get("x-amz-tagging-directive") == "REPLACE":
            check_header(self.headers)
        return _originals["copy"](self)

    def tagging_from_xml(self: Any) -> dict[str, str]:
        refuse(tag_set_error(_xml_pairs(self.body), ("InvalidTag", "Cannot provide multiple Tags with the same key")))
        return _originals["xml"](self)

    S3Response._tagging_from_headers = tagging_from_headers
    S3Response._tagging_from_xml = tagging_from_xml
    S3Response.copy_object = copy_object


def undo() -> None:
    from moto.s3.responses import S3Response

    if _originals:
        S3Response._tagging_from_headers = _originals.pop("headers")
        S3Response._tagging_from_xml = _originals.pop("xml")
        S3Response.copy_object = _originals.pop("copy")
