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


def _parse_by_split(text: object) -> hlc.Timestamp | None:
    """The first ``parse`` (None where it raised), kept as the oracle for the regex."""
    if not isinstance(text, str):
        return None
    parts = text.split("-", 2)
    if (
        len(parts) != 3
        or len(parts[0]) != 15
        or len(parts[1]) != 5
        or not parts[0].isdigit()
        or not parts[1].isdigit()
        or not parts[0].isascii()
        or not parts[1].isascii()
        or not parts[2]
        or len(parts[2]) > 64
    ):
        return None
    return hlc.Timestamp(int(parts[0]), int(parts[1]), parts[2])


GOOD = "000000000001000-00042-6f1c1b1e-8a53-4c4e-9d8e-0d6f3d1f1a11"
HLC_CASES = [
    GOOD,
    "000000000001000-00042-a",
    "000000000001000-00042-" + "n" * 64,
    "000000000001000-00042-" + "n" * 65,  # node too long
    "000000000001000-00042-",  # no node
    "000000000001000-00042",
    "000000000001000-00042-x\n",  # the node may hold anything, a newline too
    "000000000001000-00042-\n",
    "000000000001000-00042-x-y--",
    "000000000001000-00042-\u00e9\u4e2d",
    "00000000001000-00042-x",  # 14 digits of ms
    "0000000000001000-00042-x",  # 16
    "000000000001000-0042-x",
    "000000000001000-000042-x",
    "00000000000100\u0663-00042-x",  # Arabic-Indic digit
    "00000000000100\u00b2-00042-x",  # superscript two: isdigit() but not a digit here
    "000000000001000-0004\uff12-x",  # fullwidth two
    "+00000000001000-00042-x",
    " 00000000001000-00042-x",
    "000000000001000 -00042-x",
    "000000000001000_00042-x",
    "000000000001000-00042_x",
    "\n000000000001000-00042-x",
    "",
    "-",
    "--",
    None,
    5,
    b"000000000001000-00042-x",
]


@pytest.mark.parametrize("text", HLC_CASES)
def test_is_valid_and_parse_agree_with_the_first_parser(text):
    expected = _parse_by_split(text)
    assert hlc.is_valid(text) is (expected is not None)
    if expected is None:
        with pytest.raises(InvalidClock):
            hlc.parse(text)
    else:
        assert hlc.parse(text) == expected


_ODD = "0123456789-ax \n\u0663\u00b2\uff12_+"


@st.composite
def _near_clocks(draw: st.DrawFn) -> str:
    node = draw(
        st.one_of(
            st.text(min_size=0, max_size=3),
            st.text(min_size=62, max_size=66),
            st.text("ab-\n\u00e9", max_size=70),
        )
    )
    text = list(
        str(hlc.Timestamp(draw(st.integers(0, 10**15 - 1)), draw(st.integers(0, 99999)), node))
    )
    for _ in range(draw(st.integers(0, 2))):
        index = draw(st.integers(0, max(0, len(text) - 1)))
        action = draw(st.sampled_from(["replace", "insert", "delete"]))
        if action == "delete" and text:
            del text[index]
        else:
            text[index : index + (action == "replace")] = [draw(st.sampled_from(_ODD))]
    return "".join(text)


@given(st.one_of(_near_clocks(), st.text(max_size=30)))
def test_is_valid_agrees_with_the_first_parser(text):
    expected = _parse_by_split(text)
    assert hlc.is_valid(text) is (expected is not None)
    if expected is not None:
        assert hlc.parse(text) == expected
