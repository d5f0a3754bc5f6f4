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
matches the pipeline's prefix and suffixes become work.

A record that cannot be understood is *malformed*. In an SQS batch the handler reports
its message as failed, so the queue's redrive policy moves it to the DLQ after
``maxReceiveCount`` receives and nothing is lost; anywhere else it is logged and skipped,
because retrying the same bytes cannot help.
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


@dataclass(frozen=True, slots=True)
class WorkItem:
    """One object version to process, and where it came from."""

    ref: ObjectRef
    message_id: str | None = None  # the SQS message to report in batchItemFailures
    attempts: int = 1


@dataclass(frozen=True, slots=True)
class Malformed:
    """A record that is not any event shape dockline knows."""

    reason: str
    message_id: str | None = None


@dataclass(slots=True)
class ParsedEvent:
    """What one invocation carries: work, things skipped on purpose, malformed records."""

    items: list[WorkItem] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # why, one line each (test events, filters)
    malformed: list[Malformed] = field(default_factory=list)
    from_sqs: bool = False  # answer with batchItemFailures
    message_ids: list[str] = field(default_factory=list)  # every SQS message of the batch


def decode_key(raw: str) -> str:
    """An S3 event's URL-encoded key as the key itself ('a+b%2Bc' -> 'a b+c')."""
    return unquote_plus(raw)


def parse_event(event: Any, settings: PipelineSettings) -> ParsedEvent:
    """Turn one Lambda event into work items for the keys ``settings`` matches.

    Never raises for bad input: anything not understood ends up in ``malformed``.
    """
    return _parse(event, settings.matches)


def object_refs(event: Any) -> ParsedEvent:
    """Every object-created reference in ``event``, whatever its key (for dead letters)."""
    return _parse(event, lambda _key: True)


def _parse(event: Any, matches: Callable[[str], bool]) -> ParsedEvent:
    parsed = ParsedEvent()
    records = event.get("Records") if isinstance(event, Mapping) else None
    if isinstance(records, list) and records and all(_is_sqs(r) for r in records):
        parsed.from_sqs = True
        for record in records:
            message_id = str(record.get("messageId") or "")
            parsed.message_ids.append(message_id)
            attempts = _int(record.get("attributes", {}).get("ApproximateReceiveCount"), 1)
            body = _json(record.get("body"))
            if body is None:
                parsed.malformed.append(Malformed("the SQS message body is not JSON", message_id))
                continue
            _walk(body, parsed, matches, message_id=message_id, attempts=attempts, depth=1)
        return parsed
    _walk(event, parsed, matches, message_id=None, attempts=1, depth=0)
    return parsed


def _is_sqs(record: Any) -> bool:
    return isinstance(record, Mapping) and record.get("eventSource") == "aws:sqs" and "body" in record


def _json(text: Any) -> Any:
    if isinstance(text, Mapping):
        return text
    if not isinstance(text, str):
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def _int(value: Any, default: int) -> int:
    try:
        return max(int(value), 1)
    except (TypeError, ValueError):
        return default


def _walk(
    node: Any, parsed: ParsedEvent, matches: Callable[[str], bool], *, message_id: str | None, attempts: int, depth: int
) -> None:
    def malformed(reason: str) -> None:
        parsed.malformed.append(Malformed(reason, message_id))

    if depth > _MAX_DEPTH:
        malformed("the event is wrapped in too many envelopes")
        return
    if not isinstance(node, Mapping):
        malformed(f"expected a JSON object, got {type(node).__name__}")
        return
    if node.get("Event") == "s3:TestEvent":
        parsed.skipped.append(f"s3:TestEvent for bucket {node.get('Bucket', '?')}")
        return
    if "requestPayload" in node:  # a Lambda destination record
        context = node.get("requestContext")
        invoked = _int(context.get("approximateInvokeCount"), attempts) if isinstance(context, Mapping) else attempts
        _walk(node["requestPayload"], parsed, matches, message_id=message_id, attempts=invoked, depth=depth + 1)
        return
    if node.get("Type") == "Notification" and "Message" in node:  # an SNS envelope inside SQS
        _walk(_json(node["Message"]), parsed, matches, message_id=message_id, attempts=attempts, depth=depth + 1)
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
            message = _json(record["Sns"].get("Message"))
            _walk(message, parsed, matches, message_id=message_id, attempts=attempts, depth=depth + 1)
        else:
            source = record.get("eventSource") or record.get("EventSource") or "an unknown source"
            malformed(f"an event record from {source} is not an S3 record")


def _accept(
    parsed: ParsedEvent, matches: Callable[[str], bool], ref: ObjectRef, *, message_id: str | None, attempts: int
) -> None:
    if not matches(ref.key):
        parsed.skipped.append(f"{ref.key!r} does not match the pipeline's prefix and suffixes")
        return
    parsed.items.append(WorkItem(ref=ref, message_id=message_id, attempts=attempts))


def _s3_record(
    record: Mapping[str, Any],
    parsed: ParsedEvent,
    matches: Callable[[str], bool],
    *,
    message_id: str | None,
    attempts: int,
) -> None:
    name = str(record.get("eventName") or "")
    if not name:
        parsed.malformed.append(Malformed("the S3 record has no eventName", message_id))
        return
    if not name.startswith(("ObjectCreated:", "s3:ObjectCreated:")):
        parsed.skipped.append(f"{name} is not an object-created event")
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
        parsed.skipped.append(f"EventBridge {event.get('detail-type')!r} is not an object-created event")
        return
    detail = event["detail"]
    # EventBridge keys are encoded like S3 notifications' keys; Powertools decodes them the same way.
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
        _accept(parsed, matches, ref, message_id=message_id, attempts=attempts)


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
    if not isinstance(bucket, Mapping) or not isinstance(obj, Mapping) or not obj.get("key") or not bucket.get("name"):
        parsed.malformed.append(Malformed(f"{where} has no bucket name or object key", message_id))
        return None
    try:
        version = version_of(etag=obj.get(etag_field), version_id=obj.get(version_field))
    except PermanentError as exc:
        parsed.malformed.append(Malformed(str(exc), message_id))
        return None
    return ObjectRef(
        bucket=str(bucket["name"]),
        key=decode_key(str(obj["key"])),
        version=version,
        size=_size(obj.get("size")),
        sequencer=str(obj["sequencer"]) if obj.get("sequencer") else None,
        event_time=str(event_time) if event_time else None,
    )


def _size(value: Any) -> int | None:
    if isinstance(value, bool) or not isinstance(value, int | str):
        return None
    try:
        return int(value)
    except ValueError:
        return None
