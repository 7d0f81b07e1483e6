"""Schema validation: every type round-trips as valid; errors name the field."""

import uuid

import pytest
from hypothesis import given
from hypothesis import strategies as st

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


def _is_uuid_by_uuid_module(value: object) -> bool:
    """``is_uuid`` by the uuid module: the oracle the fast one must agree with.

    Only the lower-case canonical form: ids are compared as strings everywhere, so an
    upper-case copy of an id would be a second record (iOS's ``uuidString`` is upper-case).
    """
    if not isinstance(value, str) or len(value) != 36:
        return False
    try:
        return str(uuid.UUID(value)) == value
    except ValueError:
        return False


CANONICAL = "6f1c1b1e-8a53-4c4e-9d8e-0d6f3d1f1a11"
UUID_CASES = [
    (CANONICAL, True),
    (CANONICAL.upper(), False),  # lower case only: ids are compared as strings
    ("6F1c1B1e-8a53-4C4e-9d8E-0d6f3d1f1a11", False),
    ("00000000-0000-0000-0000-000000000000", True),
    ("ffffffff-ffff-ffff-ffff-ffffffffffff", True),
    ("{6f1c1b1e-8a53-4c4e-9d8e-0d6f3d1f1a1}", False),  # braces
    ("{" + CANONICAL + "}", False),
    ("urn:uuid:" + CANONICAL, False),
    (CANONICAL.replace("-", ""), False),  # 32 digits, no hyphens
    ("6f1c1b1e8-a53-4c4e-9d8e-0d6f3d1f1a11", False),  # a hyphen out of place
    ("6f1c1b1e-8a53-4c4e-9d8e0-d6f3d1f1a11", False),
    ("6f1c1b1e-8a53-4c4e-9d8e-0d6f3d1f1a1g", False),  # not hex
    ("6f1c1b1e-8a53-4c4e-9d8e-0d6f3d1f1a1_", False),
    ("6f1c1b1e-8a53-4c4e-9d8e-0d6f3d1f1_11", False),  # int() takes underscores
    ("+f1c1b1e-8a53-4c4e-9d8e-0d6f3d1f1a11", False),
    (" 6f1c1b1e-8a53-4c4e-9d8e-0d6f3d1f1a1", False),  # whitespace int() would strip
    ("6f1c1b1e-8a53-4c4e-9d8e-0d6f3d1f1a1 ", False),
    ("6f1c1b1e-8a53-4c4e-9d8e-0d6f3d1f1a1\n", False),
    (CANONICAL + "\n", False),
    (" " + CANONICAL, False),
    ("\t" + CANONICAL, False),
    ("6f1c1b1e-8a53-4c4e-9d8e-0d6f3d1f1a1\u0663", False),  # Arabic-Indic three
    ("6f1c1b1e-8a53-4c4e-9d8e-0d6f3d1f1a1\uff21", False),  # fullwidth A
    ("6f1c1b1e-8a53-4c4e-9d8e-0d6f3d1f1a1\u212a", False),  # Kelvin sign
    ("6f1c1b1e\u20138a53-4c4e-9d8e-0d6f3d1f1a11", False),  # en dash
    ("", False),
    (CANONICAL[:-1], False),
    (CANONICAL + "0", False),
    (None, False),
    (42, False),
    (CANONICAL.encode(), False),
    (uuid.UUID(CANONICAL), False),  # a UUID object is not a UUID string
    ([CANONICAL], False),
]


@pytest.mark.parametrize("value,expected", UUID_CASES)
def test_is_uuid_cases(value, expected):
    assert schema.is_uuid(value) is expected
    assert _is_uuid_by_uuid_module(value) is expected


# Strings near UUIDs: canonical ones with some characters swapped for troublesome ones.
_ODD = "0123456789abcdefABCDEFgG-{}_+ :\n\t\u0663\uff21\u212a\u2013\u00e9"


@st.composite
def _near_uuids(draw: st.DrawFn) -> str:
    text = list(str(draw(st.uuids())))
    if draw(st.booleans()):
        text = [c.upper() if draw(st.booleans()) else c for c in text]
    for _ in range(draw(st.integers(0, 2))):
        text[draw(st.integers(0, len(text) - 1))] = draw(st.sampled_from(_ODD))
    value = "".join(text)
    edit = draw(st.sampled_from(["", "", "", "", "", "prefix", "suffix", "cut", "drop"]))
    if edit == "prefix":
        return draw(st.sampled_from(["{", "urn:uuid:", " ", "\n"])) + value
    if edit == "suffix":
        return value + draw(st.sampled_from(["}", " ", "\n", "0"]))
    if edit == "cut":
        return value[draw(st.integers(1, 3)) :]
    if edit == "drop":  # a hyphen or digit fewer
        index = draw(st.integers(0, len(value) - 1))
        return value[:index] + value[index + 1 :]
    return value


@given(
    st.one_of(
        _near_uuids(),
        st.uuids().map(str),
        st.text(max_size=40),
        st.text(_ODD, min_size=30, max_size=40),
    )
)
def test_is_uuid_agrees_with_the_uuid_module(value):
    assert schema.is_uuid(value) is _is_uuid_by_uuid_module(value)


def test_required_errors_list_missing_required_fields():
    assert schema.required_errors("task", {"title": "call", "patient_id": PID}) == []
    missing = schema.required_errors("task", {"title": "", "due_date": "2026-11-30"})
    assert [e.field for e in missing] == ["patient_id", "title"]
    for empty in (None, "", []):
        assert [e.field for e in schema.required_errors("patient", {"name": empty})] == ["name"]
    assert [e.field for e in schema.required_errors("nonsense", {})] == ["type"]


@pytest.mark.parametrize("type_name", sorted(VALID))
def test_validate_reports_a_missing_required_field_once(type_name):
    for name in schema.TYPES[type_name].required:
        for empty in (None, ""):
            fields = {**VALID[type_name], name: empty}
            assert [e.field for e in schema.validate(type_name, fields)] == [name]
        fields = {k: v for k, v in VALID[type_name].items() if k != name}
        assert [e.field for e in schema.validate(type_name, fields)] == [name]
