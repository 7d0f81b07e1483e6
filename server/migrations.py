"""Numbered schema migrations; ``migrate`` upgrades a database in place.

Each step runs in its own transaction with the ``schema_version`` row bumped in it. A
step creates whole tables from ``server.db``; a later change to an existing table must be
a new step (``ALTER TABLE ...``), never an edit of an old one, and must not change the
table definition an earlier step creates without freezing a copy of it there.
"""

from __future__ import annotations

import json
from collections.abc import Callable

from sqlalchemy import (
    BigInteger,
    Column,
    Connection,
    Float,
    ForeignKey,
    Integer,
    MetaData,
    String,
    Table,
    func,
    insert,
    inspect,
    select,
    text,
    update,
)

from server import db

Step = Callable[[Connection], None]


# Tables as step 1 created them, before step 5 added columns (frozen: never edit).
_V1 = MetaData()
Table(
    "users",
    _V1,
    Column("id", String(36), primary_key=True),
    Column("username", String(64), nullable=False, unique=True),
    Column("password_hash", String(255), nullable=False),
    Column("role", String(16), nullable=False),
    Column("created_at", Float, nullable=False),
)
Table(
    "devices",
    _V1,
    Column("id", String(36), primary_key=True),
    Column("user_id", String(36), ForeignKey("users.id"), nullable=False, index=True),
    Column("name", String(100), nullable=False),
    Column("token_hash", String(64), nullable=False, unique=True),
    Column("created_at", Float, nullable=False),
    Column("last_used_at", Float, nullable=False),
    Column("revoked_at", Float),
    Column("last_mutation_id", BigInteger, nullable=False, default=0),
)
Table(
    "audit_head",
    _V1,
    Column("id", Integer, primary_key=True, autoincrement=False),
    Column("seq", BigInteger, nullable=False),
    Column("hash", String(64), nullable=False),
)


def _create(*tables: str) -> Step:
    def step(conn: Connection) -> None:
        for name in tables:
            table = _V1.tables[name] if name in _V1.tables else db.metadata.tables[name]
            table.create(conn)

    return step


def _accounts(conn: Connection) -> None:
    _create("counters", "teams", "users", "memberships", "devices", "throttle")(conn)
    _create("audit_log", "audit_head")(conn)
    conn.execute(insert(db.counters).values(name="rev", value=0))
    conn.execute(insert(db.audit_head).values(id=1, seq=0, hash="0" * 64))


def _conflicts_by_rev(conn: Connection) -> None:
    # Pulls read the conflicts of their rev window (a value of the puller's that lost).
    conn.execute(text("CREATE INDEX ix_conflicts_rev ON conflicts (rev)"))


def _hardening(conn: Connection) -> None:
    for table, column, kind in (
        ("users", "disabled_at", "FLOAT"),
        ("devices", "audited_from", "BIGINT"),
        ("devices", "audited_to", "BIGINT"),
        ("audit_head", "key_id", "VARCHAR(64)"),
    ):
        conn.execute(text(f"ALTER TABLE {table} ADD COLUMN {column} {kind}"))
    _create("membership_changes", "attachment_uploads")(conn)
    # Whoever stored a blob so far counts as having uploaded it.
    conn.execute(
        insert(db.attachment_uploads).from_select(
            ["sha256", "user_id", "created_at"],
            select(
                db.attachments.c.sha256, db.attachments.c.created_by, db.attachments.c.created_at
            ),
        )
    )
    _rounds_to_teams(conn)


def _rounds_to_teams(conn: Connection) -> None:
    """Rounds were visible to the whole organization; they now belong to a team: the team
    of the patients discussed in them, else their author's first team. A round neither
    tells stays where it was (visible to all), as before this step."""
    r = db.records
    rounds = conn.execute(
        select(r.c.id, r.c.created_by).where(r.c.type == "round", r.c.team_id.is_(None))
    ).all()
    if not rounds:
        return
    by_round: dict[str, str] = {}
    entries = conn.execute(
        select(r.c.fields, r.c.team_id).where(r.c.type == "round_entry", r.c.team_id.isnot(None))
    )
    for fields, team_id in entries:
        by_round.setdefault(json.loads(fields).get("round_id"), team_id)
    for round_id, author in rounds:
        team_id = (
            by_round.get(round_id)
            or conn.execute(
                select(db.memberships.c.team_id)
                .where(db.memberships.c.user_id == author)
                .order_by(db.memberships.c.team_id)
                .limit(1)
            ).scalar()
        )
        if team_id is not None:
            conn.execute(update(r).where(r.c.id == round_id).values(team_id=team_id))


MIGRATIONS: list[Step] = [
    _accounts,  # 1: teams, users, devices, throttling, audit log
    _create("records", "conflicts", "scope_changes", "push_results"),  # 2: sync
    _create("attachments", "attachment_refs"),  # 3: attachments in the database
    _conflicts_by_rev,  # 4: conflicts found by rev for pulls
    _hardening,  # 5: disabled users, membership changes, uploaders, audit key, team rounds
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
            now = conn.execute(select(db.schema_version.c.version).with_for_update()).scalar_one()
            if now >= number:
                continue
            MIGRATIONS[number - 1](conn)
            conn.execute(update(db.schema_version).values(version=number))
    return max(version, target)
