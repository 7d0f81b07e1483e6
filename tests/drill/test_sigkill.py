"""SIGKILL drill: a real ``python -m server serve`` under concurrent pushes, killed with
SIGKILL at random moments and restarted, on SQLite and on PostgreSQL.

Each pusher is a device speaking wire contract v1 with plain httpx (so every
acknowledgement is seen): mutation ids 1, 2, 3, ... in batches of random size; after a
connection error or a 5xx it waits for the server, asks it for its ``last_mutation_id`` (a
pull) and resends from there, as it also does after every answer. The mutations create
patients and tasks and change patients' phones, so each one changes something and gets
exactly one rev.

Phase 1 pushes while a killer SIGKILLs the server after a random number of pushes plus a
random few milliseconds, ``KILLS`` times, restarting it each time; then the pushers stop
and every mutation the server acknowledged must be in the database exactly once. Phase 2
lets the devices resend everything left; then every mutation must be there exactly once.

Replay a failure with ``LIAISON_DRILL_SEED=<seed printed> pytest -m drill``.
"""

from __future__ import annotations

import asyncio
import os
import random
import time
import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from sync import hlc
from tests.drill.state import UNEXPECTED, ServerState, read_state
from tests.sync.live_server import PASSWORD, ServerProcess, seed

SEED = int(os.environ.get("LIAISON_DRILL_SEED", "20250611"))
PUSHERS = 6  # devices pushing at once (three per user)
MUTATIONS = 300  # per device
BATCH = (1, 8)  # mutations per push, inclusive
KILLS = 6  # SIGKILLs per backend
# Pushes sent since the last (re)start before the next SIGKILL. KILLS * the maximum stays
# below the fewest pushes the devices need (PUSHERS * MUTATIONS / BATCH[1]), so every kill
# lands while they push.
KILL_AFTER = (10, 37)
KILL_JITTER = 0.03  # then up to this many seconds more, so it lands mid-request
DEADLINE = 120.0  # seconds for a phase before the drill fails instead of hanging
USERS = ("alice", "amy")
FAR_CURSOR = 2**61  # a pull above every rev: nothing but last_mutation_id


@dataclass
class Sent:
    """Pushes sent, shared by the pushers and the killer."""

    count: int = 0


@dataclass
class Pusher:
    """One device: its full mutation log and what the server acknowledged of it."""

    number: int
    http: httpx.AsyncClient
    rng: random.Random
    device_id: str = ""
    token: str = ""
    log: list[dict[str, Any]] = field(default_factory=list)
    acked: int = 0  # the server's last_mutation_id as last heard: resend from here
    acked_max: int = 0  # the highest id the server ever acknowledged
    revs: dict[int, int] = field(default_factory=dict)  # mutation id -> rev answered
    unanswered: int = 0  # mutations the server stored but whose answer a kill took away
    statuses: Counter[int] = field(default_factory=Counter)
    errors: Counter[str] = field(default_factory=Counter)  # transport errors by type
    problems: list[str] = field(default_factory=list)  # protocol violations seen

    async def enrol(self, username: str) -> None:
        response = await self.http.post(
            "/api/v1/devices",
            json={"username": username, "password": PASSWORD, "device_name": "drill"},
        )
        response.raise_for_status()
        enrolled = response.json()
        self.device_id, self.token = enrolled["device_id"], enrolled["token"]
        self.log = build_log(self.rng, self.number, self.device_id)

    async def run(self, up: asyncio.Event, sent: Sent, stop: asyncio.Event | None) -> None:
        """Push until every mutation is acknowledged (or ``stop`` is set)."""
        resync = False
        while self.acked < len(self.log) and not (stop is not None and stop.is_set()):
            if resync:  # after an error: where does the server stand?
                await up.wait()
                last = await self._server_last()
                if last is None:
                    await self._backoff(up)
                    continue
                self.unanswered += max(0, last - self.acked)
                self._take(last, [], [])
                resync = False
            batch = self.log[self.acked : self.acked + self.rng.randint(*BATCH)]
            sent.count += 1
            try:
                response = await self.http.post(
                    "/api/v1/sync/push", json={"mutations": batch}, headers=self._auth()
                )
            except httpx.TransportError as exc:  # the server died under it, or is down
                self.errors[type(exc).__name__] += 1
                resync = True
                await self._backoff(up)
                continue
            self.statuses[response.status_code] += 1
            if response.status_code >= 500 or response.status_code == 429:
                resync = True
                await self._backoff(up)
                continue
            if response.status_code != 200:
                self.problems.append(f"push answered {response.status_code}: {response.text}")
                return
            body = response.json()
            self._take(body["last_mutation_id"], batch, body["results"])

    def _take(self, last: int, batch: list[dict[str, Any]], results: list[Any]) -> None:
        """Follow the server's ``last_mutation_id``; note results and violations."""
        if last < self.acked_max:
            self.problems.append(
                f"device {self.number}: the server acknowledged {self.acked_max} "
                f"but now says last_mutation_id={last} (acknowledged mutations lost)"
            )
        if last > len(self.log):
            self.problems.append(f"device {self.number}: last_mutation_id {last} never sent")
        expected = [m["id"] for m in batch if m["id"] <= last]
        if [r["id"] for r in results][: len(expected)] != expected:
            self.problems.append(f"device {self.number}: results {results} for ids {expected}")
        for result in results:
            if result["id"] > last:
                continue
            if result["status"] != "applied" or not isinstance(result["rev"], int):
                self.problems.append(f"device {self.number}: unexpected result {result}")
                continue
            known = self.revs.setdefault(result["id"], result["rev"])
            if known != result["rev"]:
                self.problems.append(
                    f"device {self.number}: mutation {result['id']} answered rev "
                    f"{known}, then {result['rev']}"
                )
        self.acked, self.acked_max = last, max(self.acked_max, last)

    async def _server_last(self) -> int | None:
        try:
            response = await self.http.get(
                "/api/v1/sync/pull",
                params={"cursor": str(FAR_CURSOR), "limit": "1"},
                headers=self._auth(),
            )
        except httpx.TransportError as exc:
            self.errors[type(exc).__name__] += 1
            return None
        self.statuses[response.status_code] += 1
        if response.status_code != 200:
            return None
        return int(response.json()["last_mutation_id"])

    async def _backoff(self, up: asyncio.Event) -> None:
        """Wait for a server that is being restarted, then a short jittered pause (as a
        device backs off before retrying)."""
        await up.wait()
        await asyncio.sleep(self.rng.uniform(0.005, 0.03))

    def _auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


