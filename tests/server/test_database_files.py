"""The server's SQLite files are its owner's alone: they hold patient data."""

from __future__ import annotations

import stat

from server import migrations
from server.db import Database
from tests.conftest import TEST_AUDIT_KEY


def _mode(path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_a_new_sqlite_database_is_private(tmp_path):
    path = tmp_path / "var" / "liaison.db"
    database = Database(f"sqlite:///{path}", audit_key=TEST_AUDIT_KEY)
    migrations.migrate(database)
    with database.write() as conn:  # the WAL and shared-memory files exist while open
        conn.exec_driver_sql("CREATE TABLE probe (x INTEGER)")
        files = [path, path.with_name("liaison.db-wal"), path.with_name("liaison.db-shm")]
        modes = {p.name: _mode(p) for p in files if p.exists()}
    database.dispose()
    assert modes["liaison.db"] == 0o600
    assert set(modes.values()) == {0o600}, modes
    assert _mode(path.parent) == 0o700


def test_an_existing_file_keeps_its_mode(tmp_path):
    path = tmp_path / "shared.db"
    path.touch(mode=0o640)
    path.chmod(0o640)  # an operator's choice (e.g. a backup group) is theirs
    Database(f"sqlite:///{path}").dispose()
    assert _mode(path) == 0o640
