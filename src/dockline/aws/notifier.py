"""SNSNotifier: the notifier port on one SNS topic."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from botocore.exceptions import BotoCoreError, ClientError

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
        if self._client is None:
            if self._factory is not None:
                self._client = self._factory()
            else:
                import boto3

                self._client = boto3.client("sns")
        return self._client

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
