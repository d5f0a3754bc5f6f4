"""CSV cells -> values, and the check for a file read with the wrong delimiter (``decode``).

A typed column (``csv_schema``: int, decimal, bool; str is the default) turns each cell
into that type; a blank typed cell is null: a sensor that did not report, not a bad row.
"""

from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from typing import Any

from dockline.errors import PermanentError

SNIFF_ROWS = 5
_DELIMITERS = {",": "','", ";": "';'", "\t": "a tab", "|": "'|'"}


def refuse_other_delimiter(header: str, rows: list[list[str]], delimiter: str) -> None:
    """A one-column header whose text, and the first rows', split evenly on another
    delimiter is a misread file: say which delimiter it looks like, never store
    one-column records. Raises PermanentError."""
    for candidate, name in _DELIMITERS.items():
        count = header.count(candidate)
        if candidate == delimiter or count == 0:
            continue
        if all(len(row) == 1 and row[0].count(candidate) == count for row in rows if row):
            shown = "\\t" if candidate == "\t" else candidate
            raise PermanentError(
                f"the CSV header is one column, but the lines look separated by {name} ({count + 1} columns); "
                f'set csv = {{ delimiter = "{shown}" }} on its route'
            )


def typed(kind: str) -> Callable[[str], Any]:
    """A typed column's converter: a blank cell is null (a missing reading, not an error)."""
    convert = _CSV_TYPES[kind]
    if kind == "str":
        return convert
    return lambda value: None if not value or value.isspace() else convert(value)


def _csv_int(value: str) -> int:
    try:
        return int(value)
    except ValueError:
        raise PermanentError(f"{value!r} is not an integer") from None


def _csv_decimal(value: str) -> Decimal:
    try:
        number = Decimal(value)
    except InvalidOperation:
        raise PermanentError(f"{value!r} is not a number") from None
    if not number.is_finite():
        raise PermanentError(f"{value!r} is not a finite number")
    return number


def _csv_bool(value: str) -> bool:
    lowered = value.strip().lower()
    if lowered in ("true", "1", "yes"):
        return True
    if lowered in ("false", "0", "no"):
        return False
    raise PermanentError(f"{value!r} is not a boolean")


_CSV_TYPES: dict[str, Callable[[str], Any]] = {
    "str": str,
    "int": _csv_int,
    "decimal": _csv_decimal,
    "bool": _csv_bool,
}
