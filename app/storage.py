"""Encrypted, crash-safe, append-only journal storage for TinyDB.

Why a journal: TinyDB's stock storages rewrite the whole database on every write, so a save
costs in proportion to the database. Here a save appends one entry (one atomic batch of
document changes across tables) and fsyncs it, so it costs in proportion to the change.
Opening replays the journal into memory; when the file grows past twice the live data it
is compacted into a new file (temp file, fsync, ``os.replace``, directory fsync).

Why compaction runs beside the saves, in a thread: at 100k records it takes seconds, and the
save that crossed the threshold (on the UI's event loop) used to wait for all of it. Now the
save only starts it. The compaction copies the table dicts (not the documents: the store
never changes a document it has committed) under the lock, encodes and writes the new file
without the lock while saves go on appending to the old one, and takes the lock again only to
re-seal the batches saved meanwhile at the new file's end and switch files.

Why ``commit(changes)`` beside ``write(data)``: TinyDB mutates documents in place and then
hands ``write()`` the whole database, so a storage cannot tell cheaply what changed. The
repository (``app.store.Store``) therefore commits exactly the documents of one batch.
``write(data)`` still works for plain TinyDB use, as a crash-safe full rewrite.

File (integers big-endian)::

    header  MAGIC(8) file_id(16) nonce(12) tag(16) crc32(4)
            tag = AES-GCM over b"" with AAD MAGIC+file_id: a wrong key fails the tag while
            the crc32 still holds, so it is told apart from a damaged header
    entry   length(4) crc32(length)(4) payload(length)
    payload hnonce(12) hlen(4) head_ct(hlen) bnonce(12) body_ct
            head = JSON [[table, doc_id], ...]   AAD b"H" file_id seq
            body = JSON [doc or null, ...]       AAD b"B" file_id seq head

AES-256-GCM with a fresh random nonce per encryption; the key is derived from the data key.
Every document's table and id are associated data of the ciphertext holding it; the list of
ids is itself encrypted, so the file reveals neither ids nor content. ``seq`` is the
entry's position (1, 2, ...) and is never stored: a reordered, removed, duplicated or
foreign entry fails authentication. Only a crash mid-append can damage the end: an
incomplete final entry (short frame, length past the end of file, a frame that is zeros,
or zeros from a disk sector boundary to the end of the file: sectors a power cut left
unwritten) is a torn tail and is truncated; any other damage, such as a complete final
entry whose tag or ciphertext was zeroed, raises ``StoreCorrupted`` and the file is left
untouched. Truncation at an entry boundary (a rollback) cannot be detected without state
kept outside the file.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import struct
import threading
import time
import zlib
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from tinydb.storages import Storage

from app.errors import StoreClosed, StoreCorrupted, StoreError

try:
    import fcntl
except ImportError:  # Windows (desktop development only)
    fcntl = None  # type: ignore[assignment]

log = logging.getLogger(__name__)

Doc = dict[str, Any]
Data = dict[str, dict[str, Doc]]
Changes = Mapping[tuple[str, str], Doc | None]

MAGIC = b"LIAJRN\x00\x01"
NONCE = 12
TAG = 16
HEADER_LEN = 8 + 16 + NONCE + TAG + 4
FRAME = struct.Struct(">II")
MIN_PAYLOAD = NONCE + 4 + TAG + NONCE + TAG
# The smallest unit a disk writes. What a power cut leaves unwritten is whole sectors: zeros
# from a sector boundary to the end of the file (or an entry whose frame never landed).
SECTOR = 512
_SLACK = 8  # zero bytes that may precede the unwritten sectors as part of the landed data
CHUNK_DOCS = 512  # documents per entry when compacting: few large decryptions open fast
# A compacted entry is decrypted and parsed in one call, which holds the interpreter: at
# 256 KB that is a few ms, so the UI's loop keeps its turns while a big store opens.
CHUNK_BYTES = 1 << 18
FREEZE_BATCH = 200  # documents in one commit (a pulled page) taken out of the collector
RELEASE_IN_THREAD = 2_000  # documents: a store this big is freed beside the UI (_release)
COMPACT_MIN_BYTES = 1 << 20  # never compact a small file
COMPACT_RATIO = 2.0  # compact when the file is this many times the live data
# A compaction switches files under the lock once at most this many saves wait to be
# re-sealed at its end; more are sealed first without the lock (a save waits < 1 ms).
SWITCH_BATCHES = 16
# While encoding, a compaction hands the interpreter to other threads (a save, the UI's
# loop) every this many documents, instead of making them wait for the 5 ms switch interval
# (twice in a save: after its write and after its fsync). It sleeps, if briefly: a thread
# that releases the interpreter and asks for it back at once mostly gets it back.
YIELD_DOCS = 32
YIELD_SECONDS = 0.0001
SYNC_EVERY = 4 << 20  # bytes a compaction writes between two flushes (write_temp)

# ASCII-only JSON parses faster than UTF-8 with accents (most text here is ASCII anyway).
_ENCODE = json.JSONEncoder(ensure_ascii=True, separators=(",", ":"), check_circular=False).encode


def derive_key(key: bytes, purpose: str) -> bytes:
    """A 256-bit subkey of the data key for one purpose (journal, blobs, blob names)."""
    if not isinstance(key, bytes) or len(key) != 32:
        raise ValueError("the data key must be 32 bytes")
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose.encode())
    return hkdf.derive(key)


def fsync(fd: int) -> None:
    """Flush a file to stable storage (F_FULLFSYNC where plain fsync is not enough)."""
    if fcntl is not None and hasattr(fcntl, "F_FULLFSYNC"):  # macOS, iOS
        try:
            fcntl.fcntl(fd, fcntl.F_FULLFSYNC)
            return
        except OSError:
            pass
    if hasattr(os, "fdatasync"):
        os.fdatasync(fd)
    else:
        os.fsync(fd)


def fsync_dir(directory: Path) -> None:
    """Make a rename or unlink in ``directory`` durable (a no-op where unsupported)."""
    if os.name == "nt":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, chunks: Iterable[bytes]) -> None:
    """Write a new file crash-safely: temp file beside it, fsync, rename, directory fsync."""
    tmp = write_temp(path, chunks)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def write_temp(path: Path, chunks: Iterable[bytes], *, sync_every: int = 0) -> Path:
    """Write and fsync ``path``.tmp (mode 0600); the caller renames it into place.

    ``sync_every`` bytes, it also flushes what it wrote so far: a save's fsync beside one
    of a few hundred MB waited for that (70 ms), beside one of a few MB it does not."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        unsynced = 0
        for chunk in chunks:
            _write_all(fd, chunk)
            unsynced += len(chunk)
            if sync_every and unsynced >= sync_every:
                fsync(fd)
                unsynced = 0
        fsync(fd)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    return tmp


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


