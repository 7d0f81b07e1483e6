"""The record repository and outbox on the encrypted journal (``app.storage``).

Records (``{id, type, fields, clock, rev, deleted}``), outbox mutations and small settings
are three tables of one ``JournalStorage``. Every change goes through ``Store.commit``: one
batch, one durable journal entry, so a record and its outbox mutation (or a pulled page
and its cursor) are saved together or not at all. Later tables (rejected mutations,
conflicts) use the same primitive. Reads come from memory; whatever leaves the store is a
copy, so a caller cannot change stored documents behind the journal's back — except from
``scan``, for the read models: at 50k records a deep copy of each record read cost 7-9 times
the query itself.
"""

from __future__ import annotations

import builtins
import contextlib
import logging
import re
import shutil
import threading
import unicodedata
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar, cast

from tinydb.queries import QueryLike
from tinydb.table import Document, Table

from app.blobs import BlobStore
from app.errors import RecordNotFound, StoreClosed
from app.facts import TYPES as FACT_TYPES
from app.facts import Fact, fact_of
from app.filesafe import fsync_dir
from app.storage import RECORDS, Changes, JournalStorage, RecordTable
from app.storeformat import Doc
from sync import merge as merging
from sync import merged, visits
from sync.attachments import SENT
from sync.attachments import hashes as blob_hashes
from sync.engine import CONFLICTS, REJECTED, REPAIR
from sync.errors import FieldError, InvalidRecord, ProtocolError
from sync.hlc import Clock, wall_ms
from sync.protocol import tombstone
from sync.schema import is_uuid, patient_of, validate

OUTBOX, META = "outbox", "meta"
JOURNAL = "store.journal"
BLOBS = "blobs"
_DEVICE = "_device"  # meta key of the next mutation id and the latest HLC, never a user key
_MISSING = object()
# A typed phone number (or part of one): digits with the usual + ( ) - . between them.
_PHONE_WORD = re.compile(r"\+?\(?\d[\d().\-]*")
_MARKS = re.compile("[\u0300-\u036f\u1ab0-\u1aff\u1dc0-\u1dff\u20d0-\u20ff\ufe20-\ufe2f]+")
# Letters with a stroke or ligatures do not decompose; people type them without.
_LETTERS = str.maketrans(
    {"ł": "l", "ø": "o", "đ": "d", "ħ": "h", "ı": "i", "æ": "ae", "œ": "oe", "ð": "d", "þ": "th"}
)

Records = list[Doc]
T = TypeVar("T")
log = logging.getLogger(__name__)


def clone(value: T) -> T:
    """A deep copy of JSON-shaped data (several times faster than ``copy.deepcopy``)."""
    if isinstance(value, dict):
        return cast(T, {k: clone(v) for k, v in value.items()})
    if isinstance(value, list):
        return cast(T, [clone(v) for v in value])
    return value


def fold(text: str) -> str:
    """Text for matching: case-folded, accents removed (also from letters like ł and ø)."""
    if text.isascii():
        return text.lower()
    decomposed = unicodedata.normalize("NFKD", text.casefold())
    return _MARKS.sub("", decomposed).translate(_LETTERS)


class _CopiedDocument(Document):
    """Query results are deep copies, so changing one never changes the store."""

    def __init__(self, value: Mapping[str, Any], doc_id: str) -> None:
        super().__init__(clone(dict(value)), doc_id)  # type: ignore[arg-type]


class ReadOnlyTable(Table):
    """A TinyDB table over one store table for queries; writes go through ``Store``."""

    document_class = _CopiedDocument  # type: ignore[assignment]
    document_id_class = str  # type: ignore[assignment]  # record ids are UUID strings

    def __init__(self, storage: JournalStorage, name: str) -> None:
        # No query cache: cached results would be shared between callers.
        super().__init__(storage, name, cache_size=0)

    def _update_table(self, updater: Callable[[dict[int, Mapping[str, Any]]], None]) -> None:
        raise TypeError("store tables are read-only here: write through app.store.Store")


