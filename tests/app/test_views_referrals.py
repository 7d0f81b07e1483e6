"""The referral screens, headless: create from the directory or a typed name, track, list."""

import datetime as dt

import flet as ft

from app.casework import Casework
from app.views import referrals
from app.views.widgets import walk
from tests.app.views_support import (
    FakeNav,
    absent,
    find,
    keys,
    patient,
    resource,
    saves_heard,
    set_value,
    texts,
)


def test_empty_list(app):
    view = referrals.build(app, FakeNav("/referrals"))
    assert view.route == "/referrals" and "referrals-empty" in keys(view)


def test_new_referral_from_the_directory(app):
    pid = patient(app)
    bank = resource(app, "Food bank", "food")
    resource(app, "Volunteer rides", "transport")
    nav = FakeNav()
    view = referrals.build(app, nav, patient_id=pid)
    assert {
        "need",
        "resource-search",
        f"resource-{bank}",
        "to-name",
        "urgency",
        "due-date",
        "notes",
        "save-referral",
        "save-send",
    } <= keys(view)
    assert find(view, "due-date").value == "2026-12-07"  # routine: two weeks
    set_value(view, "need", "food")
    results = texts(find(view, "resource-results"))
    assert "Food bank" in results and "Volunteer rides" not in results
    set_value(view, "resource-search", "rides")
    assert "resources-none" in keys(view)
    set_value(view, "resource-search", "bank")
    find(view, f"resource-{bank}").on_click(None)
    assert find(view, "chosen").value == "Chosen: Food bank (from the directory)"
    set_value(view, "urgency", "urgent")
    assert find(view, "due-date").value == "2026-11-24"
    saves = saves_heard(app)
    find(view, "save-send").on_click(None)
    (ref,) = app.store.list("referral")
    assert ref["fields"] == {
        "patient_id": pid,
        "resource_id": bank,
        "to_name": "Food bank",
        "need": "food",
        "urgency": "urgent",
        "due_date": "2026-11-24",
        "status": "sent",
    }
    assert nav.went == [f"/refer/{pid}?referral_id={ref['id']}"] and saves == ["saved"]


def test_a_typed_name_and_validation(app):
    pid = patient(app)
    nav = FakeNav()
    view = referrals.build(app, nav, patient_id=pid, visit_id="not-a-uuid", need="food")
    assert find(view, "need").value == "food"
    find(view, "save-send").on_click(None)  # nobody to send it to
    assert app.store.list("referral") == [] and nav.refreshed == 1
    view = referrals.build(app, nav, patient_id=pid)
    assert "Refer to: choose a resource" in texts(find(view, "referral-errors"))
    set_value(view, "to-name", "Meals on Wheels")
    set_value(view, "due-date", "next week")
    find(view, "save-referral").on_click(None)
    view = referrals.build(app, nav, patient_id=pid)
    assert find(view, "due-date").error == "Due date must be a date YYYY-MM-DD"
    set_value(view, "due-date", "2026-12-01")
    set_value(view, "notes", "Lives alone")
    find(view, "save-referral").on_click(None)
    (ref,) = app.store.list("referral")
    assert ref["fields"]["to_name"] == "Meals on Wheels"
    assert ref["fields"]["status"] == "draft" and ref["fields"]["notes"] == "Lives alone"


def test_tracking_status_with_outcome(app):
    pid = patient(app)
    ref = Casework(app).save_referral(
        {"patient_id": pid, "to_name": "Meals", "due_date": "2026-11-20"}
    )
    nav = FakeNav()

    def view():
        return referrals.build(app, nav, patient_id=pid, referral_id=ref["id"])

    assert find(view(), "referral-status").value == "Status: Draft"
    find(view(), "status-sent").on_click(None)
    v = view()
    assert find(v, "referral-status").value == "Status: Sent"
    assert {"status-accepted", "status-declined", "status-closed"} <= keys(v)
    find(v, "status-accepted").on_click(None)
    find(view(), "status-completed").on_click(None)  # no outcome yet
    v = view()
    assert find(v, "outcome").error == "Outcome: write the outcome first"
    set_value(v, "outcome", "Meals start Monday")
    find(v, "status-completed").on_click(None)
    v = view()
    assert find(v, "referral-status").value == "Status: Completed"
    assert app.store.get(ref["id"])["fields"]["outcome"] == "Meals start Monday"
    find(v, "status-closed").on_click(None)
    assert "referral-closed" in keys(view())
    # editing the details of an existing referral keeps its status
    v = view()
    set_value(v, "to-name", "Meals Plus")
    find(v, "save-referral").on_click(None)
    assert app.store.get(ref["id"])["fields"]["status"] == "closed"
    assert app.store.get(ref["id"])["fields"]["to_name"] == "Meals Plus"


