"""Sign-in throttling per key (a username, a device, a client address), kept in the database.

Attempts are counted in a fixed window per key. An attempt is *reserved* before its
password is checked (``reserve``): the count goes up in the same statement that checks the
limit, so forty sign-ins at once for one user still get only ``limit`` password checks. A
successful sign-in gives its reservation back (``release``) or clears the key (``clear``).
Kept in the database so several server processes share the counts.
"""

from __future__ import annotations

import math

from sqlalchemy import Connection, case, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from server import db
from server.errors import Throttled

_T = db.throttle


def retry_after(conn: Connection, limits: dict[str, int], window: int, now: float) -> int | None:
    """Seconds to wait when any key is at its limit, else None (reads only)."""
    if not limits:
        return None
    rows = conn.execute(select(_T).where(_T.c.key.in_(list(limits))))
    waits = [
        math.ceil(row.window_start + window - now)
        for row in rows
        if row.failures >= limits[row.key] and now < row.window_start + window
    ]
    return max(waits) if waits else None


def reserve(
    conn: Connection,
    limits: dict[str, int],
    window: int,
    now: float,
    amount: int = 1,
    message: str = "too many attempts; try again later",
) -> None:
    """Count ``amount`` against every key, or raise Throttled (nothing counted) when any key
    would pass its limit within its window. Call in a write transaction."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    expired = _T.c.window_start <= now - window
    for key, limit in limits.items():
        conn.execute(
            dialect.insert(_T)
            .values(key=key, failures=0, window_start=now)
            .on_conflict_do_nothing(index_elements=["key"])
        )
        # One statement checks and counts, so concurrent attempts cannot all pass the check.
        counted = conn.execute(
            update(_T)
            .where(_T.c.key == key, expired | (_T.c.failures + amount <= limit))
            .values(
                failures=case((expired, amount), else_=_T.c.failures + amount),
                window_start=case((expired, now), else_=_T.c.window_start),
            )
            .returning(_T.c.key)
        ).first()
        if counted is None:
            start = conn.execute(select(_T.c.window_start).where(_T.c.key == key)).scalar_one()
            # The transaction rolls back: the keys counted before this one are not charged.
            raise Throttled(message, math.ceil(start + window - now))


def release(conn: Connection, keys: list[str], amount: int = 1) -> None:
    """Give back a reservation (the attempt succeeded)."""
    for key in keys:
        conn.execute(
            update(_T)
            .where(_T.c.key == key)
            .values(failures=case((_T.c.failures > amount, _T.c.failures - amount), else_=0))
        )


def clear(conn: Connection, key: str) -> None:
    """Forget the attempts of a key (after a successful sign-in)."""
    conn.execute(delete(_T).where(_T.c.key == key))


def forget_before(conn: Connection, start: float) -> None:
    """Delete the counts of windows that began before ``start`` (none is still running)."""
    conn.execute(delete(_T).where(_T.c.window_start < start))
