"""Two browser tabs on one app (one data directory), in Chromium against a real server.

The newer tab takes over; the older one shows "Liaison is open in another window" and its
"Use Liaison here" takes the data back (the other tab locks). Unlocking in either never
opens the store twice: no "the store is already open", no traceback in the app's log.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from server import launch
from tests.e2e.conftest import VIEWPORT, Ui

pytestmark = pytest.mark.browser
PIN = "246813"
ELSEWHERE = "Liaison is open in another window"


@pytest.fixture(scope="module")
def served(
    tmp_path_factory: pytest.TempPathFactory, liaison_server: str
) -> Iterator[tuple[str, Path]]:
    """The app in web mode (data in tmp) and its log file, read at the end."""
    work = tmp_path_factory.mktemp("app")
    app = launch.AppProcess(work / "device", work / "app.log", server_url=liaison_server)
    with app:
        yield app.url, app.log


@pytest.fixture(scope="module")
def tabs(chromium_path: str, served: tuple[str, Path]) -> Iterator[Any]:
    """One browser context (as one browser's two tabs); pages are opened by the test."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path, args=["--no-sandbox"])
        context = browser.new_context(viewport=VIEWPORT)
        context.set_default_timeout(30_000)
        try:
            yield context
        finally:
            browser.close()


def _tab(context: Any, url: str) -> Ui:
    ui = Ui(context.new_page())
    ui.open(url)
    return ui


def _front(ui: Ui) -> Ui:
    ui.page.bring_to_front()
    return ui


def _unlock(ui: Ui) -> None:
    ui.see("Liaison is locked")
    for digit in PIN:
        ui.click(digit)
    ui.click("Unlock")
    ui.tab("Patients").wait_for()


def test_the_older_tab_steps_aside_and_takes_back_without_a_crash(
    tabs: Any, served: tuple[str, Path]
) -> None:
    url, log = served
    first = _tab(tabs, url)
    first.enrol(PIN)
    first.tab("Patients").wait_for()

    second = _tab(tabs, url)  # the same app in a second tab takes over
    _unlock(second)

    _front(first).see(ELSEWHERE)
    assert first.tab("Patients").count() == 0  # no patient screen behind it
    first.shot("two-tabs-elsewhere")
    first.click("Use Liaison here")
    _unlock(first)  # this crashed with "the store is already open" before

    _front(second).see(ELSEWHERE)
    second.click("Use Liaison here")
    _unlock(second)
    _front(first).see(ELSEWHERE)

    text = log.read_text(errors="replace")
    assert "Traceback" not in text and "already open" not in text
