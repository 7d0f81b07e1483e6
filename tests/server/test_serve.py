"""Smoke test: the real ``python -m server`` CLI and ``serve`` on a loopback port."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import httpx
import pytest

from tests.server.served import PASSWORD, Served

ROOT = Path(__file__).resolve().parents[2]


def _cli(env: dict[str, str], cwd: Path, *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "-m", "server", *args],
        env=env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
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


def test_serve_enrol_push_pull(tmp_path: Path) -> None:
    served = Served(tmp_path, {"LIAISON_ARGON2_MEMORY_KIB": "1024"})
    try:
        with httpx.Client(base_url=served.base, timeout=10) as client:
            enrolled = client.post(
                "/api/v1/devices",
                json={"username": "nurse", "password": PASSWORD, "device_name": "ci"},
            )
            assert enrolled.status_code == 201, enrolled.text
            headers = {"Authorization": f"Bearer {enrolled.json()['token']}"}
            stamp = f"{int(time.time() * 1000):015d}-00000-{enrolled.json()['device_id']}"
            record_id = str(uuid.uuid4())
            mutation = {
                "id": 1,
                "record_id": record_id,
                "type": "patient",
                "op": "upsert",
                "fields": {"name": "Smoke Test"},
                "clock": {"name": stamp},
                "base_rev": None,
            }
            pushed = client.post(
                "/api/v1/sync/push", json={"mutations": [mutation]}, headers=headers
            )
            assert pushed.json()["results"][0]["status"] == "applied", pushed.text
            pulled = client.get("/api/v1/sync/pull", headers=headers).json()
            assert [r["id"] for r in pulled["records"]] == [record_id]
            assert client.get("/readyz").json() == {"status": "ready"}
        assert served.stop()
    finally:
        served.kill()


def test_serve_options() -> None:
    from server.__main__ import _parser

    assert _parser().parse_args(["serve"]).access_log is False  # off: see --help
    assert _parser().parse_args(["serve", "--access-log"]).access_log is True
