"""A visit read-only: a final one with its next steps and addenda; a colleague's draft."""

from __future__ import annotations

from typing import Any

import flet as ft

from app import assessment as a
from app import forms
from app.attachments import Target, photos_of, record_target
from app.casework import Casework
from app.labels import NEEDS as NEED_LABELS
from app.labels import label
from app.messages import plain_error
from app.photos import PreparedPhoto
from app.state import AppState
from app.triage import Proposal
from app.views import next_steps, photos, screening, shell
from app.views import widgets as w
from sync.errors import InvalidRecord


def final_view(
    app: AppState, nav: shell.Nav, work: Casework, visit: dict[str, Any]
) -> list[ft.Control]:
    """The controls of a final visit's screen."""
    f = visit["fields"]
    items: list[ft.Control] = [
        w.banner(
            "Final: this visit can no longer change. Add an addendum to correct it.",
            key="final-banner",
        ),
        *facts(app, nav, visit),
    ]

    def accept(p: Proposal) -> bool:
        return next_steps.accept(work, nav, p)  # the panel marks it added in place

    items.append(
        next_steps.panel(
            work.proposals(visit), work.accepted(visit["id"]), accept, triage=f.get("triage")
        )
    )
    items += _addenda(app, nav, work, visit)
    return items


def facts(app: AppState, nav: shell.Nav, visit: dict[str, Any]) -> list[ft.Control]:
    """What a visit found and decided, read-only, with its photos."""
    f = visit["fields"]
    needs = ", ".join(NEED_LABELS.get(n, n) for n in a.effective_needs(f)) or "None recorded"
    items: list[ft.Control] = [
        w.labelled_value(
            "Started", str(f.get("started_at", ""))[:16].replace("T", " "), key="fact-started"
        ),
        w.labelled_value("Setting", label(f.get("setting")) or "—", key="fact-setting"),
        w.labelled_value(
            "Source of the request", label(f.get("source"), "source") or "—", key="fact-source"
        ),
        w.labelled_value("Needs", needs, key="fact-needs"),
        w.labelled_value("Triage decision", label(f.get("triage")) or "—", key="fact-triage"),
        w.labelled_value("Summary", str(f.get("summary") or "—"), key="fact-summary"),
        w.section_header("Screening"),
        screening.scores_panel(f.get("screening") or {})
        if f.get("screening")
        else ft.Text("No screening answers recorded.", key="screening-none"),
    ]
    for i, (question, answer) in enumerate(screening.answered_lines(f.get("screening") or {})):
        items.append(w.labelled_value(question, answer, key=f"answer-{i}"))
    if photos_of(visit):  # read-only like the rest; new photos go with an addendum
        items += photos.section(
            app,
            nav,
            record_target(app.store, "visit", visit["id"]),
            key="visit-photos",
            editable=False,
        )
    return items


def _addenda(
    app: AppState, nav: shell.Nav, work: Casework, visit: dict[str, Any]
) -> list[ft.Control]:
    """The visit's addenda, then the form to add one (text and photos)."""
    items: list[ft.Control] = [w.section_header("Addenda")]
    addenda = work.addenda(visit)
    if not addenda:
        items.append(
            ft.Text("No addenda yet.", key="addenda-none", color=ft.Colors.ON_SURFACE_VARIANT)
        )
    items += [_addendum(app, nav, i, note) for i, note in enumerate(addenda)]
    return items + _addendum_form(app, nav, work, visit)


def _addendum(app: AppState, nav: shell.Nav, i: int, note: dict[str, Any]) -> ft.Control:
    """One addendum: its text and its photos."""
    body: list[ft.Control] = [ft.Text(str(note["fields"].get("text", "")), selectable=True)]
    if photos_of(note):
        body.append(
            photos.strip(
                app,
                nav,
                photos_of(note),
                target=None,
                editable=False,
                key=f"addendum-{i}-thumb",
                size=photos.SMALL,
            )
        )
    return ft.Container(
        key=f"addendum-{i}",
        padding=ft.Padding.all(12),
        border=ft.Border.all(1, ft.Colors.OUTLINE_VARIANT),
        border_radius=ft.BorderRadius.all(12),
        content=ft.Column(body, spacing=8),
    )


