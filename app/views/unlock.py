"""Unlock: a PIN pad, attempts left, the wait after wrong PINs, the wipe limit explained."""

from __future__ import annotations

from typing import Any

import flet as ft

from app import forms, urls
from app.state import AppState
from app.views import shell
from app.views import widgets as w

KEY = 76  # PIN pad key size, px (well above 48)


def _dots(entry: str) -> str:
    return " ".join("•" for _ in entry) if entry else "Enter your PIN"


def build(app: AppState, nav: shell.Nav, **_: str) -> ft.View:
    """The lock screen; shows no patient data."""
    u = app.session.unlock_state
    wait = app.session.retry_in()
    blocked = wait > 0 or u.busy
    dots = ft.Text(
        _dots(u.entry),
        key="dots",
        size=28,
        text_align=ft.TextAlign.CENTER,
        semantics_label=f"{len(u.entry)} digits entered",
    )

    def press(digit: str) -> Any:
        def handler(e: Any = None) -> None:
            app.session.touch()
            app.session.press_digit(digit)
            dots.value = _dots(app.session.unlock_state.entry)
            dots.semantics_label = f"{len(app.session.unlock_state.entry)} digits entered"

        return handler

    def erase(e: Any = None) -> None:
        app.session.erase_digit()
        dots.value = _dots(app.session.unlock_state.entry)
        dots.semantics_label = f"{len(app.session.unlock_state.entry)} digits entered"

    async def submit(e: Any = None) -> None:
        busy.visible = True
        nav.update()
        await app.session.unlock()
        nav.refresh()  # on success the app has already moved on to the unlocked screens

    def key(
        label: str, handler: Any, *, icon: ft.IconData | None = None, filled: bool = False
    ) -> ft.Control:
        if icon is not None:
            kind = ft.FilledIconButton if filled else ft.IconButton
            return kind(
                w.labelled_icon(icon, label, size=28),
                tooltip=label,
                on_click=handler,
                disabled=blocked,
                key=f"pin-{label.split()[0].lower()}",
                width=KEY,
                height=KEY - 12,
            )
        return ft.FilledTonalButton(
            label,
            on_click=handler,
            disabled=blocked,
            key=f"pin-{label}",
            width=KEY,
            height=KEY - 12,
            style=ft.ButtonStyle(text_style=ft.TextStyle(size=26)),
        )

    rows = [["1", "2", "3"], ["4", "5", "6"], ["7", "8", "9"]]
    pad: list[ft.Control] = [
        ft.Row([key(d, press(d)) for d in row], alignment=ft.MainAxisAlignment.CENTER)
        for row in rows
    ]
    pad.append(
        ft.Row(
            [
                key("Delete last digit", erase, icon=ft.Icons.BACKSPACE_OUTLINED),
                key("0", press("0")),
                key("Unlock", submit, icon=ft.Icons.LOCK_OPEN, filled=True),
            ],
            alignment=ft.MainAxisAlignment.CENTER,
        )
    )
    busy = ft.ProgressBar(key="busy", visible=u.busy, semantics_label="Checking PIN")

    items: list[ft.Control] = [
        ft.Icon(ft.Icons.LOCK, size=48),
        ft.Text("Liaison is locked", theme_style=ft.TextThemeStyle.HEADLINE_SMALL),
        dots,
    ]
    if u.message:
        items.append(w.banner(u.message, kind="error", key="message"))
    if wait > 0:
        items.append(
            w.banner(f"Wait {_duration(wait)} before the next try.", kind="warning", key="wait")
        )
    items += [busy, *pad, _limit_notice(app)]
    items.append(w.text_button("Forgot PIN?", lambda e: _confirm_forget(app, nav), key="forgot"))
    return ft.View(
        route=urls.UNLOCK,
        padding=ft.Padding.symmetric(horizontal=16, vertical=16),
        controls=[
            ft.SafeArea(
                ft.Column(
                    items,
                    key="body",
                    spacing=12,
                    horizontal_alignment=ft.CrossAxisAlignment.CENTER,
                    scroll=ft.ScrollMode.AUTO,
                ),
                expand=True,
            )
        ],
    )


def _duration(seconds: float) -> str:
    seconds = int(seconds + 0.999)
    if seconds < 60:
        return f"{seconds} s"
    minutes, rest = divmod(seconds, 60)
    if minutes < 60:
        return f"{minutes} min {rest:02d} s"
    return f"{minutes // 60} h {minutes % 60} min"


def _limit_notice(app: AppState) -> ft.Control:
    u = app.session.unlock_state
    text = (
        f"{u.attempts_left} of {u.max_attempts} attempts left. After {u.max_attempts} "
        "wrong PINs in a row, Liaison erases its data on this phone; anything not yet "
        "synced is lost."
    )
    kind = "warning" if u.attempts_left <= 3 else "info"
    return w.banner(text, kind=kind, key="attempts")


def _confirm_forget(app: AppState, nav: shell.Nav) -> None:
    forms.confirm_dialog(
        nav,
        "Erase this phone's Liaison data?",
        "Without the PIN the data on this phone cannot be opened. Erasing it lets you sign "
        "in again and download your caseload; changes that were not synced are lost.",
        "Erase and sign in again",
        app.session.forget_pin,
        danger=True,
        key="forget",
    )
