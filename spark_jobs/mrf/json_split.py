"""Streaming splitter for one huge JSON object: its big top-level arrays become NDJSON batches.

A price-transparency file is a single object whose ``provider_references`` and ``in_network``
arrays hold gigabytes. This module never parses the object as a whole. It scans blocks of
bytes with numpy (vectorised, so the per-byte work is native): it finds quotes not escaped by
a backslash, keeps the structural characters outside strings, and tracks the nesting depth
with a cumulative sum. Commas at the depth of a streamed array's elements become newlines, so
the elements come out as newline-delimited JSON that a native parser (``pyarrow.json``) reads
in parallel. Everything else in the top-level object (the plan header) is small and parsed
with ``json`` when its member ends.

Memory is one block plus the unfinished element at its end (a single element larger than
``max_element_bytes`` is refused rather than buffered without bound).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field

import numpy as np

QUOTE, BACKSLASH = 0x22, 0x5C
OPENERS = b"{["
CLOSERS = b"}]"
_EVENT = np.zeros(256, dtype=np.int8)  # 1: structural, 2: quote, 3: backslash
for _c in b"{}[],:":
    _EVENT[_c] = 1
_EVENT[QUOTE] = 2
_EVENT[BACKSLASH] = 3
_DELTA = np.zeros(256, dtype=np.int64)
for _c in OPENERS:
    _DELTA[_c] = 1
for _c in CLOSERS:
    _DELTA[_c] = -1
_NEWLINES_TO_SPACES = bytes.maketrans(b"\n\r", b"  ")


class JsonSplitError(ValueError):
    """Malformed JSON; ``offset`` is the byte offset (in the uncompressed text) where it shows."""

    def __init__(self, message: str, offset: int) -> None:
        super().__init__(f"{message} at byte offset {offset:,}")
        self.offset = offset


@dataclass
class Batch:
    """Complete elements of the top-level array ``key``, one per line."""

    key: str
    ndjson: bytes
    first_index: int  # index of the first element in its array
    count: int
    offset: int  # byte offset of the first element (uncompressed)


@dataclass
class _State:
    depth: int = 0
    in_string: bool = False
    escape_next: bool = False  # the previous block ended with an unescaped backslash
    member: bytearray = field(default_factory=bytearray)  # current top-level member, when not streamed
    streaming: str | None = None  # key of the array being streamed
    pending: bytearray = field(default_factory=bytearray)  # unfinished element of that array
    pending_offset: int = 0
    index: int = 0  # elements emitted so far for the streamed array
    key: str | None = None  # key of the current top-level member once its ':' is seen
    seen_top: bool = False
    closed: bool = False


class JsonSplitter:
    """Feed blocks with :meth:`feed`; collect :class:`Batch` objects and the ``header``.

    ``stream_keys`` are the top-level arrays to split; every other top-level member is
    parsed into ``header`` (key -> value) when it ends, so a caller can tell which members
    came before the streamed arrays.
    """

    def __init__(
        self,
        stream_keys: Iterable[str],
        batch_bytes: int = 32 << 20,
        max_element_bytes: int = 512 << 20,
        scanner=None,
    ) -> None:
        self.stream_keys = frozenset(stream_keys)
        self.batch_bytes = batch_bytes
        self.max_element_bytes = max_element_bytes
        self.header: dict[str, object] = {}
        self.arrays_seen: list[str] = []
        self.offset = 0  # bytes consumed so far
        self._s = _State()
        self._out: list[bytes] = []
        self._out_bytes = 0
        self._out_first = 0
        self._out_count = 0
        self._out_offset = 0
        self._scanner = scanner

    # -- scanning ---------------------------------------------------------------------------
    def _events(self, block: bytes) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Positions, characters and depth-before of the structural characters outside strings.

        With a native ``scanner`` (:class:`mrf_native.Scanner`) only the events :meth:`feed`
        acts on come back: those at depth 0 or 1, and ',' or ']' at depth 2.
        """
        s = self._s
        if self._scanner is not None:
            found = self._scanner.scan(block)
            if isinstance(found, int):
                raise JsonSplitError(f"unbalanced {chr(block[found])!r}", self.offset + found)
            s.depth, s.in_string = self._scanner.depth, self._scanner.in_string
            return found
        raw = np.frombuffer(block, dtype=np.uint8)
        kinds = _EVENT[raw]
        pos = np.flatnonzero(kinds)
        chars = raw[pos]
        kind = kinds[pos]
        escaped_quotes = None
        slashes = np.flatnonzero(kind == 3)
        if len(slashes) or s.escape_next:
            escaped = set()  # absolute-in-block positions of escaped characters
            if s.escape_next:
                escaped.add(0)
            for p in pos[slashes].tolist():
                if p not in escaped:
                    escaped.add(p + 1)
            s.escape_next = len(block) in escaped
            if escaped:
                # a mask over the block: one lookup per event instead of a sort (np.isin)
                marks = np.zeros(len(block) + 1, dtype=bool)
                marks[np.fromiter(escaped, dtype=np.int64, count=len(escaped))] = True
                escaped_quotes = marks[pos]
        quote = kind == 2
        if escaped_quotes is not None:
            quote &= ~escaped_quotes
        parity = np.cumsum(quote, dtype=np.int64)
        if s.in_string:
            parity += 1
        outside = (kind == 1) & ((parity & 1) == 0)
        s.in_string = bool(parity[-1] & 1) if len(parity) else s.in_string
        pos, chars = pos[outside], chars[outside]
        delta = _DELTA[chars]
        after = np.cumsum(delta) + s.depth
        before = after - delta
        if len(after):
            s.depth = int(after[-1])
            if int(after.min()) < 0:
                bad = int(np.argmax(after < 0))
                raise JsonSplitError(f"unbalanced {chr(int(chars[bad]))!r}", self.offset + int(pos[bad]))
        return pos, chars, before

    def feed(self, block: bytes) -> Iterator[Batch]:
        """Scan one block; yield the batches that became full."""
        s = self._s
        if self.offset == 0 and block.startswith(b"\xef\xbb\xbf"):
            block = b"   " + block[3:]  # a UTF-8 byte order mark
        if b"\n" in block or b"\r" in block:  # newlines are whitespace outside strings
            block = block.translate(_NEWLINES_TO_SPACES)
        if s.closed:
            if block.strip():
                raise JsonSplitError("data after the end of the top-level object", self.offset)
            self.offset += len(block)
            return
        pos, chars, before = self._events(block)
        # top-level structure (few per block): members of the object, and the ']' closing a
        # streamed array (depth 2 -> 1); element boundaries inside arrays are handled in bulk
        low = np.flatnonzero((before <= 1) | ((before == 2) & (chars == ord("]"))))
        cursor = 0
        for p, c in zip(pos[low].tolist(), chars[low].tolist(), strict=True):
            if s.streaming:
                if c != ord("]"):
                    raise JsonSplitError(f"unexpected {chr(c)!r} in array {s.streaming!r}", self.offset + p)
                yield from self._stream_segment(block, cursor, p, pos, chars, before, final=True)
                s.streaming = None
                cursor = p + 1
            elif not s.seen_top:
                if c != ord("{") or block[cursor:p].strip():
                    raise JsonSplitError("the input is not a JSON object", self.offset + p)
                s.seen_top = True
                cursor = p + 1
            elif c == ord(":"):
                s.member += block[cursor:p]
                try:
                    key = json.loads(bytes(s.member))
                except ValueError as exc:
                    raise JsonSplitError(f"bad top-level key ({exc})", self.offset + p) from None
                if not isinstance(key, str):
                    raise JsonSplitError("bad top-level key", self.offset + p)
                s.key, s.member = key, bytearray()
                cursor = p + 1
            elif c == ord("[") and s.key in self.stream_keys and not (s.member + block[cursor:p]).strip():
                s.member = bytearray()
                s.streaming, s.index, s.pending = s.key, 0, bytearray()
                s.pending_offset = self.offset + p + 1
                self.arrays_seen.append(s.key)
                cursor = p + 1
            elif c in (0x2C, 0x7D):  # "," or "}" between or after top-level members
                s.member += block[cursor:p]
                self._end_member(p)
                cursor = p + 1
                if c == ord("}"):
                    s.closed = True
                    if block[cursor:].strip():
                        raise JsonSplitError("data after the end of the top-level object", self.offset + cursor)
                    cursor = len(block)
            # any other event opens or closes a header value: it stays in the member's text
        if s.streaming:
            yield from self._stream_segment(block, cursor, None, pos, chars, before, final=False)
        elif s.seen_top and not s.closed:
            s.member += block[cursor:]
            if len(s.member) > self.max_element_bytes:
                raise JsonSplitError(f"top-level member {s.key!r} is larger than the limit", self.offset)
        self.offset += len(block)

    def _stream_segment(self, block, start, end, pos, chars, before, final) -> Iterator[Batch]:
        """Elements of the streamed array in ``block[start:end]`` (end None: to the block's end)."""
        s = self._s
        stop = len(block) if end is None else end
        sel = (before == 2) & (chars == ord(",")) & (pos >= start) & (pos < stop)
        seps = pos[sel]
        if len(seps):
            # one copy of the segment, its separators made newlines in place; the pieces go
            # to the batch as buffers and are copied once more when the batch is joined
            seg = bytearray(memoryview(block)[start:stop])
            rel = seps - start
            np.frombuffer(seg, dtype=np.uint8)[rel] = 0x0A  # a writable view: the separators become newlines
            last = int(rel[-1])
            view = memoryview(seg)
            if s.pending:
                self._emit(s.pending, 0)
            self._emit(view[: last + 1], len(rel))  # complete elements, each ending in a newline
            s.pending = bytearray(view[last + 1 :])
            s.pending_offset = self.offset + start + last + 1
        else:
            s.pending += memoryview(block)[start:stop]
        if len(s.pending) > self.max_element_bytes:
            raise JsonSplitError(
                f"one element of {s.streaming!r} is larger than {self.max_element_bytes:,} bytes", s.pending_offset
            )
        if final:
            if bytes(s.pending).strip():
                self._emit(bytes(s.pending) + b"\n", 1)
            elif s.index or self._out_count:
                raise JsonSplitError(f"trailing comma in array {s.streaming!r}", self.offset + stop)
            s.pending = bytearray()
            yield from self._flush()
        elif self._out_bytes >= self.batch_bytes:
            yield from self._flush()

    def _emit(self, ndjson, count: int) -> None:
        """Queue text for the batch: ``count`` complete elements (0: the start of the next one)."""
        s = self._s
        if not self._out:
            self._out_first = s.index
            self._out_offset = s.pending_offset
        self._out.append(ndjson)
        self._out_bytes += len(ndjson)
        self._out_count += count
        s.index += count

    def _flush(self) -> Iterator[Batch]:
        if self._out:
            key = self._s.streaming
            data = b"".join(self._out)
            batch = Batch(key, data, self._out_first, self._out_count, self._out_offset)
            self._out, self._out_bytes, self._out_count = [], 0, 0
            yield batch

    def _end_member(self, p: int) -> None:
        s = self._s
        text = bytes(s.member).strip()
        s.member = bytearray()
        if s.key is None:
            if text:
                raise JsonSplitError("top-level member without a key", self.offset + p)
            return
        if text:  # empty when the member was a streamed array
            try:
                value = json.loads(text)
            except ValueError as exc:
                raise JsonSplitError(f"bad value for {s.key!r} ({exc})", self.offset + p) from None
            self.header[s.key] = value
        s.key = None

    def finish(self) -> Iterator[Batch]:
        """Call at end of input: checks the object was complete."""
        s = self._s
        if s.streaming:
            raise JsonSplitError(f"input ends inside array {s.streaming!r} (element {s.index})", self.offset)
        if not s.closed:
            raise JsonSplitError("input ends before the top-level object is closed", self.offset)
        yield from ()
