"""Records' facts (``app.facts``, ``Store.facts``) and the read models built on them: the
facts follow every kind of change, and Today, the caseload and a patient's page read in
full only the records they show."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from app import queries
from app.facts import fact_of
from app.store import Store

KEY = bytes(range(32))
NODE = "a" * 32
DAY = dt.date(2026, 12, 7)
FINAL = {"setting": "home", "triage": "short_term_contact", "status": "final"}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    opened = Store.open(tmp_path / "s", KEY, node_id=NODE)
    yield opened
    opened.close()


def test_each_listed_type_has_its_date_and_state() -> None:
    assert fact_of("visit", {"started_at": "2026-12-07T09:30", "status": "final"}) == (
        "2026-12-07T09:30",
        "final",
    )
    assert fact_of("visit", {"status": None}) == ("", "draft")
    assert fact_of("task", {"due_date": "2026-12-01", "done": True}) == ("2026-12-01", "done")
    assert fact_of("task", {"due_date": 20261201}) == ("", "open")  # not a date: no date
    assert fact_of("referral", {"due_date": "2026-12-09", "status": "sent"}) == (
        "2026-12-09",
        "sent",
    )
    assert fact_of("round", {"date": "2026-12-07"}) == ("2026-12-07", "")
    assert fact_of("patient", {}) == ("", "active")
    assert fact_of("patient", {"status": "closed"}) == ("", "closed")
    assert fact_of("resource", {"name": "Food bank"}) is None


def test_facts_follow_edits_deletes_pulls_and_a_reopen(store: Store, tmp_path: Path) -> None:
    p = store.put("patient", {"name": "Ada"})["id"]
    t = store.put("task", {"patient_id": p, "title": "Call", "due_date": "2026-12-01"})["id"]
    v = store.put("visit", {"patient_id": p, "started_at": "2026-12-07T09:00"})["id"]
    store.put("resource", {"name": "Food bank"})
    assert store.fact(t) == ("2026-12-01", "open")
    store.put("task", {"done": True}, t)
    assert store.fact(t) == ("2026-12-01", "done")
    assert {(i, k) for i, k, *_ in store.facts(patient_id=p)} == {
        (p, "patient"),
        (t, "task"),
        (v, "visit"),
    }
    store.delete(v)
    assert store.fact(v) is None and [i for i, *_ in store.facts("visit")] == []
    store.acknowledge(store.last_mutation_id)  # sent: the server's version now wins
    pulled = store.get(t)
    assert pulled is not None
    pulled["fields"]["due_date"] = "2027-01-05"
    ms, counter, _ = pulled["clock"]["due_date"].split("-")
    pulled["clock"]["due_date"] = f"{int(ms) + 1000:0{len(ms)}d}-{counter}-{'b' * 32}"
    pulled["rev"] = 9
    store.apply_pull([pulled], [], 9)
    assert store.fact(t) == ("2027-01-05", "done")
    store.close()
    again = Store.open(tmp_path / "s", KEY, node_id=NODE)
    try:
        assert again.fact(t) == ("2027-01-05", "done") and again.fact(v) is None
        assert sorted(k for _, k, *_ in again.facts()) == ["patient", "task"]
    finally:
        again.close()


class Reading:
    """The store, counting the records the read models read in full."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.read: list[str] = []

    def peek(self, ids: Iterable[str]) -> Any:
        found = self.store.peek(list(ids))
        self.read += [r["id"] for r in found]
        return found

    def scan(self, type: str | None = None, *, patient_id: str | None = None) -> Any:
        found = self.store.scan(type, patient_id=patient_id)
        self.read += [r["id"] for r in found]
        return found

    def __getattr__(self, name: str) -> Any:
        return getattr(self.store, name)


def _busy_caseload(store: Store) -> dict[str, str]:
    """Forty patients with past work, and one of each kind of thing on ``DAY``."""
    ids = {}
    for n in range(40):
        p = store.put("patient", {"name": f"Patient {n:02d}"})["id"]
        for month in range(1, 6):
            store.put(
                "visit",
                {"patient_id": p, "started_at": f"2026-{month:02d}-03T10:00", **FINAL},
            )
            store.put(
                "task",
                {"patient_id": p, "title": "t", "due_date": f"2026-{month:02d}-09", "done": True},
            )
        ids[f"p{n}"] = p
    p = ids["p7"]
    ids["visit"] = store.put("visit", {"patient_id": p, "started_at": "2026-12-07T09:15", **FINAL})[
        "id"
    ]
    ids["task"] = store.put("task", {"patient_id": p, "title": "Call", "due_date": "2026-12-02"})[
        "id"
    ]
    ids["referral"] = store.put(
        "referral",
        {"patient_id": p, "need": "food", "status": "sent", "due_date": "2026-12-07"},
    )["id"]
    return ids


