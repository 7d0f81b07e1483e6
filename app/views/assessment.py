"""Assessment: the rapid assessment of a visit, autosaved as a draft, then finalized.

``/assess/{patient_id}`` starts a new assessment (the draft visit is created by its first
autosave, so opening the screen by mistake leaves nothing behind; a draft of the same
patient started today is resumed instead, e.g. after an auto-lock); ``/visit/{visit_id}``
opens one: a draft stays editable by its author (a draft another device started is shown
read-only; its author or a supervisor may discard it), a final visit is read-only and
takes addenda. Edits live in a screen-local ``VisitEdit`` kept in ``app.ui`` and are
written through ``Casework`` about a second after the last change
(``app.autosave.Debouncer``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, field
from typing import Any

import flet as ft

from app import assessment as a
from app import urls
from app.attachments import Target
from app.autosave import Debouncer
from app.casework import Casework
from app.errors import AppError
from app.queries import label
from app.state import AppState, plain_error
from app.triage import Proposal
from app.views import next_steps, photos, screening, shell
from app.views import widgets as w
from app.views.visit_final import SOURCES, addendum_leave, facts, final_view
from sync import schema
from sync.errors import InvalidRecord

STARTED_FORM = "Use the form 2026-11-23 10:30"
TRIAGE_HELP = (
    "Information & referral: give information and refer to community services. "
    "Short-term contact: refer, then follow up with a few calls over a month. "
    "Intensive case management: hand off to the community case-management program."
)


@dataclass
class VisitEdit:
    """The assessment being edited: its fields, save status and field errors."""

    patient_id: str
    visit_id: str | None
    fields: dict[str, Any]
    status: str = "Not saved yet"
    errors: dict[str, str] = field(default_factory=dict)
    debouncer: Debouncer | None = None
    started_text: str | None = None  # a start time typed that does not read as one (yet)

    @property
    def unsaved(self) -> bool:
        """True when something typed is not in the stored draft (a refused save, or a
        start time that does not read as one)."""
        return self.status.startswith("Not saved:") or self.started_text is not None


def _leave(app: AppState, key: str) -> shell.Leave:
    """The autosave is flushed on the way out; the app asks only when it could not save."""

    def edit() -> VisitEdit | None:
        found = app.ui.get(key)
        return found if isinstance(found, VisitEdit) else None

    def keep() -> None:
        found = edit()
        if found is not None and found.debouncer is not None:
            found.debouncer.flush()

    def discard() -> None:
        found = edit()
        if found is None:
            return
        if found.debouncer is not None:
            found.debouncer.cancel()
        for name in [k for k, v in app.ui.items() if v is found]:
            del app.ui[name]  # reopened, the screen shows the stored draft

    return shell.Leave(
        unsaved=lambda: bool((found := edit()) and found.unsaved), discard=discard, keep=keep
    )


def _edit(
    app: AppState, work: Casework, patient_id: str, visit: dict[str, Any] | None
) -> VisitEdit:
    """The screen-local edit, kept across rebuilds; reloaded from the store when idle."""
    key = f"visit:{visit['id']}" if visit else f"visit:new:{patient_id}"
    edit: VisitEdit | None = app.ui.get(key)
    if edit is not None:
        if visit and not (edit.debouncer and edit.debouncer.pending):
            edit.fields = dict(visit["fields"])
        return edit
    if visit is None:
        # After a lock (which forgets screen state) or a restart, carry on with today's
        # draft rather than leave it behind and start a second one.
        visit = work.todays_draft(patient_id)
    fields = dict(visit["fields"]) if visit else a.new_visit_fields(patient_id, work.now())
    edit = VisitEdit(
        patient_id,
        visit["id"] if visit else None,
        fields,
        status="Draft saved" if visit else "Not saved yet",
    )
    app.ui[key] = edit
    if visit:
        app.ui[f"visit:{visit['id']}"] = edit
    return edit


def build(
    app: AppState, nav: shell.Nav, patient_id: str = "", visit_id: str = "", **_: str
) -> ft.View:
    """The assessment screen for a new visit or an existing one."""
    work = Casework(app)
    route = urls.visit(visit_id) if visit_id else urls.assess(patient_id)
    visit = work.get(visit_id, "visit") if visit_id else None
    pid = visit["fields"]["patient_id"] if visit else patient_id
    if (visit_id and visit is None) or work.get(pid, "patient") is None:
        return shell.missing(
            app,
            nav,
            route,
            "Assessment",
            "This visit or patient is not on this phone.",
            key="visit-missing",
        )
    name = work.patient_name(pid)
    if visit and a.is_final(visit["fields"]):
        return shell.screen(
            app,
            nav,
            route,
            "Visit",
            [_heading(name), *final_view(app, nav, work, visit)],
            leave=addendum_leave(app, visit["id"]),
        )
    if visit and work.colleagues_draft(visit):
        return shell.screen(
            app,
            nav,
            route,
            "Draft visit",
            [_heading(name), *_colleagues_draft(app, nav, work, visit)],
        )
    edit = _edit(app, work, pid, visit)
    key = f"visit:{visit['id']}" if visit else f"visit:new:{pid}"
    return shell.screen(
        app,
        nav,
        route,
        "Assessment",
        [_heading(name), *_form(app, nav, work, edit)],
        leave=_leave(app, key),
    )


def _form(app: AppState, nav: shell.Nav, work: Casework, edit: VisitEdit) -> list[ft.Control]:
    f = edit.fields
    status = ft.Text(edit.status, key="save-status", color=ft.Colors.ON_SURFACE_VARIANT)
    scores_box = ft.Container(screening.scores_panel(f.get("screening") or {}))
    needs_hint = ft.Text("", key="needs-from-screen", color=ft.Colors.ON_SURFACE_VARIANT)
    proposals_box = ft.Container(key="proposals-box")

    def save() -> None:
        if app.store is None:  # locked meanwhile: the store is closed, nothing to write to
            return
        try:
            record = work.save_visit(edit.visit_id, edit.fields)
        except InvalidRecord as exc:
            edit.status = f"Not saved: {plain_error(exc)}"
        else:
            edit.visit_id = record["id"]
            app.ui[f"visit:{record['id']}"] = edit
            edit.status = f"Draft saved {work.now():%H:%M}"
            nav.saved()
        status.value = edit.status
        nav.update()

    if edit.debouncer is None:
        edit.debouncer = Debouncer(save)
    else:
        edit.debouncer.action = save  # the newest controls show the status
    debouncer = edit.debouncer

    def show_dependents() -> None:
        answers = edit.fields.get("screening") or {}
        scores_box.content = screening.scores_panel(answers)
        found = [
            d
            for d in a.score(answers).positive_domains
            if d not in (edit.fields.get("needs") or [])
        ]
        needs_hint.value = (
            (
                "The screen also found: "
                + ", ".join(label(d) for d in found)
                + " (included in next steps)"
            )
            if found
            else ""
        )
        proposals_box.content = _proposals(nav, work, edit)

    def change(name: str, value: Any, *, now: bool = False) -> None:
        edit.fields = a.apply_edit(edit.fields, {name: value})
        edit.errors.pop(name, None)
        debouncer.poke()
        if now:
            debouncer.flush()
        if name not in ("summary", "started_at"):  # typing there changes nothing shown
            show_dependents()
        # A save inside this handler updates the page (the sync badge), which turns off
        # Flet's automatic update after the handler: send what changed since, explicitly.
        nav.update()

    def answer(qid: str, value: Any) -> None:
        answers = dict(edit.fields.get("screening") or {})
        if value is None:
            answers.pop(qid, None)
        else:
            answers[qid] = value
        change("screening", answers)

    started = w.text_field(
        "Started (YYYY-MM-DD HH:MM)",
        key="started-at",
        value=edit.started_text
        if edit.started_text is not None
        else str(f.get("started_at", ""))[:16].replace("T", " "),
        error=edit.errors.get("started_at")
        or (STARTED_FORM if edit.started_text is not None else None),
    )

    def started_changed(e: Any = None) -> None:
        text = (started.value or "").strip().replace(" ", "T", 1)
        try:
            when = dt.datetime.fromisoformat(text)
        except ValueError:
            edit.started_text = started.value or ""  # kept as typed, not yet saved
            started.error = STARTED_FORM
            return
        edit.started_text, started.error = None, None
        change("started_at", when.replace(microsecond=0, tzinfo=None).isoformat())

    started.on_change = started_changed
    setting = _radios(
        "setting",
        [(s, label(s)) for s in schema.SETTINGS],
        f.get("setting"),
        lambda v: change("setting", v),
        horizontal=True,
    )
    source = ft.Dropdown(
        key="source",
        label="Source of the request",
        value=f.get("source"),
        options=[ft.DropdownOption(key=k, text=t) for k, t in SOURCES.items()],
        expand=True,
    )
    source.on_select = lambda e: change("source", source.value or None)
    needs = _needs(f.get("needs") or [], lambda v: change("needs", v))
    summary = w.text_field(
        "Summary",
        key="summary",
        value=str(f.get("summary") or ""),
        multiline=True,
        max_length=schema.MAX_LONG_TEXT,
    )
    summary.on_change = lambda e: change("summary", summary.value or "")
    summary.on_blur = lambda e: debouncer.flush()
    triage = _radios(
        "triage",
        [(t, label(t)) for t in schema.TRIAGE],
        f.get("triage"),
        lambda v: change("triage", v, now=True),
    )
    # Labels stay short: a radio's or checkbox's label does not wrap at 360 px.
    consent = ft.Checkbox(
        key="consent", value=bool(f.get("consent_confirmed")), label="Patient consented"
    )
    consent.on_change = lambda e: change("consent_confirmed", bool(consent.value), now=True)
    errors_box = ft.Column(key="finalize-errors")

    def finalize(e: Any = None) -> None:
        debouncer.flush()
        problems = a.finalize_errors(edit.fields)
        if problems or edit.started_text is not None:
            edit.errors = {p.field: a.error_text(p) for p in problems}
            if edit.started_text is not None:  # never finalized over what was typed
                edit.errors["started_at"] = "Start time does not read as a date and time"
            errors_box.controls = [
                w.banner(
                    "To finalize: " + "; ".join(edit.errors.values()),
                    kind="error",
                    key="finalize-banner",
                )
            ]
            nav.refresh()
            return
        try:
            record = work.finalize_visit(edit.visit_id, edit.fields)
        except InvalidRecord as exc:
            edit.errors = {p.field: a.error_text(p) for p in exc.errors}
            nav.toast(plain_error(exc))
            return
        app.ui.pop(f"visit:new:{edit.patient_id}", None)
        app.ui.pop(f"visit:{record['id']}", None)
        nav.saved()
        nav.toast("Visit finalized")
        nav.go(urls.visit(record["id"]))

    if edit.errors:
        errors_box.controls = [
            w.banner(
                "To finalize: " + "; ".join(edit.errors.values()),
                kind="error",
                key="finalize-banner",
            )
        ]
    show_dependents()

    def save_photos(items: list[dict[str, Any]]) -> None:
        # Saved at once with the pending edits (the first save creates the draft visit).
        debouncer.flush()
        record = work.save_visit(edit.visit_id, {**edit.fields, "attachments": items})
        edit.visit_id, edit.fields = record["id"], dict(record["fields"])
        app.ui[f"visit:{record['id']}"] = edit

    target = Target(lambda: list(edit.fields.get("attachments") or []), save_photos)
    return [
        status,
        started,
        w.section_header("Setting"),
        setting,
        _error(edit, "setting"),
        ft.Row([source]),
        w.section_header("Needs"),
        needs,
        needs_hint,
        w.section_header("Screening"),
        *screening.section(f.get("screening") or {}, answer),
        scores_box,
        summary,
        *photos.section(app, nav, target, key="visit-photos"),
        w.section_header("Triage decision"),
        _hint(TRIAGE_HELP),
        triage,
        _error(edit, "triage"),
        proposals_box,
        w.section_header("Consent"),
        _hint(
            "The patient agreed to this assessment and to sharing it with the services it names."
        ),
        consent,
        _error(edit, "consent_confirmed"),
        errors_box,
        ft.Row(
            [
                w.primary_button(
                    "Finalize", finalize, icon=ft.Icons.TASK_ALT, key="finalize", expand=True
                )
            ]
        ),
        *(
            [ft.Row([_discard_button(app, nav, work, edit.visit_id, edit.patient_id)])]
            if edit.visit_id
            else []
        ),
    ]


def _colleagues_draft(
    app: AppState, nav: shell.Nav, work: Casework, visit: dict[str, Any]
) -> list[ft.Control]:
    """Another device's draft: shown, not changed (a supervisor may still discard it)."""
    items: list[ft.Control] = [
        w.banner(
            "Draft by a colleague — only its author can change it.",
            kind="warning",
            key="colleague-draft-banner",
        ),
        *facts(app, nav, visit),
    ]
    if work.may_discard(visit):
        items.append(
            ft.Row([_discard_button(app, nav, work, visit["id"], visit["fields"]["patient_id"])])
        )
    return items


