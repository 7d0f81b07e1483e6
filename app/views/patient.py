"""Patient: header facts, actions (assess, refer, task, transition) and the timeline."""

from __future__ import annotations

from typing import Any

import flet as ft

from app import forms, labels, patients, queries, urls
from app.attachments import record_target
from app.messages import plain_error
from app.state import AppState
from app.views import patient_merge, photos, shell
from app.views import widgets as w

TIMELINE_ICONS = {
    "visit": ft.Icons.ASSIGNMENT_OUTLINED,
    "round_entry": ft.Icons.GROUPS_OUTLINED,
    "referral": ft.Icons.SEND_OUTLINED,
    "task": ft.Icons.CHECK_BOX_OUTLINED,
    "transition": ft.Icons.SWAP_HORIZ,
    "addendum": ft.Icons.NOTE_ADD_OUTLINED,
}


def _tel(phone: str) -> str:
    return "tel:" + "".join(c for c in phone if c.isdigit() or c == "+")


def _header(page: queries.PatientPage) -> list[ft.Control]:
    facts = [f"Age {page.age}" if page.age is not None else "Age unknown"]
    if page.language:
        facts.append(page.language)
    out: list[ft.Control] = [
        ft.Text(page.name, key="patient-name", theme_style=ft.TextThemeStyle.HEADLINE_SMALL),
        ft.Text(" · ".join(facts), key="patient-facts", theme_style=ft.TextThemeStyle.BODY_LARGE),
    ]
    consent_ok = page.consent in ("verbal", "written")
    out.append(
        ft.Row(
            [
                ft.Icon(
                    ft.Icons.VERIFIED_USER_OUTLINED if consent_ok else ft.Icons.GPP_MAYBE_OUTLINED,
                    color=ft.Colors.PRIMARY if consent_ok else ft.Colors.ERROR,
                ),
                ft.Text(labels.label(page.consent, "consent"), key="consent", expand=True),
            ]
        )
    )
    if page.risk_flags:
        out.append(
            ft.Row(
                [
                    ft.Chip(
                        label=ft.Text(flag),
                        leading=ft.Icon(ft.Icons.WARNING_AMBER, size=18),
                        bgcolor=ft.Colors.ERROR_CONTAINER,
                    )
                    for flag in page.risk_flags
                ],
                key="risk-flags",
                wrap=True,
                spacing=6,
                run_spacing=6,
            )
        )
    if page.phone:
        out.append(
            ft.Row(
                [
                    w.secondary_button(
                        f"Call {page.phone}", icon=ft.Icons.PHONE, key="call", url=_tel(page.phone)
                    )
                ]
            )
        )
    if page.address:
        out.append(w.labelled_value("Address", page.address, key="address"))
    if page.caregivers:
        out.append(w.section_header("Caregivers"))
        for i, c in enumerate(page.caregivers):
            who = " · ".join(filter(None, [str(c.get("name") or ""), str(c.get("relation") or "")]))
            phone = str(c.get("phone") or "")
            call = (
                w.icon_action(
                    ft.Icons.PHONE, f"Call {c.get('name') or 'caregiver'}", url=_tel(phone)
                )
                if phone
                else None
            )
            out.append(
                w.tile(
                    who or "Caregiver",
                    phone or None,
                    icon=ft.Icons.PERSON_OUTLINE,
                    key=f"caregiver-{i}",
                    trailing=call,
                )
            )
    return out


