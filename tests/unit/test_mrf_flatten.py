"""The price-transparency row grain, checked against an independent computation on every
CMS example file and on hand-made edge cases (inline groups, location files, NPI lists)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from spark_jobs.mrf.grain import (
    COLUMN_NAMES,
    FlattenStats,
    MrfError,
    ProviderIndex,
    flatten_item,
    header_values,
)

# The CMS guide's example files, copied into the repository (tests/fixtures/cms/SOURCE.md).
# Named one by one: a missing file fails the tests that use it instead of shrinking their list.
FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "cms"
EXAMPLES = [
    FIXTURES / name
    for name in (
        "in-network-rates-all-negotiated-types-sample.json",
        "in-network-rates-bundle-single-plan-sample.json",
        "in-network-rates-capitation-single-plan-sample.json",
        "in-network-rates-fee-for-service-single-plan-sample.json",
        "in-network-rates-multiple-plans-sample.json",
        "in-network-rates-no-npi.json",
    )
]


def job_rows(doc: dict, source: str, load_location=None) -> tuple[list[dict], FlattenStats]:
    """Drive the module as the streaming job does: header, references, then item by item."""
    providers = ProviderIndex(load_location=load_location)
    for i, ref in enumerate(doc.get("provider_references", [])):
        providers.add(ref, f"{source}: provider_references[{i}]")
    header = header_values(doc)
    stats = FlattenStats()
    rows = [
        dict(zip(COLUMN_NAMES, row, strict=True))
        for i, item in enumerate(doc["in_network"])
        for row in flatten_item(item, i, header, providers, source, stats)
    ]
    return rows, stats


def expected_rows(doc: dict, source: str, locations: dict | None = None) -> list[dict]:
    """The grain spelled out with plain loops over the whole (small) document."""
    by_id = {}
    for ref in doc.get("provider_references", []):
        if "provider_groups" in ref:
            by_id[ref["provider_group_id"]] = ref["provider_groups"]
        elif locations and ref.get("location") in locations:
            by_id[ref["provider_group_id"]] = locations[ref["location"]]
    out = []
    for item in doc["in_network"]:
        for rate in item["negotiated_rates"]:
            sources = []
            if "provider_groups" in rate:
                sources.append((None, rate["provider_groups"]))
            for ref in rate.get("provider_references", []):
                sources.append((ref, by_id.get(ref)))
            for price in rate["negotiated_prices"]:
                # a rate naming no providers keeps its prices, providers unknown
                for group_id, groups in sources or [(None, None)]:
                    people = []
                    for group in groups or []:
                        npis = group.get("npi") or [None]
                        people += [
                            (npi, group.get("tin", {}).get("type"), group.get("tin", {}).get("value")) for npi in npis
                        ]
                    for npi, tin_type, tin_value in people or [(None, None, None)]:
                        out.append(
                            {
                                "reporting_entity_name": doc.get("reporting_entity_name"),
                                "reporting_entity_type": doc.get("reporting_entity_type"),
                                "plan_name": doc.get("plan_name"),
                                "plan_id": doc.get("plan_id"),
                                "plan_market_type": doc.get("plan_market_type"),
                                "last_updated_on": doc.get("last_updated_on"),
                                "version": doc.get("version"),
                                "negotiation_arrangement": item.get("negotiation_arrangement"),
                                "name": item.get("name"),
                                "billing_code_type": item.get("billing_code_type"),
                                "billing_code_type_version": item.get("billing_code_type_version"),
                                "billing_code": item.get("billing_code"),
                                "description": item.get("description"),
                                "provider_group_id": group_id,
                                "npi": npi,
                                "tin_type": tin_type,
                                "tin_value": tin_value,
                                "negotiated_type": price.get("negotiated_type"),
                                "negotiated_rate": float(price["negotiated_rate"]),
                                "expiration_date": price.get("expiration_date"),
                                "billing_class": price.get("billing_class"),
                                "setting": price.get("setting"),
                                "service_code": price.get("service_code"),
                                "billing_code_modifier": price.get("billing_code_modifier"),
                                "additional_information": price.get("additional_information"),
                                "source_file": source,
                            }
                        )
    return out


def as_multiset(rows: list[dict]) -> Counter:
    return Counter(json.dumps(r, sort_keys=True) for r in rows)


def test_cms_examples_are_in_the_repository():
    """Every example the tests name is a file of the repository, and no other example is there
    unnamed (which no test would read)."""
    assert [p for p in EXAMPLES if not p.is_file()] == []
    on_disk = sorted(p.name for p in FIXTURES.glob("in-network-rates-*.json"))
    assert on_disk == sorted(p.name for p in EXAMPLES)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_every_cms_example_gives_exactly_the_grain(path):
    doc = json.loads(path.read_text())
    rows, stats = job_rows(doc, path.name)
    expected = expected_rows(doc, path.name)
    assert rows and as_multiset(rows) == as_multiset(expected)
    assert stats.rows == len(rows) and stats.items == len(doc["in_network"])
    assert all(set(r) == set(COLUMN_NAMES) for r in rows)


def edge_doc() -> dict:
    price = {"negotiated_type": "negotiated", "negotiated_rate": 10, "expiration_date": "9999-12-31",
             "billing_class": "professional", "service_code": ["11"], "billing_code_modifier": ["26"]}  # fmt: skip
    return {
        "reporting_entity_name": "acme",
        "reporting_entity_type": "health insurance issuer",
        "last_updated_on": "2026-11-01",
        "version": "1.3.1",
        "provider_references": [
            {"provider_group_id": 1, "provider_groups": [{"npi": [0], "tin": {"type": "ein", "value": "1"}}]},
            {"provider_group_id": 2, "provider_groups": [{"npi": [], "tin": {"type": "ein", "value": "2"}}]},
            {"provider_group_id": 3, "provider_groups": [{"tin": {"type": "npi", "value": "3"}}]},
            {"provider_group_id": 4, "location": "https://example.com/groups/4.json"},
            {"provider_group_id": 5, "location": "https://example.com/groups/5.json"},
        ],
        "in_network": [
            {
                "negotiation_arrangement": "ffs",
                "name": "x",
                "billing_code_type": "CPT",
                "billing_code_type_version": "2026",
                "billing_code": 99213,
                "description": "office visit",
                "negotiated_rates": [
                    {
                        "provider_references": [1, 2, 3, 4, 5, 99],
                        "negotiated_prices": [price, {**price, "negotiated_rate": 12.5}],
                    },
                    {
                        "provider_groups": [{"npi": [7, 8], "tin": {"type": "ein", "value": "9"}}],
                        "negotiated_prices": [price],
                    },
                ],
            }  # fmt: skip
        ],
    }


def test_edge_cases_npi_lists_inline_groups_locations_unresolved():
    doc = edge_doc()
    locations = {"https://example.com/groups/4.json": [{"npi": [44, 45], "tin": {"type": "ein", "value": "4"}}]}

    def load(url):
        return locations.get(url)  # 5's file cannot be read

    rows, stats = job_rows(doc, "edge.json", load)
    assert as_multiset(rows) == as_multiset(
        [dict(r, billing_code="99213") for r in expected_rows(doc, "edge.json", locations)]
    )
    by_group = Counter(r["provider_group_id"] for r in rows)
    # per price (2 prices): npi [0] -> 1, [] -> 1, missing -> 1, location 4 -> 2, unreadable 5 -> 1, unknown 99 -> 1
    assert by_group == {1: 2, 2: 2, 3: 2, 4: 4, 5: 2, 99: 2, None: 2}
    assert {r["npi"] for r in rows if r["provider_group_id"] == 1} == {0}
    assert {r["npi"] for r in rows if r["provider_group_id"] in (2, 3)} == {None}
    assert all(r["tin_value"] is None for r in rows if r["provider_group_id"] in (5, 99))
    assert stats.unresolved_references == 2  # 5 and 99, once per rate entry
    assert {r["billing_code"] for r in rows} == {"99213"}  # a numeric code is kept as text


@pytest.mark.parametrize(
    "break_it, message",
    [
        (lambda d: d["in_network"][0].update(negotiated_rates="many"), r"in_network\[0\]\.negotiated_rates is str"),
        (lambda d: d["in_network"][0]["negotiated_rates"][0]["negotiated_prices"][1].update(negotiated_rate="12"),
         r"negotiated_rates\[0\]\.negotiated_prices\[1\]\.negotiated_rate is '12', expected a number"),
        (lambda d: d["in_network"][0]["negotiated_rates"][1]["provider_groups"][0].update(npi=["7"]),
         r"negotiated_rates\[1\]\.provider_groups\[0\]\.npi must be a list of integers"),
        (lambda d: d["in_network"][0]["negotiated_rates"][0].update(provider_references=["1"]),
         r"provider_references must be a list of integers"),
        (lambda d: d["in_network"][0].update(name={"x": 1}), r"in_network\[0\]\.name is dict, expected a string"),
    ],
)  # fmt: skip
def test_wrong_types_name_the_file_item_and_field(break_it, message):
    doc = edge_doc()
    break_it(doc)
    with pytest.raises(MrfError, match=r"edge\.json: in_network\[0\]") as err:
        job_rows(doc, "edge.json")
    assert err.match(message)


def test_bad_provider_reference_is_named():
    doc = edge_doc()
    doc["provider_references"][1]["provider_group_id"] = "2"
    with pytest.raises(MrfError, match=r"provider_references\[1\]\.provider_group_id is '2'"):
        job_rows(doc, "edge.json")
