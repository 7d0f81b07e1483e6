"""Next steps proposed by a visit's triage decision, as plain data the liaison confirms.

Each proposal is a record type plus fields (a referral or a task); the assessment screen
shows them after the triage choice and turns one into a record with one tap.

- ``information_referral``: referrals to directory resources covering the needs, preferring
  a resource that covers several needs (fewer hand-offs for the patient); a need no resource
  covers becomes a "find a resource" task.
- ``short_term_contact``: the same referrals plus follow-up calls at 2, 7 and 30 days
  (``FOLLOW_UPS`` says why each).
- ``intensive_case_management``: one referral to the case-management program carrying a
  hand-off summary built from the visit, and a call to confirm it was accepted.

Whatever the triage, a positive PHQ-2 or STEADI screen proposes telling the physician office,
since both instruments are meant to lead to a clinician's fuller assessment.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from app import assessment
from app.labels import NEEDS as NEED_LABELS  # noqa: F401  # views still read it here
from app.labels import label

CASE_MANAGEMENT = "Intensive community case management"
URGENCY_DAYS = {"urgent": 1, "soon": 7, "routine": 14}
# (days, title, why). 2 days: most failed referrals fail at the first contact, and a quick
# call catches that while the visit is fresh. 7 days: by then the service has usually
# answered, so progress can be checked and a declined referral replaced. 30 days: the end of
# a short-term episode: close the case or step up to case management.
FOLLOW_UPS = (
    (2, "Call: did the first contact with the services happen?", "catch a failed start early"),
    (7, "Call: check progress on the needs", "services have usually answered by now"),
    (30, "Review: close, or step up to case management", "end of a short-term episode"),
)


@dataclass(frozen=True)
class Proposal:
    """One proposed record: its type, its fields, a one-line label and why it is proposed."""

    type: str
    fields: dict[str, Any] = field(default_factory=dict)
    label: str = ""
    reason: str = ""


def _due(today: dt.date, days: int) -> str:
    return (today + dt.timedelta(days=days)).isoformat()


def _names(needs: Sequence[str]) -> str:
    return ", ".join(label(n, "need").lower() for n in needs)


def match_resources(
    needs: Sequence[str], resources: Sequence[Mapping[str, Any]]
) -> list[Mapping[str, Any]]:
    """Resources overlapping ``needs``: widest overlap, then most specialised, then by name."""
    wanted = set(needs)
    scored = []
    for res in resources:
        if res.get("deleted"):
            continue
        categories = set(res["fields"].get("categories") or ())
        if overlap := len(wanted & categories):
            key = (-overlap, len(categories), str(res["fields"].get("name", "")).lower())
            scored.append((key, res))
    return [res for _, res in sorted(scored, key=lambda pair: pair[0])]


def _cover(
    needs: Sequence[str], resources: Sequence[Mapping[str, Any]]
) -> tuple[list[tuple[Mapping[str, Any], list[str]]], list[str]]:
    """Greedy cover: (resource, needs it takes) pairs, and the needs nothing covers."""
    left = list(needs)
    chosen: list[tuple[Mapping[str, Any], list[str]]] = []
    uncovered: list[str] = []
    while left:
        need = left[0]
        options = match_resources(
            left, [r for r in resources if need in (r["fields"].get("categories") or ())]
        )
        if not options:
            uncovered.append(left.pop(0))
            continue
        res = options[0]
        took = [n for n in left if n in (res["fields"].get("categories") or ())]
        chosen.append((res, took))
        left = [n for n in left if n not in took]
    return chosen, uncovered


def _referrals(
    visit: Mapping[str, Any],
    needs: Sequence[str],
    urgent: Sequence[str],
    resources: Sequence[Mapping[str, Any]],
    today: dt.date,
) -> list[Proposal]:
    fields = visit["fields"]
    chosen, uncovered = _cover(needs, resources)
    out = []
    for res, took in chosen:
        urgency = "urgent" if set(took) & set(urgent) else "routine"
        name = str(res["fields"].get("name", ""))
        out.append(
            Proposal(
                "referral",
                {
                    "patient_id": fields["patient_id"],
                    "visit_id": visit["id"],
                    "resource_id": res["id"],
                    "to_name": name,
                    "need": took[0],
                    "urgency": urgency,
                    "status": "draft",
                    "due_date": _due(today, URGENCY_DAYS[urgency]),
                    "notes": f"Needs: {_names(took)}",
                },
                f"Refer to {name} ({_names(took)})",
                f"directory resource for {_names(took)}",
            )
        )
    for need in uncovered:
        out.append(
            _task(
                visit,
                f"Find a resource for {_names([need])}",
                today,
                2,
                "no resource in the directory covers this need",
            )
        )
    return out


def _task(visit: Mapping[str, Any], title: str, today: dt.date, days: int, why: str) -> Proposal:
    fields = {
        "patient_id": visit["fields"]["patient_id"],
        "title": title,
        "due_date": _due(today, days),
        "done": False,
        "source_id": visit["id"],
    }
    return Proposal("task", fields, title, why)


def handoff_summary(visit: Mapping[str, Any], patient_name: str | None = None) -> str:
    """A plain-text hand-off for the receiving service, built from the visit (≤ 2000 chars)."""
    fields = visit["fields"]
    result = assessment.score(fields.get("screening"))
    lines = ["Hand-off from the care liaison."]
    if patient_name:
        lines.append(f"Patient: {patient_name}")
    when = str(fields.get("started_at", ""))[:10]
    lines.append(
        f"Visit: {fields.get('setting', '?')} on {when}, "
        f"requested by {str(fields.get('source', 'unknown')).replace('_', ' ')}"
    )
    needs = assessment.effective_needs(fields)
    lines.append(f"Needs: {_names(needs) or 'none recorded'}")
    if result.urgent_domains:
        lines.append(f"Urgent: {_names(result.urgent_domains)}")
    screen = []
    if result.phq2 is not None:
        screen.append(f"PHQ-2 {result.phq2} ({result.phq2_positive})")
    if result.safety is not None:
        screen.append(f"safety {result.safety} ({result.safety_positive})")
    if result.steadi_at_risk is not None:
        screen.append(f"falls risk {result.steadi_at_risk}")
    if screen:
        lines.append("Screening: " + "; ".join(screen))
    if fields.get("summary"):
        lines.append(f"Summary: {fields['summary']}")
    text = "\n".join(lines)
    return text if len(text) <= 2000 else text[:1999] + "…"


def _case_management(
    visit: Mapping[str, Any],
    needs: Sequence[str],
    urgent: Sequence[str],
    resources: Sequence[Mapping[str, Any]],
    today: dt.date,
    patient_name: str | None,
) -> list[Proposal]:
    program = next(
        (
            r
            for r in resources
            if not r.get("deleted")
            and "case management" in str(r["fields"].get("name", "")).lower()
        ),
        None,
    )
    urgency = "urgent" if urgent else "soon"
    fields: dict[str, Any] = {
        "patient_id": visit["fields"]["patient_id"],
        "visit_id": visit["id"],
        "urgency": urgency,
        "status": "draft",
        "due_date": _due(today, URGENCY_DAYS[urgency]),
        "notes": handoff_summary(visit, patient_name),
    }
    name = str(program["fields"]["name"]) if program else CASE_MANAGEMENT
    if program:
        fields["resource_id"] = program["id"]
    fields["to_name"] = name
    if needs:
        fields["need"] = needs[0]
    return [
        Proposal(
            "referral",
            fields,
            f"Refer to {name} with hand-off summary",
            "intensive case management chosen",
        ),
        _task(
            visit,
            "Call: did case management accept the hand-off?",
            today,
            2,
            "make sure the hand-off was not lost",
        ),
    ]


def _clinical(visit: Mapping[str, Any], today: dt.date) -> list[Proposal]:
    result = assessment.score(visit["fields"].get("screening"))
    out = []
    if result.phq2_positive == assessment.YES:
        out.append(
            _task(
                visit,
                f"Tell the physician office: PHQ-2 positive ({result.phq2}), "
                "needs a full depression check",
                today,
                2,
                "PHQ-2 is a first step; a clinician confirms (PHQ-9)",
            )
        )
    if result.steadi_at_risk == assessment.YES:
        out.append(
            _task(
                visit,
                "Tell the physician office: at risk of falls (STEADI)",
                today,
                2,
                "STEADI: at-risk patients get a clinician's falls assessment",
            )
        )
    return out


def propose(
    visit: Mapping[str, Any],
    resources: Sequence[Mapping[str, Any]],
    today: dt.date,
    patient_name: str | None = None,
) -> list[Proposal]:
    """Proposals for a visit record from its triage decision, the directory and today."""
    fields = visit["fields"]
    triage = fields.get("triage")
    needs = assessment.effective_needs(fields)
    urgent = assessment.score(fields.get("screening")).urgent_domains
    out: list[Proposal] = []
    if triage in ("information_referral", "short_term_contact"):
        out += _referrals(visit, needs, urgent, resources, today)
    if triage == "short_term_contact":
        out += [_task(visit, title, today, days, why) for days, title, why in FOLLOW_UPS]
    if triage == "intensive_case_management":
        out += _case_management(visit, needs, urgent, resources, today, patient_name)
    if triage:
        out += _clinical(visit, today)
    return out
