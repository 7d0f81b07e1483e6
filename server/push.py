"""Push (DESIGN §4): apply a device's batch of mutations in one transaction.

Per mutation, in order: skip it when at or below the device's ``last_mutation_id`` (the
stored result is replayed), stop at a gap, else check its shape and clocks, authorize the
record, validate the changed fields, merge per field with ``sync.merge``, validate the
merged record, assign a rev and keep conflicts. A refused mutation is reported
``rejected`` and still advances ``last_mutation_id``. Nothing is written for a mutation
until every check passed, so a rejection never leaves half a change behind.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from sqlalchemy import Connection, delete, insert, select, update

from server import audit, db, records
from server.errors import BadRequest, Rejected, TooLarge
from server.records import Stored
from server.scope import Caller
from server.settings import Settings
from sync import hlc, protocol, schema
from sync.errors import ProtocolError
from sync.merge import Conflict, merge
from sync.protocol import Mutation, Result, ResultError

KEEP_RESULTS = 5000  # replayable results per device, counted in mutation ids


def push(
    conn: Connection, caller: Caller, body: object, settings: Settings, now: float
) -> dict[str, Any]:
    """Apply a push request in the caller's transaction; returns the response body."""
    items: Any = body.get("mutations") if isinstance(body, Mapping) else None
    if isinstance(items, list) and len(items) > settings.push_limit:
        raise TooLarge(f"at most {settings.push_limit} mutations per push", field="mutations")
    errors = protocol.push_request_errors(body, settings.push_limit)
    if errors:
        raise BadRequest(errors[0].message, field=errors[0].field)
    batch = _Batch(conn, caller, settings, now)  # locks the rev counter: pushes serialize
    batch.prefetch(items)
    last = int(
        conn.execute(
            select(db.devices.c.last_mutation_id).where(db.devices.c.id == caller.device_id)
        ).scalar_one()
    )
    replayed = _stored_results(conn, caller.device_id, [m["id"] for m in items if m["id"] <= last])
    results: list[Result] = []
    fresh: list[Result] = []
    touched: list[str] = []
    for item in items:
        mutation_id = item["id"]
        if mutation_id <= last:
            results.append(replayed.get(mutation_id) or Result(mutation_id, "applied", None))
            continue
        if mutation_id != last + 1:
            break  # a gap: the device must resend from last_mutation_id + 1
        result = batch.apply(item)
        results.append(result)
        fresh.append(result)
        if isinstance(item.get("record_id"), str):
            touched.append(item["record_id"][:36])
        last = mutation_id
    batch.revs.finish()
    if fresh:
        _save_results(conn, caller.device_id, fresh, last)
        audit.append(conn, at=now, actor=caller.actor, action="sync.push", targets=touched)
    return {"last_mutation_id": last, "results": [r.as_json() for r in results]}


