"""Concurrent writers and readers: a pull never skips a rev that commits late."""

from __future__ import annotations

import threading
import uuid
from typing import Any

from server import records
from server.records import Stored
from server.service import Service
from sync import hlc
from tests.server.conftest import PASSWORD


def _site(device_id: str, number: int, clock: Any) -> dict[str, Any]:
    stamp = hlc.Clock(device_id, wall=lambda: int(clock() * 1000)).now()
    return {
        "id": number,
        "record_id": str(uuid.uuid4()),
        "type": "site",
        "op": "upsert",
        "fields": {"name": f"site {number}"},
        "clock": {"name": stamp},
        "base_rev": None,
    }


def _in_thread(target: Any, *args: Any) -> tuple[threading.Thread, list[Any]]:
    out: list[Any] = []
    thread = threading.Thread(target=lambda: out.append(target(*args)), daemon=True)
    thread.start()
    return thread, out


def test_pull_never_skips_a_rev_that_commits_late(database, org, settings, clock):
    service = Service(settings, database, clock)
    writer = service.enrol("alice", PASSWORD, "w", "127.0.0.1")
    reader = service.enrol("amy", PASSWORD, "r", "127.0.0.1")
    late_id = str(uuid.uuid4())
    transaction = database.write()
    conn = transaction.__enter__()
    # A slow writer: holds rev N, uncommitted.
    revs = records.Revs(conn)
    rev = revs.next()
    stamp = hlc.Clock("slow", wall=lambda: int(clock() * 1000)).now()
    late = Stored(late_id, "site", None, None, {"name": "late"}, {"name": stamp}, {"name": rev})
    late.rev = rev
    records.save(conn, late, new=True, author="test", now=clock())
    revs.finish()
    # A fast writer and a reader meanwhile.
    mutation = _site(writer["device_id"], 1, clock)
    pusher, pushed = _in_thread(service.push, writer["token"], {"mutations": [mutation]})
    pusher.join(0.3)
    puller, pulled = _in_thread(service.pull, reader["token"], 0, 100)
    puller.join(0.3)
    transaction.__exit__(None, None, None)  # the slow writer commits last
    pusher.join(30)
    puller.join(30)
    assert pushed[0]["results"][0]["status"] == "applied"
    first = pulled[0]
    second = service.pull(reader["token"], first["cursor"], 100)
    seen = [r["id"] for r in first["records"] + second["records"]]
    assert sorted(seen) == sorted([late_id, mutation["record_id"]])
    assert len(seen) == len(set(seen))


def test_many_pushers_and_pullers(database, org, settings, clock):
    service = Service(settings, database, clock)
    pushers = [service.enrol(name, PASSWORD, "p", "127.0.0.1") for name in ("alice", "amy", "sue")]
    pullers = [service.enrol(name, PASSWORD, "q", "127.0.0.1") for name in ("bob", "multi")]
    applied: list[str] = []
    done = threading.Event()
    errors: list[BaseException] = []

    def push_all(device: dict[str, Any]) -> None:
        try:
            for batch in range(8):
                mutations = [_site(device["device_id"], batch * 4 + i + 1, clock) for i in range(4)]
                body = service.push(device["token"], {"mutations": mutations})
                assert all(r["status"] == "applied" for r in body["results"])
                applied.extend(m["record_id"] for m in mutations)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    def pull_all(device: dict[str, Any], seen: list[tuple[str, int]]) -> None:
        cursor, last_round = 0, False
        try:
            while True:
                last_round = done.is_set()
                page = service.pull(device["token"], cursor, 7)
                seen.extend((r["id"], r["rev"]) for r in page["records"])
                cursor = page["cursor"]
                if last_round and not page["more"]:
                    return
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    views: list[list[tuple[str, int]]] = [[] for _ in pullers]
    pairs = zip(pullers, views, strict=True)
    readers = [threading.Thread(target=pull_all, args=pair) for pair in pairs]
    writers = [threading.Thread(target=push_all, args=(d,)) for d in pushers]
    for thread in readers + writers:
        thread.start()
    for thread in writers:
        thread.join(60)
    done.set()
    for thread in readers:
        thread.join(60)
    assert not errors, errors
    assert len(applied) == 3 * 8 * 4
    for seen in views:
        ids = [record_id for record_id, _ in seen]
        assert sorted(ids) == sorted(applied)  # each applied mutation exactly once
        revs = [rev for _, rev in seen]
        assert revs == sorted(revs) and len(set(revs)) == len(revs)
