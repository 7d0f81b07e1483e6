"""Edit a patient's details: name, date of birth, phone, address, language, consent and
caregivers.

What is typed is a ``patients.Details`` draft (kept encrypted across auto-lock) until Save;
leaving with unsaved input asks first. A patient added by name only (in a round, or in a
hurry) is completed here.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
from collections.abc import Callable
from typing import Any

import flet as ft

from app import forms, patients, urls
from app.patients import Details
from app.state import AppState
from app.views import shell
from app.views import widgets as w

# Under the heading "Consent" a choice reads "Declined" (``labels.CONSENT`` has the wording
# that stands alone: "Consent declined").
CONSENT_CHOICES = (
    ("verbal", "Verbal consent"),
    ("written", "Written consent"),
    ("declined", "Declined"),
    ("withdrawn", "Withdrawn"),
    ("unknown", "Not recorded yet"),
)
FIELD_NAMES = {
    "name": "Name",
    "birth_date": "Date of birth",
    "phone": "Phone",
    "address": "Address",
    "language": "Preferred language",
    "consent_status": "Consent",
    "caregivers": "Caregivers:",
}
CAREGIVER_FIELDS = (("name", "name"), ("relation", "relation"), ("phone", "phone"))


def build(app: AppState, nav: shell.Nav, patient_id: str = "", **_: str) -> ft.View:
    """The details form of one patient."""
    route = urls.edit_patient(patient_id)
    record = app.require_store().get(patient_id)
    if record is None or record["type"] != "patient":
        return shell.missing(
            app,
            nav,
            route,
            "Edit details",
            "This patient is not on this phone.",
            key="patient-edit-missing",
        )
    key = patients.draft_key(patient_id)
    form = app.drafts.get(key, Details) or patients.details_of(record)
    errors: dict[str, str] = app.ui.get(_errors_key(patient_id), {})

    def changed() -> None:
        app.session.touch()
        app.drafts.put(key, form)

    def save(e: Any = None) -> None:
        try:
            patients.save_details(app.store, patient_id, form, app.today)
        except forms.REFUSED as exc:
            app.ui[_errors_key(patient_id)] = forms.field_errors(exc, FIELD_NAMES)
            nav.refresh()
            return
        app.drafts.drop(key)
        app.ui.pop(_errors_key(patient_id), None)
        nav.toast("Details saved")
        nav.back()

    controls: list[ft.Control] = []
    if errors:
        controls.append(w.banner("; ".join(errors.values()), kind="error", key="details-errors"))
    controls += [
        _text(form, "name", "Full name", errors, changed),
        _birth_date(app, nav, form, errors, changed),
        _text(form, "phone", "Phone", errors, changed, keyboard=ft.KeyboardType.PHONE),
        _text(form, "address", "Address", errors, changed, multiline=True),
        _text(form, "language", "Preferred language", errors, changed),
        w.section_header("Consent"),
        _consent(form, changed),
        w.section_header("Caregivers"),
        *_caregivers(nav, form, changed),
        w.button_row([w.primary_button("Save", save, icon=ft.Icons.SAVE, key="save-details")]),
    ]
    return shell.screen(app, nav, route, "Edit details", controls, leave=_leave(app, patient_id))


def _errors_key(patient_id: str) -> str:
    return f"patient-edit-errors:{patient_id}"


def _leave(app: AppState, patient_id: str) -> shell.Leave:
    """The draft is kept (encrypted) on the way out; it is unsaved while it differs from
    the patient's saved details."""
    key = patients.draft_key(patient_id)

    def unsaved() -> bool:
        draft = app.drafts.get(key, Details)
        record = app.require_store().get(patient_id) if app.store is not None else None
        if draft is None or record is None:
            return False
        saved = patients.details_of(record)
        return shell.edited(dataclasses.asdict(draft), dataclasses.asdict(saved))

    def discard() -> None:
        app.drafts.drop(key)
        app.ui.pop(_errors_key(patient_id), None)

    return shell.Leave(unsaved=unsaved, discard=discard, keep=app.drafts.flush)


def _text(
    form: Details,
    name: str,
    caption: str,
    errors: dict[str, str],
    changed: Callable[[], None],
    **kwargs: Any,
) -> ft.TextField:
    field = w.text_field(
        caption,
        key=name.replace("_", "-"),
        value=str(getattr(form, name)),
        error=errors.get(name),
        **kwargs,
    )

    def typed(e: Any = None) -> None:
        setattr(form, name, field.value or "")
        changed()

    field.on_change = typed
    return field


