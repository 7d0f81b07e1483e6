"""Photos on a screen: thumbnails with captions, Add photo / Take photo, and the full view.

Images are shown from bytes decrypted in memory (``ft.Image(src=bytes)``); nothing is ever
written to a cache or temp file, and the copies the picker and camera plugins write there
are deleted once read (``app.picked``). "Add photo" opens the platform's picker for images
through a ``PickFiles`` client action (browsers open a picker only inside the click), with
the bytes delivered to Python; "Take photo" uses ``flet-camera`` where it exists (the
Android and iOS builds; never web mode, whose prebuilt client has no camera). A photo is
prepared off the UI thread (``app.photos.prepare_async``); a file that is not a usable
photo gives a clear message and stores nothing. A thumbnail not yet on this device shows a
placeholder while it downloads; ``refresh`` fills it in when it lands.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Awaitable, Callable, Sequence
from typing import Any

import flet as ft

from app import forms, picked
from app.attachments import Item, Target, photos_of
from app.errors import PhotoError
from app.messages import plain_error
from app.photos import PreparedPhoto
from app.state import AppState
from app.views import shell
from app.views import widgets as w

THUMB = 88
SMALL = 56
Picked = Callable[[list[tuple[str, bytes]]], Awaitable[None]]
_PHOTO = "photo"  # the ``data`` tag of a thumbnail box: ("photo", thumbnail sha256)


# -- thumbnails -------------------------------------------------------------------------


def _label(item: Item) -> str:
    caption = str(item.get("caption") or "").strip()
    return f"Photo: {caption}" if caption else "Photo"


def image(
    data: bytes, label: str, size: float | None = None, *, fit: ft.BoxFit = ft.BoxFit.COVER
) -> ft.Image:
    """An image drawn from bytes in memory."""
    return ft.Image(
        src=data,
        width=size,
        height=size,
        fit=fit,
        semantics_label=label,
        border_radius=ft.BorderRadius.all(8),
        gapless_playback=True,
    )


def _placeholder(label: str, loading: bool) -> ft.Control:
    icon = ft.Icon(
        ft.Icons.IMAGE_OUTLINED,
        semantics_label=f"{label} (downloading)" if loading else f"{label} (not on this phone yet)",
        color=ft.Colors.OUTLINE,
    )
    return ft.Container(
        icon,
        alignment=ft.Alignment.CENTER,
        bgcolor=ft.Colors.SURFACE_CONTAINER_HIGHEST,
        border_radius=ft.BorderRadius.all(8),
    )


def thumbnail(
    app: AppState,
    item: Item,
    on_click: Any,
    *,
    size: int = THUMB,
    key: str | None = None,
    data: bytes | None = None,
) -> ft.Control:
    """A tappable thumbnail; downloads it in the background when not on this device."""
    sha = str(item.get("thumbnail") or item.get("sha256"))
    label = _label(item)
    if data is None:
        data = app.attachments.thumbnail(sha)
    content = (
        image(data, label, size)
        if data is not None
        else _placeholder(label, app.attachments.downloading(sha))
    )
    box = ft.Container(
        content,
        key=key,
        width=size,
        height=size,
        on_click=on_click,
        data=(_PHOTO, sha, label, size),
        ink=True,
        border_radius=ft.BorderRadius.all(8),
    )
    return ft.Semantics(content=box, identifier=key, label=label, button=True)


def refresh(root: Any, app: AppState) -> int:
    """Fill in the placeholders under ``root`` whose thumbnail has arrived; returns how many."""
    filled = 0
    for control in w.walk(root):
        tag = getattr(control, "data", None)
        if not (isinstance(tag, tuple) and tag and tag[0] == _PHOTO):
            continue
        if isinstance(control.content, ft.Image):
            continue
        _, sha, label, size = tag
        data = app.attachments.local(sha)
        if data is not None:
            control.content = image(data, label, size)
            filled += 1
    return filled


def strip(
    app: AppState,
    nav: shell.Nav,
    items: Sequence[Item],
    *,
    target: Target | None,
    editable: bool,
    key: str,
    size: int = THUMB,
) -> ft.Row:
    """A wrapping row of thumbnails; tapping one opens the full view."""
    cells = []
    for i, item in enumerate(items):

        async def tapped(e: Any = None, item: Item = item) -> None:
            await open_viewer(app, nav, item, target if editable else None)

        cells.append(thumbnail(app, item, tapped, size=size, key=f"{key}-{i}"))
    return ft.Row(cells, key=key, wrap=True, spacing=8, run_spacing=8)


def timeline_strip(
    app: AppState, nav: shell.Nav, photos: Sequence[tuple[str, str, str]], key: str
) -> ft.Control:
    """Small thumbnails under a timeline entry (sha256, thumbnail, caption), read-only."""
    items = [{"sha256": s, "thumbnail": t, "caption": c} for s, t, c in photos]
    row = strip(app, nav, items, target=None, editable=False, key=key, size=SMALL)
    return ft.Container(row, padding=ft.Padding.only(left=56, bottom=8))


# -- the full view --------------------------------------------------------------------


async def open_viewer(
    app: AppState, nav: shell.Nav, item: Item, target: Target | None, *, title: str = "Photo"
) -> ft.AlertDialog:
    """Show a photo large, with its caption (editable with ``target``); loads the full
    photo, from the server on first view on this device."""
    sha = str(item.get("sha256"))
    label = _label(item)
    thumb = app.attachments.local(str(item.get("thumbnail") or ""))
    holder = ft.Container(
        key="photo-full",
        alignment=ft.Alignment.CENTER,
        height=320,
        content=ft.Stack(
            [image(thumb, label, 320, fit=ft.BoxFit.CONTAIN), ft.ProgressRing(width=24, height=24)],
            alignment=ft.Alignment.CENTER,
        )
        if thumb
        else ft.ProgressRing(semantics_label="Loading the photo"),
    )
    body: list[ft.Control] = [holder]
    actions: list[ft.Control] = []
    caption = w.text_field(
        "Caption (optional)",
        key="photo-caption",
        max_length=200,
        value=str(item.get("caption") or ""),
    )
    if target is not None:
        body.append(caption)

        def save(e: Any = None) -> None:
            try:
                app.attachments.set_caption(target, sha, caption.value or "")
            except forms.REFUSED as exc:
                caption.error = plain_error(exc)
                return
            nav.close_dialog()
            nav.refresh()

        def remove(e: Any = None) -> None:
            try:
                app.attachments.remove(target, sha)
            except forms.REFUSED as exc:
                caption.error = plain_error(exc)
                return
            nav.close_dialog()
            nav.toast("Photo removed")
            nav.refresh()

        caption.on_submit = save
        actions += [
            w.text_button("Remove photo", remove, icon=ft.Icons.DELETE_OUTLINE, key="photo-remove"),
            w.primary_button("Save caption", save, key="photo-save"),
        ]
    elif item.get("caption"):
        body.append(ft.Text(str(item["caption"]), key="photo-caption-text", selectable=True))
    actions.append(w.text_button("Close", lambda e: nav.close_dialog(), key="photo-close"))
    dialog = ft.AlertDialog(
        key="photo-viewer",
        title=ft.Text(title, key="photo-title"),
        actions=actions,
        scrollable=True,
        content=ft.Column(
            body,
            tight=True,
            spacing=12,
            width=360,
            horizontal_alignment=ft.CrossAxisAlignment.STRETCH,
        ),
    )
    nav.show_dialog(dialog)
    full = await app.attachments.load(sha)
    holder.content = (
        image(full, label, 320, fit=ft.BoxFit.CONTAIN)
        if full is not None
        else w.banner(
            "The photo is not on this phone yet. Sync when online, then try again.",
            kind="warning",
            key="photo-unavailable",
        )
    )
    nav.update()
    return dialog


# -- adding ---------------------------------------------------------------------------


def camera_available() -> bool:
    """True in the Android and iOS apps built with flet-camera (never in web mode)."""
    try:
        page = ft.context.page
    except RuntimeError:  # no page: a headless build
        return False
    if page.web or page.platform not in (ft.PagePlatform.ANDROID, ft.PagePlatform.IOS):
        return False
    return importlib.util.find_spec("flet_camera") is not None


def _files_of(event: Any) -> list[tuple[str, bytes]]:
    """(name, bytes) of the picked files: bytes from the picker, else read from the path
    (desktop development); the picker's copy in the app's cache is deleted once read."""
    out = []
    roots = picked.temp_roots()
    for f in getattr(event, "files", None) or []:
        data = picked.read_file(f.bytes, f.path, roots)
        if data is not None:
            out.append((str(f.name or "photo"), data))
    return out


def picker_button(
    app: AppState, on_picked: Picked, *, key: str, text: str = "Add photo"
) -> ft.OutlinedButton:
    """Opens the platform's image picker (several at once); ``on_picked`` gets the bytes."""

    async def result(e: Any) -> None:
        app.session.away_until = 0.0
        files = _files_of(e)
        if files:
            await on_picked(files)

    picker = ft.FilePicker(on_result=result)
    button = w.secondary_button(text, icon=ft.Icons.ADD_PHOTO_ALTERNATE_OUTLINED, key=key)
    button.action = ft.PickFiles(
        picker, file_type=ft.FilePickerFileType.IMAGE, allow_multiple=True, with_data=True
    )
    # The picker covers the app on a phone: that is not the user leaving it (no lock).
    button.on_click = lambda e: app.session.expect_away()
    return button


