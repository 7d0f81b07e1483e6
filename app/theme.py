"""Material 3 light and dark themes with large, readable type."""

from __future__ import annotations

import flet as ft

SEED = ft.Colors.TEAL


def _text_theme() -> ft.TextTheme:
    # One step larger than Material's defaults: the app is read at arm's length, in
    # cars and hallways, often by people who would rather not reach for glasses.
    # Each style names its colour: a style given only a size renders black in dark mode.
    def style(size: int, weight: ft.FontWeight | None = None) -> ft.TextStyle:
        return ft.TextStyle(size=size, weight=weight, color=ft.Colors.ON_SURFACE)

    return ft.TextTheme(
        body_large=style(18),
        body_medium=style(16),
        body_small=style(14),
        label_large=style(16, ft.FontWeight.W_600),
        label_medium=style(14),
        title_large=style(24, ft.FontWeight.W_600),
        title_medium=style(19, ft.FontWeight.W_600),
        title_small=style(17, ft.FontWeight.W_600),
        headline_small=style(26, ft.FontWeight.W_600),
    )


# Screens change at once, with no page transition. During a transition both screens are
# on the glass, and a tap or a keystroke in those 300 ms reaches the screen on its way out
# and is lost (the tab tapped twice, the first letters of a search gone); a liaison moves
# between the same few screens all day, and an instant change also spares a slow phone.
INSTANT = ft.PageTransitionTheme.NONE
NO_TRANSITIONS = ft.PageTransitionsTheme(
    android=INSTANT, ios=INSTANT, linux=INSTANT, macos=INSTANT, windows=INSTANT
)


def theme() -> ft.Theme:
    """The app's theme (Flutter derives the dark variant from the same seed colour)."""
    return ft.Theme(
        color_scheme_seed=SEED,
        text_theme=_text_theme(),
        visual_density=ft.VisualDensity.STANDARD,
        page_transitions=NO_TRANSITIONS,
    )


def apply(page: ft.Page) -> None:
    """Give the page light and dark themes and follow the system's setting."""
    page.theme = theme()
    page.dark_theme = theme()
    page.theme_mode = ft.ThemeMode.SYSTEM
