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


def test_rounds_move_from_the_organization_to_a_team(empty_database_url):
    import json

    from sqlalchemy import insert

    old = Database(empty_database_url)
    migrations.migrate(old, target=4)
    row = {"fields": "{}", "clock": "{}", "field_revs": "{}", "deleted": False, "updated_at": 1.0}
    with old.write() as conn:
        team = auth.create_team(conn, "Clinic team", 1.0)
        # Step 1's users table, before step 5 added a column: insert its columns only.
        conn.execute(
            insert(migrations._V1.tables["users"]).values(
                id="u1", username="nia", password_hash="x", role="liaison", created_at=1.0
            )
        )
        conn.execute(insert(db.memberships).values(user_id="u1", team_id=team))
        records = [
            # a round whose entries name the team's patients, one known by its author only,
            # and one nobody can place (it stays visible to all, as before)
            ("r-entries", "round", None, "nobody", {}),
            ("e1", "round_entry", team, "nobody", {"round_id": "r-entries"}),
            ("r-author", "round", None, "u1", {}),
            ("r-orphan", "round", None, "ghost", {}),
        ]
        for rev, (rid, type_, team_id, author, fields) in enumerate(records, start=1):
            conn.execute(
                insert(db.records).values(
                    id=rid,
                    type=type_,
                    team_id=team_id,
                    created_by=author,
                    rev=rev,
                    **{**row, "fields": json.dumps(fields)},
                )
            )
    old.dispose()
    new = Database(empty_database_url)
    migrations.migrate(new)
    with new.read() as conn:
        teams = dict(conn.execute(select(db.records.c.id, db.records.c.team_id)).all())
    new.dispose()
    assert teams == {"r-entries": team, "e1": team, "r-author": team, "r-orphan": None}
