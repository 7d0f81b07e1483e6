"""SyncEngine against an in-memory fake server behind httpx.MockTransport, with scripted faults.

The fakes here are deliberately small; tests/sync/test_engine_inprocess.py runs the same
engine against the real server and the real encrypted store.
"""

from __future__ import annotations

import asyncio
import json
import threading
import uuid
from collections import Counter
from collections.abc import Callable, Coroutine
from typing import Any

import httpx
import pytest

from sync import hlc, schema
from sync.client import RetryPolicy, SyncClient
from sync.engine import Progress, SyncEngine, SyncResult, SyncStatus
from sync.errors import FieldError, SyncInProgress
from sync.merge import merge

JSON = dict[str, Any]


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coro)


class Crash(Exception):
    """The app died at this point (the store keeps only what it wrote durably)."""


class MemoryStore:
    """The engine's view of app.store.Store, in memory; each call is one atomic write."""

    def __init__(self, node: str = "dev1", wall: Callable[[], int] | None = None) -> None:
        self.clock = hlc.Clock(node, wall) if wall else hlc.Clock(node)
        self.records: dict[str, JSON] = {}
        self._outbox: list[JSON] = []
        self.meta: dict[str, Any] = {}
        self.next_id = 1
        self.crash_on: dict[str, int] = {}  # method name -> calls left before it crashes
        self.wiped = False

    def _maybe_crash(self, name: str) -> None:
        left = self.crash_on.get(name)
        if left is not None:
            if left == 0:
                del self.crash_on[name]
                raise Crash(name)
            self.crash_on[name] = left - 1

    def put(self, type_name: str, fields: JSON, record_id: str | None = None) -> JSON:
        record_id = record_id or str(uuid.uuid4())
        rec = self.records.setdefault(
            record_id,
            {
                "id": record_id,
                "type": type_name,
                "fields": {},
                "clock": {},
                "rev": None,
                "deleted": False,
            },
        )
        clock = {name: self.clock.now() for name in fields}
        rec["fields"].update(fields)
        rec["clock"].update(clock)
        self._outbox.append(
            {
                "id": self.next_id,
                "record_id": record_id,
                "type": type_name,
                "op": "upsert",
                "fields": dict(fields),
                "clock": clock,
                "base_rev": rec["rev"],
            }
        )
        self.next_id += 1
        return rec

    def outbox(self, limit: int | None = None, /) -> list[JSON]:
        return [dict(m) for m in self._outbox[:limit]]

    def pending_count(self) -> int:
        return len(self._outbox)

    def acknowledge(self, up_to_id: int, /) -> None:
        self._maybe_crash("acknowledge")
        self._outbox = [m for m in self._outbox if m["id"] > up_to_id]

    def apply_pull(self, records: list[JSON], purge: list[str], cursor: int, /) -> None:
        self._maybe_crash("apply_pull")
        for incoming in records:
            for stamp in incoming["clock"].values():
                self.clock.observe(stamp)
            rec = self.records.get(incoming["id"])
            if rec is None:
                self.records[incoming["id"]] = json.loads(json.dumps(incoming))
                continue
            merged = merge(rec["fields"], rec["clock"], incoming["fields"], incoming["clock"])
            rec.update(
                fields=merged.fields,
                clock=merged.clock,
                rev=incoming["rev"],
                deleted=incoming["deleted"],
            )
        for patient_id in purge:
            for rid in [
                r
                for r, rec in self.records.items()
                if schema.patient_of(rec["type"], r, rec["fields"]) == patient_id
            ]:
                del self.records[rid]
        self.meta["cursor"] = cursor

    def list(self, type_name: str | None = None, /) -> list[JSON]:
        return [
            r for r in self.records.values() if not r["deleted"] and type_name in (None, r["type"])
        ]

    def unsent_patients(self) -> list[str]:
        found = (
            schema.patient_of(r["type"], i, r["fields"])
            for i, r in self.records.items()
            if not r["deleted"] and r.get("rev") is None
        )
        return list(dict.fromkeys(p for p in found if p is not None))

    def get(self, record_id: str, /, *, include_deleted: bool = False) -> JSON | None:
        rec = self.records.get(record_id)
        return None if rec is None or (rec["deleted"] and not include_deleted) else rec

    def revert(self, mutation: JSON, /) -> None:
        self._outbox = [m for m in self._outbox if m["id"] != mutation["id"]]
        rec = self.records.get(mutation["record_id"])
        if rec is None:
            return
        if rec["rev"] is None and not any(m["record_id"] == rec["id"] for m in self._outbox):
            del self.records[rec["id"]]
            return
        for name, stamp in mutation["clock"].items():
            if rec["clock"].get(name) == stamp:
                del rec["clock"][name], rec["fields"][name]

    def get_blob(self, sha256: str, /) -> bytes | None:
        return None  # these tests have no photos

    def put_blob(self, data: bytes, /) -> str:
        raise AssertionError("these tests have no photos")

    def renumber_outbox(self, first_id: int, /) -> None:
        for new_id, m in enumerate(self._outbox, start=first_id):
            m["id"] = new_id
        self.next_id = first_id + len(self._outbox)

    def get_meta(self, key: str, default: Any = None, /) -> Any:
        return self.meta.get(key, default)

    def set_meta(self, key: str, value: Any, /) -> None:
        if value is None:
            self.meta.pop(key, None)
        else:
            self.meta[key] = json.loads(json.dumps(value))

    def wipe(self) -> None:
        self.records, self._outbox, self.meta, self.wiped = {}, [], {}, True


