"""Office round: team, site, date, attendees and topics, then one row per patient discussed.

Built for speed: the "next patient" row (search or new name, note, action items, Add) stays
at the bottom and clears after each Add, so eight patients take minutes. Each action item
becomes a task. ``/round`` starts (or resumes) a round; ``/round/{round_id}`` opens one. The
header is autosaved like an assessment draft (``app.autosave.Debouncer``). A round belongs to
a team like a patient: a user in several teams chooses it before the round is first saved.

The next-patient row is a ``rounds.RoundRow`` draft, kept encrypted across auto-lock; a
row typed but not added is never dropped silently (Finish round asks), nor is a typed name
that is already a patient's (Add asks: that patient, or a new one). Entries already added
can be edited or removed (removing asks, and keeps the tasks made from it).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import flet as ft

from app import forms, rounds, urls
from app.autosave import Debouncer
from app.casework import Casework
from app.errors import AppError
from app.messages import plain_error
from app.state import AppState
from app.store import fold
from app.views import shell
from app.views import widgets as w

ACTIONS_LABEL = "Action items (one per line, or separate with ;)"


def _keep_row(app: AppState, state: dict[str, Any]) -> None:
    """Hold the next-patient row as the round's draft while something is typed in it."""
    row: rounds.RoundRow = state["next"]
    key = rounds.row_key(state["id"])
    if row.typed():
        app.drafts.put(key, row)
    else:
        app.drafts.drop(key)


def _first_saved(app: AppState, state: dict[str, Any], round_id: str) -> None:
    """A new round got its id: the row becomes that round's draft, and ``/round`` keeps
    a pointer to it (a row naming only the round) to go on with it after a lock."""
    app.ui[f"round:{round_id}"] = state
    state["id"] = state["next"].round_id = round_id
    app.drafts.put(rounds.row_key(None), rounds.RoundRow(round_id))
    _keep_row(app, state)


def _editing_changed(state: dict[str, Any]) -> bool:
    ed: dict[str, Any] | None = state.get("editing")
    return ed is not None and (ed["note"], ed["actions"]) != ed["before"]


def _leave(app: AppState, key: str) -> shell.Leave:
    """The header autosaves (flushed on the way out); a typed "next patient" row, an entry
    being edited, or a header the round could not save, is unsaved until saved or fixed."""

    def state() -> dict[str, Any] | None:
        found = app.ui.get(key)
        return found if isinstance(found, dict) else None

    def keep() -> None:
        found = state()
        if found is not None and found.get("debouncer") is not None:
            found["debouncer"].flush()
        app.drafts.flush()

    def unsaved() -> bool:
        found = state()
        return found is not None and bool(
            found.get("problem") or found["next"].typed() or _editing_changed(found)
        )

    def discard() -> None:
        found = state()
        if found is None:
            return
        if found.get("debouncer") is not None:
            found["debouncer"].cancel()
        found["next"].clear()
        found["errors"], found["editing"] = {}, None
        if found.pop("problem", None):  # back to the header as last saved
            record = app.casework.get(found["id"], "round") if found["id"] else None
            if record is None:
                for name in [k for k, v in app.ui.items() if v is found]:
                    del app.ui[name]
            else:
                found["fields"] = dict(record["fields"])
        _keep_row(app, found)

    return shell.Leave(unsaved=unsaved, discard=discard, keep=keep)


def _forget(app: AppState, state: dict[str, Any]) -> None:
    """A finished round: its screen state and row drafts go (``/round`` starts afresh)."""
    app.drafts.drop(rounds.row_key(state["id"]))
    if state["id"]:
        app.ui.pop(f"round:{state['id']}", None)
    new = app.drafts.get(rounds.row_key(None), rounds.RoundRow)
    if new is not None and new.round_id == state["id"]:
        app.drafts.drop(rounds.row_key(None))
    app.ui.pop("round:new", None)


