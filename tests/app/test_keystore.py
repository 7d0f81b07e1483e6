"""The keystore port: the flet-secure-storage adapter (on a real event loop, with a fake of
the Flet service), the in-memory fake and the web-mode "none"."""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path
from typing import Any

import flet as ft
import pytest

from app.keystore import (
    GUARD,
    PREFIX,
    SECRET,
    FletKeystore,
    KeystoreUnavailable,
    MemoryKeystore,
    NoKeystore,
    keystore_for,
)
from app.vault import ScryptParams, Vault

PIN = "482915"


class FakeSecureStorage:
    """``flet_secure_storage.SecureStorage``'s async methods over a dict: strings only, as
    on the phone. ``gate``, when set, holds every write until it is opened."""

    def __init__(self, values: dict[str, str] | None = None) -> None:
        self.values = dict(values or {})
        self.log: list[tuple[str, str]] = []
        self.broken = False
        self.gate: asyncio.Event | None = None
        self.entered = asyncio.Event()

    async def get(self, key: str) -> str | None:
        if self.broken:
            raise RuntimeError("PlatformException")
        return self.values.get(key)

    async def set(self, key: str, value: Any) -> None:
        assert isinstance(value, str)
        await self._write()
        self.log.append(("set", key))
        self.values[key] = value

    async def remove(self, key: str) -> None:
        await self._write()
        self.log.append(("remove", key))
        self.values.pop(key, None)

    async def _write(self) -> None:
        self.entered.set()
        if self.gate is not None:
            await self.gate.wait()
        if self.broken:
            raise RuntimeError("PlatformException")


def test_load_reads_our_entries_as_bytes() -> None:
    async def scenario() -> None:
        storage = FakeSecureStorage(
            {PREFIX + SECRET: base64.b64encode(b"s" * 32).decode(), "someone.else": "x"}
        )
        keystore = FletKeystore(storage, asyncio.get_running_loop())
        with pytest.raises(KeystoreUnavailable):
            keystore.get(SECRET)  # not loaded yet
        await keystore.load()
        assert keystore.get(SECRET) == b"s" * 32 and keystore.get(GUARD) is None
        with pytest.raises(ValueError):
            keystore.set("someone.else", b"x")  # only this app's few names

    asyncio.run(scenario())


def test_a_change_from_a_worker_thread_returns_once_the_phone_stored_it() -> None:
    async def scenario() -> None:
        storage = FakeSecureStorage()
        keystore = FletKeystore(storage, asyncio.get_running_loop())
        await keystore.load()
        storage.gate = asyncio.Event()
        worker = asyncio.ensure_future(asyncio.to_thread(keystore.set, GUARD, b"counted"))
        await storage.entered.wait()  # the phone is storing it...
        assert not worker.done()  # ...and the worker is still waiting
        storage.gate.set()
        await worker
        assert storage.values[PREFIX + GUARD] == base64.b64encode(b"counted").decode()
        assert keystore.get(GUARD) == b"counted"

    asyncio.run(scenario())


def test_a_change_on_the_event_loop_is_sent_after_the_handler_in_order() -> None:
    async def scenario() -> None:
        storage = FakeSecureStorage({PREFIX + SECRET: base64.b64encode(b"old").decode()})
        keystore = FletKeystore(storage, asyncio.get_running_loop())
        await keystore.load()
        keystore.set(GUARD, b"1")  # a handler on the loop cannot wait for the phone
        keystore.delete(SECRET)
        keystore.set(GUARD, b"2")
        assert storage.log == []  # nothing sent yet: the handler has not returned
        assert keystore.get(SECRET) is None and keystore.get(GUARD) == b"2"
        await keystore.flush()
        assert storage.log == [
            ("set", PREFIX + GUARD),
            ("remove", PREFIX + SECRET),
            ("set", PREFIX + GUARD),
        ]
        assert storage.values == {PREFIX + GUARD: base64.b64encode(b"2").decode()}

    asyncio.run(scenario())


