"""SNSNotifier: the notifier port on one SNS topic."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

from botocore.exceptions import BotoCoreError, ClientError

from dockline.aws.clients import made_client
from dockline.aws.errors import translate
from dockline.models import Notification
from dockline.ports import Notifier

if TYPE_CHECKING:
    from mypy_boto3_sns import SNSClient
    from mypy_boto3_sns.type_defs import MessageAttributeValueTypeDef

# SNS takes 256 KiB per message including attributes; our messages are a line or two,
# but a reason can quote a long key: cut well before the limit.
MAX_MESSAGE_BYTES = 200_000
MAX_SUBJECT_CHARS = 100  # SNS's limit (ASCII, no line breaks)
BATCH_ENTRIES = 10  # SNS's limit per PublishBatch
# SNS takes 256 KiB per PublishBatch, all entries together (message, subject, attributes).
BATCH_BYTES = 250_000


def _clip(text: str, limit: int) -> str:
    data = text.encode("utf-8")
    if len(data) <= limit:
        return text
    return data[: limit - 3].decode("utf-8", errors="ignore") + "..."


def _subject(subject: str) -> str:
    printable = "".join(c if 32 <= ord(c) < 127 else "?" for c in subject)
    return printable[:MAX_SUBJECT_CHARS] or "dockline"


def message_attributes(notification: Notification) -> dict[str, MessageAttributeValueTypeDef]:
    """String attributes for subscription filter policies. Empty values are left out:
    SNS rejects an attribute whose value is empty."""
    return {
        name: {"DataType": "String", "StringValue": value}
        for name, value in notification.attributes.items()
        if value != ""
    }


class SNSNotifier(Notifier):
    """Publishes each notification to one topic. The client is built on first use."""

    def __init__(
        self,
        topic_arn: str,
        *,
        client: SNSClient | None = None,
        client_factory: Callable[[], SNSClient] | None = None,
    ) -> None:
        self.topic_arn = topic_arn
        self._client = client
        self._factory = client_factory

    @property
    def client(self) -> SNSClient:
        self._client = made_client(self._client, self._factory, "sns")
        return self._client

    def publish_batch(self, notifications: Sequence[Notification]) -> None:
        """Publish each, ten (and at most ``BATCH_BYTES``) a ``PublishBatch``. An entry SNS
        refuses in a batch, and every entry of a batch call that fails whole, is published on
        its own (``publish``), so one bad or throttled entry costs the others nothing.

        Raises as ``publish``; then, as for the base class, the ones before may have gone out.
        """
        if len(notifications) == 1:
            self.publish(notifications[0])  # one Publish: what PublishBatch would cost
            return
        chunk: list[Notification] = []
        size = 0
        for notification in notifications:
            entry_size = _entry_size(notification)
            if chunk and (len(chunk) == BATCH_ENTRIES or size + entry_size > BATCH_BYTES):
                self._publish_chunk(chunk)
                chunk, size = [], 0
            chunk.append(notification)
            size += entry_size
        if chunk:
            self._publish_chunk(chunk)

    def _publish_chunk(self, chunk: list[Notification]) -> None:
        if len(chunk) == 1:
            self.publish(chunk[0])
            return
        entries: Any = [
            {
                "Id": str(i),
                "Subject": _subject(n.subject),
                "Message": _clip(n.message, MAX_MESSAGE_BYTES),
                "MessageAttributes": message_attributes(n),
            }
            for i, n in enumerate(chunk)
        ]
        try:
            response = self.client.publish_batch(TopicArn=self.topic_arn, PublishBatchRequestEntries=entries)
        except (ClientError, BotoCoreError):
            failed = list(range(len(chunk)))  # the whole call: each on its own, which says why
        else:
            failed = sorted(int(f["Id"]) for f in response.get("Failed", []))
        for i in failed:
            self.publish(chunk[i])

    def publish(self, notification: Notification) -> None:
        """Publish subject, message and attributes.

        Raises TransientError for throttling, 5xx and network failures, DocklineError
        for anything else (a missing topic, missing permissions, a KMS key disabled).
        """
        try:
            self.client.publish(
                TopicArn=self.topic_arn,
                Subject=_subject(notification.subject),
                Message=_clip(notification.message, MAX_MESSAGE_BYTES),
                MessageAttributes=message_attributes(notification),
            )
        except (ClientError, BotoCoreError) as exc:
            raise translate(exc, f"publishing to SNS topic {self.topic_arn}") from exc


def _entry_size(notification: Notification) -> int:
    """An upper bound of what one entry adds to a PublishBatch's size."""
    attributes = sum(len(k) + len(v) + 16 for k, v in notification.attributes.items())
    return len(_clip(notification.message, MAX_MESSAGE_BYTES).encode("utf-8")) + MAX_SUBJECT_CHARS + attributes + 64
