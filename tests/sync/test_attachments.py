"""sync.attachments and its place in the engine: blobs go up before the push batch that
names them, each once; a dropped upload stops the sync before the push and resumes; a
download is checked against its hash."""

from __future__ import annotations

import asyncio
import hashlib
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

from app.store import Store
from sync import attachments
from sync.engine import SyncEngine, SyncStatus
from sync.errors import ProtocolError, ServerUnavailable

JPEG = b"\xff\xd8\xff" + b"photo"


def blob(n: int) -> bytes:
    return JPEG + bytes([n]) * 100


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def item(photo: bytes, thumb: bytes) -> dict[str, Any]:
    return {
        "sha256": sha(photo),
        "thumbnail": sha(thumb),
        "caption": "",
        "content_type": "image/jpeg",
        "width": 10,
        "height": 10,
    }


class Server:
    """Push, pull and attachments in memory; records every call in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, Any]] = []
        self.blobs: dict[str, bytes] = {}
        self.last = 0
        self.fail_puts: set[str] = set()  # hashes whose upload drops (each once)

    async def put_attachment(self, digest: str, data: bytes, content_type: str) -> bool:
        self.calls.append(("put", digest))
        if digest in self.fail_puts:
            self.fail_puts.discard(digest)
            raise ServerUnavailable("connection lost (RemoteProtocolError) after 5 tries")
        assert sha(data) == digest and content_type == "image/jpeg"
        created = digest not in self.blobs
        self.blobs[digest] = data
        return created

    async def get_attachment(self, digest: str) -> bytes:
        self.calls.append(("get", digest))
        return self.blobs[digest]

    async def push(self, mutations: Sequence[dict[str, Any]]) -> dict[str, Any]:
        self.calls.append(("push", [m["id"] for m in mutations]))
        for m in mutations:
            for digest in attachments.hashes(m["fields"]):
                assert digest in self.blobs, "a push named a blob the server lacks"
        self.last = max(self.last, *(m["id"] for m in mutations))
        return {
            "last_mutation_id": self.last,
            "results": [
                {"id": m["id"], "status": "applied", "rev": m["id"], "conflicts": [], "error": None}
                for m in mutations
            ],
        }

    async def pull(self, cursor: int, limit: int) -> dict[str, Any]:
        self.calls.append(("pull", cursor))
        return {
            "records": [],
            "purge": [],
            "cursor": cursor,
            "more": False,
            "last_mutation_id": self.last,
        }


@pytest.fixture
def store(tmp_path: Path) -> Store:
    return Store.open(tmp_path / "store", os.urandom(32), node_id="device-1")


def add_visit(store: Store, patient: str, *photos: bytes) -> str:
    for data in photos:
        store.put_blob(data)
    items = [item(photos[i], photos[i + 1]) for i in range(0, len(photos), 2)]
    return str(store.put("visit", {"patient_id": patient, "attachments": items})["id"])


def test_referenced_lists_photo_then_thumbnail_and_skips_junk() -> None:
    fields = {
        "attachments": [
            item(blob(1), blob(2)),
            {"sha256": "nope"},
            "junk",
            {"sha256": sha(blob(3)), "content_type": None},
        ]
    }
    assert list(attachments.referenced(fields)) == [
        (sha(blob(1)), "image/jpeg"),
        (sha(blob(2)), "image/jpeg"),
        (sha(blob(3)), "application/octet-stream"),
    ]
    assert attachments.hashes({"name": "x"}) == set()


def test_to_upload_skips_deletes_sent_and_repeats(store: Store) -> None:
    attachments.mark_sent(store, sha(blob(1)))
    mutations = [
        {"op": "upsert", "fields": {"attachments": [item(blob(1), blob(2))]}},
        {"op": "upsert", "fields": {"attachments": [item(blob(3), blob(2))]}},
        {"op": "delete", "fields": {"attachments": [item(blob(5), blob(6))]}},
    ]
    assert [h for h, _ in attachments.to_upload(store, mutations)] == [sha(blob(2)), sha(blob(3))]


def test_each_batch_uploads_its_blobs_before_it_is_pushed(store: Store) -> None:
    patient = store.put("patient", {"name": "Ada"})["id"]
    add_visit(store, patient, blob(1), blob(2))
    add_visit(store, patient, blob(3), blob(4))
    server = Server()
    result = asyncio.run(SyncEngine(store, server, push_batch=2).sync())
    assert result.ok and result.pushed == 3
    assert server.calls[:6] == [
        ("put", sha(blob(1))),
        ("put", sha(blob(2))),
        ("push", [1, 2]),
        ("put", sha(blob(3))),
        ("put", sha(blob(4))),
        ("push", [3]),
    ]
    assert all(attachments.is_sent(store, sha(blob(n))) for n in range(1, 5))


def test_a_dropped_upload_stops_before_the_push_and_resumes(store: Store) -> None:
    patient = store.put("patient", {"name": "Ada"})["id"]
    add_visit(store, patient, blob(1), blob(2), blob(3), blob(4), blob(5), blob(6))
    server = Server()
    server.fail_puts = {sha(blob(3))}
    first = asyncio.run(SyncEngine(store, server).sync())
    assert first.status is SyncStatus.OFFLINE and first.pushed == 0
    assert not any(c[0] == "push" for c in server.calls)
    assert store.pending_count() == 2
    server.calls.clear()
    second = asyncio.run(SyncEngine(store, server).sync())
    assert second.ok and second.pushed == 2
    puts = [c[1] for c in server.calls if c[0] == "put"]
    assert puts == [sha(blob(n)) for n in (3, 4, 5, 6)]  # 1 and 2 are not sent again


def test_blobs_from_the_server_are_not_sent_back(store: Store) -> None:
    # A pulled visit whose photos were never downloaded here, its caption edited here.
    patient = store.put("patient", {"name": "Ada"})["id"]
    store.put("visit", {"patient_id": patient, "attachments": [item(blob(8), blob(9))]})
    server = Server()
    assert asyncio.run(attachments.upload(store, server, store.outbox())) == 0
    assert server.calls == []


def test_fetch_checks_the_hash_and_stores_the_blob(store: Store) -> None:
    server = Server()
    server.blobs[sha(blob(1))] = blob(1)
    server.blobs[sha(blob(2))] = blob(3)  # a server answering the wrong bytes
    assert asyncio.run(attachments.fetch(store, server, sha(blob(1)))) == blob(1)
    assert store.get_blob(sha(blob(1))) == blob(1)
    assert attachments.is_sent(store, sha(blob(1)))
    assert asyncio.run(attachments.fetch(store, server, sha(blob(1)))) == blob(1)
    assert server.calls.count(("get", sha(blob(1)))) == 1  # the second came from the store
    with pytest.raises(ProtocolError):
        asyncio.run(attachments.fetch(store, server, sha(blob(2))))
    assert store.get_blob(sha(blob(2))) is None
    with pytest.raises(ValueError):
        asyncio.run(attachments.fetch(store, server, "../etc/passwd"))
