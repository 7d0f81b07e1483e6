"""Phone behaviour of the whole app, headless: the system back gesture pops one screen and
never drops typed input without asking, notches and the soft keyboard, the privacy cover
for the app switcher, and a refused camera permission.

The back gesture is driven the way Flet 1.0.5's client drives it: every view is
``can_pop=False``, so the client sends ``confirm_pop`` for the view on top (a dialog on
top is closed by Flutter itself, which reports it with ``dismiss``) and waits for
``View.confirm_pop``; ``view_pop`` comes only after a pop the client made itself.
"""

from __future__ import annotations

import types
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import flet as ft
import pytest

from app.main import App
from app.session import LOCKED, UNLOCKED
from app.views import caseload, photos, shell
from app.views import widgets as w
from tests.app.views_support import (
    FakeClock,
    FakeNav,
    FakePage,
    FakeServer,
    absent,
    enrolled,
    fill,
    find,
    make_app,
    run,
    texts,
)


@pytest.fixture
def app(tmp_path: Path) -> Any:
    app = run(enrolled(make_app(tmp_path, FakeServer(), FakeClock())))
    yield app
    if app.store is not None:
        app.store.close()


class Phone:
    """The app on a stand-in page, with the client's side of the back gesture."""

    def __init__(self, app: Any, route: str, platform: ft.PagePlatform | None = None) -> None:
        self.page = FakePage(route)
        self.page.platform = platform or ft.PagePlatform.ANDROID
        self.shell = App(self.page, app)
        self.page.on_route_change = self.shell.on_route_change
        self.answers: list[tuple[str, bool]] = []  # (route, should_pop) sent to the client
        self.shell._answer_pop = lambda view, ok: self.answers.append((view.route, ok))
        self.shell.render()

    @property
    def routes(self) -> list[str]:
        return [v.route for v in self.page.views]

    @property
    def top(self) -> Any:
        return self.page.views[-1]

    def back(self) -> None:
        """The system back gesture with no dialog open: the top view's on_confirm_pop."""
        view = self.top
        assert view.can_pop is False and view.on_confirm_pop is not None
        view.on_confirm_pop(SimpleNamespace(control=view))

    def dialog(self) -> Any:
        """The open dialog on top."""
        open_ = [d for d in self.page.dialogs if d.open and not isinstance(d, ft.SnackBar)]
        assert open_, "no dialog is open"
        return open_[-1]

    def press(self, key: str) -> None:
        find(self.dialog(), key).on_click(None)

    def back_on_dialog(self) -> None:
        """The system back gesture with a dialog open: Flutter closes it, reports dismiss."""
        dialog = self.dialog()
        dialog.open = False
        self.page.dismiss(dialog)


def no_dialog(phone: Phone) -> bool:
    return not any(d.open for d in phone.page.dialogs if not isinstance(d, ft.SnackBar))


def set_value(root: Any, key: str, value: Any) -> None:
    """Type or pick ``value`` into the control with ``key``, as its handler sees it."""
    control = find(root, key)
    control.value = value
    handler = getattr(control, "on_select", None) or control.on_change
    handler(SimpleNamespace(control=control))


# -- back pops exactly one screen ---------------------------------------------------------


def test_system_back_pops_one_screen_at_a_time_then_closes_the_app(app: Any) -> None:
    ids = fill(app)
    phone = Phone(app, f"/tasks?patient_id={ids['cy']}")
    phone.shell.go(f"/patient/{ids['cy']}")
    phone.shell.go(f"/transition/{ids['cy']}")
    assert phone.routes == ["/caseload", f"/patient/{ids['cy']}", f"/transition/{ids['cy']}"]
    assert all(v.can_pop is False for v in phone.page.views)  # the client never pops alone
    phone.back()
    assert phone.routes == ["/caseload", f"/patient/{ids['cy']}"]
    assert phone.answers == [(f"/transition/{ids['cy']}", False)]
    phone.back()
    assert phone.routes == ["/caseload"]
    phone.back()  # the last screen: the client may close the app
    assert phone.routes == ["/caseload"] and phone.answers[-1] == ("/caseload", True)
    assert no_dialog(phone)


