"""Big caseloads on small phones: the store, the lists, the pull, the server and web mode at
scale, each figure a ratio to a baseline measured in the same run. The last line printed is
one JSON object.

    python -m benchmarks.scale [--records 100000] [--quick] [--skip-server] [--skip-web]

Keys (targets in ``TARGETS``; ``met`` says which hold in this run):

- ``open_vs_parse_100k``: opening the store (after the key derivation) ÷ ``json.loads`` of
  the same records' plaintext; ``memory_vs_json_100k``: memory the open store holds
  (tracemalloc) ÷ the plaintext's size.
- ``save_during_compaction``: the worst save while a compaction of the whole store runs ÷ the
  median save.
- ``loop_stall_ms_open_100k``: the longest an asyncio loop (the UI's) waits, ticking every
  millisecond, while the store opens (``asyncio.to_thread``, as unlock does) and compacts.
- ``caseload_5000_vs_100``, ``search_5000_vs_100``: the Caseload screen built and serialized
  as Flet sends it (``ObjectPatch.from_diff`` from nothing, then msgpack), and one search
  keystroke (the results redrawn and serialized), at 5,000 patients ÷ at 100 (ten records
  each).
- ``pull_rate_100k_vs_10k``, ``pull_peak_rss_mb_100k``: ``benchmarks.sync`` (a new device
  pulls from a real server) at 100k records ÷ at 10k.
- ``postgres_vs_sqlite_push``: ``benchmarks.server`` mutations/s on PostgreSQL ÷ on SQLite,
  one after the other (``LIAISON_PG_ADMIN_URL`` or the local default).
- ``web_first_load_mb``, ``offsite_requests``: ``benchmarks.web.first_load`` on the app
  served as ``make run`` serves it.

The records are ``benchmarks.store.build``'s (about 2 KB each, a patient in ten, the rest
visits). ``--quick`` is a small run (the sizes scaled down 20 times, one repeat) for tests.
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from app.store import Store
from benchmarks.store import build, timed

ROOT = Path(__file__).resolve().parent.parent
PG_ADMIN_URL = os.environ.get(
    "LIAISON_PG_ADMIN_URL", "postgresql+psycopg://postgres:postgres@127.0.0.1:5432/postgres"
)
TARGETS: dict[str, tuple[str, float]] = {
    "open_vs_parse_100k": ("<=", 0.25),
    "memory_vs_json_100k": ("<=", 0.25),
    "save_during_compaction": ("<=", 10),
    "loop_stall_ms_open_100k": ("<", 100),
    "caseload_5000_vs_100": ("<=", 2),
    "search_5000_vs_100": ("<=", 2),
    "pull_rate_100k_vs_10k": (">=", 0.9),
    "postgres_vs_sqlite_push": (">=", 0.9),
    "web_first_load_mb": ("<=", 7),
    "offsite_requests": ("<=", 0),
}
KEY = bytes(range(32))
NODE = "bench-device"
PACE = 0.005  # seconds between two saves while measuring them


def fill(directory: Path, records: list[dict[str, Any]]) -> None:
    """A store in ``directory`` holding ``records``, pulled in pages as a new phone does."""
    store = Store.open(directory, KEY, node_id=NODE)
    for start in range(0, len(records), 1000):
        store.apply_pull(records[start : start + 1000], [], start + 1000)
    store.close()


def bench_open(directory: Path, records: list[dict[str, Any]], repeat: int) -> dict[str, Any]:
    """Open time and memory against ``json.loads`` of the plaintext."""
    plaintext = json.dumps(records).encode()
    parse = statistics.median(timed(lambda: json.loads(plaintext)) for _ in range(repeat))
    opens = []
    for _ in range(repeat):
        gc.collect()
        opens.append(timed(lambda: Store.open(directory, KEY, node_id=NODE).close()))
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    store = Store.open(directory, KEY, node_id=NODE)
    held, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    store.close()
    return {
        "open_ms": round(statistics.median(opens), 1),
        "json_loads_ms": round(parse, 1),
        "open_vs_parse": round(statistics.median(opens) / parse, 3),
        "plaintext_mb": round(len(plaintext) / 1e6, 1),
        "memory_mb": round((held - before) / 1e6, 1),
        "memory_peak_mb": round((peak - before) / 1e6, 1),
        "memory_vs_json": round((held - before) / len(plaintext), 3),
    }


def bench_compaction(directory: Path, saves: int) -> dict[str, Any]:
    """Saves alone, then saves while a whole-store compaction runs in another thread; one
    save every ``PACE`` seconds, as from a person (a tight loop would measure contention)."""
    store = Store.open(directory, KEY, node_id=NODE)
    visit = store.scan("visit")[0]["id"]

    def save(i: int) -> float:
        time.sleep(PACE)
        return timed(lambda: store.put("visit", {"summary": f"edit {i}"}, visit))

    alone = [save(i) for i in range(saves)]
    compaction = threading.Thread(target=store.compact)
    start = time.perf_counter()
    compaction.start()
    during = []
    while compaction.is_alive():
        during.append(save(len(during)))
    compaction.join()
    compact_s = time.perf_counter() - start
    store.close()
    median = statistics.median(alone)
    return {
        "save_ms": round(median, 2),
        "worst_save_during_compaction_ms": round(max(during, default=0.0), 2),
        "saves_during_compaction": len(during),
        "compaction_s": round(compact_s, 2),
        "save_during_compaction": round(max(during, default=0.0) / median, 2),
    }


def bench_loop_stall(directory: Path) -> dict[str, Any]:
    """The event loop's longest wait while the store opens and compacts off the loop."""

    async def measure() -> float:
        stop, worst = asyncio.Event(), 0.0

        async def tick() -> None:
            nonlocal worst
            while not stop.is_set():
                start = time.perf_counter()
                await asyncio.sleep(0.001)
                worst = max(worst, time.perf_counter() - start - 0.001)

        ticker = asyncio.create_task(tick())
        await asyncio.sleep(0.05)
        store = await asyncio.to_thread(Store.open, directory, KEY, node_id=NODE)
        await asyncio.to_thread(store.compact)
        stop.set()
        await ticker
        closing[0] = timed(store.close)  # on the loop, as a lock does: measured apart
        return worst * 1000

    closing = [0.0]
    gc.collect()
    stall = asyncio.run(measure())
    return {"loop_stall_ms": round(stall, 1), "close_ms": round(closing[0], 1)}


