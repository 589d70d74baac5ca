"""The converter's native fast path (``csrc/mrf_native.c``), through ctypes.

Two things move to C: the splitter's scan of each block (:class:`Scanner`) and the whole
row grain of a batch of in_network items (:class:`NativeItems`), which writes each bucket's
rows as dictionary indices that become Arrow arrays without a per-row step in Python.

The library is optional. ``make install`` builds it next to its source (``python -m
spark_jobs.mrf.native build``); a Spark job elsewhere may point ``MRF_NATIVE_LIB`` at
a copy built for that platform. Without it, or with ``MRF_NATIVE=0``, the converter runs the
numpy and Arrow path it always had. The C parser takes only the schema's plain shape and
hands any other batch back (:meth:`NativeItems.convert` returns False), and the Arrow path
converts that batch or names the error, so both paths give the same rows.
"""

from __future__ import annotations

import ctypes
import logging
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa

from spark_jobs.mrf.arrow_grain import LIST_COLUMNS, OUTPUT_SCHEMA, constant_columns

log = logging.getLogger("json_to_parquet")
SOURCE = Path(__file__).resolve().parent / "csrc" / "mrf_native.c"
DEFAULT_LIBRARY = SOURCE.with_name("libmrf_native.so")
LIBRARY_ENV = "MRF_NATIVE_LIB"
SWITCH_ENV = "MRF_NATIVE"  # "0" turns the fast path off
NULL_INT = np.iinfo(np.int64).min
# the C side's text columns, in its order (its list columns are arrow_grain.LIST_COLUMNS)
TEXT_COLUMNS = (
    "negotiation_arrangement", "name", "billing_code_type", "billing_code_type_version", "billing_code",
    "description", "tin_type", "tin_value", "negotiated_type", "expiration_date", "billing_class", "setting",
    "additional_information",
)  # fmt: skip
_SIZES = 1 + 2 * len(TEXT_COLUMNS) + 3 * len(LIST_COLUMNS)
_P = ctypes.c_void_p
_I64 = ctypes.c_int64
_DICT_TYPE = pa.dictionary(pa.int32(), pa.string())
_LIST_TYPE = pa.list_(_DICT_TYPE)

_loaded: ctypes.CDLL | None = None
_load_tried = False


def library_path() -> Path:
    return Path(os.environ.get(LIBRARY_ENV) or DEFAULT_LIBRARY)


def build(output: Path | None = None) -> Path:
    """Compile the library (any C compiler: ``$CC``, cc or gcc); returns its path."""
    output = output or DEFAULT_LIBRARY
    compiler = os.environ.get("CC") or shutil.which("cc") or shutil.which("gcc")
    if not compiler:
        raise RuntimeError("no C compiler (set CC, or install gcc)")
    tmp = output.with_name(output.name + ".tmp")
    cmd = [compiler, "-O2", "-shared", "-fPIC", "-o", str(tmp), str(SOURCE), "-lm"]
    subprocess.run(cmd, check=True)
    tmp.replace(output)  # atomic: a running process keeps the file it mapped
    return output