def _delete(app: AppState, nav: shell.Nav, page: queries.PatientPage) -> list[ft.Control]:
    """At the bottom: delete a patient added by mistake, when this user may (asks first)."""
    refusal = patients.delete_refusal(app.store, page.id)
    if refusal is not None:
        code, why = refusal
        # A liaison learns whom to ask; a patient with a finished visit just stays.
        return [ft.Text(why, key="delete-refused")] if code == "has_records" else []

    def delete() -> None:
        try:
            patients.delete(app, page.id)
        except forms.REFUSED as exc:
            nav.toast(plain_error(exc))
            return
        nav.toast(f"{page.name} was deleted")
        nav.go(urls.CASELOAD)

    def ask(e: Any = None) -> None:
        forms.confirm_dialog(
            nav,
            "Delete this patient?",
            f"{page.name} and everything recorded about them will be deleted from this "
            "phone and, at the next sync, for your whole team. This cannot be undone.",
            "Delete",
            delete,
            danger=True,
            key="delete",
        )

    return [
        w.section_header("Added by mistake?"),
        ft.Row([w.danger_button("Delete patient", ask, icon=ft.Icons.DELETE, key="delete")]),
    ]


def build(app: AppState, nav: shell.Nav, patient_id: str = "", **_: str) -> ft.View:
    """One patient's page."""
    route = urls.patient(patient_id)
    page = queries.patient_page(app.store, patient_id, app.today)
    if page is None and (moved := patient_merge.merged_away(app, nav, route, patient_id)):
        return moved
    if page is None:
        return shell.screen(
            app,
            nav,
            route,
            "Patient",
            [
                w.empty_state(
                    "Patient not found",
                    "This patient is not on this phone. They may have left your team's caseload.",
                    icon=ft.Icons.PERSON_OFF,
                    key="patient-missing",
                )
            ],
        )
    actions = w.button_row(
        [
            w.primary_button(
                "Assess",
                lambda e: nav.go(urls.assess(patient_id)),
                icon=ft.Icons.ADD_TASK,
                key="assess",
            ),
            w.secondary_button(
                "Refer", lambda e: nav.go(urls.refer(patient_id)), icon=ft.Icons.SEND, key="refer"
            ),
            w.secondary_button(
                "Add task",
                lambda e: nav.go(urls.tasks(patient_id)),
                icon=ft.Icons.ADD_ALARM,
                key="add-task",
            ),
            w.secondary_button(
                "Start transition",
                lambda e: nav.go(urls.transition(patient_id)),
                icon=ft.Icons.SWAP_HORIZ,
                key="transition",
            ),
            w.secondary_button(
                "Merge with another patient",
                lambda e: nav.go(urls.merge_patient(patient_id)),
                icon=ft.Icons.MERGE,
                key="merge",
            ),
            w.secondary_button(
                "Edit details",
                lambda e: nav.go(urls.edit_patient(patient_id)),
                icon=ft.Icons.EDIT_OUTLINED,
                key="edit-details",
            ),
        ]
    )
    timeline: list[ft.Control] = [w.section_header("Timeline")]
    if not page.timeline:
        timeline.append(
            w.empty_state(
                "Nothing recorded yet",
                "Visits, round notes, referrals, tasks and transitions will appear here.",
                icon=ft.Icons.TIMELINE,
                key="timeline-empty",
            )
        )
    for item in page.timeline:
        url = urls.for_record(item.type, item.id, item.patient_id, link=item.link)
        detail = " · ".join(filter(None, [item.when[:10], item.detail]))
        if item.overdue:
            detail = f"Overdue · {detail}"
        timeline.append(
            w.tile(
                item.title,
                detail,
                icon=w.record_icon(item.type, item.variant, TIMELINE_ICONS.get(item.type)),
                key=f"timeline-{item.id}",
                on_click=(lambda e, r=url: nav.go(r)) if url else None,
            )
        )
        if item.photos:
            timeline.append(
                photos.timeline_strip(app, nav, item.photos, key=f"timeline-photos-{item.id}")
            )
    # Documents about the patient (consent form, medication list, discharge sheet).
    documents = photos.section(
        app,
        nav,
        record_target(app.store, "patient", patient_id),
        key="patient-photos",
        title="Photos and documents",
    )
    controls = [*_header(page), actions, *documents, *timeline, *_delete(app, nav, page)]
    return shell.screen(app, nav, route, page.name, controls)
