"""Server benchmark: push and pull throughput through the real app, in-process.

``python -m benchmarks.server --mutations 5000`` creates a team and users in a fresh
database (a temp SQLite file, or ``--database-url postgresql://...`` which must be empty),
pushes visits for patients from several devices at once in batches, then pulls everything
from a device of the same team, and prints one JSON object as its last line.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from typing import Any

import httpx

from server import auth, migrations
from server.app import create_app
from server.db import Database
from server.passwords import hash_password
from server.settings import Settings
from sync import hlc

PASSWORD = "bench-password-1"


def _setup(database: Database, settings: Settings, devices: int) -> list[str]:
    migrations.migrate(database)
    encoded = hash_password(PASSWORD, settings)
    names = [f"bench{i}" for i in range(devices + 1)]
    with database.write() as conn:
        team = auth.create_team(conn, f"Bench {uuid.uuid4().hex[:6]}", time.time())
        for name in names:
            auth.create_user(conn, name, encoded, "liaison", [team], time.time())
    return names


async def _enrol(client: httpx.AsyncClient, name: str) -> dict[str, Any]:
    response = await client.post(
        "/api/v1/devices", json={"username": name, "password": PASSWORD, "device_name": "b"}
    )
    response.raise_for_status()
    body: dict[str, Any] = response.json()
    return body


async def _pusher(
    client: httpx.AsyncClient, device: dict[str, Any], count: int, batch: int, lat: list[float]
) -> None:
    clock = hlc.Clock(device["device_id"])
    headers = {"Authorization": f"Bearer {device['token']}"}
    next_id, patient = 1, str(uuid.uuid4())
    while next_id <= count:
        mutations = []
        for _ in range(min(batch, count - next_id + 1)):
            stamp = clock.now()
            if next_id % 10 == 1:
                patient = str(uuid.uuid4())
                fields: dict[str, Any] = {"name": f"Bench Patient {next_id}", "status": "active"}
                kind, record = "patient", patient
            else:
                fields = {"patient_id": patient, "setting": "home", "summary": "x" * 400,
                          "needs": ["food", "housing"], "triage": "short_term_contact"}
                kind, record = "visit", str(uuid.uuid4())
            mutations.append({"id": next_id, "record_id": record, "type": kind, "op": "upsert",
                              "fields": fields, "clock": dict.fromkeys(fields, stamp),
                              "base_rev": None})
            next_id += 1
        started = time.perf_counter()
        response = await client.post("/api/v1/sync/push", json={"mutations": mutations},
                                     headers=headers)
        lat.append(time.perf_counter() - started)
        response.raise_for_status()
        assert all(r["status"] == "applied" for r in response.json()["results"])


async def _run(args: argparse.Namespace, url: str) -> dict[str, Any]:
    settings = Settings.from_environ({"LIAISON_ARGON2_MEMORY_KIB": "1024"})
    database = Database(url)
    names = _setup(database, settings, args.devices)
    app = create_app(settings, database)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://bench") as client:
        devices = [await _enrol(client, n) for n in names]
        per_device = args.mutations // args.devices
        latencies: list[float] = []
        started = time.perf_counter()
        await asyncio.gather(*(
            _pusher(client, d, per_device, args.batch, latencies) for d in devices[:-1]
        ))
        push_seconds = time.perf_counter() - started
        reader = {"Authorization": f"Bearer {devices[-1]['token']}"}
        cursor, pulled, more = 0, 0, True
        started = time.perf_counter()
        while more:
            response = await client.get("/api/v1/sync/pull", params={"cursor": cursor},
                                        headers=reader)
            page = response.json()
            pulled += len(page["records"])
            cursor, more = page["cursor"], page["more"]
        pull_seconds = time.perf_counter() - started
    database.dispose()
    pushed = per_device * args.devices
    latencies.sort()
    return {
        "benchmark": "server",
        "backend": "sqlite" if url.startswith("sqlite") else "postgresql",
        "devices": args.devices,
        "batch": args.batch,
        "mutations": pushed,
        "push_per_s": round(pushed / push_seconds),
        "push_batch_p50_ms": round(statistics.median(latencies) * 1000, 1),
        "push_batch_p95_ms": round(latencies[int(len(latencies) * 0.95) - 1] * 1000, 1),
        "pulled": pulled,
        "pull_per_s": round(pulled / pull_seconds),
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print its JSON line."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.server")
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--mutations", type=int, default=5000)
    parser.add_argument("--devices", type=int, default=4)
    parser.add_argument("--batch", type=int, default=100)
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{tmp}/bench.db"
        result = asyncio.run(_run(args, url))
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
