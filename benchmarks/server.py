"""Server benchmark: many devices push and pull at once against a real server on loopback.

``python -m benchmarks.server --devices 200`` starts ``python -m server serve`` with
``server.launch`` on a free loopback port (a temp SQLite file, or ``--database-url
postgresql+psycopg://...``, which may hold other data: the run adds its own teams and
users; there ``--workers N`` runs N server processes), enrols the devices (not timed),
then times three phases, one after the other:

1. ``/healthz`` at the same client concurrency: the framework's ceiling (``healthz_rps``);
2. every device pushes its mutations (one request of 20, as the device engine batches;
   made and encoded beforehand, as a phone's outbox holds them, so that the client spends
   its share of the shared cores on sending);
3. every device pulls its scope (its team's records) from cursor 0 until ``more`` is false.

Devices are in teams of ``--team-size`` (20), so a device's scope is its team's records
(400 at the defaults). Then the pulls are checked: every device must see each record its
team had acknowledged as applied exactly once, in rev order; ``lost`` counts acknowledged
mutations some teammate did not get, ``duplicated`` records some pull delivered twice.
``p95_ms`` is over the push and pull requests, timed from sending to the whole answer.
The last line printed is one JSON object; the exit code is 1 when there were errors,
lost or duplicated mutations.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import math
import os
import sys
import tempfile
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from server import audit, auth, launch, migrations
from server.db import Database
from server.passwords import hash_password
from server.settings import Settings
from sync import hlc

PASSWORD = "bench-password-1"
# Cheap password hashing: enrolment is setup here, not what is measured.
CHEAP_ARGON2 = {
    "LIAISON_ARGON2_MEMORY_KIB": "1024",
    "LIAISON_ARGON2_ITERATIONS": "1",
    "LIAISON_ARGON2_LANES": "1",
}


@dataclass
class Device:
    """One enrolled device of the run and what it pushed and pulled."""

    name: str
    team: int
    device_id: str = ""
    token: str = ""
    patient: str = ""  # the patient its visits are about
    batches: list[list[dict[str, Any]]] = field(default_factory=list)  # to push, in order
    pushed: list[str] = field(default_factory=list)  # acknowledged as applied
    pulled: list[tuple[str, int]] = field(default_factory=list)  # (id, rev), in order


@dataclass
class Tally:
    """Errors and request latencies (seconds) of a phase."""

    errors: list[str] = field(default_factory=list)
    latencies: list[float] = field(default_factory=list)

    def error(self, what: str) -> None:
        self.errors.append(what)


def _setup(url: str, devices: int, team_size: int) -> list[Device]:
    """Migrate and add this run's teams and users (names unique to the run)."""
    settings = Settings.from_environ(CHEAP_ARGON2)
    database = Database(url, audit_key=audit.load_key())
    try:
        migrations.migrate(database)
        encoded = hash_password(PASSWORD, settings)
        run = uuid.uuid4().hex[:8]
        now = time.time()
        found = [Device(f"bench-{run}-{i}", i // team_size) for i in range(devices)]
        with database.write() as conn:
            teams = [
                auth.create_team(conn, f"Bench {run} {t}", now)
                for t in range(math.ceil(devices / team_size))
            ]
            for device in found:
                auth.create_user(conn, device.name, encoded, "liaison", [teams[device.team]], now)
    finally:
        database.dispose()
    return found


class Pool:
    """Keep-alive HTTP/1.1 connections to the server, at most ``size`` requests in flight.

    A few lines of asyncio streams instead of ``httpx.AsyncClient``: at 32 concurrent
    requests httpx's pool cost the client more CPU than the server spent (about 170
    ``/healthz`` a second against 4,500 with this), and client and server share the cores.
    """

    def __init__(self, port: int, size: int) -> None:
        self.port = port
        self.idle: asyncio.Queue[Connection | None] = asyncio.Queue()
        for _ in range(size):
            self.idle.put_nowait(None)  # opened on first use

    async def request(
        self,
        tally: Tally,
        method: str,
        path: str,
        *,
        token: str = "",
        body: Any = None,
        status: int = 200,
    ) -> dict[str, Any] | None:
        """Send one request and time it; the JSON answer, or None after counting an error.

        ``body`` is a JSON value, or bytes already encoded as JSON.
        """
        what = f"{method} {path.partition('?')[0]}"
        data = b"" if body is None else body if isinstance(body, bytes) else _encode(body)
        head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {len(data)}\r\n"
        if body is not None:
            head += "Content-Type: application/json\r\n"
        if token:
            head += f"Authorization: Bearer {token}\r\n"
        connection = await self.idle.get()
        try:
            if connection is None:
                connection = Connection(*await asyncio.open_connection("127.0.0.1", self.port))
            started = time.perf_counter()
            got, answer = await connection.exchange(head.encode() + b"\r\n" + data)
            tally.latencies.append(time.perf_counter() - started)
        except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
            tally.error(f"{what}: {type(exc).__name__} {exc}")
            if connection is not None:
                connection.close()
            connection = None
            return None
        finally:
            self.idle.put_nowait(connection)
        if got != status:
            tally.error(f"{what}: HTTP {got} {answer[:200]!r}")
            return None
        parsed: dict[str, Any] = json.loads(answer)
        return parsed

    async def close(self) -> None:
        """Close every open connection."""
        while not self.idle.empty():
            connection = self.idle.get_nowait()
            if connection is not None:
                connection.close()


class Connection:
    """One keep-alive connection; answers must carry Content-Length (Starlette's do)."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer

    async def exchange(self, request: bytes) -> tuple[int, bytes]:
        """Send a request; the status and body of the answer."""
        self.writer.write(request)
        lines = (await self.reader.readuntil(b"\r\n\r\n")).decode("latin-1").split("\r\n")
        status = int(lines[0].split(" ", 2)[1])
        headers = dict(line.lower().split(": ", 1) for line in lines[1:] if line)
        if "content-length" not in headers:
            raise ValueError("no Content-Length in the answer")
        body = await self.reader.readexactly(int(headers["content-length"]))
        if headers.get("connection") == "close":
            raise ValueError("the server closed the connection")
        return status, body

    def close(self) -> None:
        """Close the socket."""
        self.writer.close()


def _encode(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _cpu_seconds(pid: int) -> float:
    """CPU time (user + system) a process and its live children (``serve --workers``)
    have used so far; 0 where /proc is missing."""
    try:
        children = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    except OSError:
        children = []
    total = 0.0
    for one in (pid, *map(int, children)):
        try:
            fields = Path(f"/proc/{one}/stat").read_text().rpartition(")")[2].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    return total


async def _timed(
    jobs: Sequence[Awaitable[None]],
    cpu: dict[str, float] | None = None,
    phase: str = "",
    pid: int = 0,
) -> float:
    """Run the jobs at once (the pool bounds the requests in flight); the wall time in s.

    With ``cpu``, also records the server's CPU seconds during the phase under ``phase``.
    """
    before = _cpu_seconds(pid) if cpu is not None else 0.0
    started = time.perf_counter()
    await asyncio.gather(*jobs)
    elapsed = time.perf_counter() - started
    if cpu is not None:
        cpu[phase] = round(_cpu_seconds(pid) - before, 2)
    return elapsed


def _mutations(device: Device, first_id: int, count: int, clock: hlc.Clock) -> list[Any]:
    """``count`` upserts numbered from ``first_id``: a patient, then visits of it (1 in 10)."""
    mutations = []
    for number in range(first_id, first_id + count):
        record_id = str(uuid.uuid4())
        if number % 10 == 1:
            device.patient = record_id
            fields: dict[str, Any] = {"name": f"Bench Patient {number}", "status": "active"}
            kind = "patient"
        else:
            fields = {
                "patient_id": device.patient,
                "setting": "home",
                "summary": "x" * 400,
                "needs": ["food", "housing"],
                "triage": "short_term_contact",
            }
            kind = "visit"
        stamp = clock.now()
        mutations.append(
            {
                "id": number,
                "record_id": record_id,
                "type": kind,
                "op": "upsert",
                "fields": fields,
                "clock": dict.fromkeys(fields, stamp),
                "base_rev": None,
            }
        )
    return mutations


async def _enrol(pool: Pool, device: Device, tally: Tally) -> None:
    body = {"username": device.name, "password": PASSWORD, "device_name": "bench"}
    enrolled = await pool.request(tally, "POST", "/api/v1/devices", body=body, status=201)
    if enrolled is not None:
        device.device_id, device.token = enrolled["device_id"], enrolled["token"]


def _prepare(device: Device, count: int, batch: int) -> None:
    """The device's mutations, made (and stamped) before the timed phase, as a phone's
    outbox holds them before it syncs."""
    clock = hlc.Clock(device.device_id)
    for first in range(1, count + 1, batch):
        device.batches.append(_mutations(device, first, min(batch, count - first + 1), clock))


async def _push(pool: Pool, device: Device, bodies: list[bytes], tally: Tally) -> None:
    sent = 0
    for mutations, data in zip(device.batches, bodies, strict=True):
        body = await pool.request(tally, "POST", "/api/v1/sync/push", token=device.token, body=data)
        if body is None:
            return
        results = body["results"]
        if [r["id"] for r in results] != [m["id"] for m in mutations]:
            tally.error(f"push: results for {[r['id'] for r in results]}")
            return
        for mutation, result in zip(mutations, results, strict=True):
            if result["status"] != "applied":
                tally.error(f"push: {result['status']} {result['error']}")
            else:
                device.pushed.append(mutation["record_id"])
        sent += len(mutations)
        if body["last_mutation_id"] != sent:
            tally.error(f"push: last_mutation_id {body['last_mutation_id']}, expected {sent}")


async def _pull(pool: Pool, device: Device, tally: Tally) -> None:
    cursor = 0
    while True:
        page = await pool.request(
            tally, "GET", f"/api/v1/sync/pull?cursor={cursor}", token=device.token
        )
        if page is None:
            return
        device.pulled.extend((r["id"], r["rev"]) for r in page["records"])
        cursor = page["cursor"]
        if not page["more"]:
            return


async def _healthz(pool: Pool, count: int, tally: Tally) -> None:
    for _ in range(count):
        await pool.request(tally, "GET", "/healthz")


def _check(devices: list[Device]) -> tuple[int, int, int, list[str]]:
    """Lost and duplicated mutations over every device's pull, records of other runs, errors.

    A device must see each record its team pushed exactly once, in increasing rev order.
    """
    by_team: dict[int, set[str]] = {}
    for device in devices:
        by_team.setdefault(device.team, set()).update(device.pushed)
    ours = set().union(*by_team.values())
    lost: set[str] = set()
    duplicated: set[str] = set()
    foreign = 0
    errors = []
    for device in devices:
        seen = Counter(record_id for record_id, _ in device.pulled)
        lost.update(r for r in by_team[device.team] if seen[r] == 0)
        duplicated.update(r for r, n in seen.items() if n > 1)
        if any(seen[r] for r in ours - by_team[device.team]):
            errors.append(f"pull: {device.name} sees another team's records")
        foreign += sum(n for r, n in seen.items() if r not in ours)
        revs = [rev for _, rev in device.pulled]
        if revs != sorted(revs):
            errors.append(f"pull: {device.name} got revs out of order")
    return len(lost), len(duplicated), foreign, errors


def _p95_ms(latencies: list[float]) -> float:
    if not latencies:
        return 0.0
    ordered = sorted(latencies)
    return round(ordered[math.ceil(len(ordered) * 0.95) - 1] * 1000, 1)


async def _measure(
    args: argparse.Namespace, port: int, devices: list[Device], server_pid: int
) -> dict[str, Any]:
    pool = Pool(port, args.concurrency)
    try:
        setup = Tally()
        await _timed([_enrol(pool, d, setup) for d in devices])
        if setup.errors:
            raise RuntimeError(f"enrolment failed: {setup.errors[0]}")
        cpu: dict[str, float] = {}
        health = Tally()
        each = max(1, args.healthz_requests // args.concurrency)
        healthz_s = await _timed(
            [_healthz(pool, each, health) for _ in range(args.concurrency)],
            cpu,
            "healthz",
            server_pid,
        )
        bodies = {}
        for device in devices:
            _prepare(device, args.mutations, args.batch)
            bodies[device.name] = [_encode({"mutations": b}) for b in device.batches]
        push = Tally()
        push_s = await _timed(
            [_push(pool, d, bodies[d.name], push) for d in devices], cpu, "push", server_pid
        )
        pull = Tally()
        pull_s = await _timed([_pull(pool, d, pull) for d in devices], cpu, "pull", server_pid)
    finally:
        await pool.close()
    lost, duplicated, foreign, check_errors = _check(devices)
    errors = health.errors + push.errors + pull.errors + check_errors
    pushed = sum(len(d.pushed) for d in devices)
    pulled = sum(len(d.pulled) for d in devices)
    return {
        "benchmark": "server",
        "backend": "sqlite" if args.url.startswith("sqlite") else "postgresql",
        "devices": len(devices),
        "workers": args.workers,
        "team_size": args.team_size,
        "mutations_per_device": args.mutations,
        "batch": args.batch,
        "concurrency": args.concurrency,
        "mutations": pushed,
        "pulled": pulled,
        "foreign_records": foreign,
        "errors": len(errors),
        "first_errors": errors[:5],
        "lost": lost,
        "duplicated": duplicated,
        "mutations_per_s": round(pushed / push_s),
        "pull_records_per_s": round(pulled / pull_s),
        "p95_ms": _p95_ms(push.latencies + pull.latencies),
        "push_p95_ms": _p95_ms(push.latencies),
        "pull_p95_ms": _p95_ms(pull.latencies),
        "healthz_rps": round(len(health.latencies) / healthz_s),
        "seconds": {
            "healthz": round(healthz_s, 2),
            "push": round(push_s, 2),
            "pull": round(pull_s, 2),
        },
        "server_cpu_seconds": cpu,
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Set up, start the server, measure, stop it; returns the result object."""
    with tempfile.TemporaryDirectory() as tmp:
        args.url = args.database_url or f"sqlite:///{tmp}/bench.db"
        devices = _setup(args.url, args.devices, args.team_size)
        log = Path(tmp) / "server.log"
        server = launch.ServerProcess(args.url, log, env=CHEAP_ARGON2, workers=args.workers)
        result: dict[str, Any] = {}
        try:
            server.start()
            assert server.proc is not None
            result = asyncio.run(_measure(args, server.port, devices, server.proc.pid))
        finally:
            server.stop(timeout=30)
            if not result or result["errors"] or result["lost"] or result["duplicated"]:
                # The server's own account, for whoever reads the failure.
                sys.stderr.write(log.read_text(errors="replace")[-4000:])
    return result


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print its JSON line; exit 1 on errors, lost or duplicates."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.server")
    parser.add_argument(
        "--database-url",
        default=None,
        help="default: a temp SQLite file; PostgreSQL may hold other data",
    )
    parser.add_argument("--devices", type=int, default=200)
    parser.add_argument("--mutations", type=int, default=20, help="per device")
    parser.add_argument("--batch", type=int, default=20, help="mutations per push request")
    parser.add_argument("--team-size", type=int, default=20, help="devices per team")
    parser.add_argument("--concurrency", type=int, default=32, help="requests in flight")
    parser.add_argument("--healthz-requests", type=int, default=2000)
    parser.add_argument("--workers", type=int, default=1, help="server processes (PostgreSQL)")
    args = parser.parse_args(argv)
    result = run(args)
    print(json.dumps(result), flush=True)
    bad = result["errors"] or result["lost"] or result["duplicated"]
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
