"""A debouncer for autosaving drafts: one write after a pause, not one per keystroke.

Each ``poke()`` restarts the timer; ``action`` runs once ``delay`` seconds after the last
poke, or at once on ``flush()`` (before finalizing, leaving, or accepting a next step). The
timer comes from ``later(delay, callback) -> handle with cancel()``; the default uses the
running asyncio loop (Flet runs handlers on it) and, with no loop running (headless tests,
scripts), saves at once so nothing typed is ever held back silently.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, Protocol

DELAY = 1.0


class Handle(Protocol):
    """A scheduled call that can be cancelled."""

    def cancel(self) -> Any:
        """Stop the call if it has not run yet."""


Later = Callable[[float, Callable[[], None]], Handle | None]


def loop_later(delay: float, callback: Callable[[], None]) -> Handle | None:
    """Schedule on the running asyncio loop; None when no loop runs (the caller acts now)."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return None
    return loop.call_later(delay, callback)


class Debouncer:
    """Run ``action`` once after ``delay`` seconds without a new ``poke()``."""

    def __init__(
        self, action: Callable[[], object], delay: float = DELAY, later: Later = loop_later
    ) -> None:
        self.action = action
        self.delay = delay
        self.later = later
        self.pending = False
        self._handle: Handle | None = None

    def poke(self) -> None:
        """Note a change: restart the timer."""
        self.pending = True
        self._cancel()
        self._handle = self.later(self.delay, self._fire)
        if self._handle is None:
            self._fire()

    def flush(self) -> None:
        """Run the pending action now (nothing happens when nothing is pending)."""
        self._cancel()
        self._fire()

    def cancel(self) -> None:
        """Forget the pending change without running the action."""
        self._cancel()
        self.pending = False

    def _cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None

    def _fire(self) -> None:
        self._handle = None
        if self.pending:
            self.pending = False
            self.action()
