"""Hybrid logical clock of DESIGN §4.

An HLC is ``"<ms since epoch, 15 digits>-<counter, 5 digits>-<node id>"`` so that plain
string comparison is clock order. ``Clock.now()`` stamps a local event; ``Clock.observe()``
folds in a clock seen from elsewhere so later local stamps sort after it.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

from sync.errors import InvalidClock

MS_DIGITS = 15
COUNTER_DIGITS = 5
MAX_COUNTER = 10**COUNTER_DIGITS - 1
MAX_NODE = 64
# MS_DIGITS and COUNTER_DIGITS ASCII digits, then a node id of 1 to MAX_NODE characters
# of any kind (it may hold '-' or even a newline). A regex: this runs per pushed field.
_NODE_START = MS_DIGITS + 1 + COUNTER_DIGITS + 1  # "<ms>-<counter>-" then the node
_HLC_RE = re.compile(r"[0-9]{15}-[0-9]{5}-.{1,64}", re.DOTALL)


def wall_ms() -> int:
    """Milliseconds since the epoch from the system clock."""
    return time.time_ns() // 1_000_000


@dataclass(frozen=True, order=True)
class Timestamp:
    """A parsed HLC; ordering matches the string form."""

    ms: int
    counter: int
    node: str

    def __str__(self) -> str:
        return f"{self.ms:0{MS_DIGITS}d}-{self.counter:0{COUNTER_DIGITS}d}-{self.node}"


def parse(text: str) -> Timestamp:
    """Parse an HLC string; raises InvalidClock when it is not one."""
    if not isinstance(text, str):
        raise InvalidClock("clock must be a string")
    if not is_valid(text):
        raise InvalidClock(f"not an HLC: {text[:80]!r}")
    ms, counter, node = text.split("-", 2)
    return Timestamp(int(ms), int(counter), node)


def node_of(text: str) -> str:
    """The node id of a valid HLC string (without parsing the rest)."""
    return text[_NODE_START:]


def is_valid(text: object) -> bool:
    """True when ``text`` is a well-formed HLC string (checked without parsing it)."""
    return isinstance(text, str) and _HLC_RE.fullmatch(text) is not None


class Clock:
    """A hybrid logical clock for one node; thread-safe; wall clock injectable for tests."""

    def __init__(self, node: str, wall: Callable[[], int] = wall_ms) -> None:
        if not node or not _node_ok(node):
            raise InvalidClock(f"bad node id {node!r}")
        self.node = node
        self._wall = wall
        self._last = Timestamp(0, 0, node)
        self._lock = threading.Lock()

    def now(self) -> str:
        """A new timestamp, later than every one this clock issued or observed."""
        with self._lock:
            ms = max(self._wall(), self._last.ms)
            counter = self._last.counter + 1 if ms == self._last.ms else 0
            if counter > MAX_COUNTER:  # more than 100,000 events in one ms: borrow the next ms
                ms, counter = ms + 1, 0
            self._last = Timestamp(ms, counter, self.node)
            return str(self._last)

    def observe(self, remote: str) -> None:
        """Fold a clock seen on another node into this one."""
        seen = parse(remote)
        with self._lock:
            if (seen.ms, seen.counter) > (self._last.ms, self._last.counter):
                self._last = Timestamp(seen.ms, seen.counter, self.node)


def _node_ok(node: str) -> bool:
    # The node id is the last part of the string, so it may contain '-' (UUIDs do).
    return len(node) <= MAX_NODE and node.isprintable()
