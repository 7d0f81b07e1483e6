"""The "changed on another device" check and the shared dialogs (app/forms.py)."""

from __future__ import annotations

from typing import Any

import flet as ft
import pytest

from app import forms
from app.state import AppState
from app.views import widgets as w
from tests.app.views_support import FakeNav


def _pulled(app: AppState, record: dict[str, Any], **fields: Any) -> None:
    """A sync brings ``fields`` of ``record``, written later on another device."""
    stamp = f"{9_999_999_999_999:015d}-00000-other-device"
    clock = {**record["clock"], **dict.fromkeys(fields, stamp)}
    incoming = {**record, "fields": {**record["fields"], **fields}, "clock": clock, "rev": 7}
    app.store.apply_pull([incoming], [], 7)


def _patient(app: AppState) -> dict[str, Any]:
    return app.store.put("patient", {"name": "Ada Lovelace", "team_id": "team-1"})


def test_nothing_changed_since_the_form_opened(app: AppState) -> None:
    record = _patient(app)
    base = forms.base_clock(record, ["name"])
    assert forms.changed_elsewhere(app.store, record["id"], base, ["name"]) == []


def test_a_pulled_newer_value_is_reported_with_its_current_value(app: AppState) -> None:
    record = _patient(app)
    base = forms.base_clock(record, ["name", "phone"])
    _pulled(app, record, name="Ada King")
    found = forms.changed_elsewhere(app.store, record["id"], base, ["name", "phone"])
    assert found == [forms.Changed("name", "Ada King")]


def test_fields_the_form_does_not_edit_are_not_reported(app: AppState) -> None:
    record = _patient(app)
    base = forms.base_clock(record, ["phone"])
    _pulled(app, record, name="Ada King")
    assert forms.changed_elsewhere(app.store, record["id"], base, ["phone"]) == []


def test_writes_made_on_this_device_do_not_count(app: AppState) -> None:
    record = _patient(app)
    base = forms.base_clock(record, ["name"])
    app.store.put("patient", {"name": "Ada B."}, record["id"])  # e.g. the form's own autosave
    assert forms.changed_elsewhere(app.store, record["id"], base, ["name"]) == []


def test_a_new_or_missing_record_has_nothing_changed(app: AppState) -> None:
    assert forms.changed_elsewhere(app.store, None, {}, ["name"]) == []
    missing = "00000000-0000-4000-8000-000000000000"
    assert forms.changed_elsewhere(app.store, missing, {}, ["name"]) == []
    assert forms.base_clock(None, ["name"]) == {}


def test_the_stale_text_names_the_field_and_the_value() -> None:
    text = forms.stale_text([forms.Changed("summary", "Lives alone")], {"summary": "Summary"})
    assert text == (
        "Summary was changed on another device to 'Lives alone' while you were editing."
    )
    assert "'Short-term contact'" in forms.stale_text(
        [forms.Changed("triage", "short_term_contact")]
    )
    assert "'(empty)'" in forms.stale_text([forms.Changed("phone", None)])


def test_stale_dialog_keep_mine_and_use_theirs() -> None:
    nav, picked = FakeNav(), []
    changes = [forms.Changed("name", "Ada King")]
    forms.stale_dialog(nav, changes, lambda: picked.append("mine"), lambda: picked.append("theirs"))
    dialog = nav.dialogs[-1]
    assert "Name was changed on another device to 'Ada King'" in w.find(dialog, "stale-text").value
    w.find(dialog, "stale-mine").on_click(None)
    assert picked == ["mine"] and nav.dialogs == []
    forms.stale_dialog(nav, changes, lambda: picked.append("mine"), lambda: picked.append("theirs"))
    w.find(nav.dialogs[-1], "stale-theirs").on_click(None)
    assert picked == ["mine", "theirs"] and nav.dialogs == []


def test_confirm_dialog_confirms_or_cancels() -> None:
    nav, done = FakeNav(), []
    forms.confirm_dialog(nav, "Delete?", "It goes.", "Delete", lambda: done.append(1), danger=True)
    dialog = nav.dialogs[-1]
    assert dialog.modal and dialog.title.value == "Delete?"
    w.find(dialog, "confirm-cancel").on_click(None)
    assert done == [] and nav.dialogs == []
    forms.confirm_dialog(nav, "Delete?", "It goes.", "Delete", lambda: done.append(1), key="x")
    assert w.find(nav.dialogs[-1], "x-confirm").content == "Delete"
    w.find(nav.dialogs[-1], "x-confirm").on_click(None)
    assert done == [1] and nav.dialogs == []


def test_confirm_dialog_awaits_an_async_action() -> None:
    import asyncio

    nav, done = FakeNav(), []

    async def act() -> None:
        done.append(1)

    forms.confirm_dialog(nav, "Sign out?", "Erases.", "Sign out", act)
    asyncio.run(w.find(nav.dialogs[-1], "confirm-confirm").on_click(None))
    assert done == [1] and nav.dialogs == []


def test_busy_disables_the_button_and_shows_progress_until_the_work_ends() -> None:
    class Page:
        updates = 0

        def update(self) -> None:
            self.updates += 1

    page, button, bar = Page(), ft.Button("Sign in"), ft.ProgressBar(visible=False)
    with pytest.raises(RuntimeError), forms.busy(page, button, bar):
        assert button.disabled and bar.visible and page.updates == 1  # shown before the work
        raise RuntimeError("the work failed")
    assert not button.disabled and not bar.visible  # restored whatever happened


def test_field_errors_name_each_field_and_the_whole_form() -> None:
    from app.errors import StoreClosed
    from sync.errors import FieldError, InvalidRecord

    refused = InvalidRecord([FieldError("discharge_date", "is not a date")])
    assert forms.field_errors(refused, {"discharge_date": "Discharge date"}) == {
        "discharge_date": "Discharge date is not a date"
    }
    assert forms.field_errors(refused)["discharge_date"].startswith("Discharge date")
    assert forms.field_errors(StoreClosed("closed")) == {"_": "closed"}