def test_today_reads_only_what_it_shows(store: Store) -> None:
    ids = _busy_caseload(store)
    reading = Reading(store)
    out = queries.today(reading, DAY)
    assert [i.id for i in out.visits] == [ids["visit"]] and out.visits[0].title == "Patient 07"
    assert [i.id for i in out.follow_ups] == [ids["task"]] and out.follow_ups[0].overdue
    assert [i.id for i in out.referrals] == [ids["referral"]]
    assert sorted(reading.read) == sorted([ids["visit"], ids["task"], ids["referral"], ids["p7"]])


def test_the_caseload_reads_only_the_patients_on_its_page(store: Store) -> None:
    ids = _busy_caseload(store)
    store.put("patient", {"status": "closed"}, ids["p0"])
    reading = Reading(store)
    page = queries.caseload(reading, "", "all", DAY, limit=5)
    assert [r.id for r in page.rows] == [ids[f"p{n}"] for n in range(1, 6)] and page.more == 34
    assert sorted(reading.read) == sorted(r.id for r in page.rows)
    reading.read.clear()
    follow = queries.caseload(reading, "", "follow_up", DAY)
    assert [r.id for r in follow.rows] == [ids["p7"]] and follow.rows[0].open_referrals == 1
    assert reading.read == [ids["p7"]]
    assert follow.rows[0].last_seen == "2026-12-07T09:15"


def test_a_patient_page_reads_the_rounds_the_patient_was_in_only(store: Store) -> None:
    p = store.put("patient", {"name": "Ada"})["id"]
    rounds = [store.put("round", {"date": f"2026-11-{d:02d}"})["id"] for d in range(1, 11)]
    entry = store.put("round_entry", {"round_id": rounds[4], "patient_id": p, "note": "ok"})
    reading = Reading(store)
    page = queries.patient_page(reading, p, DAY)
    assert page is not None
    [item] = page.timeline
    assert item.id == entry["id"] and item.when == "2026-11-05" and item.link == rounds[4]
    assert rounds[4] in reading.read and not set(rounds[:4] + rounds[5:]) & set(reading.read)


def test_a_tab_in_a_date_does_not_shift_the_summary(store: Store, tmp_path: Path) -> None:
    # The summary kept beside each record is tab-separated: a tab that got into a field
    # (the schema keeps them out of dates and states) must not move the patient's key.
    p = store.put("patient", {"name": "Tab\tName", "phone": "555 0101"})["id"]
    visit = store.put("visit", {"patient_id": p, "summary": "x"})
    from app.store import summary

    shifted = summary({**visit, "fields": {**visit["fields"], "started_at": "2026-12-07\tx"}})
    assert shifted.split("\t", 7)[1] == p and shifted.split("\t", 7)[3] == "2026-12-07 x"
    store.close()
    again = Store.open(tmp_path / "s", KEY, node_id=NODE)
    try:
        assert again.patient_ids("tab name") == [p] and again.patient_ids("0101") == [p]
    finally:
        again.close()


def test_the_patients_no_pull_returned_come_from_the_index(store: Store, tmp_path: Path) -> None:
    # The sync engine asks at the end of a first pull; reading every record for it took
    # seconds and 350 MB at 100k records.
    ada = store.put("patient", {"name": "Ada"})["id"]
    bo = store.put("patient", {"name": "Bo"})["id"]
    store.put("task", {"patient_id": bo, "title": "Call"})
    store.put("resource", {"name": "Food bank"})  # no patient: not asked about
    assert store.unsent_patients() == [ada, bo]
    store.acknowledge(store.last_mutation_id)
    returned = store.get(ada)
    assert returned is not None
    store.apply_pull([{**returned, "rev": 5}], [], 5)
    assert store.unsent_patients() == [bo]
    store.close()
    again = Store.open(tmp_path / "s", KEY, node_id=NODE)
    try:
        assert again.unsent_patients() == [bo]
        again.delete(bo)
        assert again.unsent_patients() == [bo]  # its task is still here, unsent
    finally:
        again.close()
