"""Lambda event -> work items. Pure: no boto3, no clock.

Understands every shape an S3 "object created" can reach the function in:

- an S3 event (``Records[].s3``), straight from S3 (direct mode);
- ``s3:TestEvent``, sent when notifications are switched on: skipped;
- SQS records whose ``body`` holds an S3 event, a TestEvent, an SNS envelope or an
  EventBridge event (queue mode; each item keeps its ``messageId`` for
  ``batchItemFailures`` and ``ApproximateReceiveCount`` as its attempt number);
- SNS records (``Records[].Sns.Message``) and SNS envelopes inside SQS bodies;
- EventBridge "Object Created" events (``detail.object.key``);
- Lambda destination records (``requestPayload`` holds the original event).

Keys are URL-encoded in all of them ("red flower.jpg" arrives as "red+flower.jpg") and
are decoded with ``unquote_plus``. Only object-created events whose decoded key
matches the pipeline's prefix and suffixes become work. EventBridge keys may arrive raw
(sources disagree): a work item from EventBridge also carries the key as it arrived.

Each record is parsed on its own, and nothing in an event can make the parser raise
(odd types anywhere, bodies nested 100k levels deep). A record that cannot be understood
is *malformed*. In an SQS batch the handler reports its message as failed, so the
queue's redrive policy moves it to the DLQ after ``maxReceiveCount`` receives and nothing
is lost; anywhere else it is logged and skipped, because retrying the same bytes cannot
help. An SQS record without a usable ``messageId`` is logged and dropped: reporting an
empty identifier would make Lambda fail the whole batch.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import unquote_plus

from dockline.aws.refs import version_of
from dockline.config import PipelineSettings
from dockline.errors import PermanentError
from dockline.models import ObjectRef

_MAX_DEPTH = 4  # envelopes inside envelopes: SQS(SNS(S3)) is the deepest real one
_MAX_KEY_BYTES = 1024  # S3's limit: an event naming a longer key names no object


@dataclass(frozen=True, slots=True)
class WorkItem:
    """One object version to process, and where it came from."""

    ref: ObjectRef
    message_id: str | None = None  # the SQS message to report in batchItemFailures
    attempts: int = 1
    # The key exactly as it arrived, when it differs from ``ref.key`` and the source is
    # not sure to URL-encode it (EventBridge): the store tries it when ``ref.key`` is not found.
    raw_key: str | None = None


@dataclass(frozen=True, slots=True)
class Malformed:
    """A record that is not any event shape dockline knows.

    ``message_id`` is the SQS message to report, or None when there is none to report
    (a direct event, or an SQS record without a usable ``messageId``).
    """

    reason: str
    message_id: str | None = None


@dataclass(slots=True)
class ParsedEvent:
    """What one invocation carries: work, things skipped on purpose, malformed records."""

    items: list[WorkItem] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # why, one line each (test events, filters)
    malformed: list[Malformed] = field(default_factory=list)
    from_sqs: bool = False  # answer with batchItemFailures
    message_ids: list[str] = field(default_factory=list)  # every reportable SQS message of the batch


def decode_key(raw: str) -> str:
    """An S3 event's URL-encoded key as the key itself ('a+b%2Bc' -> 'a b+c')."""
    return unquote_plus(raw)


def parse_event(event: Any, settings: PipelineSettings) -> ParsedEvent:
    """Turn one Lambda event into work items for the keys ``settings`` matches.

    Never raises, whatever ``event`` holds: each record is parsed on its own, and one
    that is not understood ends up in ``malformed`` without touching the others.
    """
    return _parse(event, settings.table.matches)  # the routes decide, as on the local engine


def object_refs(event: Any) -> ParsedEvent:
    """Every object-created reference in ``event``, whatever its key (for dead letters)."""
    return _parse(event, lambda _key: True)


def _parse(event: Any, matches: Callable[[str], bool]) -> ParsedEvent:
    parsed = ParsedEvent()
    records = event.get("Records") if isinstance(event, Mapping) else None
    # Lambda never mixes sources in one batch: one SQS record makes it an SQS batch, and
    # every other record is then judged as an SQS message on its own.
    if isinstance(records, list) and any(_is_sqs(r) for r in records):
        parsed.from_sqs = True
        for record in records:
            _sqs_message(record, parsed, matches)
        return parsed
    _walk(event, parsed, matches, message_id=None, attempts=1, depth=0)
    return parsed


def _is_sqs(record: Any) -> bool:
    return isinstance(record, Mapping) and record.get("eventSource") == "aws:sqs"


