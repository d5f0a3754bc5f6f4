from __future__ import annotations

import json
from decimal import Decimal

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from dockline.errors import PermanentError
from dockline.jsonx import dumps, exact_payload, loads, loads_exact, shortest_numbers

finite_decimals = st.decimals(allow_nan=False, allow_infinity=False, places=None)
json_numbers = st.one_of(st.integers(min_value=-(10**60), max_value=10**60), finite_decimals)


@given(json_numbers)
def test_numbers_round_trip_exactly(number: int | Decimal) -> None:
    # GIVEN a number written as JSON text
    text = json.dumps({"n": str(number)}).replace(f'"{number}"', str(number))
    # WHEN it is parsed and written again
    value = loads_exact(text)["n"]
    # THEN not one digit is lost or invented
    assert value == number
    assert str(value) == str(number)
    assert loads_exact(dumps({"n": value}))["n"] == number


@given(st.floats(allow_nan=False, allow_infinity=False))
def test_float_text_becomes_the_decimal_of_that_text(value: float) -> None:
    text = repr(value)
    parsed = loads_exact(f"[{text}]")[0]
    assert parsed == (Decimal(text) if isinstance(parsed, Decimal) else int(text))


def test_prices_keep_their_exact_values() -> None:
    text = '{"price": 19.99, "tax": 0.1, "n": 1.10, "tiny": 1e-7, "big": 123456789012345678901234567890123456789012}'
    doc = loads_exact(text)
    assert doc["price"] == Decimal("19.99") and isinstance(doc["price"], Decimal)
    assert str(doc["n"]) == "1.10"
    assert doc["tiny"] == Decimal("1E-7")
    assert doc["big"] == 123456789012345678901234567890123456789012
    # canonical output: shortest form of each value, identical for both parsers
    expected = b'{"big":123456789012345678901234567890123456789012,"n":1.1,"price":19.99,"tax":0.1,"tiny":1e-7}'
    assert dumps(doc) == expected
    assert dumps(loads(text.encode())) == expected


number_texts = st.one_of(
    st.integers(min_value=-(10**60), max_value=10**60).map(str),
    finite_decimals.map(str),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
    st.from_regex(r"-?(0|[1-9][0-9]{0,20})(\.[0-9]{1,20})?([eE][+-]?[0-9]{1,3})?", fullmatch=True),
)


@given(number_texts)
def test_fast_and_exact_parsers_agree_on_every_number(text: str) -> None:
    # GIVEN any JSON number text
    document = f'{{"v": {text}, "w": [{text}]}}'.encode()
    # WHEN it is parsed by the fast path and by the exact parser
    try:
        exact = loads_exact(document)
    except PermanentError:
        return  # beyond what JSON parsing allows (e.g. 1e999 stays exact but cannot be a double)
    fast = loads(document)
    # THEN the values are identical and so are the canonical bytes
    assert exact_payload(fast) == exact
    assert Decimal(str(exact_payload(fast)["v"])) == Decimal(text)
    assert dumps(fast) == dumps(exact)


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ('{"a": NaN}', "NaN is not a valid JSON number"),
        ('{"a": Infinity}', "Infinity is not a valid JSON number"),
        ('{"a": -Infinity}', "-Infinity is not a valid JSON number"),
        ('{"a": 1', "truncated JSON"),
        ('{"a": 1} xyz', "trailing data after the JSON document"),
        ("[" * 100_000, "nesting is too deep"),
        ('{"a": ' * 100_000, "nesting is too deep"),
        ("{'a': 1}", "not valid JSON"),
    ],
)
def test_bad_json_gets_a_one_line_reason(text: str, reason: str) -> None:
    with pytest.raises(PermanentError) as caught:
        loads_exact(text)
    assert reason in str(caught.value)
    assert "\n" not in str(caught.value)


def test_invalid_utf8_and_binary_are_named() -> None:
    with pytest.raises(PermanentError, match=r"not valid UTF-8: byte 0xff at offset 7"):
        loads_exact(b'{"a": "\xff"}')
    with pytest.raises(PermanentError, match="binary data"):
        loads_exact(b"\x00\x01\x02\xff\xfe")


@given(st.lists(st.floats(allow_nan=False, allow_infinity=False, width=64), min_size=1, max_size=8))
def test_why14_integral_floats_are_written_as_integers_on_both_paths(values: list[float]) -> None:
    # GIVEN documents holding floats, some integral (26.0), as a JSON Lines block would
    documents = [{"v": v, "w": [v, "x.0,"]} for v in values]
    texts = [orjson.dumps(d, option=orjson.OPT_SORT_KEYS).decode() for d in documents]
    # WHEN the block's canonical forms are made and each document is dumped on its own
    fixed = [shortest_numbers(t, d) for t, d in zip(texts, documents, strict=True)]
    # THEN both agree, and no integral float below 1e16 keeps a ".0"
    assert fixed == [dumps(d).decode() for d in documents]
    for text, v in zip(fixed, values, strict=True):
        if v.is_integer() and abs(v) < 1e16:
            assert f"{int(v)}," in text
