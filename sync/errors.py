"""Errors of the shared sync package.

SyncError
├── InvalidRecord        a record failed schema validation (carries field errors)
├── InvalidClock         an HLC string that does not parse
├── ProtocolError        a wire message of the wrong shape
├── InsecureServerURL    plain http:// to a host other than loopback
├── SyncInProgress       a sync was asked for while another one runs
└── TransportError       the server could not be reached or answered badly
    ├── ServerUnavailable    network down, timeout, 5xx, 429 after retries (retry_after)
    └── ServerRefused        4xx answer (carries status, code, message)
        ├── AuthExpired          401: sign in again, keep local data
        └── DeviceRevoked        401 device_revoked with wipe: erase local data
"""

from __future__ import annotations


class SyncError(Exception):
    """Base of every error raised by the sync package."""


class FieldError(SyncError):
    """One field-named validation problem."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


class InvalidRecord(SyncError):
    """A record failed validation; `errors` lists each field's problem."""

    def __init__(self, errors: list[FieldError]) -> None:
        super().__init__("; ".join(str(e) for e in errors))
        self.errors = errors


class InvalidClock(SyncError):
    """An HLC string that does not parse."""


class ProtocolError(SyncError):
    """A wire message of the wrong shape."""


class InsecureServerURL(SyncError, ValueError):
    """A server URL that is not https (plain http is allowed only to loopback)."""


class SyncInProgress(SyncError):
    """Another sync is running on this device; two syncs never run at once."""


class TransportError(SyncError):
    """The server could not be reached or answered with an error."""


class ServerUnavailable(TransportError):
    """Network down, timeout, or 5xx/429 after retries; try again later."""

    def __init__(self, message: str, retry_after: float | None = None) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ServerRefused(TransportError):
    """The server answered 4xx; retrying the same request will not help."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.field = field


class AuthExpired(ServerRefused):
    """The device token is no longer valid: sign in again; local edits are kept."""


class DeviceRevoked(ServerRefused):
    """The device was revoked and must erase its local data."""
