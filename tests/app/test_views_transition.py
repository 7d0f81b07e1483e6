"""The transition screen, headless: fields, checklist, status steps until acknowledged."""

import datetime as dt

import flet as ft

from app import urls
from app.views import transition
from app.views.widgets import walk
from sync.schema import CHECKLIST_ITEMS
from tests.app.views_support import FakeNav, find, keys, patient, set_value, site, texts


def test_new_transition_from_empty(app):
    pid = patient(app)
    nav = FakeNav()
    view = transition.build(app, nav, patient_id=pid)
    assert view.route == f"/transition/{pid}"
    for key in (
        "transition-status",
        "from-site-id",
        "discharge-date",
        "to-site-id",
        "home-care-agency",
        "home-care-contact",
        "accountable",
        "check-equipment",
        "notes",
        "save-transition",
        "step-handed_off",
    ):
        assert key in keys(view), key
    assert find(view, "from-site-id").disabled  # no hospitals in the directory yet
    assert find(view, "transition-status").value.startswith("Planned")
    find(view, "save-transition").on_click(None)
    (tr,) = app.store.list("transition")
    assert tr["fields"] == {"patient_id": pid, "status": "planned", "checklist": {}}
    assert nav.went == [f"/transition/{pid}?transition_id={tr['id']}"]


def test_hand_off_until_acknowledged_and_complete(app):
    pid = patient(app)
    hospital = site(app, "General Hospital", "hospital")
    agency = site(app, "Home Care Co", "home_care_agency")
    site(app, "Riverside Clinic", "physician_office")
    nav = FakeNav()
    view = transition.build(app, nav, patient_id=pid)
    assert [o.text for o in find(view, "from-site-id").options] == ["General Hospital"]
    find(view, "step-handed_off").on_click(None)  # nothing filled in yet
    assert app.store.list("transition") == []
    view = transition.build(app, nav, patient_id=pid)
    banner = texts(find(view, "transition-errors"))
    for part in (
        "Discharge date is required",
        "Home-care agency is required",
        "Accountable person is required",
    ):
        assert part in banner
    assert find(view, "accountable").error == "Accountable person is required to hand off"
    set_value(view, "from-site-id", hospital)
    set_value(view, "discharge-date", "2026-11-24")
    set_value(view, "to-site-id", agency)
    set_value(view, "home-care-contact", "RN Ortiz 555-0101")
    set_value(view, "accountable", "Liaison: Sam")
    set_value(view, "check-medicines_reconciled", True)
    find(view, "step-handed_off").on_click(None)
    find(nav.dialogs[-1], "unticked-confirm").on_click(None)  # three items not ticked
    (tr,) = app.store.list("transition")
    assert tr["fields"]["status"] == "handed_off"
    assert tr["fields"]["from_site_id"] == hospital and tr["fields"]["to_site_id"] == agency
    assert tr["fields"]["checklist"] == {"medicines_reconciled": True}
    view = transition.build(app, nav, transition_id=tr["id"])  # by id
    assert view.route == urls.transition(tr["fields"]["patient_id"], tr["id"])
    assert "waiting for the home-care agency" in find(view, "transition-status").value
    assert find(view, "accountable").value == "Liaison: Sam"
    find(view, "step-acknowledged").on_click(None)
    view = transition.build(app, nav, transition_id=tr["id"])
    find(view, "step-complete").on_click(None)
    view = transition.build(app, nav, transition_id=tr["id"])
    assert find(view, "checklist-error").visible
    for item in CHECKLIST_ITEMS:
        set_value(view, f"check-{item}", True)
    find(view, "step-complete").on_click(None)
    view = transition.build(app, nav, transition_id=tr["id"])
    assert find(view, "transition-status").value == "Complete."
    assert not any(k.startswith("step-") for k in keys(view))
    assert app.store.get(tr["id"])["fields"]["status"] == "complete"


def test_clearing_a_field_and_bad_date(app):
    pid = patient(app)
    nav = FakeNav()
    view = transition.build(app, nav, patient_id=pid)
    set_value(view, "home-care-agency", "Typed Agency")
    set_value(view, "discharge-date", "tomorrow")
    find(view, "save-transition").on_click(None)
    view = transition.build(app, nav, patient_id=pid)
    assert find(view, "discharge-date").error == "Discharge date must be a date YYYY-MM-DD"
    set_value(view, "discharge-date", "")
    find(view, "save-transition").on_click(None)
    (tr,) = app.store.list("transition")
    assert tr["fields"]["home_care_agency"] == "Typed Agency"
    view = transition.build(app, nav, patient_id=pid, transition_id=tr["id"])
    set_value(view, "home-care-agency", "")
    find(view, "save-transition").on_click(None)
    assert app.store.get(tr["id"])["fields"]["home_care_agency"] is None


