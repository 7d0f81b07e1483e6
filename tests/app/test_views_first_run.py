"""First-run and unlock screens, driven headlessly through their handlers."""

from __future__ import annotations

import flet as ft

from app.session import FIRST_RUN, LOCKED, UNLOCKED
from app.views import first_run, unlock
from tests.app.views_support import (
    PIN,
    FakeClock,
    FakeNav,
    FakeServer,
    absent,
    enrolled,
    find,
    make_app,
    patient_record,
    run,
    texts,
)


def test_first_run_flow_through_the_screens(tmp_path) -> None:
    server = FakeServer([patient_record("Ada Example", 1)])
    app = make_app(tmp_path, server)
    nav = FakeNav()
    view = first_run.build(app, nav)
    assert isinstance(view, ft.View)
    assert find(view, "server").value == "http://127.0.0.1:9"
    assert find(view, "password").password

    find(view, "username").value = "demo"
    find(view, "password").value = "nope"
    run(find(view, "sign-in").on_click(None))
    view = first_run.build(app, nav)
    assert "Wrong username or password." in texts(find(view, "error"))
    assert find(view, "password").value == ""  # the password is never kept

    find(view, "password").value = "pw"
    run(find(view, "sign-in").on_click(None))
    view = first_run.build(app, nav)
    assert app.session.first_run.step == "pin" and "Signed in as demo" in texts(view)

    find(view, "pin").value = "111111"
    find(view, "pin-again").value = "111111"
    run(find(view, "set-pin").on_click(None))
    view = first_run.build(app, nav)
    assert find(view, "pin").error and app.session.phase == FIRST_RUN

    async def set_pin_and_sync() -> None:
        v = first_run.build(app, nav)
        find(v, "pin").value = PIN
        find(v, "pin-again").value = PIN
        await find(v, "set-pin").on_click(None)
        assert app.session.phase == UNLOCKED
        shown = first_run.build(app, nav)  # the first sync runs in the background
        assert find(shown, "progress") is not None
        await app.syncing.task

    run(set_pin_and_sync())
    view = first_run.build(app, nav)
    assert "received 1" in texts(find(view, "summary"))
    find(view, "continue").on_click(None)
    assert app.session.first_run.step == "done"


def test_first_sync_offline_offers_continue_and_retry(tmp_path) -> None:
    server = FakeServer()
    app = make_app(tmp_path, server)

    async def flow() -> None:
        await app.session.enrol("http://127.0.0.1:9", "demo", "pw")
        server.offline = True
        await app.session.choose_pin(PIN, PIN)
        await app.syncing.sync_now()

    run(flow())
    view = first_run.build(app, FakeNav())
    assert "Can't reach" in texts(find(view, "error"))
    assert find(view, "retry") is not None
    find(view, "continue").on_click(None)
    assert app.session.phase == UNLOCKED and app.session.first_run.step == "done"


def test_first_run_shows_why_data_was_erased(tmp_path) -> None:
    app = make_app(tmp_path, FakeServer())
    app.session.notice = "Too many wrong PINs: erased."
    assert "Too many wrong PINs" in texts(find(first_run.build(app, FakeNav()), "notice"))


def test_unlock_pad_wrong_pin_delay_and_unlock(tmp_path) -> None:
    clock = FakeClock()
    app = make_app(tmp_path, FakeServer(), clock)
    run(enrolled(app))
    app.session.lock()
    nav = FakeNav()
    view = unlock.build(app, nav)
    assert "10 of 10 attempts left" in texts(find(view, "attempts"))
    assert "erases its data" in texts(find(view, "attempts"))  # explained before it happens
    assert "Ada" not in texts(view)
    for _ in range(4):
        view = unlock.build(app, nav)
        for digit in "999999":
            find(view, f"pin-{digit}").on_click(None)
        assert find(view, "dots").value == "• • • • • •"
        run(find(view, "pin-unlock").on_click(None))
    view = unlock.build(app, nav)
    assert "Wrong PIN. 6 attempts left." in texts(find(view, "message"))
    assert "Wait 30 s" in texts(find(view, "wait"))
    assert find(view, "pin-1").disabled  # the pad is off during the delay
    clock.advance(30)
    view = unlock.build(app, nav)
    assert absent(view, "wait") and not find(view, "pin-1").disabled
    for digit in PIN + "7":
        find(view, f"pin-{digit}").on_click(None)
    find(view, "pin-delete").on_click(None)
    run(find(view, "pin-unlock").on_click(None))
    assert app.session.phase == UNLOCKED


def test_unlock_warns_when_few_attempts_left(tmp_path) -> None:
    app = make_app(tmp_path, FakeServer(), FakeClock(), max_attempts=3)
    run(enrolled(app))
    app.session.lock()
    run(app.session.unlock("999999"))
    view = unlock.build(app, FakeNav())
    assert "2 of 3 attempts left" in texts(find(view, "attempts"))


def test_forgot_pin_erases_after_confirmation(tmp_path) -> None:
    app = make_app(tmp_path, FakeServer())
    run(enrolled(app))
    app.session.lock()
    nav = FakeNav()
    find(unlock.build(app, nav), "forgot").on_click(None)
    dialog = nav.dialogs[-1]
    find(dialog, "forget-cancel").on_click(None)
    assert app.session.phase == LOCKED and not nav.dialogs
    find(unlock.build(app, nav), "forgot").on_click(None)
    find(nav.dialogs[-1], "forget-confirm").on_click(None)
    assert app.session.phase == FIRST_RUN