def build_log(rng: random.Random, number: int, device_id: str) -> list[dict[str, Any]]:
    """``MUTATIONS`` mutations: new patients, tasks for them, and new phone numbers."""
    clock = hlc.Clock(device_id)
    log: list[dict[str, Any]] = []
    patients: list[str] = []
    for mutation_id in range(1, MUTATIONS + 1):
        roll = rng.random()
        record_id = str(uuid.UUID(int=rng.getrandbits(128), version=4))
        if not patients or roll < 0.4:
            kind, fields = "patient", {"name": f"Patient {number}-{mutation_id}"}
            patients.append(record_id)
        elif roll < 0.7:
            kind = "task"
            fields = {"patient_id": rng.choice(patients), "title": f"Call {mutation_id}"}
        else:
            kind, record_id = "patient", rng.choice(patients)
            fields = {"phone": f"555-{number}-{mutation_id:04d}"}
        stamp = clock.now()
        log.append(
            {
                "id": mutation_id,
                "record_id": record_id,
                "type": kind,
                "op": "upsert",
                "fields": fields,
                "clock": dict.fromkeys(fields, stamp),
                "base_rev": None,
            }
        )
    return log


async def killer(
    server: ServerProcess,
    up: asyncio.Event,
    sent: Sent,
    rng: random.Random,
    kills: list[str],
    runs: Sequence[asyncio.Future[None]],
) -> None:
    """SIGKILL the server ``KILLS`` times at random moments under load; restart it."""
    for number in range(KILLS):
        target = sent.count + rng.randint(*KILL_AFTER)
        deadline = time.monotonic() + DEADLINE
        while sent.count < target:  # poll: the pushers count their pushes
            assert time.monotonic() < deadline, "the pushers stopped pushing"
            assert not all(r.done() for r in runs), f"all pushed before kill {number + 1}"
            await asyncio.sleep(0.002)
        await asyncio.sleep(rng.uniform(0, KILL_JITTER))
        up.clear()
        server.kill()
        kills.append(f"SIGKILL after push #{sent.count}")
        await asyncio.to_thread(server.start)
        up.set()


def check(state: ServerState, pushers: list[Pusher], *, complete: bool) -> list[str]:
    """Every acknowledged mutation (every mutation when ``complete``) is in the database
    exactly once; returns what is wrong."""
    wrong: list[str] = []
    applied = 0
    for p in pushers:
        wrong += p.problems
        last = state.last_ids[p.device_id]
        if last < p.acked_max:
            wrong.append(f"device {p.number}: acknowledged {p.acked_max}, stored {last}")
        if complete and last != len(p.log):
            wrong.append(f"device {p.number}: {last} of {len(p.log)} mutations stored")
        counts = Counter(state.result_ids(p.device_id))
        if counts != Counter(range(1, last + 1)):
            doubled = sorted(i for i, n in counts.items() if n > 1)
            missing = sorted(set(range(1, last + 1)) - set(counts))
            wrong.append(f"device {p.number}: results doubled {doubled}, missing {missing}")
        stored_revs = {r["id"]: r["rev"] for r in state.results.get(p.device_id, [])}
        for mutation_id, rev in p.revs.items():
            if stored_revs.get(mutation_id) != rev:
                wrong.append(
                    f"device {p.number}: mutation {mutation_id} answered rev {rev}, "
                    f"stored {stored_revs.get(mutation_id)}"
                )
        wrong += _records_match(state, p, last)
        applied += last
    # Each mutation changes its record, so each takes exactly one rev: no more, no fewer.
    if state.rev_counter != applied:
        wrong.append(f"{applied} mutations stored but {state.rev_counter} revs handed out")
    revs = [rec.rev for rec in state.stored.values()]
    if len(revs) != len(set(revs)):
        wrong.append("two records share a rev")
    return wrong


