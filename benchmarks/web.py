"""Benchmark of the app's first load in a browser (web mode); the last line printed is JSON.

    python -m benchmarks.web [--no-before]

``first_load(url)`` opens ``url`` in a fresh headless Chromium (no cache), waits for the app's
first screen (setup or unlock) and for the network to fall quiet, and counts what the page
moved: ``web_first_load_mb`` is the bytes on the wire (MB = 1e6 bytes; as served, so
compressed where the server compressed; headers included; plus the Flet session's
WebSocket frames), ``requests`` the HTTP requests and WebSockets the page opened,
``offsite_requests`` those to any host other than the app's own origin.

``main`` serves the app on a free loopback port the way the browser tests do
(``launch.AppProcess``, its data in tmp, no sync server: the first screen is "Set up
Liaison") and measures it; "before" is the same app served by flet_web alone (``ft.run`` as
``run_web`` called it before app.web), in the same run. Targets: ``web_first_load_mb`` at
most 7, ``offsite_requests`` 0. Timings are not reported: the machine is shared.
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import tempfile
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from server import launch

CHROMIUM = os.environ.get("LIAISON_CHROMIUM", "/usr/bin/chromium")
PHONE = (412, 915)  # the viewport: a phone, as in the browser tests
FIRST_SCREEN = re.compile("Set up Liaison|Liaison is locked")
NETWORK = ("http", "https", "ws", "wss")
QUIET_S = 1.0  # no request in flight for this long: the first screen's loading is over
TARGET_MB = 7.0
ROOT = Path(__file__).resolve().parent.parent
# The app as flet_web alone served it, before app.web: python -c FLET_ALONE ASSETS_DIR
# --host HOST --port PORT.
FLET_ALONE = """
import argparse
import flet as ft
from app.main import main
parser = argparse.ArgumentParser()
parser.add_argument("assets_dir")
parser.add_argument("--host")
parser.add_argument("--port", type=int)
args = parser.parse_args()
ft.run(main, view=None, host=args.host, port=args.port, no_cdn=True,
       web_renderer=ft.WebRenderer.CANVAS_KIT, assets_dir=args.assets_dir)
"""


class Traffic:
    """What one page moved, from Chromium's DevTools network events."""

    def __init__(self, origin: str) -> None:
        self.origin = origin
        self.urls: dict[str, str] = {}  # request id -> URL
        self.done: dict[str, int] = {}  # request id -> bytes received, headers included
        self.sockets: set[str] = set()  # request ids of the WebSockets
        self.websocket_bytes = 0
        self.last_event = time.monotonic()

    def listen(self, cdp: Any) -> None:
        cdp.on("Network.requestWillBeSent", self._sent)
        cdp.on("Network.webSocketCreated", self._sent)
        cdp.on("Network.responseReceived", self._response)
        cdp.on("Network.loadingFinished", self._finished)
        cdp.on("Network.loadingFailed", self._failed)
        cdp.on("Network.webSocketFrameReceived", self._frame)
        cdp.on("Network.webSocketFrameSent", self._frame)

    def _sent(self, event: dict[str, Any]) -> None:
        url = event["request"]["url"] if "request" in event else event["url"]
        if urlsplit(url).scheme not in NETWORK:
            return  # data: and blob: URLs move nothing
        self.urls.setdefault(event["requestId"], url)
        if "request" not in event:
            self.sockets.add(event["requestId"])
        self.last_event = time.monotonic()

    def _response(self, event: dict[str, Any]) -> None:
        # Until the load finishes: what a failed load (a 404 script) had received.
        self.done.setdefault(event["requestId"], int(event["response"]["encodedDataLength"]))

    def _finished(self, event: dict[str, Any]) -> None:
        self.done[event["requestId"]] = int(event["encodedDataLength"])
        self.last_event = time.monotonic()

    def _failed(self, event: dict[str, Any]) -> None:
        self.done.setdefault(event["requestId"], 0)
        self.last_event = time.monotonic()

    def _frame(self, event: dict[str, Any]) -> None:
        frame = event["response"]
        data = frame["payloadData"]
        # Binary frames (Flet's msgpack) come base64-encoded, text frames as they are.
        self.websocket_bytes += len(base64.b64decode(data)) if frame["opcode"] == 2 else len(data)

    def in_flight(self) -> int:
        """HTTP requests sent and not yet finished or failed."""
        return sum(1 for rid in self.urls if rid not in self.done and rid not in self.sockets)

    def offsite(self) -> list[str]:
        """URLs asked of any host but the app's own."""
        return [url for url in self.urls.values() if urlsplit(url).netloc != self.origin]


