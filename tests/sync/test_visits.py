"""Table tests of the final-visit rule (sync/visits.py), shared by phone and server."""

import pytest

from sync import visits

CORE = {
    "patient_id": "p",
    "setting": "home",
    "started_at": "2026-12-07T09:00:00",
    "triage": "short_term_contact",
}
DRAFT = {**CORE, "status": "draft"}
FINAL = {**CORE, "status": "final"}

CHANGES = [
    # name, type, old fields (None: a new record), new fields, expected (field, message)
    ("a new draft", "visit", None, {"patient_id": "p"}, []),
    ("a draft edited", "visit", DRAFT, {**DRAFT, "note": "x"}, []),
    ("a draft finalized", "visit", DRAFT, FINAL, []),
    ("a new visit, final at once", "visit", None, FINAL, []),
    (
        "a final visit edited",
        "visit",
        FINAL,
        {**FINAL, "note": "x"},
        [("status", visits.NEVER_CHANGES)],
    ),
    ("a final visit made draft", "visit", FINAL, DRAFT, [("status", visits.NEVER_CHANGES)]),
    (
        "finalizing without the core fields",
        "visit",
        {"patient_id": "p"},
        {"patient_id": "p", "status": "final"},
        [
            ("setting", "is required to finalize"),
            ("started_at", "is required to finalize"),
            ("triage", "is required to finalize"),
        ],
    ),
    ("another type with status final", "task", {"status": "final"}, {"title": "x"}, []),
]


@pytest.mark.parametrize(
    ("type_name", "old", "new", "expected"),
    [c[1:] for c in CHANGES],
    ids=[c[0] for c in CHANGES],
)
def test_change_errors(type_name, old, new, expected):
    errors = visits.change_errors(type_name, old, new)
    assert [(e.field, e.message) for e in errors] == expected


DELETES = [
    ("a draft", "visit", DRAFT, []),
    ("a final visit", "visit", FINAL, [("status", visits.NEVER_DELETED)]),
    ("a record never stored", "visit", None, []),
    ("another type", "referral", {"status": "final"}, []),
]


@pytest.mark.parametrize(
    ("type_name", "fields", "expected"), [c[1:] for c in DELETES], ids=[c[0] for c in DELETES]
)
def test_delete_errors(type_name, fields, expected):
    errors = visits.delete_errors(type_name, fields)
    assert [(e.field, e.message) for e in errors] == expected


@pytest.mark.parametrize(
    ("type_name", "fields", "final"),
    [
        ("visit", FINAL, True),
        ("visit", DRAFT, False),
        ("visit", None, False),
        ("task", FINAL, False),
    ],
)
def test_is_final(type_name, fields, final):
    assert visits.is_final(type_name, fields) is final


def test_frozen_comes_before_missing_fields():
    """A final visit reports only that it never changes, not what it lacks."""
    errors = visits.change_errors("visit", {"status": "final"}, {"status": "final"})
    assert [e.message for e in errors] == [visits.NEVER_CHANGES]
