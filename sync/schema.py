"""Record types of DESIGN §3: fields, required fields, allowed values and limits.

One table drives both the server's validation and the app's forms. ``validate(type,
fields)`` returns field-named errors (an empty list means valid); ``partial=True`` checks
only the fields given, as a push mutation carries only changed fields.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from sync.errors import FieldError

NEED_DOMAINS = (
    "housing",
    "food",
    "transport",
    "utilities",
    "safety",
    "caregiver_support",
    "medication_management",
    "financial",
    "mental_health",
    "social_isolation",
)
SITE_KINDS = ("physician_office", "hospital", "home_care_agency", "community_org")
SETTINGS = ("office", "home", "phone")
SOURCES = ("physician_office", "hospital", "family", "self", "other")
TRIAGE = ("information_referral", "short_term_contact", "intensive_case_management")
VISIT_STATUS = ("draft", "final")
PATIENT_STATUS = ("active", "closed")
CONSENT_STATUS = ("unknown", "verbal", "written", "declined", "withdrawn")
REFERRAL_STATUS = ("draft", "sent", "accepted", "declined", "completed", "closed")
URGENCY = ("routine", "soon", "urgent")
TRANSITION_STATUS = ("planned", "handed_off", "acknowledged", "complete")
CHECKLIST_ITEMS = ("patient_teaching", "medicines_reconciled", "follow_up_appointment", "equipment")

SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
# 8-4-4-4-12 lower-case hex digits: ``str(uuid.UUID(...))``. Ids are compared as strings
# on phones and server, so an upper-case spelling of an id would make a second record.
_UUID_RE = re.compile(r"[0-9a-f]{8}(?:-[0-9a-f]{4}){3}-[0-9a-f]{12}")
MAX_TEXT = 200
MAX_LONG_TEXT = 4000


@dataclass(frozen=True)
class Field:
    """One field of a record type.

    kinds: text, enum, date (YYYY-MM-DD), datetime (ISO 8601), id (UUID), bool, int,
    list (of text, or of ``choices`` when given), objects (list of small dicts of text with
    keys ``keys``), flags (dict of ``choices`` -> bool), answers (dict of text -> text/int),
    attachments (list of {sha256, thumbnail, caption, content_type, width, height}).
    """

    name: str
    kind: str
    required: bool = False
    max_length: int = MAX_TEXT
    choices: tuple[str, ...] = ()
    max_items: int = 50
    keys: tuple[str, ...] = ()


@dataclass(frozen=True)
class RecordType:
    """A record type: its scope (org, team, patient) and its fields by name."""

    name: str
    scope: str
    fields: dict[str, Field] = field(default_factory=dict)

    @cached_property
    def required(self) -> tuple[str, ...]:
        """Names of the fields a complete record must have."""
        return tuple(f.name for f in self.fields.values() if f.required)


def _type(name: str, scope: str, *fields: Field) -> RecordType:
    return RecordType(name, scope, {f.name: f for f in fields})


_ATTACHMENTS = Field(
    "attachments",
    "attachments",
    keys=("sha256", "caption", "content_type", "width", "height", "thumbnail"),
    max_items=20,
)
ATTACHMENT_TYPES = ("image/jpeg", "image/png", "image/webp", "image/heic", "application/pdf")
MAX_PIXELS_SIDE = 100_000

TYPES: dict[str, RecordType] = {
    t.name: t
    for t in (
        _type(
            "site",
            "org",
            Field("name", "text", required=True),
            Field("kind", "enum", choices=SITE_KINDS),
            Field("address", "text", max_length=500),
            Field("phone", "text", max_length=40),
        ),
        _type(
            "resource",
            "org",
            Field("name", "text", required=True),
            Field("categories", "list", choices=NEED_DOMAINS, max_items=len(NEED_DOMAINS)),
            Field("phone", "text", max_length=40),
            Field("address", "text", max_length=500),
            Field("eligibility", "text", max_length=1000),
            Field("hours", "text"),
        ),
        _type(
            "patient",
            "team",
            Field("name", "text", required=True),
            Field("team_id", "text", max_length=64),
            Field("birth_date", "date"),
            Field("phone", "text", max_length=40),
            Field("address", "text", max_length=500),
            Field("language", "text", max_length=60),
            Field("site_id", "id"),
            Field("risk_flags", "list", max_items=20),
            Field("consent_status", "enum", choices=CONSENT_STATUS),
            Field("caregivers", "objects", keys=("name", "relation", "phone"), max_items=10),
            Field("status", "enum", choices=PATIENT_STATUS),
            _ATTACHMENTS,
        ),
        _type(
            "visit",
            "patient",
            Field("patient_id", "id", required=True),
            Field("setting", "enum", choices=SETTINGS),
            Field("started_at", "datetime"),
            Field("source", "enum", choices=SOURCES),
            Field("needs", "list", choices=NEED_DOMAINS, max_items=len(NEED_DOMAINS)),
            Field("screening", "answers", max_items=40),
            Field("scores", "answers", max_items=10),
            Field("summary", "text", max_length=MAX_LONG_TEXT),
            Field("triage", "enum", choices=TRIAGE),
            Field("consent_confirmed", "bool"),
            Field("status", "enum", choices=VISIT_STATUS),
            _ATTACHMENTS,
        ),
        _type(
            "addendum",
            "patient",
            Field("visit_id", "id", required=True),
            Field("patient_id", "id", required=True),
            Field("text", "text", required=True, max_length=MAX_LONG_TEXT),
            _ATTACHMENTS,
        ),
        _type(
            "round",
            "team",  # its notes name patients: the team's, like a patient (DESIGN §3)
            Field("team_id", "text", max_length=64),
            Field("site_id", "id"),
            Field("date", "date", required=True),
            Field("attendees", "list", max_items=30),
            Field("education_topics", "list", max_items=30),
            Field("notes", "text", max_length=MAX_LONG_TEXT),
        ),
        _type(
            "round_entry",
            "patient",
            Field("round_id", "id", required=True),
            Field("patient_id", "id", required=True),
            Field("note", "text", max_length=2000),
            Field("action_items", "list", max_items=20),
        ),
        _type(
            "referral",
            "patient",
            Field("patient_id", "id", required=True),
            Field("visit_id", "id"),
            Field("resource_id", "id"),
            Field("to_name", "text"),
            Field("need", "enum", choices=NEED_DOMAINS),
            Field("urgency", "enum", choices=URGENCY),
            Field("status", "enum", choices=REFERRAL_STATUS),
            Field("due_date", "date"),
            Field("outcome", "text", max_length=2000),
            Field("notes", "text", max_length=2000),
        ),
        _type(
            "task",
            "patient",
            Field("patient_id", "id", required=True),
            Field("title", "text", required=True),
            Field("due_date", "date"),
            Field("done", "bool"),
            Field("source_id", "id"),
        ),
        _type(
            "transition",
            "patient",
            Field("patient_id", "id", required=True),
            Field("from_site_id", "id"),
            Field("to_site_id", "id"),
            Field("discharge_date", "date"),
            Field("home_care_agency", "text"),
            Field("home_care_contact", "text"),
            Field("accountable", "text"),
            Field("checklist", "flags", choices=CHECKLIST_ITEMS),
            Field("status", "enum", choices=TRANSITION_STATUS),
            Field("notes", "text", max_length=2000),
            _ATTACHMENTS,
        ),
    )
}

FINALIZE_REQUIRED = ("patient_id", "setting", "started_at", "triage")


def is_uuid(value: object) -> bool:
    """True for a UUID string in canonical 8-4-4-4-12 form, lower case."""
    # A regex, not uuid.UUID: this runs several times per pushed mutation.
    return isinstance(value, str) and _UUID_RE.fullmatch(value) is not None


def patient_of(type_name: str, record_id: str, fields: Mapping[str, Any]) -> str | None:
    """The patient a record belongs to (its own id for a patient), or None for org records."""
    if type_name == "patient":
        return record_id
    value = fields.get("patient_id")
    return value if isinstance(value, str) else None


def validate(
    type_name: str, fields: Mapping[str, Any], *, partial: bool = False
) -> list[FieldError]:
    """Check ``fields`` against the type; return field-named errors (empty when valid)."""
    rtype = TYPES.get(type_name)
    if rtype is None:
        return [FieldError("type", f"unknown record type {str(type_name)[:40]!r}")]
    if not isinstance(fields, Mapping):
        return [FieldError("fields", "must be an object")]
    errors: list[FieldError] = []
    for name, value in fields.items():
        spec = rtype.fields.get(name)
        if spec is None:
            errors.append(FieldError(str(name)[:60], f"is not a field of {type_name}"))
            continue
        if value is None:
            if spec.required:
                errors.append(FieldError(name, "is required"))
            continue
        problem = _check(spec, value)
        if problem:
            errors.append(FieldError(name, problem))
    if not partial:
        reported = {e.field for e in errors}
        errors += [e for e in required_errors(type_name, fields) if e.field not in reported]
    return errors


def required_errors(type_name: str, fields: Mapping[str, Any]) -> list[FieldError]:
    """The required fields of the type that ``fields`` lacks (absent, null, "" or []).

    ``validate`` without ``partial`` includes these; alone, they complete a check of a
    record whose every field value already passed ``validate``.
    """
    rtype = TYPES.get(type_name)
    if rtype is None:
        return [FieldError("type", f"unknown record type {str(type_name)[:40]!r}")]
    return [
        FieldError(name, "is required")
        for name in rtype.required
        if fields.get(name) in (None, "", [])
    ]


def finalize_errors(fields: Mapping[str, Any]) -> list[FieldError]:
    """What a visit still lacks before it can be made final."""
    return [
        FieldError(n, "is required to finalize") for n in FINALIZE_REQUIRED if not fields.get(n)
    ]


def patient_delete_refusal(
    role: str, others: Iterable[tuple[str, Mapping[str, Any]]]
) -> tuple[str, str] | None:
    """Why a user of ``role`` may not delete a patient whose other live records are
    ``others`` ((type, fields) pairs): (error code, message), or None when they may.

    A patient added by mistake may go: a liaison's only while no other record names it; a
    supervisor's or an admin's together with its records, unless a visit is final (a
    clinical record that is never removed). Phone and server both ask this.
    """
    others = list(others)
    if any(t == "visit" and f.get("status") == "final" for t, f in others):
        return "has_final_visits", "a patient with a final visit cannot be deleted"
    if others and role not in ("supervisor", "admin"):
        return (
            "has_records",
            "only a supervisor can delete a patient who has visits, referrals, tasks or notes",
        )
    return None


def _check(spec: Field, value: Any) -> str | None:
    check = _CHECKS.get(spec.kind)
    if check is None:
        raise AssertionError(f"unknown field kind {spec.kind}")  # a bug in TYPES, not bad input
    return check(spec, value)


def _check_enum(spec: Field, value: Any) -> str | None:
    return None if value in spec.choices else f"must be one of {', '.join(spec.choices)}"


def _check_bool(spec: Field, value: Any) -> str | None:
    return None if isinstance(value, bool) else "must be true or false"


def _check_int(spec: Field, value: Any) -> str | None:
    ok = isinstance(value, int) and not isinstance(value, bool)
    return None if ok else "must be a whole number"


def _check_id(spec: Field, value: Any) -> str | None:
    return None if is_uuid(value) else "must be a lower-case UUID"


def _check_flags(spec: Field, value: Any) -> str | None:
    if not isinstance(value, dict):
        return "must be an object"
    for key, flag in value.items():
        if key not in spec.choices:
            return f"unknown item {str(key)[:40]!r}"
        if not isinstance(flag, bool):
            return f"{key} must be true or false"
    return None


def _check_answers(spec: Field, value: Any) -> str | None:
    if not isinstance(value, dict) or len(value) > spec.max_items:
        return f"must be an object of at most {spec.max_items} answers"
    for key, answer in value.items():
        if len(key) > 60:
            return "answer names are at most 60 characters"
        if isinstance(answer, bool) or not isinstance(answer, (str, int)):
            return f"{key[:40]} must be text or a number"
        if isinstance(answer, str) and len(answer) > MAX_TEXT:
            return f"{key[:40]} is longer than {MAX_TEXT} characters"
    return None


def _check_text(value: Any, max_length: int) -> str | None:
    if not isinstance(value, str):
        return "must be text"
    if len(value) > max_length:
        return f"is longer than {max_length} characters"
    return None


def _check_date(value: Any) -> str | None:
    if not isinstance(value, str) or len(value) != 10:
        return "must be a date YYYY-MM-DD"
    try:
        dt.date.fromisoformat(value)
    except ValueError:
        return "must be a date YYYY-MM-DD"
    return None


def _check_datetime(value: Any) -> str | None:
    if not isinstance(value, str) or not 10 <= len(value) <= 40:
        return "must be a date and time (ISO 8601)"
    try:
        dt.datetime.fromisoformat(value)
    except ValueError:
        return "must be a date and time (ISO 8601)"
    return None


def _check_list(spec: Field, value: Any) -> str | None:
    if not isinstance(value, list):
        return "must be a list"
    if len(value) > spec.max_items:
        return f"has more than {spec.max_items} items"
    for item in value:
        if spec.choices:
            if item not in spec.choices:
                return f"items must be among {', '.join(spec.choices)}"
        elif (problem := _check_text(item, MAX_TEXT)) is not None:
            return f"items {problem}"
    return None


def _check_attachments(spec: Field, value: Any) -> str | None:
    """Photo and document references: the blobs are addressed by hash, so a hash must be
    one (a record never refers to bytes nobody could upload)."""
    problem = _check_objects(spec, value)
    if problem:
        return problem
    seen: set[str] = set()
    for item in value:
        sha = item.get("sha256")
        if not isinstance(sha, str) or not SHA256_RE.match(sha):
            return "sha256 must be 64 lower-case hex digits"
        if sha in seen:
            return "lists the same sha256 twice"
        seen.add(sha)
        thumb = item.get("thumbnail")
        if thumb is not None and (not isinstance(thumb, str) or not SHA256_RE.match(thumb)):
            return "thumbnail must be 64 lower-case hex digits"
        kind = item.get("content_type")
        if kind is not None and kind not in ATTACHMENT_TYPES:
            return f"content_type must be one of {', '.join(ATTACHMENT_TYPES)}"
        for side in ("width", "height"):
            size = item.get(side)
            if size is not None and (not isinstance(size, int) or not 0 < size <= MAX_PIXELS_SIDE):
                return f"{side} must be a whole number of pixels"
        if item.get("caption") is not None and not isinstance(item["caption"], str):
            return "caption must be text"
    return None


def _check_objects(spec: Field, value: Any) -> str | None:
    if not isinstance(value, list):
        return "must be a list"
    if len(value) > spec.max_items:
        return f"has more than {spec.max_items} items"
    for item in value:
        if not isinstance(item, dict):
            return "items must be objects"
        for key, sub in item.items():
            if key not in spec.keys:
                return f"items may only have {', '.join(spec.keys)}"
            if isinstance(sub, bool) or not isinstance(sub, (str, int)) and sub is not None:
                return f"{key} must be text or a number"
            if isinstance(sub, str) and len(sub) > MAX_TEXT:
                return f"{key} is longer than {MAX_TEXT} characters"
    return None


_CHECKS: dict[str, Callable[[Field, Any], str | None]] = {
    "text": lambda spec, value: _check_text(value, spec.max_length),
    "enum": _check_enum,
    "bool": _check_bool,
    "int": _check_int,
    "id": _check_id,
    "date": lambda spec, value: _check_date(value),
    "datetime": lambda spec, value: _check_datetime(value),
    "list": _check_list,
    "objects": _check_objects,
    "attachments": _check_attachments,
    "flags": _check_flags,
    "answers": _check_answers,
}
