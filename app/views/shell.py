"""The frame around every unlocked screen: app bar, back, sync badge, lock, bottom tabs.

The view contract, shared by every module in app/views: ``build(app, nav, **params) ->
ft.View`` where ``app`` is the ``AppState``, ``nav`` a ``Nav`` and ``params`` the route's
parameters (``/patient/{patient_id}`` gives ``patient_id=...``; a query string adds more).
Views only read state and call state actions; ``nav`` is their only way to touch the page.

A screen where something can be typed passes a ``Leave`` to ``screen``: leaving it (Back,
the system back gesture, a tab, the browser's Back) first keeps what can be kept (an
autosave is flushed) and, when typed input would still be lost, the app asks "Discard
changes?". Everything typed is held in ``AppState.ui`` drafts, not only in the controls,
so a screen rebuilt from state (after a lock, a sync, a rotation) shows it again.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import flet as ft

from app import urls
from app.state import AppState
from app.views import widgets as w

# The icons of the tabs of ``app.routes.TABS``: (icon, selected icon).
TAB_ICONS = {
    urls.TODAY: (ft.Icons.TODAY_OUTLINED, ft.Icons.TODAY),
    urls.CASELOAD: (ft.Icons.PEOPLE_OUTLINE, ft.Icons.PEOPLE),
    urls.SYNC: (ft.Icons.CLOUD_SYNC_OUTLINED, ft.Icons.CLOUD_SYNC),
    urls.SETTINGS: (ft.Icons.SETTINGS_OUTLINED, ft.Icons.SETTINGS),
}


def _nothing() -> None:
    pass


@dataclass
class Leave:
    """What leaving a screen does to what was typed on it.

    ``keep`` saves what can be saved now (flushes an autosave); ``unsaved`` then tells
    whether leaving would still lose typed input; ``discard`` forgets that input once the
    user agreed. Each reads the live state, so it is right whenever the app asks.
    """

    unsaved: Callable[[], bool]
    discard: Callable[[], None] = _nothing
    keep: Callable[[], None] = _nothing


def edited(now: Any, before: Any) -> bool:
    """True when a form's values differ from what it started with; empty values (None,
    "", False, an empty list or mapping) count as not filled in."""

    def filled(value: Any) -> Any:
        if isinstance(value, dict):
            inner = {k: f for k, v in value.items() if (f := filled(v)) is not None}
            return inner or None
        if isinstance(value, str):
            value = value.strip()
        return value if value not in (None, "", False, [], ()) else None

    return bool(filled(now) != filled(before))


def leave_of(view: Any) -> Leave | None:
    """The ``Leave`` of a screen built by ``screen`` (None: nothing typed can be lost)."""
    guard = getattr(view, "data", None)
    return guard if isinstance(guard, Leave) else None


class Nav(Protocol):
    """What a view may do to the page: navigate, redraw, tell, ask."""

    @property
    def route(self) -> str:
        """The current route ("/patient/<id>")."""

    def go(self, route: str) -> None:
        """Open ``route`` (pushes it to the browser history)."""

    def back(self) -> None:
        """Go to the parent of the current route."""

    def refresh(self) -> None:
        """Rebuild the current screen from state."""

    def update(self) -> None:
        """Send changed controls to the screen now (inside a long handler)."""

    def toast(self, message: str) -> None:
        """Show a short message at the bottom of the screen."""

    def show_dialog(self, dialog: ft.DialogControl) -> None:
        """Open a dialog."""

    def close_dialog(self) -> None:
        """Close the open dialog."""


def sync_badge(app: AppState, nav: Nav) -> ft.TextButton:
    """The sync state in the app bar; tapping it opens the Sync screen."""
    s = app.sync
    icon = (
        ft.Icons.SYNC
        if s.running
        else ft.Icons.LOGIN
        if s.sign_in_required
        else ft.Icons.CLOUD_OFF
        if s.offline
        else ft.Icons.CLOUD_UPLOAD_OUTLINED
        if s.pending
        else ft.Icons.CLOUD_DONE_OUTLINED
    )
    return ft.TextButton(
        s.short_label(),
        icon=icon,
        key="sync-badge",
        height=w.TOUCH,
        tooltip=s.label(app.now()),
        on_click=lambda e: nav.go(urls.SYNC),
    )


def appbar(
    app: AppState, nav: Nav, title: str, *, route: str, actions: Sequence[ft.Control] = ()
) -> ft.AppBar:
    """Title, a Back button on detail screens, the sync badge and Lock."""
    from app import routes  # here, not at the top: the route table imports every view

    back = routes.parent(route)
    leading = (
        w.icon_action(ft.Icons.ARROW_BACK, "Back", lambda e: nav.back(), key="back")
        if back
        else None
    )

    def lock(e: Any = None) -> None:
        app.session.lock()

    return ft.AppBar(
        leading=leading,
        automatically_imply_leading=False,
        # Two lines in a smaller style: next to Back, the sync badge and Lock, a one-line
        # title was cut at 412 px ("New assessm…").
        title=ft.Text(
            title,
            key="appbar-title",
            theme_style=ft.TextThemeStyle.TITLE_MEDIUM,
            max_lines=2,
            overflow=ft.TextOverflow.ELLIPSIS,
        ),
        actions=[
            *actions,
            sync_badge(app, nav),
            w.icon_action(ft.Icons.LOCK_OUTLINE, "Lock now", lock, key="lock-now"),
        ],
    )


def tabs(nav: Nav, route: str) -> ft.NavigationBar:
    """The bottom tabs of ``app.routes.TABS``; a detail screen highlights its row's tab."""
    from app import routes  # here, not at the top: the route table imports every view

    paths = [path for path, _ in routes.TABS]
    tab = routes.tab(route)
    selected = paths.index(tab) if tab in paths else 0

    def change(e: Any) -> None:
        target = paths[int(e.control.selected_index)]
        if target != nav.route:  # the tab of this very screen again: nothing to redraw
            nav.go(target)

    return ft.NavigationBar(
        key="tabs",
        selected_index=selected,
        on_change=change,
        destinations=[
            ft.NavigationBarDestination(
                icon=TAB_ICONS[path][0], selected_icon=TAB_ICONS[path][1], label=label
            )
            for path, label in routes.TABS
        ],
    )


