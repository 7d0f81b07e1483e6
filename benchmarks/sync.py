"""Device sync benchmark: a new phone pulls a caseload, then pushes local edits.

    python -m benchmarks.sync [--records 10000] [--edits 1000]

Starts ``python -m server serve`` (``server.launch``) on a free loopback port over a temp
SQLite file seeded with ``--records`` records of one team (patients, visits, tasks,
referrals), then times, through ``sync.client.SyncClient`` and ``sync.engine.SyncEngine``
(page writes offloaded to a thread, as in the app) into a real encrypted ``app.store.Store``:

1. the first sync of a new device (pull of the whole caseload): ``pull_records_per_s``;
2. ``--edits`` local edits, then the push phase of the next sync: ``push_mutations_per_s``.

``bytes_per_record`` is what the pull moved on the wire (bodies and headers, both ways)
per record. Baselines from the same run, as these machines are noisy: ``healthz_rps``
(sequential ``/healthz`` through the same client) and ``store_apply_records_per_s`` (the
store applying the same records with no network). Targets: pull >= 5,000 records/s and
push >= 2,000 mutations/s. The last line printed is one JSON object.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import resource
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

import httpx

from app.store import Store
from server import audit, auth, launch, migrations, records
from server.db import Database
from server.passwords import hash_password
from server.records import Stored
from server.settings import Settings
from sync import hlc, schema
from sync.client import SyncClient
from sync.engine import Progress, SyncEngine

PASSWORD = "bench-password-1"
CHEAP_ARGON2 = {
    "LIAISON_ARGON2_MEMORY_KIB": "1024",
    "LIAISON_ARGON2_ITERATIONS": "1",
    "LIAISON_ARGON2_LANES": "1",
}
NEEDS = list(schema.NEED_DOMAINS)


class _Counted(httpx.AsyncByteStream):
    def __init__(self, stream: httpx.AsyncByteStream, wire: Wire) -> None:
        self.stream, self.wire = stream, wire

    async def __aiter__(self) -> AsyncIterator[bytes]:
        async for chunk in self.stream:
            self.wire.received += len(chunk)
            yield chunk

    async def aclose(self) -> None:
        await self.stream.aclose()


class Wire(httpx.AsyncBaseTransport):
    """httpx's own transport, counting bytes as sent and received (compressed or not)."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.sent = self.received = 0

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        self.sent += len(request.content) + _head_size(request.headers) + len(str(request.url))
        response = await self.inner.handle_async_request(request)
        self.received += _head_size(response.headers) + 17  # status line
        assert isinstance(response.stream, httpx.AsyncByteStream)
        return httpx.Response(
            response.status_code,
            headers=response.headers,
            stream=_Counted(response.stream, self),
            extensions=response.extensions,
        )

    async def aclose(self) -> None:
        await self.inner.aclose()

    @property
    def total(self) -> int:
        return self.sent + self.received


def _head_size(headers: httpx.Headers) -> int:
    return sum(len(k) + len(v) + 4 for k, v in headers.raw)


def seed(url: str, count: int) -> None:
    """One team, user ``bench`` and ``count`` records of its caseload (not timed)."""
    database = Database(url, audit_key=audit.load_key())
    migrations.migrate(database)
    rng = random.Random(2026)
    now = time.time()
    clock = hlc.Clock("server", wall=lambda: int(now * 1000) - 3_600_000)
    with database.write() as conn:
        team = auth.create_team(conn, "Bench team", now)
        encoded = hash_password(PASSWORD, Settings.from_environ(CHEAP_ARGON2))
        auth.create_user(conn, "bench", encoded, "liaison", [team], now)
        revs = records.Revs(conn)
        patient_id = ""
        for i in range(count):
            record_id = str(uuid.uuid4())
            kind = ("patient", "visit", "task", "referral")[i % 4]
            if kind == "patient":
                patient_id = record_id
            fields = _fields(kind, i, patient_id, team, rng)
            rev, stamp = revs.next(), clock.now()
            rec = Stored(
                record_id,
                kind,
                team,
                patient_id,
                fields,
                dict.fromkeys(fields, stamp),
                dict.fromkeys(fields, rev),
                rev,
            )
            records.save(conn, rec, new=True, author="bench", now=now)
        revs.finish()
    database.dispose()


def _fields(kind: str, i: int, patient_id: str, team: str, rng: random.Random) -> dict[str, Any]:
    if kind == "patient":
        return {
            "name": f"Patient {i:05d} Example",
            "team_id": team,
            "status": "active",
            "birth_date": f"19{rng.randint(30, 69)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}",
            "phone": f"555-{i:06d}",
            "language": rng.choice(["English", "French"]),
            "consent_status": "verbal",
            "address": f"{i} Example Street, Springfield",
        }
    if kind == "visit":
        return {
            "patient_id": patient_id,
            "setting": rng.choice(schema.SETTINGS),
            "started_at": "2026-05-04T10:00:00",
            "source": "physician_office",
            "needs": rng.sample(NEEDS, 2),
            "triage": rng.choice(schema.TRIAGE),
            "summary": "Lives alone; daughter visits weekly. Needs help with meals.",
            "status": "draft",
        }
    if kind == "task":
        return {
            "patient_id": patient_id,
            "title": "Call back about the referral",
            "due_date": "2026-06-01",
            "done": False,
        }
    return {
        "patient_id": patient_id,
        "to_name": "Community Food Bank",
        "need": "food",
        "urgency": "routine",
        "status": "sent",
    }


