"""SyncEngine + SyncClient + the real encrypted store against the real server app in-process.

The server runs through ``httpx.ASGITransport`` on SQLite and PostgreSQL (the ``database``
fixture of tests/server/conftest.py); each phone is an ``app.store.Store`` in tmp_path.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from app.store import Store
from server import db, records
from server.app import create_app
from server.db import Database
from server.settings import Settings
from sync.client import RetryPolicy, SyncClient
from sync.engine import Progress, SyncEngine, SyncResult, SyncStatus
from tests.server import conftest as server_fixtures
from tests.server.conftest import PASSWORD, FakeClock, Org

# The server's fixtures (SQLite and PostgreSQL databases, the fake clock, the org).
sqlite_template = server_fixtures.sqlite_template
pg_shared = server_fixtures.pg_shared
database_url = server_fixtures.database_url
database = server_fixtures.database
clock = server_fixtures.clock
settings = server_fixtures.settings
org = server_fixtures.org

JSON = dict[str, Any]


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coro)


class Faulty(httpx.AsyncBaseTransport):
    """The in-process app behind scripted faults: drop before or after the app handles it."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.faults: list[tuple[str, str]] = []  # (path suffix, "before" | "after")
        self.before_push: Callable[[], None] | None = None
        self.paths: list[str] = []

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self.paths.append(path)
        fault = next((f for f in self.faults if path.endswith(f[0])), None)
        if fault is not None:
            self.faults.remove(fault)
            if fault[1] == "before":
                raise httpx.ConnectError("dropped before the request")
        if self.before_push is not None and path.endswith("/push"):
            self.before_push()
        response = await self.inner.handle_async_request(request)
        if fault is not None:
            await response.aread()
            raise httpx.ReadError("dropped before the answer")
        return response


@dataclass
class Phone:
    """One enrolled device: its store, client and engine."""

    username: str
    store: Store
    client: SyncClient
    transport: Faulty
    device_id: str
    progress: list[Progress] = field(default_factory=list)

    @property
    def engine(self) -> SyncEngine:
        return SyncEngine(self.store, self.client, on_progress=self.progress.append)

    async def sync(self) -> SyncResult:
        return await self.engine.sync()

    def visible(self) -> dict[str, JSON]:
        return {r["id"]: r["fields"] for r in self.store.list()}


@dataclass
class World:
    """The server app over one database, and a way to make phones."""

    database: Database
    settings: Settings
    clock: FakeClock
    tmp: Path

    def __post_init__(self) -> None:
        self.app = create_app(self.settings, self.database, clock=self.clock)

    async def phone(self, username: str, *, ahead_ms: int = 0) -> Phone:
        transport = Faulty(httpx.ASGITransport(app=self.app))
        holder: dict[str, Store] = {}

        async def no_sleep(_seconds: float) -> None:
            return None

        client = SyncClient(
            "http://localhost",
            token=lambda: holder["store"].get_meta("token"),
            transport=transport,
            retry=RetryPolicy(attempts=3),
            sleep=no_sleep,
        )
        enrolled = await client.enrol(username, PASSWORD, f"{username}'s phone")
        store = Store.open(
            self.tmp / f"{username}-{uuid.uuid4().hex[:6]}",
            os.urandom(32),
            node_id=enrolled["device_id"],
            wall=lambda: int(self.clock() * 1000) + ahead_ms,
        )
        store.set_meta("token", enrolled["token"])
        holder["store"] = store
        return Phone(username, store, client, transport, enrolled["device_id"])

    def server_records(self, team_id: str) -> dict[str, JSON]:
        """Live records a member of ``team_id`` sees: its team's and the org's."""
        with self.database.read() as conn:
            rows = conn.execute(select(db.records)).all()
        found = [records.from_row(r) for r in rows]
        return {r.id: r.fields for r in found if not r.deleted and r.team_id in (None, team_id)}

    def high_water(self) -> int:
        with self.database.read() as conn:
            return records.high_water(conn)

    def last_mutation_id(self, device_id: str) -> int:
        with self.database.read() as conn:
            value = conn.execute(
                select(db.devices.c.last_mutation_id).where(db.devices.c.id == device_id)
            ).scalar_one()
        return int(value)


@pytest.fixture
def world(
    database: Database, settings: Settings, clock: FakeClock, org: Org, tmp_path: Path
) -> World:
    return World(database, settings, clock, tmp_path)


def scenario(fn: Callable[..., Coroutine[Any, Any, None]]) -> Callable[..., None]:
    """Run an async test body with asyncio.run (keeps fixtures synchronous)."""

    def test(world: World, org: Org) -> None:
        run(fn(world, org))

    test.__name__ = fn.__name__
    test.__doc__ = fn.__doc__
    return test


def new_patient(phone: Phone, name: str = "Ana Silva") -> str:
    return str(phone.store.put("patient", {"name": name, "status": "active"})["id"])


