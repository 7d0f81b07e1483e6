"""The keystore seen from the app: what Settings says protects the data, what the PIN pad
says when the files are refused, and erasing through the app."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from app.keystore import SECRET, MemoryKeystore
from app.main import make_services
from app.session import FIRST_RUN, LOCKED, UNLOCKED
from app.state import AppState
from app.vault import FILENAME
from app.views import settings
from tests.app.views_support import (
    PIN,
    TINY_SCRYPT,
    FakeClock,
    FakeNav,
    FakeServer,
    enrolled,
    find,
    make_app,
    run,
)

PHONE = "Your data is locked by your PIN and by this phone's secure keystore."
WEB = (
    "This browser session has no secure keystore: only your PIN protects the data "
    "(development mode)."
)


async def _no_sleep(seconds: float) -> None:
    """Retries back off without waiting in tests."""


def phone_app(directory: Path, server: FakeServer, keystore: MemoryKeystore) -> AppState:
    """An AppState as ``app.main`` wires it on a phone (a real vault and store)."""
    services = make_services(
        directory,
        server_url="http://127.0.0.1:9",
        scrypt_params=TINY_SCRYPT,
        transport=server.transport,
        sleep=_no_sleep,
        keystore=keystore,
    )
    return AppState(services, now=FakeClock())


def protection_text(app: AppState) -> str:
    return str(find(settings.build(app, FakeNav()), "protection").value)


def test_settings_says_what_protects_the_data_on_a_phone(tmp_path: Path) -> None:
    app = run(enrolled(phone_app(tmp_path / "device", FakeServer(), MemoryKeystore())))
    assert app.session.protection() == "keystore" and protection_text(app) == PHONE
    assert json.loads((tmp_path / "device" / FILENAME).read_text())["version"] == 2


def test_settings_says_what_protects_the_data_in_web_mode(tmp_path: Path) -> None:
    app = run(enrolled(make_app(tmp_path, FakeServer())))
    assert app.session.protection() == "no-keystore" and protection_text(app) == WEB
    assert json.loads((tmp_path / "device" / FILENAME).read_text())["version"] == 1


def test_settings_says_so_when_the_keystore_could_not_be_used_yet(tmp_path: Path) -> None:
    directory, server = tmp_path / "device", FakeServer()
    app = run(enrolled(make_app(tmp_path, server)))  # an install from before the keystore
    app.session.lock()
    keystore = MemoryKeystore()
    keystore.failing = {("set", SECRET)}
    phone = phone_app(directory, server, keystore)
    assert run(phone.session.unlock(PIN)) and phone.session.protection() == "pin-only"
    assert "Only your PIN protects the data for now" in protection_text(phone)


def test_a_rolled_back_directory_is_refused_with_a_way_forward(tmp_path: Path) -> None:
    directory, server, keystore = tmp_path / "device", FakeServer(), MemoryKeystore()
    app = run(enrolled(phone_app(directory, server, keystore)))
    app.session.lock()
    shutil.copytree(directory, tmp_path / "backup")
    assert run(app.session.unlock(PIN))
    app.store.put("patient", {"name": "Bo Later", "status": "active"})
    app.session.lock()
    shutil.rmtree(directory)
    shutil.copytree(tmp_path / "backup", directory)  # the older copy put back

    restarted = phone_app(directory, server, keystore)
    assert restarted.session.phase == LOCKED
    assert not run(restarted.session.unlock(PIN))
    message = restarted.session.unlock_state.message or ""
    assert "older copy" in message and "Forgot PIN?" in message
    assert restarted.store is None and restarted.session.phase == LOCKED
    assert restarted.session.unlock_state.attempts_left == 10  # no attempt was spent
    restarted.session.forget_pin()  # the way forward: erase, then sign in again
    assert restarted.session.phase == FIRST_RUN and SECRET not in keystore.values
    assert not (directory / FILENAME).exists()
    run(enrolled(restarted))
    assert restarted.session.phase == UNLOCKED and restarted.session.protection() == "keystore"


def test_files_from_another_phone_are_refused_with_a_way_forward(tmp_path: Path) -> None:
    server = FakeServer()
    run(enrolled(phone_app(tmp_path / "device", server, MemoryKeystore()))).session.lock()
    other = phone_app(tmp_path / "device", server, MemoryKeystore())
    assert not run(other.session.unlock(PIN))
    assert "not saved with this phone's secure keystore" in (
        other.session.unlock_state.message or ""
    )


def test_a_silent_keystore_is_said_plainly_and_decides_nothing(tmp_path: Path) -> None:
    directory, server, keystore = tmp_path / "device", FakeServer(), MemoryKeystore()
    run(enrolled(phone_app(directory, server, keystore))).session.lock()
    keystore.failing = {("get", "*"), ("set", "*")}
    app = phone_app(directory, server, keystore)  # the PIN pad still shows
    assert app.session.phase == LOCKED and "did not answer" in (
        app.session.unlock_state.message or ""
    )
    assert not run(app.session.unlock(PIN))
    assert "Close Liaison and open it again" in (app.session.unlock_state.message or "")
    keystore.failing = set()
    assert run(app.session.unlock(PIN))


def test_signing_out_erases_the_secret_then_the_files(tmp_path: Path) -> None:
    directory, server, keystore = tmp_path / "device", FakeServer(), MemoryKeystore()
    app = run(enrolled(phone_app(directory, server, keystore)))
    assert run(app.session.sign_out(force=True)) == 0
    assert SECRET not in keystore.values and list(directory.iterdir()) == []
    erase = [i for i, call in enumerate(keystore.calls) if call == ("delete", SECRET)]
    assert erase and app.session.phase == FIRST_RUN
