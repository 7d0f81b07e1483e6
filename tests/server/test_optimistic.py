"""Pushes merged before the rev lock (PostgreSQL, ``server.optimistic``) lose nothing.

Each test makes pushes read a record before another push changes it: on PostgreSQL a
*gate* holds the rev lock until every push has done its reading and merging and waits
for the lock, then lets them go one after another. Each must find what moved, merge
again and end as if they had run one at a time. On SQLite (one writer at a time from
BEGIN) the same pushes simply run in turn: the outcome must be the same.
"""

from __future__ import annotations

import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import psycopg
import pytest
from sqlalchemy import func, select

from server import audit, db, records
from server.db import Database
from server.records import Stored
from server.service import Service
from sync import hlc, schema
from tests.conftest import TEST_AUDIT_KEY
from tests.server.conftest import PASSWORD, FakeClock


class Phone:
    """An enrolled device calling the service directly, with its own mutation ids."""

    def __init__(self, service: Service, username: str) -> None:
        enrolled = service.enrol(username, PASSWORD, "phone", "127.0.0.1")
        self.service = service
        self.id: str = enrolled["device_id"]
        self.token: str = enrolled["token"]
        self.next_id = 1

    def stamp(self, ms: float) -> str:
        """An HLC of this device at ``ms`` milliseconds since the epoch."""
        return f"{int(ms):0{hlc.MS_DIGITS}d}-00000-{self.id}"

    def upsert(
        self,
        record_id: str,
        fields: dict[str, Any],
        base_rev: int | None,
        stamp: str,
        type_name: str = "site",
    ) -> dict[str, Any]:
        mutation = {
            "id": self.next_id,
            "record_id": record_id,
            "type": type_name,
            "op": "upsert",
            "fields": fields,
            "clock": dict.fromkeys(fields, stamp),
            "base_rev": base_rev,
        }
        self.next_id += 1
        return mutation

    def push(self, *mutations: dict[str, Any]) -> dict[str, Any]:
        return self.service.push(self.token, {"mutations": list(mutations)})


def _stored(database: Database, record_id: str) -> Stored:
    with database.read() as conn:
        found = records.load(conn, record_id)
    assert found is not None
    return found


def _counter(database: Database) -> int:
    with database.read() as conn:
        return records.high_water(conn)


def _lock_waiters(url: str) -> int:
    with psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://")) as conn:
        row = conn.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND wait_event_type = 'Lock'"
        ).fetchone()
    return int(row[0]) if row else 0


def _until(condition: Callable[[], bool], what: str) -> None:
    deadline = time.monotonic() + 30
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.005)


def _race(
    service: Service, record_id: str, base_rev: int | None, edits: list[tuple[Any, Any, float]]
) -> list[dict[str, Any]]:
    """Each ``(phone, fields, ms)`` upserting ``record_id`` as read at ``base_rev``,
    pushed in that order while the rev lock is held (``Gate``); each push's one result."""
    gate = Gate(service)
    with gate.held():
        for n, (phone, fields, ms) in enumerate(edits):
            mutation = phone.upsert(record_id, fields, base_rev, phone.stamp(ms))
            gate.start(str(n), lambda phone=phone, mutation=mutation: phone.push(mutation))
    return [gate.answers[str(n)]["results"][0] for n in range(len(edits))]


class Gate:
    """Hold the rev lock while pushes start, and let them go once they all wait for it
    (PostgreSQL); on SQLite start them one after another.

    On PostgreSQL the first push to write waits for the lock itself; the others wait for
    its group to end (``optimistic.Writer``), and are then written as the next group.
    """

    def __init__(self, service: Service) -> None:
        self.service = service
        self.database = service.database
        self.threads: list[threading.Thread] = []
        self.answers: dict[str, Any] = {}

    def start(self, name: str, push: Callable[[], dict[str, Any]]) -> None:
        """Start a push in a thread; on PostgreSQL return once it has merged and waits,
        so that pushes are written in the order started."""

        def run() -> None:
            try:
                self.answers[name] = push()
            except BaseException as exc:  # noqa: BLE001 - reported by the test
                self.answers[name] = exc

        thread = threading.Thread(target=run, daemon=True)
        self.threads.append(thread)
        thread.start()
        if self.service.pushes is None:
            thread.join(30)  # SQLite: one writer at a time, nothing can go stale
            return
        writer, started = self.service.pushes, len(self.threads)

        def waiting() -> bool:
            locked = _lock_waiters(self.database.url)
            return locked >= 1 and locked + writer.waiting >= started

        _until(waiting, f"{started} pushes waiting")

    @contextmanager
    def held(self) -> Iterator[None]:
        """The rev lock, held (PostgreSQL) until the block ends; then every push ends."""
        if self.database.is_sqlite:
            yield
        else:
            with self.database.write() as conn:
                records.Revs(conn)
                yield
        for thread in self.threads:
            thread.join(60)
        for name, answer in self.answers.items():
            if isinstance(answer, BaseException):
                raise AssertionError(f"push {name} failed") from answer


