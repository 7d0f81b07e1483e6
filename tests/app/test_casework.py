"""Casework actions on a real encrypted store: visits, proposals, referrals, tasks, rounds."""

import pytest

from app.autosave import Debouncer
from app.casework import Casework
from sync.errors import InvalidRecord
from tests.app.views_support import patient, resource, site

FULL = {
    "discharge_date": "2026-11-24",
    "home_care_agency": "Home Care Co",
    "accountable": "RN Ortiz",
}


def test_search_resources(app):
    resource(app, "Food bank", "food")
    resource(app, "Café Communautaire", "food", "social_isolation")
    resource(app, "Volunteer rides", "transport")
    work = Casework(app)
    names = lambda rs: [r["fields"]["name"] for r in rs]  # noqa: E731
    assert names(work.resources()) == ["Café Communautaire", "Food bank", "Volunteer rides"]
    assert names(work.resources("cafe")) == ["Café Communautaire"]
    assert names(work.resources("", "food")) == ["Café Communautaire", "Food bank"]
    assert names(work.resources("bank", "transport")) == []


def test_visit_draft_finalize_and_addendum(app):
    pid = patient(app)
    work = Casework(app)
    draft = work.save_visit(None, {"patient_id": pid, "setting": "home"})
    assert draft["fields"]["status"] == "draft" and app.store.pending_count() == 2
    with pytest.raises(InvalidRecord) as err:
        work.finalize_visit(draft["id"], draft["fields"])
    assert {e.field for e in err.value.errors} == {"started_at", "triage", "consent_confirmed"}
    fields = {
        **draft["fields"],
        "started_at": "2026-11-23T10:00:00",
        "consent_confirmed": True,
        "triage": "short_term_contact",
    }
    final = work.finalize_visit(draft["id"], fields)
    assert final["fields"]["status"] == "final"
    with pytest.raises(InvalidRecord):
        work.save_visit(final["id"], {**fields, "summary": "changed"})
    with pytest.raises(InvalidRecord):
        work.finalize_visit(final["id"], fields)
    work.add_addendum(final["id"], "Lives alone.")
    work.add_addendum(final["id"], "Has a cat.")
    assert [a["fields"]["text"] for a in work.addenda(final)] == ["Lives alone.", "Has a cat."]


def test_proposals_accept_and_remember(app):
    pid = patient(app)
    resource(app, "Food bank", "food")
    work = Casework(app)
    visit = work.save_visit(
        None, {"patient_id": pid, "needs": ["food", "housing"], "triage": "short_term_contact"}
    )
    props = work.proposals(visit)
    assert [p.type for p in props] == ["referral", "task", "task", "task", "task"]
    assert work.accepted(visit["id"]) == set()
    work.accept(props[0])
    work.accept(props[1])
    assert work.accepted(visit["id"]) == {work.proposal_key(props[0]), work.proposal_key(props[1])}
    assert len(work.tasks(pid)) == 1 and work.open_referrals()[1][0]["fields"]["need"] == "food"


def test_referral_lifecycle_and_open_lists(app):
    pid = patient(app)
    work = Casework(app)
    late = work.save_referral({"patient_id": pid, "to_name": "Meals", "due_date": "2026-11-20"})
    soon = work.save_referral({"patient_id": pid, "to_name": "Rides", "due_date": "2026-11-30"})
    assert late["fields"]["status"] == "draft"
    overdue, other = work.open_referrals()
    assert [r["id"] for r in overdue] == [late["id"]] and [r["id"] for r in other] == [soon["id"]]
    work.move_referral(late["id"], "sent")
    work.move_referral(late["id"], "accepted")
    with pytest.raises(InvalidRecord) as err:
        work.move_referral(late["id"], "completed", " ")
    assert err.value.errors[0].field == "outcome"
    done = work.move_referral(late["id"], "completed", "Meals start Monday")
    assert done["fields"]["outcome"] == "Meals start Monday"
    assert work.open_referrals() == ([], [work.get(soon["id"])])


