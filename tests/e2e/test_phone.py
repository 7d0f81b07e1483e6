"""Phone behaviour in Chromium with an Android phone's user agent (steps run in order):
Back never drops a half-typed form without asking, the soft keyboard never hides the field
being typed in, a rotation keeps what was typed, and the app switcher's preview is covered.

Flutter treats the page as a phone's: a smaller window while a field is focused is the soft
keyboard opening (its height becomes a bottom inset, as on Android), and the window losing
focus is the app going ``INACTIVE`` (the notification shade, the app switcher).
The system back gesture itself has no browser equivalent: the app bar's Back and the
browser's Back take the same way out (tests/app/test_views_phone.py drives the gesture).
"""

from __future__ import annotations

import io

import pytest
from PIL import Image

from tests.e2e.conftest import Ui
from tests.e2e.test_small_screen import problems

pytestmark = pytest.mark.browser
VIEWPORT = {"width": 360, "height": 740}
USER_AGENT = (
    "Mozilla/5.0 (Linux; Android 14; Pixel 7) AppleWebKit/537.36 (KHTML, like "
    "Gecko) Chrome/126.0.0.0 Mobile Safari/537.36"
)
PIN = "975312"
PATIENT = "Ada Example (demo)"
KEYBOARD = 360  # px the soft keyboard takes from the bottom of the screen
APP_BAR = 56
TYPED = "Lives alone; stairs are hard"


def colours(ui: Ui) -> int:
    """How far apart the darkest and lightest pixels on the screen are (0: one colour)."""
    low, high = Image.open(io.BytesIO(ui.page.screenshot())).convert("L").getextrema()
    return int(high) - int(low)


def arrive(ui: Ui, sign: str) -> None:
    """Wait for the screen showing ``sign`` and let it settle (screens change without a
    transition now; its fields may still be laid out)."""
    ui.see(sign)
    ui.settle(1000)


def held(ui: Ui, name: str) -> str:
    """The text in the field labelled ``name`` (Flutter puts it in the DOM while focused)."""
    box = ui.field(name)
    ui.reach(box)
    box.click()
    ui.settle(400)
    return str(box.input_value())


def test_01_enrol(ui: Ui) -> None:
    ui.enrol(PIN)
    ui.see("New assessment")


def test_02_back_asks_before_dropping_a_half_typed_referral(ui: Ui) -> None:
    ui.open_patient(PATIENT, shows="Timeline")
    arrive(ui, "Timeline")
    ui.click("Refer")
    arrive(ui, "Refer to")
    ui.enter("Or type who it goes to", "Meals on Wheels")
    ui.click("Back")
    ui.see("Discard changes?")
    assert problems(ui) == []  # 48 px targets, on screen at 360 px
    ui.click("Keep editing")
    ui.gone("Discard changes?")
    assert held(ui, "Or type who it goes to") == "Meals on Wheels"
    ui.page.go_back()  # the browser's Back: the same question
    ui.see("Discard changes?")
    ui.click("Discard")
    ui.see("Timeline")
    ui.gone("Refer to")
    ui.click("Refer")
    arrive(ui, "Refer to")
    assert held(ui, "Or type who it goes to") == ""
    ui.click("Back")  # nothing typed: no question
    arrive(ui, "Timeline")
    assert ui.text("Discard changes?").count() == 0


def test_03_the_keyboard_never_hides_the_field_being_typed_in(ui: Ui) -> None:
    ui.click("Assess")
    arrive(ui, "Triage decision")
    summary = ui.field("Summary")
    summary.scroll_into_view_if_needed()
    for _ in range(30):  # the field low on the screen, where a keyboard would cover it
        box = summary.bounding_box()
        if box and box["y"] > VIEWPORT["height"] - KEYBOARD + 40:
            break
        ui.scroll(-40)
        ui.settle(150)
    ui.enter("Summary", TYPED)
    assert summary.bounding_box()["y"] > VIEWPORT["height"] - KEYBOARD  # where it goes
    ui.page.set_viewport_size(
        {"width": VIEWPORT["width"], "height": VIEWPORT["height"] - KEYBOARD}
    )  # keyboard opens
    visible = VIEWPORT["height"] - KEYBOARD
    for _ in range(20):
        box = summary.bounding_box()
        if box and box["y"] >= APP_BAR and box["y"] + 40 <= visible:
            break
        ui.settle(200)
    box = summary.bounding_box()
    assert box and box["y"] >= APP_BAR and box["y"] + 40 <= visible, box
    ui.page.keyboard.type(" (typed with the keyboard up)")
    ui.settle(400)
    assert summary.input_value() == TYPED + " (typed with the keyboard up)"
    ui.page.set_viewport_size(VIEWPORT)  # keyboard closes
    ui.settle(800)


def test_04_a_rotation_keeps_what_was_typed(ui: Ui) -> None:
    typed = TYPED + " (typed with the keyboard up)"
    ui.page.set_viewport_size({"width": VIEWPORT["height"], "height": VIEWPORT["width"]})
    ui.settle(1000)
    ui.see("Triage decision")
    assert ui.field("Summary").input_value() == typed  # still focused, still typed
    ui.page.set_viewport_size(VIEWPORT)
    ui.settle(1000)
    assert ui.field("Summary").input_value() == typed
    ui.click("Back")  # the autosaved draft: no question
    arrive(ui, "Timeline")
    ui.click("Assess")  # today's draft again, from the phone's store
    arrive(ui, "Triage decision")
    assert held(ui, "Summary") == typed


def test_05_the_app_switcher_sees_a_cover_not_the_patient(ui: Ui) -> None:
    ui.click("Back")
    arrive(ui, "Timeline")
    ui.page.mouse.move(VIEWPORT["width"] - 1, 300)  # off every control: no tooltip on top
    ui.settle(1000)
    assert colours(ui) > 100  # the patient's page: dark text on a light screen
    ui.page.evaluate("window.dispatchEvent(new Event('blur'))")  # the app goes INACTIVE
    for _ in range(20):
        if colours(ui) <= 8:
            break
        ui.settle(200)
    assert colours(ui) <= 8  # one colour: nothing of the patient's page shows
    ui.page.evaluate("window.dispatchEvent(new Event('focus'))")  # back in front
    for _ in range(20):
        if colours(ui) > 100:
            break
        ui.settle(200)
    assert colours(ui) > 100
    ui.see("Timeline")
    assert ui.text("Liaison is locked").count() == 0  # covered, never locked