def test_a_late_or_repeated_view_pop_pops_nothing_more(app: Any) -> None:
    ids = fill(app)
    phone = Phone(app, f"/refer/{ids['ada']}")
    assert phone.routes == ["/caseload", f"/patient/{ids['ada']}", f"/refer/{ids['ada']}"]
    popped = SimpleNamespace(route=f"/refer/{ids['ada']}")
    phone.shell.on_view_pop(popped)
    assert phone.routes == ["/caseload", f"/patient/{ids['ada']}"]
    phone.shell.on_view_pop(popped)  # the same event again: already handled
    assert phone.routes == ["/caseload", f"/patient/{ids['ada']}"]


def test_a_question_for_a_view_no_longer_on_top_is_refused(app: Any) -> None:
    ids = fill(app)
    phone = Phone(app, f"/patient/{ids['ada']}")
    below = phone.page.views[0]
    below.on_confirm_pop(SimpleNamespace(control=below))
    assert phone.routes == ["/caseload", f"/patient/{ids['ada']}"]
    assert phone.answers == [("/caseload", False)]


def test_a_sync_redraws_today_under_the_same_tabs(app: Any) -> None:
    """A tap on the tabs while syncs redraw Today must reach live controls: the redraw
    keeps the view, its app bar and its tabs, and replaces the body."""
    phone = Phone(app, "/today")
    view, tabs, bar = phone.top, phone.top.navigation_bar, phone.top.appbar
    app.sync.running = True
    app.emit("sync")
    assert phone.top is view and view.navigation_bar is tabs and view.appbar is bar
    assert find(view, "today-sync").title.value == "Syncing…"
    assert find(view, "sync-badge").content == "Syncing…"
    tabs.selected_index = 1
    tabs.on_change(SimpleNamespace(control=tabs))  # the tap arrives
    assert phone.routes == ["/caseload"]


# -- typed input is kept or asked about --------------------------------------------------


def test_back_from_a_half_typed_referral_asks_and_keeps_editing(app: Any) -> None:
    ids = fill(app)
    route = f"/refer/{ids['ada']}"
    phone = Phone(app, route)
    set_value(phone.top, "to-name", "Meals on Wheels")
    set_value(phone.top, "notes", "Needs a hot meal daily")
    phone.back()
    assert phone.routes[-1] == route and phone.dialog().key == "leave-dialog"
    phone.press("leave-keep")
    assert phone.routes[-1] == route and no_dialog(phone)
    phone.shell.refresh()  # rebuilt from state: what was typed is still there
    assert find(phone.top, "to-name").value == "Meals on Wheels"
    assert find(phone.top, "notes").value == "Needs a hot meal daily"
    phone.back()
    phone.back()  # a second gesture before the question shows: one question
    assert len([d for d in phone.page.dialogs if d.key == "leave-dialog" and d.open]) == 1
    phone.back_on_dialog()  # Back on the question: keep editing too
    assert phone.routes[-1] == route and no_dialog(phone)
    phone.back()
    phone.press("leave-discard")
    assert phone.routes[-1] == f"/patient/{ids['ada']}"
    assert not any(k.startswith("referral:") for k in app.ui)
    assert len(app.store.list("referral")) == 1  # only fill()'s: nothing was saved


def test_an_unchanged_form_is_left_without_a_question(app: Any) -> None:
    ids = fill(app)
    phone = Phone(app, f"/transition/{ids['ada']}")
    phone.back()
    assert phone.routes[-1] == f"/patient/{ids['ada']}" and no_dialog(phone)


