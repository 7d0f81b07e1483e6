"""The device's sync (DESIGN §4) as a short list of phases (``sync.scheduler`` runs it).

``SyncEngine.sync()``:

1. push the outbox in batches (attachments first), acknowledging exactly what the server
   confirms through ``last_mutation_id``; refused mutations are kept (meta ``rejected``)
   and undone locally, conflicts kept (meta ``conflicts``);
2. pull pages since the saved cursor, each applied with its purges and new cursor in one
   store write, and acknowledge what the pull says the server already has; at the end of
   the first full pull, purge patients this device pushed that the pull never returned;
3. pull again the records whose refused changes were undone, so they equal the server's.

The engine never does HTTP itself: it takes a ``Transport`` (``sync.client.SyncClient``,
or anything with its calls), and it never imports the app: ``LocalStore`` names what it
needs of ``app.store.Store``. Every step is safe to interrupt: an unacknowledged mutation
is pushed again and the server skips ids it has seen (answering as it did the first time).
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import json
import threading
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any, Protocol

from sync import attachments, hlc, protocol, schema
from sync.errors import (
    AuthExpired,
    DeviceRevoked,
    InvalidClock,
    ProtocolError,
    ServerRefused,
    ServerUnavailable,
    SyncError,
    SyncInProgress,
)

JSON = dict[str, Any]
PUSH_BATCH = 500
PULL_LIMIT = 1000
REPAIR = "sync_repair"  # meta key: records to pull again after a refused change
REJECTED = "rejected"  # meta key: refused mutations kept for the user (``Rejected``)
CONFLICTS = "conflicts"  # meta key: values that lost a merge, kept for review
# Meta key, set while the first pull (from cursor 0) has not reached its end: the highest
# rev the server gave this device's pushes meanwhile (see ``_purge_unreturned``).
FIRST_PULL = "sync_first_pull"
# Stores being synced, by id(): one sync per store, even with several engines (the app
# makes an engine per sync). A store in the set is alive, so its id is not reused.
_SYNCING: set[int] = set()
_SYNCING_LOCK = threading.Lock()


class LocalStore(Protocol):
    """What the engine needs of the device's store (``app.store.Store`` has it)."""

    def outbox(self, limit: int | None = None, /) -> list[JSON]: ...
    def pending_count(self) -> int: ...
    def acknowledge(self, up_to_id: int, /) -> Any: ...
    def apply_pull(self, records: list[JSON], purge: list[str], cursor: int, /) -> Any: ...
    def list(self, type: str | None = ..., /) -> list[JSON]: ...
    def unsent_patients(self) -> Sequence[str]: ...  # patients of records with no rev yet
    def get_meta(self, key: str, default: Any = None, /) -> Any: ...
    def set_meta(self, key: str, value: Any, /) -> Any: ...
    def wipe(self) -> Any: ...
    def get(self, record_id: str, /, *, include_deleted: bool = ...) -> JSON | None: ...
    def revert(self, mutation: JSON, /) -> Any: ...
    def renumber_outbox(self, first_id: int, /) -> Any: ...
    def get_blob(self, sha256: str, /) -> bytes | None: ...  # photos: sync.attachments
    def put_blob(self, data: bytes, /) -> str: ...


class Transport(Protocol):
    """The calls of a sync (``sync.client.SyncClient`` has them)."""

    async def push(self, mutations: Sequence[Mapping[str, Any]], /) -> JSON: ...
    async def pull(self, cursor: int, limit: int, /) -> JSON: ...
    async def put_attachment(self, sha256: str, data: bytes, content_type: str, /) -> bool: ...


class SyncStatus(StrEnum):
    """How a sync ended, as the app shows it."""

    OK = "ok"
    OFFLINE = "offline"  # the server could not be reached: try later, nothing is lost
    SIGN_IN_REQUIRED = "sign_in_required"  # token expired: local edits are kept
    DEVICE_REVOKED = "device_revoked"  # the local store was wiped
    FAILED = "failed"  # the server refused a request or answered nonsense


@dataclass(frozen=True)
class Progress:
    """Counts for a progress bar: mutations the server confirmed of the ``to_push``
    pending when the sync began, and records pulled so far."""

    phase: str
    pushed: int
    to_push: int
    pulled: int


@dataclass(frozen=True)
class Rejected:
    """A mutation the server refused, kept locally until the user fixes or discards it."""

    mutation: JSON
    code: str
    message: str
    field: str | None = None

    def as_json(self) -> JSON:
        """The form kept in the store."""
        return {
            "mutation": self.mutation,
            "code": self.code,
            "message": self.message,
            "field": self.field,
        }


