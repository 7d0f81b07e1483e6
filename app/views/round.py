"""Office round: team, site, date, attendees and topics, then one row per patient discussed.

Built for speed: the "next patient" row (search or new name, note, action items, Add) stays
at the bottom and clears after each Add, so eight patients take minutes. Each action item
becomes a task. ``/round`` starts (or resumes) a round; ``/round/{round_id}`` opens one. The
header is autosaved like an assessment draft (``app.autosave.Debouncer``). A round belongs to
a team like a patient: a user in several teams chooses it before the round is first saved.
"""

from __future__ import annotations

from typing import Any

import flet as ft

from app import rounds, urls
from app.autosave import Debouncer
from app.casework import Casework
from app.errors import AppError
from app.state import AppState, plain_error
from app.store import fold
from app.views import shell
from app.views import widgets as w
from sync.errors import InvalidRecord

BLANK_ROW = {"name": "", "patient_id": None, "note": "", "actions": ""}


def _leave(app: AppState, key: str) -> shell.Leave:
    """The header autosaves (flushed on the way out); a typed "next patient" row, or a
    header the round could not save, is unsaved until Add patient or a fix."""

    def state() -> dict[str, Any] | None:
        found = app.ui.get(key)
        return found if isinstance(found, dict) else None

    def keep() -> None:
        found = state()
        if found is not None and found.get("debouncer") is not None:
            found["debouncer"].flush()

    def unsaved() -> bool:
        found = state()
        return found is not None and bool(
            found.get("problem")
            or any(str(found["next"].get(k) or "").strip() for k in ("name", "note", "actions"))
        )

    def discard() -> None:
        found = state()
        if found is None:
            return
        if found.get("debouncer") is not None:
            found["debouncer"].cancel()
        found["next"], found["errors"] = dict(BLANK_ROW), {}
        if found.pop("problem", None):  # back to the header as last saved
            record = Casework(app).get(found["id"], "round") if found["id"] else None
            if record is None:
                for name in [k for k, v in app.ui.items() if v is found]:
                    del app.ui[name]
            else:
                found["fields"] = dict(record["fields"])

    return shell.Leave(unsaved=unsaved, discard=discard, keep=keep)


def _state(app: AppState, work: Casework, round_id: str) -> dict[str, Any] | None:
    key = f"round:{round_id}" if round_id else "round:new"
    state: dict[str, Any] | None = app.ui.get(key)
    if state is None:
        record = work.get(round_id, "round") if round_id else None
        if round_id and record is None:
            return None
        fields = dict(record["fields"]) if record else {"date": work.today.isoformat()}
        state = {
            "id": round_id or None,
            "fields": fields,
            "errors": {},
            "debouncer": None,
            "next": dict(BLANK_ROW),
        }
        app.ui[key] = state
    return state


