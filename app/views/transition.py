"""Transition: the hospital-to-home hand-off, its checklist, and its status until home care
acknowledges it.

``/transition/{patient_id}`` starts one (``?transition_id=`` opens an existing one);
``/transition/edit/{transition_id}`` opens one by id. Status: planned -> handed off ->
acknowledged (the home-care side confirmed) -> complete (every checklist item ticked).
"""

from __future__ import annotations

import copy
from typing import Any

import flet as ft

from app import casework as cw
from app import urls
from app.attachments import record_target
from app.casework import Casework
from app.errors import AppError
from app.queries import label
from app.state import AppState, plain_error
from app.views import photos, shell
from app.views import widgets as w
from sync.errors import InvalidRecord
from sync.schema import CHECKLIST_ITEMS

CHECKLIST_LABELS = {  # short: a checkbox's label does not wrap at 360 px
    "patient_teaching": "Patient taught",
    "medicines_reconciled": "Medicines reconciled",
    "follow_up_appointment": "Follow-up booked",
    "equipment": "Equipment at home",
}
STEP_TEXT = {
    "handed_off": "Mark handed off",
    "acknowledged": "Home care acknowledged",
    "complete": "Mark complete",
}
STATUS_HELP = {
    "planned": "Planned: fill in the hand-off, then mark it handed off.",
    "handed_off": "Handed off: waiting for the home-care agency to acknowledge.",
    "acknowledged": "Acknowledged by home care: tick the checklist to complete.",
    "complete": "Complete.",
}
FIELD_NAMES = {
    "from_site_id": "Hospital",
    "to_site_id": "Home-care agency",
    "home_care_agency": "Home-care agency",
    "home_care_contact": "Home-care contact",
    "discharge_date": "Discharge date",
    "accountable": "Accountable person",
    "checklist": "Checklist:",
    "status": "Status:",
}
FORM_FIELDS = (
    "from_site_id",
    "to_site_id",
    "discharge_date",
    "home_care_agency",
    "home_care_contact",
    "accountable",
    "checklist",
    "notes",
    "status",
)


def build(
    app: AppState, nav: shell.Nav, patient_id: str = "", transition_id: str = "", **_: str
) -> ft.View:
    """A new or existing transition of care."""
    work = Casework(app)
    record = work.get(transition_id, "transition") if transition_id else None
    pid = record["fields"]["patient_id"] if record else patient_id
    route = urls.transition(pid, transition_id or None)
    if (transition_id and record is None) or work.get(pid, "patient") is None:
        return shell.missing(
            app,
            nav,
            route,
            "Transition",
            "This transition or patient is not on this phone.",
            key="transition-missing",
        )
    key = f"transition:{transition_id or 'new:' + pid}"
    form = app.ui.get(key)
    if form is None:
        fields = (
            {k: record["fields"][k] for k in FORM_FIELDS if k in record["fields"]}
            if record
            else {"status": "planned", "checklist": {}}
        )
        form = app.ui[key] = {"fields": fields, "errors": {}, "initial": copy.deepcopy(fields)}
    heading = ft.Text(
        work.patient_name(pid), key="patient-heading", theme_style=ft.TextThemeStyle.TITLE_LARGE
    )
    return shell.screen(
        app,
        nav,
        route,
        "Transition",
        [heading, *_form(app, nav, work, pid, record, form, key)],
        leave=_leave(app, key),
    )


def _leave(app: AppState, key: str) -> shell.Leave:
    """A transition is written only by Save or a status step: edits before are unsaved."""

    def unsaved() -> bool:
        form = app.ui.get(key)
        return isinstance(form, dict) and shell.edited(form["fields"], form.get("initial", {}))

    return shell.Leave(unsaved=unsaved, discard=lambda: app.ui.pop(key, None))


