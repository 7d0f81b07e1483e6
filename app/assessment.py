"""The rapid assessment: the social-needs screen as data, its scoring, and finalizing a visit.

The screen follows the public-domain CMS Accountable Health Communities Health-Related
Social Needs (AHC HRSN) core questions, plus PHQ-2 (depression) and the three CDC STEADI
key questions (falls). Question texts are plain-language paraphrases that keep each
instrument's meaning and answer scale, so the published scoring rules apply unchanged.
Triage proposals built from a scored visit live in ``app.triage``.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from sync import hlc, schema, visits
from sync.errors import FieldError, InvalidRecord

YES, NO, INCOMPLETE = "yes", "no", "incomplete"


@dataclass(frozen=True)
class Option:
    """One answer choice; ``positive`` marks a choice that screens the domain positive."""

    value: str | int
    label: str
    positive: bool = False


@dataclass(frozen=True)
class Question:
    """One screening question and the need domain its positive answer points to."""

    id: str
    instrument: str
    text: str
    options: tuple[Option, ...]
    domain: str | None


_YES_NO = (Option("yes", "Yes", positive=True), Option("no", "No"))
_OFTEN = (
    Option("often", "Often true", positive=True),
    Option("sometimes", "Sometimes true", positive=True),
    Option("never", "Never true"),
)
# HITS-style frequency scale of the AHC safety items: 1 (never) .. 5 (frequently).
_HOW_OFTEN = (
    Option(1, "Never"),
    Option(2, "Rarely"),
    Option(3, "Sometimes"),
    Option(4, "Fairly often"),
    Option(5, "Frequently"),
)
# PHQ-2 scale: 0 .. 3 over the past two weeks.
_PHQ = (
    Option(0, "Not at all"),
    Option(1, "Several days"),
    Option(2, "More than half the days"),
    Option(3, "Nearly every day"),
)


def _q(
    qid: str, instrument: str, text: str, options: tuple[Option, ...], domain: str | None
) -> Question:
    return Question(qid, instrument, text, options, domain)


QUESTIONS: tuple[Question, ...] = (
    _q(
        "living_situation",
        "ahc",
        "What is your living situation today: a steady place to live, a place today but "
        "worried about losing it, or no steady place (staying with others, in a shelter, a "
        "car or outside)?",
        (
            # Short labels: a radio's label does not wrap on a 360 px screen.
            Option("steady", "Steady place to live"),
            Option("worried", "Worried about losing it", positive=True),
            Option("unstable", "No steady place", positive=True),
        ),
        "housing",
    ),
    _q(
        "housing_problems",
        "ahc",
        "Is there a problem where you live, such as pests, mold, lead paint, no heat, a stove "
        "that does not work, no smoke detectors or water leaks?",
        _YES_NO,
        "housing",
    ),
    _q(
        "food_worry",
        "ahc",
        "In the last 12 months, did you worry that your food would run out before you had "
        "money to buy more?",
        _OFTEN,
        "food",
    ),
    _q(
        "food_ran_out",
        "ahc",
        "In the last 12 months, did the food you bought run out with no money to get more?",
        _OFTEN,
        "food",
    ),
    _q(
        "transport",
        "ahc",
        "In the last 12 months, has not having reliable transport kept you from medical "
        "appointments, work, or getting things you need every day?",
        _YES_NO,
        "transport",
    ),
    _q(
        "utilities",
        "ahc",
        "In the last 12 months, has the electric, gas, oil or water company threatened to "
        "shut off your service?",
        (
            Option("yes", "Yes", positive=True),
            Option("no", "No"),
            Option("shut_off", "Already shut off", positive=True),
        ),
        "utilities",
    ),
    _q(
        "safety_hurt",
        "safety",
        "How often does anyone, including family and friends, physically hurt you?",
        _HOW_OFTEN,
        "safety",
    ),
    _q(
        "safety_insult",
        "safety",
        "How often does anyone, including family and friends, insult you or talk down to you?",
        _HOW_OFTEN,
        "safety",
    ),
    _q(
        "safety_threaten",
        "safety",
        "How often does anyone, including family and friends, threaten to harm you?",
        _HOW_OFTEN,
        "safety",
    ),
    _q(
        "safety_scream",
        "safety",
        "How often does anyone, including family and friends, scream or curse at you?",
        _HOW_OFTEN,
        "safety",
    ),
    _q(
        "phq2_interest",
        "phq2",
        "In the last 2 weeks, how often have you had little interest or pleasure in doing things?",
        _PHQ,
        "mental_health",
    ),
    _q(
        "phq2_down",
        "phq2",
        "In the last 2 weeks, how often have you felt down, depressed or hopeless?",
        _PHQ,
        "mental_health",
    ),
    _q("steadi_fallen", "steadi", "Have you fallen in the past year?", _YES_NO, None),
    _q(
        "steadi_unsteady", "steadi", "Do you feel unsteady when standing or walking?", _YES_NO, None
    ),
    _q("steadi_worried", "steadi", "Do you worry about falling?", _YES_NO, None),
)
BY_ID = {q.id: q for q in QUESTIONS}
INSTRUMENTS = {
    "ahc": "Social needs (AHC)",
    "safety": "Interpersonal safety",
    "phq2": "Mood (PHQ-2)",
    "steadi": "Falls (STEADI)",
}
PHQ2_POSITIVE_AT = 3  # PHQ-2 total >= 3 suggests depression; a clinician follows up (PHQ-9).
SAFETY_POSITIVE_ABOVE = 10  # AHC interpersonal safety: total > 10 screens positive.


@dataclass(frozen=True)
class ScreenResult:
    """The scored screen: positive domains and each instrument's total and flag."""

    positive_domains: tuple[str, ...]
    urgent_domains: tuple[str, ...]
    phq2: int | None
    phq2_positive: str | None
    safety: int | None
    safety_positive: str | None
    steadi_at_risk: str | None

    def scores(self) -> dict[str, str | int]:
        """The visit's ``scores`` field: only instruments with at least one answer."""
        out: dict[str, str | int] = {}
        if self.phq2 is not None and self.phq2_positive is not None:
            out["phq2"] = self.phq2
            out["phq2_positive"] = self.phq2_positive
        if self.safety is not None and self.safety_positive is not None:
            out["safety"] = self.safety
            out["safety_positive"] = self.safety_positive
        if self.steadi_at_risk is not None:
            out["steadi_at_risk"] = self.steadi_at_risk
        if self.positive_domains:
            out["positive_domains"] = ",".join(self.positive_domains)
        return out


