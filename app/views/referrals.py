"""Referrals: create one (a directory resource or a typed name), track its status, list open ones.

``/refer/{patient_id}`` makes a new referral (``?visit_id=`` and ``?need=`` prefill it);
``?referral_id=`` opens one to track: sent -> accepted / declined -> completed / closed,
with its outcome. ``/referrals`` lists the open ones, overdue first.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flet as ft

from app import forms, urls
from app import referral_flow as cw
from app.casework import Casework
from app.labels import label
from app.state import AppState
from app.views import shell
from app.views import widgets as w
from sync import schema
from sync.errors import InvalidRecord

STEP_TEXT = {
    "sent": "Mark sent",
    "accepted": "Accepted",
    "declined": "Declined",
    "completed": "Completed",
    "closed": "Close",
}
FIELD_NAMES = {
    "to_name": "Refer to:",
    "due_date": "Due date",
    "need": "Need",
    "outcome": "Outcome:",
    "status": "Status:",
}
STALE_LABELS = {"to_name": "Refer to", "resource_id": "Resource", "due_date": "Due date"}
FORM_FIELDS = ("resource_id", "to_name", "need", "urgency", "due_date", "notes", "visit_id")


def build(
    app: AppState,
    nav: shell.Nav,
    patient_id: str = "",
    referral_id: str = "",
    visit_id: str = "",
    need: str = "",
    **_: str,
) -> ft.View:
    """The open-referrals list (no patient) or one patient's referral form."""
    work = app.casework
    if not patient_id:
        return shell.screen(app, nav, urls.REFERRALS, "Referrals", _list(nav, work))
    route = urls.refer(patient_id, referral_id)
    record = work.get(referral_id, "referral") if referral_id else None
    if work.get(patient_id, "patient") is None or (referral_id and record is None):
        return shell.missing(
            app,
            nav,
            route,
            "Referral",
            "This referral or patient is not on this phone.",
            key="referral-missing",
        )
    key = f"referral:{referral_id or 'new:' + patient_id}"
    form = app.ui.get(key)
    if form is None:
        if record:
            fields = {k: record["fields"][k] for k in FORM_FIELDS if k in record["fields"]}
            fields["to_name"] = work.referral_target(record["fields"]) or None
        else:
            fields = {"urgency": "routine", "due_date": cw.default_due("routine", work.today)}
            if visit_id and schema.is_uuid(visit_id):
                fields["visit_id"] = visit_id
            if need in schema.NEED_DOMAINS:
                fields["need"] = need
        form = app.ui[key] = {
            "fields": fields,
            "errors": {},
            "search": "",
            "initial": dict(fields),
            "initial_outcome": str((record or {}).get("fields", {}).get("outcome") or ""),
            "base": forms.base_clock(record, FORM_FIELDS),  # to tell edits made elsewhere
        }
    heading = ft.Text(
        work.patient_name(patient_id),
        key="patient-heading",
        theme_style=ft.TextThemeStyle.TITLE_LARGE,
    )
    controls = _form(app, nav, work, patient_id, record, form, key)
    return shell.screen(app, nav, route, "Referral", [heading, *controls], leave=_leave(app, key))


def _leave(app: AppState, key: str) -> shell.Leave:
    """A referral is written only by its Save buttons: anything chosen or typed before
    that (not the resource search) is unsaved."""

    def unsaved() -> bool:
        form = app.ui.get(key)
        if not isinstance(form, dict):
            return False
        outcome = form.get("outcome")
        return shell.edited(form["fields"], form.get("initial", {})) or (
            outcome is not None and outcome.strip() != form.get("initial_outcome", "").strip()
        )

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
    f = form["fields"]
    items: list[ft.Control] = []
    if form["errors"]:
        items.append(
            w.banner("; ".join(form["errors"].values()), kind="error", key="referral-errors")
        )
    save = _saver(app, nav, work, patient_id, record, form, key)
    buttons: list[ft.Control] = [
        w.primary_button("Save referral", lambda e: save(), icon=ft.Icons.SAVE, key="save-referral")
    ]
    if record is None:
        buttons.append(
            w.secondary_button(
                "Save and mark sent", lambda e: save("sent"), icon=ft.Icons.SEND, key="save-send"
            )
        )
    notes = w.text_field(
        "Notes for the service", key="notes", multiline=True, value=str(f.get("notes") or "")
    )

    def notes_changed(e: Any = None) -> None:
        f["notes"] = notes.value or None

    notes.on_change = notes_changed
    items += [
        *_refer_to(work, form),
        *_urgency(nav, work, form),
        notes,
        w.button_row(buttons),
    ]
    if record is not None:
        items.append(_status(app, nav, work, record, form))
    return items


