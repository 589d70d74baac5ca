"""Convert one in-network-rates file (plain or gzip) to bucketed Parquet in bounded memory.

Three stages overlap, each in native code for its heavy part: a reader thread inflates
blocks (ISA-L or zlib, both release the interpreter lock); the calling thread splits them
into NDJSON batches (:mod:`json_split`) and turns each batch of in_network items into rows;
two writer threads encode Parquet. Rows come from the C fast path (:mod:`mrf_native`: scan,
parse and row grain in one pass, text as dictionary indices) where its library is built, and
from ``pyarrow.json`` plus the vectorised grain of :mod:`arrow_grain` otherwise, or for a batch
the C parser hands back. Queues between the stages are short, so memory stays at a few
blocks and batches whatever the file size.

Partitioning: ``billing_code_bucket = crc32(billing_code) % buckets`` (zlib's CRC-32 of the
UTF-8 code, the same value as Spark SQL's ``crc32``), so all rows of a billing code share one
bucket and a query for one code reads 1/buckets of the data: ``WHERE billing_code_bucket =
pmod(crc32('99213'), 16)``. Within a bucket, a file is closed once it reaches the target size.
"""

from __future__ import annotations

import io
import json
import logging
import queue
import re
import tempfile
import threading
import time
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.json as pj
import pyarrow.parquet as pq

from spark_jobs.common import storage
from spark_jobs.mrf import native as mrf_native
from spark_jobs.mrf.arrow_grain import GROUP, ITEM_SCHEMA, REFERENCE_SCHEMA, FlatBatch, ReferenceIndex, flatten_items
from spark_jobs.mrf.grain import HEADER_FIELDS, FlattenStats, MrfError, ProviderIndex, flatten_item, header_values
from spark_jobs.mrf.json_split import Batch, JsonSplitError, JsonSplitter

try:  # ISA-L inflates gzip about 2.5 times as fast as zlib, with the same API
    from isal import isal_zlib as _inflate_module
except ImportError:  # pragma: no cover - zlib is the fallback where isal is not installed
    _inflate_module = zlib

log = logging.getLogger("json_to_parquet")
STREAMED = ("provider_references", "in_network")
REQUIRED_HEADER = ("reporting_entity_name", "reporting_entity_type", "last_updated_on", "version")
BUCKET_COLUMN = "billing_code_bucket"
STATS_COLUMNS = ["billing_code", "npi", "negotiated_rate", "provider_group_id", "tin_value"]
# Parquet dictionaries for every column but the near-unique ids: NPIs and group ids written
# plain are smaller (8.4 MB against 12.7 MB for the NPIs of a 200 MB file) and cheaper.
PLAIN_COLUMNS = ("npi", "provider_group_id")
_NUMBER_AS_TEXT = re.compile(
    rb'("(?:billing_code|billing_code_type_version|value|negotiated_type|setting|expiration_date)"\s*:\s*)'
    rb"(-?[0-9][0-9.eE+-]*)"
)


@dataclass
class Options:
    buckets: int = 16
    target_file_bytes: int = 128 << 20
    batch_bytes: int = 16 << 20
    # The splitter's scan makes several arrays as long as a block's structural characters:
    # with 8 MB blocks a 1 GB file peaks at about 650 MB of RSS, against about 870 MB with
    # 16 MB blocks, at the same speed.
    block_bytes: int = 8 << 20
    compression: str = "zstd"
    # zstd's fast level -1: against the default level 1, 12% less CPU for the Parquet
    # writers and 11% larger files (39.9 MB against 35.9 MB for a 200 MB input; lz4: 48 MB)
    compression_level: int | None = -1
    progress_seconds: float = 10.0
    fetch_locations: bool = True
    native: bool = True  # the C fast path when its library is built (mrf_native)
    # Parquet is written by this many threads (encoding and compression release the
    # interpreter lock): the main thread's parse then never waits on a single writer
    writers: int = 2
    # the C path keeps a bucket's rows until it has this many, then writes them as one row
    # group: fewer, larger row groups cost less to encode (dictionary pages, statistics)
    row_group_rows: int = 32 << 10


