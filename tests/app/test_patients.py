"""Patients: details saved from the form, likely duplicates, consent recorded by a final
assessment, and deleting a patient added by mistake (the rules the server enforces too)."""

from __future__ import annotations

import datetime as dt

import pytest

from app import patients
from app.casework import Casework
from app.errors import AppError
from app.patients import Details
from sync.errors import InvalidRecord
from sync.schema import patient_delete_refusal
from tests.app.views_support import patient

TODAY = dt.date(2026, 11, 23)


def _record(pid: str, name: str, **fields: str) -> dict:
    return {"id": pid, "type": "patient", "fields": {"name": name, **fields}}


CASELOAD = [
    _record("1", "Ada Lovelace", birth_date="1948-03-02", phone="+1 555 0100"),
    _record("2", "Élodie Dupré"),
    _record("3", "Bob Smith", birth_date="1950-05-17"),
    _record("4", "Cy Sample", phone="555 0199"),
]


@pytest.mark.parametrize(
    ("name", "birth", "phone", "ids", "reason"),
    [
        ("ada  LOVELACE", "", "", ["1"], "Same name"),
        ("Elodie Dupre", "", "", ["2"], "Same name"),  # accents and case folded
        ("Robert Smith", "1950-05-17", "", ["3"], "Same birth date, similar name"),
        ("Bobby Smyth", "1950-05-17", "", ["3"], "Same birth date, similar name"),
        ("Zed Other", "1950-05-17", "", [], None),  # a birthday is not a person
        ("Robert Smith", "", "", [], None),  # a surname alone is not a person
        ("Someone Else", "", "(555) 0100", ["1"], "Same phone number"),
        ("Someone Else", "", "0100", [], None),  # too few digits to mean anything
        ("New Person", "1990-01-01", "555 0123", [], None),
    ],
)
def test_likely_duplicates(name, birth, phone, ids, reason):
    found = patients.likely_duplicates(CASELOAD, name, birth, phone)
    assert [d.id for d in found] == ids
    if reason:
        assert found[0].reason == reason


def test_a_duplicate_says_what_tells_them_apart():
    (ada,) = patients.likely_duplicates(CASELOAD, "Ada Lovelace")
    assert ada.detail == "Born 1948-03-02 · +1 555 0100"


def test_details_round_trip_and_clear(app):
    pid = app.store.put("patient", {"name": "Ann", "status": "active", "phone": "1"})["id"]
    form = patients.details_of(app.store.get(pid))
    assert form == Details(name="Ann", phone="1")
    form.name, form.phone, form.birth_date = "  Ann   Other ", "", "1950-05-17"
    form.consent_status = "written"
    form.caregivers = [{"name": "Bo", "relation": "son", "phone": ""}, {"name": " "}]
    patients.save_details(app.store, pid, form, TODAY)
    f = app.store.get(pid)["fields"]
    assert f["name"] == "Ann Other" and f["birth_date"] == "1950-05-17"
    assert f["consent_status"] == "written" and f.get("phone") is None
    assert f["caregivers"] == [{"name": "Bo", "relation": "son"}]  # the blank row is dropped
    assert f["status"] == "active"  # fields the form does not show are kept


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"name": " "}, "name"),
        ({"birth_date": "17/05/1950"}, "birth_date"),
        ({"birth_date": "2030-01-01"}, "birth_date"),
        ({"caregivers": [{"name": "", "relation": "son", "phone": "1"}]}, "caregivers"),
    ],
)
def test_bad_details_are_refused_by_field(app, change, field):
    pid = patient(app)
    form = patients.details_of(app.store.get(pid))
    for name, value in change.items():
        setattr(form, name, value)
    with pytest.raises(InvalidRecord) as err:
        patients.save_details(app.store, pid, form, TODAY)
    assert field in {e.field for e in err.value.errors}


def _finalize(app, pid, consent=True):
    work = Casework(app)
    draft = work.save_visit(None, {"patient_id": pid, "setting": "home"})
    fields = {
        **draft["fields"],
        "started_at": "2026-11-23T10:00:00",
        "consent_confirmed": consent,
        "triage": "short_term_contact",
    }
    return work.finalize_visit(draft["id"], fields)


def test_a_final_assessment_with_consent_records_it(app):
    pid = patient(app)
    assert app.store.get(pid)["fields"].get("consent_status") is None
    _finalize(app, pid)
    assert app.store.get(pid)["fields"]["consent_status"] == "verbal"
    assert any(  # it syncs: the patient's change is in the outbox
        m["record_id"] == pid and m["fields"].get("consent_status") == "verbal"
        for m in app.store.outbox()
    )


def test_written_consent_on_file_stays_written(app):
    pid = app.store.put("patient", {"name": "W", "consent_status": "written"})["id"]
    _finalize(app, pid)
    assert app.store.get(pid)["fields"]["consent_status"] == "written"


@pytest.mark.parametrize(
    ("role", "others", "code"),
    [
        ("liaison", [], None),
        ("liaison", [("task", {})], "has_records"),
        ("supervisor", [("task", {}), ("visit", {"status": "draft"})], None),
        ("admin", [("round_entry", {})], None),
        ("supervisor", [("visit", {"status": "final"})], "has_final_visits"),
        ("liaison", [("visit", {"status": "final"})], "has_final_visits"),
    ],
)
def test_who_may_delete_a_patient(role, others, code):
    refusal = patient_delete_refusal(role, others)
    assert (refusal[0] if refusal else None) == code


def test_a_liaison_deletes_a_patient_with_nothing_else(app):
    pid = patient(app)
    app.drafts.put(patients.draft_key(pid), Details(name="half typed"))
    assert patients.delete_refusal(app.store, pid) is None
    patients.delete(app, pid)
    assert app.store.get(pid) is None
    assert app.drafts.get(patients.draft_key(pid), Details) is None
    assert [m["op"] for m in app.store.outbox()][-1] == "delete"


def test_a_liaison_may_not_delete_a_patient_with_records(app):
    pid = patient(app)
    Casework(app).add_task(pid, "Call back", None)
    code, words = patients.delete_refusal(app.store, pid)
    assert code == "has_records" and "supervisor" in words
    with pytest.raises(AppError):
        patients.delete(app, pid)
    assert app.store.get(pid) is not None


def test_a_supervisor_deletes_the_records_first_then_the_patient(app):
    app.store.set_meta("user", {"username": "sue", "role": "supervisor"})
    pid = patient(app)
    task = Casework(app).add_task(pid, "Call back", None)
    patients.delete(app, pid)
    deletes = [m["record_id"] for m in app.store.outbox() if m["op"] == "delete"]
    assert deletes == [task["id"], pid]


def test_nobody_deletes_a_patient_with_a_final_visit(app):
    app.store.set_meta("user", {"username": "sue", "role": "supervisor"})
    pid = patient(app)
    _finalize(app, pid)
    assert patients.delete_refusal(app.store, pid)[0] == "has_final_visits"
    with pytest.raises(AppError):
        patients.delete(app, pid)