@pytest.fixture
def service(database: Database, org: Any, settings: Any, clock: FakeClock) -> Service:
    return Service(settings, database, clock)


@pytest.fixture
def site(service: Service, clock: FakeClock) -> tuple[str, int]:
    """A site record both phones have pulled: its id and rev."""
    creator = Phone(service, "sue")
    record_id = str(uuid.uuid4())
    mutation = creator.upsert(
        record_id,
        {"name": "Shelter", "kind": "community_org"},
        None,
        creator.stamp(clock() * 1000 - 60_000),
    )
    result = creator.push(mutation)["results"][0]
    assert result["status"] == "applied"
    return record_id, result["rev"]


def test_edits_of_different_fields_read_before_either_wrote_are_both_kept(
    database, service, clock, site
):
    record_id, rev = site
    alice, amy = Phone(service, "alice"), Phone(service, "amy")
    now = clock() * 1000
    first, second = _race(
        service,
        record_id,
        rev,
        [(alice, {"address": "1 Main St"}, now), (amy, {"phone": "555-0100"}, now)],
    )
    assert first["status"] == second["status"] == "applied"
    assert first["conflicts"] == second["conflicts"] == []
    stored = _stored(database, record_id)
    assert stored.fields == {
        "name": "Shelter",
        "kind": "community_org",
        "address": "1 Main St",
        "phone": "555-0100",
    }
    # Revs: new, distinct, in the order the pushes committed, the counter at the last.
    assert rev < first["rev"] < second["rev"] == stored.rev == _counter(database)
    assert stored.field_revs["address"] == first["rev"]
    assert stored.field_revs["phone"] == second["rev"]
    assert stored.field_revs["name"] == rev


@pytest.mark.parametrize("newer", ["first", "second"])
def test_edits_of_one_field_read_before_either_wrote_keep_the_loser(
    database, service, clock, site, newer
):
    record_id, rev = site
    alice, amy = Phone(service, "alice"), Phone(service, "amy")
    now = clock() * 1000
    # alice's push queues first: the second to commit (amy) had the older stamp or not.
    alice_ms, amy_ms = (now, now - 1000) if newer == "first" else (now - 1000, now)
    first, second = _race(
        service,
        record_id,
        rev,
        [(alice, {"address": "1 Main St"}, alice_ms), (amy, {"address": "2 Side Rd"}, amy_ms)],
    )
    # A losing value changes nothing: the record keeps the first push's rev.
    assert rev < first["rev"] <= second["rev"]
    assert (first["rev"] < second["rev"]) == (newer == "second")
    winner, loser = ("1 Main St", "2 Side Rd") if newer == "first" else ("2 Side Rd", "1 Main St")
    # The first merge saw no change since the base; the second saw the first's edit.
    assert first["status"] == "applied" and first["conflicts"] == []
    assert second["status"] == "merged"
    assert [(c["value"], c["lost_value"]) for c in second["conflicts"]] == [(winner, loser)]
    stored = _stored(database, record_id)
    assert stored.fields["address"] == winner
    assert stored.rev == second["rev"] == _counter(database)
    with database.read() as conn:
        kept = conn.execute(
            select(db.conflicts.c.winner_value, db.conflicts.c.loser_value, db.conflicts.c.rev)
        ).all()
    assert [tuple(row) for row in kept] == [(f'"{winner}"', f'"{loser}"', second["rev"])]


def test_a_retry_racing_its_original_is_applied_once(database, service, clock, site):
    record_id, rev = site
    alice = Phone(service, "alice")
    mutations = [
        alice.upsert(record_id, {"address": "1 Main St"}, rev, alice.stamp(clock() * 1000)),
        alice.upsert(str(uuid.uuid4()), {"name": "Clinic"}, None, alice.stamp(clock() * 1000)),
    ]
    gate = Gate(service)
    with gate.held():
        gate.start("original", lambda: alice.push(*mutations))
        gate.start("retry", lambda: alice.push(*mutations))
    original, retry = gate.answers["original"], gate.answers["retry"]
    assert original == retry  # the retry answers as the original did
    assert original["last_mutation_id"] == 2
    assert [r["status"] for r in original["results"]] == ["applied", "applied"]
    assert _counter(database) == rev + 2  # two revs handed out, not four
    with database.read() as conn:
        results = conn.execute(select(func.count()).select_from(db.push_results)).scalar()
    assert results == 2  # the site's creator's push and the original's


