"""An expired sign-in, in Chromium against a real server (steps run in order).

The server here ends every sign-in 10 minutes after enrolment, and the test moves the
server's clock past that (``liaison_clock``) instead of waiting. The liaison keeps working
after that, the sync says to sign in again, the Sync screen asks for the password, and the
work done meanwhile reaches the server: nothing is erased, nothing typed again.
"""

from __future__ import annotations

import pytest

from server.launch import ClockFile
from tests.e2e.conftest import DEMO_PASSWORD, Ui
from tests.e2e.test_app_flow import server_records

pytestmark = pytest.mark.browser
EXPIRES_AFTER = 600
SERVER_ENV = {"LIAISON_TOKEN_ABSOLUTE_SECONDS": str(EXPIRES_AFTER)}
PIN = "135792"
NEW_PATIENT = "Ivy Latecomer (demo)"


def test_01_enrol(ui: Ui) -> None:
    ui.enrol(PIN)


def test_02_work_goes_on_after_the_sign_in_expired(ui: Ui, liaison_clock: ClockFile) -> None:
    # The server runs 11 minutes ahead of the phone from here on: the phone's stamps are in
    # its past, which it accepts (it refuses only stamps too far in its future).
    liaison_clock.advance(EXPIRES_AFTER + 60)
    ui.tap(ui.tab("Patients"))
    ui.click("Add patient")
    ui.enter("Full name", NEW_PATIENT)
    ui.click("Add")
    ui.see("Nothing recorded yet")  # saved on the phone
    ui.tap(ui.tab("Sync"))
    if ui.button("Sync now").count():  # unless the sync after the save already ran
        ui.click("Sync now")
    ui.see("Your sign-in has expired", timeout=30_000)
    ui.see("Waiting to be sent")
    ui.shot("16-sign-in-expired")


def test_03_signing_in_again_sends_it(ui: Ui, liaison_server: str) -> None:
    ui.click("Sign in again")
    ui.see("Your sign-in as demo has expired")
    ui.type("Password", DEMO_PASSWORD)
    ui.click("Sign in")
    ui.see("Synced just now", timeout=30_000)
    assert NEW_PATIENT in {
        r["fields"].get("name") for r in server_records(liaison_server) if r["type"] == "patient"
    }
