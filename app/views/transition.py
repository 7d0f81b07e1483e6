"""Transition: the hospital-to-home hand-off, its checklist, and its status until home care
acknowledges it.

``/transition/{patient_id}`` starts one (``?transition_id=`` opens an existing one);
``/transition/edit/{transition_id}`` opens one by id. Status: planned -> handed off ->
acknowledged (the home-care side confirmed) -> complete (every checklist item ticked).
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import flet as ft

from app import forms, urls
from app.attachments import record_target
from app.casework import Casework
from app.labels import label
from app.state import AppState
from app.transition_flow import TRANSITION_NEXT, transition_step_errors
from app.views import photos, shell
from app.views import widgets as w
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
    work = app.casework
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
        form = app.ui[key] = _new_form(record)
    heading = ft.Text(
        work.patient_name(pid), key="patient-heading", theme_style=ft.TextThemeStyle.TITLE_LARGE
    )
    # Saving an existing transition redraws this part only: the screen keeps its scroll.
    body = ft.Column(
        key="transition-form", spacing=w.GAP, horizontal_alignment=ft.CrossAxisAlignment.STRETCH
    )

    def redraw(saved: dict[str, Any]) -> None:
        fresh = app.ui[key] = _new_form(saved)
        body.controls = _form(app, nav, work, saved, fresh, key, redraw)

    body.controls = _form(app, nav, work, record, form, key, redraw, patient_id=pid)
    return shell.screen(app, nav, route, "Transition", [heading, body], leave=_leave(app, key))


def _new_form(record: dict[str, Any] | None) -> dict[str, Any]:
    """The form state of a transition: its fields, errors, and what it started from."""
    fields = (
        {k: record["fields"][k] for k in FORM_FIELDS if k in record["fields"]}
        if record
        else {"status": "planned", "checklist": {}}
    )
    return {
        "fields": fields,
        "errors": {},
        "initial": copy.deepcopy(fields),
        "base": forms.base_clock(record, FORM_FIELDS),  # to tell edits made elsewhere
    }


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
    record: dict[str, Any] | None,
    form: dict[str, Any],
    key: str,
    redraw: Callable[[dict[str, Any]], None],
    *,
    patient_id: str = "",
) -> list[ft.Control]:
    f, errors = form["fields"], form["errors"]
    status = f.get("status") or "planned"
    pid = record["fields"]["patient_id"] if record else patient_id
    save = _saver(app, nav, work, pid, record, form, key, redraw)
    discharge, discharge_row = w.date_field(
        "Discharge date", nav, key="discharge-date", value=str(f.get("discharge_date") or "")
    )
    discharge.error = errors.get("discharge_date")
    discharge.on_change = _typed(f, "discharge_date", discharge)
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
        _site(work, form, "from_site_id", "hospital", "Hospital"),
        discharge_row,
        w.section_header("To home care"),
        _site(work, form, "to_site_id", "home_care_agency", "Home-care agency"),
        _text(form, "home_care_agency", "Or type the agency's name"),
        _text(form, "home_care_contact", "Home-care contact (name, phone)"),
        _text(form, "accountable", "Accountable person"),
        w.section_header("Checklist"),
        *_checklist(form),
        _text(form, "notes", "Notes", multiline=True),
        # A discharge sheet or a home hazard: saved with the record at once.
        *photos.section(
            app,
            nav,
            record_target(app.store, "transition", record["id"]) if record else None,
            key="transition-photos",
            unsaved_hint="Save the transition first, then add photos.",
        ),
        _buttons(status, save),
    ]
    return items


def _site(work: Casework, form: dict[str, Any], name: str, kind: str, text: str) -> ft.Row:
    """A dropdown of the directory's sites of ``kind``, full width."""
    f = form["fields"]

    def chosen(value: str | None) -> None:
        f[name] = value

    _, dropdown = w.dropdown(
        text,
        [(s["id"], str(s["fields"].get("name", ""))) for s in work.sites(kind)],
        key=name.replace("_", "-"),
        value=f.get(name),
        error=form["errors"].get(name),
        on_select=chosen,
    )
    return ft.Row([dropdown])  # a Row, so the dropdown can take the full width


