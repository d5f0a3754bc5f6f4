"""Issue 9, Speed: a route's schema check through a compiled validator (``jsonschema-rs``)
that only ever accepts first; ``jsonschema`` still judges every record it does not accept.

The property that makes this safe: for every schema the fast path is built for, the
verdict and the reason are ``jsonschema``'s own (``compiled=False`` is ``jsonschema`` alone).
"""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from dockline.jsonx import loads
from dockline.schema_fast import fast_path_allowed
from dockline.validation import SchemaCheck

pytest.importorskip("jsonschema_rs")

ROOT = Path(__file__).resolve().parents[2]
SHOP_SCHEMA = json.loads((ROOT / "examples" / "shop" / "schemas" / "order.json").read_text())
BENCH_SCHEMA = {  # bench/run.py's STEP_SCHEMA
    "type": "object",
    "required": ["id", "device", "temp"],
    "properties": {
        "id": {"type": "string"},
        "device": {"type": "string", "pattern": "^thermo-"},
        "temp": {"type": "number", "minimum": -50, "maximum": 60},
        "hum": {"type": "number", "minimum": 0, "maximum": 1},
        "ok": {"type": "boolean"},
    },
}
# Schemas whose every keyword the fast path may judge, with the numbers where a binary or
# a 28-digit reading would differ from the exact one, and the regexes where Rust's and
# Python's dialects differ.
NUMERIC = {
    "type": "object",
    "properties": {
        "a": {"maximum": Decimal("0.29999999999999999")},
        "b": {"exclusiveMinimum": Decimal("0.30000000000000001")},
        "c": {"multipleOf": Decimal("0.01")},
        "d": {"multipleOf": Decimal("1E-400")},
        "e": {"multipleOf": Decimal("0.7"), "type": "integer"},
        "f": {"enum": [Decimal("0.1"), 1, True, Decimal("1E+400")]},
        "g": {"const": Decimal("0.30000000000000004")},
        "h": {"type": "array", "uniqueItems": True},
        "i": {"minimum": 10**30, "exclusiveMaximum": Decimal("1e400")},
    },
}
PATTERNS = {
    "type": "object",
    "properties": {
        "a": {"pattern": "^[^\\d]+$"},
        "b": {"pattern": "^ab$"},
        "c": {"pattern": "\\w\\b"},
        "d": {"type": "string", "minLength": 2, "maxLength": 3},
    },
    "additionalProperties": {"type": ["string", "number", "array", "boolean"]},
    "$defs": {"positive": {"exclusiveMinimum": 0}},
    "dependentRequired": {"a": ["b"]},
    "oneOf": [{"required": ["a"]}, {"required": ["c"]}, {"not": {"$ref": "#/$defs/positive"}}],
}
SCHEMAS = [BENCH_SCHEMA, SHOP_SCHEMA, NUMERIC, PATTERNS]

numbers = st.one_of(
    st.integers(min_value=-(10**40), max_value=10**40),
    st.floats(allow_nan=False, allow_infinity=False),
    st.decimals(allow_nan=False, allow_infinity=False, places=None),
    st.sampled_from(
        [
            Decimal("1E+400"),
            Decimal("-0"),
            -0.0,
            0.1,
            0.3,
            0.30000000000000004,
            Decimal("0.29999999999999999"),
            Decimal("0.30000000000000001"),
            10**400,
            2.0,
            Decimal("2.00"),
            1e16,
            0.7 * 3,
            True,
            False,
        ]
    ),
)
texts = st.one_of(
    st.text(max_size=5),
    st.sampled_from(["ab", "ab\n", "\u0661\u0662", "x1", "é", "thermo-1", "o-1", "a@b.c", "ab ", "\U0001f600"]),
)
scalars = st.one_of(numbers, texts, st.booleans(), st.none())
values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4), max_leaves=8)
keys = st.sampled_from(["a", "b", "c", "d", "e", "f", "g", "h", "i", "id", "device", "temp", "hum", "ok", "order"])
records = st.dictionaries(keys, values, max_size=6)


def _shop(record: dict[str, Any]) -> dict[str, Any]:
    """An order shaped like the shop example's, with the drawn values in its places."""
    item = {"sku": record.get("a", "mug"), "qty": record.get("e", 1), "price": record.get("c", Decimal("19.99"))}
    return {"order": {"id": record.get("id", "o-1"), "customer": "a@b.c", "items": [item], **record}}


