"""One parsed JSON value -> ledger records: the id (the ledger key), the canonical text, and
the route's schema check and transform. Knows nothing of files, lines or formats."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

from dockline.errors import PermanentError
from dockline.jsonx import dumps
from dockline.models import Record
from dockline.routes import DEFAULT_ROUTE, Route
from dockline.selectors import DEFAULT_IDS, IdSelector, MissingPath
from dockline.transforms import TransformContext

MAX_ID_BYTES = 1024
RESERVED_PK_PREFIX = "dockline#"  # the AWS ledger keeps its own markers under this prefix
_RESERVED = RESERVED_PK_PREFIX
_MISSING = object()


def derive_pk(document: Mapping[str, Any], fallback: str, ids: IdSelector = DEFAULT_IDS) -> str:
    """The ledger key: the id (``ids``, by default ``/id``) when it is a non-empty
    string or an integer (as its decimal string), several parts joined with "#", or
    ``fallback`` when the default ``/id`` is absent. Raises PermanentError otherwise."""
    if not ids.is_default:
        try:
            parts = ids.values(document)
        except MissingPath as exc:
            raise PermanentError(str(exc)) from None
        assert parts is not None
        pk = "#".join(_id_text(part, where=f"id {p.text}") for part, p in zip(parts, ids.pointers, strict=True))
        return _checked_pk(pk)
    value = document.get("id", _MISSING)
    if value is _MISSING:
        return fallback
    # The common case, cheaply: a short string id (256 chars are at most 1024 UTF-8 bytes).
    if type(value) is str and 0 < len(value) <= 256 and not value.isspace() and value[:9] != _RESERVED:
        return value
    return _checked_pk(_id_text(value, where="id"))


def _id_text(value: Any, *, where: str) -> str:
    """One id part as text. Raises PermanentError for a value that cannot be an id."""
    if type(value) is str and value.strip():
        return value
    if isinstance(value, bool) or not isinstance(value, str | int):
        kind = "null" if value is None else type(value).__name__
        names = {"Decimal": "a decimal number", "float": "a decimal number", "dict": "an object", "list": "an array"}
        kind = names.get(kind, kind)
        raise PermanentError(f"{where} must be a non-empty string or an integer, not {kind}")
    text = str(value)
    if not text.strip():
        raise PermanentError(f"{where} is empty")
    return text


def _checked_pk(pk: str) -> str:
    size = len(pk.encode("utf-8"))
    if size > MAX_ID_BYTES:
        raise PermanentError(f"id is {size:,} bytes long; the limit is {MAX_ID_BYTES:,} bytes")
    if pk.startswith(RESERVED_PK_PREFIX):
        raise PermanentError(f"ids starting with {RESERVED_PK_PREFIX!r} are reserved for dockline")
    return pk


def make_record(document: Any, *, key: str, index: int | None, max_inline: int, route: Route | None = None) -> Record:
    """A ledger record from one parsed JSON value; without an id its pk is ``key``
    (document mode) or ``key#index``. ``route`` picks the id and checks the record
    against its schema (its transform is ``RecordStream``'s). Raises PermanentError."""
    if type(document) is not dict:
        _require_object(document, index)
    fallback = key if index is None else f"{key}#{index}"
    name = DEFAULT_ROUTE if route is None else route.name
    if route is None or route.plain:
        pk = derive_pk(document, fallback)
    else:
        if route.schema is not None and (problem := route.schema.problem(document)) is not None:
            raise PermanentError(problem)
        pk = derive_pk(document, fallback, route.ids)
    canonical = dumps(document)  # as _record does, inline: this runs once per record
    if len(canonical) > max_inline:  # keep the hash, drop the bytes
        return Record(pk, None, hashlib.sha256(canonical).hexdigest(), index, True, len(canonical), "", name)
    return Record(pk, document, None, index, False, len(canonical), canonical.decode(), name)


def _require_object(document: Any, index: int | None) -> None:
    if type(document) is not dict:
        kind = {list: "an array", str: "a string", bool: "a boolean"}.get(type(document), "a number")
        if document is None:
            kind = "null"
        hint = ' (set records = "split" to ingest one record per element)' if isinstance(document, list) else ""
        where = "the document" if index is None else "the record"
        raise PermanentError(f"{where} is {kind}, not a JSON object{hint}")


def _record(document: dict[str, Any], pk: str, index: int | None, max_inline: int, route: str) -> Record:
    canonical = dumps(document)
    if len(canonical) > max_inline:  # keep the hash, drop the bytes
        return Record(pk, None, hashlib.sha256(canonical).hexdigest(), index, True, len(canonical), "", route)
    return Record(pk, document, None, index, False, len(canonical), canonical.decode(), route)


def transformed_records(
    document: Any, *, key: str, index: int | None, max_inline: int, route: Route, context: TransformContext
) -> list[Record]:
    """The records ``route``'s transform makes of one parsed value, after its schema
    check: none when it drops the value; several (each keyed by the id selector, or
    ``<place>#1``, ``#2`` ... without an id) when it returns a list. Raises
    PermanentError (a bad record) and TransientError (from the transform)."""
    assert route.transform is not None
    _require_object(document, index)
    if route.schema is not None and (problem := route.schema.problem(document)) is not None:
        raise PermanentError(problem)
    outputs = route.transform.apply(document, context)
    if outputs is None:
        return []
    if len(outputs) == 1 and route.ids.is_default:  # the common case, inline (once per record)
        output = outputs[0]
        pk = output.get("id", _MISSING)
        if type(pk) is str and 0 < len(pk) <= 256 and not pk.isspace() and pk[:9] != _RESERVED:
            try:
                return [_record(output, pk, index, max_inline, route.name)]
            except PermanentError as exc:
                raise PermanentError(f"transform {route.transform.spec}: its output: {exc}") from None
    fallback = key if index is None else f"{key}#{index}"
    several = len(outputs) > 1
    records = []
    for number, output in enumerate(outputs, start=1):
        try:
            pk = derive_pk(output, f"{fallback}#{number}" if several else fallback, route.ids)
            records.append(_record(output, pk, index, max_inline, route.name))
        except PermanentError as exc:
            which = f"output {number}" if several else "its output"
            raise PermanentError(f"transform {route.transform.spec}: {which}: {exc}") from None
    return records
