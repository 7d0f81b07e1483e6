"""A new liaison's first day, in Chromium against a real server (steps run in order).

Enrol with the demo credentials, choose a PIN, wait for the first sync, find a demo
patient, record a home visit with a triage decision and finalize it, make a referral, run
an office round with two patients (one new), quick-add a patient, sync, check through the
server's API that every record arrived, then lock, a wrong PIN, and unlock. Screenshots
of each main screen (demo data only) go to docs/screenshots/.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import DEMO_PASSWORD, DEMO_USER, Ui

pytestmark = pytest.mark.browser
PIN = "246813"
PATIENT = "Ada Example (demo)"
ROUND_PATIENT = "Bo Example (demo)"
ROUND_NEW = "Zed Roundnew (demo)"
QUICK_ADD = "Zoe Newcomer (demo)"


def server_records(base: str) -> list[dict[str, Any]]:
    """Everything the demo liaison can see on the server, through a second device."""
    enrolled = httpx.post(
        f"{base}/api/v1/devices",
        json={"username": DEMO_USER, "password": DEMO_PASSWORD, "device_name": "e2e check"},
    )
    enrolled.raise_for_status()
    headers = {"Authorization": f"Bearer {enrolled.json()['token']}"}
    records, cursor = [], 0
    while True:
        page = httpx.get(
            f"{base}/api/v1/sync/pull", params={"cursor": cursor, "limit": 1000}, headers=headers
        ).json()
        records += page["records"]
        cursor = page["cursor"]
        if not page["more"]:
            return records


def open_patient(ui: Ui, name: str, hides: str) -> None:
    """Find the patient by searching right after the tab change (the first tap on the
    field takes it), and open their page."""
    ui.open_tab("Patients", shows=name)
    ui.search("Search patients by name", name.split(" (")[0].lower(), hides=hides)
    ui.tap(ui.text(name).first)
    ui.see("Timeline")


def test_01_enrol(ui: Ui) -> None:
    ui.see("Set up Liaison")
    ui.shot("01-sign-in")
    ui.type("Username", DEMO_USER)
    ui.type("Password", "not-the-password")
    ui.click("Sign in")
    ui.see("Wrong username or password.")
    ui.type("Password", DEMO_PASSWORD)
    ui.click("Sign in")
    ui.see("Signed in as demo", timeout=30_000)


def test_02_choose_pin_and_first_sync(ui: Ui) -> None:
    ui.type("New PIN", "123456")
    ui.type("New PIN again", "123456")
    ui.click("Set PIN")
    ui.see("too easy")
    ui.shot("02-choose-pin")
    ui.type("New PIN", PIN)
    ui.type("New PIN again", PIN)
    ui.click("Set PIN")
    ui.button("Continue").wait_for(timeout=60_000)
    ui.see("received")
    ui.shot("03-first-sync")
    ui.click("Continue")
    ui.see("New assessment")
    ui.shot("04-today")


def test_03_find_a_demo_patient(ui: Ui) -> None:
    ui.tap(ui.tab("Patients"))
    ui.see(PATIENT)
    ui.shot("05-caseload")
    open_patient(ui, PATIENT, hides=ROUND_PATIENT)
    ui.see("Verbal consent")
    ui.shot("06-patient")


def test_04_home_visit_with_triage_finalized(ui: Ui) -> None:
    ui.click("Assess")
    ui.see("Triage decision")
    ui.tap(ui.page.get_by_role("radio", name="Home visit"))
    ui.tap(ui.page.get_by_role("checkbox", name="Food"))
    ui.tap(ui.page.get_by_role("radio", name="Short-term contact"))
    ui.settle(800)
    ui.tap(ui.page.get_by_role("checkbox", name="Patient consented"))
    ui.settle(800)
    ui.shot("07-assessment")
    ui.click("Finalize")
    ui.see("Final: this visit can no longer change", timeout=20_000)
    ui.shot("08-visit-final")


def test_05_referral(ui: Ui) -> None:
    open_patient(ui, PATIENT, hides=ROUND_PATIENT)
    ui.click("Refer")
    ui.see("Refer to")
    ui.tap(ui.button("Demo Food Bank Food", exact=False).first)
    ui.tap(ui.page.get_by_role("radio", name="Soon"))
    ui.settle(500)
    ui.shot("09-referral")
    ui.click("Save and mark sent")
    ui.see("Referral saved and marked sent")


def test_06_office_round_with_two_patients(ui: Ui) -> None:
    ui.tap(ui.tab("Today"))
    ui.click("Office round")
    ui.see("Patients discussed")
    ui.type("Attendees (separate with commas)", "Dr Lee, RN Ortiz")
    ui.type("Patient (search, or a new name)", "Bo Example")
    ui.click(ROUND_PATIENT)
    ui.type("Note", "Discharged last week; lives alone.")
    ui.type("Action items", "Call son tomorrow", exact=False)
    ui.click("Add patient")
    ui.see(f"Added {ROUND_PATIENT}")
    ui.type("Patient (search, or a new name)", ROUND_NEW)
    ui.see("will be added")
    ui.type("Note", "New referral from Dr Lee.")
    ui.click("Add patient")
    ui.see(f"Added {ROUND_NEW}")
    ui.shot("10-round")
    ui.click("Finish round")


def test_07_quick_add_a_patient(ui: Ui) -> None:
    ui.open_tab("Patients", shows="Add patient")  # right after Finish round
    ui.click("Add patient")
    # In a dialog that just opened: typed with key presses and checked (see Ui.enter).
    ui.enter("Full name", QUICK_ADD)
    ui.enter("Phone (optional)", "555-0199")
    ui.click("Add")
    ui.see("Nothing recorded yet")


def test_08_sync_and_check_the_server(ui: Ui, liaison_server: str) -> None:
    ui.open_tab("Sync", shows="Waiting to be sent")  # right after the new patient opened
    ui.click("Sync now")
    ui.see("Synced just now", timeout=30_000)
    ui.see("Waiting to be sent")
    ui.shot("11-sync")
    records = server_records(liaison_server)
    by_type: dict[str, list[dict[str, Any]]] = {}
    for record in records:
        by_type.setdefault(record["type"], []).append(record)
    patients = {r["fields"]["name"]: r["id"] for r in by_type["patient"]}
    assert {PATIENT, ROUND_PATIENT, ROUND_NEW, QUICK_ADD} <= set(patients)
    today = dt.date.today().isoformat()
    visits = [
        v["fields"]
        for v in by_type["visit"]
        if v["fields"]["patient_id"] == patients[PATIENT]
        and v["fields"].get("started_at", "").startswith(today)
    ]
    assert [(v["setting"], v["triage"], v["status"]) for v in visits] == [
        ("home", "short_term_contact", "final")
    ]
    referrals = [
        r["fields"]
        for r in by_type["referral"]
        if r["fields"]["patient_id"] == patients[PATIENT]
        and r["fields"].get("status") == "sent"
        and r["fields"].get("urgency") == "soon"
    ]
    assert len(referrals) == 1 and referrals[0].get("resource_id")
    rounds = [r for r in by_type["round"] if r["fields"]["date"] == today]
    assert len(rounds) == 1 and "Dr Lee" in rounds[0]["fields"]["attendees"]
    entries = {
        e["fields"]["patient_id"]
        for e in by_type["round_entry"]
        if e["fields"]["round_id"] == rounds[0]["id"]
    }
    assert entries == {patients[ROUND_PATIENT], patients[ROUND_NEW]}
    tasks = [
        t["fields"]["title"]
        for t in by_type.get("task", [])
        if t["fields"]["patient_id"] == patients[ROUND_PATIENT]
    ]
    assert "Call son" in tasks


def test_09_settings_lock_wrong_pin_unlock(ui: Ui) -> None:
    ui.tap(ui.tab("Settings"))
    ui.see("Server and device")
    ui.shot("12-settings")
    ui.click("Lock now")
    ui.see("Liaison is locked")
    assert ui.text(PATIENT).count() == 0
    for digit in "999999":
        ui.click(digit)
    ui.click("Unlock")
    ui.see("Wrong PIN. 9 attempts left.")
    ui.shot("13-unlock-wrong-pin")
    for digit in PIN:
        ui.click(digit)
    ui.click("Unlock")
    ui.see("Server and device")  # back where we were


def test_10_dark_theme(ui: Ui) -> None:
    ui.page.emulate_media(color_scheme="dark")
    ui.tap(ui.tab("Today"))
    ui.see("New assessment")
    ui.shot("14-today-dark")
    ui.page.emulate_media(color_scheme="light")
