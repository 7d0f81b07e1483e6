"""Merging two patients who are the same person: ``POST /api/v1/patients/{id}/merge``.

``{"into": survivor_id}`` moves every record of the patient in the path (the duplicate)
to the survivor in one transaction: each moved record gets a new rev and its
``patient_id`` a server clock newer than any it had, so every phone pulls it and files it
under the survivor. The survivor gains the details it lacked (``sync.merged``), and the
duplicate becomes a tombstone with ``merged_into``; the server keeps its content. One
audit row names both patients. A retry of the same merge answers as the first did, with
nothing moved.

Who: any member of the patients' team (liaisons find the duplicates they made offline),
never across teams. A patient the caller cannot see is 404 like one that does not exist.

Later pushes follow the link (``redirect`` and ``onto_survivor``, called by
``server.push``): a record naming the duplicate is placed on the survivor, and an edit of
the duplicate's own details goes to the survivor, merged per field like any edit.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, select
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from server import audit, auth, db, records
from server.bodies import read_json
from server.errors import BadRequest, Conflict, Invalid, NotFound
from server.records import Stored
from server.scope import Caller
from sync import hlc, merged, schema
from sync.attachments import hashes as attachment_hashes
from sync.protocol import Mutation

BODY_LIMIT = 1024  # {"into": "<uuid>"}
Load = Callable[[str], Stored | None]

if TYPE_CHECKING:
    from server.service import Service


async def merge_patient(request: Request) -> Response:
    """POST /api/v1/patients/{patient_id}/merge {"into": survivor_id}."""
    # Imported here: server.push uses this module, and server.api imports the service,
    # which imports server.push.
    from server.api import bearer_token, in_thread, service_of

    duplicate = str(request.path_params["patient_id"])
    if not schema.is_uuid(duplicate):
        raise BadRequest("must be a lower-case UUID", field="patient_id")
    body = await read_json(request, BODY_LIMIT)
    into = body.get("into") if isinstance(body, dict) else None
    if not schema.is_uuid(into):
        raise BadRequest("must be a lower-case UUID", field="into")
    service = service_of(request)
    answer = await in_thread(request, run, service, bearer_token(request), duplicate, into)
    return JSONResponse(answer)


def run(service: Service, token: str | None, duplicate_id: str, survivor_id: str) -> dict[str, Any]:
    """Authenticate and merge in one write transaction."""
    with service.database.write() as conn:
        now = service.clock()
        caller = auth.authenticate(conn, token, service.settings, now)
        return merge_patients(conn, caller, duplicate_id, survivor_id, now)


def _patient(conn: Connection, caller: Caller, patient_id: str, field: str) -> Stored:
    found = records.load(conn, patient_id)
    if found is None or found.type != "patient" or not caller.team_ids:
        raise NotFound("no such patient", field=field)
    if found.team_id is None or not caller.sees_team(found.team_id):
        raise NotFound("no such patient", field=field)  # the same answer: no existence oracle
    return found


def merge_patients(
    conn: Connection, caller: Caller, duplicate_id: str, survivor_id: str, now: float
) -> dict[str, Any]:
    """Move the duplicate's records to the survivor; returns the answer's body."""
    if duplicate_id == survivor_id:
        raise Invalid("a patient cannot be merged with itself", field="into")
    revs = records.Revs(conn)  # the rev lock first: no push lands on the duplicate meanwhile
    duplicate = _patient(conn, caller, duplicate_id, "patient_id")
    survivor = _patient(conn, caller, survivor_id, "into")
    if duplicate.team_id != survivor.team_id:
        raise Invalid("both patients must be in the same team", field="into")
    if duplicate.deleted and duplicate.fields.get(merged.MERGED_INTO) == survivor_id:
        return _answer(duplicate, survivor, 0, [], already=True)  # a retry
    if duplicate.deleted or survivor.deleted:
        which = "this patient" if duplicate.deleted else "the other patient"
        raise Conflict(f"{which} was deleted or merged already", code="record_deleted")
    moving = [
        records.from_row(row)
        for row in conn.execute(
            select(db.records)
            .where(db.records.c.patient_id == duplicate_id, db.records.c.id != duplicate_id)
            .order_by(db.records.c.rev)
        )
    ]
    stamp = _stamp(now, [duplicate, survivor, *moving])
    for rec in moving:
        rec.patient_id = survivor_id
        rec.rev = revs.next()
        if "patient_id" in rec.fields:
            rec.fields["patient_id"] = survivor_id
            rec.clock["patient_id"] = stamp
            rec.field_revs["patient_id"] = rec.rev
    taken = merged.taken_from_duplicate(survivor.fields, duplicate.fields)
    differing = merged.differing(survivor.fields, duplicate.fields)
    if taken:
        survivor.rev = revs.next()
        survivor.fields.update(taken)
        survivor.clock.update(dict.fromkeys(taken, stamp))
        survivor.field_revs.update(dict.fromkeys(taken, survivor.rev))
        if "attachments" in taken:
            records.set_attachment_refs(conn, survivor_id, attachment_hashes(survivor.fields))
    # The tombstone comes last: a phone that sees it has every moved record already.
    duplicate.deleted = True
    duplicate.rev = revs.next()
    duplicate.fields[merged.MERGED_INTO] = survivor_id
    duplicate.clock[merged.MERGED_INTO] = stamp
    duplicate.field_revs[merged.MERGED_INTO] = duplicate.rev
    records.set_attachment_refs(conn, duplicate_id, set())
    changed = [*moving, *([survivor] if taken else []), duplicate]
    records.save_many(conn, [], changed, author=caller.user_id, now=now)
    revs.finish()
    audit.append(
        conn,
        at=now,
        actor=caller.actor,
        action="patient.merge",
        targets=[duplicate_id, survivor_id],
    )
    answer = _answer(duplicate, survivor, len(moving), sorted(taken), already=False)
    return {**answer, "differing": differing}


def _stamp(now: float, touched: list[Stored]) -> str:
    """A server clock newer than every clock of the records the merge touches, so each
    value it writes wins on every replica."""
    clock = hlc.Clock("server", wall=lambda: int(now * 1000))
    for rec in touched:
        for stamp in rec.clock.values():
            clock.observe(stamp)
    return clock.now()


def _answer(
    duplicate: Stored, survivor: Stored, moved: int, taken: list[str], *, already: bool
) -> dict[str, Any]:
    return {
        "patient_id": survivor.id,
        "merged": duplicate.id,
        "moved": moved,
        "kept_from_duplicate": taken,
        "differing": [],
        "already_merged": already,
    }


def _link(load: Load) -> Callable[[str], str | None]:
    def link(patient_id: str) -> str | None:
        found = load(patient_id)
        if found is None:
            return None
        return merged.merged_into(
            {"type": found.type, "deleted": found.deleted, "fields": found.fields}
        )

    return link


def redirect(
    load: Load, incoming: dict[str, Any], clock: dict[str, str], server_clock: hlc.Clock
) -> None:
    """A pushed record naming a merged-away patient is filed under its survivor: its
    ``patient_id`` becomes the survivor's, stamped by the server after the device's own
    stamp, so the device's copy follows when it pulls the record."""
    named = incoming.get("patient_id")
    if not isinstance(named, str):
        return
    now_on = merged.survivor(named, _link(load))
    if now_on != named:
        incoming["patient_id"] = now_on
        if "patient_id" in clock:
            server_clock.observe(clock["patient_id"])
        clock["patient_id"] = server_clock.now()


def keep_link(
    load: Load, existing: Stored, incoming: dict[str, Any], clock: dict[str, str]
) -> None:
    """An edit of a moved record that still names the duplicate keeps the record where the
    merge put it (the device simply had not heard of the merge)."""
    named = incoming.get("patient_id")
    if (
        isinstance(named, str)
        and named != existing.patient_id
        and merged.survivor(named, _link(load)) == existing.patient_id
    ):
        del incoming["patient_id"], clock["patient_id"]


def onto_survivor(load: Load, m: Mutation) -> Mutation:
    """An edit of a merged-away patient's details is an edit of its survivor's. The
    device's ``base_rev`` was the duplicate's, so every field the survivor holds counts as
    changed since: a differing value is a conflict, kept and reported, never dropped."""
    if m.type != "patient" or m.op != "upsert":
        return m
    now_on = merged.survivor(m.record_id, _link(load))
    if now_on == m.record_id:
        return m
    return dataclasses.replace(m, record_id=now_on, base_rev=0)
