"""The seed's AWS resources on moto, and ways to look at them, for the AWS tests.

``World`` creates one bucket, the ``events`` table (only key: string ``pk``), the
topic, an observer queue subscribed to the topic (so tests see every SNS message), a
dead-letter queue and an input queue that receives the bucket's S3 notifications (so
tests can feed the handler real moto-made events).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote_plus

import boto3
from boto3.dynamodb.types import TypeDeserializer
from botocore.exceptions import ClientError

from dockline.aws.runtime import AwsEngine, Clients, build_engine
from dockline.config import PipelineSettings, Settings
from tests.aws.conftest import REGION, TABLE, create_table

BUCKET = "dockline-landing"
FIXED_NOW = datetime(2026, 11, 27, 12, 0, 0, tzinfo=UTC)


def s3_encode(key: str) -> str:
    """Encode a key the way S3 does in event notifications ('red flower.jpg' -> 'red+flower.jpg')."""
    return quote_plus(key, safe="/")


def s3_record(
    bucket: str,
    key: str,
    *,
    etag: str | None = None,
    version_id: str | None = None,
    size: int = 1,
    sequencer: str | None = "0055AED6DCD90281E5",
    event_time: str = "2026-11-27T12:00:00.000Z",
    event_name: str = "ObjectCreated:Put",
) -> dict[str, Any]:
    obj: dict[str, Any] = {"key": s3_encode(key), "size": size, "eTag": etag or "0" * 32}
    if version_id:
        obj["versionId"] = version_id
    if sequencer:
        obj["sequencer"] = sequencer
    return {
        "eventVersion": "2.1",
        "eventSource": "aws:s3",
        "awsRegion": REGION,
        "eventTime": event_time,
        "eventName": event_name,
        "userIdentity": {"principalId": "AWS:AIDAEXAMPLE"},
        "requestParameters": {"sourceIPAddress": "203.0.113.10"},
        "responseElements": {
            "x-amz-request-id": "C3D13FE58DE4C810",
            "x-amz-id-2": "FMyUVURIY8/IgAtTv8xRjskZQpcIZ9KG4V5Wp6S7S/JRWeUWerMUE5JgHvANOjpD",
        },
        "s3": {
            "s3SchemaVersion": "1.0",
            "configurationId": "dockline-incoming",
            "bucket": {
                "name": bucket,
                "ownerIdentity": {"principalId": "A3NL1KOZZKExample"},
                "arn": f"arn:aws:s3:::{bucket}",
            },
            "object": obj,
        },
    }


def sqs_record(body: Any, *, message_id: str, receive_count: int = 1) -> dict[str, Any]:
    return {
        "messageId": message_id,
        "receiptHandle": f"AQEB{message_id}",
        "body": body if isinstance(body, str) else json.dumps(body),
        "attributes": {
            "ApproximateReceiveCount": str(receive_count),
            "SentTimestamp": "1795780800000",
            "SenderId": "AIDAIENQZJOLO23YVJ4VO",
            "ApproximateFirstReceiveTimestamp": "1795780800001",
        },
        "messageAttributes": {},
        "md5OfBody": hashlib.md5(b"", usedforsecurity=False).hexdigest(),
        "eventSource": "aws:sqs",
        "eventSourceARN": f"arn:aws:sqs:{REGION}:123456789012:dockline-input",
        "awsRegion": REGION,
    }


@dataclass
class CallLog:
    """AWS API calls made through the world's clients, in order (service.Operation)."""

    calls: list[str] = field(default_factory=list)

    def __call__(self, model: Any = None, **_: Any) -> None:
        self.calls.append(f"{model.service_model.service_name}.{model.name}")

    def count(self) -> Counter[str]:
        return Counter(self.calls)

    def reset(self) -> None:
        self.calls.clear()


