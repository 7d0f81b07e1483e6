"""The device's syncs as the app shows them: status in plain words, the background
scheduler, and the lists of conflicts and refused changes the user reviews.

``Syncing`` runs ``sync.engine.SyncEngine`` over the open store for one unlocked session:
``open(store)`` on unlock (a ``SyncScheduler`` then syncs at once, after saves and every
few minutes, when ``auto_sync``), ``close()`` on lock. No Flet here: the screens read
``status`` and listeners hear "sync" through ``emit``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, fields, is_dataclass
from typing import Any

from app import errors, messages
from sync import errors as sync_errors
from sync import merged, schema
from sync.engine import SyncResult
from sync.engine import SyncStatus as EngineStatus
from sync.scheduler import SyncScheduler


def ago(then: float, now: float) -> str:
    """ "just now", "5 min ago", "3 h ago", "2 days ago"."""
    seconds = max(0.0, now - then)
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    if seconds < 86400:
        return f"{int(seconds // 3600)} h ago"
    return f"{int(seconds // 86400)} days ago"


@dataclass
class SyncStatus:
    """What the sync badge and the sync screen show."""

    running: bool = False
    progress: float | None = None  # 0..1, None for "working, unknown amount"
    stage: str = ""
    pending: int = 0
    last_success: float | None = None
    offline: bool = False
    error: str | None = None
    summary: str | None = None
    # The server said the sign-in expired: nothing syncs until the user signs in again.
    sign_in_required: bool = False

    def label(self, now: float) -> str:
        """One line: offline / syncing / sign in again / N to sync / last synced."""
        if self.running:
            return "Syncing…"
        if self.sign_in_required:
            return (
                f"Sign in again · {self.pending} to sync"
                if self.pending
                else "Sign in again to sync"
            )
        if self.offline:
            return f"Offline · {self.pending} to sync" if self.pending else "Offline"
        if self.pending:
            return f"{self.pending} to sync"
        if self.last_success is None:
            return "Not synced yet"
        return f"Synced {ago(self.last_success, now)}"

    def short_label(self) -> str:
        """A few characters for the app bar: Syncing / Sign in / Offline / N to sync /
        Synced."""
        if self.running:
            return "Syncing…"
        if self.sign_in_required:
            return "Sign in"
        if self.offline:
            return "Offline"
        if self.pending:
            return f"{self.pending} to sync"
        return "Synced" if self.last_success is not None else "Not synced"


def stale_screen_state(
    ui: Mapping[str, Any], patients: Collection[str], exists: Callable[[str], bool]
) -> list[str]:
    """Keys of screen state (``AppState.ui``) holding purged patients' data: a form whose
    key or content names one of ``patients``, or whose key names a record no longer here."""

    def names(value: Any) -> bool:
        if isinstance(value, str):
            return value in patients
        if isinstance(value, Mapping):
            return any(names(v) for v in value.values())
        if isinstance(value, list | tuple):
            return any(names(v) for v in value)
        if is_dataclass(value) and not isinstance(value, type):
            return any(names(getattr(value, f.name)) for f in fields(value))
        return False

    stale = []
    for key, value in ui.items():
        parts = key.split(":")
        if any(p in patients or (schema.is_uuid(p) and not exists(p)) for p in parts) or names(
            value
        ):
            stale.append(key)
    return stale


def current_conflicts(
    notes: list[dict[str, Any]], record: Callable[[str], Mapping[str, Any] | None]
) -> list[dict[str, Any]]:
    """The conflict notes still worth reviewing, each with its record's current value.

    A pull may show that a conflict was settled elsewhere: its record is gone, or its field
    now holds the value that had lost (someone chose it). Such notes are dropped; the others
    show what the record holds now, not what it held when the conflict happened."""
    kept = []
    for note in notes:
        found = record(str(note.get("record_id", "")))
        if found is None:
            continue
        fields = found.get("fields") or {}
        now = fields.get(note.get("field"))
        if now == note.get("lost_value"):
            continue
        kept.append({**note, "value": now} if now != note.get("value") else note)
    return kept


def survivor_here(record: Callable[[str], Mapping[str, Any] | None], patient_id: str) -> str:
    """The patient that holds ``patient_id``'s records on this phone: itself, unless a pulled
    tombstone says it was merged into another (``record`` includes tombstones)."""
    return merged.survivor(patient_id, lambda p: merged.merged_into(record(p)))


def follow_merges(
    notes: list[dict[str, Any]], record: Callable[[str], Mapping[str, Any] | None]
) -> list[dict[str, Any]]:
    """A conflict on a patient merged away since is about its survivor now: the server
    applies the duplicate's edits to the survivor (``sync.merged``)."""
    out = []
    for note in notes:
        record_id = str(note.get("record_id", ""))
        survivor = survivor_here(record, record_id)
        out.append(note if survivor == record_id else {**note, "record_id": survivor})
    return out