def _sqs_message(record: Any, parsed: ParsedEvent, matches: Callable[[str], bool]) -> None:
    message_id = record.get("messageId") if isinstance(record, Mapping) else None
    if not isinstance(message_id, str) or not message_id.strip():
        # Reporting an empty (or made-up) identifier makes Lambda fail the whole batch.
        # Lambda's own records always have one, so this is not a real message: drop it.
        parsed.malformed.append(Malformed(f"an SQS record without a messageId ({_show(record)}) was dropped"))
        return
    parsed.message_ids.append(message_id)
    attributes = record.get("attributes")
    count = attributes.get("ApproximateReceiveCount") if isinstance(attributes, Mapping) else None
    body, why_not = _json(record.get("body"))
    if why_not is not None:
        parsed.malformed.append(Malformed(f"the SQS message body {why_not}", message_id))
        return
    _walk(body, parsed, matches, message_id=message_id, attempts=_int(count, 1), depth=1)


def _json(text: Any) -> tuple[Any, str | None]:
    """``text`` decoded as JSON, or None and why it is not JSON."""
    if isinstance(text, Mapping):
        return text, None
    if not isinstance(text, str):
        return None, f"is not JSON text ({_show(text)})"
    try:
        return json.loads(text), None
    except RecursionError:  # the C decoder raises it for bodies nested too deeply
        return None, "is nested too deeply to be an event"
    except ValueError as exc:  # JSONDecodeError, and int() refusing a 5,000-digit number
        return None, f"is not JSON ({type(exc).__name__})"


def _int(value: Any, default: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int | str):
        return default
    try:
        return max(int(value), 1)
    except ValueError:  # not digits, or more digits than int() accepts
        return default


def _text(value: Any) -> str | None:
    """``value`` when it is a non-empty string, else None."""
    return value if isinstance(value, str) and value else None


def _show(value: Any) -> str:
    """A short, safe description of any JSON value for a reason (never repr() a value
    of unknown depth: a list nested 100k deep makes repr() raise RecursionError)."""
    if isinstance(value, str):
        return repr(_clip(value))
    if value is None or isinstance(value, bool | int | float):
        return "null" if value is None else type(value).__name__
    return f"a JSON {'object' if isinstance(value, Mapping) else 'array' if isinstance(value, list) else 'value'}"


def _clip(text: str) -> str:
    return text[:80] + "..." if len(text) > 80 else text


def _walk(
    node: Any, parsed: ParsedEvent, matches: Callable[[str], bool], *, message_id: str | None, attempts: int, depth: int
) -> None:
    def malformed(reason: str) -> None:
        parsed.malformed.append(Malformed(reason, message_id))

    if depth > _MAX_DEPTH:
        malformed("the event is wrapped in too many envelopes")
        return
    if not isinstance(node, Mapping):
        malformed(f"expected a JSON object, got {_show(node)}")
        return
    if node.get("Event") == "s3:TestEvent":
        parsed.skipped.append(f"s3:TestEvent for bucket {_show(node.get('Bucket'))}")
        return
    if "requestPayload" in node:  # a Lambda destination record
        context = node.get("requestContext")
        invoked = _int(context.get("approximateInvokeCount"), attempts) if isinstance(context, Mapping) else attempts
        _walk(node["requestPayload"], parsed, matches, message_id=message_id, attempts=invoked, depth=depth + 1)
        return
    if node.get("Type") == "Notification" and "Message" in node:  # an SNS envelope inside SQS
        _sns_message(node["Message"], parsed, matches, message_id=message_id, attempts=attempts, depth=depth)
        return
    if node.get("source") == "aws.s3" and isinstance(node.get("detail"), Mapping):
        _eventbridge(node, parsed, matches, message_id=message_id, attempts=attempts)
        return
    records = node.get("Records")
    if not isinstance(records, list) or not records:
        malformed("not an S3 event (no Records, no TestEvent, no EventBridge detail)")
        return
    for record in records:
        if not isinstance(record, Mapping):
            malformed("an event record is not a JSON object")
        elif isinstance(record.get("s3"), Mapping):
            _s3_record(record, parsed, matches, message_id=message_id, attempts=attempts)
        elif isinstance(record.get("Sns"), Mapping):
            sns = record["Sns"]
            _sns_message(sns.get("Message"), parsed, matches, message_id=message_id, attempts=attempts, depth=depth)
        else:
            source = _text(record.get("eventSource")) or _text(record.get("EventSource")) or "an unknown source"
            malformed(f"an event record from {_show(source)} is not an S3 record")


def _sns_message(
    message: Any,
    parsed: ParsedEvent,
    matches: Callable[[str], bool],
    *,
    message_id: str | None,
    attempts: int,
    depth: int,
) -> None:
    event, why_not = _json(message)
    if why_not is not None:
        parsed.malformed.append(Malformed(f"the SNS message {why_not}", message_id))
        return
    _walk(event, parsed, matches, message_id=message_id, attempts=attempts, depth=depth + 1)


