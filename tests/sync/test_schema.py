"""Schema validation: every type round-trips as valid; errors name the field."""

import pytest

from sync import schema

PID = "6f1c1b1e-8a53-4c4e-9d8e-0d6f3d1f1a11"
VID = "0b6f3a5e-7c2d-4a8e-9f0b-1c2d3e4f5a6b"

VALID = {
    "site": {"name": "Riverside Clinic", "kind": "physician_office", "phone": "555-0100"},
    "resource": {"name": "Food bank", "categories": ["food"], "hours": "Mon-Fri 9-5"},
    "patient": {
        "name": "Ada Demo",
        "birth_date": "1941-03-02",
        "status": "active",
        "caregivers": [{"name": "Bo", "relation": "son", "phone": "555"}],
        "risk_flags": ["falls"],
        "consent_status": "verbal",
    },
    "visit": {
        "patient_id": PID,
        "setting": "home",
        "started_at": "2026-11-23T10:00:00",
        "needs": ["food", "housing"],
        "screening": {"phq2_1": 2},
        "scores": {"phq2": 3},
        "triage": "short_term_contact",
        "status": "draft",
        "consent_confirmed": True,
    },
    "addendum": {"visit_id": VID, "patient_id": PID, "text": "Correction: lives alone."},
    "round": {"date": "2026-11-23", "attendees": ["Dr. Demo"], "education_topics": ["falls"]},
    "round_entry": {"round_id": VID, "patient_id": PID, "note": "discussed", "action_items": []},
    "referral": {
        "patient_id": PID,
        "to_name": "Meals",
        "need": "food",
        "urgency": "soon",
        "status": "sent",
        "due_date": "2026-12-01",
    },
    "task": {"patient_id": PID, "title": "Call back", "due_date": "2026-11-30", "done": False},
    "transition": {
        "patient_id": PID,
        "discharge_date": "2026-11-24",
        "checklist": {"equipment": True},
        "status": "planned",
    },
}


def test_every_type_has_a_valid_example():
    assert set(VALID) == set(schema.TYPES)


@pytest.mark.parametrize("type_name", sorted(VALID))
def test_valid_records_pass(type_name):
    assert schema.validate(type_name, VALID[type_name]) == []


@pytest.mark.parametrize(
    "type_name,fields,field",
    [
        ("patient", {}, "name"),
        ("patient", {"name": "x" * 201}, "name"),
        ("patient", {"name": "x", "birth_date": "1941-02-30"}, "birth_date"),
        ("patient", {"name": "x", "status": "gone"}, "status"),
        ("patient", {"name": "x", "shoe_size": 9}, "shoe_size"),
        ("patient", {"name": "x", "caregivers": [{"name": "a", "ssn": "1"}]}, "caregivers"),
        ("visit", {"patient_id": "not-a-uuid"}, "patient_id"),
        ("visit", {"patient_id": PID, "needs": ["spaceflight"]}, "needs"),
        ("visit", {"patient_id": PID, "started_at": "yesterday"}, "started_at"),
        ("visit", {"patient_id": PID, "consent_confirmed": "yes"}, "consent_confirmed"),
        ("transition", {"patient_id": PID, "checklist": {"teleport": True}}, "checklist"),
        ("task", {"patient_id": PID, "title": None}, "title"),
        ("nonsense", {}, "type"),
    ],
)
def test_errors_name_the_field(type_name, fields, field):
    errors = schema.validate(type_name, fields)
    assert errors and errors[0].field == field, errors


def test_partial_skips_required_but_checks_given():
    assert schema.validate("visit", {"summary": "ok"}, partial=True) == []
    assert [e.field for e in schema.validate("visit", {"triage": "?"}, partial=True)] == ["triage"]


def test_finalize_requires_core_fields():
    missing = {e.field for e in schema.finalize_errors({"patient_id": PID})}
    assert missing == {"setting", "started_at", "triage"}
    assert schema.finalize_errors(VALID["visit"]) == []
