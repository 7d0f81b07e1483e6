"""Push on PostgreSQL: merge before the rev lock; hold it only to stamp revs and write.

The rev lock (``server.records``) makes writers run one after another so that revs
commit in order; whatever a push does while holding it, every other push waits for.
Taken first thing (as on SQLite, whose writers run one at a time from BEGIN anyway), it
covered some ten round trips and the whole merge. Here a push reads and merges first,
taking no lock at all (``merge``), and the pushes merged in this process are written by
``Writer``, a group at a time, holding the lock for two round trips a group:

1. Before the lock, in two statements outside any transaction (``Database.lookup``):
   the caller, its teams and the device's last mutation id (from the token's row); the
   records the batch names. Then the merge (``push.Batch`` with ``early``), stamped with
   provisional revs above any real one (``PROVISIONAL``).
2. One round trip (``Pipeline``): lock the rev counter; lock each device's row and read
   its last mutation id; read the rev of every record the merges read or found missing,
   and the teams of the group's users; lock the audit head. The statements run in that
   order and each one sees what committed before it began, so the reads see every
   writer that held the lock before (a membership changes under that lock too:
   ``server.accounts``).
3. A push whose reads still hold gets real revs for its provisional ones, the next
   after the counter (or the group's previous push), in the same order: the outcome it
   would have had under the lock. Its reads hold when no record it read moved, appeared
   or is written by an earlier push of the group; its device's last mutation id is
   unchanged and no earlier push of the group is its device's (a retry racing the
   original); its user's teams are unchanged (scope was checked against them); and
   every ``base_rev`` is below its first rev. Any other push is merged
   again under the lock once the group is written, as on SQLite (``server.push.push``):
   no concurrent edit is ever lost, no mutation applied twice.
4. One round trip: every write of the group, one audit row per push (in rev order), and
   the commit. A push is answered only once that commit is done, and the lock is
   released by it: revs commit in order, with the same durability as one at a time.
   The next group gathers and sends its step 2 meanwhile: the database holds it until
   this commit, and it goes on with no round trip lost.

Besides records, a merge reads the ids of the caller's devices (``auth.device_ids_of``),
which only grow and which a mutation can only name once enrolled; a merge that must know
who may refer to an attachment, or which records a deleted patient has, stops
(``push.NeedsLock``) and runs under the lock (``Writer.under_lock``). Nothing is locked
before the rev counter; then device rows (by id) and the audit head, the order
``server.push.push`` takes them in.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, replace
from typing import Any

from sqlalchemy import Connection

from server import audit, auth, db, records, replay
from server.db import Database
from server.push import Batch, NeedsLock, Outcome, Prepared, queue_conflicts
from server.push import push as push_under_lock
from server.scope import Caller
from server.statement import Pipeline
from sync import protocol

PROVISIONAL = protocol.MAX_COUNTER  # above every base_rev a device may send


class _Provisional:
    """Revs for a merge before the lock: increasing, above every real one."""

    def __init__(self) -> None:
        self.last = PROVISIONAL

    def next(self) -> int:
        self.last += 1
        return self.last


@dataclass(eq=False)
class Merged:
    """A push read and merged before the lock (``merge``), to be written by ``Writer``."""

    caller: Caller  # authenticated with touch=False: the writer records the use
    batch: list[Prepared]
    now: float
    state: Batch
    outcome: Outcome
    revs: _Provisional
    rows: records.Writes
    # Set by the group that took it: the answer, or again (to merge under the lock), or
    # the error that ended the group; then done.
    taken: bool = False
    answer: dict[str, Any] | None = None
    again: bool = False
    error: BaseException | None = None
    done: threading.Event = field(default_factory=threading.Event)


def merge(conn: Connection, caller: Caller, batch: list[Prepared], now: float) -> Merged | None:
    """Read and merge a prepared push, taking no lock (a read transaction will do); None
    when it must be merged under the lock (``Writer.under_lock``)."""
    revs = _Provisional()
    state = Batch(conn, caller, revs, now, early=True)
    try:
        outcome = state.run(batch, caller.last_mutation_id)
    except NeedsLock:
        return None
    rows = records.Writes(
        list(state.new.values()), list(state.changed.values()), author=caller.user_id, now=now
    )
    return Merged(caller, batch, now, state, outcome, revs, rows)


class Writer:
    """Writes the pushes merged in this process: those waiting when a group starts are
    written together, under one rev lock and one commit.

    A group takes its turn (``_turn``) only to gather its pushes and take the rev lock;
    it writes and commits after passing the turn on, so the next group gathers the
    pushes that came meanwhile and has its lock statement queued at the database as the
    lock is released: the database, not this process, then holds it back, and it goes on
    without waiting for a round trip.
    """

    def __init__(self, database: Database) -> None:
        self.database = database
        self._waiting: list[Merged] = []
        self._guard = threading.Lock()  # over _waiting and Merged.taken
        self._turn = threading.Lock()  # one group gathers and locks at a time

    @property
    def waiting(self) -> int:
        """How many merged pushes wait for a group (for tests)."""
        with self._guard:
            return len(self._waiting)

    def write(self, merged: Merged) -> dict[str, Any]:
        """Write a merged push and commit it; returns the response body."""
        if not merged.outcome.fresh:
            # Only replays (or a gap): nothing to write and no lock to take, as a device's
            # last mutation id only grows.
            if auth.needs_touch(merged.caller, merged.now):
                with self.database.write() as conn:
                    auth.record_use(conn, merged.caller, merged.now)
            return merged.outcome.body()
        with self._guard:
            self._waiting.append(merged)
        # Every waiting push's thread comes here, so one of them writes each push.
        self._turn.acquire()
        with self._guard:
            group = [] if merged.taken else self._waiting
            if group:
                self._waiting = []
            for one in group:
                one.taken = True
        if group:
            self._write(group)  # passes the turn on once it holds the rev lock
        else:
            self._turn.release()  # an earlier group took it
        merged.done.wait()
        if merged.error is not None:
            raise merged.error
        if merged.again:
            return self.under_lock(merged.caller, merged.batch, merged.now)
        assert merged.answer is not None
        return merged.answer

    def _write(self, group: list[Merged]) -> None:
        """Take the rev lock, release ``_turn``, write and commit; settle every push."""
        released = False
        try:
            with self.database.write() as conn:
                locked = _lock_group(conn, group)
                self._turn.release()
                released = True
                _write_group(conn, group, locked)
        except BaseException as exc:
            for one in group:
                if one.answer is None and not one.again:
                    one.error = exc
        finally:
            if not released:
                self._turn.release()
            for one in group:
                one.done.set()

    def under_lock(self, caller: Caller, batch: list[Prepared], now: float) -> dict[str, Any]:
        """Apply a push as SQLite does: everything read and merged under the rev lock,
        the caller's teams included (they change under that lock: ``server.accounts``)."""
        with self.database.write() as conn:
            revs = records.Revs(conn)
            caller = replace(caller, team_ids=auth.team_ids_of(conn, caller.user_id))
            if auth.needs_touch(caller, now):  # after the rev lock, as in a group
                auth.record_use(conn, caller, now)
            return push_under_lock(conn, revs, caller, batch, now)


