"""DynamoDB item shapes of the ledger: pure functions, no I/O.

Two kinds of item share the seed's table (only key: the string ``pk``):

- a **record item** per document or record, at ``pk`` = the business id (or the key);
- a **file marker** per settled object version, at ``pk`` =
  ``dockline#file#<bucket>/<key>@<version>`` (the core refuses ids that start with
  ``dockline#``, so the two can never collide). It holds the file's outbox flag
  ``notified``; a processed document's marker is written once its notification went out.

Items are built in DynamoDB's wire format (``{"S": ...}``) with boto3's
``TypeSerializer``; numbers arrive from the core's exact parser as ints, Decimals or
floats that are exact (see ``dockline.jsonx``), and are stored as Decimals.
"""

from __future__ import annotations

import decimal
from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any

from boto3.dynamodb.types import DYNAMODB_CONTEXT, TypeSerializer

from dockline.aws.refs import reference_uri
from dockline.errors import PermanentError
from dockline.models import BadRecord, ObjectRef, Outcome, Record, Status

if TYPE_CHECKING:
    from mypy_boto3_dynamodb.type_defs import AttributeValueTypeDef

    Item = dict[str, AttributeValueTypeDef]
else:
    Item = dict

MARKER_PREFIX = "dockline#file#"
# DynamoDB's limit is 400 KB (409,600 bytes) per item; the estimate below is an upper
# bound, and this leaves room for the attributes around the payload.
MAX_ITEM_BYTES = 400_000
# DynamoDB nests documents at most 32 levels deep; the payload attribute is one of them.
MAX_PAYLOAD_DEPTH = 31
MAX_SKIPPED_LISTED = 100  # bad records listed on a file marker (all are counted)

TOO_MANY_DIGITS = "a number has more than 38 significant digits, which DynamoDB cannot store"
OUT_OF_RANGE = "a number is outside the range DynamoDB can store (1E-130 to 9.99E+125 in magnitude)"

_SERIALIZER = TypeSerializer()


def marker_pk(ref: ObjectRef) -> str:
    return MARKER_PREFIX + ref.identity


def s(value: str) -> AttributeValueTypeDef:
    return {"S": value}


def n(value: int) -> AttributeValueTypeDef:
    return {"N": str(value)}


def text(item: Mapping[str, Any], name: str) -> str | None:
    value = item.get(name)
    return str(value["S"]) if isinstance(value, Mapping) and "S" in value else None


def number(item: Mapping[str, Any], name: str, default: int = 0) -> int:
    value = item.get(name)
    return int(Decimal(value["N"])) if isinstance(value, Mapping) and "N" in value else default


def flag(item: Mapping[str, Any], name: str) -> bool:
    value = item.get(name)
    return bool(value.get("BOOL")) if isinstance(value, Mapping) else False


# -- numbers and shape --------------------------------------------------------------
def _number_problem(value: int | Decimal) -> str | None:
    try:
        DYNAMODB_CONTEXT.create_decimal(value)
    except (decimal.Overflow, decimal.Underflow, decimal.Clamped):
        return OUT_OF_RANGE
    except (decimal.Inexact, decimal.Rounded):
        return TOO_MANY_DIGITS
    return None


def _fit(value: int | Decimal) -> int | Decimal:
    """``value`` unchanged if DynamoDB can take it, or written with fewer digits when
    only trailing zeros were in the way (10**40 -> 1E+40). Raises PermanentError."""
    problem = _number_problem(value)
    if problem is None:
        return value
    sign, digits, exponent = Decimal(value).as_tuple()
    assert isinstance(exponent, int)  # finite: the parser rejects NaN and Infinity
    while len(digits) > 1 and digits[-1] == 0:
        digits, exponent = digits[:-1], exponent + 1
    fitted = Decimal((sign, digits, exponent))
    if _number_problem(fitted) is None:
        return fitted
    raise PermanentError(problem)


def _fit_numbers(value: Any, path: str) -> Any:
    if isinstance(value, bool):
        return value
    if isinstance(value, int | Decimal):
        try:
            return _fit(value)
        except PermanentError as exc:
            raise PermanentError(f"{exc} (at {path})") from None
    if isinstance(value, dict):
        return {k: _fit_numbers(v, f"{path}.{k}") for k, v in value.items()}
    if isinstance(value, list):
        return [_fit_numbers(v, f"{path}[{i}]") for i, v in enumerate(value)]
    return value


class _TooDeep(Exception):
    pass


def _prepare(value: Any, level: int = 1) -> Any:
    """``value`` with floats as Decimals (see ``jsonx.exact_payload``), in one walk that
    also stops at DynamoDB's nesting limit (so it never recurses deeper than that)."""
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, dict):
        if level > MAX_PAYLOAD_DEPTH:
            raise _TooDeep
        return {k: _prepare(v, level + 1) for k, v in value.items()}
    if isinstance(value, list):
        if level > MAX_PAYLOAD_DEPTH:
            raise _TooDeep
        return [_prepare(v, level + 1) for v in value]
    return value


def _depth(value: Any) -> int:
    deepest, stack = 0, [(value, 1)]
    while stack:
        node, level = stack.pop()
        children = node.values() if isinstance(node, dict) else node if isinstance(node, list) else None
        if children is None:
            continue
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in children)
    return deepest