def test_open_and_overdue_list(app):
    pid = patient(app, "Ada Demo")
    work = Casework(app)
    late = work.save_referral(
        {"patient_id": pid, "to_name": "Meals", "need": "food", "due_date": "2026-11-20"}
    )
    soon = work.save_referral({"patient_id": pid, "to_name": "Rides", "due_date": "2026-11-30"})
    work.save_referral({"patient_id": pid, "to_name": "Done", "status": "closed"})
    nav = FakeNav()
    v = referrals.build(app, nav)
    assert find(v, "overdue-header").value == "Overdue (1)"
    assert find(v, "open-header").value == "Open (1)"
    assert "Food — Meals" in texts(find(v, f"referral-{late['id']}"))
    assert "Ada Demo · Draft · due 2026-11-30" in texts(find(v, f"referral-{soon['id']}"))
    assert "Done" not in texts(v)
    find(v, f"referral-{late['id']}").on_click(None)
    assert nav.went == [f"/refer/{pid}?referral_id={late['id']}"]


def test_unknown_referral(app):
    pid = patient(app)
    v = referrals.build(
        app, FakeNav(), patient_id=pid, referral_id="00000000-0000-4000-8000-000000000000"
    )
    assert "referral-missing" in keys(v)


def test_picking_a_resource_sets_an_empty_need(app):
    pid = patient(app)
    rides = resource(app, "Volunteer rides", "transport")
    view = referrals.build(app, FakeNav(), patient_id=pid)
    find(view, f"resource-{rides}").on_click(None)
    assert find(view, "need").value == "transport"


def test_a_directory_referral_without_a_typed_name_shows_the_resource(app):
    pid = patient(app)
    bank = resource(app, "Food bank", "food")
    ref = Casework(app).save_referral({"patient_id": pid, "resource_id": bank, "need": "food"})
    assert "Food — Food bank" in texts(referrals.build(app, FakeNav()))
    view = referrals.build(app, FakeNav(), patient_id=pid, referral_id=ref["id"])
    assert find(view, "chosen").value == "Chosen: Food bank (from the directory)"


def test_a_status_step_updates_the_screen_in_place(app):
    """A step redraws the status part of the open screen, not the whole screen (which
    would jump back to the top)."""
    pid = patient(app)
    ref = Casework(app).save_referral({"patient_id": pid, "to_name": "Meals"})
    nav = FakeNav()
    v = referrals.build(app, nav, patient_id=pid, referral_id=ref["id"])
    find(v, "status-sent").on_click(None)
    assert nav.refreshed == 0 and nav.toasts == ["Referral sent"]
    assert find(v, "referral-status").value == "Status: Sent"
    find(v, "status-accepted").on_click(None)
    find(v, "status-completed").on_click(None)  # no outcome yet: said here, nothing saved
    assert find(v, "outcome").error == "Outcome: write the outcome first"
    assert "status-errors" in keys(v) and nav.refreshed == 0
    set_value(v, "outcome", "Meals start Monday")
    find(v, "status-completed").on_click(None)
    assert find(v, "referral-status").value == "Status: Completed" and absent(v, "status-errors")
    assert app.store.get(ref["id"])["fields"]["outcome"] == "Meals start Monday"
    assert nav.refreshed == 0


def test_the_due_date_can_be_picked_from_a_calendar(app):
    pid = patient(app)
    nav = FakeNav()
    view = referrals.build(app, nav, patient_id=pid)
    find(view, "due-date-calendar").on_click(None)
    (picker,) = nav.dialogs
    assert isinstance(picker, ft.DatePicker) and picker.value == dt.datetime(2026, 12, 7)
    picker.value = dt.datetime(2026, 12, 24)
    picker.on_change(None)
    assert find(view, "due-date").value == "2026-12-24"
    set_value(view, "to-name", "Meals")
    find(view, "save-referral").on_click(None)
    (ref,) = app.store.list("referral")
    assert ref["fields"]["due_date"] == "2026-12-24"


def test_the_need_dropdown_is_named_for_screen_readers(app):
    view = referrals.build(app, FakeNav(), patient_id=patient(app))
    named = next(
        c
        for c in walk(view)
        if isinstance(c, ft.Semantics) and getattr(c.content, "key", None) == "need"
    )
    assert named.label == "Need" and named.value == ""
    set_value(view, "need", "food")
    assert named.value == "Food"


def test_saving_over_a_change_made_on_another_device_asks_first(app):
    pid = patient(app)
    ref = Casework(app).save_referral({"patient_id": pid, "to_name": "Meals"})
    nav = FakeNav()
    v = referrals.build(app, nav, patient_id=pid, referral_id=ref["id"])
    set_value(v, "notes", "Lives alone")
    stamp = f"{9_999_999_999_999:015d}-00000-other-device"
    theirs = {
        **ref,
        "fields": {**ref["fields"], "to_name": "Meals Plus"},
        "clock": {**ref["clock"], "to_name": stamp},
        "rev": 7,
    }
    app.store.apply_pull([theirs], [], 7)
    find(v, "save-referral").on_click(None)
    (dialog,) = nav.dialogs
    assert "Refer to was changed on another device to 'Meals Plus'" in texts(dialog)
    assert "notes" not in app.store.get(ref["id"])["fields"]
    find(dialog, "stale-theirs").on_click(None)  # the form opens again with their value
    v = referrals.build(app, nav, patient_id=pid, referral_id=ref["id"])
    assert find(v, "to-name").value == "Meals Plus" and find(v, "notes").value == ""
    set_value(v, "notes", "Lives alone")
    find(v, "save-referral").on_click(None)
    assert nav.dialogs == [] and app.store.get(ref["id"])["fields"]["notes"] == "Lives alone"
