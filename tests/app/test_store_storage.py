"""The encrypted journal and blob files: nothing readable on disk, damage detected, tears healed."""

from __future__ import annotations

import base64
import binascii
import gc
import hashlib
import json
import os
import threading
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.exceptions import InvalidTag
from tinydb import TinyDB, where

from app import filesafe, storeformat
from app import storage as journal
from app.errors import StoreCorrupted, StoreError
from app.store import Store

KEY = bytes(range(32))
NODE = "device-1"
CANARY = "Qx7canaryZ" + uuid.uuid4().hex


def open_store(directory: Path, key: bytes = KEY) -> Store:
    return Store.open(directory, key, node_id=NODE)


def journal_path(directory: Path) -> Path:
    return directory / "store.journal"


def entries(path: Path) -> list[tuple[int, int]]:
    """(start, end) of each journal entry, read from the documented format: the index is
    the first, at the offset the header gives (after the compacted records' parts)."""
    buf = path.read_bytes()
    pos, found = int.from_bytes(buf[24:32], "big"), []
    while pos < len(buf):
        length, _ = storeformat.FRAME.unpack_from(buf, pos)
        found.append((pos, pos + storeformat.FRAME.size + length))
        pos = found[-1][1]
    return found


def filled(directory: Path, batches: int = 6) -> list[str]:
    """A store with one patient per batch; returns their ids in order."""
    store = open_store(directory)
    ids = [store.put("patient", {"name": f"Patient {n}"})["id"] for n in range(batches)]
    store.close()
    return ids


def forms(secret: str) -> list[bytes]:
    """Ways a string could leak into a file: raw, UTF-16, hex, base64 at every alignment."""
    raw = secret.encode()
    found = [raw, secret.encode("utf-16-le"), secret.encode("utf-16-be")]
    found += [json.dumps(secret).encode(), binascii.hexlify(raw), binascii.hexlify(raw).upper()]
    for pad in range(3):
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            text = encode(b"\0" * pad + raw)
            found.append(text[4:-4] if pad else text[:-4])  # the part not touched by padding
    return found


def assert_nowhere(directory: Path, secret: str) -> None:
    """No file under ``directory`` holds ``secret`` in any form. A compaction may be running
    beside the scan: a temporary file it renames away between the listing and the read is
    skipped here and read under its new name by the caller's next scan."""
    files = [p for p in directory.rglob("*") if p.is_file()]
    assert files
    for path in files:
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            continue
        for form in forms(secret):
            assert form not in data, (path.name, form)


