"""Office rounds as data: typed lists, action items with due phrases, entries into tasks."""

import datetime as dt

import pytest

from app import rounds as r
from sync import schema
from sync.errors import InvalidRecord

PID = "6f1c1b1e-8a53-4c4e-9d8e-0d6f3d1f1a11"
RID = "0b6f3a5e-7c2d-4a8e-9f0b-1c2d3e4f5a6b"
EID = "1c2d3e4f-7c2d-4a8e-9f0b-0b6f3a5e5a6b"
SID = "2d3e4f5a-7c2d-4a8e-9f0b-0b6f3a5e5a6b"
TODAY = dt.date(2026, 11, 23)


@pytest.mark.parametrize(
    "text,items",
    [
        ("", []),
        ("Dr. Lee, RN Ortiz", ["Dr. Lee", "RN Ortiz"]),
        (" Dr. Lee ;; dr. lee\nPharmacist ", ["Dr. Lee", "Pharmacist"]),
    ],
)
def test_split_list(text, items):
    assert r.split_list(text) == items


def test_split_action_items_keeps_commas():
    assert r.split_action_items("Call son, then GP; order walker\n\n") == [
        "Call son, then GP",
        "order walker",
    ]


@pytest.mark.parametrize(
    "text,title,due",
    [
        ("Call daughter", "Call daughter", "2026-11-30"),
        ("Call daughter by 2026-12-01", "Call daughter", "2026-12-01"),
        ("Fax form (due 2026-12-02)", "Fax form", "2026-12-02"),
        ("Order walker in 3 days", "Order walker", "2026-11-26"),
        ("Check meals, in 2 weeks", "Check meals", "2026-12-07"),
        ("Call GP tomorrow", "Call GP", "2026-11-24"),
        ("Call GP today", "Call GP", "2026-11-23"),
        ("Book by 2026-02-30", "Book by 2026-02-30", "2026-11-30"),  # not a date
        ("in 3 days", "in 3 days", "2026-11-26"),  # a due phrase alone keeps its words
    ],
)
def test_parse_action_item(text, title, due):
    got_title, got_due = r.parse_action_item(text, TODAY)
    assert (got_title, got_due.isoformat()) == (title, due)


def test_round_and_entry_fields_validate():
    fields = r.round_fields(TODAY, SID, ["Dr. Lee"], ["Falls prevention"], " ok ")
    assert fields == {
        "date": "2026-11-23",
        "site_id": SID,
        "attendees": ["Dr. Lee"],
        "education_topics": ["Falls prevention"],
        "notes": "ok",
    }
    assert r.round_fields("2026-11-23") == {
        "date": "2026-11-23",
        "attendees": [],
        "education_topics": [],
    }
    with pytest.raises(InvalidRecord) as err:
        r.round_fields("23/11/2026")
    assert err.value.errors[0].field == "date"
    entry = r.entry_fields(RID, PID, " discussed ", ["Call son", " "])
    assert entry == {
        "round_id": RID,
        "patient_id": PID,
        "note": "discussed",
        "action_items": ["Call son"],
    }
    with pytest.raises(InvalidRecord):
        r.entry_fields(RID, "nope")


def test_each_action_item_becomes_one_task():
    entry = {
        "id": EID,
        "fields": {
            "round_id": RID,
            "patient_id": PID,
            "note": "",
            "action_items": ["Call son", "Order walker in 2 days"],
        },
    }
    tasks = r.tasks_for_entry(entry, TODAY)
    assert tasks == [
        {
            "patient_id": PID,
            "title": "Call son",
            "due_date": "2026-11-30",
            "done": False,
            "source_id": EID,
        },
        {
            "patient_id": PID,
            "title": "Order walker",
            "due_date": "2026-11-25",
            "done": False,
            "source_id": EID,
        },
    ]
    assert all(schema.validate("task", t) == [] for t in tasks)
    # Saving the entry again only adds tasks for new items.
    existing = [{"id": "t1", "fields": tasks[0]}, {"id": "t2", "fields": tasks[1]}]
    entry["fields"]["action_items"].append("Send leaflet")
    again = r.tasks_for_entry(entry, TODAY, existing)
    assert [t["title"] for t in again] == ["Send leaflet"]
    other = [{"id": "t3", "fields": {**tasks[0], "source_id": RID}}]
    assert len(r.tasks_for_entry(entry, TODAY, other)) == 3
    assert r.tasks_for_entry({"id": EID, "fields": {"patient_id": PID}}, TODAY) == []


