"""Pull (DESIGN §4): the caller's records with rev above a cursor, oldest first, plus purges.

The page is bounded by the committed high-water rev read first: revs commit in order
(see ``server.records``), so every rev at or below it is visible and the returned cursor
never passes a rev that has yet to commit.

A page is read in a read-only transaction and its audit row written after, in a short
write (``Service.pull_body``), so pulls never queue behind pushes for the reading.

A pull is audited once, not once per page: the first page of a pull audits the whole rev
range it will walk, (cursor, high water], naming every patient (and team round) with a
record in that range, and the device remembers the range (``devices.audited_from/to``).
Later pages inside that range write nothing; a page that reaches past it (records
changed meanwhile), or a pull that starts again, audits its own range. Records go
out as the JSON text they are stored as (canonical JSON, see ``db.dumps``), spliced into
the response rather than parsed and encoded again: the bytes are the same either way.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Connection, bindparam, func, select, union_all, update

from server import auth, db, records
from server.scope import Caller, visible
from server.statement import InStatements, Statement
from sync import hlc
from sync.protocol import tombstone

_R = db.records
_COLUMNS = (
    _R.c.id,
    _R.c.type,
    _R.c.team_id,
    _R.c.fields,
    _R.c.clock,
    _R.c.rev,
    _R.c.deleted,
    _R.c.patient_id,
)  # what the wire needs, and the patient the audit names
_REV = 5  # the rev's place in a row

# PostgreSQL: one read; its planner walks the rev index in order, filters by team and
# stops at the limit (or picks the team index when the caller's teams are few).
_PAGE_ONE_READ = InStatements(
    lambda teams: (
        select(*_COLUMNS)
        .where(
            _R.c.rev > bindparam("cursor"),
            _R.c.rev <= bindparam("top"),
            _R.c.team_id.is_(None) | _R.c.team_id.in_(teams) if teams else _R.c.team_id.is_(None),
        )
        .order_by(_R.c.rev)
        .limit(bindparam("limit"))
    ),
    prefix="team",
)


def _by_team(columns: tuple[Any, ...], teams: list[Any], *, upto: str, limited: bool) -> Any:
    """``columns`` of the records the caller sees with rev in (cursor, ``upto``], oldest
    first: one ordered read of the ``(team_id, rev)`` index per team and one for records
    of no team (each stopping after ``limit`` rows when ``limited``), merged by rev."""

    def part(team: Any) -> Any:
        read = (
            select(*columns)
            .where(
                _R.c.rev > bindparam("cursor"),
                _R.c.rev <= bindparam(upto),
                _R.c.team_id.is_(None) if team is None else _R.c.team_id == team,
            )
            .order_by(_R.c.rev)
        )
        return (read.limit(bindparam("limit")) if limited else read).subquery()

    merged = union_all(*(select(part(team)) for team in [None, *teams])).subquery()
    read = select(merged).order_by(merged.c.rev)
    return read.limit(bindparam("limit")) if limited else read


# SQLite: two reads. The one read above sorts every record left after the cursor on each
# page (SQLite reads the team index for the OR, then sorts), which made a new device's pull
# quadratic: 10 µs a record at 100k records against 2.4 at 10k. Instead, the revs of the
# page from the index alone, then the records up to the page's last rev: 2.4 and 2.6 µs.
_PAGE_REVS = InStatements(
    lambda teams: _by_team((_R.c.rev,), teams, upto="top", limited=True), prefix="team"
)
_PAGE_UPTO = InStatements(
    lambda teams: _by_team(_COLUMNS, teams, upto="last", limited=False), prefix="team"
)


def _page_rows(
    conn: Connection, caller: Caller, cursor: int, top: int, limit: int
) -> tuple[list[Any], bool, int]:
    """The page's rows (columns of ``_COLUMNS``), whether more follow, and its cursor."""
    teams = len(caller.team_ids)
    params = {"cursor": cursor, "top": top, "limit": limit + 1}
    params.update(_PAGE_ONE_READ.params(caller.team_ids))
    if conn.dialect.name != "sqlite":
        rows = _PAGE_ONE_READ(teams).rows(conn, params)
        more = len(rows) > limit
        return rows[:limit], more, int(rows[limit - 1][_REV]) if more else top
    revs = _PAGE_REVS(teams).rows(conn, params)
    more = len(revs) > limit
    last = int(revs[limit - 1][0]) if more else top
    return _PAGE_UPTO(teams).rows(conn, {**params, "last": last}), more, last


# What a purge names: a device erases the record and every record of that patient.
PURGED_TYPES = ("patient", "round")

_C = db.conflicts
_LOST = (
    select(
        _C.c.record_id,
        _R.c.type,
        _R.c.team_id,
        _C.c.field,
        _C.c.winner_value,
        _C.c.winner_clock,
        _C.c.loser_value,
        _C.c.loser_clock,
    )
    .join(_R, _R.c.id == _C.c.record_id)
    .where(
        _C.c.rev > bindparam("after"), _C.c.rev <= bindparam("upto"), _C.c.incoming_won.is_(True)
    )
    .order_by(_C.c.id)
)


