"""The vault: PIN -> data key, wrong-PIN delays and limits, wipe, damaged files."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path

import pytest

from app.errors import (
    InvalidPin,
    RetryLater,
    VaultError,
    VaultLocked,
    VaultNotSetUp,
    VaultWiped,
    WrongPin,
)
from app.vault import DELAYS, FILENAME, MAX_N, MIN_N, ScryptParams, Vault, calibrate, delay_after

FAST = ScryptParams(n=2**10)
PIN, OTHER = "482915", "730264"


class Clock:
    """A hand-moved clock; tests never sleep."""

    def __init__(self, t: float = 1_000_000.0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t


def make(path: Path, clock: Clock | None = None, **kwargs: object) -> Vault:
    return Vault(path, now=clock or Clock(), scrypt_params=FAST, **kwargs)  # type: ignore[arg-type]


def fail(vault: Vault, clock: Clock, times: int) -> None:
    """Enter a wrong PIN ``times`` times, waiting out each delay on the fake clock."""
    for _ in range(times):
        with pytest.raises(WrongPin) as info:
            vault.unlock(OTHER)
        clock.t += info.value.retry_after


def test_setup_then_unlock_returns_the_same_key(tmp_path: Path) -> None:
    vault = make(tmp_path)
    assert not vault.is_set_up
    key = vault.setup(PIN)
    assert len(key) == 32 and vault.is_set_up and vault.is_unlocked and vault.key == key
    vault.lock()
    assert vault.unlock(PIN) == key
    assert make(tmp_path).unlock(PIN) == key  # a fresh instance, as after a restart


def test_setup_twice_is_refused(tmp_path: Path) -> None:
    vault = make(tmp_path)
    vault.setup(PIN)
    with pytest.raises(VaultError, match="already set up"):
        make(tmp_path).setup(OTHER)
    assert make(tmp_path).unlock(PIN) == vault.key


def test_lock_drops_the_key(tmp_path: Path) -> None:
    vault = make(tmp_path)
    vault.setup(PIN)
    held = vault._key
    vault.lock()
    assert not vault.is_unlocked
    assert held == bytearray(32)  # zeroed in place, not just dropped
    with pytest.raises(VaultLocked):
        _ = vault.key


def test_unlock_before_setup(tmp_path: Path) -> None:
    with pytest.raises(VaultNotSetUp):
        make(tmp_path).unlock(PIN)
    assert make(tmp_path).status().is_set_up is False


def test_wrong_pin_counts_down_and_correct_pin_resets(tmp_path: Path) -> None:
    clock = Clock()
    vault = make(tmp_path, clock)
    vault.setup(PIN)
    vault.lock()
    for left in (9, 8, 7):
        with pytest.raises(WrongPin) as info:
            vault.unlock(OTHER)
        assert info.value.attempts_left == left
        assert vault.status().attempts_left == left
    assert info.value.retry_after == 0  # the first three are free
    vault.unlock(PIN)
    assert vault.status().attempts_left == 10
    with pytest.raises(WrongPin) as info:
        vault.unlock(OTHER)
    assert info.value.attempts_left == 9


def test_delays_grow_until_the_clock_passes(tmp_path: Path) -> None:
    clock = Clock()
    vault = make(tmp_path, clock, max_attempts=20)
    vault.setup(PIN)
    fail(vault, clock, 3)
    waits = []
    for _ in range(5):
        with pytest.raises(WrongPin) as info:
            vault.unlock(OTHER)
        wait = info.value.retry_after
        waits.append(wait)
        with pytest.raises(RetryLater) as later:
            vault.unlock(PIN)  # even the right PIN waits
        assert later.value.retry_after == wait
        clock.t += wait - 1
        with pytest.raises(RetryLater) as later:
            vault.unlock(PIN)
        assert later.value.retry_after == 1
        assert vault.status().retry_after == 1
        clock.t += 1
    assert waits == [30, 60, 300, 900, 3600]
    assert waits == sorted(waits) and list(DELAYS[3:]) == waits
    assert delay_after(50) == DELAYS[-1]
    assert vault.unlock(PIN) == vault.key
    assert vault.status().retry_after == 0


def test_retry_later_does_not_spend_an_attempt(tmp_path: Path) -> None:
    clock = Clock()
    vault = make(tmp_path, clock)
    vault.setup(PIN)
    fail(vault, clock, 3)
    with pytest.raises(WrongPin):
        vault.unlock(OTHER)
    for _ in range(20):
        with pytest.raises(RetryLater) as later:
            vault.unlock(OTHER)
    assert later.value.attempts_left == 6
    assert vault.status().attempts_left == 6


def test_count_and_delay_survive_a_new_instance(tmp_path: Path) -> None:
    clock = Clock()
    vault = make(tmp_path, clock)
    vault.setup(PIN)
    fail(vault, clock, 3)
    with pytest.raises(WrongPin):
        vault.unlock(OTHER)
    again = make(tmp_path, clock)
    status = again.status()
    assert (status.attempts_left, status.retry_after, status.is_unlocked) == (6, 30, False)
    with pytest.raises(RetryLater):
        again.unlock(PIN)


def test_attempt_is_counted_before_the_derivation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    vault = make(tmp_path)
    vault.setup(PIN)

    def killed(*args: object) -> bytes:
        assert json.loads((tmp_path / FILENAME).read_text())["failures"] == 1
        raise KeyboardInterrupt  # the app dies mid-attempt

    monkeypatch.setattr("app.vault._derive", killed)
    with pytest.raises(KeyboardInterrupt):
        vault.unlock(PIN)
    monkeypatch.undo()
    assert make(tmp_path).status().attempts_left == 9


def test_clock_moved_back_keeps_the_delay(tmp_path: Path) -> None:
    clock = Clock()
    vault = make(tmp_path, clock)
    vault.setup(PIN)
    fail(vault, clock, 3)
    with pytest.raises(WrongPin):
        vault.unlock(OTHER)  # 30 s delay from t0
    clock.t -= 10 * 24 * 3600  # ten days back
    with pytest.raises(RetryLater) as later:
        vault.unlock(PIN)
    assert later.value.retry_after == 30  # the full delay again, from the new "now"
    clock.t += 29
    with pytest.raises(RetryLater):
        vault.unlock(PIN)
    clock.t += 1
    assert vault.unlock(PIN) == vault.key  # but not locked out for ten days


def test_limit_wipes_everything_and_calls_on_wipe(tmp_path: Path) -> None:
    clock, wiped = Clock(), []
    vault = make(tmp_path, clock, max_attempts=3, on_wipe=lambda: wiped.append(True))
    vault.setup(PIN)
    (tmp_path / "store.db").write_bytes(b"ciphertext")
    (tmp_path / "photos").mkdir()
    (tmp_path / "photos" / "a.jpg.enc").write_bytes(b"ciphertext")
    fail(vault, clock, 2)
    with pytest.raises(VaultWiped):
        vault.unlock(OTHER)
    assert wiped == [True]
    assert list(tmp_path.iterdir()) == []
    assert not vault.is_set_up and not vault.is_unlocked
    with pytest.raises(VaultNotSetUp):
        vault.unlock(PIN)


def test_limit_reached_by_a_killed_last_attempt_wipes(tmp_path: Path) -> None:
    clock = Clock()
    vault = make(tmp_path, clock, max_attempts=3)
    vault.setup(PIN)
    fail(vault, clock, 2)
    doc = json.loads((tmp_path / FILENAME).read_text())
    doc["failures"] = 3  # as left by an app killed during the third attempt
    (tmp_path / FILENAME).write_text(json.dumps(doc))
    with pytest.raises(VaultWiped):
        make(tmp_path, clock, max_attempts=3).unlock(PIN)
    assert list(tmp_path.iterdir()) == []


def test_wipe_by_hand(tmp_path: Path) -> None:
    calls = []
    vault = make(tmp_path, on_wipe=lambda: calls.append(1))
    vault.setup(PIN)
    (tmp_path / "outbox.json").write_text("{}")
    vault.wipe()
    assert calls == [1] and list(tmp_path.iterdir()) == [] and not vault.is_unlocked


def test_change_pin_keeps_the_data_key(tmp_path: Path) -> None:
    clock = Clock()
    vault = make(tmp_path, clock)
    key = vault.setup(PIN)
    salt = json.loads((tmp_path / FILENAME).read_text())["salt"]
    vault.change_pin(PIN, OTHER)
    assert json.loads((tmp_path / FILENAME).read_text())["salt"] != salt
    vault.lock()
    with pytest.raises(WrongPin):
        vault.unlock(PIN)
    assert vault.unlock(OTHER) == key
    assert vault.status().attempts_left == 10


def test_change_pin_with_a_wrong_old_pin_counts(tmp_path: Path) -> None:
    vault = make(tmp_path)
    key = vault.setup(PIN)
    with pytest.raises(WrongPin) as info:
        vault.change_pin("111222", OTHER)
    assert info.value.attempts_left == 9
    assert vault.unlock(PIN) == key


@pytest.mark.parametrize(
    "pin",
    [
        "",
        "12345",
        "1234567890123",
        "12a456",
        "12 456",
        "١٢٣٤٥٦",
        "²³⁴⁵⁶⁷",
        "000000",
        "999999999",
        "123456",
        "456789",
        "987654",
        "890123",
        "321098",
    ],
)
def test_invalid_new_pins_are_refused(tmp_path: Path, pin: str) -> None:
    vault = make(tmp_path)
    with pytest.raises(InvalidPin) as info:
        vault.setup(pin)
    assert pin not in str(info.value) or not pin
    assert not vault.is_set_up


@pytest.mark.parametrize("pin", ["482915", "000001", "135790", "271828182845", "112233"])
def test_acceptable_pins(tmp_path: Path, pin: str) -> None:
    assert len(make(tmp_path).setup(pin)) == 32


def test_malformed_pin_at_unlock_is_not_an_attempt(tmp_path: Path) -> None:
    vault = make(tmp_path)
    vault.setup(PIN)
    with pytest.raises(InvalidPin):
        vault.unlock("12")
    assert vault.status().attempts_left == 10


def test_no_secret_on_disk_or_in_repr(tmp_path: Path) -> None:
    vault = make(tmp_path)
    key = vault.setup(PIN)
    vault.change_pin(PIN, OTHER)
    raw = (tmp_path / FILENAME).read_bytes()
    forms = [
        key,
        key.hex().encode(),
        key.hex().upper().encode(),
        base64.b64encode(key),
        base64.urlsafe_b64encode(key),
        base64.b64encode(key).rstrip(b"="),
    ]
    for form in forms + [PIN.encode(), OTHER.encode()]:
        assert form not in raw
    assert [p.name for p in tmp_path.iterdir()] == [FILENAME]
    for text in (repr(vault), repr(vault.status())):
        assert PIN not in text and OTHER not in text and key.hex() not in text
    assert (tmp_path / FILENAME).stat().st_mode & 0o077 == 0


@pytest.mark.parametrize(
    "damage",
    [
        lambda raw: b"not json {",
        lambda raw: b"",
        lambda raw: b"[1, 2]",
        lambda raw: raw[: len(raw) // 2],
        lambda raw: json.dumps({k: v for k, v in json.loads(raw).items() if k != "salt"}).encode(),
        lambda raw: json.dumps(json.loads(raw) | {"n": 2**40}).encode(),
        lambda raw: json.dumps(json.loads(raw) | {"failures": "0"}).encode(),
        lambda raw: json.dumps(json.loads(raw) | {"next_attempt_at": None}).encode(),
        lambda raw: json.dumps(json.loads(raw) | {"nonce": "@@@"}).encode(),
        lambda raw: json.dumps(json.loads(raw) | {"wrapped": "AAAA"}).encode(),
        lambda raw: json.dumps(json.loads(raw) | {"version": 99}).encode(),
    ],
)
def test_damaged_file_is_reported_and_left_untouched(
    tmp_path: Path, damage: Callable[[bytes], bytes]
) -> None:
    make(tmp_path).setup(PIN)
    path = tmp_path / FILENAME
    damaged = damage(path.read_bytes())
    path.write_bytes(damaged)
    vault = make(tmp_path)
    for call in (lambda: vault.unlock(PIN), vault.status, lambda: vault.change_pin(PIN, OTHER)):
        with pytest.raises(VaultError, match="the vault file is damaged"):
            call()
    assert path.read_bytes() == damaged
    assert vault.is_set_up and not vault.is_unlocked


def test_calibrate_picks_a_power_of_two() -> None:
    params = calibrate()
    assert (params.r, params.p) == (8, 1)
    assert MIN_N <= params.n <= MAX_N and params.n & (params.n - 1) == 0
