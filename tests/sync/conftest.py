"""Fixtures shared by the sync tests against a real server process."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.live_server import ServerProcess
from tests.sync.faultproxy import FaultProxy


@pytest.fixture
def proxy(server: ServerProcess) -> Iterator[FaultProxy]:
    """A fault-injecting TCP proxy in front of the module's ``server`` fixture."""
    fault_proxy = FaultProxy(server.port).start()
    yield fault_proxy
    fault_proxy.stop()
