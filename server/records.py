"""Stored records, the rev counter, attachment references and moving a patient's team.

Revs come from a single counter row. A writer locks that row before it hands out a rev
and keeps it until commit, so writers run one after another and their revs commit in
order: a reader that has seen rev N has also seen every rev below N, and a pull never
skips a rev that commits late. (Most writers lock it first thing; a push on PostgreSQL
reads and merges first and re-checks what it read under the lock: ``server.optimistic``.)
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import (
    Connection,
    any_,
    bindparam,
    delete,
    func,
    insert,
    select,
    update,
)

from server import db
from server.statement import InStatements, Pipeline, Statement, json_rows, json_texts
from sync.protocol import Record, tombstone


@dataclass
class Stored:
    """A record as the server keeps it, with the rev at which each field last changed."""

    id: str
    type: str
    team_id: str | None
    patient_id: str | None
    fields: dict[str, Any]
    clock: dict[str, str]
    field_revs: dict[str, int] = field(default_factory=dict)
    rev: int = 0
    deleted: bool = False
    created_by: str = ""  # the user who created it ("" when unknown)

    def as_record(self) -> Record:
        """The wire record of DESIGN §4 (a tombstone without its content)."""
        # The server keeps a deleted record's content (a supervisor may need it); phones
        # get the tombstone only.
        fields, clock = (
            tombstone(self.fields, self.clock) if self.deleted else (self.fields, self.clock)
        )
        return Record(self.id, self.type, fields, clock, self.rev, self.deleted)


def from_row(row: Any) -> Stored:
    """A Stored record from a ``records`` row."""
    return Stored(
        id=row.id,
        type=row.type,
        team_id=row.team_id,
        patient_id=row.patient_id,
        fields=json.loads(row.fields),
        clock=json.loads(row.clock),
        field_revs=json.loads(row.field_revs),
        rev=int(row.rev),
        deleted=bool(row.deleted),
        created_by=row.created_by or "",
    )


_R = db.records
_STORED = (
    _R.c.id,
    _R.c.type,
    _R.c.team_id,
    _R.c.patient_id,
    _R.c.fields,
    _R.c.clock,
    _R.c.field_revs,
    _R.c.rev,
    _R.c.deleted,
    _R.c.created_by,
)
_LOAD = Statement(select(*_STORED).where(_R.c.id == bindparam("record_id")))
_LOAD_MANY = InStatements(lambda ids: select(*_STORED).where(_R.c.id.in_(ids)), replan=True)


def _stored(row: Any) -> Stored:
    """A Stored record from a row of the ``_STORED`` columns (a driver tuple)."""
    (
        record_id,
        type_name,
        team_id,
        patient_id,
        fields,
        clock,
        field_revs,
        rev,
        deleted,
        created_by,
    ) = row
    return Stored(
        id=record_id,
        type=type_name,
        team_id=team_id,
        patient_id=patient_id,
        fields=json.loads(fields),
        clock=json.loads(clock),
        field_revs=json.loads(field_revs),
        rev=int(rev),
        deleted=bool(deleted),
        created_by=created_by or "",
    )


def load(conn: Connection, record_id: str) -> Stored | None:
    """The stored record with this id, or None."""
    row = _LOAD.first(conn, {"record_id": record_id})
    return _stored(row) if row else None


def load_many(conn: Connection, record_ids: list[str]) -> dict[str, Stored]:
    """The stored records among these ids, by id."""
    found: dict[str, Stored] = {}
    for start in range(0, len(record_ids), 500):
        chunk = record_ids[start : start + 500]
        rows = _LOAD_MANY(len(chunk)).rows(conn, _LOAD_MANY.params(chunk))
        found.update((row[0], _stored(row)) for row in rows)
    return found


_VALUES = (
    "type",
    "team_id",
    "patient_id",
    "fields",
    "clock",
    "field_revs",
    "rev",
    "deleted",
    "updated_at",
)
_INSERT = Statement(
    insert(_R).values({name: bindparam(name) for name in ("id", "created_by", *_VALUES)})
)
_UPDATE = Statement(
    update(_R)
    .where(_R.c.id == bindparam("record_id"))
    .values({name: bindparam(name) for name in _VALUES})
)


def _values(rec: Stored, now: float) -> dict[str, Any]:
    return {
        "type": rec.type,
        "team_id": rec.team_id,
        "patient_id": rec.patient_id,
        "fields": db.dumps(rec.fields),
        "clock": db.dumps(rec.clock),
        "field_revs": db.dumps(rec.field_revs),
        "rev": rec.rev,
        "deleted": rec.deleted,
        "updated_at": now,
    }


def save(conn: Connection, rec: Stored, *, new: bool, author: str, now: float) -> None:
    """Insert or update a record (its rev must already be assigned)."""
    save_many(conn, [rec] if new else [], [] if new else [rec], author=author, now=now)


def save_many(
    conn: Connection, new: list[Stored], changed: list[Stored], *, author: str, now: float
) -> None:
    """Insert the new records and update the changed ones, each kind in one executemany."""
    _INSERT.run_many(
        conn, [{"id": rec.id, "created_by": author, **_values(rec, now)} for rec in new]
    )
    _UPDATE.run_many(conn, [{"record_id": rec.id, **_values(rec, now)} for rec in changed])


# PostgreSQL (``server.optimistic``): a group's records written as one statement per
# kind, the rows passed as one JSON array (``json_rows``; arrays, one per column, cost a
# third of a push's CPU to encode).
_NEW_NAMES = ("id", "created_by", *_VALUES)
_NEW = json_rows(_R, _NEW_NAMES)
_INSERT_ROWS = Statement(
    insert(_R).from_select(list(_NEW_NAMES), select(*[_NEW.c[n] for n in _NEW_NAMES]))
)
_CHANGED = json_rows(_R, ("id", *_VALUES))
_UPDATE_ROWS = Statement(
    update(_R).where(_R.c.id == _CHANGED.c.id).values({n: _CHANGED.c[n] for n in _VALUES}),
    replan=True,
)
_REVS_OF = Statement(
    select(_R.c.id, _R.c.rev).where(_R.c.id == any_(json_texts("ids"))), replan=True
)
_REFS = db.attachment_refs
_DROP_REFS = Statement(
    delete(_REFS).where(_REFS.c.record_id == any_(json_texts("ids"))), replan=True
)
_ADD_REF = Statement(insert(_REFS).values(sha256=bindparam("sha256"), record_id=bindparam("id")))


class Writes:
    """A batch's records to insert and update on PostgreSQL, encoded before the rev lock
    but for their revs, which ``queue_writes`` reads (so that little is left under it)."""

    def __init__(self, new: list[Stored], changed: list[Stored], *, author: str, now: float):
        self.new = new
        self.changed = changed
        self.author = author
        self.now = now
        self.encoded = {
            rec.id: (db.dumps(rec.fields), db.dumps(rec.clock)) for rec in [*new, *changed]
        }

    def ids(self) -> set[str]:
        """The ids of the records it writes."""
        return {rec.id for rec in [*self.new, *self.changed]}


def queue_writes(pipeline: Pipeline, batches: list[Writes]) -> None:
    """Queue the writes of these batches, one statement per kind for them all, with the
    records' revs as they are now."""
    for statement, kind in ((_INSERT_ROWS, "new"), (_UPDATE_ROWS, "changed")):
        rows = []
        for w in batches:
            for rec in getattr(w, kind):
                fields, clock = w.encoded[rec.id]
                row = {
                    "id": rec.id,
                    "type": rec.type,
                    "team_id": rec.team_id,
                    "patient_id": rec.patient_id,
                    "fields": fields,
                    "clock": clock,
                    "field_revs": db.dumps(rec.field_revs),
                    "rev": rec.rev,
                    "deleted": rec.deleted,
                    "updated_at": w.now,
                }
                if kind == "new":
                    row["created_by"] = w.author
                rows.append(row)
        if rows:
            pipeline.add(statement, {"rows": db.dumps(rows)})