def load() -> ctypes.CDLL | None:
    """The library, or None when it is switched off or not built (logged once)."""
    global _loaded, _load_tried
    if _load_tried:
        return _loaded
    _load_tried = True
    if os.environ.get(SWITCH_ENV, "1") == "0":
        log.info("native converter switched off (%s=0)", SWITCH_ENV)
        return None
    path = library_path()
    if not path.exists():
        log.info("native converter not built (%s); using the numpy and Arrow path", path)
        return None
    if path == DEFAULT_LIBRARY and SOURCE.exists() and SOURCE.stat().st_mtime > path.stat().st_mtime:
        log.warning("native converter %s is older than its source; using the numpy and Arrow path", path)
        return None
    lib = ctypes.CDLL(str(path))
    lib.mrf_new.restype = _P
    lib.mrf_new.argtypes = [ctypes.c_int]
    lib.mrf_free.argtypes = [_P]
    lib.mrf_set_refs.argtypes = [_P, _I64, _P, _P, _P, _I64, _P, _P, _P, _P, _P, _P, _P, _P]
    lib.mrf_items.argtypes = [_P, ctypes.c_char_p, _I64, _I64]
    for name in ("mrf_unresolved", "mrf_rows_added", "mrf_err_item", "mrf_scan_depth"):
        getattr(lib, name).restype = _I64
        getattr(lib, name).argtypes = [_P]
    lib.mrf_scan_in_string.argtypes = [_P]
    lib.mrf_bucket_sizes.argtypes = [_P, ctypes.c_int, _P]
    lib.mrf_bucket_nulls.argtypes = [_P, ctypes.c_int, _P]
    lib.mrf_take_bucket.argtypes = [_P, ctypes.c_int] + [_P] * 11
    lib.mrf_scan.restype = _I64
    lib.mrf_scan.argtypes = [_P, ctypes.c_char_p, _I64, _P, _P, _P, _I64]
    _loaded = lib
    return lib


class _Handle:
    """A C context, freed with its owner."""

    def __init__(self, lib: ctypes.CDLL, buckets: int) -> None:
        self.lib = lib
        self.ptr = lib.mrf_new(buckets)
        if not self.ptr:
            raise MemoryError("mrf_new failed")

    def __del__(self) -> None:
        if getattr(self, "ptr", None):
            self.lib.mrf_free(self.ptr)
            self.ptr = None


def _ptr(array: np.ndarray) -> int:
    return array.ctypes.data


class Scanner:
    """The splitter's scan (see :meth:`json_split.JsonSplitter._events`) in C."""

    def __init__(self, lib: ctypes.CDLL) -> None:
        self._h = _Handle(lib, 1)

    def scan(self, block: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray] | int:
        """(positions, characters, depth before) of the events, or the position where the
        depth went negative."""
        cap = len(block) + 1
        # worst case one event per byte; the arrays are only touched where written
        pos = np.empty(cap, dtype=np.int64)
        chars = np.empty(cap, dtype=np.uint8)
        before = np.empty(cap, dtype=np.int64)
        n = self._h.lib.mrf_scan(self._h.ptr, block, len(block), _ptr(pos), _ptr(chars), _ptr(before), cap)
        if n < 0:
            return int(pos[0])
        return pos[:n].copy(), chars[:n].copy(), before[:n].copy()

    @property
    def depth(self) -> int:
        return int(self._h.lib.mrf_scan_depth(self._h.ptr))

    @property
    def in_string(self) -> bool:
        return bool(self._h.lib.mrf_scan_in_string(self._h.ptr))


def _string_array(count: int, offsets: np.ndarray, data: np.ndarray) -> pa.Array:
    return pa.StringArray.from_buffers(count, pa.py_buffer(offsets), pa.py_buffer(data))


def _bitmap(valid: np.ndarray) -> pa.Buffer:
    return pa.py_buffer(np.packbits(valid, bitorder="little"))


