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
from app import forms, urls
from app.attachments import Target
from app.autosave import Debouncer
from app.casework import Casework
from app.labels import SOURCES, label
from app.messages import plain_error
from app.state import AppState
from app.triage import Proposal
from app.views import next_steps, photos, screening, shell
from app.views import widgets as w
from app.views.visit_final import addendum_leave, facts, final_view
from sync import schema
from sync.errors import InvalidRecord

STARTED_FORM = "Use the form 2026-11-23 10:30"
# The visit fields this form edits (checked for changes made on another device) and how
# the liaison knows them.
FORM_FIELDS = (
    "started_at",
    "setting",
    "source",
    "needs",
    "screening",
    "summary",
    "triage",
    "consent_confirmed",
    "attachments",
)
FIELD_LABELS = {
    "started_at": "Start time",
    "source": "Source of the request",
    "screening": "Screening answers",
    "triage": "Triage decision",
    "consent_confirmed": "Consent",
    "attachments": "Photos",
}
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
    base: dict[str, str] = field(default_factory=dict)  # FORM_FIELDS' stamps when loaded
    touched: set[str] = field(default_factory=set)  # fields changed here since last saved
    asking: bool = False  # "changed on another device?" is open: no autosave till answered

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
        idle = not (edit.asking or (edit.debouncer and edit.debouncer.pending))
        if visit and idle:
            edit.fields = dict(visit["fields"])
            edit.base, edit.touched = forms.base_clock(visit, FORM_FIELDS), set()
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
        base=forms.base_clock(visit, FORM_FIELDS),
    )
    app.ui[key] = edit
    if visit:
        app.ui[f"visit:{visit['id']}"] = edit
    return edit


