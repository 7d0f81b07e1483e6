"""Caseload: my team's patients, search as you type, filters, quick-add.

The same screen picks the patient for a new assessment (``urls.PICK_PATIENT``).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flet as ft

from app import patients, queries, urls
from app.state import AppState
from app.views import shell
from app.views import widgets as w

LIMIT = "caseload_limit"  # how many rows are shown: one page more at each "Show more"


def _rows(app: AppState, nav: shell.Nav, pick: bool, more: Callable[[], None]) -> list[ft.Control]:
    text = app.ui.get("caseload_query", "")
    name = app.ui.get("caseload_filter", "all")
    page = queries.caseload(app.store, text, name, app.today, app.ui.get(LIMIT, queries.PAGE))
    rows = page.rows
    if not rows:
        if text.strip():
            return [
                w.empty_state(
                    "No patient found",
                    f"No patient matches “{text.strip()}”. Check the spelling or add the patient.",
                    icon=ft.Icons.PERSON_SEARCH,
                    key="caseload-empty",
                )
            ]
        if name != "all":
            return [
                w.empty_state(
                    "No patients in this list",
                    f"No patient is in “{queries.FILTER_LABELS[name]}”.",
                    icon=ft.Icons.FILTER_LIST_OFF,
                    key="caseload-empty",
                )
            ]
        return [
            w.empty_state(
                "No patients yet",
                "Sync to download your team's caseload, or add a patient.",
                icon=ft.Icons.PEOPLE_OUTLINE,
                key="caseload-empty",
            )
        ]
    out: list[ft.Control] = []
    for row in rows:
        target = urls.assess(row.id) if pick else urls.patient(row.id)
        icon = ft.Icons.PRIORITY_HIGH if row.follow_up else ft.Icons.PERSON_OUTLINE
        out.append(
            w.tile(
                row.name,
                row.detail,
                icon=icon,
                key=f"patient-{row.id}",
                on_click=lambda e, t=target: nav.go(t),
            )
        )
    if page.more:
        shown = min(page.more, queries.PAGE)
        out.append(
            ft.Row(
                [
                    w.secondary_button(
                        f"Show {shown} more ({page.more} not shown)",
                        lambda e: more(),
                        icon=ft.Icons.EXPAND_MORE,
                        key="caseload-more",
                    )
                ],
                alignment=ft.MainAxisAlignment.CENTER,
            )
        )
    return out


def build(app: AppState, nav: shell.Nav, **_: str) -> ft.View:
    """The caseload list (or the patient picker for a new assessment)."""
    pick = nav.route.partition("?")[0] == urls.PICK_PATIENT

    def more() -> None:
        app.session.touch()
        app.ui[LIMIT] = app.ui.get(LIMIT, queries.PAGE) + queries.PAGE
        results.controls = _rows(app, nav, pick, more)

    results = ft.Column(_rows(app, nav, pick, more), key="results", spacing=0)
    chips = ft.Row(key="filters", wrap=True, spacing=8, run_spacing=8)

    def redraw() -> None:
        app.ui.pop(LIMIT, None)  # another search or list: from its first page
        results.controls = _rows(app, nav, pick, more)
        chips.controls = _chips()

    def search(e: Any) -> None:
        app.session.touch()
        app.ui["caseload_query"] = e.control.value or ""
        redraw()

    def choose(name: str) -> Any:
        def handler(e: Any = None) -> None:
            app.session.touch()
            app.ui["caseload_filter"] = name
            redraw()

        return handler

    def _chips() -> list[ft.Control]:
        current = app.ui.get("caseload_filter", "all")
        return [
            ft.Chip(
                label=ft.Text(queries.FILTER_LABELS[n]),
                selected=n == current,
                key=f"filter-{n}",
                on_select=choose(n),
                height=w.TOUCH,
            )
            for n in queries.FILTERS
        ]

    chips.controls = _chips()
    box = w.text_field(
        "Search patients by name",
        key="search",
        value=app.ui.get("caseload_query", ""),
        on_change=search,
    )
    box.prefix_icon = ft.Icons.SEARCH
    add = w.secondary_button(
        "Add patient",
        lambda e: _quick_add(app, nav, pick),
        icon=ft.Icons.PERSON_ADD_ALT,
        key="add-patient",
    )
    controls: list[ft.Control] = []
    if pick:
        controls.append(
            ft.Text(
                "Choose the patient for the new assessment, or add them.",
                theme_style=ft.TextThemeStyle.BODY_LARGE,
            )
        )
    controls += [box, chips, ft.Row([add]), results]
    title = "New assessment" if pick else "Patients"
    return shell.screen(app, nav, urls.PICK_PATIENT if pick else urls.CASELOAD, title, controls)


NEW_PATIENT = "caseload:new-patient"  # the add dialog's draft: kept when it is closed by Back


def _quick_add(app: AppState, nav: shell.Nav, pick: bool) -> None:
    draft: dict[str, Any] = app.ui.setdefault(NEW_PATIENT, {})
    name = w.text_field("Full name", key="new-name", autofocus=True, value=draft.get("name", ""))
    phone = w.text_field(
        "Phone (optional)",
        key="new-phone",
        keyboard=ft.KeyboardType.PHONE,
        value=draft.get("phone", ""),
    )
    birth = w.text_field(
        "Birth date (optional)",
        key="new-birth",
        hint="YYYY-MM-DD",
        keyboard=ft.KeyboardType.DATETIME,
        value=draft.get("birth", ""),
    )
    teams = app.teams()
    team = ft.Dropdown(
        label="Team",
        key="new-team",
        options=[ft.DropdownOption(key=tid, text=tname) for tid, tname in teams],
        visible=len(teams) > 1,
        value=draft.get("team"),
    )

    warning = ft.Column(key="duplicates", visible=False, spacing=4)
    add = w.primary_button("Add", lambda e: save(), key="add-save")

    def typed(e: Any = None) -> None:
        draft.update(
            name=name.value or "", phone=phone.value or "", birth=birth.value or "", team=team.value
        )
        if warning.visible:  # the details changed: check them again on Add
            warning.visible, add.content = False, "Add"

    name.on_change = phone.on_change = birth.on_change = typed
    team.on_select = typed

    def cancel(e: Any = None) -> None:
        app.ui.pop(NEW_PATIENT, None)  # Cancel is the one way to drop what was typed
        nav.close_dialog()

    def dismissed(e: Any = None) -> None:
        # Closed with the system back: what was typed stays for the next Add patient.
        if app.ui.get(NEW_PATIENT, {}).get("name", "").strip():
            nav.toast("The new patient was kept: tap Add patient to finish.")

    def use(patient_id: str) -> None:
        app.ui.pop(NEW_PATIENT, None)
        nav.close_dialog()
        nav.go(urls.assess(patient_id) if pick else urls.patient(patient_id))

    def save(e: Any = None) -> None:
        if not (name.value or "").strip():
            name.error = "Enter the patient's name."
            return
        if not warning.visible:
            found = patients.likely_duplicates(
                app.require_store().list("patient"),
                name.value or "",
                birth.value or "",
                phone.value or "",
            )
            if found:  # ask first: "Use this patient" or "Add anyway"
                warning.controls = _duplicates(found, use)
                warning.visible, add.content = True, "Add anyway"
                return
        pid, problems = app.add_patient(
            name.value or "", phone.value or "", birth.value or "", team.value
        )
        if pid is None:
            name.error = problems.get("name")
            phone.error = problems.get("phone")
            birth.error = problems.get("birth_date")
            team.error_text = problems.get("team_id")
            return
        app.ui.pop(NEW_PATIENT, None)
        nav.close_dialog()
        nav.go(urls.assess(pid) if pick else urls.patient(pid))

    name.on_submit = save
    nav.show_dialog(
        ft.AlertDialog(
            key="add-dialog",
            modal=True,
            title=ft.Text("Add patient"),
            content=ft.Column(
                [name, phone, birth, team, warning], tight=True, spacing=12, width=360
            ),
            actions=[w.text_button("Cancel", cancel, key="add-cancel"), add],
            scrollable=True,
            on_dismiss=dismissed,
        )
    )


def _duplicates(found: list[patients.Duplicate], use: Callable[[str], None]) -> list[ft.Control]:
    """The warning in the add dialog: patients already here who may be the same person."""
    out: list[ft.Control] = [
        w.banner(
            "This patient may already be here. Open them instead, or add a new patient anyway.",
            kind="warning",
            key="duplicates-warning",
        )
    ]
    for d in found:
        out += [
            w.tile(
                d.name,
                " · ".join(filter(None, [d.reason, d.detail])),
                icon=ft.Icons.PERSON_SEARCH,
                key=f"duplicate-{d.id}",
            ),
            ft.Row(
                [
                    w.secondary_button(
                        "Use this patient",
                        lambda e, pid=d.id: use(pid),
                        icon=ft.Icons.PERSON,
                        key=f"use-{d.id}",
                    )
                ]
            ),
        ]
    return out
