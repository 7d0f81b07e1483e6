"""Helpers for photo tests: generated images, a fake server that keeps attachments, and a
scan of a directory for the bytes of a photo (raw, base64 or hex)."""

from __future__ import annotations

import base64
import hashlib
import io
import random
from pathlib import Path
from typing import Any

import httpx
from PIL import ExifTags, Image

from tests.app.views_support import FakeServer


def noise_photo(seed: int = 1, size: tuple[int, int] = (640, 480), fmt: str = "JPEG") -> bytes:
    """A camera-like photo of random pixels (every one distinct) with GPS in its EXIF."""
    rand = random.Random(seed)
    width, height = size
    picture = Image.frombytes("RGB", size, rand.randbytes(width * height * 3))
    exif = Image.Exif()
    exif[ExifTags.Base.Make] = "CANARY-camera"
    exif[ExifTags.IFD.GPSInfo] = {ExifTags.GPS.GPSLatitudeRef: "N"}
    out = io.BytesIO()
    picture.save(out, fmt, exif=exif.tobytes(), **({"quality": 92} if fmt == "JPEG" else {}))
    return out.getvalue()


def patterns(data: bytes, length: int = 64) -> list[bytes]:
    """A distinctive slice from the middle of ``data``: raw, hex (both cases) and base64
    (standard and URL-safe, at each of the three alignments a longer encoding can have)."""
    middle = len(data) // 2
    piece = data[middle : middle + length]
    found = [piece, piece.hex().encode(), piece.hex().upper().encode()]
    for shift in range(3):
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            text = encode(data[shift:])
            start = (len(text) // 2) // 4 * 4
            found.append(text[start : start + length])
    return found


def leaks(root: Path, data: bytes) -> list[str]:
    """Files under ``root`` that hold any of ``patterns(data)``."""
    wanted = patterns(data)
    hits = []
    for path in root.rglob("*"):
        if path.is_file():
            content = path.read_bytes()
            if any(p in content for p in wanted):
                hits.append(str(path.relative_to(root)))
    return hits


class PhotoServer(FakeServer):
    """The scripted server, plus ``PUT``/``GET /api/v1/attachments/{sha256}``."""

    def __init__(self, records: list[dict[str, Any]] | None = None) -> None:
        super().__init__(records)
        self.blobs: dict[str, bytes] = {}
        self.puts: list[str] = []
        self.gets: list[str] = []
        self.dangling: list[str] = []  # hashes a push named before they were uploaded

    def handle(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if not path.startswith("/api/v1/attachments/") or self.offline:
            return super().handle(request)
        if request.headers.get("Authorization") != "Bearer secret-token":
            return httpx.Response(401, json={"error": {"code": "bad_token", "message": "no"}})
        sha = path.rsplit("/", 1)[1]
        if request.method == "PUT":
            self.puts.append(sha)
            if hashlib.sha256(request.content).hexdigest() != sha:
                return httpx.Response(
                    422, json={"error": {"code": "hash_mismatch", "message": "hash"}}
                )
            created = sha not in self.blobs
            self.blobs[sha] = request.content
            return httpx.Response(201 if created else 200, json={"sha256": sha})
        self.gets.append(sha)
        if sha not in self.blobs:
            return httpx.Response(404, json={"error": {"code": "not_found", "message": "no"}})
        return httpx.Response(200, content=self.blobs[sha], headers={"Content-Type": "image/jpeg"})

    def _push(self, mutations: list[dict[str, Any]]) -> httpx.Response:
        # What the real server must never hold: a reference to bytes it does not have.
        for m in mutations:
            for item in m["fields"].get("attachments") or []:
                for key in ("sha256", "thumbnail"):
                    if item.get(key) not in self.blobs:
                        self.dangling.append(item.get(key))
        return super()._push(mutations)