def _state(app: AppState, work: Casework, round_id: str) -> dict[str, Any] | None:
    key = f"round:{round_id}" if round_id else "round:new"
    state: dict[str, Any] | None = app.ui.get(key)
    if state is not None:
        return state
    # ``/round`` after a lock goes on with the round it had started (see ``_first_saved``).
    new = None if round_id else app.drafts.get(rounds.row_key(None), rounds.RoundRow)
    wanted = round_id or (new.round_id if new else None)
    record = work.get(wanted, "round") if wanted else None
    if round_id and record is None:
        return None
    if record is None:
        row = new if new is not None and not new.round_id else rounds.RoundRow()
    else:
        kept = app.drafts.get(rounds.row_key(record["id"]), rounds.RoundRow)
        row = kept or rounds.RoundRow(record["id"])
    state = {
        "id": row.round_id,
        "fields": dict(record["fields"]) if record else {"date": work.today.isoformat()},
        "errors": {},
        "debouncer": None,
        "next": row,
        "editing": None,
    }
    app.ui[key] = state
    if record is not None:  # one state for a round, whichever route shows it
        app.ui.setdefault(f"round:{record['id']}", state)
    return state


def build(app: AppState, nav: shell.Nav, round_id: str = "", **_: str) -> ft.View:
    """The round screen."""
    work = app.casework
    route = urls.office_round(round_id or None)
    state = _state(app, work, round_id)
    if state is None:
        return shell.missing(
            app,
            nav,
            route,
            "Office round",
            "This round is not on this phone.",
            key="round-missing",
            heading="Round not found",
        )
    header, saved_header = _header(app, nav, work, state)
    add = Adder(app, nav, work, state, saved_header)
    entries = work.round_entries(state["id"]) if state["id"] else []
    controls: list[ft.Control] = [
        *header,
        w.section_header(f"Patients discussed ({len(entries)})", key="entries-header"),
    ]
    if not entries:
        controls.append(
            ft.Text(
                "No patients yet. Add the first one below.",
                key="entries-none",
                color=ft.Colors.ON_SURFACE_VARIANT,
            )
        )
    controls += [_entry(app, nav, work, state, e) for e in entries]
    controls += _next_row(app, nav, work, state, add)
    controls.append(_finish_button(app, nav, work, state, add))
    return shell.screen(
        app,
        nav,
        route,
        "Office round",
        controls,
        leave=_leave(app, f"round:{round_id}" if round_id else "round:new"),
    )


def _finish_button(
    app: AppState, nav: shell.Nav, work: Casework, state: dict[str, Any], add: Adder
) -> ft.Control:
    """Finish round: the header saved, the patients counted; a typed row is asked about."""

    def done() -> None:
        state["debouncer"].flush()
        count = len(work.round_entries(state["id"])) if state["id"] else 0
        _forget(app, state)
        nav.toast(f"Round saved: {rounds.patients(count)}")
        nav.go(urls.TODAY)

    def finish(e: Any = None) -> None:
        if not state["next"].typed():
            done()
            return
        nav.show_dialog(_finish_dialog(nav, state, app, lambda: add(then=done), done))

    return ft.Row(
        [
            w.secondary_button(
                "Finish round", finish, icon=ft.Icons.DONE_ALL, key="finish-round", expand=True
            )
        ]
    )