class _Torn(Exception):
    """The journal ends in an incomplete entry (a crash mid-append)."""


class _Cancelled(Exception):
    """The store closed while a compaction was writing its new file."""


class JournalStorage(Storage):
    """A TinyDB storage: documents in memory, changes appended to an encrypted journal."""

    def __init__(self, path: str | Path, key: bytes) -> None:
        self.path = Path(path)
        self._aead = AESGCM(derive_key(key, "liaison/journal/v1"))
        self._lock_fd: int | None = _lock(self.path.with_name(self.path.name + ".lock"))
        self._fd: int | None = None
        self._data: Data = {}
        # Held while the file or the documents change (an append, a switch of files).
        self._lock = threading.Lock()
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
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        except BaseException:
            self.close()
            raise

    # -- the TinyDB interface ---------------------------------------------------------

    def read(self) -> Data:
        """The live documents by table; callers must copy before changing anything."""
        self._check_open()
        return self._data

    def write(self, data: dict[str, dict[str, Any]]) -> None:
        """Replace everything (TinyDB's generic path): a crash-safe full rewrite."""
        self._check_open()
        with self._compacting, self._lock:
            try:
                self._rewrite({t: dict(docs) for t, docs in data.items()})
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
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # closing the descriptor releases the flock
            self._lock_fd = None
        data, self._data = self._data, {}
        _release(data)

    # -- the fast path ----------------------------------------------------------------

    def commit(self, changes: Changes) -> None:
        """Durably apply one batch: ``{(table, doc_id): doc, or None to remove}``."""
        if not changes:
            self._check_open()
            return
        with self._lock:
            fd = self._check_open()
            if fd < 0:  # a failed switch could not reopen the journal: refuse to write
                raise StoreClosed("the store's file could not be reopened: unlock again")
            entry, parts = self._entry_bytes(self._file_id, self._seq + 1, changes)
            try:
                _write_all(fd, entry)
                fsync(fd)
            except BaseException:
                self._undo_append(fd)
                raise
            self._seq += 1
            self._size += len(entry)
            for ((table, doc_id), doc), part in zip(changes.items(), parts, strict=True):
                self._apply(table, doc_id, doc, len(part))
            if self._since is not None:
                self._since.append(changes)
            if len(changes) >= FREEZE_BATCH:
                # A pulled page: its documents stay, like those loaded at open (see _load).
                # Left in the collector's sight, a first sync of 100k records made full
                # collections of up to 300 ms, holding the UI's loop too.
                gc.freeze()
            grown = self._size > COMPACT_MIN_BYTES and self._size > COMPACT_RATIO * self._live
            if grown and self._compactor is None and self._since is None:
                self._compactor = threading.Thread(
                    target=self._compact_in_background, name="journal-compaction", daemon=True
                )
                self._compactor.start()

    def compact(self) -> None:
        """Rewrite the journal with only the live documents, now (saves may go on)."""
        try:
            self._compact()
        except _Cancelled:
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

    # -- internals --------------------------------------------------------------------

    def _compact_in_background(self) -> None:
        try:
            self._compact()
        except _Cancelled:
            pass
        except Exception as exc:  # the saves are durable in the old file; compact later
            log.warning("journal: compaction failed (%s)", type(exc).__name__)
        finally:
            with self._lock:
                self._compactor = None

    def _compact(self) -> None:
        """Write the live documents to a new file beside the journal while saves go on,
        then, under the lock, add the batches saved meanwhile and switch to it."""
        with self._compacting:
            self._compact_now()

    def _compact_now(self) -> None:
        with self._lock:
            self._check_open()
            snapshot = {table: dict(docs) for table, docs in self._data.items()}
            self._since = []
        tmp: Path | None = None
        try:
            file_id = os.urandom(16)
            entries, _ = self._encode(file_id, snapshot, cancellable=True)
            del snapshot
            tmp = write_temp(self.path, entries, sync_every=SYNC_EVERY)
            seq, size = len(entries) - 1, sum(map(len, entries))
            del entries
            while True:
                with self._lock:
                    self._check_open()
                    if len(self._since or ()) <= SWITCH_BATCHES:
                        seq, size = self._append(tmp, file_id, seq, size, self._since or [])
                        self._switch(tmp, file_id, seq, size)
                        return
                    # Many saves came meanwhile: seal them without the lock, then look again.
                    caught, self._since = self._since or [], []
                if self._closing:
                    raise _Cancelled
                seq, size = self._append(tmp, file_id, seq, size, caught)
        except BaseException:
            if tmp is not None:
                tmp.unlink(missing_ok=True)
            raise
        finally:
            with self._lock:
                self._since = None
                retired, self._retired = self._retired, []
            for fd in retired:
                _free(fd)

    def _append(
        self, tmp: Path, file_id: bytes, seq: int, size: int, batches: list[Changes]
    ) -> tuple[int, int]:
        """Seal ``batches`` as the next entries of the new file ``tmp`` (whose last entry is
        ``seq`` and length ``size``); its new last entry and length."""
        if not batches:
            return seq, size
        tail = []
        for changes in batches:
            seq += 1
            entry, _ = self._entry_bytes(file_id, seq, changes)
            tail.append(entry)
        data = b"".join(tail)
        fd = os.open(tmp, os.O_WRONLY | os.O_APPEND)
        try:
            _write_all(fd, data)
            fsync(fd)
        finally:
            os.close(fd)
        return seq, size + len(data)

    def _switch(self, tmp: Path, file_id: bytes, seq: int, size: int) -> None:
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
        self._file_id, self._seq, self._size = file_id, seq, size
        self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        fsync_dir(self.path.parent)

    def _replace(self, tmp: Path) -> None:
        """``os.replace(tmp, journal)`` with the journal's descriptor closed (Windows cannot
        replace an open file); on failure the old journal stays open for appends."""
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        try:
            os.replace(tmp, self.path)
        except BaseException:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
            raise

    def _entry_bytes(self, file_id: bytes, seq: int, changes: Changes) -> tuple[bytes, list[bytes]]:
        """One batch as a framed, sealed entry, and each document's JSON."""
        keys = [[table, doc_id] for table, doc_id in changes]
        parts = [_ENCODE(doc).encode() for doc in changes.values()]
        head = _ENCODE(keys).encode()
        body = b"[" + b",".join(parts) + b"]"
        payload = self._seal(file_id, seq, head, body)
        frame = FRAME.pack(len(payload), zlib.crc32(len(payload).to_bytes(4, "big")))
        return frame + payload, parts

    def _check_open(self) -> int:
        """The journal's descriptor; StoreClosed once the store is closed. Reads call it too,
        without the lock: while a compaction switches files the descriptor is briefly None,
        which is not closed (``_closed`` is)."""
        if self._closed:
            raise StoreClosed("the store is closed")
        if self._fd is None:  # only under the lock can this be told apart from a switch
            return -1
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

    def _apply(self, table: str, doc_id: str, doc: Doc | None, size: int) -> None:
        docs = self._data.setdefault(table, {})
        sizes = self._sizes.setdefault(table, {})
        self._live -= sizes.pop(doc_id, 0)
        if doc is None:
            docs.pop(doc_id, None)
        else:
            docs[doc_id] = doc
            sizes[doc_id] = size
            self._live += size

    def _seal(self, file_id: bytes, seq: int, head: bytes, body: bytes) -> bytes:
        seq_bytes = seq.to_bytes(8, "big")
        hnonce, bnonce = os.urandom(NONCE), os.urandom(NONCE)
        head_ct = self._aead.encrypt(hnonce, head, b"H" + file_id + seq_bytes)
        body_ct = self._aead.encrypt(bnonce, body, b"B" + file_id + seq_bytes + head)
        return hnonce + len(head_ct).to_bytes(4, "big") + head_ct + bnonce + body_ct

    def _open(self, file_id: bytes, seq: int, payload: memoryview) -> tuple[list[Any], list[Any]]:
        seq_bytes = seq.to_bytes(8, "big")
        hlen = int.from_bytes(payload[NONCE : NONCE + 4], "big")
        if hlen < TAG or NONCE + 4 + hlen + NONCE + TAG > len(payload):
            raise InvalidTag
        start = NONCE + 4
        head = self._aead.decrypt(
            bytes(payload[:NONCE]), payload[start : start + hlen], b"H" + file_id + seq_bytes
        )
        bstart = start + hlen + NONCE
        body = self._aead.decrypt(
            bytes(payload[bstart - NONCE : bstart]),
            payload[bstart:],
            b"B" + file_id + seq_bytes + head,
        )
        keys, docs = json.loads(head.decode()), json.loads(body.decode())
        if not isinstance(keys, list) or not isinstance(docs, list) or len(keys) != len(docs):
            raise ValueError("entry shape")
        return keys, docs

    def _header(self, file_id: bytes) -> bytes:
        nonce = os.urandom(NONCE)
        tag = self._aead.encrypt(nonce, b"", MAGIC + file_id)
        head = MAGIC + file_id + nonce + tag
        return head + zlib.crc32(head).to_bytes(4, "big")

    def _encode(
        self, file_id: bytes, data: Data, *, cancellable: bool = False
    ) -> tuple[list[bytes], dict[str, dict[str, int]]]:
        """The entries of a compacted file (header first) and each document's size; a
        ``cancellable`` encoding stops when the store closes."""
        entries = [self._header(file_id)]
        sizes: dict[str, dict[str, int]] = {}
        keys: list[list[str]] = []
        parts: list[bytes] = []
        size = n = 0

        def flush() -> None:
            nonlocal keys, parts, size
            if cancellable and self._closing:
                raise _Cancelled
            head = _ENCODE(keys).encode()
            body = b"[" + b",".join(parts) + b"]"
            payload = self._seal(file_id, len(entries), head, body)
            crc = zlib.crc32(len(payload).to_bytes(4, "big"))
            entries.append(FRAME.pack(len(payload), crc) + payload)
            keys, parts, size = [], [], 0

        for table, docs in data.items():
            table_sizes = sizes.setdefault(table, {})
            for doc_id, doc in docs.items():
                n += 1
                if cancellable and n % YIELD_DOCS == 0:
                    time.sleep(YIELD_SECONDS)  # lets a waiting thread take the GIL now
                keys.append([table, doc_id])
                parts.append(_ENCODE(doc).encode())
                table_sizes[doc_id] = len(parts[-1])
                size += len(parts[-1])
                if len(keys) >= CHUNK_DOCS or size >= CHUNK_BYTES:
                    flush()
        if keys:
            flush()
        return entries, sizes

    def _rewrite(self, data: Data) -> None:
        """Write ``data`` as the whole journal and make it the documents in memory."""
        file_id = os.urandom(16)
        entries, sizes = self._encode(file_id, data)
        tmp = write_temp(self.path, entries)
        appending = self._fd is not None
        try:
            if appending:
                self._replace(tmp)
            else:
                os.replace(tmp, self.path)
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        self._file_id, self._seq, self._size = file_id, len(entries) - 1, sum(map(len, entries))
        self._data, self._sizes = data, sizes
        self._live = sum(sum(s.values()) for s in sizes.values())
        if appending:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_APPEND)
        fsync_dir(self.path.parent)

    def _load(self) -> None:
        """Replay the whole journal into memory; cut a torn tail; raise on damage."""
        with open(self.path, "rb") as f:
            buf = f.read()
        # Replay makes millions of small objects, none of them garbage: without the cyclic
        # collector's passes it runs about 15% faster.
        collecting = gc.isenabled()
        gc.disable()
        try:
            self._replay_all(buf)
        finally:
            # The documents stay until close and hold no reference cycles (refcounting frees
            # them): out of the collector's sight, so that no full collection walks them —
            # at 20k records one took 130 ms, on whatever thread, the UI's too. The cost: a
            # cycle alive now (say the PIN screen's controls) is never collected once it is
            # garbage — a few kB per unlock.
            gc.freeze()
            if collecting:
                gc.enable()

    def _replay_all(self, buf: bytes) -> None:
        self._file_id = _check_header(buf, self._aead)
        view = memoryview(buf)
        data: Data = {}
        self._data, self._sizes, self._live = data, {}, 0
        pos, seq = HEADER_LEN, 0
        while pos < len(buf):
            try:
                keys, docs, end = self._entry(buf, view, pos, seq + 1)
            except _Torn:
                self._truncate(pos, len(buf))
                break
            seq += 1
            self._replay(keys, docs, (end - pos) // max(1, len(docs)))
            pos = end
        self._seq, self._size = seq, pos

    def _replay(self, keys: list[list[str]], docs: list[Doc | None], share: int) -> None:
        """``_apply`` for a whole entry; ``share`` estimates each document's size."""
        data, all_sizes, live = self._data, self._sizes, self._live
        table = ""
        for (name, doc_id), doc in zip(keys, docs, strict=True):
            if name != table:  # entries mostly touch one table: look it up once per run
                table = name
                tdocs, sizes = data.setdefault(name, {}), all_sizes.setdefault(name, {})
            live -= sizes.pop(doc_id, 0)
            if doc is None:
                tdocs.pop(doc_id, None)
            else:
                tdocs[doc_id] = doc
                sizes[doc_id] = share
                live += share
        self._live = live

    def _entry(
        self, buf: bytes, view: memoryview, pos: int, seq: int
    ) -> tuple[list[Any], list[Any], int]:
        rest = len(buf) - pos
        if rest < FRAME.size:
            raise _Torn
        length, crc = FRAME.unpack_from(buf, pos)
        if zlib.crc32(buf[pos : pos + 4]) != crc:
            # The frame itself never landed, or only its part before a sector boundary.
            if _unwritten(buf, pos) < pos + FRAME.size or not buf[pos:].strip(b"\0"):
                raise _Torn
            raise _damaged(f"entry {seq} has a damaged frame")
        if length > rest - FRAME.size:
            raise _Torn
        end = pos + FRAME.size + length
        if length < MIN_PAYLOAD:
            raise _damaged(f"entry {seq} is too short")
        try:
            # Authenticated content is what commit() wrote: no need to re-check its shape.
            keys, docs = self._open(self._file_id, seq, view[pos + FRAME.size : end])
        except (InvalidTag, ValueError, TypeError):
            # The final entry's last sectors never landed; a zeroed tag or ciphertext that
            # does not run from a sector boundary to the end is damage, not a power cut.
            if end == len(buf) and _unwritten(buf, pos + FRAME.size) < end:
                raise _Torn from None
            raise _damaged(f"entry {seq} does not authenticate") from None
        return keys, docs, end

    def _truncate(self, pos: int, end: int) -> None:
        log.warning("journal: dropping a torn final entry (%d bytes)", end - pos)
        fd = os.open(self.path, os.O_WRONLY)
        try:
            os.ftruncate(fd, pos)
            fsync(fd)
        finally:
            os.close(fd)


def _free(fd: int) -> None:
    """Close a replaced journal, giving its blocks back a few MB at a time: freed at once,
    a few hundred MB made the next saves' fsyncs wait 25 ms for the file system."""
    try:
        size = os.fstat(fd).st_size
        while size > 0:
            size = max(0, size - SYNC_EVERY)
            os.ftruncate(fd, size)  # the file has no name any more: nobody else sees it
    except OSError:
        pass  # the last close frees what is left
    finally:
        os.close(fd)


def _release(data: Data) -> None:
    """Drop the documents. Freeing 100k of them in one go held the interpreter for 100 ms
    (the UI's loop with it: a store closes when the app locks), so a big store is freed a
    document at a time in a thread, which lets other threads in between."""
    if sum(map(len, data.values())) < RELEASE_IN_THREAD:
        return

    def free() -> None:
        for docs in data.values():
            while docs:
                docs.popitem()

    threading.Thread(target=free, name="journal-release", daemon=True).start()


def _check_header(buf: bytes, aead: AESGCM) -> bytes:
    if len(buf) < HEADER_LEN or buf[:8] != MAGIC:
        raise _damaged("not a Liaison journal, or its header is damaged")
    head = buf[: HEADER_LEN - 4]
    if zlib.crc32(head) != int.from_bytes(buf[HEADER_LEN - 4 : HEADER_LEN], "big"):
        raise _damaged("the journal header is damaged")
    file_id, nonce, tag = head[8:24], head[24:36], head[36:52]
    try:
        aead.decrypt(nonce, tag, MAGIC + file_id)
    except InvalidTag:
        raise StoreCorrupted(
            "cannot decrypt the store (wrong key or damaged file): the header is intact, "
            "so the key is most likely wrong"
        ) from None
    return file_id


def _unwritten(buf: bytes, start: int) -> int:
    """Where the zeros that a power cut could have left begin: a sector boundary after
    ``start`` from which every byte to the end is zero (``len(buf)`` when there is none).

    The zeros must begin at the boundary, give or take the few zero bytes landed data can
    end with (at most 3 in a length field; more in ciphertext by chance 1 in 2**40).
    """
    first_zero = start + len(buf[start:].rstrip(b"\0"))
    boundary = -(-first_zero // SECTOR) * SECTOR
    return boundary if boundary < len(buf) and boundary - first_zero < _SLACK else len(buf)


def _damaged(what: str) -> StoreCorrupted:
    return StoreCorrupted(f"the store file is damaged or was tampered with: {what}; left as is")


def _lock(path: Path) -> int:
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    if fcntl is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise StoreError("the store is already open (another window or process)") from None
    return fd