def queue_revs_of(pipeline: Pipeline, record_ids: list[str]) -> int:
    """Queue the read of the (id, rev) of the stored records among these ids (PostgreSQL);
    returns its place in the pipeline's answer."""
    return pipeline.add(_REVS_OF, {"ids": db.dumps(record_ids)})


def queue_attachment_refs(pipeline: Pipeline, refs: dict[str, set[str]]) -> None:
    """Queue ``set_attachment_refs`` for each record of ``refs`` (PostgreSQL)."""
    if refs:
        pipeline.add(_DROP_REFS, {"ids": db.dumps(sorted(refs))})
        pipeline.add_many(
            _ADD_REF,
            [
                {"sha256": h, "id": record_id}
                for record_id in sorted(refs)
                for h in sorted(refs[record_id])
            ],
        )


_REV = db.counters.c.name == "rev"
# The no-op UPDATE takes the row lock (PostgreSQL) and reads the value in one statement.
_LOCK_REVS = Statement(
    update(db.counters).where(_REV).values(value=db.counters.c.value).returning(db.counters.c.value)
)
_SET_REVS = Statement(update(db.counters).where(_REV).values(value=bindparam("last")))
_HIGH_WATER = Statement(select(db.counters.c.value).where(_REV))
LOCK = Statement(select(db.counters.c.value).where(_REV).with_for_update())
"""Locks the rev counter and reads it (PostgreSQL: ``Revs`` uses a no-op UPDATE, which
SQLite runs too, but that writes a row version each time)."""
SET = _SET_REVS
"""Stores the last rev handed out (``{"last": rev}``)."""


