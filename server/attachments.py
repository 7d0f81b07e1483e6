"""Attachments: photos and PDFs stored in the database, addressed by their sha256.

Anyone signed in may upload bytes that match their hash and look like an image (JPEG,
PNG, WebP, HEIC) or a PDF; a download is allowed only when a record the caller can see
refers to the hash, and answers 404 otherwise so that existence does not leak.
"""

from __future__ import annotations

import hashlib

from sqlalchemy import Connection, exists, select
from sqlalchemy.dialects import postgresql, sqlite

from server import audit, db
from server.errors import Invalid, NotFound
from server.scope import Caller, visible

HEIF_BRANDS = (b"heic", b"heix", b"hevc", b"hevx", b"heim", b"heis", b"mif1", b"msf1")


def sniff(data: bytes) -> str | None:
    """The content type told by the magic bytes, or None when not an accepted kind."""
    if data.startswith(b"\xff\xd8\xff"):
        return "image/jpeg"
    if data.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image/png"
    if data[:4] == b"RIFF" and data[8:12] == b"WEBP":
        return "image/webp"
    if data[4:8] == b"ftyp" and data[8:12] in HEIF_BRANDS:
        return "image/heic"
    if data.startswith(b"%PDF-"):
        return "application/pdf"
    return None


def put(conn: Connection, caller: Caller, sha256: str, data: bytes, now: float) -> bool:
    """Store the bytes under their hash; returns True when new, False when already there."""
    if hashlib.sha256(data).hexdigest() != sha256:
        raise Invalid("the bytes do not match the sha256 in the path", code="hash_mismatch")
    content_type = sniff(data)
    if content_type is None:
        raise Invalid("only JPEG, PNG, WebP, HEIC images and PDF are accepted",
                      code="unsupported_type")
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    stored = conn.execute(
        dialect.insert(db.attachments)
        .values(
            sha256=sha256,
            content_type=content_type,
            size=len(data),
            data=data,
            created_by=caller.user_id,
            created_at=now,
        )
        .on_conflict_do_nothing(index_elements=["sha256"])
        .returning(db.attachments.c.sha256)
    )
    created = stored.first() is not None  # None when it was already there
    audit.append(conn, at=now, actor=caller.actor, action="attachment.put", targets=[sha256])
    return created


def get(conn: Connection, caller: Caller, sha256: str) -> tuple[str, bytes]:
    """The content type and bytes, when a record visible to the caller refers to them.

    Reads only: the caller writes the ``attachment.get`` audit row before answering.
    """
    refs, recs = db.attachment_refs, db.records
    allowed = conn.execute(
        select(
            exists().where(
                refs.c.sha256 == sha256,
                refs.c.record_id == recs.c.id,
                recs.c.deleted.is_(False),
                visible(recs, caller),
            )
        )
    ).scalar()
    row = None
    if allowed:
        t = db.attachments
        row = conn.execute(select(t.c.content_type, t.c.data).where(t.c.sha256 == sha256)).first()
    if row is None:
        raise NotFound("no such attachment")
    return row.content_type, bytes(row.data)
