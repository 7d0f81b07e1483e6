"""Photos on the screens, headless: pick (the picker's result event with the bytes, as the
browser delivers them), see the thumbnail, caption it, view it, remove it; a bad file says
why and stores nothing; thumbnails in the timeline download on first view."""

from __future__ import annotations

import asyncio
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import flet as ft
import pytest

from app import photos as pipeline
from app.attachments import item_of, record_target
from app.main import App
from app.views import assessment, patient, photos, transition
from app.views.widgets import walk
from tests.app.photo_support import PhotoServer, noise_photo
from tests.app.views_support import (
    FakeNav,
    FakePage,
    absent,
    enrolled,
    find,
    make_app,
    run,
    saves_heard,
)

PHOTO = noise_photo(21)


@pytest.fixture
def server() -> PhotoServer:
    return PhotoServer()


@pytest.fixture
def app(tmp_path: Path, server: PhotoServer) -> Any:
    app = run(enrolled(make_app(tmp_path, server)))
    yield app
    if app.store is not None:
        app.store.close()


def pick(view: Any, key: str, *files: tuple[str, bytes]) -> None:
    """What the browser does after "Add photo": the picker's result, with the bytes."""
    button = find(view, key)
    assert isinstance(button.action, ft.PickFiles) and button.action.with_data
    assert button.action.file_type == ft.FilePickerFileType.IMAGE
    button.on_click(None)
    event = SimpleNamespace(
        files=[
            ft.FilePickerFile(id=i, name=name, size=len(data), bytes=data)
            for i, (name, data) in enumerate(files)
        ]
    )
    run(button.action.file_picker.on_result(event))


def image_bytes(view: Any, key: str) -> bytes | None:
    """The bytes of the image shown under the control with ``key`` (None: a placeholder)."""
    found = [c for c in walk(find(view, key)) if isinstance(c, ft.Image)]
    return found[0].src if found else None


def test_attach_to_a_patient_caption_and_view(app: Any) -> None:
    pid, _ = app.add_patient("Ada Example")
    nav = FakeNav(f"/patient/{pid}")
    view = patient.build(app, nav, patient_id=pid)
    assert find(view, "patient-photos-add").content == "Add photo"
    assert absent(view, "patient-photos-camera")  # no camera in a browser or a test
    saves = saves_heard(app)
    pick(view, "patient-photos-add", ("IMG_0001.jpg", PHOTO))
    (item,) = app.store.get(pid)["fields"]["attachments"]
    shot = pipeline.prepare(PHOTO)
    assert item == item_of(shot)
    assert saves == ["saved"]
    assert app.session.away_until == 0.0  # the picker closed: backgrounding locks again

    # A single photo opens at once for its caption; the dialog, not a toast under its
    # barrier, says it was added.
    dialog = nav.dialogs[-1]
    assert find(dialog, "photo-title").value == "Photo added" and nav.toasts == []
    assert image_bytes(dialog, "photo-full") == shot.jpeg
    find(dialog, "photo-caption").value = "Medication list"
    find(dialog, "photo-save").on_click(None)
    assert app.store.get(pid)["fields"]["attachments"][0]["caption"] == "Medication list"

    view = patient.build(app, nav, patient_id=pid)
    assert image_bytes(view, "patient-photos-thumb-0") == shot.thumbnail
    (shown,) = [c for c in walk(find(view, "patient-photos-thumb-0")) if isinstance(c, ft.Image)]
    assert shown.semantics_label == "Photo: Medication list"


def test_a_bad_file_says_why_and_stores_nothing(app: Any) -> None:
    pid, _ = app.add_patient("Ada Example")
    nav = FakeNav(f"/patient/{pid}")
    view = patient.build(app, nav, patient_id=pid)
    saves = saves_heard(app)
    pick(view, "patient-photos-add", ("notes.pdf", b"%PDF-1.7 a scanned letter"))
    error = find(view, "patient-photos-error")
    assert (
        error.visible and error.value == "This file is not a supported photo (JPEG, PNG or WebP)."
    )
    assert nav.toasts == [error.value] and saves == []
    assert "attachments" not in app.store.get(pid)["fields"]
    blobs = app.store.directory / "blobs"
    assert not blobs.exists() or not any(blobs.iterdir())


