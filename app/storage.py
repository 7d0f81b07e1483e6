"""Encrypted, crash-safe storage for TinyDB: an append-only journal over an indexed file of
record parts. A store opens by reading its index; records are read when asked.

Why a journal: TinyDB's stock storages rewrite the whole database on every write, so a save
costs in proportion to the database. Here a save appends one entry (one atomic batch of
document changes across tables) and fsyncs it, so it costs in proportion to the change.

Why records stay on disk: at 100k records (about 250 MB of JSON, a few years of one
liaison's work) replaying every document at open took 2.5 s and held 460 MB. Now the
records are sealed in parts of at most ``PART_DOCS`` documents; memory holds each record's
place and a short summary its owner (``app.store``) gives for its indexes, and a record is
read by decrypting its part (64 KB at most; the last ``CACHE_PARTS`` parts are kept). The
small tables (outbox, settings, drafts, ...) stay in memory.

Why compaction runs beside the saves, in a thread: when the file grows past twice the live
data (or what the last compaction wrote) a save starts it and returns. It copies well-used
parts as they are (no decryption: a part is bound to its own id, not to the file), packs
the rest of the live records into new parts, writes the index and only then the header,
while saves go on appending to the old file; under the lock it re-seals the batches saved
meanwhile at the new file's end and switches files (``os.replace``, directory fsync).

Why ``commit(changes)`` beside ``write(data)``: TinyDB mutates documents in place and then
hands ``write()`` the whole database, so a storage cannot tell cheaply what changed. The
repository (``app.store.Store``) therefore commits exactly the documents of one batch.
``write(data)`` still works for plain TinyDB use, as a crash-safe full rewrite.

File (integers big-endian)::

    header  MAGIC(8) file_id(16) index_at(8) nonce(12) tag(16) crc32(4)
            tag = AES-GCM over b"" with AAD MAGIC+file_id+index_at: a wrong key fails the
            tag while the crc32 still holds, so it is told apart from a damaged header
    parts   nonce(12) ct, back to back: the compacted records, each part a JSON list of
            documents, AAD b"R" part_id (the index lists each part's id, place and size)
    entry 1 the index, at index_at; then entries 2, 3, ...: the journal
    entry   length(4) crc32(length)(4) payload(length)
    payload hnonce(12) hlen(4) head_ct(hlen) snonce(12) slen(4) small_ct(slen)
            then the batch's records parts back to back (each as above)
            head  = JSON {"k": [[table, id], ...], "r": [[record id, size, summary], ...],
                    "p": [[part_id, documents, length], ...]}    AAD b"H" file_id seq
            small = JSON [doc or null, ...] for "k"              AAD b"S" file_id seq head
            The records of "r" with a size of -1 are removed; the others are the documents
            of the parts, in order. The index entry's small body ends with the index:
            {"parts": [[part_id, at, length, documents], ...],
             "ids": [record id, ...], "places": [...], "summaries": [...]}
            (a record's place: part << 48 | position << 32 | size)

AES-256-GCM with a fresh random nonce per encryption; the key is derived from the data key.
Every document's table and id are in the encrypted head, so the file reveals neither ids
nor content. ``seq`` is the entry's position and is never stored: a reordered, removed,
duplicated or foreign entry fails authentication, and a part is accepted only where an
authenticated head or index names its (random) id. Only a crash mid-append can damage the
end: an incomplete final entry (short frame, length past the end of file, a frame that is
zeros, or zeros from a disk sector boundary to the end of the file: sectors a power cut
left unwritten) is a torn tail and is truncated; any other damage raises
``StoreCorrupted`` and the file is left untouched. Open authenticates the index, every
entry's head and small documents, and the last entry whole; a part of an earlier entry or
of the compacted records is authenticated when it is first read, and ``StoreCorrupted``
is raised then. Truncation at an entry boundary (a rollback) cannot be detected without
state kept outside the file.

A file of version 1 (``MAGIC_V1``: entries only, every document in them) is read whole
once and rewritten in this format before the store opens.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import threading
import time
import zlib
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from tinydb.storages import Storage

from app.compaction import Cancelled, Compacted
from app.errors import StoreClosed
from app.filesafe import derive_key, fsync, fsync_dir, lock_file, write_all, write_temp
from app.journal_v1 import MAGIC_V1, read_v1
from app.storeformat import (
    ENCODE,
    FRAME,
    HEADER,
    HEADER_LEN,
    HOT,
    INDEX_KEY,
    LENGTH,
    MAGIC,
    MIN_PAYLOAD,
    NONCE,
    TAG,
    Data,
    Doc,
    Part,
    Records,
    Torn,
    check_header,
    damaged,
    groups,
    part_of,
    place_at,
    place_rows,
    pos_of,
    size_of,
    unwritten,
)

log = logging.getLogger(__name__)

Changes = Mapping[tuple[str, str], Doc | None]
Summarize = Callable[[Doc], str]

RECORDS = "records"  # the table kept on disk; every other table is kept in memory
CACHE_PARTS = 64  # parts kept decoded (a few MB): a screen reads a few dozen
FREEZE_BATCH = 200  # documents in one commit (a pulled page) taken out of the collector
RELEASE_IN_THREAD = 2_000  # documents: a store this big is freed beside the UI (_release)
COMPACT_MIN_BYTES = 1 << 20  # never compact a small file
COMPACT_RATIO = 2.0  # compact when the file is this many times the live data
COMPACT_ENTRIES = 2_000  # or when its journal has this many entries (open reads each head)
# A compaction switches files under the lock once at most this many saves wait to be
# re-sealed at its end; more are sealed first without the lock (a save waits < 1 ms).
SWITCH_BATCHES = 16
SYNC_EVERY = 1 << 20  # bytes a compaction writes between two flushes
FREE_RATE = 200e6  # bytes a second of a replaced file given back to the file system
PREFIX_BYTES = 1 << 14  # bytes first read of an entry at open (a save's head fits)


@dataclass
class _Sealed:
    """One batch as an entry: its bytes, and where its records went in it."""

    entry: bytes
    rows: list[list[Any]]  # [record id, size (-1: removed), summary], as in the head
    parts: list[tuple[bytes, int, int, list[Doc]]]  # id, at (in the entry), length, docs
    small: list[tuple[str, str, Doc | None, int]]  # table, id, doc, size


class RecordTable(Mapping[str, Doc]):
    """The records table: every id in memory, each document read from the file when asked
    (``many`` reads several, each part once). Read-only: changes go through ``commit``."""

    def __init__(self, storage: JournalStorage) -> None:
        self._storage = storage

    def __getitem__(self, record_id: str) -> Doc:
        doc = self._storage._record(record_id)
        if doc is None:
            raise KeyError(record_id)
        return doc

    def get(self, record_id: str, default: Any = None) -> Any:
        doc = self._storage._record(record_id)
        return default if doc is None else doc

    def __contains__(self, record_id: object) -> bool:
        return record_id in self._storage._records.places

    def __iter__(self) -> Iterator[str]:
        return iter(self._storage._records.places)

    def __len__(self) -> int:
        return len(self._storage._records.places)

    def many(self, ids: Iterable[str]) -> list[Doc | None]:
        """The documents of ``ids`` in their order (None for an unknown id)."""
        return self._storage._many(ids)


class JournalStorage(Storage):
    """A TinyDB storage: small tables in memory, records on disk, changes appended to an
    encrypted journal."""

    def __init__(self, path: str | Path, key: bytes, summarize: Summarize | None = None) -> None:
        self.path = Path(path)
        self._aead = AESGCM(derive_key(key, "liaison/journal/v1"))
        self._summarize: Summarize = summarize or (lambda doc: "")
        self._lock_fd: int | None = lock_file(self.path.with_name(self.path.name + ".lock"))
        self._fd: int | None = None
        self._rfd: int | None = None
        self._records = Records()
        self._table = RecordTable(self)
        self._data: Data = {}
        self._sizes: dict[str, dict[str, int]] = {}
        self._cache: OrderedDict[int, list[Doc]] = OrderedDict()
        self._live = self._base = 0
        # Held while the file or the documents change (an append, a switch of files).
        self._lock = threading.Lock()
        # Held while a record is read and, inside ``_lock``, while the reading state (the
        # parts, their descriptor, the cache) changes: reads go on beside an fsync or a
        # compaction's rename, and never see the parts of one file with another's places.
        self._reading = threading.Lock()
        self._compacting = threading.Lock()  # one compaction at a time
        self._compactor: threading.Thread | None = None
        self._since: list[Changes] | None = None  # batches saved while a compaction writes
        self._retired: list[int] = []  # old journals' descriptors, closed without the lock
        self._closing = False
        self._closed = False
        try:
            # A leftover temp file is an unfinished compaction: the journal itself is whole.
            self.path.with_name(self.path.name + ".tmp").unlink(missing_ok=True)
            if self.path.exists():
                self._load()
            else:
                self._rewrite({})
            self._open_files()
        except BaseException:
            self.close()
            raise

    # -- the TinyDB interface ---------------------------------------------------------

    def read(self) -> Data:
        """The documents by table (the records as a ``RecordTable``); callers must copy
        before changing anything."""
        self._check_open()
        return self._data

    def write(self, data: dict[str, Any]) -> None:
        """Replace everything (TinyDB's generic path): a crash-safe full rewrite."""
        self._check_open()
        tables = {t: dict(docs.items()) for t, docs in data.items()}  # reads the records
        with self._compacting, self._lock:
            try:
                self._rewrite(tables)
            except BaseException:
                self._load()  # TinyDB changed our dicts before calling: restore the disk state
                raise

    def close(self) -> None:
        """Stop a compaction, close the file, release the lock and drop the documents."""
        self._closing = True  # a compaction writing its file gives up at its next chunk
        self.wait_compacted()
        with self._lock:
            self._close_files()

    def _close_files(self) -> None:
        self._closed = True
        with self._reading:
            for name in ("_fd", "_rfd", "_lock_fd"):  # closing the lock's releases the flock
                fd = getattr(self, name)
                if fd is not None:
                    os.close(fd)
                    setattr(self, name, None)
            data, self._data = self._data, {}
            records, self._records = self._records, Records()
            self._cache = OrderedDict()
        _release({**data, RECORDS: records.places, "": records.hot})

    # -- the fast path ----------------------------------------------------------------

    def commit(self, changes: Changes) -> None:
        """Durably apply one batch: ``{(table, doc_id): doc, or None to remove}``."""
        if not changes:
            self._check_open()
            return
        with self._lock:
            fd = self._writable()
            sealed = self._seal_batch(self._file_id, self._seq + 1, changes)
            try:
                write_all(fd, sealed.entry)
                fsync(fd)
            except BaseException:
                self._undo_append(fd)
                raise
            self._seq += 1
            self._apply(sealed, self._size, self._records, cache=True)
            self._size += len(sealed.entry)
            if self._since is not None:
                self._since.append(changes)
            if len(changes) >= FREEZE_BATCH:
                # A pulled page: what it leaves in memory (places, summaries, the parts it
                # cached) stays, like what is loaded at open (see _load). Left in the
                # collector's sight, a first sync of 100k records made full collections of
                # up to 300 ms, holding the UI's loop too.
                gc.freeze()
            if self._due() and self._compactor is None and self._since is None:
                self._compactor = threading.Thread(
                    target=self._compact_in_background, name="journal-compaction", daemon=True
                )
                self._compactor.start()

    def _due(self) -> bool:
        """Whether the file wants compacting: it grew past twice the live data (or what the
        last compaction wrote), or its journal holds so many entries (a save each, say)
        that reading their heads at open would take long."""
        if self._size <= COMPACT_MIN_BYTES:
            return False
        return self._size > COMPACT_RATIO * max(self._live, self._base) or (
            self._seq > COMPACT_ENTRIES and self._size - self._base > COMPACT_MIN_BYTES
        )

    def compact(self, *, repack: bool = False) -> None:
        """Rewrite the file, now (saves may go on). Parts mostly live are copied as they
        are, with the old versions of the records in them; ``repack`` copies none, so that
        nothing removed or replaced stays in the file (after a purge)."""
        try:
            self._compact(repack)
        except Cancelled:
            raise StoreClosed("the store is closed") from None

    def wait_compacted(self) -> None:
        """Wait until a compaction started by a save has finished (or given up)."""
        compactor = self._compactor
        if compactor is not None and compactor is not threading.current_thread():
            compactor.join()

    @property
    def size(self) -> int:
        """Bytes in the journal file."""
        return self._size

    def summaries(self) -> Iterable[tuple[str, tuple[int, str]]]:
        """``(record id, (place, summary))`` of every record, in the order stored: the
        summary is what the owner's ``summarize`` gave when the record was saved."""
        return self._records.places.items()

    # -- reading records --------------------------------------------------------------

    def _record(self, record_id: str) -> Doc | None:
        with self._reading:
            self._check_open()
            found = self._records.places.get(record_id)
            if found is None:
                return None
            place = found[0]
            if place == HOT:
                return self._records.hot[record_id]
            return self._part(part_of(place))[pos_of(place)]

    def _many(self, ids: Iterable[str]) -> list[Doc | None]:
        with self._reading:
            self._check_open()
            places, hot = self._records.places, self._records.hot
            found: list[Doc | None] = []
            decoded: dict[int, list[Doc]] = {}  # each part once, whatever the cache keeps
            for record_id in ids:
                where = places.get(record_id)
                if where is None:
                    found.append(None)
                elif where[0] == HOT:
                    found.append(hot[record_id])
                else:
                    number = part_of(where[0])
                    docs = decoded.get(number)
                    if docs is None:
                        docs = decoded[number] = self._part(number)
                    found.append(docs[pos_of(where[0])])
            return found

    def _part(self, number: int) -> list[Doc]:
        """The documents of part ``number`` (the caller holds ``_reading``)."""
        docs = self._cache.get(number)
        if docs is not None:
            self._cache.move_to_end(number)
            return docs
        assert self._rfd is not None
        docs = self._read_part(self._rfd, self._records.parts[number])
        self._cache[number] = docs
        if len(self._cache) > CACHE_PARTS:
            self._cache.popitem(last=False)
        return docs

    def _read_part(self, fd: int, part: Part) -> list[Doc]:
        data = os.pread(fd, part.length, part.at)
        try:
            if len(data) != part.length:
                raise ValueError("short")
            body = self._aead.decrypt(data[:NONCE], data[NONCE:], b"R" + part.id)
            docs = json.loads(body)
            if not isinstance(docs, list) or len(docs) != part.docs:
                raise ValueError("part shape")
        except (InvalidTag, ValueError):
            raise damaged("a part of the records does not authenticate") from None
        return docs

    # -- internals --------------------------------------------------------------------

    def _open_files(self) -> None:
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        self._rfd = os.open(self.path, os.O_RDONLY)

    def _compact_in_background(self) -> None:
        try:
            self._compact()
        except Cancelled:
            pass
        except Exception as exc:  # the saves are durable in the old file; compact later
            log.warning("journal: compaction failed (%s)", type(exc).__name__)
        finally:
            with self._lock:
                self._compactor = None

    def _compact(self, repack: bool = False) -> None:
        """Write the live documents to a new file beside the journal while saves go on,
        then, under the lock, add the batches saved meanwhile and switch to it."""
        with self._compacting:
            self._compact_now(repack)

    def _compact_now(self, repack: bool) -> None:
        with self._lock:
            self._writable()
            small = {t: dict(docs) for t, docs in self._data.items() if t != RECORDS}
            records = self._records.copy()
            assert self._rfd is not None
            reader = os.dup(self._rfd)  # the old file stays readable after the switch
            self._since = []
        tmp: Path | None = None
        try:
            file_id = os.urandom(16)
            written = self._encode(file_id, small, records, reader, cancellable=True, repack=repack)
            tmp = write_temp(
                self.path, written.chunks(), sync_every=SYNC_EVERY, header=written.header
            )
            del small
            new, seq, size = written.records, 1, written.size
            while True:
                with self._lock:
                    self._check_open()
                    if len(self._since or ()) <= SWITCH_BATCHES:
                        seq, size = self._append(tmp, file_id, seq, size, self._since or [], new)
                        self._switch(tmp, file_id, seq, size, new, written.size)
                        return
                    # Many saves came meanwhile: seal them without the lock, then look again.
                    caught, self._since = self._since or [], []
                if self._closing:
                    raise Cancelled
                seq, size = self._append(tmp, file_id, seq, size, caught, new)
        except BaseException:
            if tmp is not None:
                tmp.unlink(missing_ok=True)
            raise
        finally:
            os.close(reader)
            with self._lock:
                self._since = None
                retired, self._retired = self._retired, []
            for fd in retired:
                _free(fd, lambda: self._closing)

    def _append(
        self,
        tmp: Path,
        file_id: bytes,
        seq: int,
        size: int,
        batches: list[Changes],
        records: Records,
    ) -> tuple[int, int]:
        """Seal ``batches`` as the next entries of the new file ``tmp`` (whose last entry is
        ``seq`` and length ``size``), placing their records in ``records``; its new last
        entry and length."""
        if not batches:
            return seq, size
        tail = []
        at = size
        for changes in batches:
            seq += 1
            sealed = self._seal_batch(file_id, seq, changes)
            self._apply(sealed, at, records, small=False)
            tail.append(sealed.entry)
            at += len(sealed.entry)
        data = b"".join(tail)
        fd = os.open(tmp, os.O_WRONLY | os.O_APPEND)
        try:
            write_all(fd, data)
            fsync(fd)
        finally:
            os.close(fd)
        return seq, size + len(data)

    def _switch(
        self, tmp: Path, file_id: bytes, seq: int, size: int, records: Records, base: int
    ) -> None:
        """Put the new file ``tmp`` in place of the journal (the caller holds the lock).

        Where it can, it keeps the old journal open (in ``_retired``) for the caller to close
        once the lock is released: the last close frees the old file's blocks, which takes
        a fifth of a second for 250 MB — a save waiting on the lock would wait for it too.
        """
        if os.name == "nt":  # Windows cannot replace a file that is open
            self._replace(tmp)
        else:
            os.replace(tmp, self.path)  # on failure the old journal stays, open for appends
            if self._fd is not None:
                self._retired.append(self._fd)
                self._fd = None
        # From here the new file is the journal: switch to it before anything else can fail,
        # so that no later append lands under the old file id.
        self._file_id, self._seq, self._size, self._base = file_id, seq, size, base
        with self._reading:
            self._records, self._cache = records, OrderedDict()
            if self._rfd is not None:
                self._retired.append(self._rfd)
                self._rfd = None
            self._open_files()
        fsync_dir(self.path.parent)

    def _replace(self, tmp: Path) -> None:
        """``os.replace(tmp, journal)`` with the journal's descriptors closed (Windows cannot
        replace an open file); on failure the old journal stays open for appends."""
        with self._reading:
            for name in ("_fd", "_rfd"):
                fd = getattr(self, name)
                if fd is not None:
                    os.close(fd)
                    setattr(self, name, None)
            try:
                os.replace(tmp, self.path)
            except BaseException:
                self._open_files()
                raise

    def _seal_batch(self, file_id: bytes, seq: int, changes: Changes) -> _Sealed:
        """One batch as a framed, sealed entry, and where its documents went in it."""
        keys: list[list[str]] = []
        small_json: list[bytes] = []
        small: list[tuple[str, str, Doc | None, int]] = []
        rows: list[list[Any]] = []
        docs: list[tuple[Doc, bytes]] = []
        for (table, doc_id), doc in changes.items():
            if table == RECORDS:
                if doc is None:
                    rows.append([doc_id, -1, ""])
                    continue
                encoded = ENCODE(doc).encode()
                rows.append([doc_id, len(encoded), self._summarize(doc)])
                docs.append((doc, encoded))
            else:
                encoded = b"null" if doc is None else ENCODE(doc).encode()
                keys.append([table, doc_id])
                small_json.append(encoded)
                small.append((table, doc_id, doc, len(encoded)))
        runs_of_docs = list(groups(docs))
        sealed = [
            (pid := os.urandom(16), self._seal_part(pid, [e for _, e in g])) for g in runs_of_docs
        ]
        head = ENCODE(
            {
                "k": keys,
                "r": rows,
                "p": [
                    [pid.hex(), len(g), len(part)]
                    for (pid, part), g in zip(sealed, runs_of_docs, strict=True)
                ],
            }
        ).encode()
        payload = [self._seal(file_id, seq, head, b"[" + b",".join(small_json) + b"]")]
        at = FRAME.size + len(payload[0])
        parts = []
        for (pid, part), group in zip(sealed, runs_of_docs, strict=True):
            parts.append((pid, at, len(part), [d for d, _ in group]))
            payload.append(part)
            at += len(part)
        body = b"".join(payload)
        frame = FRAME.pack(len(body), zlib.crc32(len(body).to_bytes(4, "big")))
        return _Sealed(frame + body, rows, parts, small)

    def _seal_part(self, part_id: bytes, encoded: list[bytes]) -> bytes:
        nonce = os.urandom(NONCE)
        body = b"[" + b",".join(encoded) + b"]"
        return nonce + self._aead.encrypt(nonce, body, b"R" + part_id)

    def _apply(
        self,
        sealed: _Sealed,
        at: int,
        records: Records,
        *,
        small: bool = True,
        cache: bool = False,
    ) -> None:
        """Place a sealed batch written at file offset ``at``: its records in ``records`` and,
        when ``small``, its other documents in the tables (the live state; a compaction's
        new file only needs the records placed). ``cache`` keeps its parts decoded."""
        live = records is self._records
        slots: list[int] = []  # the place of each document, but for its size, in order
        for pid, offset, length, docs in sealed.parts:
            first, step = place_at(len(records.parts), 0, 0), place_at(0, 1, 0)
            slots += range(first, first + len(docs) * step, step)
            records.parts.append(Part(pid, at + offset, length, len(docs)))
        if cache and live:
            self._keep_decoded(len(records.parts) - len(sealed.parts), sealed.parts)
        grown = place_rows(sealed.rows, records, iter(slots))
        if live:
            self._live += grown
        if small:
            for table, doc_id, doc, size in sealed.small:
                self._apply_small(table, doc_id, doc, size)

    def _keep_decoded(self, first: int, parts: list[tuple[bytes, int, int, list[Doc]]]) -> None:
        """Cache the documents just saved as parts ``first``, ``first + 1``, ..."""
        with self._reading:
            for number, (_, _, _, docs) in enumerate(parts, start=first):
                self._cache[number] = docs
            while len(self._cache) > CACHE_PARTS:
                self._cache.popitem(last=False)

    def _apply_small(self, table: str, doc_id: str, doc: Doc | None, size: int) -> None:
        docs = self._data.setdefault(table, {})
        sizes = self._sizes.setdefault(table, {})
        self._live -= sizes.pop(doc_id, 0)
        if doc is None:
            docs.pop(doc_id, None)
        else:
            docs[doc_id] = doc
            sizes[doc_id] = size
            self._live += size

    def _check_open(self) -> None:
        """``StoreClosed`` once the store is closed. Reads call it without the lock: while a
        compaction switches files the journal's descriptor is briefly None, which is not
        closed (``_closed`` is)."""
        if self._closed:
            raise StoreClosed("the store is closed")

    def _writable(self) -> int:
        """The journal's descriptor to append to (the caller holds the lock, so a switch of
        files is not under way): ``StoreClosed`` when the store is closed, or when a failed
        switch could not reopen the journal (writes are refused then)."""
        self._check_open()
        if self._fd is None:
            raise StoreClosed("the store's file could not be reopened: unlock again")
        return self._fd

    def _undo_append(self, fd: int) -> None:
        # A half-written entry followed by later appends would look like damage, so cut it
        # off now; if even that fails, refuse further writes rather than risk the file.
        try:
            os.ftruncate(fd, self._size)
            fsync(fd)
        except OSError:
            self._closing = True
            self._close_files()

    def _seal(self, file_id: bytes, seq: int, head: bytes, small: bytes) -> bytes:
        return b"".join(self._sealed_pieces(file_id, seq, head, small))

    def _sealed_pieces(self, file_id: bytes, seq: int, head: bytes, small: bytes) -> list[bytes]:
        """An entry's sealed head and small documents, as pieces to write one after the
        other (a big index is not copied to join them)."""
        seq_bytes = seq.to_bytes(8, "big")
        hnonce, snonce = os.urandom(NONCE), os.urandom(NONCE)
        head_ct = self._aead.encrypt(hnonce, head, b"H" + file_id + seq_bytes)
        small_ct = self._aead.encrypt(snonce, small, b"S" + file_id + seq_bytes + head)
        return [
            hnonce + LENGTH.pack(len(head_ct)) + head_ct + snonce + LENGTH.pack(len(small_ct)),
            small_ct,
        ]

    def _open(
        self, file_id: bytes, seq: int, payload: memoryview, length: int, *, whole: bool
    ) -> tuple[dict[str, Any], list[Any], list[tuple[bytes, int, int, int]]]:
        """An entry's head, small documents and parts ``(id, at, length, documents)``
        (``at`` within the payload) from ``payload``: the whole entry of ``length`` bytes
        when ``whole`` (its parts are authenticated too), else its beginning up to the end
        of the small documents (``_read_prefix``)."""
        seq_bytes = seq.to_bytes(8, "big")
        start = NONCE + LENGTH.size
        if len(payload) < start:
            raise InvalidTag
        hlen = LENGTH.unpack_from(payload, NONCE)[0]
        if hlen < TAG or start + hlen + NONCE + LENGTH.size > len(payload):
            raise InvalidTag
        head = self._aead.decrypt(
            bytes(payload[:NONCE]), payload[start : start + hlen], b"H" + file_id + seq_bytes
        )
        at = start + hlen
        slen = LENGTH.unpack_from(payload, at + NONCE)[0]
        sstart = at + NONCE + LENGTH.size
        if slen < TAG or sstart + slen > len(payload):
            raise InvalidTag
        small = self._aead.decrypt(
            bytes(payload[at : at + NONCE]),
            payload[sstart : sstart + slen],
            b"S" + file_id + seq_bytes + head,
        )
        meta, docs = json.loads(head.decode()), json.loads(small.decode())
        if not isinstance(meta, dict) or not isinstance(docs, list):
            raise ValueError("entry shape")
        if len(meta["k"]) != len(docs):
            raise ValueError("entry shape")
        parts = []
        at = sstart + slen
        for hex_id, count, size in meta["p"]:
            part_id = bytes.fromhex(hex_id)
            if whole:  # the head and the small documents are always authenticated
                part = payload[at : at + size]
                self._aead.decrypt(bytes(part[:NONCE]), part[NONCE:], b"R" + part_id)
            parts.append((part_id, at, int(size), int(count)))
            at += size
        if at != length:
            raise ValueError("entry shape")
        return meta, docs, parts

    def _header(self, file_id: bytes, index_at: int) -> bytes:
        nonce = os.urandom(NONCE)
        at = index_at.to_bytes(8, "big")
        tag = self._aead.encrypt(nonce, b"", MAGIC + file_id + at)
        head = HEADER.pack(MAGIC, file_id, index_at, nonce, tag)
        return head + zlib.crc32(head).to_bytes(4, "big")

    def _encode(
        self,
        file_id: bytes,
        small: Data,
        records: Records,
        reader: int | None,
        *,
        cancellable: bool = False,
        repack: bool = False,
    ) -> Compacted:
        """The compacted file of these tables and records, to write (``Compacted``); a
        ``cancellable`` one stops when the store closes."""
        return Compacted(self, file_id, small, records, reader, cancellable, repack)

    def _rewrite(self, data: Data) -> None:
        """Write ``data`` as the whole file and make it the documents in memory."""
        records = Records(
            {i: (HOT, "") for i in data.get(RECORDS, {})}, [], dict(data.get(RECORDS, {}))
        )
        small = {t: dict(docs) for t, docs in data.items() if t != RECORDS}
        file_id = os.urandom(16)
        written = self._encode(file_id, small, records, None)
        tmp = write_temp(self.path, written.chunks(), header=written.header)
        appending = self._fd is not None
        try:
            if appending:
                self._replace(tmp)
            else:
                os.replace(tmp, self.path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        with self._reading:
            self._file_id, self._seq, self._size = file_id, 1, written.size
            self._base, self._records, self._cache = written.size, written.records, OrderedDict()
            self._data, self._sizes = {**small, RECORDS: self._table}, written.sizes
            self._live = sum(sum(s.values()) for s in self._sizes.values()) + sum(
                size_of(p) for p, _ in self._records.places.values()
            )
            if appending:
                self._open_files()
        fsync_dir(self.path.parent)

    def _load(self) -> None:
        """Read the index and replay the journal after it; cut a torn tail; raise on
        damage. A version 1 file is read whole and rewritten first."""
        # Loading makes many small objects, none of them garbage: without the cyclic
        # collector's passes it runs faster.
        collecting = gc.isenabled()
        gc.disable()
        try:
            with open(self.path, "rb") as f:
                magic = f.read(len(MAGIC))
                f.seek(0)
                if magic == MAGIC_V1:
                    self._migrate(f.read())
                else:
                    self._load_indexed(f)
        finally:
            # What was loaded stays until close and holds no reference cycles: out of the
            # collector's sight, so that no full collection walks it — at 20k records one
            # took 130 ms, on whatever thread, the UI's too. The cost: a cycle alive now
            # (say the PIN screen's controls) is never collected once it is garbage.
            gc.freeze()
            if collecting:
                gc.enable()

    def _load_indexed(self, f: Any) -> None:
        fd = f.fileno()
        self._file_id, index_at = check_header(os.pread(fd, HEADER_LEN, 0), self._aead)
        end = os.fstat(fd).st_size
        frame = os.pread(fd, FRAME.size, index_at)
        if len(frame) < FRAME.size:
            raise damaged("the index is missing")
        length, crc = FRAME.unpack(frame)
        if zlib.crc32(frame[:4]) != crc or index_at + FRAME.size + length > end:
            raise damaged("the index has a damaged frame")
        payload = os.pread(fd, length, index_at + FRAME.size)
        try:
            meta, docs, _ = self._open(self._file_id, 1, memoryview(payload), length, whole=True)
            keys = meta["k"]
            if not keys or keys[-1] != INDEX_KEY:
                raise ValueError("no index")
            index = docs.pop()
            keys.pop()
            parts = [Part(bytes.fromhex(h), at, n, count) for h, at, n, count in index["parts"]]
            ids, found = index["ids"], zip(index["places"], index["summaries"], strict=True)
            places = dict(zip(ids, found, strict=True))
            if len(places) != len(ids):
                raise ValueError("index shape")
        except (InvalidTag, ValueError, TypeError, KeyError, IndexError):
            raise damaged("the index does not authenticate") from None
        del payload, index
        self._records = Records(places, parts)
        self._data, self._sizes, self._live = {RECORDS: self._table}, {}, 0
        share = length // max(1, len(docs) + len(places))
        for (table, doc_id), doc in zip(keys, docs, strict=True):
            self._apply_small(table, doc_id, doc, share)
        self._live += sum(size_of(p) for p, _ in places.values())
        self._base = index_at + FRAME.size + length
        self._replay(fd, self._base, end)

    def _replay(self, fd: int, start: int, end: int) -> None:
        """Apply the journal's entries after the index (from ``start`` to ``end``). Of an
        entry before the last only the head and the small documents are read: its parts
        are authenticated when first read, as the compacted ones are."""
        pos, seq = start, 1
        while pos < end:
            frame = os.pread(fd, FRAME.size, pos)
            length, crc = FRAME.unpack(frame) if len(frame) == FRAME.size else (0, -1)
            try:
                if zlib.crc32(frame[:4]) == crc and pos + FRAME.size + length < end:
                    meta, docs, parts = self._middle_entry(fd, pos, length, seq + 1)
                    stop = pos + FRAME.size + length
                else:  # the last entry, or a damaged frame: check all that is left
                    buf = os.pread(fd, end - pos, pos)
                    meta, docs, parts, size = self._entry(buf, memoryview(buf), 0, seq + 1, pos)
                    stop = pos + size
            except Torn:
                self._truncate(pos, end)
                break
            seq += 1
            placed: list[tuple[bytes, int, int, list[Doc]]] = [
                (pid, at, n, [{}] * count) for pid, at, n, count in parts
            ]
            small = [
                (table, doc_id, doc, (stop - pos) // max(1, len(docs)))
                for (table, doc_id), doc in zip(meta["k"], docs, strict=True)
            ]
            self._apply(_Sealed(b"", meta["r"], placed, small), pos, self._records)
            pos = stop
        self._seq, self._size = seq, pos

    def _middle_entry(
        self, fd: int, pos: int, length: int, seq: int
    ) -> tuple[dict[str, Any], list[Any], list[tuple[bytes, int, int, int]]]:
        """The head, small documents and parts (``at`` from the entry's start) of a whole
        entry that is not the last, reading its parts' bytes not."""
        if length < MIN_PAYLOAD:
            raise damaged(f"entry {seq} is too short")
        prefix = _read_prefix(fd, pos + FRAME.size, length)
        try:
            meta, docs, parts = self._open(
                self._file_id, seq, memoryview(prefix), length, whole=False
            )
        except (InvalidTag, ValueError, TypeError, KeyError):
            raise damaged(f"entry {seq} does not authenticate") from None
        return meta, docs, [(p, FRAME.size + at, n, c) for p, at, n, c in parts]

    def _entry(
        self, buf: bytes, view: memoryview, pos: int, seq: int, start: int
    ) -> tuple[dict[str, Any], list[Any], list[tuple[bytes, int, int, int]], int]:
        """The entry at ``pos`` in ``buf`` (which runs to the end of the file and begins at
        file offset ``start``), all of it authenticated: head, small documents, parts
        (``at`` from the entry's start) and its end."""
        rest = len(buf) - pos
        if rest < FRAME.size:
            raise Torn
        length, crc = FRAME.unpack_from(buf, pos)
        if zlib.crc32(buf[pos : pos + 4]) != crc:
            # The frame itself never landed, or only its part before a sector boundary.
            if unwritten(buf, pos, start) < pos + FRAME.size or not buf[pos:].strip(b"\0"):
                raise Torn
            raise damaged(f"entry {seq} has a damaged frame")
        if length > rest - FRAME.size:
            raise Torn
        end = pos + FRAME.size + length
        if length < MIN_PAYLOAD:
            raise damaged(f"entry {seq} is too short")
        try:
            payload = view[pos + FRAME.size : end]
            meta, docs, parts = self._open(self._file_id, seq, payload, length, whole=True)
        except (InvalidTag, ValueError, TypeError, KeyError):
            # The final entry's last sectors never landed; a zeroed tag or ciphertext that
            # does not run from a sector boundary to the end is damage, not a power cut.
            if end == len(buf) and unwritten(buf, pos + FRAME.size, start) < end:
                raise Torn from None
            raise damaged(f"entry {seq} does not authenticate") from None
        return meta, docs, [(p, FRAME.size + at, n, c) for p, at, n, c in parts], end

    def _truncate(self, pos: int, end: int) -> None:
        log.warning("journal: dropping a torn final entry (%d bytes)", end - pos)
        fd = os.open(self.path, os.O_WRONLY)
        try:
            os.ftruncate(fd, pos)
            fsync(fd)
        finally:
            os.close(fd)

    def _migrate(self, buf: bytes) -> None:
        """Read a version 1 file whole and rewrite it in this format (the old file stays
        until the new one is in place: a crash meanwhile migrates again)."""
        self._rewrite(read_v1(buf, self._aead))
        log.info("journal: migrated a version 1 file")


def _read_prefix(fd: int, at: int, length: int) -> bytes:
    """The beginning of the payload at ``at`` (``length`` bytes in all) up to the end of
    its small documents, read in as few calls as their lengths allow."""
    buf = os.pread(fd, min(length, PREFIX_BYTES), at)

    def upto(n: int) -> None:
        nonlocal buf
        n = min(n, length)
        if n > len(buf):
            buf += os.pread(fd, n - len(buf), at + len(buf))

    upto(NONCE + LENGTH.size)
    hlen = LENGTH.unpack_from(buf, NONCE)[0]
    upto(NONCE + LENGTH.size + hlen + NONCE + LENGTH.size)
    at_small = NONCE + LENGTH.size + hlen + NONCE
    if len(buf) >= at_small + LENGTH.size:
        upto(at_small + LENGTH.size + LENGTH.unpack_from(buf, at_small)[0])
    return buf


def _free(fd: int, closing: Callable[[], bool]) -> None:
    """Close a replaced journal, giving its blocks back a MB at a time at ``FREE_RATE``:
    freed at once, a few hundred MB made the next saves' fsyncs wait 25 ms for the file
    system (and at 1 GB/s, 11-17 ms). Once the store is ``closing`` (nobody saves), the
    rest goes at once."""
    try:
        size = os.fstat(fd).st_size
        while size > 0 and not closing():
            size = max(0, size - SYNC_EVERY)
            os.ftruncate(fd, size)  # the file has no name any more: nobody else sees it
            time.sleep(SYNC_EVERY / FREE_RATE)
    except OSError:
        pass  # the last close frees what is left
    finally:
        os.close(fd)


def _release(data: Mapping[str, Any]) -> None:
    """Drop the documents. Freeing 100k of them in one go held the interpreter for 100 ms
    (the UI's loop with it: a store closes when the app locks), so a big store is freed a
    document at a time in a thread, which lets other threads in between."""
    tables = [docs for docs in data.values() if isinstance(docs, dict)]
    if sum(map(len, tables)) < RELEASE_IN_THREAD:
        return

    def free() -> None:
        for docs in tables:
            while docs:
                docs.popitem()

    threading.Thread(target=free, name="journal-release", daemon=True).start()
