"""Records on disk (``app.storage`` format 2): a store opens from its index and the heads of
its journal, reads a record's part when asked, copies well-used parts when it compacts,
reports a damaged part when the part is read, and migrates a version 1 file on first open."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from app import journal_v1, storeformat
from app import storage as journal
from app.errors import StoreCorrupted
from app.store import Store

KEY = bytes(range(32))
NODE = "device-1"
V1 = Path(__file__).parent / "data" / "store-v1"


def open_store(directory: Path) -> Store:
    return Store.open(directory, KEY, node_id=NODE)


class PartReads:
    """Counts the parts decrypted (``JournalStorage._read_part``)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.count = 0
        real = journal.JournalStorage._read_part

        def counting(storage: journal.JournalStorage, fd: int, part: Any) -> Any:
            self.count += 1
            return real(storage, fd, part)

        monkeypatch.setattr(journal.JournalStorage, "_read_part", counting)


def pulled(n: int, patients: int = 20) -> list[dict[str, Any]]:
    """``n`` records as a server sends them: patients, then visits of theirs."""
    stamp = f"{1_790_000_000_000:015d}-00000-server"
    out = []
    for i in range(n):
        kind = "patient" if i < patients else "visit"
        fields: dict[str, Any] = (
            {"name": f"Patient {i:03d}"}
            if kind == "patient"
            else {"patient_id": out[i % patients]["id"], "summary": f"visit {i} " + "x" * 300}
        )
        out.append(
            {
                "id": f"00000000-0000-4000-8000-{i:012d}",
                "type": kind,
                "fields": fields,
                "clock": dict.fromkeys(fields, stamp),
                "rev": i + 1,
                "deleted": False,
            }
        )
    return out


@pytest.fixture
def big(tmp_path: Path) -> Iterator[Path]:
    """A store of 600 pulled records, compacted, with a few saves after the compaction."""
    store = open_store(tmp_path / "s")
    records = pulled(600)
    for start in range(0, 600, 200):
        store.apply_pull(records[start : start + 200], [], start + 200)
    store.compact()
    store.put("visit", {"summary": "edited after"}, records[100]["id"])
    store.put("patient", {"name": "Added after"})
    store.close()
    yield tmp_path / "s"


