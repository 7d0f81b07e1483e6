"""An office round as data: its fields, its patient entries, and action items becoming tasks.

A round is built for speed: one inline row per patient (name, note, action items). Action
items are typed as free text separated by ``;`` or new lines; each becomes one task, due in
``DEFAULT_DUE_DAYS`` unless the item ends with a due phrase ("by 2026-12-01", "in 3 days",
"tomorrow", "today", "in 2 weeks").

The "next patient" row being typed is a ``RoundRow`` draft (``app.drafts``), kept encrypted
across auto-lock under ``row_key(round_id)``. ``summaries`` makes the list of past rounds.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from app.store import fold
from sync import schema
from sync.errors import FieldError, InvalidRecord

DEFAULT_DUE_DAYS = 7
_DATE = re.compile(r"\s*[,(-]?\s*(?:by|due)\s+(\d{4}-\d{2}-\d{2})\)?\s*$", re.IGNORECASE)
_RELATIVE = re.compile(
    r"\s*[,(-]?\s*(?:due\s+)?in\s+(\d{1,3})\s+(day|days|week|weeks)\)?\s*$", re.IGNORECASE
)
_NAMED = re.compile(r"\s*[,(-]?\s*(?:due\s+|by\s+)?(today|tomorrow)\)?\s*$", re.IGNORECASE)


def split_list(text: str, separators: str = ",;\n") -> list[str]:
    """Items of a typed list ("Dr. Lee, RN Ortiz"), trimmed, empty ones and repeats dropped."""
    items = re.split("[" + re.escape(separators) + "]", text or "")
    out: list[str] = []
    for item in (i.strip() for i in items):
        if item and item.lower() not in (o.lower() for o in out):
            out.append(item[: schema.MAX_TEXT])
    return out


def split_action_items(text: str) -> list[str]:
    """Action items typed in one field, separated by ``;`` or new lines (commas stay)."""
    return split_list(text, ";\n")


def parse_action_item(
    text: str, today: dt.date, default_days: int = DEFAULT_DUE_DAYS
) -> tuple[str, dt.date]:
    """(title, due date) of one action item; a trailing due phrase sets the date."""
    title = text.strip()
    if m := _DATE.search(title):
        try:
            return title[: m.start()].strip() or title, dt.date.fromisoformat(m.group(1))
        except ValueError:
            pass  # not a real date: keep the words in the title, use the default
    elif m := _RELATIVE.search(title):
        n = int(m.group(1)) * (7 if m.group(2).lower().startswith("week") else 1)
        return title[: m.start()].strip() or title, today + dt.timedelta(days=n)
    elif m := _NAMED.search(title):
        n = 0 if m.group(1).lower() == "today" else 1
        return title[: m.start()].strip() or title, today + dt.timedelta(days=n)
    return title, today + dt.timedelta(days=default_days)


def round_fields(
    date: dt.date | str,
    site_id: str | None = None,
    attendees: Iterable[str] = (),
    education_topics: Iterable[str] = (),
    notes: str = "",
    team_id: str | None = None,
) -> dict[str, Any]:
    """Fields of a round record; raises InvalidRecord naming a bad field."""
    fields: dict[str, Any] = {
        "date": date.isoformat() if isinstance(date, dt.date) else date,
        "attendees": list(attendees),
        "education_topics": list(education_topics),
    }
    if team_id:
        fields["team_id"] = team_id
    if site_id:
        fields["site_id"] = site_id
    if notes.strip():
        fields["notes"] = notes.strip()
    return _valid("round", fields)


def entry_fields(
    round_id: str, patient_id: str, note: str = "", action_items: Iterable[str] = ()
) -> dict[str, Any]:
    """Fields of one round entry (a patient discussed); raises InvalidRecord when invalid."""
    fields = {
        "round_id": round_id,
        "patient_id": patient_id,
        "note": note.strip(),
        "action_items": [a.strip() for a in action_items if a.strip()],
    }
    return _valid("round_entry", fields)


def tasks_for_entry(
    entry: Mapping[str, Any],
    today: dt.date,
    existing: Sequence[Mapping[str, Any]] = (),
    default_days: int = DEFAULT_DUE_DAYS,
) -> list[dict[str, Any]]:
    """Task fields for an entry record's action items: one per item, none already made.

    ``existing`` holds task records; one whose ``source_id`` is this entry and whose title
    matches an item means that item already has its task (saving an entry twice is harmless).
    """
    made = {
        str(t["fields"].get("title", "")).lower()
        for t in existing
        if t["fields"].get("source_id") == entry["id"] and not t.get("deleted")
    }
    out = []
    for item in entry["fields"].get("action_items") or ():
        title, due = parse_action_item(item, today, default_days)
        if title.lower() in made:
            continue
        made.add(title.lower())
        out.append(
            _valid(
                "task",
                {
                    "patient_id": entry["fields"]["patient_id"],
                    "title": title,
                    "due_date": due.isoformat(),
                    "done": False,
                    "source_id": entry["id"],
                },
            )
        )
    return out


def round_title(fields: Mapping[str, Any], site_name: str | None = None) -> str:
    """A one-line name for a round, e.g. "Round 2026-11-23 · Riverside Clinic"."""
    title = f"Round {fields.get('date', '')}"
    return f"{title} · {site_name}" if site_name else title


def _valid(type_name: str, fields: dict[str, Any]) -> dict[str, Any]:
    errors = schema.validate(type_name, fields)
    if errors:
        raise InvalidRecord(errors)
    return fields


def new_patient_fields(name: str) -> dict[str, Any]:
    """Fields of a patient added from a round by name only (two taps: type, add)."""
    clean = " ".join(name.split())
    if not clean:
        raise InvalidRecord([FieldError("name", "type the patient's name")])
    return _valid("patient", {"name": clean, "status": "active"})


@dataclass
class RoundRow:
    """The "next patient" row of a round as typed so far (a draft, see ``app.drafts``).

    ``round_id`` is the round it is typed into: a new round (``/round``) gets one at its
    first save, so after a lock ``/round`` goes on with that round, not a blank one.
    """

    round_id: str | None = None
    name: str = ""
    patient_id: str | None = None
    note: str = ""
    actions: str = ""

    def typed(self) -> bool:
        """True when something was typed that Add patient has not saved yet."""
        return any(str(v or "").strip() for v in (self.name, self.note, self.actions))

    def clear(self) -> None:
        """Empty the row (added or discarded), still in the same round."""
        self.name, self.patient_id, self.note, self.actions = "", None, "", ""


def row_key(round_id: str | None) -> str:
    """The draft key of the next-patient row on a round's screen (``None``: ``/round``)."""
    return f"round:{round_id or 'new'}:next"