def _typed(f: dict[str, Any], name: str, field: ft.TextField) -> Callable[[Any], None]:
    def typed(e: Any = None) -> None:
        f[name] = (field.value or "").strip() or None

    return typed


def _text(form: dict[str, Any], name: str, caption: str, **kwargs: Any) -> ft.TextField:
    f = form["fields"]
    field = w.text_field(
        caption,
        key=name.replace("_", "-"),
        value=str(f.get(name) or ""),
        error=form["errors"].get(name),
        **kwargs,
    )
    field.on_change = _typed(f, name, field)
    return field


def _checklist(form: dict[str, Any]) -> list[ft.Control]:
    """A checkbox per checklist item, and the checklist's error."""
    f = form["fields"]
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
    boxes.append(
        ft.Text(
            form["errors"].get("checklist", ""),
            key="checklist-error",
            color=ft.Colors.ERROR,
            visible="checklist" in form["errors"],
        )
    )
    return boxes


def _buttons(status: str, save: Callable[[str | None], None]) -> ft.Row:
    """The next status step first, then Save."""
    buttons: list[ft.Control] = [
        w.primary_button(
            STEP_TEXT[step],
            lambda e, s=step: save(s),
            icon=ft.Icons.ARROW_FORWARD,
            key=f"step-{step}",
        )
        for step in TRANSITION_NEXT.get(status, ())
    ]
    buttons.append(
        w.secondary_button("Save", lambda e: save(None), icon=ft.Icons.SAVE, key="save-transition")
    )
    return w.button_row(buttons)


def unticked(fields: dict[str, Any]) -> list[str]:
    """The checklist items not ticked yet, as the liaison reads them."""
    checklist = fields.get("checklist") or {}
    return [CHECKLIST_LABELS[i] for i in CHECKLIST_ITEMS if not checklist.get(i)]


def _saver(
    app: AppState,
    nav: shell.Nav,
    work: Casework,
    patient_id: str,
    record: dict[str, Any] | None,
    form: dict[str, Any],
    key: str,
    redraw: Callable[[dict[str, Any]], None],
) -> Callable[[str | None], None]:
    """Save, or save and take a status step; asks first when the checklist is not done
    before a hand-off, or when another device changed the transition meanwhile."""
    f = form["fields"]
    rid = record["id"] if record else None

    def data() -> dict[str, Any]:
        out = {k: v for k, v in f.items() if v not in (None, "")}
        if record is not None:  # a cleared field is written as cleared
            out.update({k: None for k in FORM_FIELDS if k in record["fields"] and k not in out})
        out["patient_id"] = patient_id
        return out

    def write(step: str | None) -> None:
        try:
            saved = (
                work.move_transition(rid, data(), step)
                if step
                else work.save_transition(data(), rid)
            )
        except forms.REFUSED as exc:
            form["errors"] = forms.field_errors(exc, FIELD_NAMES)
            nav.refresh()
            return
        nav.toast(f"Transition {label(step).lower()}" if step else "Transition saved")
        if record is None:
            app.ui.pop(key, None)
            nav.go(urls.transition(patient_id, saved["id"]))
        else:
            redraw(saved)

    def checked(step: str | None) -> None:
        missing = unticked(f)
        if step != "handed_off" or not missing or transition_step_errors(data(), step):
            write(step)  # a refused step shows why; no question first
            return
        forms.confirm_dialog(
            nav,
            "Hand off with the checklist not done?",
            f"Not ticked yet: {', '.join(missing)}. Hand off anyway, or go back and tick them.",
            "Hand off anyway",
            lambda: write(step),
            cancel="Go back",
            key="unticked",
        )

    def save(step: str | None) -> None:
        forms.save_unless_stale(
            app.require_store(),
            nav,
            rid,
            form,
            FORM_FIELDS,
            lambda: checked(step),
            reopen=lambda: app.ui.pop(key, None),  # opens again from the stored transition
            labels=FIELD_NAMES,
        )

    return save