def _discard_button(
    app: AppState, nav: shell.Nav, work: Casework, visit_id: str, patient_id: str
) -> ft.Control:
    """ "Discard draft", after a confirmation: the draft is deleted (and synced as such)."""

    def discard(e: Any = None) -> None:
        nav.close_dialog()
        for key in (f"visit:{visit_id}", f"visit:new:{patient_id}"):
            edit = app.ui.get(key)
            if isinstance(edit, VisitEdit) and edit.visit_id == visit_id:
                if edit.debouncer is not None:
                    edit.debouncer.cancel()  # no autosave may bring the draft back
                app.ui.pop(key)
        try:
            work.discard_draft(visit_id)
        except (InvalidRecord, AppError) as exc:
            nav.toast(plain_error(exc))
            return
        nav.saved()
        nav.toast("Draft discarded")
        nav.go(urls.patient(patient_id))

    def ask(e: Any = None) -> None:
        nav.show_dialog(
            ft.AlertDialog(
                modal=True,
                key="discard-draft-dialog",
                title=ft.Text("Discard this draft?"),
                content=ft.Text("The draft visit is deleted, on this phone and on the server."),
                actions=[
                    w.text_button(
                        "Cancel", lambda e: nav.close_dialog(), key="discard-draft-cancel"
                    ),
                    w.danger_button("Discard", discard, key="discard-draft-confirm"),
                ],
            )
        )

    return w.text_button("Discard draft", ask, icon=ft.Icons.DELETE_OUTLINE, key="discard-draft")