@dataclass
class FileResult:
    source: str
    size: int
    items: int = 0
    provider_references: int = 0
    rows: int = 0
    unresolved_references: int = 0
    uncompressed_bytes: int = 0
    seconds: float = 0.0
    native_batches: int = 0  # in_network batches converted by the C fast path
    arrow_batches: int = 0  # ... and by the pyarrow path (no library, or a batch it handed back)
    files: list[dict] = field(default_factory=list)  # {"path": relative, "rows": n, "bytes": n}

    def as_dict(self) -> dict:
        return dict(self.__dict__)


# -- reading --------------------------------------------------------------------------------


class SourceReader:
    """Uncompressed blocks of a source, read and inflated in a background thread."""

    def __init__(self, uri: str, block_bytes: int) -> None:
        self.uri = uri
        self.block_bytes = block_bytes
        self.compressed_read = 0
        self.gzip = False
        self._queue: queue.Queue = queue.Queue(maxsize=3)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="mrf-reader", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        try:
            fs, path = storage.filesystem(self.uri)
            with fs.open_input_stream(path, compression=None) as raw:
                first = raw.read(self.block_bytes)
                self.gzip = first[:2] == b"\x1f\x8b"
                chunks = self._inflate(raw, first) if self.gzip else self._plain(raw, first)
                for block in chunks:
                    if self._stop.is_set():
                        return
                    self._queue.put(block)
            self._queue.put(None)
        except BaseException as exc:  # handed to the consumer, which raises it
            self._queue.put(exc)

    def _plain(self, raw, first: bytes) -> Iterator[bytes]:
        data = first
        while data:
            self.compressed_read += len(data)
            yield data
            data = raw.read(self.block_bytes)

    def _inflate(self, raw, first: bytes) -> Iterator[bytes]:
        inflater = _inflate_module.decompressobj(wbits=31)
        data = first
        out_total = 0
        while True:
            if not data:
                if not inflater.eof:
                    raise MrfError(
                        f"{self.uri}: truncated gzip: the stream ends after {self.compressed_read:,} compressed "
                        f"bytes ({out_total:,} uncompressed) without its end marker"
                    )
                return
            self.compressed_read += len(data)
            pending = data
            while pending:
                try:
                    out = inflater.decompress(pending, self.block_bytes)
                except _inflate_module.error as exc:
                    raise MrfError(
                        f"{self.uri}: corrupt gzip near compressed byte {self.compressed_read:,} "
                        f"(uncompressed offset {out_total:,}): {exc}"
                    ) from None
                out_total += len(out)
                if out:
                    yield out
                if inflater.eof:
                    rest = inflater.unused_data
                    if rest.strip(b"\0"):  # another gzip member follows (concatenated .gz)
                        inflater = _inflate_module.decompressobj(wbits=31)
                        pending = rest
                        continue
                    pending = b""
                else:
                    pending = inflater.unconsumed_tail
            data = raw.read(self.block_bytes)

    def blocks(self) -> Iterator[bytes]:
        while True:
            item = self._queue.get()
            if item is None:
                return
            if isinstance(item, BaseException):
                raise item
            yield item

    def close(self) -> None:
        self._stop.set()
        while self._thread.is_alive():
            try:
                self._queue.get(timeout=0.1)
            except queue.Empty:
                pass


# -- writing --------------------------------------------------------------------------------


def _dictionary_columns(schema: pa.Schema) -> list[str]:
    """Parquet column paths to dictionary-encode: all but PLAIN_COLUMNS (lists by their element)."""
    return [
        f"{f.name}.list.element" if pa.types.is_list(f.type) else f.name for f in schema if f.name not in PLAIN_COLUMNS
    ]


