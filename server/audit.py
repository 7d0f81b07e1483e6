"""Append-only, hash-chained audit log of reads and writes of patient data and of accounts.

Each row holds seq, time, actor, action and target ids (never field values) and
``hash = sha256(prev_hash + canonical row)``. A single head row (seq, hash) is updated in
the same transaction, which serializes appends and lets ``verify`` notice a removed tail.
Rows are written per request (one row per push or pull listing its record ids).
"""

from __future__ import annotations

import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update

from server import db
from server.statement import Statement

GENESIS = "0" * 64


def _time(at: float) -> str:
    return dt.datetime.fromtimestamp(at, dt.UTC).isoformat(timespec="milliseconds")


def row_hash(prev_hash: str, row: dict[str, Any]) -> str:
    """The chained hash of one row (its seq, at, actor, action and targets)."""
    canonical = db.dumps(
        {k: row[k] for k in ("seq", "at", "actor", "action", "targets")}
    )
    return hashlib.sha256((prev_hash + canonical).encode()).hexdigest()


# Built once: appends run on every push and pull.
_HEAD = db.audit_head
_NEXT = Statement(
    update(_HEAD)
    .where(_HEAD.c.id == 1)
    .values(seq=_HEAD.c.seq + 1)
    .returning(_HEAD.c.seq, _HEAD.c.hash)
)
_INSERT = Statement(
    insert(db.audit_log).values(
        {name: bindparam(name) for name in ("seq", "at", "actor", "action", "targets", "hash")}
    )
)
_SET_HASH = Statement(update(_HEAD).where(_HEAD.c.id == 1).values(hash=bindparam("digest")))


def append(
    conn: Connection, *, at: float, actor: str, action: str, targets: Sequence[str] = ()
) -> int:
    """Add one row in the caller's transaction; returns its seq."""
    seq, prev_hash = _NEXT.first(conn)
    seq = int(seq)
    row = {
        "seq": seq,
        "at": _time(at),
        "actor": actor[:200],
        "action": action,
        "targets": db.dumps(sorted(set(targets))),
    }
    digest = row_hash(prev_hash, row)
    _INSERT.run(conn, {**row, "hash": digest})
    _SET_HASH.run(conn, {"digest": digest})
    return seq


@dataclass(frozen=True)
class Verdict:
    """The outcome of ``verify``: ok, rows checked, and the first bad row with the reason."""

    ok: bool
    rows: int
    bad_seq: int | None = None
    reason: str = ""


def verify(conn: Connection) -> Verdict:
    """Walk the chain from the start; stop at the first row edited, removed or reordered."""
    prev_hash, expected, count = GENESIS, 1, 0
    stmt = select(db.audit_log).order_by(db.audit_log.c.seq).execution_options(yield_per=1000)
    with conn.execute(stmt) as result:
        for row in result.mappings():
            seq = int(row["seq"])
            if seq != expected:
                return Verdict(False, count, expected, f"row {expected} is missing")
            if row_hash(prev_hash, dict(row)) != row["hash"]:
                return Verdict(False, count, seq, f"row {seq} was altered (hash mismatch)")
            prev_hash, expected, count = row["hash"], expected + 1, count + 1
    head = conn.execute(select(db.audit_head).where(db.audit_head.c.id == 1)).first()
    if head is None:
        return Verdict(False, count, expected, "the head row (the chain's anchor) is missing")
    if int(head.seq) != expected - 1:
        return Verdict(False, count, expected, f"row {expected} is missing (log truncated)")
    if head.hash != prev_hash:
        return Verdict(False, count, expected - 1, f"row {expected - 1} does not match the head")
    return Verdict(True, count)


def rows(conn: Connection, limit: int = 1000) -> list[dict[str, Any]]:
    """The last ``limit`` rows, newest first (for tests and admins)."""
    result = conn.execute(
        select(db.audit_log).order_by(db.audit_log.c.seq.desc()).limit(limit)
    )
    return [dict(r) for r in result.mappings()]