def first_load(url: str, *, chromium: str = CHROMIUM) -> dict[str, Any]:
    """Load ``url`` in a fresh headless Chromium up to the app's first screen; what moved.

    Keys: ``web_first_load_mb``, ``offsite_requests``, ``requests``, plus ``offsite`` (the
    URLs) and ``console_errors`` (``"text (url)"`` of each console error).
    """
    from playwright.sync_api import sync_playwright

    traffic = Traffic(urlsplit(url).netloc)
    errors: list[str] = []
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=chromium, args=["--no-sandbox"])
        try:
            page = browser.new_context(viewport={"width": PHONE[0], "height": PHONE[1]}).new_page()

            def console(message: Any) -> None:
                if message.type == "error":
                    errors.append(f"{message.text} ({message.location.get('url', '')})")

            page.on("console", console)
            page.on("pageerror", lambda e: errors.append(f"uncaught: {e}"))
            cdp = page.context.new_cdp_session(page)
            traffic.listen(cdp)
            cdp.send("Network.enable")
            page.goto(url)
            page.wait_for_selector("flt-semantics-placeholder", state="attached", timeout=90_000)
            page.locator("flt-semantics-placeholder").evaluate("el => el.click()")
            page.get_by_text(FIRST_SCREEN).first.wait_for(state="attached", timeout=60_000)
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline and (
                traffic.in_flight() or time.monotonic() - traffic.last_event < QUIET_S
            ):
                page.wait_for_timeout(200)  # lets Playwright deliver the events meanwhile
        finally:
            browser.close()
    offsite = traffic.offsite()
    total = sum(traffic.done.values()) + traffic.websocket_bytes
    return {
        "web_first_load_mb": round(total / 1e6, 3),
        "offsite_requests": len(offsite),
        "requests": len(traffic.urls),
        "offsite": offsite,
        "console_errors": errors,
    }


@contextmanager
def served(work: Path, *, flet_alone: bool = False) -> Iterator[str]:
    """The app in web mode on a free loopback port, its data in ``work``; its URL."""
    program = ("-c", FLET_ALONE, str(ROOT / "assets")) if flet_alone else ("-m", "app.main")
    with launch.AppProcess(work / "device", work / "app.log", program=program) as app:
        yield app.url


def _figures(result: dict[str, Any]) -> dict[str, Any]:
    return {k: result[k] for k in ("web_first_load_mb", "offsite_requests", "requests")}


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Measure the first load (and flet_web's alone unless --no-before); print, return it."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.web")
    parser.add_argument(
        "--no-before", action="store_true", help="skip the app served by flet_web alone"
    )
    args = parser.parse_args(argv)
    result: dict[str, Any] = {"benchmark": "web"}
    with tempfile.TemporaryDirectory(prefix="liaison-bench-") as tmp:
        if not args.no_before:
            (Path(tmp) / "before").mkdir()
            with served(Path(tmp) / "before", flet_alone=True) as url:
                before = first_load(url)
        (Path(tmp) / "after").mkdir()
        with served(Path(tmp) / "after") as url:
            after = first_load(url)
    result.update(_figures(after))
    if not args.no_before:
        result["before"] = _figures(before)
    result["targets"] = {"web_first_load_mb": TARGET_MB, "offsite_requests": 0}
    was = "" if args.no_before else f" (flet_web alone: {before['web_first_load_mb']} MB)"
    print(
        f"first load {after['web_first_load_mb']} MB{was} in {after['requests']} requests, "
        f"{after['offsite_requests']} offsite; console errors: {after['console_errors']}"
    )
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
