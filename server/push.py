"""Push (DESIGN §4): apply a device's batch of mutations in one transaction.

Per mutation, in order: skip it when at or below the device's ``last_mutation_id`` (the
stored result is replayed), stop at a gap, else check its shape and clocks, authorize the
record, validate the changed fields, merge per field with ``sync.merge``, check that the
merged record has its required fields, assign a rev and keep conflicts. A refused
mutation is reported ``rejected`` and still advances ``last_mutation_id``. Nothing is
written for a mutation until every check passed, so a rejection never leaves half a
change behind.

For speed, the checks that need no stored record (shape, clocks, changed fields) run for
the whole batch first (``prepare``), the records the batch names are read in one query,
and the writes are collected and made at the end, a few statements per push
(``Batch.flush``); the outcome is the same as applying the mutations one by one.

``push`` applies a batch under the rev lock (SQLite, whose writers run one at a time
anyway). On PostgreSQL ``server.optimistic`` runs the same ``Batch`` before taking the
lock, and comes back to ``push`` when its re-check under the lock fails or the batch
needs a read that re-check does not cover.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from sqlalchemy import Connection, bindparam, insert, select

from server import attachments, audit, auth, db, records, replay
from server import merge as patient_merge
from server.errors import BadRequest, Rejected, TooLarge
from server.records import Stored
from server.scope import Caller
from server.settings import Settings
from server.statement import Pipeline, Statement
from sync import hlc, protocol, schema, visits
from sync.attachments import hashes as attachment_hashes
from sync.errors import FieldError, ProtocolError
from sync.merge import Conflict, MergeResult, merge
from sync.protocol import Mutation, Result, ResultError

AUTHORED = ("visit", "addendum")  # records only their author changes (see _check_author)


@dataclass(frozen=True)
class Prepared:
    """A mutation with the checks done that need no stored record (see ``prepare``)."""

    item: Mapping[str, Any]
    mutation: Mutation | None  # None when refused
    refusal: Rejected | None  # a bad shape or a clock ahead of the server
    field_problems: list[FieldError]  # the changed fields against the schema (upserts)


def prepare(body: object, settings: Settings, now: float) -> list[Prepared]:
    """Check a push request and each mutation's shape, clocks and fields; no database.

    Raises TooLarge or BadRequest for the request as a whole. On PostgreSQL this runs
    before the rev lock is taken (``Service.push``), so other pushes need not wait for it.
    """
    items: Any = body.get("mutations") if isinstance(body, Mapping) else None
    if isinstance(items, list) and len(items) > settings.push_limit:
        raise TooLarge(f"at most {settings.push_limit} mutations per push", field="mutations")
    errors = protocol.push_request_errors(body, settings.push_limit)
    if errors:
        raise BadRequest(errors[0].message, field=errors[0].field)
    clock_limit = f"{int(now * 1000) + settings.clock_skew_seconds * 1000:015d}"
    return [_prepare(item, clock_limit) for item in items]


def _prepare(item: Mapping[str, Any], clock_limit: str) -> Prepared:
    try:
        m = protocol.parse_mutation(item)
    except ProtocolError:
        first = protocol.mutation_errors(item)[0]
        return Prepared(item, None, Rejected(first.message, field=first.field), [])
    for name, stamp in m.clock.items():
        # A valid HLC starts with 15 digits of milliseconds: string order is number order.
        if stamp[: hlc.MS_DIGITS] > clock_limit:
            refusal = Rejected(
                "the device clock is ahead of the server; fix the phone's time",
                code="clock_ahead",
                field=f"clock.{name}",
            )
            return Prepared(item, None, refusal, [])
    problems = schema.validate(m.type, m.fields, partial=True) if m.op == "upsert" else []
    return Prepared(item, m, None, problems)


def push(
    conn: Connection, revs: records.Revs, caller: Caller, batch: list[Prepared], now: float
) -> dict[str, Any]:
    """Apply a prepared push in the caller's transaction; returns the response body.

    ``revs`` has just locked the rev counter: pushes run one at a time from here on, and
    what is read below counts every push committed before (a retry racing the original
    is skipped, never applied twice).
    """
    last = replay.last_id(conn, caller.device_id)
    state = Batch(conn, caller, revs, now)
    outcome = state.run(batch, last)
    state.flush()
    if outcome.fresh:
        replay.save(conn, caller.device_id, outcome.fresh, outcome.last)
        audit.append(conn, at=now, actor=caller.actor, action="sync.push", targets=outcome.touched)
    return outcome.body()


class RevSource(Protocol):
    """Where a batch's revs come from: the locked counter, or provisional ones
    (``server.optimistic``)."""

    def next(self) -> int:
        """A new rev, higher than every one handed out before."""


class NeedsLock(Exception):
    """A batch merged before the rev lock made a read that its re-check under the lock
    could not confirm (see ``server.optimistic``): merge it again under the lock."""


@dataclass
class Outcome:
    """What applying a batch gave: every result, the fresh ones (to store), the records
    they touched (for the audit row) and the device's new last mutation id."""

    results: list[dict[str, Any]]
    fresh: list[dict[str, Any]]
    touched: list[str]
    last: int

    def body(self) -> dict[str, Any]:
        """The response body."""
        return {"last_mutation_id": self.last, "results": self.results}