def test_some_good_some_bad(app: Any) -> None:
    pid, _ = app.add_patient("Ada Example")
    nav = FakeNav(f"/patient/{pid}")
    view = patient.build(app, nav, patient_id=pid)
    pick(
        view,
        "patient-photos-add",
        ("a.jpg", PHOTO),
        ("b.gif", b"GIF89a..."),
        ("c.png", noise_photo(22, fmt="PNG")),
    )
    assert len(app.store.get(pid)["fields"]["attachments"]) == 2
    assert "b.gif: This file is not a supported photo" in find(view, "patient-photos-error").value
    assert not nav.dialogs  # several photos: no caption dialog, a toast says how many
    assert nav.toasts[-1] == "2 photos added"


def test_a_draft_visit_takes_photos_and_the_timeline_shows_them(app: Any) -> None:
    pid, _ = app.add_patient("Ada Example")
    nav = FakeNav(f"/assess/{pid}")
    view = assessment.build(app, nav, patient_id=pid)
    assert app.store.list("visit") == []
    pick(view, "visit-photos-add", ("hazard.jpg", PHOTO))
    (visit,) = app.store.list("visit")  # the first photo saved the draft
    assert visit["fields"]["status"] == "draft"
    assert [a["sha256"] for a in visit["fields"]["attachments"]] == [pipeline.prepare(PHOTO).sha256]
    # Typing afterwards keeps the photo (the autosave carries the new list).
    view = assessment.build(app, nav, visit_id=visit["id"])
    summary = find(view, "summary")
    summary.value = "Loose rug on the stairs"
    summary.on_change(None)
    find(view, "finalize").on_click(None)  # flushes the draft (not yet final: no triage)
    saved = app.store.get(visit["id"])["fields"]
    assert saved["summary"] == "Loose rug on the stairs" and len(saved["attachments"]) == 1

    page = patient.build(app, nav, patient_id=pid)
    strip = find(page, f"timeline-photos-{visit['id']}")
    assert (
        image_bytes(strip, f"timeline-photos-{visit['id']}-0") == pipeline.prepare(PHOTO).thumbnail
    )


def test_a_final_visit_takes_photos_through_an_addendum(app: Any) -> None:
    pid, _ = app.add_patient("Ada Example")
    visit = app.store.put(
        "visit",
        {
            "patient_id": pid,
            "setting": "home",
            "started_at": "2026-11-23T10:00:00",
            "triage": "short_term_contact",
            "status": "final",
        },
    )
    nav = FakeNav(f"/visit/{visit['id']}")
    view = assessment.build(app, nav, visit_id=visit["id"])
    assert absent(view, "visit-photos-add") and absent(view, "visit-photos-thumb-0")
    pick(view, "addendum-add-photo", ("wound.jpg", PHOTO))
    assert app.store.list("addendum") == []  # waits, in memory, for the addendum
    view = assessment.build(app, nav, visit_id=visit["id"])
    assert find(view, "addendum-staged")
    find(view, "add-addendum").on_click(None)
    (note,) = app.store.list("addendum")
    assert note["fields"]["text"] == "Photo added"
    assert note["fields"]["attachments"][0]["sha256"] == pipeline.prepare(PHOTO).sha256
    view = assessment.build(app, nav, visit_id=visit["id"])
    assert absent(view, "addendum-staged")
    assert image_bytes(view, "addendum-0-thumb-0") == pipeline.prepare(PHOTO).thumbnail


