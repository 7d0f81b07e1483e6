"""Screens that stay where the thumb is, in Chromium on a 360 x 740 phone (steps in order).

Adding a next step on a final visit, moving a referral on, and handing off a transition
change the screen in place: a control below the tapped one stays at the same height on
the screen, where a rebuilt screen would have jumped back to its top. Positions are read
from Flutter's accessibility tree, which follows the scroll.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import Ui

pytestmark = pytest.mark.browser
VIEWPORT = {"width": 360, "height": 740}
PIN = "975312"
PATIENT = "Ada Example (demo)"
STILL = 2  # px: the same place on the screen


def y_of(control: Any) -> float:
    box = control.bounding_box()
    assert box is not None, "the control is not on the screen"
    return float(box["y"])


def scrolled_to(ui: Ui, control: Any) -> float:
    """Scroll ``control`` into view (the screen must scroll for it) and return its height
    on the screen once the scroll has stopped."""
    top = y_of(control)
    ui.reach(control)
    now = y_of(control)
    assert now < top - 100, "the screen did not scroll: the test would prove nothing"
    assert 0 < now < VIEWPORT["height"]
    return now


def test_01_enrol(ui: Ui) -> None:
    ui.enrol(PIN)
    ui.see("New assessment")


def test_02_adding_a_next_step_keeps_the_final_visit_where_it_is(ui: Ui) -> None:
    ui.open_patient(PATIENT, shows="Timeline")
    ui.click("Assess")
    ui.see("Triage decision")
    ui.page.get_by_role("radio", name="Home visit").click()
    ui.page.get_by_role("checkbox", name="Food").click()
    ui.page.get_by_role("radio", name="Short-term contact").click()
    ui.settle(800)
    ui.page.get_by_role("checkbox", name="Patient consented").click()
    ui.settle(800)
    ui.click("Finalize")
    ui.see("Final: this visit can no longer change", timeout=20_000)
    adds = ui.page.get_by_role("button", name="Add: ")
    adds.first.wait_for()
    assert adds.count() >= 2
    first, second = (str(b.get_attribute("aria-label") or b.inner_text()) for b in adds.all()[:2])
    below = ui.button(second)  # below the first: it must not move when the first is added
    before = scrolled_to(ui, below)
    ui.button(first).click()
    ui.see(f"Added: {first.removeprefix('Add: ')}")
    ui.text("Added", exact=True).first.wait_for()
    assert abs(y_of(below) - before) <= STILL
    ui.button("Add all").click()
    adds.first.wait_for(state="detached")
    assert ui.button("Add all").count() == 0


def test_03_a_referral_step_keeps_the_screen_where_it_is(ui: Ui) -> None:
    ui.open_patient(PATIENT, shows="Timeline")
    ui.click("Refer")
    ui.see("Refer to")
    # Dropdowns carry their label as their accessible name (and the choice after it).
    assert ui.page.get_by_role("button", name="Need").count() == 1
    ui.button("Demo Food Bank Food", exact=False).first.click()
    ui.page.get_by_role("button", name="Need Food").wait_for()
    ui.click("Save and mark sent")
    ui.see("Status: Sent")
    save = ui.button("Save referral")
    before = scrolled_to(ui, ui.button("Accepted"))
    save_before = y_of(save)
    ui.button("Accepted").click()
    ui.see("Status: Accepted")
    ui.button("Completed").wait_for()
    assert abs(y_of(ui.button("Completed")) - before) <= STILL
    assert abs(y_of(save) - save_before) <= STILL


def test_04_handing_off_keeps_the_transition_where_it_is(ui: Ui) -> None:
    ui.open_patient(PATIENT, shows="Timeline")
    ui.click("Start transition")
    ui.see("From hospital")
    assert ui.page.get_by_role("button", name="Hospital").count() == 1
    assert ui.page.get_by_role("button", name="Pick discharge date").count() == 1
    ui.enter("Discharge date (YYYY-MM-DD)", "2026-12-01")
    ui.enter("Or type the agency's name", "Demo Home Care")
    ui.enter("Accountable person", "Liaison: Sam")
    for item in ("Patient taught", "Medicines reconciled", "Follow-up booked", "Equipment at home"):
        box = ui.page.get_by_role("checkbox", name=item)
        ui.reach(box)
        box.click()
    ui.settle(500)
    ui.click("Save")
    ui.see("Transition saved")
    step = ui.button("Mark handed off")
    step.wait_for()
    before = scrolled_to(ui, step)
    step.click()
    ui.see("waiting for the home-care agency")
    ui.button("Home care acknowledged").wait_for()
    assert abs(y_of(ui.button("Home care acknowledged")) - before) <= STILL
