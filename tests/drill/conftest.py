"""The drills' database: a fresh SQLite file or a fresh PostgreSQL database per test."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def backend_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The URL of an empty database (the drill migrates and seeds it)."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/liaison.db"
    return str(request.getfixturevalue("postgres_url"))
