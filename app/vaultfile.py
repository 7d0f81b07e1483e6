"""The vault's records: ``vault.json`` on disk, the guard in the keystore, the seal digest.

What the fields mean is in ``app.vault``; here are their shapes, checks and crash-safe
writing. A state is the file's fields with the binary ones as bytes::

    version 1: n r p salt(16) nonce(12) wrapped(48) failures last_failure_at next_attempt_at
    version 2: n r p salt nonce wrapped generation seal(hex SHA-256 or null) mac(32)
    file:      {"version", "kdf": "scrypt", "cipher": "AES-256-GCM", ["binding": "keystore"],
                the fields, binary ones in base64}
    guard:     JSON {"generation", "failures", "last_failure_at", "next_attempt_at"}

A file that does not match is reported as damaged and never rewritten.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from app.errors import VaultError, VaultNotSetUp
from app.filesafe import write_atomic

FILENAME = "vault.json"
V1, V2 = 1, 2
BLOBS = {"salt": 16, "nonce": 12, "wrapped": 48}
COUNTERS = ("failures", "last_failure_at", "next_attempt_at")
CLEAN = {"failures": 0, "last_failure_at": 0.0, "next_attempt_at": 0.0}
DAMAGED = "the vault file is damaged"
_LOAD_MAX_N = 2**20  # a tampered file must not make us allocate gigabytes

State = dict[str, Any]


def hkdf(material: bytes, salt: bytes | None, info: str) -> bytes:
    """A 32-byte HKDF-SHA256 key for one purpose."""
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info.encode()).derive(
        material
    )


def read(path: Path) -> State:
    """The vault file's fields, checked; never repairs or rewrites a damaged file."""
    try:
        doc = json.loads(path.read_bytes())
        version = doc["version"]
        if version == V1:
            state = {k: doc[k] for k in ("n", "r", "p", *COUNTERS)}
        elif version == V2:
            state = {k: doc[k] for k in ("n", "r", "p", "generation", "seal")}
            state["mac"] = base64.b64decode(doc["mac"], validate=True)
        else:
            raise ValueError
        state |= {k: base64.b64decode(doc[k], validate=True) for k in BLOBS}
    except FileNotFoundError:
        raise VaultNotSetUp("no PIN has been chosen yet") from None
    except (OSError, ValueError, KeyError, TypeError):  # binascii.Error is a ValueError
        raise VaultError(DAMAGED) from None
    n = state["n"]
    ints = ("n", "r", "p", "failures" if version == V1 else "generation")
    if (
        any(type(state[k]) is not int for k in ints)
        or not (2 <= n <= _LOAD_MAX_N and n & (n - 1) == 0)
        or not (1 <= state["r"] <= 32 and 1 <= state["p"] <= 16 and state[ints[3]] >= 0)
        or any(len(state[k]) != size for k, size in BLOBS.items())
        or not (_valid_v1(state) if version == V1 else _valid_v2(state))
    ):
        raise VaultError(DAMAGED)
    return {"version": version} | state


def write(path: Path, state: State) -> None:
    """Replace the vault file crash-safely (``filesafe.write_atomic``)."""
    write_atomic(path, [json.dumps(document(state), indent=1).encode()])


def document(state: State) -> dict[str, Any]:
    """The JSON document of a state (bytes as base64), in the file's field order."""
    doc: dict[str, Any] = {"version": state["version"], "kdf": "scrypt", "cipher": "AES-256-GCM"}
    if state["version"] == V2:
        doc["binding"] = "keystore"
    doc |= {
        k: base64.b64encode(v).decode() if isinstance(v, bytes) else v
        for k, v in state.items()
        if k != "version"
    }
    return doc


def mac(secret: bytes, state: State) -> bytes:
    """HMAC-SHA256 of every field but the MAC, under a key derived from the secret."""
    body = json.dumps(
        {k: v for k, v in document(state).items() if k != "mac"},
        sort_keys=True,
        separators=(",", ":"),
    ).encode()
    return hmac.new(hkdf(secret, None, "liaison-vault:v2:mac"), body, hashlib.sha256).digest()


def encode_guard(generation: int, counters: dict[str, Any]) -> bytes:
    """The guard entry: the generation and the wrong-PIN counter and delays."""
    return json.dumps({"generation": generation} | {k: counters[k] for k in COUNTERS}).encode()


def decode_guard(raw: bytes | None) -> dict[str, Any]:
    """The guard's fields ({"generation": 0} when there is none yet); raises when damaged."""
    if raw is None:
        return {"generation": 0}
    try:
        guard = json.loads(raw)
        if not (
            type(guard.get("generation")) is int
            and guard["generation"] >= 0
            and type(guard.get("failures")) is int
            and guard["failures"] >= 0
            and all(
                type(guard.get(k)) in (int, float) and math.isfinite(guard[k]) for k in COUNTERS[1:]
            )
        ):
            raise ValueError
    except (ValueError, AttributeError):
        raise VaultError("the keystore's vault entry is damaged") from None
    return dict(guard)


def digest(directory: Path, names: Sequence[str]) -> str | None:
    """SHA-256 over the named files, present or not (None when no file is named)."""
    if not names:
        return None
    sha = hashlib.sha256()
    for name in names:
        sha.update(name.encode() + b"\0")
        try:
            with open(directory / name, "rb") as file:
                sha.update(b"present\0")
                while chunk := file.read(1 << 20):
                    sha.update(chunk)
        except FileNotFoundError:
            sha.update(b"absent\0")
    return sha.hexdigest()


def _valid_v1(state: State) -> bool:
    return all(
        type(state[k]) in (int, float) and math.isfinite(state[k])
        for k in ("last_failure_at", "next_attempt_at")
    )


def _valid_v2(state: State) -> bool:
    seal = state["seal"]
    return len(state["mac"]) == 32 and (
        seal is None
        or (
            isinstance(seal, str) and len(seal) == 64 and all(c in "0123456789abcdef" for c in seal)
        )
    )
