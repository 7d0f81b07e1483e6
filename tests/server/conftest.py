"""Server fixtures: one ``database`` fixture over SQLite and PostgreSQL, a fake clock, an org."""

from __future__ import annotations

import shutil
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from server import auth, migrations
from server import db as db_tables
from server.app import create_app
from server.db import Database
from server.passwords import hash_password
from server.settings import Settings
from tests.conftest import TEST_AUDIT_KEY

PASSWORD = "password-123"
START = 1_800_000_000.0
SETTINGS = Settings.from_environ(
    {
        "LIAISON_ARGON2_MEMORY_KIB": "64",
        "LIAISON_ARGON2_ITERATIONS": "1",
        "LIAISON_ARGON2_LANES": "1",
        "LIAISON_PUSH_LIMIT": "50",
        "LIAISON_PULL_LIMIT": "100",
        "LIAISON_BODY_LIMIT": "200000",
        "LIAISON_ATTACHMENT_LIMIT": "100000",
    }
)


class FakeClock:
    """Seconds since the epoch, moved by hand."""

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def _pg(url: str):  # type: ignore[no-untyped-def]
    import psycopg

    return psycopg.connect(url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for each test (faster than migrating each time)."""
    path = tmp_path_factory.mktemp("template") / "liaison.db"
    db = Database(f"sqlite:///{path}")
    migrations.migrate(db)
    db.dispose()
    return path


@pytest.fixture(scope="session")
def pg_shared(postgres_server: str) -> Iterator[str]:
    """One migrated PostgreSQL database for the session, emptied before each test."""
    name = f"liaison_test_{uuid.uuid4().hex[:12]}"
    with _pg(postgres_server) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    url = f"{postgres_server.rsplit('/', 1)[0]}/{name}".replace(
        "postgresql://", "postgresql+psycopg://"
    )
    db = Database(url)
    migrations.migrate(db)
    db.dispose()
    yield url
    with _pg(postgres_server) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def _empty_pg(url: str) -> None:
    """Empty every table but schema_version and put back the initial rows."""
    # DELETE, not TRUNCATE: these tables are tiny and TRUNCATE makes new files to fsync.
    tables = [t for t in reversed(db_tables.metadata.sorted_tables) if t.name != "schema_version"]
    with _pg(url) as conn, conn.transaction():
        for table in tables:
            conn.execute(f"DELETE FROM {table.name}")
        conn.execute("INSERT INTO counters (name, value) VALUES ('rev', 0)")
        conn.execute(f"INSERT INTO audit_head (id, seq, hash) VALUES (1, 0, '{'0' * 64}')")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a fresh, migrated database: SQLite in tmp_path, or PostgreSQL."""
    if request.param == "sqlite":
        shutil.copy(request.getfixturevalue("sqlite_template"), tmp_path / "liaison.db")
        yield f"sqlite:///{tmp_path}/liaison.db"
        return
    url = request.getfixturevalue("pg_shared")
    _empty_pg(url)
    yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty database (for migration tests)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/empty.db"
    return str(request.getfixturevalue("postgres_url"))


@pytest.fixture
def database(database_url: str) -> Iterator[Database]:
    """A migrated, empty database."""
    db = Database(database_url, audit_key=TEST_AUDIT_KEY)
    yield db
    db.dispose()


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def settings() -> Settings:
    return SETTINGS


@dataclass
class Org:
    """Teams A and B and their users (all with PASSWORD)."""

    team_a: str
    team_b: str
    users: dict[str, str]


USERS = {
    # username: (role, teams)
    "alice": ("liaison", ["A"]),
    "amy": ("liaison", ["A"]),
    "bob": ("liaison", ["B"]),
    "sue": ("supervisor", ["A"]),
    "multi": ("liaison", ["A", "B"]),
    "root": ("admin", []),
    "lonely": ("liaison", []),
}


@pytest.fixture
def org(database: Database, settings: Settings, clock: FakeClock) -> Org:
    encoded = hash_password(PASSWORD, settings)
    with database.write() as conn:
        teams = {name: auth.create_team(conn, name, clock()) for name in ("A", "B")}
        users = {
            name: auth.create_user(conn, name, encoded, role, [teams[t] for t in names], clock())
            for name, (role, names) in USERS.items()
        }
    return Org(teams["A"], teams["B"], users)


@pytest.fixture
def anyio_backend() -> str:
    return "asyncio"


@pytest.fixture
async def client(
    database: Database, settings: Settings, clock: FakeClock, org: Org
) -> AsyncIterator[httpx.AsyncClient]:
    """An in-process client of the app (with the org created)."""
    app = create_app(settings, database, clock=clock)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as c:
        yield c
