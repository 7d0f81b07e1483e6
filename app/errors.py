"""Errors of the device app.

AppError
├── VaultError
│   ├── InvalidPin         not 6+ digits, or the two entries differ
│   ├── WrongPin           attempts_left, retry_after (seconds)
│   ├── RetryLater         an attempt during the delay after wrong PINs
│   ├── VaultWiped         the limit of wrong PINs was reached; the data is gone
│   ├── VaultLocked        the data key was asked for while locked
│   └── VaultNotSetUp      unlock before any PIN was chosen
├── StoreError
│   ├── StoreCorrupted     a data file is damaged or was tampered with (never overwritten)
│   ├── StoreClosed        the store was used after close() or lock
│   └── RecordNotFound     no record with that id
└── PhotoError             reason: empty, too_large, too_many_pixels, unsupported, damaged
"""

from __future__ import annotations


class AppError(Exception):
    """Base of every error raised by the app package."""


class VaultError(AppError):
    """A problem with the PIN or the data key."""


class InvalidPin(VaultError):
    """A PIN that is not acceptable as a new PIN."""


class WrongPin(VaultError):
    """The PIN did not unlock the vault."""

    def __init__(self, attempts_left: int, retry_after: float) -> None:
        super().__init__(f"wrong PIN; {attempts_left} attempts left")
        self.attempts_left = attempts_left
        self.retry_after = retry_after


class RetryLater(VaultError):
    """Too soon after a wrong PIN; wait ``retry_after`` seconds."""

    def __init__(self, retry_after: float, attempts_left: int) -> None:
        super().__init__(f"try again in {retry_after:.0f} s")
        self.retry_after = retry_after
        self.attempts_left = attempts_left


class VaultWiped(VaultError):
    """Too many wrong PINs: the data key and local data were erased."""


class VaultLocked(VaultError):
    """The data key is not in memory."""


class VaultNotSetUp(VaultError):
    """No PIN has been chosen on this device yet."""


class StoreError(AppError):
    """A problem with the encrypted record store."""


class StoreCorrupted(StoreError):
    """A store file is damaged or tampered with; it is left untouched."""


class StoreClosed(StoreError):
    """The store was used after it was closed."""


class RecordNotFound(StoreError):
    """No record with that id."""


class PhotoError(AppError):
    """A photo that cannot be accepted; ``reason`` is a short code for the UI."""

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason
