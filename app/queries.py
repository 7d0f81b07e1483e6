"""Read models for the screens: Today, the caseload list and a patient's page.

Plain functions from an open store (anything with ``list``, ``get`` and
``search_patients``) and today's date to small dataclasses the views render; no Flet here
and no writes. Deleted records are skipped everywhere.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from app.labels import label
from app.referral_flow import OPEN as OPEN_REFERRALS

FILTERS = ("all", "follow_up", "open_referrals", "recent")
FILTER_LABELS = {
    "all": "All",
    "follow_up": "Needs follow-up",
    "open_referrals": "Open referrals",
    "recent": "Recently seen",
}
RECENT_DAYS = 14

Record = Mapping[str, Any]


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """ "1 attendee", "2 attendees": a count with its noun in the right number."""
    return f"{count} {noun if count == 1 else nouns or noun + 's'}"


def _live(records: Iterable[Record]) -> list[Record]:
    return [r for r in records if not r.get("deleted")]


def _f(record: Record) -> Mapping[str, Any]:
    return record.get("fields") or {}


def _date(value: Any) -> dt.date | None:
    if not isinstance(value, str) or len(value) < 10:
        return None
    try:
        return dt.date.fromisoformat(value[:10])
    except ValueError:
        return None


def _created(record: Record) -> str:
    """An ISO date-time for ordering: the record's own time, else its oldest field clock."""
    fields = _f(record)
    for name in ("started_at", "date", "discharge_date", "due_date"):
        if isinstance(fields.get(name), str):
            return str(fields[name])
    clocks = [c for c in (record.get("clock") or {}).values() if isinstance(c, str)]
    if not clocks:
        return ""
    try:
        ms = int(min(clocks)[:15])
    except ValueError:
        return ""
    return dt.datetime.fromtimestamp(ms / 1000).isoformat(timespec="minutes")


@dataclass(frozen=True)
class Item:
    """One line on Today or in a timeline: what, about whom, when, and where it leads."""

    id: str
    type: str
    title: str
    detail: str = ""
    when: str = ""
    patient_id: str | None = None
    link: str | None = None  # the record this one belongs to: a round entry's round
    overdue: bool = False
    variant: str = ""  # what changes its icon: a visit's setting, "open" or "done" for a task
    photos: tuple[tuple[str, str, str], ...] = ()  # (sha256, thumbnail sha256, caption)


@dataclass
class Today:
    """Today's screen: rounds and visits today, overdue follow-ups, referrals due."""

    rounds: list[Item] = field(default_factory=list)
    visits: list[Item] = field(default_factory=list)
    follow_ups: list[Item] = field(default_factory=list)
    referrals: list[Item] = field(default_factory=list)

    @property
    def empty(self) -> bool:
        """True when there is nothing at all for today."""
        return not (self.rounds or self.visits or self.follow_ups or self.referrals)


def _names(store: Any) -> dict[str, str]:
    return {p["id"]: str(_f(p).get("name", "")) for p in _live(store.list("patient"))}


def today(store: Any, day: dt.date) -> Today:
    """What is on for ``day``: the Today screen's read model."""
    names = _names(store)
    sites = {s["id"]: str(_f(s).get("name", "")) for s in _live(store.list("site"))}
    out = Today()
    for r in _live(store.list("round")):
        f = _f(r)
        if _date(f.get("date")) == day:
            out.rounds.append(
                Item(
                    r["id"],
                    "round",
                    sites.get(f.get("site_id") or "", "Office round"),
                    detail=plural(len(f.get("attendees") or []), "attendee"),
                    when=str(f.get("date")),
                )
            )
    for v in _live(store.list("visit")):
        f = _f(v)
        if _date(f.get("started_at")) == day:
            pid = f.get("patient_id")
            out.visits.append(
                Item(
                    v["id"],
                    "visit",
                    names.get(str(pid), "Unknown patient"),
                    detail=" · ".join(
                        filter(
                            None,
                            [
                                label(f.get("setting")),
                                "Final" if f.get("status") == "final" else "Draft",
                            ],
                        )
                    ),
                    when=str(f.get("started_at", ""))[11:16],
                    patient_id=pid,
                    variant=str(f.get("setting") or ""),
                )
            )
    for t in _live(store.list("task")):
        f = _f(t)
        due = _date(f.get("due_date"))
        if not f.get("done") and due is not None and due <= day:
            pid = f.get("patient_id")
            out.follow_ups.append(
                Item(
                    t["id"],
                    "task",
                    str(f.get("title", "")),
                    detail=names.get(str(pid), ""),
                    when=str(f.get("due_date")),
                    patient_id=pid,
                    overdue=due < day,
                    variant="open",
                )
            )
    for r in _live(store.list("referral")):
        f = _f(r)
        due = _date(f.get("due_date"))
        if f.get("status") in OPEN_REFERRALS and due is not None and due <= day:
            pid = f.get("patient_id")
            out.referrals.append(
                Item(
                    r["id"],
                    "referral",
                    f"{label(f.get('need')) or 'Referral'} — {f.get('to_name') or 'resource'}",
                    detail=names.get(str(pid), ""),
                    when=str(f.get("due_date")),
                    patient_id=pid,
                    overdue=due < day,
                )
            )
    out.visits.sort(key=lambda i: i.when)
    out.follow_ups.sort(key=lambda i: i.when)
    out.referrals.sort(key=lambda i: i.when)
    return out