def camera_refused(exc: BaseException) -> bool:
    """True when the camera plugin's error says the camera permission was refused.

    The ``camera`` plugin (under flet-camera) raises ``CameraException`` with code
    ``CameraAccessDenied`` (refused now, or earlier on Android), and on iOS
    ``CameraAccessDeniedWithoutPrompt`` (refused earlier) or ``CameraAccessRestricted``;
    Flet hands the Python side its text.
    """
    return any(code in str(exc) for code in ("CameraAccessDenied", "CameraAccessRestricted"))


def _platform() -> Any:
    try:
        return ft.context.page.platform
    except RuntimeError:  # no page: a headless build
        return None


def settings_opener(app: AppState) -> Callable[[], Awaitable[bool]] | None:
    """How to open Liaison's page in the phone's Settings, where this build can.

    With flet-permission-handler in the build: its ``open_app_settings`` (Android and
    iOS). Without it, iOS still opens it with the ``app-settings:`` URL; Android has no
    URL for it, so there the screen says where to go (None here).
    """

    async def opened(open_it: Callable[[], Awaitable[Any]]) -> bool:
        app.session.expect_away()  # Settings covers the app: not leaving it (no lock on return)
        try:
            return bool(await open_it())
        except Exception:  # noqa: BLE001 - a plugin or launcher error: nothing opened
            return False

    fph = _permission_handler()
    if fph is not None:

        async def with_plugin() -> bool:
            return await opened(fph.PermissionHandler().open_app_settings)

        return with_plugin
    if _platform() == ft.PagePlatform.IOS:

        async def with_url() -> bool:
            return await opened(lambda: ft.UrlLauncher().launch_url("app-settings:"))

        return with_url
    return None