class NoPhotos:
    """A transport for tests without attachments."""

    async def put_attachment(self, sha256: str, data: bytes, content_type: str, /) -> bool:
        raise AssertionError("these tests have no photos")


class FakeServer:
    """Wire contract v1 in memory: push (skip seen ids, stop at a gap, merge), pull, purge."""

    def __init__(self) -> None:
        self.records: dict[str, JSON] = {}
        self.field_revs: dict[str, dict[str, int]] = {}
        self.rev = 0
        self.last_mutation_id: dict[str, int] = {}
        self.applied: Counter[tuple[str, int]] = Counter()
        self.purges: list[tuple[int, str]] = []
        self.faults: list[tuple[str, str]] = []  # (path suffix, before|after|500|lost_body)
        self.tokens = {"tok": "dev1", "tok2": "dev2"}
        self.revoked: set[str] = set()
        self.on_push: Callable[[], None] | None = None
        self.requests: list[str] = []
        self.max_body = 10**9

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        self.requests.append(path)
        fault = next((f for f in self.faults if path.endswith(f[0])), None)
        if fault:
            self.faults.remove(fault)
            if fault[1] == "before":
                raise httpx.ConnectError("dropped before the request")
            if fault[1] == "500":
                return httpx.Response(500, json={"error": {"code": "boom", "message": "x"}})
        response = self._route(request)
        if fault and fault[1] == "after":
            raise httpx.ReadError("dropped before the answer")
        return response

    def _route(self, request: httpx.Request) -> httpx.Response:
        token = request.headers.get("Authorization", "").removeprefix("Bearer ")
        device = self.tokens.get(token)
        if device in self.revoked:
            body = {"error": {"code": "device_revoked", "message": "revoked"}, "wipe": True}
            return httpx.Response(401, json=body)
        if device is None:
            return httpx.Response(401, json={"error": {"code": "bad_token", "message": "no"}})
        if request.url.path.endswith("/push"):
            if len(request.content) > self.max_body:
                return httpx.Response(413, json={"error": {"code": "too_large", "message": "."}})
            if self.on_push:
                self.on_push()
            return httpx.Response(200, json=self.push(device, json.loads(request.content)))
        cursor = int(request.url.params["cursor"])
        return httpx.Response(200, json=self.pull(device, cursor, int(request.url.params["limit"])))

    def push(self, device: str, body: JSON) -> JSON:
        last = self.last_mutation_id.get(device, 0)
        results = []
        for m in body["mutations"]:
            if m["id"] <= last:
                continue
            if m["id"] != last + 1:
                break
            last = m["id"]
            results.append(self._apply(device, m))
        self.last_mutation_id[device] = last
        return {"last_mutation_id": last, "results": results}

    def _apply(self, device: str, m: JSON) -> JSON:
        errors = schema.validate(m["type"], m["fields"], partial=True)
        stored = self.records.get(m["record_id"])
        if stored and stored["type"] == "visit" and stored["fields"].get("status") == "final":
            errors.append(FieldError("status", "the visit is final"))
        if errors:
            e = errors[0]
            return {
                "id": m["id"],
                "status": "rejected",
                "rev": None,
                "conflicts": [],
                "error": {"code": "invalid", "message": e.message, "field": e.field},
            }
        self.applied[(device, m["id"])] += 1
        stored = stored or {
            "id": m["record_id"],
            "type": m["type"],
            "fields": {},
            "clock": {},
            "rev": 0,
            "deleted": False,
        }
        frevs = self.field_revs.setdefault(m["record_id"], {})
        base = m["base_rev"] or 0
        result = merge(
            stored["fields"],
            stored["clock"],
            m["fields"],
            m["clock"],
            lambda name: frevs.get(name, 0) > base,
        )
        self.rev += 1
        for name in result.changed:
            frevs[name] = self.rev
        stored.update(fields=result.fields, clock=result.clock, rev=self.rev)
        self.records[m["record_id"]] = stored
        conflicts = [c.as_json() for c in result.conflicts]
        return {
            "id": m["id"],
            "status": "merged" if conflicts else "applied",
            "rev": self.rev,
            "conflicts": conflicts,
            "error": None,
        }

    def purge(self, patient_id: str) -> None:
        self.rev += 1
        self.purges.append((self.rev, patient_id))
        for rid in [
            r
            for r, rec in self.records.items()
            if schema.patient_of(rec["type"], r, rec["fields"]) == patient_id
        ]:
            del self.records[rid]

    def pull(self, device: str, cursor: int, limit: int) -> JSON:
        items = sorted(
            [(r["rev"], "record", r) for r in self.records.values() if r["rev"] > cursor]
            + [(rev, "purge", pid) for rev, pid in self.purges if rev > cursor],
            key=lambda item: item[0],
        )
        page, more = items[:limit], len(items) > limit
        return {
            "records": [json.loads(json.dumps(x)) for _, kind, x in page if kind == "record"],
            "purge": [x for _, kind, x in page if kind == "purge"],
            # Like the real server: a last page ends at the high-water rev.
            "cursor": page[-1][0] if more else max(cursor, self.rev),
            "more": more,
            "last_mutation_id": self.last_mutation_id.get(device, 0),
        }


