"""Sync and settings screens: progress, errors, conflicts, refused changes, PIN, sign-out."""

from __future__ import annotations

import pytest

from app.session import FIRST_RUN, LOCKED
from app.views import settings
from app.views import sync as sync_view
from tests.app.views_support import (
    PIN,
    FakeNav,
    FakeServer,
    absent,
    enrolled,
    find,
    make_app,
    run,
    texts,
)

OTHER_CLOCK = f"{1_790_000_000_000:015d}-00000-5f0c-device"


@pytest.fixture
def server():
    return FakeServer()


@pytest.fixture
def app(tmp_path, server):
    return run(enrolled(make_app(tmp_path, server)))


def test_sync_screen_empty(app) -> None:
    view = sync_view.build(app, FakeNav())
    assert find(view, "sync-state").value == "Synced just now"
    assert find(view, "pending").value == "0"
    assert find(view, "conflicts-none") is not None
    assert find(view, "rejected-none") is not None
    assert absent(view, "progress") and absent(view, "sync-error")


def test_sync_screen_progress_while_running(app) -> None:
    app.sync.running, app.sync.progress, app.sync.stage = True, 0.25, "Sending changes: 1 of 2"
    view = sync_view.build(app, FakeNav())
    assert find(view, "progress").value == 0.25
    assert find(view, "stage").value == "Sending changes: 1 of 2"
    assert find(view, "sync-now").disabled


def test_sync_now_offline_shows_plain_words(app, server) -> None:
    app.add_patient("Ada Example")
    server.offline = True
    nav = FakeNav()

    async def press() -> None:
        find(sync_view.build(app, nav), "sync-now").on_click(None)
        await app.syncing.task

    run(press())
    view = sync_view.build(app, nav)
    assert "Can't reach the server" in texts(find(view, "sync-error"))
    assert find(view, "sync-state").value == "Offline · 1 to sync"
    assert find(view, "pending").value == "1"


def test_conflicts_show_both_values_who_and_when(app, server) -> None:
    pid, _ = app.add_patient("Ada Example", "555-0000")
    server.conflict = {
        "field": "phone",
        "value": "555-0000",
        "lost_value": "555-9999",
        "lost_clock": OTHER_CLOCK,
        "incoming_won": True,
        "user": "super",
    }
    run(app.syncing.sync_now())
    nav = FakeNav()
    view = sync_view.build(app, nav)
    card = texts(find(view, "conflict-0"))
    assert "Patient · Phone — Ada Example" in card
    assert "555-0000" in card and "555-9999" in card
    assert "by super at" in card and "2026" in card
    find(view, "keep-0").on_click(None)
    assert app.syncing.conflicts() == [] and nav.toasts == ["Kept."]
    assert app.store.get(pid)["fields"]["phone"] == "555-0000"


def test_conflict_use_other_value(app, server) -> None:
    pid, _ = app.add_patient("Ada Example", "555-0000")
    server.conflict = {
        "field": "phone",
        "value": "555-0000",
        "lost_value": "555-9999",
        "lost_clock": OTHER_CLOCK,
        "incoming_won": True,
    }
    run(app.syncing.sync_now())
    view = sync_view.build(app, FakeNav())
    assert "by device 5f0c-dev" in texts(find(view, "conflict-0"))
    find(view, "replace-0").on_click(None)
    assert app.store.get(pid)["fields"]["phone"] == "555-9999"
    assert app.sync.pending == 1


def test_rejected_fix_and_discard(app, server) -> None:
    pid, _ = app.add_patient("Ada Example")
    server.reject_types = {"patient"}
    run(app.syncing.sync_now())
    nav = FakeNav()
    view = sync_view.build(app, nav)
    card = find(view, "rejected-0")
    assert "Patient — Ada Example" in texts(card) and "Name: name is too rude" in texts(card)
    assert "Name: Ada Example" in texts(card)  # what was sent, to type in again
    assert app.store.get(pid) is None  # the engine took the refused new record out
    assert absent(view, "fix-0")  # nothing left here to fix
    find(view, "discard-0").on_click(None)
    find(nav.dialogs[-1], "discard-confirm").on_click(None)
    assert app.syncing.rejected() == []
    assert find(sync_view.build(app, nav), "rejected-none") is not None


def test_fix_opens_the_record_when_it_is_still_here(app, server) -> None:
    pid, _ = app.add_patient("Ada Example")
    run(app.syncing.sync_now())
    server.reject_types = {"patient"}
    app.store.put("patient", {"phone": "555-0000"}, record_id=pid)
    run(app.syncing.sync_now())
    nav = FakeNav()
    find(sync_view.build(app, nav), "fix-0").on_click(None)
    assert nav.went == [f"/patient/{pid}"]