def clean_answers(answers: Mapping[str, Any] | None) -> dict[str, str | int]:
    """Keep only answers to known questions with one of their allowed values."""
    out: dict[str, str | int] = {}
    for qid, value in (answers or {}).items():
        question = BY_ID.get(qid)
        if question is None or isinstance(value, bool):
            continue
        if any(o.value == value for o in question.options):
            out[qid] = value
    return out


def _total(answers: Mapping[str, str | int], instrument: str) -> tuple[int | None, bool]:
    """Sum of an instrument's numeric answers (None when none answered), and completeness."""
    ids = [q.id for q in QUESTIONS if q.instrument == instrument]
    given = [int(answers[i]) for i in ids if i in answers]
    return (sum(given) if given else None), len(given) == len(ids)


def _flag(total: int | None, complete: bool, positive: bool) -> str | None:
    # A partial total already past the threshold is positive; negative needs every answer.
    if total is None:
        return None
    if positive:
        return YES
    return NO if complete else INCOMPLETE


def score(answers: Mapping[str, Any] | None) -> ScreenResult:
    """Score the screen: which domains are positive, PHQ-2, safety and STEADI flags."""
    given = clean_answers(answers)
    domains: set[str] = set()
    for qid, value in given.items():
        question = BY_ID[qid]
        chosen = next(o for o in question.options if o.value == value)
        if question.instrument == "ahc" and chosen.positive and question.domain:
            domains.add(question.domain)
    phq2, phq2_done = _total(given, "phq2")
    phq2_flag = _flag(phq2, phq2_done, phq2 is not None and phq2 >= PHQ2_POSITIVE_AT)
    safety, safety_done = _total(given, "safety")
    safety_flag = _flag(safety, safety_done, safety is not None and safety > SAFETY_POSITIVE_ABOVE)
    falls = [given.get(q.id) for q in QUESTIONS if q.instrument == "steadi"]
    answered = [a for a in falls if a is not None]
    steadi_flag = _flag(len(answered) or None, len(answered) == len(falls), YES in answered)
    if phq2_flag == YES:
        domains.add("mental_health")
    if safety_flag == YES:
        domains.add("safety")
    urgent: set[str] = set()
    if given.get("living_situation") == "unstable":
        urgent.add("housing")
    if given.get("utilities") == "shut_off":
        urgent.add("utilities")
    if safety_flag == YES:
        urgent.add("safety")
    return ScreenResult(
        positive_domains=ordered_domains(domains),
        urgent_domains=ordered_domains(urgent),
        phq2=phq2,
        phq2_positive=phq2_flag,
        safety=safety,
        safety_positive=safety_flag,
        steadi_at_risk=steadi_flag,
    )


