"""Hot statements on the driver: same rows as Core, IN lists, errors mapped like the others."""

from __future__ import annotations

import pytest
from sqlalchemy import bindparam, func, insert, select

from server import db
from server.errors import Conflict
from server.statement import InStatements, Pipeline, Statement

_TEAM = insert(db.teams).values(id=bindparam("id"), name=bindparam("name"), created_at=1.0)
ADD_TEAM = Statement(_TEAM)
NAMES = InStatements(
    lambda ids: (
        select(db.teams.c.name).where(db.teams.c.id.in_(ids)).order_by(db.teams.c.name)
        if ids
        else select(db.teams.c.name).where(db.teams.c.id.is_(None))
    )
)


def test_rows_scalars_and_executemany(database):
    with database.write() as conn:
        ADD_TEAM.run_many(conn, [{"id": f"t{i}", "name": f"Team {i}"} for i in range(3)])
        ADD_TEAM.run_many(conn, [])  # nothing to do
        found = NAMES(2).rows(conn, NAMES.params(["t2", "t0"]))
        assert [row[0] for row in found] == ["Team 0", "Team 2"]
        assert NAMES(0).rows(conn, NAMES.params([])) == []
        # A fixed value in the statement ("rev") is bound by the statement itself.
        high = Statement(select(db.counters.c.value).where(db.counters.c.name == "rev"))
        assert high.scalar(conn) == 0
        assert high.first(conn) == (0,)
        assert Statement(select(db.teams.c.id).where(db.teams.c.id == "none")).first(conn) is None
    with database.read() as conn:  # committed
        assert conn.execute(select(db.teams.c.id).order_by(db.teams.c.id)).scalars().all() == [
            "t0",
            "t1",
            "t2",
        ]


def test_driver_errors_are_translated_and_roll_back(database):
    with database.write() as conn:
        ADD_TEAM.run(conn, {"id": "t1", "name": "One"})
    with pytest.raises(Conflict), database.write() as conn:
        ADD_TEAM.run(conn, {"id": "t2", "name": "Two"})
        ADD_TEAM.run(conn, {"id": "t1", "name": "Again"})  # duplicate key
    with database.read() as conn:
        assert conn.execute(select(db.teams.c.id)).scalars().all() == ["t1"]


def test_a_pipeline_answers_each_statement_in_order_and_can_commit(database):
    with database.write() as conn:
        pipeline = Pipeline(conn)
        pipeline.add_many(ADD_TEAM, [{"id": f"t{i}", "name": f"Team {i}"} for i in range(3)])
        pipeline.add_many(ADD_TEAM, [])  # nothing to do
        # A read queued after writes sees them.
        names = pipeline.add(NAMES(2), NAMES.params(["t2", "t0"]))
        nothing = pipeline.add(Statement(select(db.teams.c.id).where(db.teams.c.id == "none")))
        answer = pipeline.run(commit=True)
        assert [row[0] for row in answer[names]] == ["Team 0", "Team 2"]
        assert answer[nothing] == []
        assert len(answer) == 3
        assert Pipeline(conn).run() == []
    with database.read() as conn:  # committed (on PostgreSQL by the pipeline itself)
        assert conn.execute(select(func.count()).select_from(db.teams)).scalar() == 3


def test_a_pipeline_error_is_translated_and_rolls_everything_back(database):
    with pytest.raises(Conflict), database.write() as conn:
        pipeline = Pipeline(conn)
        pipeline.add(ADD_TEAM, {"id": "t1", "name": "One"})
        pipeline.add(ADD_TEAM, {"id": "t1", "name": "Again"})  # duplicate key
        pipeline.add(ADD_TEAM, {"id": "t2", "name": "Two"})
        pipeline.run(commit=True)
    with database.read() as conn:
        assert conn.execute(select(db.teams.c.id)).scalars().all() == []


def _prepared(conn) -> list[str]:  # type: ignore[no-untyped-def]
    """The statements the server holds prepared for this connection (PostgreSQL)."""
    rows = conn.exec_driver_sql("SELECT statement FROM pg_prepared_statements").all()
    return [row[0] for row in rows]


def test_a_replanned_statement_is_planned_at_each_run_with_the_same_rows(database):
    by_name = select(db.teams.c.id).where(db.teams.c.name == bindparam("name"))
    kept, replanned = Statement(by_name), Statement(by_name.limit(5), replan=True)
    with database.write() as conn:
        ADD_TEAM.run(conn, {"id": "t1", "name": "One"})
        for _ in range(8):  # psycopg prepares a statement run five times
            assert kept.rows(conn, {"name": "One"}) == [("t1",)]
            assert replanned.rows(conn, {"name": "One"}) == [("t1",)]
        pipeline = Pipeline(conn)
        at = pipeline.add(replanned, {"name": "One"})
        assert pipeline.run()[at] == [("t1",)]
        if not database.is_sqlite:
            prepared = _prepared(conn)
            assert any("teams.name" in s and "LIMIT" not in s for s in prepared)
            assert not any("LIMIT" in s for s in prepared)  # a generic plan is never kept
