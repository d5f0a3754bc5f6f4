"""Issue 9, Speed: Decimals (a transform's numbers) written from their own text where that
text is already the canonical form, byte for byte what the exact way writes."""

from __future__ import annotations

from decimal import Decimal

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from dockline.jsonx import _fragment, _fragment_exact, dumps

EDGES = (
    "1E+400 -0 -0.0 0.1 0.10 26.0 26 1E+16 1.5E-7 0.0001 0.001 0.00012 999999999999999.9"
    " 99999999999999.99 123456789012345.6 0.30000000000000004 -12.34 100000000000000.5"
    " 1000000000000000.5 0.000123456789012345 12345678901234567890.5 1E-400 -1E+400 5E-324"
    " 1.7976931348623157E+308 -0.001 -0.0001 " + "9" * 40 + ".5"
)


def _both(value: Decimal) -> tuple[bytes, bytes]:
    fast = orjson.dumps({"n": value}, default=_fragment, option=orjson.OPT_SORT_KEYS)
    exact = orjson.dumps({"n": value}, default=_fragment_exact, option=orjson.OPT_SORT_KEYS)
    return fast, exact


def test_speed_decimal_edges_are_written_as_before() -> None:
    for text in EDGES.split():
        fast, exact = _both(Decimal(text))
        assert fast == exact, text


@settings(max_examples=3000, deadline=None)
@given(
    digits=st.integers(min_value=0, max_value=10**18),
    exponent=st.integers(min_value=-22, max_value=20),
    negative=st.booleans(),
)
def test_speed_any_decimal_is_written_as_the_exact_way_writes_it(digits: int, exponent: int, negative: bool) -> None:
    # GIVEN a Decimal of up to 19 digits at any scale near the fast path's bounds
    value = Decimal(f"{'-' if negative else ''}{digits}E{exponent}")
    # WHEN written  THEN the bytes are the exact way's
    fast, exact = _both(value)
    assert fast == exact


@settings(max_examples=2000, deadline=None)
@given(digits=st.integers(min_value=0, max_value=10**15 - 1), exponent=st.integers(min_value=-30, max_value=30))
def test_speed_a_floats_decimal_is_written_as_the_float_itself(digits: int, exponent: int) -> None:
    # GIVEN a float of at most 15 digits (every float the fast parser gives: ``jsonx``), and
    # the Decimal of its shortest form (what a transform receives)
    number = float(f"{digits}e{exponent}")
    # WHEN both are written  THEN the same bytes: a transform that changes nothing changes no byte
    assert dumps({"n": Decimal(repr(number))}) == dumps({"n": number})