class World:
    def __init__(self, settings: PipelineSettings | None = None, *, record_writes: str = "checked") -> None:
        self.s3 = boto3.client("s3", region_name=REGION)
        self.dynamodb = boto3.client("dynamodb", region_name=REGION)
        self.sns = boto3.client("sns", region_name=REGION)
        self.sqs = boto3.client("sqs", region_name=REGION)
        self.bucket = BUCKET
        self.s3.create_bucket(Bucket=self.bucket)
        create_table(self.dynamodb)
        self.topic_arn = self.sns.create_topic(Name="events-notify")["TopicArn"]
        self.observer_url = self._queue("observer")
        self.sns.subscribe(TopicArn=self.topic_arn, Protocol="sqs", Endpoint=self._arn(self.observer_url))
        self.dlq_url = self._queue("dockline-dlq")
        self.input_url = self._queue("dockline-input")
        self.s3.put_bucket_notification_configuration(
            Bucket=self.bucket,
            NotificationConfiguration={
                "QueueConfigurations": [
                    {
                        "QueueArn": self._arn(self.input_url),
                        "Events": ["s3:ObjectCreated:*"],
                        "Filter": {"Key": {"FilterRules": [{"Name": "prefix", "Value": "incoming/"}]}},
                    }
                ]
            },
        )
        self.calls = CallLog()
        for client in (self.s3, self.dynamodb, self.sns, self.sqs):
            client.meta.events.register("before-call", self.calls)
        self.settings = Settings(pipeline=settings or PipelineSettings(retries=3))
        self.engine = self.build_engine(record_writes=record_writes)
        self.drain_input()  # the s3:TestEvent moto sends when notifications are switched on

    # -- plumbing ------------------------------------------------------------------
    def _queue(self, name: str) -> str:
        return str(self.sqs.create_queue(QueueName=name)["QueueUrl"])

    def _arn(self, url: str) -> str:
        return str(self.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"])

    def build_engine(
        self, *, record_writes: str = "checked", clock: Callable[[], datetime] = lambda: FIXED_NOW, **kw: Any
    ) -> AwsEngine:
        clients = Clients()
        for name in ("s3", "dynamodb", "sns", "sqs"):
            clients.provide(name, getattr(self, name))
        return build_engine(
            table_name=TABLE,
            topic_arn=self.topic_arn,
            dlq_url=self.dlq_url,
            settings=self.settings,
            clients=clients,
            record_writes=record_writes,  # type: ignore[arg-type]
            clock=clock,
            sleep=lambda _seconds: None,
            **kw,
        )

    def env(self) -> dict[str, str]:
        return {"TABLE_NAME": TABLE, "TOPIC_ARN": self.topic_arn, "DLQ_URL": self.dlq_url}

    # -- objects and events ----------------------------------------------------------
    def put(self, key: str, body: bytes | str) -> str:
        """Upload; returns the ETag without quotes."""
        data = body.encode() if isinstance(body, str) else body
        return str(self.s3.put_object(Bucket=self.bucket, Key=key, Body=data)["ETag"]).strip('"')

    def event(self, *keys: str, **record: Any) -> dict[str, Any]:
        """A direct S3 event for objects already in the bucket (their current ETags)."""
        records = []
        for key in keys:
            head = self.s3.head_object(Bucket=self.bucket, Key=key)
            etag = record.pop("etag", None) or str(head["ETag"]).strip('"')
            records.append(s3_record(self.bucket, key, etag=etag, size=int(head["ContentLength"]), **record))
        return {"Records": records}

    def drain_input(self) -> dict[str, Any]:
        """What S3 sent to the input queue, as the SQS event Lambda would deliver."""
        records = []
        while True:
            got = self.sqs.receive_message(QueueUrl=self.input_url, MaxNumberOfMessages=10, AttributeNames=["All"])
            batch = got.get("Messages", [])
            if not batch:
                break
            for m in batch:
                records.append(sqs_record(m["Body"], message_id=m["MessageId"]))
                self.sqs.delete_message(QueueUrl=self.input_url, ReceiptHandle=m["ReceiptHandle"])
        return {"Records": records}

    # -- what happened ------------------------------------------------------------------
    def notifications(self) -> list[dict[str, Any]]:
        """Every SNS message published since the last call: Subject, Message, attributes."""
        seen: list[dict[str, Any]] = []
        while True:
            got = self.sqs.receive_message(QueueUrl=self.observer_url, MaxNumberOfMessages=10)
            batch = got.get("Messages", [])
            if not batch:
                return seen
            for m in batch:
                envelope = json.loads(m["Body"])
                attributes = {k: v["Value"] for k, v in envelope.get("MessageAttributes", {}).items()}
                seen.append(
                    {"subject": envelope.get("Subject"), "message": envelope["Message"], "attributes": attributes}
                )
                self.sqs.delete_message(QueueUrl=self.observer_url, ReceiptHandle=m["ReceiptHandle"])

    def raw_items(self) -> list[dict[str, Any]]:
        return list(self.dynamodb.scan(TableName=TABLE)["Items"])

    def items(self) -> dict[str, dict[str, Any]]:
        """Every item in the table, deserialized, by pk (file markers included)."""
        des = TypeDeserializer()
        return {i["pk"]["S"]: {k: des.deserialize(v) for k, v in i.items()} for i in self.raw_items()}

    def records(self) -> dict[str, dict[str, Any]]:
        """Record items only (no file markers)."""
        return {pk: item for pk, item in self.items().items() if not pk.startswith("dockline#")}

    def markers(self) -> dict[str, dict[str, Any]]:
        return {pk: item for pk, item in self.items().items() if pk.startswith("dockline#file#")}

    def marker(self, key: str) -> dict[str, Any] | None:
        """The file marker of ``key``'s one version, if it has one."""
        found = [item for item in self.markers().values() if item["key"] == key]
        assert len(found) <= 1, f"{key} has markers of {len(found)} versions"
        return found[0] if found else None

    def dead_letter_bodies(self) -> list[dict[str, Any]]:
        bodies: list[dict[str, Any]] = []
        while True:
            got = self.sqs.receive_message(QueueUrl=self.dlq_url, MaxNumberOfMessages=10, VisibilityTimeout=0)
            batch = got.get("Messages", [])
            new = [m for m in batch if json.loads(m["Body"]) not in bodies]
            if not new:
                return bodies
            bodies.extend(json.loads(m["Body"]) for m in new)


class Fault:
    """A botocore event hook raising ClientError ``code`` (``times`` times, or forever).

    Register it on ``before-call.<service>.<Operation>`` (or ``before-parameter-build``
    to see the call's parameters); ``raised`` counts the failures it injected.
    """

    def __init__(
        self, code: str, status: int, *, times: int | None = None, when: Callable[[dict[str, Any]], bool] | None = None
    ) -> None:
        self.code, self.status, self.left, self.when = code, status, times, when
        self.raised = 0

    def __call__(self, model: Any = None, params: Any = None, **_: Any) -> None:
        if self.when is not None and not self.when(params or {}):
            return
        if self.left is not None:
            if self.left <= 0:
                return
            self.left -= 1
        self.raised += 1
        response: Any = {
            "Error": {"Code": self.code, "Message": f"injected {self.code}"},
            "ResponseMetadata": {"HTTPStatusCode": self.status},
        }
        raise ClientError(response, model.name)


def fail_with(code: str, status: int, *, times: int | None = None) -> Fault:
    return Fault(code, status, times=times)


def for_item(pk: str) -> Callable[[dict[str, Any]], bool]:
    """A ``when`` for Faults on ``before-parameter-build.dynamodb.PutItem``: only this item."""
    return lambda params: params.get("Item", {}).get("pk", {}).get("S") == pk
