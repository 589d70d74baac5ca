"""The JSON-to-Parquet job end to end on files: rows, publishing, errors, progress."""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq
import pytest

from bench.gen_mrf import write_file
from spark_jobs import json_to_parquet as job
from spark_jobs.common.storage import read_manifest
from spark_jobs.mrf.arrow_grain import PRICE_TEXT, distinct_dictionary
from spark_jobs.mrf.grain import COLUMN_NAMES
from tests.unit.test_mrf_flatten import EXAMPLES, as_multiset, edge_doc, expected_rows


def convert(inputs: list[Path], output: Path, *extra: str) -> dict:
    args = job.parse_job_args(job.build_parser(), [*(a for p in inputs for a in ("--input", str(p))),
                                                   "--output", str(output), *extra])  # fmt: skip
    return job.run(args)


def read_rows(output: Path) -> list[dict]:
    table = ds.dataset(output, format="parquet", partitioning="hive").to_table()
    assert table.column_names[: len(COLUMN_NAMES)] == list(COLUMN_NAMES)
    return table.select(list(COLUMN_NAMES)).to_pylist()


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_every_cms_example_gives_exactly_the_grain(path, tmp_path):
    manifest = convert([path], tmp_path / "out")
    rows = read_rows(tmp_path / "out")
    doc = json.loads(path.read_text())
    assert rows and as_multiset(rows) == as_multiset(expected_rows(doc, str(path)))
    assert manifest["rows"] == len(rows) and manifest["items"] == len(doc["in_network"])


def test_gzip_and_plain_give_the_same_rows_and_buckets_follow_the_crc32_scheme(tmp_path):
    import zlib

    plain = EXAMPLES[3]
    packed = tmp_path / (plain.name + ".gz")
    packed.write_bytes(gzip.compress(plain.read_bytes()))
    convert([plain], tmp_path / "a", "--buckets", "4")
    convert([packed], tmp_path / "b", "--buckets", "4")
    a = [dict(r, source_file=None) for r in read_rows(tmp_path / "a")]
    b = [dict(r, source_file=None) for r in read_rows(tmp_path / "b")]
    assert as_multiset(a) == as_multiset(b)
    table = ds.dataset(tmp_path / "a", format="parquet", partitioning="hive").to_table()
    for code, bucket in zip(table["billing_code"].to_pylist(), table["billing_code_bucket"].to_pylist(), strict=True):
        assert int(bucket) == zlib.crc32(code.encode()) % 4


def test_generated_file_matches_an_independent_computation(tmp_path):
    """A synthetic file with escapes, location references, NPI [0]/[] and many items."""
    source = tmp_path / "gen.json.gz"
    write_file(source, 3_000_000, seed=3, gzip=True)
    manifest = convert([source], tmp_path / "out", "--batch-mb", "1", "--buckets", "8", "--no-fetch-locations")
    doc = json.loads(gzip.decompress(source.read_bytes()))
    expected = expected_rows(doc, str(source))
    rows = read_rows(tmp_path / "out")
    assert len(rows) == len(expected) == manifest["rows"]
    assert as_multiset(rows) == as_multiset(expected)
    unresolved = {r["provider_group_id"] for r in doc["provider_references"] if "location" in r}
    assert unresolved and manifest["unresolved_references"] == sum(
        ref in unresolved for item in doc["in_network"] for rate in item["negotiated_rates"]
        for ref in rate.get("provider_references", [])
    )  # fmt: skip


def test_distinct_dictionary_keeps_every_row_over_the_distinct_values():
    values = pa.array(["ein", None, "npi", "ein", "ein", None, "npi"])
    indices = np.array([6, 0, 1, 3, 5, 2, 2, 4, 0], dtype=np.int32)
    out = distinct_dictionary(indices, values)
    assert out.to_pylist() == values.take(pa.array(indices)).to_pylist()
    assert sorted(out.dictionary.to_pylist()) == ["ein", "npi"]


FEW_DISTINCT = ("negotiation_arrangement", "billing_code_type", "billing_code_type_version", "tin_type", *PRICE_TEXT,
                "additional_information")  # fmt: skip


def test_low_cardinality_columns_stay_dictionary_encoded_in_parquet(tmp_path):
    """A few bits per row, not the text of every row (what a dictionary per price row gave)."""
    source = tmp_path / "gen.json.gz"
    write_file(source, 2_000_000, seed=5, gzip=True)
    convert([source], tmp_path / "out", "--buckets", "2", "--no-fetch-locations")
    for path in sorted((tmp_path / "out").rglob("*.parquet")):
        meta = pq.ParquetFile(path).metadata
        for g in range(meta.num_row_groups):
            group = meta.row_group(g)
            chunks = {group.column(c).path_in_schema: group.column(c) for c in range(group.num_columns)}
            for name in FEW_DISTINCT:
                chunk = chunks[name]
                assert chunk.has_dictionary_page, (path, name)
                assert chunk.total_uncompressed_size < group.num_rows / 2 + 4096, (path, name, chunk)


def test_location_files_are_read_and_numeric_codes_kept_as_text(tmp_path):
    doc = edge_doc()
    groups = [{"npi": [44, 45], "tin": {"type": "ein", "value": "4"}}]
    (tmp_path / "groups4.json").write_text(json.dumps({"provider_groups": groups}))
    doc["provider_references"][3]["location"] = (tmp_path / "groups4.json").as_uri()
    doc["provider_references"][4]["location"] = (tmp_path / "missing.json").as_uri()
    source = tmp_path / "edge.json"
    source.write_text(json.dumps(doc))
    manifest = convert([source], tmp_path / "out")
    rows = read_rows(tmp_path / "out")
    expected = expected_rows(doc, str(source), {doc["provider_references"][3]["location"]: groups})
    assert as_multiset(rows) == as_multiset([dict(r, billing_code="99213") for r in expected])
    assert manifest["unresolved_references"] == 2  # the unreadable file and the unknown id


