"""Server settings: a small frozen value built from the environment (``LIAISON_*``)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

from starlette.config import Config

DEFAULT_DATABASE_URL = "sqlite:///var/liaison.db"
MIB = 1024 * 1024
AUTOMATIC = {"worker_threads"}  # settings where 0 means "chosen for the database"


@dataclass(frozen=True)
class Settings:
    """Limits, expiries and costs; every one can be set as ``LIAISON_<NAME>``."""

    token_idle_seconds: int = 14 * 24 * 3600
    token_absolute_seconds: int = 90 * 24 * 3600
    body_limit: int = 8 * MIB
    attachment_limit: int = 10 * MIB
    push_limit: int = 500
    pull_limit: int = 1000
    clock_skew_seconds: int = 300
    throttle_window_seconds: int = 900
    throttle_user_failures: int = 5
    throttle_address_failures: int = 30
    argon2_memory_kib: int = 64 * 1024
    argon2_iterations: int = 3
    argon2_lanes: int = 4
    # Threads that run database work at once; 0: 2 on SQLite, 8 on PostgreSQL (see app.py).
    worker_threads: int = 0
    # SQLite's PRAGMA synchronous in WAL mode: 1 NORMAL, 2 FULL, 3 EXTRA (see db.py).
    # FULL by default: an acknowledged push is deleted from the phone's outbox, so it must
    # survive a power cut on the server too ("no edit may ever be lost").
    sqlite_synchronous: int = 2
    # Attachment upload budgets (bytes a day) and how long unreferenced blobs are kept.
    attachment_device_mib_per_day: int = 256
    attachment_user_mib_per_day: int = 512
    attachment_grace_hours: int = 7 * 24
    # A database that stops answering: its calls give up after db_timeout_seconds, and a
    # request's database work after request_deadline_seconds (503 either way).
    db_timeout_seconds: int = 10
    request_deadline_seconds: int = 30
    # Slow clients: a request's head must arrive within this many seconds, and a body may
    # pause at most this long between chunks (server.serving, server.bodies).
    header_timeout_seconds: int = 15
    body_idle_seconds: int = 30

    @classmethod
    def from_environ(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """Read every setting from ``environ`` (default: the process environment)."""
        config = Config(environ=os.environ if environ is None else environ)
        values: dict[str, Any] = {
            f.name: config(f"LIAISON_{f.name.upper()}", cast=int, default=f.default)
            for f in fields(cls)
        }
        settings = cls(**values)
        for name, value in values.items():
            if value < (0 if name in AUTOMATIC else 1):
                raise ValueError(f"LIAISON_{name.upper()} must be positive")
        if settings.sqlite_synchronous > 3:
            raise ValueError("LIAISON_SQLITE_SYNCHRONOUS must be 1 (NORMAL), 2 (FULL) or 3")
        return settings


def database_url(environ: Mapping[str, str] | None = None) -> str:
    """The database URL from ``LIAISON_DATABASE_URL``, else SQLite under ./var/."""
    env = os.environ if environ is None else environ
    return env.get("LIAISON_DATABASE_URL") or DEFAULT_DATABASE_URL
