"""``[[routes]]`` tables of ``dockline.toml`` -> ``Route`` values (part of ``config``).

Every problem is one ConfigError line naming the route and the field. A field a route
leaves out takes ``[pipeline]``'s value (records, csv_schema, on_bad_record,
on_conflict), so a section shared by all feeds is written once.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

from dockline.errors import ConfigError
from dockline.models import BadRecordPolicy, ConflictPolicy, RecordMode
from dockline.routes import ENCODINGS, CsvDialect, Format, Route, check_routes
from dockline.selectors import IdSelector, Pointer
from dockline.transforms import Transform
from dockline.validation import SchemaCheck

_E = TypeVar("_E", Format, BadRecordPolicy, ConflictPolicy)
ROUTE_FIELDS = (
    "name", "prefix", "suffixes", "format", "records", "id", "csv", "csv_schema",
    "schema", "transform", "on_bad_record", "on_conflict",
)  # fmt: skip
_BAD, _CONFLICT = BadRecordPolicy, ConflictPolicy
CSV_TYPES = ("str", "int", "decimal", "bool")
_FORMAT_SUFFIXES = {Format.JSON: (".json",), Format.JSONL: (".jsonl", ".ndjson"), Format.CSV: (".csv",)}


def parse_routes(raw: Any, *, defaults: Route, base_dir: Path) -> tuple[Route, ...]:
    """Routes from the ``routes`` array; ``defaults`` holds ``[pipeline]``'s values and
    ``base_dir`` is where schema paths start (the folder of dockline.toml)."""
    if not isinstance(raw, list) or not all(isinstance(t, dict) for t in raw):
        raise ConfigError("routes must be an array of tables ([[routes]])")
    routes = tuple(_route(table, i, defaults, base_dir) for i, table in enumerate(raw))
    check_routes(routes)
    return routes


def _route(table: Mapping[str, Any], index: int, defaults: Route, base_dir: Path) -> Route:
    name = table.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(f"[[routes]] #{index + 1} name: every route needs a name (a non-empty string)")
    where = f"[[routes]] {name!r}"
    for field_name in table:
        if field_name not in ROUTE_FIELDS:
            raise ConfigError(f"{where}: unknown field {field_name!r}; known: {', '.join(ROUTE_FIELDS)}")
    if "prefix" not in table:
        raise ConfigError(f'{where} prefix: every route needs a prefix ("" takes the whole bucket)')
    prefix = _string(where, "prefix", table["prefix"])
    fmt = _choice(where, "format", table.get("format"), Format) if "format" in table else None
    suffixes = _suffixes(where, table, fmt, defaults)
    records, selector = _records(where, table.get("records", str(defaults.records)))
    ids = defaults.ids
    if "id" in table:
        value = table["id"]
        try:
            if not isinstance(value, str | list) or not all(isinstance(v, str) for v in value):
                raise ValueError('must be a JSON Pointer ("/order/id") or a list of them')
            ids = IdSelector.parse(value)
        except ValueError as exc:
            raise ConfigError(f"{where} id: {exc}") from None
    return Route(
        name=name,
        prefix=prefix,
        suffixes=suffixes,
        format=fmt,
        records=records,
        selector=selector,
        ids=ids,
        csv=_dialect(where, table.get("csv", {})),
        csv_schema=csv_schema(where, table.get("csv_schema", defaults.csv_schema)),
        schema=_schema(where, table["schema"], base_dir) if "schema" in table else None,
        transform=_transform(where, table["transform"], base_dir) if "transform" in table else None,
        on_bad_record=_choice(where, "on_bad_record", table.get("on_bad_record", defaults.on_bad_record), _BAD),
        on_conflict=_choice(where, "on_conflict", table.get("on_conflict", defaults.on_conflict), _CONFLICT),
    )


def _string(where: str, name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{where} {name} must be a string, not {value!r}")
    return value


def _choice(where: str, name: str, value: Any, enum: type[_E]) -> _E:
    try:
        return enum(value)
    except ValueError:
        allowed = ", ".join(repr(str(m)) for m in enum)
        raise ConfigError(f"{where} {name} = {value!r} is not one of {allowed}") from None


def _suffixes(where: str, table: Mapping[str, Any], fmt: Format | None, defaults: Route) -> tuple[str, ...]:
    if "suffixes" not in table:
        return _FORMAT_SUFFIXES[fmt] if fmt is not None else defaults.suffixes
    value = table["suffixes"]
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
        raise ConfigError(f'{where} suffixes must be a list of strings, e.g. [".json"]')
    return tuple(value)


def _records(where: str, value: Any) -> tuple[RecordMode, Pointer | None]:
    if not isinstance(value, str):
        raise ConfigError(f"{where} records must be a string, not {value!r}")
    if value.startswith("/"):
        try:
            return RecordMode.SPLIT, Pointer.parse(value)
        except ValueError as exc:
            raise ConfigError(f"{where} records: {exc}") from None
    try:
        return RecordMode(value), None
    except ValueError:
        allowed = ", ".join(repr(str(m)) for m in RecordMode)
        pointer = 'or a JSON Pointer ("/Records")'
        raise ConfigError(f"{where} records = {value!r} is not one of {allowed} {pointer}") from None


def _dialect(where: str, value: Any) -> CsvDialect:
    if not isinstance(value, dict):
        raise ConfigError(f'{where} csv must be a table, e.g. csv = {{ delimiter = ";" }}')
    known = ("delimiter", "quotechar", "encoding")
    for name, option in value.items():
        if name not in known:
            raise ConfigError(f"{where} csv: unknown option {name!r}; known: {', '.join(known)}")
        if name in ("delimiter", "quotechar") and not (isinstance(option, str) and len(option) == 1):
            raise ConfigError(f"{where} csv {name} must be one character, not {option!r}")
        if option in ("\r", "\n"):
            raise ConfigError(f"{where} csv {name} cannot be a line break")
    dialect = CsvDialect(**value)
    if dialect.encoding not in ENCODINGS:
        raise ConfigError(f"{where} csv encoding {dialect.encoding!r} is not one of {', '.join(ENCODINGS)}")
    if dialect.delimiter == dialect.quotechar:
        raise ConfigError(f"{where} csv delimiter and quotechar are both {dialect.delimiter!r}")
    return dialect


def csv_schema(where: str, value: Any) -> dict[str, str]:
    """A column -> type table. Raises ConfigError."""
    if not isinstance(value, Mapping):
        raise ConfigError(f"{where} csv_schema must be a table of column = type")
    for column, kind in value.items():
        if kind not in CSV_TYPES:
            raise ConfigError(
                f"{where} csv_schema: column {column!r} has type {kind!r}; use 'str', 'int', 'decimal' or 'bool'"
            )
    return dict(value)


def _schema(where: str, value: Any, base_dir: Path) -> SchemaCheck:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{where} schema must be a path to a JSON Schema file, not {value!r}")
    try:
        return SchemaCheck.load(base_dir / value)
    except ValueError as exc:
        raise ConfigError(f"{where} schema: {exc}") from None


def _transform(where: str, value: Any, base_dir: Path) -> Transform:
    try:
        return Transform.load(value, base_dir)
    except ValueError as exc:
        raise ConfigError(f"{where} transform: {exc}") from None
