"""The scheduler of the device's syncs: saves, connectivity, a timer and the user's requests.

When the server cannot be reached, saves stop triggering syncs (each would fail); instead
the server is tried again after a short backoff (5 s, 10 s, 20 s ... at most the timer's
interval), each try a cheap ``/healthz`` check before the sync, so work syncs soon after
the server comes back. A connectivity event tries at once and starts the backoff again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from typing import Any

from sync.engine import SyncResult, SyncStatus
from sync.errors import SyncInProgress

log = logging.getLogger(__name__)


class SyncScheduler:
    """Runs a sync on the app's triggers, one at a time: a save (debounced), connectivity
    back (confirmed by ``healthy()``), a timer while unlocked, and the user's request.

    Call ``start()`` on unlock and ``await stop()`` on lock; ``notify_*`` and
    ``request_sync()`` may be called from any thread. Clock and sleep are injectable.
    """

    def __init__(
        self,
        sync: Callable[[], Awaitable[SyncResult]],
        healthy: Callable[[], Awaitable[bool]],
        *,
        debounce: float = 3.0,
        max_wait: float = 30.0,
        interval: float = 300.0,
        retry: float = 5.0,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
        on_result: Callable[[SyncResult], None] | None = None,
    ) -> None:
        self._sync, self._healthy, self._on_result = sync, healthy, on_result
        self.debounce, self.max_wait, self.interval = debounce, max_wait, interval
        self.retry = retry  # the first wait after the server could not be reached
        self._failures = 0  # tries in a row that could not reach the server
        self._retry_due: float | None = None
        self._clock, self._sleep = clock, sleep
        self._first_save: float | None = None  # the oldest save not yet synced
        self._save_due: float | None = None
        self._manual = False
        self._check_online = False
        self._next_timer: float | None = None
        self._not_before = 0.0
        self.offline = False
        self.paused: SyncStatus | None = None  # sign-in or revocation stops automatic syncs
        self._task: asyncio.Task[None] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake = asyncio.Event()

    # -- triggers ---------------------------------------------------------------------

    def notify_saved(self) -> None:
        """A record was saved: sync after a quiet spell (at most ``max_wait`` later)."""
        now = self._clock()
        if self._first_save is None:
            self._first_save = now
        self._save_due = min(now + self.debounce, self._first_save + self.max_wait)
        self._poke()

    def notify_online(self) -> None:
        """Connectivity may be back: check ``/healthz``, then sync (and if the server is
        still away, retry from the shortest wait again)."""
        self._check_online = True
        self._failures = 0
        self._poke()

    def request_sync(self) -> None:
        """Sync now (the user asked, or signed in again after a pause)."""
        self._manual = True
        self._poke()

    def start(self) -> None:
        """Start the timer and the trigger loop (call from the event loop, on unlock)."""
        if self._task is None:
            self._loop = asyncio.get_running_loop()
            self._wake = asyncio.Event()
            self._next_timer = self._clock()  # sync once on unlock
            self._task = self._loop.create_task(self._run())

    async def stop(self) -> None:
        """Stop the loop (on lock); a sync cut short resumes safely next time."""
        task, self._task, self._next_timer = self._task, None, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task

    # -- the loop ---------------------------------------------------------------------

    def next_due(self) -> float | None:
        """When the next sync (or connectivity check) is due, or None."""
        if self._manual:
            return self._clock()
        if self.paused is not None:
            return None
        candidates = [self._next_timer, self._retry_due]
        if self._check_online:
            candidates.append(self._clock())
        if not self.offline:
            candidates.append(self._save_due)
        due = min((c for c in candidates if c is not None), default=None)
        return None if due is None else max(due, self._not_before)

    async def run_due(self) -> SyncResult | None:
        """Run what is due now, if anything; returns the sync's result."""
        due = self.next_due()
        now = self._clock()
        if due is None or due > now:
            return None
        manual, self._manual = self._manual, False
        check, self._check_online = self._check_online, False
        if self._next_timer is not None and self._next_timer <= now:
            self._next_timer = now + self.interval
        if self._retry_due is not None and self._retry_due <= now:
            self._retry_due = None
        if not manual and (check or self.offline) and not await self._healthy():
            self.offline = True
            self._back_off(now)
            return None
        self._first_save = self._save_due = None  # saves from now on need another sync
        try:
            result = await self._sync()
        except SyncInProgress:  # someone else is syncing: try again shortly
            self._save_due = now + self.debounce
            return None
        self._settle(result, now)
        if self._on_result is not None:
            self._on_result(result)
        return result

    def _back_off(self, now: float) -> None:
        """The server could not be reached: try again after 5 s, 10 s, 20 s ... at most
        the timer's interval."""
        self._failures += 1
        wait = min(self.retry * 2 ** min(self._failures - 1, 30), self.interval)
        self._retry_due = now + wait

    def _settle(self, result: SyncResult, now: float) -> None:
        self.offline = result.status is SyncStatus.OFFLINE
        if self.offline:
            self._back_off(now)
        else:
            self._failures, self._retry_due = 0, None
        self._not_before = now + (result.retry_after or 0.0)
        if result.status in (SyncStatus.SIGN_IN_REQUIRED, SyncStatus.DEVICE_REVOKED):
            self.paused = result.status
        elif result.status is SyncStatus.OK:
            self.paused = None
        if self._task is not None:
            self._next_timer = now + self.interval

    async def _run(self) -> None:
        while True:
            self._wake.clear()
            due, now = self.next_due(), self._clock()
            if due is not None and due <= now:
                try:
                    await self.run_due()
                except Exception as exc:  # noqa: BLE001 - a bug must not stop syncing
                    # The type only: messages may quote patient data.
                    log.error("sync failed unexpectedly: %s", type(exc).__name__)
                    self._not_before = now + self.debounce
                continue
            waker = asyncio.ensure_future(self._wake.wait())
            waits: set[asyncio.Future[Any]] = {waker}
            if due is not None:
                waits.add(asyncio.ensure_future(self._sleep(due - now)))
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for waiting in waits:
                    waiting.cancel()

    def _poke(self) -> None:
        loop = self._loop
        if loop is None or loop.is_closed():
            return
        try:
            running = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            self._wake.set()
        else:
            loop.call_soon_threadsafe(self._wake.set)


__all__ = ["SyncScheduler"]
