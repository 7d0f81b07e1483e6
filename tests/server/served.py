"""A real ``python -m server serve`` on a loopback port, for tests of the process itself."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.sync.live_server import free_port

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "serving-pass-1"


class Served:
    """A ``serve`` process on a fresh SQLite file with team ``T`` and liaison ``nurse``
    (password ``PASSWORD``), settings from ``env``; ``stop()`` it, or ``kill()``."""

    def __init__(self, tmp: Path, env: dict[str, str]) -> None:
        self.env = {**os.environ, "PYTHONPATH": str(ROOT), **env}
        self.url = f"sqlite:///{tmp}/serving.db"
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        self.log = tmp / "server.log"
        self.cli("create-team", "T")
        self.cli("create-user", "nurse", "--password", PASSWORD, "--role", "liaison", "--team", "T")
        with self.log.open("wb") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "server",
                    "serve",
                    "--port",
                    str(self.port),
                    "--database-url",
                    self.url,
                ],
                cwd=ROOT,
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{self.base}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert self.proc.poll() is None, self.log.read_text()
            assert time.monotonic() < deadline, "the server did not start"
            time.sleep(0.05)

    def cli(self, *args: str) -> None:
        done = subprocess.run(
            [sys.executable, "-m", "server", *args, "--database-url", self.url],
            cwd=ROOT,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert done.returncode == 0, done.stderr

    def sign_in(self, username: str, password: str, **kw: object) -> httpx.Response:
        return httpx.post(
            f"{self.base}/api/v1/devices",
            timeout=60,
            **kw,  # type: ignore[arg-type]
            json={"username": username, "password": password, "device_name": "p"},
        )

    def stop(self) -> bool:
        """SIGTERM; True when the server shut down in an orderly way within 20 s (uvicorn
        re-raises the signal once it has shut down, so the exit code is -SIGTERM)."""
        self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout=20) in (0, -signal.SIGTERM)

    def kill(self) -> None:
        """End it at once, if it still runs."""
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
