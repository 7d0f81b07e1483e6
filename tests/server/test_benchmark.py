"""``benchmarks.server`` at a tiny size: its JSON line, zero errors, and its own checks.

Timings are never asserted: the machine is shared.
"""

from __future__ import annotations

import json

import pytest

from benchmarks import server as bench

KEYS = {
    "devices",
    "errors",
    "lost",
    "duplicated",
    "mutations_per_s",
    "pull_records_per_s",
    "p95_ms",
    "healthz_rps",
    "mutations",
    "pulled",
}


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> dict[str, object]:
    code = bench.main(
        [
            "--devices",
            "3",
            "--team-size",
            "2",
            "--concurrency",
            "4",
            "--healthz-requests",
            "20",
            *args,
        ]
    )
    lines = capsys.readouterr().out.strip().splitlines()
    result: dict[str, object] = json.loads(lines[-1])
    assert code == 0, result
    return result


def _assert_clean(result: dict[str, object]) -> None:
    assert set(result) >= KEYS
    assert result["devices"] == 3
    assert (result["errors"], result["lost"], result["duplicated"]) == (0, 0, 0), result
    assert result["mutations"] == 3 * 20
    # Teams of 2 and 1 devices: each device pulls its whole team's records.
    assert result["pulled"] == 2 * 40 + 1 * 20
    assert result["foreign_records"] == 0


def test_tiny_run_on_sqlite(capsys):
    _assert_clean(_run(capsys))


@pytest.mark.postgres
def test_tiny_run_on_postgresql(capsys, postgres_url):
    _assert_clean(_run(capsys, "--database-url", postgres_url))
    # A second run on the same database only counts its own teams' records; this one
    # against two server processes.
    second = _run(capsys, "--database-url", postgres_url, "--workers", "2")
    _assert_clean(second)
    assert second["workers"] == 2


def test_the_check_finds_lost_duplicated_and_foreign_records():
    a, b, c = (bench.Device(name, team) for name, team in (("a", 0), ("b", 0), ("c", 1)))
    a.pushed, c.pushed = ["r1", "r2", "r4"], ["r3"]
    a.pulled = [("r1", 1), ("r2", 2), ("r2", 2)]  # r4 lost, r2 twice
    b.pulled = [("r1", 1), ("r1", 1), ("x", 5)]  # r2 and r4 lost, r1 twice, x another run's
    c.pulled = [("r3", 4), ("r1", 1)]  # revs out of order, and another team's record
    lost, duplicated, foreign, errors = bench._check([a, b, c])
    assert (lost, duplicated, foreign) == (2, 2, 1)  # distinct mutations: r2, r4; r1, r2
    assert any("another team" in e for e in errors)
    assert any("out of order" in e for e in errors)