@pytest.mark.parametrize("what", ["transition", "task", "round row", "addendum"])
def test_every_form_that_does_not_autosave_asks(app: Any, what: str) -> None:
    ids = fill(app)
    visit = app.store.put(
        "visit",
        {
            "patient_id": ids["ada"],
            "setting": "home",
            "started_at": "2026-11-20T09:00:00",
            "status": "final",
            "triage": "short_term_contact",
            "consent_confirmed": True,
        },
    )
    route, key, value = {
        "transition": (f"/transition/{ids['ada']}", "accountable", "Nurse Kim"),
        "task": (f"/tasks?patient_id={ids['ada']}", "task-title", "Call the pharmacy"),
        "round row": ("/round", "next-note", "Lives alone"),
        "addendum": (f"/visit/{visit['id']}", "addendum-text", "Son is the contact"),
    }[what]
    phone = Phone(app, route)
    set_value(phone.top, key, value)
    tabs = phone.top.navigation_bar
    shown = tabs.selected_index
    tabs.selected_index = 0  # a tap on Today: the same question as Back
    tabs.on_change(SimpleNamespace(control=tabs))
    assert phone.dialog().key == "leave-dialog" and phone.routes[-1] == route
    phone.press("leave-keep")
    assert tabs.selected_index == shown  # the tab of the screen still shown
    phone.shell.refresh()
    assert find(phone.top, key).value == value
    phone.back()
    phone.press("leave-discard")
    assert phone.routes[-1] != route and no_dialog(phone)
    phone.shell.go(route)
    assert find(phone.top, key).value in ("", None)


def test_an_assessment_is_kept_as_a_draft_without_a_question(app: Any) -> None:
    ids = fill(app)
    phone = Phone(app, f"/assess/{ids['cy']}")
    set_value(phone.top, "summary", "Lives alone, stairs are hard")
    phone.back()
    assert no_dialog(phone) and phone.routes[-1] == f"/patient/{ids['cy']}"
    (draft,) = [v for v in app.store.list("visit") if v["fields"]["patient_id"] == ids["cy"]]
    assert draft["fields"]["summary"] == "Lives alone, stairs are hard"
    assert draft["fields"]["status"] == "draft"


def test_an_assessment_start_time_that_is_not_one_is_kept_and_asked_about(app: Any) -> None:
    ids = fill(app)
    route = f"/assess/{ids['cy']}"
    phone = Phone(app, route)
    set_value(phone.top, "started-at", "2026-11-2")  # half typed
    phone.shell.refresh()
    assert find(phone.top, "started-at").value == "2026-11-2"
    assert find(phone.top, "started-at").error
    find(phone.top, "finalize").on_click(None)  # never finalized over what was typed
    assert "Start time" in texts(find(phone.top, "finalize-errors"))
    phone.back()
    phone.press("leave-discard")
    assert phone.routes[-1] == f"/patient/{ids['cy']}"


def test_a_round_header_autosaves_on_the_way_out(app: Any) -> None:
    fill(app)
    phone = Phone(app, "/round")
    set_value(phone.top, "attendees", "Dr Lee, RN Ortiz")
    phone.back()
    assert no_dialog(phone) and phone.routes == [
        "/today",
        "/rounds",
    ]  # a round's parent is the list of rounds
    saved = [r for r in app.store.list("round") if "RN Ortiz" in r["fields"]["attendees"]]
    assert len(saved) == 1


def test_back_on_the_last_screen_with_a_half_typed_pin_asks_before_closing(app: Any) -> None:
    phone = Phone(app, "/settings")
    find(phone.top, "pin-new").value = "1357"  # (the client sends each field's value)
    phone.back()
    assert phone.dialog().key == "leave-dialog" and phone.answers == []
    phone.press("leave-keep")
    assert phone.answers == [("/settings", False)]  # the app stays open
    phone.back()
    phone.press("leave-discard")
    assert phone.answers[-1] == ("/settings", True)  # now the app closes
    assert find(phone.top, "pin-new").value == ""


