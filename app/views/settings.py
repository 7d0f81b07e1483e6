"""Settings: lock now, change PIN, auto-lock, server and device, sign out and erase."""

from __future__ import annotations

from typing import Any

import flet as ft

from app import forms, urls
from app.queries import plural
from app.session import AUTO_LOCK_CHOICES
from app.state import AppState
from app.version import app_version
from app.views import shell
from app.views import widgets as w

# What protects the data on this device (``AppState.protection``), said plainly.
PROTECTION = {
    "keystore": "Your data is locked by your PIN and by this phone's secure keystore.",
    "pin-only": "Only your PIN protects the data for now: Liaison could not use this phone's "
    "secure keystore and will try again at the next unlock.",
    "no-keystore": "This browser session has no secure keystore: only your PIN protects the "
    "data (development mode).",
}


def _pin_section(app: AppState, nav: shell.Nav) -> list[ft.Control]:
    old = w.text_field(
        "Current PIN", key="pin-old", password=True, keyboard=ft.KeyboardType.NUMBER, max_length=12
    )
    new = w.text_field(
        "New PIN", key="pin-new", password=True, keyboard=ft.KeyboardType.NUMBER, max_length=12
    )
    again = w.text_field(
        "New PIN again",
        key="pin-new-again",
        password=True,
        keyboard=ft.KeyboardType.NUMBER,
        max_length=12,
    )
    busy = ft.ProgressBar(key="pin-busy", visible=False, semantics_label="Changing PIN")

    async def change(e: Any = None) -> None:
        app.session.touch()
        old.error = new.error = again.error = None
        with forms.busy(nav, button, busy):
            problems = await app.session.change_pin(
                old.value or "", new.value or "", again.value or ""
            )
        old.error, new.error = problems.get("pin_old"), problems.get("pin_new")
        again.error = problems.get("pin_again")
        if not problems:
            old.value = new.value = again.value = ""
            nav.toast("PIN changed.")

    button = w.secondary_button("Change PIN", change, icon=ft.Icons.PASSWORD, key="change-pin")
    return [w.section_header("Change PIN"), old, new, again, busy, ft.Row([button])]


def _account(app: AppState) -> list[ft.Control]:
    info = app.account()
    teams = ", ".join(name for _, name in app.teams()) or "—"
    user = info.get("username") or "—"
    if info.get("role"):
        user = f"{user} ({info['role']})"
    return [
        w.section_header("Server and device"),
        w.labelled_value("Server", info.get("server_url") or "—", key="server-url"),
        w.labelled_value("Signed in as", user, key="user"),
        w.labelled_value("Teams", teams, key="teams"),
        w.labelled_value("Device ID", info.get("device_id") or "—", key="device-id"),
        w.labelled_value("App version", app_version(), key="version"),
    ]


def _sign_out(app: AppState, nav: shell.Nav) -> list[ft.Control]:
    async def erase(force: bool) -> None:
        nav.close_dialog()
        nav.toast("Sending unsynced work before erasing…")
        nav.update()
        unsynced = await app.session.sign_out(force=force)
        if unsynced:
            _warn_unsynced(nav, unsynced, erase, expired=app.sync.sign_in_required)

    async def confirmed(e: Any = None) -> None:
        await erase(False)

    def ask(e: Any = None) -> None:
        app.session.touch()
        nav.show_dialog(
            ft.AlertDialog(
                modal=True,
                key="sign-out-dialog",
                title=ft.Text("Sign out and erase?"),
                content=ft.Text(
                    "Liaison first sends any unsynced work to the server, then "
                    "signs this phone out and erases all its Liaison data."
                ),
                actions=[
                    w.text_button("Cancel", lambda e: nav.close_dialog(), key="cancel"),
                    w.danger_button("Sign out and erase", confirmed, key="sign-out-confirm"),
                ],
            )
        )

    return [
        w.section_header("Sign out"),
        ft.Text(
            "Signing out erases every patient record from this phone. Use it when the "
            "phone is handed over or you leave the team."
        ),
        ft.Row(
            [
                w.danger_button(
                    "Sign out and erase this device", ask, icon=ft.Icons.LOGOUT, key="sign-out"
                )
            ]
        ),
    ]


def _warn_unsynced(nav: shell.Nav, count: int, erase: Any, *, expired: bool) -> None:
    async def anyway(e: Any = None) -> None:
        await erase(True)

    remedy = (
        "Your sign-in has expired: sign in again on the Sync screen to send them "
        "first, or erase anyway."
        if expired
        else "Connect to the network and try again, or erase anyway."
    )
    nav.show_dialog(
        ft.AlertDialog(
            modal=True,
            key="unsynced-dialog",
            title=ft.Text("Unsynced work would be lost"),
            content=ft.Text(
                f"{count} change{'s' if count != 1 else ''} could not be sent to the "
                f"server. If you erase now, they are lost for good. {remedy}",
                key="unsynced-text",
            ),
            actions=[
                w.text_button("Keep my data", lambda e: nav.close_dialog(), key="keep"),
                w.danger_button("Erase anyway", anyway, key="erase-anyway"),
            ],
        )
    )


def build(app: AppState, nav: shell.Nav, **_: str) -> ft.View:
    """The settings screen."""

    def lock(e: Any = None) -> None:
        app.session.lock()

    def auto_lock(e: Any) -> None:
        app.session.touch()
        app.session.set_auto_lock(int(e.control.value))
        nav.toast(f"Liaison now locks after {plural(int(e.control.value), 'minute')} without use.")

    minutes = ft.Dropdown(
        label="Auto-lock after",
        key="auto-lock",
        value=str(app.session.auto_lock_minutes),
        options=[
            ft.DropdownOption(key=str(m), text=plural(m, "minute")) for m in AUTO_LOCK_CHOICES
        ],
        on_select=auto_lock,
        width=240,
    )
    pins = _pin_section(app, nav)
    # Half-typed PINs are not saved anywhere (never kept in state): leaving asks first.
    typed = [c for c in pins if isinstance(c, ft.TextField)]

    def clear() -> None:
        for field in typed:
            field.value = ""

    leave = shell.Leave(unsaved=lambda: any(f.value for f in typed), discard=clear)
    controls: list[ft.Control] = [
        w.section_header("Security"),
        ft.Row([w.primary_button("Lock now", lock, icon=ft.Icons.LOCK, key="settings-lock")]),
        ft.Text("Liaison also locks when it goes to the background."),
        ft.Text(PROTECTION[app.session.protection()], key="protection"),
        minutes,
        *pins,
        *_account(app),
        *_sign_out(app, nav),
    ]
    return shell.screen(app, nav, urls.SETTINGS, "Settings", controls, leave=leave)
