"""The streaming splitter: same arrays and header as a whole-document parse, at any block size.

Every test runs with both scans: numpy's and the C one (``mrf_native.Scanner``).
"""

from __future__ import annotations

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from spark_jobs.mrf import native as mrf_native
from spark_jobs.mrf.json_split import JsonSplitError, JsonSplitter
from tests.unit.test_mrf_flatten import EXAMPLES

KEYS = ("provider_references", "in_network")
SCANS = ["numpy", "native"]


def split(data: bytes, block: int, scan: str = "numpy") -> tuple[dict, dict[str, list]]:
    scanner = mrf_native.Scanner(mrf_native.load()) if scan == "native" else None
    splitter = JsonSplitter(KEYS, batch_bytes=64, scanner=scanner)
    arrays: dict[str, list] = {}
    for start in range(0, len(data), block):
        for batch in splitter.feed(data[start : start + block]):
            lines = [line for line in batch.ndjson.split(b"\n") if line.strip()]
            assert len(lines) == batch.count
            assert batch.first_index == len(arrays.get(batch.key, []))
            arrays.setdefault(batch.key, []).extend(json.loads(line) for line in lines)
    list(splitter.finish())
    return splitter.header, arrays


def check(doc: dict, data: bytes, block: int, scan: str) -> None:
    header, arrays = split(data, block, scan)
    for key in KEYS:
        assert arrays.get(key, []) == doc.get(key, [])
    assert header == {k: v for k, v in doc.items() if k not in KEYS}


@pytest.mark.parametrize("scan", SCANS)
@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
@pytest.mark.parametrize("block", [1, 3, 64, 4096, 1 << 30])
def test_cms_examples_split_like_a_whole_parse(path, block, scan):
    data = path.read_bytes()
    check(json.loads(data), data, block, scan)


TEXT = st.text(alphabet=st.sampled_from('ab ,:{}[]"\\\n\té€'), max_size=12)
VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | TEXT,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3),
    max_leaves=8,
)
OBJECTS = st.dictionaries(TEXT, VALUES, max_size=4)


@settings(max_examples=300, deadline=None)
@given(
    header=st.dictionaries(TEXT.filter(lambda k: k not in KEYS), VALUES, max_size=3),
    refs=st.lists(OBJECTS, max_size=4),
    items=st.lists(OBJECTS, max_size=4),
    indent=st.sampled_from([None, 1]),
    block=st.integers(1, 40),
    refs_first=st.booleans(),
    scan=st.sampled_from(SCANS),
)
def test_any_document_splits_exactly(header, refs, items, indent, block, refs_first, scan):
    """Strings full of brackets, quotes, escapes and newlines never move a boundary."""
    doc = dict(header)
    order = [("provider_references", refs), ("in_network", items)]
    for key, value in order if refs_first else order[::-1]:
        doc[key] = value
    data = json.dumps(doc, indent=indent, ensure_ascii=False).encode()
    check(doc, data, block, scan)


@pytest.mark.parametrize("scan", SCANS)
@pytest.mark.parametrize(
    "data, message, offset",
    [
        (b'{"in_network":[{"a":1},]}', "trailing comma", 23),
        (b'{"in_network":[{"a":1}', "ends inside array 'in_network'", 22),
        (b"[1,2]", "not a JSON object", 0),
        (b'{"a":1}}', "unbalanced '}'", 7),
        (b'{"in_network":[{"a":1}]} x', "data after the end", 25),
        (b'{"in_network":[{"a":1}]', "before the top-level object is closed", 23),
    ],
)
def test_malformed_input_names_the_byte_offset(data, message, offset, scan):
    with pytest.raises(JsonSplitError, match=message) as err:
        split(data, 5, scan)
    assert err.value.offset == offset