class BucketWriter:
    """One rolling Parquet file per bucket under ``root`` (a staging location)."""

    def __init__(self, fs, root: str, prefix: str, options: Options) -> None:
        self.fs, self.root, self.prefix, self.options = fs, root, prefix, options
        self._open: dict[int, tuple[pq.ParquetWriter, object, str, list]] = {}
        self._next: dict[int, int] = {}
        self.files: list[dict] = []

    def write(self, bucket: int, table: pa.Table) -> None:
        if bucket not in self._open:
            n = self._next.get(bucket, 0)
            self._next[bucket] = n + 1
            rel = f"{BUCKET_COLUMN}={bucket:02d}/{self.prefix}-{n:05d}.parquet"
            if storage.is_local(self.fs):
                self.fs.create_dir(f"{self.root}/{BUCKET_COLUMN}={bucket:02d}", recursive=True)
            sink = self.fs.open_output_stream(f"{self.root}/{rel}")
            writer = pq.ParquetWriter(
                sink,
                table.schema,
                compression=self.options.compression,
                compression_level=self.options.compression_level if self.options.compression == "zstd" else None,
                store_schema=False,  # readers see plain strings, not the in-memory dictionaries
                use_dictionary=_dictionary_columns(table.schema),
                write_statistics=STATS_COLUMNS,
                # the encoder's inner batch: the default 1,024 values costs about 15% more CPU
                write_batch_size=64 << 10,
            )
            self._open[bucket] = (writer, sink, rel, [0])
        writer, sink, rel, rows = self._open[bucket]
        writer.write_table(table, row_group_size=1 << 20)
        rows[0] += table.num_rows
        if sink.tell() >= self.options.target_file_bytes:
            self._close(bucket)

    def _close(self, bucket: int) -> None:
        writer, sink, rel, rows = self._open.pop(bucket)
        writer.close()
        size = sink.tell()
        sink.close()
        self.files.append({"path": rel, "rows": rows[0], "bytes": size})

    def close(self) -> list[dict]:
        for bucket in list(self._open):
            self._close(bucket)
        return sorted(self.files, key=lambda f: f["path"])


# -- progress -------------------------------------------------------------------------------


