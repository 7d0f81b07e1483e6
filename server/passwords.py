"""Argon2id password hashes in PHC form (parameters stored with the hash).

OpenSSL (under ``cryptography``) runs an Argon2 derivation with ``lanes`` > 1 on a shared
thread pool capped at the number of cores, and each derivation waits for all of its lanes'
threads: two derivations at once can each hold part of the pool and wait for ever, holding
the GIL, so the whole process hangs (and ignores SIGTERM). Every derivation in this process
therefore goes through one gate, one at a time, whatever the lanes of the hash being
verified; a caller that cannot get through within ``GATE_WAIT`` seconds is told to retry.
One derivation at the shipped cost takes 0.1 to 0.3 s here and uses every core anyway.
"""

from __future__ import annotations

import functools
import os
import threading

from cryptography.exceptions import InvalidKey
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

from server.errors import Unavailable
from server.settings import Settings

MIN_LENGTH = 8
MAX_LENGTH = 200
GATE_WAIT = 15.0  # seconds a sign-in waits for the gate before "try again"

_gate = threading.Lock()


class _Gate:
    """Hold the process-wide Argon2 gate, or raise Unavailable after ``GATE_WAIT``."""

    def __enter__(self) -> None:
        if not _gate.acquire(timeout=GATE_WAIT):
            raise Unavailable("too many sign-ins at once; try again in a moment")

    def __exit__(self, *exc: object) -> None:
        _gate.release()


def hash_password(password: str, settings: Settings) -> str:
    """A new salted Argon2id hash with the configured cost."""
    kdf = Argon2id(
        salt=os.urandom(16),
        length=32,
        iterations=settings.argon2_iterations,
        lanes=settings.argon2_lanes,
        memory_cost=max(settings.argon2_memory_kib, 8 * settings.argon2_lanes),
    )
    with _Gate():
        return kdf.derive_phc_encoded(password.encode())


def verify_password(password: str, encoded: str) -> bool:
    """True when ``password`` matches ``encoded``; False for any mismatch or bad hash."""
    try:
        with _Gate():
            Argon2id.verify_phc_encoded(password.encode(), encoded)
    except (InvalidKey, ValueError):
        return False
    return True


@functools.cache
def dummy_hash(settings: Settings) -> str:
    """A hash to verify against for unknown users, so timing does not reveal them."""
    return hash_password("not-a-real-password", settings)


def password_problem(password: str) -> str | None:
    """Why a new password is not acceptable, or None."""
    if not MIN_LENGTH <= len(password) <= MAX_LENGTH:
        return f"must be {MIN_LENGTH} to {MAX_LENGTH} characters"
    return None