def test_fix_routes_per_type(app) -> None:
    pid, _ = app.add_patient("Bo Sample")
    records = {
        "visit": {"patient_id": pid},
        "referral": {"patient_id": pid},
        "transition": {"patient_id": pid},
        "task": {"patient_id": pid, "title": "Call"},
        "round": {"date": "2026-01-01"},
    }
    ids = {kind: app.store.put(kind, fields)["id"] for kind, fields in records.items()}
    expected = {
        "visit": f"/visit/{ids['visit']}",
        "referral": f"/refer/{pid}?referral_id={ids['referral']}",
        "transition": f"/transition/{pid}?transition_id={ids['transition']}",
        "task": f"/tasks?patient_id={pid}",
        "round": f"/round/{ids['round']}",  # the saved round itself, not a blank new one
    }
    for kind, route in expected.items():
        item = {"mutation": {"record_id": ids[kind], "type": kind, "fields": records[kind]}}
        assert sync_view.fix_route(app, item) == route
    gone = {
        "mutation": {
            "record_id": "00000000-0000-4000-8000-000000000009",
            "type": "task",
            "fields": {"patient_id": pid},
        }
    }
    assert sync_view.fix_route(app, gone) == f"/patient/{pid}"


def test_settings_renders_account_and_locks(app) -> None:
    view = settings.build(app, FakeNav())
    assert find(view, "server-url").value == "http://127.0.0.1:9"
    assert find(view, "user").value == "demo (liaison)"
    assert find(view, "teams").value == "Demo team"
    assert find(view, "device-id").value == app.store.get_meta("device_id")
    assert find(view, "auto-lock").value == "5"
    find(view, "settings-lock").on_click(None)
    assert app.session.phase == LOCKED


def test_settings_shows_the_installed_version(app) -> None:
    # The package metadata's version (on a phone: the packaged liaison.egg-info, which
    # `make phone-check` proves equal to pyproject.toml's).
    from importlib import metadata

    shown = find(settings.build(app, FakeNav()), "version").value
    assert shown == metadata.version("liaison") and shown != "unknown"


def test_settings_auto_lock_choice(app) -> None:
    nav = FakeNav()
    dropdown = find(settings.build(app, nav), "auto-lock")
    dropdown.value = "15"
    dropdown.on_select(type("E", (), {"control": dropdown})())
    assert app.session.auto_lock_minutes == 15 and "15 minutes" in nav.toasts[-1]


def test_settings_change_pin(app) -> None:
    nav = FakeNav()
    view = settings.build(app, nav)
    find(view, "pin-old").value = "999999"
    find(view, "pin-new").value = find(view, "pin-new-again").value = "135792"
    run(find(view, "change-pin").on_click(None))
    assert "Wrong PIN" in find(view, "pin-old").error
    find(view, "pin-old").value = PIN
    run(find(view, "change-pin").on_click(None))
    assert find(view, "pin-old").error is None and nav.toasts == ["PIN changed."]
    app.session.lock()
    assert run(app.session.unlock("135792"))


def test_sign_out_warns_when_unsynced_then_erases(app, server) -> None:
    app.add_patient("Ada Example")
    server.offline = True
    nav = FakeNav()
    find(settings.build(app, nav), "sign-out").on_click(None)
    run(find(nav.dialogs[-1], "sign-out-confirm").on_click(None))
    warning = nav.dialogs[-1]
    assert warning.key == "unsynced-dialog"
    assert "1 change could not be sent" in texts(warning)
    find(warning, "keep").on_click(None)
    assert app.session.phase != FIRST_RUN and not nav.dialogs
    find(settings.build(app, nav), "sign-out").on_click(None)
    run(find(nav.dialogs[-1], "sign-out-confirm").on_click(None))
    run(find(nav.dialogs[-1], "erase-anyway").on_click(None))
    assert app.session.phase == FIRST_RUN


def test_sign_out_with_an_expired_sign_in_says_how_to_send_first(app, server) -> None:
    app.add_patient("Ada Example")
    app.store.set_meta("token", "expired-token")  # the server no longer knows it
    nav = FakeNav()
    find(settings.build(app, nav), "sign-out").on_click(None)
    run(find(nav.dialogs[-1], "sign-out-confirm").on_click(None))
    assert app.sync.sign_in_required
    warning = nav.dialogs[-1]
    assert "sign in again on the Sync screen" in find(warning, "unsynced-text").value
    find(warning, "keep").on_click(None)
    assert app.session.phase != FIRST_RUN and app.sync.pending == 1


