"""Errors of the server; each maps to one HTTP status and the JSON envelope of DESIGN §4.

ServerError                      500 internal_error
├── BadRequest                   400 malformed (bad JSON, wrong shape, bad cursor)
├── Unauthorized                 401 unauthorized (no or unknown token, wrong password)
│   ├── TokenExpired             401 token_expired (idle or absolute expiry)
│   └── DeviceRevoked            401 device_revoked, with "wipe": true
├── Forbidden                    403 out_of_scope / forbidden
├── NotFound                     404 not_found
├── RequestTimeout               408 request_timeout (the body stalled)
├── Conflict                     409 conflict (already exists)
├── TooLarge                     413 too_large
├── UnsupportedMediaType         415 unsupported_encoding
├── Invalid                      422 invalid (carries the field)
├── Throttled                    429 throttled (carries retry_after seconds)
├── Unavailable                  503 unavailable (the database could not be reached)
└── Rejected                     one mutation refused inside a push (never an HTTP answer)

Database errors are translated to these in one place: ``from_database_error``.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import exc as sa_exc


class ServerError(Exception):
    """Base of every server error; ``status`` and ``code`` drive the JSON envelope."""

    status = 500
    code = "internal_error"

    def __init__(self, message: str, *, code: str | None = None, field: str | None = None):
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        self.field = field

    def envelope(self) -> dict[str, Any]:
        """The JSON body of the error response."""
        error: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.field is not None:
            error["field"] = self.field
        return {"error": error}

    def headers(self) -> dict[str, str]:
        """Extra response headers."""
        return {}


class BadRequest(ServerError):
    """The request is malformed."""

    status = 400
    code = "malformed"


class Unauthorized(ServerError):
    """No usable credentials."""

    status = 401
    code = "unauthorized"

    def headers(self) -> dict[str, str]:
        """Ask for a bearer token."""
        return {"WWW-Authenticate": "Bearer"}


class TokenExpired(Unauthorized):
    """The device token passed its idle or absolute expiry: sign in again."""

    code = "token_expired"


class DeviceRevoked(Unauthorized):
    """The device was revoked; it must erase its local data."""

    code = "device_revoked"

    def envelope(self) -> dict[str, Any]:
        """The error envelope plus ``wipe``."""
        return {**super().envelope(), "wipe": True}


class Forbidden(ServerError):
    """Authenticated, but not allowed to touch this."""

    status = 403
    code = "out_of_scope"


class NotFound(ServerError):
    """No such resource (or not visible to the caller)."""

    status = 404
    code = "not_found"


class RequestTimeout(ServerError):
    """The client stopped sending its body."""

    status = 408
    code = "request_timeout"


class Conflict(ServerError):
    """The change clashes with existing state."""

    status = 409
    code = "conflict"


class TooLarge(ServerError):
    """The request body or batch is over a limit."""

    status = 413
    code = "too_large"


class UnsupportedMediaType(ServerError):
    """A body encoding the server does not read."""

    status = 415
    code = "unsupported_encoding"


class Invalid(ServerError):
    """Well-formed but invalid content."""

    status = 422
    code = "invalid"


class Throttled(ServerError):
    """Too many attempts; try again after ``retry_after`` seconds."""

    status = 429
    code = "throttled"

    def __init__(self, message: str, retry_after: int) -> None:
        super().__init__(message)
        self.retry_after = max(1, retry_after)

    def headers(self) -> dict[str, str]:
        """Tell the client when to retry."""
        return {"Retry-After": str(self.retry_after)}


class Unavailable(ServerError):
    """The database is unreachable or overloaded; retry later."""

    status = 503
    code = "unavailable"

    def headers(self) -> dict[str, str]:
        """Suggest a short wait."""
        return {"Retry-After": "5"}


class Rejected(ServerError):
    """One mutation of a push was refused; reported in its result, not as a response."""

    status = 422
    code = "invalid"


def from_database_error(error: sa_exc.DBAPIError | sa_exc.TimeoutError) -> ServerError:
    """Translate a database driver error (or a pool timeout) into a server error."""
    if isinstance(error, sa_exc.TimeoutError):
        return Unavailable("the server is busy; try again")
    if isinstance(error, sa_exc.IntegrityError):
        return Conflict("the change clashes with existing data")
    if isinstance(error, sa_exc.DataError):
        return Invalid("a value could not be stored (bad characters or out of range)")
    if isinstance(error, (sa_exc.OperationalError, sa_exc.InterfaceError)):
        return Unavailable("the database is busy or unreachable; try again")
    return ServerError("database error")
