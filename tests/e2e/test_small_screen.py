"""The main screens on a 360 px wide phone, in Chromium: nothing runs off the right edge and
every control is a 48 px touch target (measured on Flutter's accessibility tree)."""

from __future__ import annotations

from typing import Any

import pytest

from tests.e2e.conftest import Ui

pytestmark = pytest.mark.browser
VIEWPORT = {"width": 360, "height": 740}
PIN = "864213"
PATIENT = "Ada Example (demo)"
TOUCH = 48
APP_BAR = 56  # Material's app bar height: content scrolls beneath it
CLIP_MARGIN = 30  # the list's own bottom edge sits a little above the tab bar
ROLES = ("button", "tab", "textbox", "checkbox", "radio", "switch", "link")


def problems(ui: Ui) -> list[str]:
    """Controls on screen narrower/shorter than a touch target or past the right edge.

    A control half scrolled under the app bar or the tab bar shows only its visible part
    in the accessibility tree, so only controls wholly between the two are measured.
    """
    tree = ui.page.locator("flt-semantics-host")  # not Flutter's hidden editing input
    tabs = [b for t in tree.get_by_role("tab").all() if (b := t.bounding_box())]
    bottom = min((b["y"] for b in tabs), default=VIEWPORT["height"])
    found = []
    for role in ROLES:
        for control in tree.get_by_role(role).all():
            box: dict[str, Any] | None = control.bounding_box()
            if box is None or control.is_disabled():
                continue  # (selectable text is a read-only "text field" to the tree)
            if role != "tab" and (
                box["y"] <= APP_BAR or box["y"] + box["height"] >= bottom - CLIP_MARGIN
            ):
                continue  # maybe scrolled partly out of the visible list
            name = (control.get_attribute("aria-label") or control.inner_text() or role)[:40]
            if name == role:
                name = control.evaluate("e => e.outerHTML.slice(0, 300)")
            if box["x"] + box["width"] > VIEWPORT["width"] + 1 or box["x"] < -1:
                found.append(f"{role} {name!r} runs off the screen: {box}")
            # Flutter pads a radio to 48 px on Android and iOS (MaterialTapTargetSize.padded)
            # but shrink-wraps it to 40 in a desktop browser, where this runs.
            if role != "radio" and min(box["width"], box["height"]) < TOUCH - 0.5:
                found.append(f"{role} {name!r} is smaller than {TOUCH} px: {box}")
    return found


def test_01_enrol(ui: Ui) -> None:
    ui.see("Set up Liaison")
    assert problems(ui) == []
    ui.enrol(PIN)


@pytest.mark.parametrize(
    "tab,sign",
    [
        ("Today", "Office round"),
        ("Patients", PATIENT),
        ("Sync", "Waiting to be sent"),
        ("Settings", "Server and device"),
    ],
)
def test_02_main_tabs_fit(ui: Ui, tab: str, sign: str) -> None:
    ui.tap(ui.tab(tab))
    ui.see(sign)
    ui.settle(800)
    assert problems(ui) == []


def test_03_patient_and_assessment_fit(ui: Ui) -> None:
    ui.open_patient(PATIENT, shows="Timeline")
    ui.settle(800)
    assert problems(ui) == []
    ui.click("Assess")
    ui.see("Triage decision")
    ui.settle(800)
    assert problems(ui) == []