def _header(
    app: AppState, nav: shell.Nav, work: Casework, state: dict[str, Any]
) -> tuple[list[ft.Control], Callable[[], bool]]:
    """The round's header fields, autosaved; and a check that saves it now (an entry
    needs the round's id)."""
    f = state["fields"]
    site_names = {s["id"]: str(s["fields"].get("name", "")) for s in work.sites()}
    status = ft.Text(
        "Saved" if state["id"] else "Not saved yet",
        key="round-save-status",
        color=ft.Colors.ON_SURFACE_VARIANT,
    )

    teams = app.teams()
    team = ft.Dropdown(
        key="round-team",
        label="Team",
        value=f.get("team_id"),
        expand=True,
        options=[ft.DropdownOption(key=tid, text=name) for tid, name in teams],
        visible=len(teams) > 1,
        disabled=bool(state["id"]),
        error_text=state["errors"].get("team_id"),
    )

    def save() -> bool:
        if app.store is None:
            return False
        try:
            fields = rounds.round_fields(
                f.get("date") or "",
                f.get("site_id"),
                f.get("attendees") or [],
                f.get("education_topics") or [],
                f.get("notes") or "",
                team_id=f.get("team_id"),
            )
            record = work.save_round(fields, state["id"])
        except forms.REFUSED as exc:
            unplaced = [e for e in getattr(exc, "errors", ()) if e.field == "team_id"]
            problem = f"{unplaced[0].message.capitalize()}." if unplaced else None
            state["errors"]["team_id"] = team.error_text = problem
            status.value = (
                "Not saved: choose the team first." if problem else f"Not saved: {plain_error(exc)}"
            )
            state["problem"] = problem or "Fix the round's date first"
            nav.update()
            return False
        state["errors"].pop("team_id", None)
        state.pop("problem", None)
        team.error_text = None
        if state["id"] is None:
            _first_saved(app, state, record["id"])
        status.value = f"Saved {work.now():%H:%M}"
        nav.update()
        return True

    if state["debouncer"] is None:
        state["debouncer"] = Debouncer(lambda: None)
    debouncer: Debouncer = state["debouncer"]
    debouncer.action = save

    def saved_header() -> bool:
        """The round saved as typed (an entry needs its id); False, said, when it cannot."""
        if state["id"] is None or debouncer.pending:
            debouncer.cancel()
            if not save():
                nav.toast(state.get("problem") or "Fix the round's date first")
                return False
        return True

    def change(name: str, value: Any) -> None:
        f[name] = value
        debouncer.poke()

    offices = work.sites("physician_office") or work.sites()
    site = ft.Dropdown(
        key="round-site",
        label="Site",
        value=f.get("site_id"),
        expand=True,
        options=[ft.DropdownOption(key=s["id"], text=site_names[s["id"]]) for s in offices],
    )
    site.on_select = lambda e: change("site_id", site.value or None)
    team.on_select = lambda e: change("team_id", team.value or None)
    date = w.text_field("Date (YYYY-MM-DD)", key="round-date", value=str(f.get("date") or ""))
    date.on_change = lambda e: change("date", (date.value or "").strip())
    attendees = w.text_field(
        "Attendees (separate with commas)",
        key="attendees",
        value=", ".join(f.get("attendees") or []),
    )
    attendees.on_change = lambda e: change("attendees", rounds.split_list(attendees.value or ""))
    topics = w.text_field(
        "Education topics covered (commas)",
        key="topics",
        value=", ".join(f.get("education_topics") or []),
    )
    topics.on_change = lambda e: change("education_topics", rounds.split_list(topics.value or ""))
    for field in (date, attendees, topics):
        field.on_blur = lambda e: debouncer.flush()
    heading = rounds.round_title(f, site_names.get(f.get("site_id") or ""))
    controls: list[ft.Control] = [
        ft.Text(heading, key="round-title", theme_style=ft.TextThemeStyle.TITLE_LARGE),
        status,
        ft.Row([team]),
        ft.Row([site]),
        date,
        attendees,
        topics,
    ]
    return controls, saved_header


# -- entries already added: shown, edited, removed ----------------------------------------