def engine_for(
    server: FakeServer, store: MemoryStore, *, attempts: int = 4, token: str = "tok", **kw: Any
) -> SyncEngine:
    async def no_sleep(_seconds: float) -> None:
        return None

    client = SyncClient(
        "https://liaison.example",
        token=token,
        transport=httpx.MockTransport(server),
        retry=RetryPolicy(attempts=attempts),
        sleep=no_sleep,
        random=lambda: 0.0,
    )
    return SyncEngine(store, client, **kw)


def sync(engine: SyncEngine) -> SyncResult:
    return run(engine.sync())  # type: ignore[no-any-return]


def visible(store: MemoryStore) -> dict[str, JSON]:
    return {rid: r["fields"] for rid, r in store.records.items()}


def on_server(server: FakeServer) -> dict[str, JSON]:
    return {rid: r["fields"] for rid, r in server.records.items()}


PATIENT = str(uuid.uuid4())


def patient(store: MemoryStore, name: str = "Ana", record_id: str = PATIENT) -> JSON:
    return store.put("patient", {"name": name}, record_id)


def test_push_then_pull_then_acknowledge() -> None:
    server, store = FakeServer(), MemoryStore()
    patient(store)
    task = store.put("task", {"patient_id": PATIENT, "title": "Call GP"})
    seen: list[Progress] = []
    result = sync(engine_for(server, store, on_progress=seen.append))
    assert result.status is SyncStatus.OK and result.ok
    assert (result.pushed, result.pulled, result.pending) == (2, 2, 0)
    assert on_server(server) == visible(store)
    assert store.records[task["id"]]["rev"] == 2 and store.meta["cursor"] == 2
    assert seen[0] == Progress("push", 2, 2, 0) and seen[-1] == Progress("pull", 2, 2, 2)


