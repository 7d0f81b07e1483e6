"""The theme: light and dark from one seed, and screens that change at once."""

from __future__ import annotations

import flet as ft

from app import theme


def test_every_platform_changes_screens_without_a_transition() -> None:
    # A tap or keystroke during a page transition reaches the screen on its way out.
    transitions = theme.theme().page_transitions
    for platform in ("android", "ios", "linux", "macos", "windows"):
        assert getattr(transitions, platform) == ft.PageTransitionTheme.NONE, platform


def test_light_and_dark_follow_the_system() -> None:
    page = type("Page", (), {})()
    theme.apply(page)  # type: ignore[arg-type]
    assert page.theme_mode == ft.ThemeMode.SYSTEM
    assert page.theme.page_transitions == page.dark_theme.page_transitions