class Revs:
    """The rev counter, locked for the rest of the transaction; hands out increasing revs."""

    def __init__(self, conn: Connection) -> None:
        self._conn = conn
        self.start = int(_LOCK_REVS.scalar(conn))
        self.last = self.start

    def next(self) -> int:
        """A new rev, higher than every rev committed so far."""
        self.last += 1
        return self.last

    def finish(self) -> None:
        """Store the last rev handed out (call before commit)."""
        if self.last != self.start:
            _SET_REVS.run(self._conn, {"last": self.last})


def high_water(conn: Connection) -> int:
    """The highest committed rev: every rev at or below it is visible to this reader."""
    return int(_HIGH_WATER.scalar(conn))


def restamp_team(conn: Connection, team_id: str) -> int:
    """Give every record of a team a new rev above all others, in their old order, so a
    device whose cursor is past their old revs (a new member's) pulls them; returns how
    many. Field revs stay: nothing changed, so no push sees a conflict because of it."""
    revs = Revs(conn)  # the lock: no rev is handed out meanwhile
    low, high, count = conn.execute(
        select(func.min(_R.c.rev), func.max(_R.c.rev), func.count()).where(_R.c.team_id == team_id)
    ).one()
    if not count:
        return 0
    # Every new rev is above the counter, so none collides with a rev in use.
    shift = revs.start + 1 - int(low)
    conn.execute(update(_R).where(_R.c.team_id == team_id).values(rev=_R.c.rev + shift))
    revs.last = int(high) + shift
    revs.finish()
    return int(count)


def set_attachment_refs(conn: Connection, record_id: str, hashes: set[str]) -> None:
    """Replace the attachment references of a record."""
    refs = db.attachment_refs
    conn.execute(delete(refs).where(refs.c.record_id == record_id))
    if hashes:
        conn.execute(insert(refs), [{"sha256": h, "record_id": record_id} for h in sorted(hashes)])


def move_patient(
    conn: Connection, patient_id: str, team_id: str, team_clock: str, now: float
) -> list[str]:
    """Move a patient and its records to another team; returns the ids moved.

    Every moved record gets a new rev so the new team pulls it; a ``scope_changes`` row
    (with a rev of its own) tells the old team's devices to purge the patient.
    """
    patient = load(conn, patient_id)
    if patient is None or patient.type != "patient":
        raise LookupError(f"no patient {patient_id}")
    old_team = patient.team_id
    if old_team == team_id:
        return []
    revs = Revs(conn)
    conn.execute(
        insert(db.scope_changes).values(
            rev=revs.next(),
            patient_id=patient_id,
            from_team_id=old_team,
            to_team_id=team_id,
            created_at=now,
        )
    )
    rows = conn.execute(
        select(db.records).where(db.records.c.patient_id == patient_id).order_by(db.records.c.rev)
    )
    moved = []
    for rec in [from_row(r) for r in rows]:
        rec.team_id = team_id
        rec.rev = revs.next()
        if rec.id == patient_id:
            rec.fields["team_id"] = team_id
            rec.clock["team_id"] = team_clock
            rec.field_revs["team_id"] = rec.rev
        save(conn, rec, new=False, author="", now=now)
        moved.append(rec.id)
    revs.finish()
    return moved
