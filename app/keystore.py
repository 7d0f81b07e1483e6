"""The platform keystore as a small port: a few named secrets kept outside the app's files.

``Keystore`` is what ``app.vault`` needs: ``get``/``set``/``delete`` of a few short byte
strings by name, and ``available`` (False: there is no keystore, the PIN alone guards the
data). Three implementations:

- ``FletKeystore``: the phone's keystore through ``flet-secure-storage`` (Android Keystore,
  iOS Keychain: this device only, never synchronized or in a backup). Its Flet service
  methods are async and answer on the page's event loop, while the vault runs its slow
  PIN derivation in a worker thread; so the adapter keeps a copy of the few values it was
  asked for (read once by ``await load()`` when the page starts) and sends every change to
  the phone in order. A change made from a worker thread returns only once the phone
  stored it (the wrong-PIN counter must be saved before the derivation); a change made on
  the event loop itself (locking, erasing) cannot wait there and is sent as soon as the
  running handler returns.
- ``MemoryKeystore``: a dict, for tests (``failing`` makes chosen calls raise).
- ``NoKeystore``: web mode (development): nothing available, the vault works PIN-only.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import logging
import threading
from collections.abc import Coroutine, Iterable
from typing import Any, Protocol

from app.errors import VaultError

log = logging.getLogger(__name__)

SECRET = "device-secret"  # 32 random bytes: half of the key that wraps the data key
GUARD = "vault-guard"  # JSON: the vault's generation and the wrong-PIN counter and delays
NAMES = (SECRET, GUARD)
PREFIX = "liaison."  # the secure storage is the app's, but name our entries plainly
TIMEOUT = 15.0  # seconds to wait for the phone's keystore before giving up


class KeystoreUnavailable(VaultError):
    """The platform keystore did not answer, or failed; nothing was decided about the PIN."""


class Keystore(Protocol):
    """A few named secrets kept by the platform, outside the app's data directory."""

    @property
    def available(self) -> bool:
        """False when there is no keystore (the PIN alone guards the data)."""
        ...

    def get(self, name: str) -> bytes | None:
        """The value stored under ``name``, or None."""
        ...

    def set(self, name: str, value: bytes) -> None:
        """Store ``value`` under ``name`` (durably, before returning, off the event loop)."""
        ...

    def delete(self, name: str) -> None:
        """Remove ``name`` (no error when absent)."""
        ...


class NoKeystore:
    """No platform keystore (a browser session in development): the PIN alone."""

    available = False

    def get(self, name: str) -> bytes | None:
        """Nothing is ever stored."""
        return None

    def set(self, name: str, value: bytes) -> None:
        """Refused: there is nowhere safe to keep it."""
        raise KeystoreUnavailable("this session has no secure keystore")

    def delete(self, name: str) -> None:
        """Nothing to remove."""


class MemoryKeystore:
    """An in-memory keystore for tests; ``failing`` holds ("get"|"set"|"delete", name)
    pairs that raise KeystoreUnavailable (a name of "*" matches every name)."""

    available = True

    def __init__(self, values: dict[str, bytes] | None = None) -> None:
        self.values: dict[str, bytes] = dict(values or {})
        self.failing: set[tuple[str, str]] = set()
        self.calls: list[tuple[str, str]] = []  # (operation, name), in order

    def _call(self, operation: str, name: str) -> None:
        self.calls.append((operation, name))
        if (operation, name) in self.failing or (operation, "*") in self.failing:
            raise KeystoreUnavailable("the keystore failed (test)")

    def get(self, name: str) -> bytes | None:
        """The stored value, or None."""
        self._call("get", name)
        return self.values.get(name)

    def set(self, name: str, value: bytes) -> None:
        """Store a copy of ``value``."""
        self._call("set", name)
        self.values[name] = bytes(value)

    def delete(self, name: str) -> None:
        """Forget ``name``."""
        self._call("delete", name)
        self.values.pop(name, None)


