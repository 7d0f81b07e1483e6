"""Today: rounds and visits today, overdue follow-ups, referrals due, sync state."""

from __future__ import annotations

import flet as ft

from app import queries, urls
from app.state import AppState
from app.views import shell
from app.views import widgets as w


def _items(
    nav: shell.Nav, items: list[queries.Item], key: str, icon: ft.IconData, none: str
) -> list[ft.Control]:
    if not items:
        return [ft.Text(none, key=f"{key}-none", color=ft.Colors.ON_SURFACE_VARIANT)]
    rows: list[ft.Control] = []
    for item in items:
        url = urls.for_record(item.type, item.id, item.patient_id, link=item.link)
        detail = " · ".join(filter(None, [item.detail, item.when]))
        if item.overdue:
            detail = f"Overdue · {detail}"
        rows.append(
            w.tile(
                item.title,
                detail,
                icon=w.record_icon(item.type, item.variant, icon),  # a call shows a phone
                key=f"{key}-{item.id}",
                on_click=(lambda e, r=url: nav.go(r)) if url else None,
            )
        )
    return rows


def build(app: AppState, nav: shell.Nav, **_: str) -> ft.View:
    """Today's screen from the open store."""
    day = app.today
    data = queries.today(app.store, day)
    sync = w.tile(
        app.sync.label(app.now()),
        app.sync.error or "Tap to see sync details",
        icon=ft.Icons.CLOUD_OFF if app.sync.offline else ft.Icons.CLOUD_OUTLINED,
        key="today-sync",
        on_click=lambda e: nav.go(urls.SYNC),
    )
    controls: list[ft.Control] = [
        ft.Text(day.strftime("%A %d %B"), theme_style=ft.TextThemeStyle.TITLE_LARGE, key="date"),
        ft.Row(
            [
                w.primary_button(
                    "New assessment",
                    lambda e: nav.go(urls.PICK_PATIENT),
                    icon=ft.Icons.ADD_TASK,
                    key="new-assessment",
                    expand=True,
                )
            ]
        ),
        w.button_row(
            [
                w.secondary_button(
                    "Office round",
                    lambda e: nav.go(urls.office_round()),
                    icon=ft.Icons.GROUPS_OUTLINED,
                    key="start-round",
                ),
                w.secondary_button(
                    "Past rounds",
                    lambda e: nav.go(urls.ROUNDS),
                    icon=ft.Icons.HISTORY,
                    key="past-rounds",
                ),
                w.secondary_button(
                    "Tasks", lambda e: nav.go(urls.TASKS), icon=ft.Icons.CHECKLIST, key="tasks"
                ),
            ]
        ),
        sync,
    ]
    if data.empty:
        controls.append(
            w.empty_state(
                "Nothing due today",
                "No rounds, visits, follow-ups or referrals are due. Start a new assessment or "
                "open your patients.",
                icon=ft.Icons.EVENT_AVAILABLE,
                key="today-empty",
            )
        )
    controls += [
        w.section_header("Office rounds today"),
        *_items(nav, data.rounds, "round", ft.Icons.GROUPS_OUTLINED, "No office rounds today."),
        w.section_header("Visits today"),
        *_items(nav, data.visits, "visit", ft.Icons.HOME_OUTLINED, "No visits recorded today."),
        w.section_header("Overdue follow-ups"),
        *_items(nav, data.follow_ups, "task", ft.Icons.ALARM, "No follow-ups due."),
        w.section_header("Referrals due"),
        *_items(nav, data.referrals, "referral", ft.Icons.SEND_OUTLINED, "No referrals due."),
    ]
    return shell.screen(app, nav, urls.TODAY, "Today", controls)