class _Batch:
    """The state shared by the mutations of one push."""

    def __init__(self, conn: Connection, caller: Caller, settings: Settings, now: float):
        self.conn = conn
        self.caller = caller
        self.now = now
        self.revs = records.Revs(conn)
        self.clock_limit = int(now * 1000) + settings.clock_skew_seconds * 1000
        self.server_clock = hlc.Clock("server", wall=lambda: int(now * 1000))
        self.cache: dict[str, Stored | None] = {}

    def prefetch(self, items: list[Mapping[str, Any]]) -> None:
        """Load every record the batch names (and their patients) in one query."""
        wanted: set[str] = set()
        for item in items:
            fields = item.get("fields")
            for value in (
                item.get("record_id"),
                fields.get("patient_id") if isinstance(fields, Mapping) else None,
            ):
                if isinstance(value, str) and schema.is_uuid(value):
                    wanted.add(value)
        self.cache.update(dict.fromkeys(wanted))
        self.cache.update(records.load_many(self.conn, sorted(wanted)))

    def load(self, record_id: str) -> Stored | None:
        """A record as of this point in the batch (earlier mutations included)."""
        if record_id not in self.cache:
            self.cache[record_id] = records.load(self.conn, record_id)
        return self.cache[record_id]

    def apply(self, item: Mapping[str, Any]) -> Result:
        """Apply one mutation, or report why it was rejected."""
        try:
            mutation = protocol.parse_mutation(item)
        except ProtocolError:
            first = protocol.mutation_errors(item)[0]
            return _rejected(item["id"], Rejected(first.message, field=first.field))
        try:
            return self._apply(mutation)
        except Rejected as refusal:
            return _rejected(mutation.id, refusal)

    def _apply(self, m: Mutation) -> Result:
        for name, stamp in m.clock.items():
            if hlc.parse(stamp).ms > self.clock_limit:
                raise Rejected(
                    "the device clock is ahead of the server; fix the phone's time",
                    code="clock_ahead",
                    field=f"clock.{name}",
                )
        existing = self.load(m.record_id)
        if existing is not None:
            if existing.type != m.type:
                raise Rejected(f"the record is a {existing.type}", field="type")
            if not self.caller.sees_team(existing.team_id):
                raise Rejected("the record is not in your scope", code="out_of_scope")
        if m.op == "delete":
            return self._delete(m, existing)
        incoming, clock = dict(m.fields), dict(m.clock)
        _check(schema.validate(m.type, incoming, partial=True))
        if existing is None:
            team_id, patient_id = self._place(m, incoming, clock)
            rec = Stored(m.record_id, m.type, team_id, patient_id, {}, {})
        else:
            if existing.deleted:
                raise Rejected("the record was deleted", code="record_deleted")
            _keep_links(existing, incoming, clock)
            rec = existing
        if _is_final(rec.fields, rec.type):
            raise Rejected("a final visit never changes; add an addendum", code="record_finalized")

        def changed_since_base(name: str) -> bool:
            if m.base_rev is None:
                return name in rec.fields
            return rec.field_revs.get(name, 0) > m.base_rev

        merged = merge(rec.fields, rec.clock, incoming, clock, changed_since_base)
        _check(schema.validate(m.type, merged.fields))
        if _is_final(merged.fields, rec.type):
            _check(schema.finalize_errors(merged.fields))
        if existing is None and m.type == "addendum":
            self._check_visit(merged.fields)
        if merged.changed:
            rec.rev = self.revs.next()
            rec.fields, rec.clock = merged.fields, merged.clock
            rec.field_revs.update({name: rec.rev for name in merged.changed})
            author = self.caller.user_id
            records.save(self.conn, rec, new=existing is None, author=author, now=self.now)
            self.cache[rec.id] = rec
            if "attachments" in merged.changed:
                hashes = records.attachment_hashes(rec.fields)
                records.set_attachment_refs(self.conn, rec.id, hashes)
        self._keep_conflicts(rec, merged.conflicts)
        status = "merged" if merged.conflicts else "applied"
        return Result(m.id, status, rec.rev, [c.as_json() for c in merged.conflicts])

    def _delete(self, m: Mutation, existing: Stored | None) -> Result:
        if existing is None:
            raise Rejected("no such record", code="not_found")
        if not existing.deleted:
            if _is_final(existing.fields, existing.type):
                raise Rejected("a final visit cannot be deleted", code="record_finalized")
            existing.deleted = True
            existing.rev = self.revs.next()
            records.save(self.conn, existing, new=False, author=self.caller.user_id, now=self.now)
            records.set_attachment_refs(self.conn, existing.id, set())
        return Result(m.id, "applied", existing.rev)

    def _place(
        self, m: Mutation, incoming: dict[str, Any], clock: dict[str, str]
    ) -> tuple[str | None, str | None]:
        """The team and patient of a new record (its scope), checked against the caller."""
        caller = self.caller
        if schema.TYPES[m.type].scope == "org":
            return None, None
        if m.type == "patient":
            team = incoming.get("team_id")
            if team is None:
                if not caller.team_ids:
                    raise Rejected("you are not a member of any team", code="out_of_scope")
                if len(caller.team_ids) > 1:
                    raise Rejected("name one of your teams", field="team_id")
                team = caller.team_ids[0]
            elif team not in caller.team_ids:
                raise Rejected("you are not a member of that team", code="out_of_scope",
                               field="team_id")
            incoming["team_id"] = team
            clock.setdefault("team_id", self.server_clock.now())
            return team, m.record_id
        patient_id = incoming.get("patient_id")
        if not patient_id:
            raise Rejected("is required", field="patient_id")
        patient = self.load(patient_id)
        if patient is None or patient.type != "patient" or patient.team_id is None:
            raise Rejected("unknown patient", code="out_of_scope", field="patient_id")
        if not caller.sees_team(patient.team_id):
            raise Rejected("the patient is not in your scope", code="out_of_scope",
                           field="patient_id")
        return patient.team_id, patient_id

    def _check_visit(self, fields: dict[str, Any]) -> None:
        visit = self.load(fields["visit_id"])
        if visit is None or visit.type != "visit" or (
            visit.fields.get("patient_id") != fields.get("patient_id")
        ):
            raise Rejected("must be a visit of the same patient", field="visit_id")

    def _keep_conflicts(self, rec: Stored, conflicts: list[Conflict]) -> None:
        if not conflicts:
            return
        self.conn.execute(
            insert(db.conflicts),
            [
                {
                    "record_id": rec.id,
                    "field": c.field,
                    "rev": rec.rev,
                    "winner_value": db.dumps(c.winner_value),
                    "winner_clock": c.winner_clock,
                    "loser_value": db.dumps(c.loser_value),
                    "loser_clock": c.loser_clock,
                    "incoming_won": c.incoming_won,
                    "device_id": self.caller.device_id,
                    "created_at": self.now,
                }
                for c in conflicts
            ],
        )