class Batch:
    """The state shared by the mutations of one push; record writes wait for ``flush``.

    ``early`` marks a batch merged before the rev lock (``server.optimistic``): it keeps
    the rev of every record it reads in ``seen`` for the re-check under the lock, defers
    attachment references to the writes, and raises NeedsLock rather than make a read
    that re-check does not cover.
    """

    def __init__(
        self,
        conn: Connection,
        caller: Caller,
        revs: RevSource,
        now: float,
        *,
        early: bool = False,
    ):
        self.conn = conn
        self.caller = caller
        self.now = now
        self.revs = revs
        self.early = early
        self.server_clock = hlc.Clock("server", wall=lambda: int(now * 1000))
        self.cache: dict[str, Stored | None] = {}
        self.seen: dict[str, int | None] = {}  # rev of each record as read (None: absent)
        self.new: dict[str, Stored] = {}  # to insert (their latest state)
        self.changed: dict[str, Stored] = {}  # to update
        self.conflicts: list[dict[str, Any]] = []
        self.refs: dict[str, set[str]] = {}  # attachment references to set (early batches)
        self.own_nodes: set[str] | None = None  # ids of the caller's devices, when needed
        self.blobs: set[str] = set()  # attachment hashes this caller may refer to

    def run(self, batch: list[Prepared], last: int) -> Outcome:
        """Apply the mutations after ``last`` (the device's last mutation id) in order,
        replaying the results of those at or below it; stop at a gap."""
        self.prefetch([p for p in batch if p.item["id"] > last])
        replayed = replay.stored(
            self.conn, self.caller.device_id, [p.item["id"] for p in batch if p.item["id"] <= last]
        )
        outcome = Outcome([], [], [], last)
        for prepared in batch:
            item = prepared.item
            mutation_id = item["id"]
            if mutation_id <= last:
                outcome.results.append(
                    (replayed.get(mutation_id) or Result(mutation_id, "applied", None)).as_json()
                )
                continue
            if mutation_id != last + 1:
                break  # a gap: the device must resend from last_mutation_id + 1
            result = self.apply(prepared).as_json()
            outcome.results.append(result)
            outcome.fresh.append(result)
            if isinstance(item.get("record_id"), str):
                outcome.touched.append(item["record_id"][:36])
            last = outcome.last = mutation_id
        return outcome

    def prefetch(self, batch: list[Prepared]) -> None:
        """Load every record the batch names (and their patients) in one query."""
        wanted: set[str] = set()
        for prepared in batch:
            m = prepared.mutation
            if m is None:
                continue  # refused without looking at any record
            wanted.add(m.record_id)  # a UUID, as parse_mutation checked
            patient_id = m.fields.get("patient_id")
            if isinstance(patient_id, str) and not prepared.field_problems:
                wanted.add(patient_id)  # an "id" field that passed validation: a UUID
        found = records.load_many(self.conn, sorted(wanted))
        self.cache.update(dict.fromkeys(wanted))
        self.cache.update(found)
        self.seen.update(dict.fromkeys(wanted))
        self.seen.update((record_id, rec.rev) for record_id, rec in found.items())

    def flush(self) -> None:
        """Write the batch's records, conflicts and last rev (a few statements in all)."""
        author = self.caller.user_id
        records.save_many(
            self.conn,
            list(self.new.values()),
            list(self.changed.values()),
            author=author,
            now=self.now,
        )
        if self.conflicts:
            _INSERT_CONFLICT.run_many(self.conn, self.conflicts)
        assert isinstance(self.revs, records.Revs)
        self.revs.finish()

    def _save(self, rec: Stored, *, new: bool) -> None:
        self.cache[rec.id] = rec
        if rec.id in self.new:
            return  # inserted at flush with its latest state
        (self.new if new else self.changed)[rec.id] = rec

    def load(self, record_id: str) -> Stored | None:
        """A record as of this point in the batch (earlier mutations included)."""
        if record_id not in self.cache:
            found = self.cache[record_id] = records.load(self.conn, record_id)
            self.seen[record_id] = None if found is None else found.rev
        return self.cache[record_id]

    def _set_refs(self, record_id: str, hashes: set[str]) -> None:
        """Replace a record's attachment references: now, or with the writes when early
        (nothing an early batch reads depends on them: it never calls ``may_refer``)."""
        if self.early:
            self.refs[record_id] = hashes
        else:
            records.set_attachment_refs(self.conn, record_id, hashes)

    def apply(self, prepared: Prepared) -> Result:
        """Apply one mutation, or report why it was rejected."""
        if prepared.mutation is None:
            assert prepared.refusal is not None
            return _rejected(prepared.item["id"], prepared.refusal)
        try:
            self._check_nodes(prepared.mutation)
            return self._apply(prepared.mutation, prepared.field_problems)
        except Rejected as refusal:
            return _rejected(prepared.mutation.id, refusal)

    def _check_nodes(self, m: Mutation) -> None:
        """Every clock must name the pushing device, or an earlier device of the same user
        (a phone that signed in again keeps its clock). The merge trusts the node (a
        device's later write never conflicts with its own earlier one), so nobody may stamp
        an edit with a teammate's device."""
        for name, stamp in m.clock.items():
            node = hlc.node_of(stamp)
            if node != self.caller.device_id and node not in self._own_nodes():
                raise Rejected(
                    "a clock's node must be the id of this device", field=f"clock.{name}"
                )

    def _check_uploaded(self, incoming: Mapping[str, Any], existing: Stored | None) -> None:
        """A record may only refer to attachment bytes the server holds (the phone uploads
        them before the push), so no reader ever meets a photo nobody can download; and,
        since knowing a hash must grant nothing, only to bytes this user uploaded or can
        already see (``attachments.may_refer``)."""
        known = attachment_hashes(existing.fields) if existing is not None else set()
        wanted = attachment_hashes(dict(incoming)) - known
        unknown = wanted - self.blobs
        if unknown:
            if self.early:
                # Who may refer to a blob depends on other records' references and
                # scope, which the re-check of revs does not cover.
                raise NeedsLock("attachments")
            self.blobs |= attachments.may_refer(self.conn, self.caller, unknown)
        missing = wanted - self.blobs
        if missing:
            raise Rejected(
                f"attachment {min(missing)[:12]}… was not uploaded first",
                code="missing_attachment",
                field="attachments",
            )

    def _own_nodes(self) -> set[str]:
        if self.own_nodes is None:  # read once, and only when a clock names another node
            self.own_nodes = auth.device_ids_of(self.conn, self.caller.user_id)
        return self.own_nodes

    def _apply(self, m: Mutation, field_problems: list[FieldError]) -> Result:
        m = patient_merge.onto_survivor(self.load, m)  # a merged-away patient: edit its survivor
        existing = self.load(m.record_id)
        if existing is not None:
            self._check_existing(m, existing)
        if m.op == "delete":
            return self._delete(m, existing)
        incoming, clock = dict(m.fields), dict(m.clock)
        _check(field_problems)
        if "attachments" in incoming:
            self._check_uploaded(incoming, existing)
        rec = self._target(m, existing, incoming, clock)

        def changed_since_base(name: str) -> bool:
            if m.base_rev is None:
                return name in rec.fields
            return rec.field_revs.get(name, 0) > m.base_rev

        merged = merge(rec.fields, rec.clock, incoming, clock, changed_since_base)
        # Every value of the merged record passed validation: the stored ones when they
        # were stored, the incoming ones just above. Only a required field can be missing.
        _check(schema.required_errors(m.type, merged.fields))
        if visits.is_final(rec.type, merged.fields):
            _check(schema.finalize_errors(merged.fields))
        if existing is None and m.type == "addendum":
            self._check_visit(merged.fields)
        if merged.changed:
            self._store_change(rec, merged, new=existing is None)
        self._keep_conflicts(rec, merged.conflicts)
        status = "merged" if merged.conflicts else "applied"
        return Result(m.id, status, rec.rev, [c.as_json() for c in merged.conflicts])

    def _check_existing(self, m: Mutation, existing: Stored) -> None:
        # Scope first: a record of another team is "not in your scope" and nothing more
        # (not even its type).
        if not self.caller.sees_team(existing.team_id):
            raise Rejected("the record is not in your scope", code="out_of_scope")
        if existing.type != m.type:
            raise Rejected(f"the record is a {existing.type}", field="type")
        self._check_author(m, existing)

    def _target(
        self, m: Mutation, existing: Stored | None, incoming: dict[str, Any], clock: dict[str, Any]
    ) -> Stored:
        """The record the mutation merges into: a new one placed in its team, or the stored
        one (never a deleted one, nor a final visit)."""
        if existing is None:
            team_id, patient_id = self._place(m, incoming, clock)
            rec = Stored(
                m.record_id, m.type, team_id, patient_id, {}, {}, created_by=self.caller.user_id
            )
        else:
            if existing.deleted:
                raise Rejected("the record was deleted", code="record_deleted")
            patient_merge.keep_link(self.load, existing, incoming, clock)  # names a merged patient
            _keep_links(existing, incoming, clock)
            rec = existing
        if visits.is_final(rec.type, rec.fields):
            raise Rejected(visits.NEVER_CHANGES, code=visits.FINALIZED_CODE)
        return rec

    def _store_change(self, rec: Stored, merged: MergeResult, *, new: bool) -> None:
        rec.rev = self.revs.next()
        rec.fields, rec.clock = merged.fields, merged.clock
        rec.field_revs.update({name: rec.rev for name in merged.changed})
        self._save(rec, new=new)
        if "attachments" in merged.changed:
            self._set_refs(rec.id, attachment_hashes(rec.fields))

    def _check_author(self, m: Mutation, existing: Stored) -> None:
        """A draft visit and an addendum are their author's: nobody else edits or finalizes
        them; a supervisor (or an admin) may discard another's draft."""
        if existing.type not in AUTHORED or existing.created_by in ("", self.caller.user_id):
            return
        if visits.is_final(existing.type, existing.fields):
            return  # nobody changes it: "record_finalized" says why
        if m.op == "delete" and self.caller.role in ("supervisor", "admin"):
            return
        raise Rejected(f"only its author can change this {existing.type}", code="not_author")

    def _delete(self, m: Mutation, existing: Stored | None) -> Result:
        if existing is None:
            raise Rejected("no such record", code="not_found")
        # The directory (sites, resources) is shared by the organization: any member may add
        # to it and correct it, but removing an entry is for a supervisor or an admin.
        if existing.team_id is None and self.caller.role == "liaison":
            raise Rejected(
                "only a supervisor or an admin removes a shared directory entry",
                code="out_of_scope",
            )
        if not existing.deleted:
            if visits.is_final(existing.type, existing.fields):
                raise Rejected(visits.NEVER_DELETED, code=visits.FINALIZED_CODE)
            if existing.type == "patient":
                self._delete_records_of(existing.id)
            existing.deleted = True
            existing.rev = self.revs.next()
            self._save(existing, new=False)
            self._set_refs(existing.id, set())
        return Result(m.id, "applied", existing.rev)

    def _delete_records_of(self, patient_id: str) -> None:
        """Deleting a patient deletes its other records with it, when the caller's role
        allows (``schema.patient_delete_refusal``); else the whole delete is refused."""
        if self.early:
            raise NeedsLock("patient delete")  # which records a patient has: not re-checked
        rows = self.conn.execute(select(db.records).where(db.records.c.patient_id == patient_id))
        for rec in map(records.from_row, rows):
            if self.cache.get(rec.id) is None:  # the batch's own version is newer
                self.cache[rec.id] = rec
        others = [
            r
            for r in self.cache.values()
            if r is not None and r.patient_id == patient_id and r.id != patient_id
        ]
        others = [r for r in others if not r.deleted]
        refusal = schema.patient_delete_refusal(
            self.caller.role, [(r.type, r.fields) for r in others]
        )
        if refusal is not None:
            raise Rejected(refusal[1], code=refusal[0])
        for rec in others:
            rec.deleted = True
            rec.rev = self.revs.next()
            self._save(rec, new=False)
            self._set_refs(rec.id, set())

    def _place(
        self, m: Mutation, incoming: dict[str, Any], clock: dict[str, str]
    ) -> tuple[str | None, str | None]:
        """The team and patient of a new record (its scope), checked against the caller."""
        caller = self.caller
        scope = schema.TYPES[m.type].scope
        if scope == "org":
            return None, None
        if scope == "team":  # a patient or a round: the team named, or the caller's only one
            team = incoming.get("team_id")
            if team is None:
                if not caller.team_ids:
                    raise Rejected("you are not a member of any team", code="out_of_scope")
                if len(caller.team_ids) > 1:
                    raise Rejected("name one of your teams", field="team_id")
                team = caller.team_ids[0]
            elif team not in caller.team_ids:
                raise Rejected(
                    "you are not a member of that team", code="out_of_scope", field="team_id"
                )
            incoming["team_id"] = team
            clock.setdefault("team_id", self.server_clock.now())
            return team, (m.record_id if m.type == "patient" else None)
        patient_id = incoming.get("patient_id")
        if not patient_id:
            raise Rejected("is required", field="patient_id")
        # A patient merged into another: the record goes to the survivor.
        patient_merge.redirect(self.load, incoming, clock, self.server_clock)
        patient_id = incoming["patient_id"]
        patient = self.load(patient_id)
        if patient is None or patient.type != "patient" or patient.team_id is None:
            raise Rejected("unknown patient", code="out_of_scope", field="patient_id")
        if not caller.sees_team(patient.team_id):
            raise Rejected(
                "the patient is not in your scope", code="out_of_scope", field="patient_id"
            )
        return patient.team_id, patient_id

    def _check_visit(self, fields: dict[str, Any]) -> None:
        visit = self.load(fields["visit_id"])
        if (
            visit is None
            or visit.type != "visit"
            or (visit.fields.get("patient_id") != fields.get("patient_id"))
        ):
            raise Rejected("must be a visit of the same patient", field="visit_id")

    def _keep_conflicts(self, rec: Stored, conflicts: list[Conflict]) -> None:
        self.conflicts.extend(
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
        )


