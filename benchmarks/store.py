"""Store benchmark: save, open and search at a realistic size, against stock TinyDB and sqlite3.

``python -m benchmarks.store --records 10000`` builds the records (about 2 KB each: one
patient in ten, the rest visits with notes; fixed seed) in a temp directory, measures, and
prints one JSON object as its last line. ``--quick`` is a small run for tests.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import sqlite3
import statistics
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from tinydb import TinyDB
from tinydb.storages import JSONStorage

from app.store import Store

# fmt: off
FIRST = ["Ada", "Zoë", "José", "Hélène", "Marie", "Łukasz", "Ngozi", "Mateo", "Aiyana", "Søren",
         "Chloé", "Ibrahim", "Renée", "Yuki"]
LAST = ["Dupré", "Okafor", "Nguyen", "García", "Müller", "Lefèbvre", "Kowalski", "Haddad",
        "Brown", "Côté", "Silva", "Ødegaard"]
WORDS = ["lives", "alone", "daughter", "visits", "weekly", "reports", "falls", "kitchen",
         "stairs", "medication", "review", "appetite", "poor", "fridge", "empty", "transport",
         "needed", "clinic", "appointment", "caregiver", "stressed", "housing", "repair",
         "heating", "bill", "overdue", "neighbour", "helps", "pharmacy", "delivery", "follow"]
# fmt: on
QUERIES = ["helene", "ZOE dup", "lukasz kowal", "ch", "garc", "SØREN ODEG", "ma", "ngozi 12"]
SAVES, OPENS, SEARCHES, STOCK_SAVES = 51, 5, 51, 7


def build(count: int, seed: int) -> list[dict[str, Any]]:
    """Deterministic fake records as a server would send them (``rev`` set, clocks per field)."""
    rng = random.Random(seed)
    ids = iter(uuid.UUID(int=rng.getrandbits(128), version=4) for _ in range(count))
    stamp = "001790000000000-00000-server"
    records: list[dict[str, Any]] = []
    patients: list[str] = []
    for n in range(count):
        record_id = str(next(ids))
        if n % 10 == 0:
            type_name, fields = "patient", _patient(rng)
            patients.append(record_id)
        else:
            type_name, fields = "visit", _visit(rng, rng.choice(patients))
        records.append(
            {
                "id": record_id,
                "type": type_name,
                "fields": fields,
                "clock": dict.fromkeys(fields, stamp),
                "rev": n + 1,
                "deleted": False,
            }
        )
    return records


def _text(rng: random.Random, chars: int) -> str:
    words: list[str] = []
    while sum(map(len, words)) + len(words) < chars:
        words.append(rng.choice(WORDS))
    return " ".join(words)[:chars]


def _patient(rng: random.Random) -> dict[str, Any]:
    return {
        "name": f"{rng.choice(FIRST)} {rng.choice(LAST)}-{rng.randrange(1000)}",
        "birth_date": f"19{rng.randrange(20, 70)}-0{rng.randrange(1, 10)}-1{rng.randrange(10)}",
        "phone": f"555-{rng.randrange(10000):04d}",
        "address": f"{rng.randrange(1, 999)} {rng.choice(LAST)} Street, {_text(rng, 400)}",
        "language": "fr",
        "risk_flags": ["falls", "lives_alone"],
        "consent_status": "verbal",
        "caregivers": [{"name": rng.choice(FIRST), "relation": "daughter", "phone": "555"}],
        "status": "active",
    }


def _visit(rng: random.Random, patient_id: str) -> dict[str, Any]:
    return {
        "patient_id": patient_id,
        "setting": rng.choice(["office", "home", "phone"]),
        "started_at": f"2026-11-{rng.randrange(10, 29)}T10:00:00",
        "source": "hospital",
        "needs": ["food", "housing"],
        "screening": {f"q{i}": rng.randrange(4) for i in range(8)},
        "scores": {"phq2": rng.randrange(7)},
        "summary": _text(rng, 1700),
        "triage": "short_term_contact",
        "status": "draft",
    }


def timed(action: Callable[[], object]) -> float:
    """Milliseconds one call takes."""
    start = time.perf_counter()
    action()
    return (time.perf_counter() - start) * 1000


def median_ms(action: Callable[[int], object], times: int) -> float:
    """Median milliseconds of ``action(i)`` over ``times`` calls."""
    return statistics.median(timed(lambda i=i: action(i)) for i in range(times))  # type: ignore[misc]


def bench_store(root: Path, records: list[dict[str, Any]], saves: int) -> dict[str, Any]:
    """Save, open and search on the encrypted store."""
    key, rng = os.urandom(32), random.Random(1)
    store = Store.open(root / "store", key, node_id="bench-device")
    for start in range(0, len(records), 1000):  # as the sync engine pulls: pages
        store.apply_pull(records[start : start + 1000], [], start + 1000)
    visits = [r["id"] for r in records if r["type"] == "visit"]

    def save(i: int) -> None:
        store.put("visit", {"summary": f"edit {i}: {_text(rng, 1500)}"}, rng.choice(visits))

    save_ms = median_ms(save, saves)
    patients = len(store.list("patient"))
    search_ms = median_ms(lambda i: store.search_patients(QUERIES[i % len(QUERIES)]), SEARCHES)
    journal_bytes = (root / "store" / "store.journal").stat().st_size
    store.close()
    return {
        "save_ms": save_ms,
        "open_store": lambda: Store.open(root / "store", key, node_id="bench-device").close(),
        "search_ms": search_ms,
        "patients": patients,
        "journal_bytes": journal_bytes,
    }


def bench_tinydb(root: Path, records: list[dict[str, Any]], saves: int) -> dict[str, Any]:
    """Stock TinyDB, JSONStorage, unencrypted: update one document; open and read."""
    path, rng = root / "tinydb.json", random.Random(1)
    with TinyDB(path, storage=JSONStorage) as db:
        table = db.table("records")
        doc_ids = table.insert_multiple(records)

        def save(i: int) -> None:
            doc_id = rng.choice(doc_ids)
            doc = table.get(doc_id=doc_id)
            assert doc is not None
            fields = dict(doc["fields"])
            fields["summary"] = f"edit {i}: {_text(rng, 1500)}"
            table.update({"fields": fields}, doc_ids=[doc_id])

        save_ms = median_ms(save, saves)

    def reopen() -> None:
        with TinyDB(path, storage=JSONStorage) as db:
            len(db.table("records"))  # TinyDB reads lazily: this parses the file

    return {"tinydb_save_ms": save_ms, "open_tinydb": reopen}


def bench_opens(open_store: Callable[[], None], open_tinydb: Callable[[], None]) -> dict[str, Any]:
    """Both opens, interleaved, so a burst of load on the machine hits both alike."""
    ours, stock = [], []
    for _ in range(OPENS):
        ours.append(timed(open_store))
        stock.append(timed(open_tinydb))
    return {"open_ms": statistics.median(ours), "tinydb_open_ms": statistics.median(stock)}


def bench_sqlite(root: Path, records: list[dict[str, Any]], saves: int) -> dict[str, Any]:
    """stdlib sqlite3 in WAL mode: update one row and commit."""
    rng = random.Random(1)
    conn = sqlite3.connect(root / "sqlite.db")
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")  # durable like the others: fsync per commit
    conn.execute("CREATE TABLE records (id TEXT PRIMARY KEY, doc TEXT NOT NULL)")
    with conn:
        conn.executemany(
            "INSERT INTO records VALUES (?, ?)", [(r["id"], json.dumps(r)) for r in records]
        )

    def save(i: int) -> None:
        record = records[rng.randrange(len(records))]
        doc = dict(record, fields={**record["fields"], "summary": f"edit {i}"})
        with conn:
            conn.execute("UPDATE records SET doc = ? WHERE id = ?", (json.dumps(doc), record["id"]))

    result = {"sqlite_save_ms": median_ms(save, saves)}
    conn.close()
    return result


def run(count: int, seed: int, directory: str | None, quick: bool) -> dict[str, Any]:
    """All measurements in one temp directory."""
    records = build(count, seed)
    saves, stock_saves = (5, 3) if quick else (SAVES, STOCK_SAVES)
    with tempfile.TemporaryDirectory(dir=directory) as tmp:
        root = Path(tmp)
        result: dict[str, Any] = {"records": count}
        result |= bench_store(root, records, saves)
        result |= bench_tinydb(root, records, stock_saves)
        result |= bench_sqlite(root, records, saves)
        result |= bench_opens(result.pop("open_store"), result.pop("open_tinydb"))
    result = {k: round(v, 3) if isinstance(v, float) else v for k, v in result.items()}
    result["save_speedup"] = round(result["tinydb_save_ms"] / max(result["save_ms"], 1e-6), 1)
    result["open_ratio"] = round(result["open_ms"] / max(result["tinydb_open_ms"], 1e-6), 3)
    return result


def main(argv: Sequence[str] | None = None) -> None:
    """Parse arguments, run, print the JSON line."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.store", description=__doc__)
    parser.add_argument("--records", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--dir", help="where to make the temp directory (default: system temp)")
    parser.add_argument("--quick", action="store_true", help="200 records, few repetitions")
    args = parser.parse_args(argv)
    count = 200 if args.quick else args.records
    if count < 10:
        parser.error("--records must be at least 10")
    print(f"store benchmark: {count} records", file=sys.stderr)
    print(json.dumps(run(count, args.seed, args.dir, args.quick)), flush=True)


if __name__ == "__main__":
    main()
