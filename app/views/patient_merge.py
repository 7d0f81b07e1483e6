"""Merge with another patient: pick the other record, compare, confirm, merge on the server.

Two steps on one screen: search and pick the patient to keep; then both side by side with
what will move, and a "Merge" that asks once more. The merge needs a connection
(``app.merge``); afterwards the screen opens the patient that was kept.
"""

from __future__ import annotations

from typing import Any

import flet as ft

from app import merge, urls
from app.state import AppState
from app.views import shell
from app.views import widgets as w
from sync import merged


def _results(app: AppState, nav: shell.Nav, patient_id: str, form: merge.MergeForm) -> list[Any]:
    if not form.query.strip():
        return []
    found = merge.candidates(app.store, patient_id, form.query)
    if not found:
        return [
            w.empty_state(
                "No patient found",
                f"No other patient of your team matches “{form.query.strip()}”.",
                icon=ft.Icons.PERSON_SEARCH,
                key="merge-none",
            )
        ]

    def pick(survivor_id: str) -> None:
        app.session.touch()
        form.survivor_id, form.error = survivor_id, None
        nav.refresh()

    return [
        w.tile(
            s.name,
            " · ".join(value for _, value in s.details[:2]) or "No details",
            icon=ft.Icons.PERSON_OUTLINE,
            key=f"merge-pick-{s.id}",
            on_click=lambda e, i=s.id: pick(i),
        )
        for s in found
    ]


def _search(app: AppState, nav: shell.Nav, patient_id: str, form: merge.MergeForm) -> list[Any]:
    store = app.require_store()
    patient = store.get(patient_id)
    assert patient is not None, "build() shows the missing screen first"
    duplicate = merge.side(store, patient)
    results = ft.Column(_results(app, nav, patient_id, form), key="merge-results", spacing=0)
    field = w.text_field(
        "Search patients by name", key="merge-search", value=form.query, autofocus=True
    )

    def search(e: Any) -> None:
        app.session.touch()
        form.query = field.value or ""
        results.controls = _results(app, nav, patient_id, form)

    field.on_change = search
    intro = (
        f"Is {duplicate.name} recorded twice? Find the other record. You will see both "
        "before anything changes."
    )
    return [ft.Text(intro, key="merge-intro"), field, results]


def _card(title: str, side: merge.Side, key: str) -> ft.Control:
    lines: list[ft.Control] = [
        ft.Text(title, theme_style=ft.TextThemeStyle.LABEL_LARGE, color=ft.Colors.PRIMARY),
        ft.Text(side.name, theme_style=ft.TextThemeStyle.TITLE_MEDIUM, key=f"{key}-name"),
    ]
    lines += [ft.Text(f"{label}: {value}", selectable=True) for label, value in side.details]
    count = f"{side.records} record{'' if side.records == 1 else 's'} on this phone"
    lines.append(ft.Text(count, key=f"{key}-records"))
    return ft.Container(
        ft.Column(lines, spacing=4),
        key=key,
        expand=True,
        padding=ft.Padding.all(12),
        border=ft.Border.all(1, ft.Colors.OUTLINE_VARIANT),
        border_radius=ft.BorderRadius.all(12),
    )


def _what_happens(preview: merge.Preview) -> str:
    dup, keep = preview.duplicate, preview.survivor
    words = [
        f"All of {dup.name}'s visits, tasks, referrals, notes and photos move to {keep.name}. "
        f"{dup.name} then leaves the caseload, on every phone."
    ]
    if preview.gains:
        words.append(f"{keep.name} also gets: {', '.join(preview.gains)}.")
    if preview.differing:
        words.append(
            f"Where they differ ({', '.join(preview.differing)}), {keep.name}'s details stay."
        )
    return " ".join(words)


