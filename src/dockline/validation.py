"""A route's JSON Schema (draft 2020-12), checked per record with ``jsonschema``.

Numbers reach the validator exact: the record's floats (exact by ``jsonx``'s rule) are
handed over as Decimals and the schema is read with Decimals too, so ``minimum``,
``multipleOf`` and ``enum`` compare values, never binary approximations; ``2.0`` is an
integer, as the draft says, whichever parser read it. A problem is one line naming the
JSON path and the rule: ``/items/0/qty: -2 is less than the minimum of 1``.

Where the schema allows it, a compiled validator (``schema_fast``: ``jsonschema-rs``) accepts
the records that conform first, in about a microsecond, on the record as parsed;
``jsonschema`` still judges every record it does not accept, so verdicts and reasons stay
``jsonschema``'s.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

from dockline.jsonx import exact_payload, loads_exact
from dockline.schema_fast import compile_fast
from dockline.selectors import pointer_text

_DECIMAL_REPR = re.compile(r"Decimal\('([^']*)'\)")


def _is_integer(checker: Any, instance: Any) -> bool:
    if isinstance(instance, bool):
        return False
    if isinstance(instance, Decimal):
        return instance.is_finite() and instance == instance.to_integral_value()
    return isinstance(instance, int)


@cache
def _validator_class() -> Any:
    """Imported on first use: jsonschema takes ~150 ms to import, which a Lambda cold
    start whose routes have no schema should not pay."""
    from jsonschema import Draft202012Validator, validators

    checker = Draft202012Validator.TYPE_CHECKER.redefine("integer", _is_integer)
    return validators.extend(Draft202012Validator, type_checker=checker)


class SchemaCheck:
    """One loaded schema. Thread-safe: validating keeps no state."""

    def __init__(self, schema: Mapping[str, Any] | bool, *, source: str, compiled: bool = True) -> None:
        """Raises ValueError when ``schema`` is not a valid draft 2020-12 schema.
        ``compiled=False``: ``jsonschema`` alone (the reference the tests hold the fast path to)."""
        from jsonschema.exceptions import SchemaError

        validator_class = _validator_class()
        # The schema's numbers as Decimals too: jsonschema divides for multipleOf, and a
        # Decimal record divided by a float schema value is a TypeError, not an answer.
        schema = exact_payload(schema)
        try:
            validator_class.check_schema(schema)
        except SchemaError as exc:
            where = pointer_text(list(exc.absolute_path)) or "the top level"
            raise ValueError(f"{source} is not a valid JSON Schema: {where}: {_text(exc.message)}") from None
        self.source = source
        self._validator = validator_class(schema)
        self._accepts = compile_fast(schema) if compiled else None

    @property
    def compiled(self) -> bool:
        """Does a compiled validator accept the conforming records first?"""
        return self._accepts is not None

    @classmethod
    def load(cls, path: Path) -> SchemaCheck:
        """Read a schema file. Raises ValueError with a one-line reason."""
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise ValueError(f"{path} does not exist") from None
        except OSError as exc:
            raise ValueError(f"cannot read {path}: {exc.strerror or exc}") from None
        try:
            schema = loads_exact(data)
        except Exception as exc:  # noqa: BLE001 -- any parse failure is the same one-line reason
            raise ValueError(f"{path} is not JSON: {exc}") from None
        if not isinstance(schema, dict | bool):
            raise ValueError(f"{path} is not a JSON Schema (an object)")
        return cls(schema, source=str(path))

    def problem(self, document: Any) -> str | None:
        """None when ``document`` conforms; else the best error, on one line."""
        accepts = self._accepts
        if accepts is not None:
            try:
                if accepts(document):
                    return None
            except Exception:  # noqa: BLE001,S110 -- e.g. a lone surrogate: jsonschema decides below
                pass
        instance = exact_payload(document)
        try:
            first = next(self._validator.iter_errors(instance), None)
            if first is None:
                return None
            from jsonschema.exceptions import best_match

            error = best_match(self._validator.iter_errors(instance)) or first
        except (TypeError, ArithmeticError, RecursionError) as exc:
            return f"cannot be checked against the schema: {type(exc).__name__}: {exc}"
        where = pointer_text(list(error.absolute_path)) or "(root)"
        return f"{where}: {_text(error.message)}"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SchemaCheck) and other.source == self.source

    def __hash__(self) -> int:
        return hash(self.source)


def _text(message: str) -> str:
    """jsonschema's message, with Decimals as the numbers they are and on one line."""
    return " ".join(_DECIMAL_REPR.sub(r"\1", message).split())