@dataclass(frozen=True)
class PatientRow:
    """One patient in the caseload list."""

    id: str
    name: str
    detail: str
    follow_up: bool
    open_referrals: int
    last_seen: str | None


def caseload(store: Any, text: str, filter_name: str, day: dt.date) -> list[PatientRow]:
    """Active patients matching ``text`` (by name or phone digits) and the filter, best first."""
    patients = _live(store.search_patients(text) if text.strip() else store.list("patient"))
    patients = [p for p in patients if _f(p).get("status", "active") != "closed"]
    follow_up = _due_tasks(store, day) | _draft_visits(store)
    referrals = _open_referrals(store)
    last_seen = _last_seen(store)
    rows = [_row(p, follow_up, referrals, last_seen) for p in patients]
    return _filtered(rows, filter_name, day)


def _due_tasks(store: Any, day: dt.date) -> set[str]:
    """Patients with an open task due by ``day``."""
    out: set[str] = set()
    for t in _live(store.list("task")):
        f = _f(t)
        due = _date(f.get("due_date"))
        if not f.get("done") and due is not None and due <= day:
            out.add(str(f.get("patient_id")))
    return out


def _draft_visits(store: Any) -> set[str]:
    """Patients with a visit not yet final."""
    return {
        str(_f(v).get("patient_id"))
        for v in _live(store.list("visit"))
        if _f(v).get("status") != "final"
    }


def _open_referrals(store: Any) -> dict[str, int]:
    """Open referrals per patient."""
    out: dict[str, int] = {}
    for r in _live(store.list("referral")):
        if _f(r).get("status") in OPEN_REFERRALS:
            pid = str(_f(r).get("patient_id"))
            out[pid] = out.get(pid, 0) + 1
    return out


def _last_seen(store: Any) -> dict[str, str]:
    """The start of each patient's latest visit."""
    out: dict[str, str] = {}
    for v in _live(store.list("visit")):
        pid, when = str(_f(v).get("patient_id")), str(_f(v).get("started_at") or "")
        if when > out.get(pid, ""):
            out[pid] = when
    return out


def _row(
    patient: Record, follow_up: set[str], referrals: dict[str, int], last_seen: dict[str, str]
) -> PatientRow:
    pid, f = patient["id"], _f(patient)
    seen = last_seen.get(pid)
    bits = [f"Seen {seen[:10]}" if seen else "Not seen yet"]
    if referrals.get(pid):
        bits.append(plural(referrals[pid], "open referral"))
    if f.get("risk_flags"):
        bits.append(", ".join(f["risk_flags"][:2]))
    return PatientRow(
        pid,
        str(f.get("name", "")),
        " · ".join(bits),
        pid in follow_up,
        referrals.get(pid, 0),
        seen,
    )


def _filtered(rows: list[PatientRow], filter_name: str, day: dt.date) -> list[PatientRow]:
    """The rows the filter keeps: by name, or most recently seen first for "recent"."""
    if filter_name == "recent":
        since = (day - dt.timedelta(days=RECENT_DAYS)).isoformat()
        recent = (r for r in rows if (r.last_seen or "") >= since)
        return sorted(recent, key=lambda r: r.last_seen or "", reverse=True)
    if filter_name == "follow_up":
        rows = [r for r in rows if r.follow_up]
    elif filter_name == "open_referrals":
        rows = [r for r in rows if r.open_referrals]
    return sorted(rows, key=lambda r: r.name.casefold())


