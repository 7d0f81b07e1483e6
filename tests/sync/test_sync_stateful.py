"""Hypothesis stateful test: several phones of one team edit, go offline, lose answers and
sync in any interleaving against the real server app (in-process, SQLite) and real stores.

Invariants: revs and cursors only grow; replayed pushes and pulls change nothing; after
everyone syncs twice every replica equals the server, each mutation was applied exactly
once, and no confirmed edit is lost (it is the value on the server, a recorded conflict,
a refused change kept on its phone, or was replaced by someone who had seen it).
"""

from __future__ import annotations

import asyncio
import gzip
import json
import os
import shutil
import uuid
from collections import Counter
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)
from sqlalchemy import select

from app.errors import RecordNotFound
from app.store import Store
from server import auth, db, migrations, records
from server.app import create_app
from server.db import Database
from server.passwords import hash_password
from server.settings import Settings
from sync.client import RetryPolicy, SyncClient
from sync.engine import SyncEngine
from sync.errors import InvalidRecord
from tests.conftest import TEST_AUDIT_KEY

PASSWORD = "password-123"
SERVER_SETTINGS = Settings.from_environ(
    {
        "LIAISON_ARGON2_MEMORY_KIB": "64",
        "LIAISON_ARGON2_ITERATIONS": "1",
        "LIAISON_ARGON2_LANES": "1",
        "LIAISON_PUSH_LIMIT": "4",
        "LIAISON_PULL_LIMIT": "3",
    }
)
PHONES = [("alice", 0), ("alice", 20_000), ("amy", -20_000)]  # (user, clock skew in ms)
VALUES = st.sampled_from(["", "a", "b", "555-0101", "Ana", "Bea"])
FAULTS = st.lists(
    st.tuples(st.sampled_from(["/push", "/pull"]), st.sampled_from(["before", "after"])),
    max_size=2,
)


class Clock:
    """The server's and phones' time, moved by the test."""

    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


class Wire(httpx.AsyncBaseTransport):
    """The in-process app, switched off (offline) or dropping scripted requests."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self.inner = inner
        self.online = True
        self.faults: list[tuple[str, str]] = []
        self.last_push: list[dict[str, Any]] | None = None
        self.during_push: Callable[[], None] | None = None

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if not self.online:
            raise httpx.ConnectError("offline")
        fault = next((f for f in self.faults if path.endswith(f[0])), None)
        if fault is not None:
            self.faults.remove(fault)
            if fault[1] == "before":
                raise httpx.ConnectError("dropped before the request")
        if path.endswith("/push"):
            body = request.content
            if request.headers.get("Content-Encoding") == "gzip":
                body = gzip.decompress(body)
            self.last_push = json.loads(body)["mutations"]
            if self.during_push is not None:
                self.during_push()
                self.during_push = None
        response = await self.inner.handle_async_request(request)
        if fault is not None:
            await response.aread()
            raise httpx.ReadError("answer lost")
        return response


@dataclass(frozen=True)
class Edit:
    """A save the app confirmed: one field's new value and HLC, and what the phone had."""

    phone: int
    record_id: str
    field: str
    value: Any
    clock: str
    prior: str | None


@dataclass
class Phone:
    """One enrolled device."""

    index: int
    store: Store
    client: SyncClient
    wire: Wire
    device_id: str
    cursor: int = 0
    revs: dict[str, int] = field(default_factory=dict)


def template(directory: Path) -> tuple[Path, str]:
    """A migrated SQLite database with team A and users alice and amy."""
    path = directory / "template.db"
    database = Database(f"sqlite:///{path}", audit_key=TEST_AUDIT_KEY)
    migrations.migrate(database)
    encoded = hash_password(PASSWORD, SERVER_SETTINGS)
    with database.write() as conn:
        team = auth.create_team(conn, "A", 0.0)
        for name in ("alice", "amy"):
            auth.create_user(conn, name, encoded, "liaison", [team], 0.0)
    database.dispose()
    return path, team


