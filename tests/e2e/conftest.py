"""End-to-end fixtures: a real server and the app in web mode, each a subprocess in tmp.

``liaison_server`` seeds the demo data and serves the API on a free port (``server.launch``);
``liaison_clock`` moves that server's clock forward (a sign-in expires at once);
``liaison_app`` serves the Flet app (``launch.AppProcess``, as ``make run`` serves it) with
its data directory in tmp, pointed at that server; ``ui`` is a Playwright page on it with
Flutter's accessibility tree switched on, plus helpers to find controls by role and name.

A module's tests that use ``ui`` are the steps of one flow: once one fails, the later ones
are skipped, naming it ("an earlier step of this flow failed: test_03_...").
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import expect

from server import launch

ROOT = Path(__file__).resolve().parents[2]
# `make screenshots` refreshes the README's pictures; a plain test run keeps its own under
# var/ (ignored by git) so that running the suite never changes tracked files.
SCREENSHOTS = Path(os.environ.get("LIAISON_SCREENSHOTS") or ROOT / "var" / "screenshots")
VIEWPORT = {"width": 412, "height": 915}
# reach() scrolls a control out from under the app bar (56 px) and the tab bar (80 px).
# After a tap takes the focus, Flutter places the caret a moment later: keys wait this long.
FOCUS_SETTLE_MS = 200
APP_BAR, TAB_BAR = 56, 80
DEMO_USER, DEMO_PASSWORD = "demo", "demo-liaison-2026"
# True once no hover tooltip is on the screen: an open tooltip's node is what its control's
# ``aria-owns`` names, and it leaves the DOM when the tooltip has faded out.
NO_TOOLTIP = """() => [...document.querySelectorAll('[aria-owns]')]
    .every(e => !document.getElementById(e.getAttribute('aria-owns')))"""


@pytest.fixture(scope="module")
def liaison_clock(tmp_path_factory: pytest.TempPathFactory) -> launch.ClockFile:
    """The demo server's clock: ``liaison_clock.advance(seconds)`` moves its time forward
    (a sign-in expires without waiting for it)."""
    return launch.ClockFile(tmp_path_factory.mktemp("clock") / "offset")


@pytest.fixture(scope="module")
def liaison_server(
    request: pytest.FixtureRequest,
    tmp_path_factory: pytest.TempPathFactory,
    liaison_clock: launch.ClockFile,
) -> Iterator[str]:
    """The base URL of a seeded demo server (SQLite in tmp); a test module's
    ``SERVER_ENV`` dict adds settings (``LIAISON_<NAME>``)."""
    work = tmp_path_factory.mktemp("server")
    url = f"sqlite:///{work / 'liaison.db'}"
    env = {**liaison_clock.env(), **getattr(request.module, "SERVER_ENV", {})}
    launch.seed_demo(url, env=env, cwd=work)
    with launch.ServerProcess(url, work / "server.log", env=env, cwd=work) as server:
        yield server.base


@pytest.fixture(scope="module")
def liaison_app(tmp_path_factory: pytest.TempPathFactory, liaison_server: str) -> Iterator[str]:
    """The URL of the app served in web mode, its data directory in tmp."""
    work = tmp_path_factory.mktemp("app")
    app = launch.AppProcess(work / "device", work / "app.log", server_url=liaison_server)
    with app:
        yield app.url


class Ui:
    """A Playwright page on the Flet app, driven through its accessibility tree."""

    def __init__(self, page: Any) -> None:
        self.page = page

    def open(self, url: str, *, mobile: bool = False) -> None:
        self.page.goto(url)
        self.page.wait_for_selector("flt-semantics-placeholder", state="attached", timeout=90_000)
        self.page.wait_for_timeout(1000)
        if not mobile:
            self.page.locator("flt-semantics-placeholder").evaluate("el => el.click()")
            self.page.wait_for_timeout(500)
            return
        # With a phone's user agent the placeholder covers the page and wants a real tap.
        size = self.page.viewport_size
        for _ in range(5):
            self.page.mouse.click(size["width"] / 2, size["height"] / 2)
            self.page.wait_for_timeout(800)
            if self.page.locator("flt-semantics-host flt-semantics").count():
                return
        raise AssertionError("Flutter's accessibility tree did not switch on")

    def button(self, name: str, exact: bool = True) -> Any:
        return self.page.get_by_role("button", name=name, exact=exact)

    def field(self, name: str, exact: bool = True) -> Any:
        return self.page.get_by_role("textbox", name=name, exact=exact).first

    def tab(self, name: str) -> Any:
        return self.page.get_by_role("tab", name=name)

    def text(self, text: str, exact: bool = False) -> Any:
        return self.page.get_by_text(text, exact=exact)

    def tap(self, control: Any) -> None:
        """Tap ``control`` and let the screen settle."""
        control.click()
        self.page.wait_for_timeout(400)

    def click(self, name: str, *, timeout: float = 30_000, exact: bool = True) -> None:
        self.button(name, exact).first.click(timeout=timeout)
        self.page.wait_for_timeout(400)

    def lift(self) -> None:
        """Take the pointer off the page, as a finger leaves the glass, and wait until no
        hover tooltip is showing.

        A mouse left on a control keeps its hover tooltip open (a tab's, an icon button's),
        and Flutter web moves the screen's accessibility nodes when that tooltip closes,
        which takes the DOM focus from a text field tapped meanwhile (flutter/flutter#192792):
        typing then goes nowhere. So the pointer is lifted before a text field is tapped.
        """
        self.page.mouse.move(-10, -10)
        self.page.wait_for_function(NO_TOOLTIP, timeout=10_000)

    def focus(self, box: Any) -> None:
        """Tap the text field ``box`` and check that it took the keyboard focus."""
        self.lift()
        self.reach(box)
        box.click()
        expect(box).to_be_focused(timeout=5_000)

    def type(self, name: str, value: str, *, exact: bool = True) -> None:
        """Replace the text of the field labelled ``name`` and check that the field holds it.

        Flutter reads a plain field's DOM input (``fill``), but an obscured one only from
        key presses, so a password field is typed into key by key.
        """
        box = self.field(name, exact)
        self.focus(box)  # first: Flutter attaches its editing listeners on focus
        if box.get_attribute("type") == "password":
            self.clear(box)
            self.page.keyboard.type(value)
        else:
            self.page.wait_for_timeout(FOCUS_SETTLE_MS)
            box.fill(value)
            expect(box).to_have_value(value)
        self.page.wait_for_timeout(400)

    def clear(self, box: Any) -> None:
        """Empty the focused field ``box`` with the keys a person uses, and check it.

        Not right after the tap: the DOM input takes the focus at once, but Flutter sets
        the tap's caret a moment later, and a select-all before that is undone (the
        Backspace then took one character: "1933-06-1" + the new date, once in 11 runs).
        """
        self.page.wait_for_timeout(FOCUS_SETTLE_MS)
        self.page.keyboard.press("Control+A")
        self.page.keyboard.press("Backspace")
        if box.get_attribute("type") != "password":  # an obscured field shows no value
            expect(box).to_have_value("")

    def reach(self, control: Any) -> None:
        """Bring ``control`` well inside the screen by scrolling as a finger does, and wait
        until Flutter's scroll has stopped.

        Not Playwright's own scroll into view: that scrolls the page's accessibility nodes at
        once, but Flutter moves what is drawn only frames later, so a tap right after it lands
        on whatever was drawn there (the round's name field, 250 px above "Action items").
        A control already well inside the screen is left where it is.
        """
        control.wait_for(state="attached")
        height = self.page.viewport_size["height"]
        box = self._settled_box(control)
        for _ in range(6):
            if box["y"] >= APP_BAR and box["y"] + box["height"] <= height - TAB_BAR:
                return
            self.scroll(box["y"] + box["height"] / 2 - height / 2)
            moved = self._settled_box(control)
            self.lift()
            if moved == box:
                return  # at the end of the screen: as far as it goes
            box = moved
        raise AssertionError(f"could not scroll {control} inside the screen")

    def _settled_box(self, control: Any) -> dict[str, float]:
        """The control's box on the screen, once two reads 150 ms apart agree."""
        last = None
        for _ in range(20):
            box = control.bounding_box()
            if box is not None and box == last:
                return dict(box)
            last = box
            self.page.wait_for_timeout(150)
        raise AssertionError(f"{control} did not settle on the screen: {last}")

    def scroll(self, dy: float) -> None:
        """Scroll the screen by ``dy`` px (negative: up), a finger on its middle."""
        size = self.page.viewport_size
        self.page.mouse.move(size["width"] / 2, size["height"] / 2)
        self.page.mouse.wheel(0, dy)

    def enter(self, name: str, value: str) -> None:
        """Type ``value`` into the field labelled ``name`` key by key, as a person does,
        and check that the field holds it."""
        box = self.field(name)
        self.focus(box)
        self.clear(box)
        self.page.keyboard.type(value, delay=20)
        expect(box).to_have_value(value)
        self.page.wait_for_timeout(400)

    def enrol(self, pin: str) -> None:
        """First run with the demo liaison: sign in, choose ``pin``, wait out the first sync."""
        self.see("Set up Liaison")
        self.type("Username", DEMO_USER)
        self.type("Password", DEMO_PASSWORD)
        self.click("Sign in")
        self.see("Signed in as demo", timeout=30_000)
        self.type("New PIN", pin)
        self.type("New PIN again", pin)
        self.click("Set PIN")
        self.button("Continue").wait_for(timeout=60_000)
        self.click("Continue")

    def open_tab(self, name: str, *, shows: str) -> None:
        """Tap the tab ``name`` and wait for its screen (which shows ``shows``)."""
        self.tap(self.tab(name))
        self.see(shows)

    def open_patient(self, name: str, *, shows: str) -> None:
        """Open the patient ``name`` from the Patients tab; their page shows ``shows``."""
        self.open_tab("Patients", shows=name)
        self.tap(self.text(name).first)
        self.see(shows)

    def search(self, name: str, value: str, *, hides: str) -> None:
        """Type into a search-as-you-type field and wait until ``hides`` leaves the results."""
        self.type(name, value)
        self.gone(hides)

    def see(self, text: str, *, timeout: float = 30_000) -> None:
        self.text(text).first.wait_for(state="attached", timeout=timeout)

    def gone(self, text: str, *, timeout: float = 10_000) -> None:
        self.text(text).first.wait_for(state="detached", timeout=timeout)

    def settle(self, ms: int = 1000) -> None:
        self.page.wait_for_timeout(ms)

    def shot(self, name: str) -> None:
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        self.page.mouse.move(405, 470)  # off every control: no hover tooltip in the picture
        self.settle(1000)
        self.page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))


