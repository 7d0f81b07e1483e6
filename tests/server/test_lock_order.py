"""What a push checks under the rev lock, and the order in which writers take their locks.

On PostgreSQL a push reads the caller (and its teams) before it takes the rev lock
(``server.optimistic``); a membership that ends in between must still be seen. And every
writer takes its locks in the order a push does (the rev counter, device rows, the audit
head), so that none waits for another that waits for it. On SQLite, whose writers run one
at a time, the same steps simply run in turn: the outcome must be the same.
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from typing import Any

import psycopg
from sqlalchemy import delete, select

from server import accounts, auth, db, records
from server.db import Database
from server.service import Service
from tests.server.conftest import FakeClock, Org
from tests.server.test_optimistic import Phone, _lock_waiters, _until


def _change_before_the_lock(database: Database, push: Callable[[], Any], change: Any) -> Any:
    """``push()`` with ``change`` (a statement) committed after the push read what it reads
    before the rev lock and before it has the lock (PostgreSQL); SQLite, whose writes are
    serial, commits the change first. Returns what ``push`` returned."""
    if database.is_sqlite:
        with database.write() as conn:
            conn.execute(change)
        return push()
    return _while_the_rev_lock_is_held(database, push, lambda conn: conn.execute(change))


def _while_the_rev_lock_is_held(
    database: Database, call: Callable[[], Any], meanwhile: Callable[[Any], None]
) -> Any:
    """Run ``call`` in a thread while another transaction holds the rev lock; once the
    call waits for that lock, run ``meanwhile(conn)`` in the holding transaction, which
    then commits. Returns what ``call`` returned."""
    answers: dict[str, Any] = {}

    def run() -> None:
        try:
            answers["value"] = call()
        except BaseException as exc:  # noqa: BLE001 - reported below
            answers["error"] = exc

    thread = threading.Thread(target=run, daemon=True)
    with database.write() as conn:
        records.Revs(conn)
        thread.start()
        _until(lambda: _lock_waiters(database.url) >= 1, "the call waiting for the rev lock")
        meanwhile(conn)
    thread.join(30)
    if "error" in answers:
        raise AssertionError("the call failed") from answers["error"]
    return answers["value"]


def test_a_push_read_before_its_user_left_the_team_is_refused(
    database: Database, org: Org, settings: Any, clock: FakeClock
) -> None:
    service = Service(settings, database, clock)
    alice = Phone(service, "alice")
    patient = str(uuid.uuid4())
    mutation = alice.upsert(patient, {"name": "Ann"}, None, alice.stamp(clock() * 1000), "patient")
    membership = db.memberships.c
    leave = delete(db.memberships).where(
        membership.user_id == org.users["alice"], membership.team_id == org.team_a
    )
    # The push reads alice's teams, merges, then waits for the lock; she leaves the team
    # and that commits before the push has the lock.
    answer = _change_before_the_lock(database, lambda: alice.push(mutation), leave)
    result = answer["results"][0]
    assert result["status"] == "rejected"
    assert result["error"]["code"] == "out_of_scope"
    assert answer["last_mutation_id"] == 1
    with database.read() as conn:
        assert records.load(conn, patient) is None


def test_a_push_read_before_its_user_joined_a_team_may_name_it(
    database: Database, org: Org, settings: Any, clock: FakeClock
) -> None:
    service = Service(settings, database, clock)
    bob = Phone(service, "bob")  # of team B only
    patient = str(uuid.uuid4())
    stamp = bob.stamp(clock() * 1000)
    mutation = bob.upsert(patient, {"name": "Ann", "team_id": org.team_a}, None, stamp, "patient")
    join = db.memberships.insert().values(user_id=org.users["bob"], team_id=org.team_a)
    answer = _change_before_the_lock(database, lambda: bob.push(mutation), join)
    assert answer["results"][0]["status"] == "applied"
    with database.read() as conn:
        stored = records.load(conn, patient)
    assert stored is not None and stored.team_id == org.team_a


def test_an_admin_action_takes_the_rev_lock_before_its_device_row(
    database: Database, org: Org, settings: Any, clock: FakeClock
) -> None:
    # A push holds the rev lock, then locks its device's row. An admin action that
    # locked its own device's row (recording its use) and then waited for the rev lock
    # (a membership change takes it) would deadlock with a push from that device.
    service = Service(settings, database, clock)
    root = Phone(service, "root")
    clock.advance(auth.TOUCH_EVERY + 1)  # the action records the device's use

    def remove_alice(conn: Any, actor: str, now: float) -> None:
        accounts.remove_from_team(conn, org.users["alice"], org.team_a, actor, now)

    def device_row_is_free(_conn: Any) -> None:
        url = database.url.replace("postgresql+psycopg://", "postgresql://")
        with psycopg.connect(url) as other:  # a push of root's device, as it holds the lock
            other.execute("SELECT id FROM devices WHERE id = %s FOR UPDATE NOWAIT", [root.id])

    if database.is_sqlite:
        service.admin(root.token, remove_alice)
    else:
        _while_the_rev_lock_is_held(
            database, lambda: service.admin(root.token, remove_alice), device_row_is_free
        )
    with database.read() as conn:
        teams = conn.execute(
            select(db.memberships.c.team_id).where(db.memberships.c.user_id == org.users["alice"])
        ).all()
        used = conn.execute(
            select(db.devices.c.last_used_at).where(db.devices.c.id == root.id)
        ).scalar_one()
    assert teams == []
    assert used == clock()