def test_sign_out_when_synced_erases_at_once(app, server) -> None:
    nav = FakeNav()
    find(settings.build(app, nav), "sign-out").on_click(None)
    run(find(nav.dialogs[-1], "sign-out-confirm").on_click(None))
    assert app.session.phase == FIRST_RUN and server.revoked == [server.device_id]


def test_a_conflict_with_this_phones_own_value_says_so(app, server) -> None:
    app.add_patient("Ada Example", "555-0000")
    server.conflict = {
        "field": "phone",
        "value": "555-0000",
        "lost_value": "555-1111",
        "lost_clock": f"{1_790_000_000_000:015d}-00000-{server.device_id}",
        "incoming_won": True,
    }
    run(app.syncing.sync_now())
    card = texts(find(sync_view.build(app, FakeNav()), "conflict-0"))
    assert "by you, on this phone" in card


# -- a conflict resolved on another device (two devices on one FakeServer) -------------


def _both_list_a_conflict(tmp_path, app, server):
    """Device A pushes a phone the server kept while another value lost; device B lists
    the same conflict (as the server reports it to every device concerned)."""
    pid, _ = app.add_patient("Ada Example", "555-0000")
    server.conflict = {
        "field": "phone",
        "value": "555-0000",
        "lost_value": "555-9999",
        "lost_clock": OTHER_CLOCK,
        "incoming_won": True,
    }
    run(app.syncing.sync_now())
    server.device_id = "b0000000-0000-4000-8000-00000000000b"  # a second device enrols
    other = run(enrolled(make_app(tmp_path / "b", server)))
    other.store.set_meta("conflicts", app.syncing.conflicts())
    return pid, other


def test_a_conflict_resolved_on_another_device_leaves_this_ones_list(tmp_path, app, server):
    pid, other = _both_list_a_conflict(tmp_path, app, server)
    assert "555-0000" in texts(find(sync_view.build(other, FakeNav()), "conflict-0"))
    find(sync_view.build(app, FakeNav()), "replace-0").on_click(None)  # "Use other value"
    run(app.syncing.sync_now())
    run(other.syncing.sync_now())
    assert other.store.get(pid)["fields"]["phone"] == "555-9999"
    assert other.syncing.conflicts() == []
    assert find(sync_view.build(other, FakeNav()), "conflicts-none") is not None


def test_a_conflict_shows_the_records_current_value_after_it_moved_on(tmp_path, app, server):
    pid, other = _both_list_a_conflict(tmp_path, app, server)
    app.store.put("patient", {"phone": "555-1234"}, pid)  # typed anew on device A
    run(app.syncing.sync_now())
    run(other.syncing.sync_now())
    (note,) = other.syncing.conflicts()
    assert note["value"] == "555-1234"
    card = texts(find(sync_view.build(other, FakeNav()), "conflict-0"))
    assert "555-1234" in card and "555-0000" not in card and "555-9999" in card


def test_a_conflict_whose_record_is_gone_leaves_the_list(tmp_path, app, server):
    pid, other = _both_list_a_conflict(tmp_path, app, server)
    app.store.delete(pid)
    run(app.syncing.sync_now())
    run(other.syncing.sync_now())
    assert other.syncing.conflicts() == []


def test_a_conflict_is_resolved_by_what_it_is_not_by_its_place(app, server) -> None:
    app.add_patient("Ada Example", "555-0000")
    server.conflict = {
        "field": "phone",
        "value": "555-0000",
        "lost_value": "555-9999",
        "lost_clock": OTHER_CLOCK,
        "incoming_won": True,
    }
    run(app.syncing.sync_now())
    view = sync_view.build(app, FakeNav())  # then a sync empties the list meanwhile
    app.store.set_meta("conflicts", [])
    find(view, "replace-0").on_click(None)
    assert app.sync.pending == 0  # nothing written from a stale list


def test_a_conflict_card_shows_a_value_typed_here_since(app, server) -> None:
    pid, _ = app.add_patient("Ada Example", "555-0000")
    server.conflict = {
        "field": "phone",
        "value": "555-0000",
        "lost_value": "555-9999",
        "lost_clock": OTHER_CLOCK,
        "incoming_won": True,
    }
    run(app.syncing.sync_now())
    app.store.put("patient", {"phone": "555-4321"}, pid)  # no sync since
    card = texts(find(sync_view.build(app, FakeNav()), "conflict-0"))
    assert "555-4321" in card and "555-0000" not in card
