"""Generate a realistic synthetic in-network-rates file of any size (CMS schema, v1.x shape).

    python bench/gen_mrf.py --size 1GB [--gzip] [--out FILE] [--seed N]

``--size`` is the size of the JSON text (before compression). The file is one JSON object
on one line, as payers publish them: plan header, then ``provider_references`` (groups of
NPIs under a TIN, a few published only as an unreachable ``location``), then ``in_network``
items with one to eight negotiated_rates each (mostly by reference, some with inline
provider_groups, a few with NPI lists ``[0]`` or ``[]``) and one to three prices each.
Descriptions carry quotes, braces, brackets, commas and non-ASCII text so that a splitter
that ignores JSON strings breaks on them. The same seed and size give the same bytes.
"""

from __future__ import annotations

import argparse
import json
import random
import re
import subprocess
import sys
from pathlib import Path

UNITS = {"": 1, "B": 1, "KB": 10**3, "MB": 10**6, "GB": 10**9}
CODE_TYPES = (("CPT", "2024"), ("HCPCS", "2024"), ("MS-DRG", "41"), ("RC", "2024"))
WORDS = (
    "office visit", "established patient", "MRI", "knee", "without contrast", "x-ray",
    "chest", "2 views", "lab panel", "comprehensive", "therapy", "15 min", "emergency",
    "level 3", "injection", "ultrasound", "abdomen", "biopsy", "skin", "anesthesia",
)  # fmt: skip
ODD_TEXT = (
    'Office visit, "established" patient {level 3}',
    "Radiology [2 views], left/right",
    "Ganglion block: \\ separate \\\\ procedure },{ not a boundary",
    "Anesthésie générale — 30 min",
    "Tab\tand line\nbreaks escaped",
)
NEGOTIATED_TYPES = ("negotiated", "derived", "fee schedule", "percentage", "per diem")


def parse_size(text: str) -> int:
    match = re.fullmatch(r"\s*([0-9.]+)\s*([KMG]?B?)\s*", text.upper())
    if not match:
        raise argparse.ArgumentTypeError(f"size {text!r}: expected e.g. 200MB or 1GB")
    return int(float(match.group(1)) * UNITS[match.group(2)])


def _dump(value) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def _npis(rng: random.Random, most: int) -> list[int]:
    roll = rng.random()
    if roll < 0.01:
        return [0]
    if roll < 0.02:
        return []
    # most groups are one clinician or a small practice; a few are large
    size = 1 if roll < 0.5 else rng.randint(2, 3) if roll < 0.87 else rng.randint(4, most)
    return [rng.randrange(1_000_000_000, 1_999_999_999) for _ in range(size)]


def _group(rng: random.Random, most_npis: int) -> dict:
    if rng.random() < 0.8:
        tin = {"type": "ein", "value": f"{rng.randrange(10, 99)}-{rng.randrange(1_000_000, 9_999_999)}"}
    else:
        tin = {"type": "npi", "value": str(rng.randrange(1_000_000_000, 1_999_999_999))}
    group: dict = {"npi": _npis(rng, most_npis), "tin": tin}
    if rng.random() < 0.005:
        del group["npi"]  # a missing list: one row with npi null
    return group


def provider_reference(rng: random.Random, group_id: int) -> dict:
    if rng.random() < 0.002:
        return {"provider_group_id": group_id, "location": f"https://providers.example.invalid/{group_id}.json"}
    return {
        "provider_group_id": group_id,
        "provider_groups": [_group(rng, 20) for _ in range(1 if rng.random() < 0.85 else 2)],
    }


def _price(rng: random.Random) -> dict:
    professional = rng.random() < 0.7
    price = {
        "negotiated_type": rng.choice(NEGOTIATED_TYPES),
        "negotiated_rate": round(rng.uniform(5, 25_000), 2),
        "expiration_date": rng.choice(("9999-12-31", "2026-12-31", "2027-06-30")),
        "billing_class": "professional" if professional else "institutional",
    }
    if professional:
        price["service_code"] = sorted(rng.sample([f"{n:02d}" for n in range(1, 100)], rng.randint(1, 5)))
    if rng.random() < 0.3:
        price["billing_code_modifier"] = rng.sample(["26", "TC", "50", "LT", "RT"], rng.randint(1, 2))
    if rng.random() < 0.05:
        price["additional_information"] = rng.choice(ODD_TEXT)
    if rng.random() < 0.1:
        price["setting"] = rng.choice(("inpatient", "outpatient", "both"))
    return price


