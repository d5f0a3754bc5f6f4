"""A compiled accept-path for a route's JSON Schema: ``jsonschema-rs`` (Rust), used only
where its "valid" provably means ``jsonschema``'s "valid" too.

``jsonschema`` (Python) stays the judge: every record the fast validator does not accept
is checked again by it, so the verdict and the reason text of a bad record are unchanged.
The fast validator may therefore be stricter than ``jsonschema``, never more lenient; that
holds because it is built only for schemas made of the keywords below, whose meaning leaves
an implementation no room (measured against ``jsonschema`` in
``tests/unit/test_schema_fast_path.py``):

- numbers: ``jsonschema-rs`` compares Python floats as their shortest decimal form and
  Decimals and ints exactly (``0.3 > 0.29999999999999999``, ``10**400`` is not ``<= 1``): the
  same values ``validation`` hands ``jsonschema`` (floats as ``Decimal(repr(f))``);
- ``pattern`` runs Python's ``re.search``, as ``jsonschema`` does (Rust's regex dialect
  differs: ``[^\\d]`` and a trailing ``$`` before a newline would not match the same strings);
- ``multipleOf`` runs ``jsonschema``'s own arithmetic (a Decimal remainder too large for
  28 digits is an error there, a verdict in Rust);
- not allowed (the schema then always takes ``jsonschema``): ``patternProperties`` (Rust
  regexes on keys), ``unevaluated*``, ``$dynamicRef`` and friends, ``$id`` below the root,
  ``$ref`` outside the document, another ``$schema``, and any keyword not listed here.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"
# Keywords that only annotate in draft 2020-12 (``format`` too: ``jsonschema`` does not
# assert it without a format checker, and the fast validator is told not to either).
_ANNOTATIONS = frozenset(
    {"title", "description", "default", "examples", "$comment", "deprecated", "readOnly", "writeOnly", "format"}
    | {"contentMediaType", "contentEncoding"}
)
_VALUES = frozenset(  # keywords whose value is data, not a schema
    {"type", "enum", "const", "required", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"}
    | {"multipleOf", "minLength", "maxLength", "pattern", "minItems", "maxItems", "uniqueItems"}
    | {"minProperties", "maxProperties", "minContains", "maxContains", "dependentRequired"}
)
_ONE_SCHEMA = frozenset({"additionalProperties", "items", "contains", "propertyNames", "not", "if", "then", "else"})
_SCHEMA_LISTS = frozenset({"allOf", "anyOf", "oneOf", "prefixItems"})
_SCHEMA_MAPS = frozenset({"properties", "$defs", "definitions", "dependentSchemas"})
_ROOT_ONLY = frozenset({"$schema", "$id"})
_SIMPLE_POINTER = re.compile(r"^#(/[$A-Za-z0-9_.\-]+)*$")


def fast_path_allowed(schema: Mapping[str, Any] | bool) -> bool:
    """Does ``schema`` use only the keywords the fast validator provably judges as
    ``jsonschema`` does (see the module docstring)?"""
    places: set[str] = set()
    refs: list[str] = []
    if not _walk(schema, "#", places, refs, root=True):
        return False
    return all(ref in places for ref in refs)


def _walk(schema: Any, where: str, places: set[str], refs: list[str], *, root: bool = False) -> bool:
    if type(schema) is bool:
        places.add(where)
        return True
    if type(schema) is not dict:
        return False
    places.add(where)
    for keyword, value in schema.items():
        if keyword in _ROOT_ONLY:
            if not root or (keyword == "$schema" and value != DRAFT_2020_12) or type(value) is not str:
                return False
        elif keyword == "$ref":
            if type(value) is not str or not _SIMPLE_POINTER.match(value):
                return False
            refs.append(value)
        elif keyword in _ONE_SCHEMA:
            if not _walk(value, f"{where}/{keyword}", places, refs):
                return False
        elif keyword in _SCHEMA_LISTS:
            if type(value) is not list:
                return False
            if not all(_walk(s, f"{where}/{keyword}/{i}", places, refs) for i, s in enumerate(value)):
                return False
        elif keyword in _SCHEMA_MAPS:
            if type(value) is not dict:
                return False
            for name, sub in value.items():
                # A name a simple pointer cannot spell is walked, but no $ref can target it.
                if not _walk(sub, f"{where}/{keyword}/{name}", places, refs):
                    return False
        elif keyword not in _VALUES and keyword not in _ANNOTATIONS:
            return False
    return True


class _PythonPattern:
    """``pattern`` as ``jsonschema`` runs it: ``re.search`` on strings."""

    def __init__(self, parent_schema: Any, value: Any, schema_path: Any) -> None:
        self._search = re.compile(value).search

    def validate(self, instance: Any) -> None:
        if type(instance) is str and self._search(instance) is None:
            raise ValueError("does not match")


class _PythonMultipleOf:
    """``multipleOf`` as ``validation`` asks ``jsonschema`` for it: the record's float as the
    Decimal of its shortest form, the schema's number as a Decimal (or int), and a remainder
    that Decimal cannot compute (its quotient needs more than 28 digits) is no verdict."""

    def __init__(self, parent_schema: Any, value: Any, schema_path: Any) -> None:
        self._divisor = Decimal(repr(value)) if type(value) is float else value

    def validate(self, instance: Any) -> None:
        kind = type(instance)
        if kind is bool or kind not in (int, float, Decimal):
            return
        number = Decimal(repr(instance)) if kind is float else instance
        if number % self._divisor:  # raises ArithmeticError where jsonschema would
            raise ValueError("not a multiple")


def compile_fast(schema: Mapping[str, Any] | bool) -> Callable[[Any], bool] | None:
    """The fast validator's ``is_valid`` for ``schema``, or None: the schema is not one it
    may judge, or ``jsonschema-rs`` is not installed (the AWS function without the wheel)."""
    if not fast_path_allowed(schema):
        return None
    try:
        import jsonschema_rs  # optional; imported on first use, as jsonschema is
    except ImportError:
        return None
    try:
        validator = jsonschema_rs.Draft202012Validator(
            schema if isinstance(schema, bool) else dict(schema),
            validate_formats=False,
            offline=True,
            keywords={"pattern": _PythonPattern, "multipleOf": _PythonMultipleOf},
        )
    except Exception:  # noqa: BLE001 -- anything it cannot compile is left to jsonschema
        return None
    is_valid: Callable[[Any], bool] = validator.is_valid
    return is_valid
