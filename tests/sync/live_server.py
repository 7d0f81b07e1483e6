"""A real ``python -m server serve`` on loopback for the device's end-to-end sync tests."""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path

from server import auth, launch, migrations
from server.db import Database
from server.passwords import hash_password
from server.settings import Settings
from tests.conftest import TEST_AUDIT_KEY

PASSWORD = "password-123"
FAST_HASHES = {
    "LIAISON_ARGON2_MEMORY_KIB": "64",
    "LIAISON_ARGON2_ITERATIONS": "1",
    "LIAISON_ARGON2_LANES": "1",
}
free_port = launch.free_port


class ServerProcess(launch.ServerProcess):
    """``python -m server serve`` on a loopback port with cheap password hashing; kill and
    start it again at will (``server.launch``)."""

    def __init__(self, database_url: str, log: Path) -> None:
        super().__init__(database_url, log, env=FAST_HASHES)


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
