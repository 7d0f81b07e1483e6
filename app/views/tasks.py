"""Tasks: follow-ups by due date (overdue, today, upcoming, undated), done with one tap.

``/tasks`` lists every open task on this phone; ``?patient_id=`` narrows to one patient
and adds a quick "new task" row.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

import flet as ft

from app import forms, urls
from app.casework import Casework
from app.messages import plain_error
from app.state import AppState
from app.views import shell
from app.views import widgets as w
from sync.errors import InvalidRecord

NEW_TASK_DAYS = 7


def group_of(due: str | None, today: dt.date) -> str:
    """Which heading a task with ``due`` sits under."""
    if not due:
        return "No due date"
    if due < today.isoformat():
        return "Overdue"
    return "Today" if due == today.isoformat() else "Upcoming"


GROUPS = ("Overdue", "Today", "Upcoming", "No due date")


def build(app: AppState, nav: shell.Nav, patient_id: str = "", **_: str) -> ft.View:
    """The task list (all, or one patient's)."""
    work = app.casework
    route = urls.tasks(patient_id or None)
    name = work.patient_name(patient_id) if patient_id else None
    if patient_id and work.get(patient_id, "patient") is None:
        return shell.screen(
            app,
            nav,
            route,
            "Tasks",
            [
                w.empty_state(
                    "Patient not found",
                    "This patient is not on this phone.",
                    icon=ft.Icons.PERSON_OFF,
                    key="tasks-missing",
                )
            ],
        )
    show_done = bool(app.ui.get("tasks:show_done"))
    tasks = work.tasks(patient_id or None, include_done=show_done)
    controls: list[ft.Control] = []
    if name:
        controls.append(
            ft.Text(name, key="patient-heading", theme_style=ft.TextThemeStyle.TITLE_LARGE)
        )
        controls += _new_task(app, nav, work, patient_id)

    def toggle_done(e: Any = None) -> None:
        app.ui["tasks:show_done"] = bool(switch.value)
        nav.refresh()

    switch = ft.Switch(
        key="show-done", label="Show done tasks", value=show_done, on_change=toggle_done
    )
    controls.append(switch)
    if not tasks:
        controls.append(
            w.empty_state(
                "No follow-ups",
                "Tasks from visits, rounds and referrals appear here by due date."
                if not patient_id
                else "Add a task above, or from a visit or a round.",
                icon=ft.Icons.TASK_ALT,
                key="tasks-empty",
            )
        )
    names: dict[str, str] = {}
    for group in GROUPS:
        members = [
            t
            for t in tasks
            if not t["fields"].get("done")
            and group_of(t["fields"].get("due_date"), work.today) == group
        ]
        if members:
            controls.append(
                w.section_header(
                    f"{group} ({len(members)})", key=f"group-{group.lower().replace(' ', '-')}"
                )
            )
            controls += [_row(nav, work, t, names, show_patient=not patient_id) for t in members]
    done = [t for t in tasks if t["fields"].get("done")]
    if done:
        controls.append(w.section_header(f"Done ({len(done)})", key="group-done"))
        controls += [_row(nav, work, t, names, show_patient=not patient_id) for t in done]
    leave = (
        shell.Leave(
            unsaved=lambda: _typed(app, patient_id),
            discard=lambda: app.ui.pop(f"tasks:new:{patient_id}", None),
        )
        if patient_id
        else None
    )
    return shell.screen(app, nav, route, "Tasks", controls, leave=leave)


def _typed(app: AppState, patient_id: str) -> bool:
    """True when a new task was typed (or its due date changed) but not added."""
    draft = app.ui.get(f"tasks:new:{patient_id}")
    return isinstance(draft, dict) and bool(
        draft["title"].strip() or draft["due"] != draft.get("initial_due", draft["due"])
    )


def _row(
    nav: shell.Nav,
    work: Casework,
    task: dict[str, Any],
    names: dict[str, str],
    *,
    show_patient: bool,
) -> ft.Control:
    f = task["fields"]
    pid = str(f.get("patient_id"))
    if show_patient and pid not in names:
        names[pid] = work.patient_name(pid)
    detail = " · ".join(
        filter(
            None,
            [
                names.get(pid) if show_patient else "",
                f"due {f['due_date']}" if f.get("due_date") else "",
            ],
        )
    )
    box = ft.Checkbox(
        key=f"task-{task['id']}", value=bool(f.get("done")), label=str(f.get("title", ""))
    )
    # Ticked here, a task stays where it is (the list does not jump) with an Undo button.
    undo = w.text_button("Undo", key=f"task-{task['id']}-undo", icon=ft.Icons.UNDO)
    undo.visible = False

    def mark(done: bool) -> None:
        try:
            work.set_done(task["id"], done)
        except forms.REFUSED as exc:
            box.value = not done
            nav.toast(f"Not saved: {plain_error(exc)}")
            return
        box.value, undo.visible = done, done
        nav.toast(f"Done: {f.get('title', '')}" if done else "Task reopened")

    box.on_change = lambda e: mark(bool(box.value))
    undo.on_click = lambda e: mark(False)
    items: list[ft.Control] = [
        ft.Row(
            [ft.Container(box, expand=True), undo], vertical_alignment=ft.CrossAxisAlignment.CENTER
        )
    ]
    if detail:
        items.append(
            ft.Container(  # lined up with the checkbox's label
                ft.Text(
                    detail, color=ft.Colors.ON_SURFACE_VARIANT, key=f"task-{task['id']}-detail"
                ),
                padding=ft.Padding.only(left=40),
            )
        )
    return ft.Container(
        ft.Column(items, spacing=0),
        padding=ft.Padding.only(bottom=6),
        on_click=(lambda e: nav.go(urls.patient(pid))) if show_patient else None,
    )


def _new_task(app: AppState, nav: shell.Nav, work: Casework, patient_id: str) -> list[ft.Control]:
    due_default = (work.today + dt.timedelta(days=NEW_TASK_DAYS)).isoformat()
    draft = app.ui.setdefault(
        f"tasks:new:{patient_id}",
        {"title": "", "due": due_default, "initial_due": due_default, "errors": {}},
    )
    title = w.text_field(
        "New task", key="task-title", value=draft["title"], error=draft["errors"].get("title")
    )

    def typed(e: Any = None) -> None:
        draft["title"], draft["due"] = title.value or "", (due.value or "").strip()

    due, due_row = w.date_field(
        "Due date",
        nav,
        key="task-due",
        value=draft["due"],
        error=draft["errors"].get("due_date"),
        on_change=typed,
    )

    def add(e: Any = None) -> None:
        typed()
        draft["errors"] = {}
        if not draft["title"].strip():
            draft["errors"]["title"] = "Type what needs doing"
            nav.refresh()
            return
        try:
            work.add_task(patient_id, draft["title"], draft["due"] or None)
        except InvalidRecord as exc:
            draft["errors"] = {e.field: e.message[:1].upper() + e.message[1:] for e in exc.errors}
            nav.refresh()
            return
        app.ui.pop(f"tasks:new:{patient_id}", None)
        nav.toast("Task added")
        nav.refresh()

    title.on_change = typed
    title.on_submit = add
    return [
        title,
        due_row,
        ft.Row(
            [
                w.primary_button(
                    "Add task", add, icon=ft.Icons.ADD_ALARM, key="add-task", expand=True
                )
            ]
        ),
    ]