def _unlocked_app(directory: Path) -> Any:
    from app.session import UNLOCKED
    from app.state import AppState, Services

    class Vault:
        is_set_up = False

        def lock(self) -> None:
            pass

    services = Services(
        vault=Vault(), open_store=lambda key: None, client=lambda *a: None, engine=lambda *a: None
    )
    app = AppState(services, now=lambda: 1_796_000_000.0)
    app.store = Store.open(directory, KEY, node_id=NODE)
    app.session.phase = UNLOCKED
    return app


class _Nav:
    route = "/caseload"

    def __getattr__(self, name: str) -> Callable[..., None]:
        return lambda *args, **kwargs: None


def _serialized(control: Any) -> int:
    """Bytes of the message Flet would send for ``control`` drawn from nothing."""
    import msgpack
    from flet.controls.base_control import BaseControl
    from flet.controls.object_patch import ObjectPatch
    from flet.messaging.protocol import configure_encode_object_for_msgpack

    patch, _, _ = ObjectPatch.from_diff(None, control, control_cls=BaseControl)
    message = patch.to_message()
    return len(msgpack.packb(message, default=configure_encode_object_for_msgpack(BaseControl)))


def bench_caseload(directory: Path, repeat: int) -> dict[str, Any]:
    """The Caseload screen built and serialized, and one search keystroke, in ms."""
    from app.views import caseload

    app = _unlocked_app(directory)
    nav = _Nav()

    def screen() -> None:
        _serialized(caseload.build(app, nav))

    view = caseload.build(app, nav)
    search = _find(view, "search")
    results = _find(view, "results")
    # Letters in most names: each fills the page at 100 patients as at 5,000, so the same
    # rows are drawn and what differs is the caseload's size alone. (A name typed letter by
    # letter soon matches a handful at 100 and still a page at 5,000: see typed_search_ms.)
    words = ["a", "e", "r", "o", "", "a", "e", "r"]
    typed = ["m", "ma", "mar", "mari", "marie", "", "a", "ad", "ada", ""]

    def keystroke(i: int) -> None:
        search.value = words[i % len(words)]
        search.on_change(type("E", (), {"control": search})())
        _serialized(results)

    screen()  # warm: imports, first-use caches
    build_ms = statistics.median(timed(screen) for _ in range(repeat))
    key_ms = statistics.median(timed(lambda i=i: keystroke(i)) for i in range(repeat * 4))
    words = typed
    typed_ms = statistics.median(timed(lambda i=i: keystroke(i)) for i in range(len(typed)))
    patients = len(app.store.patient_ids())
    app.store.close()
    return {
        "patients": patients,
        "caseload_ms": round(build_ms, 1),
        "search_ms": round(key_ms, 1),
        "typed_search_ms": round(typed_ms, 1),
    }


def _find(root: Any, key: str) -> Any:
    if getattr(root, "key", None) == key:
        return root
    for name in ("controls", "content", "appbar", "navigation_bar"):
        child = getattr(root, name, None)
        for c in child if isinstance(child, list) else [child] if child is not None else []:
            found = _find(c, key)
            if found is not None:
                return found
    return None


def _last_json(command: list[str], timeout: float) -> dict[str, Any]:
    """Run a benchmark module; the JSON object on its last line."""
    out = subprocess.run(
        command, cwd=ROOT, capture_output=True, text=True, timeout=timeout, check=True
    ).stdout
    result: dict[str, Any] = json.loads(out.strip().splitlines()[-1])
    return result