def test_a_transition_takes_photos_once_saved_and_one_can_be_removed(app: Any) -> None:
    pid, _ = app.add_patient("Ada Example")
    nav = FakeNav(f"/transition/{pid}")
    view = transition.build(app, nav, patient_id=pid)
    assert absent(view, "transition-photos-add")
    assert "Save the transition first" in find(view, "transition-photos-none").value
    record = app.store.put("transition", {"patient_id": pid, "status": "planned"})
    view = transition.build(app, nav, patient_id=pid, transition_id=record["id"])
    pick(view, "transition-photos-add", ("discharge.jpg", PHOTO))
    sha = pipeline.prepare(PHOTO).sha256
    assert app.store.get(record["id"])["fields"]["attachments"][0]["sha256"] == sha
    dialog = nav.dialogs[-1]
    find(dialog, "photo-remove").on_click(None)
    assert app.store.get(record["id"])["fields"]["attachments"] == []
    assert nav.toasts[-1] == "Photo removed"


def test_a_timeline_thumbnail_downloads_on_first_view(tmp_path: Path, server: PhotoServer) -> None:
    author = run(enrolled(make_app(tmp_path / "one", server)))
    pid, _ = author.add_patient("Ada Example")
    visit = author.store.put("visit", {"patient_id": pid, "setting": "home"})
    shot = pipeline.prepare(PHOTO)
    author.attachments.add(record_target(author.store, "visit", visit["id"]), [shot])
    run(author.syncing.sync_now())

    other = run(enrolled(make_app(tmp_path / "two", server)))
    page = FakePage(f"/patient/{pid}")
    shell = App(page, other)
    page.on_route_change = shell.on_route_change

    async def first_view() -> None:
        shell.render()
        top = page.views[-1]
        box = find(top, f"timeline-photos-{visit['id']}-0")
        assert not isinstance(box.content, ft.Image)  # a placeholder while it downloads
        while other.attachments.downloading(shot.thumbnail_sha256):
            await asyncio.sleep(0.01)
        assert isinstance(box.content, ft.Image) and box.content.src == shot.thumbnail

    run(first_view())
    assert server.gets == [shot.thumbnail_sha256]  # the full photo waits for a tap
    assert photos.refresh(page.views[-1], other) == 0


def test_take_photo_with_the_camera_on_a_phone(app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    import flet_camera as fc

    class FakeCamera(ft.Container):
        """flet-camera's control as the phone drives it (there is no camera here)."""

        async def get_available_cameras(self) -> list[Any]:
            return [
                SimpleNamespace(lens_direction=fc.CameraLensDirection.FRONT),
                SimpleNamespace(lens_direction=fc.CameraLensDirection.BACK),
            ]

        async def initialize(self, description: Any, preset: Any, **kwargs: Any) -> None:
            assert description.lens_direction == fc.CameraLensDirection.BACK
            assert kwargs["enable_audio"] is False

        async def take_picture(self) -> bytes:
            return PHOTO

    monkeypatch.setattr(fc, "Camera", FakeCamera)
    monkeypatch.setattr(photos, "camera_available", lambda: True)
    pid, _ = app.add_patient("Ada Example")
    nav = FakeNav(f"/patient/{pid}")
    view = patient.build(app, nav, patient_id=pid)
    run(find(view, "patient-photos-camera").on_click(None))
    dialog = nav.dialogs[-1]
    assert dialog.key == "camera"
    run(find(dialog, "camera-shoot").on_click(None))
    (item,) = app.store.get(pid)["fields"]["attachments"]
    assert item["sha256"] == pipeline.prepare(PHOTO).sha256


def test_the_picker_covering_the_app_does_not_lock_it(app: Any) -> None:
    pid, _ = app.add_patient("Ada Example")
    shell = App(FakePage(f"/patient/{pid}"), app)
    hidden = SimpleNamespace(state=ft.AppLifecycleState.HIDE)
    view = patient.build(app, FakeNav(), patient_id=pid)
    find(view, "patient-photos-add").on_click(None)  # the picker opens over the app
    shell.on_lifecycle(hidden)
    assert app.store is not None
    app.now.advance(121)  # not back within two minutes: leaving the app after all
    shell.on_lifecycle(hidden)
    assert app.store is None


def test_the_same_photo_twice_is_attached_once(app: Any) -> None:
    pid, _ = app.add_patient("Ada Example")
    view = patient.build(app, FakeNav(), patient_id=pid)
    pick(view, "patient-photos-add", ("a.jpg", PHOTO), ("copy of a.jpg", PHOTO))
    assert len(app.store.get(pid)["fields"]["attachments"]) == 1


@pytest.fixture
def temp_dirs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[Path, Path]:
    """(the app's temp directory as Flet names it, a user's Pictures folder)."""
    temp, pictures = tmp_path / "app-cache", tmp_path / "Pictures"
    temp.mkdir()
    pictures.mkdir()
    monkeypatch.setenv("FLET_APP_STORAGE_TEMP", str(temp))
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path / "py-tmp"))
    return temp, pictures