def _is_final(fields: Mapping[str, Any], type_name: str) -> bool:
    return type_name == "visit" and fields.get("status") == "final"


def _check(problems: list[Any]) -> None:
    if problems:
        message = "; ".join(str(p) for p in problems[:5])
        raise Rejected(message, field=problems[0].field)


def _keep_links(existing: Stored, incoming: dict[str, Any], clock: dict[str, str]) -> None:
    """Refuse moving a record to another patient or team; the server owns team_id."""
    if existing.type == "patient" and "team_id" in incoming:
        if incoming["team_id"] != existing.team_id:
            raise Rejected("a patient changes team only by reassignment", field="team_id")
        del incoming["team_id"], clock["team_id"]
    moved = incoming.get("patient_id", existing.patient_id) != existing.patient_id
    if existing.type != "patient" and moved:
        raise Rejected("a record cannot move to another patient", field="patient_id")


def _rejected(mutation_id: int, refusal: Rejected) -> Result:
    return Result(
        mutation_id, "rejected", None, [], ResultError(refusal.code, refusal.message, refusal.field)
    )


def _stored_results(conn: Connection, device_id: str, ids: list[int]) -> dict[int, Result]:
    """Results of earlier pushes, so a retried push answers as the original did."""
    if not ids:
        return {}
    t = db.push_results
    rows = conn.execute(
        select(t.c.results).where(
            t.c.device_id == device_id, t.c.last_id >= min(ids), t.c.first_id <= max(ids)
        )
    ).scalars()
    found: dict[int, Result] = {}
    for text in rows:
        parsed = protocol.parse_push_response({"last_mutation_id": 0, "results": json.loads(text)})
        found.update({r.id: r for r in parsed.results})
    return found


def _save_results(conn: Connection, device_id: str, fresh: list[Result], last: int) -> None:
    t = db.push_results
    conn.execute(
        insert(t).values(
            device_id=device_id,
            first_id=fresh[0].id,
            last_id=last,
            results=db.dumps([r.as_json() for r in fresh]),
        )
    )
    conn.execute(
        update(db.devices).where(db.devices.c.id == device_id).values(last_mutation_id=last)
    )
    conn.execute(delete(t).where(t.c.device_id == device_id, t.c.last_id < last - KEEP_RESULTS))
