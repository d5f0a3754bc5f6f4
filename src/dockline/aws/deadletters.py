"""SQSDeadLetters: the dead-letter port on an SQS queue, plus what the CLI needs.

The stack's DLQ receives three shapes of message, and all three are read here:

1. the handler's own dead letters (``"type": "dockline.dead-letter"``): a file that
   failed for good, with its reason and attempt count;
2. raw S3 event messages that SQS moved from the input queue after
   ``maxReceiveCount`` receives (queue mode) -- or that Lambda's asynchronous DLQ
   received, with ``ErrorMessage`` as a message attribute;
3. Lambda on-failure destination records (direct mode): ``requestPayload`` holds the
   S3 event, ``responsePayload`` the last error.

SQS has no "peek". Listing receives every message with a short visibility timeout
(to page through the queue), then makes them all visible again at once. Each listing
therefore adds one to every message's ``ApproximateReceiveCount``; nothing else
consumes the DLQ, so that is harmless. A letter's id is its SQS ``MessageId``
(``<MessageId>#<n>`` when one message names several objects).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from dockline.aws.clients import made_client
from dockline.aws.errors import translate
from dockline.aws.events import ParsedEvent, object_refs
from dockline.config import AwsSettings, Settings
from dockline.models import DeadLetter, ObjectRef
from dockline.ports import DeadLetters

if TYPE_CHECKING:
    from mypy_boto3_sqs import SQSClient

DEAD_LETTER_TYPE = "dockline.dead-letter"
SHAPE_DOCKLINE = "dockline"
SHAPE_S3_EVENT = "s3-event"
SHAPE_DESTINATION = "lambda-destination"
SHAPE_UNRECOGNISED = "unrecognised"


@dataclass(frozen=True, slots=True)
class HeldMessage:
    """One received DLQ message and the receipt handle that can delete it."""

    message_id: str
    receipt_handle: str
    body: str
    attributes: dict[str, str] = field(default_factory=dict)
    message_attributes: dict[str, str] = field(default_factory=dict)


def dead_letter_body(letter: DeadLetter) -> str:
    ref = letter.ref
    return json.dumps(
        {
            "type": DEAD_LETTER_TYPE,
            "id": letter.id,
            "bucket": ref.bucket,
            "key": ref.key,
            "version": ref.version,
            "size": ref.size,
            "sequencer": ref.sequencer,
            "event_time": ref.event_time,
            "reason": letter.reason,
            "attempts": letter.attempts,
            "failed_at": letter.failed_at,
        },
        ensure_ascii=False,
    )


def _iso_from_millis(value: str | None) -> str:
    if not value or not value.isdigit():
        return ""
    moment = datetime.fromtimestamp(int(value) / 1000, tz=UTC)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _json(text: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        return None


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def letters_from_message(message: HeldMessage, aws: AwsSettings | None = None) -> list[DeadLetter]:
    """The dead letters one DLQ message stands for (see the module docstring)."""
    aws = aws or AwsSettings()
    body = _json(message.body)
    sent = _iso_from_millis(message.attributes.get("SentTimestamp"))
    received = int(message.attributes.get("ApproximateReceiveCount", "1") or 1)
    base = {"message_id": message.message_id}
    if isinstance(body, dict) and body.get("type") == DEAD_LETTER_TYPE:
        ref = ObjectRef(
            bucket=str(body.get("bucket", "")),
            key=str(body.get("key", "")),
            version=str(body.get("version", "")),
            size=body.get("size") if isinstance(body.get("size"), int) else None,
            sequencer=body.get("sequencer") or None,
            event_time=body.get("event_time") or None,
        )
        extra = {**base, "shape": SHAPE_DOCKLINE, "identity": body.get("id")}
        reason = str(body.get("reason", ""))
        attempts = int(body.get("attempts") or 1)
        return [DeadLetter(message.message_id, ref, reason, attempts, str(body.get("failed_at") or sent), extra)]
    if isinstance(body, dict) and "requestPayload" in body:
        context = _mapping(body.get("requestContext"))
        response = _mapping(body.get("responsePayload"))
        attempts = int(context.get("approximateInvokeCount") or aws.retry_attempts + 1)
        error = response.get("errorMessage") or response.get("errorType") or "an error"
        reason = f"Lambda gave up ({context.get('condition', 'RetriesExhausted')}) after {attempts} attempts: {error}"
        parsed: ParsedEvent | None = object_refs(body["requestPayload"])
        shape, failed_at = SHAPE_DESTINATION, str(body.get("timestamp") or sent)
    else:
        parsed = object_refs(body) if isinstance(body, dict) else None
        error = message.message_attributes.get("ErrorMessage")
        if error:  # Lambda's asynchronous-invocation DLQ
            attempts = aws.retry_attempts + 1
            reason = f"Lambda gave up after {attempts} attempts: {error}"
        else:
            attempts = aws.max_receive_count
            reason = f"ran out of retries: SQS moved it here after {attempts} receives from the input queue"
        shape, failed_at = SHAPE_S3_EVENT, sent
    if parsed is None or not parsed.items:
        why = "; ".join(parsed.skipped + [m.reason for m in parsed.malformed]) if parsed else "the body is not JSON"
        reason = f"not a file dockline can redrive ({why or 'no object-created records'}): {message.body[:300]}"
        extra = {**base, "shape": SHAPE_UNRECOGNISED}
        return [DeadLetter(message.message_id, ObjectRef("", "", ""), reason, received, failed_at, extra)]
    many = len(parsed.items) > 1
    return [
        DeadLetter(
            f"{message.message_id}#{n}" if many else message.message_id,
            item.ref,
            reason,
            attempts,
            failed_at,
            {**base, "shape": shape},
        )
        for n, item in enumerate(parsed.items, start=1)
    ]


class SQSDeadLetters(DeadLetters):
    """Dead letters in one SQS queue. The client is built on first use."""

    def __init__(
        self,
        queue_url: str,
        *,
        client: SQSClient | None = None,
        client_factory: Callable[[], SQSClient] | None = None,
        aws: AwsSettings | None = None,
        peek_seconds: int = 30,
        wait_seconds: int = 1,
        max_messages: int = 10_000,
    ) -> None:
        self.queue_url = queue_url
        self._client = client
        self._factory = client_factory
        self._aws = aws or AwsSettings()
        self.peek_seconds = peek_seconds
        self.wait_seconds = wait_seconds
        self.max_messages = max_messages
        self._deleted: set[str] = set()  # deleted while held: not to be released

    @property
    def client(self) -> SQSClient:
        self._client = made_client(self._client, self._factory, "sqs")
        return self._client

    def _do(self, action: str, method: Callable[..., Any], **kwargs: Any) -> Any:
        try:
            return method(QueueUrl=self.queue_url, **kwargs)
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, f"{action} (queue {self.queue_url})") from exc

    def send(self, letter: DeadLetter) -> None:
        """Send ``letter`` as a JSON message. Raises TransientError, DocklineError."""
        self._do(
            "sending a dead letter",
            self.client.send_message,
            MessageBody=dead_letter_body(letter),
            MessageAttributes={"type": {"DataType": "String", "StringValue": DEAD_LETTER_TYPE}},
        )

    @contextmanager
    def held(self, visibility_seconds: int) -> Iterator[list[HeldMessage]]:
        """Receive every message, hidden from others for ``visibility_seconds``; on
        exit, whatever was not deleted becomes visible again. Raises TransientError."""
        messages: dict[str, HeldMessage] = {}
        try:
            while len(messages) < self.max_messages:
                response = self._do(
                    "reading dead letters",
                    self.client.receive_message,
                    MaxNumberOfMessages=10,
                    VisibilityTimeout=visibility_seconds,
                    WaitTimeSeconds=self.wait_seconds,
                    AttributeNames=["All"],
                    MessageAttributeNames=["All"],
                )
                batch = response.get("Messages", [])
                if not batch:
                    break
                for raw in batch:
                    held = HeldMessage(
                        message_id=raw["MessageId"],
                        receipt_handle=raw["ReceiptHandle"],
                        body=raw.get("Body", ""),
                        attributes=dict(raw.get("Attributes", {})),
                        message_attributes={
                            name: str(value.get("StringValue", ""))
                            for name, value in raw.get("MessageAttributes", {}).items()
                        },
                    )
                    messages[held.message_id] = held  # the latest receipt handle wins
            yield list(messages.values())
        finally:
            self._release([m for m in messages.values() if m.message_id not in self._deleted])
            self._deleted.clear()

    def delete(self, message: HeldMessage) -> None:
        """Delete a held message for good. Raises TransientError, DocklineError."""
        self._do("deleting a dead letter", self.client.delete_message, ReceiptHandle=message.receipt_handle)
        self._deleted.add(message.message_id)

    def _release(self, messages: list[HeldMessage]) -> None:
        for start in range(0, len(messages), 10):
            entries = [
                {"Id": str(i), "ReceiptHandle": m.receipt_handle, "VisibilityTimeout": 0}
                for i, m in enumerate(messages[start : start + 10])
            ]
            self._do("releasing dead letters", self.client.change_message_visibility_batch, Entries=entries)

    def list(self) -> Iterator[DeadLetter]:
        """Every letter in the queue, oldest first (a peek: see the module docstring)."""
        with self.held(self.peek_seconds) as messages:
            letters = [letter for m in messages for letter in letters_from_message(m, self._aws)]
        return iter(sorted(letters, key=lambda letter: letter.failed_at))

    def get(self, letter_id: str) -> DeadLetter | None:
        return next((letter for letter in self.list() if letter.id == letter_id), None)

    def remove(self, letter_id: str) -> None:
        """Delete the message that holds ``letter_id`` (if it is still there)."""
        message_id = letter_id.split("#", 1)[0]
        with self.held(self.peek_seconds) as messages:
            for message in messages:
                if message.message_id == message_id:
                    self.delete(message)


# -- for the CLI ------------------------------------------------------------------------
def list_dead_letters(
    queue_url: str, *, client: SQSClient | None = None, settings: Settings | None = None, wait_seconds: int = 1
) -> list[DeadLetter]:
    """``dockline dlq list --queue-url``. Raises TransientError, DocklineError."""
    aws = settings.aws if settings else None
    return list(SQSDeadLetters(queue_url, client=client, aws=aws, wait_seconds=wait_seconds).list())


def show_dead_letter(
    queue_url: str,
    letter_id: str,
    *,
    client: SQSClient | None = None,
    settings: Settings | None = None,
    wait_seconds: int = 1,
) -> DeadLetter | None:
    """``dockline dlq show ID --queue-url``: the letter, or None. Raises TransientError, DocklineError."""
    aws = settings.aws if settings else None
    return SQSDeadLetters(queue_url, client=client, aws=aws, wait_seconds=wait_seconds).get(letter_id)


def queue_url_from_stack(stack_name: str, *, client: Any = None) -> str:
    """The ``DeadLetterQueueUrl`` output of the deployed stack (when ``--queue-url`` is
    not given). Raises DocklineError when the stack or the output is missing."""
    from dockline.aws.outputs import OUTPUT_DLQ
    from dockline.aws.runtime import stack_output

    return stack_output(stack_name, OUTPUT_DLQ, client=client)


def redrive_aws(
    queue_url: str, *, ids: list[str] | None, dry_run: bool = False, settings: Settings | None = None, **options: Any
) -> Iterator[str]:
    """``dockline dlq redrive [ID | --all] --queue-url``: plan, then (unless ``dry_run``)
    execute; yields one line per letter. See ``dockline.aws.redrive``."""
    from dockline.aws.redrive import redrive

    yield from redrive(queue_url, ids=ids, dry_run=dry_run, settings=settings or Settings(), **options)
