"""AppState: routes, first run with a real Vault and Store, lock, auto-lock, sync, sign-out."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest

from app.errors import VaultLocked
from app.messages import plain_error
from app.session import FIRST_RUN, LOCKED, UNLOCKED
from app.state import AppState, SyncStatus, ago
from sync import errors as sync_errors
from tests.app.views_support import (
    PIN,
    FakeClock,
    FakeServer,
    enrolled,
    make_app,
    patient_record,
    run,
)


def test_plain_errors_are_sentences() -> None:
    assert "Can't reach" in plain_error(sync_errors.ServerUnavailable("x"))
    assert "https://" in plain_error(sync_errors.InsecureServerURL("x"))
    assert "Too many" in plain_error(sync_errors.ServerRefused(429, "throttled", "slow"))
    assert "expired" in plain_error(sync_errors.AuthExpired(401, "expired", "x"))
    assert "went wrong" in plain_error(RuntimeError("boom"))


def test_small_helpers() -> None:
    assert ago(100, 100) == "just now"
    assert ago(0, 7200) == "2 h ago"
    status = SyncStatus(pending=3, offline=True)
    assert status.label(0) == "Offline · 3 to sync"
    assert SyncStatus().label(0) == "Not synced yet"


def test_first_run_enrols_sets_pin_and_syncs(tmp_path) -> None:
    server = FakeServer([patient_record("Ada Example", 1), patient_record("Bo Sample", 2)])
    app = make_app(tmp_path, server)
    assert app.session.phase == FIRST_RUN
    topics: list[str] = []
    app.subscribe(topics.append)

    async def flow() -> None:
        assert not await app.session.enrol("http://127.0.0.1:9", "demo", "wrong")
        assert app.session.first_run.message == "Wrong username or password."
        assert await app.session.enrol("http://127.0.0.1:9", "demo", "pw")
        assert app.session.first_run.step == "pin"
        assert app.session.first_run.enrolment["token"] == "secret-token"
        assert not (tmp_path / "device" / "vault.json").exists()  # nothing on disk yet
        assert not await app.session.choose_pin("123456", "123456")  # too easy
        assert "pin" in app.session.first_run.errors
        assert not await app.session.choose_pin(PIN, "135790")
        assert "pin_again" in app.session.first_run.errors
        assert await app.session.choose_pin(PIN, PIN)
        assert app.session.phase == UNLOCKED and app.session.first_run.step == "sync"
        assert app.session.first_run.enrolment is None  # the token left memory for the store
        await app.syncing.sync_now()

    run(flow())
    assert app.store.get_meta("token") == "secret-token"
    assert app.store.get_meta("device_id") == server.device_id
    assert sorted(p["fields"]["name"] for p in app.store.list("patient")) == [
        "Ada Example",
        "Bo Sample",
    ]
    assert app.sync.last_success is not None and app.sync.error is None
    assert "phase" in topics and "sync" in topics
    # The token is encrypted: it appears nowhere in the data directory in clear.
    for path in (tmp_path / "device").rglob("*"):
        if path.is_file():
            assert b"secret-token" not in path.read_bytes()
            assert b"Ada Example" not in path.read_bytes()


def test_enrol_validation_and_unreachable_server(tmp_path) -> None:
    server = FakeServer()
    app = make_app(tmp_path, server)
    assert not run(app.session.enrol("", "", ""))
    assert set(app.session.first_run.errors) == {"server_url", "username", "password"}
    assert not run(app.session.enrol("http://example.org", "demo", "pw"))
    assert "https://" in app.session.first_run.errors["server_url"]
    server.offline = True
    assert not run(app.session.enrol("http://127.0.0.1:9", "demo", "pw"))
    assert "Can't reach the server" in (app.session.first_run.message or "")


def test_lock_unlock_wrong_pin_and_delay(tmp_path) -> None:
    clock = FakeClock()
    app = make_app(tmp_path, FakeServer(), clock)
    run(enrolled(app))
    app.session.lock()
    assert app.session.phase == LOCKED and app.store is None and not app.vault.is_unlocked
    with pytest.raises(VaultLocked):  # an action that outlived the session saves nothing
        app.casework.put("patient", {"name": "Late", "status": "active"})
    for _ in range(4):
        for digit in "999999":
            app.session.press_digit(digit)
        assert not run(app.session.unlock())
    assert app.session.unlock_state.attempts_left == 6
    assert "Wrong PIN" in (app.session.unlock_state.message or "")
    assert app.session.retry_in() == 30  # after the 4th wrong PIN, the next try waits
    assert not run(app.session.unlock(PIN))
    assert "Wait" in (app.session.unlock_state.message or "")
    clock.advance(31)
    assert app.session.retry_in() == 0
    assert run(app.session.unlock(PIN))
    assert app.session.phase == UNLOCKED and app.session.unlock_state.attempts_left == 10


def test_unlock_opens_the_store_off_the_event_loop(tmp_path) -> None:
    # At 100k records opening takes seconds: on the loop's thread the screen would freeze.
    app = make_app(tmp_path, FakeServer())
    run(enrolled(app))
    app.session.lock()
    opened_on: list[threading.Thread] = []
    real_open = app.services.open_store

    def open_store(*args: object) -> object:
        opened_on.append(threading.current_thread())
        return real_open(*args)

    app.services.open_store = open_store
    loop_thread: list[threading.Thread] = []

    async def unlock() -> bool:
        loop_thread.append(threading.current_thread())
        return await app.session.unlock(PIN)

    assert run(unlock()) and app.store is not None
    assert len(opened_on) == 1 and opened_on[0] is not loop_thread[0]


def test_wipe_after_the_limit_returns_to_first_run(tmp_path) -> None:
    clock = FakeClock()
    app = make_app(tmp_path, FakeServer(), clock, max_attempts=2)
    run(enrolled(app))
    app.session.lock()
    assert not run(app.session.unlock("999999"))
    assert not run(app.session.unlock("999999"))
    assert app.session.phase == FIRST_RUN
    assert "erased" in (app.session.notice or "")
    assert not (tmp_path / "device" / "vault.json").exists()


def test_auto_lock_on_idle(tmp_path) -> None:
    clock = FakeClock()
    app = make_app(tmp_path, FakeServer(), clock)
    run(enrolled(app))
    clock.advance(4 * 60)
    assert not app.session.check_idle()
    app.session.touch()
    clock.advance(4 * 60)
    assert not app.session.check_idle()
    clock.advance(61)
    assert app.session.check_idle() and app.session.phase == LOCKED
    run(app.session.unlock(PIN))
    app.session.set_auto_lock(1)
    clock.advance(60)
    assert app.session.check_idle()
    run(app.session.unlock(PIN))
    assert app.session.auto_lock_minutes == 1  # kept in the encrypted store
    with pytest.raises(ValueError):
        app.session.set_auto_lock(7)


def test_lock_forgets_session_state(tmp_path) -> None:
    app = make_app(tmp_path, FakeServer())
    run(enrolled(app))
    app.ui["caseload_query"] = "Ada"
    app.session.lock()
    assert app.ui == {} and app.store is None
    app.session.lock()  # twice is harmless


def test_add_patient_validates_and_counts_pending(tmp_path) -> None:
    app = make_app(tmp_path, FakeServer())
    run(enrolled(app))
    pid, problems = app.add_patient("", "")
    assert pid is None and "name" in problems
    pid, problems = app.add_patient("Cy Placeholder", "555-0101", "1940-02-29")
    assert problems == {} and pid
    record = app.store.get(pid)
    assert record["fields"]["team_id"] == "team-1"
    assert app.sync.pending == 1
    _, problems = app.add_patient("Dot", birth_date="29/02/1940")
    assert "birth_date" in problems


def test_sync_offline_then_rejected_and_conflicts(tmp_path) -> None:
    server = FakeServer()
    app = make_app(tmp_path, server)
    run(enrolled(app))
    app.add_patient("Eli Example")
    server.offline = True
    run(app.syncing.sync_now())
    assert app.sync.offline and "Can't reach" in (app.sync.error or "")
    assert app.sync.pending == 1
    server.offline = False
    server.reject_types = {"patient"}
    run(app.syncing.sync_now())
    assert not app.sync.offline and app.sync.pending == 0
    rejected = app.syncing.rejected()
    assert len(rejected) == 1 and rejected[0]["message"] == "name is too rude"
    app.syncing.discard_rejected(0)
    assert app.syncing.rejected() == []

    server.reject_types = set()
    pid, _ = app.add_patient("Fay Sample", "555-0000")
    server.conflict = {
        "field": "phone",
        "value": "555-0000",
        "lost_value": "555-9999",
        "lost_clock": f"{1_790_000_000_000:015d}-00000-other-device",
        "incoming_won": True,
        "user": "super",
    }
    run(app.syncing.sync_now())
    conflicts = app.syncing.conflicts()
    assert len(conflicts) == 1 and conflicts[0]["lost_value"] == "555-9999"
    app.syncing.resolve_conflict(0, use_other=True)
    assert app.store.get(pid)["fields"]["phone"] == "555-9999"
    assert app.syncing.conflicts() == [] and app.sync.pending == 1


def test_sign_out_warns_when_unsynced_then_erases(tmp_path) -> None:
    server = FakeServer()
    app = make_app(tmp_path, server)
    run(enrolled(app))
    app.add_patient("Gus Example")
    server.offline = True
    assert run(app.session.sign_out()) == 1  # nothing erased: the change could not be sent
    assert app.session.phase == UNLOCKED and app.store.pending_count() == 1
    server.offline = False
    assert run(app.session.sign_out()) == 0
    assert app.session.phase == FIRST_RUN and server.revoked == [server.device_id]
    assert not (tmp_path / "device" / "vault.json").exists()
    assert "signed out" in (app.session.notice or "")


def test_sign_out_force_erases_unsynced(tmp_path) -> None:
    server = FakeServer()
    app = make_app(tmp_path, server)
    run(enrolled(app))
    app.add_patient("Hal Example")
    server.offline = True
    assert run(app.session.sign_out(force=True)) == 0
    assert app.session.phase == FIRST_RUN


def test_change_pin(tmp_path) -> None:
    app = make_app(tmp_path, FakeServer())
    run(enrolled(app))
    assert "pin_again" in run(app.session.change_pin(PIN, "135792", "135793"))
    assert "pin_new" in run(app.session.change_pin(PIN, "111111", "111111"))
    assert "pin_old" in run(app.session.change_pin("999999", "135792", "135792"))
    assert run(app.session.change_pin(PIN, "135792", "135792")) == {}
    app.session.lock()
    assert run(app.session.unlock("135792"))


def test_locked_app_restarts_locked(tmp_path) -> None:
    server = FakeServer([patient_record("Ivy Example", 1)])
    app = make_app(tmp_path, server)
    run(enrolled(app))
    app.session.lock()
    again = make_app(tmp_path, server)
    assert again.session.phase == LOCKED
    assert run(again.session.unlock(PIN))
    assert [p["fields"]["name"] for p in again.store.list("patient")] == ["Ivy Example"]
    device = json.loads((tmp_path / "device" / "device.json").read_text())
    assert device == {"device_id": server.device_id}


def test_account_facts(tmp_path) -> None:
    app = make_app(tmp_path, FakeServer())
    assert AppState.account(app) == {}
    run(enrolled(app))
    info = app.account()
    assert info["username"] == "demo" and info["server_url"] == "http://127.0.0.1:9"
    assert app.teams() == [("team-1", "Demo team")]


def test_background_sync_while_unlocked_stops_on_lock(tmp_path) -> None:
    server = FakeServer([patient_record("Ada Example", 1)])
    app = make_app(tmp_path, server, auto_sync=True)

    async def until(condition) -> None:
        for _ in range(500):
            if condition():
                return
            await asyncio.sleep(0.01)
        raise AssertionError("timed out")

    async def flow() -> None:
        await app.session.enrol("http://127.0.0.1:9", "demo", "pw")
        await app.session.choose_pin(PIN, PIN)  # the scheduler syncs at once on unlock
        await until(lambda: app.sync.last_success is not None)
        assert [p["fields"]["name"] for p in app.store.list("patient")] == ["Ada Example"]
        app.add_patient("Bo Sample")
        app.syncing.start()  # "Sync now" goes through the scheduler
        await until(lambda: bool(server.pushed) and app.sync.pending == 0)
        app.session.lock()
        await asyncio.sleep(0.05)
        assert app.syncing.store is None
        pushed = len(server.pushed)
        app.syncing.start()  # locked: nothing runs
        await asyncio.sleep(0.05)
        assert len(server.pushed) == pushed

    run(flow())