def test_late_references_and_header_are_spooled_not_lost(tmp_path):
    doc = json.loads(EXAMPLES[3].read_text())
    reordered = {"in_network": doc["in_network"], **{k: v for k, v in doc.items() if k != "in_network"}}
    source = tmp_path / "late.json"
    source.write_text(json.dumps(reordered, indent=2))
    convert([source], tmp_path / "out")
    assert as_multiset(read_rows(tmp_path / "out")) == as_multiset(expected_rows(doc, str(source)))


def digest(path: Path) -> dict[str, str]:
    return {
        str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(path.rglob("*.parquet"))
    }


def test_rerun_gives_identical_files_and_the_source_is_untouched(tmp_path):
    source = tmp_path / "in.json"
    source.write_bytes(EXAMPLES[0].read_bytes())
    before = (source.stat().st_mtime_ns, hashlib.sha256(source.read_bytes()).hexdigest())
    convert([source], tmp_path / "out")
    first = digest(tmp_path / "out")
    convert([source], tmp_path / "out")
    assert digest(tmp_path / "out") == first and first
    assert (source.stat().st_mtime_ns, hashlib.sha256(source.read_bytes()).hexdigest()) == before
    assert [p.name for p in tmp_path.iterdir()] == sorted(["in.json", "out"]) or set(os.listdir(tmp_path)) == {
        "in.json", "out"
    }  # no staging left behind  # fmt: skip


def bad_inputs(tmp_path: Path) -> list[tuple[Path, str]]:
    good = EXAMPLES[3].read_bytes()
    doc = json.loads(good)
    cases = []
    truncated = tmp_path / "truncated.json.gz"
    truncated.write_bytes(gzip.compress(good)[:-40])
    cases.append((truncated, r"truncated gzip: the stream ends after [\d,]+ compressed bytes"))
    malformed = tmp_path / "malformed.json"
    malformed.write_bytes(good.replace(b'"negotiated_rates"', b'"negotiated_rates" 1', 1))
    cases.append((malformed, r"malformed JSON: .*in_network\[0\] \(at byte offset [\d,]+\)|byte offset"))
    missing = tmp_path / "missing.json"
    missing.write_text(json.dumps({k: v for k, v in doc.items() if k != "in_network"}))
    cases.append((missing, "no in_network array"))
    wrong = tmp_path / "wrong.json"
    doc["in_network"][1]["negotiated_rates"][0]["negotiated_prices"][0]["negotiated_rate"] = "ten"
    wrong.write_text(json.dumps(doc))
    cases.append((wrong, r"in_network\[1\] \(at byte offset [\d,]+\): .*negotiated_rate is 'ten', expected a number"))
    return cases


def test_bad_input_fails_with_file_place_and_reason_and_keeps_the_previous_output(tmp_path):
    out = tmp_path / "out"
    convert([EXAMPLES[0]], out)
    published = digest(out)
    for source, message in bad_inputs(tmp_path):
        with pytest.raises(Exception, match=message) as err:
            convert([source], out)
        assert str(source) in str(err.value)
        assert digest(out) == published  # the previous output is intact
        assert read_manifest(str(out))["sources"][0]["source"] == str(EXAMPLES[0])
    assert not [p for p in tmp_path.iterdir() if ".staging-" in p.name or ".previous-" in p.name]


def test_cli_exit_code_and_summary_on_bad_input(tmp_path, capsys):
    source, _ = bad_inputs(tmp_path)[2]
    assert job.main(["--input", str(source), "--output", str(tmp_path / "o")]) == 2
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1]) == {
        "ok": False, "error": f"{source}: no in_network array in the file (is it an in-network-rates file?)"
    }  # fmt: skip


def test_interrupted_publish_is_repaired_by_the_next_run(tmp_path):
    out = tmp_path / "out"
    convert([EXAMPLES[0]], out)
    published = digest(out)
    os.rename(out, tmp_path / "out.previous-crashed")  # a crash between the two renames
    from spark_jobs.common.storage import recover_local

    recover_local(str(out))
    assert digest(out) == published


def test_progress_is_logged_while_streaming(tmp_path, caplog):
    source = tmp_path / "gen.json"
    write_file(source, 2_000_000, seed=5)
    with caplog.at_level(logging.INFO, logger="json_to_parquet"):
        convert([source], tmp_path / "out", "--progress-seconds", "0", "--batch-mb", "1")
    lines = [r.getMessage() for r in caplog.records if "MB/s" in r.getMessage()]
    assert len(lines) >= 2
    last = lines[-1]
    for part in ("MB read", "(100%)", "MB of JSON", " items", " rows", "MB/s"):
        assert part in last


def test_several_files_in_one_run_keep_their_rows_apart(tmp_path):
    manifest = convert(EXAMPLES[:2], tmp_path / "out")
    rows = read_rows(tmp_path / "out")
    expected = [r for p in EXAMPLES[:2] for r in expected_rows(json.loads(p.read_text()), str(p))]
    assert as_multiset(rows) == as_multiset(expected)
    assert {s["source"] for s in manifest["sources"]} == {str(p) for p in EXAMPLES[:2]}
