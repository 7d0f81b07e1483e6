"""A patient's details edited on a 360 px phone, in Chromium against a real server (steps
run in order): open a demo patient, change the phone, the date of birth (typed, then
confirmed in the calendar) and the consent, save, and see them on the patient page; then
"Add patient" with a name already in the caseload warns, and "Use this patient" opens the
existing one; a sync takes the details to the server."""

from __future__ import annotations

import datetime as dt

import pytest

from tests.e2e.conftest import Ui
from tests.e2e.test_app_flow import server_records
from tests.e2e.test_small_screen import problems

pytestmark = pytest.mark.browser
VIEWPORT = {"width": 360, "height": 740}
PIN = "531864"
PATIENT = "Ada Example (demo)"
BORN = "1950-05-17"


def _age(born: str) -> int:
    day, b = dt.date.today(), dt.date.fromisoformat(born)
    return day.year - b.year - ((day.month, day.day) < (b.month, b.day))


def test_01_enrol(ui: Ui) -> None:
    ui.enrol(PIN)


def test_02_edit_details(ui: Ui) -> None:
    ui.open_patient(PATIENT, shows="Timeline")
    ui.reach(ui.button("Edit details"))
    ui.click("Edit details")
    ui.field("Full name").wait_for()
    assert problems(ui) == []
    ui.enter("Phone", "555 0777")
    ui.enter("Date of birth (YYYY-MM-DD)", BORN)
    # The calendar opens on the typed date; OK keeps it (no day lost to a time zone).
    ui.click("Pick date of birth")
    ui.click("OK")
    ui.button("OK").wait_for(state="detached")
    written = ui.page.get_by_role("radio", name="Written consent")
    ui.reach(written)
    ui.tap(written)
    ui.settle(500)
    ui.shot("17-patient-edit")
    save = ui.button("Save")
    ui.reach(save)
    ui.tap(save)
    ui.see("Details saved")
    ui.see("Written consent")
    ui.see("Call 555 0777")
    ui.see(f"Age {_age(BORN)}")


def test_03_a_likely_duplicate_opens_the_existing_patient(ui: Ui) -> None:
    ui.open_tab("Patients", shows="Add patient")
    ui.click("Add patient")
    ui.enter("Full name", PATIENT)
    ui.click("Add")
    ui.see("This patient may already be here")
    ui.button("Add anyway").wait_for()
    ui.click("Use this patient")
    ui.see("Timeline")
    ui.see("Written consent")  # the patient edited above: the existing one
    ui.tap(ui.tab("Patients"))
    ui.see("Add patient")
    ui.see(PATIENT)  # the list is drawn after its header
    assert ui.text(PATIENT).count() == 1  # no second one was added (a row reads "name, seen")


def test_04_the_server_has_the_details(ui: Ui, liaison_server: str) -> None:
    ui.open_tab("Sync", shows="Sync now")
    ui.click("Sync now")
    ui.see("Synced just now", timeout=30_000)
    (ada,) = [
        r["fields"]
        for r in server_records(liaison_server)
        if r["type"] == "patient" and r["fields"].get("name") == PATIENT
    ]
    # The exact day typed and kept by the calendar's OK, and the consent chosen.
    assert (ada["phone"], ada["birth_date"], ada["consent_status"]) == ("555 0777", BORN, "written")