def test_the_browser_back_button_asks_too_and_keeps_editing(app: Any) -> None:
    ids = fill(app)
    route = f"/refer/{ids['ada']}"
    phone = Phone(app, route)
    set_value(phone.top, "to-name", "Meals on Wheels")
    phone.page.route = f"/patient/{ids['ada']}"  # the browser went back by itself
    phone.shell.on_route_change(None)
    assert phone.dialog().key == "leave-dialog" and phone.routes[-1] == route
    phone.press("leave-keep")
    assert phone.page.route == route and phone.routes[-1] == route
    assert find(phone.top, "to-name").value == "Meals on Wheels"


def test_a_save_then_leave_asks_nothing(app: Any) -> None:
    ids = fill(app)
    phone = Phone(app, f"/refer/{ids['cy']}")
    set_value(phone.top, "to-name", "Meals on Wheels")
    find(phone.top, "save-referral").on_click(None)  # navigates to the saved referral
    assert no_dialog(phone) and "referral_id=" in phone.routes[-1]


def test_back_on_the_add_patient_dialog_closes_it_and_keeps_the_draft(app: Any) -> None:
    phone = Phone(app, "/caseload")
    nav = FakeNav("/caseload")
    find(phone.top, "add-patient").on_click(None)
    dialog = phone.dialog()
    set_value(dialog, "new-name", "Dee Newcomer")
    set_value(dialog, "new-phone", "555 0199")
    toasts: list[str] = []
    phone.shell.toast = toasts.append  # type: ignore[method-assign]
    phone.back_on_dialog()
    assert no_dialog(phone) and toasts == ["The new patient was kept: tap Add patient to finish."]
    caseload._quick_add(app, nav, pick=False)  # Add patient again: what was typed is back
    again = nav.dialogs[-1]
    assert find(again, "new-name").value == "Dee Newcomer"
    assert find(again, "new-phone").value == "555 0199"
    find(again, "add-cancel").on_click(None)  # Cancel drops it
    caseload._quick_add(app, nav, pick=False)
    assert find(nav.dialogs[-1], "new-name").value == ""


def test_locking_forgets_drafts_and_never_asks(app: Any) -> None:
    ids = fill(app)
    phone = Phone(app, f"/refer/{ids['ada']}")
    set_value(phone.top, "to-name", "Meals on Wheels")
    app.session.lock()
    assert app.session.phase == LOCKED and phone.routes == ["/unlock"] and no_dialog(phone)


# -- rotation: every form rebuilt from state shows what was typed -----------------------

FORMS = {
    "assessment": (
        "/assess/{cy}",
        {"summary": "Lives alone", "started-at": "2026-11-23 09:45", "source": "family"},
    ),
    "referral": (
        "/refer/{ada}",
        {
            "to-name": "Meals on Wheels",
            "notes": "Hot meals",
            "due-date": "2026-12-24",
            "need": "food",
            "urgency": "urgent",
        },
    ),
    "transition": (
        "/transition/{ada}",
        {
            "discharge-date": "2026-11-30",
            "home-care-agency": "Home Helpers",
            "home-care-contact": "Ana, 555 0102",
            "accountable": "RN Kim",
            "notes": "Oxygen at home",
        },
    ),
    "round": (
        "/round",
        {
            "round-date": "2026-11-23",
            "attendees": "Dr Lee, RN Ortiz",
            "topics": "Falls",
            "next-name": "Someone New",
            "next-note": "First visit",
            "next-actions": "Call daughter",
        },
    ),
    "task": ("/tasks?patient_id={ada}", {"task-title": "Call pharmacy", "task-due": "2026-12-01"}),
    "caseload search": ("/caseload", {"search": "ada"}),
}


