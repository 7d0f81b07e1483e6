"""Crash test: a child process saving in a loop is SIGKILLed at random moments; every save it
reported as done must be there when the store is opened again."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from app.store import Store

ROOT = Path(__file__).resolve().parents[2]
KEY = bytes(range(32))
PATIENT = "6f1c1b1e-8a53-4c4e-9d8e-0d6f3d1f1a11"
ROUNDS = 32

# The child saves forever and prints "<mutation id> <record id> <title>" only after put()
# returned; it compacts often (also by itself, with a low threshold) to be killed in one.
CHILD = f"""
import random, sys
import app.storage
app.storage.COMPACT_MIN_BYTES = 32_768
from app.store import Store

store = Store.open(sys.argv[1], {KEY!r}, node_id="crash-device")
rng = random.Random(int(sys.argv[2]))
ids = [t["id"] for t in store.list("task")]
print("ready", flush=True)
n = 0
while True:
    n += 1
    title = f"{{sys.argv[2]}}-{{n}} " + "x" * rng.randrange(150)
    if ids and rng.random() < 0.6:
        record = store.put("task", {{"title": title}}, rng.choice(ids))
    else:
        record = store.put("task", {{"patient_id": "{PATIENT}", "title": title}})
        ids.append(record["id"])
    print(store.last_mutation_id, record["id"], title, flush=True)
    if n % 8 == 0:
        store.compact()  # so that more kills land inside a compaction
"""


def run_child(script: Path, directory: Path, seed: int, rng: random.Random) -> list[str]:
    """Run the child until a random moment, SIGKILL it; the lines it finished printing."""
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    with subprocess.Popen(
        [sys.executable, str(script), str(directory), str(seed)],
        stdout=subprocess.PIPE,
        env=env,
        text=True,
    ) as child:
        assert child.stdout is not None
        try:
            if rng.random() < 0.8:  # mostly while saving; sometimes while opening
                assert child.stdout.readline() == "ready\n"
            time.sleep(rng.uniform(0.0, 0.25))
        finally:
            child.send_signal(signal.SIGKILL)
            out = child.stdout.read()
    assert child.returncode == -signal.SIGKILL, "the child died by itself"
    return [line for line in out.split("\n")[:-1] if line != "ready"]  # drop a torn last line


@pytest.mark.slow
def test_saves_reported_done_survive_sigkill(tmp_path: Path) -> None:
    seed = int(os.environ.get("LIAISON_CRASH_SEED", random.randrange(1 << 30)))
    rng = random.Random(seed)
    script = tmp_path / "child.py"
    script.write_text(CHILD)
    directory = tmp_path / "store"
    titles: dict[str, str] = {}  # record id -> the last title reported saved
    last_reported = acknowledged = 0
    for round_ in range(ROUNDS):
        for line in run_child(script, directory, round_, rng):
            mutation_id, record_id, title = line.split(" ", 2)
            assert int(mutation_id) == last_reported + 1, f"seed {seed}: ids must not skip"
            last_reported = int(mutation_id)
            titles[record_id] = title
        store = Store.open(directory, KEY, node_id="checker")
        try:
            outbox = store.outbox()
            ids = [m["id"] for m in outbox]
            # Every reported mutation is queued; at most one more was durable but unreported.
            assert ids == list(range(acknowledged + 1, ids[-1] + 1 if ids else 1)), seed
            assert last_reported <= store.last_mutation_id <= last_reported + 1, seed
            if store.last_mutation_id > last_reported:
                unreported = outbox[-1]
                titles[unreported["record_id"]] = unreported["fields"]["title"]
                last_reported = unreported["id"]
            stored = {t["id"]: t["fields"]["title"] for t in store.list("task")}
            assert stored == titles, f"seed {seed}: round {round_}"
            if round_ % 4 == 3:  # the server took some: ids must still never be reused
                acknowledged = max(acknowledged, last_reported - 3)
                store.acknowledge(acknowledged)
        finally:
            store.close()
    assert last_reported > ROUNDS, f"seed {seed}: the child hardly saved anything"