def patients(n: int) -> str:
    """ "1 patient", "3 patients"."""
    return f"{n} patient{'s' * (n != 1)}"


def same_name(typed: str, candidates: Iterable[Mapping[str, Any]]) -> list[Mapping[str, Any]]:
    """The patient records named exactly ``typed`` (any case, spacing or accents)."""
    want = fold(" ".join(typed.split()))
    return [
        p
        for p in candidates
        if want and fold(" ".join(str(p["fields"].get("name", "")).split())) == want
    ]


def who(fields: Mapping[str, Any], today: dt.date) -> str:
    """A patient told apart from a namesake: "Ada Demo (78 · 555 0100)" when age or phone
    is known, else just the name."""
    facts = []
    born = _iso_date(fields.get("birth_date"))
    if born is not None:
        facts.append(
            str(today.year - born.year - ((today.month, today.day) < (born.month, born.day)))
        )
    if fields.get("phone"):
        facts.append(str(fields["phone"]))
    name = str(fields.get("name", ""))
    return f"{name} ({' · '.join(facts)})" if facts else name


@dataclass(frozen=True)
class RoundSummary:
    """One row of the past rounds list."""

    id: str
    date: str
    site: str
    patients: int


def summaries(
    rounds: Iterable[Mapping[str, Any]],
    entries: Iterable[Mapping[str, Any]],
    site_names: Mapping[str, str],
) -> list[RoundSummary]:
    """Past rounds, newest first (by date, then by when they were started), each with its
    site's name and how many patients were discussed."""
    counts: dict[str, int] = {}
    for e in entries:
        if not e.get("deleted"):
            rid = str(e["fields"].get("round_id"))
            counts[rid] = counts.get(rid, 0) + 1
    live = [r for r in rounds if not r.get("deleted")]
    live.sort(key=lambda r: (str(r["fields"].get("date", "")), _started(r)), reverse=True)
    return [
        RoundSummary(
            id=r["id"],
            date=str(r["fields"].get("date", "")),
            site=site_names.get(str(r["fields"].get("site_id") or ""), ""),
            patients=counts.get(r["id"], 0),
        )
        for r in live
    ]


def _started(record: Mapping[str, Any]) -> str:
    """The record's first change stamp (HLC stamps sort by time)."""
    return min((str(v) for v in (record.get("clock") or {}).values()), default="")


def _iso_date(value: Any) -> dt.date | None:
    try:
        return dt.date.fromisoformat(str(value)) if value else None
    except ValueError:
        return None
