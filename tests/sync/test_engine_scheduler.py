"""SyncScheduler: debounced saves, connectivity, the timer and requests, on a fake clock."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Coroutine
from typing import Any

from sync.engine import SyncResult, SyncStatus
from sync.errors import SyncInProgress
from sync.scheduler import SyncScheduler


def run(coro: Coroutine[Any, Any, Any]) -> Any:
    return asyncio.run(coro)


class Harness:
    """A fake clock, a scripted sync and a scripted health check."""

    def __init__(self, **kwargs: Any) -> None:
        self.now = 0.0
        self.calls: list[float] = []
        self.health_checks: list[float] = []
        self.healthy = True
        self.statuses: list[SyncStatus | type[Exception]] = []
        self.retry_after: float | None = None
        self.results: list[SyncResult] = []
        kwargs.setdefault("debounce", 3.0)
        kwargs.setdefault("max_wait", 10.0)
        kwargs.setdefault("interval", 300.0)
        self.scheduler = SyncScheduler(
            self.sync,
            self.health,
            clock=lambda: self.now,
            on_result=self.results.append,
            **kwargs,
        )

    async def sync(self) -> SyncResult:
        self.calls.append(self.now)
        status = self.statuses.pop(0) if self.statuses else SyncStatus.OK
        if isinstance(status, type):
            raise status("busy")
        return SyncResult(status=status, retry_after=self.retry_after)

    async def health(self) -> bool:
        self.health_checks.append(self.now)
        return self.healthy

    def at(self, t: float) -> SyncResult | None:
        self.now = t
        return run(self.scheduler.run_due())  # type: ignore[no-any-return]


def test_saves_are_debounced() -> None:
    h = Harness()
    for t in (0.0, 1.0, 2.0):
        h.now = t
        h.scheduler.notify_saved()
    assert h.scheduler.next_due() == 5.0
    assert h.at(4.9) is None and h.calls == []
    assert h.at(5.0) is not None and h.calls == [5.0]
    assert h.scheduler.next_due() is None  # no timer until start()


def test_constant_saving_still_syncs_within_max_wait() -> None:
    h = Harness()
    for t in range(0, 12):
        h.now = float(t)
        h.scheduler.notify_saved()
        h.at(float(t))
    assert h.calls == [10.0]


def test_a_save_during_a_sync_asks_for_another() -> None:
    h = Harness()
    h.scheduler.notify_saved()

    async def sync_with_a_save() -> SyncResult:
        h.scheduler.notify_saved()  # the user saved while the sync ran
        return SyncResult()

    h.scheduler._sync = sync_with_a_save
    assert h.at(3.0) is not None
    assert h.scheduler.next_due() == 6.0


def test_connectivity_back_is_confirmed_by_healthz() -> None:
    h = Harness()
    h.healthy = False
    h.scheduler.notify_online()
    assert h.at(1.0) is None and h.health_checks == [1.0] and h.calls == []
    assert h.scheduler.offline
    h.healthy = True
    h.scheduler.notify_online()
    assert h.at(2.0) is not None and h.calls == [2.0] and not h.scheduler.offline


def test_offline_saves_wait_for_connectivity_or_the_timer() -> None:
    h = Harness()
    h.statuses = [SyncStatus.OFFLINE]
    h.scheduler.request_sync()
    assert h.at(0.0) is not None and h.scheduler.offline
    h.scheduler.notify_saved()
    assert h.scheduler.next_due() == 5.0  # saves alone do not retry offline; the backoff does
    h.scheduler.notify_online()
    assert h.at(4.0) is not None and h.calls == [0.0, 4.0]


def test_retry_after_is_respected() -> None:
    h = Harness()
    h.statuses, h.retry_after = [SyncStatus.OFFLINE], 60.0
    h.scheduler.request_sync()
    h.at(0.0)
    h.retry_after = None
    h.scheduler.notify_online()
    assert h.scheduler.next_due() == 60.0
    assert h.at(30.0) is None
    assert h.at(60.0) is not None


def test_sign_in_required_pauses_until_asked() -> None:
    h = Harness()
    h.statuses = [SyncStatus.SIGN_IN_REQUIRED]
    h.scheduler.notify_saved()
    h.at(3.0)
    assert h.scheduler.paused is SyncStatus.SIGN_IN_REQUIRED
    h.scheduler.notify_saved()
    h.scheduler.notify_online()
    assert h.scheduler.next_due() is None
    h.scheduler.request_sync()  # signed in again
    assert h.at(20.0) is not None and h.scheduler.paused is None


def test_a_sync_already_running_elsewhere_is_tried_again() -> None:
    h = Harness()
    h.statuses = [SyncInProgress]
    h.scheduler.request_sync()
    assert h.at(0.0) is None
    assert h.scheduler.next_due() == 3.0
    assert h.at(3.0) is not None and len(h.calls) == 2


def test_the_loop_syncs_on_start_then_every_interval_and_stops() -> None:
    async def scenario() -> list[float]:
        h = Harness(interval=300.0)
        done = asyncio.Event()

        async def fake_sleep(seconds: float) -> None:
            await asyncio.sleep(0)
            h.now += seconds

        h.scheduler._sleep = fake_sleep

        def on_result(result: SyncResult) -> None:
            h.results.append(result)
            if len(h.results) >= 3:
                done.set()

        h.scheduler._on_result = on_result
        h.scheduler.start()
        await asyncio.wait_for(done.wait(), 5)
        await h.scheduler.stop()
        return h.calls

    assert run(scenario())[:3] == [0.0, 300.0, 600.0]


def test_notify_from_another_thread_wakes_the_loop() -> None:
    async def scenario() -> list[float]:
        h = Harness(interval=10_000.0, debounce=0.0)
        synced = asyncio.Event()
        h.scheduler._on_result = lambda r: synced.set()
        h.scheduler.start()
        await asyncio.wait_for(synced.wait(), 5)  # the sync on start
        synced.clear()
        h.now = 50.0
        thread = threading.Thread(target=h.scheduler.notify_saved)
        thread.start()
        thread.join()
        await asyncio.wait_for(synced.wait(), 5)
        await h.scheduler.stop()
        return h.calls

    assert run(scenario()) == [0.0, 50.0]


def test_an_unexpected_error_does_not_stop_the_loop() -> None:
    async def scenario() -> list[float]:
        h = Harness(interval=100.0)
        h.statuses = [RuntimeError, SyncStatus.OK]
        synced = asyncio.Event()

        async def fake_sleep(seconds: float) -> None:
            await asyncio.sleep(0)
            h.now += seconds

        h.scheduler._sleep = fake_sleep
        h.scheduler._on_result = lambda result: synced.set()
        h.scheduler.start()
        await asyncio.wait_for(synced.wait(), 5)
        await h.scheduler.stop()
        return h.calls

    assert run(scenario()) == [0.0, 100.0]
