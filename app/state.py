"""App state and actions as plain classes: phase, lock, first run, settings.

No Flet controls in here. ``AppState`` holds what the screens show and the actions they
call; ``app.main`` wires it to a page (it listens with ``subscribe``) and to the vault,
store and sync engine (passed in as ``Services``); ``app.syncing`` runs the syncs. The
screens are listed in ``app.routes``.

Phases: ``first_run`` (no PIN yet) -> ``unlocked`` <-> ``locked``. Locking drops the data
key, closes the store and forgets every patient-derived value kept here.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from app import errors, messages
from app.attachments import Attachments
from app.drafts import Drafts
from app.messages import plain_error, sentence, vault_refusal
from app.syncing import Syncing, SyncStatus, ago, stale_screen_state, survivor_here
from sync import errors as sync_errors

__all__ = [
    "AppState",
    "Services",
    "SyncStatus",
    "ago",
]

FIRST_RUN, LOCKED, UNLOCKED = "first_run", "locked", "unlocked"
DEFAULT_AUTO_LOCK_MINUTES = 5
AUTO_LOCK_CHOICES = (1, 2, 5, 10, 15, 30)

# -- state pieces ---------------------------------------------------------------------


@dataclass
class FirstRun:
    """The enrolment flow: server step, PIN step, first sync step."""

    step: str = "server"  # server -> pin -> sync -> done
    server_url: str = ""
    username: str = ""
    errors: dict[str, str] = field(default_factory=dict)
    busy: bool = False
    message: str | None = None
    # The enrolment answer {device_id, token, user}: held in memory only until the PIN
    # makes a data key to encrypt it with.
    enrolment: dict[str, Any] | None = None


@dataclass
class Unlock:
    """The PIN pad: digits typed so far and what to tell the user."""

    entry: str = ""
    message: str | None = None
    busy: bool = False
    attempts_left: int = 10
    max_attempts: int = 10
    retry_at: float = 0.0  # clock time when the next attempt is allowed


class WatchedStore:
    """The open store as screens see it: each put or delete also calls ``on_change``."""

    def __init__(self, store: Any, on_change: Callable[[], None]) -> None:
        self.inner, self._on_change = store, on_change

    def __getattr__(self, name: str) -> Any:
        return getattr(self.inner, name)

    def put(self, *args: Any, **kwargs: Any) -> Any:
        """``Store.put``, then tell the app (pending badge, background sync)."""
        record = self.inner.put(*args, **kwargs)
        self._on_change()
        return record

    def delete(self, *args: Any, **kwargs: Any) -> None:
        """``Store.delete``, then tell the app."""
        self.inner.delete(*args, **kwargs)
        self._on_change()


@dataclass
class Services:
    """What ``app.main`` wires in: the vault and factories for store, client and engine.

    ``open_store(key, device_id=None)`` opens the encrypted store (the device id, the
    store's clock node, is given once at enrolment and remembered);
    ``client(server_url, token_source)`` makes a ``sync.client.SyncClient``;
    ``engine(store, client, on_progress)`` makes a ``sync.engine.SyncEngine``.
    """

    vault: Any
    open_store: Callable[..., Any]
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
        self.store: Any = None
        self.first_run = FirstRun(server_url=services.default_server_url)
        self.unlock_state = Unlock()
        self.syncing = Syncing(
            services,
            emit=self.emit,
            now=now,
            plain_error=plain_error,
            on_revoked=self._erase_local,
            on_purged=self._forget_patients,
            after_pull=self._drafts_follow_merges,
        )
        self.last_activity = now()
        self.auto_lock_minutes = DEFAULT_AUTO_LOCK_MINUTES
        self.notice: str | None = None  # a one-time message for the next screen
        self.ui: dict[str, Any] = {}  # per-session screen state (search text, filters)
        self.drafts = Drafts()  # typed, unsaved form input: encrypted, survives auto-lock
        self.attachments = Attachments(self)  # photos: add, read, download on first view
        self.away_until = 0.0  # until then, going to the background is our picker: no lock
        self._listeners: list[Callable[[str], None]] = []
        self.phase = LOCKED if self.vault.is_set_up else FIRST_RUN
        self._refresh_unlock_status()

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

    # -- first run ------------------------------------------------------------------------
    async def enrol(self, server_url: str, username: str, password: str) -> bool:
        """Sign in and register this device; keep the token in memory until the PIN step."""
        fr = self.first_run
        fr.server_url, fr.username = server_url.strip(), username.strip()
        fr.errors = {}
        for name, value in (
            ("server_url", fr.server_url),
            ("username", fr.username),
            ("password", password),
        ):
            if not value:
                fr.errors[name] = "Required"
        if fr.errors:
            return False
        fr.busy, fr.message = True, None
        try:
            client = self.services.client(fr.server_url, None)
            try:
                fr.enrolment = await client.enrol(fr.username, password, self.services.device_name)
            finally:
                await client.aclose()
        except sync_errors.InsecureServerURL as exc:
            fr.errors["server_url"] = plain_error(exc)
            return False
        except sync_errors.ServerRefused as exc:
            if exc.status == 401:
                fr.message = messages.WRONG_USERNAME_OR_PASSWORD
            else:
                fr.message = plain_error(exc)
            return False
        except (sync_errors.SyncError, ValueError) as exc:
            if isinstance(exc, sync_errors.ServerUnavailable):
                fr.message = messages.unreachable_at(fr.server_url)
            else:
                fr.message = plain_error(exc)
            return False
        finally:
            fr.busy = False
        fr.step = "pin"
        return True

    async def choose_pin(self, pin: str, again: str) -> bool:
        """Create the vault with ``pin``, open the store, save the enrolment; then sync."""
        from app.vault import check_new_pin

        fr = self.first_run
        fr.errors, fr.message = {}, None
        if fr.enrolment is None:
            fr.step = "server"
            return False
        try:
            check_new_pin(pin)
        except errors.InvalidPin as exc:
            fr.errors["pin"] = sentence(exc)
            return False
        if pin != again:
            fr.errors["pin_again"] = "The two PINs differ. Type the same PIN twice."
            return False
        fr.busy = True
        try:
            try:
                key = await self.services.run_blocking(self.vault.setup, pin)
            except errors.VaultError as exc:
                fr.message = vault_refusal(exc) or plain_error(exc)
                return False
            enrolment, fr.enrolment = fr.enrolment, None
            self._open_store(key, str(enrolment["device_id"]))
            for name in ("token", "device_id", "user"):
                self.store.set_meta(name, enrolment.get(name))
            self.store.set_meta("server_url", fr.server_url)
        finally:
            fr.busy = False
        self.phase = UNLOCKED
        self.touch()
        self._load_session()
        fr.step = "sync"
        self.emit("phase")
        return True

    def finish_first_run(self) -> None:
        """Leave the first-run flow (after the first sync, or skipping it when offline)."""
        self.first_run = FirstRun(server_url=self.first_run.server_url, step="done")
        self.emit("phase")

    # -- lock -----------------------------------------------------------------------------
    def _refresh_unlock_status(self) -> None:
        if not self.vault.is_set_up:
            return
        try:
            status = self.vault.status()
        except errors.VaultError as exc:  # shown on the PIN pad; unlock says it again
            self.unlock_state.message = vault_refusal(exc) or plain_error(exc)
            return
        u = self.unlock_state
        u.attempts_left, u.max_attempts = status.attempts_left, status.max_attempts
        u.retry_at = self.now() + status.retry_after if status.retry_after else 0.0

    def press_digit(self, digit: str) -> None:
        """Add a digit to the PIN being typed (at most 12)."""
        if digit.isdigit() and len(digit) == 1 and len(self.unlock_state.entry) < 12:
            self.unlock_state.entry += digit

    def erase_digit(self) -> None:
        """Remove the last digit typed."""
        self.unlock_state.entry = self.unlock_state.entry[:-1]

    def retry_in(self) -> float:
        """Seconds until the next PIN attempt is allowed (0 when allowed now)."""
        return max(0.0, self.unlock_state.retry_at - self.now())

    async def unlock(self, pin: str | None = None) -> bool:
        """Try the typed PIN; on success open the store and go to the unlocked phase."""
        u = self.unlock_state
        pin = u.entry if pin is None else pin
        u.entry, u.message = "", None
        if len(pin) < 6:
            u.message = "The PIN has at least 6 digits."
            return False
        u.busy = True
        try:
            key = await self.services.run_blocking(self.vault.unlock, pin)
        except errors.WrongPin as exc:
            u.attempts_left = exc.attempts_left
            u.retry_at = self.now() + exc.retry_after if exc.retry_after else 0.0
            u.message = f"Wrong PIN. {exc.attempts_left} attempts left."
            return False
        except errors.RetryLater as exc:
            u.attempts_left, u.retry_at = exc.attempts_left, self.now() + exc.retry_after
            u.message = "Too many wrong PINs. Wait, then try again."
            return False
        except errors.VaultWiped:
            self._after_wipe(
                "Too many wrong PINs: Liaison erased its data on this device. "
                "Sign in again to download your caseload."
            )
            return False
        except errors.VaultError as exc:
            refusal = vault_refusal(exc)
            if refusal is None:
                raise
            u.message = refusal  # no attempt was spent: the PIN was not even tried
            return False
        finally:
            u.busy = False
        self._open_store(key)
        self.unlock_state = Unlock(max_attempts=u.max_attempts, attempts_left=u.max_attempts)
        self.phase = UNLOCKED
        self.touch()
        self._load_session()
        self.emit("phase")
        return True

    def lock(self) -> None:
        """Drop the key, close the store, forget patient data; screens go to the PIN pad."""
        if self.phase != UNLOCKED:
            return
        self.syncing.close()
        self.drafts.close()  # what is typed is written (encrypted) before the store closes
        if self.store is not None:
            self.store.close()
        self.store = None
        self.vault.lock()
        self.ui.clear()
        self.attachments.reset()
        self.phase = LOCKED
        self._refresh_unlock_status()
        self.emit("phase")

    def touch(self) -> None:
        """Note user activity (resets the idle timer)."""
        self.last_activity = self.now()

    def expect_away(self, seconds: float = 120.0) -> None:
        """The app opens a picker that covers it (on a phone): that is not leaving the app."""
        self.away_until = self.now() + seconds

    def idle_expired(self) -> bool:
        """True when unlocked and idle for longer than the auto-lock setting."""
        idle = self.now() - self.last_activity
        return self.phase == UNLOCKED and idle >= self.auto_lock_minutes * 60

    def check_idle(self) -> bool:
        """Lock if idle for too long; return True when it locked."""
        if self.idle_expired():
            self.lock()
            return True
        return False

    def set_auto_lock(self, minutes: int) -> None:
        """Change the idle time before auto-lock (kept in the encrypted store)."""
        if minutes not in AUTO_LOCK_CHOICES:
            raise ValueError(f"auto-lock must be one of {AUTO_LOCK_CHOICES}")
        self.auto_lock_minutes = minutes
        if self.store is not None:
            self.store.set_meta("auto_lock_minutes", minutes)

    async def change_pin(self, old: str, new: str, again: str) -> dict[str, str]:
        """Re-wrap the data key under a new PIN; returns field errors (empty on success)."""
        from app.vault import check_new_pin

        if new != again:
            return {"pin_again": "The two new PINs differ."}
        try:
            check_new_pin(new)
        except errors.InvalidPin as exc:
            return {"pin_new": sentence(exc)}
        try:
            await self.services.run_blocking(self.vault.change_pin, old, new)
        except errors.WrongPin as exc:
            return {"pin_old": f"Wrong PIN. {exc.attempts_left} attempts left."}
        except errors.RetryLater as exc:
            return {"pin_old": f"Too many wrong PINs. Try again in {exc.retry_after:.0f} s."}
        except errors.InvalidPin as exc:
            return {"pin_old": sentence(exc)}
        except errors.VaultWiped:
            self._after_wipe("Too many wrong PINs: Liaison erased its data on this device.")
            return {"pin_old": "Too many wrong PINs; the data was erased."}
        except errors.VaultError as exc:
            refusal = vault_refusal(exc)
            if refusal is None:
                raise
            return {"pin_old": refusal}
        return {}

    def protection(self) -> str:
        """What locks the data here: "keystore" (PIN and the phone's keystore), "pin-only"
        (a phone whose keystore could not be used yet) or "no-keystore" (web mode)."""
        keystore = getattr(self.vault, "keystore", None)
        if keystore is None or not keystore.available:
            return "no-keystore"
        return "keystore" if getattr(self.vault, "bound", False) else "pin-only"

    # -- session ---------------------------------------------------------------------------
    def _open_store(self, key: bytes, device_id: str | None = None) -> None:
        self.store = WatchedStore(self.services.open_store(key, device_id), self.record_saved)

    def _load_session(self) -> None:
        store = self.store
        minutes = store.get_meta("auto_lock_minutes")
        self.drafts.open(store)
        self.auto_lock_minutes = (
            minutes if minutes in AUTO_LOCK_CHOICES else DEFAULT_AUTO_LOCK_MINUTES
        )
        self.syncing.open(store)

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
            record = self.store.put("patient", fields)
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
        self.touch()
        self.syncing.saved()
        self.emit("saved")

    # -- sign in again --------------------------------------------------------------------
    async def sign_in_again(self, password: str) -> str | None:
        """After the sign-in expired: sign in again as the same user, then sync.

        Every local edit is kept: the server registers this phone as a new device and the
        sync engine numbers the waiting changes for it. The store, its key and its clock
        node stay as they are. Returns None when signed in (a sync then starts in the
        background), else what to tell the user.
        """
        store = self.store
        if store is None:
            return "Unlock Liaison first."
        if not password:
            return "Type your password."
        await self.syncing.pause()  # a sync under way must not report the old token later
        try:
            problem = await self._enrol_again(store, password)
            if problem is None:
                self.sync.sign_in_required, self.sync.error = False, None
        finally:
            if self.store is store:
                self.syncing.resume()  # with automatic syncs, this syncs at once
        if problem is None:
            if not self.services.auto_sync:
                self.syncing.start()
            self.emit("sync")
        return problem

    async def _enrol_again(self, store: Any, password: str) -> str | None:
        username = str(self.account().get("username") or "")
        try:
            client = self.services.client(store.get_meta("server_url") or "", None)
            try:
                enrolment = await client.enrol(
                    username, password, self.services.device_name, store.get_meta("token") or None
                )
            finally:
                await client.aclose()
        except sync_errors.ServerRefused as exc:
            return messages.WRONG_PASSWORD if exc.status == 401 else plain_error(exc)
        except (sync_errors.SyncError, ValueError) as exc:
            return plain_error(exc)
        if self.store is not store:  # locked while the server answered
            return messages.LOCKED_MEANWHILE
        # Only the same account may take over this phone's data (the name is not editable
        # on the screen; the server's answer is checked too).
        if (enrolment.get("user") or {}).get("username") != username:
            return "The server answered for a different account; nothing was changed."
        for name in ("token", "device_id", "user"):
            store.set_meta(name, enrolment.get(name))
        return None

    # -- sign out --------------------------------------------------------------------------
    async def sign_out(self, *, force: bool = False) -> int:
        """Push what is pending, revoke this device, erase it; returns unsynced count.

        Without ``force`` nothing is erased while records are still unsynced: the count
        is returned so the screen can warn and ask again with ``force=True``.
        """
        if self.store is None:
            return 0
        await self.syncing.pause()  # a sync cut short resumes safely below
        self.syncing.refresh_pending()
        if self.sync.pending:
            await self.syncing.sync_now()
            if self.store is None:  # the server revoked us meanwhile: already erased
                return 0
        if self.sync.pending and not force:
            self.syncing.resume()
            return self.sync.pending
        device_id = self.store.get_meta("device_id")
        if device_id:
            try:
                client = self.syncing.client()
                try:
                    await client.revoke(device_id)
                finally:
                    await client.aclose()
            except (sync_errors.SyncError, ValueError):
                pass  # best effort: an administrator can still revoke it on the server
        self._erase_local(messages.DEVICE_REVOKED)
        return 0

    def forget_pin(self) -> None:
        """Forgotten PIN: erase this device's data (unsynced work is lost) and start over."""
        self._erase_local(messages.ERASED)

    def _erase_local(self, notice: str) -> None:
        self.syncing.close(forget=True)
        store, self.store = self.store, None
        if store is not None:
            store.close()
        self.vault.wipe()  # the keystore's secret first (crypto-erase), then every file
        if store is not None:
            store.wipe()  # whatever of the store lives outside the vault's directory
        self._after_wipe(notice)

    def _after_wipe(self, notice: str) -> None:
        self.store = None
        self.drafts = Drafts()  # nothing to write: the store is gone
        self.ui.clear()
        self.attachments.reset()
        self.syncing.close(forget=True)
        self.unlock_state = Unlock()
        self.first_run = FirstRun(server_url=self.services.default_server_url)
        self.notice = notice
        self.phase = FIRST_RUN
        self.emit("phase")
