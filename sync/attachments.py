"""Photo and document bytes in a sync: upload before the push that refers to them, fetch later.

A record refers to its attachments by SHA-256 (``fields.attachments``: ``sha256`` of the
photo and ``thumbnail`` of its thumbnail); the bytes travel apart, through
``PUT /api/v1/attachments/{sha256}``. ``upload`` runs before each push batch and sends every
blob the batch refers to, so the server never holds a reference to bytes it lacks. A PUT is
idempotent by hash; a hash is remembered in the store's meta (``SENT`` + hash) once the
server has it, so a sync resumed after a dropped connection sends only what is missing.
``fetch`` downloads a blob on first view on another device, checks its hash and keeps it
encrypted in the store. Like the engine, this module does no HTTP itself.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Protocol

from sync.errors import ProtocolError
from sync.schema import SHA256_RE

SENT = "attachment_sent:"  # meta key prefix: the server has this hash
THUMBNAIL_TYPE = "image/jpeg"  # app.photos always makes JPEG thumbnails
DEFAULT_TYPE = "application/octet-stream"


class BlobSource(Protocol):
    """What uploads and downloads need of the device's store (``app.store.Store`` has it)."""

    def get_blob(self, sha256: str, /) -> bytes | None: ...
    def put_blob(self, data: bytes, /) -> str: ...
    def get_meta(self, key: str, default: Any = None, /) -> Any: ...
    def set_meta(self, key: str, value: Any, /) -> Any: ...


class Uploader(Protocol):
    """The upload call (``sync.client.SyncClient`` has it)."""

    async def put_attachment(self, sha256: str, data: bytes, content_type: str, /) -> bool: ...


class Downloader(Protocol):
    """The download call (``sync.client.SyncClient`` has it)."""

    async def get_attachment(self, sha256: str, /) -> bytes: ...


def referenced(fields: Mapping[str, Any]) -> Iterator[tuple[str, str]]:
    """(sha256, content type) of every blob that record fields refer to, photo first."""
    items = fields.get("attachments")
    for item in items if isinstance(items, list) else []:
        if not isinstance(item, dict):
            continue
        photo, thumb = item.get("sha256"), item.get("thumbnail")
        content_type = item.get("content_type")
        if isinstance(photo, str) and SHA256_RE.match(photo):
            yield photo, content_type if isinstance(content_type, str) else DEFAULT_TYPE
        if isinstance(thumb, str) and SHA256_RE.match(thumb):
            yield thumb, THUMBNAIL_TYPE


def hashes(fields: Mapping[str, Any]) -> set[str]:
    """The set of blob hashes that record fields refer to."""
    return {sha for sha, _ in referenced(fields)}


def is_sent(store: BlobSource, sha256: str) -> bool:
    """True when the server is known to have this blob."""
    return bool(store.get_meta(SENT + sha256))


def mark_sent(store: BlobSource, sha256: str) -> None:
    """Remember that the server has this blob (it is dropped with the blob)."""
    store.set_meta(SENT + sha256, True)


def to_upload(store: BlobSource, mutations: Iterable[Mapping[str, Any]]) -> list[tuple[str, str]]:
    """(sha256, content type) of the blobs ``mutations`` refer to that the server may lack.

    A blob not on this device came from the server (a pulled record), so it is there.
    """
    wanted: dict[str, str] = {}
    for mutation in mutations:
        if mutation.get("op") != "upsert" or not isinstance(mutation.get("fields"), dict):
            continue
        for sha, content_type in referenced(mutation["fields"]):
            if sha not in wanted and not is_sent(store, sha):
                wanted[sha] = content_type
    return list(wanted.items())


async def upload(
    store: BlobSource, transport: Uploader, mutations: Iterable[Mapping[str, Any]]
) -> int:
    """Send the blobs a push batch refers to (each at most once); returns how many were sent.

    Transport errors propagate: the engine stops the sync before pushing the batch, and
    the next sync resumes with the blobs still missing.
    """
    sent = 0
    for sha, content_type in to_upload(store, mutations):
        data = store.get_blob(sha)
        if data is None:
            continue
        await transport.put_attachment(sha, data, content_type)
        mark_sent(store, sha)
        sent += 1
    return sent


async def fetch(store: BlobSource, transport: Downloader, sha256: str) -> bytes:
    """The blob's bytes: from the store, else downloaded, checked and stored encrypted."""
    if not SHA256_RE.match(sha256):
        raise ValueError("an attachment is addressed by a lowercase SHA-256 hex string")
    local = store.get_blob(sha256)
    if local is not None:
        return local
    data = await transport.get_attachment(sha256)
    if hashlib.sha256(data).hexdigest() != sha256:
        raise ProtocolError("a downloaded attachment does not match its hash")
    store.put_blob(data)
    mark_sent(store, sha256)
    return data