def test_opening_reads_no_record_and_a_read_reads_one_part(
    big: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    reads = PartReads(monkeypatch)
    store = open_store(big)
    try:
        assert reads.count == 0  # the index and the journal's heads only
        visit = store.get("00000000-0000-4000-8000-000000000300")
        assert visit is not None and visit["fields"]["summary"].startswith("visit 300")
        assert reads.count == 1
        store.get("00000000-0000-4000-8000-000000000301")  # same part, decoded once
        assert reads.count == 1
        edited = store.get("00000000-0000-4000-8000-000000000100")
        assert edited is not None and edited["fields"]["summary"] == "edited after"
        assert [p["fields"]["name"] for p in store.search_patients("added")] == ["Added after"]
    finally:
        store.close()


def test_decoded_parts_are_bounded(big: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(journal, "CACHE_PARTS", 3)
    store = open_store(big)
    try:
        assert len(store.list("visit")) == 580  # every part, each decoded once
        assert len(store._live()._cache) <= 3
    finally:
        store.close()


def test_a_compaction_copies_well_used_parts_as_they_are(big: Path) -> None:
    store = open_store(big)
    try:
        before = {p.id for p in store._live()._records.parts}
        expected = {r["id"]: r for r in store.list(include_deleted=True)}
        store.compact()
        after = store._live()._records.parts
        copied = before & {p.id for p in after}
        assert copied and len(copied) < len(after)  # old full parts kept, new ones packed
        assert {r["id"]: r for r in store.list(include_deleted=True)} == expected
    finally:
        store.close()
    store = open_store(big)
    try:
        assert {r["id"]: r for r in store.list(include_deleted=True)} == expected
    finally:
        store.close()


def _index_at(path: Path) -> int:
    return int.from_bytes(path.read_bytes()[24:32], "big")


@pytest.mark.parametrize("where_", ["compacted", "journal"])
def test_a_damaged_part_is_reported_when_read_and_the_rest_reads(big: Path, where_: str) -> None:
    path = big / "store.journal"
    store = open_store(big)
    parts = store._live()._records.parts
    if where_ == "compacted":
        part = parts[0]
    else:  # a part of the journal after the index, not in its last entry
        part = next(p for p in parts if p.at > _index_at(path))
        assert part is not parts[-1]
    victims = [
        i
        for i, (place, _) in store._live()._records.places.items()
        if storeformat.part_of(place) == parts.index(part)
    ]
    store.close()
    data = bytearray(path.read_bytes())
    data[part.at + part.length // 2] ^= 0x40
    path.write_bytes(bytes(data))
    store = open_store(big)  # opens: the part is not read yet
    try:
        with pytest.raises(StoreCorrupted, match="does not authenticate"):
            store.get(victims[0])
        rest = [i for i in store._live()._records.places if i not in victims]
        assert rest and all(store.get(i, include_deleted=True) is not None for i in rest)
    finally:
        store.close()
    assert path.read_bytes() == bytes(data)  # left as it is


def test_a_version_1_file_is_migrated_on_first_open(tmp_path: Path) -> None:
    shutil.copytree(V1, tmp_path / "s")
    expected = json.loads((tmp_path / "s" / "expected.json").read_text())
    path = tmp_path / "s" / "store.journal"
    assert path.read_bytes()[:8] == journal_v1.MAGIC_V1

    def everything(store: Store) -> dict[str, Any]:
        records = sorted(
            (store.get(r["id"], include_deleted=True) for r in store.list(include_deleted=True)),
            key=lambda r: r["id"],  # type: ignore[index]
        )
        return {
            "records": records,
            "outbox": store.outbox(),
            "meta": {k: store.get_meta(k) for k in store.meta_keys()},
            "blob": expected["blob"],
        }

    store = open_store(tmp_path / "s")
    try:
        assert path.read_bytes()[:8] == storeformat.MAGIC  # rewritten before it opened
        assert everything(store) == expected
        assert store.get_blob(expected["blob"]) == b"demo-photo"
        assert [p["fields"]["name"] for p in store.search_patients("demo patient 059")] == [
            "Demo Patient 059"
        ]
        store.put("patient", {"name": "After the migration"})
    finally:
        store.close()
    store = open_store(tmp_path / "s")
    try:
        records = everything(store)["records"]
        known = {r["id"] for r in expected["records"]}
        assert [r for r in records if r["id"] in known] == expected["records"]
        assert [r["fields"]["name"] for r in records if r["id"] not in known] == [
            "After the migration"
        ]
    finally:
        store.close()


def test_a_crash_during_the_migration_leaves_the_version_1_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    shutil.copytree(V1, tmp_path / "s")
    path = tmp_path / "s" / "store.journal"
    original = path.read_bytes()

    def crash(*args: Any, **kwargs: Any) -> None:
        raise OSError("power cut")

    monkeypatch.setattr(journal.os, "replace", crash)
    with pytest.raises(OSError):
        open_store(tmp_path / "s")
    assert path.read_bytes() == original and not (tmp_path / "s" / "store.journal.tmp").exists()
    monkeypatch.undo()
    store = open_store(tmp_path / "s")
    try:
        assert len(store.list(include_deleted=True)) == 180
    finally:
        store.close()


def test_many_saves_start_a_compaction_though_nothing_was_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # New records only: the file never grows past twice the live data, but each save is an
    # entry whose head an open reads.
    monkeypatch.setattr(journal, "COMPACT_MIN_BYTES", 4_096)
    monkeypatch.setattr(journal, "COMPACT_ENTRIES", 50)
    store = open_store(tmp_path / "s")
    try:
        for n in range(60):
            store.put("patient", {"name": f"Patient {n}"})
        store.wait_compacted()
        path = tmp_path / "s" / "store.journal"
        assert _index_at(path) > storeformat.HEADER_LEN  # compacted: the records before the index
        assert store._live()._seq < 50
        assert len(store.list("patient")) == 60
    finally:
        store.close()


def test_a_closing_store_stops_freeing_the_old_file_gradually(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Freed a MB at a time at FREE_RATE beside the saves; once the store closes (the app
    # locks) nobody saves, and a lock must not wait for it.
    path = tmp_path / "old"
    path.write_bytes(bytes(3 << 20))
    truncated: list[int] = []
    real = journal.os.ftruncate
    monkeypatch.setattr(journal.os, "ftruncate", lambda fd, n: (truncated.append(n), real(fd, n)))
    journal._free(journal.os.open(path, journal.os.O_RDWR), lambda: False)
    assert truncated == [2 << 20, 1 << 20, 0]
    truncated.clear()
    path.write_bytes(bytes(3 << 20))
    journal._free(journal.os.open(path, journal.os.O_RDWR), lambda: True)
    assert truncated == [] and path.stat().st_size == 3 << 20  # (an unlinked file: the close)
