"""PIN -> key: the data key wrapped by a scrypt-derived key, attempt limits and wipe.

Only ``vault.json`` touches the disk: the data key wrapped with AES-256-GCM, salt, nonce,
scrypt parameters and the wrong-PIN bookkeeping. A new PIN is 6-12 ASCII digits, not all
one digit nor a straight run (123456, 987654, 890123); unlock checks only the format, so
tighter rules never lock anyone out. After the k-th consecutive wrong PIN the next attempt
waits ``DELAYS[k-1]`` seconds (the last entry repeats); the ``max_attempts``-th wipes the
directory. Each attempt is counted on disk before the slow derivation and refunded when
the PIN is right, so killing the app mid-attempt spends it.
"""

from __future__ import annotations

import base64
import json
import math
import os
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from app.errors import (
    InvalidPin,
    RetryLater,
    VaultError,
    VaultLocked,
    VaultNotSetUp,
    VaultWiped,
    WrongPin,
)

FILENAME = "vault.json"
VERSION = 1
DELAYS: tuple[float, ...] = (0, 0, 0, 30, 60, 300, 900, 3600)
MIN_N, MAX_N = 2**14, 2**17  # calibration bounds: 16 MiB .. 128 MiB of memory at r=8
_LOAD_MAX_N = 2**20  # a tampered file must not make us allocate gigabytes
_BLOBS = {"salt": 16, "nonce": 12, "wrapped": 48}
_CLEAN = {"failures": 0, "last_failure_at": 0.0, "next_attempt_at": 0.0}
_DAMAGED = "the vault file is damaged"
_WIPED = "too many wrong PINs; the local data was erased"


@dataclass(frozen=True)
class ScryptParams:
    """The non-secret scrypt cost parameters stored beside the salt."""

    n: int
    r: int = 8
    p: int = 1


@dataclass(frozen=True)
class VaultStatus:
    """What the lock screen needs to know; holds no secret."""

    is_set_up: bool
    is_unlocked: bool
    attempts_left: int
    retry_after: float
    max_attempts: int


def delay_after(failures: int) -> float:
    """Seconds to wait before the next attempt after ``failures`` consecutive wrong PINs."""
    return 0.0 if failures <= 0 else float(DELAYS[min(failures, len(DELAYS)) - 1])


def check_new_pin(pin: str) -> None:
    """Raise InvalidPin unless ``pin`` is acceptable as a new PIN."""
    _check_format(pin)
    if {(int(b) - int(a)) % 10 for a, b in zip(pin, pin[1:], strict=False)} in ({0}, {1}, {9}):
        raise InvalidPin("the PIN is too easy to guess")


def _check_format(pin: str) -> None:
    if not (isinstance(pin, str) and pin.isascii() and pin.isdigit() and 6 <= len(pin) <= 12):
        raise InvalidPin("the PIN must be 6 to 12 digits")


def _derive(pin: str, salt: bytes, params: ScryptParams) -> bytes:
    kdf = Scrypt(salt=salt, length=32, n=params.n, r=params.r, p=params.p)
    return kdf.derive(pin.encode("ascii"))


def _aad(params: ScryptParams) -> bytes:
    return f"liaison-vault:v{VERSION}:data-key:scrypt:{params.n}:{params.r}:{params.p}".encode()


def calibrate(target_seconds: tuple[float, float] = (0.25, 0.5)) -> ScryptParams:
    """Pick a power-of-two n (r=8, p=1) so one derivation takes about ``target_seconds``."""
    low, high = target_seconds
    best = n = MIN_N
    while True:
        start = time.perf_counter()
        _derive("000000", os.urandom(16), ScryptParams(n))
        elapsed = time.perf_counter() - start
        if elapsed > high:
            break  # keep the last n that fit (MIN_N is the floor)
        best = n
        if elapsed >= low or n >= MAX_N:
            break
        n *= 2
    return ScryptParams(best)


