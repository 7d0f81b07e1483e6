"""app.main.App on a stand-in page: routing, view stacks, locking removes patient screens."""

from __future__ import annotations

import flet as ft
import pytest

from app.main import App, Windows, data_dir
from app.session import FIRST_RUN, LOCKED, UNLOCKED
from tests.app.views_support import (
    PIN,
    FakeClock,
    FakePage,
    FakeServer,
    enrolled,
    fill,
    find,
    make_app,
    run,
    texts,
)


def wire(app, route: str = "/") -> tuple[FakePage, App]:
    page = FakePage(route)
    shell = App(page, app)
    page.on_route_change = shell.on_route_change
    shell.render()
    return page, shell


@pytest.fixture
def clock():
    return FakeClock()


@pytest.fixture
def app(tmp_path, clock):
    return make_app(tmp_path, FakeServer(), clock)


def test_data_dir_order() -> None:
    assert str(data_dir({"LIAISON_DATA_DIR": "/a", "FLET_APP_STORAGE_DATA": "/b"})) == "/a"
    assert str(data_dir({"FLET_APP_STORAGE_DATA": "/b"})) == "/b"
    assert str(data_dir({})) == "var/device"


def test_first_run_until_enrolled_whatever_the_route(app) -> None:
    page, _ = wire(app, "/patient/x")
    assert app.session.phase == FIRST_RUN
    assert [v.route for v in page.views] == ["/first-run"]


def test_unlocked_routes_build_stacks(app) -> None:
    run(enrolled(app))
    ids = fill(app)
    page, shell = wire(app, "/")
    assert [v.route for v in page.views] == ["/today"]
    shell.go(f"/patient/{ids['ada']}")
    assert [v.route for v in page.views] == ["/caseload", f"/patient/{ids['ada']}"]
    assert find(page.views[-1], "patient-name").value == "Ada Example"
    shell.go("/nowhere")
    assert [v.route for v in page.views] == ["/today"]
    shell.go("/sync")
    assert [v.route for v in page.views] == ["/sync"]
    assert page.views[-1].navigation_bar.selected_index == 2
    shell.go(f"/patient/{ids['ada']}")
    shell.on_view_pop(None)
    assert page.route == "/caseload"


def test_every_route_of_the_table_builds(app) -> None:
    run(enrolled(app))
    ids = fill(app)
    page, shell = wire(app, "/")
    for route in (
        "/today",
        "/caseload",
        "/new-assessment",
        f"/patient/{ids['ada']}",
        "/sync",
        "/settings",
        f"/assess/{ids['ada']}",
        f"/visit/{ids['visit']}",
        f"/refer/{ids['ada']}",
        "/tasks",
        f"/tasks?patient_id={ids['ada']}",
        f"/transition/{ids['ada']}",
        "/round",
    ):
        shell.go(route)
        top = page.views[-1]
        assert (
            isinstance(top, ft.View) and top.route.partition("?")[0] == route.partition("?")[0]
        ), route


def test_lock_removes_every_patient_screen(app) -> None:
    run(enrolled(app))
    ids = fill(app)
    page, shell = wire(app, f"/patient/{ids['ada']}")
    assert "Ada Example" in texts(page.views[-1])
    shell.show_dialog(ft.AlertDialog(title=ft.Text("Ada Example")))
    app.session.lock()
    assert [v.route for v in page.views] == ["/unlock"]
    assert all("Ada Example" not in texts(v) for v in page.views)
    assert not any(d.open for d in page.dialogs)  # dialogs were closed too
    run(app.session.unlock(PIN))
    # Back where we were, rebuilt from the store.
    assert page.views[-1].route == f"/patient/{ids['ada']}"


def test_lock_button_in_the_app_bar(app) -> None:
    run(enrolled(app))
    page, _ = wire(app, "/today")
    find(page.views[-1], "lock-now").on_click(None)
    assert app.session.phase == LOCKED and page.views[-1].route == "/unlock"


def test_auto_lock_on_idle_and_background(app, clock) -> None:
    run(enrolled(app))
    page, shell = wire(app, "/today")
    clock.advance(5 * 60)
    assert app.session.check_idle()
    assert page.views[-1].route == "/unlock"
    run(app.session.unlock(PIN))
    assert app.session.phase == UNLOCKED
    shell.on_lifecycle(type("E", (), {"state": ft.AppLifecycleState.INACTIVE})())
    assert app.session.phase == UNLOCKED
    shell.on_lifecycle(type("E", (), {"state": ft.AppLifecycleState.HIDE})())
    assert app.session.phase == LOCKED and page.views[-1].route == "/unlock"


def test_pin_from_a_hardware_keyboard(app) -> None:
    run(enrolled(app))
    page, shell = wire(app, "/today")
    app.session.lock()

    async def type_pin() -> None:
        for key in [*PIN[:-1], "Numpad " + PIN[-1], "Enter"]:
            await shell.on_keyboard(type("E", (), {"key": key})())

    run(type_pin())
    assert app.session.phase == UNLOCKED and page.views[-1].route == "/today"


def test_a_save_updates_the_badge_without_rebuilding_a_form(app) -> None:
    run(enrolled(app))
    page, _ = wire(app, "/caseload")
    before = page.views[-1]
    app.add_patient("Cy Sample")  # a save: the badge shows the pending change
    assert page.views[-1] is before  # the search box keeps its focus and text
    assert find(before, "sync-badge").content == "1 to sync"


def test_today_and_sync_screens_follow_the_sync(app) -> None:
    run(enrolled(app))
    page, shell = wire(app, "/today")
    app.sync.running = True
    app.emit("sync")
    assert find(page.views[-1], "today-sync").title.value == "Syncing…"
    shell.go("/sync")
    app.sync.running = False
    app.emit("sync")
    assert find(page.views[-1], "sync-state").value == "Synced just now"