def pick_paths(view: Any, key: str, *paths: Path, with_bytes: bool) -> None:
    """What a phone's picker hands over: each file's path (a copy in the app's cache), and
    its bytes too when asked for them."""
    button = find(view, key)
    button.on_click(None)
    event = SimpleNamespace(
        files=[
            ft.FilePickerFile(
                id=i,
                name=p.name,
                size=p.stat().st_size,
                path=str(p),
                bytes=p.read_bytes() if with_bytes else None,
            )
            for i, p in enumerate(paths)
        ]
    )
    run(button.action.file_picker.on_result(event))


@pytest.mark.parametrize("with_bytes", [True, False])
def test_the_pickers_copy_in_the_app_cache_is_deleted_once_read(
    app: Any, temp_dirs: tuple[Path, Path], with_bytes: bool
) -> None:
    temp, pictures = temp_dirs
    copy = temp / "file_picker" / "1790000000123" / "IMG_0001.jpg"
    copy.parent.mkdir(parents=True)
    copy.write_bytes(PHOTO)
    original = pictures / "IMG_0002.jpg"  # a desktop pick: the user's own file
    original.write_bytes(noise_photo(5))
    pid, _ = app.add_patient("Ada Example")
    view = patient.build(app, FakeNav(), patient_id=pid)
    pick_paths(view, "patient-photos-add", copy, original, with_bytes=with_bytes)
    assert len(app.store.get(pid)["fields"]["attachments"]) == 2
    assert not copy.exists() and list(temp.iterdir()) == []
    assert original.read_bytes() == noise_photo(5)


def test_the_camera_plugins_shot_file_is_deleted(
    app: Any, temp_dirs: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    import flet_camera as fc

    temp, _ = temp_dirs
    shot = temp / "CAP5551234.jpg"  # where the Android camera plugin writes each shot

    class FakeCamera(ft.Container):
        async def get_available_cameras(self) -> list[Any]:
            return [SimpleNamespace(lens_direction=fc.CameraLensDirection.BACK)]

        async def initialize(self, *args: Any, **kwargs: Any) -> None:
            pass

        async def take_picture(self) -> Any:
            shot.write_bytes(PHOTO)
            return returns.pop(0)

    monkeypatch.setattr(fc, "Camera", FakeCamera)
    monkeypatch.setattr(photos, "camera_available", lambda: True)
    pid, _ = app.add_patient("Ada Example")
    nav = FakeNav(f"/patient/{pid}")
    returns: list[Any] = [PHOTO, str(shot)]  # flet-camera 1.0.5 returns bytes; a path too
    while returns:
        view = patient.build(app, nav, patient_id=pid)
        run(find(view, "patient-photos-camera").on_click(None))
        run(find(nav.dialogs[-1], "camera-shoot").on_click(None))
        assert not shot.exists()
        (item,) = app.store.get(pid)["fields"]["attachments"]
        assert item["sha256"] == pipeline.prepare(PHOTO).sha256
