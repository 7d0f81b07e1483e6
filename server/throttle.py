"""Login throttling per username and per client address, kept in the database.

Failures are counted in a fixed window per key; once a key reaches its limit, attempts
are refused (429, Retry-After) until the window ends. Kept in the database so several
server processes share the counts.
"""

from __future__ import annotations

import math

from sqlalchemy import Connection, case, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite

from server import db


def retry_after(
    conn: Connection, limits: dict[str, int], window: int, now: float
) -> int | None:
    """Seconds to wait when any key is over its limit, else None."""
    if not limits:
        return None
    rows = conn.execute(select(db.throttle).where(db.throttle.c.key.in_(list(limits))))
    waits = [
        math.ceil(row.window_start + window - now)
        for row in rows
        if row.failures >= limits[row.key] and now < row.window_start + window
    ]
    return max(waits) if waits else None


def record_failure(conn: Connection, keys: list[str], window: int, now: float) -> None:
    """Count one failed attempt against each key."""
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    t = db.throttle
    for key in keys:
        conn.execute(
            dialect.insert(t)
            .values(key=key, failures=0, window_start=now)
            .on_conflict_do_nothing(index_elements=["key"])
        )
        expired = t.c.window_start <= now - window
        conn.execute(
            update(t)
            .where(t.c.key == key)
            .values(
                failures=case((expired, 1), else_=t.c.failures + 1),
                window_start=case((expired, now), else_=t.c.window_start),
            )
        )


def clear(conn: Connection, key: str) -> None:
    """Forget the failures of a key (after a successful sign-in)."""
    conn.execute(delete(db.throttle).where(db.throttle.c.key == key))
