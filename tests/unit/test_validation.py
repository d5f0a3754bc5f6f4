"""Issue 9 item 2: records checked against a route's JSON Schema (draft 2020-12)."""

from __future__ import annotations

import io
import json
import tomllib
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from dockline.config import PipelineSettings, parse_settings
from dockline.decode import RecordStream
from dockline.errors import ConfigError, PermanentError
from dockline.jsonx import loads
from dockline.validation import SchemaCheck

ORDER_SCHEMA = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "type": "object",
    "required": ["order"],
    "properties": {
        "order": {
            "type": "object",
            "required": ["id", "items"],
            "properties": {
                "id": {"type": "string"},
                "items": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "properties": {
                            "qty": {"type": "integer", "minimum": 1},
                            "price": {"type": "number", "multipleOf": 0.01, "exclusiveMinimum": 0},
                        },
                    },
                },
            },
        }
    },
}


def orders(tmp_path: Path, extra: str = "", schema: Any = ORDER_SCHEMA) -> PipelineSettings:
    (tmp_path / "order.json").write_text(json.dumps(schema))
    text = (
        '[[routes]]\nname = "orders"\nprefix = "incoming/"\nsuffixes = [".json", ".jsonl"]\n'
        f'id = "/order/id"\nschema = "order.json"\n{extra}\n'
    )
    return parse_settings(tomllib.loads(text), source=tmp_path / "dockline.toml").pipeline


def order(qty: Any, price: Any = "1.10", oid: str = "o-1") -> bytes:
    return f'{{"order": {{"id": "{oid}", "items": [{{"qty": {qty}, "price": {price}}}]}}}}'.encode()


def decode(data: bytes, p: PipelineSettings, key: str) -> tuple[list[Any], RecordStream]:
    stream = RecordStream(io.BytesIO(data), key=key, settings=p)
    return list(stream.records()), stream


def test_validation_bad_record_reason_names_the_path_and_the_rule(tmp_path: Path) -> None:
    # GIVEN an orders route with a schema, and a JSON Lines file whose 7th line breaks it
    lines = [order(2, oid=f"o-{n}") for n in range(1, 7)] + [order(-2, oid="o-7")]
    with pytest.raises(PermanentError) as caught:
        decode(b"\n".join(lines) + b"\n", orders(tmp_path), "incoming/a.jsonl")
    # THEN the file fails with the reason
    assert str(caught.value) == "line 7: /order/items/0/qty: -2 is less than the minimum of 1"


def test_validation_skip_policy_keeps_the_good_records(tmp_path: Path) -> None:
    lines = [order(2, oid="a"), order(0, oid="b"), order(1, oid="c"), b'{"order": {"id": "d"}}']
    records, stream = decode(b"\n".join(lines), orders(tmp_path, 'on_bad_record = "skip"'), "incoming/a.jsonl")
    assert [r.pk for r in records] == ["a", "c"]
    assert [(b.index, b.reason) for b in stream.skipped] == [
        (2, "/order/items/0/qty: 0 is less than the minimum of 1"),
        (4, "/order: 'items' is a required property"),
    ]


def test_validation_a_single_document_that_breaks_the_schema_fails_the_file(tmp_path: Path) -> None:
    with pytest.raises(PermanentError, match=r"^/order/items/0/price: 0 is less than or equal to the minimum of 0$"):
        decode(order(1, price="0"), orders(tmp_path), "incoming/a.json")


@pytest.mark.parametrize(
    ("qty", "price", "problem"),
    [
        ("2.0", "1.10", None),  # 2.0 is an integer (draft 2020-12), on the fast and the exact path
        ("2.00000000000000000000", "1.10", None),
        ("2.5", "1.10", "/order/items/0/qty: 2.5 is not of type 'integer'"),
        ("1", "0.30000000000000000001", "/order/items/0/price: 0.30000000000000000001 is not a multiple of 0.01"),
        ("1", "0.3", None),  # exact: 0.3 is a multiple of 0.01 (a float check would say no)
        ("1", "19.99", None),
        ("1e0", "1.10", None),
    ],
)
def test_validation_numbers_reach_the_validator_exact(
    tmp_path: Path, qty: str, price: str, problem: str | None
) -> None:
    check = SchemaCheck(ORDER_SCHEMA, source="order.json")
    document = loads(order(qty, price))
    assert check.problem(document) == problem


def test_validation_decimal_from_a_csv_column_is_checked_as_a_number(tmp_path: Path) -> None:
    (tmp_path / "s.json").write_text('{"properties": {"t": {"type": "number", "maximum": 60}}}')
    text = (
        '[[routes]]\nname = "s"\nprefix = "iot/"\nsuffixes = [".csv"]\n'
        'csv_schema = { t = "decimal" }\nschema = "s.json"\non_bad_record = "skip"\n'
    )
    p = parse_settings(tomllib.loads(text), source=tmp_path / "dockline.toml").pipeline
    records, stream = decode(b"t\n21.5\n60.01\n\n", p, "iot/a.csv")
    assert [r.payload for r in records] == [{"t": Decimal("21.5")}]
    assert [(b.index, b.reason) for b in stream.skipped] == [(3, "/t: 60.01 is greater than the maximum of 60")]


@pytest.mark.parametrize(
    ("content", "words"),
    [
        ("{not json", ("'orders' schema", "is not JSON")),
        ('{"type": "objekt"}', ("'orders' schema", "not a valid JSON Schema", "/type")),
        ("[1, 2]", ("'orders' schema", "not a JSON Schema")),
    ],
)
def test_validation_bad_schema_file_is_a_one_line_config_error(
    tmp_path: Path, content: str, words: tuple[str, ...]
) -> None:
    (tmp_path / "bad.json").write_text(content)
    text = '[[routes]]\nname = "orders"\nprefix = "incoming/"\nschema = "bad.json"\n'
    with pytest.raises(ConfigError) as caught:
        parse_settings(tomllib.loads(text), source=tmp_path / "dockline.toml")
    assert "\n" not in str(caught.value)
    for word in words:
        assert word in str(caught.value)
