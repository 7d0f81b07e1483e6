"""The server's clock: ``time.time``, or in a test server only, a clock a test can move.

Browser tests need a sign-in to expire without waiting for it. A test server started with
both ``LIAISON_TESTING=1`` and ``LIAISON_TEST_CLOCK_FILE=/path`` reads its time as
``time.time()`` plus the number of seconds written in that file (a missing or empty file
counts as 0), read again at every call, so a test moves the clock by rewriting the file.

Production cannot turn it on by accident: the file alone is refused (the server does not
start), and ``LIAISON_TESTING`` is set only by the test launcher (``server.launch``). A
server running on a moved clock says so in its log at start.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from pathlib import Path

from server.errors import ServerError

TESTING_ENV = "LIAISON_TESTING"
CLOCK_FILE_ENV = "LIAISON_TEST_CLOCK_FILE"

log = logging.getLogger("server")


class TestClock:
    """``time.time()`` plus the offset (seconds) written in ``path``."""

    __test__ = False  # not a pytest test class, despite the name

    def __init__(self, path: Path) -> None:
        self.path = path

    def offset(self) -> float:
        """The seconds the clock is moved by now."""
        try:
            text = self.path.read_text().strip()
        except FileNotFoundError:
            return 0.0
        return float(text) if text else 0.0

    def __call__(self) -> float:
        return time.time() + self.offset()


def from_environ(environ: Mapping[str, str] | None = None) -> Callable[[], float]:
    """The server's clock: ``time.time``, or a ``TestClock`` when a test server asks for
    one; refused (``ServerError``) when ``LIAISON_TEST_CLOCK_FILE`` is set outside one."""
    env = os.environ if environ is None else environ
    path = env.get(CLOCK_FILE_ENV, "")
    if not path:
        return time.time
    if env.get(TESTING_ENV) != "1":
        raise ServerError(f"{CLOCK_FILE_ENV} is only for test servers ({TESTING_ENV}=1)")
    log.warning("test server: the clock is moved by the seconds in %s", path)
    return TestClock(Path(path))