@pytest.mark.parametrize("form", sorted(FORMS))
def test_a_rebuilt_form_shows_what_was_typed(app: Any, form: str) -> None:
    """A rotation re-lays out the same controls; but whenever a screen is rebuilt (a sync,
    a refresh, a lock and unlock), it is built from state, and must show the same."""
    ids = fill(app)
    template, values = FORMS[form]
    phone = Phone(app, template.format(**ids))
    for key, value in values.items():
        set_value(phone.top, key, value)
    before = phone.top
    phone.shell.refresh()
    assert phone.top is not before
    for key, value in values.items():
        assert find(phone.top, key).value == value, key


def test_the_sign_in_screen_rebuilt_shows_what_was_typed(tmp_path: Path) -> None:
    app = make_app(tmp_path, FakeServer(), FakeClock())
    phone = Phone(app, "/")
    set_value(phone.top, "server", "https://liaison.example.org")
    set_value(phone.top, "username", "demo")
    phone.shell.refresh()
    assert find(phone.top, "server").value == "https://liaison.example.org"
    assert find(phone.top, "username").value == "demo"


# -- notches and gesture bars; the soft keyboard -----------------------------------------


def every_screen(app: Any) -> list[tuple[str, Any]]:
    """Every kind of view the app builds: each route of the table, a missing record, an
    unknown route, the lock screen and the first-run steps."""
    ids = fill(app)
    routes = [
        "/today",
        "/caseload",
        "/new-assessment",
        f"/patient/{ids['ada']}",
        "/sync",
        "/settings",
        f"/assess/{ids['ada']}",
        f"/visit/{ids['visit']}",
        f"/refer/{ids['ada']}",
        f"/refer/{ids['ada']}?referral_id={ids['referral']}",
        "/referrals",
        "/tasks",
        f"/tasks?patient_id={ids['ada']}",
        f"/transition/{ids['ada']}",
        f"/transition/edit/{ids['transition']}",
        "/round",
        f"/round/{ids['round']}",
        "/patient/nobody",
        "/visit/nothing",
        "/nowhere",
    ]
    phone = Phone(app, "/today")
    out = []
    for route in routes:
        phone.shell.go(route)
        out += [(f"{route} #{i}", v) for i, v in enumerate(phone.page.views)]
    app.session.lock()
    out.append(("unlock", phone.top))
    return out


def test_every_screen_keeps_its_content_clear_of_notches_and_gesture_bars(
    app: Any, tmp_path: Path
) -> None:
    screens = every_screen(app)
    first = Phone(make_app(tmp_path / "new", FakeServer(), FakeClock()), "/")
    screens.append(("first run", first.top))
    for name, view in screens:
        assert isinstance(view, ft.View), name
        (only,) = view.controls
        assert isinstance(only, ft.SafeArea), name
        assert only.avoid_intrusions_left and only.avoid_intrusions_right, name
        # Without an app bar or tabs nothing else keeps the status bar and gesture bar off.
        assert only.avoid_intrusions_top and only.avoid_intrusions_bottom, name


def text_fields_outside_a_scrolling_parent(root: Any, scrolls: bool = False) -> list[str]:
    """Text fields with no scrollable control above them: the soft keyboard could hide
    them, as nothing can scroll them back into view."""
    if isinstance(root, ft.AlertDialog):
        scrolls = scrolls or root.scrollable
    if getattr(root, "scroll", None) is not None:
        scrolls = True
    found = [] if scrolls or not isinstance(root, ft.TextField) else [str(root.key)]
    for attr in ("controls", "content", "actions"):
        child = getattr(root, attr, None)
        for c in child if isinstance(child, list) else [child]:
            if isinstance(c, ft.BaseControl):
                found += text_fields_outside_a_scrolling_parent(c, scrolls)
    return found


def test_every_text_field_can_be_scrolled_above_the_keyboard(app: Any) -> None:
    screens = every_screen(app)
    assert sum(isinstance(c, ft.TextField) for _, v in screens for c in w.walk(v)) > 20
    for name, view in screens:
        assert text_fields_outside_a_scrolling_parent(view) == [], name