def _refer_to(work: Casework, form: dict[str, Any]) -> list[ft.Control]:
    """The need, then who the referral goes to: a directory resource or a typed name."""
    f, errors = form["fields"], form["errors"]
    chosen = ft.Text(key="chosen")
    results = ft.Column(key="resource-results", spacing=0)

    def show_choice() -> None:
        if f.get("resource_id"):
            chosen.value = f"Chosen: {f.get('to_name', '')} (from the directory)"
        else:
            chosen.value = f"Goes to: {f['to_name']}" if f.get("to_name") else "Nobody chosen yet"

    def pick(resource: dict[str, Any]) -> None:
        f["resource_id"], f["to_name"] = resource["id"], resource["fields"].get("name", "")
        categories = resource["fields"].get("categories") or []
        if not f.get("need") and categories:  # the need follows the resource's first category
            f["need"] = need.value = categories[0]
            named_need.value = label(categories[0])  # what a screen reader announces
        to_name.value = ""
        errors.pop("to_name", None)
        show_choice()
        show_results()

    def show_results() -> None:
        results.controls = _resource_rows(work.resources(form["search"], f.get("need")), f, pick)

    def need_changed(value: str | None) -> None:
        f["need"] = value
        show_results()

    need, named_need = w.dropdown(
        "Need",
        [(d, label(d)) for d in schema.NEED_DOMAINS],
        key="need",
        value=f.get("need"),
        on_select=need_changed,
    )
    search = w.text_field("Search resources by name", key="resource-search", value=form["search"])

    def searched(e: Any = None) -> None:
        form["search"] = search.value or ""
        show_results()

    search.on_change = searched
    to_name = w.text_field(
        "Or type who it goes to",
        key="to-name",
        value="" if f.get("resource_id") else str(f.get("to_name") or ""),
        error=errors.get("to_name"),
    )

    def typed_name(e: Any = None) -> None:
        f["resource_id"], f["to_name"] = None, (to_name.value or "").strip()
        show_choice()

    to_name.on_change = typed_name
    show_choice()
    show_results()
    return [ft.Row([named_need]), w.section_header("Refer to"), chosen, search, results, to_name]


def _resource_rows(found: list[dict[str, Any]], f: dict[str, Any], pick: Any) -> list[ft.Control]:
    """The directory's matches (the chosen one ticked), or how to go on without one."""
    rows: list[ft.Control] = [
        w.tile(
            str(r["fields"].get("name", "")),
            _resource_detail(r),
            icon=ft.Icons.CHECK_CIRCLE
            if r["id"] == f.get("resource_id")
            else ft.Icons.STOREFRONT_OUTLINED,
            key=f"resource-{r['id']}",
            on_click=lambda e, r=r: pick(r),
        )
        for r in found[:8]
    ]
    if not found:
        rows.append(
            ft.Text(
                "No resource in the directory matches. Type a name below.",
                key="resources-none",
                color=ft.Colors.ON_SURFACE_VARIANT,
            )
        )
    return rows


def _urgency(nav: shell.Nav, work: Casework, form: dict[str, Any]) -> list[ft.Control]:
    """Urgency, and the due date it suggests (kept when the liaison typed their own)."""
    f = form["fields"]
    urgency = ft.RadioGroup(
        key="urgency",
        value=f.get("urgency") or "routine",
        content=ft.Row([ft.Radio(value=u, label=label(u)) for u in schema.URGENCY], wrap=True),
    )

    def due_changed(e: Any = None) -> None:
        f["due_date"] = (due.value or "").strip() or None

    due, due_row = w.date_field(
        "Due date",
        nav,
        key="due-date",
        value=f.get("due_date") or "",
        error=form["errors"].get("due_date"),
        on_change=due_changed,
    )

    def urgency_changed(e: Any = None) -> None:
        old_default = cw.default_due(f.get("urgency") or "routine", work.today)
        f["urgency"] = urgency.value or "routine"
        if not f.get("due_date") or f["due_date"] == old_default:
            f["due_date"] = due.value = cw.default_due(f["urgency"], work.today)

    urgency.on_change = urgency_changed
    return [w.section_header("Urgency"), urgency, due_row]