def test_batches_and_pages() -> None:
    server, store = FakeServer(), MemoryStore()
    for i in range(7):
        patient(store, f"P{i}", str(uuid.uuid4()))
    result = sync(engine_for(server, store, push_batch=3, pull_limit=2))
    assert (result.pushed, result.pulled) == (7, 7)
    assert server.requests.count("/api/v1/sync/push") == 3
    assert server.requests.count("/api/v1/sync/pull") == 4
    assert on_server(server) == visible(store)


def test_lost_push_answer_is_retried_harmlessly() -> None:
    server, store = FakeServer(), MemoryStore()
    patient(store)
    server.faults = [("/push", "after")]
    result = sync(engine_for(server, store))
    assert result.ok and result.pending == 0
    assert server.applied == Counter({("dev1", 1): 1})


def test_offline_keeps_everything_pending() -> None:
    server, store = FakeServer(), MemoryStore()
    patient(store)
    server.faults = [("/push", "before")] * 3
    result = sync(engine_for(server, store, attempts=3))
    assert result.status is SyncStatus.OFFLINE and result.pending == 1
    assert not server.records
    assert sync(engine_for(server, store)).ok and on_server(server) == visible(store)


def test_edits_during_a_sync_stay_pending() -> None:
    server, store = FakeServer(), MemoryStore()
    patient(store)
    server.on_push = lambda: None if store.put("patient", {"phone": "555"}, PATIENT) else None
    engine = engine_for(server, store, push_batch=1)
    result = sync(engine)
    # The edit made while the push was on the wire is not acknowledged unconfirmed: it
    # stays pending for the next sync (which a save triggers).
    server.on_push = None
    assert result.ok and result.pending == 1 and store.outbox()[0]["id"] == 2
    assert sync(engine).ok and store.pending_count() == 0
    assert server.records[PATIENT]["fields"] == {"name": "Ana", "phone": "555"}
    assert all(n == 1 for n in server.applied.values())


def test_an_edit_made_during_the_pull_stays_pending_and_wins_locally() -> None:
    # One wall clock for both devices, moved between the edits: on the real one two edits
    # could fall in one millisecond, and the tie goes to the larger node id (dev2's).
    now = [1_790_000_000_000]
    server, store = FakeServer(), MemoryStore(wall=lambda: now[0])
    patient(store)
    engine = engine_for(server, store)
    assert sync(engine).ok
    other = MemoryStore("dev2", wall=lambda: now[0])
    other.records = json.loads(json.dumps(store.records))
    now[0] += 1000
    other.put("patient", {"name": "Ana B"}, PATIENT)
    assert sync(engine_for(server, other, token="tok2")).ok

    original = server.pull

    def pull_and_edit(device: str, cursor: int, limit: int) -> JSON:
        page = original(device, cursor, limit)
        now[0] += 1000
        store.put("patient", {"name": "Ana C"}, PATIENT)  # the user typed during the pull
        return page

    server.pull = pull_and_edit  # type: ignore[method-assign]
    assert sync(engine).ok
    server.pull = original  # type: ignore[method-assign]
    assert store.records[PATIENT]["fields"]["name"] == "Ana C"
    assert store.pending_count() == 1
    assert sync(engine).ok and server.records[PATIENT]["fields"]["name"] == "Ana C"


