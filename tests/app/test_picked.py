"""Plugin copies of picked and shot photos: deleted once read, but only inside the app's own
temporary directories; nothing elsewhere (a gallery, the user's Pictures) is ever touched."""

from __future__ import annotations

from pathlib import Path

import pytest

from app import picked

PHOTO = b"\xff\xd8 a photo \xff\xd9"


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    """(the app's temp directory, a user's folder outside it)."""
    temp, pictures = tmp_path / "cache", tmp_path / "Pictures"
    temp.mkdir()
    pictures.mkdir()
    return temp, pictures


def test_the_roots_are_the_flet_temp_directory_and_pythons(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("tempfile.tempdir", str(tmp_path / "py"))
    assert picked.temp_roots({"FLET_APP_STORAGE_TEMP": "/data/app/cache"}) == [
        Path("/data/app/cache"),
        tmp_path / "py",
    ]
    assert picked.temp_roots({}) == [tmp_path / "py"]


def test_a_copy_in_the_temp_directory_is_gone_after_reading(dirs: tuple[Path, Path]) -> None:
    temp, _ = dirs
    copy = temp / "file_picker" / "1790000000" / "IMG_0001.jpg"
    copy.parent.mkdir(parents=True)
    copy.write_bytes(PHOTO)
    assert picked.read_file(None, str(copy), [temp]) == PHOTO
    assert not copy.exists()
    assert list(temp.iterdir()) == []  # its empty folders went too, the root stays


def test_bytes_handed_over_still_delete_the_copy(dirs: tuple[Path, Path]) -> None:
    temp, _ = dirs
    copy = temp / "IMG_0002.jpg"
    copy.write_bytes(PHOTO)
    assert picked.read_file(b"given", str(copy), [temp]) == b"given"
    assert not copy.exists()


def test_an_original_outside_is_read_and_kept(dirs: tuple[Path, Path]) -> None:
    temp, pictures = dirs
    original = pictures / "IMG_0003.jpg"
    original.write_bytes(PHOTO)
    assert picked.read_file(None, str(original), [temp]) == PHOTO
    assert picked.read_file(PHOTO, str(original), [temp]) == PHOTO
    assert original.read_bytes() == PHOTO


@pytest.mark.parametrize(
    "trick", ["dotdot", "symlink_file", "symlink_dir", "root_itself", "prefix_sibling"]
)
def test_no_path_trick_deletes_outside(dirs: tuple[Path, Path], trick: str) -> None:
    temp, pictures = dirs
    original = pictures / "IMG_0004.jpg"
    original.write_bytes(PHOTO)
    if trick == "dotdot":
        path = temp / ".." / "Pictures" / "IMG_0004.jpg"
    elif trick == "symlink_file":
        path = temp / "link.jpg"
        path.symlink_to(original)
    elif trick == "symlink_dir":
        (temp / "gallery").symlink_to(pictures, target_is_directory=True)
        path = temp / "gallery" / "IMG_0004.jpg"
    elif trick == "root_itself":
        assert not picked.discard(temp, [temp])
        assert temp.is_dir()
        return
    else:  # /x/cache-other is not inside /x/cache
        sibling = temp.with_name(temp.name + "-other")
        sibling.mkdir()
        path = sibling / "IMG_0004.jpg"
        path.write_bytes(PHOTO)
        original = path
    assert not picked.discard(path, [temp])
    assert original.read_bytes() == PHOTO


def test_a_temp_root_reached_through_a_symlink_still_counts(tmp_path: Path) -> None:
    real = tmp_path / "private" / "tmp"
    real.mkdir(parents=True)
    (tmp_path / "tmp").symlink_to(real, target_is_directory=True)  # macOS and iOS: /tmp
    copy = real / "IMG_0005.jpg"
    copy.write_bytes(PHOTO)
    assert picked.discard(copy, [tmp_path / "tmp"])
    assert not copy.exists()


def test_a_missing_or_unreadable_path_is_no_error(dirs: tuple[Path, Path]) -> None:
    temp, _ = dirs
    assert picked.read_file(None, str(temp / "gone.jpg"), [temp]) is None
    assert picked.read_file(None, None, [temp]) is None
    assert not picked.discard(temp / "gone.jpg", [temp])


def test_camera_shots_left_by_the_camera_plugin_are_swept(dirs: tuple[Path, Path]) -> None:
    temp, pictures = dirs
    android = temp / "CAP1234567890.jpg"  # camera_android(x): File.createTempFile in cache
    ios = temp / "camera" / "pictures" / "CAP_0A1B2C3D.jpg"  # camera_avfoundation
    ios.parent.mkdir(parents=True)
    kept = [temp / "notes.txt", temp / "CAPTION.jpg", temp / "CAP1.txt", pictures / "CAP9.jpg"]
    for path in (android, ios, *kept):
        path.write_bytes(PHOTO)
    assert picked.sweep_camera([temp]) == 2
    assert not android.exists() and not ios.exists()
    assert all(path.exists() for path in kept)


def test_a_picture_returned_as_a_path_is_read_and_deleted(dirs: tuple[Path, Path]) -> None:
    temp, pictures = dirs
    shot = temp / "CAP42.jpg"
    shot.write_bytes(PHOTO)
    assert picked.picture_bytes(str(shot), [temp]) == PHOTO
    assert not shot.exists()
    assert picked.picture_bytes(PHOTO, [temp]) == PHOTO
    outside = pictures / "shot.jpg"
    outside.write_bytes(PHOTO)
    assert picked.picture_bytes(str(outside), [temp]) == PHOTO and outside.exists()
    with pytest.raises(ValueError):
        picked.picture_bytes(None, [temp])
