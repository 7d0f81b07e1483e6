"""The next steps a triage decision proposes, each accepted with one tap."""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from typing import Any

import flet as ft

from app import forms
from app.casework import Casework
from app.messages import plain_error
from app.triage import Proposal
from app.views import widgets as w

ICONS = {"referral": ft.Icons.SEND_OUTLINED, "task": ft.Icons.ALARM_ADD}


def panel(
    proposals: Sequence[Proposal],
    accepted: Collection[str],
    on_accept: Callable[[Proposal], bool | None] | None,
    *,
    triage: str | None,
) -> ft.Control:
    """Proposed referrals and tasks; an added one shows "Added" instead of its button, and
    "Add all" adds every one not added yet.

    When ``on_accept`` returns True the row turns to "Added" in place (the screen keeps its
    scroll); a caller returning None redraws the screen itself.
    """
    items: list[ft.Control] = [w.section_header("Next steps")]
    if not triage or not proposals:
        items.append(
            ft.Text(
                "Choose a triage decision to see the proposed next steps."
                if not triage
                else "Nothing to propose: record the needs or the screen first.",
                key="proposals-none",
                color=ft.Colors.ON_SURFACE_VARIANT,
            )
        )
    slots: dict[int, ft.Container] = {}  # the button (or "Added") of each proposal
    pending = {i for i, p in enumerate(proposals) if Casework.proposal_key(p) not in accepted}

    def add(i: int) -> None:
        if on_accept is not None and on_accept(proposals[i]):
            pending.discard(i)
            slots[i].content = _added(i)
            add_all.visible = len(pending) > 1

    def add_every(e: Any = None) -> None:
        for i in sorted(pending):
            add(i)

    add_all = w.secondary_button(
        "Add all", add_every, icon=ft.Icons.DONE_ALL, key="accept-all", disabled=not on_accept
    )
    add_all.visible = len(pending) > 1
    for i, p in enumerate(proposals):
        slots[i] = ft.Container(
            _added(i) if i not in pending else _add_button(i, p, add, on_accept is not None)
        )
        items.append(_row(i, p, slots[i]))
    items.append(add_all)
    return ft.Column(items, key="proposals", spacing=4)


def _added(i: int) -> ft.Control:
    return ft.Row(
        [ft.Icon(ft.Icons.CHECK, color=ft.Colors.PRIMARY), ft.Text("Added")],
        key=f"accepted-{i}",
        tight=True,
    )


def _add_button(i: int, p: Proposal, add: Callable[[int], None], enabled: bool) -> ft.Control:
    tap = (lambda e: add(i)) if enabled else None
    # Every button reads "Add": its accessible name says what it adds.
    return ft.Semantics(
        label=f"Add: {p.label}",
        button=True,
        exclude_semantics=True,
        on_tap=tap,
        content=ft.FilledTonalButton(
            "Add", key=f"accept-{i}", height=w.TOUCH, disabled=not enabled, on_click=tap
        ),
    )


def _row(i: int, p: Proposal, trailing: ft.Control) -> ft.Control:
    due = p.fields.get("due_date", "")
    return ft.Container(
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


def accept(work: Casework, nav: Any, proposal: Proposal) -> bool:
    """Turn a proposal into a record; tell the user either way."""
    try:
        work.accept(proposal)
    except forms.REFUSED as exc:
        nav.toast(f"Not added: {plain_error(exc)}")
        return False
    nav.toast(f"Added: {proposal.label}")
    return True
