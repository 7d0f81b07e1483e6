"""The vault on a phone: PIN + keystore secret, crypto-erase, upgrade from version 1, the
counter outside the files, and a data directory rolled back to an older copy."""

from __future__ import annotations

import base64
import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from app import vault as vault_module
from app.errors import RetryLater, VaultError, VaultWiped, WrongPin
from app.keystore import GUARD, SECRET, KeystoreUnavailable, MemoryKeystore, NoKeystore
from app.store import JOURNAL, Store
from app.vault import (
    FILENAME,
    ScryptParams,
    Vault,
    VaultForeign,
    VaultRolledBack,
    wrapping_key,
)

TINY = ScryptParams(n=2**4)
PIN, OTHER = "482915", "730264"
SEALED = f"store/{JOURNAL}"
V1_INSTALL = Path(__file__).parent / "data" / "v1-install"


class Clock:
    """A hand-moved clock; tests never sleep."""

    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def make(path: Path, keystore: Any, clock: Clock | None = None, **kwargs: Any) -> Vault:
    """A vault as ``app.main`` makes it on a phone (the store's journal sealed)."""
    kwargs.setdefault("scrypt_params", TINY)
    return Vault(path, now=clock or Clock(), keystore=keystore, sealed=(SEALED,), **kwargs)


def doc(path: Path) -> dict[str, Any]:
    return dict(json.loads((path / FILENAME).read_text()))


def guard(keystore: MemoryKeystore) -> dict[str, Any]:
    return dict(json.loads(keystore.values[GUARD]))


def fail(vault: Vault, clock: Clock, times: int) -> None:
    for _ in range(times):
        with pytest.raises(WrongPin) as info:
            vault.unlock(OTHER)
        clock.t += info.value.retry_after


def copy_of(directory: Path, to: Path) -> Path:
    shutil.copytree(directory, to)
    return to


def beside(directory: Path, name: str) -> Path:
    """A path next to ``directory`` for a copy of it (unique per test)."""
    return directory.with_name(f"{directory.name}-{name}")


def put_back(copy: Path, directory: Path) -> None:
    """Replace ``directory`` with ``copy`` (a backup restored, a forensic image put back)."""
    shutil.rmtree(directory)
    shutil.copytree(copy, directory)


# -- the key needs the PIN and the phone's secret --------------------------------------


def test_a_phone_vault_needs_the_pin_and_the_keystore_secret(tmp_path: Path) -> None:
    keystore = MemoryKeystore()
    vault = make(tmp_path, keystore)
    key = vault.setup(PIN)
    on_disk = doc(tmp_path)
    assert (on_disk["version"], on_disk["binding"], on_disk["generation"]) == (2, "keystore", 1)
    assert "failures" not in on_disk  # the counter lives in the keystore
    assert len(keystore.values[SECRET]) == 32 and guard(keystore)["generation"] == 1
    assert vault.bound
    vault.lock()
    assert vault.unlock(PIN) == key
    assert make(tmp_path, keystore).unlock(PIN) == key  # after a restart


def test_copied_files_with_the_right_pin_and_another_secret_do_not_open(tmp_path: Path) -> None:
    phone = MemoryKeystore()
    make(tmp_path / "phone", phone).setup(PIN)
    copy = copy_of(tmp_path / "phone", tmp_path / "copy")
    other_phone = MemoryKeystore()
    make(tmp_path / "other", other_phone).setup(OTHER)  # it has a secret of its own
    for keystore in (other_phone, MemoryKeystore()):
        before = dict(keystore.values)
        with pytest.raises(VaultForeign):
            make(copy, keystore).unlock(PIN)
        assert keystore.values == before  # refused before any attempt was counted
    with pytest.raises(VaultForeign, match="cannot be opened here"):
        make(copy, NoKeystore()).unlock(PIN)  # nor on a computer without a keystore


