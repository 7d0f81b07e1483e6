"""app.views.redraw: a redraw keeps the controls a finger may be on."""

from __future__ import annotations

import flet as ft

from app.views import redraw
from app.views import widgets as w


def today(sync_line: str, rows: list[str]) -> list[ft.Control]:
    return [
        w.secondary_button("Office round", lambda e: None, key="start-round"),
        w.tile(
            sync_line, "Tap to see sync details", icon=ft.Icons.CLOUD_OUTLINED, key="today-sync"
        ),
        *[w.tile(r, "Home visit", key=f"visit-{r}") for r in rows],
    ]


def test_only_the_sync_line_changed_keeps_every_control() -> None:
    shown = today("Synced just now", ["Ada"])
    button, line = shown[0], shown[1]
    assert redraw.adopt(shown, today("Syncing…", ["Ada"]))
    assert shown[0] is button and shown[1] is line  # the same controls stay on the screen
    assert line.title.value == "Syncing…"


def test_nothing_changed_is_adopted_as_is() -> None:
    shown = today("Synced just now", ["Ada"])
    assert redraw.adopt(shown, today("Synced just now", ["Ada"]))


def test_a_new_row_or_new_words_elsewhere_replace_the_screen() -> None:
    shown = today("Synced just now", ["Ada"])
    assert not redraw.adopt(shown, today("Synced just now", ["Ada", "Bo"]))
    assert not redraw.adopt(shown, today("Synced just now", ["Bo"]))
    changed = today("Synced just now", ["Ada"])
    changed[0].disabled = True
    assert not redraw.adopt(shown, changed)
