"""Append-only, keyed and hash-chained audit log of reads and writes of patient data and of
accounts.

Each row holds seq, time, actor, action and target ids (never field values) and
``hash = HMAC-SHA256(key, prev_hash + canonical row)``. The key is held outside the
database (``LIAISON_AUDIT_KEY``, or the file ``LIAISON_AUDIT_KEY_FILE``, by default
``var/audit.key``, created on first use), so someone who can write to the database but
not read the server's key cannot remove, edit or forge a row and recompute the chain.
Against someone who holds the key too, ``verify`` checks *anchors*: heads (seq and hash)
printed by ``python -m server audit-head`` and kept somewhere else (another machine, a
write-once store); a rewritten past no longer contains them.

A single head row (seq, hash, key id) is updated in the same transaction as each append,
which serializes appends and lets ``verify`` notice a removed tail. Rows are written per
request (one row per push, per pull, per sign-in, listing ids).
"""

from __future__ import annotations

import datetime as dt
import functools
import hashlib
import hmac
import os
import secrets
import stat
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select, update

from server import db
from server.errors import ServerError
from server.statement import Pipeline, Statement, json_rows

KEY_ENV = "LIAISON_AUDIT_KEY"
KEY_FILE_ENV = "LIAISON_AUDIT_KEY_FILE"
DEFAULT_KEY_FILE = "var/audit.key"


class AuditKeyError(ServerError):
    """The audit key is missing, malformed, exposed, or not the one the chain was written with."""

    code = "audit_key"


def load_key(environ: Mapping[str, str] | None = None) -> bytes:
    """The audit key: ``LIAISON_AUDIT_KEY`` (64 hex digits), else the key file, which is
    created (mode 0600, 32 random bytes) when it does not exist yet."""
    env = os.environ if environ is None else environ
    if env.get(KEY_ENV):
        return _parse_key(env[KEY_ENV], KEY_ENV)
    path = Path(env.get(KEY_FILE_ENV) or DEFAULT_KEY_FILE)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        if os.stat(path).st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            raise AuditKeyError(f"{path} is readable by other users; chmod 600 it") from None
        return _parse_key(path.read_text(), str(path))
    except FileNotFoundError:
        path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
        return load_key({**env, KEY_FILE_ENV: str(path)})
    with os.fdopen(fd, "w") as out:
        out.write(secrets.token_hex(32) + "\n")
        out.flush()
        os.fsync(out.fileno())
    return _parse_key(path.read_text(), str(path))


def _parse_key(text: str, where: str) -> bytes:
    try:
        key = bytes.fromhex(text.strip())
    except ValueError:
        key = b""
    if len(key) < 32:
        raise AuditKeyError(f"{where} must hold at least 64 hex digits (a 256-bit key)")
    return key


@functools.cache
def key_id(key: bytes) -> str:
    """A fingerprint of the key, stored with the head: tells "another key" from tampering."""
    return hmac.new(key, b"liaison audit key id", hashlib.sha256).hexdigest()[:32]


def bind_key(conn: Connection, key: bytes) -> None:
    """Record the key's fingerprint on a new chain; refuse a key the chain was not written
    with (several server processes must share one key)."""
    head = conn.execute(select(db.audit_head).where(db.audit_head.c.id == 1)).first()
    if head is None:
        return  # reported by verify
    if head.key_id is None:
        conn.execute(
            update(db.audit_head).where(db.audit_head.c.id == 1).values(key_id=key_id(key))
        )
    elif head.key_id != key_id(key):
        raise AuditKeyError(
            "the audit log was written with another audit key: set LIAISON_AUDIT_KEY (or "
            "LIAISON_AUDIT_KEY_FILE) to the key the other server processes use"
        )


GENESIS = "0" * 64


def _time(at: float) -> str:
    return dt.datetime.fromtimestamp(at, dt.UTC).isoformat(timespec="milliseconds")


def row_hash(key: bytes, prev_hash: str, row: Mapping[str, Any]) -> str:
    """The keyed, chained hash of one row (its seq, at, actor, action and targets)."""
    canonical = db.dumps({k: row[k] for k in ("seq", "at", "actor", "action", "targets")})
    return hmac.new(key, (prev_hash + canonical).encode(), hashlib.sha256).hexdigest()


def _key_of(conn: Connection) -> bytes:
    key: bytes | None = conn.get_execution_options().get("liaison_audit_key")
    if not key:
        raise AuditKeyError("this database was opened without an audit key")
    return key


# Built once: appends run on every push and pull.
_HEAD = db.audit_head
_NEXT = Statement(
    update(_HEAD)
    .where(_HEAD.c.id == 1)
    .values(seq=_HEAD.c.seq + 1)
    .returning(_HEAD.c.seq, _HEAD.c.hash, _HEAD.c.key_id)
)
_COLUMNS = ["seq", "at", "actor", "action", "targets", "hash"]
_INSERT = Statement(insert(db.audit_log).values({name: bindparam(name) for name in _COLUMNS}))
_ENTRY_ROWS = json_rows(db.audit_log, _COLUMNS)
_INSERT_ROWS = Statement(insert(db.audit_log).from_select(_COLUMNS, select(*_ENTRY_ROWS.c)))
_SET_HASH = Statement(
    update(_HEAD)
    .where(_HEAD.c.id == 1)
    .values(hash=bindparam("digest"), key_id=bindparam("key_id"))
)


def append(
    conn: Connection, *, at: float, actor: str, action: str, targets: Sequence[str] = ()
) -> int:
    """Add one row in the caller's transaction; returns its seq."""
    seq, prev_hash, chain_key = _NEXT.first(conn)
    entry = Entry(at, actor, action, targets)
    row, written_with = _row(conn, int(seq), prev_hash, chain_key, entry)
    _INSERT.run(conn, row)
    _SET_HASH.run(conn, {"digest": row["hash"], "key_id": written_with})
    return int(seq)


