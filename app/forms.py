"""Helpers every form shares: the "changed on another device" check, a confirm dialog, the
problems of a refused save by field, and a button that shows the work it started.

A form that edits a stored record remembers, when it opens, the record's clock (the HLC
stamp of each field's last write) for the fields it edits: ``base = base_clock(record,
names)``. A sync may bring a newer value of one of them while the form is open; saving
the form as it is would then silently write the old value back over it. So, before
saving, the form asks ``changed_elsewhere(store, record_id, base, names)``: the fields
another device wrote since, with their current values. When there are some, it shows
``stale_dialog``, which says so plainly and offers "Keep mine" (save over them, knowingly:
call ``base_clock`` again on the stored record, then save) or "Use theirs" (reload the
form from the stored record).

The base clock is a plain ``dict[str, str]``, so a form can keep it in its typed draft
(``app.drafts``) and the check still works after an auto-lock. Writes made on this device
(the form's own autosaves) never count as "elsewhere": their stamps carry this store's
node id.
"""

from __future__ import annotations

import contextlib
import inspect
from collections.abc import Awaitable, Callable, Collection, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import flet as ft

from app.errors import AppError
from app.labels import label
from app.messages import plain_error
from app.views import widgets as w
from sync.errors import InvalidRecord
from sync.hlc import node_of

OnConfirm = Callable[[], None] | Callable[[], Awaitable[None]]

# What a save may refuse with: the record's own problems (a date that is not a date) or the
# app's (the store is locked). A form shows them; anything else is a bug and is raised.
REFUSED = (InvalidRecord, AppError)


class Records(Protocol):
    """What the check needs of the store (``app.store.Store`` is one)."""

    @property
    def node_id(self) -> str:
        """This device's clock node."""

    def get(self, record_id: str, *, include_deleted: bool = False) -> dict[str, Any] | None:
        """A stored record, or None."""


class Dialogs(Protocol):
    """What the dialogs need of the page (``app.views.shell.Nav`` is one)."""

    def show_dialog(self, dialog: ft.DialogControl) -> None:
        """Open a dialog."""

    def close_dialog(self) -> None:
        """Close the open dialog."""


@dataclass(frozen=True)
class Changed:
    """A field another device wrote while the form was open, and its value now."""

    field: str
    value: Any


def base_clock(record: Mapping[str, Any] | None, field_names: Collection[str]) -> dict[str, str]:
    """The stamps of ``field_names`` in ``record`` (a new record: none), to remember at open."""
    clock = (record or {}).get("clock") or {}
    return {name: clock[name] for name in field_names if name in clock}


def changed_elsewhere(
    store: Records, record_id: str | None, base: Mapping[str, str], field_names: Collection[str]
) -> list[Changed]:
    """The fields of ``field_names`` another device changed since ``base``, with their
    current values (in ``field_names`` order; empty for a new or a missing record)."""
    record = store.get(record_id) if record_id else None
    if record is None:
        return []
    clock, fields = record.get("clock") or {}, record.get("fields") or {}
    found = []
    for name in field_names:
        stamp = clock.get(name)
        if stamp is None or stamp <= base.get(name, ""):
            continue  # unchanged (HLC strings sort as clocks do)
        if node_of(stamp) == store.node_id:
            continue  # written here, e.g. by this form's own autosave
        found.append(Changed(name, fields.get(name)))
    return found


def field_label(name: str) -> str:
    """A field's name as the liaison reads it ("consent_confirmed" -> "Consent confirmed")."""
    return name.replace("_", " ").capitalize()


def shown(value: Any) -> str:
    """A stored value as plain words ("(empty)", "yes", "Short-term contact")."""
    if value is None or value == "" or value == [] or value == {}:
        return "(empty)"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, list):
        return ", ".join(shown(v) for v in value)
    if isinstance(value, dict):
        return f"{len(value)} answers"
    if isinstance(value, str) and "_" in value and " " not in value:
        return label(value)
    return str(value)


def stale_text(changes: Collection[Changed], labels: Mapping[str, str] | None = None) -> str:
    """ "Summary was changed on another device to 'x' while you were editing." per field."""
    names = labels or {}
    return "\n".join(
        f"{names.get(c.field) or field_label(c.field)} was changed on another device to "
        f"'{shown(c.value)}' while you were editing."
        for c in changes
    )