class Store:
    """Encrypted records, outbox, settings and blobs of one device."""

    def __init__(self, directory: Path, storage: JournalStorage, clock: Clock, key: bytes) -> None:
        self.directory = directory
        self._storage: JournalStorage | None = storage
        self._clock = clock
        self._blobs = BlobStore(directory / BLOBS, key)
        self._lock = threading.RLock()
        self._tables = {name: ReadOnlyTable(storage, name) for name in (RECORDS, OUTBOX, META)}
        # patient id -> {record id: its type}
        self._by_patient: dict[str, dict[str, str]] = {}
        # record type -> {record id: its facts (app.facts), None for a deleted record}
        self._by_type: dict[str, dict[str, Fact | None]] = {}
        self._names: dict[str, str] = {}  # live patient id -> folded name, phone digits
        # live record id -> its patient, for the records no pull has returned (no rev yet)
        self._unsent: dict[str, str] = {}
        self._by_name: builtins.list[tuple[str, str]] | None = None  # _names sorted, cached
        self._pending: Counter[str] = Counter()  # record id -> mutations in the outbox
        self._refs: Counter[str] = Counter()  # blob hash -> records and mutations naming it
        data = storage.read()
        self._index_all(storage.summaries())
        for mutation in data.get(OUTBOX, {}).values():
            self._pending[mutation["record_id"]] += 1
            if "attachments" in mutation["fields"]:
                self._refs.update(_blobs(mutation))
        device = data.get(META, {}).get(_DEVICE, {}).get("value", {})
        last_outbox = max((m["id"] for m in data.get(OUTBOX, {}).values()), default=0)
        self._next_id = max(int(device.get("next_mutation_id", 1)), last_outbox + 1)
        self._mark: str = device.get("clock", "")  # the newest HLC issued or seen, persisted
        self._watchers: builtins.list[Callable[[], None]] = []
        if self._mark:  # a wall clock set back must not make new edits look older
            clock.observe(self._mark)

    @classmethod
    def open(
        cls,
        directory: str | Path,
        key: bytes,
        *,
        node_id: str,
        wall: Callable[[], int] | None = None,
    ) -> Store:
        """Open the store in ``directory`` (created when missing) with the 32-byte data key."""
        directory = Path(directory)
        if not directory.is_dir():
            directory.mkdir(mode=0o700, parents=True)
            fsync_dir(directory.parent)  # or a power cut could take the new directory away
        clock = Clock(node_id, wall or wall_ms)
        storage = JournalStorage(directory / JOURNAL, key, summarize=summary)
        try:
            return cls(directory, storage, clock, key)
        except BaseException:
            storage.close()
            raise

    def close(self) -> None:
        """Close the files and drop the data from memory; later calls raise StoreClosed."""
        with self._lock:
            if self._storage is not None:
                self._storage.close()
                self._storage = None
            self._by_patient, self._by_type, self._names, self._by_name = {}, {}, {}, None
            self._unsent = {}
            self._refs = Counter()

    # -- the one write primitive ------------------------------------------------------

    def commit(self, changes: Changes) -> None:
        """Durably apply one batch ``{(table, doc_id): doc or None}``; indexes follow.

        The store keeps the given documents: the caller must not change them afterwards.
        A photo blob that no record or pending mutation names any more is deleted with
        the write (``blob_in_use``).
        """
        with self._lock:
            storage = self._live()
            data = storage.read()
            indexed = [k for k in changes if k[0] in (RECORDS, OUTBOX)]
            before = {k: data.get(k[0], {}).get(k[1]) for k in indexed}
            refs: Counter[str] = Counter()
            for key, old in before.items():
                refs.subtract(_blobs(old))
                refs.update(_blobs(changes[key]))
            unused = [h for h, n in refs.items() if n < 0 and self._refs[h] + n <= 0]
            sent = data.get(META, {})
            if any(SENT + h in sent for h in unused):  # forget the upload with the blob
                changes = {**changes, **{(META, SENT + h): None for h in unused}}
            storage.commit(changes)
            if refs:
                self._refs.update(refs)
                self._refs = +self._refs  # drop zero counts
                for sha in unused:
                    self._blobs.delete(sha)
            for (table, doc_id), old in before.items():
                new = changes[(table, doc_id)]
                if table == RECORDS:
                    self._index(doc_id, old, new)
                    continue
                if old is not None:
                    self._pending[old["record_id"]] -= 1
                    if not self._pending[old["record_id"]]:
                        del self._pending[old["record_id"]]
                if new is not None:
                    self._pending[new["record_id"]] += 1

    def compact(self) -> None:
        """Rewrite the journal with only live data, now (it also happens by itself, beside
        the saves, as the journal grows). Saves from other threads go on meanwhile."""
        self._live().compact()

    def wait_compacted(self) -> None:
        """Wait for a compaction started by a save to finish (tests, benchmarks)."""
        self._live().wait_compacted()

    def table(self, name: str) -> ReadOnlyTable:
        """A read-only TinyDB table of the store (``records``, ``outbox``, ``meta``, ...)."""
        storage = self._live()
        known = self._tables.get(name)
        return known if known is not None else ReadOnlyTable(storage, name)

    @property
    def records_table(self) -> ReadOnlyTable:
        """The records as a read-only TinyDB table (results are copies)."""
        return self.table(RECORDS)

    @property
    def node_id(self) -> str:
        """This store's clock node: the device id it was enrolled with (it stays the same
        after signing in again), so a record's clock tells which writes were made here."""
        return self._clock.node

    @property
    def last_mutation_id(self) -> int:
        """The id of the newest mutation ever queued (0 before the first)."""
        with self._lock:
            self._live()
            return self._next_id - 1

    # -- records ----------------------------------------------------------------------

    def watch(self, callback: Callable[[], None]) -> None:
        """Call ``callback()`` after each ``put`` and ``delete`` (a local save; not a pull)."""
        self._watchers.append(callback)

    def _saved(self) -> None:
        for callback in list(self._watchers):
            callback()

    def put(self, type: str, fields: Mapping[str, Any], record_id: str | None = None) -> Doc:
        """Create or update a record; changed fields get a new HLC and one outbox mutation."""
        record = self._put(type, fields, record_id)
        self._saved()  # outside the lock: a watcher may read the store
        return record

    def _put(self, type: str, fields: Mapping[str, Any], record_id: str | None) -> Doc:
        with self._lock:
            records = self._docs(RECORDS)
            if not isinstance(fields, Mapping):
                raise InvalidRecord([FieldError("fields", "must be an object")])
            if record_id is None:
                record_id, old = str(uuid.uuid4()), None
            elif not is_uuid(record_id):
                raise InvalidRecord([FieldError("id", "must be a lower-case UUID")])
            else:
                old = records.get(record_id)
            if old is not None and old["deleted"]:
                raise RecordNotFound("the record was deleted")
            if old is not None and old["type"] != type:
                raise InvalidRecord([FieldError("type", "differs from the stored record's type")])
            old_fields: dict[str, Any] = old["fields"] if old else {}
            errors = validate(type, {**old_fields, **fields})
            if errors:
                raise InvalidRecord(errors)
            changed = {k: clone(v) for k, v in fields.items() if _differs(old_fields, k, v)}
            if old is not None and not changed:
                return clone(old)
            if errors := visits.change_errors(type, old_fields, {**old_fields, **fields}):
                raise InvalidRecord(errors)
            stamp = self._clock.now()
            rev = old["rev"] if old else None
            record = {
                "id": record_id,
                "type": type,
                "fields": {**old_fields, **changed},
                "clock": {**(old["clock"] if old else {}), **dict.fromkeys(changed, stamp)},
                "rev": rev,
                "deleted": False,
            }
            self._queue(record, "upsert", changed, dict.fromkeys(changed, stamp), rev, stamp)
            return clone(record)

    def get(self, record_id: str, *, include_deleted: bool = False) -> Doc | None:
        """A copy of the record, or None (also for a tombstone unless ``include_deleted``)."""
        with self._lock:
            record = self._docs(RECORDS).get(record_id)
            if record is None or (record["deleted"] and not include_deleted):
                return None
            return clone(record)

    def list(
        self,
        type: str | None = None,
        *,
        patient_id: str | None = None,
        include_deleted: bool = False,
    ) -> Records:
        """Records by type and/or patient (the patient and every record naming it)."""
        with self._lock:
            return [clone(r) for r in self._select(type, patient_id, include_deleted)]

    def scan(
        self, type: str | None = None, *, patient_id: str | None = None
    ) -> Sequence[Mapping[str, Any]]:
        """The live records by type and/or patient as stored, not copies: for read models,
        which only read. Never change what it returns (the journal would not know)."""
        with self._lock:
            return self._select(type, patient_id, False)

    def _select(
        self, type: str | None, patient_id: str | None, include_deleted: bool
    ) -> builtins.list[Doc]:
        records = self._records()
        if patient_id is not None:
            ids: Iterable[str] = self._by_patient.get(patient_id, ())
        elif type is not None:
            ids = self._by_type.get(type, ())
        else:
            ids = records
        return [
            r
            for r in records.many(list(ids))
            if r is not None
            and (type is None or r["type"] == type)
            and (include_deleted or not r["deleted"])
        ]

    def peek(self, ids: Iterable[str]) -> Sequence[Mapping[str, Any]]:
        """The live records with these ids, in their order, as stored (as ``scan``: never
        change them); unknown and deleted ids are left out."""
        with self._lock:
            found = self._records().many(list(ids))
            return [r for r in found if r is not None and not r["deleted"]]

    def unsent_patients(self) -> builtins.list[str]:
        """The patients of the live records no pull has returned yet (saved here, with no
        rev), each once: from the index, without reading the records."""
        with self._lock:
            return builtins.list(dict.fromkeys(self._unsent.values()))

    def get_many(self, ids: Iterable[str]) -> Records:
        """Copies of the live records with these ids, in their order (as ``peek``, but
        copies: the caller may change them)."""
        with self._lock:
            return [clone(r) for r in self.peek(ids)]  # type: ignore[arg-type]

    def patient_ids(self, text: str = "") -> builtins.list[str]:
        """The ids of live patients whose name or phone number contains every word of
        ``text`` (any case, any accents; a number typed with dashes or spaces still
        matches), by name; every live patient for no text."""
        with self._lock:
            words = [_digits(w) if _PHONE_WORD.fullmatch(w) else w for w in fold(text).split()]
            if self._by_name is None:  # kept until a patient's name or phone changes
                self._by_name = sorted((n, i) for i, n in self._names.items())
            if not words:
                return [i for _, i in self._by_name]
            return [i for n, i in self._by_name if all(w in n for w in words)]

    def facts(
        self, type: str | None = None, *, patient_id: str | None = None
    ) -> builtins.list[tuple[str, str, str, str]]:
        """``(id, type, when, state)`` of the live records by type and/or patient that have
        facts (``app.facts``): what a list filters on, without reading the records."""
        with self._lock:
            by_type = self._by_type
            if patient_id is not None:
                found = (
                    (i, kind, by_type[kind].get(i))
                    for i, kind in self._by_patient.get(patient_id, {}).items()
                    if type is None or kind == type
                )
            else:
                kinds = [type] if type is not None else builtins.list(by_type)
                found = ((i, k, f) for k in kinds for i, f in by_type.get(k, {}).items())
            return [(i, kind, *f) for i, kind, f in found if f is not None]

    def fact(self, record_id: str) -> Fact | None:
        """``(when, state)`` of a live record with facts (``app.facts``), or None."""
        with self._lock:
            for kind in FACT_TYPES:
                found = self._by_type.get(kind, {}).get(record_id)
                if found is not None:
                    return found
            return None

    def search_patients(self, text: str, limit: int = 50) -> Records:
        """Copies of the first ``limit`` live patients of ``patient_ids(text)``."""
        with self._lock:
            return self.get_many(self.patient_ids(text)[: max(0, limit)])

    def delete(self, record_id: str) -> None:
        """Tombstone the record (only ``patient_id`` kept) and queue a delete mutation."""
        with self._lock:
            old = self._docs(RECORDS).get(record_id)
            if old is None:
                raise RecordNotFound("no record with that id")
            if old["deleted"]:
                return
            if errors := visits.delete_errors(old["type"], old["fields"]):
                raise InvalidRecord(errors)
            stamp = self._clock.now()
            record = _tombstone(old, old["rev"])
            self._queue(record, "delete", {}, {}, old["rev"], stamp)
        self._saved()

    def find(self, cond: QueryLike, *, include_deleted: bool = False) -> Records:
        """Records matching a TinyDB query, e.g. ``where("type") == "task"`` (copies)."""
        with self._lock:
            found = self.records_table.search(cond)
            return [dict(r) for r in found if include_deleted or not r["deleted"]]

    # -- outbox -----------------------------------------------------------------------

    def outbox(self, limit: int | None = None) -> Records:
        """Pending mutations, oldest first."""
        with self._lock:
            pending = sorted(self._docs(OUTBOX).values(), key=lambda m: m["id"])
            return [clone(m) for m in pending[:limit]]

    def pending_count(self) -> int:
        """How many mutations wait to be pushed."""
        with self._lock:
            return len(self._docs(OUTBOX))

    def acknowledge(self, up_to_id: int) -> None:
        """Drop the mutations with ``id <= up_to_id`` (the server has them)."""
        with self._lock:
            done = [k for k, m in self._docs(OUTBOX).items() if m["id"] <= up_to_id]
            if done:
                self.commit(dict.fromkeys(((OUTBOX, k) for k in done), None))

    # -- sync support -----------------------------------------------------------------

    def apply_pull(self, records: Records, purge: Sequence[str], cursor: int) -> None:
        """Merge a pulled page, purge patients that left scope and save the cursor: one write."""
        with self._lock:
            local = self._docs(RECORDS)
            changes: dict[tuple[str, str], Doc | None] = {}
            mark = self._mark
            for incoming in records:
                key = (RECORDS, incoming.get("id", "") if isinstance(incoming, dict) else "")
                record = self._pulled(incoming, changes.get(key) or local.get(key[1]))
                changes[(RECORDS, record["id"])] = record
                mark = max([mark, *incoming["clock"].values()])
            purged = self._purge(set(purge), changes, local)
            self._follow_merges(changes, local)
            changes[(META, "cursor")] = {"value": cursor}
            changes[(META, _DEVICE)] = self._device_doc(mark, self._next_id)
            self.commit(changes)
            self._mark = mark
        if purged:  # the journal's history still holds them: rewrite it without
            try:  # outside the lock: saves go on meanwhile
                self._live().compact(repack=True)  # no copied part keeps their records
            except OSError as exc:  # the purge is durable; compaction comes later
                log.warning("store: compaction after a purge failed (%s)", type(exc).__name__)

    def _purge(
        self,
        patients: set[str],
        changes: dict[tuple[str, str], Doc | None],
        local: Mapping[str, Doc],
    ) -> bool:
        """Add to ``changes`` the removal of every trace of ``patients``: their records (no
        tombstone, no mutation), pending mutations, and the refused changes, conflicts and
        re-fetches kept for them; True when anything of theirs was here."""
        if not patients:
            return False
        doomed = self._purge_records(patients, changes, local)
        theirs = _Theirs(patients, doomed)
        found = bool(doomed)
        for key, pending in self._docs(OUTBOX).items():
            if theirs.mutation(pending):
                changes[(OUTBOX, key)] = None
                found = True
        kept: dict[str, Callable[[Any], bool]] = {
            REJECTED: lambda x: isinstance(x, dict) and theirs.mutation(x.get("mutation")),
            CONFLICTS: lambda x: isinstance(x, dict) and theirs.conflict(x),
            REPAIR: lambda x: theirs.record(x),
        }
        meta = self._docs(META)
        for name, is_theirs in kept.items():
            items = (meta.get(name) or {}).get("value")
            if isinstance(items, list) and any(is_theirs(x) for x in items):
                left = [x for x in items if not is_theirs(x)]
                changes[(META, name)] = {"value": left} if left else None
                found = True
        return found

    def _purge_records(
        self,
        patients: set[str],
        changes: dict[tuple[str, str], Doc | None],
        local: Mapping[str, Doc],
    ) -> set[str]:
        """Remove from ``changes`` (or from the store, when here) every record of
        ``patients``, stored or arriving; returns their ids."""
        doomed = {i for p in patients for i in self._by_patient.get(p, ())}
        for (_, record_id), new in list(changes.items()):
            if new is not None and patient_of(new["type"], record_id, new["fields"]) in patients:
                doomed.add(record_id)
        for record_id in doomed:
            if record_id in local:
                changes[(RECORDS, record_id)] = None
            else:
                changes.pop((RECORDS, record_id), None)
        return doomed

    def _follow_merges(
        self, changes: dict[tuple[str, str], Doc | None], local: Mapping[str, Doc]
    ) -> None:
        """A pulled patient tombstone naming a survivor (``sync.merged``): local records
        still filed under the merged-away patient (edits the server has not seen yet) move
        to the survivor, as the server moves them when they arrive. Only ``patient_id``
        changes, with its clock, so nothing is queued and no pending edit is lost."""

        def doc(record_id: str) -> Doc | None:
            key = (RECORDS, record_id)
            return changes[key] if key in changes else local.get(record_id)

        def link(patient_id: str) -> str | None:
            return merged.merged_into(doc(patient_id))

        gone = [i for (t, i), d in changes.items() if t == RECORDS and merged.merged_into(d)]
        for duplicate in gone:
            survivor = merged.survivor(duplicate, link)
            for record_id in list(self._by_patient.get(duplicate, ())):
                record = doc(record_id)
                if record is None or record["fields"].get("patient_id") != duplicate:
                    continue
                fields = {**record["fields"], "patient_id": survivor}
                changes[(RECORDS, record_id)] = {**record, "fields": fields}

    def _pulled(self, incoming: Any, old: Doc | None) -> Doc:
        """The local record after a server record arrives (per-field merge)."""
        if not (
            isinstance(incoming, dict)
            and is_uuid(incoming.get("id"))
            and isinstance(incoming.get("type"), str)
            and isinstance(incoming.get("fields"), dict)
            and isinstance(incoming.get("clock"), dict)
            and set(incoming["fields"]) <= set(incoming["clock"])
        ):
            raise ProtocolError("pull: a record has the wrong shape")
        for stamp in incoming["clock"].values():
            self._clock.observe(stamp)  # raises InvalidClock before anything is written
        fields, clock = clone(incoming["fields"]), dict(incoming["clock"])
        if old is not None:
            merged = merging.merge(old["fields"], old["clock"], fields, clock)
            fields, clock = merged.fields, merged.clock
        record = {
            "id": incoming["id"],
            "type": incoming["type"],
            "fields": fields,
            "clock": clock,
            "rev": incoming.get("rev"),
            "deleted": bool(incoming.get("deleted")),
        }
        if old is not None and old["deleted"] and self._pending[old["id"]]:
            record["deleted"] = True  # our delete is still on its way to the server
        return _tombstone(record, record["rev"]) if record["deleted"] else record

    # -- settings ---------------------------------------------------------------------

    def get_meta(self, key: str, default: Any = None) -> Any:
        """A small setting (token, device_id, user, cursor, server_url, ...)."""
        with self._lock:
            doc = self._docs(META).get(key)
            return default if doc is None else clone(doc["value"])

    def meta_keys(self) -> builtins.list[str]:
        """Every meta key set (drafts list theirs with it)."""
        with self._lock:
            return sorted(self._docs(META))

    def set_meta(self, key: str, value: Any) -> None:
        """Save a small setting; None removes it."""
        if not isinstance(key, str) or not key or key.startswith("_"):
            raise ValueError("meta keys are non-empty strings not starting with '_'")
        self.commit({(META, key): None if value is None else {"value": clone(value)}})

    # -- blobs ------------------------------------------------------------------------

    def put_blob(self, data: bytes) -> str:
        """Store a photo or file encrypted; returns its SHA-256 hex."""
        with self._lock:
            self._live()
            return self._blobs.put(data)

    def get_blob(self, sha256: str) -> bytes | None:
        """A stored blob's bytes, or None."""
        with self._lock:
            self._live()
            return self._blobs.get(sha256)

    def blob_in_use(self, sha256: str) -> bool:
        """True while a record or a pending mutation names the blob."""
        with self._lock:
            self._live()
            return self._refs[sha256] > 0

    def delete_blob(self, sha256: str) -> None:
        """Remove a stored blob."""
        with self._lock:
            self._live()
            self._blobs.delete(sha256)

    def wipe(self) -> None:
        """Close and delete every file of the store."""
        with self._lock:
            self.close()
            for name in (JOURNAL, JOURNAL + ".tmp", JOURNAL + ".lock"):
                (self.directory / name).unlink(missing_ok=True)
            shutil.rmtree(self.directory / BLOBS, ignore_errors=True)
            with contextlib.suppress(OSError):  # other files (not ours) live there
                self.directory.rmdir()

    # -- internals --------------------------------------------------------------------

    def _live(self) -> JournalStorage:
        if self._storage is None:
            raise StoreClosed("the store is closed")
        return self._storage

    def _docs(self, table: str) -> dict[str, Doc]:
        return self._live().read().get(table, {})  # type: ignore[no-any-return]

    def _records(self) -> RecordTable:
        return self._live().read()[RECORDS]  # type: ignore[no-any-return]

    def _queue(
        self, record: Doc, op: str, fields: Doc, clock: dict[str, str], rev: Any, stamp: str
    ) -> None:
        """Save the record with its outbox mutation and the next mutation id: one write."""
        mutation_id = self._next_id
        mutation = {
            "id": mutation_id,
            "record_id": record["id"],
            "type": record["type"],
            "op": op,
            "fields": clone(fields),
            "clock": clock,
            "base_rev": rev,
        }
        self.commit(
            {
                (RECORDS, record["id"]): record,
                (OUTBOX, str(mutation_id)): mutation,
                (META, _DEVICE): self._device_doc(stamp, mutation_id + 1),
            }
        )
        self._next_id, self._mark = mutation_id + 1, stamp

    @staticmethod
    def _device_doc(mark: str, next_id: int) -> Doc:
        return {"value": {"next_mutation_id": next_id, "clock": mark}}

    def _index_all(self, summaries: Iterable[tuple[str, tuple[int, str]]]) -> None:
        """``_index`` for every record at open, from the summaries the storage keeps
        (``summary``): the records themselves stay on disk. It runs for every record: kept
        short (subscripts in ``try`` cost less than ``get``), and the strings of types and
        states are shared, not one per record."""
        by_patient, by_type, names, refs = self._by_patient, self._by_type, self._names, []
        kinds: dict[str, tuple[str, dict[str, Fact | None]]] = {}
        states: dict[str, str] = {}
        for record_id, (_, line) in summaries:
            kind, patient, deleted, when, state, blobs, unsent, key = line.split("\t", 7)
            try:
                kind, records = kinds[kind]
            except KeyError:
                records = by_type.setdefault(kind, {})
                kinds[kind] = (kind, records)
            if deleted or kind not in FACT_TYPES:
                records[record_id] = None
            else:
                try:
                    state = states[state]
                except KeyError:
                    states[state] = state
                records[record_id] = (when, state)
            if kind == "patient":
                patient = record_id
                if not deleted:
                    names[record_id] = key
            if unsent and patient and not deleted:
                self._unsent[record_id] = patient
            if patient:
                try:
                    by_patient[patient][record_id] = kind
                except KeyError:
                    by_patient[patient] = {record_id: kind}
            if blobs:
                refs += blobs.split(",")
        self._refs.update(refs)

    def _index(self, record_id: str, old: Doc | None, new: Doc | None) -> None:
        if (old or new or {}).get("type") == "patient":  # a record keeps its type
            self._by_name = None
        if old is not None:
            if new is None:
                self._by_type.get(old["type"], {}).pop(record_id, None)
            patient = patient_of(old["type"], record_id, old["fields"])
            if patient is not None:
                self._by_patient.get(patient, {}).pop(record_id, None)
            self._names.pop(record_id, None)
            self._unsent.pop(record_id, None)
        if new is not None:
            kind = new["type"]
            fact = None if new["deleted"] else fact_of(kind, new["fields"])
            # An edited record keeps its place (records list in the order stored).
            self._by_type.setdefault(kind, {})[record_id] = fact
            patient = patient_of(kind, record_id, new["fields"])
            if patient is not None:
                self._by_patient.setdefault(patient, {})[record_id] = kind
            if kind == "patient" and not new["deleted"]:
                self._names[record_id] = _search_key(new["fields"])
            if patient is not None and new.get("rev") is None and not new["deleted"]:
                self._unsent[record_id] = patient

    # -- added for sync.engine: a change the server refused -----------------------------

    def revert(self, mutation: Mapping[str, Any]) -> None:
        """Undo a refused mutation where no later write replaced it, and drop it: one write.

        Its fields leave the local record, so the server's values win when the engine
        pulls the record again; a record the server never had, with nothing else
        pending, goes. A refused delete keeps its tombstone until that pull revives it.
        """
        with self._lock:
            record_id = mutation["record_id"]
            key = (OUTBOX, str(mutation["id"]))
            changes: dict[tuple[str, str], Doc | None] = {}
            if key[1] in self._docs(OUTBOX):
                changes[key] = None
            record = self._docs(RECORDS).get(record_id)
            if record is not None:
                others = self._pending[record_id] - len(changes)
                stamps = mutation.get("clock") or {}
                kept = {k: v for k, v in record["clock"].items() if stamps.get(k) != v}
                if record["rev"] is None and not others:
                    changes[(RECORDS, record_id)] = None
                elif len(kept) < len(record["clock"]):
                    fields = {k: v for k, v in record["fields"].items() if k in kept}
                    changes[(RECORDS, record_id)] = {**record, "fields": fields, "clock": kept}
            if changes:
                self.commit(changes)

    def renumber_outbox(self, first_id: int) -> None:
        """Number the pending mutations from ``first_id`` on, in order: one write.

        For a server that expects another next id: the device signed in again (a new
        device on the server) or the server was restored from a backup.
        """
        with self._lock:
            pending = self.outbox()
            changes: dict[tuple[str, str], Doc | None] = {
                (OUTBOX, str(m["id"])): None for m in pending
            }
            for new_id, mutation in enumerate(pending, start=first_id):
                changes[(OUTBOX, str(new_id))] = {**mutation, "id": new_id}
            next_id = first_id + len(pending)
            changes[(META, _DEVICE)] = self._device_doc(self._mark, next_id)
            self.commit(changes)
            self._next_id = next_id