def _records_match(state: ServerState, p: Pusher, last: int) -> list[str]:
    """The device's records equal its first ``last`` mutations applied in order."""
    expected: dict[str, dict[str, Any]] = {}
    for m in p.log[:last]:
        rec = expected.setdefault(m["record_id"], {"fields": {}, "clock": {}})
        rec["fields"].update(m["fields"])
        rec["clock"].update(m["clock"])
    mine = {m["record_id"] for m in p.log}
    wrong = []
    for record_id in sorted(mine):
        stored = state.stored.get(record_id)
        want = expected.get(record_id)
        if stored is None or want is None:
            if stored is not None or want is not None:
                wrong.append(
                    f"device {p.number}: record {record_id} stored={stored} expected={want}"
                )
            continue
        fields = {k: v for k, v in stored.fields.items() if k != "team_id"}
        clock = {k: v for k, v in stored.clock.items() if k != "team_id"}
        if fields != want["fields"] or clock != want["clock"] or stored.deleted:
            wrong.append(
                f"device {p.number}: record {record_id} is {fields} {clock}, expected {want}"
            )
    return wrong


async def drill(server: ServerProcess, url: str, backend: str) -> dict[str, Any]:
    up, sent, stop = asyncio.Event(), Sent(), asyncio.Event()
    kills: list[str] = []
    up.set()
    base = f"http://127.0.0.1:{server.port}"
    clients = [
        httpx.AsyncClient(base_url=base, timeout=httpx.Timeout(15.0)) for _ in range(PUSHERS)
    ]
    try:
        pushers = [
            Pusher(i, clients[i], random.Random(f"{SEED}:{backend}:pusher:{i}"))
            for i in range(PUSHERS)
        ]
        for p in pushers:
            await p.enrol(USERS[p.number % len(USERS)])
        # Phase 1: push under SIGKILLs; the pushers stop once the last restart is done.
        kill_rng = random.Random(f"{SEED}:{backend}:killer")
        runs = [asyncio.ensure_future(p.run(up, sent, stop)) for p in pushers]
        await asyncio.wait_for(killer(server, up, sent, kill_rng, kills, runs), DEADLINE)
        stop.set()
        await asyncio.wait_for(asyncio.gather(*runs), DEADLINE)
        phase1 = check(read_state(url), pushers, complete=False)
        acknowledged = sum(p.acked_max for p in pushers)
        # Phase 2: the devices resend whatever is left, without kills.
        await asyncio.wait_for(asyncio.gather(*(p.run(up, sent, None) for p in pushers)), DEADLINE)
        phase2 = check(read_state(url), pushers, complete=True)
    finally:
        for client in clients:
            await client.aclose()
    statuses: Counter[int] = sum((p.statuses for p in pushers), Counter())
    errors: Counter[str] = sum((p.errors for p in pushers), Counter())
    return {
        "kills": kills,
        "acknowledged_in_phase_1": acknowledged,
        "stored_but_unanswered": sum(p.unanswered for p in pushers),
        "pushes": sent.count,
        "statuses": dict(statuses),
        "errors": dict(errors),
        "phase1": phase1,
        "phase2": phase2,
    }


@pytest.mark.drill
def test_sigkill_under_concurrent_pushes(backend_url: str, tmp_path: Path) -> None:
    backend = "sqlite" if backend_url.startswith("sqlite") else "postgres"
    print(
        f"SIGKILL drill on {backend}: LIAISON_DRILL_SEED={SEED}, {PUSHERS} devices x "
        f"{MUTATIONS} mutations, {KILLS} kills"
    )
    seed(backend_url, USERS)
    server = ServerProcess(backend_url, tmp_path / "server.log")
    server.start()
    try:
        outcome = asyncio.run(drill(server, backend_url, backend))
    finally:
        server.stop()
    print({k: v for k, v in outcome.items() if not k.startswith("phase")})
    log = server.log.read_text(errors="replace")
    assert not outcome["phase1"], (
        "acknowledged mutations not stored exactly once",
        outcome["phase1"][:20],
    )
    assert not outcome["phase2"], (
        "mutations not stored exactly once after resending",
        outcome["phase2"][:20],
    )
    assert len(outcome["kills"]) == KILLS and server.starts == KILLS + 1
    assert not any(status >= 500 for status in outcome["statuses"]), (
        outcome["statuses"],
        log[-3000:],
    )
    assert not UNEXPECTED.search(log), log[-3000:]