def serialize_payload(payload: Any) -> AttributeValueTypeDef:
    """The payload as a DynamoDB map, numbers exact (the core's exact floats become
    the Decimals of their shortest form: boto3 refuses floats).

    Raises PermanentError (with the JSON path) for a number DynamoDB cannot store
    exactly, and for documents nested deeper than DynamoDB allows.
    """
    try:
        payload = _prepare(payload)
    except _TooDeep:
        raise PermanentError(
            f"the document is nested {_depth(payload)} levels deep; DynamoDB stores at most 32 "
            "(counting the payload attribute)"
        ) from None
    try:
        return _SERIALIZER.serialize(payload)
    except decimal.DecimalException:
        pass  # find the number, and save those that only have trailing zeros
    return _SERIALIZER.serialize(_fit_numbers(payload, "$"))


def value_size(value: Mapping[str, Any]) -> int:
    """An upper bound of DynamoDB's size for one attribute value (its item-size rules)."""
    if "S" in value:
        return len(value["S"].encode("utf-8"))
    if "N" in value:
        return len(value["N"]) // 2 + 2
    if "M" in value:
        return 3 + sum(len(k.encode("utf-8")) + value_size(v) + 1 for k, v in value["M"].items())
    if "L" in value:
        return 3 + sum(value_size(v) + 1 for v in value["L"])
    if "B" in value:
        return len(value["B"])
    return 1  # BOOL, NULL


def item_size(item: Mapping[str, Any]) -> int:
    return sum(len(name.encode("utf-8")) + value_size(v) for name, v in item.items())


# -- record items -------------------------------------------------------------------
def _common(ref: ObjectRef, *, status: str, received_at: str, now: str) -> Item:
    item: Item = {
        "bucket": s(ref.bucket),
        "key": s(ref.key),
        "etag": s(ref.version),
        "status": s(status),
        "received_at": s(received_at),
        "processed_at": s(now),
    }
    if ref.size is not None:
        item["size"] = n(ref.size)
    if ref.sequencer:
        item["sequencer"] = s(ref.sequencer)
    if ref.event_time:
        item["event_time"] = s(ref.event_time)
    return item


def record_item(ref: ObjectRef, record: Record, *, received_at: str, now: str) -> Item:
    """The ledger item for one record. No item carries an outbox flag: the file
    marker does (``marker_item``), so closing the outbox never rewrites a big item.
    A payload too big for one item is stored as a reference to the object.

    Raises PermanentError for payloads DynamoDB cannot represent (see serialize_payload).
    """
    item: Item = {"pk": s(record.pk), **_common(ref, status="processed", received_at=received_at, now=now)}
    item["content_hash"] = s(record.content_hash)
    item["payload_bytes"] = n(record.payload_bytes)
    item["route"] = s(record.route)  # for readers and filters: which route read it
    if record.index is not None:
        item["record_index"] = n(record.index)
    if not record.oversized:
        item["payload"] = serialize_payload(record.payload)
        # A DynamoDB item takes at most about twice the canonical JSON (a one-digit
        # number in a list: 2 bytes of JSON, 4 of item); only near the limit measure it.
        if record.payload_bytes * 2 + 16_384 <= MAX_ITEM_BYTES or item_size(item) <= MAX_ITEM_BYTES:
            return item
        del item["payload"]  # canonical JSON under the core's limit can still be a too-big item
    item["payload_ref"] = s(reference_uri(ref))
    item["oversized"] = {"BOOL": True}
    return item


# -- file markers -------------------------------------------------------------------
def marker_item(outcome: Outcome, *, received_at: str, now: str, notified: bool = False) -> Item:
    """The file marker recording ``outcome``, its outbox flag open unless ``notified``."""
    ref = outcome.ref
    item: Item = {
        "pk": s(marker_pk(ref)),
        "kind": s("file"),
        **_common(ref, status=str(outcome.status), received_at=received_at, now=now),
        "attempts": n(outcome.attempts),
        "records": n(outcome.records),
        "duplicates": n(outcome.duplicates),
        "conflicts": n(outcome.conflicts),
        "notified": {"BOOL": notified},
    }
    if outcome.error:
        item["error"] = s(outcome.error)
    if outcome.pk:
        item["item_pk"] = s(outcome.pk)
    if outcome.sha256:
        item["sha256"] = s(outcome.sha256)
    if outcome.dropped:
        item["dropped"] = n(outcome.dropped)
    if outcome.skipped:
        item["skipped_count"] = n(len(outcome.skipped))
        item["skipped"] = {
            "L": [
                {"M": {"index": n(bad.index), "reason": s(bad.reason[:500])}}
                for bad in outcome.skipped[:MAX_SKIPPED_LISTED]
            ]
        }
    return item


def outcome_from_marker(ref: ObjectRef, item: Mapping[str, Any]) -> Outcome:
    skipped = tuple(
        BadRecord(index=number(entry["M"], "index"), reason=text(entry["M"], "reason") or "")
        for entry in item.get("skipped", {}).get("L", [])
    )
    return Outcome(
        ref=ref,
        status=Status(text(item, "status") or Status.FAILED),
        pk=text(item, "item_pk"),
        error=text(item, "error"),
        records=number(item, "records"),
        duplicates=number(item, "duplicates"),
        conflicts=number(item, "conflicts"),
        skipped=skipped,
        sha256=text(item, "sha256"),
        attempts=number(item, "attempts", 1),
        notified=flag(item, "notified"),
        dropped=number(item, "dropped"),
    )


def belongs_to(item: Mapping[str, Any], ref: ObjectRef) -> bool:
    """Was ``item`` written from exactly this object version?"""
    return text(item, "bucket") == ref.bucket and text(item, "key") == ref.key and text(item, "etag") == ref.version