def _digits(text: str) -> str:
    return "".join(c for c in text if c.isdigit())


def _search_key(fields: Mapping[str, Any]) -> str:
    """What ``search_patients`` matches: the folded name, then the phone's digits (sorting
    by this key sorts by name)."""
    return fold(str(fields.get("name") or "")) + "\n" + _digits(str(fields.get("phone") or ""))


def summary(record: Doc) -> str:
    """What the store's indexes need of a record, kept beside its place while the record
    stays on disk: type, patient, deleted, facts (``app.facts``), photos, whether a pull
    returned it (a rev) and, for a patient, the search key — tab-separated, the key last
    (a name may hold a tab)."""
    kind, fields, deleted = record["type"], record["fields"], bool(record["deleted"])
    patient = fields.get("patient_id") if kind != "patient" else None
    fact = None if deleted else fact_of(kind, fields)
    head = (
        kind,
        patient if isinstance(patient, str) else "",
        "1" if deleted else "",
        *(fact or ("", "")),
        ",".join(sorted(_blobs(record))),
        "1" if record.get("rev") is None else "",  # saved here, not returned by a pull yet
    )
    # The schema keeps tabs out of all but the key; a tab elsewhere must not shift a field.
    return "\t".join(
        (
            *(f.replace("\t", " ") for f in head),
            _search_key(fields) if kind == "patient" and not deleted else "",
        )
    )