def test_two_syncs_never_run_at_once() -> None:
    store, gate = MemoryStore(), asyncio.Event()

    class Slow(NoPhotos):
        async def push(self, mutations: Any, /) -> JSON:
            await gate.wait()
            return {"last_mutation_id": 1, "results": []}

        async def pull(self, cursor: int, limit: int, /) -> JSON:
            return {"records": [], "purge": [], "cursor": 0, "more": False, "last_mutation_id": 1}

    patient(store)
    engine = SyncEngine(store, Slow())

    async def both() -> SyncResult:
        first = asyncio.ensure_future(engine.sync())
        await asyncio.sleep(0)
        assert engine.running
        with pytest.raises(SyncInProgress):
            await engine.sync()
        with pytest.raises(SyncInProgress):  # another engine over the same store
            await SyncEngine(store, Slow()).sync()
        assert (await SyncEngine(MemoryStore(), Slow()).sync()).ok  # another store may
        gate.set()
        return await first

    assert run(both()).ok and not engine.running


def test_rejected_mutations_are_kept_with_the_reason() -> None:
    server, store = FakeServer(), MemoryStore()
    patient(store)
    bad = store.put("task", {"patient_id": PATIENT, "title": "x" * 500})
    store.put("task", {"patient_id": PATIENT, "title": "ok"})
    result = sync(engine_for(server, store))
    assert result.ok and result.pushed == 2 and result.pending == 0
    [rejected] = result.rejected
    assert rejected.mutation["record_id"] == bad["id"]
    assert (rejected.code, rejected.field) == ("invalid", "title")
    kept = store.meta["rejected"]
    assert kept == [rejected.as_json()]
    assert bad["id"] not in store.records  # the server never had it
    assert on_server(server) == visible(store)
    # A replay of the same answer keeps one copy.
    engine_for(server, store)._keep("rejected", kept)
    assert len(store.meta["rejected"]) == 1


def test_a_refused_edit_is_reverted_to_the_servers_version() -> None:
    server, a, b = FakeServer(), MemoryStore("dev1"), MemoryStore("dev2")
    patient(a)
    visit = a.put("visit", {"patient_id": PATIENT, "summary": "first"})
    assert sync(engine_for(server, a)).ok
    assert sync(engine_for(server, b, token="tok2")).ok
    b.put("visit", {"summary": "edited offline"}, visit["id"])
    for _ in range(3):  # unrelated changes so the repair pull starts well before the end
        patient(a, "Other", str(uuid.uuid4()))
    a.put("visit", {"status": "final"}, visit["id"])
    assert sync(engine_for(server, a)).ok
    result = sync(engine_for(server, b, token="tok2"))
    assert result.ok and [r.mutation["fields"] for r in result.rejected] == [
        {"summary": "edited offline"}
    ]
    assert b.records[visit["id"]]["fields"] == server.records[visit["id"]]["fields"]
    assert visible(b) == on_server(server) and "sync_repair" not in b.meta
    assert b.meta["rejected"][0]["mutation"]["fields"] == {"summary": "edited offline"}


def test_a_refused_edit_of_an_unchanged_record_is_pulled_again() -> None:
    server, store = FakeServer(), MemoryStore()
    patient(store)
    task = store.put("task", {"patient_id": PATIENT, "title": "Call GP"})
    for _ in range(4):
        patient(store, "Other", str(uuid.uuid4()))
    engine = engine_for(server, store, pull_limit=2)
    assert sync(engine).ok
    store.put("task", {"title": "x" * 500, "done": True}, task["id"])
    result = sync(engine)
    assert [r.field for r in result.rejected] == ["title"]
    assert store.records[task["id"]]["fields"] == {"patient_id": PATIENT, "title": "Call GP"}
    assert visible(store) == on_server(server) and store.meta["cursor"] == 6
    assert server.requests.count("/api/v1/sync/pull") == 3 + 1 + 3  # 2nd sync: 1 + repair