class Vault:
    """The PIN lock of one data directory; holds the data key while unlocked."""

    def __init__(self, directory: str | Path, *, max_attempts: int = 10,
                 now: Callable[[], float] = time.time, scrypt_params: ScryptParams | None = None,
                 on_wipe: Callable[[], None] | None = None) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.directory = Path(directory)
        self.path = self.directory / FILENAME
        self.max_attempts = max_attempts
        self._now, self._params, self._on_wipe = now, scrypt_params, on_wipe
        self._key: bytearray | None = None
        self._mutex = threading.Lock()

    def __repr__(self) -> str:
        return f"Vault({str(self.directory)!r}, unlocked={self.is_unlocked})"

    @property
    def is_set_up(self) -> bool:
        """True once a PIN has been chosen (the vault file exists)."""
        return self.path.exists()

    @property
    def is_unlocked(self) -> bool:
        """True while the data key is in memory."""
        return self._key is not None

    @property
    def key(self) -> bytes:
        """The 32-byte data key; raises VaultLocked when locked."""
        if self._key is None:
            raise VaultLocked("the vault is locked")
        return bytes(self._key)

    def setup(self, pin: str) -> bytes:
        """Choose the first PIN: make, wrap and store a new data key; stay unlocked."""
        check_new_pin(pin)
        with self._mutex:
            if self.is_set_up:
                raise VaultError("the vault is already set up")
            key = os.urandom(32)
            self.directory.mkdir(parents=True, exist_ok=True)
            self._write(self._wrap(key, pin, self._params or calibrate()))
            self._hold(key)
            return key

    def unlock(self, pin: str) -> bytes:
        """Unwrap the data key with ``pin``, counting wrong PINs; return the key."""
        _check_format(pin)
        with self._mutex:
            key, _ = self._attempt(pin)
            self._hold(key)
            return key

    def change_pin(self, old_pin: str, new_pin: str) -> None:
        """Re-wrap the same data key under ``new_pin`` with a new salt (a wrong old PIN counts)."""
        _check_format(old_pin)
        check_new_pin(new_pin)
        with self._mutex:
            key, state = self._attempt(old_pin)
            params = self._params or ScryptParams(state["n"], state["r"], state["p"])
            self._write(self._wrap(key, new_pin, params))

    def lock(self) -> None:
        """Zero the in-memory data key and forget it."""
        if self._key is not None:
            self._key[:] = bytes(len(self._key))
        self._key = None

    def status(self) -> VaultStatus:
        """Set up, unlocked, attempts left and seconds until the next attempt is allowed."""
        if not self.is_set_up:
            return VaultStatus(False, False, self.max_attempts, 0.0, self.max_attempts)
        state = self._read()
        left = max(0, self.max_attempts - state["failures"])
        return VaultStatus(True, self.is_unlocked, left, self._retry_after(state),
                           self.max_attempts)

    def wipe(self) -> None:
        """Erase the vault file first (the data key with it), then everything in the directory."""
        self.lock()
        if self.directory.is_dir():
            self.path.unlink(missing_ok=True)
            self._sync_directory()
            for entry in self.directory.iterdir():
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
                else:
                    entry.unlink(missing_ok=True)
            self._sync_directory()
        if self._on_wipe is not None:
            self._on_wipe()

    def _attempt(self, pin: str) -> tuple[bytes, dict[str, Any]]:
        state = self._read()
        if state["failures"] >= self.max_attempts:  # the app died during the last attempt
            self.wipe()
            raise VaultWiped(_WIPED)
        wait = self._retry_after(state)
        if wait > 0:
            raise RetryLater(wait, self.max_attempts - state["failures"])
        now, failures = self._now(), state["failures"] + 1
        self._write(state | {"failures": failures, "last_failure_at": now,
                             "next_attempt_at": now + delay_after(failures)})
        params = ScryptParams(state["n"], state["r"], state["p"])
        try:
            kek = _derive(pin, state["salt"], params)
            key = AESGCM(kek).decrypt(state["nonce"], state["wrapped"], _aad(params))
        except InvalidTag:
            if failures >= self.max_attempts:
                self.wipe()
                raise VaultWiped(_WIPED) from None
            raise WrongPin(self.max_attempts - failures, delay_after(failures)) from None
        self._write(state | _CLEAN)
        return key, state

    def _retry_after(self, state: dict[str, Any]) -> float:
        now: float = self._now()
        if state["failures"] and now < state["last_failure_at"]:
            # The clock went back: restart the full delay from now rather than drop it.
            delay = delay_after(state["failures"])
            if delay:
                self._write(state | {"last_failure_at": now, "next_attempt_at": now + delay})
            return delay
        return max(0.0, float(state["next_attempt_at"]) - now) if state["failures"] else 0.0

    def _hold(self, key: bytes) -> None:
        self.lock()
        self._key = bytearray(key)

    @staticmethod
    def _wrap(key: bytes, pin: str, params: ScryptParams) -> dict[str, Any]:
        salt, nonce = os.urandom(16), os.urandom(12)
        wrapped = AESGCM(_derive(pin, salt, params)).encrypt(nonce, key, _aad(params))
        return {"n": params.n, "r": params.r, "p": params.p, "salt": salt, "nonce": nonce,
                "wrapped": wrapped} | _CLEAN

    def _read(self) -> dict[str, Any]:
        """The vault file's fields, checked; never repairs or rewrites a damaged file."""
        try:
            doc = json.loads(self.path.read_bytes())
            if doc["version"] != VERSION:
                raise ValueError
            state = {k: doc[k] for k in ("n", "r", "p", "failures")}
            state |= {k: doc[k] for k in ("last_failure_at", "next_attempt_at")}
            state |= {k: base64.b64decode(doc[k], validate=True) for k in _BLOBS}
        except FileNotFoundError:
            raise VaultNotSetUp("no PIN has been chosen yet") from None
        except (OSError, ValueError, KeyError, TypeError):  # binascii.Error is a ValueError
            raise VaultError(_DAMAGED) from None
        n = state["n"]
        if (
            any(type(state[k]) is not int for k in ("n", "r", "p", "failures"))
            or not (2 <= n <= _LOAD_MAX_N and n & (n - 1) == 0)
            or not (1 <= state["r"] <= 32 and 1 <= state["p"] <= 16 and state["failures"] >= 0)
            or not all(type(state[k]) in (int, float) and math.isfinite(state[k])
                       for k in ("last_failure_at", "next_attempt_at"))
            or any(len(state[k]) != size for k, size in _BLOBS.items())
        ):
            raise VaultError(_DAMAGED)
        return state

    def _write(self, state: dict[str, Any]) -> None:
        """Replace the vault file crash-safely: temp file, fsync, rename, fsync directory."""
        doc = {"version": VERSION, "kdf": "scrypt", "cipher": "AES-256-GCM"}
        doc |= {k: base64.b64encode(v).decode() if isinstance(v, bytes) else v
                for k, v in state.items()}
        tmp = self.directory / (FILENAME + ".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as file:
            file.write(json.dumps(doc, indent=1).encode())
            file.flush()
            os.fsync(file.fileno())
        os.replace(tmp, self.path)
        self._sync_directory()

    def _sync_directory(self) -> None:
        if os.name == "nt":  # Windows cannot open a directory to fsync it
            return
        fd = os.open(self.directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
