"""The Flet entry point: the only place that wires page, vault, store and sync together.

``App`` binds one ``AppState`` to one page: it turns routes into views (the route table is
``app.routes``), shows only the first-run or unlock screen unless unlocked, locks on
idle and when the app goes to the background (covering the screen as soon as it leaves the
front), takes the system back gesture one screen at a time without dropping typed input,
and starts syncs after unlock and saves.

Several windows (browser tabs) may show the app on one data directory; ``Windows`` lets
only one use it at a time, so the store is never opened twice: a new window takes over,
and the others lock and say "Liaison is open in another window", with a button to take
it back.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
from collections.abc import Callable
from pathlib import Path
from typing import Any

import flet as ft

from app import routes, theme, urls
from app.session import FIRST_RUN, LOCKED, UNLOCKED
from app.state import AppState, Services
from app.views import cover, first_run, redraw, shell, unlock
from app.views import widgets as w

STORE_DIR = "store"
DEVICE_FILE = "device.json"  # the server-assigned device id (no patient data): the HLC node
TICK = 1.0


def data_dir(environ: dict[str, str] | None = None) -> Path:
    """LIAISON_DATA_DIR, else FLET_APP_STORAGE_DATA, else ./var/device."""
    env = os.environ if environ is None else environ
    return Path(env.get("LIAISON_DATA_DIR") or env.get("FLET_APP_STORAGE_DATA") or "var/device")


def make_services(
    directory: Path,
    *,
    server_url: str = "",
    scrypt_params: Any = None,
    max_attempts: int = 10,
    auto_sync: bool = False,
    keystore: Any = None,
    **client_options: Any,
) -> Services:
    """The real vault, store, sync client and engine for one data directory.

    ``keystore``: the phone's (``app.keystore``); None for none (PIN only, web mode).
    """
    from app.store import JOURNAL, Store
    from app.vault import Vault
    from sync.client import SyncClient
    from sync.engine import SyncEngine

    # The journal is sealed: recorded at lock and checked at unlock, so that an older copy
    # of the records put back while locked is refused (see app.vault).
    vault = Vault(
        directory,
        max_attempts=max_attempts,
        scrypt_params=scrypt_params,
        keystore=keystore,
        sealed=(f"{STORE_DIR}/{JOURNAL}",),
    )

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

    return Services(
        vault=vault,
        open_store=open_store,
        client=client,
        engine=engine,
        device_name=f"Liaison on {platform.node() or 'this device'}"[:60],
        default_server_url=server_url,
        auto_sync=auto_sync,
    )


DISMISS_GRACE = 2.0  # seconds a closed dialog may take to be reported gone
PHONES = (ft.PagePlatform.ANDROID, ft.PagePlatform.IOS)


class Windows:
    """The windows showing Liaison on one data directory: only ``current`` uses it."""

    def __init__(self) -> None:
        self.current: App | None = None

    def take(self, app: App) -> None:
        """``app`` uses the data from now on; the window that did steps aside first (it
        locks, so its store is closed before ``app`` may open it)."""
        previous, self.current = self.current, app
        if previous is not None and previous is not app:
            previous.step_aside()

    def leave(self, app: App) -> None:
        """``app``'s session ended: no window uses the data until one takes it."""
        if self.current is app:
            self.current = None