def _accept(
    parsed: ParsedEvent,
    matches: Callable[[str], bool],
    ref: ObjectRef,
    *,
    message_id: str | None,
    attempts: int,
    raw_key: str | None = None,
) -> None:
    raw_key = raw_key if raw_key is not None and raw_key != ref.key and matches(raw_key) else None
    if not matches(ref.key) and raw_key is None:
        parsed.skipped.append(f"{ref.key!r} matches no route (prefix and suffixes)")
        return
    parsed.items.append(WorkItem(ref=ref, message_id=message_id, attempts=attempts, raw_key=raw_key))


def _s3_record(
    record: Mapping[str, Any],
    parsed: ParsedEvent,
    matches: Callable[[str], bool],
    *,
    message_id: str | None,
    attempts: int,
) -> None:
    name = _text(record.get("eventName"))
    if name is None:
        parsed.malformed.append(Malformed("the S3 record has no eventName", message_id))
        return
    if not name.startswith(("ObjectCreated:", "s3:ObjectCreated:")):
        parsed.skipped.append(f"{_clip(name)} is not an object-created event")
        return
    s3 = record["s3"]
    ref = _object_ref(
        s3.get("bucket"),
        s3.get("object"),
        parsed,
        "the S3 record",
        etag_field="eTag",
        version_field="versionId",
        event_time=record.get("eventTime"),
        message_id=message_id,
    )
    if ref is not None:
        _accept(parsed, matches, ref, message_id=message_id, attempts=attempts)


def _eventbridge(
    event: Mapping[str, Any],
    parsed: ParsedEvent,
    matches: Callable[[str], bool],
    *,
    message_id: str | None,
    attempts: int,
) -> None:
    if event.get("detail-type") != "Object Created":
        parsed.skipped.append(f"EventBridge {_show(event.get('detail-type'))} is not an object-created event")
        return
    detail = event["detail"]
    # Powertools decodes EventBridge keys like S3 notifications' keys, but sources disagree
    # (some users see '+' arrive raw): the decoded key is tried first, the raw one if it
    # is not found (see S3Store.locate).
    ref = _object_ref(
        detail.get("bucket"),
        detail.get("object"),
        parsed,
        "the EventBridge event",
        etag_field="etag",
        version_field="version-id",
        event_time=event.get("time"),
        message_id=message_id,
    )
    if ref is not None:
        raw = detail["object"]["key"]  # _object_ref checked it is a string
        _accept(parsed, matches, ref, message_id=message_id, attempts=attempts, raw_key=raw)


def _object_ref(
    bucket: Any,
    obj: Any,
    parsed: ParsedEvent,
    where: str,
    *,
    etag_field: str,
    version_field: str,
    event_time: Any,
    message_id: str | None,
) -> ObjectRef | None:
    """The object version an event names, or None (recorded as malformed) when it names none."""

    def malformed(reason: str) -> None:
        parsed.malformed.append(Malformed(f"{where} {reason}", message_id))

    name = _text(bucket.get("name")) if isinstance(bucket, Mapping) else None
    raw_key = _text(obj.get("key")) if isinstance(obj, Mapping) else None
    if name is None or raw_key is None or not isinstance(obj, Mapping):
        malformed("has no bucket name or object key (both must be strings)")
        return None
    etag, version_id = obj.get(etag_field), obj.get(version_field)
    for field_name, value in ((etag_field, etag), (version_field, version_id)):
        if value is not None and not isinstance(value, str):
            malformed(f"has a {field_name} that is not a string ({_show(value)})")
            return None
    key = decode_key(raw_key)
    try:
        size = len(key.encode("utf-8"))
    except UnicodeEncodeError:  # a lone surrogate: JSON can carry one, UTF-8 cannot
        malformed(f"has a key that is not valid UTF-8 ({_show(raw_key)})")
        return None
    if size > _MAX_KEY_BYTES:
        malformed(f"has a key of {size:,} bytes; S3 keys are at most {_MAX_KEY_BYTES:,}")
        return None
    try:
        version = version_of(etag=etag, version_id=version_id)
    except PermanentError as exc:
        malformed(f"is unusable: {exc}")
        return None
    return ObjectRef(
        bucket=name,
        key=key,
        version=version,
        size=_size(obj.get("size")),
        sequencer=_text(obj.get("sequencer")),
        event_time=_text(event_time),
    )


def _size(value: Any) -> int | None:
    """The object's size when the event states it as a whole number of bytes."""
    if isinstance(value, bool) or not isinstance(value, int | str):
        return None
    try:
        size = int(value)
    except ValueError:
        return None
    return size if size >= 0 else None