def _proposals(nav: shell.Nav, work: Casework, edit: VisitEdit) -> ft.Control:
    triage = edit.fields.get("triage")
    if not triage or edit.visit_id is None:
        return next_steps.panel([], set(), None, triage=None)
    visit = {"id": edit.visit_id, "fields": edit.fields}

    def accept(p: Proposal) -> None:
        # Recomputed now, so a hand-off summary carries what was typed since the build.
        if edit.debouncer:
            edit.debouncer.flush()
        fresh = work.proposals({"id": edit.visit_id, "fields": edit.fields})
        key = work.proposal_key(p)
        chosen = next((q for q in fresh if work.proposal_key(q) == key), p)
        next_steps.accept(work, nav, chosen)
        nav.refresh()

    return next_steps.panel(
        work.proposals(visit), work.accepted(edit.visit_id), accept, triage=triage
    )


def _radios(
    key: str, options: list[tuple[str, str]], value: Any, on_change: Any, horizontal: bool = False
) -> ft.RadioGroup:
    radios: list[ft.Control] = [ft.Radio(value=v, label=t) for v, t in options]
    group = ft.RadioGroup(
        key=key,
        value=value,
        content=ft.Row(radios, wrap=True) if horizontal else ft.Column(radios, spacing=0),
    )
    group.on_change = lambda e: on_change(group.value or None)
    return group


