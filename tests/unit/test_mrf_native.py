"""The C fast path gives the Arrow path's rows, in the same order, or hands the batch back.

Each case converts one file twice, with ``Options(native=True)`` and ``native=False``, and
compares every bucket's rows in file order, the counts, and which batches took which path.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow.dataset as ds
import pyarrow.fs as pafs
import pytest

from bench.gen_mrf import write_file
from spark_jobs.mrf import convert as mrf_convert
from spark_jobs.mrf import native as mrf_native
from spark_jobs.mrf.grain import COLUMN_NAMES, MrfError
from tests.unit.test_mrf_flatten import EXAMPLES, as_multiset, edge_doc, expected_rows


def convert(source: Path, out: Path, native: bool, **options) -> tuple[mrf_convert.FileResult, mrf_convert.Converter]:
    opts = mrf_convert.Options(native=native, fetch_locations=False, **options)
    writer = mrf_convert.BucketWriter(pafs.LocalFileSystem(), str(out), "part", opts)
    converter = mrf_convert.Converter(str(source), source.stat().st_size, writer, opts)
    try:
        result = converter.run()
    finally:
        result_files = writer.close()
    result.files = result_files
    return result, converter


def rows_by_file(out: Path) -> dict[str, list[dict]]:
    """Every file's rows in file order (dictionaries decoded)."""
    return {
        str(Path(f).relative_to(out)): ds.dataset(f, format="parquet").to_table().select(list(COLUMN_NAMES)).to_pylist()
        for f in sorted(str(p) for p in out.rglob("*.parquet"))
    }


def both(source: Path, tmp_path: Path, **options):
    native, conv = convert(source, tmp_path / "native", True, **options)
    arrow, _ = convert(source, tmp_path / "arrow", False, **options)
    assert rows_by_file(tmp_path / "native") == rows_by_file(tmp_path / "arrow")
    for name in ("rows", "items", "provider_references", "unresolved_references", "uncompressed_bytes"):
        assert getattr(native, name) == getattr(arrow, name), name
    assert [f["rows"] for f in native.files] == [f["rows"] for f in arrow.files]
    assert arrow.native_batches == 0 and arrow.arrow_batches >= 1
    assert (native.native_batches, native.arrow_batches) == (conv.native_batches, conv.fallback_batches)
    return native, conv


def test_library_is_built_and_current():
    assert mrf_native.load() is not None, "run `make native`"


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_cms_examples_take_the_native_path_with_the_same_rows(path, tmp_path):
    result, conv = both(path, tmp_path, buckets=4)
    assert conv.native_batches >= 1 and conv.fallback_batches == 0
    assert result.rows > 0


def test_edge_cases_give_the_grain(tmp_path):
    """Inline and referenced groups, NPI [0] and [], empty group lists, unresolved ids."""
    source = tmp_path / "edge.json"
    doc = edge_doc()
    first = doc["in_network"][0]
    first["billing_code"] = "99213"  # a number would take the Arrow path
    rates = first["negotiated_rates"]
    prices = rates[0]["negotiated_prices"]
    doc["in_network"] += [
        {**first, "billing_code": "A2", "negotiated_rates": [
            {"provider_groups": [], "provider_references": [3, 99], "negotiated_prices": prices},
            {"negotiated_prices": prices},  # neither groups nor references
            {"provider_references": [1], "negotiated_prices": []},  # no price: no row
        ]},
        {**first, "billing_code": "A3", "negotiated_rates": []},  # an item without rows
    ]  # fmt: skip
    source.write_text(json.dumps(doc))
    result, conv = both(source, tmp_path, buckets=3)
    assert conv.native_batches and not conv.fallback_batches
    rows = [r for rows in rows_by_file(tmp_path / "native").values() for r in rows]
    assert as_multiset(rows) == as_multiset(expected_rows(doc, str(source)))


def test_generated_file_with_escapes_and_small_batches(tmp_path):
    source = tmp_path / "gen.json.gz"
    write_file(source, 2_000_000, seed=11, gzip=True)
    result, conv = both(source, tmp_path, buckets=8, batch_bytes=256 << 10, block_bytes=64 << 10)
    assert conv.native_batches > 5 and not conv.fallback_batches
    doc = json.loads(gzip.decompress(source.read_bytes()))
    assert result.items == len(doc["in_network"])


def item(code, **fields) -> dict:
    base = {
        "negotiation_arrangement": "ffs", "name": "n", "billing_code_type": "CPT",
        "billing_code_type_version": "2024", "billing_code": code, "description": "d",
        "negotiated_rates": [{"provider_references": [1], "negotiated_prices": [
            {"negotiated_type": "negotiated", "negotiated_rate": 1.5, "expiration_date": "9999-12-31",
             "billing_class": "professional", "service_code": ["11"]}]}],
    }  # fmt: skip
    base.update(fields)
    return base


def doc_with(items: list) -> dict:
    return {
        "reporting_entity_name": "e", "reporting_entity_type": "t", "last_updated_on": "2026-01-01",
        "version": "1.0.0",
        "provider_references": [{"provider_group_id": 1, "provider_groups": [
            {"npi": [1, 2], "tin": {"type": "ein", "value": "x"}}]}],
        "in_network": items,
    }  # fmt: skip


def test_text_escapes_and_unicode_are_decoded_like_json(tmp_path):
    source = tmp_path / "text.json"
    odd = 'quote " slash \\ tab \t nl \n é 𝄞 \u2028 / end'
    items = [item("A1", description=odd, name="\u00e9\u00e8"), item("B2", description=None, name="x")]
    source.write_text(json.dumps(doc_with(items), ensure_ascii=True))  # \\uXXXX escapes, surrogate pairs
    _, conv = both(source, tmp_path)
    assert conv.native_batches == 1 and not conv.fallback_batches
    rows = [r for rows in rows_by_file(tmp_path / "native").values() for r in rows]
    assert {r["description"] for r in rows} == {odd, None}


