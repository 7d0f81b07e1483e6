"""The session: first run, the PIN, lock and auto-lock, signing in again, signing out.

Phases: ``first_run`` (no PIN yet) -> ``unlocked`` <-> ``locked``. The session moves between
them and tells the app's listeners ("phase"); what is open while unlocked (the store, drafts,
syncs, photos) is the app's (``app.state.AppState``), opened and closed from here. Locking
drops the data key, closes the store and forgets every patient-derived value kept in memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from app import errors, messages
from app.messages import plain_error, sentence, vault_refusal
from sync import errors as sync_errors

if TYPE_CHECKING:
    from app.state import AppState
    from app.store import Store

FIRST_RUN, LOCKED, UNLOCKED = "first_run", "locked", "unlocked"
DEFAULT_AUTO_LOCK_MINUTES = 5
AUTO_LOCK_CHOICES = (1, 2, 5, 10, 15, 30)


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


class Session:
    """The phase machine of one app: how a liaison gets in, stays in, and gets out."""

    def __init__(self, app: AppState) -> None:
        self.app = app
        self.services, self.vault, self.now, self.emit = (
            app.services,
            app.vault,
            app.now,
            app.emit,
        )
        self.first_run = FirstRun(server_url=app.services.default_server_url)
        self.unlock_state = Unlock()
        self.last_activity = self.now()
        self.auto_lock_minutes = DEFAULT_AUTO_LOCK_MINUTES
        self.notice: str | None = None  # a one-time message for the next screen
        self.away_until = 0.0  # until then, going to the background is our picker: no lock
        self.phase = LOCKED if self.vault.is_set_up else FIRST_RUN
        self._refresh_unlock_status()

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
            store = self.app.open_store(key, str(enrolment["device_id"]))
            for name in ("token", "device_id", "user"):
                store.set_meta(name, enrolment.get(name))
            store.set_meta("server_url", fr.server_url)
        finally:
            fr.busy = False
        self._unlocked()
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
        else:
            # Off the event loop: reading a big store takes seconds, and the screen (its
            # "Unlocking" state) must stay alive meanwhile.
            await self.services.run_blocking(self.app.open_store, key)
        finally:
            u.busy = False
        self.unlock_state = Unlock(max_attempts=u.max_attempts, attempts_left=u.max_attempts)
        self._unlocked()
        self.emit("phase")
        return True

    def lock(self) -> None:
        """Drop the key, close the store, forget patient data; screens go to the PIN pad."""
        if self.phase != UNLOCKED:
            return
        self.app.close()
        self.vault.lock()
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
        if self.app.store is not None:
            self.app.store.set_meta("auto_lock_minutes", minutes)

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

    # -- sign in again --------------------------------------------------------------------
    async def sign_in_again(self, password: str) -> str | None:
        """After the sign-in expired: sign in again as the same user, then sync.

        Every local edit is kept: the server registers this phone as a new device and the
        sync engine numbers the waiting changes for it. The store, its key and its clock
        node stay as they are. Returns None when signed in (a sync then starts in the
        background), else what to tell the user.
        """
        store = self.app.store
        if store is None:
            return "Unlock Liaison first."
        if not password:
            return "Type your password."
        await self.app.syncing.pause()  # a sync under way must not report the old token later
        try:
            problem = await self._enrol_again(store, password)
            if problem is None:
                self.app.sync.sign_in_required, self.app.sync.error = False, None
        finally:
            if self.app.store is store:
                self.app.syncing.resume()  # with automatic syncs, this syncs at once
        if problem is None:
            if not self.services.auto_sync:
                self.app.syncing.start()
            self.emit("sync")
        return problem

    async def _enrol_again(self, store: Store, password: str) -> str | None:
        username = str(self.app.account().get("username") or "")
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
        if self.app.store is not store:  # locked while the server answered
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
        if self.app.store is None:
            return 0
        await self.app.syncing.pause()  # a sync cut short resumes safely below
        self.app.syncing.refresh_pending()
        if self.app.sync.pending:
            await self.app.syncing.sync_now()
            if self.app.store is None:  # the server revoked us meanwhile: already erased
                return 0
        if self.app.sync.pending and not force:
            self.app.syncing.resume()
            return self.app.sync.pending
        device_id = self.app.store.get_meta("device_id")
        if device_id:
            try:
                client = self.app.syncing.client()
                try:
                    await client.revoke(device_id)
                finally:
                    await client.aclose()
            except (sync_errors.SyncError, ValueError):
                pass  # best effort: an administrator can still revoke it on the server
        self.erase(messages.DEVICE_REVOKED)
        return 0

    def forget_pin(self) -> None:
        """Forgotten PIN: erase this device's data (unsynced work is lost) and start over."""
        self.erase(messages.ERASED)

    def erase(self, notice: str) -> None:
        """Erase this device's data and start over at sign-in, saying ``notice`` there
        (signed out, revoked by an administrator, a forgotten PIN)."""
        self.app.erase()
        self._after_wipe(notice)

    def _unlocked(self) -> None:
        store = self.app.require_store()
        minutes = store.get_meta("auto_lock_minutes")
        self.auto_lock_minutes = (
            minutes if minutes in AUTO_LOCK_CHOICES else DEFAULT_AUTO_LOCK_MINUTES
        )
        self.phase = UNLOCKED
        self.touch()
        self.app.load()

    def _after_wipe(self, notice: str) -> None:
        self.app.forget()
        self.unlock_state = Unlock()
        self.first_run = FirstRun(server_url=self.services.default_server_url)
        self.notice = notice
        self.phase = FIRST_RUN
        self.emit("phase")