@pytest.mark.parametrize("schema", SCHEMAS, ids=["bench", "shop", "numeric", "patterns"])
def test_speed_every_schema_here_takes_the_compiled_path(schema: Any) -> None:
    # GIVEN the schemas the equivalence below is checked on  WHEN loaded  THEN compiled
    assert SchemaCheck(schema, source="s").compiled


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(record=records, which=st.integers(min_value=0, max_value=len(SCHEMAS) - 1))
def test_speed_compiled_check_gives_jsonschemas_verdict_and_reason(record: dict[str, Any], which: int) -> None:
    # GIVEN a schema, with and without the compiled accept-path
    schema = SCHEMAS[which]
    fast, reference = SchemaCheck(schema, source="s"), SchemaCheck(schema, source="s", compiled=False)
    for document in (record, _shop(record)):
        # WHEN a record is checked  THEN the verdict and the reason are jsonschema's alone
        assert fast.problem(document) == reference.problem(document)


@pytest.mark.parametrize(
    ("schema", "document", "reason"),
    [
        # A Rust regex reads \d as ASCII digits: "[^\d]" would accept Arabic digits.
        ({"pattern": "^[^\\d]+$"}, "\u0661\u0662", "'١٢' does not match '^[^\\\\d]+$'"),
        # Decimal cannot divide 1 by 1E-400 in 28 digits: jsonschema says so, Rust says "multiple".
        ({"multipleOf": Decimal("1E-400")}, 1, "cannot be checked against the schema: InvalidOperation"),
        ({"maximum": Decimal("0.29999999999999999")}, 0.3, "0.3 is greater than the maximum of 0.29999999999999999"),
        ({"exclusiveMinimum": Decimal("0.30000000000000001")}, 0.3, "0.3 is less than or equal to the minimum"),
    ],
)
def test_speed_compiled_check_never_accepts_what_jsonschema_rejects(schema: Any, document: Any, reason: str) -> None:
    # GIVEN a schema where a plain compiled check would accept too much
    check = SchemaCheck(schema, source="s")
    assert check.compiled
    # WHEN a record it must reject is checked  THEN it is rejected with jsonschema's reason
    problem = check.problem(document)
    assert problem is not None and reason in problem


@pytest.mark.parametrize(
    "schema",
    [
        {"patternProperties": {"^x": {"type": "string"}}},  # Rust regexes on keys
        {"unevaluatedProperties": False},
        {"$ref": "https://example.com/other.json"},
        {"$ref": "#/$defs/missing"},
        {"$schema": "http://json-schema.org/draft-07/schema#", "type": "object"},
        {"properties": {"a": {"$id": "https://example.com/a", "type": "string"}}},
        {"properties": {"a": {"x-unknown": 1}}},
        {"items": [{"type": "string"}]},
        {"$dynamicRef": "#meta"},
    ],
)
def test_speed_schemas_the_fast_path_cannot_vouch_for_take_jsonschema(schema: Any) -> None:
    # GIVEN a keyword whose meaning the compiled validator may read differently
    # WHEN the schema is looked at  THEN only jsonschema judges it
    assert not fast_path_allowed(schema)


def test_speed_local_refs_and_root_id_keep_the_compiled_path() -> None:
    schema = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": "https://example.com/order.json",
        "$defs": {"qty": {"type": "integer", "minimum": 1}},
        "properties": {"qty": {"$ref": "#/$defs/qty"}},
    }
    check = SchemaCheck(schema, source="s")
    assert check.compiled
    assert check.problem({"qty": 2}) is None
    assert check.problem(loads(b'{"qty": 0}')) == "/qty: 0 is less than the minimum of 1"


def test_speed_a_record_the_compiled_validator_cannot_read_goes_to_jsonschema() -> None:
    # GIVEN a string with a lone surrogate (the JSON parser allows "\ud800"; Rust cannot hold it)
    check = SchemaCheck({"properties": {"a": {"type": "string", "maxLength": 1}}}, source="s")
    # WHEN checked  THEN jsonschema decides, as before
    assert check.problem({"a": "\ud800"}) is None
    assert check.problem({"a": "\ud800x"}) == "/a: '\\ud800x' is too long"
