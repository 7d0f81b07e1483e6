"""Photos attached to records: add, caption, remove, read back, and fetch from the server.

A record (visit, addendum, transition, patient) lists its photos in ``fields.attachments``:
``{sha256, caption, content_type, width, height, thumbnail}``, ``thumbnail`` being the
thumbnail's SHA-256. The bytes are blobs of the store, encrypted with the data key and
never inside a record; the store deletes a blob once nothing names it. A photo made on
another device is downloaded on first view: its thumbnail when a screen shows it, the
photo itself when opened (``sync.attachments.fetch``). No Flet here: screens ask for
bytes and hear "photo" through ``AppState.emit`` when a download lands.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from app import errors
from app.photos import PreparedPhoto, prepare_async
from sync import attachments as transfer
from sync import errors as sync_errors
from sync.schema import MAX_TEXT

if TYPE_CHECKING:
    from app.state import AppState
    from app.store import Store

Item = dict[str, Any]
RETRY_AFTER = 60.0  # seconds before a failed download is tried again


@dataclass
class Target:
    """Where photos go: how to read a record's list of photos and how to save a new one."""

    items: Callable[[], list[Item]]
    write: Callable[[list[Item]], Any]


def record_target(store: Any, type_name: str, record_id: str) -> Target:
    """The photos of a stored record, saved with ``store.put``."""

    def items() -> list[Item]:
        record = store.get(record_id)
        return list((record or {}).get("fields", {}).get("attachments") or [])

    def write(new: list[Item]) -> Any:
        return store.put(type_name, {"attachments": new}, record_id=record_id)

    return Target(items, write)


def item_of(photo: PreparedPhoto, caption: str = "") -> Item:
    """The ``attachments`` entry of a prepared photo."""
    return {
        "sha256": photo.sha256,
        "caption": caption.strip()[:MAX_TEXT],
        "content_type": photo.content_type,
        "width": photo.width,
        "height": photo.height,
        "thumbnail": photo.thumbnail_sha256,
    }


def photos_of(record: Any) -> list[Item]:
    """The well-formed photo entries of a record (or of its fields)."""
    fields = record.get("fields", record) if isinstance(record, dict) else {}
    items = fields.get("attachments") if isinstance(fields, dict) else None
    return [i for i in items or [] if isinstance(i, dict) and transfer.hashes({"attachments": [i]})]


class Attachments:
    """The photo actions of the screens, on the app's open store."""

    def __init__(self, app: AppState) -> None:
        self.app = app
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._failed: dict[str, float] = {}  # hash -> when its download last failed

    @property
    def store(self) -> Store:
        """The open store; raises VaultLocked when locked."""
        return self.app.require_store()

    # -- adding and changing ------------------------------------------------------------
    async def prepare(self, data: bytes) -> PreparedPhoto:
        """Check and shrink an image off the UI thread; raises ``PhotoError``."""
        return await prepare_async(bytes(data))

    def add(self, target: Target, photos: list[PreparedPhoto], caption: str = "") -> list[Item]:
        """Store the photos encrypted and add them to the target's record (one save).

        When the save fails (an invalid record, too many photos) the new blobs go again
        and the error propagates: nothing is left behind.
        """
        store = self.store
        current = target.items()
        known = {i.get("sha256") for i in current}
        new = []
        for photo in photos:  # the same photo twice is attached once
            if photo.sha256 not in known:
                known.add(photo.sha256)
                new.append(item_of(photo, caption))
        stored: list[str] = []
        try:
            for photo in photos:
                stored += [store.put_blob(photo.jpeg), store.put_blob(photo.thumbnail)]
            if new:
                target.write([*current, *new])
        except BaseException:
            for sha in stored:
                if not store.blob_in_use(sha):
                    store.delete_blob(sha)
            raise
        return new

    def set_caption(self, target: Target, sha256: str, caption: str) -> None:
        """Change one photo's caption."""
        items = target.items()
        changed = [
            {**i, "caption": caption.strip()[:MAX_TEXT]} if i.get("sha256") == sha256 else i
            for i in items
        ]
        if changed != items:
            target.write(changed)

    def remove(self, target: Target, sha256: str) -> None:
        """Take one photo off the record (its blobs go once nothing else names them)."""
        items = target.items()
        kept = [i for i in items if i.get("sha256") != sha256]
        if len(kept) != len(items):
            target.write(kept)

    # -- reading ------------------------------------------------------------------------
    def local(self, sha256: str) -> bytes | None:
        """The blob's bytes when they are on this device (decrypted in memory only)."""
        try:
            data: bytes | None = self.store.get_blob(sha256)
        except (errors.AppError, ValueError):
            return None
        return data

    def thumbnail(self, sha256: str) -> bytes | None:
        """A thumbnail's bytes, or None while it downloads (listeners then hear "photo")."""
        data = self.local(sha256)
        if data is None:
            self.request(sha256)
        return data

    def downloading(self, sha256: str) -> bool:
        """True while the blob is being fetched from the server."""
        task = self._tasks.get(sha256)
        return task is not None and not task.done()

    def request(self, sha256: str) -> None:
        """Start fetching a blob in the background, unless under way or recently failed."""
        if self.downloading(sha256) or self.app.store is None:
            return
        failed = self._failed.get(sha256)
        if failed is not None and self.app.now() - failed < RETRY_AFTER:
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # no event loop (a headless build): nothing to do
            return
        self._tasks[sha256] = loop.create_task(self._fetch(sha256))

    async def load(self, sha256: str) -> bytes | None:
        """The blob's bytes, fetched from the server now if needed; None when unavailable."""
        data = self.local(sha256)
        if data is not None:
            return data
        task = self._tasks.get(sha256)
        if task is None or task.done():
            self._failed.pop(sha256, None)
            self.request(sha256)
            task = self._tasks.get(sha256)
        if task is not None:
            with contextlib.suppress(asyncio.CancelledError):
                await asyncio.shield(task)
        return self.local(sha256)

    async def _fetch(self, sha256: str) -> None:
        store = self.store
        if not store.blob_in_use(sha256):  # no record here names it: nothing to show
            self._failed[sha256] = self.app.now()
            return
        try:
            client = self.app.syncing.client()
            try:
                await transfer.fetch(store, client, sha256)
            finally:
                await client.aclose()
        except (sync_errors.SyncError, errors.AppError, ValueError):
            # Offline, not yet uploaded by its author, or locked meanwhile: try later.
            self._failed[sha256] = self.app.now()
            return
        if self.app.store is store and not store.blob_in_use(sha256):
            store.delete_blob(sha256)  # its record went while it downloaded
            store.set_meta(transfer.SENT + sha256, None)
            return
        self._failed.pop(sha256, None)
        self.app.emit("photo")

    def reset(self) -> None:
        """Stop downloads and forget failures (on lock and wipe)."""
        for task in self._tasks.values():
            task.cancel()
        self._tasks.clear()
        self._failed.clear()