def _needs(chosen: list[str], on_change: Any) -> ft.Control:
    # Filter chips: they size to their labels and wrap, so ten needs fit a 360 px screen.
    chips: list[ft.Chip] = []

    def changed(e: Any = None) -> None:
        on_change([d for d, chip in zip(schema.NEED_DOMAINS, chips, strict=True) if chip.selected])

    for domain in schema.NEED_DOMAINS:
        chips.append(
            ft.Chip(
                key=f"need-{domain}",
                label=ft.Text(label(domain)),
                selected=domain in chosen,
                on_select=changed,
                height=w.TOUCH,
            )
        )  # a thumb's target, as the caseload filters
    return ft.Row(list(chips), key="needs", wrap=True, spacing=8, run_spacing=4)


def _hint(text: str) -> ft.Control:
    return ft.Text(text, color=ft.Colors.ON_SURFACE_VARIANT)


def _heading(name: str) -> ft.Control:
    """The patient's name above the form (the app bar is too narrow at 360 px for both)."""
    return ft.Text(name, key="patient-heading", theme_style=ft.TextThemeStyle.TITLE_LARGE)


def _error(edit: VisitEdit, name: str) -> ft.Control:
    message = edit.errors.get(name)
    return ft.Text(message or "", key=f"{name}-error", color=ft.Colors.ERROR, visible=bool(message))
