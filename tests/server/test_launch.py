"""The one server launcher (server.launch): start, ready, stop, and a clock a test moves."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from server import launch
from tests.server.served import seed_nurse

FAST = {
    "LIAISON_ARGON2_MEMORY_KIB": "64",
    "LIAISON_ARGON2_ITERATIONS": "1",
    "LIAISON_ARGON2_LANES": "1",
    "LIAISON_TOKEN_ABSOLUTE_SECONDS": "600",
}
PASSWORD = "launch-pass-1"


def test_a_moved_clock_expires_a_sign_in_and_stop_is_orderly(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'liaison.db'}"
    clock = launch.ClockFile(tmp_path / "offset")
    env = {**FAST, **clock.env()}
    seed_nurse(url, env, PASSWORD)
    server = launch.ServerProcess(url, tmp_path / "server.log", env=env)
    with server:
        assert server.alive
        with httpx.Client(base_url=server.base, timeout=30) as client:
            assert client.get("/readyz").status_code == 200
            enrolled = client.post(
                "/api/v1/devices",
                json={"username": "nurse", "password": PASSWORD, "device_name": "t"},
            )
            headers = {"Authorization": f"Bearer {enrolled.json()['token']}"}
            assert client.get("/api/v1/me", headers=headers).status_code == 200
            clock.advance(601)
            expired = client.get("/api/v1/me", headers=headers)
            assert expired.json()["error"]["code"] == "token_expired"
        assert server.stop()
    assert not server.alive


def test_a_server_refuses_the_test_clock_without_the_testing_flag(tmp_path: Path) -> None:
    server = launch.ServerProcess(
        f"sqlite:///{tmp_path / 'liaison.db'}",
        tmp_path / "server.log",
        env={"LIAISON_TEST_CLOCK_FILE": str(tmp_path / "offset"), "LIAISON_TESTING": ""},
    )
    with pytest.raises(RuntimeError, match="exited at start"):
        server.start()
    assert (
        "LIAISON_TEST_CLOCK_FILE is only for test servers" in (tmp_path / "server.log").read_text()
    )


def test_seed_demo_then_a_second_start_on_the_same_port(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'liaison.db'}"
    launch.seed_demo(url, env=FAST, if_empty=True)
    server = launch.ServerProcess(url, tmp_path / "server.log", env=FAST)
    server.start()
    port = server.port
    server.kill()
    assert not server.alive
    server.start()  # again, as the sync fault tests do
    try:
        assert (server.port, server.starts) == (port, 2)
        assert httpx.get(f"{server.base}/healthz", timeout=10).status_code == 200
    finally:
        assert server.stop()
