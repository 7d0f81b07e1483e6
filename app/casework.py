"""Actions and read models of casework screens: visits, referrals, tasks, rounds, transitions.

``Casework(app)`` is the state side of the assessment, round, referral, transition and task
screens: every write goes through ``app.store.put`` here (never in a view), and each
screen's read model is a plain function of the store. Rules that need no store live in
``app.referral_flow`` and ``app.transition_flow`` (status steps, due dates).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from tinydb import where

from app import assessment, rounds, triage
from app.errors import RecordNotFound
from app.referral_flow import OPEN as OPEN_REFERRAL
from app.referral_flow import (  # noqa: F401  # views still call these through casework
    REFERRAL_NEXT,
    default_due,
    is_overdue,
    referral_step_errors,
)
from app.store import fold
from app.transition_flow import TRANSITION_NEXT, transition_step_errors  # noqa: F401
from sync import visits
from sync.errors import FieldError, InvalidRecord

if TYPE_CHECKING:
    from app.state import AppState
    from app.store import Store

Record = dict[str, Any]


def search_resources(
    resources: list[Record], text: str = "", need: str | None = None
) -> list[Record]:
    """Directory resources whose name (or eligibility) has every word of ``text`` and that
    serve ``need``; by name."""
    words = fold(text).split()
    out = []
    for r in resources:
        f = r["fields"]
        haystack = fold(f"{f.get('name', '')} {f.get('eligibility', '')}")
        if need and need not in (f.get("categories") or ()):
            continue
        if all(w in haystack for w in words):
            out.append(r)
    return sorted(out, key=lambda r: fold(str(r["fields"].get("name", ""))))


class Casework:
    """Reads and writes of the casework screens on the app's open store."""

    def __init__(self, app: AppState) -> None:
        self.app = app

    @property
    def store(self) -> Store:
        """The open store; raises VaultLocked when locked."""
        return self.app.require_store()

    @property
    def today(self) -> dt.date:
        """Today by the app's clock."""
        day: dt.date = self.app.today
        return day

    def now(self) -> dt.datetime:
        """Now by the app's clock (local time, to the second)."""
        return dt.datetime.fromtimestamp(self.app.now()).replace(microsecond=0)

    def get(self, record_id: str, type_name: str | None = None) -> Record | None:
        """A live record (of ``type_name`` when given), or None."""
        record: Record | None = self.store.get(record_id) if record_id else None
        if record is None or (type_name and record["type"] != type_name):
            return None
        return record

    def patient_name(self, patient_id: str | None) -> str:
        """The patient's name, or "Unknown patient"."""
        record = self.get(patient_id or "", "patient")
        return str(record["fields"].get("name", "")) if record else "Unknown patient"

    def put(
        self, type_name: str, fields: Mapping[str, Any], record_id: str | None = None
    ) -> Record:
        """Save a record (validated by the store; ``app.store`` tells the app it changed)."""
        record: Record = self.store.put(type_name, dict(fields), record_id=record_id)
        return record

    # -- visits -------------------------------------------------------------------------
    def save_visit(self, visit_id: str | None, fields: Mapping[str, Any]) -> Record:
        """Save a draft visit (created on its first save); a final visit refuses."""
        self._refuse_final(visit_id)
        return self.put("visit", {**fields, "status": "draft"}, visit_id)

    def todays_draft(self, patient_id: str) -> Record | None:
        """The patient's newest draft visit started today on this device, to resume
        instead of a new one (a colleague's draft is theirs to finish)."""
        today = self.today.isoformat()
        drafts = [
            v
            for v in self.store.list("visit", patient_id=patient_id)
            if v["fields"].get("status") != "final"
            and str(v["fields"].get("started_at", ""))[:10] == today
            and not self.colleagues_draft(v)
        ]
        return max(drafts, key=lambda v: str(v["fields"].get("started_at")), default=None)

    def colleagues_draft(self, visit: Record) -> bool:
        """True for a draft visit another device started: only its author may change,
        finalize or discard it (the server refuses anyone else: ``not_author``)."""
        node = assessment.author_node(visit)
        return not assessment.is_final(visit["fields"]) and node not in (None, self.store.node_id)

    def may_discard(self, visit: Record) -> bool:
        """Whether this user may discard the draft: its author, or a supervisor."""
        if assessment.is_final(visit["fields"]):
            return False
        role = (self.store.get_meta("user") or {}).get("role")
        return not self.colleagues_draft(visit) or role == "supervisor"

    def discard_draft(self, visit_id: str) -> None:
        """Delete a draft visit (see ``may_discard``)."""
        visit = self.get(visit_id, "visit")
        if visit is None:
            raise RecordNotFound("the draft is not on this phone")
        if not self.may_discard(visit):
            raise InvalidRecord(
                [FieldError("status", "only its author or a supervisor can discard this draft")]
            )
        self.store.delete(visit_id)

    def finalize_visit(self, visit_id: str | None, fields: Mapping[str, Any]) -> Record:
        """Finalize a visit; raises InvalidRecord naming each missing field."""
        final = assessment.finalize(fields)
        self._refuse_final(visit_id)
        record = self.put("visit", final, visit_id)
        self._record_consent(record["fields"])
        return record

    def _record_consent(self, visit: Mapping[str, Any]) -> None:
        """A final visit with "Patient consented" ticked records the patient's consent (the
        one place an assessment sets it; it syncs like any edit)."""
        patient = self.get(str(visit.get("patient_id") or ""), "patient")
        if patient is None:
            return
        status = assessment.consent_after(visit, patient["fields"].get("consent_status"))
        if status is not None:
            self.put("patient", {"consent_status": status}, patient["id"])

    def _refuse_final(self, visit_id: str | None) -> None:
        """Raise InvalidRecord when the stored visit is final (``sync.visits``)."""
        old = self.get(visit_id, "visit") if visit_id else None
        if errors := visits.frozen_errors("visit", old["fields"] if old else None):
            raise InvalidRecord(errors)

    def add_addendum(
        self, visit_id: str, text: str, attachments: list[Record] | None = None
    ) -> Record:
        """Add a correction to a visit (with photos: ``app.attachments`` entries)."""
        visit = self.get(visit_id, "visit")
        if visit is None:
            raise RecordNotFound("no visit with that id")
        fields = assessment.addendum_fields(visit, text)
        if attachments:
            fields["attachments"] = attachments
        return self.put("addendum", fields)

    def addenda(self, visit: Mapping[str, Any]) -> list[Record]:
        """A visit's addenda, oldest first."""
        found = [
            a
            for a in self.store.list("addendum", patient_id=visit["fields"]["patient_id"])
            if a["fields"].get("visit_id") == visit["id"]
        ]
        return sorted(found, key=lambda a: min(a.get("clock", {}).values(), default=""))

    def resources(self, text: str = "", need: str | None = None) -> list[Record]:
        """The offline resource directory, searched by name and need."""
        return search_resources(self.store.list("resource"), text, need)

    def proposals(self, visit: Mapping[str, Any]) -> list[triage.Proposal]:
        """Next steps proposed by the visit's triage decision."""
        name = self.patient_name(visit["fields"].get("patient_id"))
        return triage.propose(visit, self.store.list("resource"), self.today, name)

    def accepted(self, visit_id: str) -> set[str]:
        """Labels of what already exists from a visit's proposals (tasks, referrals)."""
        done = set()
        visit = self.store.get(visit_id)
        patient = (visit or {}).get("fields", {}).get("patient_id")
        mine = {"patient_id": patient} if isinstance(patient, str) else {}  # theirs only
        for r in self.store.scan("referral", **mine):
            if r["fields"].get("visit_id") == visit_id:
                done.add(("referral", r["fields"].get("to_name")))
        for t in self.store.scan("task", **mine):
            if t["fields"].get("source_id") == visit_id:
                done.add(("task", t["fields"].get("title")))
        return {f"{kind}:{name}" for kind, name in done}

    @staticmethod
    def proposal_key(p: triage.Proposal) -> str:
        """The key ``accepted`` uses for a proposal."""
        name = p.fields.get("to_name") if p.type == "referral" else p.fields.get("title")
        return f"{p.type}:{name}"

    def accept(self, proposal: triage.Proposal) -> Record:
        """Turn one proposal into a record."""
        return self.put(proposal.type, proposal.fields)

    # -- referrals ----------------------------------------------------------------------
    def referral_target(self, fields: Mapping[str, Any]) -> str:
        """Who a referral goes to: its typed name, else its directory resource's name."""
        if fields.get("to_name"):
            return str(fields["to_name"])
        resource = self.get(str(fields.get("resource_id") or ""), "resource")
        return str(resource["fields"].get("name", "")) if resource else ""

    def save_referral(self, fields: Mapping[str, Any], referral_id: str | None = None) -> Record:
        """Create or update a referral (a new one starts as a draft)."""
        data = {"status": "draft", **fields} if referral_id is None else dict(fields)
        return self.put("referral", data, referral_id)

    def move_referral(self, referral_id: str, status: str, outcome: str | None = None) -> Record:
        """Move a referral to its next status; raises InvalidRecord when it cannot."""
        record = self.get(referral_id, "referral")
        if record is None:
            raise RecordNotFound("no referral with that id")
        fields = dict(record["fields"])
        if outcome is not None:
            fields["outcome"] = outcome.strip()
        errors = referral_step_errors(fields, status)
        if errors:
            raise InvalidRecord(errors)
        fields["status"] = status
        return self.put("referral", fields, referral_id)

    def open_referrals(self) -> tuple[list[Record], list[Record]]:
        """(overdue, other open) referrals, each by due date."""
        live = self.store.get_many(  # picked by their facts: the others stay on disk
            i
            for i, _, _, status in self.store.facts("referral")
            if (status or "draft") in OPEN_REFERRAL
        )
        live.sort(key=lambda r: (r["fields"].get("due_date") or "9999", r["id"]))
        overdue = [r for r in live if is_overdue(r["fields"].get("due_date"), self.today)]
        return overdue, [r for r in live if r not in overdue]

    # -- tasks --------------------------------------------------------------------------
    def tasks(self, patient_id: str | None = None, include_done: bool = False) -> list[Record]:
        """Tasks by due date (undated last), open ones only unless ``include_done``."""
        if include_done:
            found = self.store.list("task", patient_id=patient_id)
        else:  # picked by their facts: the others stay on disk
            found = self.store.get_many(
                i
                for i, _, _, state in self.store.facts("task", patient_id=patient_id)
                if state == "open"
            )
        return sorted(
            found,
            key=lambda t: (
                bool(t["fields"].get("done")),
                t["fields"].get("due_date") or "9999",
                str(t["fields"].get("title", "")).lower(),
            ),
        )

    def set_done(self, task_id: str, done: bool = True) -> Record:
        """Tick (or untick) a task."""
        if self.get(task_id, "task") is None:
            raise RecordNotFound("no task with that id")
        return self.put("task", {"done": done}, task_id)

    def add_task(self, patient_id: str, title: str, due: str | None) -> Record:
        """A new follow-up task for a patient."""
        fields: dict[str, Any] = {"patient_id": patient_id, "title": title.strip(), "done": False}
        if due:
            fields["due_date"] = due
        return self.put("task", fields)

    # -- rounds ---------------------------------------------------------------------------
    def sites(self, kind: str | None = None) -> list[Record]:
        """Sites (of ``kind`` when given), by name."""
        found = [
            s for s in self.store.list("site") if kind is None or s["fields"].get("kind") == kind
        ]
        return sorted(found, key=lambda s: fold(str(s["fields"].get("name", ""))))

    def save_round(self, fields: Mapping[str, Any], round_id: str | None = None) -> Record:
        """Create or update a round's header; a new round belongs to a team, placed like a
        patient (``AppState.team_for_new``: raises InvalidRecord until one is chosen)."""
        if round_id is None:
            team = self.app.team_for_new("round", fields.get("team_id"))
            fields = {**fields, "team_id": team} if team else fields
        return self.put("round", fields, round_id)

    def round_team(self, round_id: str) -> str | None:
        """The team of a saved round (None when the server placed it)."""
        record = self.get(round_id, "round")
        team = (record or {}).get("fields", {}).get("team_id")
        return team if isinstance(team, str) else None

    def round_entries(self, round_id: str) -> list[Record]:
        """A round's entries in the order they were added."""
        found = self.store.find(_round_entry_query(round_id))
        return sorted(found, key=lambda e: min(e.get("clock", {}).values(), default=""))

    def add_round_entry(
        self,
        round_id: str,
        patient_id: str | None,
        new_name: str,
        note: str,
        items: str,
    ) -> tuple[Record, list[Record]]:
        """Add a patient discussed (existing, or new by name, in the round's team) and make
        its action items tasks."""
        if not patient_id:
            fields = rounds.new_patient_fields(new_name)
            if team := self.round_team(round_id) or self.app.team_for_new("patient"):
                fields["team_id"] = team
            patient_id = self.put("patient", fields)["id"]
        entry = self.put(
            "round_entry",
            rounds.entry_fields(round_id, patient_id, note, rounds.split_action_items(items)),
        )
        existing = self.store.list("task", patient_id=patient_id)
        tasks = [self.put("task", t) for t in rounds.tasks_for_entry(entry, self.today, existing)]
        return entry, tasks

    def update_round_entry(
        self, entry_id: str, note: str, items: str
    ) -> tuple[Record, list[Record]]:
        """Change an entry's note and action items; a new item becomes a task (tasks of
        items taken out stay: they may be under way)."""
        old = self.get(entry_id, "round_entry")
        if old is None:
            raise RecordNotFound("This entry is no longer in the round.")
        f = old["fields"]
        fields = rounds.entry_fields(
            f["round_id"], f["patient_id"], note, rounds.split_action_items(items)
        )
        entry = self.put("round_entry", fields, entry_id)
        existing = self.store.list("task", patient_id=f["patient_id"])
        tasks = [self.put("task", t) for t in rounds.tasks_for_entry(entry, self.today, existing)]
        return entry, tasks

    def remove_round_entry(self, entry_id: str) -> None:
        """Take a patient out of a round; the tasks made from the entry are kept."""
        self.store.delete(entry_id)

    def past_rounds(self) -> list[rounds.RoundSummary]:
        """Every round on this phone, newest first, with its site and patient count."""
        names = {s["id"]: str(s["fields"].get("name", "")) for s in self.sites()}
        return rounds.summaries(self.store.list("round"), self.store.list("round_entry"), names)

    def patients_named(self, name: str) -> list[Record]:
        """Patients whose name is exactly ``name`` (any case or accents): a likely duplicate."""
        return [dict(p) for p in rounds.same_name(name, self.search_patients(name, limit=50))]

    def search_patients(self, text: str, limit: int = 5) -> list[Record]:
        """Patients whose name matches ``text`` (for the round's next-patient row)."""
        return self.store.search_patients(text, limit=limit) if text.strip() else []

    # -- transitions ----------------------------------------------------------------------
    def save_transition(
        self, fields: Mapping[str, Any], transition_id: str | None = None
    ) -> Record:
        """Create or update a transition (a new one starts as planned)."""
        data = {"status": "planned", **fields} if transition_id is None else dict(fields)
        return self.put("transition", data, transition_id)

    def move_transition(
        self, transition_id: str | None, fields: Mapping[str, Any], status: str
    ) -> Record:
        """Save ``fields`` and move the transition to ``status``; InvalidRecord when it cannot."""
        data = {"status": "planned", **fields}
        errors = transition_step_errors(data, status)
        if errors:
            raise InvalidRecord(errors)
        return self.put("transition", {**data, "status": status}, transition_id)


def _round_entry_query(round_id: str) -> Any:
    return (where("type") == "round_entry") & (where("fields")["round_id"] == round_id)
