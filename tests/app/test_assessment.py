"""The social-needs screen: question data, table-driven scoring, finalize and addenda."""

import datetime as dt

import pytest

from app import assessment as a
from sync import schema
from sync.errors import InvalidRecord

PID = "6f1c1b1e-8a53-4c4e-9d8e-0d6f3d1f1a11"
VID = "0b6f3a5e-7c2d-4a8e-9f0b-1c2d3e4f5a6b"
SAFE_LOW = {"safety_hurt": 1, "safety_insult": 1, "safety_threaten": 1, "safety_scream": 1}


def test_questions_are_well_formed():
    assert len(a.QUESTIONS) == len(a.BY_ID) == 15
    assert len(a.QUESTIONS) <= schema.TYPES["visit"].fields["screening"].max_items
    for q in a.QUESTIONS:
        assert q.instrument in a.INSTRUMENTS
        assert q.domain is None or q.domain in schema.NEED_DOMAINS
        assert len(q.id) <= 60 and q.text.endswith("?")
        assert len({o.value for o in q.options}) == len(q.options) >= 2
        assert all(len(o.label) <= 24 for o in q.options), q.id  # fits a radio at 360 px
    counts = {i: sum(q.instrument == i for q in a.QUESTIONS) for i in a.INSTRUMENTS}
    assert counts == {"ahc": 6, "safety": 4, "phq2": 2, "steadi": 3}


@pytest.mark.parametrize(
    "answers,domains",
    [
        ({}, ()),
        ({"living_situation": "steady"}, ()),
        ({"living_situation": "worried"}, ("housing",)),
        ({"living_situation": "unstable"}, ("housing",)),
        ({"housing_problems": "yes"}, ("housing",)),
        ({"food_worry": "never", "food_ran_out": "never"}, ()),
        ({"food_worry": "sometimes", "food_ran_out": "never"}, ("food",)),
        ({"food_worry": "never", "food_ran_out": "often"}, ("food",)),
        ({"transport": "yes"}, ("transport",)),
        ({"transport": "no"}, ()),
        ({"utilities": "shut_off"}, ("utilities",)),
        ({"utilities": "yes", "food_worry": "often"}, ("food", "utilities")),
        ({"phq2_interest": 2, "phq2_down": 1}, ("mental_health",)),
        ({"phq2_interest": 1, "phq2_down": 1}, ()),
        ({**SAFE_LOW, "safety_hurt": 5, "safety_threaten": 5}, ("safety",)),  # 12 > 10
        ({"steadi_fallen": "yes"}, ()),  # falls risk is a flag, not a need domain
        ({"unknown_q": "yes", "transport": "maybe", "food_worry": True}, ()),
    ],
)
def test_positive_domains(answers, domains):
    assert a.score(answers).positive_domains == domains


@pytest.mark.parametrize(
    "answers,total,flag",
    [
        ({}, None, None),
        ({"phq2_interest": 0}, 0, "incomplete"),
        ({"phq2_interest": 3}, 3, "yes"),  # already at the threshold with one item
        ({"phq2_interest": 0, "phq2_down": 0}, 0, "no"),
        ({"phq2_interest": 1, "phq2_down": 1}, 2, "no"),
        ({"phq2_interest": 2, "phq2_down": 1}, 3, "yes"),
        ({"phq2_interest": 3, "phq2_down": 3}, 6, "yes"),
    ],
)
def test_phq2(answers, total, flag):
    result = a.score(answers)
    assert (result.phq2, result.phq2_positive) == (total, flag)


@pytest.mark.parametrize(
    "values,total,flag",
    [
        ((1, 1, 1, 1), 4, "no"),
        ((3, 3, 2, 2), 10, "no"),  # exactly 10 is negative: positive is > 10
        ((3, 3, 3, 2), 11, "yes"),
        ((5, 5, 5, 5), 20, "yes"),
        ((5, 5, 1, None), 11, "yes"),  # partial but already past the threshold
        ((2, 2, None, None), 4, "incomplete"),
        ((None, None, None, None), None, None),
    ],
)
def test_interpersonal_safety(values, total, flag):
    ids = ("safety_hurt", "safety_insult", "safety_threaten", "safety_scream")
    answers = {i: v for i, v in zip(ids, values, strict=True) if v is not None}
    result = a.score(answers)
    assert (result.safety, result.safety_positive) == (total, flag)
    assert ("safety" in result.urgent_domains) == (flag == "yes")


@pytest.mark.parametrize(
    "fallen,unsteady,worried,flag",
    [
        ("no", "no", "no", "no"),
        ("yes", "no", "no", "yes"),
        ("no", "yes", "no", "yes"),
        ("no", "no", "yes", "yes"),
        ("no", None, None, "incomplete"),
        (None, "yes", None, "yes"),
        (None, None, None, None),
    ],
)
def test_steadi(fallen, unsteady, worried, flag):
    given = {"steadi_fallen": fallen, "steadi_unsteady": unsteady, "steadi_worried": worried}
    assert a.score({k: v for k, v in given.items() if v}).steadi_at_risk == flag