def test_new_patient_by_name_only():
    assert r.new_patient_fields("  Ada   Demo ") == {"name": "Ada Demo", "status": "active"}
    with pytest.raises(InvalidRecord) as err:
        r.new_patient_fields("  ")
    assert err.value.errors[0].field == "name"


def test_round_title():
    assert r.round_title({"date": "2026-11-23"}, "Riverside") == "Round 2026-11-23 · Riverside"
    assert r.round_title({"date": "2026-11-23"}) == "Round 2026-11-23"


def test_a_round_row_knows_when_something_is_typed():
    row = r.RoundRow(RID)
    assert not row.typed()
    for typed in ({"name": " Ann "}, {"note": "x"}, {"actions": "Call son"}):
        assert r.RoundRow(RID, **typed).typed()
    assert not r.RoundRow(RID, name="  ", note="\n").typed()
    row = r.RoundRow(RID, "Ann", PID, "note", "Call son")
    row.clear()
    assert row == r.RoundRow(RID)  # still the same round's row
    assert r.row_key(None) == "round:new:next" and r.row_key(RID) == f"round:{RID}:next"


@pytest.mark.parametrize("n,said", [(0, "0 patients"), (1, "1 patient"), (2, "2 patients")])
def test_patients_counts_in_words(n, said):
    assert r.patients(n) == said


def test_same_name_ignores_case_spacing_and_accents():
    people = [
        {"id": "a", "fields": {"name": "Zoë  Ärnold"}},
        {"id": "b", "fields": {"name": "Zoe Arnoldson"}},
        {"id": "c", "fields": {"name": "ZOE ARNOLD"}},
    ]
    assert [p["id"] for p in r.same_name(" zoe arnold ", people)] == ["a", "c"]
    assert r.same_name("   ", people) == []


@pytest.mark.parametrize(
    "fields,said",
    [
        ({"name": "Ada"}, "Ada"),
        ({"name": "Ada", "birth_date": "1948-11-24"}, "Ada (77)"),  # birthday tomorrow
        ({"name": "Ada", "birth_date": "1948-11-23", "phone": "555"}, "Ada (78 · 555)"),
        ({"name": "Ada", "birth_date": "someday", "phone": "555"}, "Ada (555)"),
    ],
)
def test_who_tells_namesakes_apart(fields, said):
    assert r.who(fields, TODAY) == said


def _stamp(n):
    return f"{1_790_000_000_000 + n:015d}-00000-device-1"


def test_summaries_newest_first_with_site_and_count():
    rounds = [
        {
            "id": "old",
            "fields": {"date": "2026-11-02", "site_id": SID},
            "clock": {"date": _stamp(1)},
        },
        {"id": "first", "fields": {"date": "2026-11-23"}, "clock": {"date": _stamp(2)}},
        {"id": "second", "fields": {"date": "2026-11-23"}, "clock": {"date": _stamp(3)}},
        {"id": "gone", "fields": {"date": "2026-11-30"}, "clock": {}, "deleted": True},
    ]
    entries = [
        {"fields": {"round_id": "first"}},
        {"fields": {"round_id": "first"}},
        {"fields": {"round_id": "old"}},
        {"fields": {"round_id": "old"}, "deleted": True},
    ]
    got = r.summaries(rounds, entries, {SID: "Riverside"})
    assert got == [
        r.RoundSummary("second", "2026-11-23", "", 0),
        r.RoundSummary("first", "2026-11-23", "", 2),
        r.RoundSummary("old", "2026-11-02", "Riverside", 1),
    ]
