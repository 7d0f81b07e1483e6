"""Table tests of the referral and transition state machines (pure functions)."""

import datetime as dt

import pytest

from app import referral_flow, transition_flow
from sync.schema import CHECKLIST_ITEMS, REFERRAL_STATUS, TRANSITION_STATUS

TODAY = dt.date(2026, 12, 7)


@pytest.mark.parametrize(
    "fields,status,errors",
    [
        ({}, "sent", ["to_name"]),
        ({"to_name": "Meals"}, "sent", []),
        ({"resource_id": "r"}, "sent", []),
        ({}, "closed", ["outcome"]),
        ({"status": "sent"}, "accepted", []),
        ({"status": "sent"}, "declined", []),
        ({"status": "sent"}, "completed", ["status"]),
        ({"status": "accepted"}, "completed", ["outcome"]),
        ({"status": "accepted", "outcome": "  "}, "completed", ["outcome"]),
        ({"status": "accepted", "outcome": "Meals start Monday"}, "completed", []),
        ({"status": "declined"}, "closed", ["outcome"]),
        ({"status": "completed", "outcome": "x"}, "closed", []),
        ({"status": "closed", "outcome": "x"}, "sent", ["status"]),
        ({"status": "draft"}, "draft", ["status"]),
    ],
)
def test_referral_steps(fields, status, errors):
    assert [e.field for e in referral_flow.referral_step_errors(fields, status)] == errors


def test_every_referral_status_has_its_next_steps():
    assert set(referral_flow.REFERRAL_NEXT) == set(REFERRAL_STATUS)
    assert set(referral_flow.OPEN) < set(REFERRAL_STATUS)
    assert all(not referral_flow.REFERRAL_NEXT[s] for s in REFERRAL_STATUS if s == "closed")


@pytest.mark.parametrize(
    "urgency,due",
    [
        ("urgent", "2026-12-08"),
        ("soon", "2026-12-14"),
        ("routine", "2026-12-21"),
        ("?", "2026-12-21"),
    ],
)
def test_default_due(urgency, due):
    assert referral_flow.default_due(urgency, TODAY) == due


@pytest.mark.parametrize(
    "due,overdue",
    [
        ("2026-12-06", True),
        ("2026-12-06T23:59:00", True),
        ("2026-12-07", False),
        ("2026-12-08", False),
        (None, False),
        (20261206, False),
    ],
)
def test_is_overdue(due, overdue):
    assert referral_flow.is_overdue(due, TODAY) is overdue


FULL = {
    "discharge_date": "2026-11-24",
    "home_care_agency": "Home Care Co",
    "accountable": "RN Ortiz",
}
ALL_TICKED = {"checklist": dict.fromkeys(CHECKLIST_ITEMS, True)}


@pytest.mark.parametrize(
    "fields,status,errors",
    [
        ({}, "handed_off", ["discharge_date", "home_care_agency", "accountable"]),
        (FULL, "handed_off", []),
        ({**FULL, "accountable": "  "}, "handed_off", ["accountable"]),
        (
            {"discharge_date": "2026-11-24", "to_site_id": "x", "accountable": "me"},
            "handed_off",
            [],
        ),
        ({}, "complete", ["status"]),
        ({"status": "planned"}, "acknowledged", ["status"]),
        ({"status": "handed_off"}, "acknowledged", []),
        ({"status": "acknowledged", "checklist": {"equipment": True}}, "complete", ["checklist"]),
        ({"status": "acknowledged", **ALL_TICKED}, "complete", []),
        ({"status": "complete", **ALL_TICKED}, "planned", ["status"]),
    ],
)
def test_transition_steps(fields, status, errors):
    assert [e.field for e in transition_flow.transition_step_errors(fields, status)] == errors


def test_every_transition_status_has_its_next_steps():
    assert set(transition_flow.TRANSITION_NEXT) == set(TRANSITION_STATUS)
    assert transition_flow.TRANSITION_NEXT["complete"] == ()