def _check(problems: list[Any]) -> None:
    if problems:
        message = "; ".join(str(p) for p in problems[:5])
        raise Rejected(message, field=problems[0].field)


def _keep_links(existing: Stored, incoming: dict[str, Any], clock: dict[str, str]) -> None:
    """Refuse moving a record to another patient or team; the server owns team_id."""
    if schema.TYPES[existing.type].scope == "team" and "team_id" in incoming:
        if incoming["team_id"] != existing.team_id:
            raise Rejected("a record changes team only by reassignment", field="team_id")
        del incoming["team_id"], clock["team_id"]
    moved = incoming.get("patient_id", existing.patient_id) != existing.patient_id
    if existing.type != "patient" and moved:
        raise Rejected("a record cannot move to another patient", field="patient_id")


def _rejected(mutation_id: int, refusal: Rejected) -> Result:
    return Result(
        mutation_id, "rejected", None, [], ResultError(refusal.code, refusal.message, refusal.field)
    )


_C = db.conflicts
_INSERT_CONFLICT = Statement(
    insert(_C).values({c.name: bindparam(c.name) for c in _C.c if c.name != "id"})
)


def queue_conflicts(pipeline: Pipeline, conflicts: list[dict[str, Any]]) -> None:
    """Queue the rows of the conflicts a batch kept (``Batch.conflicts``)."""
    pipeline.add_many(_INSERT_CONFLICT, conflicts)
