"""Migrations: a fresh database reaches the latest schema; an older one upgrades in place."""

from __future__ import annotations

from sqlalchemy import inspect, select

from server import auth, db, migrations
from server.db import Database


def test_fresh_database_matches_the_tables(database):
    assert migrations.current_version(database) == migrations.LATEST
    with database.read() as conn:
        inspector = inspect(conn)
        for name, table in db.metadata.tables.items():
            columns = {c["name"] for c in inspector.get_columns(name)}
            assert columns == {c.name for c in table.columns}, name


def test_migrate_from_scratch_and_again(empty_database_url):
    database = Database(empty_database_url)
    assert migrations.current_version(database) == 0
    assert migrations.migrate(database) == migrations.LATEST
    assert migrations.migrate(database) == migrations.LATEST
    database.dispose()


def test_upgrade_keeps_data(empty_database_url):
    old = Database(empty_database_url)
    assert migrations.migrate(old, target=2) == 2
    with old.write() as conn:
        team = auth.create_team(conn, "Kept team", 1.0)
        assert not inspect(conn).has_table("attachments")
    old.dispose()
    new = Database(empty_database_url)
    assert migrations.migrate(new) == migrations.LATEST
    with new.read() as conn:
        assert conn.execute(select(db.teams.c.id)).scalar_one() == team
        assert inspect(conn).has_table("attachments")
        indexes = {i["name"] for i in inspect(conn).get_indexes("conflicts")}
        assert "ix_conflicts_rev" in indexes
    assert migrations.current_version(new) == migrations.LATEST
    new.dispose()
