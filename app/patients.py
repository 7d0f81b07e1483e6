"""Patients as a liaison keeps them: their details form, likely duplicates, and deleting
one added by mistake.

The details form's in-progress input is a ``Details`` draft (``app.drafts``), so what was
typed survives auto-lock. ``likely_duplicates`` is what "Add patient" warns about: the
same name, the same birth date with a similar name, or the same phone number. Who may
delete a patient is decided by ``sync.schema.patient_delete_refusal``, the rule the server
enforces too.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from difflib import SequenceMatcher
from typing import TYPE_CHECKING, Any

from app.errors import AppError, RecordNotFound
from app.store import fold
from sync.errors import FieldError, InvalidRecord
from sync.schema import patient_delete_refusal, validate

if TYPE_CHECKING:
    from app.state import AppState

Record = dict[str, Any]

TEXT_FIELDS = ("name", "birth_date", "phone", "address", "language")
CAREGIVER_KEYS = ("name", "relation", "phone")
MIN_PHONE_DIGITS = 7  # fewer digits match too many numbers to mean the same person


@dataclass
class Details:
    """The edit form of a patient's details, as typed (a draft until saved)."""

    name: str = ""
    birth_date: str = ""
    phone: str = ""
    address: str = ""
    language: str = ""
    consent_status: str = "unknown"
    caregivers: list[dict[str, str]] = field(default_factory=list)


def details_of(record: Mapping[str, Any]) -> Details:
    """The form's starting values: the patient's saved details."""
    f = record["fields"]
    return Details(
        **{name: str(f.get(name) or "") for name in TEXT_FIELDS},
        consent_status=str(f.get("consent_status") or "unknown"),
        caregivers=[
            {k: str(c.get(k) or "") for k in CAREGIVER_KEYS}
            for c in f.get("caregivers") or []
            if isinstance(c, dict)
        ],
    )


def draft_key(patient_id: str) -> str:
    """The drafts key of a patient's details form (it names the patient: purged with it)."""
    return f"patient:{patient_id}:details"


def _fields(details: Details, today: dt.date) -> dict[str, Any]:
    """The patient fields to save; a cleared field is saved as cleared (None)."""
    out: dict[str, Any] = {
        name: " ".join(str(getattr(details, name)).split()) or None
        for name in TEXT_FIELDS
        if name != "address"
    }
    out["address"] = details.address.strip() or None
    out["consent_status"] = details.consent_status or "unknown"
    out["caregivers"] = [
        {k: v for k, v in ((k, " ".join(c.get(k, "").split())) for k in CAREGIVER_KEYS) if v}
        for c in details.caregivers
        if any(str(c.get(k) or "").strip() for k in CAREGIVER_KEYS)
    ]
    errors = []
    if not out["name"]:
        errors.append(FieldError("name", "is required"))
    born = out["birth_date"]
    if born and len(born) == 10 and born[4] == "-" and born > today.isoformat():
        errors.append(FieldError("birth_date", "is in the future"))
    if any(not c.get("name") for c in out["caregivers"]):
        errors.append(FieldError("caregivers", "each needs a name"))
    named = {e.field for e in errors}
    errors += [e for e in validate("patient", out, partial=True) if e.field not in named]
    if errors:
        raise InvalidRecord(errors)
    return out


def save_details(store: Any, patient_id: str, details: Details, today: dt.date) -> Record:
    """Save the form onto the patient; raises InvalidRecord naming each bad field."""
    record = store.get(patient_id)
    if record is None or record["type"] != "patient":
        raise RecordNotFound("the patient is not on this phone")
    saved: Record = store.put("patient", _fields(details, today), record_id=patient_id)
    return saved


# -- likely duplicates ----------------------------------------------------------------


@dataclass(frozen=True)
class Duplicate:
    """An existing patient who may be the one being added, and why."""

    id: str
    name: str
    reason: str  # plain words: "Same name", "Same birth date", "Same phone"
    detail: str  # what tells them apart: birth date, phone