def test_no_rebuild_under_an_open_dialog(app) -> None:
    """Replacing the views under a dialog leaves Flutter's dialog route behind (seen in
    Chromium: the dialog stayed on screen after it was closed)."""
    run(enrolled(app))
    page, shell = wire(app, "/sync")
    before = page.views[-1]
    dialog = ft.AlertDialog(title=ft.Text("Sign in again"))
    shell.show_dialog(dialog)
    app.sync.running = True
    app.emit("sync")
    assert page.views[-1] is before  # only the badge changed
    assert find(before, "sync-badge").content == "Syncing…"
    page.auto_dismiss = False  # the dialog's closing animation runs on the client
    shell.close_dialog()
    app.emit("sync")
    shell.refresh()  # what a dialog's handler does after closing it
    assert page.views[-1] is before and not dialog.open  # not yet: its route is still there
    page.dismiss(dialog)  # the client reports it gone: the waiting render runs
    assert page.views[-1] is not before


def test_closing_the_session_locks_and_stops_the_timer(app) -> None:
    run(enrolled(app))
    page, shell = wire(app, "/today")
    shell.close()
    assert app.session.phase == LOCKED and shell.closed
    run(shell.tick())  # returns at once: the session is gone


def test_run_web_takes_host_and_port_from_args_or_env(monkeypatch) -> None:
    import app.main as main_module
    from app import web

    seen: list[dict] = []
    monkeypatch.setattr(web, "serve", lambda target, **kw: seen.append(kw))
    monkeypatch.setenv("FLET_SERVER_PORT", "18123")
    main_module.run_web()
    main_module.run_web("0.0.0.0", 9000)
    assert (seen[0]["host"], seen[0]["port"]) == ("127.0.0.1", 18123)
    assert (seen[1]["host"], seen[1]["port"]) == ("0.0.0.0", 9000)


# -- two windows (browser tabs) on one data directory ------------------------------------


def _window(windows, state, new_state, route="/"):
    page = FakePage(route)
    shell = App(page, state, windows=windows, new_state=new_state)
    page.on_route_change = shell.on_route_change
    shell.render()
    return page, shell


def _typed_pin(shell):
    async def type_pin() -> None:
        for key in [*PIN, "Enter"]:
            await shell.on_keyboard(type("E", (), {"key": key})())

    run(type_pin())


def test_a_second_window_takes_over_and_the_first_says_so(tmp_path, app) -> None:
    run(enrolled(app))
    server = FakeServer()
    windows = Windows()
    page_a, shell_a = _window(windows, app, lambda: make_app(tmp_path, server), "/today")
    assert app.session.phase == UNLOCKED
    page_b, shell_b = _window(windows, make_app(tmp_path, server), None)
    # The first window locked (its store closed) and shows a calm screen, no PIN pad.
    assert app.session.phase == LOCKED and app.store is None
    assert "Liaison is open in another window" in texts(page_a.views[-1])
    assert find(page_a.views[-1], "use-here").content == "Use Liaison here"
    assert [v.route for v in page_b.views] == ["/unlock"]
    run(shell_b.state.session.unlock(PIN))
    assert shell_b.state.session.phase == UNLOCKED
    _typed_pin(shell_a)  # a PIN typed on the first window's keyboard does nothing there
    assert shell_a.state.session.phase == LOCKED


def test_use_liaison_here_takes_the_store_back_without_opening_it_twice(tmp_path, app) -> None:
    run(enrolled(app))
    server = FakeServer()
    windows = Windows()
    page_a, shell_a = _window(windows, app, lambda: make_app(tmp_path, server), "/today")
    page_b, shell_b = _window(windows, make_app(tmp_path, server), None)
    other = shell_b.state
    run(other.session.unlock(PIN))
    find(page_a.views[-1], "use-here").on_click(None)
    assert other.session.phase == LOCKED and other.store is None  # the second window let go first
    assert "Liaison is open in another window" in texts(page_b.views[-1])
    assert [v.route for v in page_a.views] == ["/unlock"]
    assert run(shell_a.state.session.unlock(PIN))  # no "the store is already open"
    assert shell_a.state.session.phase == UNLOCKED and page_a.views[-1].route == "/today"
    assert shell_a.state.store.list("patient") is not None


def test_a_window_whose_session_ended_leaves_the_data_to_the_others(tmp_path, app) -> None:
    server = FakeServer()
    windows = Windows()
    page_a, shell_a = _window(windows, app, lambda: make_app(tmp_path, server))
    assert page_a.views[-1].route == "/first-run"
    _, shell_b = _window(windows, make_app(tmp_path, server), None)
    run(enrolled(shell_b.state))  # set up in the second window
    shell_b.close()  # then that tab was closed
    assert windows.current is None
    find(page_a.views[-1], "use-here").on_click(None)
    # the first window knows the PIN was chosen meanwhile
    assert windows.current is shell_a and page_a.views[-1].route == "/unlock"


def test_a_sync_on_today_keeps_its_buttons_under_the_finger(app) -> None:
    """A tap on "Office round" while a sync redraws Today was lost (seen in Chromium)."""
    run(enrolled(app))
    page, _ = wire(app, "/today")
    button = find(page.views[-1], "start-round")
    app.sync.running = True
    app.emit("sync")
    assert find(page.views[-1], "start-round") is button
    assert find(page.views[-1], "today-sync").title.value == "Syncing…"
    app.sync.running = False
    app.add_patient("Cy Sample")  # a save: Today shows the same rows, so it stays
    assert find(page.views[-1], "start-round") is button