def _compare(app: AppState, nav: shell.Nav, patient_id: str, form: merge.MergeForm) -> list[Any]:
    assert form.survivor_id is not None
    preview = merge.preview(app.store, patient_id, form.survivor_id)
    if preview is None:
        form.survivor_id = None
        return _search(app, nav, patient_id, form)

    async def merge_now(e: Any) -> None:
        nav.close_dialog()
        form.busy, form.error = True, None
        nav.refresh()
        problem = await merge.merge(app, patient_id, preview.survivor.id)
        form.busy = False
        if problem is not None:
            form.error = problem
            nav.refresh()
            return
        app.ui.pop(f"merge:{patient_id}", None)
        nav.toast(f"Merged. Everything is now under {preview.survivor.name}.")
        nav.go(urls.patient(preview.survivor.id))

    def ask(e: Any) -> None:
        app.session.touch()
        nav.show_dialog(
            ft.AlertDialog(
                modal=True,
                key="merge-dialog",
                title=ft.Text("Merge these patients?"),
                content=ft.Text(
                    f"{preview.duplicate.name} becomes part of {preview.survivor.name}. "
                    "This cannot be undone on the phone.",
                ),
                actions=[
                    w.text_button("Cancel", lambda e: nav.close_dialog(), key="merge-cancel"),
                    w.primary_button("Merge", merge_now, key="merge-confirm"),
                ],
            )
        )

    def change(e: Any) -> None:
        form.survivor_id, form.error = None, None
        nav.refresh()

    controls: list[Any] = [
        ft.Row(
            [
                _card("Goes away", preview.duplicate, "merge-duplicate"),
                _card("Kept", preview.survivor, "merge-survivor"),
            ],
            vertical_alignment=ft.CrossAxisAlignment.START,
        ),
        ft.Text(_what_happens(preview), key="merge-summary"),
    ]
    if form.error:
        controls.append(w.banner(form.error, kind="error", key="merge-error"))
    if form.busy:
        controls.append(ft.ProgressBar(key="merge-busy", semantics_label="Merging"))
    controls.append(
        w.button_row(
            [
                w.primary_button(
                    "Merge", ask, icon=ft.Icons.MERGE, key="merge-start", disabled=form.busy
                ),
                w.secondary_button(
                    "Pick another patient", change, key="merge-change", disabled=form.busy
                ),
            ]
        )
    )
    return controls


def merged_away(app: AppState, nav: shell.Nav, route: str, patient_id: str) -> ft.View | None:
    """For a patient merged into another: a screen that says so and opens the kept
    patient (an old link, a page left open on another phone); None when not merged."""

    def link(record_id: str) -> str | None:
        return merged.merged_into(app.require_store().get(record_id, include_deleted=True))

    survivor_id = merged.survivor(patient_id, link)
    if survivor_id == patient_id:
        return None
    survivor = app.require_store().get(survivor_id)
    name = str(survivor["fields"].get("name")) if survivor else "the other record"
    return shell.screen(
        app,
        nav,
        route,
        "Patient",
        [
            w.empty_state(
                "Merged into another patient",
                f"This patient was recorded twice. Everything about them is now under {name}.",
                icon=ft.Icons.MERGE,
                key="patient-merged",
            ),
            w.primary_button(
                f"Open {name}", lambda e: nav.go(urls.patient(survivor_id)), key="open-survivor"
            ),
        ],
    )


def build(app: AppState, nav: shell.Nav, patient_id: str = "", **_: str) -> ft.View:
    """The merge screen for ``patient_id`` (the record that goes away)."""
    route = urls.merge_patient(patient_id)
    if moved := merged_away(app, nav, route, patient_id):
        return moved
    if app.require_store().get(patient_id) is None:
        return shell.missing(
            app,
            nav,
            route,
            "Merge patients",
            "This patient is not on this phone. They may have been merged already.",
            key="merge-missing",
        )
    form = merge.form(app.ui, patient_id)
    body = (
        _compare(app, nav, patient_id, form)
        if form.survivor_id
        else _search(app, nav, patient_id, form)
    )
    return shell.screen(app, nav, route, "Merge patients", body)