def _entry(
    app: AppState, nav: shell.Nav, work: Casework, state: dict[str, Any], entry: dict[str, Any]
) -> ft.Control:
    f = entry["fields"]
    name = work.patient_name(f.get("patient_id"))
    editing = state.get("editing")
    if editing and editing["id"] == entry["id"]:
        return _entry_editor(nav, work, state, name)

    def edit(e: Any = None) -> None:
        items = "\n".join(f.get("action_items") or [])
        before = (str(f.get("note") or ""), items)
        state["editing"] = {"id": entry["id"], "note": before[0], "actions": items}
        state["editing"]["before"] = before
        nav.refresh()

    def remove(e: Any = None) -> None:
        nav.show_dialog(_remove_dialog(nav, work, state, entry["id"], name))

    lines: list[ft.Control] = [
        ft.Row(
            [
                ft.Text(name, weight=ft.FontWeight.BOLD, expand=True),
                w.icon_action(
                    ft.Icons.EDIT_OUTLINED, f"Edit {name}", edit, key=f"edit-{entry['id']}"
                ),
                w.icon_action(
                    ft.Icons.DELETE_OUTLINE, f"Remove {name}", remove, key=f"remove-{entry['id']}"
                ),
            ]
        )
    ]
    if f.get("note"):
        lines.append(ft.Text(str(f["note"])))
    lines += [
        ft.Row([ft.Icon(ft.Icons.ALARM_ADD, size=18), ft.Text(item, expand=True)])
        for item in f.get("action_items") or []
    ]
    return _card(ft.Column(lines, spacing=2), key=f"entry-{entry['id']}")


def _card(content: ft.Control, *, key: str) -> ft.Container:
    return ft.Container(
        content,
        key=key,
        padding=ft.Padding.all(10),
        border_radius=ft.BorderRadius.all(10),
        border=ft.Border.all(1, ft.Colors.OUTLINE_VARIANT),
    )


def _entry_editor(nav: shell.Nav, work: Casework, state: dict[str, Any], name: str) -> ft.Control:
    """An entry open for editing: its note and action items, Save or Cancel."""
    ed = state["editing"]
    note = w.text_field(f"Note about {name}", key="edit-note", value=ed["note"], multiline=True)
    actions = w.text_field(
        f"Action items for {name}", key="edit-actions", value=ed["actions"], multiline=True
    )
    error = ft.Text(ed.get("error") or "", key="edit-error", color=ft.Colors.ERROR)
    error.visible = bool(ed.get("error"))

    def typed(e: Any = None) -> None:
        ed["note"], ed["actions"] = note.value or "", actions.value or ""

    note.on_change = actions.on_change = typed

    def save(e: Any = None) -> None:
        typed()
        try:
            _, tasks = work.update_round_entry(ed["id"], ed["note"], ed["actions"])
        except forms.REFUSED as exc:
            ed["error"] = plain_error(exc)
            nav.refresh()
            return
        state["editing"] = None
        state["last_added"] = f"Saved changes for {name}" + _tasks_said(len(tasks))
        nav.refresh()

    def cancel(e: Any = None) -> None:
        state["editing"] = None
        nav.refresh()

    return _card(
        ft.Column(
            [
                ft.Text(name, weight=ft.FontWeight.BOLD),
                note,
                actions,
                error,
                w.button_row(
                    [
                        w.primary_button("Save changes", save, icon=ft.Icons.SAVE, key="edit-save"),
                        w.text_button("Cancel", cancel, key="edit-cancel"),
                    ]
                ),
            ],
            spacing=8,
        ),
        key=f"entry-{ed['id']}",
    )


def _remove_dialog(
    nav: shell.Nav, work: Casework, state: dict[str, Any], entry_id: str, name: str
) -> ft.AlertDialog:
    """ "Remove <name> from this round?" — the tasks made from the entry stay."""

    def remove(e: Any = None) -> None:
        nav.close_dialog()
        try:
            work.remove_round_entry(entry_id)
        except AppError as exc:
            nav.toast(plain_error(exc))
            return
        if (state.get("editing") or {}).get("id") == entry_id:
            state["editing"] = None
        state["last_added"] = f"Removed {name} from the round"
        nav.refresh()

    return ft.AlertDialog(
        modal=True,
        key="remove-dialog",
        title=ft.Text(f"Remove {name} from this round?"),
        content=ft.Text(
            "The note and action items of this entry are removed. Tasks already made from "
            "it are not deleted: they stay on the task list.",
            key="remove-text",
        ),
        actions=[
            w.text_button("Keep", lambda e: nav.close_dialog(), key="remove-keep"),
            w.danger_button("Remove", remove, key="remove-confirm"),
        ],
    )


