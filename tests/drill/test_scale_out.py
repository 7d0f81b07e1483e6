"""Scale-out drill (DESIGN §6): two ``serve`` processes on one PostgreSQL database behind a
round-robin balancer, several phones editing and syncing through it at once.

Each phone is the real device code: an encrypted ``app.store.Store``, ``sync.engine``'s
``SyncEngine`` and ``sync.client``'s ``SyncClient``, with small push batches and pull pages
so that one sync is many requests, spread by the balancer over both servers (one request
to each in turn). Phones add patients, tasks and sites, change phone numbers and tasks
(also other phones' records: merges and conflicts), and delete tasks (so others' edits to
them are refused and undone). Then every phone syncs until nothing is pending, and once
more to pull the last changes. Afterwards:

- every phone's replica equals the database's records (ids, types, revs, fields, clocks,
  tombstones);
- what each phone pulled is one unbroken chain of pages: each page starts at the cursor the
  last one ended at, holds increasing revs inside its range, no rev twice; every record
  arrived at its final rev, and every rev the phone never saw belongs to a record it later
  got at a higher rev (a superseded version, not a skipped one);
- every mutation each phone made is stored exactly once (one stored result per mutation
  id, ``last_mutation_id`` equal to the phone's counter), and every acknowledged change is
  in the database unless a newer write replaced it; refusals only for deleted records;
- no request was answered with a 5xx.

The random choices come from ``LIAISON_DRILL_SEED`` (printed); the interleaving of
requests is up to the scheduler, so a replay repeats the choices, not the exact race.
"""

from __future__ import annotations

import asyncio
import os
import random
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from app.store import Records, Store
from sync.client import RetryPolicy, SyncClient
from sync.engine import SyncEngine, SyncResult
from tests.drill.state import UNEXPECTED, ServerState, read_state
from tests.sync.faultproxy import FaultProxy
from tests.sync.live_server import PASSWORD, ServerProcess, seed

SEED = int(os.environ.get("LIAISON_DRILL_SEED", "20250611"))
SERVERS = 2
USERS = ("alice", "amy")
PHONES = 6  # three per user
ROUNDS = 25  # edit-then-sync rounds per phone
EDITS = (1, 10)  # edits per round, inclusive
PUSH_BATCH, PULL_LIMIT = 5, 7  # small: every sync is many requests, over both servers
SETTLE_TRIES = 5  # syncs per phone to empty its outbox once the editing stops
DEADLINE = 180.0  # seconds for the whole drive before the drill fails instead of hanging
REFUSALS_EXPECTED = {"record_deleted"}  # an edit of a task another phone deleted
JSON = dict[str, Any]


@dataclass(frozen=True)
class Page:
    """A pulled page as the store applied it."""

    before: int  # the store's cursor before
    after: int  # the cursor saved with the page
    records: tuple[tuple[str, int], ...]  # (id, rev) in the order received

    @property
    def repair(self) -> bool:
        """The engine's re-fetch of records whose refused edits it undid (cursor kept)."""
        return self.after == self.before and bool(self.records)


