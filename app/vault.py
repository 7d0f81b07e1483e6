"""PIN (and on phones the keystore) -> key: the wrapped data key, attempt limits and wipe.

A new PIN is 6-12 ASCII digits, not all one digit nor a straight run (123456, 987654,
890123); unlock checks only the format, so tighter rules never lock anyone out. After the
k-th consecutive wrong PIN the next attempt waits ``DELAYS[k-1]`` seconds (the last entry
repeats); the ``max_attempts``-th wipes the directory. Each attempt is counted before the
slow derivation and refunded when the PIN is right, so killing the app mid-attempt spends it.

Version 1 (no keystore: web mode for development, and phones until their first unlock with
this version); ``vault.json`` holds the wrapped key and the wrong-PIN counter and delays::

    kek = scrypt(PIN, salt, n, r, p)
    wrapped = AES-256-GCM(kek, data key, aad "liaison-vault:v1:data-key:scrypt:n:r:p")

Version 2: the phone's keystore (``app.keystore``) holds a random 32-byte device secret and
the *guard* (the vault's generation and the wrong-PIN counter and delays)::

    kek = HKDF-SHA256(scrypt(PIN, salt, n, r, p) + secret, salt, "liaison-vault:v2:kek")
    wrapped = AES-256-GCM(kek, data key, aad "liaison-vault:v2:data-key:scrypt:n:r:p")
    mac = HMAC-SHA256(HKDF-SHA256(secret, "liaison-vault:v2:mac"), the file's other fields)

Copied files alone are useless: every PIN guess needs the secret, which never leaves the
phone, and copying the files back resets no counter. The generation goes up, in the file
and then in the guard, at setup, each unlock, each lock, a PIN change and an erase; the file
must match the guard (or be one ahead: a crash between the two writes), so a data directory
rolled back to an older copy is refused before any PIN is tried. At lock the file also
records a digest of the ``sealed`` files (the store's journal): a journal changed while
locked is refused too; after a crash (no lock) it cannot be checked. A version 1 file is
accepted only while the guard's generation is 0 (no version 2 file was ever committed
here) and is upgraded, keeping the data key, at its next successful unlock: the secret
first, then the new file by rename (the switch), then the guard. Erasing deletes the secret
first (crypto-erase), raises the guard's generation, then deletes the files. File formats:
``app.vaultfile``.
"""

from __future__ import annotations

import contextlib
import hmac
import logging
import os
import shutil
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from app import filesafe, vaultfile
from app.errors import (
    InvalidPin,
    RetryLater,
    VaultError,
    VaultLocked,
    VaultWiped,
    WrongPin,
)
from app.keystore import GUARD, SECRET, Keystore, KeystoreUnavailable, NoKeystore
from app.vaultfile import CLEAN, COUNTERS, FILENAME, V1, V2

__all__ = [
    "DELAYS",
    "FILENAME",
    "MAX_N",
    "MIN_N",
    "ScryptParams",
    "Vault",
    "VaultForeign",
    "VaultRolledBack",
    "VaultStatus",
    "calibrate",
    "check_new_pin",
    "delay_after",
    "wrapping_key",
]

DELAYS: tuple[float, ...] = (0, 0, 0, 30, 60, 300, 900, 3600)
MIN_N, MAX_N = 2**14, 2**17  # calibration bounds: 16 MiB .. 128 MiB of memory at r=8
_WIPED = "too many wrong PINs; the local data was erased"
log = logging.getLogger(__name__)

State = dict[str, Any]


class VaultRolledBack(VaultError):
    """The data directory is an older copy than the one last saved; it was not opened."""


class VaultForeign(VaultError):
    """The vault file was not saved with this phone's keystore secret; it was not opened."""


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


def wrapping_key(pin_key: bytes, secret: bytes | None, salt: bytes) -> bytes:
    """The key that wraps the data key: the PIN's scrypt output, with the secret if any."""
    if secret is None:
        return pin_key
    return vaultfile.hkdf(pin_key + secret, salt, "liaison-vault:v2:kek")


def _aad(version: int, params: ScryptParams) -> bytes:
    return f"liaison-vault:v{version}:data-key:scrypt:{params.n}:{params.r}:{params.p}".encode()