class App:
    """One page's navigation and lifecycle around the app state (implements ``Nav``).

    Back, on a phone: every view is ``can_pop=False``, so the system back gesture never
    pops a view on the client by itself. Flutter first closes an open dialog; otherwise the
    view's ``on_confirm_pop`` asks here, and ``back`` opens the parent screen (one screen,
    after "Discard changes?" when typed input would be lost). Only the bottom view (a tab)
    is let go, which closes the app, again after that question.
    """

    def __init__(
        self,
        page: Any,
        state: AppState,
        *,
        windows: Windows | None = None,
        new_state: Callable[[], AppState] | None = None,
    ) -> None:
        self.page, self.state = page, state
        self.windows = windows or Windows()
        # A fresh state for taking the data back (another window may have enrolled or
        # unlocked meanwhile); None: keep this one.
        self._new_state = new_state
        self.elsewhere = False  # another window uses the data: this one shows only that
        self.connectivity: Any = None  # kept referenced, or Flet unregisters the service
        self.closed = False
        # The dialogs this app opened (not toasts) until the client reports them gone.
        self._dialogs: list[Any] = []
        self._render_pending = False  # a render waits for the dialogs' routes to go
        self._approved: str | None = None  # the route this app itself navigated to
        self._asking = False  # "Discard changes?" is up: a second Back asks nothing more
        self._covered = False  # the privacy cover is up (the app is not in front)
        self._uncover: list[Callable[[], None]] = []  # shows the covered dialogs again
        self._tasks: set[asyncio.Task[Any]] = set()  # answers to the client, kept referenced
        state.subscribe(self._changed)
        self.windows.take(self)

    # -- windows --------------------------------------------------------------------
    def step_aside(self) -> None:
        """Another window took the data: lock (the store closes) and say so."""
        self.elsewhere = True
        self._close_dialogs()
        self.state.session.lock()
        if not self.closed:
            self.render(now=True)

    def use_here(self, e: Any = None) -> None:
        """ "Use Liaison here": take the data back from the other window (it locks)."""
        self.windows.take(self)
        self.elsewhere = False
        if self._new_state is not None:
            self.state = self._new_state()
            self.state.subscribe(self._changed)
        self.state.session.touch()
        self.render()

    def _elsewhere_view(self) -> ft.View:
        """The calm screen of a window not in use."""
        return ft.View(
            route=urls.UNLOCK,
            padding=ft.Padding.symmetric(horizontal=16, vertical=16),
            controls=[
                ft.SafeArea(
                    ft.Column(
                        [
                            ft.Icon(ft.Icons.TAB, size=48),
                            ft.Text(
                                "Liaison is open in another window",
                                key="elsewhere",
                                theme_style=ft.TextThemeStyle.HEADLINE_SMALL,
                                text_align=ft.TextAlign.CENTER,
                            ),
                            ft.Text(
                                "Your work is safe. Use it there, or continue here: the "
                                "other window then locks.",
                                text_align=ft.TextAlign.CENTER,
                            ),
                            ft.Row(
                                [
                                    w.primary_button(
                                        "Use Liaison here",
                                        self.use_here,
                                        key="use-here",
                                        expand=True,
                                    )
                                ]
                            ),
                        ],
                        spacing=12,
                        horizontal_alignment=ft.CrossAxisAlignment.CENTER,
                    ),
                    expand=True,
                )
            ],
        )

    @property
    def route(self) -> str:
        return str(self.page.route or "/")

    # -- Nav ------------------------------------------------------------------------
    def go(self, route: str) -> None:
        self.state.session.touch()
        if route == self.route:
            self.render()
        elif not self._ask_before_leaving(lambda: self._navigate(route), self._tab_back):
            self._navigate(route)

    def back(self) -> None:
        self.go(routes.parent(self.route) or urls.HOME)

    def _navigate(self, route: str) -> None:
        self._approved = route
        self.page.navigate(route)

    def _tab_back(self) -> None:
        """Staying after all: the tab the client highlighted on the tap is this screen's."""
        views = self.page.views
        bar = views[-1].navigation_bar if views else None
        if isinstance(bar, ft.NavigationBar):
            bar.selected_index = shell.tabs(self, self.route).selected_index
            self._update_soon()

    def refresh(self) -> None:
        self.render()

    def update(self) -> None:
        self.page.update()

    def toast(self, message: str) -> None:
        # No fixed key: a second toast replacing the first must be a new control, or Flet
        # treats it as the frozen old one and the session fails.
        self.page.show_dialog(ft.SnackBar(ft.Text(message)))

    def show_dialog(self, dialog: Any) -> None:
        if self._covered:  # opened while the app is not in front: covered like the rest
            self._uncover.append(cover.dialog(dialog))
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
        """Close the top dialog this app opened. Views change once the client reports it
        gone, or after ``DISMISS_GRACE`` should it never do so: a dropped session, or a
        DatePicker, which its own OK closes (``open`` is already false here) unreported."""
        with contextlib.suppress(Exception):  # nothing open: nothing to close
            self.page.pop_dialog()
        for closed in [d for d in self._dialogs if not d.open]:
            with contextlib.suppress(RuntimeError):  # no loop: a headless test
                asyncio.get_running_loop().call_later(DISMISS_GRACE, self._forget_dialog, closed)

    # -- rendering ----------------------------------------------------------------------
    def build(self, route: str) -> ft.View:
        """The view for one unlocked route (a "not found" screen for unknown ones)."""
        found = routes.match(route)
        if found is None or found[0].public:
            return shell.screen(
                self.state,
                self,
                route,
                "Not available",
                [
                    w.empty_state(
                        "This screen is not available",
                        "Go back, or open Today.",
                        icon=ft.Icons.BLOCK,
                        key="not-found",
                    )
                ],
            )
        view: ft.View = found[0].build(self.state, self, **found[1])
        return view

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
        if self.elsewhere:
            views = [self._elsewhere_view()]
        elif state.session.phase == FIRST_RUN or state.session.first_run.step == "sync":
            views = [first_run.build(state, self)]
        elif state.session.phase == LOCKED:
            views = [unlock.build(state, self)]
        else:
            route = self.route
            found = routes.match(route)
            if found is None or found[0].public:
                route = urls.HOME
                if self.route != urls.HOME:
                    self.page.route = urls.HOME
            views = [self.build(r) for r in routes.chain(route)]
        for view in views:
            # The system back gesture asks on_confirm_pop instead of popping on the client.
            view.can_pop, view.on_confirm_pop = False, self.on_confirm_pop
        cover.views(views, self._covered)
        self.page.views.clear()
        self.page.views.extend(views)
        self.page.update()

    def _close_dialogs(self) -> None:
        while self.page.pop_dialog() is not None:
            pass
        self._dialogs.clear()
        self._asking = False

    def _changed(self, topic: str) -> None:
        if topic == "phase":
            if self.elsewhere and self.state.session.phase == UNLOCKED:
                # An unlock begun before another window took over: the data is not ours.
                self.state.session.lock()
                return
            # Dialogs may hold patient data (a half-typed new patient): close them all.
            self._close_dialogs()
            self.render(now=True)
            return
        if topic == "photo":  # a thumbnail arrived: fill it in where it is shown
            from app.views import photos

            if self.page.views and photos.refresh(self.page.views[-1], self.state):
                self._update_soon()
            return
        top = routes.match(self.route)
        # Screens that show sync details and have nothing to type into are redrawn, but not
        # under an open dialog: replacing the views beneath it leaves Flutter's dialog route
        # behind, and closing the dialog then no longer takes it off the screen.
        if self.state.session.first_run.step == "sync":
            self.render()
        elif top and top[0].pattern in (urls.SYNC, urls.TODAY) and not self._dialog_open():
            self._redraw()
        elif self.page.views:
            self._refresh_badge(self.page.views[-1])

    def _redraw(self) -> None:
        """Bring the body of the screen on top up to date from state, keeping its view, app
        bar and tabs, and its controls where only the sync line changed: a tap while syncs
        redraw the screen (several times a second) would otherwise reach controls already
        replaced, and be lost."""
        views = self.page.views
        if self.state.session.phase != UNLOCKED or not views or views[-1].route != self.route:
            self.render()
            return
        fresh = self.build(self.route).controls
        if not redraw.adopt(views[-1].controls, fresh):  # the screen changed shape
            views[-1].controls = fresh
        self._refresh_badge(views[-1])

    def _refresh_badge(self, view: Any) -> None:
        badge = w.find(view, "sync-badge")
        if badge is not None:
            fresh = shell.sync_badge(self.state, self)
            badge.content, badge.icon, badge.tooltip = fresh.content, fresh.icon, fresh.tooltip
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

    # -- leaving a screen ----------------------------------------------------------------
    def _ask_before_leaving(
        self, proceed: Callable[[], Any], stay: Callable[[], Any] | None = None
    ) -> bool:
        """Before the screen on top is left: keep what can be kept (flush its autosave);
        when typed input would still be lost, ask "Discard changes?" and return True
        (``proceed`` runs after Discard, ``stay`` after Keep editing or Back)."""
        views = self.page.views
        guard = shell.leave_of(views[-1]) if views else None
        if guard is None or self.state.session.phase != UNLOCKED:
            return False
        guard.keep()
        if not guard.unsaved():
            return False
        if self._asking:
            return True
        decided = False

        def answer(discard: bool, *, close: bool = True) -> Callable[[Any], None]:
            def handler(e: Any = None) -> None:
                nonlocal decided
                if decided:
                    return
                decided, self._asking = True, False
                self.state.session.touch()
                if discard:
                    guard.discard()
                if close:
                    self.close_dialog()
                then = proceed if discard else stay
                if then is not None:
                    then()

            return handler

        dialog = shell.discard_dialog(answer(False), answer(True))
        # Closed by the system back (or by a lock): keep editing; it is gone already.
        dialog.on_dismiss = answer(False, close=False)
        self._asking = True
        self.show_dialog(dialog)
        return True

    def _answer_pop(self, view: Any, should_pop: bool) -> None:
        """Resolve the client's pending back-gesture question for ``view``."""

        async def answer() -> None:
            with contextlib.suppress(Exception):  # the view or the session went away
                await view.confirm_pop(should_pop)

        with contextlib.suppress(RuntimeError):  # no loop: a headless test
            task = asyncio.get_running_loop().create_task(answer())
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    # -- events ---------------------------------------------------------------------------
    def on_route_change(self, e: Any = None) -> None:
        self.state.session.touch()
        approved, self._approved = self._approved, None
        views = self.page.views
        shown = views[-1].route if views else None
        # A route this app did not navigate to (the browser's Back or Forward): the screen
        # being left still keeps its typed input, or asks first.
        if (
            shown is not None
            and self.route not in (approved, shown)
            and self._ask_before_leaving(self.render, lambda: self._navigate(shown))
        ):
            return
        self.render()

    def on_confirm_pop(self, e: Any) -> None:
        """The system back gesture on a view: one screen back, or out of the app."""
        self.state.session.touch()
        view, views = e.control, self.page.views
        if not views or view is not views[-1]:
            self._answer_pop(view, False)  # not the screen on top: already gone
        elif len(views) > 1:
            self._answer_pop(view, False)  # the client keeps it; the parent opens here
            self.back()
        elif not self._ask_before_leaving(
            lambda: self._answer_pop(view, True), lambda: self._answer_pop(view, False)
        ):
            self._answer_pop(view, True)  # the last screen: the app closes

    def on_view_pop(self, e: Any = None) -> None:
        """The client popped the view on top by itself: open its parent, once."""
        views = self.page.views
        route = getattr(e, "route", None)
        if views and route is not None and route != views[-1].route:
            return  # an older view, or the same event again: already handled
        guard = shell.leave_of(views[-1]) if views else None
        if guard is not None:
            guard.keep()  # no time to ask: what is not saved stays in its draft
        self._navigate(routes.parent(self.route) or urls.HOME)

    def close(self, e: Any = None) -> None:
        """The session ended: lock, stop the timer and leave the data to other windows."""
        self.closed = True
        self.state.session.lock()
        self.windows.leave(self)

    def on_lifecycle(self, e: Any) -> None:
        """Cover the screen when the app leaves the front; lock when it is hidden.

        ``INACTIVE`` also comes for the notification shade, a permission or an incoming
        call: only the cover then (locking would ask for the PIN after each of them).
        ``HIDE``/``PAUSE`` mean the app was left: lock, unless our own picker covers it.
        """
        away = e.state in (ft.AppLifecycleState.HIDE, ft.AppLifecycleState.PAUSE)
        if away or e.state == ft.AppLifecycleState.INACTIVE:
            self._cover(True)
        elif e.state == ft.AppLifecycleState.RESUME:
            self._cover(False)
        if away and self.state.now() >= self.state.session.away_until:
            # (Before away_until, our own photo picker covers the app; the idle lock runs.)
            self.state.session.lock()

    def _cover(self, on: bool) -> None:
        """Put up (or take down) the privacy cover on a phone, keeping every control."""
        if on == self._covered or (on and getattr(self.page, "platform", None) not in PHONES):
            return
        self._covered = on
        cover.views(self.page.views, on)
        if on:
            self._uncover = [cover.dialog(d) for d in self._dialogs]
        else:
            for show in self._uncover:
                show()
            self._uncover = []
        self._update_soon()

    async def on_keyboard(self, e: Any) -> None:
        """Typing a PIN on a hardware keyboard works on the lock screen."""
        self.state.session.touch()
        if self.state.session.phase != LOCKED or self.elsewhere:
            return
        key = str(e.key).removeprefix("Numpad ").removeprefix("Digit ")
        if key.isdigit() and len(key) == 1:
            self.state.session.press_digit(key)
        elif key == "Backspace":
            self.state.session.erase_digit()
        elif key in ("Enter", "Numpad Enter"):
            await self.state.session.unlock()
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
            if state.session.check_idle():
                continue
            if state.session.phase == LOCKED and state.session.unlock_state.retry_at:
                if state.session.retry_in() <= 0:
                    state.session.unlock_state.retry_at = 0.0
                self.render()