class FletKeystore:
    """The phone's keystore through a ``flet_secure_storage.SecureStorage`` service.

    ``storage`` needs only async ``get(key)``, ``set(key, value)`` and ``remove(key)`` on
    strings; values are kept base64-encoded under ``PREFIX + name``. Create it on the event
    loop that serves the page and ``await load()`` before the vault uses it.
    """

    available = True

    def __init__(
        self,
        storage: Any,
        loop: asyncio.AbstractEventLoop,
        *,
        names: Iterable[str] = NAMES,
        timeout: float = TIMEOUT,
    ) -> None:
        self.storage = storage  # keep it referenced, or Flet unregisters the service
        self._loop, self._names, self._timeout = loop, tuple(names), timeout
        self._values: dict[str, bytes] | None = None  # None until loaded
        self._pending: set[asyncio.Future[None]] = set()
        self._order: asyncio.Lock | None = None  # made on the loop: one write at a time
        self._lock = threading.Lock()  # the values are read from worker threads too

    async def load(self) -> None:
        """Read the named entries from the phone (raises KeystoreUnavailable)."""
        values: dict[str, bytes] = {}
        try:
            for name in self._names:
                text = await asyncio.wait_for(self.storage.get(PREFIX + name), self._timeout)
                if text is not None:
                    values[name] = base64.b64decode(text, validate=True)
        except Exception as exc:  # a timeout, the platform's error, malformed base64
            raise KeystoreUnavailable(
                f"the secure keystore failed ({type(exc).__name__})"
            ) from None
        with self._lock:
            self._values = values

    async def flush(self) -> None:
        """Wait until every change sent so far has been stored (or has failed)."""
        while self._pending:
            await asyncio.gather(*list(self._pending), return_exceptions=True)

    def get(self, name: str) -> bytes | None:
        """The value as last loaded or set."""
        return self._loaded().get(name)

    def set(self, name: str, value: bytes) -> None:
        """Store ``value``: waits for the phone unless called on the event loop."""
        self._change(name, bytes(value))

    def delete(self, name: str) -> None:
        """Remove ``name``: waits for the phone unless called on the event loop."""
        self._change(name, None)

    def _change(self, name: str, value: bytes | None) -> None:
        if name not in self._names:
            raise ValueError(f"not a keystore entry of this app: {name}")
        self._loaded()
        if self._on_loop():
            task = self._loop.create_task(self._store(name, value, waited=False))
            self._pending.add(task)
            task.add_done_callback(self._pending.discard)
            self._remember(name, value)  # what the vault reads next, at once
            return
        self._wait(self._store(name, value, waited=True), self._timeout)

    def _loaded(self) -> dict[str, bytes]:
        """The values; read from the phone again (in a worker thread) if the load at start
        failed, as when the phone did not answer then."""
        with self._lock:
            values = self._values
        if values is None and not self._on_loop():
            with contextlib.suppress(KeystoreUnavailable):  # reported just below
                self._wait(self.load(), self._timeout * (len(self._names) + 1))
            with self._lock:
                values = self._values
        if values is None:
            raise KeystoreUnavailable("the secure keystore did not answer")
        return values

    def _wait(self, work: Coroutine[Any, Any, None], timeout: float) -> None:
        """Run ``work`` on the loop from another thread and wait for it."""
        try:
            future = asyncio.run_coroutine_threadsafe(work, self._loop)
        except RuntimeError:  # the loop is closed: the app is going away
            work.close()
            raise KeystoreUnavailable("the secure keystore is gone") from None
        try:
            future.result(timeout)
        except Exception as exc:  # TimeoutError, or the platform's error
            future.cancel()
            raise KeystoreUnavailable(
                f"the secure keystore failed ({type(exc).__name__})"
            ) from None

    def _remember(self, name: str, value: bytes | None) -> None:
        with self._lock:
            if self._values is not None:
                if value is None:
                    self._values.pop(name, None)
                else:
                    self._values[name] = value

    async def _store(self, name: str, value: bytes | None, *, waited: bool) -> None:
        if self._order is None:
            self._order = asyncio.Lock()
        async with self._order:  # the phone stores the changes in the order they were made
            try:
                if value is None:
                    await self.storage.remove(PREFIX + name)
                else:
                    await self.storage.set(PREFIX + name, base64.b64encode(value).decode())
            except Exception as exc:
                log.warning("keystore: a change was not stored (%s)", type(exc).__name__)
                if waited:  # the worker thread raises KeystoreUnavailable
                    raise
                # Sent from the loop (a lock's new generation, an erase): the vault accepts
                # a file one generation ahead of its guard, and a new setup replaces the
                # secret, so the copy held here stays what was meant.
                return
            self._remember(name, value)  # in the order the phone stored them

    def _on_loop(self) -> bool:
        try:
            return asyncio.get_running_loop() is self._loop
        except RuntimeError:
            return False


async def keystore_for(page: Any) -> Keystore:
    """The keystore for this page, loaded: the phone's on Android and iOS, else none.

    The phone's is a Flet service, so call this while the page is being built. If it
    fails to answer, the returned keystore raises KeystoreUnavailable when used: the app
    says so rather than quietly falling back to the PIN alone.
    """
    import flet as ft

    if page.web or page.platform not in (ft.PagePlatform.ANDROID, ft.PagePlatform.IOS):
        return NoKeystore()
    from flet_secure_storage import IOSOptions, KeychainAccessibility, SecureStorage

    # iOS: this device only, never synchronized, in no backup, on no new phone. Android:
    # the Keystore's key never leaves the phone; the plugin's defaults (RSA-OAEP wrapping an
    # AES-GCM key; an unreadable store, as after a restore, is reset) are kept.
    storage = SecureStorage(
        ios_options=IOSOptions(
            accessibility=KeychainAccessibility.UNLOCKED_THIS_DEVICE, synchronizable=False
        )
    )
    keystore = FletKeystore(storage, asyncio.get_running_loop())
    try:
        await keystore.load()
    except KeystoreUnavailable:
        log.warning("keystore: the secure storage did not answer at start")
    return keystore
