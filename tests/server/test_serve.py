"""Smoke test: the real ``python -m server`` CLI and ``serve`` on a loopback port."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

ROOT = Path(__file__).resolve().parents[2]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _cli(env: dict[str, str], cwd: Path, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "server", *args], env=env, cwd=cwd, capture_output=True,
        text=True, timeout=60,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture
def cli_env(tmp_path: Path) -> dict[str, str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "LIAISON_ARGON2_MEMORY_KIB": "1024"}
    env.pop("LIAISON_DATABASE_URL", None)
    return env


def test_seed_demo_if_empty(tmp_path: Path, cli_env: dict[str, str]) -> None:
    out = _cli(cli_env, tmp_path, "seed-demo", "--if-empty")
    assert "demo-liaison-2026" in out and "demo-super-2026" in out
    assert (tmp_path / "var" / "liaison.db").exists()  # the default URL is relative to cwd
    assert "not seeding" in _cli(cli_env, tmp_path, "seed-demo", "--if-empty")
    assert "ok" in _cli(cli_env, tmp_path, "verify-audit")


def test_serve_enrol_push_pull(tmp_path: Path, cli_env: dict[str, str]) -> None:
    url = ["--database-url", f"sqlite:///{tmp_path}/smoke.db"]
    _cli(cli_env, tmp_path, "create-team", "Smoke", *url)
    _cli(cli_env, tmp_path, "create-user", "smoke", "--password", "smoke-pass-1",
         "--role", "liaison", "--team", "Smoke", *url)
    port = _free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "server", "serve", "--port", str(port), *url],
        env=cli_env, cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert server.poll() is None, server.stderr.read() if server.stderr else ""
            assert time.monotonic() < deadline, "server did not start"
            time.sleep(0.1)
        with httpx.Client(base_url=base, timeout=10) as client:
            enrolled = client.post(
                "/api/v1/devices",
                json={"username": "smoke", "password": "smoke-pass-1", "device_name": "ci"},
            )
            assert enrolled.status_code == 201, enrolled.text
            headers = {"Authorization": f"Bearer {enrolled.json()['token']}"}
            stamp = f"{int(time.time() * 1000):015d}-00000-{enrolled.json()['device_id']}"
            record_id = str(uuid.uuid4())
            mutation = {"id": 1, "record_id": record_id, "type": "patient", "op": "upsert",
                        "fields": {"name": "Smoke Test"}, "clock": {"name": stamp},
                        "base_rev": None}
            pushed = client.post("/api/v1/sync/push", json={"mutations": [mutation]},
                                 headers=headers)
            assert pushed.json()["results"][0]["status"] == "applied", pushed.text
            pulled = client.get("/api/v1/sync/pull", headers=headers).json()
            assert [r["id"] for r in pulled["records"]] == [record_id]
    finally:
        server.terminate()
        server.wait(timeout=10)
        if server.stderr:
            server.stderr.close()


def test_serve_options() -> None:
    from server.__main__ import _parser

    assert _parser().parse_args(["serve"]).access_log is False  # off: see --help
    assert _parser().parse_args(["serve", "--access-log"]).access_log is True