class ItemMaker:
    """Builds in_network items from pools of pre-rendered prices and inline groups.

    Rendering every price with fresh random draws runs at a few MB/s; drawing from pools of
    a few thousand distinct prices and groups keeps the variety a parser sees (types, lists,
    escapes) and writes a gigabyte in well under a minute.
    """

    def __init__(self, rng: random.Random, reference_ids: int) -> None:
        self.rng = rng
        self.reference_ids = reference_ids
        self.prices = [_dump(_price(rng)) for _ in range(4000)]
        self.groups = [_dump(_group(rng, 10)) for _ in range(1000)]

    def rate(self) -> str:
        rng = self.rng
        prices = ",".join(rng.choices(self.prices, k=rng.randint(1, 3)))
        if rng.random() < 0.85 and self.reference_ids:
            count = 1 if rng.random() < 0.7 else 2 if rng.random() < 0.85 else 3
            ids = sorted(rng.sample(range(1, self.reference_ids + 1), count))
            return f'{{"provider_references":{_dump(ids)},"negotiated_prices":[{prices}]}}'
        groups = ",".join(rng.choices(self.groups, k=1 if rng.random() < 0.85 else 2))
        return f'{{"provider_groups":[{groups}],"negotiated_prices":[{prices}]}}'

    def item(self, index: int) -> str:
        rng = self.rng
        code_type, code_version = CODE_TYPES[index % len(CODE_TYPES)]
        words = " ".join(rng.sample(WORDS, rng.randint(2, 5)))
        description = rng.choice(ODD_TEXT) if rng.random() < 0.03 else words
        code = f"{index % 90_000 + 10_000:05d}" if code_type != "MS-DRG" else f"{index % 999:03d}"
        head = {
            "negotiation_arrangement": "ffs" if rng.random() < 0.95 else rng.choice(("bundle", "capitation")),
            "name": words.title(),
            "billing_code_type": code_type,
            "billing_code_type_version": code_version,
            "billing_code": code,
            "description": description,
        }
        rates = ",".join(self.rate() for _ in range(rng.randint(1, 8)))
        return f'{_dump(head)[:-1]},"negotiated_rates":[{rates}]}}'


def generate(out, size: int, seed: int) -> dict:
    """Write the file to the text stream ``out``; return what was written (counts)."""
    rng = random.Random(seed)
    references = max(20, size // 20_000)
    header = {
        "reporting_entity_name": "Example Health Plan, Inc.",
        "reporting_entity_type": "health insurance issuer",
        "plan_name": "Example PPO",
        "plan_id_type": "hios",
        "plan_id": "12345NY0010001",
        "plan_market_type": "group",
        "last_updated_on": "2026-11-01",
        "version": "1.3.1",
    }
    written = out.write(_dump(header)[:-1] + ',"provider_references":[')
    for group_id in range(1, references + 1):
        written += out.write(("," if group_id > 1 else "") + _dump(provider_reference(rng, group_id)))
    written += out.write('],"in_network":[')
    maker = ItemMaker(rng, references)
    items = 0
    while written < size or items == 0:
        written += out.write(("," if items else "") + maker.item(items))
        items += 1
    written += out.write("]}\n")
    return {"bytes": written, "provider_references": references, "in_network_items": items}


def write_file(path: Path, size: int, seed: int = 7, gzip: bool = False) -> dict:
    """Generate ``path`` (compressed by a ``gzip -6`` child process when asked, so both cores work)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not gzip:
        with open(path, "w", encoding="utf-8", newline="\n", buffering=1 << 20) as out:
            return generate(out, size, seed)
    with open(path, "wb") as sink:
        proc = subprocess.Popen(["gzip", "-6", "-n", "-c"], stdin=subprocess.PIPE, stdout=sink)
        with open(proc.stdin.fileno(), "w", encoding="utf-8", newline="\n", buffering=1 << 20, closefd=False) as out:
            counts = generate(out, size, seed)
        proc.stdin.close()
        if proc.wait() != 0:
            raise RuntimeError(f"gzip failed with exit code {proc.returncode}")
    return counts


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=parse_size, default=parse_size("100MB"), help="JSON size, e.g. 200MB, 1GB")
    parser.add_argument("--gzip", action="store_true", help="write FILE.json.gz")
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--out", type=Path, help="default: bench/data/mrf-<size>.json[.gz]")
    args = parser.parse_args(argv)
    out = args.out or Path(__file__).parent / "data" / f"mrf-{args.size}.json{'.gz' if args.gzip else ''}"
    counts = write_file(out, args.size, args.seed, args.gzip)
    print(f"{out}: {counts['bytes']:,} bytes of JSON, {counts['in_network_items']:,} in_network items, "
          f"{counts['provider_references']:,} provider references", file=sys.stderr)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
