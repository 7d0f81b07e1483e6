"""Triage proposals: table-driven over the three decisions, the directory and the screen."""

import datetime as dt

import pytest

from app import triage as t
from sync import schema

PID = "6f1c1b1e-8a53-4c4e-9d8e-0d6f3d1f1a11"
VID = "0b6f3a5e-7c2d-4a8e-9f0b-1c2d3e4f5a6b"
TODAY = dt.date(2026, 11, 23)


def res(n, name, *categories, deleted=False):
    rid = f"00000000-0000-4000-8000-{n:012d}"
    return {
        "id": rid,
        "type": "resource",
        "deleted": deleted,
        "fields": {"name": name, "categories": list(categories)},
    }


FOOD_BANK = res(1, "Food bank", "food")
AID = res(2, "Community aid", "food", "utilities", "financial")
RIDES = res(3, "Volunteer rides", "transport")
GONE = res(4, "Closed pantry", "food", "utilities", "financial", "housing", deleted=True)
CM = res(5, "County Case Management Program")
DIRECTORY = [FOOD_BANK, AID, RIDES, GONE, CM]


def visit(triage, needs=(), screening=None, **extra):
    fields = {
        "patient_id": PID,
        "setting": "home",
        "started_at": "2026-11-23T10:00:00",
        "source": "physician_office",
        "needs": list(needs),
        "screening": screening or {},
        "triage": triage,
        **extra,
    }
    return {"id": VID, "type": "visit", "fields": fields}


def shape(proposals):
    return [
        (p.type, p.fields.get("to_name") or p.fields.get("title"), p.fields["due_date"])
        for p in proposals
    ]


def test_match_resources_prefers_wider_overlap_and_skips_deleted():
    got = t.match_resources(["food", "utilities"], DIRECTORY)
    assert [r["fields"]["name"] for r in got] == ["Community aid", "Food bank"]
    assert t.match_resources(["housing"], DIRECTORY) == []


@pytest.mark.parametrize(
    "needs,screening,expected",
    [
        ((), None, []),
        (("food",), None, [("referral", "Food bank", "2026-12-07")]),
        (("food", "utilities"), None, [("referral", "Community aid", "2026-12-07")]),
        (
            ("food", "transport"),
            None,
            [
                ("referral", "Food bank", "2026-12-07"),
                ("referral", "Volunteer rides", "2026-12-07"),
            ],
        ),
        # a need nobody covers becomes a task to find one
        (("housing",), None, [("task", "Find a resource for housing", "2026-11-25")]),
        # utilities already shut off: urgent, due tomorrow
        ((), {"utilities": "shut_off"}, [("referral", "Community aid", "2026-11-24")]),
    ],
)
def test_information_referral(needs, screening, expected):
    got = t.propose(visit("information_referral", needs, screening), DIRECTORY, TODAY)
    assert shape(got) == expected
    for p in got:
        assert schema.validate(p.type, p.fields) == [], p
        assert p.label and p.reason


def test_referral_fields():
    (p,) = t.propose(visit("information_referral", ["utilities", "food"]), DIRECTORY, TODAY)
    assert p.fields == {
        "patient_id": PID,
        "visit_id": VID,
        "resource_id": AID["id"],
        "to_name": "Community aid",
        "need": "food",
        "urgency": "routine",
        "status": "draft",
        "due_date": "2026-12-07",
        "notes": "Needs: food, utilities",
    }
    assert p.label == "Refer to Community aid (food, utilities)"


def test_short_term_contact_adds_follow_ups_at_2_7_30_days():
    got = t.propose(visit("short_term_contact", ["transport"]), DIRECTORY, TODAY)
    assert shape(got) == [
        ("referral", "Volunteer rides", "2026-12-07"),
        ("task", t.FOLLOW_UPS[0][1], "2026-11-25"),
        ("task", t.FOLLOW_UPS[1][1], "2026-11-30"),
        ("task", t.FOLLOW_UPS[2][1], "2026-12-23"),
    ]
    assert all(p.fields["source_id"] == VID for p in got if p.type == "task")
    assert all(schema.validate(p.type, p.fields) == [] for p in got)


@pytest.mark.parametrize(
    "directory,name,has_resource",
    [(DIRECTORY, "County Case Management Program", True), ([FOOD_BANK], t.CASE_MANAGEMENT, False)],
)
def test_intensive_case_management(directory, name, has_resource):
    v = visit(
        "intensive_case_management",
        ["housing"],
        {"phq2_interest": 1, "phq2_down": 1},
        summary="Lives alone, eviction notice.",
    )
    ref, call = t.propose(v, directory, TODAY, patient_name="Ada Demo")
    assert ref.type == "referral" and ref.fields["to_name"] == name
    assert ("resource_id" in ref.fields) == has_resource
    assert ref.fields["need"] == "housing" and ref.fields["urgency"] == "soon"
    notes = ref.fields["notes"]
    for part in (
        "Ada Demo",
        "Needs: housing",
        "PHQ-2 2 (no)",
        "eviction notice",
        "requested by physician office",
    ):
        assert part in notes
    assert call.type == "task" and call.fields["due_date"] == "2026-11-25"
    assert schema.validate("referral", ref.fields) == []


def test_case_management_is_urgent_when_the_screen_says_so():
    v = visit("intensive_case_management", (), {"living_situation": "unstable"})
    ref = t.propose(v, [], TODAY)[0]
    assert ref.fields["urgency"] == "urgent" and ref.fields["due_date"] == "2026-11-24"
    assert "Urgent: housing" in ref.fields["notes"]


def test_handoff_summary_is_bounded():
    v = visit("intensive_case_management", summary="x" * 4000)
    assert len(t.handoff_summary(v)) == 2000


@pytest.mark.parametrize(
    "screening,titles",
    [
        ({}, []),
        (
            {"phq2_interest": 3},
            ["Tell the physician office: PHQ-2 positive (3), needs a full depression check"],
        ),
        ({"steadi_worried": "yes"}, ["Tell the physician office: at risk of falls (STEADI)"]),
    ],
)
def test_clinical_flags_propose_telling_the_physician(screening, titles):
    got = t.propose(visit("intensive_case_management", (), screening), [], TODAY)[2:]
    assert [p.fields["title"] for p in got] == titles


def test_no_triage_no_proposals():
    assert t.propose(visit(None, ["food"], {"phq2_interest": 3}), DIRECTORY, TODAY) == []