def _tasks_said(n: int) -> str:
    return f" · {n} task{'s' * (n != 1)}" if n else ""


# -- the next-patient row -------------------------------------------------------------------


class Adder:
    """What "Add patient" does: check the row, ask when the typed name is already a
    patient's, then save the entry (and its tasks) and clear the row."""

    def __init__(
        self,
        app: AppState,
        nav: shell.Nav,
        work: Casework,
        state: dict[str, Any],
        saved_header: Callable[[], bool],
    ) -> None:
        self.app, self.nav, self.work, self.state = app, nav, work, state
        self.saved_header = saved_header

    def __call__(self, e: Any = None, *, then: Callable[[], None] | None = None) -> None:
        """Add the row; ``then`` runs once it is added (Finish round's "Add")."""
        row: rounds.RoundRow = self.state["next"]
        self.state["errors"] = {}
        if not row.patient_id and not row.name.strip():
            self.state["errors"]["name"] = "Type the patient's name"
            self.nav.refresh()
            return
        same = [] if row.patient_id else self.work.patients_named(row.name)
        if same:
            self.nav.show_dialog(self._namesake_dialog(row.name, same, then))
            return
        self.commit(row.patient_id, then)

    def commit(self, patient_id: str | None, then: Callable[[], None] | None = None) -> None:
        """Save the row as an entry for ``patient_id`` (None: a new patient by its name)."""
        state, work, row = self.state, self.work, self.state["next"]
        if not self.saved_header():
            return
        try:
            entry, tasks = work.add_round_entry(
                state["id"], patient_id, row.name, row.note, row.actions
            )
        except forms.REFUSED as exc:
            state["errors"]["name"] = plain_error(exc)
            self.nav.refresh()
            return
        who = work.patient_name(entry["fields"]["patient_id"])
        row.clear()
        _keep_row(self.app, state)
        # Said inline rather than in a toast: a round adds patients faster than toasts fade.
        state["last_added"] = f"Added {who}" + _tasks_said(len(tasks))
        state["focus_next"] = True
        self.nav.refresh()
        if then is not None:
            then()

    def _namesake_dialog(
        self, typed: str, same: list[dict[str, Any]], then: Callable[[], None] | None
    ) -> ft.AlertDialog:
        """ "<name> is already a patient": use that patient, or add a new one."""
        nav, today = self.nav, self.work.today

        def choose(patient_id: str | None) -> Callable[[Any], None]:
            def chosen(e: Any = None) -> None:
                nav.close_dialog()
                self.commit(patient_id, then)

            return chosen

        clean = " ".join(typed.split())
        return ft.AlertDialog(
            modal=True,
            key="namesake-dialog",
            title=ft.Text(f"{clean} is already a patient"),
            content=ft.Text(
                "Use the patient already on this phone, or add a new patient with the same name?",
                key="namesake-text",
            ),
            actions=[
                *(
                    w.text_button(
                        f"Use {rounds.who(p['fields'], today)}",
                        choose(p["id"]),
                        key=f"use-{p['id']}",
                    )
                    for p in same
                ),
                w.text_button("Add a new patient", choose(None), key="namesake-new"),
                w.text_button("Keep editing", lambda e: nav.close_dialog(), key="namesake-keep"),
            ],
        )


