"""A database that stops answering: every request gets 503 in bounded time, the readiness
probe says so, and service resumes when the database does."""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterator

import httpx
import pytest

from server import migrations
from server.app import create_app
from server.db import Database
from server.settings import Settings
from tests.conftest import TEST_AUDIT_KEY
from tests.server.conftest import PASSWORD
from tests.server.tcp_relay import TcpRelay

pytestmark = pytest.mark.anyio
QUICK = Settings.from_environ(
    {
        "LIAISON_ARGON2_MEMORY_KIB": "64",
        "LIAISON_ARGON2_ITERATIONS": "1",
        "LIAISON_ARGON2_LANES": "1",
        "LIAISON_DB_TIMEOUT_SECONDS": "2",
        "LIAISON_REQUEST_DEADLINE_SECONDS": "3",
    }
)


@pytest.fixture
def relay(postgres_url: str) -> Iterator[tuple[TcpRelay, str]]:
    relay = TcpRelay(5432).start()
    yield relay, postgres_url.replace("127.0.0.1:5432", f"127.0.0.1:{relay.port}")
    relay.stop()


async def _sign_in(client: httpx.AsyncClient) -> dict[str, str]:
    response = await client.post(
        "/api/v1/devices", json={"username": "alice", "password": PASSWORD, "device_name": "p"}
    )
    assert response.status_code == 201, response.text
    return {"Authorization": f"Bearer {response.json()['token']}"}


def _org(database: Database) -> None:
    from server import auth
    from server.passwords import hash_password

    with database.write() as conn:
        team = auth.create_team(conn, "A", 0)
        auth.create_user(conn, "alice", hash_password(PASSWORD, QUICK), "liaison", [team], 0)


@pytest.mark.postgres
async def test_a_silent_postgres_gives_503_not_a_hang(relay):
    proxy, url = relay
    database = Database(url, audit_key=TEST_AUDIT_KEY, timeout=QUICK.db_timeout_seconds)
    migrations.migrate(database)
    _org(database)
    app = create_app(QUICK, database)
    transport = httpx.ASGITransport(app=app)
    try:
        async with httpx.AsyncClient(
            transport=transport, base_url="http://t", timeout=30
        ) as client:
            headers = await _sign_in(client)
            assert (await client.get("/readyz")).json() == {"status": "ready"}
            proxy.freeze()
            for path, extra in (
                ("/readyz", {}),
                ("/api/v1/me", headers),
                ("/api/v1/sync/pull", headers),
            ):
                started = time.monotonic()
                response = await client.get(path, headers=extra)
                assert response.status_code == 503, (path, response.text)
                assert response.json()["error"]["code"] == "unavailable"
                assert time.monotonic() - started < 20  # bounded: no hang
            assert (await client.get("/healthz")).status_code == 200  # the process lives
            proxy.thaw()
            deadline = time.monotonic() + 30
            while (await client.get("/readyz")).status_code != 200:
                assert time.monotonic() < deadline, "service did not resume"
            assert (await client.get("/api/v1/me", headers=headers)).status_code == 200
    finally:
        proxy.thaw()
        database.dispose()


async def test_a_locked_sqlite_gives_503_not_a_hang(tmp_path):
    path = tmp_path / "locked.db"
    database = Database(
        f"sqlite:///{path}", audit_key=TEST_AUDIT_KEY, timeout=QUICK.db_timeout_seconds
    )
    migrations.migrate(database)
    _org(database)
    app = create_app(QUICK, database)
    other = sqlite3.connect(path, isolation_level=None)  # another process's stuck writer
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://t", timeout=30
        ) as client:
            headers = await _sign_in(client)
            other.execute("BEGIN IMMEDIATE")
            response = await client.post(
                "/api/v1/sync/push", json={"mutations": []}, headers=headers
            )
            assert response.status_code == 503, response.text
            assert int(response.headers["Retry-After"]) > 0
            assert (await client.get("/readyz")).status_code == 200  # reads still work (WAL)
            other.execute("ROLLBACK")
            response = await client.post(
                "/api/v1/sync/push", json={"mutations": []}, headers=headers
            )
            assert response.status_code == 200
    finally:
        other.close()
        database.dispose()


def _closed(dbapi_connection) -> bool:
    try:
        dbapi_connection.cursor()
    except Exception:  # noqa: BLE001 - sqlite3 and psycopg raise different errors
        return True
    return False


def test_a_connection_still_in_use_at_dispose_is_closed_when_returned(database):
    in_use = database.engine.connect()  # a request's worker thread, abandoned at its deadline
    dbapi_connection = in_use.connection.dbapi_connection
    database.dispose()
    assert not _closed(dbapi_connection)  # the thread's work may still finish
    in_use.close()
    assert _closed(dbapi_connection)  # not left open until garbage collection
