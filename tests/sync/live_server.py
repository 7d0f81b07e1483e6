"""A real ``python -m server serve`` on loopback for the device's end-to-end sync tests."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import httpx

from server import auth, migrations
from server.db import Database
from server.passwords import hash_password
from server.settings import Settings
from tests.conftest import TEST_AUDIT_KEY

PASSWORD = "password-123"
ROOT = Path(__file__).resolve().parents[2]
FAST_HASHES = {
    "LIAISON_ARGON2_MEMORY_KIB": "64",
    "LIAISON_ARGON2_ITERATIONS": "1",
    "LIAISON_ARGON2_LANES": "1",
}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    """``python -m server serve`` on a loopback port; kill and start it again at will."""

    def __init__(self, database_url: str, log: Path) -> None:
        self.database_url = database_url
        self.port = free_port()
        self.log = log
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> None:
        env = {**os.environ, **FAST_HASHES, "PYTHONPATH": str(ROOT)}
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "server",
                    "serve",
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(self.port),
                    "--database-url",
                    self.database_url,
                ],
                cwd=ROOT,
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
            )
        self.starts += 1
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"http://127.0.0.1:{self.port}/healthz", timeout=1).is_success:
                    return
            except httpx.HTTPError:
                time.sleep(0.05)
            if not self.alive:
                break
        raise RuntimeError(f"the server did not start: {self.log.read_text()[-2000:]}")

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)

    def stop(self) -> None:
        if self.alive:
            assert self.proc is not None
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.kill()


def seed(url: str, usernames: Sequence[str] = ("alice", "amy")) -> str:
    """Migrate the database at ``url`` (SQLite or PostgreSQL) and add team A with these
    liaisons (password ``PASSWORD``); returns ``url``."""
    database = Database(url, audit_key=TEST_AUDIT_KEY)
    try:
        migrations.migrate(database)
        encoded = hash_password(PASSWORD, Settings.from_environ(FAST_HASHES))
        with database.write() as conn:
            team = auth.create_team(conn, "A", time.time())
            for name in usernames:
                auth.create_user(conn, name, encoded, "liaison", [team], time.time())
    finally:
        database.dispose()
    return url


def seeded_database(path: Path) -> str:
    """The URL of a migrated SQLite database at ``path``: team A, liaisons alice and amy."""
    return seed(f"sqlite:///{path}")
