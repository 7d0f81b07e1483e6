"""One label per schema value (app/labels.py)."""

import pytest

from app import labels
from app.labels import label
from sync import schema

KINDS = [
    ("need", schema.NEED_DOMAINS),
    ("triage", schema.TRIAGE),
    ("setting", schema.SETTINGS),
    ("source", schema.SOURCES),
    ("site_kind", schema.SITE_KINDS),
    ("consent", schema.CONSENT_STATUS),
    ("referral_status", schema.REFERRAL_STATUS),
    ("transition_status", schema.TRANSITION_STATUS),
    ("visit_status", schema.VISIT_STATUS),
    ("patient_status", schema.PATIENT_STATUS),
    ("urgency", schema.URGENCY),
    ("checklist", schema.CHECKLIST_ITEMS),
    ("record_type", tuple(schema.TYPES)),
    ("role", ("liaison", "supervisor", "admin")),
]


@pytest.mark.parametrize(("kind", "values"), KINDS, ids=[k for k, _ in KINDS])
def test_every_schema_value_has_a_label(kind, values):
    assert set(labels.BY_KIND[kind]) == set(values)
    assert all(label(v, kind).strip() for v in values)


def test_every_enum_field_of_the_schema_is_covered():
    covered = {v for _, values in KINDS for v in values}
    for rtype in schema.TYPES.values():
        for spec in rtype.fields.values():
            if spec.kind == "enum":
                assert set(spec.choices) <= covered, (rtype.name, spec.name)


@pytest.mark.parametrize(
    ("value", "kind", "expected"),
    [
        ("short_term_contact", None, "Short-term contact"),
        ("home", None, "Home visit"),
        ("phone", "setting", "Phone call"),
        ("handed_off", None, "Handed off"),
        ("round_entry", None, "Round note"),
        ("self", None, "Patient (self)"),
        ("patient_teaching", None, "Patient taught"),
        ("declined", None, "Declined"),
        ("declined", "referral_status", "Declined"),
        ("declined", "consent", "Consent declined"),
        ("verbal", None, "Verbal consent"),
        ("supervisor", "role", "Supervisor"),
        ("not_a_value", None, "Not a value"),
        ("closed", "no_such_kind", "Closed"),
        ("", None, ""),
        (None, None, ""),
    ],
)
def test_label(value, kind, expected):
    assert label(value, kind) == expected


def test_only_declined_means_two_things():
    """A new value spelled like another kind's must not silently take its label."""
    clashes = {
        value
        for kind, values in labels.BY_KIND.items()
        for value, text in values.items()
        if labels.LABELS[value] != text
    }
    assert clashes == {"declined"}