class Progress:
    def __init__(self, result: FileResult, reader: SourceReader, every: float) -> None:
        self.result, self.reader, self.every = result, reader, every
        self.start = self.last = time.monotonic()

    def tick(self, uncompressed: int, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last < self.every:
            return
        self.last = now
        r, read = self.result, self.reader.compressed_read
        elapsed = max(now - self.start, 1e-9)
        log.info(
            "%s: %.1f of %.1f MB read (%.0f%%), %.1f MB of JSON, %s items, %s rows, %.1f MB/s",
            r.source, read / 1e6, r.size / 1e6, 100.0 * read / max(r.size, 1), uncompressed / 1e6,
            f"{r.items:,}", f"{r.rows:,}", uncompressed / 1e6 / elapsed,
        )  # fmt: skip


# -- converting -----------------------------------------------------------------------------


def _parse(batch: Batch, schema: pa.Schema) -> pa.Table:
    options = pj.ParseOptions(explicit_schema=schema, unexpected_field_behavior="ignore")
    return pj.read_json(io.BytesIO(batch.ndjson), read_options=pj.ReadOptions(block_size=4 << 20),
                        parse_options=options)  # fmt: skip


class Converter:
    """Streams one source into a :class:`BucketWriter`; see the module docstring."""

    def __init__(self, source: str, size: int, writer: BucketWriter, options: Options,
                 source_name: str | None = None) -> None:  # fmt: skip
        self.source, self.options, self.writer = source, options, writer
        self.source_name = source_name or source
        self.result = FileResult(source=source, size=size)
        self.reference_tables: list[pa.Table] = []
        self.index: ReferenceIndex | None = None
        self.header: tuple | None = None
        self.deferred: list[Batch] | None = None
        self._spill = None
        self._location_cache: dict[str, list | None] = {}
        self._failed_hosts: set[str] = set()
        # a few bucket parts per writer: rows are made while earlier ones are encoded; bucket b
        # is written by writer b % writers, so each file's rows keep their order
        self._write_queues: list[queue.Queue] = [
            queue.Queue(maxsize=max(options.buckets // options.writers, 1)) for _ in range(options.writers)
        ]
        self._write_error: BaseException | None = None
        self._writer_threads = [
            threading.Thread(target=self._write_loop, args=(q,), name=f"mrf-writer-{i}", daemon=True)
            for i, q in enumerate(self._write_queues)
        ]
        # in_network batches become rows in their own thread, in input order, while this one
        # reads and splits the next blocks (the C calls release the interpreter lock)
        self._items_queue: queue.Queue = queue.Queue(maxsize=2)
        self._items_error: BaseException | None = None
        self._items_thread = threading.Thread(target=self._items_loop, name="mrf-items", daemon=True)
        lib = mrf_native.load() if options.native else None
        self.native = mrf_native.NativeItems(lib, max(options.buckets, 1)) if lib else None
        self._scanner = mrf_native.Scanner(lib) if lib else None
        self._native_index: ReferenceIndex | None = None
        self.native_batches = 0
        self.fallback_batches = 0  # handed back by the C parser
        self.arrow_batches = 0

    # errors name the source and the place
    def _fail(self, message: str) -> MrfError:
        return MrfError(f"{self.source}: {message}")

    def run(self) -> FileResult:
        started = time.monotonic()
        reader = SourceReader(self.source, self.options.block_bytes)
        progress = Progress(self.result, reader, self.options.progress_seconds)
        splitter = JsonSplitter(STREAMED, batch_bytes=self.options.batch_bytes, scanner=self._scanner)
        for thread in self._writer_threads:
            thread.start()
        self._items_thread.start()
        completed = False
        try:
            for block in reader.blocks():
                for batch in splitter.feed(block):
                    self._handle(batch, splitter)
                self._check_writer()
                progress.tick(splitter.offset)
            list(splitter.finish())
            self._finish(splitter)
            completed = True
        except JsonSplitError as exc:
            raise self._fail(f"malformed JSON: {exc}") from None
        finally:
            reader.close()
            self._items_queue.put(("end", completed))
            self._items_thread.join()
            for q in self._write_queues:
                q.put(None)
            for thread in self._writer_threads:
                thread.join()
        self._check_writer()
        self.result.uncompressed_bytes = splitter.offset
        self.result.seconds = time.monotonic() - started
        self.result.native_batches = self.native_batches
        self.result.arrow_batches = self.arrow_batches
        progress.tick(splitter.offset, force=True)
        if self.native is not None and self.fallback_batches:
            log.info("%s: %d of %d in_network batches took the Arrow path (shapes the C parser leaves to it)",
                     self.source, self.fallback_batches, self.fallback_batches + self.native_batches)  # fmt: skip
        return self.result

    def _handle(self, batch: Batch, splitter: JsonSplitter) -> None:
        if batch.key == "provider_references":
            self.reference_tables.append(self._references(batch))
            self.result.provider_references += batch.count
            return
        if self.header is None:
            self._start_items(splitter)
        if self.deferred is not None and (self.index is None or self.header is None):
            if self.header is not None:
                items = self._parse_items(batch)
                refs = items.column("negotiated_rates").combine_chunks().flatten().field("provider_references")
                if not len(refs.flatten()):  # inline groups only: nothing to wait for
                    self._convert(batch, items)
                    return
            self._defer(batch)
            return
        self._convert(batch)

    def _start_items(self, splitter: JsonSplitter) -> None:
        """First in_network batch: fix the header, and the reference index if it is complete."""
        missing = [name for name in REQUIRED_HEADER if name not in splitter.header]
        if "provider_references" in splitter.arrays_seen:
            self.index = ReferenceIndex.build(self.reference_tables)
        if missing or self.index is None:
            # the header or the references come after in_network: hold items on local disk
            # (not in memory) until the end of the file
            log.warning("%s: %s after in_network; items are spooled to disk until the end", self.source,
                        "header fields" if missing else "provider_references (if any) come")  # fmt: skip
            self.deferred = []
            self._spill = tempfile.TemporaryFile(prefix="mrf-spill-")
            if not missing:
                self.header = header_values(splitter.header, self.source)
            return
        self.header = header_values(splitter.header, self.source)

    def _defer(self, batch: Batch) -> None:
        assert self._spill is not None and self.deferred is not None
        start = self._spill.tell()
        self._spill.write(batch.ndjson)
        self.deferred.append(Batch(batch.key, b"", batch.first_index, batch.count, batch.offset))
        self.deferred[-1].ndjson = (start, len(batch.ndjson))  # type: ignore[assignment]

    def _finish(self, splitter: JsonSplitter) -> None:
        if "in_network" not in splitter.arrays_seen:
            raise self._fail("no in_network array in the file (is it an in-network-rates file?)")
        if self.deferred is None and self.header is not None:
            values = header_values(splitter.header, self.source)
            if values != self.header:
                changed = [n for n, a, b in zip(HEADER_FIELDS, self.header, values, strict=True) if a != b]
                raise self._fail(f"header fields {changed} appear after in_network; they would be missing from "
                                 "rows already written")  # fmt: skip
        if self.deferred is not None:
            missing = [name for name in REQUIRED_HEADER if name not in splitter.header]
            if missing:
                raise self._fail(f"required header fields missing: {missing}")
            self.header = header_values(splitter.header, self.source)
            self.index = ReferenceIndex.build(self.reference_tables)
            for batch in self.deferred:
                start, length = batch.ndjson  # type: ignore[misc]
                self._spill.seek(start)
                self._convert(Batch(batch.key, self._spill.read(length), batch.first_index, batch.count, batch.offset))
            self._spill.close()

    def _references(self, batch: Batch) -> pa.Table:
        try:
            table = _parse(batch, REFERENCE_SCHEMA)
        except pa.ArrowInvalid as exc:
            raise self._locate(batch, exc) from None
        if table.num_rows != batch.count:
            raise self._fail(f"provider_references[{batch.first_index}..]: parsed {table.num_rows} of {batch.count}")
        locations = table.column("location").combine_chunks()
        groups = table.column("provider_groups").combine_chunks()
        if pc.list_flatten(pc.list_flatten(groups).field("npi")).null_count:
            raise self._locate(batch, ValueError("an npi list holds a null"))
        need = np.flatnonzero(
            np.asarray(groups.is_null().to_numpy(zero_copy_only=False), bool)
            & np.asarray(locations.is_valid().to_numpy(zero_copy_only=False), bool)
        )
        if len(need) and self.options.fetch_locations:
            filled = groups.to_pylist()
            for i in need.tolist():
                filled[i] = self._load_location(locations[i].as_py())
            table = table.set_column(1, "provider_groups", pa.array(filled, pa.list_(GROUP)))
        return table

    def _load_location(self, url: str) -> list | None:
        """provider_groups of a separately published provider file; None when it cannot be read."""
        if url in self._location_cache:
            return self._location_cache[url]
        from urllib.parse import urlparse
        from urllib.request import urlopen

        host = urlparse(url).netloc
        groups = None
        if host not in self._failed_hosts:
            try:
                if url.startswith(("http://", "https://")):
                    with urlopen(url, timeout=5) as response:  # noqa: S310 (a URL the file names)
                        doc = json.loads(response.read())
                else:
                    fs, path = storage.filesystem(url)
                    with fs.open_input_stream(path) as f:
                        doc = json.loads(f.read())
                groups = doc.get("provider_groups") if isinstance(doc, dict) else None
                ProviderIndex().add({"provider_group_id": 0, "provider_groups": groups}, url)  # type check
            except Exception as exc:  # unreachable or unreadable: counted as unresolved
                log.warning("%s: provider file %s not read (%s)", self.source, url, exc)
                self._failed_hosts.add(host)
                groups = None
        self._location_cache[url] = groups
        return groups

    def _parse_items(self, batch: Batch) -> pa.Table:
        try:
            return _parse(batch, ITEM_SCHEMA)
        except pa.ArrowInvalid as exc:
            if "changed from string to number" not in str(exc):
                raise self._locate(batch, exc) from None
        # codes published as numbers: kept as text, as the row grain says
        quoted = _NUMBER_AS_TEXT.sub(rb'\1"\2"', batch.ndjson)
        try:
            return _parse(Batch(batch.key, quoted, batch.first_index, batch.count, batch.offset), ITEM_SCHEMA)
        except pa.ArrowInvalid as exc:
            raise self._locate(batch, exc) from None

    def _convert(self, batch: Batch, items: pa.Table | None = None) -> None:
        """Hand a batch to the items thread (which converts batches in the order given)."""
        self._check_writer()
        self._items_queue.put((batch, items))

    def _items_loop(self) -> None:
        while True:
            batch, items = self._items_queue.get()
            if isinstance(batch, str):  # "end", with whether the input was read to its end
                if items and self._items_error is None:  # the input was read to its end
                    try:
                        self._flush_native()
                    except BaseException as exc:
                        self._items_error = exc
                return
            if self._items_error is not None:
                continue  # drain: the main thread raises the error at its next check
            try:
                self._convert_now(batch, items)
            except BaseException as exc:
                self._items_error = exc

    def _convert_now(self, batch: Batch, items: pa.Table | None = None) -> None:
        if items is None and self.native is not None and self._convert_native(batch):
            return
        self.arrow_batches += 1
        self._flush_native()  # rows the C path still holds go first: every file keeps the input's order
        if items is None:
            items = self._parse_items(batch)
        if items.num_rows != batch.count:
            raise self._fail(f"in_network[{batch.first_index}..]: parsed {items.num_rows} items of {batch.count}")
        codes = items.column("billing_code").to_pylist()
        buckets = np.fromiter(
            (zlib.crc32(c.encode()) % self.options.buckets if c is not None else 0 for c in codes),
            dtype=np.int64,
            count=len(codes),
        )
        # items grouped by bucket, so each bucket's rows (and the dictionaries of their text
        # columns) come from that bucket's items only
        order = np.argsort(buckets, kind="stable")
        grouped = items.take(pa.array(order))
        counts = np.bincount(buckets, minlength=self.options.buckets).tolist()
        start = 0
        for bucket, count in enumerate(counts):
            if not count:
                continue
            part = grouped.slice(start, count)
            start += count
            try:
                flat = flatten_items(part, self.index or ReferenceIndex.empty())
            except ValueError as exc:
                raise self._locate(batch, exc) from None
            self.result.rows += flat.num_rows
            self.result.unresolved_references += flat.unresolved_references
            self._queue_write(bucket, flat)
        self.result.items += batch.count

    def _convert_native(self, batch: Batch) -> bool:
        """The batch through the C fast path; False when it must take the Arrow path."""
        index = self.index or ReferenceIndex.empty()
        if self._native_index is not index:
            self.native.set_references(index)
            self._native_index = index
        if not self.native.convert(batch.ndjson, batch.count):
            self.fallback_batches += 1
            log.debug("%s: in_network[%d..] takes the Arrow path (item %d is outside the native parser's shape)",
                      self.source, batch.first_index, batch.first_index + (self.native.fallback_item or 0))  # fmt: skip
            return False
        self.native_batches += 1
        self.result.rows += self.native.rows
        self.result.unresolved_references += self.native.unresolved
        self.result.items += batch.count
        self._flush_native(self.options.row_group_rows)
        return True

    def _flush_native(self, min_rows: int = 1) -> None:
        """Queue the rows C holds for every bucket with at least ``min_rows`` of them."""
        if self.native is not None:
            for bucket, part in self.native.take(min_rows):
                self._queue_write(bucket, part)

    def _locate(self, batch: Batch, exc: Exception) -> MrfError:
        """Find the item a batch-level parse error came from, and say what is wrong with it."""
        lines = batch.ndjson.split(b"\n")
        offset = batch.offset
        providers = ProviderIndex()
        for i, line in enumerate(lines[: batch.count]):
            index = batch.first_index + i
            where = f"{batch.key}[{index}] (at byte offset {offset:,})"
            try:
                value = json.loads(line)
            except ValueError as err:
                return self._fail(f"{where}: malformed JSON: {err}")
            try:
                if batch.key == "in_network":
                    list(flatten_item(value, index, (None,) * len(HEADER_FIELDS), providers, self.source,
                                      FlattenStats()))  # fmt: skip
                else:
                    ProviderIndex().add(value, "reference")
            except MrfError as err:
                message = str(err)
                message = (
                    message.removeprefix("reference.") if batch.key != "in_network" else message.split(": ", 1)[-1]
                )
                return self._fail(f"{where}: {message}")
            offset += len(line) + 1
        return self._fail(f"{batch.key}[{batch.first_index}..{batch.first_index + batch.count - 1}] "
                          f"(from byte offset {batch.offset:,}): {exc}")  # fmt: skip

    # the writer thread: builds each batch's table in bucket order and writes it
    def _queue_write(self, bucket: int, rows: FlatBatch | mrf_native.NativePart) -> None:
        self._write_queues[bucket % len(self._write_queues)].put((bucket, rows))

    def _write_loop(self, jobs: queue.Queue) -> None:
        while True:
            job = jobs.get()
            if job is None:
                return
            if self._write_error is not None:
                continue
            try:
                self._write(*job)
            except BaseException as exc:
                self._write_error = exc

    def _write(self, bucket: int, flat: FlatBatch | mrf_native.NativePart) -> None:
        if flat.num_rows:
            self.writer.write(bucket, flat.table(self.header, self.source_name))

    def _check_writer(self) -> None:
        """Raise what went wrong in the items or a writer thread, if anything did."""
        if self._items_error is not None:
            raise self._items_error
        if self._write_error is not None:
            raise self._write_error


def convert(source: str, size: int, fs, staging_root: str, prefix: str, options: Options) -> FileResult:
    """Convert ``source`` into Parquet files under ``staging_root`` named ``<prefix>-NNNNN``."""
    writer = BucketWriter(fs, staging_root, prefix, options)
    converter = Converter(source, size, writer, options)
    try:
        result = converter.run()
    finally:
        files = writer.close()
    result.files = files
    return result