def test_conflicts_name_the_losing_value_device_and_time() -> None:
    server = FakeServer()
    a = MemoryStore("dev1", wall=lambda: 1_700_000_000_000)
    b = MemoryStore("dev2", wall=lambda: 1_700_000_060_000)
    patient(a)
    assert sync(engine_for(server, a)).ok
    assert sync(engine_for(server, b, token="tok2")).ok
    b.put("patient", {"phone": "222"}, PATIENT)  # later clock
    a.put("patient", {"phone": "111"}, PATIENT)  # offline, earlier clock
    assert sync(engine_for(server, b, token="tok2")).ok
    result = sync(engine_for(server, a))
    [conflict] = result.conflicts
    assert (conflict.field, conflict.value, conflict.lost_value) == ("phone", "222", "111")
    assert conflict.lost_by == "dev1" and conflict.lost_at == "2023-11-14T22:13:20+00:00"
    assert not conflict.incoming_won and a.meta["conflicts"] == [conflict.as_json()]
    assert visible(a) == visible(b) == on_server(server)


def test_a_conflict_over_a_list_field_is_kept() -> None:
    """Kept lists are deduplicated by value: a list or object value must not break that."""
    server = FakeServer()
    a = MemoryStore("dev1", wall=lambda: 1_700_000_000_000)
    b = MemoryStore("dev2", wall=lambda: 1_700_000_060_000)
    patient(a)
    assert sync(engine_for(server, a)).ok
    assert sync(engine_for(server, b, token="tok2")).ok
    b.put("patient", {"risk_flags": ["Lives alone"]}, PATIENT)
    a.put("patient", {"risk_flags": ["Falls"]}, PATIENT)
    assert sync(engine_for(server, b, token="tok2")).ok
    result = sync(engine_for(server, a))
    assert result.ok
    [conflict] = result.conflicts
    assert (conflict.value, conflict.lost_value) == (["Lives alone"], ["Falls"])
    assert sync(engine_for(server, a)).ok and a.meta["conflicts"] == [conflict.as_json()]


def test_purge_removes_the_patients_records() -> None:
    server, store = FakeServer(), MemoryStore()
    patient(store)
    store.put("task", {"patient_id": PATIENT, "title": "Call"})
    other = patient(store, "Bo", str(uuid.uuid4()))
    engine = engine_for(server, store)
    assert sync(engine).ok
    server.purge(PATIENT)
    result = sync(engine)
    assert result.purged == [PATIENT] and set(store.records) == {other["id"]}


def move_away(server: FakeServer, patient_id: str) -> None:
    """The patient leaves the device's scope, as the real server tells a device that pulls
    from cursor 0: its records are gone from the pull, with no purge (nothing to purge);
    the move takes a rev of its own."""
    server.rev += 1
    for rid in [
        r
        for r, rec in server.records.items()
        if schema.patient_of(rec["type"], r, rec["fields"]) == patient_id
    ]:
        del server.records[rid]


def test_a_patient_pushed_before_the_first_pull_and_moved_away_is_purged() -> None:
    server, store = FakeServer(), MemoryStore()
    patient(store)
    store.put("task", {"patient_id": PATIENT, "title": "Call"})
    other = patient(store, "Bo", str(uuid.uuid4()))
    server.faults = [("/pull", "before")] * 4  # pushed; the first pull never arrives
    assert sync(engine_for(server, store)).status is SyncStatus.OFFLINE
    assert store.pending_count() == 0 and store.meta.get("cursor") is None
    move_away(server, PATIENT)
    result = sync(engine_for(server, store))
    assert result.ok and result.purged == [PATIENT]
    assert set(store.records) == {other["id"]}
    assert "sync_first_pull" not in store.meta
    store.put("patient", {"name": "Cy"}, str(uuid.uuid4()))  # later pulls leave it be
    assert sync(engine_for(server, store)).purged == []