def _finish_dialog(
    nav: shell.Nav,
    state: dict[str, Any],
    app: AppState,
    add: Callable[[], None],
    done: Callable[[], None],
) -> ft.AlertDialog:
    """Finish round with a typed row: add it, discard it, or keep editing."""
    row: rounds.RoundRow = state["next"]
    name = " ".join(row.name.split())

    def closing(action: Callable[[], None]) -> Callable[[Any], None]:
        def handler(e: Any = None) -> None:
            nav.close_dialog()
            action()

        return handler

    def discard() -> None:
        row.clear()
        _keep_row(app, state)
        done()

    actions: list[ft.Control] = []
    if name:  # a row without a name cannot be added: only discard or go back to it
        actions.append(w.primary_button("Add", closing(add), key="finish-add"))
    actions += [
        w.danger_button("Discard", closing(discard), key="finish-discard"),
        w.text_button("Keep editing", lambda e: nav.close_dialog(), key="finish-keep"),
    ]
    return ft.AlertDialog(
        modal=True,
        key="finish-dialog",
        title=ft.Text(
            f"Add {name} before finishing?" if name else "Finish without the typed note?"
        ),
        content=ft.Text(
            "The next patient row is typed but not added to the round yet.", key="finish-text"
        ),
        actions=actions,
    )


def _hint(work: Casework, row: rounds.RoundRow, found: list[dict[str, Any]]) -> str:
    """What Add patient will do with the row as typed."""
    typed = " ".join(row.name.split())
    if row.patient_id:
        return f"Patient: {work.patient_name(row.patient_id)}"
    if not typed:
        return "Type a name to find the patient, or to add a new one."
    if any(fold(str(p["fields"].get("name", ""))) == fold(typed) for p in found):
        return f"“{typed}” exists: tap the name above, or Add asks which."
    return f"New patient “{typed}” will be added."


def _next_row(
    app: AppState, nav: shell.Nav, work: Casework, state: dict[str, Any], add: Adder
) -> list[ft.Control]:
    row: rounds.RoundRow = state["next"]
    matches = ft.Column(key="matches", spacing=4)
    hint = ft.Text("", key="next-hint", color=ft.Colors.ON_SURFACE_VARIANT)
    name = w.text_field(
        "Patient (search, or a new name)",
        key="next-name",
        value=row.name,
        # Ready for the next patient right after one was added; not when a round is
        # opened (on a phone, focus opens the keyboard over half the screen) and not on a
        # later redraw (focus would jump here from the field being typed in).
        autofocus=state.pop("focus_next", False),
        error=state["errors"].get("name"),
    )
    note = w.text_field("Note", key="next-note", value=row.note, multiline=True)
    actions = w.text_field(
        ACTIONS_LABEL,
        key="next-actions",
        value=row.actions,
        multiline=True,
        hint="Call son by 2026-12-01; order walker in 3 days",
    )

    def show() -> None:
        found = work.search_patients(row.name) if not row.patient_id else []
        matches.controls = [
            w.secondary_button(
                str(p["fields"].get("name", "")),
                lambda e, p=p: select(p),
                icon=ft.Icons.PERSON_SEARCH,
                key=f"match-{p['id']}",
            )
            for p in found
        ]
        hint.value = _hint(work, row, found)

    def select(patient: dict[str, Any]) -> None:
        row.patient_id = patient["id"]
        row.name = name.value = str(patient["fields"].get("name", ""))
        _keep_row(app, state)
        show()

    def typed_name(e: Any = None) -> None:
        row.name, row.patient_id = name.value or "", None
        _keep_row(app, state)
        show()

    def typed_rest(e: Any = None) -> None:
        row.note, row.actions = note.value or "", actions.value or ""
        _keep_row(app, state)

    name.on_change = typed_name
    note.on_change = actions.on_change = typed_rest
    for field in (name, note, actions):
        field.on_blur = lambda e: app.drafts.flush()
    show()
    last = state.get("last_added")
    return [
        w.section_header("Next patient"),
        ft.Text(last or "", key="last-added", color=ft.Colors.PRIMARY, visible=bool(last)),
        name,
        matches,
        hint,
        note,
        actions,
        ft.Row(
            [
                w.primary_button(
                    "Add patient", add, icon=ft.Icons.PERSON_ADD, key="add-entry", expand=True
                )
            ]
        ),
    ]