_windows: dict[str, Windows] = {}  # by data directory: the windows of this process


async def main(page: ft.Page) -> None:
    """Build the app on a page."""
    page.title = "Liaison"
    theme.apply(page)
    directory = data_dir()
    directory.mkdir(parents=True, exist_ok=True)
    from app.keystore import keystore_for

    keystore = await keystore_for(page)  # a Flet service on phones: made with the page

    def new_state() -> AppState:
        services = make_services(
            directory,
            server_url=os.environ.get("LIAISON_SERVER_URL", ""),
            auto_sync=True,
            keystore=keystore,
        )
        return AppState(services)

    # One window at a time uses the data directory (a second tab, or a reloaded one, is
    # a new session): the one before locks, so its store is closed before this one opens.
    windows = _windows.setdefault(str(directory.resolve()), Windows())
    app = App(page, new_state(), windows=windows, new_state=new_state)
    page.on_route_change = app.on_route_change
    page.on_view_pop = app.on_view_pop
    page.on_app_lifecycle_state_change = app.on_lifecycle
    page.on_keyboard_event = app.on_keyboard
    page.on_disconnect = lambda e: app.state.session.lock()
    page.on_close = app.close
    app.connectivity = ft.Connectivity(on_change=app.on_connectivity)
    app.render()
    page.run_task(app.tick)


def run_web(host: str | None = None, port: int | None = None) -> None:
    """Serve the app for a browser, fully offline (no CDN, CanvasKit renderer), compressed."""
    from app import web  # here only: serving needs starlette and uvicorn, which no phone has

    web.serve(
        main,
        host=host or os.environ.get("FLET_SERVER_IP", "127.0.0.1"),
        port=port or int(os.environ.get("FLET_SERVER_PORT", "8550")),
        assets_dir=os.path.join(os.path.dirname(os.path.dirname(__file__)), "assets"),
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description="Serve Liaison in a browser.")
    parser.add_argument("--host")
    parser.add_argument("--port", type=int)
    args = parser.parse_args()
    run_web(args.host, args.port)