class LoggingStore(Store):
    """The real store, noting every page it applies."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pages: list[Page] = []

    def apply_pull(self, records: Records, purge: Sequence[str], cursor: int) -> None:
        before = int(self.get_meta("cursor", 0) or 0)
        super().apply_pull(records, purge, cursor)
        self.pages.append(Page(before, cursor, tuple((r["id"], r["rev"]) for r in records)))


class LoggingTransport:
    """The engine's transport: the phone's ``SyncClient``, noting every mutation sent."""

    def __init__(self, client: SyncClient) -> None:
        self.client = client
        self.sent: dict[int, JSON] = {}
        self.problems: list[str] = []

    async def push(self, mutations: Sequence[Mapping[str, Any]]) -> JSON:
        for m in mutations:
            earlier = self.sent.setdefault(m["id"], dict(m))
            if earlier != m:
                self.problems.append(f"mutation id {m['id']} sent for two changes")
        return await self.client.push(mutations)

    async def pull(self, cursor: int, limit: int) -> JSON:
        return await self.client.pull(cursor, limit)

    async def put_attachment(self, sha256: str, data: bytes, content_type: str) -> bool:
        return await self.client.put_attachment(sha256, data, content_type)


class Statuses(httpx.AsyncBaseTransport):
    """httpx's own transport, counting the status of every answer (the client's retries
    would otherwise hide a 5xx)."""

    def __init__(self) -> None:
        self.inner = httpx.AsyncHTTPTransport()
        self.seen: Counter[int] = Counter()

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        response = await self.inner.handle_async_request(request)
        self.seen[response.status_code] += 1
        return response

    async def aclose(self) -> None:
        await self.inner.aclose()


class Phone:
    """One device: store, engine and client, making random edits between syncs."""

    def __init__(self, number: int, url: str, tmp: Path) -> None:
        self.number, self.tmp = number, tmp
        self.rng = random.Random(f"{SEED}:phone:{number}")
        self.statuses = Statuses()
        self.token = ""
        self.client = SyncClient(
            url,
            token=lambda: self.token,
            retry=RetryPolicy(attempts=8, base_delay=0.05, max_delay=0.5),
            timeout=httpx.Timeout(60.0),
            transport=self.statuses,
        )
        self.transport = LoggingTransport(self.client)
        self.store: LoggingStore
        self.device_id = ""
        self.results: list[SyncResult] = []
        self.edits: Counter[str] = Counter()

    async def enrol(self, username: str) -> None:
        enrolled = await self.client.enrol(username, PASSWORD, f"drill phone {self.number}")
        self.device_id, self.token = enrolled["device_id"], enrolled["token"]
        store = LoggingStore.open(
            self.tmp / f"phone{self.number}", os.urandom(32), node_id=self.device_id
        )
        assert isinstance(store, LoggingStore)
        self.store = store

    async def sync(self) -> SyncResult:
        engine = SyncEngine(
            self.store, self.transport, push_batch=PUSH_BATCH, pull_limit=PULL_LIMIT
        )
        result = await engine.sync()
        self.results.append(result)
        return result

    async def work(self) -> None:
        """Rounds of edits, each followed by a sync."""
        for _ in range(ROUNDS):
            for _ in range(self.rng.randint(*EDITS)):
                self.edit()
            await self.sync()

    async def settle(self) -> None:
        """Sync until the outbox is empty."""
        for _ in range(SETTLE_TRIES):
            result = await self.sync()
            if result.ok and result.pending == 0:
                return
        raise AssertionError(f"phone {self.number} still not synced: {self.results[-1]}")

    def edit(self) -> None:
        """One random edit, like a liaison's."""
        rng, store, n = self.rng, self.store, self.store.last_mutation_id + 1

        def live(kind: str) -> list[JSON]:
            return sorted(store.list(kind), key=lambda r: r["id"])

        patients, tasks, sites = live("patient"), live("task"), live("site")
        options = {"new_patient": 2, "new_site": 1}
        if patients:
            options.update(new_task=3, patient_phone=3)
        if tasks:
            options.update(task_done=2, delete_task=1)
        if sites:
            options.update(site_phone=1)
        kind = rng.choices(list(options), weights=list(options.values()))[0]
        self.edits[kind] += 1
        tag = f"{self.number}-{n}"
        if kind == "new_patient":
            store.put("patient", {"name": f"Patient {tag}", "language": "en"})
        elif kind == "new_site":
            store.put("site", {"name": f"Clinic {tag}", "kind": "physician_office"})
        elif kind == "new_task":
            patient = rng.choice(patients)["id"]
            store.put("task", {"patient_id": patient, "title": f"Call {tag}"})
        elif kind == "patient_phone":
            store.put("patient", {"phone": f"555-{tag}"}, rng.choice(patients)["id"])
        elif kind == "task_done":
            task = rng.choice(tasks)
            store.put("task", {"done": not task["fields"].get("done", False)}, task["id"])
        elif kind == "delete_task":
            store.delete(rng.choice(tasks)["id"])
        else:
            store.put("site", {"phone": f"555-{tag}"}, rng.choice(sites)["id"])

    async def aclose(self) -> None:
        await self.client.aclose()


async def drive(phones: list[Phone]) -> None:
    for phone in phones:
        await phone.enrol(USERS[phone.number % len(USERS)])
    await asyncio.gather(*(phone.work() for phone in phones))  # all at once
    await asyncio.gather(*(phone.settle() for phone in phones))
    finals = await asyncio.gather(*(phone.sync() for phone in phones))  # the last changes
    assert all(r.ok and r.pending == 0 and not r.rejected for r in finals), finals