def _price(d: dict, i: int) -> dict:
    return d["in_network"][i]["negotiated_rates"][0]["negotiated_prices"][0]


@pytest.mark.parametrize(
    "change, native_only",
    [
        (lambda d: d["in_network"][1].update(extra={"nested": [1, {"a": None}], "t": True}), True),
        (lambda d: d["in_network"][1].update(billing_code=99213), False),  # a code published as a number
        (lambda d: _price(d, 1).update(setting=3), False),
        (lambda d: _price(d, 2).update(service_code=None, billing_code_modifier=[]), True),
        (lambda d: _price(d, 0).update(service_code=[f"{i:02d}" for i in range(1, 100)]), True),
        (
            lambda d: d["in_network"][1]["negotiated_rates"][0].update(
                provider_groups=[{"npi": [5, None], "tin": {"type": "ein", "value": "y"}}]
            ),
            False,
        ),  # fmt: skip
    ],
    ids=["unknown-field", "numeric-code", "numeric-setting", "null-and-empty-lists", "long-list", "null-npi"],
)
def test_shapes_outside_the_native_parser_take_the_arrow_path(change, native_only, tmp_path):
    doc = doc_with([item("A1"), item("B2"), item("C3")])
    change(doc)
    source = tmp_path / "odd.json"
    source.write_text(json.dumps(doc))
    try:
        _, conv = both(source, tmp_path, buckets=2)
    except MrfError as arrow_error:  # the Arrow path refuses it: so must a native run, alike
        with pytest.raises(MrfError) as err:
            convert(source, tmp_path / "again", True)
        assert str(err.value) == str(arrow_error)
        assert not native_only
        return
    assert (conv.native_batches, conv.fallback_batches) == ((1, 0) if native_only else (0, 1))


def test_bad_item_fails_with_the_same_message_on_both_paths(tmp_path):
    doc = doc_with([item("A1"), item("B2")])
    doc["in_network"][1]["negotiated_rates"][0]["negotiated_prices"][0]["negotiated_rate"] = "ten"
    source = tmp_path / "bad.json"
    source.write_text(json.dumps(doc))
    messages = []
    for native in (True, False):
        with pytest.raises(MrfError) as err:
            convert(source, tmp_path / f"out-{native}", native)
        messages.append(str(err.value))
    assert messages[0] == messages[1] and "in_network[1]" in messages[0]


def test_references_after_in_network_are_spooled_then_converted_natively(tmp_path):
    doc = doc_with([item("A1"), item("B2")])
    refs = doc.pop("provider_references")
    doc["provider_references"] = refs  # now after in_network
    source = tmp_path / "late.json"
    source.write_text(json.dumps(doc))
    result, conv = both(source, tmp_path)
    assert conv.native_batches == 1 and result.unresolved_references == 0 and result.rows == 4


def test_null_in_a_reference_npi_list_is_named_on_both_paths(tmp_path):
    doc = doc_with([item("A1")])
    doc["provider_references"][0]["provider_groups"][0]["npi"] = [1, None]
    source = tmp_path / "null-npi.json"
    source.write_text(json.dumps(doc))
    for native in (True, False):
        with pytest.raises(MrfError, match=r"provider_references\[0\] \(at byte offset \d+\): "
                                           r"provider_groups\[0\]\.npi must be a list of integers"):  # fmt: skip
            convert(source, tmp_path / f"out-{native}", native)


def test_a_fallback_batch_between_native_ones_keeps_every_file_in_input_order(tmp_path):
    """Rows C still holds are written before the Arrow path's batch, and none is lost."""
    items = [item(f"C{i % 7}", description=f"item {i}") for i in range(60)]
    items[31]["billing_code"] = 31  # one batch in the middle takes the Arrow path
    source = tmp_path / "mixed.json"
    source.write_text(json.dumps(doc_with(items)))
    result, conv = both(source, tmp_path, buckets=3, batch_bytes=1500, block_bytes=512, row_group_rows=10**6)
    assert conv.fallback_batches == 1 and conv.native_batches >= 4
    assert result.rows == 60 * 2 and result.items == 60


def test_rates_parse_to_the_nearest_double_like_python(tmp_path):
    """The C parser's exact fast path and its strtod fallback both round like float()."""
    import random

    rng = random.Random(7)
    texts = ["0", "-0", "0.1", "1.005", "123456789012345", "1234567890123456789", "9007199254740993",
             "0.30000000000000004", "1e3", "2.5E-3", "-17.125e+2", "0.000000000000000000000001",
             "99999999999999.99", "1.7976931348623157e308"]  # fmt: skip
    for _ in range(300):
        whole, frac = rng.randrange(10 ** rng.randint(0, 12)), rng.randrange(10 ** rng.randint(1, 9))
        texts.append(f"{'-' if rng.random() < 0.1 else ''}{whole}.{frac:0{rng.randint(1, 12)}d}")
    items = [item(f"R{i}") for i in range(len(texts))]
    raw = json.dumps(doc_with(items))
    for text in texts:  # each 1.5 in turn becomes one of the texts, verbatim
        raw = raw.replace('"negotiated_rate": 1.5', f'"negotiated_rate": {text}', 1)
    source = tmp_path / "rates.json"
    source.write_text(raw)
    _, conv = both(source, tmp_path, buckets=1)
    assert conv.native_batches == 1 and not conv.fallback_batches
    got = [r["negotiated_rate"] for rows in rows_by_file(tmp_path / "native").values() for r in rows]
    assert got == [float(t) for t in texts for _ in range(2)]  # two provider rows per price
