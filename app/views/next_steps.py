"""The next steps a triage decision proposes, each accepted with one tap."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Any

import flet as ft

from app.casework import Casework
from app.errors import AppError
from app.state import plain_error
from app.triage import Proposal
from app.views import widgets as w
from sync.errors import InvalidRecord

ICONS = {"referral": ft.Icons.SEND_OUTLINED, "task": ft.Icons.ALARM_ADD}


def panel(
    proposals: Sequence[Proposal],
    accepted: Collection[str],
    on_accept: Callable[[Proposal], None] | None,
    *,
    triage: str | None,
) -> ft.Control:
    """Proposed referrals and tasks; an added one shows "Added" instead of its button."""
    items: list[ft.Control] = [w.section_header("Next steps")]
    if not triage:
        items.append(
            ft.Text(
                "Choose a triage decision to see the proposed next steps.",
                key="proposals-none",
                color=ft.Colors.ON_SURFACE_VARIANT,
            )
        )
    elif not proposals:
        items.append(
            ft.Text(
                "Nothing to propose: record the needs or the screen first.",
                key="proposals-none",
                color=ft.Colors.ON_SURFACE_VARIANT,
            )
        )
    for i, p in enumerate(proposals):
        done = Casework.proposal_key(p) in accepted
        if done:
            trailing: ft.Control = ft.Row(
                [ft.Icon(ft.Icons.CHECK, color=ft.Colors.PRIMARY), ft.Text("Added")],
                key=f"accepted-{i}",
                tight=True,
            )
        else:
            tap = (lambda e, p=p: on_accept(p)) if on_accept else None
            # Every button reads "Add": its accessible name says what it adds.
            trailing = ft.Semantics(
                label=f"Add: {p.label}",
                button=True,
                exclude_semantics=True,
                on_tap=tap,
                content=ft.FilledTonalButton(
                    "Add",
                    key=f"accept-{i}",
                    height=w.TOUCH,
                    disabled=on_accept is None,
                    on_click=tap,
                ),
            )
        due = p.fields.get("due_date", "")
        items.append(
            ft.Container(
                key=f"proposal-{i}",
                padding=ft.Padding.symmetric(vertical=6),
                content=ft.Row(
                    [
                        ft.Icon(ICONS.get(p.type, ft.Icons.ADD)),
                        ft.Column(
                            [
                                ft.Text(p.label, theme_style=ft.TextThemeStyle.BODY_LARGE),
                                ft.Text(
                                    f"Due {due} · {p.reason}" if due else p.reason,
                                    color=ft.Colors.ON_SURFACE_VARIANT,
                                ),
                            ],
                            expand=True,
                            spacing=2,
                        ),
                        trailing,
                    ],
                    vertical_alignment=ft.CrossAxisAlignment.CENTER,
                ),
            )
        )
    return ft.Column(items, key="proposals", spacing=4)


def accept(work: Casework, nav: Any, proposal: Proposal) -> bool:
    """Turn a proposal into a record; tell the user either way."""
    try:
        work.accept(proposal)
    except (InvalidRecord, AppError) as exc:
        nav.toast(f"Not added: {plain_error(exc)}")
        return False
    nav.saved()
    nav.toast(f"Added: {proposal.label}")
    return True
