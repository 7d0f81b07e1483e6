"""SyncScheduler after the server could not be reached: a short backoff, and a sync at once
when connectivity comes back (fake clock and sleep, no real waiting)."""

from __future__ import annotations

import asyncio

from sync.engine import SyncStatus
from tests.sync.test_engine_scheduler import Harness, run


def _offline(h: Harness, t: float) -> None:
    """A sync at ``t`` finds the server unreachable."""
    h.statuses = [SyncStatus.OFFLINE]
    h.scheduler.request_sync()
    assert h.at(t) is not None and h.scheduler.offline


def test_an_unreachable_server_is_retried_after_5_10_20_s_capped_at_the_timer() -> None:
    h = Harness(interval=60.0)
    h.healthy = False
    _offline(h, 0.0)
    waits, t = [], 0.0
    for _ in range(6):
        due = h.scheduler.next_due()
        assert due is not None
        waits.append(due - t)
        assert h.at(due - 0.1) is None and len(h.health_checks) == len(waits) - 1
        t = due
        assert h.at(t) is None  # the check fails: still unreachable
    assert waits == [5.0, 10.0, 20.0, 40.0, 60.0, 60.0]
    assert h.calls == [0.0]  # only health checks while the server is away


def test_the_server_back_is_synced_at_the_next_retry_then_the_backoff_ends() -> None:
    h = Harness(interval=300.0)
    h.healthy = False
    _offline(h, 0.0)
    assert h.at(5.0) is None  # still away; next try at 15 s
    h.healthy = True
    assert h.scheduler.next_due() == 15.0
    assert h.at(15.0) is not None and h.calls == [0.0, 15.0]
    assert not h.scheduler.offline
    assert h.scheduler.next_due() is None  # back to normal: no retries (no timer started)


def test_saves_while_unreachable_do_not_hurry_the_retries() -> None:
    h = Harness()
    h.healthy = False
    _offline(h, 0.0)
    h.now = 1.0
    h.scheduler.notify_saved()
    assert h.scheduler.next_due() == 5.0


def test_connectivity_back_syncs_at_once_and_restarts_the_backoff() -> None:
    h = Harness(interval=300.0)
    h.healthy = False
    _offline(h, 0.0)
    for t in (5.0, 15.0, 35.0):
        assert h.at(t) is None
    assert h.scheduler.next_due() == 75.0
    h.now = 40.0
    h.scheduler.notify_online()
    assert h.scheduler.next_due() == 40.0  # at once, not at 75 s
    assert h.at(40.0) is None  # the network is back but not the server yet
    assert h.scheduler.next_due() == 45.0  # short retries again
    h.healthy = True
    assert h.at(45.0) is not None and h.calls == [0.0, 45.0]


def test_a_refused_sync_is_not_retried_fast() -> None:
    h = Harness()
    h.statuses = [SyncStatus.FAILED]
    h.scheduler.request_sync()
    h.at(0.0)
    assert h.scheduler.next_due() is None


def test_the_running_loop_retries_without_real_waiting() -> None:
    async def scenario() -> list[float]:
        h = Harness(interval=300.0)
        h.statuses = [SyncStatus.OFFLINE]
        h.healthy = False
        slept: list[float] = []
        synced = asyncio.Event()

        async def fake_sleep(seconds: float) -> None:
            await asyncio.sleep(0)
            slept.append(seconds)
            h.now += seconds
            if len(slept) == 3:
                h.healthy = True  # the server is back after the third wait

        h.scheduler._sleep = fake_sleep
        h.scheduler._on_result = lambda r: synced.set() if len(h.calls) == 2 else None
        h.scheduler.start()
        await asyncio.wait_for(synced.wait(), 5)
        await h.scheduler.stop()
        assert slept[:3] == [5.0, 10.0, 20.0]
        return h.calls

    assert run(scenario()) == [0.0, 35.0]