def test_the_files_alone_cannot_be_brute_forced(tmp_path: Path) -> None:
    """What an attacker holding only the files can compute: not the key, even with the PIN."""
    keystore = MemoryKeystore()
    key = make(tmp_path, keystore).setup(PIN)
    raw = (tmp_path / FILENAME).read_bytes()
    on_disk = json.loads(raw)
    salt, nonce, wrapped = (base64.b64decode(on_disk[k]) for k in ("salt", "nonce", "wrapped"))
    aad = f"liaison-vault:v2:data-key:scrypt:{TINY.n}:{TINY.r}:{TINY.p}".encode()
    pin_key = vault_module._derive(PIN, salt, TINY)  # the right PIN, found by brute force
    for guess in (
        pin_key,
        wrapping_key(pin_key, bytes(32), salt),
        wrapping_key(pin_key, b"\xff" * 32, salt),
    ):
        with pytest.raises(InvalidTag):  # no oracle: the right PIN fails like any other
            AESGCM(guess).decrypt(nonce, wrapped, aad)
    secret = keystore.values[SECRET]
    assert AESGCM(wrapping_key(pin_key, secret, salt)).decrypt(nonce, wrapped, aad) == key
    for form in (
        secret,
        secret.hex().encode(),
        base64.b64encode(secret),
        key,
        base64.b64encode(key),
        PIN.encode(),
    ):
        assert form not in raw


def test_a_changed_field_breaks_the_mac(tmp_path: Path) -> None:
    keystore = MemoryKeystore()
    make(tmp_path, keystore).setup(PIN)
    on_disk = doc(tmp_path)
    (tmp_path / FILENAME).write_text(json.dumps(on_disk | {"generation": 7}))
    with pytest.raises(VaultForeign):
        make(tmp_path, keystore).unlock(PIN)


@pytest.mark.parametrize(
    "damage",
    [
        lambda d: d | {"mac": "AAAA"},
        lambda d: {k: v for k, v in d.items() if k != "mac"},
        lambda d: d | {"seal": "not hex"},
        lambda d: d | {"generation": -1},
        lambda d: d | {"version": 3},
    ],
)
def test_a_damaged_version_2_file_is_reported_and_left_untouched(
    tmp_path: Path, damage: Any
) -> None:
    keystore = MemoryKeystore()
    make(tmp_path, keystore).setup(PIN)
    damaged = json.dumps(damage(doc(tmp_path)))
    (tmp_path / FILENAME).write_text(damaged)
    with pytest.raises(VaultError, match="damaged"):
        make(tmp_path, keystore).unlock(PIN)
    assert (tmp_path / FILENAME).read_text() == damaged


# -- wrong PINs on a phone --------------------------------------------------------------


def test_wrong_pins_count_down_wait_and_wipe_as_in_web_mode(tmp_path: Path) -> None:
    clock, keystore = Clock(), MemoryKeystore()
    vault = make(tmp_path, keystore, clock, max_attempts=5)
    key = vault.setup(PIN)
    vault.lock()
    fail(vault, clock, 3)
    with pytest.raises(WrongPin) as info:
        vault.unlock(OTHER)
    assert (info.value.attempts_left, info.value.retry_after) == (1, 30)
    with pytest.raises(RetryLater):
        vault.unlock(PIN)
    restarted = make(tmp_path, keystore, clock, max_attempts=5)
    assert restarted.status().attempts_left == 1  # the count survives a restart
    clock.t += 30
    assert vault.unlock(PIN) == key
    assert guard(keystore)["failures"] == 0


def test_the_attempt_is_counted_in_the_keystore_before_the_derivation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    keystore = MemoryKeystore()
    make(tmp_path, keystore).setup(PIN)

    def killed(*args: object) -> bytes:
        assert guard(keystore)["failures"] == 1
        raise KeyboardInterrupt  # the app dies mid-attempt

    monkeypatch.setattr("app.vault._derive", killed)
    with pytest.raises(KeyboardInterrupt):
        make(tmp_path, keystore).unlock(PIN)
    monkeypatch.undo()
    assert make(tmp_path, keystore).status().attempts_left == 9


def test_copying_the_vault_file_back_does_not_reset_the_counter(tmp_path: Path) -> None:
    clock, keystore = Clock(), MemoryKeystore()
    vault = make(tmp_path, keystore, clock)
    vault.setup(PIN)
    vault.lock()
    saved = (tmp_path / FILENAME).read_bytes()
    fail(vault, clock, 3)
    with pytest.raises(WrongPin):
        vault.unlock(OTHER)
    (tmp_path / FILENAME).write_bytes(saved)  # the attacker's "fresh" copy
    again = make(tmp_path, keystore, clock)
    status = again.status()
    assert (status.attempts_left, status.retry_after) == (6, 30)
    with pytest.raises(RetryLater):
        again.unlock(PIN)


