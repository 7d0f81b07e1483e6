"""Pull (DESIGN §4): the caller's records with rev above a cursor, oldest first, plus purges.

The page is bounded by the committed high-water rev read first: revs commit in order
(see ``server.records``), so every rev at or below it is visible and the returned cursor
never passes a rev that has yet to commit.

A page is read in a read-only transaction and its audit row written after, in a short
write (``Service.pull_body``), so pulls never queue behind pushes for the reading. Records go
out as the JSON text they are stored as (canonical JSON, see ``db.dumps``), spliced into
the response rather than parsed and encoded again: the bytes are the same either way.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, bindparam, select

from server import auth, db, records
from server.scope import Caller, visible
from server.statement import InStatements
from sync import hlc
from sync.protocol import tombstone

_R = db.records
# One statement per number of teams; only the columns the wire needs.
_PAGE = InStatements(
    lambda teams: select(
        _R.c.id, _R.c.type, _R.c.team_id, _R.c.fields, _R.c.clock, _R.c.rev, _R.c.deleted
    )
    .where(
        _R.c.rev > bindparam("cursor"),
        _R.c.rev <= bindparam("top"),
        _R.c.team_id.is_(None) | _R.c.team_id.in_(teams) if teams else _R.c.team_id.is_(None),
    )
    .order_by(_R.c.rev)
    .limit(bindparam("limit")),
    prefix="team",
)


_C = db.conflicts
_LOST = (
    select(_C.c.record_id, _R.c.type, _R.c.team_id, _C.c.field, _C.c.winner_value,
           _C.c.winner_clock, _C.c.loser_value, _C.c.loser_clock)
    .join(_R, _R.c.id == _C.c.record_id)
    .where(_C.c.rev > bindparam("after"), _C.c.rev <= bindparam("upto"),
           _C.c.incoming_won.is_(True))
    .order_by(_C.c.id)
)


@dataclass(frozen=True)
class Page:
    """One page of a pull: the records as wire JSON text, purges, conflicts to report,
    and what to audit."""

    records: list[str]
    purge: list[str]
    cursor: int
    more: bool
    patient_data: list[str]  # ids of the page's team records (patient data), for the audit
    conflicts: list[dict[str, Any]] = field(default_factory=list)

    @property
    def audit_targets(self) -> list[str]:
        """What the audit row of this page lists; empty when it holds no patient data."""
        return self.patient_data + self.purge

    def body(self, last_mutation_id: int) -> bytes:
        """The response body of DESIGN §4."""
        tail = json.dumps(
            {"purge": self.purge, "cursor": self.cursor, "more": self.more,
             "last_mutation_id": last_mutation_id, "conflicts": self.conflicts},
            separators=(",", ":"), ensure_ascii=False,
        )
        return f'{{"records":[{",".join(self.records)}],{tail[1:]}'.encode()


def read_page(conn: Connection, caller: Caller, cursor: int, limit: int) -> Page:
    """One page of changes after ``cursor`` for the caller (reads only)."""
    top = records.high_water(conn)
    params = {"cursor": cursor, "top": top, "limit": limit + 1,
              **_PAGE.params(caller.team_ids)}
    rows = _PAGE(len(caller.team_ids)).rows(conn, params)
    more = len(rows) > limit
    rows = rows[:limit]
    new_cursor = int(rows[-1][5]) if more else top
    return Page(
        records=[_record_json(*row) for row in rows],
        purge=_purges(conn, caller, cursor, new_cursor),
        cursor=new_cursor,
        more=more,
        patient_data=[row[0] for row in rows if row[2] is not None],
        conflicts=_lost_values(conn, caller, cursor, new_cursor),
    )


def _lost_values(conn: Connection, caller: Caller, after: int, upto: int
                 ) -> list[dict[str, Any]]:
    """Conflicts in (after, upto] where a later push beat a value one of the caller's
    devices wrote. The push told its sender; this tells the user whose value lost, so
    nothing is replaced without a word (DESIGN §4: "kept and reported")."""
    if after == 0 or upto <= after:
        return []  # a device pulling from 0 held no value that could have lost
    rows = conn.execute(_LOST, {"after": after, "upto": upto}).all()
    if not rows:
        return []
    own = auth.device_ids_of(conn, caller.user_id)
    return [
        {"record_id": r.record_id, "type": r.type, "field": r.field,
         "value": json.loads(r.winner_value), "clock": r.winner_clock,
         "lost_value": json.loads(r.loser_value), "lost_clock": r.loser_clock,
         "incoming_won": True}
        for r in rows
        if hlc.node_of(r.loser_clock) in own and caller.sees_team(r.team_id)
    ]


def _record_json(
    record_id: str, type_name: str, _team: Any, fields: str, clock: str, rev: int, deleted: Any
) -> str:
    """A record's wire JSON (``Stored.as_record().as_json()``) from its stored JSON text."""
    if deleted:  # without its content
        kept, stamps = tombstone(json.loads(fields), json.loads(clock))
        fields, clock = db.dumps(kept), db.dumps(stamps)
    return (
        f'{{"id":{json.dumps(record_id)},"type":{json.dumps(type_name)},"fields":{fields},'
        f'"clock":{clock},"rev":{int(rev)},"deleted":{"true" if deleted else "false"}}}'
    )


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