def _saver(
    app: AppState,
    nav: shell.Nav,
    work: Casework,
    patient_id: str,
    record: dict[str, Any] | None,
    form: dict[str, Any],
    key: str,
) -> Callable[..., None]:
    """Save (optionally marking it sent); first asks when another device changed it."""
    f = form["fields"]

    def write(status: str | None = None) -> None:
        data = {k: v for k, v in f.items() if v not in (None, "")}
        if record is None:
            data["patient_id"] = patient_id
        elif f.get("resource_id") is None and "resource_id" in record["fields"]:
            data["resource_id"] = None
        form["errors"] = {}
        try:
            if status:  # checked before saving, so a refused step leaves no stray draft
                problems = cw.referral_step_errors({**data, "status": "draft"}, status)
                if problems:
                    raise InvalidRecord(problems)
                data["status"] = status
            saved = work.save_referral(data, record["id"] if record else None)
        except forms.REFUSED as exc:
            form["errors"] = forms.field_errors(exc, FIELD_NAMES)
            nav.refresh()
            return
        app.ui.pop(key, None)
        nav.toast("Referral saved" if not status else "Referral saved and marked sent")
        nav.go(urls.refer(patient_id, saved["id"]))

    def save(status: str | None = None) -> None:
        forms.save_unless_stale(
            app.require_store(),
            nav,
            record["id"] if record else None,
            form,
            FORM_FIELDS,
            lambda: write(status),
            reopen=lambda: app.ui.pop(key, None),  # opens again from the stored referral
            labels=STALE_LABELS,
        )

    return save


def _status(
    app: AppState, nav: shell.Nav, work: Casework, record: dict[str, Any], form: dict[str, Any]
) -> ft.Column:
    """The status, the outcome and the next steps; a step redraws only this part, so the
    screen stays where it is."""
    section = ft.Column(key="status-section", spacing=w.GAP)

    def move(step: str) -> None:
        try:
            work.move_referral(record["id"], step, form.get("outcome"))
        except forms.REFUSED as exc:
            form["errors"] = forms.field_errors(exc, FIELD_NAMES)
        else:
            form["errors"] = {}
            form.pop("outcome", None)
            nav.toast(f"Referral {label(step).lower()}")
        fresh = work.get(record["id"], "referral") or record
        form["initial_outcome"] = str(fresh["fields"].get("outcome") or "")
        section.controls = _status_items(fresh, form, move)

    section.controls = _status_items(record, form, move)
    return section


def _status_items(
    record: dict[str, Any], form: dict[str, Any], move: Callable[[str], None]
) -> list[ft.Control]:
    f = record["fields"]
    status = f.get("status") or "draft"
    outcome = w.text_field(
        "Outcome",
        key="outcome",
        multiline=True,
        value=form.get("outcome", str(f.get("outcome") or "")),
        error=form["errors"].get("outcome"),
    )

    def typed(e: Any = None) -> None:
        form["outcome"] = outcome.value or ""

    outcome.on_change = typed
    steps = [
        w.secondary_button(STEP_TEXT[s], lambda e, s=s: move(s), key=f"status-{s}")
        for s in cw.REFERRAL_NEXT.get(status, ())
    ]
    items: list[ft.Control] = [
        w.section_header("Status"),
        ft.Text(
            f"Status: {label(status)}",
            key="referral-status",
            theme_style=ft.TextThemeStyle.BODY_LARGE,
        ),
    ]
    if form["errors"]:  # shown here, where the step was tapped
        items.append(
            w.banner("; ".join(form["errors"].values()), kind="error", key="status-errors")
        )
    items.append(outcome)
    if steps:
        items.append(w.button_row(steps))
    else:
        items.append(ft.Text("This referral is closed.", key="referral-closed"))
    return items


def _list(nav: shell.Nav, work: Casework) -> list[ft.Control]:
    overdue, other = work.open_referrals()
    if not overdue and not other:
        return [
            w.empty_state(
                "No open referrals",
                "Referrals you make from a visit or a "
                "patient's page appear here until they are completed or closed.",
                icon=ft.Icons.SEND_OUTLINED,
                key="referrals-empty",
            )
        ]
    items: list[ft.Control] = []
    for title, group, key in (("Overdue", overdue, "overdue"), ("Open", other, "open")):
        items.append(w.section_header(f"{title} ({len(group)})", key=f"{key}-header"))
        if not group:
            items.append(ft.Text("None.", color=ft.Colors.ON_SURFACE_VARIANT))
        for r in group:
            f = r["fields"]
            detail = " · ".join(
                filter(
                    None,
                    [
                        work.patient_name(f.get("patient_id")),
                        label(f.get("status") or "draft"),
                        f"due {f['due_date']}" if f.get("due_date") else "",
                    ],
                )
            )
            items.append(
                w.tile(
                    f"{label(f.get('need')) or 'Referral'} — "
                    f"{work.referral_target(f) or 'not chosen'}",
                    detail,
                    icon=ft.Icons.WARNING_AMBER if key == "overdue" else ft.Icons.SEND,
                    key=f"referral-{r['id']}",
                    on_click=lambda e, r=r: nav.go(urls.refer(r["fields"]["patient_id"], r["id"])),
                )
            )
    return items


def _resource_detail(resource: dict[str, Any]) -> str:
    f = resource["fields"]
    parts = [", ".join(label(c) for c in f.get("categories") or []), str(f.get("phone") or "")]
    return " · ".join(p for p in parts if p)
