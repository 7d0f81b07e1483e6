"""First run: sign in and enrol this device, choose a PIN, then the first sync."""

from __future__ import annotations

from typing import Any

import flet as ft

from app import forms, urls
from app.state import AppState
from app.views import shell
from app.views import widgets as w


def build(app: AppState, nav: shell.Nav, **_: str) -> ft.View:
    """The step of the first-run flow the state is at."""
    step = app.session.first_run.step
    if step == "pin":
        return shell.bare(urls.FIRST_RUN, _pin_step(app, nav), title="Choose a PIN")
    if step in ("sync", "done"):
        return shell.bare(urls.FIRST_RUN, _sync_step(app, nav), title="First sync")
    return shell.bare(urls.FIRST_RUN, _server_step(app, nav), title="Set up Liaison")


def _server_step(app: AppState, nav: shell.Nav) -> list[ft.Control]:
    fr = app.session.first_run
    server = w.text_field(
        "Server address",
        key="server",
        value=fr.server_url,
        hint="https://liaison.example.org",
        error=fr.errors.get("server_url"),
        keyboard=ft.KeyboardType.URL,
    )
    username = w.text_field(
        "Username", key="username", value=fr.username, error=fr.errors.get("username")
    )
    password = w.text_field(
        "Password", key="password", password=True, error=fr.errors.get("password")
    )
    busy = ft.ProgressBar(key="busy", visible=fr.busy, semantics_label="Signing in")

    def typed(e: Any = None) -> None:  # held in state: a rebuilt screen shows it again
        fr.server_url, fr.username = server.value or "", username.value or ""

    server.on_change = username.on_change = typed

    async def sign_in(e: Any = None) -> None:
        with forms.busy(nav, button, busy):
            await app.session.enrol(server.value or "", username.value or "", password.value or "")
        nav.refresh()

    password.on_submit = sign_in
    button = w.primary_button(
        "Sign in", sign_in, icon=ft.Icons.LOGIN, key="sign-in", disabled=fr.busy, expand=True
    )
    items: list[ft.Control] = []
    if app.session.notice:
        items.append(w.banner(app.session.notice, kind="warning", key="notice"))
    items += [
        ft.Text(
            "Sign in once to connect this phone to your team. Your patients' data is "
            "then kept encrypted on the phone and works without a network.",
            theme_style=ft.TextThemeStyle.BODY_LARGE,
        ),
        server,
        username,
        password,
    ]
    if fr.message:
        items.append(w.banner(fr.message, kind="error", key="error"))
    items += [busy, ft.Row([button])]
    return items


def _pin_step(app: AppState, nav: shell.Nav) -> list[ft.Control]:
    fr = app.session.first_run
    pin = w.text_field(
        "New PIN",
        key="pin",
        password=True,
        keyboard=ft.KeyboardType.NUMBER,
        error=fr.errors.get("pin"),
        max_length=12,
        autofocus=True,
    )
    again = w.text_field(
        "New PIN again",
        key="pin-again",
        password=True,
        keyboard=ft.KeyboardType.NUMBER,
        error=fr.errors.get("pin_again"),
        max_length=12,
    )
    busy = ft.ProgressBar(key="busy", visible=fr.busy, semantics_label="Securing this phone")

    async def set_pin(e: Any = None) -> None:
        with forms.busy(nav, button, busy):
            chosen = await app.session.choose_pin(pin.value or "", again.value or "")
        if chosen:
            app.syncing.start()
        nav.refresh()

    again.on_submit = set_pin
    button = w.primary_button(
        "Set PIN", set_pin, icon=ft.Icons.LOCK, key="set-pin", disabled=fr.busy, expand=True
    )
    who = (fr.enrolment or {}).get("user", {}).get("username", fr.username)
    items: list[ft.Control] = [
        w.banner(f"Signed in as {who}. This phone is now registered.", key="signed-in"),
        ft.Text(
            "Choose a PIN of 6 to 12 digits. It unlocks Liaison on this phone and "
            "protects your patients' data. Avoid easy PINs like 123456 or 111111.",
            theme_style=ft.TextThemeStyle.BODY_LARGE,
        ),
        pin,
        again,
    ]
    if fr.message:
        items.append(w.banner(fr.message, kind="error", key="error"))
    items += [busy, ft.Row([button])]
    return items


def _sync_step(app: AppState, nav: shell.Nav) -> list[ft.Control]:
    s = app.sync

    def done(e: Any = None) -> None:
        app.session.finish_first_run()

    def retry(e: Any = None) -> None:
        app.syncing.start()

    items: list[ft.Control] = [
        ft.Text(
            "Downloading your team's caseload to this phone.",
            theme_style=ft.TextThemeStyle.BODY_LARGE,
        ),
    ]
    if s.running or (s.last_success is None and s.error is None):  # running or about to
        items += [
            ft.ProgressBar(
                value=s.progress if s.running else None,
                key="progress",
                semantics_label="Sync progress",
            ),
            ft.Text(s.stage or "Syncing…", key="stage"),
        ]
    elif s.error:
        items += [
            w.banner(s.error, kind="warning", key="error"),
            ft.Text("You can start working now; Liaison syncs when the server is reachable."),
            w.button_row(
                [
                    w.primary_button("Continue", done, key="continue"),
                    w.secondary_button("Try again", retry, icon=ft.Icons.REFRESH, key="retry"),
                ]
            ),
        ]
    else:
        items += [
            w.banner(s.summary or "Sync finished.", key="summary"),
            w.primary_button("Continue", done, icon=ft.Icons.ARROW_FORWARD, key="continue"),
        ]
    return items