@dataclass
class _Locked:
    """What a group read under the rev lock: the counter, each device's last mutation id,
    the revs of the records its pushes read, its users' teams and the audit head."""

    counter: int
    last_ids: dict[str, int]
    stored: dict[str, int]
    teams: dict[str, tuple[str, ...]]
    head: Any


def _lock_group(conn: Connection, group: list[Merged]) -> _Locked:
    """One round trip: lock the rev counter, the devices' rows and the audit head, and
    read what the re-check needs."""
    locking = Pipeline(conn)
    counter = locking.add(records.LOCK)
    device_ids = sorted({m.caller.device_id for m in group})
    devices_at = locking.add(replay.LOCK_LAST_IDS, {"device_ids": db.dumps(device_ids)})
    read = sorted({record_id for m in group for record_id in m.state.seen})
    revs_at = records.queue_revs_of(locking, read)
    users = sorted({m.caller.user_id for m in group})
    teams_at = locking.add(auth.TEAMS_OF_USERS, {"user_ids": db.dumps(users)})
    head_at = locking.add(audit.LOCK_HEAD)
    answer = locking.run()
    teams: dict[str, tuple[str, ...]] = dict.fromkeys(users, ())
    for user_id, team_id in answer[teams_at]:
        teams[user_id] += (team_id,)
    return _Locked(
        counter=int(answer[counter][0][0]),
        last_ids={device_id: int(last) for device_id, last in answer[devices_at]},
        stored={record_id: int(rev) for record_id, rev in answer[revs_at]},
        teams=teams,
        head=answer[head_at][0],
    )


def _write_group(conn: Connection, group: list[Merged], locked: _Locked) -> None:
    """Re-check, stamp and write the pushes of a group that still hold, and commit; mark
    the others to be merged again."""
    first = start = locked.counter
    stored, last_ids = locked.stored, dict(locked.last_ids)
    written: set[str] = set()
    taken: list[Merged] = []
    for m in group:
        holds = (
            last_ids.get(m.caller.device_id) == m.caller.last_mutation_id
            and locked.teams[m.caller.user_id] == m.caller.team_ids
            and all(stored.get(record_id) == rev for record_id, rev in m.state.seen.items())
            and not written.intersection(m.state.seen)
            and max(_base_revs(m.batch), default=0) <= start
        )
        if not holds:
            m.again = True
            continue
        _make_real(m, start - PROVISIONAL)
        start += m.revs.last - PROVISIONAL
        written |= m.rows.ids()
        last_ids.pop(m.caller.device_id)  # its row changes: no later push of it holds
        taken.append(m)
    writes = Pipeline(conn)
    records.queue_writes(writes, [m.rows for m in taken])
    for m in taken:
        records.queue_attachment_refs(writes, m.state.refs)
        queue_conflicts(writes, m.state.conflicts)
    if start != first:
        writes.add(records.SET, {"last": start})
    replay.queue_many(
        writes, [(m.caller.device_id, m.outcome.fresh, m.outcome.last) for m in taken]
    )
    for m in taken:
        if auth.needs_touch(m.caller, m.now):
            auth.queue_use(writes, m.caller, m.now)
    entries = [audit.Entry(m.now, m.caller.actor, "sync.push", m.outcome.touched) for m in taken]
    audit.queue_append(writes, conn, locked.head, entries)  # in rev order
    writes.run(commit=True)
    for m in taken:
        m.answer = m.outcome.body()


def _base_revs(batch: list[Prepared]) -> list[int]:
    return [p.mutation.base_rev or 0 for p in batch if p.mutation is not None]


def _make_real(m: Merged, shift: int) -> None:
    """Turn the provisional revs of a push's records, conflicts and results into real
    ones; every rev above PROVISIONAL is provisional, every other one was read."""

    def real(rev: int) -> int:
        return rev + shift if rev > PROVISIONAL else rev

    for rec in [*m.state.new.values(), *m.state.changed.values()]:
        rec.rev = real(rec.rev)
        rec.field_revs = {name: real(rev) for name, rev in rec.field_revs.items()}
    for conflict in m.state.conflicts:
        conflict["rev"] = real(conflict["rev"])
    for result in m.outcome.fresh:  # the same dicts as in m.outcome.results
        if result["rev"] is not None:
            result["rev"] = real(result["rev"])
