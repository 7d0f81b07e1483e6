"""Photos end to end, in Chromium against a real server (steps run in order).

Enrol, open a demo patient, start an assessment, pick a photo in the browser's file
chooser, caption it, see its thumbnail in the patient's timeline, sync, and then, as a
second device, pull the visit and download the photo: byte-identical to what the app
prepared from the picked file (metadata stripped, downscaled, re-encoded).
"""

from __future__ import annotations

import asyncio
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from app import photos
from app.store import Store
from sync import attachments
from sync.client import SyncClient
from sync.engine import SyncEngine
from tests.app.photo_support import noise_photo
from tests.e2e.conftest import DEMO_PASSWORD, DEMO_USER, Ui

pytestmark = pytest.mark.browser
PIN = "246813"
PATIENT = "Ada Example (demo)"
CAPTION = "Loose rug on the stairs"
PICKED = noise_photo(31, (1200, 900))


def test_01_enrol_and_open_a_patient(ui: Ui) -> None:
    ui.enrol(PIN)
    ui.open_patient(PATIENT, shows="Photos and documents")


def test_02_pick_a_photo_for_a_visit(ui: Ui) -> None:
    ui.click("Assess")
    ui.see("Triage decision")
    ui.tap(ui.page.get_by_role("radio", name="Home visit"))
    ui.settle(800)
    add = ui.button("Add photo").first
    ui.reach(add)
    with ui.page.expect_file_chooser(timeout=10_000) as chooser:
        ui.tap(add)
    assert chooser.value.is_multiple()
    # The bytes go straight from the browser to the app: no file is written anywhere.
    chooser.value.set_files({"name": "IMG_2041.jpg", "mimeType": "image/jpeg", "buffer": PICKED})
    # The caption dialog opens at once; its title says the photo was added.
    ui.see("Photo added", timeout=30_000)
    ui.enter("Caption (optional)", CAPTION)
    ui.click("Save caption")
    ui.page.get_by_label(f"Photo: {CAPTION}").first.wait_for(state="attached", timeout=30_000)


def test_03_the_timeline_shows_it(ui: Ui) -> None:
    ui.click("Back")
    ui.see("Timeline")
    ui.page.get_by_label(f"Photo: {CAPTION}").first.wait_for(state="attached", timeout=30_000)
    ui.shot("15-photo-in-timeline")
    ui.tap(ui.page.get_by_label(f"Photo: {CAPTION}").first)
    ui.see("Photo", timeout=10_000)
    ui.click("Close")


def test_04_sync_then_a_second_device_sees_it(ui: Ui, liaison_server: str, tmp_path: Path) -> None:
    ui.tap(ui.tab("Sync"))
    ui.click("Sync now")
    ui.see("Synced just now", timeout=30_000)
    expected = photos.prepare(PICKED)

    async def second_device() -> None:
        async with SyncClient(liaison_server) as client:
            enrolled = await client.enrol(DEMO_USER, DEMO_PASSWORD, "second phone")
            client.token = enrolled["token"]
            store = Store.open(tmp_path / "second", os.urandom(32), node_id=enrolled["device_id"])
            assert (await SyncEngine(store, client).sync()).ok
            found = [a for v in store.list("visit") for a in v["fields"].get("attachments") or []]
            assert [a["caption"] for a in found] == [CAPTION]
            assert found[0]["sha256"] == expected.sha256
            full = await attachments.fetch(store, client, expected.sha256)
            thumb = await attachments.fetch(store, client, expected.thumbnail_sha256)
            assert full == expected.jpeg and thumb == expected.thumbnail
            store.close()

    # Playwright's sync API runs an event loop in this thread: the device gets its own.
    with ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, second_device()).result(timeout=60)