def build(
    app: AppState, nav: shell.Nav, patient_id: str = "", visit_id: str = "", **_: str
) -> ft.View:
    """The assessment screen for a new visit or an existing one."""
    work = app.casework
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
    if edit.debouncer is None:
        edit.debouncer = Debouncer(lambda: None)
    edit.debouncer.action = lambda: _save(app, nav, work, edit, status)  # newest controls
    debouncer = edit.debouncer
    show_dependents, dependents = _dependents(nav, work, edit)

    def change(name: str, value: Any, *, now: bool = False) -> None:
        edit.fields = a.apply_edit(edit.fields, {name: value})
        edit.errors.pop(name, None)
        edit.touched.add(name)
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

    source = ft.Dropdown(
        key="source",
        label="Source of the request",
        value=f.get("source"),
        options=[ft.DropdownOption(key=k, text=t) for k, t in SOURCES.items()],
        expand=True,
    )
    source.on_select = lambda e: change("source", source.value or None)
    summary = w.text_field(
        "Summary",
        key="summary",
        value=str(f.get("summary") or ""),
        multiline=True,
        max_length=schema.MAX_LONG_TEXT,
    )
    summary.on_change = lambda e: change("summary", summary.value or "")
    summary.on_blur = lambda e: debouncer.flush()
    # Labels stay short: a radio's or checkbox's label does not wrap at 360 px.
    consent = ft.Checkbox(
        key="consent", value=bool(f.get("consent_confirmed")), label="Patient consented"
    )
    consent.on_change = lambda e: change("consent_confirmed", bool(consent.value), now=True)
    errors_box = ft.Column(key="finalize-errors", controls=_finalize_banner(edit))
    show_dependents()
    finalize = _finalizer(app, nav, work, edit, errors_box)
    target = Target(
        lambda: list(edit.fields.get("attachments") or []), _photo_saver(app, work, edit)
    )
    return [
        status,
        _started(edit, change),
        w.section_header("Setting"),
        _radios(
            "setting",
            [(s, label(s)) for s in schema.SETTINGS],
            f.get("setting"),
            lambda v: change("setting", v),
            horizontal=True,
        ),
        _error(edit, "setting"),
        ft.Row([source]),
        w.section_header("Needs"),
        _needs(f.get("needs") or [], lambda v: change("needs", v)),
        dependents[0],
        w.section_header("Screening"),
        *screening.section(f.get("screening") or {}, answer),
        dependents[1],
        summary,
        *photos.section(app, nav, target, key="visit-photos"),
        w.section_header("Triage decision"),
        _hint(TRIAGE_HELP),
        _radios(
            "triage",
            [(t, label(t)) for t in schema.TRIAGE],
            f.get("triage"),
            lambda v: change("triage", v, now=True),
        ),
        _error(edit, "triage"),
        dependents[2],
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


def _save(app: AppState, nav: shell.Nav, work: Casework, edit: VisitEdit, status: ft.Text) -> None:
    """The autosave: write the draft, unless another device changed a field typed here
    since it was loaded (then ask first: never overwrite it silently)."""
    if app.store is None or edit.asking:  # locked meanwhile, or the question is open
        return
    theirs = forms.changed_elsewhere(app.store, edit.visit_id, edit.base, FORM_FIELDS)
    clash = [c for c in theirs if c.field in edit.touched]
    # What changed elsewhere but was not touched here is simply taken over.
    taken = {c.field: c.value for c in theirs if c.field not in edit.touched}
    if taken:
        edit.fields = a.apply_edit(edit.fields, taken)
    if clash:
        _ask(app, nav, work, edit, clash, status)
        return
    try:
        record = work.save_visit(edit.visit_id, edit.fields)
    except InvalidRecord as exc:
        edit.status = f"Not saved: {plain_error(exc)}"
    else:
        edit.visit_id = record["id"]
        edit.base, edit.touched = forms.base_clock(record, FORM_FIELDS), set()
        app.ui[f"visit:{record['id']}"] = edit
        edit.status = f"Draft saved {work.now():%H:%M}"
    status.value = edit.status
    if taken:
        nav.refresh()  # show the values taken over
    nav.update()


def _ask(
    app: AppState,
    nav: shell.Nav,
    work: Casework,
    edit: VisitEdit,
    clash: list[forms.Changed],
    status: ft.Text,
) -> None:
    """ "Changed on another device": keep mine (save over it) or use theirs (reload)."""
    edit.asking = True
    edit.status = status.value = "Not saved: changed on another device"

    def keep_mine() -> None:
        edit.asking = False
        if app.store is not None and edit.visit_id:
            stored = app.store.get(edit.visit_id)
            edit.base.update(forms.base_clock(stored, [c.field for c in clash]))
        _save(app, nav, work, edit, status)

    def use_theirs() -> None:
        edit.asking = False
        stored = app.store.get(edit.visit_id) if app.store and edit.visit_id else None
        if stored is not None:
            edit.fields = dict(stored["fields"])
            edit.base, edit.touched = forms.base_clock(stored, FORM_FIELDS), set()
            edit.status = "Draft saved"
        nav.refresh()

    forms.stale_dialog(nav, clash, keep_mine, use_theirs, labels=FIELD_LABELS)


def _dependents(
    nav: shell.Nav, work: Casework, edit: VisitEdit
) -> tuple[Any, tuple[ft.Control, ft.Control, ft.Control]]:
    """What the screening and triage show (needs found, scores, next steps) and the
    function that redraws them after a change."""
    scores_box = ft.Container(screening.scores_panel(edit.fields.get("screening") or {}))
    needs_hint = ft.Text("", key="needs-from-screen", color=ft.Colors.ON_SURFACE_VARIANT)
    proposals_box = ft.Container(key="proposals-box")

    def show() -> None:
        answers = edit.fields.get("screening") or {}
        scores_box.content = screening.scores_panel(answers)
        chosen = edit.fields.get("needs") or []
        found = [d for d in a.score(answers).positive_domains if d not in chosen]
        needs_hint.value = (
            "The screen also found: "
            + ", ".join(label(d) for d in found)
            + " (included in next steps)"
            if found
            else ""
        )
        proposals_box.content = _proposals(nav, work, edit)

    return show, (needs_hint, scores_box, proposals_box)


def _started(edit: VisitEdit, change: Any) -> ft.TextField:
    """The start time, typed; kept as typed (not saved) while it does not read as one."""
    started = w.text_field(
        "Started (YYYY-MM-DD HH:MM)",
        key="started-at",
        value=edit.started_text
        if edit.started_text is not None
        else str(edit.fields.get("started_at", ""))[:16].replace("T", " "),
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
    return started


def _finalize_banner(edit: VisitEdit) -> list[ft.Control]:
    if not edit.errors:
        return []
    return [
        w.banner(
            "To finalize: " + "; ".join(edit.errors.values()), kind="error", key="finalize-banner"
        )
    ]


def _finalizer(
    app: AppState, nav: shell.Nav, work: Casework, edit: VisitEdit, errors_box: ft.Column
) -> Any:
    """The Finalize button's handler: save, check, then make the visit final."""

    def finalize(e: Any = None) -> None:
        if edit.asking:  # the question about another device's change was closed unanswered
            edit.asking = False  # so it is asked again
            if edit.debouncer:
                edit.debouncer.pending = True
        if edit.debouncer:
            edit.debouncer.flush()
        if edit.asking:
            return  # never finalized over a change made elsewhere the liaison has not seen
        problems = a.finalize_errors(edit.fields)
        if problems or edit.started_text is not None:
            edit.errors = {p.field: a.error_text(p) for p in problems}
            if edit.started_text is not None:  # never finalized over what was typed
                edit.errors["started_at"] = "Start time does not read as a date and time"
            errors_box.controls = _finalize_banner(edit)
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
        nav.toast("Visit finalized")
        nav.go(urls.visit(record["id"]))

    return finalize


def _photo_saver(app: AppState, work: Casework, edit: VisitEdit) -> Any:
    """Photos are saved at once with the pending edits (the first save creates the draft)."""

    def save_photos(items: list[dict[str, Any]]) -> None:
        if edit.debouncer:
            edit.debouncer.flush()
        if edit.asking:  # the typed edits wait for the liaison's answer; the photos do not
            record = work.save_visit(edit.visit_id, {"attachments": items})
            edit.fields["attachments"] = record["fields"]["attachments"]
            edit.base.update(forms.base_clock(record, ["attachments"]))
            return
        record = work.save_visit(edit.visit_id, {**edit.fields, "attachments": items})
        edit.visit_id, edit.fields = record["id"], dict(record["fields"])
        edit.base, edit.touched = forms.base_clock(record, FORM_FIELDS), set()
        app.ui[f"visit:{record['id']}"] = edit

    return save_photos


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

    def discard() -> None:
        for key in (f"visit:{visit_id}", f"visit:new:{patient_id}"):
            edit = app.ui.get(key)
            if isinstance(edit, VisitEdit) and edit.visit_id == visit_id:
                if edit.debouncer is not None:
                    edit.debouncer.cancel()  # no autosave may bring the draft back
                app.ui.pop(key)
        try:
            work.discard_draft(visit_id)
        except forms.REFUSED as exc:
            nav.toast(plain_error(exc))
            return
        nav.toast("Draft discarded")
        nav.go(urls.patient(patient_id))

    def ask(e: Any = None) -> None:
        forms.confirm_dialog(
            nav,
            "Discard this draft?",
            "The draft visit is deleted, on this phone and on the server.",
            "Discard",
            discard,
            danger=True,
            key="discard-draft",
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
