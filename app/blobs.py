"""Encrypted, content-addressed blob files (photos) under the store's ``blobs/`` directory.

A blob is addressed by the SHA-256 of its bytes, as records and the server refer to it. On
disk its name is an HMAC of that hash under a key derived from the data key, so the name
does not reveal the hash (which would confirm a guessed photo). Each file is
``MAGIC nonce AES-256-GCM(data)`` with the hash as associated data, written crash-safely.
"""

from __future__ import annotations

import hashlib
import hmac
import os
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from app.errors import StoreCorrupted
from app.filesafe import derive_key, fsync_dir, write_atomic
from app.storeformat import NONCE
from sync.schema import SHA256_RE

MAGIC = b"LIABLB\x00\x01"


class BlobStore:
    """Put, get and delete encrypted blobs by their SHA-256 (hex)."""

    def __init__(self, directory: Path, key: bytes) -> None:
        self.directory = directory
        self._aead = AESGCM(derive_key(key, "liaison/blob/v1"))
        self._name_key = derive_key(key, "liaison/blob-name/v1")

    def put(self, data: bytes) -> str:
        """Store ``data`` (idempotent) and return its SHA-256 hex."""
        digest = hashlib.sha256(data).digest()
        path = self._path(digest)
        if not path.exists():
            if not self.directory.is_dir():
                self.directory.mkdir(mode=0o700)
                fsync_dir(self.directory.parent)
            nonce = os.urandom(NONCE)
            sealed = self._aead.encrypt(nonce, bytes(data), MAGIC + digest)
            write_atomic(path, [MAGIC, nonce, sealed])
        return digest.hex()

    def get(self, sha256: str) -> bytes | None:
        """The blob's bytes, or None when it is not here."""
        digest = _digest(sha256)
        try:
            raw = self._path(digest).read_bytes()
        except FileNotFoundError:
            return None
        try:
            if raw[: len(MAGIC)] != MAGIC:
                raise InvalidTag
            start = len(MAGIC) + NONCE
            data = self._aead.decrypt(raw[len(MAGIC) : start], raw[start:], MAGIC + digest)
        except InvalidTag:
            raise StoreCorrupted(
                "a photo file cannot be decrypted (wrong key, damaged or tampered with)"
            ) from None
        if hashlib.sha256(data).digest() != digest:  # only a bug could get here
            raise StoreCorrupted("a photo file does not match its hash")
        return data

    def delete(self, sha256: str) -> None:
        """Remove the blob if it is here."""
        path = self._path(_digest(sha256))
        if path.exists():
            path.unlink()
            fsync_dir(self.directory)

    def _path(self, digest: bytes) -> Path:
        return self.directory / hmac.new(self._name_key, digest, hashlib.sha256).hexdigest()


def _digest(sha256: str) -> bytes:
    if not isinstance(sha256, str) or not SHA256_RE.match(sha256):
        raise ValueError("a blob is addressed by a lowercase SHA-256 hex string")
    return bytes.fromhex(sha256)