def test_every_dialog_with_a_text_field_scrolls(app: Any) -> None:
    from app.views import sync

    nav = FakeNav()
    caseload._quick_add(app, nav, pick=False)
    sync.sign_in_dialog(app, nav)
    nav.dialogs.append(shell.discard_dialog(print, print))
    for dialog in nav.dialogs:
        assert text_fields_outside_a_scrolling_parent(dialog) == [], dialog.key


# -- the app switcher's preview -----------------------------------------------------------


def state_event(state: ft.AppLifecycleState) -> Any:
    return SimpleNamespace(state=state)


def test_leaving_the_front_covers_every_screen_and_dialog_without_locking(app: Any) -> None:
    ids = fill(app)
    phone = Phone(app, f"/refer/{ids['ada']}")
    set_value(phone.top, "to-name", "Meals on Wheels")
    find(phone.page.views[1], "patient-name")  # the patient's page under the form
    phone.shell.show_dialog(ft.AlertDialog(key="d", content=ft.Text("Ada Example")))
    dialog = phone.dialog()
    phone.shell.on_lifecycle(state_event(ft.AppLifecycleState.INACTIVE))  # shade, switcher
    assert app.session.phase == UNLOCKED
    assert all(v.foreground_decoration is not None for v in phone.page.views)
    assert all(v.foreground_decoration.bgcolor == ft.Colors.SURFACE for v in phone.page.views)
    assert dialog.content.visible is False
    phone.shell.refresh()  # a screen rebuilt meanwhile is covered too
    assert phone.top.foreground_decoration is not None
    phone.shell.on_lifecycle(state_event(ft.AppLifecycleState.RESUME))
    assert all(v.foreground_decoration is None for v in phone.page.views)
    assert dialog.content.visible is True
    assert find(phone.top, "to-name").value == "Meals on Wheels"  # nothing was dropped
    phone.shell.on_lifecycle(state_event(ft.AppLifecycleState.INACTIVE))
    phone.shell.on_lifecycle(state_event(ft.AppLifecycleState.HIDE))  # really left: locked
    assert app.session.phase == LOCKED and phone.top.foreground_decoration is not None
    phone.shell.on_lifecycle(state_event(ft.AppLifecycleState.RESUME))
    assert phone.top.foreground_decoration is None and phone.routes == ["/unlock"]


def test_a_camera_preview_is_paused_not_unmounted_under_the_cover(app: Any) -> None:
    phone = Phone(app, "/today")
    camera = SimpleNamespace(preview_enabled=True)
    phone.shell.show_dialog(
        ft.AlertDialog(key="camera", content=ft.Container(ft.Column([ft.Text("Camera")])))
    )
    dialog = phone.dialog()
    dialog.content.content.controls.append(camera)  # flet-camera's control stands in
    phone.shell.on_lifecycle(state_event(ft.AppLifecycleState.INACTIVE))
    assert camera.preview_enabled is False and dialog.content.visible is True
    phone.shell.on_lifecycle(state_event(ft.AppLifecycleState.RESUME))
    assert camera.preview_enabled is True


def test_a_desktop_window_losing_focus_is_not_covered(app: Any) -> None:
    phone = Phone(app, "/today", platform=ft.PagePlatform.LINUX)
    phone.shell.on_lifecycle(state_event(ft.AppLifecycleState.INACTIVE))
    assert phone.top.foreground_decoration is None


# -- a refused camera permission ------------------------------------------------------------

REFUSED = RuntimeError("CameraException(CameraAccessDenied, Camera access permission was denied.)")