@scenario
async def test_round_trip_between_two_phones_of_a_team(world: World, org: Org) -> None:
    alice, amy = await world.phone("alice"), await world.phone("amy")
    pid = new_patient(alice)
    alice.store.put("task", {"patient_id": pid, "title": "Call the GP"})
    alice.store.put("site", {"name": "North Clinic", "kind": "physician_office"})
    result = await alice.sync()
    assert (result.status, result.pushed, result.pulled, result.pending) == (SyncStatus.OK, 3, 3, 0)
    assert alice.progress[0] == Progress("push", 3, 3, 0)
    assert alice.progress[-1] == Progress("pull", 3, 3, 3)
    assert (await amy.sync()).pulled == 3
    assert alice.visible() == amy.visible() == world.server_records(org.team_a)
    assert alice.visible()[pid]["team_id"] == org.team_a  # the server placed it
    assert world.high_water() == 3 and world.last_mutation_id(alice.device_id) == 3
    again = await alice.sync()
    assert (again.pushed, again.pulled) == (0, 0)


@scenario
async def test_batches_and_pages_follow_the_servers_limits(world: World, org: Org) -> None:
    alice, amy = await world.phone("alice"), await world.phone("amy")
    for i in range(130):  # push_limit is 50 and pull_limit 100 in the test settings
        alice.store.put("site", {"name": f"Site {i}"})
    result = await alice.sync()  # a first batch of 250 is refused (413) and halved
    assert result.ok and result.pushed == 130
    assert alice.client.gzip_requests  # the server took the gzipped batches
    assert alice.transport.paths.count("/api/v1/sync/pull") == 2
    assert (await amy.sync()).pulled == 130
    assert amy.visible() == world.server_records(org.team_a)


@scenario
async def test_a_lost_push_answer_is_retried_exactly_once(world: World, org: Org) -> None:
    alice = await world.phone("alice")
    pid = new_patient(alice)
    alice.store.put("task", {"patient_id": pid, "title": "Call"})
    alice.transport.faults = [("/push", "after"), ("/pull", "after")]
    result = await alice.sync()
    assert result.ok and result.pending == 0 and result.pushed == 2
    assert world.high_water() == 2
    assert alice.visible() == world.server_records(org.team_a)


