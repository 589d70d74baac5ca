"""Faster response serialization for the local moto server, same bytes on the wire.

moto builds every response by walking the botocore output shape and, for each member of
each object, asking a chain of alias providers which attribute names to try (``SubnetId``,
``subnet_id``, ``id``...) and scanning the service's key-path transformers with
``str.endswith``. For a DescribeSubnets of twenty subnets that is some 500 member lookups
and 10,000 ``endswith`` calls, two thirds of the request's server time. Both answers
depend only on the object's class, the member name and the shape (and the key path for the
transformers), so they are worked out once and kept. The per-request
``inspect.getmembers`` over the response class (which methods are actions) is kept too.

What is *not* cached: the values themselves, read from the object on every request.
Objects that carry their own per-instance ``Meta`` aliases take the uncached path.
"""

from __future__ import annotations

from typing import Any

_CACHE_LIMIT = 100_000
# (object class, member name, id(shape), id(parent)) -> (shape, parent, names to try)
_NAMES: dict[tuple, tuple] = {}
# (id(transformers), key path, member name) -> (transformers, transform or None)
_TRANSFORMS: dict[tuple, tuple] = {}
_METHOD_NAMES: dict[type, list[str]] = {}
_VALID_NAMES: set[str] = set()
_ORIGINAL: dict[str, Any] = {}


def _picker_class():
    from moto.core.serialize import MISSING, XFormedAttributePicker
    from moto.core.utils import get_value

    class MemoizedAttributePicker(XFormedAttributePicker):
        """Same answers as moto's picker; the alias and transformer lookups are memoized.

        The shape objects are held by the cache entries, so their ids cannot be reused by
        other shapes while an entry lives.
        """

        def __call__(self, context):
            obj, shape, key = context.obj, context.shape, context.key
            parent = getattr(shape, "parent", None)
            ck = (type(obj), key, id(shape), id(parent))
            hit = _NAMES.get(ck)
            if hit is None or hit[0] is not shape or hit[1] is not parent:
                hit = (shape, parent, tuple(self.get_possible_keys(context)))
                if "Meta" not in getattr(obj, "__dict__", ()):
                    if len(_NAMES) >= _CACHE_LIMIT:
                        _NAMES.clear()
                    _NAMES[ck] = hit
            for name in hit[2]:
                value = get_value(obj, name, MISSING)
                if value is not MISSING:
                    break
            else:
                value = None
            transformers = self.response_transformers
            if transformers:
                value = _transform(transformers, context.key_path, key, value)
            return value

    return MemoizedAttributePicker


def _transform(transformers: dict, key_path: str, key: str, value: Any) -> Any:
    tk = (id(transformers), key_path, key)
    found = _TRANSFORMS.get(tk)
    if found is None or found[0] is not transformers:
        full = f"{key_path}.{key}"
        match = next((fn for suffix, fn in transformers.items() if full.endswith(suffix)), None)
        if len(_TRANSFORMS) >= _CACHE_LIMIT:
            _TRANSFORMS.clear()
        found = _TRANSFORMS[tk] = (transformers, match)
    return found[1](value) if found[1] is not None else value


def _memoized_method_names(original):
    def method_names_from_class(clazz: type) -> list[str]:
        names = _METHOD_NAMES.get(clazz)
        if names is None:
            names = _METHOD_NAMES[clazz] = original(clazz)
        return list(names)

    return method_names_from_class


def _memoized_name_check(original):
    def _validate_name(value, kind):
        if type(value) is str and value in _VALID_NAMES:
            return
        original(value, kind)  # raises on a bad name: only good names are kept
        if type(value) is str and len(_VALID_NAMES) < _CACHE_LIMIT:
            _VALID_NAMES.add(value)

    return _validate_name


def apply() -> None:
    """Install the memoized lookups into moto (idempotent)."""
    import xmltodict
    from moto.core import responses

    if _ORIGINAL:
        return
    _ORIGINAL["picker"] = responses.XFormedAttributePicker
    _ORIGINAL["method_names"] = responses.method_names_from_class
    if hasattr(xmltodict, "_validate_name"):
        _ORIGINAL["validate_name"] = xmltodict._validate_name
        xmltodict._validate_name = _memoized_name_check(_ORIGINAL["validate_name"])
    responses.XFormedAttributePicker = _picker_class()
    responses.method_names_from_class = _memoized_method_names(_ORIGINAL["method_names"])


def undo() -> None:
    """Put moto's own lookups back (tests compare both)."""
    import xmltodict
    from moto.core import responses

    if not _ORIGINAL:
        return
    if "validate_name" in _ORIGINAL:
        xmltodict._validate_name = _ORIGINAL.pop("validate_name")
    responses.XFormedAttributePicker = _ORIGINAL.pop("picker")
    responses.method_names_from_class = _ORIGINAL.pop("method_names")
    _NAMES.clear()
    _TRANSFORMS.clear()
    _METHOD_NAMES.clear()
    _VALID_NAMES.clear()