@pytest.fixture
def camera(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """flet-camera's control as a phone drives it, refusing until ``allowed`` is set."""
    import flet_camera as fc

    seen: dict[str, Any] = {"allowed": False, "error": REFUSED}

    class FakeCamera(ft.Container):
        async def get_available_cameras(self) -> list[Any]:
            return [SimpleNamespace(lens_direction=fc.CameraLensDirection.BACK)]

        async def initialize(self, *args: Any, **kwargs: Any) -> None:
            if not seen["allowed"]:
                raise seen["error"]

        async def take_picture(self) -> bytes:
            raise AssertionError("not in these tests")

    monkeypatch.setattr(fc, "Camera", FakeCamera)
    monkeypatch.setattr(photos, "camera_available", lambda: True)
    return seen


def open_camera(app: Any) -> tuple[FakeNav, Any]:
    nav = FakeNav()
    pid, _ = app.add_patient("Ada Example")
    from app.views import patient

    view = patient.build(app, nav, patient_id=pid)
    run(find(view, "patient-photos-camera").on_click(None))
    return nav, nav.dialogs[-1]


def test_a_refused_camera_says_so_and_where_to_allow_it_on_android(
    app: Any, camera: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(photos, "_permission_handler", lambda: None)
    nav, dialog = open_camera(app)  # no flet-permission-handler: no way to open Settings
    assert find(dialog, "camera-message").value == "Liaison is not allowed to use the camera."
    assert "Apps › Liaison › Permissions › Camera" in find(dialog, "camera-how").value
    assert absent(dialog, "camera-settings") and find(dialog, "camera-shoot").disabled
    camera["allowed"] = True  # allowed in Settings meanwhile
    run(find(dialog, "camera-retry").on_click(None))
    assert find(dialog, "camera-problem").visible is False
    assert find(dialog, "camera-shoot").disabled is False


def test_a_refused_camera_opens_the_settings_on_ios(
    app: Any, camera: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    launched: list[str] = []

    class FakeLauncher:
        async def launch_url(self, url: str) -> bool:
            launched.append(url)
            return True

    monkeypatch.setattr(photos, "_permission_handler", lambda: None)
    monkeypatch.setattr(photos, "_platform", lambda: ft.PagePlatform.IOS)
    monkeypatch.setattr(photos.ft, "UrlLauncher", FakeLauncher)
    camera["error"] = RuntimeError("CameraException(CameraAccessDeniedWithoutPrompt, x)")
    nav, dialog = open_camera(app)
    assert (
        "allow the camera for Liaison in your phone's Settings" in find(dialog, "camera-how").value
    )
    run(find(dialog, "camera-settings").on_click(None))
    assert launched == ["app-settings:"]
    assert app.session.away_until > app.now()  # Settings covering the app does not lock it


def test_a_refused_camera_uses_the_permission_handler_when_built_in(
    app: Any, camera: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    opened: list[bool] = []

    class PermissionHandler:
        async def open_app_settings(self) -> bool:
            opened.append(True)
            return False  # say nothing opened: the screen then says where to go

    module = types.SimpleNamespace(PermissionHandler=PermissionHandler)
    monkeypatch.setattr(photos, "_permission_handler", lambda: module)
    nav, dialog = open_camera(app)
    run(find(dialog, "camera-settings").on_click(None))
    assert opened == [True]
    assert "Apps › Liaison › Permissions › Camera" in find(dialog, "camera-how").value


def test_other_camera_errors_keep_the_plain_message(app: Any, camera: Any) -> None:
    camera["error"] = RuntimeError("CameraException(cameraNotReadable, busy)")
    nav, dialog = open_camera(app)
    assert (
        find(dialog, "camera-message").value
        == "The camera is not available. Use Add photo instead."
    )
    assert find(dialog, "camera-problem").visible is False


# -- small pieces -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "now,before,edited",
    [
        ({"a": "x"}, {}, True),
        ({"a": " "}, {}, False),
        ({"checklist": {"x": False}}, {"checklist": {}}, False),
        ({"checklist": {"x": True}}, {"checklist": {}}, True),
        ({"a": None, "b": ""}, {"a": "", "c": []}, False),
        ({"urgency": "soon"}, {"urgency": "routine"}, True),
    ],
)
def test_edited(now: Any, before: Any, edited: bool) -> None:
    assert shell.edited(now, before) is edited
