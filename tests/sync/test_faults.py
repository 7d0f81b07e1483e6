"""The engine against a real ``python -m server serve`` on loopback, through a fault proxy.

Connections dropped before the request, after it (the answer lost) and mid-answer, delays
longer than the client's timeout, and the server killed and restarted mid-sync: after each,
every save the phone confirmed reaches the server exactly once (one stored push result per
mutation id) and the phone equals the server.
"""

from __future__ import annotations

import asyncio
import json
import os
import uuid
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from app.store import Store
from server import db, records
from server.db import Database
from sync.client import RetryPolicy, SyncClient
from sync.engine import SyncEngine, SyncResult
from tests.conftest import TEST_AUDIT_KEY
from tests.sync.faultproxy import DELAY, DROP_AFTER, DROP_BEFORE, DROP_MID, HOOK_AFTER, FaultProxy
from tests.sync.live_server import PASSWORD, ServerProcess


class Phone:
    """A real store and client through the proxy; client sleeps restart a killed server."""

    def __init__(
        self, server: ServerProcess, proxy: FaultProxy, tmp: Path, timeout: float = 10.0
    ) -> None:
        self.server, self.tmp = server, tmp
        self.store: Store | None = None

        async def sleep(_seconds: float) -> None:
            if not server.alive:
                await asyncio.to_thread(server.start)
            await asyncio.sleep(0.01)

        self.client = SyncClient(
            proxy.url,
            token=lambda: self.store.get_meta("token") if self.store else None,
            retry=RetryPolicy(attempts=6, base_delay=0.01, max_delay=0.05),
            timeout=httpx.Timeout(timeout),
            sleep=sleep,
        )

    async def enrol(self, username: str) -> Phone:
        enrolled = await self.client.enrol(username, PASSWORD, "test phone")
        self.store = Store.open(
            self.tmp / uuid.uuid4().hex, os.urandom(32), node_id=enrolled["device_id"]
        )
        self.store.set_meta("token", enrolled["token"])
        self.device_id: str = enrolled["device_id"]
        return self

    async def sync(self) -> SyncResult:
        assert self.store is not None
        return await SyncEngine(self.store, self.client, push_batch=3, pull_limit=4).sync()

    async def sync_until_done(self) -> None:
        for _ in range(5):
            result = await self.sync()
            if result.ok and result.pending == 0:
                return
        raise AssertionError(f"still not synced: {result}")


def applied_once(database_url: str, device_id: str, count: int) -> None:
    """Each mutation id 1..count has exactly one stored push result on the server."""
    database = Database(database_url, audit_key=TEST_AUDIT_KEY)
    try:
        with database.read() as conn:
            rows = conn.execute(
                select(db.push_results.c.results).where(db.push_results.c.device_id == device_id)
            ).scalars()
            seen = Counter(r["id"] for text in rows for r in json.loads(text))
            last = conn.execute(
                select(db.devices.c.last_mutation_id).where(db.devices.c.id == device_id)
            ).scalar_one()
    finally:
        database.dispose()
    assert seen == Counter(range(1, count + 1)) and last == count


def server_records(database_url: str) -> dict[str, Any]:
    database = Database(database_url, audit_key=TEST_AUDIT_KEY)
    try:
        with database.read() as conn:
            found = [records.from_row(r) for r in conn.execute(select(db.records)).all()]
    finally:
        database.dispose()
    return {r.id: r.fields for r in found if not r.deleted}


def make_edits(store: Store, n_patients: int = 3) -> int:
    """Patients with a task each and an edit: 3 mutations per patient."""
    for i in range(n_patients):
        pid = store.put("patient", {"name": f"Patient {i}"})["id"]
        store.put("task", {"patient_id": pid, "title": "Call"})
        store.put("patient", {"phone": f"555-01{i:02d}"}, pid)
    return 3 * n_patients


async def scenario(
    server: ServerProcess, proxy: FaultProxy, tmp: Path, faults: list[tuple[str, str]]
) -> None:
    delays = any(action == DELAY for _, action in faults)
    phone = await Phone(server, proxy, tmp, timeout=1.0 if delays else 10.0).enrol("alice")
    assert phone.store is not None
    made = make_edits(phone.store)
    for path, action in faults:
        hook = server.kill if action == HOOK_AFTER else None
        proxy.add(path, action, seconds=2.0 if action == DELAY else 0.0, hook=hook)
    await phone.sync_until_done()
    assert not proxy.faults, "every scripted fault was hit"
    made += make_edits(phone.store, 1)  # and the next sync is clean
    await phone.sync_until_done()
    applied_once(server.database_url, phone.device_id, made)
    assert {r["id"]: r["fields"] for r in phone.store.list()} == server_records(server.database_url)
    await phone.client.aclose()


ACTIONS = [DROP_BEFORE, DROP_AFTER, DROP_MID, DELAY]


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("path", ["/sync/push", "/sync/pull"])
def test_one_fault(
    server: ServerProcess, proxy: FaultProxy, tmp_path: Path, path: str, action: str
) -> None:
    asyncio.run(scenario(server, proxy, tmp_path, [(path, action)]))


@pytest.mark.parametrize("path", ["/sync/push", "/sync/pull"])
def test_server_killed_mid_sync_and_restarted(
    server: ServerProcess, proxy: FaultProxy, tmp_path: Path, path: str
) -> None:
    starts = server.starts
    asyncio.run(scenario(server, proxy, tmp_path, [(path, HOOK_AFTER)]))
    assert server.starts == starts + 1


def test_many_faults_in_one_sync(server: ServerProcess, proxy: FaultProxy, tmp_path: Path) -> None:
    faults = [("/sync/push", a) for a in (DROP_AFTER, DROP_MID, DROP_BEFORE, DROP_AFTER)]
    faults += [("/sync/pull", a) for a in (DROP_MID, DROP_AFTER, DROP_BEFORE)]
    asyncio.run(scenario(server, proxy, tmp_path, faults))
