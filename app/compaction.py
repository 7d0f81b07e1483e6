"""A compacted store file, written beside the saves (``app.storage``).

Room for the header first; then the record parts: the well-used old ones copied as they are
(no decryption: a part is bound to its own id, not to the file), the live records of the
others packed into new parts by type and patient; then the index entry; then the header,
over the room left for it. A compaction beside the saves hands the interpreter over often
and keeps to a write rate: a save's fsync waits for what the compaction wrote meanwhile.
"""

from __future__ import annotations

import os
import time
import zlib
from collections import Counter
from collections.abc import Iterable, Iterator
from itertools import islice, repeat
from operator import add, itemgetter
from typing import TYPE_CHECKING

from app.storeformat import (
    ENCODE,
    FRAME,
    HEADER_LEN,
    HOT,
    INDEX_KEY,
    PART_BYTES,
    PART_DOCS,
    PART_SHIFT,
    Data,
    Doc,
    Part,
    Records,
    groups,
    order,
    part_of,
    place_at,
    pos_of,
    runs,
)

if TYPE_CHECKING:
    from app.storage import JournalStorage

# A part is copied as it is while at least this share of it is live and it is not small;
# the live records of the others are packed again.
COPY_LIVE = 0.75
MIN_COPY_BYTES = PART_BYTES // 4
COPY_BYTES = 1 << 20  # the most copied with one read
COPY_RATE = 100e6  # bytes a second written at most beside the saves
# Hand the interpreter to other threads (a save, the UI's loop) this often, instead of making
# them wait for the 5 ms switch interval. It sleeps, if briefly: a thread that releases the
# interpreter and asks for it back at once mostly gets it back.
PAUSE_RECORDS = 1_024
WINDOW_DOCS = 4_096  # records packed again are ordered this many at a time
YIELD_DOCS = 32
YIELD_SECONDS = 0.0001


class Cancelled(Exception):
    """The store closed while a compaction was writing its new file."""


