"""The Flet entry point: the only place that wires page, vault, store and sync together.

``App`` binds one ``AppState`` to one page: it turns routes into views (the route table is
``app.state.ROUTES``), shows only the first-run or unlock screen unless unlocked, locks on
idle and when the app goes to the background, and starts syncs after unlock and saves.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib
import json
import os
import platform
from collections.abc import Callable
from pathlib import Path
from typing import Any

import flet as ft

from app import theme
from app.state import FIRST_RUN, HOME, LOCKED, AppState, Services, match_route, parent_route
from app.views import first_run, unlock
from app.views import widgets as w

STORE_DIR = "store"
DEVICE_FILE = "device.json"  # the server-assigned device id (no patient data): the HLC node
TICK = 1.0


def data_dir(environ: dict[str, str] | None = None) -> Path:
    """LIAISON_DATA_DIR, else FLET_APP_STORAGE_DATA, else ./var/device."""
    env = os.environ if environ is None else environ
    return Path(env.get("LIAISON_DATA_DIR") or env.get("FLET_APP_STORAGE_DATA")
                or "var/device")


def make_services(directory: Path, *, server_url: str = "", scrypt_params: Any = None,
                  max_attempts: int = 10, auto_sync: bool = False,
                  **client_options: Any) -> Services:
    """The real vault, store, sync client and engine for one data directory."""
    from app.store import Store
    from app.vault import Vault
    from sync.client import SyncClient
    from sync.engine import SyncEngine

    vault = Vault(directory, max_attempts=max_attempts, scrypt_params=scrypt_params)

    def open_store(key: bytes, device_id: str | None = None) -> Any:
        path = directory / DEVICE_FILE
        if device_id:
            path.write_text(json.dumps({"device_id": device_id}))
        else:
            device_id = json.loads(path.read_text())["device_id"]
        return Store.open(directory / STORE_DIR, key, node_id=device_id)

    def client(url: str, token: Any) -> Any:
        return SyncClient(url, token=token, **client_options)

    def engine(store: Any, sync_client: Any, on_progress: Any) -> Any:
        # Pulled pages are decrypted and written off the event loop so the UI never freezes.
        return SyncEngine(store, sync_client, on_progress=on_progress, offload=asyncio.to_thread)

    return Services(vault=vault, open_store=open_store, client=client, engine=engine,
                    device_name=f"Liaison on {platform.node() or 'this device'}"[:60],
                    default_server_url=server_url, auto_sync=auto_sync)


def _screen(name: str) -> Callable[..., ft.View] | None:
    try:
        module = importlib.import_module(f"app.views.{name}")
    except ImportError:
        return None
    return getattr(module, "build", None)


DISMISS_GRACE = 2.0  # seconds a closed dialog may take to be reported gone


class App:
    """One page's navigation and lifecycle around the app state (implements ``Nav``)."""

    def __init__(self, page: Any, state: AppState) -> None:
        self.page, self.state = page, state
        self.connectivity: Any = None  # kept referenced, or Flet unregisters the service
        self.closed = False
        # The dialogs this app opened (not toasts) until the client reports them gone.
        self._dialogs: list[Any] = []
        self._render_pending = False  # a render waits for the dialogs' routes to go
        state.subscribe(self._changed)

    @property
    def route(self) -> str:
        return str(self.page.route or "/")

    # -- Nav ------------------------------------------------------------------------
    def go(self, route: str) -> None:
        self.state.touch()
        if route == self.route:
            self.render()
        else:
            self.page.navigate(route)

    def back(self) -> None:
        self.go(parent_route(self.route) or HOME)

    def refresh(self) -> None:
        self.render()

    def update(self) -> None:
        self.page.update()

    def toast(self, message: str) -> None:
        # No fixed key: a second toast replacing the first must be a new control, or Flet
        # treats it as the frozen old one and the session fails.
        self.page.show_dialog(ft.SnackBar(ft.Text(message)))

    def show_dialog(self, dialog: Any) -> None:
        original = dialog.on_dismiss

        def dismissed(e: Any) -> Any:
            # The client took the dialog's route off the screen: views may change now.
            self._forget_dialog(dialog)
            return original(e) if original is not None else None

        dialog.on_dismiss = dismissed
        self._dialogs.append(dialog)
        self.page.show_dialog(dialog)

    def _forget_dialog(self, dialog: Any) -> None:
        if dialog in self._dialogs:
            self._dialogs.remove(dialog)
        if self._render_pending and not self._dialogs:
            self.render()

    def _dialog_open(self) -> bool:
        """True while a dialog of this app is on the client's screen: open, or closed but
        not yet reported gone (its closing animation)."""
        return bool(self._dialogs)

    def close_dialog(self) -> None:
        with contextlib.suppress(Exception):  # nothing open: nothing to close
            closed = self.page.pop_dialog()
            if closed in self._dialogs:
                # Should the client never report it gone (a dropped session), render anyway.
                with contextlib.suppress(RuntimeError):  # no loop: a headless test
                    asyncio.get_running_loop().call_later(
                        DISMISS_GRACE, self._forget_dialog, closed)

    def saved(self) -> None:
        self.state.record_saved()  # the store already reports puts; harmless twice

    # -- rendering ----------------------------------------------------------------------
    def build(self, route: str) -> ft.View:
        """The view for one unlocked route (a "not found" screen for unknown ones)."""
        found = match_route(route)
        builder = _screen(found[0]) if found else None
        if found is None or builder is None:
            from app.views import shell

            return shell.screen(self.state, self, route, "Not available", [w.empty_state(
                "This screen is not available", "Go back, or open Today.",
                icon=ft.Icons.BLOCK, key="not-found")])
        return builder(self.state, self, **found[1])

    def render(self, *, now: bool = False) -> None:
        """Replace the page's views with what the state allows for the current route.

        Not while a dialog is on the screen (open or still closing): replacing the views
        under it leaves Flutter's dialog route behind, and the dialog then stays on screen
        after it was closed. The render waits until the client reports the dialog gone;
        ``now`` renders at once (locking: the screens with patient data must go).
        """
        if self._dialogs and not now:
            self._render_pending = True
            return
        self._render_pending = False
        state = self.state
        if state.phase == FIRST_RUN or state.first_run.step == "sync":
            views = [first_run.build(state, self)]
        elif state.phase == LOCKED:
            views = [unlock.build(state, self)]
        else:
            route = self.route
            if match_route(route) is None or route.startswith(("/first-run", "/unlock")):
                route = HOME
                if self.route != HOME:
                    self.page.route = HOME
            chain = [route]
            while (up := parent_route(chain[0])) is not None:
                chain.insert(0, up)
            views = [self.build(r) for r in chain]
        self.page.views.clear()
        self.page.views.extend(views)
        self.page.update()

    def _changed(self, topic: str) -> None:
        if topic == "phase":
            # Dialogs may hold patient data (a half-typed new patient): close them all.
            while self.page.pop_dialog() is not None:
                pass
            self._dialogs.clear()
            self.render(now=True)
            return
        if topic == "photo":  # a thumbnail arrived: fill it in where it is shown
            from app.views import photos

            if self.page.views and photos.refresh(self.page.views[-1], self.state):
                self._update_soon()
            return
        top = match_route(self.route)
        # Screens that show sync details and have nothing to type into are rebuilt, but not
        # under an open dialog: replacing the views beneath it leaves Flutter's dialog route
        # behind, and closing the dialog then no longer takes it off the screen.
        if self.state.first_run.step == "sync" or (
                top and top[0] in ("sync", "today") and not self._dialog_open()):
            self.render()
        elif self.page.views:
            badge = w.find(self.page.views[-1], "sync-badge")
            if badge is not None:
                from app.views.shell import sync_badge

                fresh = sync_badge(self.state, self)
                badge.content, badge.icon, badge.tooltip = fresh.content, fresh.icon, \
                    fresh.tooltip
                self._update_soon()

    def _update_soon(self) -> None:
        """Send the page after the running handler: an update inside a handler would turn
        off Flet's automatic update at its end (what the handler changed after would stay
        unsent). ``call_soon`` runs in a copy of the context, so the handler's is untouched.
        """
        try:
            asyncio.get_running_loop().call_soon(self.page.update)
        except RuntimeError:  # no loop: a headless test
            self.page.update()

    # -- events ---------------------------------------------------------------------------
    def on_route_change(self, e: Any = None) -> None:
        self.state.touch()
        self.render()

    def on_view_pop(self, e: Any = None) -> None:
        self.back()

    def close(self, e: Any = None) -> None:
        """The session ended (or another window took over): lock and stop the timer."""
        self.closed = True
        self.state.lock()

    def on_lifecycle(self, e: Any) -> None:
        if e.state in (ft.AppLifecycleState.HIDE, ft.AppLifecycleState.PAUSE):
            if self.state.now() < self.state.away_until:
                return  # our own photo picker covers the app; the idle lock still runs
            self.state.lock()

    async def on_keyboard(self, e: Any) -> None:
        """Typing a PIN on a hardware keyboard works on the lock screen."""
        self.state.touch()
        if self.state.phase != LOCKED:
            return
        key = str(e.key).removeprefix("Numpad ").removeprefix("Digit ")
        if key.isdigit() and len(key) == 1:
            self.state.press_digit(key)
        elif key == "Backspace":
            self.state.erase_digit()
        elif key in ("Enter", "Numpad Enter"):
            await self.state.unlock()
        else:
            return
        self.render()

    def on_connectivity(self, e: Any) -> None:
        """A network came back: let the sync scheduler check the server and sync."""
        if any(c != ft.ConnectivityType.NONE for c in e.connectivity):
            self.state.syncing.online()

    async def tick(self) -> None:
        """Once a second: auto-lock on idle and the countdown after wrong PINs."""
        while not self.closed:
            await asyncio.sleep(TICK)
            state = self.state
            if state.check_idle():
                continue
            if state.phase == LOCKED and state.unlock_state.retry_at:
                if state.retry_in() <= 0:
                    state.unlock_state.retry_at = 0.0
                self.render()


