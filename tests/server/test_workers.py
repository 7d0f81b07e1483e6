"""``serve --workers N``: several processes on one port (PostgreSQL), each serving on its
own; stopped together; a worker that dies takes the server down for its manager to restart;
refused on SQLite with a clear message."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from server import launch
from tests.server.served import seed_nurse

PASSWORD = "workers-pass-1"
ENV = {"LIAISON_ARGON2_MEMORY_KIB": "1024"}


def test_several_workers_on_sqlite_are_refused(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "server", "serve", "--workers", "2"]
        + ["--database-url", f"sqlite:///{tmp_path}/one.db"],
        env=launch.environment(ENV),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "--workers above 1 needs PostgreSQL" in done.stderr


def _children(pid: int) -> list[int]:
    found = Path(f"/proc/{pid}/task/{pid}/children").read_text().split()
    return sorted(int(p) for p in found)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat").read_text()
    return stat.rsplit(")", 1)[1].split()[0] != "Z"  # a zombie is gone but not yet reaped


def _gone(pids: list[int], timeout: float = 20) -> bool:
    deadline = time.monotonic() + timeout
    while any(_alive(p) for p in pids):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


@pytest.fixture
def two_workers(
    postgres_url: str, tmp_path: Path
) -> Iterator[tuple[launch.ServerProcess, list[int]]]:
    """A two-worker server with team T and liaison nurse, and its workers' pids."""
    seed_nurse(postgres_url, ENV, PASSWORD)
    server = launch.ServerProcess(postgres_url, tmp_path / "server.log", env=ENV, workers=2)
    server.start(timeout=60)
    assert server.proc is not None
    workers = _children(server.proc.pid)
    try:
        assert len(workers) == 2
        yield server, workers
    finally:
        server.kill()
        for pid in workers:
            if _alive(pid):
                os.kill(pid, signal.SIGKILL)


def _enrol_push_pull(base: str, name: str) -> None:
    """A device enrols, pushes a patient and pulls it back (every step a new connection)."""
    enrolled = httpx.post(
        f"{base}/api/v1/devices",
        json={"username": "nurse", "password": PASSWORD, "device_name": name},
        timeout=30,
    )
    assert enrolled.status_code == 201, enrolled.text
    body = enrolled.json()
    headers = {"Authorization": f"Bearer {body['token']}"}
    record_id = f"00000000-0000-4000-8000-{os.urandom(6).hex()}"
    stamp = f"{int(time.time() * 1000):015d}-00000-{body['device_id']}"
    mutation = {
        "id": 1,
        "record_id": record_id,
        "type": "patient",
        "op": "upsert",
        "fields": {"name": f"Patient of {name}"},
        "clock": {"name": stamp},
        "base_rev": None,
    }
    pushed = httpx.post(
        f"{base}/api/v1/sync/push", json={"mutations": [mutation]}, headers=headers, timeout=30
    )
    assert pushed.json()["results"][0]["status"] == "applied", pushed.text
    pulled = httpx.get(f"{base}/api/v1/sync/pull", headers=headers, timeout=30).json()
    assert record_id in {r["id"] for r in pulled["records"]}


@pytest.mark.postgres
def test_each_worker_serves_on_the_one_port_and_they_stop_together(two_workers) -> None:
    server, workers = two_workers
    # With one worker stopped (SIGSTOP), the other answers everything; then the other way.
    for paused, serving in (workers, reversed(workers)):
        os.kill(paused, signal.SIGSTOP)
        try:
            _enrol_push_pull(server.base, f"phone-{serving}")
        finally:
            os.kill(paused, signal.SIGCONT)
    assert server.stop(timeout=20)  # SIGTERM to the parent: an orderly stop, exit 0
    assert server.proc is not None and server.proc.returncode == 0
    assert _gone(workers)


@pytest.mark.postgres
def test_a_worker_that_dies_takes_the_server_down(two_workers) -> None:
    server, workers = two_workers
    os.kill(workers[0], signal.SIGKILL)
    assert server.proc is not None
    assert server.proc.wait(timeout=20) == 1  # for the process manager to restart it
    assert _gone(workers)


@pytest.mark.postgres
def test_workers_stop_when_the_parent_is_killed(two_workers) -> None:
    server, workers = two_workers
    server.kill()  # SIGKILL: the parent cannot tell its workers
    assert _gone(workers)  # each noticed within a second and stopped itself
