"""The price-transparency row grain over Arrow batches: vectorised, no Python loop per row.

:mod:`spark_jobs.mrf.grain` states the grain one item at a time (and gives precise error
messages); this module computes the same rows for a batch of thousands of in_network items
parsed by ``pyarrow.json``, with index arithmetic in numpy and ``take`` in Arrow. For every
negotiated_rates entry it builds the list of provider rows (inline groups, then referenced
groups, each expanded by NPI; one null row when there are none), then pairs every price of
the entry with every provider row of it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from spark_jobs.mrf.grain import COLUMN_NAMES, HEADER_FIELDS, ITEM_FIELDS

TIN = pa.struct([("type", pa.string()), ("value", pa.string())])
GROUP = pa.struct([("npi", pa.list_(pa.int64())), ("tin", TIN)])
PRICE_TEXT = ("negotiated_type", "expiration_date", "billing_class", "setting")
LIST_COLUMNS = ("service_code", "billing_code_modifier")
PRICE = pa.struct(
    [("negotiated_type", pa.string()), ("negotiated_rate", pa.float64())]
    + [(name, pa.string()) for name in PRICE_TEXT[1:]]
    + [
        ("service_code", pa.list_(pa.string())),
        ("billing_code_modifier", pa.list_(pa.string())),
        ("additional_information", pa.string()),
    ]
)
RATE = pa.struct(
    [
        ("provider_references", pa.list_(pa.int64())),
        ("provider_groups", pa.list_(GROUP)),
        ("negotiated_prices", pa.list_(PRICE)),
    ]
)
ITEM_SCHEMA = pa.schema([(name, pa.string()) for name in ITEM_FIELDS] + [("negotiated_rates", pa.list_(RATE))])
REFERENCE_SCHEMA = pa.schema(
    [("provider_group_id", pa.int64()), ("provider_groups", pa.list_(GROUP)), ("location", pa.string())]
)
OUTPUT_SCHEMA = pa.schema(
    [(name, pa.string()) for name in COLUMN_NAMES[:13]]
    + [("provider_group_id", pa.int64()), ("npi", pa.int64()), ("tin_type", pa.string()), ("tin_value", pa.string())]
    + [("negotiated_type", pa.string()), ("negotiated_rate", pa.float64())]
    + [(name, pa.string()) for name in ("expiration_date", "billing_class", "setting")]
    + [("service_code", pa.list_(pa.string())), ("billing_code_modifier", pa.list_(pa.string()))]
    + [("additional_information", pa.string()), ("source_file", pa.string())]
)
assert tuple(OUTPUT_SCHEMA.names) == COLUMN_NAMES


def _ragged_arange(counts: np.ndarray) -> np.ndarray:
    """Concatenation of arange(c) for every c in ``counts``."""
    total = int(counts.sum())
    if total == 0:
        return np.zeros(0, dtype=np.int64)
    ends = np.cumsum(counts)
    starts = np.repeat(ends - counts, counts)
    return np.arange(total, dtype=np.int64) - starts


def _flat(lists: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """Values of a list array and, for each value, the index of its list."""
    return pc.list_flatten(lists), pc.list_parent_indices(lists).to_numpy()


def _lengths(lists: pa.Array) -> np.ndarray:
    return pc.fill_null(pc.list_value_length(lists), 0).to_numpy(zero_copy_only=False).astype(np.int64)


@dataclass
class ProviderRows:
    """Provider rows (npi, tin) of a list of groups, with the owner each row belongs to."""

    owner: np.ndarray  # index of the owning group list (a rate, or a provider reference)
    npi: pa.Array
    tin_type: pa.Array
    tin_value: pa.Array

    @classmethod
    def from_group_lists(cls, lists: pa.Array) -> ProviderRows:
        """Expand ``list<group>`` per owner: one row per NPI, one null-NPI row for an empty list.

        Owners whose group list is empty get no row here (the caller decides what that means).
        """
        groups, group_owner = _flat(lists)
        npis = groups.field("npi")
        counts = _lengths(npis)
        reps = np.maximum(counts, 1)
        row_group = np.repeat(np.arange(len(groups), dtype=np.int64), reps)
        flat_npis = pc.list_flatten(npis)
        if flat_npis.null_count:
            raise ValueError("an npi list holds a null")
        npi_values = flat_npis.to_numpy(zero_copy_only=False)
        npi = np.zeros(len(row_group), dtype=np.int64)
        has = np.repeat(counts > 0, reps)
        npi[has] = npi_values
        tins = groups.field("tin")
        return cls(
            owner=group_owner[row_group],
            npi=pa.array(npi, mask=~has),
            tin_type=tins.field("type").take(row_group),
            tin_value=tins.field("value").take(row_group),
        )


@dataclass
class ReferenceIndex:
    """provider_group_id -> provider rows, built from the file's provider_references batches."""

    ids: np.ndarray  # sorted unique ids that resolved to rows
    start: np.ndarray
    count: np.ndarray
    npi: pa.Array
    tin_type: pa.Array
    tin_value: pa.Array

    @classmethod
    def empty(cls) -> ReferenceIndex:
        return cls.build([])

    @classmethod
    def build(cls, tables: list[pa.Table]) -> ReferenceIndex:
        """From parsed provider_references (rows with provider_groups; location-only ones are
        expected to have been resolved into provider_groups, or left null = unresolved)."""
        table = pa.concat_tables(tables).combine_chunks() if tables else REFERENCE_SCHEMA.empty_table()
        ids_all = table.column("provider_group_id").to_numpy(zero_copy_only=False)
        lists = table.column("provider_groups").combine_chunks() if table.num_rows else pa.array([], pa.list_(GROUP))
        if table.num_rows and table.column("provider_group_id").null_count:
            raise ValueError("a provider reference has no provider_group_id")
        resolved = ~np.asarray(lists.is_null().to_numpy(zero_copy_only=False), dtype=bool)
        rows = ProviderRows.from_group_lists(lists)
        per_ref = np.bincount(rows.owner, minlength=len(ids_all)).astype(np.int64)
        # a resolved reference with an empty group list keeps its price with null providers
        empty = resolved & (per_ref == 0)
        order = np.argsort(rows.owner, kind="stable")
        npi, tin_type, tin_value = rows.npi.take(order), rows.tin_type.take(order), rows.tin_value.take(order)
        starts = np.cumsum(per_ref) - per_ref
        if empty.any():  # append one all-null row per empty reference
            extra = int(empty.sum())
            base = len(npi)
            npi = pa.concat_arrays([npi, pa.nulls(extra, pa.int64())])
            tin_type = pa.concat_arrays([tin_type, pa.nulls(extra, pa.string())])
            tin_value = pa.concat_arrays([tin_value, pa.nulls(extra, pa.string())])
            starts = starts.copy()
            per_ref = per_ref.copy()
            starts[empty] = base + np.arange(extra)
            per_ref[empty] = 1
        keep = np.flatnonzero(resolved)
        # the last definition of an id wins, as in a dict
        ids_kept = ids_all[keep]
        order_ids = np.argsort(ids_kept, kind="stable")
        sorted_ids = ids_kept[order_ids]
        last = np.ones(len(sorted_ids), dtype=bool)
        if len(sorted_ids) > 1:
            last[:-1] = sorted_ids[1:] != sorted_ids[:-1]
        pick = keep[order_ids][last]
        return cls(sorted_ids[last], starts[pick], per_ref[pick], npi, tin_type, tin_value)

    def resolve(self, ref_ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(start, count) per id; count 0 where the id is unknown or unresolved."""
        if len(self.ids) == 0:
            return np.zeros(len(ref_ids), np.int64), np.zeros(len(ref_ids), np.int64)
        at = np.minimum(np.searchsorted(self.ids, ref_ids), len(self.ids) - 1)
        found = self.ids[at] == ref_ids
        return np.where(found, self.start[at], 0), np.where(found, self.count[at], 0)


@dataclass
class FlatBatch:
    """The rows of a batch as indices into its parts (nothing copied yet)."""

    items: pa.Table
    prices: pa.StructArray
    provider: dict[str, pa.Array]  # provider_group_id, npi, tin_type, tin_value (one per provider row)
    row_item: np.ndarray
    row_price: np.ndarray
    row_provider: np.ndarray
    unresolved_references: int

    @property
    def num_rows(self) -> int:
        return len(self.row_item)

    def table(self, header: tuple, source_file: str, order: np.ndarray | None = None) -> pa.Table:
        """The rows (in ``order`` when given) as OUTPUT_SCHEMA-named columns.

        Text repeated across rows (item, price and header fields, TINs) comes out
        dictionary-encoded over its distinct values (see :func:`distinct_dictionary`), so no
        text is copied per row and the Parquet writer stores those columns as dictionary
        pages directly.
        """
        row_item, row_price, row_provider = self.row_item, self.row_price, self.row_provider
        if order is not None:
            row_item, row_price, row_provider = row_item[order], row_price[order], row_provider[order]
        n = len(row_item)
        item_idx = row_item.astype(np.int32)
        price_idx = row_price.astype(np.int32)
        provider_idx = row_provider.astype(np.int32)
        constants = constant_columns(header, source_file, n)

        columns = []
        for field in OUTPUT_SCHEMA:
            name = field.name
            if name in constants:
                columns.append(constants[name])
            elif name in ITEM_FIELDS:
                columns.append(distinct_dictionary(item_idx, self.items.column(name).combine_chunks()))
            elif name in ("tin_type", "tin_value"):
                columns.append(distinct_dictionary(provider_idx, self.provider[name]))
            elif name in ("provider_group_id", "npi"):
                columns.append(self.provider[name].take(pa.array(provider_idx)))
            elif pa.types.is_string(field.type):
                columns.append(distinct_dictionary(price_idx, self.prices.field(name)))
            elif name in LIST_COLUMNS:
                columns.append(dictionary_list(self.prices.field(name).take(pa.array(price_idx))))
            else:
                columns.append(self.prices.field(name).take(pa.array(price_idx)))
        return pa.Table.from_arrays(columns, names=list(OUTPUT_SCHEMA.names))


def constant_columns(header: tuple, source_file: str, n: int) -> dict[str, pa.Array]:
    """The header fields and source_file on ``n`` rows: one-entry dictionaries over one shared
    array of zeros (a null column where the header lacks the field)."""
    zeros = pa.array(np.zeros(n, dtype=np.int32))
    values = dict(zip(HEADER_FIELDS, header, strict=True), source_file=source_file)
    return {
        name: pa.nulls(n, pa.dictionary(pa.int32(), pa.string()))
        if value is None
        else pa.DictionaryArray.from_arrays(zeros, pa.array([value], pa.string()))
        for name, value in values.items()
    }


def dictionary_list(lists: pa.ListArray) -> pa.ListArray:
    """``list<string>`` as ``list<dictionary<int32, string>>``: the Parquet writer then takes
    the elements' dictionary as given instead of hashing every element (a third less CPU for
    service_code), and the file still holds plain string lists."""
    if lists.offset or (len(lists) and lists.offsets[0].as_py()):
        lists = pa.concat_arrays([lists])  # offsets from 0 over compact values
    validity = lists.is_null() if lists.null_count else None
    return pa.ListArray.from_arrays(lists.offsets, pc.dictionary_encode(lists.values), mask=validity)


def distinct_dictionary(indices: np.ndarray, values: pa.Array) -> pa.DictionaryArray:
    """Rows ``values[indices]`` as a dictionary array over the distinct non-null values.

    The batch's own value arrays would do as dictionaries (nothing copied per row), but they
    repeat values: "ein" or "negotiated" once per provider or price row. Given such a
    dictionary, the Parquet writer writes all of it as the column chunk's dictionary page,
    or gives up on dictionary encoding and writes every row's text, and the bytes it writes
    then are not the same from one run to the next. Over the distinct values the page holds
    a few entries and each row an index of a bit or two: smaller files, a faster write, and
    the same bytes on every run. Parquet takes no null inside a dictionary: a null value
    becomes a null index.
    """
    encoded = pc.dictionary_encode(values)  # first-seen order; a null value gets a null index
    codes = pc.fill_null(encoded.indices, 0).to_numpy().astype(np.int32, copy=False)[indices]
    mask = None
    if encoded.indices.null_count:
        mask = ~np.asarray(encoded.indices.is_valid().to_numpy(zero_copy_only=False), dtype=bool)[indices]
    return pa.DictionaryArray.from_arrays(pa.array(codes, mask=mask), encoded.dictionary)


def flatten_items(items: pa.Table, refs: ReferenceIndex) -> FlatBatch:
    """Rows of a batch of in_network items, as indices (see :meth:`FlatBatch.table`)."""
    if items.column("negotiated_rates").null_count:
        raise ValueError("negotiated_rates is missing")
    rate_lists = items.column("negotiated_rates").combine_chunks()
    rates, rate_item = _flat(rate_lists)
    price_lists = rates.field("negotiated_prices")
    if price_lists.null_count:
        raise ValueError("negotiated_prices is missing")
    prices, price_rate = _flat(price_lists)
    if prices.field("negotiated_rate").null_count:
        raise ValueError("negotiated_rate is missing")
    n_rates = len(rates)

    # provider rows per rate: inline groups ...
    inline_lists = rates.field("provider_groups")
    inline = ProviderRows.from_group_lists(inline_lists)
    # ... then referenced groups, expanded through the index (one null row when unresolved)
    ref_ids, ref_rate = _flat(rates.field("provider_references"))
    ref_ids = ref_ids.to_numpy(zero_copy_only=False)
    start, count = refs.resolve(ref_ids)
    unresolved = int((count == 0).sum())
    reps = np.maximum(count, 1)
    row_ref = np.repeat(np.arange(len(ref_ids), dtype=np.int64), reps)
    src = np.repeat(start, reps) + _ragged_arange(reps)
    known = np.repeat(count > 0, reps)
    src_idx = pa.array(np.where(known, src, 0), mask=~known)
    # one null provider row for an inline group list that is empty, and for a rate with
    # neither inline groups nor references (the price is kept, providers unknown)
    inline_given = ~np.asarray(inline_lists.is_null().to_numpy(zero_copy_only=False), dtype=bool)
    inline_empty = inline_given & (_lengths(inline_lists) == 0)
    has_ref = np.bincount(ref_rate, minlength=n_rates) > 0
    bare = np.flatnonzero(inline_empty | (~inline_given & ~has_ref))

    owner = np.concatenate([inline.owner, ref_rate[row_ref], bare])
    n_inline, n_bare = len(inline.owner), len(bare)
    provider = {
        "provider_group_id": pa.concat_arrays(
            [pa.nulls(n_inline, pa.int64()), pa.array(ref_ids[row_ref], pa.int64()), pa.nulls(n_bare, pa.int64())]
        ),
        "npi": pa.concat_arrays([inline.npi, refs.npi.take(src_idx), pa.nulls(n_bare, pa.int64())]),
        "tin_type": pa.concat_arrays([inline.tin_type, refs.tin_type.take(src_idx), pa.nulls(n_bare, pa.string())]),
        "tin_value": pa.concat_arrays([inline.tin_value, refs.tin_value.take(src_idx), pa.nulls(n_bare, pa.string())]),
    }
    order = np.argsort(owner, kind="stable")
    per_rate = np.bincount(owner, minlength=n_rates).astype(np.int64)
    first = np.cumsum(per_rate) - per_rate

    # every price of a rate times every provider row of that rate
    per_price = per_rate[price_rate]
    row_price = np.repeat(np.arange(len(prices), dtype=np.int64), per_price)
    row_provider = order[np.repeat(first[price_rate], per_price) + _ragged_arange(per_price)]
    row_item = rate_item[price_rate[row_price]]
    return FlatBatch(items, prices, provider, row_item, row_price, row_provider, unresolved)