def same_conflict(a: Mapping[str, Any], b: Mapping[str, Any]) -> bool:
    """True when two notes are about the same lost value (their current values aside)."""
    return all(a.get(k) == b.get(k) for k in ("record_id", "field", "lost_clock", "lost_value"))


def _plural(n: int, word: str) -> str:
    return f"{n} {word}{'s' if n != 1 else ''}"


class Syncing:
    """Runs syncs for the open store and keeps their outcome for the screens."""

    def __init__(
        self,
        services: Any,
        *,
        emit: Callable[[str], None],
        now: Callable[[], float],
        plain_error: Callable[[BaseException], str],
        on_revoked: Callable[[str], None],
        on_purged: Callable[[list[str]], None] | None = None,
        after_pull: Callable[[], None] | None = None,
    ) -> None:
        self.services, self.emit, self.now = services, emit, now
        self.plain_error, self.on_revoked = plain_error, on_revoked
        self.on_purged = on_purged  # patients a sync purged: forget their screen state
        self.after_pull = after_pull  # what a pull may have changed: drafts follow merges
        self.status = SyncStatus()
        self.store: Any = None
        self.task: asyncio.Task[Any] | None = None  # a sync started by start() without
        self._scheduler: SyncScheduler | None = None  # a scheduler (tests await it)

    # -- session ------------------------------------------------------------------------
    def open(self, store: Any) -> None:
        """Start for a freshly unlocked store: last success, pending count, the scheduler."""
        self.store = store
        last = store.get_meta("last_sync")
        self.status = SyncStatus(last_success=last if isinstance(last, int | float) else None)
        self.refresh_pending()
        self.resume()

    def close(self, *, forget: bool = False) -> None:
        """Stop syncing (lock, wipe); a sync cut short resumes safely next time."""
        if self.task is not None and not self.task.done():
            self.task.cancel()
        self.task = None
        scheduler, self._scheduler = self._scheduler, None
        if scheduler is not None:
            with contextlib.suppress(RuntimeError):  # no running loop: nothing to stop
                asyncio.get_running_loop().create_task(scheduler.stop())
        self.store = None
        last = None if forget else self.status.last_success
        self.status = SyncStatus(last_success=last)

    def resume(self) -> None:
        """Run the background scheduler (when the app asked for automatic syncs)."""
        if self.services.auto_sync and self._scheduler is None and self.store is not None:
            self._scheduler = SyncScheduler(self._sync_once, self._healthy)
            self._scheduler.start()  # syncs once now, then on saves and every few minutes

    async def pause(self) -> None:
        """Stop the scheduler and wait for it and for a sync already under way (before
        signing out or in again)."""
        scheduler, self._scheduler = self._scheduler, None
        if scheduler is not None:
            await scheduler.stop()
        task = self.task
        if task is not None and not task.done():
            with contextlib.suppress(Exception, asyncio.CancelledError):
                await task

    # -- triggers -------------------------------------------------------------------------
    def start(self) -> None:
        """Ask for a sync now ("Sync now", the first sync); it runs in the background."""
        if self.store is None:
            return
        if self._scheduler is not None:
            self._scheduler.request_sync()
        elif not self.status.running:
            self.task = asyncio.get_running_loop().create_task(self.sync_now())

    async def sync_now(self) -> Any:
        """Run one sync and return its ``SyncResult`` (None when one is already running)."""
        if self.store is None or self.status.running:
            return None
        return await self._sync_once()

    def saved(self) -> None:
        """A local save: count it and let the scheduler sync after a quiet spell."""
        self.refresh_pending()
        if self._scheduler is not None:
            self._scheduler.notify_saved()

    def online(self) -> None:
        """The network may be back: the scheduler checks the server, then syncs."""
        if self._scheduler is not None:
            self._scheduler.notify_online()

    def refresh_pending(self) -> None:
        """Re-read the number of local changes waiting to be pushed."""
        if self.store is not None:
            self.status.pending = self.store.pending_count()

    # -- one sync -------------------------------------------------------------------------
    def client(self) -> Any:
        """A sync client for the signed-in server (the caller closes it)."""
        store = self.store
        return self.services.client(
            store.get_meta("server_url") or "", lambda: store.get_meta("token")
        )

    async def _healthy(self) -> bool:
        try:
            client = self.client()
        except (sync_errors.SyncError, ValueError):
            return False
        try:
            return bool(await client.healthz())
        finally:
            await client.aclose()

    def _on_progress(self, progress: Any) -> None:
        s = self.status
        if progress.phase == "push":
            total = max(progress.to_push, 1)
            s.progress = 0.5 * min(progress.pushed, total) / total
            s.stage = f"Sending changes: {progress.pushed} of {progress.to_push}"
        else:
            s.progress = None  # the pull's total is unknown: an indeterminate bar
            s.stage = f"Receiving updates: {progress.pulled}"
        self.emit("sync")

    async def _sync_once(self) -> Any:
        """One sync, its outcome kept in ``status``; the scheduler's ``sync`` callable."""
        if self.store is None or self.status.running:
            raise sync_errors.SyncInProgress("a sync is already running")
        s, store = self.status, self.store
        s.running, s.progress, s.stage, s.error, s.summary = True, 0.0, "Starting…", None, None
        self.emit("sync")
        problem: str | None = None
        try:
            client = self.client()
            try:
                result = await self.services.engine(store, client, self._on_progress).sync()
            finally:
                await client.aclose()
        except (sync_errors.SyncError, errors.AppError, ValueError) as exc:
            if isinstance(exc, sync_errors.SyncInProgress):
                raise
            problem = self.plain_error(exc)
            result = SyncResult(status=EngineStatus.FAILED, error=problem)
        finally:
            s.running, s.progress, s.stage = False, None, ""
        if self.store is not store:  # locked meanwhile: nothing to show
            return result
        if result.status == EngineStatus.DEVICE_REVOKED:
            self.on_revoked(
                "This device was signed out by an administrator; its Liaison data was erased."
            )
            return result
        if result.purged and self.on_purged is not None:
            self.on_purged(list(result.purged))
        self._review_again()
        if self.after_pull is not None:
            self.after_pull()
        self._finished(result)
        if problem:
            s.error = problem
        self.refresh_pending()
        self.emit("sync")
        return result

    def _finished(self, result: Any) -> None:
        s = self.status
        s.offline = result.status == EngineStatus.OFFLINE
        if result.status in (EngineStatus.OK, EngineStatus.SIGN_IN_REQUIRED):
            s.sign_in_required = result.status == EngineStatus.SIGN_IN_REQUIRED
        if result.status == EngineStatus.OK:
            s.last_success = self.now()
            self.store.set_meta("last_sync", s.last_success)
            s.summary = f"Sent {result.pushed}, received {result.pulled}."
        elif result.status == EngineStatus.OFFLINE:
            s.error = messages.OFFLINE
        elif result.status == EngineStatus.SIGN_IN_REQUIRED:
            s.error = messages.SIGN_IN_EXPIRED
        else:
            s.error = messages.server_refused(result.error)
        if result.rejected:
            s.summary = f"{s.summary or ''} {_plural(len(result.rejected), 'change')} to fix."
        if result.conflicts:
            n = _plural(len(result.conflicts), "conflict")
            s.summary = f"{s.summary or ''} {n} to review."

    # -- review lists ---------------------------------------------------------------------
    def conflicts(self) -> list[dict[str, Any]]:
        """Values that lost a merge, kept for the user to review."""
        return list(self.store.get_meta("conflicts") or []) if self.store else []

    def rejected(self) -> list[dict[str, Any]]:
        """Changes the server refused, kept for the user to fix or discard."""
        return list(self.store.get_meta("rejected") or []) if self.store else []

    def _review_again(self) -> None:
        """After a pull: drop the conflicts settled elsewhere, show current values."""
        notes = self.conflicts()

        def with_tombstones(record_id: str) -> Mapping[str, Any] | None:
            return self.store.get(record_id, include_deleted=True)  # type: ignore[no-any-return]

        kept = current_conflicts(follow_merges(notes, with_tombstones), self.store.get)
        if kept != notes:
            self.store.set_meta("conflicts", kept)

    def resolve_conflict(
        self, index: int, *, use_other: bool, note: Mapping[str, Any] | None = None
    ) -> None:
        """Keep the current value, or write the other one back (as a new, newer change).

        ``note``: the conflict as the screen showed it; when a sync changed the list since,
        it is found by what it is (and nothing happens when it is no longer there)."""
        items = self.conflicts()
        if note is not None and not (index < len(items) and same_conflict(items[index], note)):
            index = next((i for i, c in enumerate(items) if same_conflict(c, note)), -1)
            if index < 0:
                return
        note = items.pop(index)
        if use_other:
            record = self.store.get(note["record_id"])
            if record is not None:
                fields = dict(record["fields"])
                fields[note["field"]] = note["lost_value"]
                self.store.put(note["type"], fields, record_id=note["record_id"])
        self.store.set_meta("conflicts", items)
        self.emit("sync")

    def discard_rejected(self, index: int) -> None:
        """Forget a refused change (the server's version already came back)."""
        items = self.rejected()
        items.pop(index)
        self.store.set_meta("rejected", items)
        self.emit("sync")