@scenario
async def test_a_sync_cut_anywhere_resumes_without_loss(world: World, org: Org) -> None:
    alice = await world.phone("alice")
    alice.client.retry = RetryPolicy(attempts=1)
    made = 0
    for round_no in range(8):
        pid = new_patient(alice, f"Patient {round_no}")
        for i in range(3):
            alice.store.put("task", {"patient_id": pid, "title": f"T{i}"})
        made += 4
        where = ("/push", "/pull")[round_no % 2]
        alice.transport.faults = [(where, ("before", "after")[round_no // 2 % 2])]
        first = await alice.sync()
        assert first.status is SyncStatus.OFFLINE and first.pending in (0, 4)
        assert (await alice.sync()).ok
    assert alice.store.pending_count() == 0
    assert world.high_water() == made  # every save applied exactly once
    assert alice.visible() == world.server_records(org.team_a)


@scenario
async def test_edits_during_a_sync_stay_pending(world: World, org: Org) -> None:
    alice = await world.phone("alice")
    pid = new_patient(alice)

    def edit() -> None:
        alice.store.put("patient", {"phone": "555"}, pid)

    alice.transport.before_push = edit
    result = await alice.sync()
    alice.transport.before_push = None
    assert result.ok and result.pending == 1
    assert alice.visible()[pid]["phone"] == "555"  # the pull did not undo it
    assert (await alice.sync()).ok
    assert world.server_records(org.team_a)[pid]["phone"] == "555"


@scenario
async def test_conflicts_name_the_lost_value_device_and_time(world: World, org: Org) -> None:
    alice, amy = await world.phone("alice"), await world.phone("amy")
    late = await world.phone("amy", ahead_ms=-60_000)  # a phone a minute behind
    pid = new_patient(alice)
    for phone in (alice, amy, late):
        await phone.sync()
    alice.store.put("patient", {"phone": "111"}, pid)
    world.clock.advance(10)
    amy.store.put("patient", {"phone": "222"}, pid)  # newer
    late.store.put("patient", {"phone": "333"}, pid)  # older than both
    assert (await alice.sync()).conflicts == []
    [c] = (await amy.sync()).conflicts
    assert (c.field, c.value, c.lost_value, c.incoming_won) == ("phone", "222", "111", True)
    assert c.lost_by == alice.device_id and c.lost_at == "2027-01-15T08:00:00+00:00"
    assert amy.store.get_meta("conflicts") == [c.as_json()]
    # An older offline edit that arrives later loses, and its author is told.
    [c] = (await late.sync()).conflicts
    assert (c.value, c.lost_value, c.incoming_won) == ("222", "333", False)
    assert c.lost_by == late.device_id
    # Alice, whose value lost to Amy's newer one, is told on her next pull, once.
    [told] = (await alice.sync()).conflicts
    assert (told.field, told.value, told.lost_value) == ("phone", "222", "111")
    assert told.lost_by == alice.device_id and told.record_id == pid
    assert alice.store.get_meta("conflicts") == [told.as_json()]
    assert (await alice.sync()).conflicts == []
    assert (await amy.sync()).conflicts == []  # Amy won; the late phone heard at its push
    assert alice.visible() == amy.visible() == late.visible() == world.server_records(org.team_a)
    assert amy.visible()[pid]["phone"] == "222"


@scenario
async def test_an_edit_to_a_finalized_visit_is_kept_aside(world: World, org: Org) -> None:
    alice, amy = await world.phone("alice"), await world.phone("amy")
    pid = new_patient(alice)
    visit = alice.store.put(
        "visit",
        {
            "patient_id": pid,
            "setting": "home",
            "started_at": "2027-01-15T09:00:00",
            "triage": "short_term_contact",
            "summary": "Lives alone",
        },
    )
    await alice.sync()
    await amy.sync()
    amy.store.put("visit", {"summary": "Lives alone; daughter visits"}, visit["id"])
    alice.store.put("visit", {"status": "final"}, visit["id"])
    await alice.sync()
    result = await amy.sync()
    assert result.ok and result.pending == 0
    [rejected] = result.rejected
    assert rejected.code == "record_finalized"
    assert rejected.mutation["fields"] == {"summary": "Lives alone; daughter visits"}
    assert amy.store.get_meta("rejected") == [rejected.as_json()]
    assert amy.visible() == world.server_records(org.team_a)
    assert amy.visible()[visit["id"]]["summary"] == "Lives alone"


@scenario
async def test_a_refused_change_is_undone_from_the_server(world: World, org: Org) -> None:
    alice = await world.phone("alice")
    pid = new_patient(alice)
    alice.store.put("patient", {"phone": "123"}, pid)
    for i in range(5):
        alice.store.put("site", {"name": f"Site {i}"})
    await alice.sync()
    skewed = await world.phone("alice", ahead_ms=3_600_000)  # a phone an hour ahead
    await skewed.sync()
    skewed.store.put("patient", {"phone": "999"}, pid)
    created = new_patient(skewed, "Bea")
    result = await skewed.sync()
    assert result.ok and {r.code for r in result.rejected} == {"clock_ahead"}
    assert skewed.visible() == world.server_records(org.team_a)
    assert skewed.visible()[pid]["phone"] == "123" and created not in skewed.visible()
    assert skewed.transport.paths.count("/api/v1/sync/pull") == 3  # 1st sync, 2nd, repair
    assert skewed.store.get_meta("sync_repair") is None


@scenario
async def test_purge_when_a_patient_leaves_the_team(world: World, org: Org) -> None:
    alice, bob = await world.phone("alice"), await world.phone("bob")
    pid, other = new_patient(alice), new_patient(alice, "Cy")
    alice.store.put("task", {"patient_id": pid, "title": "Call"})
    await alice.sync()
    with world.database.write() as conn:
        records.move_patient(conn, pid, org.team_b, "001800000000000-00000-server", world.clock())
    result = await alice.sync()
    assert result.purged == [pid]
    assert set(alice.visible()) == {other}
    assert {r["type"] for r in (await bob.sync(), bob.store.list())[1]} == {"patient", "task"}


@scenario
async def test_a_revoked_device_is_wiped(world: World, org: Org) -> None:
    alice, root = await world.phone("alice"), await world.phone("root")
    new_patient(alice)
    await root.client.revoke(alice.device_id)
    result = await alice.sync()
    assert result.status is SyncStatus.DEVICE_REVOKED
    assert not alice.store.directory.exists()


@scenario
async def test_an_expired_sign_in_keeps_edits_until_signing_in_again(
    world: World, org: Org
) -> None:
    alice = await world.phone("alice")
    pid = new_patient(alice)
    await alice.sync()
    alice.store.put("patient", {"phone": "555"}, pid)
    alice.store.put("task", {"patient_id": pid, "title": "Visit"})
    world.clock.advance(world.settings.token_idle_seconds + 1)
    result = await alice.sync()
    assert result.status is SyncStatus.SIGN_IN_REQUIRED and result.pending == 2
    enrolled = await alice.client.enrol("alice", PASSWORD, "alice's phone")  # a new device
    alice.store.set_meta("token", enrolled["token"])
    result = await alice.sync()
    assert result.ok and result.pushed == 2 and result.pending == 0
    assert world.server_records(org.team_a)[pid]["phone"] == "555"
    assert alice.visible() == world.server_records(org.team_a)
    assert world.high_water() == 3
