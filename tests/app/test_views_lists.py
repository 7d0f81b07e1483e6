"""Today, caseload and patient screens from empty and from full state."""

from __future__ import annotations

import flet as ft
import pytest

from app import queries
from app.views import caseload, patient, settings, today
from tests.app.views_support import (
    FakeNav,
    FakeServer,
    absent,
    enrolled,
    fill,
    find,
    make_app,
    run,
    texts,
)


@pytest.fixture
def app(tmp_path):
    return run(enrolled(make_app(tmp_path, FakeServer())))


def test_today_empty(app) -> None:
    view = today.build(app, FakeNav())
    assert find(view, "today-empty") is not None
    assert "No follow-ups due." in texts(view)
    assert find(view, "today-sync").title.value.startswith("Synced")


def test_today_full(app) -> None:
    ids = fill(app)
    nav = FakeNav()
    view = today.build(app, nav)
    assert absent(view, "today-empty")
    assert "Riverside Family Practice" in texts(find(view, f"round-{ids['round']}"))
    assert "Ada Example" in texts(find(view, f"visit-{ids['visit']}"))
    task = find(view, f"task-{ids['task']}")
    assert "Overdue" in texts(task) and "Call back about food bank" in texts(task)
    assert "Demo Food Bank" in texts(find(view, f"referral-{ids['referral']}"))
    assert "Later" not in texts(view)  # not due yet
    assert "to sync" in find(view, "today-sync").title.value  # local changes are pending
    find(view, "new-assessment").on_click(None)
    find(view, f"visit-{ids['visit']}").on_click(None)
    find(view, "today-sync").on_click(None)
    assert nav.went == ["/new-assessment", f"/visit/{ids['visit']}", "/sync"]


def test_caseload_empty(app) -> None:
    view = caseload.build(app, FakeNav("/caseload"))
    assert "No patients yet" in texts(find(view, "caseload-empty"))


def test_caseload_search_filters_and_open(app) -> None:
    ids = fill(app)
    nav = FakeNav("/caseload")
    view = caseload.build(app, nav)
    results = find(view, "results")
    assert absent(view, "patient-closed")
    assert "Old Closed" not in texts(results)
    assert [c.key for c in results.controls] == [f"patient-{ids['ada']}", f"patient-{ids['cy']}"]

    search = find(view, "search")
    search.value = "ad"
    search.on_change(type("E", (), {"control": search})())
    assert [c.key for c in results.controls] == [f"patient-{ids['ada']}"]
    search.value = "zz"
    search.on_change(type("E", (), {"control": search})())
    assert "No patient matches “zz”" in texts(results)
    search.value = ""
    search.on_change(type("E", (), {"control": search})())

    find(view, "filter-open_referrals").on_select(None)
    assert [c.key for c in results.controls] == [f"patient-{ids['ada']}"]
    assert find(view, "filter-open_referrals").selected
    find(view, "filter-follow_up").on_select(None)
    assert [c.key for c in results.controls] == [f"patient-{ids['ada']}"]
    find(view, "filter-recent").on_select(None)
    assert [c.key for c in results.controls] == [f"patient-{ids['ada']}"]
    find(view, "filter-all").on_select(None)
    assert len(results.controls) == 2

    find(view, f"patient-{ids['cy']}").on_click(None)
    assert nav.went == [f"/patient/{ids['cy']}"]


def test_caseload_quick_add_validates_then_opens_patient(app) -> None:
    nav = FakeNav("/caseload")
    view = caseload.build(app, nav)
    find(view, "add-patient").on_click(None)
    dialog = nav.dialogs[-1]
    find(dialog, "add-save").on_click(None)
    assert find(dialog, "new-name").error == "Enter the patient's name."
    find(dialog, "new-name").value = "Dot Placeholder"
    find(dialog, "new-birth").value = "31/12/1940"
    find(dialog, "add-save").on_click(None)
    assert "YYYY-MM-DD" in find(dialog, "new-birth").error
    find(dialog, "new-birth").value = "1940-12-31"
    find(dialog, "add-save").on_click(None)
    assert not nav.dialogs
    [new] = app.store.search_patients("Dot")
    assert nav.went == [f"/patient/{new['id']}"]
    assert app.sync.pending == 1


def test_new_assessment_picker_routes_to_assess(app) -> None:
    ids = fill(app)
    nav = FakeNav("/new-assessment")
    view = caseload.build(app, nav)
    assert view.appbar.title.value == "New assessment"
    find(view, f"patient-{ids['ada']}").on_click(None)
    assert nav.went == [f"/assess/{ids['ada']}"]
    find(view, "add-patient").on_click(None)
    find(nav.dialogs[-1], "new-name").value = "Eli Example"
    find(nav.dialogs[-1], "add-save").on_click(None)
    assert nav.went[-1].startswith("/assess/")


