"""The hybrid logical clock: string order is clock order; injected wall clock."""

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sync import hlc
from sync.errors import InvalidClock


def test_now_is_monotonic_when_wall_clock_stalls_or_goes_back():
    walls = iter([100, 100, 90, 200])
    clock = hlc.Clock("dev", wall=lambda: next(walls))
    stamps = [clock.now() for _ in range(4)]
    assert stamps == sorted(stamps) and len(set(stamps)) == 4
    assert stamps[2].startswith("000000000000100-00002")
    assert stamps[3].startswith("000000000000200-00000")


def test_observe_moves_clock_past_remote():
    clock = hlc.Clock("a", wall=lambda: 5)
    clock.observe("000000000009000-00007-b")
    assert clock.now() == "000000000009000-00008-a"


@given(
    st.tuples(st.integers(0, 10**15 - 1), st.integers(0, 99999), st.text("abc", min_size=1)),
    st.tuples(st.integers(0, 10**15 - 1), st.integers(0, 99999), st.text("abc", min_size=1)),
)
def test_string_order_is_clock_order(a, b):
    ta, tb = hlc.Timestamp(*a), hlc.Timestamp(*b)
    assert (str(ta) < str(tb)) == (ta < tb)
    assert hlc.parse(str(ta)) == ta


@pytest.mark.parametrize(
    "bad", ["", "1-2-3", "00000000000000a-00000-x", "000000000000001-00000-", 5, None]
)
def test_parse_refuses_garbage(bad):
    with pytest.raises(InvalidClock):
        hlc.parse(bad)
    assert not hlc.is_valid(bad)