def test_a_retry_racing_its_original_is_answered_the_same_when_nothing_changed(
    database, service, clock, site
):
    """A rejected mutation changes no record: only the device's last mutation id tells
    that the original got in first."""
    record_id, rev = site
    alice = Phone(service, "alice")
    wrong_type = alice.upsert(
        record_id, {"name": "Shelter"}, rev, alice.stamp(clock() * 1000), "resource"
    )
    gate = Gate(service)
    with gate.held():
        gate.start("original", lambda: alice.push(wrong_type))
        gate.start("retry", lambda: alice.push(wrong_type))
    original, retry = gate.answers["original"], gate.answers["retry"]
    assert original == retry
    assert original["last_mutation_id"] == 1
    assert original["results"][0]["status"] == "rejected"
    assert _stored(database, record_id).rev == rev == _counter(database)


def test_a_record_created_meanwhile_is_merged_into_not_inserted_again(database, service, clock):
    alice, amy = Phone(service, "alice"), Phone(service, "amy")
    record_id = str(uuid.uuid4())  # both phones create it (an id both were given)
    now = clock() * 1000
    first, second = _race(
        service,
        record_id,
        None,
        [
            (alice, {"name": "Clinic", "phone": "555-0100"}, now),
            (amy, {"name": "Clinic", "address": "3 Elm"}, now - 1),
        ],
    )
    assert first["status"] == second["status"] == "applied"
    assert first["rev"] < second["rev"]
    stored = _stored(database, record_id)
    assert stored.fields == {"name": "Clinic", "phone": "555-0100", "address": "3 Elm"}
    assert stored.clock["name"] == alice.stamp(now)  # the newer of two equal values


def test_many_concurrent_edits_of_one_record_lose_nothing(database, service, clock, site):
    """Phones edit their own field of one record over and over, each from the rev it last
    saw (stale as soon as another phone pushes): every last value stays, revs are unique
    and a pull running meanwhile sees the record's revs in order."""
    record_id, rev = site
    fields = {"alice": "address", "amy": "phone", "sue": "kind"}
    phones = {name: Phone(service, name) for name in fields}
    kinds = list(schema.SITE_KINDS)
    errors: list[BaseException] = []
    revs: list[int] = []

    def edit(name: str) -> None:
        phone, seen = phones[name], rev
        try:
            for round_ in range(6):
                value = kinds[round_ % len(kinds)] if name == "sue" else f"{name} {round_}"
                ms = clock() * 1000 - 30_000 + round_ * 1000
                body = phone.push(
                    phone.upsert(record_id, {fields[name]: value}, seen, phone.stamp(ms))
                )
                result = body["results"][0]
                assert result["status"] == "applied", result
                seen = result["rev"]
                revs.append(seen)
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    reader = Phone(service, "multi")
    pulled: list[int] = []
    done = threading.Event()

    def pull() -> None:
        cursor = rev
        try:
            while True:
                finished = done.is_set()
                page = service.pull(reader.token, cursor, 100)
                pulled.extend(r["rev"] for r in page["records"] if r["id"] == record_id)
                cursor = page["cursor"]
                if finished and not page["more"]:
                    return
        except BaseException as exc:  # noqa: BLE001 - reported by the test
            errors.append(exc)

    puller = threading.Thread(target=pull)
    pushers = [threading.Thread(target=edit, args=(name,)) for name in fields]
    puller.start()
    for thread in pushers:
        thread.start()
    for thread in pushers:
        thread.join(60)
    done.set()
    puller.join(60)
    assert not errors, errors
    assert len(revs) == len(set(revs)) == 18
    stored = _stored(database, record_id)
    assert stored.rev == max(revs) == _counter(database) == pulled[-1]
    assert pulled == sorted(set(pulled))
    assert stored.fields == {
        "name": "Shelter",
        "address": "alice 5",
        "phone": "amy 5",
        "kind": kinds[5 % len(kinds)],
    }
    with database.read() as conn:  # one audit row a push, chained in commit order
        verdict = audit.verify(conn, TEST_AUDIT_KEY)
        pushes = [row for row in audit.rows(conn) if row["action"] == "sync.push"]
    assert verdict.ok, verdict.reason
    assert len(pushes) == 1 + 18


