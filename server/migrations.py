"""Numbered schema migrations; ``migrate`` upgrades a database in place.

Each step runs in its own transaction with the ``schema_version`` row bumped in it. A
step creates whole tables from ``server.db``; a later change to an existing table must be
a new step (``ALTER TABLE ...``), never an edit of an old one, and must not change the
table definition an earlier step creates without freezing a copy of it there.
"""

from __future__ import annotations

from collections.abc import Callable

from sqlalchemy import Connection, func, insert, inspect, select, text, update

from server import db

Step = Callable[[Connection], None]


def _create(*tables: str) -> Step:
    def step(conn: Connection) -> None:
        for name in tables:
            db.metadata.tables[name].create(conn)

    return step


def _accounts(conn: Connection) -> None:
    _create("counters", "teams", "users", "memberships", "devices", "throttle")(conn)
    _create("audit_log", "audit_head")(conn)
    conn.execute(insert(db.counters).values(name="rev", value=0))
    conn.execute(insert(db.audit_head).values(id=1, seq=0, hash="0" * 64))


def _conflicts_by_rev(conn: Connection) -> None:
    # Pulls read the conflicts of their rev window (a value of the puller's that lost).
    conn.execute(text("CREATE INDEX ix_conflicts_rev ON conflicts (rev)"))


MIGRATIONS: list[Step] = [
    _accounts,  # 1: teams, users, devices, throttling, audit log
    _create("records", "conflicts", "scope_changes", "push_results"),  # 2: sync
    _create("attachments", "attachment_refs"),  # 3: attachments in the database
    _conflicts_by_rev,  # 4: conflicts found by rev for pulls
]
LATEST = len(MIGRATIONS)


def current_version(database: db.Database) -> int:
    """The schema version of the database (0 when empty)."""
    with database.read() as conn:
        if not inspect(conn).has_table("schema_version"):
            return 0
        return int(conn.execute(select(func.max(db.schema_version.c.version))).scalar() or 0)


def migrate(database: db.Database, target: int = LATEST) -> int:
    """Apply the steps above the current version up to ``target``; return the new version."""
    version = current_version(database)
    if version > LATEST:
        raise RuntimeError(f"database schema {version} is newer than this server ({LATEST})")
    if version == 0 and target > 0:
        with database.write() as conn:
            db.schema_version.create(conn, checkfirst=True)
            conn.execute(insert(db.schema_version).values(version=0))
    for number in range(version + 1, target + 1):
        with database.write() as conn:
            # Re-check inside the write lock: another process may have migrated meanwhile.
            now = conn.execute(
                select(db.schema_version.c.version).with_for_update()
            ).scalar_one()
            if now >= number:
                continue
            MIGRATIONS[number - 1](conn)
            conn.execute(update(db.schema_version).values(version=number))
    return max(version, target)
