"""Photos between two phones through a real ``python -m server serve`` and the fault proxy.

A visit with three photos syncs from one phone while uploads are cut off half-way, lose
their answer, or fail until the sync gives up; the next sync sends only what is missing,
before the push that names it. The second phone pulls the visit, downloads each photo and
thumbnail on first view and decrypts them byte-identical.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections import Counter
from pathlib import Path

import httpx
from sqlalchemy import select

from app import photos
from app.attachments import item_of
from app.store import Store
from server import db
from server.db import Database
from sync import attachments
from sync.client import RetryPolicy, SyncClient
from sync.engine import SyncEngine, SyncStatus
from tests.app.photo_support import noise_photo
from tests.conftest import TEST_AUDIT_KEY
from tests.sync.faultproxy import DROP_AFTER, DROP_BEFORE, DROP_MID_REQUEST, FaultProxy
from tests.sync.live_server import PASSWORD, ServerProcess

TRIES = 3


class Phone:
    """A real encrypted store and sync client, talking through the proxy."""

    def __init__(self, proxy: FaultProxy, tmp: Path) -> None:
        self.tmp = tmp
        self.store: Store | None = None

        async def no_wait(_seconds: float) -> None:
            await asyncio.sleep(0)

        self.client = SyncClient(
            proxy.url,
            token=lambda: self.store.get_meta("token") if self.store else None,
            retry=RetryPolicy(attempts=TRIES, base_delay=0.01, max_delay=0.02),
            timeout=httpx.Timeout(5.0),
            sleep=no_wait,
        )

    async def enrol(self, username: str) -> Store:
        enrolled = await self.client.enrol(username, PASSWORD, "test phone")
        self.store = Store.open(
            self.tmp / uuid.uuid4().hex, os.urandom(32), node_id=enrolled["device_id"]
        )
        self.store.set_meta("token", enrolled["token"])
        return self.store


def puts(proxy: FaultProxy) -> Counter[str]:
    return Counter(path.rsplit("/", 1)[1] for path, _ in proxy.seen if "/attachments/" in path)


def server_state(url: str) -> tuple[dict[str, int], set[str]]:
    database = Database(url, audit_key=TEST_AUDIT_KEY)
    try:
        with database.read() as conn:
            stored = {
                r.sha256: r.size
                for r in conn.execute(select(db.attachments.c.sha256, db.attachments.c.size))
            }
            named = set(conn.execute(select(db.attachment_refs.c.sha256)).scalars())
    finally:
        database.dispose()
    return stored, named


def test_a_visit_with_three_photos_reaches_a_second_phone(
    server: ServerProcess, proxy: FaultProxy, tmp_path: Path
) -> None:
    shots = [photos.prepare(noise_photo(seed, (900, 700))) for seed in (11, 12, 13)]
    first, second = Phone(proxy, tmp_path), Phone(proxy, tmp_path)

    async def scenario() -> None:
        store = await first.enrol("alice")
        patient = store.put("patient", {"name": "Ada Example"})["id"]
        for shot in shots:
            store.put_blob(shot.jpeg)
            store.put_blob(shot.thumbnail)
        captions = ["Loose rug on the stairs", "Medication list", "Signed consent"]
        visit = store.put(
            "visit",
            {
                "patient_id": patient,
                "setting": "home",
                "attachments": [item_of(s, c) for s, c in zip(shots, captions, strict=True)],
            },
        )

        # The second photo's upload is cut off half-way (retried at once); the third
        # fails every try, so the sync stops before pushing anything.
        proxy.add(f"/attachments/{shots[1].sha256}", DROP_MID_REQUEST)
        for _ in range(TRIES):
            proxy.add(f"/attachments/{shots[2].sha256}", DROP_BEFORE)
        result = await SyncEngine(store, first.client).sync()
        assert result.status is SyncStatus.OFFLINE and result.pushed == 0
        assert not any(path.endswith("/sync/push") for path, _ in proxy.seen)
        sent = puts(proxy)
        assert sent[shots[1].sha256] == 2 and sent[shots[2].sha256] == TRIES
        assert attachments.is_sent(store, shots[1].thumbnail_sha256)
        stored, _ = server_state(server.database_url)
        assert shots[2].sha256 not in stored  # nothing partial was kept

        # Resumed: only the third photo goes up (its thumbnail's answer is lost once).
        proxy.seen.clear()
        proxy.add(f"/attachments/{shots[2].thumbnail_sha256}", DROP_AFTER)
        result = await SyncEngine(store, first.client).sync()
        assert result.ok and result.pending == 0, result
        assert puts(proxy) == {shots[2].sha256: 1, shots[2].thumbnail_sha256: 2}
        first_push = next(i for i, (p, _) in enumerate(proxy.seen) if p.endswith("/push"))
        assert all("/attachments/" not in p for p, _ in proxy.seen[first_push:])
        assert not proxy.faults

        stored, named = server_state(server.database_url)
        everything = {h for s in shots for h in (s.sha256, s.thumbnail_sha256)}
        assert named == everything and everything <= set(stored)
        assert all(stored[s.sha256] == len(s.jpeg) for s in shots)

        # The second phone: the visit arrives; each photo comes down on first view.
        other = await second.enrol("amy")
        assert (await SyncEngine(other, second.client).sync()).ok
        pulled = other.get(visit["id"])
        assert pulled is not None
        assert [a["caption"] for a in pulled["fields"]["attachments"]] == captions
        assert other.get_blob(shots[0].sha256) is None  # lazily: nothing yet
        for shot in shots:
            thumb = await attachments.fetch(other, second.client, shot.thumbnail_sha256)
            full = await attachments.fetch(other, second.client, shot.sha256)
            assert thumb == shot.thumbnail and full == shot.jpeg
            assert other.get_blob(shot.sha256) == shot.jpeg  # decrypted from its own disk
        await first.client.aclose()
        await second.client.aclose()

    asyncio.run(scenario())