def _form(
    app: AppState,
    nav: shell.Nav,
    work: Casework,
    patient_id: str,
    record: dict[str, Any] | None,
    form: dict[str, Any],
    key: str,
) -> list[ft.Control]:
    f, errors = form["fields"], form["errors"]
    status = f.get("status") or "planned"

    def site_dropdown(name: str, kind: str, text: str) -> ft.Row:
        options = [
            ft.DropdownOption(key=s["id"], text=str(s["fields"].get("name", "")))
            for s in work.sites(kind)
        ]
        dropdown = ft.Dropdown(
            key=name.replace("_", "-"),
            label=text,
            value=f.get(name),
            options=options,
            expand=True,
            error_text=errors.get(name),
            disabled=not options,
        )

        def chosen(e: Any = None) -> None:
            f[name] = dropdown.value or None

        dropdown.on_select = chosen
        return ft.Row([dropdown])  # a Row, so the dropdown can take the full width

    def text(name: str, caption: str, **kwargs: Any) -> ft.TextField:
        field = w.text_field(
            caption,
            key=name.replace("_", "-"),
            value=str(f.get(name) or ""),
            error=errors.get(name),
            **kwargs,
        )

        def typed(e: Any = None) -> None:
            f[name] = (field.value or "").strip() or None

        field.on_change = typed
        return field

    checklist = dict(f.get("checklist") or {})
    boxes: list[ft.Control] = []
    for item in CHECKLIST_ITEMS:
        box = ft.Checkbox(
            key=f"check-{item}", label=CHECKLIST_LABELS[item], value=bool(checklist.get(item))
        )

        def ticked(e: Any = None, item: str = item, box: ft.Checkbox = box) -> None:
            f["checklist"] = {**(f.get("checklist") or {}), item: bool(box.value)}

        box.on_change = ticked
        boxes.append(box)

    def save(step: str | None = None) -> None:
        data = {k: v for k, v in f.items() if v not in (None, "")}
        if record is not None:  # a cleared field is written as cleared
            data.update({k: None for k in FORM_FIELDS if k in record["fields"] and k not in data})
        data["patient_id"] = patient_id
        rid = record["id"] if record else None
        try:
            saved = (
                work.move_transition(rid, data, step) if step else work.save_transition(data, rid)
            )
        except (InvalidRecord, AppError) as exc:
            form["errors"] = _errors(exc)
            nav.refresh()
            return
        app.ui.pop(key, None)
        nav.saved()
        nav.toast(f"Transition {label(step).lower()}" if step else "Transition saved")
        target = urls.transition(patient_id, saved["id"])
        if record is None:
            nav.go(target)
        else:
            nav.refresh()

    items: list[ft.Control] = []
    if errors:
        items.append(w.banner("; ".join(errors.values()), kind="error", key="transition-errors"))
    items += [
        ft.Text(
            STATUS_HELP.get(status, label(status)),
            key="transition-status",
            theme_style=ft.TextThemeStyle.BODY_LARGE,
        ),
        w.section_header("From hospital"),
        site_dropdown("from_site_id", "hospital", "Hospital"),
        text("discharge_date", "Discharge date (YYYY-MM-DD)"),
        w.section_header("To home care"),
        site_dropdown("to_site_id", "home_care_agency", "Home-care agency"),
        text("home_care_agency", "Or type the agency's name"),
        text("home_care_contact", "Home-care contact (name, phone)"),
        text("accountable", "Accountable person"),
        w.section_header("Checklist"),
        *boxes,
        ft.Text(
            errors.get("checklist", ""),
            key="checklist-error",
            color=ft.Colors.ERROR,
            visible="checklist" in errors,
        ),
        text("notes", "Notes", multiline=True),
        # A discharge sheet or a home hazard: saved with the record at once.
        *photos.section(
            app,
            nav,
            record_target(app.store, "transition", record["id"]) if record else None,
            key="transition-photos",
            unsaved_hint="Save the transition first, then add photos.",
        ),
    ]
    buttons: list[ft.Control] = [
        w.secondary_button("Save", lambda e: save(), icon=ft.Icons.SAVE, key="save-transition")
    ]
    for step in cw.TRANSITION_NEXT.get(status, ()):
        buttons.insert(
            0,
            w.primary_button(
                STEP_TEXT[step],
                lambda e, s=step: save(s),
                icon=ft.Icons.ARROW_FORWARD,
                key=f"step-{step}",
            ),
        )
    items.append(w.button_row(buttons))
    return items


def _errors(exc: Exception) -> dict[str, str]:
    if isinstance(exc, InvalidRecord):
        return {
            e.field: f"{FIELD_NAMES.get(e.field, label(e.field))} {e.message}" for e in exc.errors
        }
    return {"_": plain_error(exc)}
