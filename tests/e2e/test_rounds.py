"""Office rounds a liaison comes back to, in Chromium at 360x740 (steps run in order).

Start a round, add two patients (one found, one new), finish; open "Past rounds", reopen
the round, edit an entry, remove one; type half a row, lock, unlock: the row is still there.
"""

from __future__ import annotations

import pytest
from playwright.sync_api import expect

from tests.e2e.conftest import Ui
from tests.e2e.test_small_screen import problems

pytestmark = pytest.mark.browser
VIEWPORT = {"width": 360, "height": 740}
PIN = "592817"
FOUND = "Bo Example (demo)"
NEW = "Ivy Roundtrip (demo)"
NEXT = "Patient (search, or a new name)"


def test_01_enrol(ui: Ui) -> None:
    ui.enrol(PIN)
    ui.see("Past rounds")


def test_02_a_round_with_two_patients(ui: Ui) -> None:
    ui.click("Office round")
    ui.see("Patients discussed")
    ui.type("Attendees (separate with commas)", "Dr Lee")
    ui.type(NEXT, "Bo Example")
    ui.click(FOUND)
    ui.see(f"Patient: {FOUND}")
    ui.type("Note", "Lives alone.")
    ui.type("Action items", "Call son tomorrow", exact=False)
    ui.click("Add patient")
    ui.see(f"Added {FOUND}")
    ui.type(NEXT, NEW)
    ui.see("will be added")
    ui.type("Note", "New from Dr Lee.")
    ui.click("Add patient")
    ui.see(f"Added {NEW}")
    ui.click("Finish round")
    ui.see("Round saved: 2 patients")


def test_03_reopen_from_past_rounds_edit_and_remove(ui: Ui) -> None:
    ui.click("Past rounds")
    ui.see("Past rounds (1)")
    ui.settle(800)
    assert problems(ui) == []
    ui.shot("18-past-rounds")
    # The row, a button: not the "Round saved: 2 patients" toast that may still be up.
    row = ui.button("2 patients", exact=False).first
    ui.reach(row)
    row.click()
    ui.see("Patients discussed (2)")
    ui.click(f"Edit {FOUND}")
    ui.type(f"Note about {FOUND}", "Son visits daily now.")
    ui.click("Save changes")
    ui.see(f"Saved changes for {FOUND}")
    ui.see("Son visits daily now.")
    ui.reach(ui.button(f"Remove {NEW}"))
    ui.click(f"Remove {NEW}")
    ui.see("Tasks already made from it are not deleted")
    ui.click("Remove")
    ui.see("Patients discussed (1)")
    ui.see(f"Removed {NEW} from the round")
    assert ui.button(f"Remove {NEW}").count() == 0


def test_04_a_half_typed_row_survives_lock(ui: Ui) -> None:
    ui.type(NEXT, "Half Typed (demo)")
    ui.see("will be added")
    ui.type("Note", "to be continued")
    ui.click("Lock now")
    ui.see("Liaison is locked")
    assert ui.text("Half Typed").count() == 0
    for digit in PIN:
        ui.click(digit)
    ui.click("Unlock")
    ui.see("Patients discussed (1)")
    name = ui.field(NEXT)
    ui.focus(name)  # Flutter puts a field's text in the page while the field has the focus
    expect(name).to_have_value("Half Typed (demo)")
    ui.settle(800)
    assert problems(ui) == []
    # A multiline field's text is not in the accessibility tree: adding the row shows it.
    ui.reach(ui.button("Add patient"))
    ui.click("Add patient")
    ui.see("Added Half Typed (demo)")
    ui.see("Patients discussed (2)")
    ui.see("to be continued")