class Compacted:
    """A compacted file being written: room for the header, the record parts (well-used
    old parts copied as they are, the other live records packed into new ones), the index
    entry, then the header over the room left for it (``header``)."""

    def __init__(
        self,
        storage: JournalStorage,
        file_id: bytes,
        small: Data,
        records: Records,
        reader: int | None,
        cancellable: bool,
        repack: bool,
    ) -> None:
        self._storage, self._file_id, self._small = storage, file_id, small
        self._old, self._reader, self._cancellable = records, reader, cancellable
        self._repack = repack
        self.records = Records()
        self.sizes: dict[str, dict[str, int]] = {}
        self.size = 0
        self._index_at = 0
        self._written, self._started = 0, time.perf_counter()

    def header(self) -> bytes:
        """The file's header, once the index is written."""
        return self._storage._header(self._file_id, self._index_at)

    def chunks(self) -> Iterator[bytes | memoryview]:
        """The file's bytes, a part at a time (the header's room first)."""
        yield bytes(HEADER_LEN)
        at = HEADER_LEN
        old, new = self._old, self.records
        # Mapped in C (these loops run for every record): a place shifted is its part.
        live = Counter(map(PART_SHIFT.__rrshift__, map(itemgetter(0), old.places.values())))
        live.pop(HOT >> PART_SHIFT, None)
        self._pause()
        kept: dict[int, int] = {}  # old part number -> new part number
        copied = [
            number
            for number, count in sorted(live.items())
            if not self._repack
            and count >= COPY_LIVE * old.parts[number].docs
            and (
                old.parts[number].docs >= PART_DOCS // 2
                or old.parts[number].length >= MIN_COPY_BYTES
            )
        ]
        for run in runs([old.parts[n] for n in copied], COPY_BYTES):
            self._check()
            assert self._reader is not None
            first = run[0]
            data = os.pread(self._reader, run[-1].at + run[-1].length - first.at, first.at)
            for part in run:
                kept[copied[len(kept)]] = len(new.parts)
                new.parts.append(Part(part.id, at + part.at - first.at, part.length, part.docs))
            yield data
            at += len(data)
            self._pause(len(data))
        packed: dict[str, tuple[int, str]] = {}  # record id -> new place, summary
        for group in groups(self._fresh(kept, live)):
            self._check()
            pid = os.urandom(16)
            sealed = self._storage._seal_part(pid, [encoded for _, encoded in group])
            for pos, ((record_id, size, summary), _) in enumerate(group):
                packed[record_id] = (place_at(len(new.parts), pos, size), summary)
            new.parts.append(Part(pid, at, len(sealed), len(group)))
            yield sealed
            at += len(sealed)
            self._pause(len(sealed))
        new.places = self._moved(kept, packed)
        self._index_at = at
        entry = self._index_entry()
        self.size = at + sum(map(len, entry))
        for piece in entry:
            view = memoryview(piece)
            for start in range(0, len(view), COPY_BYTES):
                yield view[start : start + COPY_BYTES]
                self._pause(min(COPY_BYTES, len(view) - start))

    def _moved(
        self, kept: dict[int, int], packed: dict[str, tuple[int, str]]
    ) -> dict[str, tuple[int, str]]:
        """Every record's new place (and summary), in the order stored: a record of a kept
        part moves with its part (its place plus the part's shift), the others are where
        they were packed. Mapped in C, a slice at a time: it runs for every record."""
        shift = {o: (n - o) << PART_SHIFT for o, n in kept.items()}
        shift[HOT >> PART_SHIFT] = 0  # placeholders: packed records are placed after
        places: dict[str, tuple[int, str]] = {}
        items = iter(self._old.places.items())
        while chunk := list(islice(items, PAUSE_RECORDS)):
            ids = list(map(itemgetter(0), chunk))
            old = list(map(itemgetter(0), map(itemgetter(1), chunk)))
            steps = map(shift.get, map(PART_SHIFT.__rrshift__, old), repeat(0))
            moved = map(add, old, steps)
            summaries = map(itemgetter(1), map(itemgetter(1), chunk))
            places.update(zip(ids, zip(moved, summaries, strict=True), strict=True))
            self._pause()
        places.update(packed)  # keeps their place in the order: they are in it already
        return places

    def _fresh(
        self, kept: dict[int, int], live: Iterable[int]
    ) -> Iterator[tuple[tuple[str, int, str], bytes]]:
        """The live records not in a kept part (of the ``live`` ones), encoded:
        ``((id, size, summary), JSON)``. Read a part at a time and given out a window of
        ``WINDOW_DOCS`` at a time, each window by type and patient (read together, they are
        stored together): all at once, a store of 100k small records took 350 MB."""
        old, summarize = self._old, self._storage._summarize
        if not old.hot and all(number in kept for number in live):
            return  # a store only ever pulled, say: every part is copied
        wanted: dict[int, list[tuple[int, str]]] = {}
        for record_id, (place, _) in old.places.items():
            if place != HOT and part_of(place) not in kept:
                wanted.setdefault(part_of(place), []).append((pos_of(place), record_id))
        window: list[tuple[tuple[str, str], tuple[str, int, str], bytes]] = []

        def add(record_id: str, doc: Doc, summary: str | None) -> None:
            encoded = ENCODE(doc).encode()
            size_summary = summarize(doc) if summary is None else summary
            window.append((order(doc, record_id), (record_id, len(encoded), size_summary), encoded))

        def flush() -> Iterator[tuple[tuple[str, int, str], bytes]]:
            window.sort(key=itemgetter(0))
            yield from ((meta, encoded) for _, meta, encoded in window)
            window.clear()

        for n, (record_id, doc) in enumerate(old.hot.items()):
            if self._cancellable and n % YIELD_DOCS == 0:
                time.sleep(YIELD_SECONDS)  # lets a waiting thread take the GIL now
            add(record_id, doc, None)
            if len(window) >= WINDOW_DOCS:
                yield from flush()
        for number, members in wanted.items():
            self._check()
            assert self._reader is not None
            part = self._storage._read_part(self._reader, old.parts[number])
            for pos, record_id in members:
                add(record_id, part[pos], old.places[record_id][1])
            self._pause()
            if len(window) >= WINDOW_DOCS:
                yield from flush()
        yield from flush()

    def _index_entry(self) -> list[bytes]:
        """The index entry (the first), in pieces: the small tables' documents, then the
        index of the parts and records, columns encoded a slice at a time."""
        keys = [[t, i] for t, docs in self._small.items() for i in docs]
        encoded = []
        for table, docs in self._small.items():
            sizes = self.sizes.setdefault(table, {})
            for doc_id, doc in docs.items():
                encoded.append(ENCODE(doc).encode())
                sizes[doc_id] = len(encoded[-1])
        parts = [[p.id.hex(), p.at, p.length, p.docs] for p in self.records.parts]
        values = list(self.records.places.values())
        columns = {
            "ids": list(self.records.places),
            "places": list(map(itemgetter(0), values)),
            "summaries": list(map(itemgetter(1), values)),
        }
        del values
        index = [b'{"parts":', ENCODE(parts).encode()]
        for name, column in columns.items():
            index.append(f',"{name}":['.encode())
            # Encoded a slice at a time: one call for 100k records held the interpreter long.
            for start in range(0, len(column), PAUSE_RECORDS):
                if start:
                    index.append(b",")
                index.append(ENCODE(column[start : start + PAUSE_RECORDS])[1:-1].encode())
                self._pause()
            index.append(b"]")
        index.append(b"}")
        head = ENCODE({"k": [*keys, INDEX_KEY], "r": [], "p": []}).encode()
        body = b"".join([b"[", *(d + b"," for d in encoded), *index, b"]"])  # one copy
        pieces = self._storage._sealed_pieces(self._file_id, 1, head, body)
        length = sum(map(len, pieces))
        return [FRAME.pack(length, zlib.crc32(length.to_bytes(4, "big"))), *pieces]

    def _check(self) -> None:
        if self._cancellable and self._storage._closing:
            raise Cancelled

    def _pause(self, written: int = 0) -> None:
        """Hand the interpreter to a waiting thread (a save, the UI's loop), in a
        compaction beside them: handed back and forth with each read and write, a save
        waited 5 ms (the switch interval) for it twice. Having ``written`` more bytes, keep
        to ``COPY_RATE``: a save's fsync waits for what the compaction wrote meanwhile."""
        if not self._cancellable:
            return
        self._written += written
        ahead = self._written / COPY_RATE - (time.perf_counter() - self._started)
        time.sleep(max(YIELD_SECONDS, ahead))
