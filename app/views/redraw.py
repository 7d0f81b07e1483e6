"""Bring a screen on show up to date with a freshly built copy, keeping its controls.

Today and Sync are redrawn while a sync runs (several times a second) and after every save.
Replacing their controls swaps every button for a new one on the phone, and a tap landing
during the swap is lost: the liaison taps "Office round" and nothing happens. Usually only
the sync line has changed, so ``adopt`` changes just that line on the controls already shown,
and reports when the screen changed shape (a row came or went) and must be replaced.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import flet as ft

from app.views import widgets as w

# Controls whose words follow the sync while the rest of the screen stays: their parts
# are copied onto the shown control, which a finger may be on.
LIVE = frozenset({"today-sync"})
LIVE_PARTS = ("title", "subtitle", "leading")

# What a control shows or does, besides its children: two controls that agree on these
# (and on their type and key) look and act the same.
LOOKS = (
    "key",
    "value",
    "text",
    "content",
    "label",
    "tooltip",
    "icon",
    "disabled",
    "visible",
    "selected",
    "error",
    "hint_text",
    "semantics_label",
)


def adopt(shown: Sequence[ft.BaseControl], fresh: Sequence[ft.BaseControl]) -> bool:
    """Update ``shown`` in place from ``fresh`` when they differ only in the live controls
    (or not at all), and say so; False: the screen changed shape, replace ``shown``."""
    if _shape(shown) != _shape(fresh):
        return False
    live_shown = {c.key: c for c in _controls(shown) if getattr(c, "key", None) in LIVE}
    for control in _controls(fresh):
        key = getattr(control, "key", None)
        if key in live_shown:
            for part in LIVE_PARTS:
                setattr(live_shown[key], part, getattr(control, part, None))
    return True


def _controls(roots: Sequence[ft.BaseControl]) -> Iterator[Any]:
    for root in roots:
        yield from w.walk(root)


def _shape(roots: Sequence[ft.BaseControl]) -> list[tuple[Any, ...]]:
    """Every control's type and looks, in order, the live ones' insides left out."""
    out: list[tuple[Any, ...]] = []
    skipped: set[int] = set()
    for control in _controls(roots):
        if id(control) in skipped:
            continue
        if getattr(control, "key", None) in LIVE:
            for part in LIVE_PARTS:
                skipped.update(id(c) for c in w.walk(getattr(control, part, None)))
        out.append((type(control).__name__, *(_look(control, name) for name in LOOKS)))
    return out


def _look(control: Any, name: str) -> Any:
    value = getattr(control, name, None)
    # A control in a property (a button's content) is compared as a child, not by identity.
    return None if isinstance(value, ft.BaseControl) else value
