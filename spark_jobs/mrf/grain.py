"""Price-transparency in-network-rates files: the output grain, as pure functions.

One output row per (in_network item, negotiated_rates entry, negotiated price, provider
group, NPI), with the file's plan metadata. Provider groups come from the file's
``provider_references`` by id, from inline ``provider_groups`` in a negotiated_rates
entry, or from a separately published ``location`` file when a loader can read it. An NPI
list gives one row per NPI (``[0]`` gives one row with npi 0); an empty or missing list
gives one row with npi null; a reference that cannot be resolved gives one row with the
provider columns null, and is counted.

Items arrive one at a time (the streaming reader never holds a whole file), so these
functions take one in_network item and yield its rows. Types are checked as rows are
built; a wrong one raises :class:`MrfError` naming the item and the field.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

# (name, Spark SQL type): the output schema, in order.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("reporting_entity_name", "string"),
    ("reporting_entity_type", "string"),
    ("plan_name", "string"),
    ("plan_id", "string"),
    ("plan_market_type", "string"),
    ("last_updated_on", "string"),
    ("version", "string"),
    ("negotiation_arrangement", "string"),
    ("name", "string"),
    ("billing_code_type", "string"),
    ("billing_code_type_version", "string"),
    ("billing_code", "string"),
    ("description", "string"),
    ("provider_group_id", "bigint"),
    ("npi", "bigint"),
    ("tin_type", "string"),
    ("tin_value", "string"),
    ("negotiated_type", "string"),
    ("negotiated_rate", "double"),
    ("expiration_date", "string"),
    ("billing_class", "string"),
    ("setting", "string"),
    ("service_code", "array<string>"),
    ("billing_code_modifier", "array<string>"),
    ("additional_information", "string"),
    ("source_file", "string"),
)
COLUMN_NAMES = tuple(name for name, _ in COLUMNS)
HEADER_FIELDS = COLUMN_NAMES[:7]
ITEM_FIELDS = COLUMN_NAMES[7:13]


class MrfError(ValueError):
    """The file breaks the schema; the message names the file, the place and the problem."""


@dataclass(frozen=True)
class ProviderGroup:
    npis: tuple[int, ...]  # empty: the file gave no NPI
    tin_type: str | None
    tin_value: str | None


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _text(value: Any, where: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return str(value)  # codes and ids published as numbers are kept, as text
    raise MrfError(f"{where} is {type(value).__name__}, expected a string")


def _texts(value: Any, where: str) -> list[str] | None:
    if value is None:
        return None
    if not isinstance(value, list):
        raise MrfError(f"{where} is {type(value).__name__}, expected a list of strings")
    return [_text(v, f"{where}[{i}]") for i, v in enumerate(value)]  # type: ignore[misc]


def parse_provider_groups(groups: Any, where: str) -> list[ProviderGroup]:
    if not isinstance(groups, list):
        raise MrfError(f"{where} is {type(groups).__name__}, expected a list")
    out = []
    for i, group in enumerate(groups):
        here = f"{where}[{i}]"
        if not isinstance(group, Mapping):
            raise MrfError(f"{here} is {type(group).__name__}, expected an object")
        npis = group.get("npi") or []
        if not isinstance(npis, list) or not all(_is_int(n) for n in npis):
            raise MrfError(f"{here}.npi must be a list of integers, got {npis!r:.80}")
        tin = group.get("tin") or {}
        if not isinstance(tin, Mapping):
            raise MrfError(f"{here}.tin is {type(tin).__name__}, expected an object")
        out.append(ProviderGroup(tuple(npis), _text(tin.get("type"), f"{here}.tin.type"),
                                 _text(tin.get("value"), f"{here}.tin.value")))  # fmt: skip
    return out


@dataclass
class ProviderIndex:
    """provider_group_id -> provider groups, filled from the file's provider_references.

    A reference published as a ``location`` URL is resolved with ``load_location`` (which
    returns the referenced file's provider_groups, or None when it cannot be read).
    """

    load_location: Callable[[str], list | None] | None = None
    groups: dict[int, list[ProviderGroup]] = field(default_factory=dict)
    unresolved_ids: set[int] = field(default_factory=set)

    def add(self, reference: Any, where: str) -> None:
        if not isinstance(reference, Mapping):
            raise MrfError(f"{where} is {type(reference).__name__}, expected an object")
        group_id = reference.get("provider_group_id")
        if not _is_int(group_id):
            raise MrfError(f"{where}.provider_group_id is {group_id!r}, expected an integer")
        if "provider_groups" in reference:
            self.groups[group_id] = parse_provider_groups(reference["provider_groups"], f"{where}.provider_groups")
            return
        location = reference.get("location")
        loaded = self.load_location(location) if (location and self.load_location) else None
        if loaded is None:
            self.unresolved_ids.add(group_id)
        else:
            self.groups[group_id] = parse_provider_groups(loaded, f"{where}.location {location}")

    def lookup(self, group_id: int) -> list[ProviderGroup] | None:
        return self.groups.get(group_id)


@dataclass
class FlattenStats:
    items: int = 0
    rows: int = 0
    unresolved_references: int = 0  # (rate entry, reference id) pairs whose groups were unknown


def header_values(header: Mapping[str, Any], where: str = "file") -> tuple:
    return tuple(_text(header.get(name), f"{where}.{name}") for name in HEADER_FIELDS)


def flatten_item(
    item: Any,
    index: int,
    header: tuple,
    providers: ProviderIndex,
    source_file: str,
    stats: FlattenStats | None = None,
) -> Iterator[tuple]:
    """Yield the output rows of ``in_network[index]`` in COLUMNS order."""
    where = f"{source_file}: in_network[{index}]"
    if not isinstance(item, Mapping):
        raise MrfError(f"{where} is {type(item).__name__}, expected an object")
    base = header + tuple(_text(item.get(name), f"{where}.{name}") for name in ITEM_FIELDS)
    rates = item.get("negotiated_rates")
    if not isinstance(rates, list):
        raise MrfError(f"{where}.negotiated_rates is {type(rates).__name__}, expected a list")
    if stats:
        stats.items += 1
    for r, rate in enumerate(rates):
        rwhere = f"{where}.negotiated_rates[{r}]"
        if not isinstance(rate, Mapping):
            raise MrfError(f"{rwhere} is {type(rate).__name__}, expected an object")
        prices = rate.get("negotiated_prices")
        if not isinstance(prices, list):
            raise MrfError(f"{rwhere}.negotiated_prices is {type(prices).__name__}, expected a list")
        # (provider_group_id, groups or None when unresolved)
        sources: list[tuple[int | None, list[ProviderGroup] | None]] = []
        if "provider_groups" in rate:
            sources.append((None, parse_provider_groups(rate["provider_groups"], f"{rwhere}.provider_groups")))
        refs = rate.get("provider_references") or []
        if not isinstance(refs, list) or not all(_is_int(x) for x in refs):
            raise MrfError(f"{rwhere}.provider_references must be a list of integers, got {refs!r:.80}")
        for ref in refs:
            groups = providers.lookup(ref)
            if groups is None and stats:
                stats.unresolved_references += 1
            sources.append((ref, groups))
        if not sources:
            sources.append((None, None))
        for p, price in enumerate(prices):
            pwhere = f"{rwhere}.negotiated_prices[{p}]"
            if not isinstance(price, Mapping):
                raise MrfError(f"{pwhere} is {type(price).__name__}, expected an object")
            amount = price.get("negotiated_rate")
            if not isinstance(amount, (int, float)) or isinstance(amount, bool):
                raise MrfError(f"{pwhere}.negotiated_rate is {amount!r:.40}, expected a number")
            tail = (
                _text(price.get("negotiated_type"), f"{pwhere}.negotiated_type"),
                float(amount),
                _text(price.get("expiration_date"), f"{pwhere}.expiration_date"),
                _text(price.get("billing_class"), f"{pwhere}.billing_class"),
                _text(price.get("setting"), f"{pwhere}.setting"),
                _texts(price.get("service_code"), f"{pwhere}.service_code"),
                _texts(price.get("billing_code_modifier"), f"{pwhere}.billing_code_modifier"),
                _text(price.get("additional_information"), f"{pwhere}.additional_information"),
                source_file,
            )
            for group_id, groups in sources:
                if not groups:  # unresolved, or an empty list: keep the price, providers unknown
                    rows = [(*base, group_id, None, None, None, *tail)]
                else:
                    rows = [
                        (*base, group_id, npi, group.tin_type, group.tin_value, *tail)
                        for group in groups
                        for npi in (group.npis or (None,))
                    ]
                if stats:
                    stats.rows += len(rows)
                yield from rows
