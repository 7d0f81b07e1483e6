"""Argon2id password hashes in PHC form (parameters stored with the hash)."""

from __future__ import annotations

import functools
import os

from cryptography.exceptions import InvalidKey
from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

from server.settings import Settings

MIN_LENGTH = 8
MAX_LENGTH = 200


def hash_password(password: str, settings: Settings) -> str:
    """A new salted Argon2id hash with the configured cost."""
    kdf = Argon2id(
        salt=os.urandom(16),
        length=32,
        iterations=settings.argon2_iterations,
        lanes=settings.argon2_lanes,
        memory_cost=max(settings.argon2_memory_kib, 8 * settings.argon2_lanes),
    )
    return kdf.derive_phc_encoded(password.encode())


def verify_password(password: str, encoded: str) -> bool:
    """True when ``password`` matches ``encoded``; False for any mismatch or bad hash."""
    try:
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
