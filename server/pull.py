"""Pull (DESIGN §4): the caller's records with rev above a cursor, oldest first, plus purges.

The page is bounded by the committed high-water rev read first: revs commit in order
(see ``server.records``), so every rev at or below it is visible and the returned cursor
never passes a rev that has yet to commit.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import Connection, select

from server import audit, db, records
from server.scope import Caller, visible


def pull(conn: Connection, caller: Caller, cursor: int, limit: int, now: float) -> dict[str, Any]:
    """One page of changes after ``cursor`` for the caller; returns the response body."""
    top = records.high_water(conn)
    t = db.records
    rows = conn.execute(
        select(t)
        .where(t.c.rev > cursor, t.c.rev <= top, visible(t, caller))
        .order_by(t.c.rev)
        .limit(limit + 1)
    ).all()
    more = len(rows) > limit
    page = [records.from_row(r) for r in rows[:limit]]
    new_cursor = page[-1].rev if more else top
    purge = _purges(conn, caller, cursor, new_cursor)
    patient_data = [r.id for r in page if r.team_id is not None]
    if patient_data or purge:
        audit.append(
            conn, at=now, actor=caller.actor, action="sync.pull", targets=patient_data + purge
        )
    return {
        "records": [r.as_record().as_json() for r in page],
        "purge": purge,
        "cursor": new_cursor,
        "more": more,
        "last_mutation_id": caller.last_mutation_id,
    }


def _purges(conn: Connection, caller: Caller, after: int, upto: int) -> list[str]:
    """Patients that left the caller's teams in (after, upto] and are not back in scope."""
    if after == 0 or upto <= after or not caller.team_ids:
        return []  # a device pulling from 0 holds nothing to purge
    sc = db.scope_changes
    left = conn.execute(
        select(sc.c.patient_id)
        .where(sc.c.rev > after, sc.c.rev <= upto, sc.c.from_team_id.in_(caller.team_ids))
        .order_by(sc.c.rev)
    ).scalars()
    candidates = list(dict.fromkeys(left))
    if not candidates:
        return []
    still_visible = set(
        conn.execute(
            select(db.records.c.id).where(
                db.records.c.id.in_(candidates), visible(db.records, caller)
            )
        ).scalars()
    )
    return [p for p in candidates if p not in still_visible]