def _permission_handler() -> Any:
    """flet-permission-handler (a dependency of the phone build), or None without it."""
    try:
        import flet_permission_handler
    except ImportError:
        return None
    return flet_permission_handler


CAMERA_REFUSED = "Liaison is not allowed to use the camera."
CAMERA_HOW = (
    "To take photos here, allow the camera for Liaison in your phone's Settings, "
    "then tap Try again. Add photo works without it."
)
CAMERA_WHERE = (
    "Open your phone's Settings, then Apps › Liaison › Permissions › Camera, and "
    "choose Allow. Then tap Try again. Add photo works without it."
)


def camera_button(
    app: AppState, nav: shell.Nav, on_picked: Picked, *, key: str
) -> ft.OutlinedButton:
    """Opens the camera in a dialog; the shot goes to ``on_picked``. A refused camera
    permission is said plainly, with a way to the phone's Settings and a Try again."""

    async def open_camera(e: Any = None) -> None:
        import flet_camera as fc  # only where camera_available() said it exists

        camera = fc.Camera(expand=True)
        message = ft.Text("", color=ft.Colors.ERROR, key="camera-message")
        problem = ft.Column(key="camera-problem", visible=False, spacing=8)
        how = ft.Text("", key="camera-how")

        async def shoot(e: Any = None) -> None:
            try:
                # Bytes (flet-camera 1.0.5) or a path; its shot file is deleted either way.
                data = picked.picture_bytes(await camera.take_picture(), picked.temp_roots())
            except Exception as exc:  # noqa: BLE001 - the plugin raises platform errors
                message.value = f"The camera did not take the photo ({type(exc).__name__})."
                nav.update()
                return
            nav.close_dialog()
            await on_picked([("camera.jpg", data)])

        async def open_settings(e: Any = None) -> None:
            if opener is None or not await opener():
                how.value = CAMERA_WHERE  # say where, then
                nav.update()

        async def start(e: Any = None) -> None:
            message.value, problem.visible, camera.visible = "", False, True
            try:
                cameras = await camera.get_available_cameras()
                if not cameras:
                    raise RuntimeError("no camera")
                back = next(
                    (c for c in cameras if c.lens_direction == fc.CameraLensDirection.BACK),
                    cameras[0],
                )
                await camera.initialize(back, fc.ResolutionPreset.HIGH, enable_audio=False)
            except Exception as exc:  # noqa: BLE001 - permission refused, no camera, plugin
                shoot_button.disabled = True
                if camera_refused(exc):
                    message.value, camera.visible = CAMERA_REFUSED, False
                    buttons: list[ft.Control] = [
                        w.secondary_button(
                            "Try again", start, icon=ft.Icons.REFRESH, key="camera-retry"
                        )
                    ]
                    if opener is not None:
                        buttons.insert(
                            0,
                            w.primary_button(
                                "Open settings",
                                open_settings,
                                icon=ft.Icons.SETTINGS,
                                key="camera-settings",
                            ),
                        )
                    how.value = CAMERA_HOW if opener is not None else CAMERA_WHERE
                    problem.controls = [how, w.button_row(buttons)]
                    problem.visible = True
                else:
                    message.value = "The camera is not available. Use Add photo instead."
            else:
                shoot_button.disabled = False
            nav.update()

        opener = settings_opener(app)
        shoot_button = w.primary_button(
            "Take photo", shoot, icon=ft.Icons.CAMERA_ALT, key="camera-shoot"
        )
        dialog = ft.AlertDialog(
            key="camera",
            title=ft.Text("Take photo"),
            scrollable=True,
            content=ft.Container(ft.Column([camera, message, problem]), width=360, height=420),
            actions=[
                w.text_button("Cancel", lambda e: nav.close_dialog(), key="camera-cancel"),
                shoot_button,
            ],
        )
        nav.show_dialog(dialog)
        await start()

    return w.secondary_button(
        "Take photo", open_camera, icon=ft.Icons.PHOTO_CAMERA_OUTLINED, key=key
    )