def picked_date(value: Any) -> str | None:
    """A DatePicker's value as YYYY-MM-DD (None when nothing was picked)."""
    if isinstance(value, dt.datetime):
        # The client may send local midnight as UTC: read it back in local time.
        return (value.astimezone() if value.tzinfo else value).date().isoformat()
    if isinstance(value, dt.date):
        return value.isoformat()
    return None


def _birth_date(
    app: AppState,
    nav: shell.Nav,
    form: Details,
    errors: dict[str, str],
    changed: Callable[[], None],
) -> ft.Control:
    """A typed date (YYYY-MM-DD) with a calendar button beside it."""
    field = _text(
        form,
        "birth_date",
        "Date of birth (YYYY-MM-DD)",
        errors,
        changed,
        keyboard=ft.KeyboardType.DATETIME,
    )
    field.expand = True

    def chosen(e: Any = None) -> None:
        # Flet 1.0.5 reports a picker closed with a date through on_change only (its
        # on_dismiss is skipped): close it through nav, or the app keeps waiting for it
        # before it shows another screen.
        nav.close_dialog()
        day = picked_date(picker.value)
        if day is not None:
            form.birth_date = field.value = day
            changed()

    today = app.today
    picker = ft.DatePicker(
        key="birth-date-picker",
        first_date=dt.date(1900, 1, 1),
        last_date=today,
        current_date=today,
        help_text="Date of birth",
        on_change=chosen,
    )

    def open_calendar(e: Any = None) -> None:
        # It opens on the date typed so far; with none, on the years (a birth is long ago).
        try:
            picker.value = dt.date.fromisoformat(form.birth_date)
        except ValueError:
            picker.value = None
        picker.date_picker_mode = ft.DatePickerMode.DAY if picker.value else ft.DatePickerMode.YEAR
        nav.show_dialog(picker)

    pick = w.icon_action(
        ft.Icons.CALENDAR_MONTH, "Pick date of birth", open_calendar, key="pick-birth-date"
    )
    return ft.Row([field, pick], vertical_alignment=ft.CrossAxisAlignment.START)


def _consent(form: Details, changed: Callable[[], None]) -> ft.RadioGroup:
    group = ft.RadioGroup(
        key="consent-status",
        value=form.consent_status,
        content=ft.Column([ft.Radio(value=v, label=t, height=w.TOUCH) for v, t in CONSENT_CHOICES]),
    )

    def chosen(e: Any = None) -> None:
        form.consent_status = group.value or "unknown"
        changed()

    group.on_change = chosen
    return group


def _caregivers(nav: shell.Nav, form: Details, changed: Callable[[], None]) -> list[ft.Control]:
    """One card of fields per caregiver, with Remove; Add caregiver below."""
    out: list[ft.Control] = []
    for i, person in enumerate(form.caregivers):
        out.append(_caregiver(nav, form, i, person, changed))

    def add(e: Any = None) -> None:
        form.caregivers.append({k: "" for k, _ in CAREGIVER_FIELDS})
        changed()
        nav.refresh()

    out.append(
        ft.Row(
            [
                w.secondary_button(
                    "Add caregiver", add, icon=ft.Icons.PERSON_ADD_ALT, key="add-caregiver"
                )
            ]
        )
    )
    return out


def _caregiver(
    nav: shell.Nav, form: Details, i: int, person: dict[str, str], changed: Callable[[], None]
) -> ft.Control:
    fields: list[ft.Control] = []
    for name, word in CAREGIVER_FIELDS:
        box = w.text_field(
            f"Caregiver {i + 1} {word}",
            key=f"caregiver-{i}-{name}",
            value=person.get(name, ""),
            keyboard=ft.KeyboardType.PHONE if name == "phone" else ft.KeyboardType.TEXT,
        )

        def typed(e: Any = None, name: str = name, box: ft.TextField = box) -> None:
            person[name] = box.value or ""
            changed()

        box.on_change = typed
        fields.append(box)

    def remove(e: Any = None) -> None:
        form.caregivers.pop(i)
        changed()
        nav.refresh()

    header = ft.Row(
        [
            ft.Text(f"Caregiver {i + 1}", theme_style=ft.TextThemeStyle.TITLE_SMALL, expand=True),
            w.icon_action(
                ft.Icons.DELETE_OUTLINE,
                f"Remove caregiver {i + 1}",
                remove,
                key=f"remove-caregiver-{i}",
            ),
        ]
    )
    return ft.Container(
        key=f"caregiver-{i}",
        border=ft.Border.all(1, ft.Colors.OUTLINE_VARIANT),
        border_radius=ft.BorderRadius.all(12),
        padding=ft.Padding.all(12),
        content=ft.Column([header, *fields], spacing=8),
    )