def digits(phone: str) -> str:
    """Only the digits of a phone number ("+1 (555) 0100" -> "15550100")."""
    return "".join(c for c in phone if c.isdigit())


def _name(text: str) -> str:
    return " ".join(fold(text).split())


def similar_names(a: str, b: str) -> bool:
    """True when two names look like the same person's: a word in common (a first name or a
    surname) or close spellings ("Jon Smyth", "John Smith")."""
    x, y = _name(a), _name(b)
    if not x or not y:
        return False
    if {w for w in x.split() if len(w) > 1} & {w for w in y.split() if len(w) > 1}:
        return True
    return SequenceMatcher(None, x, y).ratio() >= 0.75


def same_phone(a: str, b: str) -> bool:
    """True for the same number written differently, with or without a country code."""
    x, y = digits(a), digits(b)
    short, long = sorted((x, y), key=len)
    return len(short) >= MIN_PHONE_DIGITS and long.endswith(short)


def _reason(fields: Mapping[str, Any], name: str, birth_date: str, phone: str) -> str | None:
    theirs = str(fields.get("name") or "")
    if _name(name) and _name(theirs) == _name(name):
        return "Same name"
    if birth_date and fields.get("birth_date") == birth_date and similar_names(name, theirs):
        return "Same birth date, similar name"
    if phone and same_phone(phone, str(fields.get("phone") or "")):
        return "Same phone number"
    return None


def likely_duplicates(
    patients: list[Record], name: str, birth_date: str = "", phone: str = ""
) -> list[Duplicate]:
    """The patients among ``patients`` who are likely the person being added, by name."""
    birth_date = birth_date.strip()
    found = []
    for p in patients:
        f = p["fields"]
        reason = _reason(f, name, birth_date, phone)
        if reason is None:
            continue
        facts = [
            f"Born {f['birth_date']}" if f.get("birth_date") else "",
            str(f.get("phone") or ""),
        ]
        found.append(
            Duplicate(p["id"], str(f.get("name") or ""), reason, " · ".join(filter(None, facts)))
        )
    return sorted(found, key=lambda d: (_name(d.name), d.id))


# -- deleting a patient added by mistake ----------------------------------------------


def role_of(store: Any) -> str:
    """The signed-in user's role ("liaison" when unknown: the least one)."""
    return str((store.get_meta("user") or {}).get("role") or "liaison")


def _others(store: Any, patient_id: str) -> list[Record]:
    """The patient's other live records (visits, tasks, round notes, ...)."""
    return [r for r in store.list(patient_id=patient_id) if r["id"] != patient_id]


REFUSALS = {  # the server's codes, in plain words
    "has_final_visits": "This patient has a finished visit, so their record is kept.",
    "has_records": "Added by mistake? Only a supervisor can delete a patient who has visits, "
    "referrals, tasks or notes.",
}


def delete_refusal(store: Any, patient_id: str) -> tuple[str, str] | None:
    """Why this user may not delete the patient: (code, plain words); None when they may."""
    others = _others(store, patient_id)
    refusal = patient_delete_refusal(role_of(store), [(r["type"], r["fields"]) for r in others])
    if refusal is None:
        return None
    code = refusal[0]
    return code, REFUSALS.get(code, refusal[1])


def delete(app: AppState, patient_id: str) -> None:
    """Delete the patient with its other records (their deletes first, as the server
    expects) and forget any draft naming them; raises AppError when not allowed."""
    store = app.require_store()
    if store.get(patient_id) is None:
        raise RecordNotFound("the patient is not on this phone")
    problem = delete_refusal(store, patient_id)
    if problem is not None:
        raise AppError(problem[1])
    for record in _others(store, patient_id):
        store.delete(record["id"])
    store.delete(patient_id)
    app.drafts.forget_patients([patient_id])
