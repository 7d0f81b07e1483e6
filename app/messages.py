"""The sentences the app says about the server, sign-in and this phone's data, each once.

Screens and state say these through ``plain_error`` (any error), the sync
status (``app.syncing``) or directly; tests look for their opening words ("Can't reach the
server", "Your sign-in has expired"), so keep those when rewording.
"""

from __future__ import annotations

from app import errors
from sync import errors as sync_errors

OFFLINE = (
    "Can't reach the server. Your work is saved on this phone and will sync when you are "
    "back online."
)
SIGN_IN_EXPIRED = (
    "Your sign-in has expired. Sign in again on the Sync screen; your unsynced work is kept "
    "on this phone."
)
SIGN_IN_EXPIRED_ERASE = (
    "Your sign-in has expired: sign in again on the Sync screen to send them first, or "
    "erase anyway."
)
TOO_MANY_TRIES = "Too many tries. Wait a few minutes, then try again."
INSECURE_URL = "The server address must start with https:// (plain http only on this computer)."
DEVICE_REVOKED = "This device was signed out by an administrator; its Liaison data was erased."
STORE_DAMAGED = "The data on this phone is damaged. Nothing was overwritten; call support."
ERASED = "Liaison's data was erased from this phone. Sign in again to download your caseload."
LOCKED_MEANWHILE = "Liaison was locked. Unlock and try again."
WRONG_PASSWORD = "Wrong password."
WRONG_USERNAME_OR_PASSWORD = "Wrong username or password."


def unreachable_at(server_url: str) -> str:
    """Can't reach the server at an address the user just typed (maybe mistyped)."""
    return f"Can't reach the server at {server_url}. Check the address."


def sign_in_expired_as(username: str) -> str:
    """The sign-in-again dialog's explanation for ``username``."""
    return (
        f"Your sign-in as {username} has expired. Type your password to sync again; your "
        "unsynced work stays on this phone."
    )


def server_refused(reason: str | None) -> str:
    """The server answered but refused (``reason`` is its own message)."""
    return f"The server refused: {reason or 'unknown reason'}."


def something_went_wrong(kind: str) -> str:
    """An error nobody foresaw, named by its kind only (never its text: it may hold data)."""
    return f"Something went wrong ({kind})."


def plain_error(exc: BaseException) -> str:
    """A sentence a liaison can act on, for any error the app shows."""
    if isinstance(exc, sync_errors.InsecureServerURL):
        return INSECURE_URL
    if isinstance(exc, sync_errors.DeviceRevoked):
        return DEVICE_REVOKED
    if isinstance(exc, sync_errors.AuthExpired):
        return SIGN_IN_EXPIRED
    if isinstance(exc, sync_errors.ServerRefused):
        if exc.status == 429:
            return TOO_MANY_TRIES
        return server_refused(exc.message)
    if isinstance(exc, sync_errors.ServerUnavailable):
        return OFFLINE
    if isinstance(exc, sync_errors.InvalidRecord):
        return "; ".join(f"{e.field.replace('_', ' ')} {e.message}" for e in exc.errors)
    if isinstance(exc, errors.StoreCorrupted):
        return STORE_DAMAGED
    if isinstance(exc, sync_errors.SyncError | errors.AppError):
        return str(exc)[:200] or type(exc).__name__
    return something_went_wrong(type(exc).__name__)


def vault_refusal(exc: BaseException) -> str | None:
    """What to tell the user when the vault refuses to try a PIN at all (else None)."""
    from app.keystore import KeystoreUnavailable
    from app.vault import VaultForeign, VaultRolledBack

    erase = (
        "Tap \u201cForgot PIN?\u201d to erase them, then sign in again to download your caseload."
    )
    if isinstance(exc, VaultRolledBack):
        return (
            "Liaison's files on this phone are an older copy than the ones it last saved "
            "(restored from a backup, or changed outside Liaison), so they were not "
            f"opened. {erase}"
        )
    if isinstance(exc, VaultForeign):
        return (
            "Liaison's files on this phone were not saved with this phone's secure "
            "keystore (copied from another device, or restored after an erase), so they "
            f"were not opened. {erase}"
        )
    if isinstance(exc, KeystoreUnavailable):
        return (
            "This phone's secure keystore did not answer, so Liaison cannot check your "
            "PIN. Close Liaison and open it again."
        )
    return None


def sentence(exc: BaseException) -> str:
    """An error's own text as a sentence ("pin too short" -> "Pin too short.")."""
    text = str(exc)
    return (text[:1].upper() + text[1:]).rstrip(".") + "."
