"""A real ``python -m server serve`` on a loopback port, for tests of the process itself."""

from __future__ import annotations

from pathlib import Path

import httpx

from server import launch

PASSWORD = "serving-pass-1"


def seed_nurse(url: str, env: dict[str, str], password: str = PASSWORD) -> None:
    """Team ``T`` and liaison ``nurse`` (``password``) in the database at ``url``, made with
    the ``python -m server`` commands an administrator runs."""
    launch.cli(url, "create-team", "T", env=env, timeout=60)
    launch.cli(
        url,
        *("create-user", "nurse", "--password", password, "--role", "liaison", "--team", "T"),
        env=env,
        timeout=60,
    )


class Served:
    """A ``serve`` process on a fresh SQLite file with team ``T`` and liaison ``nurse``
    (password ``PASSWORD``), settings from ``env``; ``stop()`` it, or ``kill()``."""

    def __init__(self, tmp: Path, env: dict[str, str]) -> None:
        self.env = env
        self.url = f"sqlite:///{tmp}/serving.db"
        seed_nurse(self.url, env)
        self.process = launch.ServerProcess(self.url, tmp / "server.log", env=env)
        self.port = self.process.port
        self.base = self.process.base
        self.log = tmp / "server.log"
        self.process.start(timeout=30)

    def cli(self, *args: str) -> None:
        launch.cli(self.url, *args, env=self.env, timeout=60)

    def sign_in(self, username: str, password: str, **kw: object) -> httpx.Response:
        return httpx.post(
            f"{self.base}/api/v1/devices",
            timeout=60,
            **kw,  # type: ignore[arg-type]
            json={"username": username, "password": password, "device_name": "p"},
        )

    def stop(self) -> bool:
        """SIGTERM; True when the server shut down in an orderly way within 20 s."""
        return self.process.stop(timeout=20)

    def kill(self) -> None:
        """End it at once, if it still runs."""
        self.process.kill()
