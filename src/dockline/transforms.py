"""A route's own transform: ``transform = "module:function"`` in ``[[routes]]``.

The function is imported once, at configuration time, from the folder of
``dockline.toml``; per record it is called as ``function(record, ctx)`` after decoding
and validation, before the ledger, and returns:

- a dict: the record;
- a list of dicts: several records, each keyed by the route's id selector;
- ``None`` (or an empty list): the record is dropped, and counted.

The record's numbers are ints and Decimals (never floats), so arithmetic stays exact.
Anything the function raises makes the record bad, with a one-line reason
(``transform shop.pipeline:normalise_order raised ValueError: ...``; the traceback goes
to the debug log), except ``dockline.TransientError``, which is retried like any
transient error.
"""

from __future__ import annotations

import importlib
import logging
import sys
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from dockline.errors import PermanentError, TransientError

log = logging.getLogger("dockline.transforms")


@dataclass(slots=True)  # built once per record: not frozen, which costs 4x to build
class TransformContext:
    """What a transform may know about the record it is given.

    ``index`` is the 1-based line, row or array element (None for a whole document);
    ``received_at`` is the S3 event time on AWS, the file's modification time locally, and
    when the run picked the file up where neither is known.
    """

    route: str
    key: str
    bucket: str
    version: str
    index: int | None
    received_at: str

    @property
    def line(self) -> int | None:
        """The same as ``index``: the line of JSON Lines, the row of a CSV file."""
        return self.index


TransformFunction = Callable[[dict[str, Any], TransformContext], Any]


class Transform:
    """One imported transform. Thread-safe if the user's function is."""

    def __init__(self, spec: str, function: TransformFunction) -> None:
        self.spec = spec
        self.function = function

    @classmethod
    def load(cls, spec: Any, base_dir: Path) -> Transform:
        """Import ``module:function`` with ``base_dir`` on the import path. Raises
        ValueError with a one-line reason (not importable, no such function, not callable)."""
        if not isinstance(spec, str) or spec.count(":") != 1 or not all(spec.split(":")):
            raise ValueError(f'{spec!r} must be "module:function", e.g. "shop.pipeline:normalise_order"')
        module_name, function_name = (part.strip() for part in spec.split(":"))
        folder = str(base_dir.resolve())
        if folder not in sys.path:
            # Kept there, not removed after the import: the user's module may import its
            # own siblings later, while it runs.
            sys.path.insert(0, folder)
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            raise ValueError(f"cannot import {module_name!r} from {folder}: {exc}") from None
        except Exception as exc:  # noqa: BLE001 -- a broken user module, whatever it raises, is one line
            raise ValueError(f"importing {module_name!r} raised {type(exc).__name__}: {_one_line(exc)}") from None
        function = getattr(module, function_name, None)
        if function is None:
            raise ValueError(f"module {module_name!r} has no {function_name!r}")
        if not callable(function):
            raise ValueError(f"{spec} is {type(function).__name__}, not a function")
        return cls(spec, function)

    def apply(self, record: dict[str, Any], ctx: TransformContext) -> list[dict[str, Any]] | None:
        """The records ``record`` becomes: a list (one for a dict), or None when dropped.

        Raises PermanentError (the record is bad) and TransientError (retry the file).
        """
        try:
            result = self.function(_with_decimals(record), ctx)
        except TransientError:
            raise
        except Exception as exc:  # user code: any failure makes the record bad
            log.debug("transform %s raised on %s (record %s)", self.spec, ctx.key, ctx.index, exc_info=True)
            raise PermanentError(f"transform {self.spec} raised {type(exc).__name__}: {_one_line(exc)}") from None
        if result is None:
            return None
        if type(result) is dict:
            return [result]
        if type(result) is list:
            for position, output in enumerate(result):
                if type(output) is not dict:
                    raise PermanentError(
                        f"transform {self.spec} returned a list holding {_kind(output)} at [{position}];"
                        " each element must be a dict"
                    )
            return result or None
        raise PermanentError(f"transform {self.spec} returned {_kind(result)}; return a dict, a list of dicts or None")

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Transform) and other.spec == self.spec and other.function is self.function

    def __hash__(self) -> int:
        return hash(self.spec)

    def __repr__(self) -> str:
        return f"Transform({self.spec!r})"


def _with_decimals(value: Any) -> Any:
    """A copy of a record with every float as the Decimal of its shortest form (exact: see
    ``jsonx``), so the transform never sees a float. ``jsonx.exact_payload``'s rule, run
    once per record: a C-level shallow copy, then only the floats and containers replaced
    (a quarter cheaper than building the dict item by item)."""
    kind = type(value)
    if kind is dict:
        out = value.copy()
        for key, item in value.items():
            kind = type(item)
            if kind is float:
                out[key] = Decimal(repr(item))
            elif kind is dict or kind is list:
                out[key] = _with_decimals(item)
        return out
    if kind is list:
        copied = value.copy()
        for place, item in enumerate(value):
            kind = type(item)
            if kind is float:
                copied[place] = Decimal(repr(item))
            elif kind is dict or kind is list:
                copied[place] = _with_decimals(item)
        return copied
    return Decimal(repr(value)) if kind is float else value


def _one_line(exc: BaseException) -> str:
    return " ".join(str(exc).split()) or "(no message)"


def _kind(value: Any) -> str:
    names = {str: "a str", int: "an int", float: "a float", bool: "a bool", tuple: "a tuple", set: "a set"}
    return names.get(type(value), f"a {type(value).__name__}")