def test_the_wrong_pin_limit_erases_the_secret_too(tmp_path: Path) -> None:
    clock, keystore = Clock(), MemoryKeystore()
    vault = make(tmp_path, keystore, clock, max_attempts=3)
    vault.setup(PIN)
    copy = copy_of(tmp_path, beside(tmp_path, "copy"))
    fail(vault, clock, 2)
    with pytest.raises(VaultWiped):
        vault.unlock(OTHER)
    assert SECRET not in keystore.values and list(tmp_path.iterdir()) == []
    put_back(copy, tmp_path)
    with pytest.raises(VaultForeign):
        make(tmp_path, keystore).unlock(PIN)


# -- crypto-erase ----------------------------------------------------------------------


class WatchingKeystore(MemoryKeystore):
    """Records whether the vault file still existed when the secret was deleted."""

    def __init__(self, vault_file: Path) -> None:
        super().__init__()
        self.vault_file = vault_file
        self.file_when_deleted: bool | None = None

    def delete(self, name: str) -> None:
        if name == SECRET:
            self.file_when_deleted = self.vault_file.exists()
        super().delete(name)


def test_wipe_destroys_the_secret_first_then_the_files(tmp_path: Path) -> None:
    keystore = WatchingKeystore(tmp_path / FILENAME)
    wiped: list[bool] = []
    vault = make(tmp_path, keystore, on_wipe=lambda: wiped.append(True))
    vault.setup(PIN)
    generation = guard(keystore)["generation"]
    vault.wipe()
    assert keystore.file_when_deleted is True  # the secret went while the files were there
    assert SECRET not in keystore.values and list(tmp_path.iterdir()) == [] and wiped
    assert guard(keystore)["generation"] > generation  # and the generation never goes back


def test_an_old_copy_cannot_be_opened_after_a_wipe_even_with_the_pin(tmp_path: Path) -> None:
    keystore = MemoryKeystore()
    vault = make(tmp_path, keystore)
    vault.setup(PIN)
    vault.lock()
    copy = copy_of(tmp_path, beside(tmp_path, "copy"))
    old_secret = keystore.values[SECRET]
    vault.wipe()
    put_back(copy, tmp_path)
    with pytest.raises(VaultForeign):
        make(tmp_path, keystore).unlock(PIN)
    # Signing in again makes a new secret; the old copy stays closed, with the old PIN too.
    shutil.rmtree(tmp_path / "store", ignore_errors=True)
    (tmp_path / FILENAME).unlink()
    make(tmp_path, keystore).setup(OTHER)
    assert keystore.values[SECRET] != old_secret
    put_back(copy, tmp_path)
    with pytest.raises(VaultForeign):
        make(tmp_path, keystore).unlock(PIN)
    on_disk = json.loads((copy / FILENAME).read_text())
    salt, nonce, wrapped = (base64.b64decode(on_disk[k]) for k in ("salt", "nonce", "wrapped"))
    pin_key = vault_module._derive(PIN, salt, TINY)
    with pytest.raises(InvalidTag):  # the only secret left on the phone is the new one
        AESGCM(wrapping_key(pin_key, keystore.values[SECRET], salt)).decrypt(
            nonce, wrapped, vault_module._aad(2, TINY)
        )


def test_an_erase_goes_on_when_the_keystore_fails(tmp_path: Path) -> None:
    keystore = MemoryKeystore()
    vault = make(tmp_path, keystore)
    vault.setup(PIN)
    keystore.failing = {("delete", "*"), ("set", "*"), ("get", "*")}
    vault.wipe()
    assert list(tmp_path.iterdir()) == []


# -- version 1 installs -----------------------------------------------------------------


def v1_install(tmp_path: Path) -> tuple[Path, dict[str, Any]]:
    """The data directory of an install made by the code before the keystore (commit
    053de79): a version 1 vault and a store with one patient."""
    directory = copy_of(V1_INSTALL, tmp_path / "device")
    expected = json.loads((directory / "expected.json").read_text())
    (directory / "expected.json").unlink()
    return directory, expected


def open_patient(directory: Path, key: bytes, expected: dict[str, Any]) -> str:
    store = Store.open(directory / "store", key, node_id="device-v1")
    try:
        record = store.get(expected["patient_id"])
        assert record is not None
        return str(record["fields"]["name"])
    finally:
        store.close()


