"""benchmarks.scale runs end to end on a small size and reports every key of the store and
list targets (the figures themselves are for the benchmark's reader: no timing asserted)."""

from __future__ import annotations

import json

from benchmarks import scale


def test_the_scale_benchmark_reports_the_store_and_list_keys(capsys) -> None:
    result = scale.main(["--quick", "--skip-server", "--skip-web"])
    last = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert last == result
    keys = {
        "open_vs_parse_100k",
        "memory_vs_json_100k",
        "save_during_compaction",
        "loop_stall_ms_open_100k",
        "caseload_5000_vs_100",
        "search_5000_vs_100",
    }
    assert keys <= set(result) and set(result["met"]) == keys
    assert all(isinstance(result[k], float | int) and result[k] >= 0 for k in keys)
    assert result["caseload"]["small"]["patients"] == 100
    assert result["caseload"]["big"]["patients"] == 250
    assert result["saves_during_compaction"] >= 1  # saves did run while it compacted