@dataclass(frozen=True)
class AuditSpan:
    """What a pull's audit row covers: the rev range and the patients (and team rounds) in
    it; ``targets`` is empty when the range holds no patient data."""

    start: int
    end: int
    targets: list[str]
    remember: bool = False  # the pull goes on: later pages inside the range write nothing


@dataclass(frozen=True)
class Page:
    """One page of a pull: the records as wire JSON text, purges, conflicts to report,
    and the audit it owes (None when an earlier page of the same pull covered it)."""

    records: list[str]
    purge: list[str]
    cursor: int
    more: bool
    audit: AuditSpan | None
    conflicts: list[dict[str, Any]] = field(default_factory=list)

    def body(self, last_mutation_id: int) -> bytes:
        """The response body of DESIGN §4."""
        tail = json.dumps(
            {
                "purge": self.purge,
                "cursor": self.cursor,
                "more": self.more,
                "last_mutation_id": last_mutation_id,
                "conflicts": self.conflicts,
            },
            separators=(",", ":"),
            ensure_ascii=False,
        )
        return f'{{"records":[{",".join(self.records)}],{tail[1:]}'.encode()


def read_page(conn: Connection, caller: Caller, cursor: int, limit: int) -> Page:
    """One page of changes after ``cursor`` for the caller (reads only)."""
    top = records.high_water(conn)
    rows, more, new_cursor = _page_rows(conn, caller, cursor, top, limit)
    purge = _purges(conn, caller, cursor, new_cursor)
    span = None
    if cursor and _covered(conn, caller, cursor, new_cursor):
        pass  # a later page of a pull whose first page audited its whole range
    elif not more:  # the pull is this one page (the usual case): audit what it holds
        shown = [row[7] or row[0] for row in rows if row[2] is not None]
        span = AuditSpan(cursor, top, sorted({*shown, *purge}))
    else:
        targets = [*_patients_in(conn, caller, cursor, top), *_purges(conn, caller, cursor, top)]
        span = AuditSpan(cursor, top, sorted(set(targets)), remember=True)
    return Page(
        records=[_record_json(*row[:7]) for row in rows],
        purge=purge,
        cursor=new_cursor,
        more=more,
        audit=span,
        conflicts=_lost_values(conn, caller, cursor, new_cursor),
    )


_D = db.devices
_AUDITED = Statement(
    select(_D.c.audited_from, _D.c.audited_to).where(_D.c.id == bindparam("device_id"))
)


def _covered(conn: Connection, caller: Caller, cursor: int, upto: int) -> bool:
    """True when this page continues a pull whose audit row covered (cursor, upto]."""
    found = _AUDITED.first(conn, {"device_id": caller.device_id})
    if found is None or found[0] is None:
        return False
    start, end = int(found[0]), int(found[1])
    # cursor == start is a pull starting again (or a retried first page): audited anew.
    return start < cursor and upto <= end


def _patients_in(conn: Connection, caller: Caller, after: int, upto: int) -> list[str]:
    """The patients (and team rounds) with a record the caller sees in (after, upto]."""
    if not caller.team_ids or upto <= after:
        return []
    owner = func.coalesce(_R.c.patient_id, _R.c.id)
    return list(
        conn.execute(
            select(owner)
            .distinct()
            .where(_R.c.rev > after, _R.c.rev <= upto, _R.c.team_id.in_(caller.team_ids))
        ).scalars()
    )


_SET_AUDITED = Statement(
    update(_D)
    .where(_D.c.id == bindparam("device_id"))
    .values(audited_from=bindparam("start"), audited_to=bindparam("end"))
)


def record_audited(conn: Connection, caller: Caller, span: AuditSpan) -> None:
    """Remember the range a pull's audit row covered (in the same write as the row)."""
    _SET_AUDITED.run(conn, {"device_id": caller.device_id, "start": span.start, "end": span.end})


def _lost_values(conn: Connection, caller: Caller, after: int, upto: int) -> list[dict[str, Any]]:
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
        {
            "record_id": r.record_id,
            "type": r.type,
            "field": r.field,
            "value": json.loads(r.winner_value),
            "clock": r.winner_clock,
            "lost_value": json.loads(r.loser_value),
            "lost_clock": r.loser_clock,
            "incoming_won": True,
        }
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
    """Team records that left the caller's scope in (after, upto] and are not back in it:
    patients moved to another team, and the patients and rounds of a team the caller left.
    """
    if after == 0 or upto <= after:
        return []  # a device pulling from 0 holds nothing to purge
    sc, mc, r = db.scope_changes, db.membership_changes, db.records
    left: list[str] = []
    if caller.team_ids:
        left += conn.execute(
            select(sc.c.patient_id)
            .where(sc.c.rev > after, sc.c.rev <= upto, sc.c.from_team_id.in_(caller.team_ids))
            .order_by(sc.c.rev)
        ).scalars()
    teams_left = select(mc.c.team_id).where(
        mc.c.user_id == caller.user_id, mc.c.rev > after, mc.c.rev <= upto
    )
    left += conn.execute(
        select(r.c.id)
        .where(r.c.team_id.in_(teams_left), r.c.type.in_(PURGED_TYPES))
        .order_by(r.c.rev)
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