def rev_owners(state: ServerState, phones: list[Phone]) -> tuple[dict[int, str], list[str]]:
    """Which record each rev was handed to, from the stored push results."""
    owners: dict[int, str] = {}
    wrong: list[str] = []
    for phone in phones:
        for result in state.results.get(phone.device_id, []):
            mutation = phone.transport.sent.get(result["id"])
            if mutation is None or result["rev"] is None:
                continue
            owner = owners.setdefault(result["rev"], mutation["record_id"])
            if owner != mutation["record_id"]:
                wrong.append(f"rev {result['rev']} given to {owner} and {mutation['record_id']}")
    return owners, wrong


def check_replica(phone: Phone, state: ServerState) -> list[str]:
    """The phone holds exactly the database's records."""
    replica = {r["id"]: r for r in phone.store.list(include_deleted=True)}
    wire = state.wire
    if replica == wire:
        return []
    missing, extra = sorted(set(wire) - set(replica)), sorted(set(replica) - set(wire))
    differ = [
        (replica[i], wire[i]) for i in sorted(set(wire) & set(replica)) if replica[i] != wire[i]
    ]
    return [
        f"phone {phone.number}: replica differs: missing {missing[:5]}, extra {extra[:5]}, "
        f"{len(differ)} differ, e.g. {differ[:2]}"
    ]


def check_pulls(phone: Phone, state: ServerState, owners: dict[int, str]) -> list[str]:
    """The pages form one chain, no rev twice, none skipped."""
    name = f"phone {phone.number}"
    wrong, cursor, seen, got = _pull_chain(phone, name)
    if cursor != state.rev_counter:
        wrong.append(f"{name}: pulled up to {cursor}, the last rev is {state.rev_counter}")
    twice = sorted(rev for rev, count in seen.items() if count > 1)
    if twice:
        wrong.append(f"{name}: revs pulled twice: {twice[:10]}")
    for record_id, revs in got.items():
        if revs != sorted(set(revs)):
            wrong.append(f"{name}: record {record_id} arrived at revs {revs}")
    for record_id, rec in state.stored.items():
        if rec.rev not in got.get(record_id, []):
            wrong.append(f"{name}: record {record_id} never arrived at its rev {rec.rev}")
    return wrong + _skipped_revs(name, range(1, cursor + 1), seen, got, owners)


def _pull_chain(
    phone: Phone, name: str
) -> tuple[list[str], int, Counter[int], dict[str, list[int]]]:
    """Walk the phone's pages: (problems, last cursor, revs seen, revs per record)."""
    wrong: list[str] = []
    cursor = 0
    seen: Counter[int] = Counter()
    got: dict[str, list[int]] = {}
    for page in phone.store.pages:
        if page.repair:
            continue
        revs = [rev for _, rev in page.records]
        if page.before != cursor:
            wrong.append(f"{name}: a page starts at {page.before}, the last ended at {cursor}")
        if revs != sorted(set(revs)) or not all(page.before < r <= page.after for r in revs):
            wrong.append(f"{name}: page ({page.before}, {page.after}] holds revs {revs}")
        cursor = page.after
        seen.update(revs)
        for record_id, rev in page.records:
            got.setdefault(record_id, []).append(rev)
    return wrong, cursor, seen, got


def _skipped_revs(
    name: str,
    revs: range,
    seen: Counter[int],
    got: dict[str, list[int]],
    owners: dict[int, str],
) -> list[str]:
    """Every rev never pulled belongs to a record that later arrived at a higher rev."""
    wrong: list[str] = []
    for rev in revs:
        if rev in seen:
            continue
        owner = owners.get(rev)
        if owner is None:
            wrong.append(f"{name}: rev {rev} was handed out but no push result names it")
        elif max(got.get(owner, [0])) <= rev:
            wrong.append(f"{name}: skipped rev {rev} of {owner} and got no later version")
    return wrong


def check_mutations(phone: Phone, state: ServerState) -> list[str]:
    """Every mutation of the phone is stored exactly once; acknowledged changes are there."""
    wrong = list(phone.transport.problems)
    name = f"phone {phone.number}"
    made = phone.store.last_mutation_id
    if phone.store.pending_count():
        wrong.append(f"{name}: {phone.store.pending_count()} mutations still pending")
    if state.last_ids.get(phone.device_id) != made:
        wrong.append(
            f"{name}: made {made} mutations, server's last_mutation_id is "
            f"{state.last_ids.get(phone.device_id)}"
        )
    if set(phone.transport.sent) != set(range(1, made + 1)):
        wrong.append(f"{name}: sent ids {sorted(phone.transport.sent)[:10]}... for {made}")
    counts = Counter(state.result_ids(phone.device_id))
    if counts != Counter(range(1, made + 1)):
        doubled = sorted(i for i, n in counts.items() if n > 1)
        missing = sorted(set(range(1, made + 1)) - set(counts))
        wrong.append(f"{name}: stored results doubled {doubled[:10]}, missing {missing[:10]}")
    for result in state.results.get(phone.device_id, []):
        m = phone.transport.sent.get(result["id"])
        if m is not None:
            wrong += _check_result(name, m, result, state)
    return wrong


