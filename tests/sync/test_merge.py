"""Table-driven tests of the per-field merge rule."""

import itertools

import pytest

from sync.merge import merge

A = "000000000001000-00000-a"
B = "000000000002000-00000-b"
C = "000000000003000-00000-c"

CASES = [
    # name, stored fields, stored clock, incoming fields, incoming clock, changed_since_base,
    # expected fields, expected changed, expected conflicts (field, loser_value, incoming_won)
    ("new field", {}, {}, {"x": 1}, {"x": A}, False, {"x": 1}, {"x": 1}, []),
    ("newer wins, seen", {"x": 1}, {"x": A}, {"x": 2}, {"x": B}, False, {"x": 2}, {"x": 2}, []),
    (
        "newer wins, unseen",
        {"x": 1},
        {"x": A},
        {"x": 2},
        {"x": B},
        True,
        {"x": 2},
        {"x": 2},
        [("x", 1, True)],
    ),
    (
        "own earlier write is no conflict",
        {"x": 1},
        {"x": A},
        {"x": 2},
        {"x": "000000000001500-00000-a"},
        True,
        {"x": 2},
        {"x": 2},
        [],
    ),
    (
        "same value unseen: no conflict",
        {"x": 1},
        {"x": A},
        {"x": 1},
        {"x": B},
        True,
        {"x": 1},
        {"x": 1},
        [],
    ),
    (
        "older loses and is reported",
        {"x": 2},
        {"x": B},
        {"x": 1},
        {"x": A},
        False,
        {"x": 2},
        {},
        [("x", 1, False)],
    ),
    ("older same value: nothing", {"x": 2}, {"x": B}, {"x": 2}, {"x": A}, True, {"x": 2}, {}, []),
    ("replay is a no-op", {"x": 2}, {"x": B}, {"x": 2}, {"x": B}, True, {"x": 2}, {}, []),
    (
        "fields are independent",
        {"x": 1, "y": 1},
        {"x": B, "y": A},
        {"x": 9, "y": 9},
        {"x": A, "y": C},
        True,
        {"x": 1, "y": 9},
        {"y": 9},
        [("x", 9, False), ("y", 1, True)],
    ),
]


@pytest.mark.parametrize(
    "stored,sclock,inc,iclock,unseen,want,changed,conflicts",
    [c[1:] for c in CASES],
    ids=[c[0] for c in CASES],
)
def test_merge_table(stored, sclock, inc, iclock, unseen, want, changed, conflicts):
    result = merge(stored, sclock, inc, iclock, lambda _f: unseen)
    assert result.fields == want
    assert result.changed == changed
    assert [(c.field, c.loser_value, c.incoming_won) for c in result.conflicts] == conflicts
    assert stored == CASES[[c[1] for c in CASES].index(stored)][1]  # inputs untouched


def test_merge_converges_in_any_order():
    writes = [({"x": 1}, {"x": A}), ({"x": 2, "y": "b"}, {"x": C, "y": B}), ({"y": "c"}, {"y": A})]
    results = set()
    for order in itertools.permutations(writes):
        fields, clock = {}, {}
        for inc, iclock in order:
            r = merge(fields, clock, inc, iclock)
            fields, clock = r.fields, r.clock
        results.add(tuple(sorted(fields.items())))
    assert results == {(("x", 2), ("y", "b"))}