async def run(port: int, directory: Path, edits: int) -> dict[str, Any]:
    """The timed phases against a running server."""
    wire = Wire()
    holder: list[Store] = []
    client = SyncClient(
        f"http://127.0.0.1:{port}",
        transport=wire,
        token=lambda: holder[0].get_meta("token") if holder else None,
    )
    start = time.perf_counter()
    n = 0
    while time.perf_counter() - start < 1.0:
        assert await client.healthz()
        n += 1
    healthz_rps = n / (time.perf_counter() - start)

    enrolled = await client.enrol("bench", PASSWORD, "bench phone")
    store = Store.open(directory / "phone", os.urandom(32), node_id=enrolled["device_id"])
    store.set_meta("token", enrolled["token"])
    holder.append(store)

    before = wire.total
    start = time.perf_counter()
    pulled = await SyncEngine(store, client, offload=asyncio.to_thread).sync()
    pull_s = time.perf_counter() - start
    assert pulled.ok, pulled
    pull_bytes = wire.total - before
    pull_peak_rss_mb = _peak_rss_mb()

    mine = store.list("patient")[:edits] + store.list("task")
    for i, rec in enumerate(mine[:edits]):
        fields = {"phone": f"555-9{i:05d}"} if rec["type"] == "patient" else {"done": True}
        store.put(rec["type"], fields, rec["id"])
    marks: list[float] = []

    def progress(p: Progress) -> None:
        if p.phase == "push":
            marks.append(time.perf_counter())

    before = wire.total
    start = time.perf_counter()
    pushed = await SyncEngine(store, client, on_progress=progress, offload=asyncio.to_thread).sync()
    assert pushed.ok and pushed.pushed == edits, pushed
    push_s = marks[-1] - start
    await client.aclose()

    # Baseline: the store applying the same records with no network.
    copy = Store.open(directory / "copy", os.urandom(32), node_id="baseline")
    page = [r | {"rev": i + 1} for i, r in enumerate(store.list())]
    start = time.perf_counter()
    for i in range(0, len(page), 1000):
        copy.apply_pull(page[i : i + 1000], [], i + 1000)
    apply_s = time.perf_counter() - start
    copy.close()
    store.close()
    return {
        "pull_records": pulled.pulled,
        "pull_seconds": round(pull_s, 3),
        "pull_records_per_s": round(pulled.pulled / pull_s),
        "pull_peak_rss_mb": round(pull_peak_rss_mb, 1),
        "push_mutations": pushed.pushed,
        "push_seconds": round(push_s, 3),
        "push_mutations_per_s": round(pushed.pushed / push_s),
        "bytes_per_record": round(pull_bytes / pulled.pulled),
        "push_request_gzip": client.gzip_requests,
        "healthz_rps": round(healthz_rps),
        "store_apply_records_per_s": round(len(page) / apply_s),
    }


def _peak_rss_mb() -> float:
    """This process's resident-memory high-water mark so far: the phone's side of the pull.
    VmHWM where there is /proc (ru_maxrss would carry a parent's peak over fork and exec)."""
    try:
        status = Path("/proc/self/status").read_text()
    except OSError:
        return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # kB on Linux
    line = next(x for x in status.splitlines() if x.startswith("VmHWM:"))
    return int(line.split()[1]) / 1024


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run the benchmark, print a summary and the JSON line, and return the result."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.sync")
    parser.add_argument("--records", type=int, default=10_000, help="caseload size")
    parser.add_argument("--edits", type=int, default=1_000, help="local edits to push")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(prefix="liaison-bench-") as tmp:
        directory = Path(tmp)
        url = f"sqlite:///{directory / 'server.db'}"
        seed(url, args.records)
        server = launch.ServerProcess(url, directory / "server.log", env=CHEAP_ARGON2)
        try:
            server.start()
            result = asyncio.run(run(server.port, directory, args.edits))
        except BaseException:
            print((directory / "server.log").read_text()[-3000:], file=sys.stderr)
            raise
        finally:
            server.stop(timeout=10)
    result = {"benchmark": "sync", "records": args.records, "edits": args.edits, **result}
    print(
        f"pull {result['pull_records']} records in {result['pull_seconds']} s "
        f"({result['pull_records_per_s']}/s, {result['bytes_per_record']} B/record); "
        f"push {result['push_mutations']} in {result['push_seconds']} s "
        f"({result['push_mutations_per_s']}/s); healthz {result['healthz_rps']}/s; "
        f"store alone {result['store_apply_records_per_s']} records/s"
    )
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