def _check_result(name: str, m: JSON, result: JSON, state: ServerState) -> list[str]:
    """A refusal is an expected one; an acknowledged change is in the database unless a
    newer write replaced it."""
    if result["status"] == "rejected":
        if result["error"]["code"] not in REFUSALS_EXPECTED:
            return [f"{name}: mutation {m} refused: {result['error']}"]
        return []
    rec = state.stored.get(m["record_id"])
    if rec is None or rec.rev < result["rev"]:
        return [f"{name}: acknowledged mutation {m} ({result}) is not stored"]
    wrong: list[str] = []
    if m["op"] == "delete" and not rec.deleted:
        wrong.append(f"{name}: acknowledged delete of {m['record_id']} is not stored")
    for field, stamp in m["clock"].items():
        kept = rec.clock.get(field, "")
        if kept < stamp or (kept == stamp and rec.fields.get(field) != m["fields"][field]):
            wrong.append(
                f"{name}: {m['record_id']}.{field} = {rec.fields.get(field)!r} "
                f"@{kept}, acknowledged {m['fields'][field]!r} @{stamp}"
            )
    return wrong


def summary(phones: list[Phone], state: ServerState, proxy: FaultProxy) -> str:
    """The drill's size and outcome in one line."""
    made = sum(p.store.last_mutation_id for p in phones)
    edits: Counter[str] = sum((p.edits for p in phones), Counter())
    statuses: Counter[int] = sum((p.statuses.seen for p in phones), Counter())
    refused = sum(len(r.rejected) for p in phones for r in p.results)
    conflicts = sum(len(r.conflicts) for p in phones for r in p.results)
    return (
        f"{made} mutations, {len(state.stored)} records, last rev {state.rev_counter}, "
        f"{refused} refused, {conflicts} conflicts noted; edits {dict(edits)}; "
        f"answers {dict(statuses)}; requests per server port {dict(proxy.routed)}"
    )


@pytest.mark.drill
@pytest.mark.postgres
def test_two_servers_behind_a_balancer(postgres_url: str, tmp_path: Path) -> None:
    print(
        f"scale-out drill: LIAISON_DRILL_SEED={SEED}, {SERVERS} servers, {PHONES} phones x "
        f"{ROUNDS} rounds of {EDITS[0]}-{EDITS[1]} edits"
    )
    seed(postgres_url, USERS)
    servers: list[ServerProcess] = []
    phones: list[Phone] = []
    try:
        for i in range(SERVERS):
            server = ServerProcess(postgres_url, tmp_path / f"server{i}.log")
            server.start()  # one after the other: each binds its port before the next picks
            servers.append(server)
        proxy = FaultProxy([s.port for s in servers]).start()
        try:
            phones = [Phone(i, proxy.url, tmp_path) for i in range(PHONES)]

            async def main() -> None:
                try:
                    await asyncio.wait_for(drive(phones), DEADLINE)
                finally:
                    for phone in phones:
                        await phone.aclose()

            asyncio.run(main())
        finally:
            proxy.stop()
        state = read_state(postgres_url)
        owners, wrong = rev_owners(state, phones)
        for phone in phones:
            wrong += check_replica(phone, state)
            wrong += check_pulls(phone, state, owners)
            wrong += check_mutations(phone, state)
        print(summary(phones, state, proxy))
    finally:
        for server in servers:
            server.stop()
        for phone in phones:
            if hasattr(phone, "store"):
                phone.store.close()
    logs = [s.log.read_text(errors="replace") for s in servers]
    statuses: Counter[int] = sum((p.statuses.seen for p in phones), Counter())
    assert not wrong, wrong[:20]
    assert not [s for s in statuses if s >= 500], (statuses, [log[-2000:] for log in logs])
    assert not any(UNEXPECTED.search(log) for log in logs), [log[-2000:] for log in logs]
    assert all(proxy.routed[s.port] > 0 for s in servers), proxy.routed
    failed = [(p.number, r) for p in phones for r in p.results if not r.ok]
    assert not failed, failed[:5]