@dataclass(frozen=True)
class _Theirs:
    """Whether a kept item (mutation, conflict, record id) belongs to purged patients."""

    patients: set[str]
    doomed: set[str]  # the ids of their records

    def record(self, record_id: Any, *patient_ids: Any) -> bool:
        """A record of theirs, or one naming one of them as its patient."""
        if isinstance(record_id, str) and (record_id in self.doomed or record_id in self.patients):
            return True
        return any(isinstance(p, str) and p in self.patients for p in patient_ids)

    def mutation(self, m: Any) -> bool:
        """A mutation of one of their records (or one moving a record to them)."""
        m = m if isinstance(m, dict) else {}
        return self.record(m.get("record_id"), (m.get("fields") or {}).get("patient_id"))

    def conflict(self, c: dict[str, Any]) -> bool:
        """A conflict on one of their records (or about moving a record to or from them)."""
        moved = (c.get("value"), c.get("lost_value")) if c.get("field") == "patient_id" else ()
        return self.record(c.get("record_id"), *moved)


def _blobs(doc: Doc | None) -> set[str]:
    """The blob hashes a record or an outbox mutation names (photos, thumbnails)."""
    fields = doc.get("fields") if doc is not None else None
    return blob_hashes(fields) if isinstance(fields, dict) and "attachments" in fields else set()


def _differs(old: Mapping[str, Any], name: str, value: Any) -> bool:
    current = old.get(name, _MISSING)
    if current is _MISSING:
        return value is not None
    # True == 1 in Python, but not in JSON: compare types too.
    return bool(current != value or type(current) is not type(value))


def _tombstone(record: Doc, rev: Any) -> Doc:
    """A deleted record keeps only what scoping needs (its patient), not its content."""
    fields, clock = tombstone(record["fields"], record["clock"])
    return {
        "id": record["id"],
        "type": record["type"],
        "fields": fields,
        "clock": clock,
        "rev": rev,
        "deleted": True,
    }
