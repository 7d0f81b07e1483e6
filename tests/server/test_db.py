"""Transactions and pooled connections: ``lookup`` reads outside a transaction without
leaving its connection so, and a PostgreSQL connection that died while idle is replaced."""

from __future__ import annotations

import psycopg
import pytest
from sqlalchemy import select

from server import db
from server.db import Database
from server.errors import Unavailable
from tests.conftest import TEST_AUDIT_KEY


def _add_team(conn, team_id: str) -> None:  # type: ignore[no-untyped-def]
    conn.execute(db.teams.insert().values(id=team_id, name=team_id, created_at=0.0))


def _teams(database: Database) -> list[str]:
    with database.read() as conn:
        return list(conn.execute(select(db.teams.c.id)).scalars())


def test_lookup_sees_what_committed_and_leaves_later_writes_atomic(database_url):
    database = Database(database_url, pool_size=1, audit_key=TEST_AUDIT_KEY)
    try:
        with database.write() as conn:
            _add_team(conn, "t1")
        with database.lookup() as conn:
            assert list(conn.execute(select(db.teams.c.id)).scalars()) == ["t1"]
            raw = conn.connection.dbapi_connection
            if not database.is_sqlite:  # no transaction open around the reads
                assert raw.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
        # The same pooled connection, back to transactions: a failed write leaves nothing.
        with pytest.raises(RuntimeError), database.write() as conn:
            assert conn.connection.dbapi_connection is raw
            _add_team(conn, "t2")
            raise RuntimeError("the write fails after its first statement")
        assert _teams(database) == ["t1"]
    finally:
        database.dispose()


def _kill_backends(url: str) -> None:
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as admin:
        admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )


@pytest.mark.postgres
def test_a_connection_that_died_while_idle_is_pinged_and_replaced(pg_shared):
    # Idle longer than ping_after_idle (0 here): pinged at checkout, and replaced.
    database = Database(pg_shared, pool_size=1, ping_after_idle=0, audit_key=TEST_AUDIT_KEY)
    try:
        _teams(database)
        _kill_backends(pg_shared)
        _teams(database)  # no error: the dead connection was not handed out
    finally:
        database.dispose()


@pytest.mark.postgres
def test_a_connection_used_a_moment_ago_is_not_pinged(pg_shared):
    # The price of skipping the ping: a connection that died within the idle time fails
    # its request (503, which a phone retries) and is dropped, and the next one works.
    database = Database(pg_shared, pool_size=1, ping_after_idle=3600, audit_key=TEST_AUDIT_KEY)
    try:
        _teams(database)
        _kill_backends(pg_shared)
        with pytest.raises(Unavailable):
            _teams(database)
        _teams(database)
    finally:
        database.dispose()