def screen(
    app: AppState,
    nav: Nav,
    route: str,
    title: str,
    controls: Sequence[ft.Control],
    *,
    actions: Sequence[ft.Control] = (),
    fab: ft.FloatingActionButton | None = None,
    show_tabs: bool = True,
    scroll: bool = True,
    leave: Leave | None = None,
) -> ft.View:
    """An unlocked screen: app bar, a vertically scrolling body, tabs at the bottom.

    The body sits in a ``SafeArea`` (notches, rounded corners and gesture bars in both
    orientations) and scrolls, so the soft keyboard, which shrinks the body, never hides
    the focused field: Flutter scrolls it back into view. ``leave`` guards typed input.
    """
    body: ft.Control = (
        w.scroll_column(controls, key="body")
        if scroll
        else ft.Column(list(controls), key="body", expand=True, spacing=w.GAP)
    )
    return ft.View(
        data=leave,
        route=route,
        appbar=appbar(app, nav, title, route=route, actions=actions),
        navigation_bar=tabs(nav, route) if show_tabs else None,
        floating_action_button=fab,
        padding=ft.Padding.symmetric(horizontal=16, vertical=8),
        controls=[ft.SafeArea(body, expand=True)],
    )


def bare(route: str, controls: Sequence[ft.Control], *, title: str | None = None) -> ft.View:
    """A screen without tabs or patient data (first run, unlock)."""
    return ft.View(
        route=route,
        appbar=ft.AppBar(title=ft.Text(title), automatically_imply_leading=False)
        if title
        else None,
        padding=ft.Padding.symmetric(horizontal=20, vertical=12),
        controls=[ft.SafeArea(w.scroll_column(controls, key="body"), expand=True)],
    )


def missing(
    app: AppState,
    nav: Nav,
    route: str,
    title: str,
    message: str,
    *,
    key: str,
    heading: str = "Not found",
) -> ft.View:
    """The screen for a record this phone does not hold (an old link, a purged patient)."""
    return screen(
        app, nav, route, title, [w.empty_state(heading, message, icon=ft.Icons.SEARCH_OFF, key=key)]
    )


def discard_dialog(keep: Callable[[Any], None], discard: Callable[[Any], None]) -> ft.AlertDialog:
    """ "Discard changes?" before leaving a screen with typed input nothing has saved."""
    return ft.AlertDialog(
        modal=True,
        key="leave-dialog",
        title=ft.Text("Discard changes?"),
        content=ft.Text(
            "What you typed on this screen is not saved yet. Keep editing to "
            "finish it, or discard it.",
            key="leave-text",
        ),
        actions=[
            w.text_button("Keep editing", keep, key="leave-keep"),
            w.danger_button("Discard", discard, key="leave-discard"),
        ],
    )