@dataclass
class NativePart:
    """One bucket's rows of a batch, as copied out of C (nothing Arrow yet)."""

    num_rows: int
    text_idx: list[np.ndarray]
    text_dicts: list[tuple[int, np.ndarray, np.ndarray]]
    group_id: np.ndarray
    npi: np.ndarray
    rate: np.ndarray
    lists: list[tuple[np.ndarray, np.ndarray, np.ndarray, tuple[int, np.ndarray, np.ndarray]]]
    nulls: list[int]  # per text column, group id, NPI, then per list column

    def table(self, header: tuple, source_file: str) -> pa.Table:
        """The rows as OUTPUT_SCHEMA-named columns, typed as :meth:`FlatBatch.table` types them."""
        n = self.num_rows
        constants = constant_columns(header, source_file, n)
        columns = []
        for field in OUTPUT_SCHEMA:
            name = field.name
            if name in constants:
                columns.append(constants[name])
            elif name in TEXT_COLUMNS:
                i = TEXT_COLUMNS.index(name)
                idx, nulls, bitmap = self.text_idx[i], self.nulls[i], None
                if nulls:
                    valid = idx >= 0
                    bitmap, idx = _bitmap(valid), np.where(valid, idx, 0).astype(np.int32, copy=False)
                indices = pa.Array.from_buffers(pa.int32(), n, [bitmap, pa.py_buffer(idx)], null_count=nulls)
                columns.append(pa.DictionaryArray.from_arrays(indices, _string_array(*self.text_dicts[i]), safe=False))
            elif name in ("provider_group_id", "npi"):
                values = self.group_id if name == "provider_group_id" else self.npi
                nulls = self.nulls[len(TEXT_COLUMNS) + (name == "npi")]
                bitmap = _bitmap(values != NULL_INT) if nulls else None
                columns.append(pa.Array.from_buffers(pa.int64(), n, [bitmap, pa.py_buffer(values)], null_count=nulls))
            elif name == "negotiated_rate":
                columns.append(pa.array(self.rate, pa.float64()))
            else:
                j = LIST_COLUMNS.index(name)
                offsets, valid, values, (count, dict_offsets, dict_bytes) = self.lists[j]
                elements = pa.DictionaryArray.from_arrays(
                    pa.array(values), _string_array(count, dict_offsets, dict_bytes), safe=False
                )  # list<dictionary>, as arrow_grain.dictionary_list makes them
                nulls = self.nulls[len(TEXT_COLUMNS) + 2 + j]
                bitmap = _bitmap(valid.view(bool)) if nulls else None
                columns.append(
                    pa.ListArray.from_buffers(
                        _LIST_TYPE, n, [bitmap, pa.py_buffer(offsets)], null_count=nulls, children=[elements]
                    )
                )
        return pa.Table.from_arrays(columns, names=list(OUTPUT_SCHEMA.names))


