"""Read models for the screens: Today, the caseload list and a patient's page.

Plain functions from an open store (``app.store.Store``: ``scan``, ``peek``, ``get`` and
``patient_ids``) and today's date to small dataclasses the views render; no Flet here
and no writes. Deleted records are skipped everywhere. They read the stored records
themselves (``Store.scan``), never changing them: copying every record read cost far more
than the queries.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterable, Mapping
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


def _names(store: Any, patient_ids: Iterable[Any]) -> dict[str, str]:
    """The names of these patients (only these: the records stay where they are)."""
    wanted = dict.fromkeys(str(p) for p in patient_ids if p)
    return {p["id"]: str(_f(p).get("name", "")) for p in store.peek(wanted)}


def _due_by(store: Any, kind: str, day: dt.date, is_open: Callable[[str], bool]) -> list[str]:
    """Ids of the open records of ``kind`` (by their state) due on or before ``day``."""
    found = []
    for rid, _, when, state in store.facts(kind):
        due = _date(when)
        if is_open(state) and due is not None and due <= day:
            found.append(rid)
    return found


def today(store: Any, day: dt.date) -> Today:
    """What is on for ``day``: the Today screen's read model. It picks the records by
    their facts (``Store.facts``) and reads only those it shows."""
    iso = day.isoformat()
    rounds = store.peek(r for r, _, when, _ in store.facts("round") if when[:10] == iso)
    visits = store.peek(v for v, _, when, _ in store.facts("visit") if when[:10] == iso)
    tasks = store.peek(_due_by(store, "task", day, lambda state: state == "open"))
    referrals = store.peek(_due_by(store, "referral", day, OPEN_REFERRALS.__contains__))
    names = _names(store, (_f(r).get("patient_id") for r in (*visits, *tasks, *referrals)))
    sites = {s["id"]: str(_f(s).get("name", "")) for s in store.scan("site")}
    out = Today()
    for r in rounds:
        f = _f(r)
        out.rounds.append(
            Item(
                r["id"],
                "round",
                sites.get(f.get("site_id") or "", "Office round"),
                detail=plural(len(f.get("attendees") or []), "attendee"),
                when=str(f.get("date")),
            )
        )
    for v in visits:
        f = _f(v)
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
    for t in tasks:
        f = _f(t)
        due = _date(f.get("due_date"))
        pid = f.get("patient_id")
        out.follow_ups.append(
            Item(
                t["id"],
                "task",
                str(f.get("title", "")),
                detail=names.get(str(pid), ""),
                when=str(f.get("due_date")),
                patient_id=pid,
                overdue=due is not None and due < day,
                variant="open",
            )
        )
    for r in referrals:
        f = _f(r)
        due = _date(f.get("due_date"))
        pid = f.get("patient_id")
        out.referrals.append(
            Item(
                r["id"],
                "referral",
                f"{label(f.get('need')) or 'Referral'} — {f.get('to_name') or 'resource'}",
                detail=names.get(str(pid), ""),
                when=str(f.get("due_date")),
                patient_id=pid,
                overdue=due is not None and due < day,
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


PAGE = 50  # caseload rows shown at a time: a list of 5,000 would take seconds to build


@dataclass(frozen=True)
class CaseloadPage:
    """The caseload rows shown, and how many more patients match."""

    rows: list[PatientRow]
    more: int


@dataclass(frozen=True)
class _Activity:
    """What a patient's row says of their records, from the records' facts."""

    follow_up: bool
    open_referrals: int
    last_seen: str


def caseload(
    store: Any, text: str, filter_name: str, day: dt.date, limit: int = PAGE
) -> CaseloadPage:
    """Active patients matching ``text`` (by name or phone digits) and the filter, best
    first: the first ``limit`` of them.

    Patients are picked by their facts (``Store.facts``: status, due dates, last visit) and
    only the rows shown read their patient's record. With no filter only the rows shown are
    worked out, so the list costs the same at 100 patients and at 5,000; a filter needs
    every patient's facts.
    """
    active = [
        i for i in store.patient_ids(text) if (store.fact(i) or ("", "active"))[1] != "closed"
    ]
    if filter_name == "all":
        page = [(i, _activity(store, i, day)) for i in active[:limit]]
        return CaseloadPage(_rows(store, page), len(active) - len(page))
    kept = _filtered([(i, _activity(store, i, day)) for i in active], filter_name, day)
    return CaseloadPage(_rows(store, kept[:limit]), max(0, len(kept) - limit))


def _activity(store: Any, patient_id: str, day: dt.date) -> _Activity:
    """The patient's follow-ups, open referrals and last visit, from their records' facts."""
    follow_up, referrals, seen = False, 0, ""
    for _, kind, when, state in store.facts(patient_id=patient_id):
        if kind == "task":
            due = _date(when)
            follow_up = follow_up or (state == "open" and due is not None and due <= day)
        elif kind == "visit":
            follow_up = follow_up or state != "final"
            seen = max(seen, when)
        elif kind == "referral" and state in OPEN_REFERRALS:
            referrals += 1
    return _Activity(follow_up, referrals, seen)


def _rows(store: Any, page: list[tuple[str, _Activity]]) -> list[PatientRow]:
    """The rows shown: each reads its patient's record (name, risk flags)."""
    patients = {p["id"]: p for p in store.peek(i for i, _ in page)}
    return [_row(patients[i], a) for i, a in page if i in patients]


def _row(patient: Record, activity: _Activity) -> PatientRow:
    f, seen, referrals = _f(patient), activity.last_seen, activity.open_referrals
    bits = [f"Seen {seen[:10]}" if seen else "Not seen yet"]
    if referrals:
        bits.append(plural(referrals, "open referral"))
    if f.get("risk_flags"):
        bits.append(", ".join(f["risk_flags"][:2]))
    return PatientRow(
        patient["id"],
        str(f.get("name", "")),
        " · ".join(bits),
        activity.follow_up,
        referrals,
        seen or None,
    )


def _filtered(
    rows: list[tuple[str, _Activity]], filter_name: str, day: dt.date
) -> list[tuple[str, _Activity]]:
    """The patients (by name) the filter keeps; most recently seen first for "recent"."""
    if filter_name == "recent":
        since = (day - dt.timedelta(days=RECENT_DAYS)).isoformat()
        recent = (r for r in rows if r[1].last_seen >= since)
        return sorted(recent, key=lambda r: r[1].last_seen, reverse=True)
    if filter_name == "follow_up":
        return [r for r in rows if r[1].follow_up]
    if filter_name == "open_referrals":
        return [r for r in rows if r[1].open_referrals]
    return rows  # in the order given: by name


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
    items: list[Item] = []
    records = {r["id"]: r for r in store.scan(patient_id=patient_id)}
    rounds = {  # only the rounds the patient was discussed in
        r["id"]: r
        for r in store.peek(
            str(_f(e).get("round_id")) for e in records.values() if e["type"] == "round_entry"
        )
    }
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
