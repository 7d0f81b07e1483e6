"""The server's clock: the real time, or in a test server only, a clock a test moves."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from server import clock
from server.errors import ServerError


def test_the_real_clock_by_default() -> None:
    assert clock.from_environ({}) is time.time
    assert clock.from_environ({"LIAISON_TESTING": "1"}) is time.time


@pytest.mark.parametrize("testing", [None, "0", "true", "yes"])
def test_production_refuses_the_test_clock(tmp_path: Path, testing: str | None) -> None:
    env = {"LIAISON_TEST_CLOCK_FILE": str(tmp_path / "offset")}
    if testing is not None:
        env["LIAISON_TESTING"] = testing
    with pytest.raises(ServerError, match="only for test servers"):
        clock.from_environ(env)


def test_a_test_server_adds_the_offset_read_at_every_call(tmp_path: Path) -> None:
    offset = tmp_path / "offset"
    now = clock.from_environ({"LIAISON_TESTING": "1", "LIAISON_TEST_CLOCK_FILE": str(offset)})
    assert abs(now() - time.time()) < 60  # no file yet: no offset
    offset.write_text("3600")
    assert 3540 < now() - time.time() < 3660
    offset.write_text("")
    assert abs(now() - time.time()) < 60