class NativeItems:
    """Batches of in_network items to per-bucket rows, in C."""

    def __init__(self, lib: ctypes.CDLL, buckets: int) -> None:
        self.buckets = buckets
        self._h = _Handle(lib, buckets)
        self.lib = lib
        self.rows = self.unresolved = 0
        self.fallback_item: int | None = None

    def set_references(self, index) -> None:
        """Copy a :class:`arrow_grain.ReferenceIndex` into C."""
        import pyarrow.compute as pc

        n_rows = len(index.npi)
        npi_valid = np.asarray(index.npi.is_valid().to_numpy(zero_copy_only=False), dtype=np.uint8)
        npi = np.ascontiguousarray(pc.fill_null(index.npi, 0).to_numpy(zero_copy_only=False), dtype=np.int64)
        texts = []
        for arr in (index.tin_type, index.tin_value):
            arr = pa.concat_arrays([arr.cast(pa.string())]) if n_rows else pa.array([""], pa.string())
            _, off, data = arr.buffers()
            offsets = np.frombuffer(off, dtype=np.int32)[: len(arr) + 1].copy()
            raw = np.frombuffer(data, dtype=np.uint8) if data is not None else np.zeros(1, np.uint8)
            valid = np.asarray(arr.is_valid().to_numpy(zero_copy_only=False), dtype=np.uint8)
            texts.append((offsets, raw, valid))
        ids = np.ascontiguousarray(index.ids, dtype=np.int64)
        start = np.ascontiguousarray(index.start, dtype=np.int64)
        count = np.ascontiguousarray(index.count, dtype=np.int64)
        keep = [ids, start, count, npi, npi_valid, texts]  # alive through the call
        status = self.lib.mrf_set_refs(
            self._h.ptr, len(ids), _ptr(ids), _ptr(start), _ptr(count), n_rows, _ptr(npi), _ptr(npi_valid),
            _ptr(texts[0][0]), _ptr(texts[0][1]), _ptr(texts[0][2]),
            _ptr(texts[1][0]), _ptr(texts[1][1]), _ptr(texts[1][2]),
        )  # fmt: skip
        del keep
        if status:
            raise MemoryError("mrf_set_refs failed")

    def convert(self, ndjson: bytes, count: int) -> bool:
        """Add a batch's rows to the buckets; False (nothing added) when the Arrow path must
        take the batch. ``rows`` and ``unresolved`` then count what it added."""
        status = self.lib.mrf_items(self._h.ptr, ndjson, len(ndjson), count)
        if status == 2:
            raise MemoryError("mrf_items: out of memory")
        if status:
            self.fallback_item = int(self.lib.mrf_err_item(self._h.ptr))
            return False
        self.rows = int(self.lib.mrf_rows_added(self._h.ptr))
        self.unresolved = int(self.lib.mrf_unresolved(self._h.ptr))
        return True

    def take(self, min_rows: int = 1) -> list[tuple[int, NativePart]]:
        """The rows of every bucket holding at least ``min_rows``, taken out of C."""
        parts = []
        sizes = np.zeros(_SIZES, dtype=np.int64)
        for bucket in range(self.buckets):
            self.lib.mrf_bucket_sizes(self._h.ptr, bucket, _ptr(sizes))
            if sizes[0] and sizes[0] >= min_rows:
                parts.append((bucket, self._take(bucket, sizes)))
        return parts

    def _take(self, bucket: int, sizes: np.ndarray) -> NativePart:
        n = int(sizes[0])
        text_idx = [np.empty(n, dtype=np.int32) for _ in TEXT_COLUMNS]
        text_dicts = []
        for i in range(len(TEXT_COLUMNS)):
            count, nbytes = int(sizes[1 + 2 * i]), int(sizes[2 + 2 * i])
            text_dicts.append((count, np.empty(count + 1, dtype=np.int32), np.empty(max(nbytes, 1), dtype=np.uint8)))
        group_id, npi, rate = np.empty(n, np.int64), np.empty(n, np.int64), np.empty(n, np.float64)
        lists = []
        base = 1 + 2 * len(TEXT_COLUMNS)
        for j in range(len(LIST_COLUMNS)):
            elements, count, nbytes = (int(v) for v in sizes[base + 3 * j : base + 3 * j + 3])
            lists.append((
                np.empty(n + 1, np.int32), np.empty(n, np.uint8), np.empty(max(elements, 1), np.int32),
                (count, np.empty(count + 1, np.int32), np.empty(max(nbytes, 1), np.uint8)),
            ))  # fmt: skip
        nulls = np.zeros(len(TEXT_COLUMNS) + 2 + len(LIST_COLUMNS), dtype=np.int64)
        self.lib.mrf_bucket_nulls(self._h.ptr, bucket, _ptr(nulls))
        arr = ctypes.c_void_p * len(TEXT_COLUMNS)
        lst = ctypes.c_void_p * len(LIST_COLUMNS)
        self.lib.mrf_take_bucket(
            self._h.ptr, bucket,
            arr(*(_ptr(a) for a in text_idx)), arr(*(_ptr(d[1]) for d in text_dicts)),
            arr(*(_ptr(d[2]) for d in text_dicts)), _ptr(group_id), _ptr(npi), _ptr(rate),
            lst(*(_ptr(x[0]) for x in lists)), lst(*(_ptr(x[1]) for x in lists)), lst(*(_ptr(x[2]) for x in lists)),
            lst(*(_ptr(x[3][1]) for x in lists)), lst(*(_ptr(x[3][2]) for x in lists)),
        )  # fmt: skip
        lists = [(o, v, vals[: o[-1]], d) for o, v, vals, d in lists]
        return NativePart(n, text_idx, text_dicts, group_id, npi, rate, lists, nulls.tolist())


def main(argv: list[str]) -> int:
    if argv[:1] == ["build"]:
        print(build())
        return 0
    print("usage: python -m spark_jobs.mrf.native build", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