def ordered_domains(domains: Any) -> tuple[str, ...]:
    """Known need domains from ``domains`` in the schema's order."""
    chosen = set(domains or ())
    return tuple(d for d in schema.NEED_DOMAINS if d in chosen)


def effective_needs(fields: Mapping[str, Any]) -> tuple[str, ...]:
    """The needs the liaison ticked plus every domain the screen found positive."""
    return ordered_domains(
        set(fields.get("needs") or ()) | set(score(fields.get("screening")).positive_domains)
    )


def new_visit_fields(patient_id: str, now: dt.datetime) -> dict[str, Any]:
    """Fields of a fresh draft visit for a patient, started now."""
    return {
        "patient_id": patient_id,
        "started_at": now.replace(microsecond=0).isoformat(),
        "status": "draft",
        "consent_confirmed": False,
    }


def is_final(fields: Mapping[str, Any]) -> bool:
    """True for a finalized (read-only) visit (the rule is ``sync.visits``)."""
    return visits.is_final("visit", fields)


def author_node(visit: Mapping[str, Any]) -> str | None:
    """The device (HLC node) that started a visit: the writer of its ``patient_id``."""
    stamp = (visit.get("clock") or {}).get("patient_id")
    return hlc.node_of(stamp) if isinstance(stamp, str) and hlc.is_valid(stamp) else None


def apply_edit(fields: Mapping[str, Any], changes: Mapping[str, Any]) -> dict[str, Any]:
    """The draft with ``changes`` applied and scores recomputed; a final visit refuses."""
    if is_final(fields):
        raise InvalidRecord(
            [FieldError("status", "a final visit cannot change; add an addendum instead")]
        )
    out = {**fields, **changes}
    if "screening" in changes:
        out["screening"] = clean_answers(changes["screening"])
        out["scores"] = score(out["screening"]).scores()
    return out


def finalize_errors(fields: Mapping[str, Any]) -> list[FieldError]:
    """What a visit still lacks to be finalized: core fields, confirmed consent, valid data."""
    errors = schema.finalize_errors(fields)
    if fields.get("consent_confirmed") is not True:
        errors.append(FieldError("consent_confirmed", "must be confirmed to finalize"))
    named = {e.field for e in errors}
    errors += [e for e in schema.validate("visit", fields) if e.field not in named]
    return errors


def finalize(fields: Mapping[str, Any]) -> dict[str, Any]:
    """The visit made final with fresh scores; raises InvalidRecord naming what is missing."""
    if is_final(fields):
        raise InvalidRecord([FieldError("status", "the visit is already final")])
    errors = finalize_errors(fields)
    if errors:
        raise InvalidRecord(errors)
    out = dict(fields)
    out["screening"] = clean_answers(fields.get("screening"))
    out["scores"] = score(out["screening"]).scores()
    out["status"] = "final"
    return out


def consent_after(visit: Mapping[str, Any], current: Any) -> str | None:
    """The patient's consent status once ``visit`` (its fields) is final: recorded when the
    liaison ticked "Patient consented" (verbal, unless written consent is already on file);
    None when it does not change."""
    if visit.get("consent_confirmed") is not True:
        return None
    status = "written" if current == "written" else "verbal"
    return None if status == current else status


def addendum_fields(visit: Mapping[str, Any], text: str) -> dict[str, Any]:
    """Fields of an addendum correcting ``visit`` (a record); raises InvalidRecord when empty."""
    body = text.strip()
    if not body:
        raise InvalidRecord([FieldError("text", "write the correction first")])
    fields = {"visit_id": visit["id"], "patient_id": visit["fields"]["patient_id"], "text": body}
    errors = schema.validate("addendum", fields)
    if errors:
        raise InvalidRecord(errors)
    return fields


FIELD_LABELS = {
    "patient_id": "Patient",
    "setting": "Setting",
    "started_at": "Start time",
    "source": "Source of request",
    "needs": "Needs",
    "screening": "Screening",
    "summary": "Summary",
    "triage": "Triage decision",
    "consent_confirmed": "Consent",
    "status": "Status",
}


def error_text(error: FieldError) -> str:
    """A field-named message for the screen, e.g. 'Triage decision is required to finalize'."""
    return f"{FIELD_LABELS.get(error.field, error.field)} {error.message}"