def _params(state: State) -> ScryptParams:
    return ScryptParams(state["n"], state["r"], state["p"])


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
    """The PIN lock of one data directory; holds the data key while unlocked.

    ``keystore``: the phone's (version 2 files) or ``NoKeystore`` (version 1, PIN only).
    ``sealed``: files under the directory whose content is recorded at lock and checked at
    the next unlock (paths relative to the directory). The slow calls (setup, unlock,
    change_pin) belong in a worker thread; status, lock and wipe may run on the event loop.
    """

    def __init__(
        self,
        directory: str | Path,
        *,
        max_attempts: int = 10,
        now: Callable[[], float] = time.time,
        scrypt_params: ScryptParams | None = None,
        on_wipe: Callable[[], None] | None = None,
        keystore: Keystore | None = None,
        sealed: Sequence[str] = (),
    ) -> None:
        if max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        self.directory = Path(directory)
        self.path = self.directory / FILENAME
        self.max_attempts = max_attempts
        self.keystore: Keystore = keystore if keystore is not None else NoKeystore()
        self._now, self._params, self._on_wipe = now, scrypt_params, on_wipe
        self._sealed = tuple(sealed)
        self._key: bytearray | None = None
        self._session: State | None = None  # the version 2 state this unlock committed
        self._bound = False  # the vault file last read or written is version 2
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
    def bound(self) -> bool:
        """True when the vault file last read or written needs the keystore's secret too."""
        return self._bound

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
            params = self._params or calibrate()
            session = None
            if self.keystore.available:
                generation = self._guard_or_reset()["generation"]
                secret = os.urandom(32)
                self.keystore.set(SECRET, secret)  # no vault file refers to another one
                session = self._commit(
                    _wrap_bound(key, pin, params, generation + 1, secret), secret
                )
            else:
                self._write(_wrap(key, pin, params))
            self._hold(key, session)
            return key

    def unlock(self, pin: str) -> bytes:
        """Unwrap the data key with ``pin``, counting wrong PINs; return the key."""
        _check_format(pin)
        with self._mutex:
            key, state, pin_key = self._attempt(pin)
            session = None
            if state["version"] == V2:  # a new generation: copies taken before are older
                session = self._commit(
                    state | {"generation": state["generation"] + 1, "seal": None}
                )
            elif self.keystore.available:
                session = self._upgrade(key, state, pin_key)
            else:
                self._write(state | CLEAN)
            self._hold(key, session)
            return key

    def change_pin(self, old_pin: str, new_pin: str) -> None:
        """Re-wrap the same data key under ``new_pin`` with a new salt (a wrong old PIN counts)."""
        _check_format(old_pin)
        check_new_pin(new_pin)
        with self._mutex:
            key, state, _ = self._attempt(old_pin)
            params = self._params or _params(state)
            if not self.keystore.available:
                self._write(_wrap(key, new_pin, params))
                return
            if state["version"] == V2:  # the same secret: the file in place still needs it
                generation, secret = state["generation"], self.keystore.get(SECRET)
            else:  # a version 1 file does not need the secret: this upgrades it
                generation, secret = 0, os.urandom(32)
                self.keystore.set(SECRET, secret)
            if secret is None:
                raise VaultForeign("this phone's secure keystore holds no key for Liaison")
            session = self._commit(
                _wrap_bound(key, new_pin, params, generation + 1, secret), secret
            )
            if self._key is not None:
                self._session = session

    def lock(self) -> None:
        """Zero the in-memory data key and forget it; a bound vault records the lock.

        Recording it (a new generation, and the digest of the sealed files, which the
        caller has closed) makes any copy taken while unlocked an older copy.
        """
        session = self._session
        self._forget()
        if session is None:
            return
        try:
            seal = vaultfile.digest(self.directory, self._sealed)
            self._commit(session | {"generation": session["generation"] + 1, "seal": seal})
        except (OSError, VaultError) as exc:  # the next unlock still opens: unsealed
            log.warning("vault: the lock was not recorded (%s)", type(exc).__name__)

    def status(self) -> VaultStatus:
        """Set up, unlocked, attempts left and seconds until the next attempt is allowed."""
        if not self.is_set_up:
            return VaultStatus(False, False, self.max_attempts, 0.0, self.max_attempts)
        state = self._read()
        counters = self._counters(state, self._guard() if self.keystore.available else None)
        left = max(0, self.max_attempts - counters["failures"])
        return VaultStatus(
            True, self.is_unlocked, left, self._retry_after(counters)[0], self.max_attempts
        )

    def wipe(self) -> None:
        """Erase the keystore's secret first, then the vault file, then everything else."""
        self._forget()
        if self.keystore.available:
            try:
                guard = self._guard_or_reset()
                self.keystore.delete(SECRET)
                # Above any file's generation (a file may be one ahead of the guard), and
                # above 0: a version 1 copy is refused from now on.
                self.keystore.set(GUARD, vaultfile.encode_guard(guard["generation"] + 2, CLEAN))
            except KeystoreUnavailable as exc:  # the files go anyway
                log.warning("vault: the keystore was not erased (%s)", type(exc).__name__)
        if self.directory.is_dir():
            self.path.unlink(missing_ok=True)
            filesafe.fsync_dir(self.directory)
            for entry in self.directory.iterdir():
                if entry.is_dir() and not entry.is_symlink():
                    shutil.rmtree(entry)
                else:
                    entry.unlink(missing_ok=True)
            filesafe.fsync_dir(self.directory)
        self._bound = False
        if self._on_wipe is not None:
            self._on_wipe()

    # -- one attempt ------------------------------------------------------------------

    def _attempt(self, pin: str) -> tuple[bytes, State, bytes]:
        state = self._read()
        guard = self._check(state)
        counters = self._counters(state, guard)
        if counters["failures"] >= self.max_attempts:  # the app died during the last attempt
            self.wipe()
            raise VaultWiped(_WIPED)
        wait, restarted = self._retry_after(counters)
        if restarted is not None:  # the clock went back: keep the restarted delay
            self._save_counters(state, restarted)
        if wait > 0:
            raise RetryLater(wait, self.max_attempts - counters["failures"])
        now, failures = self._now(), counters["failures"] + 1
        self._save_counters(
            state,
            {
                "failures": failures,
                "last_failure_at": now,
                "next_attempt_at": now + delay_after(failures),
            },
        )
        params = _params(state)
        secret = self.keystore.get(SECRET) if state["version"] == V2 else None
        try:
            pin_key = _derive(pin, state["salt"], params)
            kek = wrapping_key(pin_key, secret, state["salt"])
            key = AESGCM(kek).decrypt(
                state["nonce"], state["wrapped"], _aad(state["version"], params)
            )
        except InvalidTag:
            if failures >= self.max_attempts:
                self.wipe()
                raise VaultWiped(_WIPED) from None
            raise WrongPin(self.max_attempts - failures, delay_after(failures)) from None
        return key, state, pin_key

    def _check(self, state: State) -> State | None:
        """The guard for this file (None without a keystore); raises unless the file is
        the one this phone last saved."""
        if not self.keystore.available:
            if state["version"] == V2:
                raise VaultForeign(
                    "this data is locked by a phone's secure keystore and cannot be opened here"
                )
            return None
        guard = self._guard()
        if state["version"] == V1:
            if guard["generation"]:
                raise VaultRolledBack(
                    "these files are an older copy, from before this "
                    "phone's keystore protected them"
                )
            return guard
        secret = self.keystore.get(SECRET)
        if secret is None or not hmac.compare_digest(vaultfile.mac(secret, state), state["mac"]):
            raise VaultForeign(
                "these files were not saved with this phone's secure keystore "
                "(copied from elsewhere, or restored after an erase)"
            )
        if state["generation"] not in (guard["generation"], guard["generation"] + 1):
            raise VaultRolledBack("these files are an older copy than the last ones saved")
        try:
            digest = vaultfile.digest(self.directory, self._sealed)
        except OSError:
            raise VaultError("the records cannot be read to check them") from None
        if state["seal"] is not None and state["seal"] != digest:
            raise VaultRolledBack(
                "the records are not the ones saved when Liaison last "
                "locked (an older copy, or changed outside Liaison)"
            )
        return guard

    def _counters(self, state: State, guard: State | None) -> dict[str, Any]:
        if guard is None or ("failures" not in guard and state["version"] == V1):
            return {k: state[k] for k in COUNTERS}  # a phone's update keeps its count
        return {k: guard.get(k, CLEAN[k]) for k in COUNTERS}

    def _save_counters(self, state: State, counters: dict[str, Any]) -> None:
        if not self.keystore.available:
            self._write(state | counters)
            return
        generation = state["generation"] if state["version"] == V2 else 0
        self.keystore.set(GUARD, vaultfile.encode_guard(generation, counters))

    def _retry_after(self, counters: dict[str, Any]) -> tuple[float, dict[str, Any] | None]:
        """Seconds to wait, and the counters to save when the clock went back (else None)."""
        now: float = self._now()
        if not counters["failures"]:
            return 0.0, None
        if now < counters["last_failure_at"]:
            # The clock went back: restart the full delay from now rather than drop it.
            delay = delay_after(counters["failures"])
            restarted = counters | {"last_failure_at": now, "next_attempt_at": now + delay}
            return delay, restarted if delay else None
        return max(0.0, float(counters["next_attempt_at"]) - now), None

    # -- version 2 --------------------------------------------------------------------

    def _upgrade(self, key: bytes, state: State, pin_key: bytes) -> State | None:
        """Re-wrap a version 1 key with the PIN and a new secret (no second scrypt run)."""
        try:
            secret = os.urandom(32)
            self.keystore.set(SECRET, secret)  # unused until the rename below
            nonce, params = os.urandom(12), _params(state)
            wrapped = AESGCM(wrapping_key(pin_key, secret, state["salt"])).encrypt(
                nonce, key, _aad(V2, params)
            )
            return self._commit(
                {
                    "version": V2,
                    "n": params.n,
                    "r": params.r,
                    "p": params.p,
                    "salt": state["salt"],
                    "nonce": nonce,
                    "wrapped": wrapped,
                    "generation": self._guard()["generation"] + 1,
                    "seal": None,
                },
                secret,
            )
        except (OSError, KeystoreUnavailable) as exc:  # still version 1: try at next unlock
            log.warning("vault: upgrade to the keystore failed (%s)", type(exc).__name__)
        with contextlib.suppress(OSError, KeystoreUnavailable):
            self._write(state | CLEAN)
            self.keystore.set(GUARD, vaultfile.encode_guard(0, CLEAN))
        return None

    def _commit(self, state: State, secret: bytes | None = None) -> State:
        """Write a version 2 file, then its generation (and a clean counter) to the guard."""
        secret = secret or self.keystore.get(SECRET)
        if secret is None:
            raise VaultForeign("this phone's secure keystore holds no key for Liaison")
        state = state | {"mac": vaultfile.mac(secret, state)}
        self._write(state)
        self.keystore.set(GUARD, vaultfile.encode_guard(state["generation"], CLEAN))
        return state

    def _guard(self) -> State:
        return vaultfile.decode_guard(self.keystore.get(GUARD))

    def _guard_or_reset(self) -> State:
        try:
            return self._guard()
        except KeystoreUnavailable:
            raise
        except VaultError:  # nothing to keep from a damaged entry but a higher generation
            return {"generation": 1}

    # -- keys and files ---------------------------------------------------------------

    def _hold(self, key: bytes, session: State | None) -> None:
        self._forget()
        self._key, self._session = bytearray(key), session

    def _forget(self) -> None:
        if self._key is not None:
            self._key[:] = bytes(len(self._key))
        self._key = None
        self._session = None

    def _read(self) -> State:
        state = vaultfile.read(self.path)
        self._bound = state["version"] == V2
        return state

    def _write(self, state: State) -> None:
        vaultfile.write(self.path, state)
        self._bound = state["version"] == V2


def _wrap(key: bytes, pin: str, params: ScryptParams) -> State:
    salt, nonce = os.urandom(16), os.urandom(12)
    wrapped = AESGCM(_derive(pin, salt, params)).encrypt(nonce, key, _aad(V1, params))
    return {
        "version": V1,
        "n": params.n,
        "r": params.r,
        "p": params.p,
        "salt": salt,
        "nonce": nonce,
        "wrapped": wrapped,
    } | CLEAN


def _wrap_bound(
    key: bytes, pin: str, params: ScryptParams, generation: int, secret: bytes
) -> State:
    salt, nonce = os.urandom(16), os.urandom(12)
    kek = wrapping_key(_derive(pin, salt, params), secret, salt)
    return {
        "version": V2,
        "n": params.n,
        "r": params.r,
        "p": params.p,
        "salt": salt,
        "nonce": nonce,
        "wrapped": AESGCM(kek).encrypt(nonce, key, _aad(V2, params)),
        "generation": generation,
        "seal": None,
    }