def build(app: AppState, nav: shell.Nav, round_id: str = "", **_: str) -> ft.View:
    """The round screen."""
    work = Casework(app)
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
        except (InvalidRecord, AppError) as exc:
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
            app.ui[f"round:{record['id']}"] = state
        state["id"] = record["id"]
        status.value = f"Saved {work.now():%H:%M}"
        nav.saved()
        nav.update()
        return True

    if state["debouncer"] is None:
        state["debouncer"] = Debouncer(lambda: None)
    debouncer: Debouncer = state["debouncer"]
    debouncer.action = save

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
    entries = work.round_entries(state["id"]) if state["id"] else []

    def finish(e: Any = None) -> None:
        debouncer.flush()
        app.ui.pop("round:new", None)
        if state["id"]:
            app.ui.pop(f"round:{state['id']}", None)
        nav.toast(f"Round saved: {len(entries)} patients")
        nav.go(urls.TODAY)

    heading = rounds.round_title(f, site_names.get(f.get("site_id") or ""))
    controls: list[ft.Control] = [
        ft.Text(heading, key="round-title", theme_style=ft.TextThemeStyle.TITLE_LARGE),
        status,
        ft.Row([team]),
        ft.Row([site]),
        date,
        attendees,
        topics,
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
    controls += [_entry(work, e) for e in entries]
    controls += _next_row(app, nav, work, state, debouncer, save)
    controls.append(
        ft.Row(
            [
                w.secondary_button(
                    "Finish round", finish, icon=ft.Icons.DONE_ALL, key="finish-round", expand=True
                )
            ]
        )
    )
    return shell.screen(
        app,
        nav,
        route,
        "Office round",
        controls,
        leave=_leave(app, f"round:{round_id}" if round_id else "round:new"),
    )


def _entry(work: Casework, entry: dict[str, Any]) -> ft.Control:
    f = entry["fields"]
    lines: list[ft.Control] = [
        ft.Text(work.patient_name(f.get("patient_id")), weight=ft.FontWeight.BOLD),
    ]
    if f.get("note"):
        lines.append(ft.Text(str(f["note"])))
    lines += [
        ft.Row([ft.Icon(ft.Icons.ALARM_ADD, size=18), ft.Text(item, expand=True)])
        for item in f.get("action_items") or []
    ]
    return ft.Container(
        ft.Column(lines, spacing=2),
        key=f"entry-{entry['id']}",
        padding=ft.Padding.all(10),
        border_radius=ft.BorderRadius.all(10),
        border=ft.Border.all(1, ft.Colors.OUTLINE_VARIANT),
    )


def _next_row(
    app: AppState,
    nav: shell.Nav,
    work: Casework,
    state: dict[str, Any],
    debouncer: Debouncer,
    save: Any,
) -> list[ft.Control]:
    nxt = state["next"]
    matches = ft.Column(key="matches", spacing=4)
    hint = ft.Text("", key="next-hint", color=ft.Colors.ON_SURFACE_VARIANT)
    name = w.text_field(
        "Patient (search, or a new name)",
        key="next-name",
        value=nxt["name"],
        autofocus=bool(state["id"]),
        error=state["errors"].get("name"),
    )

    def show() -> None:
        found = work.search_patients(nxt["name"]) if not nxt["patient_id"] else []
        matches.controls = [
            w.secondary_button(
                str(p["fields"].get("name", "")),
                lambda e, p=p: select(p),
                icon=ft.Icons.PERSON_SEARCH,
                key=f"match-{p['id']}",
            )
            for p in found
        ]
        typed = " ".join(nxt["name"].split())
        if nxt["patient_id"]:
            hint.value = f"Patient: {work.patient_name(nxt['patient_id'])}"
        elif not typed:
            hint.value = "Type a name to find the patient, or to add a new one."
        elif any(fold(str(p["fields"].get("name", ""))) == fold(typed) for p in found):
            hint.value = f"“{typed}” exists: tap the name above, or Add makes a new patient."
        else:
            hint.value = f"New patient “{typed}” will be added."

    def select(patient: dict[str, Any]) -> None:
        nxt["patient_id"] = patient["id"]
        nxt["name"] = name.value = str(patient["fields"].get("name", ""))
        show()

    def typed_name(e: Any = None) -> None:
        nxt["name"], nxt["patient_id"] = name.value or "", None
        show()

    name.on_change = typed_name
    note = w.text_field("Note", key="next-note", value=nxt["note"], multiline=True)
    actions = w.text_field(
        "Action items (one per line, or separate with ;)",
        key="next-actions",
        value=nxt["actions"],
        multiline=True,
        hint="Call son by 2026-12-01; order walker in 3 days",
    )

    def typed_rest(e: Any = None) -> None:
        nxt["note"], nxt["actions"] = note.value or "", actions.value or ""

    note.on_change = actions.on_change = typed_rest

    def add(e: Any = None) -> None:
        typed_rest()
        state["errors"] = {}
        if not nxt["patient_id"] and not nxt["name"].strip():
            state["errors"]["name"] = "Type the patient's name"
            nav.refresh()
            return
        if state["id"] is None or debouncer.pending:
            debouncer.cancel()
            if not save():
                nav.toast(state.get("problem") or "Fix the round's date first")
                return
        try:
            entry, tasks = work.add_round_entry(
                state["id"], nxt["patient_id"], nxt["name"], nxt["note"], nxt["actions"]
            )
        except (InvalidRecord, AppError) as exc:
            state["errors"]["name"] = plain_error(exc)
            nav.refresh()
            return
        who = work.patient_name(entry["fields"]["patient_id"])
        state["next"] = dict(BLANK_ROW)
        nav.saved()
        # Said inline rather than in a toast: a round adds patients faster than toasts fade.
        state["last_added"] = f"Added {who}" + (
            f" · {len(tasks)} task{'s' * (len(tasks) != 1)}" if tasks else ""
        )
        nav.refresh()

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