@dataclass
class PatientPage:
    """The patient screen: header facts and a newest-first timeline."""

    id: str
    name: str
    age: int | None
    phone: str
    language: str
    consent: str
    risk_flags: list[str]
    caregivers: list[dict[str, Any]]
    address: str
    timeline: list[Item]


def _with_photos(item: Item, record: Record) -> Item:
    """The item with its record's photos, for thumbnails under it."""
    photos = tuple(
        (str(a["sha256"]), str(a.get("thumbnail") or a["sha256"]), str(a.get("caption") or ""))
        for a in _f(record).get("attachments") or []
        if isinstance(a, dict) and isinstance(a.get("sha256"), str)
    )
    return replace(item, photos=photos)


def _age(birth: Any, day: dt.date) -> int | None:
    born = _date(birth)
    if born is None:
        return None
    return day.year - born.year - ((day.month, day.day) < (born.month, born.day))


def patient_page(store: Any, patient_id: str, day: dt.date) -> PatientPage | None:
    """Everything the patient screen shows, or None when the patient is unknown here."""
    patient = store.get(patient_id)
    if patient is None or patient.get("deleted") or patient.get("type") != "patient":
        return None
    f = _f(patient)
    rounds = {r["id"]: r for r in _live(store.list("round"))}
    items: list[Item] = []
    records = {r["id"]: r for r in _live(store.list(patient_id=patient_id))}
    for r in records.values():
        rf, kind, rid = _f(r), r.get("type"), r["id"]
        when = _created(r)
        if kind == "visit":
            items.append(
                Item(
                    rid,
                    kind,
                    f"{label(rf.get('setting')) or 'Visit'}"
                    f"{' (draft)' if rf.get('status') != 'final' else ''}",
                    detail=label(rf.get("triage")) or str(rf.get("summary", ""))[:80],
                    when=when,
                    patient_id=patient_id,
                    variant=str(rf.get("setting") or ""),
                )
            )
        elif kind == "round_entry":
            rnd = rounds.get(str(rf.get("round_id")))
            when = str(_f(rnd).get("date", when)) if rnd else when
            items.append(
                Item(
                    rid,
                    kind,
                    "Round note",
                    detail=str(rf.get("note", ""))[:80],
                    when=when,
                    link=rf.get("round_id"),
                    patient_id=patient_id,
                )
            )
        elif kind == "referral":
            items.append(
                Item(
                    rid,
                    kind,
                    f"Referral: {label(rf.get('need')) or 'need'}",
                    detail=f"{rf.get('to_name') or ''} · "
                    f"{label(rf.get('status') or 'draft')}".strip(" ·"),
                    when=when,
                    patient_id=patient_id,
                )
            )
        elif kind == "task":
            due = _date(rf.get("due_date"))
            items.append(
                Item(
                    rid,
                    kind,
                    f"Task: {rf.get('title', '')}",
                    detail="Done"
                    if rf.get("done")
                    else (f"Due {rf.get('due_date')}" if due else "Open"),
                    when=when,
                    patient_id=patient_id,
                    overdue=bool(due and due < day and not rf.get("done")),
                    variant="done" if rf.get("done") else "open",
                )
            )
        elif kind == "transition":
            items.append(
                Item(
                    rid,
                    kind,
                    "Care transition",
                    detail=label(rf.get("status") or "planned"),
                    when=when,
                    patient_id=patient_id,
                )
            )
        elif kind == "addendum":
            items.append(
                Item(
                    rid,
                    kind,
                    "Addendum",
                    detail=str(rf.get("text", ""))[:80],
                    when=when,
                    link=rf.get("visit_id"),
                    patient_id=patient_id,
                )
            )
    items = [
        _with_photos(i, records[i.id]) if records[i.id]["fields"].get("attachments") else i
        for i in items
    ]
    items.sort(key=lambda i: i.when, reverse=True)
    return PatientPage(
        id=patient_id,
        name=str(f.get("name", "")),
        age=_age(f.get("birth_date"), day),
        phone=str(f.get("phone") or ""),
        language=str(f.get("language") or ""),
        consent=str(f.get("consent_status") or "unknown"),
        risk_flags=list(f.get("risk_flags") or []),
        caregivers=[c for c in f.get("caregivers") or [] if isinstance(c, dict)],
        address=str(f.get("address") or ""),
        timeline=items,
    )
