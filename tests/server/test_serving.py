"""The real ``python -m server serve`` against hostile clients: sign-ins at once with the
shipped Argon2 cost, spoofed forwarding headers, slow heads and bodies, hang-ups."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest

from tests.server.served import PASSWORD, Served

FAST = {
    "LIAISON_ARGON2_MEMORY_KIB": "64",
    "LIAISON_ARGON2_ITERATIONS": "1",
    "LIAISON_ARGON2_LANES": "1",
}


@pytest.fixture
def fast_server(tmp_path: Path) -> Iterator[Served]:
    served = Served(
        tmp_path,
        {
            **FAST,
            "LIAISON_HEADER_TIMEOUT_SECONDS": "1",
            "LIAISON_BODY_IDLE_SECONDS": "1",
            "LIAISON_THROTTLE_ADDRESS_FAILURES": "3",
        },
    )
    yield served
    served.kill()


def test_concurrent_sign_ins_with_the_shipped_argon2_settings(tmp_path: Path) -> None:
    # No LIAISON_ARGON2_* here: the cost a deployment runs (p=4), which used to hang the
    # process on the second sign-in at once.
    served = Served(tmp_path, {})
    try:
        attempts = [
            ("nurse", PASSWORD),
            ("nurse", "wrong-pass"),
            ("ghost", "whatever-1"),
            ("ghost2", PASSWORD),
        ] * 2
        with ThreadPoolExecutor(len(attempts)) as pool:
            statuses = sorted(pool.map(lambda a: served.sign_in(*a).status_code, attempts))
        assert statuses == [201, 201, 401, 401, 401, 401, 401, 401]
        assert served.stop()  # SIGTERM still stops it
    finally:
        served.kill()


def test_forwarded_for_from_loopback_does_not_reset_the_address_throttle(fast_server):
    for n in range(3):
        response = fast_server.sign_in(
            f"ghost{n}", "wrong-pass", headers={"X-Forwarded-For": f"203.0.113.{n}"}
        )
        assert response.status_code == 401
    response = fast_server.sign_in("nurse", PASSWORD, headers={"X-Forwarded-For": "198.51.100.7"})
    assert response.status_code == 429  # still counted against 127.0.0.1


def _closed_within(sock: socket.socket, seconds: float) -> bytes:
    """What the server sends until it closes the connection (fails after ``seconds``)."""
    sock.settimeout(seconds)
    received = b""
    while True:
        chunk = sock.recv(4096)
        if not chunk:
            return received
        received += chunk


def test_a_slow_request_head_is_cut_off(fast_server):
    with socket.create_connection(("127.0.0.1", fast_server.port)) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")  # and never the blank line
        assert _closed_within(sock, 10) == b""
    answer = httpx.get(f"{fast_server.base}/healthz")
    assert answer.status_code == 200  # others unaffected
    assert "server" not in answer.headers  # nothing said about what runs here


def test_a_stalled_body_gets_408(fast_server):
    with socket.create_connection(("127.0.0.1", fast_server.port)) as sock:
        sock.sendall(
            b"POST /api/v1/devices HTTP/1.1\r\nHost: x\r\nContent-Type: "
            b'application/json\r\nContent-Length: 100\r\n\r\n{"user'
        )
        answer = _closed_within(sock, 10)
    assert answer.startswith(b"HTTP/1.1 408"), answer[:200]


def test_a_client_hanging_up_mid_body_is_not_logged_as_an_error(fast_server):
    with socket.create_connection(("127.0.0.1", fast_server.port)) as sock:
        sock.sendall(b"POST /api/v1/devices HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{")
    # The next request is answered after the hang-up was handled (one event loop).
    assert httpx.get(f"{fast_server.base}/healthz").status_code == 200
    assert fast_server.stop()
    log = fast_server.log.read_text()
    assert "unexpected" not in log and "Traceback" not in log, log