def bench_pull(small: int, big: int) -> dict[str, Any]:
    """``benchmarks.sync`` at two sizes: pull rate and the phone side's peak memory."""
    runs = {}
    for count in (small, big):
        command = [sys.executable, "-m", "benchmarks.sync", "--records", str(count)]
        runs[count] = _last_json([*command, "--edits", "10"], timeout=1800)
    return {
        "pull_rate_small": runs[small]["pull_records_per_s"],
        "pull_rate_big": runs[big]["pull_records_per_s"],
        "pull_rate_big_vs_small": round(
            runs[big]["pull_records_per_s"] / runs[small]["pull_records_per_s"], 3
        ),
        "pull_peak_rss_mb_big": runs[big]["pull_peak_rss_mb"],
    }


def bench_push(devices: int) -> dict[str, Any]:
    """``benchmarks.server`` on SQLite, then on a fresh PostgreSQL database."""
    import psycopg

    name = f"liaison_bench_{os.getpid()}"
    admin = PG_ADMIN_URL.replace("postgresql+psycopg://", "postgresql://")
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        command = [sys.executable, "-m", "benchmarks.server", "--devices", str(devices)]
        sqlite = _last_json(command, timeout=1200)
        url = PG_ADMIN_URL.rsplit("/", 1)[0] + f"/{name}"
        postgres = _last_json([*command, "--database-url", url], timeout=1200)
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return {
        "sqlite_mutations_per_s": sqlite["mutations_per_s"],
        "postgres_mutations_per_s": postgres["mutations_per_s"],
        "postgres_vs_sqlite_push": round(
            postgres["mutations_per_s"] / sqlite["mutations_per_s"], 3
        ),
    }


def bench_web() -> dict[str, Any]:
    """The first load of the app served as ``make run`` serves it."""
    from benchmarks import web

    with tempfile.TemporaryDirectory(prefix="liaison-bench-") as tmp, web.served(Path(tmp)) as url:
        loaded = web.first_load(url)
    return {k: loaded[k] for k in ("web_first_load_mb", "offsite_requests")}


def met(result: dict[str, Any]) -> dict[str, bool]:
    """Which targets this run meets (only for the keys it measured)."""
    checks = {"<=": float.__le__, "<": float.__lt__, ">=": float.__ge__}
    return {
        key: checks[op](float(result[key]), float(limit))
        for key, (op, limit) in TARGETS.items()
        if key in result
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Every measurement; the figures under their issue names."""
    scale = 20 if args.quick else 1
    repeat = 1 if args.quick else 3
    big = args.records // scale
    list_sizes = (100 * 10, 5000 * 10 // scale)  # records: 100 patients, 5,000 (ten each)
    result: dict[str, Any] = {"benchmark": "scale", "records": big, "quick": args.quick}
    with tempfile.TemporaryDirectory(prefix="liaison-bench-") as tmp:
        root = Path(tmp)
        records = build(big, seed=2026)
        fill(root / "big", records)
        opened = bench_open(root / "big", records, repeat)
        del records
        result.update(opened, open_vs_parse_100k=opened["open_vs_parse"])
        result["memory_vs_json_100k"] = opened["memory_vs_json"]
        compaction = bench_compaction(root / "big", saves=31)
        result.update(compaction)
        stall = bench_loop_stall(root / "big")
        result["loop_stall_ms_open_100k"] = stall["loop_stall_ms"]
        result["close_ms"] = stall["close_ms"]
        lists = {}
        for count in list_sizes:
            fill(root / f"list{count}", build(count, seed=7))
            lists[count] = bench_caseload(root / f"list{count}", repeat)
        small, large = (lists[n] for n in list_sizes)
        result["caseload"] = {"small": small, "big": large}
        result["caseload_5000_vs_100"] = round(large["caseload_ms"] / small["caseload_ms"], 2)
        result["search_5000_vs_100"] = round(large["search_ms"] / small["search_ms"], 2)
    if not args.skip_server:
        pull = bench_pull(10_000 // scale, args.records // scale)
        result.update(pull, pull_rate_100k_vs_10k=pull["pull_rate_big_vs_small"])
        result["pull_peak_rss_mb_100k"] = pull["pull_peak_rss_mb_big"]
        result.update(bench_push(20 if args.quick else 100))
    if not args.skip_web:
        result.update(bench_web())
    result["met"] = met(result)
    return result


def main(argv: Sequence[str] | None = None) -> dict[str, Any]:
    """Run, print a summary and the JSON line, and return the result."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks.scale")
    parser.add_argument("--records", type=int, default=100_000, help="the big store's size")
    parser.add_argument("--quick", action="store_true", help="a small run, for tests")
    parser.add_argument("--skip-server", action="store_true", help="no pull and push runs")
    parser.add_argument("--skip-web", action="store_true", help="no browser run")
    result = run(parser.parse_args(argv))
    for key, ok in result["met"].items():
        op, limit = TARGETS[key]
        print(f"{key:26} {result[key]!s:>8}  target {op} {limit}  {'met' if ok else 'NOT met'}")
    print(json.dumps(result))
    return result


if __name__ == "__main__":
    main()