async def prepare_all(
    app: AppState, files: list[tuple[str, bytes]]
) -> tuple[list[PreparedPhoto], list[str]]:
    """Prepare each picked file off the UI thread; (photos, problems in plain words)."""
    photos, problems = [], []
    for name, data in files:
        try:
            photos.append(await app.attachments.prepare(data))
        except PhotoError as exc:
            problems.append(f"{name[:60]}: {exc}" if len(files) > 1 else str(exc))
    return photos, problems


def section(
    app: AppState,
    nav: shell.Nav,
    target: Target | None,
    *,
    key: str,
    title: str = "Photos",
    editable: bool = True,
    unsaved_hint: str | None = None,
) -> list[ft.Control]:
    """A record's photos: header, thumbnails, Add photo / Take photo, status and errors.

    ``target`` None means the record does not exist yet (``unsaved_hint`` says why).
    """
    items = photos_of({"attachments": target.items()}) if target is not None else []
    controls: list[ft.Control] = [w.section_header(title)]
    if items:
        controls.append(
            strip(app, nav, items, target=target, editable=editable, key=f"{key}-thumb")
        )
    elif not editable or target is None:
        controls.append(
            ft.Text(
                unsaved_hint or "No photos.", key=f"{key}-none", color=ft.Colors.ON_SURFACE_VARIANT
            )
        )
    if not editable or target is None:
        return controls
    status = ft.Text("", key=f"{key}-status", color=ft.Colors.ON_SURFACE_VARIANT, visible=False)
    error = ft.Text("", key=f"{key}-error", color=ft.Colors.ERROR, visible=False)

    async def picked(files: list[tuple[str, bytes]]) -> None:
        await attach(app, nav, target, files, status=status, error=error)

    buttons: list[ft.Control] = [picker_button(app, picked, key=f"{key}-add")]
    if camera_available():
        buttons.append(camera_button(app, nav, picked, key=f"{key}-camera"))
    controls += [w.button_row(buttons), status, error]
    return controls


async def attach(
    app: AppState,
    nav: shell.Nav,
    target: Target,
    files: list[tuple[str, bytes]],
    *,
    status: ft.Text,
    error: ft.Text,
) -> None:
    """Prepare, store and attach picked images; a single one then opens for its caption."""
    status.value, status.visible, error.visible = "Preparing the photo…", True, False
    nav.update()
    photos, problems = await prepare_all(app, files)
    added: list[Item] = []
    if photos:
        try:
            added = app.attachments.add(target, photos)
        except forms.REFUSED as exc:
            problems.append(plain_error(exc))
    status.visible = False
    if problems:
        error.value, error.visible = " ".join(problems), True
        nav.toast(problems[0])
    if added:
        nav.refresh()
        if len(added) == 1 and not problems:
            # Straight on to its caption. The dialog's title says it was added: a toast
            # would sit under the dialog's barrier, neither seen nor read by a screen reader.
            await open_viewer(app, nav, added[0], target, title="Photo added")
            return
        nav.toast("Photo added" if len(added) == 1 else f"{len(added)} photos added")
    nav.update()