def test_a_version_1_install_upgrades_at_its_next_unlock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory, expected = v1_install(tmp_path)
    keystore = MemoryKeystore()
    derivations: list[int] = []
    derive = vault_module._derive
    monkeypatch.setattr("app.vault._derive", lambda *a: derivations.append(1) or derive(*a))  # type: ignore[func-returns-value]
    vault = make(directory, keystore, scrypt_params=None)  # the file's own parameters
    assert vault.status().attempts_left == 10 and not vault.bound
    key = vault.unlock(expected["pin"])
    assert key.hex() == expected["data_key"] and len(derivations) == 1  # no second scrypt
    on_disk = doc(directory)
    assert (on_disk["version"], on_disk["generation"], on_disk["n"]) == (2, 1, 16)
    assert vault.bound and guard(keystore)["generation"] == 1
    vault.lock()
    again = make(directory, keystore, scrypt_params=None)
    assert again.unlock(expected["pin"]) == key
    assert open_patient(directory, key, expected) == expected["name"]


def test_web_mode_writes_and_opens_version_1_exactly_as_before(tmp_path: Path) -> None:
    directory, expected = v1_install(tmp_path)
    before = (directory / FILENAME).read_text()
    vault = Vault(directory, keystore=NoKeystore())  # web mode: no keystore at all
    key = vault.unlock(expected["pin"])
    assert key.hex() == expected["data_key"] and not vault.bound
    unlocked = (directory / FILENAME).read_text()
    assert json.loads(unlocked) == json.loads(before)
    vault.lock()
    assert (directory / FILENAME).read_text() == unlocked  # locking writes nothing
    fresh = Vault(tmp_path / "fresh", scrypt_params=TINY)
    fresh.setup(PIN)
    assert set(doc(tmp_path / "fresh")) == set(json.loads(before))  # same fields
    assert doc(tmp_path / "fresh")["version"] == 1


def test_a_version_1_vault_made_in_web_mode_upgrades_on_a_phone(tmp_path: Path) -> None:
    key = Vault(tmp_path, scrypt_params=TINY).setup(PIN)
    assert doc(tmp_path)["version"] == 1
    keystore = MemoryKeystore()
    assert make(tmp_path, keystore).unlock(PIN) == key
    assert doc(tmp_path)["version"] == 2
    with pytest.raises(VaultForeign):  # and from now on a computer cannot open it
        Vault(tmp_path, scrypt_params=TINY).unlock(PIN)