def test_a_first_pull_cut_after_a_page_still_purges_what_it_never_returned() -> None:
    """The full first pull spans syncs: the check waits for its last page."""
    server, store = FakeServer(), MemoryStore()
    ids = [patient(store, f"P{n}", str(uuid.uuid4()))["id"] for n in range(4)]
    server.faults = [("/pull", "before")] * 4
    sync(engine_for(server, store))
    move_away(server, ids[-1])  # before the first page: no purge will ever name it
    pull, pulls = server.pull, []

    def one_page_then_offline(device: str, cursor: int, limit: int) -> JSON:
        pulls.append(cursor)
        if len(pulls) > 1:
            raise httpx.ConnectError("the network went away")
        return pull(device, cursor, limit)

    server.pull = one_page_then_offline  # type: ignore[method-assign]
    assert sync(engine_for(server, store, pull_limit=2)).status is SyncStatus.OFFLINE
    assert store.meta["cursor"] > 0 and ids[-1] in store.records
    server.pull = pull  # type: ignore[method-assign]
    result = sync(engine_for(server, store, pull_limit=2))
    assert result.ok and result.purged == [ids[-1]]
    assert set(store.records) == set(ids[:-1])


def test_nothing_is_purged_before_the_pull_passed_the_revs_the_push_got() -> None:
    server, store = FakeServer(), MemoryStore()
    patient(store)
    server.pull = lambda device, cursor, limit: {  # type: ignore[method-assign]
        "records": [],
        "purge": [],
        "cursor": cursor,
        "more": False,
        "last_mutation_id": server.last_mutation_id.get(device, 0),
    }
    result = sync(engine_for(server, store))
    assert result.ok and result.pushed == 1 and result.purged == []
    assert PATIENT in store.records and store.meta["sync_first_pull"] == 1


def test_a_patient_with_a_pending_change_waits_for_the_next_sync() -> None:
    server, store = FakeServer(), MemoryStore()
    patient(store)
    server.faults = [("/pull", "before")] * 4
    sync(engine_for(server, store))
    move_away(server, PATIENT)
    other = patient(store, "Bo", str(uuid.uuid4()))  # something to push
    server.on_push = lambda: store.put("task", {"patient_id": PATIENT, "title": "Late"})
    result = sync(engine_for(server, store))  # the task typed during the push is pending
    assert result.ok and result.purged == [] and PATIENT in store.records
    server.on_push = None
    result = sync(engine_for(server, store))
    assert result.ok and result.purged == [PATIENT] and set(store.records) == {other["id"]}
    assert "sync_first_pull" not in store.meta


def test_device_revoked_wipes_the_store() -> None:
    server, store = FakeServer(), MemoryStore()
    patient(store)
    server.revoked.add("dev1")
    result = sync(engine_for(server, store))
    assert result.status is SyncStatus.DEVICE_REVOKED and store.wiped and not store.records


def test_expired_token_asks_for_sign_in_and_keeps_edits() -> None:
    server, store = FakeServer(), MemoryStore()
    patient(store)
    result = sync(engine_for(server, store, token="stale"))
    assert result.status is SyncStatus.SIGN_IN_REQUIRED and result.pending == 1
    assert store.records and not store.wiped
    assert sync(engine_for(server, store)).ok and store.pending_count() == 0


def test_413_halves_the_batch() -> None:
    server, store = FakeServer(), MemoryStore()
    for i in range(8):
        patient(store, f"P{i}", str(uuid.uuid4()))
    server.max_body = 900
    result = sync(engine_for(server, store, push_batch=8))
    assert result.ok and result.pushed == 8


def test_a_server_expecting_another_id_gets_the_outbox_renumbered() -> None:
    server, store = FakeServer(), MemoryStore()
    patient(store)
    engine = engine_for(server, store)
    assert sync(engine).ok
    server.last_mutation_id["dev1"] = 0  # signed in again as a new device, or a restore
    patient(store, "Cy", str(uuid.uuid4()))
    patient(store, "Di", str(uuid.uuid4()))
    result = sync(engine)
    assert result.ok and result.pushed == 2 and store.pending_count() == 0
    assert on_server(server) == visible(store)
    assert server.applied[("dev1", 1)] == 2  # id 1 again, under the new numbering