def test_unknown(app):
    view = transition.build(app, FakeNav(), transition_id="00000000-0000-4000-8000-000000000000")
    assert "transition-missing" in keys(view)


def _handed_off_ready(app, nav):
    """A new transition with everything a hand-off needs, but no checklist item ticked."""
    pid = patient(app)
    view = transition.build(app, nav, patient_id=pid)
    set_value(view, "discharge-date", "2026-11-24")
    set_value(view, "home-care-agency", "Typed Agency")
    set_value(view, "accountable", "Liaison: Sam")
    return pid, view


def test_handing_off_with_unticked_items_asks_first(app):
    nav = FakeNav()
    pid, view = _handed_off_ready(app, nav)
    set_value(view, "check-equipment", True)
    find(view, "step-handed_off").on_click(None)
    (dialog,) = nav.dialogs
    assert "Not ticked yet: Patient taught, Medicines reconciled, Follow-up booked." in texts(
        dialog
    )
    find(dialog, "unticked-cancel").on_click(None)  # back to tick them: nothing saved
    assert nav.dialogs == [] and app.store.list("transition") == []
    for item in CHECKLIST_ITEMS:
        set_value(view, f"check-{item}", True)
    find(view, "step-handed_off").on_click(None)  # all ticked: no question
    assert nav.dialogs == []
    (tr,) = app.store.list("transition")
    assert tr["fields"]["status"] == "handed_off"


def test_a_refused_hand_off_does_not_ask_about_the_checklist(app):
    nav = FakeNav()
    view = transition.build(app, nav, patient_id=patient(app))
    find(view, "step-handed_off").on_click(None)
    assert nav.dialogs == [] and nav.refreshed == 1  # the errors show instead


def test_a_step_on_a_saved_transition_updates_the_screen_in_place(app):
    nav = FakeNav()
    pid, view = _handed_off_ready(app, nav)
    find(view, "save-transition").on_click(None)
    (tr,) = app.store.list("transition")
    view = transition.build(app, nav, transition_id=tr["id"])
    find(view, "step-handed_off").on_click(None)
    find(nav.dialogs[-1], "unticked-confirm").on_click(None)
    assert nav.refreshed == 0
    assert "waiting for the home-care agency" in find(view, "transition-status").value
    find(view, "step-acknowledged").on_click(None)
    assert nav.refreshed == 0 and "step-complete" in keys(view)
    set_value(view, "notes", "Keys with the neighbour")
    find(view, "save-transition").on_click(None)
    assert nav.refreshed == 0 and nav.toasts[-1] == "Transition saved"
    assert app.store.get(tr["id"])["fields"]["notes"] == "Keys with the neighbour"
    assert not transition._leave(app, f"transition:{tr['id']}").unsaved()


def test_the_discharge_date_has_a_calendar_and_the_sites_are_named(app):
    nav = FakeNav()
    view = transition.build(app, nav, patient_id=patient(app))
    find(view, "discharge-date-calendar").on_click(None)
    (picker,) = nav.dialogs
    assert isinstance(picker, ft.DatePicker)
    picker.value = dt.datetime(2026, 11, 30)
    picker.on_change(None)
    assert find(view, "discharge-date").value == "2026-11-30"
    named = {
        c.label
        for c in walk(view)
        if isinstance(c, ft.Semantics) and isinstance(c.content, ft.Dropdown)
    }
    assert named == {"Hospital", "Home-care agency"}


def test_saving_over_a_change_made_on_another_device_asks_first(app):
    nav = FakeNav()
    pid, view = _handed_off_ready(app, nav)
    find(view, "save-transition").on_click(None)
    (tr,) = app.store.list("transition")
    view = transition.build(app, nav, transition_id=tr["id"])
    set_value(view, "notes", "Keys with the neighbour")
    stamp = f"{9_999_999_999_999:015d}-00000-other-device"
    theirs = {
        **tr,
        "fields": {**tr["fields"], "accountable": "Liaison: Kim"},
        "clock": {**tr["clock"], "accountable": stamp},
        "rev": 7,
    }
    app.store.apply_pull([theirs], [], 7)
    find(view, "save-transition").on_click(None)
    (dialog,) = nav.dialogs
    assert "Accountable person was changed on another device to 'Liaison: Kim'" in texts(dialog)
    find(dialog, "stale-mine").on_click(None)
    assert app.store.get(tr["id"])["fields"]["accountable"] == "Liaison: Sam"
    assert app.store.get(tr["id"])["fields"]["notes"] == "Keys with the neighbour"