def test_pushes_that_wait_together_are_written_together(database, service, clock, site):
    """Behind a push that waits for the lock, six more merge and wait: they are written as
    one group. amy's and sue's read the site before bob's edit of it, written first in the
    group, so theirs are merged again after it; the retries of bob's and of multi's in the
    same group are answered as the originals were."""
    record_id, rev = site
    blocker, bob, amy, sue = (Phone(service, n) for n in ("alice", "bob", "amy", "sue"))
    multi = Phone(service, "multi")
    now = clock() * 1000
    bobs = bob.upsert(record_id, {"address": "1 Main St"}, rev, bob.stamp(now))
    # Rejected, so it writes no record: only its device's row tells the retry it is one.
    wrong = multi.upsert(record_id, {"name": "Shelter"}, rev, multi.stamp(now), "resource")
    gate = Gate(service)
    with gate.held():
        gate.start(
            "blocker",
            lambda: blocker.push(
                blocker.upsert(str(uuid.uuid4()), {"name": "Clinic"}, None, blocker.stamp(now))
            ),
        )
        gate.start("multi", lambda: multi.push(wrong))
        gate.start("multi again", lambda: multi.push(wrong))
        gate.start("bob", lambda: bob.push(bobs))
        gate.start("bob again", lambda: bob.push(bobs))
        gate.start(
            "amy",
            lambda: amy.push(amy.upsert(record_id, {"phone": "555-0100"}, rev, amy.stamp(now))),
        )
        gate.start(
            "sue",
            lambda: sue.push(
                sue.upsert(record_id, {"address": "2 Side Rd"}, rev, sue.stamp(now - 1000))
            ),
        )
    first = gate.answers["blocker"]["results"][0]
    bob_result, amy_result, sue_result = (
        gate.answers[n]["results"][0] for n in ("bob", "amy", "sue")
    )
    assert gate.answers["bob again"] == gate.answers["bob"]
    assert gate.answers["multi again"] == gate.answers["multi"]
    assert gate.answers["multi"]["results"][0]["status"] == "rejected"
    assert first["status"] == bob_result["status"] == amy_result["status"] == "applied"
    # sue's older address lost to bob's newer one, which she had not seen: a conflict.
    assert sue_result["status"] == "merged"
    assert [(c["value"], c["lost_value"]) for c in sue_result["conflicts"]] == [
        ("1 Main St", "2 Side Rd")
    ]
    assert rev < first["rev"] < bob_result["rev"] < amy_result["rev"]
    # A losing value changes nothing (amy's and sue's are merged again in either order).
    assert sue_result["rev"] in (bob_result["rev"], amy_result["rev"])
    stored = _stored(database, record_id)
    assert stored.fields == {
        "name": "Shelter",
        "kind": "community_org",
        "address": "1 Main St",
        "phone": "555-0100",
    }
    assert stored.rev == amy_result["rev"] == _counter(database)
    with database.read() as conn:
        assert audit.verify(conn, TEST_AUDIT_KEY).ok
        pushes = [row for row in audit.rows(conn) if row["action"] == "sync.push"]
    assert len(pushes) == 1 + 5  # the site's, then one a push written (not the retries')


def test_independent_pushes_of_one_group_get_consecutive_revs(database, service, clock):
    phones = [Phone(service, n) for n in ("alice", "bob", "amy", "sue")]
    now = clock() * 1000
    gate = Gate(service)
    created: dict[str, list[str]] = {}
    with gate.held():
        for phone in phones:
            ids = created[phone.id] = [str(uuid.uuid4()) for _ in range(3)]
            mutations = [
                phone.upsert(record_id, {"name": f"Site {i}"}, None, phone.stamp(now))
                for i, record_id in enumerate(ids)
            ]
            gate.start(phone.id, lambda ms=mutations, p=phone: p.push(*ms))
    revs = [[r["rev"] for r in gate.answers[phone.id]["results"]] for phone in phones]
    assert revs == [[1, 2, 3], [4, 5, 6], [7, 8, 9], [10, 11, 12]]  # in the order started
    assert _counter(database) == 12
    for phone, phone_revs in zip(phones, revs, strict=True):
        assert [_stored(database, i).rev for i in created[phone.id]] == phone_revs
    reader = Phone(service, "multi")
    page = service.pull(reader.token, 0, 100)
    assert [r["rev"] for r in page["records"]] == list(range(1, 13))