_active: dict[str, App] = {}


def main(page: ft.Page) -> None:
    """Build the app on a page."""
    page.title = "Liaison"
    theme.apply(page)
    directory = data_dir()
    directory.mkdir(parents=True, exist_ok=True)
    # One session at a time owns the data directory (a reloaded browser tab starts a new
    # one): lock the previous session so its store is closed before this one opens it.
    previous = _active.pop("current", None)
    if previous is not None:
        previous.close()
    services = make_services(directory, server_url=os.environ.get("LIAISON_SERVER_URL", ""),
                             auto_sync=True)
    app = _active["current"] = App(page, AppState(services))
    page.on_route_change = app.on_route_change
    page.on_view_pop = app.on_view_pop
    page.on_app_lifecycle_state_change = app.on_lifecycle
    page.on_keyboard_event = app.on_keyboard
    page.on_disconnect = lambda e: app.state.lock()
    page.on_close = app.close
    app.connectivity = ft.Connectivity(on_change=app.on_connectivity)
    app.render()
    page.run_task(app.tick)


def run_web(host: str | None = None, port: int | None = None) -> None:
    """Serve the app for a browser, fully offline (no CDN, CanvasKit renderer)."""
    ft.run(
        main,
        view=None,
        host=host or os.environ.get("FLET_SERVER_IP", "127.0.0.1"),
        port=port or int(os.environ.get("FLET_SERVER_PORT", "8550")),
        no_cdn=True,
        web_renderer=ft.WebRenderer.CANVAS_KIT,
        assets_dir=os.path.join(os.path.dirname(os.path.dirname(__file__)), "assets"),
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Serve Liaison in a browser.")
    parser.add_argument("--host")
    parser.add_argument("--port", type=int)
    args = parser.parse_args()
    run_web(args.host, args.port)