@pytest.mark.parametrize(
    "answers,urgent",
    [
        ({"living_situation": "worried"}, ()),
        ({"living_situation": "unstable"}, ("housing",)),
        ({"utilities": "yes"}, ()),
        ({"utilities": "shut_off"}, ("utilities",)),
    ],
)
def test_urgent_domains(answers, urgent):
    assert a.score(answers).urgent_domains == urgent


def test_scores_dict_fits_the_schema():
    answers = {
        "living_situation": "unstable",
        "food_worry": "often",
        "phq2_interest": 3,
        "phq2_down": 2,
        **SAFE_LOW,
        "steadi_fallen": "yes",
    }
    scores = a.score(answers).scores()
    assert scores == {
        "phq2": 5,
        "phq2_positive": "yes",
        "safety": 4,
        "safety_positive": "no",
        "steadi_at_risk": "yes",
        "positive_domains": "housing,food,mental_health",
    }
    visit = {"patient_id": PID, "screening": answers, "scores": scores}
    assert schema.validate("visit", visit) == []
    assert a.score({}).scores() == {}


def test_effective_needs_adds_screen_positive_domains_in_order():
    fields = {"needs": ["social_isolation", "housing"], "screening": {"transport": "yes"}}
    assert a.effective_needs(fields) == ("housing", "transport", "social_isolation")


def test_apply_edit_recomputes_scores_and_drops_bad_answers():
    draft = a.new_visit_fields(PID, dt.datetime(2026, 11, 23, 10, 5, 7, 123))
    assert draft["started_at"] == "2026-11-23T10:05:07" and draft["status"] == "draft"
    out = a.apply_edit(draft, {"screening": {"phq2_interest": 3, "bogus": 1}, "setting": "home"})
    assert out["screening"] == {"phq2_interest": 3}
    assert out["scores"]["phq2_positive"] == "yes" and out["setting"] == "home"
    assert draft.get("setting") is None  # the input is not mutated


def test_a_final_visit_refuses_edits():
    with pytest.raises(InvalidRecord) as err:
        a.apply_edit({"status": "final"}, {"summary": "changed"})
    assert err.value.errors[0].field == "status"


@pytest.mark.parametrize(
    "fields,missing",
    [
        ({}, {"patient_id", "setting", "started_at", "triage", "consent_confirmed"}),
        (
            {
                "patient_id": PID,
                "setting": "home",
                "started_at": "2026-11-23T10:00:00",
                "triage": "short_term_contact",
            },
            {"consent_confirmed"},
        ),
        (
            {
                "patient_id": PID,
                "setting": "home",
                "started_at": "2026-11-23T10:00:00",
                "triage": "short_term_contact",
                "consent_confirmed": True,
            },
            set(),
        ),
        (
            {
                "patient_id": PID,
                "setting": "boat",
                "started_at": "2026-11-23T10:00:00",
                "triage": "short_term_contact",
                "consent_confirmed": True,
            },
            {"setting"},
        ),
        (
            {
                "patient_id": PID,
                "setting": "phone",
                "started_at": "2026-11-23T10:00:00",
                "consent_confirmed": True,
            },
            {"triage"},
        ),
    ],
)
def test_finalize_errors_name_the_fields(fields, missing):
    assert {e.field for e in a.finalize_errors(fields)} == missing


def test_finalize_sets_final_and_scores():
    fields = {
        "patient_id": PID,
        "setting": "office",
        "started_at": "2026-11-23T10:00:00",
        "triage": "information_referral",
        "consent_confirmed": True,
        "screening": {"transport": "yes"},
        "status": "draft",
    }
    final = a.finalize(fields)
    assert final["status"] == "final" and final["scores"] == {"positive_domains": "transport"}
    assert a.is_final(final) and not a.is_final(fields)
    with pytest.raises(InvalidRecord):
        a.finalize(final)
    with pytest.raises(InvalidRecord) as err:
        a.finalize({"patient_id": PID})
    texts = [a.error_text(e) for e in err.value.errors]
    assert "Triage decision is required to finalize" in texts
    assert "Consent must be confirmed to finalize" in texts


def test_addendum_fields():
    visit = {"id": VID, "fields": {"patient_id": PID, "status": "final"}}
    assert a.addendum_fields(visit, "  Lives alone.  ") == {
        "visit_id": VID,
        "patient_id": PID,
        "text": "Lives alone.",
    }
    with pytest.raises(InvalidRecord) as err:
        a.addendum_fields(visit, "   ")
    assert err.value.errors[0].field == "text"
    with pytest.raises(InvalidRecord):
        a.addendum_fields(visit, "x" * 4001)
