"""Small shared controls: labelled 48 px buttons, fields, section headers, empty states.

Note for Flet 1.0.5 web: never pass ``expand=False`` explicitly; inside a wrapping Row it
renders as a grey error box. Leave it None (the helpers here do).

Every control here carries a visible text or a tooltip, so screen readers and Playwright
find it by name; every touch target is at least 48 px high. Screens of both UI engineers
build on these instead of styling Flet controls one by one.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Sequence
from typing import Any

import flet as ft

TOUCH = 48  # minimum touch target, px
GAP = 12
Handler = Callable[..., Any] | None


def primary_button(
    text: str,
    on_click: Handler = None,
    *,
    icon: ft.IconData | None = None,
    key: str | None = None,
    disabled: bool = False,
    expand: bool = False,
) -> ft.FilledButton:
    """The one main action of a screen (filled, 48 px, full text label)."""
    return ft.FilledButton(
        text,
        icon=icon,
        on_click=on_click,
        key=key,
        disabled=disabled,
        height=TOUCH + 4,
        expand=expand or None,
    )


def secondary_button(
    text: str,
    on_click: Handler = None,
    *,
    icon: ft.IconData | None = None,
    key: str | None = None,
    disabled: bool = False,
    expand: bool = False,
    url: str | None = None,
) -> ft.OutlinedButton:
    """A secondary action (outlined, 48 px); ``url`` opens a link (tel:, mailto:)."""
    return ft.OutlinedButton(
        text,
        icon=icon,
        on_click=on_click,
        key=key,
        disabled=disabled,
        height=TOUCH,
        expand=expand or None,
        url=url,
    )


def text_button(
    text: str,
    on_click: Handler = None,
    *,
    icon: ft.IconData | None = None,
    key: str | None = None,
    url: str | None = None,
) -> ft.TextButton:
    """A low-emphasis action (text button, 48 px); ``url`` opens a link (tel:, mailto:)."""
    return ft.TextButton(text, icon=icon, on_click=on_click, key=key, height=TOUCH, url=url)


def danger_button(
    text: str,
    on_click: Handler = None,
    *,
    icon: ft.IconData | None = None,
    key: str | None = None,
    disabled: bool = False,
) -> ft.FilledButton:
    """A destructive action, drawn in the error colour."""
    return ft.FilledButton(
        text,
        icon=icon,
        on_click=on_click,
        key=key,
        disabled=disabled,
        height=TOUCH,
        style=ft.ButtonStyle(bgcolor=ft.Colors.ERROR, color=ft.Colors.ON_ERROR),
    )


def icon_action(
    icon: ft.IconData,
    label: str,
    on_click: Handler = None,
    *,
    key: str | None = None,
    url: str | None = None,
) -> ft.IconButton:
    """An icon button named by ``label`` (its tooltip and accessible name; 48 px target)."""
    return ft.IconButton(
        labelled_icon(icon, label),
        tooltip=label,
        on_click=on_click,
        key=key,
        width=TOUCH,
        height=TOUCH,
        url=url,
    )


def labelled_icon(icon: ft.IconData, label: str, size: int | None = None) -> ft.Icon:
    """An icon carrying its accessible name: a tooltip alone is not announced on web."""
    return ft.Icon(icon, semantics_label=label, size=size)


def text_field(
    label: str,
    *,
    key: str | None = None,
    value: str = "",
    hint: str | None = None,
    error: str | None = None,
    password: bool = False,
    multiline: bool = False,
    keyboard: ft.KeyboardType = ft.KeyboardType.TEXT,
    on_change: Handler = None,
    on_submit: Handler = None,
    autofocus: bool = False,
    max_length: int | None = None,
) -> ft.TextField:
    """A labelled text field; the label doubles as its accessible name."""
    return ft.TextField(
        label=label,
        key=key,
        value=value,
        hint_text=hint,
        error=error,
        password=password,
        can_reveal_password=password,
        multiline=multiline,
        min_lines=3 if multiline else None,
        keyboard_type=keyboard,
        on_change=on_change,
        on_submit=on_submit,
        autofocus=autofocus,
        max_length=max_length,
        text_size=18,
    )


def dropdown(
    label: str,
    options: Sequence[tuple[str, str]],
    *,
    key: str,
    value: str | None = None,
    error: str | None = None,
    on_select: Callable[[str | None], Any] | None = None,
) -> tuple[ft.Dropdown, ft.Semantics]:
    """A full-width choice list named by ``label``: (the dropdown, the control to show).

    Flet 1.0.5 draws a Dropdown as a button with no accessible name on web; the Semantics
    around it names it with its label and the chosen option ("Need Food"), so screen readers
    and Playwright find it. ``options`` are (value, text) pairs; ``on_select`` gets the value.
    """
    texts = dict(options)
    box = ft.Dropdown(
        key=key,
        label=label,
        value=value,
        options=[ft.DropdownOption(key=k, text=t) for k, t in options],
        expand=True,
        error_text=error,
        disabled=not options,
    )
    named = ft.Semantics(label=label, value=texts.get(value or "", ""), content=box, expand=True)

    def selected(e: Any = None) -> None:
        named.value = texts.get(box.value or "", "")
        if on_select is not None:
            on_select(box.value or None)

    box.on_select = selected
    return box, named


def date_field(
    label: str,
    nav: Any,
    *,
    key: str,
    value: str = "",
    error: str | None = None,
    on_change: Handler = None,
) -> tuple[ft.TextField, ft.Row]:
    """A date typed as YYYY-MM-DD, or picked from a calendar: (the field, the row to show).

    The calendar writes the picked date into the field and calls ``on_change`` as typing
    would; ``nav.show_dialog`` opens it (views touch the page only through ``nav``).
    """
    field = text_field(
        f"{label} (YYYY-MM-DD)",
        key=key,
        value=value,
        error=error,
        keyboard=ft.KeyboardType.DATETIME,
        on_change=on_change,
    )
    field.expand = True

    def picked(e: Any = None) -> None:
        day = picker.value
        if isinstance(day, dt.datetime):
            # The client may send local midnight as UTC: read it back in local time.
            day = day.astimezone().date() if day.tzinfo else day.date()
        if day is None:
            return
        field.value = day.isoformat()
        if on_change is not None:
            on_change(None)

    picker = ft.DatePicker(key=f"{key}-picker", help_text=label, on_change=picked)

    def open_calendar(e: Any = None) -> None:
        picker.value = _as_datetime(field.value)
        nav.show_dialog(picker)

    calendar = icon_action(
        ft.Icons.CALENDAR_MONTH, f"Pick {label.lower()}", open_calendar, key=f"{key}-calendar"
    )
    return field, ft.Row([field, calendar], vertical_alignment=ft.CrossAxisAlignment.START)


def _as_datetime(text: str | None) -> dt.datetime | None:
    """The date typed in a field as a datetime for the calendar (None if not a date)."""
    try:
        return dt.datetime.fromisoformat((text or "").strip()[:10])
    except ValueError:
        return None


# A record's icon by its type and variant (a visit's setting, a task open or done).
VARIANT_ICONS = {
    ("visit", "office"): ft.Icons.BUSINESS_OUTLINED,
    ("visit", "home"): ft.Icons.HOME_OUTLINED,
    ("visit", "phone"): ft.Icons.PHONE_OUTLINED,
    ("visit", "video"): ft.Icons.VIDEOCAM_OUTLINED,
    ("task", "open"): ft.Icons.CHECK_BOX_OUTLINE_BLANK,
    ("task", "done"): ft.Icons.CHECK_BOX_OUTLINED,
}


def record_icon(
    kind: str, variant: str = "", default: ft.IconData | None = None
) -> ft.IconData | None:
    """The icon of a record in a list: a phone call shows a phone, an open task an empty box."""
    return VARIANT_ICONS.get((kind, variant), default)


def section_header(text: str, *, key: str | None = None) -> ft.Control:
    """A heading inside a screen, announced as a header."""
    return ft.Semantics(
        header=True,
        content=ft.Text(
            text, key=key, theme_style=ft.TextThemeStyle.TITLE_MEDIUM, weight=ft.FontWeight.BOLD
        ),
    )


def empty_state(
    title: str,
    message: str,
    *,
    icon: ft.IconData = ft.Icons.INBOX_OUTLINED,
    action: ft.Control | None = None,
    key: str | None = None,
) -> ft.Container:
    """What an empty list says instead of nothing: what it is and what to do next."""
    items: list[ft.Control] = [
        ft.Icon(icon, size=40, color=ft.Colors.OUTLINE),
        ft.Text(title, theme_style=ft.TextThemeStyle.TITLE_MEDIUM, text_align=ft.TextAlign.CENTER),
        ft.Text(message, text_align=ft.TextAlign.CENTER, color=ft.Colors.ON_SURFACE_VARIANT),
    ]
    if action is not None:
        items.append(action)
    return ft.Container(
        key=key,
        padding=ft.Padding.symmetric(vertical=20, horizontal=12),
        content=ft.Column(items, horizontal_alignment=ft.CrossAxisAlignment.CENTER, spacing=8),
    )


def banner(message: str, *, kind: str = "info", key: str | None = None) -> ft.Container:
    """A full-width message box: ``info``, ``warning`` or ``error``."""
    colours = {
        "info": (
            ft.Colors.SECONDARY_CONTAINER,
            ft.Colors.ON_SECONDARY_CONTAINER,
            ft.Icons.INFO_OUTLINE,
        ),
        "warning": (
            ft.Colors.TERTIARY_CONTAINER,
            ft.Colors.ON_TERTIARY_CONTAINER,
            ft.Icons.WARNING_AMBER,
        ),
        "error": (ft.Colors.ERROR_CONTAINER, ft.Colors.ON_ERROR_CONTAINER, ft.Icons.ERROR_OUTLINE),
    }
    bg, fg, icon = colours[kind]
    return ft.Container(
        key=key,
        bgcolor=bg,
        border_radius=ft.BorderRadius.all(12),
        padding=ft.Padding.all(12),
        content=ft.Row(
            [ft.Icon(icon, color=fg), ft.Text(message, color=fg, expand=True)],
            vertical_alignment=ft.CrossAxisAlignment.START,
        ),
    )


def labelled_value(label: str, value: str, *, key: str | None = None) -> ft.Control:
    """A small caption above a value (read-only facts in headers and settings)."""
    return ft.Column(
        [
            ft.Text(
                label,
                theme_style=ft.TextThemeStyle.LABEL_MEDIUM,
                color=ft.Colors.ON_SURFACE_VARIANT,
            ),
            ft.Text(value, key=key, theme_style=ft.TextThemeStyle.BODY_LARGE, selectable=True),
        ],
        spacing=2,
    )


def tile(
    title: str,
    subtitle: str | None = None,
    *,
    on_click: Handler = None,
    icon: ft.IconData | None = None,
    key: str | None = None,
    trailing: ft.Control | None = None,
) -> ft.ListTile:
    """A list row at least 56 px high; tappable when ``on_click`` is given."""
    return ft.ListTile(
        title=ft.Text(title, theme_style=ft.TextThemeStyle.BODY_LARGE),
        subtitle=ft.Text(subtitle) if subtitle else None,
        leading=ft.Icon(icon) if icon else None,
        trailing=trailing,
        on_click=on_click,
        key=key,
        min_height=56,
    )


def button_row(controls: Sequence[ft.Control]) -> ft.Row:
    """Buttons that wrap onto a new line instead of scrolling sideways at 360 px."""
    return ft.Row(list(controls), wrap=True, spacing=8, run_spacing=8)


def scroll_column(controls: Sequence[ft.Control], *, key: str | None = None) -> ft.Column:
    """The vertically scrolling body of a screen."""
    return ft.Column(
        list(controls),
        key=key,
        spacing=GAP,
        scroll=ft.ScrollMode.AUTO,
        expand=True,
        horizontal_alignment=ft.CrossAxisAlignment.STRETCH,
    )


def find(root: Any, key: str) -> Any:
    """The control with ``key`` under ``root`` (depth-first), or None; used by tests."""
    for control in walk(root):
        if getattr(control, "key", None) == key:
            return control
    return None


def walk(root: Any) -> Any:
    """Yield ``root`` and every control under it (controls, content, appbar, ...)."""
    seen: set[int] = set()
    stack = [root]
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        yield node
        for attr in (
            "controls",
            "content",
            "appbar",
            "navigation_bar",
            "actions",
            "title",
            "subtitle",
            "leading",
            "trailing",
            "floating_action_button",
            "destinations",
            "tabs",
            "options",
            "label",
        ):
            child = getattr(node, attr, None)
            if isinstance(child, list):
                stack.extend(reversed(child))
            elif isinstance(child, ft.BaseControl):
                stack.append(child)