def test_tasks_by_due_date_and_done(app):
    pid = patient(app)
    work = Casework(app)
    b = work.add_task(pid, "Second", "2026-11-30")
    a = work.add_task(pid, " First ", "2026-11-24")
    c = work.add_task(pid, "Whenever", None)
    assert [t["id"] for t in work.tasks()] == [a["id"], b["id"], c["id"]]
    work.set_done(a["id"])
    assert [t["id"] for t in work.tasks(pid)] == [b["id"], c["id"]]
    assert [t["id"] for t in work.tasks(include_done=True)][-1] == a["id"]
    work.set_done(a["id"], False)
    assert len(work.tasks()) == 3


def test_round_entries_become_tasks(app):
    known = patient(app, "Ada Demo")
    work = Casework(app)
    office = site(app, "Riverside Clinic", "physician_office")
    site(app, "General Hospital", "hospital")
    assert [s["fields"]["name"] for s in work.sites("physician_office")] == ["Riverside Clinic"]
    rnd = work.save_round({"date": "2026-11-23", "site_id": office, "attendees": ["Dr. Lee"]})
    entry, tasks = work.add_round_entry(rnd["id"], known, "", "Stable", "Call son; GP in 3 days")
    assert [(t["fields"]["title"], t["fields"]["due_date"]) for t in tasks] == [
        ("Call son", "2026-11-30"),
        ("GP", "2026-11-26"),
    ]
    assert all(t["fields"]["source_id"] == entry["id"] for t in tasks)
    entry2, tasks2 = work.add_round_entry(rnd["id"], None, " Bo  New ", "New referral", "")
    assert tasks2 == [] and work.patient_name(entry2["fields"]["patient_id"]) == "Bo New"
    assert [e["id"] for e in work.round_entries(rnd["id"])] == [entry["id"], entry2["id"]]
    assert [p["fields"]["name"] for p in work.search_patients("bo")] == ["Bo New"]
    assert work.search_patients(" ") == []


def test_transition_moves(app):
    pid = patient(app)
    work = Casework(app)
    tr = work.save_transition({"patient_id": pid, "discharge_date": "2026-11-24"})
    assert tr["fields"]["status"] == "planned"
    with pytest.raises(InvalidRecord) as err:
        work.move_transition(tr["id"], tr["fields"], "handed_off")
    assert {e.field for e in err.value.errors} == {"home_care_agency", "accountable"}
    moved = work.move_transition(tr["id"], {**tr["fields"], **FULL}, "handed_off")
    assert moved["fields"]["status"] == "handed_off"


class FakeTimer:
    def __init__(self):
        self.calls = []

    def __call__(self, delay, callback):
        timer = self

        class Handle:
            cancelled = False

            def cancel(self):
                self.cancelled = True

        handle = Handle()
        timer.calls.append((delay, callback, handle))
        return handle

    def fire_last(self):
        delay, callback, handle = self.calls[-1]
        assert not handle.cancelled
        callback()


def test_debouncer_writes_once_after_the_last_change():
    saves = []
    timer = FakeTimer()
    d = Debouncer(lambda: saves.append(1), delay=1.0, later=timer)
    for _ in range(5):
        d.poke()
    assert saves == [] and d.pending and len(timer.calls) == 5
    assert all(h.cancelled for *_, h in timer.calls[:-1])
    timer.fire_last()
    assert saves == [1] and not d.pending
    d.flush()
    assert saves == [1]  # nothing pending: no write
    d.poke()
    d.flush()
    assert saves == [1, 1] and timer.calls[-1][2].cancelled
    d.poke()
    d.cancel()
    assert saves == [1, 1] and not d.pending


def test_debouncer_without_a_loop_saves_at_once():
    saves = []
    d = Debouncer(lambda: saves.append(1))
    d.poke()
    assert saves == [1]
