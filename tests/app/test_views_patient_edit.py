"""The patient's details form, headless: edit and save, a draft kept across auto-lock,
leaving asks, the date picker; the patient page's Edit and Delete; duplicates in Add."""

from __future__ import annotations

import datetime as dt

import flet as ft

from app import patients, routes, urls
from app.patients import Details
from app.views import caseload, patient_edit, shell
from app.views import patient as patient_view
from tests.app.views_support import FakeNav, absent, find, patient, saves_heard, set_value, texts


def _edit(app, pid):
    nav = FakeNav(urls.edit_patient(pid))
    return nav, patient_edit.build(app, nav, patient_id=pid)


def test_the_edit_row_sits_under_the_patient_page():
    found = routes.match(urls.edit_patient("p1"))
    assert found is not None and found[0].build is patient_edit.build
    assert routes.parent(urls.edit_patient("p1")) == urls.patient("p1")
    assert routes.tab(urls.edit_patient("p1")) == urls.CASELOAD


def test_edit_details_and_save(app):
    pid = patient(app, "Round Added")  # name only, as a round adds them
    nav, view = _edit(app, pid)
    assert find(view, "name").value == "Round Added"
    assert find(view, "consent-status").value == "unknown"
    set_value(view, "phone", "555 0100")
    set_value(view, "birth-date", "1950-05-17")
    set_value(view, "address", "1 Demo Street")
    set_value(view, "language", "Spanish")
    set_value(view, "consent-status", "written")
    find(view, "add-caregiver").on_click(None)
    assert nav.refreshed == 1
    nav, view = _edit(app, pid)  # rebuilt from the draft
    assert find(view, "phone").value == "555 0100"
    set_value(view, "caregiver-0-name", "Bo Example")
    set_value(view, "caregiver-0-relation", "son")
    saves = saves_heard(app)
    find(view, "save-details").on_click(None)
    f = app.store.get(pid)["fields"]
    assert (f["phone"], f["birth_date"], f["address"], f["language"]) == (
        "555 0100",
        "1950-05-17",
        "1 Demo Street",
        "Spanish",
    )
    assert f["consent_status"] == "written"
    assert f["caregivers"] == [{"name": "Bo Example", "relation": "son"}]
    assert nav.went == ["<back>"] and nav.toasts == ["Details saved"] and saves == ["saved"]
    assert app.drafts.get(patients.draft_key(pid), Details) is None
    page = patient_view.build(app, FakeNav(), patient_id=pid)
    assert find(page, "consent").value == "Written consent"
    assert "Bo Example · son" in texts(page) and find(page, "address").value == "1 Demo Street"


def test_remove_a_caregiver(app):
    pid = app.store.put(
        "patient",
        {"name": "Ann", "caregivers": [{"name": "Bo"}, {"name": "Cy", "relation": "friend"}]},
    )["id"]
    nav, view = _edit(app, pid)
    find(view, "remove-caregiver-0").on_click(None)
    nav, view = _edit(app, pid)
    assert find(view, "caregiver-0-name").value == "Cy" and absent(view, "caregiver-1-name")
    find(view, "save-details").on_click(None)
    assert app.store.get(pid)["fields"]["caregivers"] == [{"name": "Cy", "relation": "friend"}]


def test_bad_input_is_shown_by_field_and_nothing_saved(app):
    pid = patient(app)
    nav, view = _edit(app, pid)
    set_value(view, "name", "")
    set_value(view, "birth-date", "17/05/1950")
    find(view, "save-details").on_click(None)
    assert nav.refreshed == 1 and nav.went == []
    nav, view = _edit(app, pid)
    assert find(view, "name").error == "Name is required"
    assert find(view, "birth-date").error.startswith("Date of birth must be a date")
    assert "Name is required" in texts(find(view, "details-errors"))
    assert app.store.get(pid)["fields"]["name"] == "Ada Demo"


def test_the_date_picker_fills_the_date(app):
    pid = patient(app)
    nav, view = _edit(app, pid)
    find(view, "pick-birth-date").on_click(None)
    (picker,) = nav.dialogs
    assert isinstance(picker, ft.DatePicker) and picker.last_date == app.today
    assert picker.value is None and picker.date_picker_mode == ft.DatePickerMode.YEAR
    nav.dialogs.clear()  # Cancel: the client reports it dismissed
    set_value(view, "birth-date", "1950-05-01")
    find(view, "pick-birth-date").on_click(None)
    assert picker.value == dt.date(1950, 5, 1)  # opens on the date typed
    picker.value = dt.datetime(1950, 5, 17)
    picker.on_change(None)
    assert nav.dialogs == []  # closed through nav: the app stops waiting for it
    assert find(view, "birth-date").value == "1950-05-17"
    assert app.drafts.get(patients.draft_key(pid), Details).birth_date == "1950-05-17"