def stale_dialog(
    nav: Dialogs,
    changes: Collection[Changed],
    keep_mine: Callable[[], None],
    use_theirs: Callable[[], None],
    *,
    labels: Mapping[str, str] | None = None,
) -> None:
    """Show what another device changed; "Keep mine" or "Use theirs" closes the dialog,
    then calls the matching function (keys ``stale-dialog``, ``stale-mine``,
    ``stale-theirs``)."""

    def pick(action: Callable[[], None]) -> Callable[[Any], None]:
        def handler(e: Any = None) -> None:
            nav.close_dialog()
            action()

        return handler

    nav.show_dialog(
        ft.AlertDialog(
            modal=True,
            key="stale-dialog",
            title=ft.Text("Changed on another device"),
            content=ft.Text(stale_text(changes, labels), key="stale-text"),
            actions=[
                w.text_button("Use theirs", pick(use_theirs), key="stale-theirs"),
                w.primary_button("Keep mine", pick(keep_mine), key="stale-mine"),
            ],
        )
    )


def confirm_dialog(
    nav: Dialogs,
    title: str,
    text: str,
    confirm: str,
    on_confirm: OnConfirm,
    cancel: str = "Cancel",
    danger: bool = False,
    *,
    key: str = "confirm",
) -> None:
    """Ask before doing ``on_confirm`` (sync or async; called after the dialog closes).

    Keys: ``<key>-dialog``, ``<key>-confirm`` and ``<key>-cancel``; ``danger`` draws the
    confirm button in the error colour (for deleting or erasing)."""

    if inspect.iscoroutinefunction(on_confirm):

        async def confirmed(e: Any = None) -> None:
            nav.close_dialog()
            await on_confirm()

        handler: Callable[[Any], Any] = confirmed
    else:

        def confirmed_now(e: Any = None) -> None:
            nav.close_dialog()
            on_confirm()

        handler = confirmed_now
    button = w.danger_button if danger else w.primary_button
    nav.show_dialog(
        ft.AlertDialog(
            modal=True,
            key=f"{key}-dialog",
            title=ft.Text(title),
            content=ft.Text(text, key=f"{key}-text"),
            actions=[
                w.text_button(cancel, lambda e: nav.close_dialog(), key=f"{key}-cancel"),
                button(confirm, handler, key=f"{key}-confirm"),
            ],
        )
    )


def save_unless_stale(
    store: Records,
    nav: Any,
    record_id: str | None,
    form: dict[str, Any],
    field_names: Collection[str],
    write: Callable[[], None],
    *,
    reopen: Callable[[], None],
    labels: Mapping[str, str] | None = None,
) -> None:
    """``write()`` the form, unless another device changed its fields since it opened
    (``form["base"]``): then ask. "Keep mine" takes the stored clock as the new base and
    writes; "Use theirs" calls ``reopen`` (drop the form's state so it opens from the record)
    and redraws."""
    changes = changed_elsewhere(store, record_id, form.get("base", {}), field_names)
    if not changes:
        write()
        return

    def keep_mine() -> None:
        form["base"] = base_clock(store.get(record_id) if record_id else None, field_names)
        write()

    def use_theirs() -> None:
        reopen()
        nav.refresh()

    stale_dialog(nav, changes, keep_mine, use_theirs, labels=labels)


def field_errors(exc: Exception, names: Mapping[str, str] | None = None) -> dict[str, str]:
    """A refused save's problems by field, as the form shows them under each field
    ("Discharge date is not a valid date"); a problem of the whole form is under ``"_"``."""
    if isinstance(exc, InvalidRecord):
        words = names or {}
        return {e.field: f"{words.get(e.field) or label(e.field)} {e.message}" for e in exc.errors}
    return {"_": plain_error(exc)}


class Updates(Protocol):
    """What ``busy`` needs of the page (``app.views.shell.Nav`` is one)."""

    def update(self) -> None:
        """Send changed controls to the screen now."""


@contextlib.contextmanager
def busy(nav: Updates, button: ft.Control, progress: ft.Control) -> Iterator[None]:
    """While the block runs (a PIN being checked, a sign-in), ``button`` is disabled, so a
    second tap cannot start the work twice, and ``progress`` shows; both are restored after,
    whatever happened."""
    button.disabled, progress.visible = True, True
    nav.update()
    try:
        yield
    finally:
        button.disabled, progress.visible = False, False