LOCK_HEAD = Statement(
    select(_HEAD.c.seq, _HEAD.c.hash, _HEAD.c.key_id).where(_HEAD.c.id == 1).with_for_update()
)
"""Locks the head row and reads it (PostgreSQL): the ``head`` that ``queue_append`` takes."""
_SET_HEAD = Statement(
    update(_HEAD)
    .where(_HEAD.c.id == 1)
    .values(seq=bindparam("seq"), hash=bindparam("digest"), key_id=bindparam("key_id"))
)


@dataclass(frozen=True)
class Entry:
    """One row to append: when, who, what and the target ids."""

    at: float
    actor: str
    action: str
    targets: Sequence[str] = ()


def queue_append(
    pipeline: Pipeline, conn: Connection, head: Sequence[Any], entries: Sequence[Entry]
) -> None:
    """Queue the rows of ``entries``, in order, after ``head``, and the head's update, as
    ``append`` would write them one by one (the head once, at the last); PostgreSQL.

    ``head`` is (seq, hash, key id): the row LOCK_HEAD read in this transaction, whose
    lock it still holds.
    """
    if not entries:
        return
    seq, digest, chain_key = head
    rows = []
    for entry in entries:
        row, chain_key = _row(conn, int(seq) + 1, digest, chain_key, entry)
        seq, digest = row["seq"], row["hash"]
        rows.append(row)
    pipeline.add(_INSERT_ROWS, {"rows": db.dumps(rows)})  # PostgreSQL: one statement
    pipeline.add(_SET_HEAD, {"seq": seq, "digest": digest, "key_id": chain_key})


def _row(
    conn: Connection, seq: int, prev_hash: str, chain_key: str | None, entry: Entry
) -> tuple[dict[str, Any], str]:
    """The row with seq ``seq`` chained onto ``prev_hash`` (with its hash), and the id
    of the key it is written with."""
    key = _key_of(conn)
    if chain_key is not None and chain_key != key_id(key):
        raise AuditKeyError("the audit log was written with another audit key")
    row = {
        "seq": seq,
        "at": _time(entry.at),
        "actor": entry.actor[:200],
        "action": entry.action,
        "targets": db.dumps(sorted(set(entry.targets))),
    }
    return {**row, "hash": row_hash(key, prev_hash, row)}, key_id(key)


@dataclass(frozen=True)
class Verdict:
    """The outcome of ``verify``: ok, rows checked, the head, and the first bad row."""

    ok: bool
    rows: int
    bad_seq: int | None = None
    reason: str = ""
    head: str = ""  # "seq:hash" of the last row: an anchor to keep elsewhere


def parse_anchor(text: str) -> tuple[int, str]:
    """An anchor "SEQ:HASH" as printed by ``audit-head``; raises ValueError."""
    seq, _, digest = text.strip().partition(":")
    if not seq.isdigit() or len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise ValueError(f"not an audit anchor (SEQ:HASH): {text.strip()[:80]!r}")
    return int(seq), digest


def verify(conn: Connection, key: bytes, anchors: Iterable[tuple[int, str]] = ()) -> Verdict:
    """Walk the chain from the start; stop at the first row edited, removed, reordered or
    forged without the key, or at the first anchor the chain no longer holds."""
    wanted = dict(anchors)
    prev_hash, expected, count = GENESIS, 1, 0
    stmt = select(db.audit_log).order_by(db.audit_log.c.seq).execution_options(yield_per=1000)
    head = conn.execute(select(db.audit_head).where(db.audit_head.c.id == 1)).first()
    if head is not None and head.key_id not in (None, key_id(key)):
        return Verdict(False, 0, 1, "the chain was written with another audit key")
    with conn.execute(stmt) as result:
        for row in result.mappings():
            seq = int(row["seq"])
            if seq != expected:
                return Verdict(False, count, expected, f"row {expected} is missing")
            if not hmac.compare_digest(row_hash(key, prev_hash, dict(row)), row["hash"]):
                return Verdict(False, count, seq, f"row {seq} was altered (hash mismatch)")
            if seq in wanted and wanted.pop(seq) != row["hash"]:
                return Verdict(
                    False,
                    count,
                    seq,
                    f"row {seq} differs from its anchor: the log was rewritten up to there",
                )
            prev_hash, expected, count = row["hash"], expected + 1, count + 1
    if head is None:
        return Verdict(False, count, expected, "the head row (the chain's anchor) is missing")
    if int(head.seq) != expected - 1:
        return Verdict(False, count, expected, f"row {expected} is missing (log truncated)")
    if head.hash != prev_hash:
        return Verdict(False, count, expected - 1, f"row {expected - 1} does not match the head")
    if wanted:
        seq = min(wanted)
        return Verdict(False, count, seq, f"row {seq} of an anchor is missing (log truncated)")
    return Verdict(True, count, head=f"{expected - 1}:{prev_hash}")


def head(conn: Connection) -> str:
    """The current head as an anchor, "seq:hash"."""
    found = conn.execute(
        select(db.audit_head.c.seq, db.audit_head.c.hash).where(db.audit_head.c.id == 1)
    ).first()
    if found is None:
        raise AuditKeyError("the audit head row is missing")
    return f"{int(found.seq)}:{found.hash}"


def rows(conn: Connection, limit: int = 1000) -> list[dict[str, Any]]:
    """The last ``limit`` rows, newest first (for tests and admins)."""
    result = conn.execute(select(db.audit_log).order_by(db.audit_log.c.seq.desc()).limit(limit))
    return [dict(r) for r in result.mappings()]