def test_picked_date_reads_the_clients_values():
    assert patient_edit.picked_date(dt.date(1950, 5, 17)) == "1950-05-17"
    assert patient_edit.picked_date(dt.datetime(1950, 5, 17, 0, 0)) == "1950-05-17"
    utc = dt.datetime(1950, 5, 17, 12, 0, tzinfo=dt.UTC)  # noon: the same day in any zone
    assert patient_edit.picked_date(utc) == "1950-05-17"
    assert patient_edit.picked_date(None) is None


def test_leaving_with_unsaved_input_asks_and_discard_forgets(app):
    pid = patient(app)
    nav, view = _edit(app, pid)
    guard = shell.leave_of(view)
    assert guard is not None and not guard.unsaved()
    set_value(view, "phone", "555 0100")
    assert guard.unsaved()
    set_value(view, "phone", "")  # typed back to what is saved: nothing to lose
    assert not guard.unsaved()
    set_value(view, "language", "Tagalog")
    guard.keep()
    guard.discard()
    assert not guard.unsaved()
    assert app.drafts.get(patients.draft_key(pid), Details) is None


def test_the_draft_survives_a_lock(app):
    app.drafts.open(app.store)  # as unlocking does
    pid = patient(app)
    nav, view = _edit(app, pid)
    set_value(view, "phone", "555 0100")
    shell.leave_of(view).keep()  # flushed into the encrypted store
    app.drafts.close()  # what a lock does to drafts
    app.drafts.open(app.store)  # unlocked again
    nav, view = _edit(app, pid)
    assert find(view, "phone").value == "555 0100"


def test_missing_patient(app):
    nav, view = _edit(app, "00000000-0000-4000-8000-000000000000")
    assert find(view, "patient-edit-missing")


def test_the_patient_page_opens_the_form(app):
    pid = patient(app)
    nav = FakeNav(urls.patient(pid))
    view = patient_view.build(app, nav, patient_id=pid)
    find(view, "edit-details").on_click(None)
    assert nav.went == [urls.edit_patient(pid)]


def test_delete_from_the_patient_page_asks_first(app):
    pid = patient(app)
    nav = FakeNav(urls.patient(pid))
    view = patient_view.build(app, nav, patient_id=pid)
    find(view, "delete").on_click(None)
    (dialog,) = nav.dialogs
    find(dialog, "delete-cancel").on_click(None)
    assert nav.dialogs == [] and app.store.get(pid) is not None
    find(view, "delete").on_click(None)
    find(nav.dialogs[0], "delete-confirm").on_click(None)
    assert app.store.get(pid) is None
    assert nav.went == [urls.CASELOAD] and nav.toasts == ["Ada Demo was deleted"]


def test_a_liaison_sees_why_a_patient_with_records_stays(app):
    pid = patient(app)
    app.store.put("task", {"patient_id": pid, "title": "Call"})
    view = patient_view.build(app, FakeNav(), patient_id=pid)
    assert absent(view, "delete") and "supervisor" in find(view, "delete-refused").value


def _add_dialog(app, nav):
    view = caseload.build(app, nav)
    find(view, "add-patient").on_click(None)
    return nav.dialogs[-1]


def test_add_patient_warns_of_a_likely_duplicate_and_opens_it(app):
    ada = app.store.put("patient", {"name": "Ada Lovelace", "phone": "555 0100"})["id"]
    nav = FakeNav(urls.CASELOAD)
    dialog = _add_dialog(app, nav)
    set_value(dialog, "new-name", "ada lovelace")
    find(dialog, "add-save").on_click(None)
    assert find(dialog, "duplicates").visible
    assert "Same name" in texts(find(dialog, f"duplicate-{ada}"))
    assert find(dialog, "add-save").content == "Add anyway"
    assert len(app.store.list("patient")) == 1  # nothing added yet
    find(dialog, f"use-{ada}").on_click(None)
    assert nav.went == [urls.patient(ada)] and nav.dialogs == []
    assert len(app.store.list("patient")) == 1


def test_add_anyway_adds_a_second_patient(app):
    app.store.put("patient", {"name": "Ada Lovelace"})
    nav = FakeNav(urls.CASELOAD)
    dialog = _add_dialog(app, nav)
    set_value(dialog, "new-name", "Ada Lovelace")
    find(dialog, "add-save").on_click(None)
    find(dialog, "add-save").on_click(None)  # "Add anyway"
    assert len(app.store.list("patient")) == 2 and nav.went[0].startswith("/patient/")


def test_changing_the_details_checks_again(app):
    app.store.put("patient", {"name": "Ada Lovelace"})
    nav = FakeNav(urls.CASELOAD)
    dialog = _add_dialog(app, nav)
    set_value(dialog, "new-name", "Ada Lovelace")
    find(dialog, "add-save").on_click(None)
    set_value(dialog, "new-name", "Ada Byron")
    assert not find(dialog, "duplicates").visible
    assert find(dialog, "add-save").content == "Add"
    find(dialog, "add-save").on_click(None)  # no longer a likely duplicate: added
    assert len(app.store.list("patient")) == 2