def test_a_crash_before_the_new_file_leaves_the_old_one_which_still_opens(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory, expected = v1_install(tmp_path)
    before = (directory / FILENAME).read_bytes()
    keystore = MemoryKeystore()

    def killed(*args: object) -> None:
        raise KeyboardInterrupt  # the app dies just before the rename

    monkeypatch.setattr("app.filesafe.os.replace", killed)
    with pytest.raises(KeyboardInterrupt):
        make(directory, keystore, scrypt_params=None).unlock(expected["pin"])
    monkeypatch.undo()
    assert (directory / FILENAME).read_bytes() == before
    assert SECRET in keystore.values  # the secret was stored first, unused
    key = make(directory, keystore, scrypt_params=None).unlock(expected["pin"])
    assert key.hex() == expected["data_key"] and doc(directory)["version"] == 2
    assert open_patient(directory, key, expected) == expected["name"]


class CrashAfterRename(MemoryKeystore):
    """Dies when the guard is written after a version 2 file landed (the last step)."""

    def __init__(self, vault_file: Path) -> None:
        super().__init__()
        self.vault_file, self.armed = vault_file, True

    def set(self, name: str, value: bytes) -> None:
        if (
            self.armed
            and name == GUARD
            and self.vault_file.exists()
            and json.loads(self.vault_file.read_text())["version"] == 2
        ):
            self.armed = False
            raise KeyboardInterrupt
        super().set(name, value)


def test_a_crash_after_the_new_file_but_before_the_guard_still_opens(tmp_path: Path) -> None:
    directory, expected = v1_install(tmp_path)
    keystore = CrashAfterRename(directory / FILENAME)
    with pytest.raises(KeyboardInterrupt):
        make(directory, keystore, scrypt_params=None).unlock(expected["pin"])
    assert doc(directory)["generation"] == 1 and guard(keystore)["generation"] == 0
    vault = make(directory, keystore, scrypt_params=None)
    assert vault.status().attempts_left == 9  # the interrupted attempt was spent
    key = vault.unlock(expected["pin"])
    assert key.hex() == expected["data_key"]
    assert doc(directory)["generation"] == guard(keystore)["generation"] == 2
    assert open_patient(directory, key, expected) == expected["name"]


def test_an_upgrade_the_keystore_refuses_keeps_version_1_and_unlocks(tmp_path: Path) -> None:
    directory, expected = v1_install(tmp_path)
    keystore = MemoryKeystore()
    keystore.failing = {("set", SECRET)}
    vault = make(directory, keystore, scrypt_params=None)
    assert vault.unlock(expected["pin"]).hex() == expected["data_key"]
    assert doc(directory)["version"] == 1 and not vault.bound
    assert make(directory, keystore, scrypt_params=None).status().attempts_left == 10
    keystore.failing = set()
    vault.lock()
    vault.unlock(expected["pin"])  # tried again at the next unlock
    assert doc(directory)["version"] == 2 and vault.bound


def test_an_update_keeps_the_wrong_pin_count_it_found(tmp_path: Path) -> None:
    clock = Clock()
    web = Vault(tmp_path, now=clock, scrypt_params=TINY)
    web.setup(PIN)
    fail(web, clock, 2)  # counted in the version 1 file, before the update
    keystore = MemoryKeystore()
    phone = make(tmp_path, keystore, clock)
    assert phone.status().attempts_left == 8
    with pytest.raises(WrongPin) as info:
        phone.unlock(OTHER)
    assert info.value.attempts_left == 7 and guard(keystore)["failures"] == 3


def test_copying_a_version_1_file_back_does_not_reset_the_counter(tmp_path: Path) -> None:
    clock = Clock()
    Vault(tmp_path, now=clock, scrypt_params=TINY).setup(PIN)
    saved = (tmp_path / FILENAME).read_bytes()
    keystore = MemoryKeystore()
    phone = make(tmp_path, keystore, clock)
    fail(phone, clock, 3)
    (tmp_path / FILENAME).write_bytes(saved)
    assert make(tmp_path, keystore, clock).status().attempts_left == 7


# -- a data directory rolled back -------------------------------------------------------


def session(directory: Path, vault: Vault, change: Any) -> None:
    """Unlock, change the records through a real store, lock (as the app does)."""
    key = vault.unlock(PIN)
    store = Store.open(directory / "store", key, node_id="device-1")
    change(store)
    store.close()
    vault.lock()


def test_a_directory_rolled_back_to_before_the_last_unlock_is_refused(tmp_path: Path) -> None:
    keystore = MemoryKeystore()
    vault = make(tmp_path, keystore)
    vault.setup(PIN)
    vault.lock()
    ids: list[str] = []
    session(
        tmp_path,
        vault,
        lambda s: ids.append(s.put("patient", {"name": "Ada", "status": "active"})["id"]),
    )
    backup = copy_of(tmp_path, beside(tmp_path, "backup"))
    session(tmp_path, vault, lambda s: s.delete(ids[0]))  # deleted after the backup
    entries = dict(keystore.values)
    put_back(backup, tmp_path)
    fresh = make(tmp_path, keystore)
    with pytest.raises(VaultRolledBack, match="older copy"):
        fresh.unlock(PIN)
    assert keystore.values == entries  # refused before any attempt: nothing spent
    assert fresh.status().attempts_left == 10 and not fresh.is_unlocked


def test_a_copy_taken_while_unlocked_is_refused_after_the_lock(tmp_path: Path) -> None:
    keystore = MemoryKeystore()
    vault = make(tmp_path, keystore)
    key = vault.setup(PIN)
    store = Store.open(tmp_path / "store", key, node_id="device-1")
    ada = store.put("patient", {"name": "Ada", "status": "active"})["id"]
    backup = copy_of(tmp_path, beside(tmp_path, "backup"))  # taken mid-session
    store.delete(ada)
    store.close()
    vault.lock()
    put_back(backup, tmp_path)
    with pytest.raises(VaultRolledBack):
        make(tmp_path, keystore).unlock(PIN)


def test_the_records_rolled_back_alone_are_refused(tmp_path: Path) -> None:
    """The vault file is the current one; only the journal is an older copy."""
    keystore = MemoryKeystore()
    vault = make(tmp_path, keystore)
    vault.setup(PIN)
    vault.lock()
    ids: list[str] = []
    session(
        tmp_path,
        vault,
        lambda s: ids.append(s.put("patient", {"name": "Ada", "status": "active"})["id"]),
    )
    old_journal = (tmp_path / SEALED).read_bytes()
    session(tmp_path, vault, lambda s: s.delete(ids[0]))
    (tmp_path / SEALED).write_bytes(old_journal)
    with pytest.raises(VaultRolledBack, match="records"):
        make(tmp_path, keystore).unlock(PIN)
    (tmp_path / SEALED).unlink()  # nor can the records be taken away
    with pytest.raises(VaultRolledBack):
        make(tmp_path, keystore).unlock(PIN)


def test_after_a_crash_the_records_are_not_checked_but_the_generation_is(tmp_path: Path) -> None:
    keystore = MemoryKeystore()
    vault = make(tmp_path, keystore)
    key = vault.setup(PIN)
    vault.lock()
    before_crash = copy_of(tmp_path, beside(tmp_path, "before"))
    key = vault.unlock(PIN)
    store = Store.open(tmp_path / "store", key, node_id="device-1")
    store.put("patient", {"name": "Ada", "status": "active"})
    store.close()  # the app is killed here: no lock, nothing sealed
    after = make(tmp_path, keystore)
    assert after.unlock(PIN) == key  # the journal grew while unlocked: fine
    after.lock()
    put_back(before_crash, tmp_path)
    with pytest.raises(VaultRolledBack):
        make(tmp_path, keystore).unlock(PIN)


def test_a_version_1_copy_is_refused_once_the_phone_has_upgraded(tmp_path: Path) -> None:
    directory, expected = v1_install(tmp_path)
    backup = copy_of(directory, tmp_path / "backup")
    keystore = MemoryKeystore()
    make(directory, keystore, scrypt_params=None).unlock(expected["pin"])
    put_back(backup, directory)
    with pytest.raises(VaultRolledBack, match="before this phone's keystore"):
        make(directory, keystore, scrypt_params=None).unlock(expected["pin"])


def test_a_version_1_copy_cannot_undo_a_wipe(tmp_path: Path) -> None:
    directory, expected = v1_install(tmp_path)
    backup = copy_of(directory, tmp_path / "backup")
    keystore = MemoryKeystore()
    make(directory, keystore, scrypt_params=None).wipe()  # erased before it was upgraded
    put_back(backup, directory)
    with pytest.raises(VaultRolledBack):
        make(directory, keystore, scrypt_params=None).unlock(expected["pin"])


def test_a_crash_between_the_file_and_the_guard_is_not_a_rollback(tmp_path: Path) -> None:
    keystore = MemoryKeystore()
    vault = make(tmp_path, keystore)
    key = vault.setup(PIN)
    keystore.failing = {("set", GUARD)}  # the lock's guard write is lost
    vault.lock()
    keystore.failing = set()
    assert doc(tmp_path)["generation"] == guard(keystore)["generation"] + 1
    assert make(tmp_path, keystore).unlock(PIN) == key
    assert doc(tmp_path)["generation"] == guard(keystore)["generation"]


def test_a_keystore_that_does_not_answer_decides_nothing(tmp_path: Path) -> None:
    keystore = MemoryKeystore()
    vault = make(tmp_path, keystore)
    key = vault.setup(PIN)
    vault.lock()
    keystore.failing = {("get", "*"), ("set", "*")}
    with pytest.raises(KeystoreUnavailable):
        vault.unlock(PIN)
    keystore.failing = set()
    assert vault.status().attempts_left == 10
    assert vault.unlock(PIN) == key


def test_change_pin_on_a_phone_keeps_the_key_and_retires_the_old_pins_copy(tmp_path: Path) -> None:
    keystore = MemoryKeystore()
    vault = make(tmp_path, keystore)
    key = vault.setup(PIN)
    backup = copy_of(tmp_path, beside(tmp_path, "backup"))  # a copy the old PIN opens
    vault.change_pin(PIN, OTHER)
    vault.lock()
    with pytest.raises(WrongPin):
        vault.unlock(PIN)
    assert vault.unlock(OTHER) == key
    vault.lock()
    put_back(backup, tmp_path)
    with pytest.raises(VaultRolledBack):
        make(tmp_path, keystore).unlock(PIN)