@dataclass(frozen=True)
class ConflictNote:
    """A value that lost a merge: which record and field, who wrote it and when."""

    record_id: str
    type: str
    field: str
    value: Any
    lost_value: Any
    lost_clock: str
    lost_by: str  # the device (HLC node) that wrote the losing value
    lost_at: str  # ISO 8601 time of the losing write
    incoming_won: bool
    mutation_id: int | None = None
    user: str | None = None

    def as_json(self) -> JSON:
        """The form kept in the store."""
        return dict(self.__dict__)


@dataclass
class SyncResult:
    """What one sync did, for the app to show."""

    status: SyncStatus = SyncStatus.OK
    pushed: int = 0
    pulled: int = 0
    pending: int = 0
    purged: list[str] = field(default_factory=list)
    rejected: list[Rejected] = field(default_factory=list)
    conflicts: list[ConflictNote] = field(default_factory=list)
    error: str | None = None
    retry_after: float | None = None

    @property
    def ok(self) -> bool:
        """True when the sync ran to the end."""
        return self.status is SyncStatus.OK


class SyncEngine:
    """Runs the sync phases for one device; two syncs never run at once."""

    def __init__(
        self,
        store: LocalStore,
        transport: Transport,
        *,
        push_batch: int = PUSH_BATCH,
        pull_limit: int = PULL_LIMIT,
        on_progress: Callable[[Progress], None] | None = None,
        offload: Callable[..., Awaitable[Any]] | None = None,
    ) -> None:
        """``offload`` (e.g. ``asyncio.to_thread``) runs the store's page writes off the
        event loop, so a UI stays responsive while a large pull is applied."""
        self.store = store
        self.offload = offload
        self.transport = transport
        self.push_batch = push_batch
        self.pull_limit = pull_limit
        self.on_progress = on_progress

    @property
    def running(self) -> bool:
        """True while a sync of this store is under way (by any engine)."""
        return id(self.store) in _SYNCING

    async def sync(self) -> SyncResult:
        """Push, pull, acknowledge; raises SyncInProgress while this store syncs already."""
        with _SYNCING_LOCK:
            if id(self.store) in _SYNCING:
                raise SyncInProgress("a sync is already running")
            _SYNCING.add(id(self.store))
        try:
            return await self._sync()
        finally:
            with _SYNCING_LOCK:
                _SYNCING.discard(id(self.store))

    async def _sync(self) -> SyncResult:
        result = SyncResult()
        to_push = self.store.pending_count()
        if not self.store.get_meta("cursor") and self.store.get_meta(FIRST_PULL) is None:
            self.store.set_meta(FIRST_PULL, 0)  # until its last page, in this sync or later
        try:
            done = await self._push(result, to_push)
            await self._pull(result, done, to_push)
        except DeviceRevoked as exc:
            self.store.wipe()
            result.status, result.error = SyncStatus.DEVICE_REVOKED, exc.message
            return result
        except AuthExpired as exc:
            result.status, result.error = SyncStatus.SIGN_IN_REQUIRED, exc.message
        except ServerUnavailable as exc:
            result.status, result.error = SyncStatus.OFFLINE, str(exc)
            result.retry_after = exc.retry_after
        except (ServerRefused, ProtocolError, InvalidClock) as exc:
            result.status, result.error = SyncStatus.FAILED, str(exc)
        result.pending = self.store.pending_count()
        return result

    # -- phase 1: push ----------------------------------------------------------------

    async def _push(self, result: SyncResult, to_push: int) -> int:
        """Push the outbox as it was when the sync began; returns how many were confirmed."""
        batch_size = self.push_batch
        # Edits made during the push wait for the next sync, so constant typing cannot
        # keep a sync going forever.
        queued = self.store.outbox()
        high = queued[-1]["id"] if queued else 0
        renumbered, done = False, 0
        while batch := [m for m in self.store.outbox(batch_size) if m["id"] <= high]:
            await attachments.upload(self.store, self.transport, batch)  # blobs first
            try:
                raw = await self.transport.push(batch)
            except ServerRefused as exc:
                if exc.status == 413 and batch_size > 1:  # the server's body limit: smaller
                    batch_size = max(1, batch_size // 2)
                    continue
                raise
            answer = protocol.parse_push_response(raw)
            last = answer.last_mutation_id
            if last < batch[0]["id"]:
                # The server expects an id this outbox does not start with: the device
                # signed in again (a new device to the server) or the server was restored
                # from a backup. Number the pending mutations from what it expects.
                if renumbered:
                    raise ProtocolError(f"the server keeps expecting mutation {last + 1}")
                self.store.renumber_outbox(last + 1)
                renumbered, high = True, self.store.outbox()[-1]["id"]
                continue
            confirmed = [m for m in batch if m["id"] <= last]
            self._settle(confirmed, answer.results, result)
            self.store.acknowledge(confirmed[-1]["id"])
            done += len(confirmed)
            self._progress("push", done, to_push, result.pulled)
        return done

    def _settle(
        self, confirmed: list[JSON], results: list[protocol.Result], result: SyncResult
    ) -> None:
        """Keep rejections and conflicts before acknowledging, so a crash loses neither."""
        by_id = {r.id: r for r in results}
        rejected, conflicts = [], []
        pushed_up_to = self.store.get_meta(FIRST_PULL)
        revs = [r.rev for r in results if isinstance(r.rev, int)]
        if isinstance(pushed_up_to, int) and revs and max(revs) > pushed_up_to:
            self.store.set_meta(FIRST_PULL, max(revs))
        for mutation in confirmed:
            outcome = by_id.get(mutation["id"])
            if outcome is None:
                continue  # confirmed by an earlier push whose answer was lost
            if outcome.status == "rejected":
                rejected.append(_rejected(mutation, outcome.error))
                continue
            result.pushed += 1
            conflicts += [
                _conflict(mutation["record_id"], mutation["type"], c, mutation["id"])
                for c in outcome.conflicts
            ]
        if rejected:
            # Keep the refused change for the user, remember to re-fetch the server's
            # version, then take it out of the local record.
            self._keep(REJECTED, [r.as_json() for r in rejected])
            repair = dict.fromkeys(self.store.get_meta(REPAIR) or [])
            repair.update(dict.fromkeys(r.mutation["record_id"] for r in rejected))
            self.store.set_meta(REPAIR, list(repair))
            for r in rejected:
                self.store.revert(r.mutation)
            result.rejected += rejected
        if conflicts:
            self._keep(CONFLICTS, [c.as_json() for c in conflicts])
            result.conflicts += conflicts

    # -- phase 2: pull, and phase 3: acknowledge what the server already has ------------

    async def _pull(self, result: SyncResult, pushed: int, to_push: int) -> None:
        cursor = int(self.store.get_meta("cursor", 0) or 0)
        fetching = asyncio.ensure_future(self._fetch(cursor))
        try:
            while True:
                page = await fetching
                if page.cursor < cursor or (page.more and page.cursor == cursor):
                    raise ProtocolError(f"pull: the cursor went from {cursor} to {page.cursor}")
                if page.more:  # ask for the next page while this one is being saved
                    fetching = asyncio.ensure_future(self._fetch(page.cursor))
                    await asyncio.sleep(0)
                records = [r.as_json() for r in page.records]
                # Before the page moves the cursor, so a crash in between loses no note (a
                # replayed page adds nothing: kept lists are deduplicated).
                self._keep_lost_values(page.conflicts, result)
                await self._apply(records, page.purge, page.cursor)
                result.pulled += len(records)
                result.purged += page.purge
                self._acknowledge(page.last_mutation_id)
                self._progress("pull", pushed, to_push, result.pulled)
                cursor = page.cursor
                if not page.more:
                    break
        finally:  # a page asked for ahead is not wanted after an error
            fetching.cancel()
            with contextlib.suppress(asyncio.CancelledError, SyncError):
                await fetching
        pushed_up_to = self.store.get_meta(FIRST_PULL)
        if isinstance(pushed_up_to, int) and cursor >= pushed_up_to:
            await self._purge_unreturned(result, cursor)
        await self._repair(cursor)
        if result.purged:  # what the purges took is no longer there to fix or review
            result.rejected = _still_kept(self.store, REJECTED, result.rejected)
            result.conflicts = _still_kept(self.store, CONFLICTS, result.conflicts)

    async def _purge_unreturned(self, result: SyncResult, cursor: int) -> None:
        """End of the first full pull: purge patients this device pushed that it never
        returned. The server purges only for pages after cursor 0, as a device pulling
        from 0 holds nothing pulled; but one that pushed before its first pull finished
        holds its own records, and a patient moved away meanwhile would stay for ever.
        Such records never got a rev here although the pull went past every rev the server
        gave them; a patient with a change still pending waits for a later pull's end."""
        busy = set()
        for mutation in self.store.outbox():
            record = self.store.get(mutation["record_id"], include_deleted=True)
            if record is not None:
                busy.add(schema.patient_of(record["type"], record["id"], record["fields"]))
        # From the store's index: reading every record here took seconds and 350 MB at
        # the end of a first pull of 100k records.
        unreturned: dict[str, None] = dict.fromkeys(self.store.unsent_patients())
        gone = [p for p in unreturned if p not in busy]
        if gone:
            await self._apply([], gone, cursor)
            result.purged += gone
        if len(gone) == len(unreturned):
            self.store.set_meta(FIRST_PULL, None)

    async def _fetch(self, cursor: int) -> protocol.PullResponse:
        return protocol.parse_pull_response(await self.transport.pull(cursor, self.pull_limit))

    async def _repair(self, end: int) -> None:
        """Pull again the records whose refused changes were reverted (the cursor stays)."""
        wanted = set(self.store.get_meta(REPAIR) or [])
        if not wanted:
            return
        records = [self.store.get(i, include_deleted=True) for i in wanted]
        revs = [r["rev"] for r in records if r is not None and isinstance(r.get("rev"), int)]
        cursor = min(revs, default=end + 1) - 1  # no rev: the server never had it
        while cursor < end:
            page = await self._fetch(cursor)
            found = [r.as_json() for r in page.records if r.id in wanted]
            if found:
                await self._apply(found, [], end)
            if not page.more or page.cursor <= cursor:
                break
            cursor = page.cursor
        self.store.set_meta(REPAIR, None)

    async def _apply(self, records: list[JSON], purge: list[str], cursor: int) -> None:
        if self.offload is None:
            self.store.apply_pull(records, purge, cursor)
        else:
            await self.offload(self.store.apply_pull, records, purge, cursor)

    def _acknowledge(self, last: int) -> None:
        """Acknowledge mutations a lost push answer never confirmed (rare: see _push)."""
        head = self.store.outbox(1)
        if head and head[0]["id"] <= last:
            self.store.acknowledge(last)

    def _keep_lost_values(self, conflicts: list[JSON], result: SyncResult) -> None:
        """Conflicts the server reports to this device because a value it wrote lost."""
        notes = [_conflict(c["record_id"], c["type"], c) for c in conflicts]
        if notes:
            self._keep(CONFLICTS, [n.as_json() for n in notes])
            result.conflicts += notes

    # -- helpers ----------------------------------------------------------------------

    def _keep(self, key: str, items: list[JSON]) -> None:
        """Add to a kept list in the store's meta; idempotent, so a replay adds nothing."""
        kept = list(self.store.get_meta(key) or [])
        seen = {_identity(x) for x in kept}
        kept += [x for x in items if _identity(x) not in seen]
        self.store.set_meta(key, kept)

    def _progress(self, phase: str, pushed: int, to_push: int, pulled: int) -> None:
        if self.on_progress is not None:
            self.on_progress(Progress(phase, pushed, to_push, pulled))


def _still_kept(store: LocalStore, key: str, items: list[Any]) -> list[Any]:
    """The ``items`` (``Rejected`` or ``ConflictNote``) still in the store's kept list."""
    kept = {_identity(x) for x in store.get_meta(key) or []}
    return [x for x in items if _identity(x.as_json()) in kept]


def _identity(item: JSON) -> tuple[Any, ...]:
    if "mutation" in item:  # a rejection: one per mutation id
        return ("mutation", item["mutation"].get("id"))
    # The value may be a list or an object (needs, risk flags): compare it as JSON text.
    value = json.dumps(item.get("value"), sort_keys=True, separators=(",", ":"))
    return (item.get("record_id"), item.get("field"), item.get("lost_clock"), value)


def _rejected(mutation: JSON, error: protocol.ResultError | None) -> Rejected:
    if error is None:
        return Rejected(mutation, "rejected", "the server refused this change")
    fld = error.field if isinstance(error.field, str) else None
    return Rejected(mutation, error.code, error.message, fld)


def _conflict(
    record_id: str, type_name: str, c: Any, mutation_id: int | None = None
) -> ConflictNote:
    if not isinstance(c, dict) or not isinstance(c.get("lost_clock"), str):
        raise ProtocolError("a conflict must name the clock of the value that lost")
    try:
        stamp = hlc.parse(c["lost_clock"])
    except InvalidClock as exc:
        raise ProtocolError(str(exc)) from exc
    when = dt.datetime.fromtimestamp(stamp.ms / 1000, dt.UTC).isoformat(timespec="seconds")
    user = c.get("user") or c.get("lost_user")
    return ConflictNote(
        record_id=record_id,
        type=type_name,
        field=str(c.get("field")),
        value=c.get("value"),
        lost_value=c.get("lost_value"),
        lost_clock=c["lost_clock"],
        lost_by=stamp.node,
        lost_at=when,
        incoming_won=bool(c.get("incoming_won")),
        mutation_id=mutation_id,
        user=user if isinstance(user, str) else None,
    )


__all__ = [
    "ConflictNote",
    "LocalStore",
    "Progress",
    "Rejected",
    "SyncEngine",
    "SyncError",
    "SyncResult",
    "SyncStatus",
    "Transport",
]
