"""Past office rounds: newest first, each with its date, site and patient count; tapping
one opens it to go on with, edit or remove entries. "New round" starts one."""

from __future__ import annotations

import datetime as dt

import flet as ft

from app import rounds, urls
from app.state import AppState
from app.views import shell
from app.views import widgets as w


def when(date: str) -> str:
    """A round's date as a liaison reads it ("Mon 23 Nov 2026"); kept as typed if odd."""
    try:
        return dt.date.fromisoformat(date).strftime("%a %d %b %Y")
    except ValueError:
        return date or "No date"


def _row(nav: shell.Nav, summary: rounds.RoundSummary) -> ft.Control:
    url = urls.office_round(summary.id)
    return w.tile(
        f"{when(summary.date)} · {summary.site or 'No site'}",
        rounds.patients(summary.patients),
        icon=ft.Icons.GROUPS_OUTLINED,
        key=f"past-round-{summary.id}",
        on_click=lambda e: nav.go(url),
    )


def build(app: AppState, nav: shell.Nav, **_: str) -> ft.View:
    """The list of past rounds."""
    past = app.casework.past_rounds()
    controls: list[ft.Control] = [
        ft.Row(
            [
                w.primary_button(
                    "New round",
                    lambda e: nav.go(urls.office_round()),
                    icon=ft.Icons.GROUP_ADD_OUTLINED,
                    key="new-round",
                    expand=True,
                )
            ]
        ),
        w.section_header(f"Past rounds ({len(past)})", key="past-rounds-header"),
    ]
    if not past:
        controls.append(
            w.empty_state(
                "No rounds yet",
                "Rounds you record appear here, newest first, to look back at or go on with.",
                icon=ft.Icons.GROUPS_OUTLINED,
                key="past-rounds-none",
            )
        )
    controls += [_row(nav, s) for s in past]
    return shell.screen(app, nav, urls.ROUNDS, "Past rounds", controls)