def test_patient_header_timeline_and_actions(app) -> None:
    ids = fill(app)
    nav = FakeNav()
    view = patient.build(app, nav, patient_id=ids["ada"])
    assert find(view, "patient-name").value == "Ada Example"
    facts = find(view, "patient-facts").value
    assert "Age " in facts and "Spanish" in facts
    assert find(view, "consent").value == "Verbal consent"
    assert "Lives alone" in texts(find(view, "risk-flags"))
    assert find(view, "call").url == "tel:+15550100"
    assert "Bo Example · son" in texts(find(view, "caregiver-0"))
    for key in ("visit", "task", "referral", "transition"):
        assert find(view, f"timeline-{ids[key]}") is not None
    assert "Overdue" in texts(find(view, f"timeline-{ids['task']}"))
    for key in ("assess", "refer", "add-task", "transition"):
        find(view, key).on_click(None)
    find(view, f"timeline-{ids['visit']}").on_click(None)
    pid = ids["ada"]
    assert nav.went == [
        f"/assess/{pid}",
        f"/refer/{pid}",
        f"/tasks?patient_id={pid}",
        f"/transition/{pid}",
        f"/visit/{ids['visit']}",
    ]


def test_patient_empty_and_missing(app) -> None:
    pid, _ = app.add_patient("Fay Sample")
    view = patient.build(app, FakeNav(), patient_id=pid)
    assert find(view, "timeline-empty") is not None
    assert find(view, "patient-facts").value == "Age unknown"
    assert absent(view, "call")
    view = patient.build(app, FakeNav(), patient_id="00000000-0000-4000-8000-000000000000")
    assert find(view, "patient-missing") is not None


def test_icons_follow_the_visit_setting_and_the_task_state(app) -> None:
    ids = fill(app)
    call = app.store.put(
        "visit",
        {"patient_id": ids["cy"], "setting": "phone", "started_at": f"{app.today}T11:00:00"},
    )
    view = today.build(app, FakeNav())
    assert find(view, f"visit-{ids['visit']}").leading.icon == ft.Icons.HOME_OUTLINED
    assert find(view, f"visit-{call['id']}").leading.icon == ft.Icons.PHONE_OUTLINED
    assert find(view, f"task-{ids['task']}").leading.icon == ft.Icons.CHECK_BOX_OUTLINE_BLANK
    done = app.store.put("task", {"patient_id": ids["ada"], "title": "Sent form", "done": True})
    view = patient.build(app, FakeNav(), patient_id=ids["ada"])
    assert find(view, f"timeline-{ids['task']}").leading.icon == ft.Icons.CHECK_BOX_OUTLINE_BLANK
    assert find(view, f"timeline-{done['id']}").leading.icon == ft.Icons.CHECK_BOX_OUTLINED
    assert find(view, f"timeline-{ids['visit']}").leading.icon == ft.Icons.HOME_OUTLINED


def test_one_attendee_is_not_one_attendees(app) -> None:
    ids = fill(app)
    view = today.build(app, FakeNav())
    assert texts(find(view, f"round-{ids['round']}")).startswith("1 attendee · ")
    assert queries.plural(1, "minute") == "1 minute"
    assert queries.plural(2, "minute") == "2 minutes"
    assert queries.plural(0, "open referral") == "0 open referrals"


def test_caseload_search_finds_phone_numbers(app) -> None:
    ids = fill(app)

    def found(text: str) -> list[str]:
        return [r.id for r in queries.caseload(app.store, text, "all", app.today).rows]

    for typed in ("555 0100", "555-0100", "(555) 0100", "+1 555", "5550100", "ada 0100"):
        assert found(typed) == [ids["ada"]], typed
    assert found("555 0199") == [] and found("0101") == []  # a caregiver's phone is not hers
    app.store.put("patient", {"phone": "555 0199"}, ids["ada"])
    assert found("0199") == [ids["ada"]] and found("0100") == []


def test_auto_lock_choices_say_1_minute(app) -> None:
    view = settings.build(app, FakeNav("/settings"))
    texts_ = [o.text for o in find(view, "auto-lock").options]
    assert texts_[0] == "1 minute" and texts_[1] == "2 minutes"


def test_a_long_title_wraps_instead_of_being_cut(app) -> None:
    view = caseload.build(app, FakeNav("/new-assessment"))
    title = find(view, "appbar-title")
    assert title.value == "New assessment" and title.max_lines == 2
    assert title.theme_style == ft.TextThemeStyle.TITLE_MEDIUM


def test_a_big_caseload_is_shown_a_page_at_a_time(app) -> None:
    store = app.store
    ids = [store.put("patient", {"name": f"Patient {n:03d}"})["id"] for n in range(130)]
    for closed in ids[:3]:
        store.put("patient", {"status": "closed"}, closed)
    store.put("task", {"patient_id": ids[120], "title": "Call back", "due_date": "2026-01-01"})
    view = caseload.build(app, FakeNav("/caseload"))
    results = find(view, "results")

    def shown() -> list[str]:
        return [c.key.removeprefix("patient-") for c in results.controls if c.key]

    assert shown() == ids[3:53]  # the first page, by name, closed patients left out
    assert "Show 50 more (77 not shown)" in texts(find(view, "caseload-more"))
    find(view, "caseload-more").on_click(None)
    assert shown() == ids[3:103]
    find(view, "caseload-more").on_click(None)
    assert shown() == ids[3:] and absent(view, "caseload-more")
    find(view, "filter-follow_up").on_select(None)  # a filter starts from its first page
    assert shown() == [ids[120]]
    find(view, "filter-all").on_select(None)
    assert shown() == ids[3:53]
    page = queries.caseload(store, "patient 12", "all", app.today, limit=5)
    assert [r.id for r in page.rows] == [ids[12], ids[112], *ids[120:123]] and page.more == 7
    assert page.rows[2].follow_up and not page.rows[1].follow_up
