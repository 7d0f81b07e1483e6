"""Attachments: photos and PDFs stored in the database, addressed by their sha256.

Knowing a hash grants nothing. Anyone signed in may upload bytes that match their hash and
look like an image (JPEG, PNG, WebP, HEIC) or a PDF, and the upload records that this
user holds them; a push may then refer to a hash only when its user uploaded the bytes
or a record the user can see already refers to them (``may_refer``). A download is
allowed only when a record the caller can see refers to the hash, and answers 404
otherwise; an upload answers the same whether or not the bytes were there before.

Uploads count against a daily byte budget per device and per user (429 past it), and
blobs that no record refers to any more are deleted after a grace period (``collect``),
which leaves a phone time to push the record it uploaded them for.
"""

from __future__ import annotations

import hashlib

from sqlalchemy import Connection, delete, exists, select
from sqlalchemy.dialects import postgresql, sqlite

from server import audit, db, throttle
from server.errors import Invalid, NotFound
from server.scope import Caller, visible
from server.settings import MIB, Settings

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


DAY = 24 * 3600


def put(
    conn: Connection, caller: Caller, sha256: str, data: bytes, now: float, settings: Settings
) -> bool:
    """Store the bytes under their hash and note that the caller holds them; returns True
    when they were new (never told to the client). Raises Throttled past a budget."""
    if hashlib.sha256(data).hexdigest() != sha256:
        raise Invalid("the bytes do not match the sha256 in the path", code="hash_mismatch")
    content_type = sniff(data)
    if content_type is None:
        raise Invalid(
            "only JPEG, PNG, WebP, HEIC images and PDF are accepted", code="unsupported_type"
        )
    budgets = {
        f"upload-device:{caller.device_id}": settings.attachment_device_mib_per_day * MIB,
        f"upload-user:{caller.user_id}": settings.attachment_user_mib_per_day * MIB,
    }
    throttle.reserve(
        conn,
        budgets,
        DAY,
        now,
        amount=len(data),
        message="the daily upload allowance is used up; the rest goes tomorrow",
    )
    dialect = postgresql if conn.dialect.name == "postgresql" else sqlite
    conn.execute(
        dialect.insert(db.attachment_uploads)
        .values(sha256=sha256, user_id=caller.user_id, created_at=now)
        .on_conflict_do_nothing(index_elements=["sha256", "user_id"])
    )
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


def may_refer(conn: Connection, caller: Caller, hashes: set[str]) -> set[str]:
    """The hashes among ``hashes`` that the caller may put into a record: stored bytes the
    caller's user uploaded, or that a record the caller sees refers to already."""
    if not hashes:
        return set()
    wanted = sorted(hashes)
    up, refs, recs, blobs = db.attachment_uploads, db.attachment_refs, db.records, db.attachments
    own = select(up.c.sha256).where(
        up.c.user_id == caller.user_id,
        up.c.sha256.in_(wanted),
        exists().where(blobs.c.sha256 == up.c.sha256),
    )
    seen = select(refs.c.sha256).where(
        refs.c.sha256.in_(wanted),
        refs.c.record_id == recs.c.id,
        recs.c.deleted.is_(False),
        visible(recs, caller),
    )
    return set(conn.execute(own.union(seen)).scalars())


def collect(conn: Connection, now: float, grace_seconds: float) -> int:
    """Delete the blobs that no record refers to, stored more than ``grace_seconds`` ago,
    with their upload notes; returns how many blobs went."""
    blobs, refs, up = db.attachments, db.attachment_refs, db.attachment_uploads
    unreferenced = ~exists().where(refs.c.sha256 == blobs.c.sha256)
    doomed = list(
        conn.execute(
            select(blobs.c.sha256).where(blobs.c.created_at < now - grace_seconds, unreferenced)
        ).scalars()
    )
    for start in range(0, len(doomed), 500):
        chunk = doomed[start : start + 500]
        conn.execute(delete(up).where(up.c.sha256.in_(chunk)))
        conn.execute(delete(blobs).where(blobs.c.sha256.in_(chunk)))
    return len(doomed)