def test_a_server_that_never_takes_the_next_id_fails_clearly() -> None:
    store = MemoryStore()
    patient(store)

    class Stuck(NoPhotos):
        async def push(self, mutations: Any, /) -> JSON:
            return {"last_mutation_id": 0, "results": []}

        async def pull(self, cursor: int, limit: int, /) -> JSON:
            raise AssertionError("no pull after a failed push")

    store.next_id = 5
    patient(store, "Cy", str(uuid.uuid4()))
    result = run(SyncEngine(store, Stuck()).sync())
    assert result.status is SyncStatus.FAILED and "expecting mutation 1" in str(result.error)
    assert store.pending_count() == 2


def test_a_cursor_going_back_is_refused() -> None:
    server, store = FakeServer(), MemoryStore()
    patient(store)
    engine = engine_for(server, store)
    assert sync(engine).ok
    original = server.pull
    server.pull = lambda d, c, n: {**original(d, c, n), "cursor": c - 1}  # type: ignore
    result = sync(engine)
    assert result.status is SyncStatus.FAILED and "cursor went from 1 to 0" in str(result.error)
    assert store.meta["cursor"] == 1


def _scenario(store: MemoryStore) -> None:
    patient(store)
    for i in range(4):
        store.put("task", {"patient_id": PATIENT, "title": f"T{i}"})
    store.put("patient", {"phone": "555"}, PATIENT)


REQUESTS = [(path, n) for path in ("/push", "/pull") for n in range(3)]


@pytest.mark.parametrize("kind", ["before", "after", "500"])
@pytest.mark.parametrize("path,skip", REQUESTS)
def test_a_sync_cut_at_any_request_resumes_without_loss_or_repeats(
    kind: str, path: str, skip: int
) -> None:
    server, store = FakeServer(), MemoryStore()
    _scenario(store)
    original = server.__call__
    seen = Counter[str]()

    def cut(request: httpx.Request) -> httpx.Response:
        seen[request.url.path[-5:]] += 1
        if seen[request.url.path[-5:]] == skip + 1 and request.url.path.endswith(path):
            server.faults.append((path, kind))
        return original(request)

    engine = engine_for(server, store, attempts=1, push_batch=2, pull_limit=2)
    engine.transport._http._transport = httpx.MockTransport(cut)  # type: ignore[attr-defined]
    first = sync(engine)
    for _ in range(3):
        if first.ok and store.pending_count() == 0:
            break
        first = sync(engine)
    assert sync(engine).ok and store.pending_count() == 0
    assert server.applied == Counter({("dev1", i): 1 for i in range(1, 7)})
    assert on_server(server) == visible(store)


@pytest.mark.parametrize("method", ["acknowledge", "apply_pull"])
@pytest.mark.parametrize("calls_before", [0, 1, 2])
def test_a_crash_between_store_writes_resumes(method: str, calls_before: int) -> None:
    server, store = FakeServer(), MemoryStore()
    _scenario(store)
    store.crash_on[method] = calls_before
    engine = engine_for(server, store, push_batch=2, pull_limit=2)
    with pytest.raises(Crash):
        sync(engine)
    assert not engine.running
    assert sync(engine).ok and store.pending_count() == 0
    assert server.applied == Counter({("dev1", i): 1 for i in range(1, 7)})
    assert on_server(server) == visible(store)


def test_page_writes_can_run_off_the_event_loop() -> None:
    server, store = FakeServer(), MemoryStore()
    patient(store)
    threads: list[int] = []
    original = store.apply_pull

    def apply(*args: Any) -> None:
        threads.append(threading.get_ident())
        original(*args)

    store.apply_pull = apply  # type: ignore[method-assign]
    result = sync(engine_for(server, store, offload=asyncio.to_thread))
    assert result.ok and threads and threading.get_ident() not in threads