@pytest.fixture(scope="module")
def ui(request: pytest.FixtureRequest, chromium_path: str, liaison_app: str) -> Iterator[Ui]:
    """A phone-sized Chromium page on the app."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium_path, args=["--no-sandbox"])
        # A test module's VIEWPORT replaces the default phone size; its USER_AGENT makes
        # the page a phone's browser to Flutter (soft keyboard insets, app lifecycle).
        agent = getattr(request.module, "USER_AGENT", None)
        context = browser.new_context(
            viewport=getattr(request.module, "VIEWPORT", VIEWPORT),
            user_agent=agent,
            has_touch=bool(agent),
        )
        trace = os.environ.get("LIAISON_TRACE")  # a directory: keep a Playwright trace there
        if trace:
            context.tracing.start(screenshots=True, snapshots=True)
        page = context.new_page()
        page.set_default_timeout(30_000)
        try:
            helper = Ui(page)
            helper.open(liaison_app, mobile=bool(agent))
            yield helper
        finally:
            if trace:
                Path(trace).mkdir(parents=True, exist_ok=True)
                context.tracing.stop(path=str(Path(trace) / f"{request.module.__name__}.zip"))
            browser.close()


# A module's tests that share its ``ui`` are the steps of one flow, run in order on one
# screen: once a step fails, the screen is not where the next step expects it, so the rest
# of the flow is skipped with the name of the step that failed, instead of failing each
# with an error that points nowhere near the cause.
FAILED_STEP = pytest.StashKey[str]()


def _flow(item: pytest.Item) -> pytest.Module | None:
    """The module whose flow ``item`` is a step of, if it is one (it uses ``ui``)."""
    if "ui" not in getattr(item, "fixturenames", ()):
        return None
    return item.getparent(pytest.Module)


@pytest.hookimpl(tryfirst=True)
def pytest_runtest_setup(item: pytest.Item) -> None:
    flow = _flow(item)
    if flow is not None and FAILED_STEP in flow.stash:
        # As a mark, which pytest's own setup turns into the skip: reported at the test.
        reason = f"an earlier step of this flow failed: {flow.stash[FAILED_STEP]}"
        item.add_marker(pytest.mark.skip(reason=reason))


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    report = yield
    flow = _flow(item)
    if report.failed and report.when in ("setup", "call") and flow is not None:
        flow.stash.setdefault(FAILED_STEP, item.name)
    if report.when == "call" and report.failed and "ui" in getattr(item, "funcargs", {}):
        # What the screen showed when a step failed: the first thing to look at in CI.
        with contextlib.suppress(Exception):  # a picture must never hide the real failure
            item.funcargs["ui"].page.screenshot(
                path=str(SCREENSHOTS / "failures" / f"{item.name}.png")
            )
    return report
