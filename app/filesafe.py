"""Crash-safe files: subkeys of the data key, an fsync that reaches the disk, a new file
written beside the old one and renamed over it, and the one-writer lock of a store."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from pathlib import Path

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from app.errors import StoreError

try:
    import fcntl
except ImportError:  # Windows (desktop development only)
    fcntl = None  # type: ignore[assignment]


def derive_key(key: bytes, purpose: str) -> bytes:
    """A 256-bit subkey of the data key for one purpose (journal, blobs, blob names)."""
    if not isinstance(key, bytes) or len(key) != 32:
        raise ValueError("the data key must be 32 bytes")
    hkdf = HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=purpose.encode())
    return hkdf.derive(key)


def fsync(fd: int) -> None:
    """Flush a file to stable storage (F_FULLFSYNC where plain fsync is not enough)."""
    if fcntl is not None and hasattr(fcntl, "F_FULLFSYNC"):  # macOS, iOS
        try:
            fcntl.fcntl(fd, fcntl.F_FULLFSYNC)
            return
        except OSError:
            pass
    if hasattr(os, "fdatasync"):
        os.fdatasync(fd)
    else:
        os.fsync(fd)


def fsync_dir(directory: Path) -> None:
    """Make a rename or unlink in ``directory`` durable (a no-op where unsupported)."""
    if os.name == "nt":
        return
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def write_atomic(path: Path, chunks: Iterable[bytes]) -> None:
    """Write a new file crash-safely: temp file beside it, fsync, rename, directory fsync."""
    tmp = write_temp(path, chunks)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    fsync_dir(path.parent)


def write_temp(
    path: Path,
    chunks: Iterable[bytes | memoryview],
    *,
    sync_every: int = 0,
    header: Callable[[], bytes] | None = None,
) -> Path:
    """Write and fsync ``path``.tmp (mode 0600); the caller renames it into place.

    ``sync_every`` bytes, it also flushes what it wrote so far: a save's fsync beside one
    of a few hundred MB waited for that (70 ms), beside one of a few MB it does not. A
    ``header`` is written over the file's first bytes once the chunks are written (they
    begin with room for it)."""
    tmp = path.with_name(path.name + ".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        unsynced = 0
        for chunk in chunks:
            write_all(fd, chunk)
            unsynced += len(chunk)
            if sync_every and unsynced >= sync_every:
                fsync(fd)
                unsynced = 0
        if header is not None:
            os.pwrite(fd, header(), 0)
        fsync(fd)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    return tmp


def write_all(fd: int, data: bytes | memoryview) -> None:
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view) :]


def lock_file(path: Path) -> int:
    """Take the one-writer lock of a store (a lock file beside it): its descriptor, to
    close to release it; ``StoreError`` when another window or process holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    if fcntl is not None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(fd)
            raise StoreError("the store is already open (another window or process)") from None
    return fd