class SyncMachine(RuleBasedStateMachine):
    """Phones, a server, and the model of every confirmed edit."""

    TEMPLATE: Path
    TEAM: str
    ROOT: Path

    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.dir = self.ROOT / uuid.uuid4().hex
        self.dir.mkdir()
        shutil.copy(self.TEMPLATE, self.dir / "server.db")
        self.database = Database(f"sqlite:///{self.dir / 'server.db'}", audit_key=TEST_AUDIT_KEY)
        self.clock = Clock()
        self.app = create_app(SERVER_SETTINGS, self.database, clock=self.clock)
        self.edits: list[Edit] = []
        self.phones = [
            self.run(self._enrol(i, user, skew)) for i, (user, skew) in enumerate(PHONES)
        ]
        # A shared caseload, so that edits meet: two patients, a visit and a task.
        for name in ("Ana", "Bea"):
            self.create_patient(0, name)
        self.create_visit(0, 0)
        self.create_task(0, 1, "Call")
        for phone in self.phones:
            assert self.run(SyncEngine(phone.store, phone.client).sync()).ok

    def run(self, coro: Coroutine[Any, Any, Any]) -> Any:
        return self.loop.run_until_complete(coro)

    async def _enrol(self, index: int, user: str, skew: int) -> Phone:
        wire = Wire(httpx.ASGITransport(app=self.app))
        holder: list[Store] = []

        async def no_sleep(_seconds: float) -> None:
            return None

        client = SyncClient(
            "http://localhost",
            token=lambda: holder[0].get_meta("token"),
            transport=wire,
            retry=RetryPolicy(attempts=2),
            sleep=no_sleep,
        )
        enrolled = await client.enrol(user, PASSWORD, f"phone {index}")
        store = Store.open(
            self.dir / f"phone{index}",
            os.urandom(32),
            node_id=enrolled["device_id"],
            wall=lambda: int(self.clock() * 1000) + skew,
        )
        store.set_meta("token", enrolled["token"])
        holder.append(store)
        return Phone(index, store, client, wire, enrolled["device_id"])

    def teardown(self) -> None:
        try:
            self._final_check()
        finally:
            for phone in self.phones:
                self.run(phone.client.aclose())
                phone.store.close()
            self.loop.close()
            self.database.dispose()
            shutil.rmtree(self.dir, ignore_errors=True)

    # -- edits ------------------------------------------------------------------------

    def _save(
        self, phone: Phone, type_name: str, fields: dict[str, Any], record_id: str | None = None
    ) -> None:
        before = phone.store.get(record_id) if record_id else None
        try:
            saved = phone.store.put(type_name, fields, record_id)
        except (InvalidRecord, RecordNotFound):
            return  # the app refused the save (a final visit, a deleted record)
        old = before["fields"] if before else {}
        for name, value in fields.items():
            if name not in old or old[name] != value:
                prior = before["clock"].get(name) if before else None
                self.edits.append(
                    Edit(phone.index, saved["id"], name, value, saved["clock"][name], prior)
                )

    def _pick(self, phone: Phone, type_name: str, choice: int) -> dict[str, Any] | None:
        found = sorted(phone.store.list(type_name), key=lambda r: r["id"])
        return found[choice % len(found)] if found else None

    @rule(p=st.integers(0, 2), name=VALUES.filter(bool))
    def create_patient(self, p: int, name: str) -> None:
        self._save(self.phones[p], "patient", {"name": name, "status": "active"})

    @rule(p=st.integers(0, 2), choice=st.integers(0, 99), title=VALUES.filter(bool))
    def create_task(self, p: int, choice: int, title: str) -> None:
        patient = self._pick(self.phones[p], "patient", choice)
        if patient:
            self._save(self.phones[p], "task", {"patient_id": patient["id"], "title": title})

    @rule(p=st.integers(0, 2), choice=st.integers(0, 99))
    def create_visit(self, p: int, choice: int) -> None:
        patient = self._pick(self.phones[p], "patient", choice)
        if patient:
            self._save(
                self.phones[p],
                "visit",
                {
                    "patient_id": patient["id"],
                    "setting": "home",
                    "status": "draft",
                    "started_at": "2027-01-15T09:00:00",
                    "triage": "short_term_contact",
                },
            )

    @rule(
        p=st.integers(0, 2),
        choice=st.integers(0, 99),
        name=st.sampled_from(["name", "phone", "language"]),
        value=VALUES.filter(bool),
    )
    def edit_patient(self, p: int, choice: int, name: str, value: str) -> None:
        patient = self._pick(self.phones[p], "patient", choice)
        if patient:
            self._save(self.phones[p], "patient", {name: value}, patient["id"])

    @rule(p=st.integers(0, 2), choice=st.integers(0, 99), done=st.booleans(), title=VALUES)
    def edit_task(self, p: int, choice: int, done: bool, title: str) -> None:
        task = self._pick(self.phones[p], "task", choice)
        if task:
            fields: dict[str, Any] = {"done": done}
            if title:
                fields["title"] = title
            self._save(self.phones[p], "task", fields, task["id"])

    @rule(p=st.integers(0, 2), choice=st.integers(0, 99), summary=VALUES, final=st.booleans())
    def edit_visit(self, p: int, choice: int, summary: str, final: bool) -> None:
        visit = self._pick(self.phones[p], "visit", choice)
        if visit:
            fields = {"status": "final"} if final else {"summary": summary}
            self._save(self.phones[p], "visit", fields, visit["id"])

    @rule(p=st.integers(0, 2), choice=st.integers(0, 99))
    def delete_task(self, p: int, choice: int) -> None:
        task = self._pick(self.phones[p], "task", choice)
        if task:
            self.phones[p].store.delete(task["id"])

    # -- network and time -------------------------------------------------------------

    @rule(p=st.integers(0, 2), online=st.booleans())
    def connectivity(self, p: int, online: bool) -> None:
        self.phones[p].wire.online = online

    @rule(seconds=st.integers(0, 30))
    def time_passes(self, seconds: int) -> None:
        self.clock.now += seconds

    @rule(p=st.integers(0, 2), faults=FAULTS, retries=st.booleans(), edit=st.booleans())
    def sync(self, p: int, faults: list[tuple[str, str]], retries: bool, edit: bool) -> None:
        phone = self.phones[p]
        phone.wire.faults = list(faults)
        if edit:  # the user saves while the push is on the wire
            phone.wire.during_push = lambda: self.edit_patient(p, 0, "phone", "555-0101")
        phone.client.retry = RetryPolicy(attempts=3 if retries else 1)
        self.run(SyncEngine(phone.store, phone.client, push_batch=3, pull_limit=2).sync())
        phone.wire.faults, phone.wire.during_push = [], None

    @rule(a=st.integers(0, 2), b=st.integers(0, 2))
    def sync_at_once(self, a: int, b: int) -> None:
        if a == b:
            return

        async def both() -> None:
            await asyncio.gather(
                *(
                    SyncEngine(self.phones[i].store, self.phones[i].client, push_batch=2).sync()
                    for i in (a, b)
                )
            )

        self.run(both())

    @precondition(lambda self: any(p.wire.last_push and p.wire.online for p in self.phones))
    @rule(p=st.integers(0, 2))
    def replay_last_push(self, p: int) -> None:
        phone = self.phones[p]
        batch = phone.wire.last_push
        if not batch or not phone.wire.online:
            return
        if max(m["id"] for m in batch) > self._last_mutation_id(phone):
            return  # never fully reached the server: not a replay
        before = self._server_rows()
        answer = self.run(phone.client.push(batch))
        assert all(r["id"] <= answer["last_mutation_id"] for r in answer["results"])
        assert self._server_rows() == before

    @rule(p=st.integers(0, 2))
    def replay_pull(self, p: int) -> None:
        phone = self.phones[p]
        if not phone.wire.online or phone.store.get_meta("sync_repair"):
            return
        cursor = phone.store.get_meta("cursor", 0)
        seen = self._snapshot(phone)
        page = self.run(phone.client.pull(0, 1000))
        old = [r for r in page["records"] if r["rev"] <= cursor]
        phone.store.apply_pull(old, [], cursor)
        assert self._snapshot(phone) == seen

    # -- invariants -------------------------------------------------------------------

    @invariant()
    def revs_and_cursors_only_grow(self) -> None:
        for phone in self.phones:
            cursor = phone.store.get_meta("cursor", 0)
            assert cursor >= phone.cursor
            phone.cursor = cursor
            for rec in phone.store.list(include_deleted=True):
                if rec["rev"] is not None:
                    assert rec["rev"] >= phone.revs.get(rec["id"], 0)
                    phone.revs[rec["id"]] = rec["rev"]

    def _final_check(self) -> None:
        for phone in self.phones:
            phone.wire.online, phone.wire.faults = True, []
            phone.client.retry = RetryPolicy(attempts=1)
        for _ in range(2):
            for phone in self.phones:
                result = self.run(SyncEngine(phone.store, phone.client).sync())
                assert result.ok, result
        rows = self._server_rows()
        live = {rid: r.fields for rid, r in rows.items() if not r.deleted}
        for phone in self.phones:
            assert phone.store.pending_count() == 0
            assert {r["id"]: r["fields"] for r in phone.store.list()} == live
            self._applied_once(phone)
        self._no_edit_lost(rows)

    def _no_edit_lost(self, rows: dict[str, records.Stored]) -> None:
        with self.database.read() as conn:
            lost_clocks = {
                (r.record_id, r.field, r.loser_clock)
                for r in conn.execute(select(db.conflicts)).all()
            }
        kept = {
            (m["mutation"]["record_id"], name, stamp)
            for phone in self.phones
            for m in phone.store.get_meta("rejected") or []
            for name, stamp in m["mutation"]["clock"].items()
        }
        event(f"edits: {len(self.edits) // 10 * 10}+")
        event(f"refused changes kept: {min(len(kept), 3)}")
        event(f"conflicts recorded: {min(len(lost_clocks), 3)}")

        def settled(e: Edit) -> bool:
            """The edit's value is on the server, a recorded conflict, kept on its phone,
            or was replaced by someone who had seen it."""
            key = (e.record_id, e.field, e.clock)
            if key in kept or key in lost_clocks:
                return True
            row = rows.get(e.record_id)
            assert row is not None, f"{e} never reached the server"
            if row.clock.get(e.field) == e.clock or row.fields.get(e.field) == e.value:
                return True
            if any(
                o.record_id == e.record_id and o.field == e.field and (o.prior or "") >= e.clock
                for o in self.edits
            ):
                return True
            # A newer write of the same value replaces it without a conflict (DESIGN §4: only
            # differing values conflict); the value lives on as that write, whose fate is its.
            return any(
                o.record_id == e.record_id
                and o.field == e.field
                and o.value == e.value
                and o.clock > e.clock
                and (o.record_id, o.field, o.clock) not in kept
                and settled(o)
                for o in self.edits
            )

        for e in self.edits:
            row = rows.get(e.record_id)
            assert settled(e), f"lost: {e}; server has {row and row.fields.get(e.field)!r}"

    def _applied_once(self, phone: Phone) -> None:
        last = self._last_mutation_id(phone)
        with self.database.read() as conn:
            texts = conn.execute(
                select(db.push_results.c.results).where(
                    db.push_results.c.device_id == phone.device_id
                )
            ).scalars()
            seen = Counter(r["id"] for text in texts for r in json.loads(text))
        assert seen == Counter(range(1, last + 1))
        assert last == phone.store.last_mutation_id

    def _last_mutation_id(self, phone: Phone) -> int:
        with self.database.read() as conn:
            return int(
                conn.execute(
                    select(db.devices.c.last_mutation_id).where(db.devices.c.id == phone.device_id)
                ).scalar_one()
            )

    def _server_rows(self) -> dict[str, records.Stored]:
        with self.database.read() as conn:
            return {r.id: records.from_row(r) for r in conn.execute(select(db.records)).all()}

    @staticmethod
    def _snapshot(phone: Phone) -> dict[str, Any]:
        return {r["id"]: r for r in phone.store.list(include_deleted=True)}


@pytest.mark.slow
def test_sync_stateful(tmp_path_factory: pytest.TempPathFactory) -> None:
    path, team = template(tmp_path_factory.mktemp("template"))

    class Machine(SyncMachine):
        TEMPLATE, TEAM, ROOT = path, team, tmp_path_factory.mktemp("runs")

    run_state_machine_as_test(
        Machine,
        settings=settings(
            max_examples=int(os.environ.get("LIAISON_STATEFUL_EXAMPLES", "30")),
            stateful_step_count=40,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
        ),
    )