def test_a_failing_phone_is_keystore_unavailable_and_changes_nothing() -> None:
    async def scenario() -> None:
        storage = FakeSecureStorage()
        keystore = FletKeystore(storage, asyncio.get_running_loop())
        await keystore.load()
        storage.broken = True
        with pytest.raises(KeystoreUnavailable):
            await asyncio.to_thread(keystore.set, SECRET, b"x")
        assert keystore.get(SECRET) is None
        late = FletKeystore(storage, asyncio.get_running_loop())
        with pytest.raises(KeystoreUnavailable):
            await late.load()  # the phone did not answer when the app started
        with pytest.raises(KeystoreUnavailable):
            late.get(SECRET)  # on the loop: cannot wait for it
        storage.broken = False
        assert await asyncio.to_thread(late.get, SECRET) is None  # an unlock reads it again
        assert late.get(GUARD) is None

    asyncio.run(scenario())


def test_a_change_refused_after_the_handler_is_logged_not_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def scenario() -> None:
        storage = FakeSecureStorage()
        keystore = FletKeystore(storage, asyncio.get_running_loop())
        await keystore.load()
        storage.broken = True
        keystore.set(GUARD, b"2")  # a lock's new generation, say
        await keystore.flush()
        assert PREFIX + GUARD not in storage.values  # the phone refused it...
        assert keystore.get(GUARD) == b"2"  # ...and the vault copes (file one ahead)

    asyncio.run(scenario())
    assert "a change was not stored (RuntimeError)" in caplog.text


def test_the_vault_runs_on_the_flet_adapter(tmp_path: Path) -> None:
    """As in the app: slow calls in a worker thread, lock and wipe on the event loop."""

    async def scenario() -> None:
        storage = FakeSecureStorage()
        keystore = FletKeystore(storage, asyncio.get_running_loop())
        await keystore.load()
        vault = Vault(tmp_path, keystore=keystore, scrypt_params=ScryptParams(n=2**4))
        key = await asyncio.to_thread(vault.setup, PIN)
        vault.lock()  # on the loop: the new generation is sent after this handler
        await keystore.flush()
        restarted = FletKeystore(storage, asyncio.get_running_loop())
        await restarted.load()  # the app started again: only what the phone stored
        again = Vault(tmp_path, keystore=restarted, scrypt_params=ScryptParams(n=2**4))
        assert await asyncio.to_thread(again.unlock, PIN) == key
        again.wipe()
        await restarted.flush()
        assert PREFIX + SECRET not in storage.values and list(tmp_path.iterdir()) == []

    asyncio.run(scenario())


class FakePage:
    def __init__(self, platform: ft.PagePlatform, web: bool = False) -> None:
        self.platform, self.web = platform, web


def test_web_mode_has_no_keystore() -> None:
    for page in (
        FakePage(ft.PagePlatform.LINUX, web=True),
        FakePage(ft.PagePlatform.ANDROID, web=True),
        FakePage(ft.PagePlatform.MACOS),
    ):
        keystore = asyncio.run(keystore_for(page))
        assert isinstance(keystore, NoKeystore) and not keystore.available
    none = NoKeystore()
    assert none.get(SECRET) is None
    with pytest.raises(KeystoreUnavailable):
        none.set(SECRET, b"x")


def test_a_phone_gets_its_keystore_this_device_only_and_never_a_silent_fallback() -> None:
    from flet_secure_storage import KeychainAccessibility

    for platform in (ft.PagePlatform.ANDROID, ft.PagePlatform.IOS):
        # No client answers here (no page): the keystore says so when used.
        keystore = asyncio.run(keystore_for(FakePage(platform)))
        assert isinstance(keystore, FletKeystore) and keystore.available
        options = keystore.storage.ios_options
        assert options.accessibility == KeychainAccessibility.UNLOCKED_THIS_DEVICE
        assert options.synchronizable is False
        with pytest.raises(KeystoreUnavailable):
            keystore.get(SECRET)


def test_the_memory_fake_fails_on_request() -> None:
    keystore = MemoryKeystore()
    keystore.set(SECRET, b"x")
    keystore.failing = {("get", SECRET)}
    with pytest.raises(KeystoreUnavailable):
        keystore.get(SECRET)
    assert keystore.get(GUARD) is None and keystore.calls[0] == ("set", SECRET)
