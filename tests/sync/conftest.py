"""A real server process, and a fault-injecting proxy in front of it, for the sync tests
that go over TCP (test_faults, test_attachments_serve)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.sync.faultproxy import FaultProxy
from tests.sync.live_server import ServerProcess, seeded_database


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """``python -m server serve`` on a seeded SQLite database, one per test module."""
    url = seeded_database(tmp_path_factory.mktemp("server") / "liaison.db")
    process = ServerProcess(url, tmp_path_factory.mktemp("log") / "server.log")
    process.start()
    yield process
    process.stop()


@pytest.fixture
def proxy(server: ServerProcess) -> Iterator[FaultProxy]:
    """A fault-injecting TCP proxy in front of the module's server."""
    fault_proxy = FaultProxy(server.port).start()
    yield fault_proxy
    fault_proxy.stop()
