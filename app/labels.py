"""Every label the liaison reads for a schema value, in one place: ``label(value)``.

Values are the stored spellings (``short_term_contact``, ``handed_off``); labels are plain
words. ``BY_KIND`` groups them by what they name, and lists every value of the schema's
enumerations (tests/app/test_labels.py checks that none is missing). A value spelled the
same in two kinds has one label, except where ``kind`` says otherwise: a referral is
"Declined", but consent is "Consent declined".
"""

from __future__ import annotations

from collections.abc import Mapping

NEEDS = {
    "housing": "Housing",
    "food": "Food",
    "transport": "Transport",
    "utilities": "Utilities",
    "safety": "Safety",
    "caregiver_support": "Caregiver support",
    "medication_management": "Medication management",
    "financial": "Financial",
    "mental_health": "Mental health",
    "social_isolation": "Social isolation",
}
TRIAGE = {
    "information_referral": "Information & referral",
    "short_term_contact": "Short-term contact",
    "intensive_case_management": "Intensive case management",
}
SETTINGS = {"office": "Office", "home": "Home visit", "phone": "Phone call"}
SOURCES = {
    "physician_office": "Physician office",
    "hospital": "Hospital",
    "family": "Family",
    "self": "Patient (self)",
    "other": "Other",
}
SITE_KINDS = {
    "physician_office": "Physician office",
    "hospital": "Hospital",
    "home_care_agency": "Home care agency",
    "community_org": "Community organization",
}
CONSENT = {
    "unknown": "Consent not recorded",
    "verbal": "Verbal consent",
    "written": "Written consent",
    "declined": "Consent declined",
    "withdrawn": "Consent withdrawn",
}
REFERRAL_STATUS = {
    "draft": "Draft",
    "sent": "Sent",
    "accepted": "Accepted",
    "declined": "Declined",
    "completed": "Completed",
    "closed": "Closed",
}
TRANSITION_STATUS = {
    "planned": "Planned",
    "handed_off": "Handed off",
    "acknowledged": "Acknowledged",
    "complete": "Complete",
}
VISIT_STATUS = {"draft": "Draft", "final": "Final"}
PATIENT_STATUS = {"active": "Active", "closed": "Closed"}
URGENCY = {"routine": "Routine", "soon": "Soon", "urgent": "Urgent"}
ROLES = {"liaison": "Liaison", "supervisor": "Supervisor", "admin": "Administrator"}
CHECKLIST = {  # short: a checkbox's label does not wrap at 360 px
    "patient_teaching": "Patient taught",
    "medicines_reconciled": "Medicines reconciled",
    "follow_up_appointment": "Follow-up booked",
    "equipment": "Equipment at home",
}
RECORD_TYPES = {
    "patient": "Patient",
    "visit": "Visit",
    "addendum": "Addendum",
    "referral": "Referral",
    "task": "Task",
    "round": "Round",
    "round_entry": "Round note",
    "transition": "Transition",
    "site": "Site",
    "resource": "Resource",
}

BY_KIND: dict[str, Mapping[str, str]] = {
    "need": NEEDS,
    "triage": TRIAGE,
    "setting": SETTINGS,
    "source": SOURCES,
    "site_kind": SITE_KINDS,
    "referral_status": REFERRAL_STATUS,
    "transition_status": TRANSITION_STATUS,
    "visit_status": VISIT_STATUS,
    "patient_status": PATIENT_STATUS,
    "urgency": URGENCY,
    "role": ROLES,
    "checklist": CHECKLIST,
    "record_type": RECORD_TYPES,
    "consent": CONSENT,  # last: its "declined" is not the referral's
}


def _first_of_each() -> dict[str, str]:
    """Each value's label in the first kind that has it (so consent's "declined" is not)."""
    out: dict[str, str] = {}
    for kind in BY_KIND.values():
        for value, text in kind.items():
            out.setdefault(value, text)
    return out


LABELS = _first_of_each()


def label(value: str | None, kind: str | None = None) -> str:
    """A readable label for a schema value ("short_term_contact" -> "Short-term contact");
    ``kind`` (a key of ``BY_KIND``) picks its meaning where two kinds share a spelling."""
    if not value:
        return ""
    found = BY_KIND.get(kind or "", {}).get(value) or LABELS.get(value)
    return found or value.replace("_", " ").capitalize()