def _addendum_form(
    app: AppState, nav: shell.Nav, work: Casework, visit: dict[str, Any]
) -> list[ft.Control]:
    """The next addendum: its text, the photos chosen for it, and "Add addendum"."""
    draft_key = f"addendum-draft:{visit['id']}"
    # Photos for the next addendum wait in memory (never on disk) until it is added.
    staged: list[PreparedPhoto] = app.ui.setdefault(f"addendum-photos:{visit['id']}", [])
    photo_error = ft.Text("", key="addendum-photo-error", color=ft.Colors.ERROR, visible=False)
    text = w.text_field(
        "Correction or addition",
        key="addendum-text",
        multiline=True,
        value=app.ui.get(draft_key, ""),
    )

    def typed(e: Any = None) -> None:
        app.ui[draft_key] = text.value or ""

    def add(e: Any = None) -> None:
        words = text.value or ""
        if staged and not words.strip():
            words = "Photo added" if len(staged) == 1 else f"{len(staged)} photos added"
        target = Target(list, lambda found: work.add_addendum(visit["id"], words, found))
        try:
            if staged:
                app.attachments.add(target, staged)
            else:
                work.add_addendum(visit["id"], words)
        except forms.REFUSED as exc:
            text.error = _message(exc)
            return
        app.ui.pop(draft_key, None)
        staged.clear()
        nav.toast("Addendum added")
        nav.refresh()

    async def picked(files: list[tuple[str, bytes]]) -> None:
        found, problems = await photos.prepare_all(app, files)
        staged.extend(found)
        photo_error.value, photo_error.visible = " ".join(problems), bool(problems)
        if problems:
            nav.toast(problems[0])
            nav.update()
        if found:
            nav.refresh()

    text.on_change = typed
    return [
        text,
        *([_staged_row(app, nav, staged)] if staged else []),
        photo_error,
        w.button_row(
            [
                photos.picker_button(app, picked, key="addendum-add-photo"),
                *(
                    [photos.camera_button(app, nav, picked, key="addendum-camera")]
                    if photos.camera_available()
                    else []
                ),
                w.primary_button("Add addendum", add, icon=ft.Icons.NOTE_ADD, key="add-addendum"),
            ]
        ),
    ]


def _staged_row(app: AppState, nav: shell.Nav, staged: list[PreparedPhoto]) -> ft.Control:
    """The photos chosen for the next addendum, each with a button to take it out."""

    def unstage(index: int) -> None:
        del staged[index]
        nav.refresh()

    return ft.Row(
        [
            ft.Row(
                [
                    photos.thumbnail(
                        app,
                        {"thumbnail": p.thumbnail_sha256, "caption": "New photo"},
                        None,
                        data=p.thumbnail,
                        size=photos.SMALL,
                    ),
                    w.icon_action(
                        ft.Icons.CLOSE,
                        f"Remove new photo {i + 1}",
                        lambda e, i=i: unstage(i),
                        key=f"addendum-unstage-{i}",
                    ),
                ],
                spacing=0,
            )
            for i, p in enumerate(staged)
        ],
        key="addendum-staged",
        wrap=True,
        spacing=8,
    )


def addendum_leave(app: AppState, visit_id: str) -> shell.Leave:
    """A correction typed (or photos chosen) for a final visit is unsaved until added."""
    keys = (f"addendum-draft:{visit_id}", f"addendum-photos:{visit_id}")

    def unsaved() -> bool:
        return bool(str(app.ui.get(keys[0]) or "").strip() or app.ui.get(keys[1]))

    def discard() -> None:
        for key in keys:
            app.ui.pop(key, None)

    return shell.Leave(unsaved=unsaved, discard=discard)


def _message(exc: Exception) -> str:
    if isinstance(exc, InvalidRecord):
        text = "; ".join(e.message for e in exc.errors)
        return text[:1].upper() + text[1:]
    return plain_error(exc)
