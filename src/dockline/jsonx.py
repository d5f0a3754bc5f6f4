"""Exact JSON: numbers keep every digit, output is canonical.

DynamoDB rejects Python floats, and a float would round ``0.1`` anyway, so every
JSON number with a fraction or exponent becomes a ``Decimal`` parsed from its own
text. Integers stay Python ints, of any size.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

import orjson

from dockline.errors import PermanentError

_ORJSON_OPTS = orjson.OPT_SORT_KEYS


def _reject_constant(name: str) -> Any:
    raise PermanentError(f"{name} is not a valid JSON number (numbers must be finite)")


def loads_exact(text: str | bytes) -> Any:
    """Parse JSON keeping numbers exact. Raises PermanentError with a one-line reason."""
    if isinstance(text, bytes):
        text = decode_utf8(text)
    try:
        return json.loads(text, parse_float=Decimal, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        raise PermanentError(describe_json_error(exc)) from None
    except RecursionError:
        raise PermanentError("JSON nesting is too deep to parse safely") from None
    except ValueError as exc:  # e.g. an integer with more than 4300 digits
        raise PermanentError(f"not valid JSON: {exc}") from None


def decode_utf8(data: bytes) -> str:
    """Bytes to text, strictly UTF-8 (a leading BOM is allowed). Raises PermanentError."""
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        if b"\x00" in data[:8192]:
            raise PermanentError("the file is binary data, not UTF-8 JSON text") from None
        raise PermanentError(f"not valid UTF-8: byte 0x{data[exc.start]:02x} at offset {exc.start}") from None


def describe_json_error(exc: json.JSONDecodeError) -> str:
    if exc.msg == "Extra data":
        return f"trailing data after the JSON document at line {exc.lineno}, column {exc.colno}"
    if exc.pos >= len(exc.doc.rstrip()) and exc.doc.strip():
        return f"truncated JSON: the document ends early at line {exc.lineno}, column {exc.colno}"
    if "\x00" in exc.doc[:8192]:
        return "the file is binary data, not JSON text"
    return f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"


def _fragment(value: Any) -> Any:
    if isinstance(value, Decimal):
        return orjson.Fragment(str(value))
    raise TypeError(f"cannot serialise {type(value).__name__}")


def _big_ints_as_fragments(value: Any) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return orjson.Fragment(str(value)) if abs(value) >= 2**63 else value
    if isinstance(value, dict):
        return {k: _big_ints_as_fragments(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_big_ints_as_fragments(v) for v in value]
    return value


def dumps(value: Any, *, indent: bool = False) -> bytes:
    """Canonical JSON (sorted keys, no spaces); Decimals and big ints stay exact."""
    opts = _ORJSON_OPTS | (orjson.OPT_INDENT_2 if indent else 0)
    try:
        return orjson.dumps(value, default=_fragment, option=opts)
    except orjson.JSONEncodeError as exc:
        if "Integer exceeds" not in str(exc):
            raise PermanentError(f"cannot serialise the document: {exc}") from None
        return orjson.dumps(_big_ints_as_fragments(value), default=_fragment, option=opts)
