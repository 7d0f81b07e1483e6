"""The privacy cover: what the phone's app switcher shows of Liaison while it is not in front.

Android and iOS take a picture of the screen for the app switcher when an app stops being
the one in front. Flet 1.0.5 cannot ask for that picture to be blank (no FLAG_SECURE, no
iOS snapshot hook from Python), so the app paints over itself as soon as it becomes
``INACTIVE``: an opaque ``foreground_decoration`` over every view (app bar, body, tabs
and toasts included: it wraps the whole screen) and, in each open dialog, the content
hidden. Nothing is rebuilt and no state is dropped: typed text, focus and scroll positions
stay, and the cover goes as soon as the app is in front again.

A camera preview is paused rather than hidden: hiding it would unmount the camera plugin's
widget, which releases the camera.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any

import flet as ft

from app.views import widgets as w

COLOUR = ft.Colors.SURFACE  # opaque, in both themes


def views(screens: Iterable[Any], covered: bool) -> None:
    """Put the cover on (or take it off) every view in ``screens``."""
    for view in screens:
        # One decoration per view: Flet diffs a value shared by two controls as one.
        view.foreground_decoration = ft.BoxDecoration(bgcolor=COLOUR) if covered else None


def dialog(control: Any) -> Callable[[], None]:
    """Hide what an open dialog shows; returns the function that shows it again."""
    content = getattr(control, "content", None)
    if content is None:
        return lambda: None
    previews = [c for c in w.walk(content) if hasattr(c, "preview_enabled")]
    if previews:  # a camera: pause its preview, keep it mounted (and the camera open)
        was = [c.preview_enabled for c in previews]
        for camera in previews:
            camera.preview_enabled = False

        def show_previews() -> None:
            for camera, enabled in zip(previews, was, strict=True):
                camera.preview_enabled = enabled

        return show_previews
    visible = content.visible
    content.visible = False

    def show() -> None:
        content.visible = visible

    return show
