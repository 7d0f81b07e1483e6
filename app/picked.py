"""Picked and shot photos as bytes, without the copies the platform plugins leave behind.

On Android and iOS the file picker copies each picked file into the app's cache
(``<cache>/file_picker/...``), and the camera plugin writes each shot to a temporary file
(``<cache>/CAP*.jpg`` on Android, ``<tmp>/camera/pictures/CAP_*`` on iOS) before handing
over its bytes; neither deletes them, so photos of patients would stay on the phone in
clear. Once the bytes are read (they go into the encrypted store), such copies are deleted,
but only inside the app's own temporary directories (``FLET_APP_STORAGE_TEMP``, the cache
directory on Android, and Python's ``tempfile.gettempdir()``): a path elsewhere, such as a
gallery or, on a desktop, the user's Pictures folder, is the user's original and stays.
"""

from __future__ import annotations

import contextlib
import logging
import os
import re
import stat
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

# Shot files of the Flutter camera plugins (camera_android, camera_android_camerax,
# camera_avfoundation): the name each gives its temporary capture file.
_SHOT = re.compile(r"CAP([0-9]+|_[0-9A-Fa-f-]+)\.(jpe?g|heic|heif)", re.IGNORECASE)
_SHOT_DIRS = (".", "camera/pictures")


def temp_roots(environ: Mapping[str, str] | None = None) -> list[Path]:
    """The app's own temporary directories: ``FLET_APP_STORAGE_TEMP`` and Python's."""
    env = os.environ if environ is None else environ
    roots = [env.get("FLET_APP_STORAGE_TEMP"), tempfile.gettempdir()]
    return [Path(r) for r in dict.fromkeys(roots) if r]


def _real(path: str | Path) -> Path | None:
    try:
        return Path(os.path.realpath(path, strict=True))
    except (OSError, ValueError):
        return None


def _root_of(path: Path, roots: Iterable[str | Path]) -> Path | None:
    """The resolved root ``path`` lies strictly inside, or None."""
    for root in roots:
        real = _real(root)
        if real is not None and real != path and path.is_relative_to(real):
            return real
    return None


def discard(path: str | Path, roots: Iterable[str | Path]) -> bool:
    """Delete ``path`` when it is a regular file (not a link) inside one of ``roots``, with
    ``..`` and links in its folders resolved; True when it was deleted."""
    try:
        if not stat.S_ISREG(os.lstat(path).st_mode):
            return False
    except (OSError, ValueError):
        return False
    real = _real(path)
    root = _root_of(real, roots) if real is not None else None
    if real is None or root is None:
        return False
    try:
        real.unlink()
    except OSError as exc:
        log.warning("picked: could not delete a temporary copy (%s)", type(exc).__name__)
        return False
    folder = real.parent
    while folder != root and folder.is_relative_to(root):  # file_picker's folder per pick
        try:
            folder.rmdir()
        except OSError:
            break
        folder = folder.parent
    return True


def read_file(data: bytes | None, path: str | None, roots: Iterable[str | Path]) -> bytes | None:
    """A picked file's bytes (``data``, else read from ``path``); a copy at ``path`` inside
    ``roots`` is deleted afterwards. None when there are no bytes to be had."""
    roots = list(roots)
    try:
        if data is None and path:
            with contextlib.suppress(OSError, ValueError):
                data = Path(path).read_bytes()
        return None if data is None else bytes(data)
    finally:
        if path:
            discard(path, roots)


def sweep_camera(roots: Iterable[str | Path]) -> int:
    """Delete the camera plugins' shot files in ``roots``; returns how many went."""
    gone = 0
    for root in roots:
        for sub in _SHOT_DIRS:
            with contextlib.suppress(OSError):
                for entry in os.scandir(Path(root, sub)):
                    if _SHOT.fullmatch(entry.name) and discard(entry.path, [root]):
                        gone += 1
    return gone


def picture_bytes(result: Any, roots: Iterable[str | Path]) -> bytes:
    """The bytes of a camera shot, whether the plugin returned them or a file's path; the
    plugin's shot files in ``roots`` are deleted. Raises ValueError for anything else."""
    roots = list(roots)
    try:
        if isinstance(result, bytes | bytearray | memoryview):
            return bytes(result)
        if isinstance(result, str | Path):
            data = read_file(None, str(result), roots)
            if data is not None:
                return data
        raise ValueError("the camera returned no picture")
    finally:
        sweep_camera(roots)
