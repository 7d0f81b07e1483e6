"""Sync: state and progress, pending count, last success, errors in plain words,
conflicts to review (keep or use the other value) and refused changes to fix or discard."""

from __future__ import annotations

import datetime as dt
from typing import Any

import flet as ft

from app import forms, urls
from app.labels import label
from app.state import AppState, ago
from app.views import shell
from app.views import widgets as w

TYPE_LABELS = {"round_entry": "Round note", "addendum": "Addendum"}


def _type_label(name: str) -> str:
    return TYPE_LABELS.get(name, label(name))


def _field(name: str) -> str:
    return name.replace("_", " ").capitalize()


def _value(value: Any) -> str:
    if value is None or value == "" or value == []:
        return "(empty)"
    if isinstance(value, list):
        return ", ".join(str(v) for v in value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    return label(value) if isinstance(value, str) and "_" in value else str(value)


def _when(iso: str) -> str:
    try:
        return dt.datetime.fromisoformat(iso).astimezone().strftime("%d %b %Y %H:%M")
    except (TypeError, ValueError):
        return str(iso)


def fix_route(app: AppState, item: dict[str, Any]) -> str | None:
    """Where to redo a refused change: the screen that edits that record, if it is here.

    The engine takes a refused change out of the local record (the server's version comes
    back); a refused new record is gone, so only its patient's page is left to go to.
    """
    m = item.get("mutation") or {}
    rid, kind = m.get("record_id"), m.get("type")
    record = app.require_store().get(rid) if rid else None
    pid = ((record or {}).get("fields") or {}).get("patient_id") or (m.get("fields") or {}).get(
        "patient_id"
    )
    if record is None:  # a refused new record is gone: its patient is left, if here
        return urls.patient(pid) if pid and app.require_store().get(pid) else None
    link = (m.get("fields") or {}).get("visit_id") or record["fields"].get("round_id")
    return urls.for_record(kind, rid, pid, link=link)


def record_route(app: AppState, record_id: str) -> str | None:
    """The screen that shows a record (a conflict's), if the record is here."""
    record = app.require_store().get(record_id) if record_id else None
    if record is None:
        return None
    fields = record["fields"]
    link = fields.get("visit_id") or fields.get("round_id")
    return urls.for_record(record["type"], record_id, fields.get("patient_id"), link=link)


def _subject(app: AppState, record_id: str, sent: dict[str, Any] | None = None) -> str:
    """The patient a conflict or refusal is about, by name (``sent``: the refused fields)."""
    record = app.require_store().get(record_id) if record_id else None
    if record is None and sent is None:
        return ""
    kind = record.get("type") if record else (sent or {}).get("type")
    fields = (record or {}).get("fields") or (sent or {}).get("fields") or {}
    if kind == "patient":
        return str(fields.get("name", ""))
    patient_id = fields.get("patient_id")
    patient = app.require_store().get(str(patient_id)) if patient_id else None
    return str(((patient or {}).get("fields") or {}).get("name", ""))


def _current(app: AppState, note: dict[str, Any]) -> Any:
    """What the conflict's record holds now (a later edit here shows at once)."""
    record = app.require_store().get(str(note.get("record_id", "")))
    if record is None:
        return note.get("value")
    return record["fields"].get(str(note.get("field")))


def _card(key: str, title: str, subject: str, body: list[ft.Control]) -> ft.Card:
    """One item to review: what it is (and whose), then its details and buttons."""
    heading = ft.Text(
        title + (f" — {subject}" if subject else ""), theme_style=ft.TextThemeStyle.TITLE_SMALL
    )
    return ft.Card(
        key=key,
        content=ft.Container(
            padding=ft.Padding.all(12), content=ft.Column([heading, *body], spacing=8)
        ),
    )


def _conflicts(app: AppState, nav: shell.Nav) -> list[ft.Control]:
    items = app.syncing.conflicts()
    out: list[ft.Control] = [w.section_header(f"Conflicts to review ({len(items)})")]
    if not items:
        out.append(
            ft.Text(
                "No conflicts. When two people change the same thing, both values appear here.",
                key="conflicts-none",
                color=ft.Colors.ON_SURFACE_VARIANT,
            )
        )
    for i, c in enumerate(items):

        def resolve(use_other: bool, index: int = i, note: dict[str, Any] = c) -> Any:
            def handler(e: Any = None) -> None:
                app.syncing.resolve_conflict(index, use_other=use_other, note=note)
                nav.toast("Value replaced; it will sync." if use_other else "Kept.")
                nav.refresh()

            return handler

        mine = c.get("lost_by") and c.get("lost_by") == app.account().get("device_id")
        who = (
            "you, on this phone"
            if mine
            else c.get("user") or f"device {str(c.get('lost_by', ''))[:8]}"
        )
        subject = _subject(app, str(c.get("record_id", "")))
        title = f"{_type_label(str(c.get('type')))} · {_field(str(c.get('field')))}"
        out.append(
            _card(
                f"conflict-{i}",
                title,
                subject,
                [
                    w.labelled_value("Current value", _value(_current(app, c))),
                    w.labelled_value(
                        f"Other value, by {who} at {_when(str(c.get('lost_at')))}",
                        _value(c.get("lost_value")),
                    ),
                    w.button_row(
                        [
                            w.secondary_button("Keep current", resolve(False), key=f"keep-{i}"),
                            w.secondary_button(
                                "Use other value", resolve(True), key=f"replace-{i}"
                            ),
                            *_open_button(nav, record_route(app, str(c.get("record_id", ""))), i),
                        ]
                    ),
                ],
            )
        )
    return out


def _open_button(nav: shell.Nav, route: str | None, i: int) -> list[ft.Control]:
    """ "Open": the record's screen, to see the conflict in its place (none if not here)."""
    if route is None:
        return []
    return [
        w.secondary_button(
            "Open", lambda e: nav.go(route), icon=ft.Icons.OPEN_IN_NEW, key=f"open-conflict-{i}"
        )
    ]


def _rejected(app: AppState, nav: shell.Nav) -> list[ft.Control]:
    items = app.syncing.rejected()
    out: list[ft.Control] = [w.section_header(f"Changes the server refused ({len(items)})")]
    if not items:
        out.append(
            ft.Text(
                "None. A change the server refuses stays here until you fix or discard it.",
                key="rejected-none",
                color=ft.Colors.ON_SURFACE_VARIANT,
            )
        )
    for i, item in enumerate(items):
        m = item.get("mutation") or {}
        target = fix_route(app, item)

        def discard(index: int = i) -> None:
            app.syncing.discard_rejected(index)
            nav.refresh()

        def ask(e: Any = None, discard: Any = discard) -> None:
            forms.confirm_dialog(
                nav,
                "Discard this change?",
                "The server keeps its own version; this change will not be sent again.",
                "Discard",
                discard,
                danger=True,
                key="discard",
            )

        subject = _subject(app, str(m.get("record_id", "")), m)
        why = str(item.get("message") or "refused")
        if item.get("field"):
            why = f"{_field(str(item['field']))}: {why}"
        sent = ", ".join(
            f"{_field(k)}: {_value(v)}"
            for k, v in (m.get("fields") or {}).items()
            if k not in ("patient_id", "team_id", "round_id", "visit_id")
        )
        buttons: list[ft.Control] = []
        if target:
            buttons.append(
                w.secondary_button(
                    "Fix", lambda e, t=target: nav.go(t), icon=ft.Icons.EDIT, key=f"fix-{i}"
                )
            )
        buttons.append(
            w.text_button("Discard", ask, icon=ft.Icons.DELETE_OUTLINE, key=f"discard-{i}")
        )
        out.append(
            _card(
                f"rejected-{i}",
                _type_label(str(m.get("type"))),
                subject,
                [
                    ft.Text(why),
                    w.labelled_value("What was sent", sent or "(a deletion)"),
                    w.button_row(buttons),
                ],
            )
        )
    return out


def sign_in_dialog(app: AppState, nav: shell.Nav) -> ft.AlertDialog:
    """Password for the signed-in account (its name fixed), then a sync."""
    password = w.text_field("Password", key="sign-in-password", password=True, autofocus=True)
    busy = ft.ProgressBar(key="sign-in-busy", visible=False, semantics_label="Signing in")

    async def sign_in(e: Any = None) -> None:
        if button.disabled:
            return  # one sign-in at a time: a second tap (or Enter) during one does nothing
        busy.visible, button.disabled, password.error = True, True, None
        nav.update()
        problem = await app.session.sign_in_again(password.value or "")
        busy.visible, button.disabled = False, False
        if problem is not None:
            password.error = problem
            nav.update()
            return
        nav.close_dialog()
        nav.toast("Signed in again.")
        nav.refresh()

    password.on_submit = sign_in
    button = w.primary_button("Sign in", sign_in, key="sign-in-submit")
    username = app.account().get("username", "")
    dialog = ft.AlertDialog(
        modal=True,
        key="sign-in-dialog",
        title=ft.Text("Sign in again"),
        content=ft.Column(
            [
                ft.Text(
                    f"Your sign-in as {username} has expired. Type your password to sync "
                    "again; your unsynced work stays on this phone."
                ),
                password,
                busy,
            ],
            tight=True,
            spacing=12,
            width=360,
        ),
        actions=[
            w.text_button("Cancel", lambda e: nav.close_dialog(), key="sign-in-cancel"),
            button,
        ],
        scrollable=True,
    )  # above the soft keyboard in landscape, the field scrolls into view
    nav.show_dialog(dialog)
    return dialog


def build(app: AppState, nav: shell.Nav, **_: str) -> ft.View:
    """The sync screen."""
    s, now = app.sync, app.now()
    app.syncing.refresh_pending()

    def sync_now(e: Any = None) -> None:
        app.session.touch()
        app.syncing.start()
        nav.refresh()

    status: list[ft.Control] = [
        ft.Text(s.label(now), key="sync-state", theme_style=ft.TextThemeStyle.TITLE_LARGE),
    ]
    if s.running:
        status += [
            ft.ProgressBar(value=s.progress, key="progress", semantics_label="Sync progress"),
            ft.Text(s.stage, key="stage"),
        ]
    if s.error:
        status.append(w.banner(s.error, kind="warning" if s.offline else "error", key="sync-error"))
    elif s.summary:
        status.append(w.banner(s.summary, key="sync-summary"))
    last = (
        "Never"
        if s.last_success is None
        else f"{dt.datetime.fromtimestamp(s.last_success).strftime('%d %b %H:%M')} "
        f"({ago(s.last_success, now)})"
    )
    status += [
        w.labelled_value("Waiting to be sent", str(s.pending), key="pending"),
        w.labelled_value("Last successful sync", last, key="last-sync"),
    ]
    if s.sign_in_required:
        status.append(
            ft.Row(
                [
                    w.primary_button(
                        "Sign in again",
                        lambda e: sign_in_dialog(app, nav),
                        icon=ft.Icons.LOGIN,
                        key="sign-in-again",
                        disabled=s.running,
                        expand=True,
                    )
                ]
            )
        )
    else:
        status.append(
            ft.Row(
                [
                    w.primary_button(
                        "Sync now",
                        sync_now,
                        icon=ft.Icons.SYNC,
                        key="sync-now",
                        disabled=s.running,
                        expand=True,
                    )
                ]
            )
        )
    controls = [*status, *_conflicts(app, nav), *_rejected(app, nav)]
    return shell.screen(app, nav, urls.SYNC, "Sync", controls)
