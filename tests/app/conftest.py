"""Fixtures of the app's tests (files with their own ``app`` fixture override this one)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from app.state import AppState
from tests.app.views_support import unlocked_app


@pytest.fixture
def app(tmp_path: Path) -> Iterator[AppState]:
    """An unlocked app on a fresh store, no server: the casework screens and state."""
    app = unlocked_app(tmp_path)
    yield app
    app.store.close()
