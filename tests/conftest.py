"""Shared fixtures: optional services (PostgreSQL, Chromium) and LIAISON_REQUIRE_ALL."""

from __future__ import annotations

import os
import shutil
import uuid
from collections.abc import Iterator

import pytest

REQUIRE_ALL = os.environ.get("LIAISON_REQUIRE_ALL") == "1"
PG_ADMIN_URL = os.environ.get(
    "LIAISON_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
CHROMIUM = os.environ.get("LIAISON_CHROMIUM", "/usr/bin/chromium")
# One audit key for every server the tests run, in process or as `python -m server`
# (which inherit the environment): no test writes var/audit.key.
TEST_AUDIT_KEY = bytes(range(32))
os.environ["LIAISON_AUDIT_KEY"] = TEST_AUDIT_KEY.hex()


def missing_service(reason: str) -> None:
    """Skip with a reason, or fail when LIAISON_REQUIRE_ALL=1 (CI)."""
    if REQUIRE_ALL:
        pytest.fail(f"LIAISON_REQUIRE_ALL=1 but {reason}")
    pytest.skip(reason)


def _pg_connect(url: str):  # type: ignore[no-untyped-def]
    import psycopg

    return psycopg.connect(
        url.replace("postgresql+psycopg://", "postgresql://"), autocommit=True, connect_timeout=3
    )


@pytest.fixture(scope="session")
def postgres_server() -> str:
    """The admin URL of a reachable PostgreSQL server."""
    try:
        _pg_connect(PG_ADMIN_URL).close()
    except Exception as exc:  # noqa: BLE001 - any failure means "not reachable"
        missing_service(f"PostgreSQL is not reachable at {PG_ADMIN_URL}: {type(exc).__name__}")
    return PG_ADMIN_URL


@pytest.fixture
def postgres_url(postgres_server: str) -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    name = f"liaison_test_{uuid.uuid4().hex[:12]}"
    with _pg_connect(postgres_server) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    base = postgres_server.rsplit("/", 1)[0]
    yield f"{base}/{name}".replace("postgresql://", "postgresql+psycopg://", 1)
    with _pg_connect(postgres_server) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def chromium_path() -> str:
    """Path of a Chromium binary for Playwright."""
    if not (os.path.exists(CHROMIUM) or shutil.which(CHROMIUM)):
        missing_service(f"Chromium not found at {CHROMIUM} (apt-get install chromium)")
    try:
        import playwright  # noqa: F401
    except ImportError:
        missing_service("playwright is not installed")
    return CHROMIUM