def test_a_canary_never_reaches_the_disk(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(journal, "COMPACT_MIN_BYTES", 16_384)
    store = open_store(tmp_path / "s")
    p = store.put("patient", {"name": CANARY, "address": CANARY})
    store.put("visit", {"patient_id": p["id"], "summary": f"note {CANARY} note"})
    store.set_meta("token", CANARY)
    blob = store.put_blob(b"JPEG" + CANARY.encode() * 10)
    for n in range(300):  # enough churn for automatic compactions
        store.put("patient", {"phone": f"555-{n:04d}", "address": f"{CANARY} {n}"}, p["id"])
    assert_nowhere(tmp_path, CANARY)  # while a compaction may still be writing
    store.wait_compacted()
    assert_nowhere(tmp_path, CANARY)
    store.compact()
    assert_nowhere(tmp_path, CANARY)
    assert not any(blob in p.name for p in tmp_path.rglob("*"))  # names hide the hash too
    store.close()
    store = open_store(tmp_path / "s")
    assert store.get(p["id"])["fields"]["name"] == CANARY  # type: ignore[index]
    assert store.get_meta("token") == CANARY and CANARY.encode() in store.get_blob(blob)  # type: ignore[operator]
    store.close()


def test_saves_append_instead_of_rewriting(tmp_path: Path) -> None:
    store = open_store(tmp_path / "s")
    p = store.put("patient", {"name": "Ada"})
    for n in range(50):
        store.put("task", {"patient_id": p["id"], "title": f"t{n}" * 50})
    path = journal_path(tmp_path / "s")
    before = path.read_bytes()
    store.put("patient", {"phone": "555"}, p["id"])
    after = path.read_bytes()
    assert after.startswith(before) and len(after) - len(before) < 2_000
    store.close()


@pytest.mark.parametrize(
    "where_",
    ["magic", "file_id", "header_tag", "first_frame", "middle_payload", "last_entry", "last_byte"],
)
def test_a_flipped_byte_is_reported_and_the_file_left_untouched(
    tmp_path: Path, where_: str
) -> None:
    filled(tmp_path / "s")
    path = journal_path(tmp_path / "s")
    spans = entries(path)
    middle, last = spans[len(spans) // 2], spans[-1]
    offset = {
        "magic": 3,
        "file_id": 12,
        "header_tag": storeformat.HEADER_LEN - 8,
        "first_frame": spans[0][0] + 2,
        "middle_payload": (middle[0] + middle[1]) // 2,
        "last_entry": (last[0] + last[1]) // 2,
        "last_byte": last[1] - 1,
    }[where_]
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x40
    path.write_bytes(bytes(data))
    with pytest.raises(StoreCorrupted, match="damaged"):
        open_store(tmp_path / "s")
    assert path.read_bytes() == bytes(data)


@pytest.mark.parametrize("attack", ["swap", "drop_middle", "duplicate", "foreign", "garbage"])
def test_reordered_removed_or_foreign_entries_are_detected(tmp_path: Path, attack: str) -> None:
    filled(tmp_path / "s")
    filled(tmp_path / "other")
    path = journal_path(tmp_path / "s")
    data = path.read_bytes()
    spans = entries(path)
    chunks = [data[a:b] for a, b in spans]
    if attack == "swap":
        chunks[1], chunks[2] = chunks[2], chunks[1]
    elif attack == "drop_middle":
        del chunks[2]
    elif attack == "duplicate":
        chunks.insert(3, chunks[2])
    elif attack == "foreign":  # same key, another file: bound to its file id
        other = journal_path(tmp_path / "other")
        a, b = entries(other)[2]
        chunks[2] = other.read_bytes()[a:b]
    else:
        chunks.append(os.urandom(200))
    tampered = data[: spans[0][0]] + b"".join(chunks)
    path.write_bytes(tampered)
    with pytest.raises(StoreCorrupted):
        open_store(tmp_path / "s")
    assert path.read_bytes() == tampered


@pytest.mark.parametrize("keep", [3, storeformat.FRAME.size, storeformat.FRAME.size + 20, -1])
def test_a_torn_final_entry_is_dropped_and_the_rest_opens(tmp_path: Path, keep: int) -> None:
    ids = filled(tmp_path / "s")
    path = journal_path(tmp_path / "s")
    start, end = entries(path)[-1]
    cut = end - 1 if keep == -1 else start + keep
    os.truncate(path, cut)
    store = open_store(tmp_path / "s")
    assert [p["id"] for p in store.list("patient")] == ids[:-1]
    assert path.stat().st_size == start  # only the torn bytes went
    store.put("patient", {"name": "After the crash"})
    store.close()
    store = open_store(tmp_path / "s")
    assert len(store.list("patient")) == len(ids)
    store.close()


LONG_ADDRESS = "Long Street " + "n" * 480  # a final entry spanning several disk sectors


def _grow(directory: Path, pad: int) -> list[str]:
    """``filled``, a setting of ``pad`` characters, then a patient with a long address."""
    ids = filled(directory)
    store = open_store(directory)
    store.set_meta("pad", "p" * pad)
    ids.append(store.put("patient", {"name": "Last", "address": LONG_ADDRESS})["id"])
    store.close()
    return ids


def final_entry(
    directory: Path, *, start_at: int | None = None, end_at: int | None = None
) -> tuple[list[str], tuple[int, int]]:
    """A store whose long final entry starts (or ends) ``*_at`` bytes into a disk sector;
    (patient ids, the final entry's (start, end)). Entry sizes depend only on content
    lengths, so a probe store tells how much padding puts the entry there."""
    sector = storeformat.SECTOR
    probe = directory.with_name(directory.name + "-probe")
    _grow(probe, 0)
    start, end = entries(journal_path(probe))[-1]
    target = start_at if start_at is not None else (end_at or 0) - (end - start)
    ids = _grow(directory, (target - start) % sector)
    found = entries(journal_path(directory))[-1]
    assert found[1] - found[0] == end - start > 2 * sector
    assert start_at is None or found[0] % sector == start_at % sector
    assert end_at is None or found[1] % sector == end_at % sector
    return ids, found


@pytest.mark.parametrize(
    "how",
    [
        "zeros_appended",
        "last_sector_zeroed",
        "last_sectors_zeroed",
        "whole_entry_zeroed",
        "frame_cut_at_a_sector",
    ],
)
def test_a_zero_filled_tail_from_a_power_cut_is_a_tear(tmp_path: Path, how: str) -> None:
    """A power cut leaves whole sectors unwritten (zeros up to the file's end): a tear."""
    sector = storeformat.SECTOR
    at = sector - 3 if how == "frame_cut_at_a_sector" else 100  # the frame straddles
    ids, (start, end) = final_entry(tmp_path / "s", start_at=at)
    path = journal_path(tmp_path / "s")
    data = bytearray(path.read_bytes())
    expected, size = ids[:-1], start
    cut = {
        "last_sector_zeroed": (end - 1) // sector * sector,
        "last_sectors_zeroed": (start // sector + 1) * sector,
        "whole_entry_zeroed": start,  # the frame header itself never landed
        "frame_cut_at_a_sector": start + 3,
    }.get(how)
    if cut is None:  # zeros_appended
        data += bytes(4096)
        expected, size = ids, end
    else:
        assert cut == start or cut % sector == 0
        data[cut:end] = bytes(end - cut)
    path.write_bytes(bytes(data))
    store = open_store(tmp_path / "s")
    assert [p["id"] for p in store.list("patient")] == expected
    store.close()
    assert path.stat().st_size == size


@pytest.mark.parametrize(
    "how", ["tag_zeroed", "last_64_bytes_zeroed", "ciphertext_zeroed", "frame_zeroed"]
)
def test_a_zeroed_tag_or_ciphertext_of_a_complete_final_entry_is_damage(
    tmp_path: Path, how: str
) -> None:
    """Zeros that do not run from a sector boundary to the end were not left by a power
    cut: the final entry was altered. Reported like any tampering; the file stays as is."""
    ids, (start, end) = final_entry(tmp_path / "s", end_at=storeformat.SECTOR - 100)
    path = journal_path(tmp_path / "s")
    data = bytearray(path.read_bytes())
    span = {
        "tag_zeroed": (end - storeformat.TAG, end),
        "last_64_bytes_zeroed": (end - 64, end),
        "ciphertext_zeroed": (end - 200, end - storeformat.TAG),
        "frame_zeroed": (start, start + storeformat.FRAME.size),
    }[how]
    data[span[0] : span[1]] = bytes(span[1] - span[0])
    path.write_bytes(bytes(data))
    with pytest.raises(StoreCorrupted, match="damaged"):
        open_store(tmp_path / "s")
    assert path.read_bytes() == bytes(data)


def test_a_wrong_key_is_a_clear_error_and_changes_nothing(tmp_path: Path) -> None:
    filled(tmp_path / "s")
    before = journal_path(tmp_path / "s").read_bytes()
    with pytest.raises(StoreCorrupted, match="wrong key"):
        open_store(tmp_path / "s", key=os.urandom(32))
    assert journal_path(tmp_path / "s").read_bytes() == before
    with pytest.raises(ValueError):
        open_store(tmp_path / "t", key=b"short")


@pytest.mark.parametrize("content", [b"", b"{}", os.urandom(500)])
def test_a_file_that_is_not_a_journal_is_refused(tmp_path: Path, content: bytes) -> None:
    (tmp_path / "s").mkdir()
    journal_path(tmp_path / "s").write_bytes(content)
    with pytest.raises(StoreCorrupted):
        open_store(tmp_path / "s")
    assert journal_path(tmp_path / "s").read_bytes() == content


def test_document_ids_are_bound_to_their_ciphertext(tmp_path: Path) -> None:
    storage = journal.JournalStorage(tmp_path / "j", KEY)
    try:
        file_id = os.urandom(16)
        head = json.dumps({"k": [["meta", "A"]], "r": [], "p": []}).encode()
        sealed = storage._seal(file_id, 2, head, b'[{"secret":1}]')
        forged_head = json.dumps({"k": [["meta", "B"]], "r": [], "p": []}).encode()
        other = storage._seal(file_id, 2, forged_head, b"[null]")
        spliced = other[: 16 + int.from_bytes(other[12:16], "big")]
        spliced += sealed[16 + int.from_bytes(sealed[12:16], "big") :]
        with pytest.raises(InvalidTag):
            storage._open(file_id, 2, memoryview(spliced), len(spliced), whole=True)
        opened = storage._open(file_id, 2, memoryview(sealed), len(sealed), whole=True)
        assert opened[0]["k"] == [["meta", "A"]]
    finally:
        storage.close()


def test_a_records_part_is_bound_to_its_id(tmp_path: Path) -> None:
    storage = journal.JournalStorage(tmp_path / "j", KEY)
    try:
        part = storage._seal_part(b"A" * 16, [b'{"secret":1}'])
        path = tmp_path / "part"
        path.write_bytes(part)
        fd = os.open(path, os.O_RDONLY)
        try:
            right = storeformat.Part(b"A" * 16, 0, len(part), 1)
            assert storage._read_part(fd, right) == [{"secret": 1}]
            with pytest.raises(StoreCorrupted, match="does not authenticate"):
                storage._read_part(fd, storeformat.Part(b"B" * 16, 0, len(part), 1))
        finally:
            os.close(fd)
    finally:
        storage.close()


def test_compaction_keeps_everything_and_shrinks_the_file(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr(journal, "COMPACT_MIN_BYTES", 8_192)
    compactions = []
    real = journal.JournalStorage._compact

    def counting(self: journal.JournalStorage, repack: bool = False) -> None:
        compactions.append(self.size)
        real(self, repack)

    monkeypatch.setattr(journal.JournalStorage, "_compact", counting)
    store = open_store(tmp_path / "s")
    p = store.put("patient", {"name": "Ada"})
    tasks = [store.put("task", {"patient_id": p["id"], "title": f"t{n}"})["id"] for n in range(20)]
    for n in range(200):
        store.put("task", {"title": f"edit {n} " + "x" * 150}, tasks[n % 20])
        store.acknowledge(store.last_mutation_id - 5)
        store.wait_compacted()  # compactions run beside the saves: let each finish
    store.set_meta("cursor", 9)
    path = journal_path(tmp_path / "s")
    grown = path.stat().st_size
    assert len(compactions) >= 3
    store.compact()
    assert path.stat().st_size <= grown and grown < 2.5 * path.stat().st_size
    expected = {t: store.get(t) for t in tasks}
    outbox = store.outbox()
    store.close()
    store = open_store(tmp_path / "s")
    assert {t: store.get(t) for t in tasks} == expected and store.outbox() == outbox
    assert store.get_meta("cursor") == 9 and store.last_mutation_id == 221
    assert [m["id"] for m in outbox] == list(range(217, 222))
    store.close()


class PausedEncoding:
    """Holds a compaction in the middle of writing its new file until released."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.started, self.release = threading.Event(), threading.Event()
        real = journal.JournalStorage._encode

        def paused(storage: journal.JournalStorage, *args: Any, **kwargs: Any) -> Any:
            if kwargs.get("cancellable"):  # a compaction, not the first file of a store
                self.storage = storage
                self.started.set()
                assert self.release.wait(10), "the test never released the compaction"
            return real(storage, *args, **kwargs)

        monkeypatch.setattr(journal.JournalStorage, "_encode", paused)


def churn(store: Store, task_id: str, until: Callable[[], bool], limit: int = 2_000) -> int:
    """Edit one task (the server taking each edit) until ``until()``; how many it took."""
    for n in range(limit):
        if until():
            return n
        store.put("task", {"title": f"edit {n} " + "x" * 180}, task_id)
        store.acknowledge(store.last_mutation_id)
    raise AssertionError("no compaction started")


def test_a_save_starts_a_compaction_and_does_not_wait_for_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(journal, "COMPACT_MIN_BYTES", 16_384)
    paused = PausedEncoding(monkeypatch)
    store = open_store(tmp_path / "s")
    p = store.put("patient", {"name": "Ada"})
    task = store.put("task", {"patient_id": p["id"], "title": "first"})["id"]
    churn(store, task, paused.started.is_set)
    # The compaction is stuck in its encoding: these saves would hang if they waited for it.
    during = [store.put("task", {"patient_id": p["id"], "title": f"during {n}"}) for n in range(30)]
    store.delete(during[0]["id"])
    path = journal_path(tmp_path / "s")
    grown, old_entries = path.stat().st_size, len(entries(path))
    saved_meanwhile = len(paused.storage._since or ())  # since the compaction's snapshot
    assert saved_meanwhile >= 31
    paused.release.set()
    store.wait_compacted()
    # One entry of live documents, then the batches saved meanwhile, re-sealed.
    assert len(entries(path)) == 1 + saved_meanwhile < old_entries
    assert path.stat().st_size < grown
    titles = sorted(t["fields"]["title"] for t in store.list("task"))
    store.close()
    store = open_store(tmp_path / "s")  # the new file holds the saves made meanwhile
    assert sorted(t["fields"]["title"] for t in store.list("task")) == titles
    assert len(titles) == 30 and store.get(during[0]["id"]) is None
    store.put("task", {"patient_id": p["id"], "title": "after"})  # appends to the new file
    store.close()
    store = open_store(tmp_path / "s")
    assert len(store.list("task")) == 31
    store.close()


def test_reads_go_on_while_a_compaction_switches_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    store = open_store(tmp_path / "s")
    p = store.put("patient", {"name": "Ada"})
    real_replace, read_meanwhile = journal.os.replace, []

    def replace(src: Any, dst: Any) -> None:  # the moment the journal is closed and renamed
        read_meanwhile.append(store.get(p["id"]))
        real_replace(src, dst)

    monkeypatch.setattr(journal.os, "replace", replace)
    store.compact()
    assert read_meanwhile == [store.get(p["id"])]
    store.close()


def test_closing_stops_a_compaction_and_leaves_no_temp_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(journal, "COMPACT_MIN_BYTES", 16_384)
    monkeypatch.setattr(storeformat, "PART_DOCS", 2)  # so that it checks between parts
    paused = PausedEncoding(monkeypatch)
    store = open_store(tmp_path / "s")
    p = store.put("patient", {"name": "Ada"})
    task = store.put("task", {"patient_id": p["id"], "title": "first"})["id"]
    for n in range(20):
        store.put("task", {"patient_id": p["id"], "title": f"other {n}"})
    churn(store, task, paused.started.is_set)
    saved = store.get(task)
    closing = threading.Thread(target=store.close)
    closing.start()
    paused.release.set()
    closing.join(10)
    assert not closing.is_alive()
    assert not (tmp_path / "s" / "store.journal.tmp").exists()
    store = open_store(tmp_path / "s")
    assert store.get(task) == saved and len(store.list("task")) == 21
    store.close()


def test_a_failed_compaction_beside_the_saves_loses_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(journal, "COMPACT_MIN_BYTES", 16_384)
    failures = []

    def full_disk(*_args: object, **_kwargs: object) -> None:
        failures.append(1)
        raise OSError("no space left on device")

    store = open_store(tmp_path / "s")
    monkeypatch.setattr(journal, "write_temp", full_disk)
    p = store.put("patient", {"name": "Ada"})
    task = store.put("task", {"patient_id": p["id"], "title": "first"})["id"]
    churn(store, task, lambda: bool(failures))
    store.wait_compacted()
    assert "compaction failed (OSError)" in caplog.text
    monkeypatch.undo()
    last = store.put("task", {"title": "saved after the failure"}, task)
    store.compact()
    store.close()
    store = open_store(tmp_path / "s")
    assert store.get(task) == last
    store.close()


def test_a_crash_before_the_rename_leaves_the_old_journal(tmp_path: Path, monkeypatch) -> None:
    ids = filled(tmp_path / "s")
    store = open_store(tmp_path / "s")

    def crash(*_args: object) -> None:
        raise OSError("power cut")

    monkeypatch.setattr(journal.os, "replace", crash)
    with pytest.raises(OSError):
        store.compact()
    store.put("patient", {"name": "Still saved"})
    store.close()
    monkeypatch.undo()
    (tmp_path / "s" / "store.journal.tmp").write_bytes(b"half a compaction")
    store = open_store(tmp_path / "s")
    assert len(store.list("patient")) == len(ids) + 1
    assert not (tmp_path / "s" / "store.journal.tmp").exists()
    store.close()


def test_a_crash_after_the_rename_keeps_appending_to_the_new_file(
    tmp_path: Path, monkeypatch
) -> None:
    ids = filled(tmp_path / "s")
    store = open_store(tmp_path / "s")

    def crash(_directory: Path) -> None:
        raise OSError("directory fsync failed")

    monkeypatch.setattr(journal, "fsync_dir", crash)
    with pytest.raises(OSError):
        store.compact()
    monkeypatch.undo()
    store.put("patient", {"name": "After"})
    store.close()
    store = open_store(tmp_path / "s")
    assert len(store.list("patient")) == len(ids) + 1
    store.close()


def test_a_failed_append_is_rolled_back(tmp_path: Path, monkeypatch) -> None:
    filled(tmp_path / "s", batches=2)
    store = open_store(tmp_path / "s")
    size = journal_path(tmp_path / "s").stat().st_size
    calls = []

    def failing(fd: int) -> None:
        calls.append(fd)
        if len(calls) == 1:
            raise OSError("disk full")
        os.fsync(fd)

    monkeypatch.setattr(journal, "fsync", failing)
    with pytest.raises(OSError):
        store.put("patient", {"name": "Lost"})
    assert journal_path(tmp_path / "s").stat().st_size == size
    assert store.search_patients("lost") == [] and store.pending_count() == 2
    kept = store.put("patient", {"name": "Kept"})
    assert kept and store.last_mutation_id == 3
    store.close()
    store = open_store(tmp_path / "s")
    assert [p["fields"]["name"] for p in store.search_patients("")] == [
        "Kept", "Patient 0", "Patient 1"
    ]  # fmt: skip
    store.close()


def test_one_store_one_writer(tmp_path: Path) -> None:
    store = open_store(tmp_path / "s")
    with pytest.raises(StoreError, match="already open"):
        open_store(tmp_path / "s")
    store.close()
    open_store(tmp_path / "s").close()


def test_plain_tinydb_can_use_the_storage(tmp_path: Path) -> None:
    path = tmp_path / "db.journal"
    with TinyDB(path, KEY, storage=journal.JournalStorage) as db:
        db.insert({"name": CANARY, "n": 1})
        db.insert({"name": "other", "n": 2})
        db.update({"n": 3}, where("name") == "other")
        db.remove(where("n") == 1)
    assert_nowhere(tmp_path, CANARY)
    with TinyDB(path, KEY, storage=journal.JournalStorage) as db:
        assert db.all() == [{"name": "other", "n": 3}]


# -- blobs -------------------------------------------------------------------------


def test_blobs_round_trip_encrypted(tmp_path: Path) -> None:
    store = open_store(tmp_path / "s")
    data = os.urandom(3000) + CANARY.encode()
    digest = store.put_blob(data)
    assert digest == hashlib.sha256(data).hexdigest()
    assert store.put_blob(data) == digest  # idempotent
    assert store.get_blob(digest) == data
    files = list((tmp_path / "s" / "blobs").iterdir())
    assert len(files) == 1 and digest not in files[0].name
    assert data[:200] not in files[0].read_bytes()
    assert store.get_blob(hashlib.sha256(b"other").hexdigest()) is None
    store.delete_blob(digest)
    assert store.get_blob(digest) is None and list((tmp_path / "s" / "blobs").iterdir()) == []
    with pytest.raises(ValueError):
        store.get_blob("../store.journal")
    store.close()


def test_a_blob_write_that_crashes_leaves_no_file(tmp_path: Path, monkeypatch) -> None:
    store = open_store(tmp_path / "s")

    def crash(*_args: object) -> None:
        raise OSError("power cut")

    monkeypatch.setattr(journal.os, "replace", crash)
    with pytest.raises(OSError):
        store.put_blob(b"photo")
    monkeypatch.undo()
    assert store.get_blob(hashlib.sha256(b"photo").hexdigest()) is None
    assert [p.name for p in (tmp_path / "s" / "blobs").iterdir()] == []
    store.close()


@pytest.mark.parametrize("attack", ["flip", "swap"])
def test_a_damaged_or_swapped_blob_is_reported(tmp_path: Path, attack: str) -> None:
    store = open_store(tmp_path / "s")
    first, second = store.put_blob(b"first photo"), store.put_blob(b"second photo")
    blobs = tmp_path / "s" / "blobs"
    paths = {p.read_bytes(): p for p in blobs.iterdir()}
    target = sorted(paths.values())[0]
    if attack == "flip":
        data = bytearray(target.read_bytes())
        data[-3] ^= 1
        target.write_bytes(bytes(data))
    else:
        a, b = sorted(paths.values())
        a_bytes, b_bytes = a.read_bytes(), b.read_bytes()
        a.write_bytes(b_bytes)
        b.write_bytes(a_bytes)
    with pytest.raises(StoreCorrupted):
        for digest in (first, second):
            store.get_blob(digest)
    store.close()


def test_a_big_store_is_freed_in_a_thread_at_close(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(journal, "RELEASE_IN_THREAD", 5)
    released: list[journal.Data] = []
    real = journal._release
    monkeypatch.setattr(journal, "_release", lambda data: (released.append(data), real(data)))
    store = open_store(tmp_path / "s")
    for n in range(10):
        store.put("patient", {"name": f"Patient {n}"})
    store.close()
    for thread in threading.enumerate():
        if thread.name == "journal-release":
            thread.join(10)
    assert len(released) == 1 and released[0] and not any(released[0].values())
    store = open_store(tmp_path / "s")  # freed from memory, not from the disk
    assert len(store.list("patient")) == 10
    store.close()


def test_loaded_and_pulled_documents_are_kept_out_of_the_collector(tmp_path: Path) -> None:
    # Full collections walking 100k records stalled every thread (the UI's) for 300 ms.
    from benchmarks.store import build

    gc.unfreeze()
    store = open_store(tmp_path / "s")
    store.apply_pull(build(journal.FREEZE_BATCH, seed=1), [], 1)
    assert gc.get_freeze_count() > 0
    gc.unfreeze()
    store.put("patient", {"name": "One save"})  # a save of its own is not frozen
    assert gc.get_freeze_count() == 0
    store.close()
    store = open_store(tmp_path / "s")
    assert gc.get_freeze_count() > 0 and len(store.list()) == journal.FREEZE_BATCH + 1
    store.close()
    gc.unfreeze()


def test_a_compaction_flushes_as_it_writes_and_frees_the_old_file_gradually(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(journal, "SYNC_EVERY", 64 << 10)
    store = open_store(tmp_path / "s")
    p = store.put("patient", {"name": "Ada"})
    for n in range(60):
        store.put("visit", {"patient_id": p["id"], "summary": f"{n} " + "x" * 3_900})
    old_size = journal_path(tmp_path / "s").stat().st_size
    syncs: list[int] = []
    truncated: list[int] = []
    real_fsync, real_truncate = journal.fsync, journal.os.ftruncate
    counting = lambda fd: (syncs.append(fd), real_fsync(fd))  # noqa: E731
    monkeypatch.setattr(journal, "fsync", counting)
    monkeypatch.setattr(filesafe, "fsync", counting)  # write_temp's
    monkeypatch.setattr(
        journal.os, "ftruncate", lambda fd, n: (truncated.append(n), real_truncate(fd, n))
    )
    open_fds = len(os.listdir("/proc/self/fd"))
    store.compact()
    assert len(syncs) >= 3  # the new file as it is written, not once at the end
    steps = [old_size, *truncated]
    assert truncated[-1] == 0 and len(truncated) >= old_size // (64 << 10)
    assert all(0 < a - b <= 64 << 10 for a, b in zip(steps, steps[1:], strict=False))
    assert len(os.listdir("/proc/self/fd")) == open_fds  # the old journal was closed
    store.close()
