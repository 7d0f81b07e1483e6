"""The sentences the app says about the server, sign-in and this phone's data, each once.

Screens and state say these through ``app.state.plain_error`` (any error), the sync
status (``app.syncing``) or directly; tests look for their opening words ("Can't reach the
server", "Your sign-in has expired"), so keep those when rewording.
"""

from __future__ import annotations

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
