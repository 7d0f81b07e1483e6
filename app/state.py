"""The app's state: the services it owns, and what is open while it is unlocked.

No Flet controls in here. ``AppState`` owns the session (``app.session``: first run, PIN,
lock, sign-out), the open store, the drafts (``app.drafts``), the syncs (``app.syncing``),
the photos (``app.attachments``) and the case work on the store (``app.casework``);
``app.main`` wires it to a page (it listens with ``subscribe``) and to the vault, store
and sync engine (passed in as ``Services``). The screens are listed in ``app.routes``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from app.attachments import Attachments
from app.casework import Casework
from app.drafts import Drafts
from app.errors import VaultLocked
from app.messages import plain_error
from app.session import Session
from app.store import Store
from app.syncing import Syncing, SyncStatus, ago, stale_screen_state, survivor_here
from sync import errors as sync_errors

__all__ = [
    "AppState",
    "Services",
    "SyncStatus",
    "ago",
]


@dataclass
class Services:
    """What ``app.main`` wires in: the vault and factories for store, client and engine.

    ``open_store(key, device_id=None)`` opens the encrypted store (the device id, the
    store's clock node, is given once at enrolment and remembered);
    ``client(server_url, token_source)`` makes a ``sync.client.SyncClient``;
    ``engine(store, client, on_progress)`` makes a ``sync.engine.SyncEngine``.
    """

    vault: Any
    open_store: Callable[..., Store]
    client: Callable[[str, Callable[[], str | None] | None], Any]
    engine: Callable[[Any, Any, Callable[[Any], None]], Any]
    device_name: str = "Liaison device"
    default_server_url: str = ""
    auto_sync: bool = False  # run a SyncScheduler while unlocked (the app; not unit tests)
    run_blocking: Callable[..., Awaitable[Any]] = field(default=asyncio.to_thread)


class AppState:
    """The whole app's state and actions; screens read it and call its methods."""

    def __init__(self, services: Services, *, now: Callable[[], float] = time.time) -> None:
        self.services = services
        self.vault = services.vault
        self.now = now
        self.store: Store | None = None  # while unlocked
        self._listeners: list[Callable[[str], None]] = []
        self.syncing = Syncing(
            services,
            emit=self.emit,
            now=now,
            plain_error=plain_error,
            on_revoked=lambda notice: self.session.erase(notice),
            on_purged=self._forget_patients,
            after_pull=self._drafts_follow_merges,
        )
        self.ui: dict[str, Any] = {}  # per-session screen state (search text, filters)
        self.drafts = Drafts()  # typed, unsaved form input: encrypted, survives auto-lock
        self.attachments = Attachments(self)  # photos: add, read, download on first view
        self.casework = Casework(self)  # assessments, rounds, referrals, transitions, tasks
        self.session = Session(self)

    # -- observers ----------------------------------------------------------------------
    def subscribe(self, listener: Callable[[str], None]) -> None:
        """Call ``listener(topic)`` on "phase", "sync", "saved" (a local save) and "photo"
        (a photo downloaded)."""
        self._listeners.append(listener)

    def emit(self, topic: str) -> None:
        """Tell every listener that ``topic`` changed."""
        for listener in list(self._listeners):
            listener(topic)

    @property
    def sync(self) -> SyncStatus:
        """The sync status the screens show (kept by ``syncing``)."""
        return self.syncing.status

    @property
    def today(self) -> dt.date:
        """Today's date by the injected clock (local time)."""
        return dt.datetime.fromtimestamp(self.now()).date()

    # -- what is open while unlocked (the session opens and closes it) ------------------
    def open_store(self, key: bytes, device_id: str | None = None) -> Store:
        """Open the encrypted store with the data ``key`` (the device id, the store's clock
        node, is given once at enrolment); every save through it calls ``record_saved``."""
        store = self.services.open_store(key, device_id)
        store.watch(self.record_saved)
        self.store = store
        return store

    def require_store(self) -> Store:
        """The open store; ``VaultLocked`` while locked (an action that outlived the
        unlocked session)."""
        if self.store is None:
            raise VaultLocked("the app is locked")
        return self.store

    def load(self) -> None:
        """Start work on the open store: the drafts are read back, syncs may run."""
        self.drafts.open(self.require_store())
        self.syncing.open(self.store)

    def close(self) -> None:
        """Stop syncs, write the drafts (encrypted), close the store, and forget every
        patient-derived value kept for the screens."""
        self.syncing.close()
        self.drafts.close()  # what is typed is written before the store closes
        if self.store is not None:
            self.store.close()
        self.store = None
        self.ui.clear()
        self.attachments.reset()

    def erase(self) -> None:
        """Erase this device's data: the keystore's secret first (a crypto-erase), then
        every file of the vault and the store."""
        self.syncing.close(forget=True)
        store, self.store = self.store, None
        if store is not None:
            store.close()
        self.vault.wipe()
        if store is not None:
            store.wipe()  # whatever of the store lives outside the vault's directory
        self.forget()

    def forget(self) -> None:
        """After the data was erased (here, or by the vault after too many wrong PINs):
        nothing of it stays in memory, and nothing is left to write."""
        self.store = None
        self.drafts = Drafts()
        self.ui.clear()
        self.attachments.reset()
        self.syncing.close(forget=True)

    def account(self) -> dict[str, Any]:
        """Server, user and device facts for Settings (no patient data)."""
        store = self.store
        if store is None:
            return {}
        user = store.get_meta("user") or {}
        return {
            "server_url": store.get_meta("server_url") or "",
            "device_id": store.get_meta("device_id") or "",
            "username": user.get("username", ""),
            "role": user.get("role", ""),
            "teams": user.get("teams", []),
        }

    def teams(self) -> list[tuple[str, str]]:
        """(id, name) of the signed-in user's teams."""
        out = []
        for team in self.account().get("teams") or []:
            if isinstance(team, dict):
                out.append(
                    (
                        str(team.get("id", team.get("name", ""))),
                        str(team.get("name", team.get("id", ""))),
                    )
                )
            else:
                out.append((str(team), str(team)))
        return out

    def add_patient(
        self, name: str, phone: str = "", birth_date: str = "", team_id: str | None = None
    ) -> tuple[str | None, dict[str, str]]:
        """Quick-add a patient; returns (new id, {}) or (None, field errors)."""
        fields: dict[str, Any] = {
            "name": name.strip(),
            "status": "active",
            "consent_status": "unknown",
        }
        if phone.strip():
            fields["phone"] = phone.strip()
        if birth_date.strip():
            fields["birth_date"] = birth_date.strip()
        try:
            if team := self.team_for_new("patient", team_id):
                fields["team_id"] = team
            record = self.require_store().put("patient", fields)
        except sync_errors.InvalidRecord as exc:
            return None, {
                e.field: f"{e.message[:1].upper()}{e.message[1:]}."
                if e.field == "team_id"
                else f"{e.field.replace('_', ' ').capitalize()} {e.message}."
                for e in exc.errors
            }
        return str(record["id"]), {}

    def team_for_new(self, what: str, chosen: str | None = None) -> str | None:
        """The team a new patient or round belongs to (DESIGN §3): the chosen one, else the
        user's only team; None when no team is known (the server places it). Raises
        InvalidRecord on ``team_id`` when the user is in several teams and chose none."""
        teams = self.teams()
        if chosen:
            return chosen
        if len(teams) > 1:
            raise sync_errors.InvalidRecord(
                [sync_errors.FieldError("team_id", f"choose the team this {what} belongs to")]
            )
        return teams[0][0] if teams else None

    def _drafts_follow_merges(self) -> None:
        """Drafts naming a patient merged away (here or on another phone) name its survivor."""
        store = self.store
        if store is None:
            return

        def with_tombstones(record_id: str) -> Any:
            return store.get(record_id, include_deleted=True)

        for patient_id in self.drafts.ids_named():
            survivor = survivor_here(with_tombstones, patient_id)
            if survivor != patient_id:
                self.drafts.move_patient(patient_id, survivor)

    def _forget_patients(self, patient_ids: list[str]) -> None:
        """Patients left this device's scope: drop the screen state holding their data,
        with any pending autosave, so nothing of theirs is shown or written back."""
        store = self.store
        if store is None:
            return

        def exists(record_id: str) -> bool:
            return store.get(record_id, include_deleted=True) is not None

        self.drafts.forget_patients(patient_ids)
        for key in stale_screen_state(self.ui, set(patient_ids), exists):
            value = self.ui.pop(key)
            pending = (
                value.get("debouncer")
                if isinstance(value, dict)
                else getattr(value, "debouncer", None)
            )
            if pending is not None:
                pending.cancel()

    def record_saved(self) -> None:
        """After any local save: count pending changes and tell listeners ("saved")."""
        self.session.touch()
        self.syncing.saved()
        self.emit("saved")
